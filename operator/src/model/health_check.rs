//! Route 53 health checks as the plan wants them and as the account holds them: the settings
//! one check has (probing an endpoint, or following a CloudWatch alarm), in the normalized form
//! Route 53 stores, so desired and listed checks compare equal when nothing changed.

use std::net::IpAddr;
use std::time::Duration;

use super::ownership::shorten;

/// CloudWatch accepts alarm names of at most 255 characters.
const MAX_ALARM_NAME: usize = 255;
/// Route 53 failure thresholds are 1-10.
const FAILURE_THRESHOLD: std::ops::RangeInclusive<u8> = 1..=10;

/// What Route 53's checkers speak to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Protocol {
    Http,
    Https,
    Tcp,
}

/// Seconds between two requests of one Route 53 checker: 10 ("fast", billed extra) or 30.
/// Route 53 cannot change it in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RequestInterval {
    Fast,
    Standard,
}

impl RequestInterval {
    /// The interval matching the operator's own probes: `Fast` when they run more often than
    /// every 30 seconds, so Route 53 notices a failure about as soon as the operator does.
    pub fn for_probe_interval(probe: Duration) -> Self {
        if probe < Duration::from_secs(30) {
            Self::Fast
        } else {
            Self::Standard
        }
    }

    /// The API value.
    pub fn seconds(self) -> i32 {
        match self {
            Self::Fast => 10,
            Self::Standard => 30,
        }
    }

    /// From the API value; other values are not ours.
    pub fn from_seconds(seconds: i32) -> Option<Self> {
        match seconds {
            10 => Some(Self::Fast),
            30 => Some(Self::Standard),
            _ => None,
        }
    }
}

/// Where Route 53's checkers connect.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Endpoint {
    /// This address; `host`, when set, is sent as the HTTP Host header and the TLS SNI name.
    Ip { ip: IpAddr, host: Option<String> },
    /// Whatever this name resolves to (from the checkers' regions), also the Host header and SNI.
    Name(String),
}

/// A check Route 53's checkers run themselves, from the internet (`Public`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointCheck {
    pub protocol: Protocol,
    pub endpoint: Endpoint,
    pub port: u16,
    /// Path requested by HTTP(S) checks (default `/`); ignored for TCP.
    pub resource_path: Option<String>,
    pub request_interval: RequestInterval,
    /// Consecutive failures (or successes) that flip the status, 1-10.
    pub failure_threshold: u8,
}

/// A check that follows a CloudWatch alarm (`Private`): Route 53's checkers cannot reach an
/// internal load balancer, so the alarm (on the load balancer's `UnHealthyHostCount`, created with
/// the load balancer) carries the verdict. With no data the check keeps its last status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmCheck {
    /// The alarm's region (the target's).
    pub region: String,
    pub alarm_name: String,
}

/// The settings of one health check, as written and as read back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CheckConfig {
    Endpoint(EndpointCheck),
    Alarm(AlarmCheck),
}

impl CheckConfig {
    /// A `Private` check for `target` of `resource`, following the alarm [`alarm_name`] names in
    /// `region`.
    pub fn private(region: &str, resource: &str, target: &str) -> Self {
        Self::Alarm(AlarmCheck {
            region: region.to_owned(),
            alarm_name: alarm_name(resource, target),
        })
    }

    /// The form Route 53 stores: names lower-case without the final dot, a path for every
    /// HTTP(S) check, the threshold within 1-10. Desired and observed settings are compared in
    /// this form.
    pub fn normalized(&self) -> Self {
        match self {
            Self::Endpoint(check) => {
                let endpoint = match &check.endpoint {
                    Endpoint::Ip { ip, host } => Endpoint::Ip {
                        ip: *ip,
                        host: host.as_deref().map(normalize_name),
                    },
                    Endpoint::Name(name) => Endpoint::Name(normalize_name(name)),
                };
                let resource_path = match check.protocol {
                    Protocol::Tcp => None,
                    Protocol::Http | Protocol::Https => {
                        let path = check.resource_path.as_deref().unwrap_or("/");
                        Some(if path.starts_with('/') {
                            path.to_owned()
                        } else {
                            format!("/{path}")
                        })
                    }
                };
                Self::Endpoint(EndpointCheck {
                    protocol: check.protocol,
                    endpoint,
                    port: check.port,
                    resource_path,
                    request_interval: check.request_interval,
                    failure_threshold: check
                        .failure_threshold
                        .clamp(*FAILURE_THRESHOLD.start(), *FAILURE_THRESHOLD.end()),
                })
            }
            Self::Alarm(alarm) => Self::Alarm(alarm.clone()),
        }
    }

    /// Whether UpdateHealthCheck can turn `self` into `to`. Route 53 cannot change a check's type
    /// (protocol, or endpoint versus alarm) or its request interval; switching between an
    /// address and a name is done by replacement too, which is always safe.
    pub fn updatable_to(&self, to: &Self) -> bool {
        match (self, to) {
            (Self::Endpoint(from), Self::Endpoint(to)) => {
                from.protocol == to.protocol
                    && from.request_interval == to.request_interval
                    && matches!(
                        (&from.endpoint, &to.endpoint),
                        (Endpoint::Ip { .. }, Endpoint::Ip { .. })
                            | (Endpoint::Name(_), Endpoint::Name(_))
                    )
            }
            (Self::Alarm(_), Self::Alarm(_)) => true,
            (Self::Endpoint(_), Self::Alarm(_)) | (Self::Alarm(_), Self::Endpoint(_)) => false,
        }
    }
}

fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The CloudWatch alarm a `Private` check follows: `globalingress-<namespace>-<name>-<target>`,
/// with characters outside `[A-Za-z0-9._-]` replaced. The load balancer code creates the alarm
/// under this name in the target's region.
///
/// Two hubs (owner ids) in one account serving a GlobalIngress of the same namespace and name
/// would share the alarm; the alarm describes the load balancer, so sharing it is harmless as
/// long as both describe the same one.
pub fn alarm_name(resource: &str, target: &str) -> String {
    let raw = format!("globalingress-{resource}-{target}");
    let sanitized: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    shorten(&sanitized, MAX_ALARM_NAME)
}
