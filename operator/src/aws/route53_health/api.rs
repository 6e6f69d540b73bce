//! The narrow port to Route 53's health-check calls and its SDK adapter.
//!
//! The adapter only translates: paging, the 10-ids-per-call limit of ListTagsForResources, the
//! settings to and from the SDK types and typed errors. Deciding (what to create, when to clean
//! up a half-made check) is the registry's.

use std::collections::{HashMap, HashSet};

use aws_sdk_route53::Client;
use aws_sdk_route53::error::DisplayErrorContext;
use aws_sdk_route53::operation::change_tags_for_resource::ChangeTagsForResourceError;
use aws_sdk_route53::operation::create_health_check::CreateHealthCheckError;
use aws_sdk_route53::operation::delete_health_check::DeleteHealthCheckError;
use aws_sdk_route53::operation::update_health_check::UpdateHealthCheckError;
use aws_sdk_route53::types::{
    AlarmIdentifier, CloudWatchRegion, HealthCheck, HealthCheckConfig, HealthCheckType,
    InsufficientDataHealthStatus, ResettableElementName, Tag, TagResourceType,
};
use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::plan::{
    AlarmCheck, CheckConfig, Endpoint, EndpointCheck, ExistingCheck, Protocol, RequestInterval,
    Tags,
};

/// ListTagsForResources takes at most this many ids.
const TAGS_PER_CALL: usize = 10;

/// Why a health-check call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The account holds as many health checks as its limit allows.
    #[error("Route 53 refused: the account's health check limit is reached (TooManyHealthChecks)")]
    TooManyHealthChecks,
    /// The check changed after it was listed (`HealthCheckVersion` is behind).
    #[error("the health check changed after it was listed")]
    VersionMismatch,
    #[error("no such health check")]
    NoSuchHealthCheck,
    /// The CallerReference was used before: by a deleted check, or by one with other settings.
    #[error("the caller reference is taken (HealthCheckAlreadyExists)")]
    ReferenceTaken,
    /// Anything else (network, throttling after retries, invalid input): try again later.
    #[error("{message}")]
    Failed { message: String },
}

/// A check just created: not tagged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub id: String,
    pub version: i64,
}

/// The health-check calls the registry makes.
pub trait HealthCheckApi: std::fmt::Debug + Send + Sync + 'static {
    /// Every health check of the account, with our tags.
    fn list(&self) -> BoxFuture<'_, Result<Vec<ExistingCheck>, ApiError>>;

    /// Creates an untagged check. `caller_reference` must never have been used in the account.
    fn create<'a>(
        &'a self,
        caller_reference: &'a str,
        config: &'a CheckConfig,
    ) -> BoxFuture<'a, Result<Created, ApiError>>;

    /// Adds `tags` to a check.
    fn tag<'a>(
        &'a self,
        id: &'a str,
        tags: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<(), ApiError>>;

    /// Changes a check's settings in place (same type and interval) if it is still at
    /// `version`; returns the new version.
    fn update<'a>(
        &'a self,
        id: &'a str,
        version: i64,
        config: &'a CheckConfig,
    ) -> BoxFuture<'a, Result<i64, ApiError>>;

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ApiError>>;
}

/// [`HealthCheckApi`] over the Route 53 SDK client (build it with `Aws::route53()` so every call
/// spends the shared budget).
#[derive(Debug, Clone)]
pub struct Route53HealthChecks {
    client: Client,
}

impl Route53HealthChecks {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn list_all(&self) -> Result<Vec<ExistingCheck>, ApiError> {
        let mut checks: Vec<HealthCheck> = Vec::new();
        let mut marker: Option<String> = None;
        let mut seen = HashSet::new();
        loop {
            let page = self
                .client
                .list_health_checks()
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| failed("ListHealthChecks", &e))?;
            checks.extend(page.health_checks().iter().cloned());
            if !page.is_truncated() {
                break;
            }
            // A marker seen before would loop forever (an emulator's bug, or ours).
            match page.next_marker() {
                Some(next) if seen.insert(next.to_owned()) => marker = Some(next.to_owned()),
                _ => break,
            }
        }

