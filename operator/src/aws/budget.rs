//! One budget of AWS calls per account, region and service, shared by every caller in the
//! process.
//!
//! The budget sits in the SDK's HTTP client, under its retry loop: every attempt, retries
//! included, waits for a token of its bucket (governor) before it leaves the process. A bucket
//! is one (account, region, service): the account is the HTTP client's ([`Budget::http_client_for`]:
//! [`HUB_ACCOUNT`] for the hub's own credentials, else the account of the role assumed), the
//! region and service those the request is signed for. Route 53 is global: one bucket per
//! account, whatever region its calls are signed for.
//! So the request rate seen by AWS never exceeds the budget however many reconciles run and
//! however often the SDK retries. Route 53's limit (10 requests/s, burst 50) is shared by every
//! tool in the account, so the default stays well under it.
//!
//! Some Route 53 operations have a much smaller bucket of their own at AWS, spent in addition to
//! the account's (`CreateHealthCheck` refills at 0.5/s, `DeleteHealthCheck` at 3/s): those
//! attempts also wait for a token of an operation bucket ([`OperationRate`]), taken before the
//! service's so a long wait there does not waste service tokens.
//!
//! The service comes from the request's SigV4 credential scope; the operation from a header an
//! interceptor adds after signing and the HTTP client removes before sending (so nothing extra
//! reaches AWS). Metrics: calls by service, operation and outcome; throttling answers; time spent
//! waiting for tokens.
//!
//! **The attempt's clock starts after the token.** The SDK's own attempt timeout would count the
//! wait for a token too, so under a deep queue calls timed out inside our own limiter. The
//! attempt timeout ([`BudgetConfig::attempt_timeout`]) is enforced here instead, around the
//! request alone, once the token is taken; a timeout is a connector timeout the SDK retries.
//!
//! **The fence.** Just before a write (any operation not named `Get…`, `List…` or `Describe…`)
//! leaves the process, the connector asks [`Leadership::is_leader`]: a replica that lost the
//! Lease sends nothing, whatever was queued in the SDK or the budget when it still led.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::leader::Leadership;

/// The budget account of the hub's own credentials (its account id is not known without a
/// call, and needs no name: every call made with them spends the same buckets).
pub const HUB_ACCOUNT: &str = "hub";

/// The header carrying the operation name from the interceptor to the HTTP client.
const OPERATION_HEADER: &str = "x-globalingress-operation";

/// Requests per second and burst of one service's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// A bucket of one operation, spent in addition to its service's: one token every `every`, at
/// most `burst` saved up (so rates below 1/s can be said).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRate {
    /// The service as in the SigV4 scope, e.g. `route53`.
    pub service: String,
    /// The operation's name, e.g. `CreateHealthCheck`.
    pub operation: String,
    pub every: Duration,
    pub burst: u32,
}

/// Budget settings.
#[derive(Debug, Clone)]
pub struct BudgetConfig {
    /// Route 53 (account-wide AWS limit: 10/s).
    pub route53: Rate,
    /// Every other service.
    pub default: Rate,
    /// Operations with a bucket of their own.
    pub operations: Vec<OperationRate>,
    /// The longest one HTTP attempt may take, counted from when its token was taken.
    pub attempt_timeout: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            route53: Rate {
                per_second: 4,
                burst: 8,
            },
            default: Rate {
                per_second: 10,
                burst: 20,
            },
            operations: default_operations(),
        }
    }
}

/// The default of [`BudgetConfig::attempt_timeout`] (`--aws-attempt-timeout`).
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// A write refused because this replica does not hold the Lease (the request was not sent).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("not sent: this replica does not hold the Lease")]
pub struct NotLeader;

/// An attempt that got no answer within [`BudgetConfig::attempt_timeout`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no answer within the attempt timeout")]
pub struct AttemptTimeout;

/// Whether an operation changes something (everything but `Get…`, `List…`, `Describe…`; an
/// operation whose name is unknown counts as a write).
pub fn is_write(operation: &str) -> bool {
    !["Get", "List", "Describe"]
        .iter()
        .any(|read| operation.starts_with(read))
}

/// Route 53's per-operation buckets that are smaller than our Route 53 rate (AWS, 2026: the
/// bucket size and refill of CreateHealthCheck are 50 and 0.5/s, of DeleteHealthCheck 15 and
/// 3/s). CreateHealthCheck refills at AWS's own rate (a GlobalIngress with a few targets should
/// not wait minutes; the SDK retries if another tool spends the same bucket), DeleteHealthCheck
/// below it; the bursts stay well under AWS's, since every tool in the account shares them.
fn default_operations() -> Vec<OperationRate> {
    vec![
        OperationRate {
            service: "route53".to_owned(),
            operation: "CreateHealthCheck".to_owned(),
            every: Duration::from_secs(2),
            burst: 10,
        },
        OperationRate {
            service: "route53".to_owned(),
            operation: "DeleteHealthCheck".to_owned(),
            every: Duration::from_millis(500),
            burst: 5,
        },
    ]
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CallLabels {
    pub service: String,
    pub operation: String,
    pub outcome: &'static str,
}

/// One bucket: an account (see [`HUB_ACCOUNT`]), a region (empty for Route 53) and a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct BucketLabels {
    pub account: String,
    pub region: String,
    pub service: String,
}