        let ids: Vec<String> = checks.iter().map(|c| c.id().to_owned()).collect();
        let mut tags: HashMap<String, Tags> = HashMap::new();
        for chunk in ids.chunks(TAGS_PER_CALL) {
            let out = self
                .client
                .list_tags_for_resources()
                .resource_type(TagResourceType::Healthcheck)
                .set_resource_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| failed("ListTagsForResources", &e))?;
            for set in out.resource_tag_sets() {
                if let Some(id) = set.resource_id() {
                    let pairs = set
                        .tags()
                        .iter()
                        .filter_map(|t| Some((t.key()?, t.value()?)));
                    tags.insert(id.to_owned(), Tags::from_pairs(pairs));
                }
            }
        }
        Ok(checks
            .iter()
            .map(|c| observe(c, tags.remove(c.id()).unwrap_or_default()))
            .collect())
    }

    async fn create_one(
        &self,
        caller_reference: &str,
        config: &CheckConfig,
    ) -> Result<Created, ApiError> {
        let out = self
            .client
            .create_health_check()
            .caller_reference(caller_reference)
            .health_check_config(to_route53(config)?)
            .send()
            .await
            .map_err(|e| {
                let message = message("CreateHealthCheck", &e);
                match e.into_service_error() {
                    CreateHealthCheckError::TooManyHealthChecks(_) => ApiError::TooManyHealthChecks,
                    CreateHealthCheckError::HealthCheckAlreadyExists(_) => ApiError::ReferenceTaken,
                    _ => ApiError::Failed { message },
                }
            })?;
        let check = out.health_check().ok_or_else(|| ApiError::Failed {
            message: "CreateHealthCheck answered without the health check".to_owned(),
        })?;
        Ok(Created {
            id: check.id().to_owned(),
            version: check.health_check_version(),
        })
    }

    async fn tag_one(&self, id: &str, tags: &[(String, String)]) -> Result<(), ApiError> {
        self.client
            .change_tags_for_resource()
            .resource_type(TagResourceType::Healthcheck)
            .resource_id(id)
            .set_add_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| {
                let message = message("ChangeTagsForResource", &e);
                match e.into_service_error() {
                    ChangeTagsForResourceError::NoSuchHealthCheck(_) => ApiError::NoSuchHealthCheck,
                    _ => ApiError::Failed { message },
                }
            })?;
        Ok(())
    }

    async fn update_one(
        &self,
        id: &str,
        version: i64,
        config: &CheckConfig,
    ) -> Result<i64, ApiError> {
        // Inverted and Disabled are always sent: an update also undoes hand-made drift.
        let mut req = self
            .client
            .update_health_check()
            .health_check_id(id)
            .health_check_version(version)
            .inverted(false)
            .disabled(false);
        match config {
            CheckConfig::Endpoint(check) => {
                let (ip, host) = address(&check.endpoint);
                req = req
                    .set_ip_address(ip)
                    .port(i32::from(check.port))
                    .failure_threshold(i32::from(check.failure_threshold))
                    .set_resource_path(check.resource_path.clone());
                req = match host {
                    Some(host) => req.fully_qualified_domain_name(host),
                    None => req.reset_elements(ResettableElementName::FullyQualifiedDomainName),
                };
                if let Some(sni) = sni(check) {
                    req = req.enable_sni(sni);
                }
            }
            CheckConfig::Alarm(alarm) => {
                req = req
                    .alarm_identifier(alarm_identifier(alarm)?)
                    .insufficient_data_health_status(InsufficientDataHealthStatus::LastKnownStatus);
            }
        }
        let out = req.send().await.map_err(|e| {
            let message = message("UpdateHealthCheck", &e);
            match e.into_service_error() {
                UpdateHealthCheckError::HealthCheckVersionMismatch(_) => ApiError::VersionMismatch,
                UpdateHealthCheckError::NoSuchHealthCheck(_) => ApiError::NoSuchHealthCheck,
                _ => ApiError::Failed { message },
            }
        })?;
        Ok(out
            .health_check()
            .map_or(version + 1, HealthCheck::health_check_version))
    }

    async fn delete_one(&self, id: &str) -> Result<(), ApiError> {
        self.client
            .delete_health_check()
            .health_check_id(id)
            .send()
            .await
            .map_err(|e| {
                let message = message("DeleteHealthCheck", &e);
                match e.into_service_error() {
                    DeleteHealthCheckError::NoSuchHealthCheck(_) => ApiError::NoSuchHealthCheck,
                    _ => ApiError::Failed { message },
                }
            })?;
        Ok(())
    }
}