/// The budget and its metrics; clone freely, all clones share the buckets.
#[derive(Debug, Clone)]
pub struct Budget {
    config: BudgetConfig,
    /// Writes are sent only while this says so.
    fence: Leadership,
    buckets: Arc<Mutex<HashMap<BucketLabels, Arc<DefaultDirectRateLimiter>>>>,
    /// By (service, operation), built once from `config.operations`.
    operation_buckets: Arc<HashMap<(String, String), Arc<DefaultDirectRateLimiter>>>,
    /// AWS HTTP attempts by service, operation and outcome.
    pub calls: Family<CallLabels, Counter>,
    /// Answers that said to slow down (HTTP 429, Throttling, PriorRequestNotComplete), by bucket.
    pub throttles: Family<BucketLabels, Counter>,
    /// Seconds attempts waited for a token, by bucket.
    pub wait: Family<BucketLabels, Histogram>,
}

impl Budget {
    pub fn new(config: BudgetConfig, fence: Leadership) -> Self {
        let operation_buckets = config
            .operations
            .iter()
            .map(|op| {
                let burst = NonZeroU32::new(op.burst.max(1)).unwrap_or(NonZeroU32::MIN);
                let quota = Quota::with_period(op.every.max(Duration::from_millis(1)))
                    .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                    .allow_burst(burst);
                (
                    (op.service.clone(), op.operation.clone()),
                    Arc::new(RateLimiter::direct(quota)),
                )
            })
            .collect();
        Self {
            config,
            fence,
            buckets: Arc::default(),
            operation_buckets: Arc::new(operation_buckets),
            calls: Family::default(),
            throttles: Family::default(),
            wait: Family::new_with_constructor(|| {
                Histogram::new([0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
            }),
        }
    }

    /// Registers the budget's metrics.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "aws_calls",
            "AWS HTTP attempts by service, operation and outcome",
            self.calls.clone(),
        );
        registry.register(
            "aws_throttles",
            "AWS answers asking to slow down, by budget bucket (account, region, service)",
            self.throttles.clone(),
        );
        registry.register(
            "aws_budget_wait_seconds",
            "Time AWS attempts waited for a budget token, by bucket (account, region, service)",
            self.wait.clone(),
        );
    }

    fn bucket(&self, key: &BucketLabels) -> Arc<DefaultDirectRateLimiter> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets
            .entry(key.clone())
            .or_insert_with(|| {
                // The bucket's throttle count exists from its first call, at 0: a rate of it is
                // 0, not "no data", until AWS first throttles (dashboards and alerts read it).
                self.throttles.get_or_create(key).inc_by(0);
                let rate = if key.service == ROUTE53 {
                    self.config.route53
                } else {
                    self.config.default
                };
                let per_second = NonZeroU32::new(rate.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
                let burst = NonZeroU32::new(rate.burst.max(1)).unwrap_or(NonZeroU32::MIN);
                Arc::new(RateLimiter::direct(
                    Quota::per_second(per_second).allow_burst(burst),
                ))
            })
            .clone()
    }

    /// The bucket of one operation, when it has its own.
    fn operation_bucket(
        &self,
        service: &str,
        operation: &str,
    ) -> Option<Arc<DefaultDirectRateLimiter>> {
        self.operation_buckets
            .get(&(service.to_owned(), operation.to_owned()))
            .cloned()
    }

    /// An SDK HTTP client whose every attempt spends from this budget, in the buckets of
    /// `account` (see [`HUB_ACCOUNT`]).
    pub fn http_client_for(&self, account: &str) -> SharedHttpClient {
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        SharedHttpClient::new(BudgetedClient {
            inner,
            budget: self.clone(),
            account: account.to_owned(),
        })
    }

    /// The interceptor that names each operation for the HTTP client; add it to every service
    /// client built from a budgeted SDK configuration.
    pub fn interceptor(&self) -> OperationTag {
        OperationTag
    }
}

#[derive(Debug)]
struct BudgetedClient {
    inner: SharedHttpClient,
    budget: Budget,
    account: String,
}

impl HttpClient for BudgetedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(BudgetedConnector {
            inner: self.inner.http_connector(settings, components),
            budget: self.budget.clone(),
            account: self.account.clone(),
        })
    }
}

#[derive(Debug)]
struct BudgetedConnector {
    inner: SharedHttpConnector,
    budget: Budget,
    account: String,
}

const ROUTE53: &str = "route53";

/// The region and service of a SigV4-signed request:
/// `Credential=AKID/date/<region>/<service>/aws4_request`.
fn scope_of(request: &HttpRequest) -> (String, String) {
    let scope: Vec<&str> = request
        .headers()
        .get("authorization")
        .and_then(|auth| auth.split("Credential=").nth(1))
        .map(|cred| cred.split('/').collect())
        .unwrap_or_default();
    let part = |i: usize| scope.get(i).copied().unwrap_or("unknown").to_owned();
    (part(2), part(3))
}