impl HealthCheckApi for Route53HealthChecks {
    fn list(&self) -> BoxFuture<'_, Result<Vec<ExistingCheck>, ApiError>> {
        self.list_all().boxed()
    }

    fn create<'a>(
        &'a self,
        caller_reference: &'a str,
        config: &'a CheckConfig,
    ) -> BoxFuture<'a, Result<Created, ApiError>> {
        self.create_one(caller_reference, config).boxed()
    }

    fn tag<'a>(
        &'a self,
        id: &'a str,
        tags: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        self.tag_one(id, tags).boxed()
    }

    fn update<'a>(
        &'a self,
        id: &'a str,
        version: i64,
        config: &'a CheckConfig,
    ) -> BoxFuture<'a, Result<i64, ApiError>> {
        self.update_one(id, version, config).boxed()
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ApiError>> {
        self.delete_one(id).boxed()
    }
}

fn message<E, R>(operation: &str, e: &aws_sdk_route53::error::SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    format!("{operation}: {}", DisplayErrorContext(e))
}

fn failed<E, R>(operation: &str, e: &aws_sdk_route53::error::SdkError<E, R>) -> ApiError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    ApiError::Failed {
        message: message(operation, e),
    }
}

/// The `IPAddress` and `FullyQualifiedDomainName` of an endpoint.
fn address(endpoint: &Endpoint) -> (Option<String>, Option<String>) {
    match endpoint {
        Endpoint::Ip { ip, host } => (Some(ip.to_string()), host.clone()),
        Endpoint::Name(name) => (None, Some(name.clone())),
    }
}

/// `EnableSNI` for HTTPS checks: on whenever a name is known, so the checker's TLS handshake
/// names the host the certificate is for. Not sent for other protocols.
fn sni(check: &EndpointCheck) -> Option<bool> {
    (check.protocol == Protocol::Https).then(|| address(&check.endpoint).1.is_some())
}

fn alarm_identifier(alarm: &AlarmCheck) -> Result<AlarmIdentifier, ApiError> {
    AlarmIdentifier::builder()
        .region(CloudWatchRegion::from(alarm.region.as_str()))
        .name(&alarm.alarm_name)
        .build()
        .map_err(|e| ApiError::Failed {
            message: format!("alarm identifier: {e}"),
        })
}

/// The SDK settings for `config`.
pub(super) fn to_route53(config: &CheckConfig) -> Result<HealthCheckConfig, ApiError> {
    let builder = match config {
        CheckConfig::Endpoint(check) => {
            let (ip, host) = address(&check.endpoint);
            HealthCheckConfig::builder()
                .r#type(match check.protocol {
                    Protocol::Http => HealthCheckType::Http,
                    Protocol::Https => HealthCheckType::Https,
                    Protocol::Tcp => HealthCheckType::Tcp,
                })
                .set_ip_address(ip)
                .set_fully_qualified_domain_name(host)
                .port(i32::from(check.port))
                .set_resource_path(check.resource_path.clone())
                .request_interval(check.request_interval.seconds())
                .failure_threshold(i32::from(check.failure_threshold))
                .set_enable_sni(sni(check))
        }
        CheckConfig::Alarm(alarm) => HealthCheckConfig::builder()
            .r#type(HealthCheckType::CloudwatchMetric)
            .alarm_identifier(alarm_identifier(alarm)?)
            .insufficient_data_health_status(InsufficientDataHealthStatus::LastKnownStatus),
    };
    builder.build().map_err(|e| ApiError::Failed {
        message: format!("health check config: {e}"),
    })
}

/// A listed check in the plan's terms.
pub(super) fn observe(check: &HealthCheck, tags: Tags) -> ExistingCheck {
    let (config, drifted) = check
        .health_check_config()
        .map_or((None, false), from_route53);
    ExistingCheck {
        id: check.id().to_owned(),
        caller_reference: check.caller_reference().to_owned(),
        version: check.health_check_version(),
        config,
        drifted,
        tags,
    }
}

/// The settings in the plan's terms (normalized), and whether settings the operator never
/// changes are off its values.
fn from_route53(c: &HealthCheckConfig) -> (Option<CheckConfig>, bool) {
    let flags = c.inverted().unwrap_or(false) || c.disabled().unwrap_or(false);
    let protocol = match c.r#type() {
        HealthCheckType::Http => Protocol::Http,
        HealthCheckType::Https => Protocol::Https,
        HealthCheckType::Tcp => Protocol::Tcp,
        HealthCheckType::CloudwatchMetric => {
            let Some(alarm) = c.alarm_identifier() else {
                return (None, flags);
            };
            let config = CheckConfig::Alarm(AlarmCheck {
                region: alarm.region().as_str().to_owned(),
                alarm_name: alarm.name().to_owned(),
            });
            let status = c.insufficient_data_health_status()
                != Some(&InsufficientDataHealthStatus::LastKnownStatus);
            return (Some(config), flags || status);
        }
        _ => return (None, flags),
    };
    let host = c.fully_qualified_domain_name().map(str::to_owned);
    let endpoint = match c.ip_address() {
        Some(ip) => match ip.parse() {
            Ok(ip) => Endpoint::Ip { ip, host },
            Err(_) => return (None, flags),
        },
        None => match host {
            Some(name) => Endpoint::Name(name),
            None => return (None, flags),
        },
    };
    let (Some(port), Some(request_interval), Some(failure_threshold)) = (
        c.port().and_then(|p| u16::try_from(p).ok()),
        RequestInterval::from_seconds(c.request_interval().unwrap_or(30)),
        c.failure_threshold().and_then(|t| u8::try_from(t).ok()),
    ) else {
        return (None, flags);
    };
    let check = EndpointCheck {
        protocol,
        endpoint,
        port,
        resource_path: c.resource_path().map(str::to_owned),
        request_interval,
        failure_threshold,
    };
    let sni_off = sni(&check).is_some_and(|want| c.enable_sni().unwrap_or(false) != want);
    (
        Some(CheckConfig::Endpoint(check).normalized()),
        flags || sni_off,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(protocol: Protocol, endpoint: Endpoint) -> CheckConfig {
        CheckConfig::Endpoint(EndpointCheck {
            protocol,
            endpoint,
            port: 443,
            resource_path: Some("/healthz".to_owned()),
            request_interval: RequestInterval::Fast,
            failure_threshold: 2,
        })
        .normalized()
    }

    #[test]
    fn settings_round_trip_through_the_sdk_types() {
        let ip = Endpoint::Ip {
            ip: "2001:db8::1".parse().unwrap(),
            host: Some("web.example.com".to_owned()),
        };
        let bare_ip = Endpoint::Ip {
            ip: "192.0.2.1".parse().unwrap(),
            host: None,
        };
        let name = Endpoint::Name("web.example.com".to_owned());
        let configs = [
            endpoint(Protocol::Https, ip.clone()),
            endpoint(Protocol::Https, bare_ip.clone()),
            endpoint(Protocol::Http, name),
            endpoint(Protocol::Tcp, bare_ip),
            CheckConfig::private("eu-west-1", "shop/web", "eu"),
        ];
        for config in configs {
            let sdk = to_route53(&config).unwrap();
            assert_eq!(from_route53(&sdk), (Some(config.clone()), false), "{sdk:?}");
        }
    }

    #[test]
    fn settings_we_never_change_count_as_drift() {
        let config = endpoint(
            Protocol::Https,
            Endpoint::Name("web.example.com".to_owned()),
        );
        let sdk = to_route53(&config).unwrap();
        let sni_off = HealthCheckConfig::builder()
            .set_type(Some(sdk.r#type().clone()))
            .set_fully_qualified_domain_name(sdk.fully_qualified_domain_name().map(Into::into))
            .set_port(sdk.port())
            .set_resource_path(sdk.resource_path().map(Into::into))
            .set_request_interval(sdk.request_interval())
            .set_failure_threshold(sdk.failure_threshold())
            .enable_sni(false)
            .build()
            .unwrap();
        assert_eq!(from_route53(&sni_off), (Some(config), true));
        let calculated = HealthCheckConfig::builder()
            .r#type(HealthCheckType::Calculated)
            .build()
            .unwrap();
        assert_eq!(from_route53(&calculated), (None, false));
    }
}