impl HttpConnector for BudgetedConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        let (region, service) = scope_of(&request);
        let key = BucketLabels {
            account: self.account.clone(),
            // Route 53 is global: one bucket per account.
            region: if service == ROUTE53 {
                String::new()
            } else {
                region
            },
            service: service.clone(),
        };
        let operation = request
            .headers_mut()
            .remove(OPERATION_HEADER)
            .unwrap_or_else(|| "unknown".to_owned());
        let inner = self.inner.clone();
        let budget = self.budget.clone();
        HttpConnectorFuture::new(async move {
            let started = Instant::now();
            if let Some(bucket) = budget.operation_bucket(&service, &operation) {
                bucket.until_ready().await;
            }
            budget.bucket(&key).until_ready().await;
            budget
                .wait
                .get_or_create(&key)
                .observe(started.elapsed().as_secs_f64());
            let count = |outcome: &'static str| {
                budget
                    .calls
                    .get_or_create(&CallLabels {
                        service: service.clone(),
                        operation: operation.clone(),
                        outcome,
                    })
                    .inc();
            };
            // Last check before the write leaves the process (see the module docs).
            if is_write(&operation) && !budget.fence.is_leader() {
                count("not_leader");
                return Err(ConnectorError::user(Box::new(NotLeader)));
            }
            let result = match tokio::time::timeout(
                budget.config.attempt_timeout,
                inner.call(request),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => {
                    count("timeout");
                    return Err(ConnectorError::timeout(Box::new(AttemptTimeout)));
                }
            };
            let outcome = match &result {
                Ok(response) => {
                    let code = response.status().as_u16();
                    // Route 53 throttles with 400 + Throttling or PriorRequestNotComplete; the body
                    // is read later by the SDK, so count 429 and 400-with-throttle-header here and
                    // the rest by status class.
                    if code == 429
                        || response.headers().get("x-amzn-errortype").is_some_and(|t| {
                            t.contains("Throttling") || t.contains("PriorRequestNotComplete")
                        })
                    {
                        "throttled"
                    } else if code >= 500 {
                        "server_error"
                    } else if code >= 400 {
                        "client_error"
                    } else {
                        "success"
                    }
                }
                Err(e) if e.is_timeout() => "timeout",
                Err(_) => "network_error",
            };
            if outcome == "throttled" {
                budget.throttles.get_or_create(&key).inc();
            }
            count(outcome);
            result
        })
    }
}

/// Adds the operation's name to the request after signing (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct OperationTag;

impl Intercept for OperationTag {
    fn name(&self) -> &'static str {
        "globalingress::OperationTag"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(name) = cfg.load::<Metadata>().map(|m| m.name().to_owned()) {
            context
                .request_mut()
                .headers_mut()
                .insert(OPERATION_HEADER, name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_health_check_spends_a_bucket_of_its_own() {
        let budget = Budget::new(BudgetConfig::default(), Leadership::always());
        let create = budget
            .operation_bucket("route53", "CreateHealthCheck")
            .expect("a CreateHealthCheck bucket");
        // The burst, then nothing until the next token two seconds later.
        for _ in 0..10 {
            assert!(create.check().is_ok());
        }
        assert!(create.check().is_err());
        // Other operations only spend their service's bucket, which is still full.
        assert!(
            budget
                .operation_bucket("route53", "ListHealthChecks")
                .is_none()
        );
        assert!(
            budget
                .bucket(&bucket(HUB_ACCOUNT, "", "route53"))
                .check()
                .is_ok()
        );
    }

    fn bucket(account: &str, region: &str, service: &str) -> BucketLabels {
        BucketLabels {
            account: account.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
        }
    }

    #[test]
    fn each_account_region_and_service_has_a_bucket_of_its_own() {
        let budget = Budget::new(BudgetConfig::default(), Leadership::always());
        let hub = bucket(HUB_ACCOUNT, "eu-west-1", "elasticloadbalancing");
        // The default burst of 20, then nothing for a while.
        for _ in 0..20 {
            assert!(budget.bucket(&hub).check().is_ok());
        }
        assert!(budget.bucket(&hub).check().is_err());
        // Another account, region or service is not slowed by it.
        for other in [
            bucket("222222222222", "eu-west-1", "elasticloadbalancing"),
            bucket(HUB_ACCOUNT, "us-east-1", "elasticloadbalancing"),
            bucket(HUB_ACCOUNT, "eu-west-1", "ec2"),
        ] {
            assert!(budget.bucket(&other).check().is_ok(), "{other:?}");
        }
    }

    #[test]
    fn the_bucket_comes_from_the_signature_scope() {
        let mut request = HttpRequest::empty();
        request.headers_mut().insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20261201/eu-west-1/sts/aws4_request, \
             SignedHeaders=host, Signature=abc",
        );
        assert_eq!(scope_of(&request), ("eu-west-1".into(), "sts".into()));
        assert_eq!(
            scope_of(&HttpRequest::empty()),
            ("unknown".into(), "unknown".into())
        );
    }
}
