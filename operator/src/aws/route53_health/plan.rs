//! The pure core: what the health checks of an owner should be, compared with what the account
//! holds, as a list of [`Action`]s.
//!
//! Contract: no client, no clock. Input is the desired checks, every health check of the account
//! (ours and foreign, as listed) and the account's quota; output is data that can be printed and
//! tested. Ownership is decided by the `globalingress.io/owner` tag alone: a check without it, or
//! with another owner's, never appears in an `Update`, `Delete` or `Keep`.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

/// Tag naming the operator instance (the DNSZone's `spec.ownerId`) that owns a check.
pub const TAG_OWNER: &str = "globalingress.io/owner";
/// Tag naming the GlobalIngress (`namespace/name`) a check serves.
pub const TAG_RESOURCE: &str = "globalingress.io/resource";
/// Tag naming the target within that GlobalIngress.
pub const TAG_TARGET: &str = "globalingress.io/target";
/// The console's display name: `<resource>/<target>`.
pub const TAG_NAME: &str = "Name";

/// Route 53 accepts tag values of at most 256 characters.
const MAX_TAG_VALUE: usize = 256;
/// CloudWatch accepts alarm names of at most 255 characters.
const MAX_ALARM_NAME: usize = 255;
/// Route 53 failure thresholds are 1-10.
const FAILURE_THRESHOLD: std::ops::RangeInclusive<u8> = 1..=10;

/// What Route 53's checkers speak to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Http,
    Https,
    Tcp,
}

/// Seconds between two requests of one Route 53 checker: 10 ("fast", billed extra) or 30.
/// Route 53 cannot change it in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// This address; `host`, when set, is sent as the HTTP Host header and the TLS SNI name.
    Ip { ip: IpAddr, host: Option<String> },
    /// Whatever this name resolves to (from the checkers' regions), also the Host header and SNI.
    Name(String),
}

/// A check Route 53's checkers run themselves, from the internet (`Public`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlarmCheck {
    /// The alarm's region (the target's).
    pub region: String,
    pub alarm_name: String,
}

/// The settings of one health check, as written and as read back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// One health check the operator wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredCheck {
    /// The owner id (the DNSZone's `spec.ownerId`).
    pub owner: String,
    /// The GlobalIngress, `namespace/name`.
    pub resource: String,
    /// The target's name.
    pub target: String,
    pub config: CheckConfig,
}

impl DesiredCheck {
    /// The tags a check for this target carries.
    pub fn tags(&self) -> Vec<(String, String)> {
        vec![
            (TAG_OWNER.to_owned(), tag_value(&self.owner)),
            (TAG_RESOURCE.to_owned(), tag_value(&self.resource)),
            (TAG_TARGET.to_owned(), tag_value(&self.target)),
            (
                TAG_NAME.to_owned(),
                tag_value(&format!("{}/{}", self.resource, self.target)),
            ),
        ]
    }
}

/// Our tags on a check, as read back (tag values, see [`tag_value`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    pub owner: Option<String>,
    pub resource: Option<String>,
    pub target: Option<String>,
}

impl Tags {
    /// Picks our keys out of a check's tags.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut tags = Self::default();
        for (key, value) in pairs {
            let slot = match key {
                TAG_OWNER => &mut tags.owner,
                TAG_RESOURCE => &mut tags.resource,
                TAG_TARGET => &mut tags.target,
                _ => continue,
            };
            *slot = Some(value.to_owned());
        }
        tags
    }
}

/// One health check of the account, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingCheck {
    pub id: String,
    pub caller_reference: String,
    /// Route 53's `HealthCheckVersion`, sent back with an update so a concurrent change is not
    /// overwritten.
    pub version: i64,
    /// Normalized settings; `None` for a kind of check this operator never creates (calculated,
    /// string matching, recovery control, an alarm check without its alarm).
    pub config: Option<CheckConfig>,
    /// Settings the operator never changes are not at its values (inverted, disabled, SNI off,
    /// another insufficient-data status): an update puts them back.
    pub drifted: bool,
    pub tags: Tags,
}

/// Which checks a plan may delete.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// The reconcile of one GlobalIngress (`namespace/name`): only its own checks.
    Resource(&'a str),
    /// Garbage collection: every check of the owner whose (resource, target) is not in `live`.
    All { live: &'a HashSet<(String, String)> },
}

/// Why a create was refused before it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// Health checks in the account (every owner's) plus the ones this plan creates first.
    pub in_use: usize,
    pub quota: usize,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create {
        check: DesiredCheck,
    },
    /// A create the account's quota leaves no room for.
    Refuse {
        target: String,
        why: QuotaExceeded,
    },
    Update {
        id: String,
        version: i64,
        check: DesiredCheck,
    },
    Keep {
        id: String,
        target: String,
    },
    Delete {
        id: String,
        /// The check's resource and target tags (for logs).
        resource: Option<String>,
        target: Option<String>,
    },
}

/// How well an existing check serves a desired one: lower is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fit {
    Equal,
    Updatable,
    Replace,
}

fn fit(existing: &ExistingCheck, desired: &CheckConfig) -> Fit {
    match &existing.config {
        Some(config) if config == desired && !existing.drifted => Fit::Equal,
        Some(config) if config.updatable_to(desired) => Fit::Updatable,
        Some(_) | None => Fit::Replace,
    }
}

/// The plan for `owner`'s health checks.
///
/// Every desired check is matched with the owner's checks tagged with its resource and target:
/// the best fit is kept (equal), updated in place (same type and interval) or replaced (a new
/// check is created; the old one is deleted). Extra checks for the same target (a duplicate left
/// by a crash) are deleted. Checks of the owner that match nothing are deleted within `scope`.
/// A create is refused when the account (`existing`, every owner's checks) would hold more than
/// `quota`; planned deletions do not make room, since they run after the records stop pointing at
/// the deleted checks.
///
/// Desired checks of another owner, and repeats of a (resource, target), are ignored.
/// Actions come in a stable order: creates and refusals, updates, keeps, deletes.
pub fn plan(
    desired: &[DesiredCheck],
    existing: &[ExistingCheck],
    owner: &str,
    scope: Scope<'_>,
    quota: usize,
) -> Vec<Action> {
    let owner_tag = tag_value(owner);
    let mut ours: BTreeMap<(Option<String>, Option<String>), Vec<&ExistingCheck>> = BTreeMap::new();
    for check in existing
        .iter()
        .filter(|c| c.tags.owner.as_deref() == Some(&owner_tag))
    {
        ours.entry((check.tags.resource.clone(), check.tags.target.clone()))
            .or_default()
            .push(check);
    }

    let mut creates = Vec::new();
    let mut updates = Vec::new();
    let mut keeps = Vec::new();
    let mut deletes = Vec::new();
    let mut in_use = existing.len();
    let mut seen = HashSet::new();
    for check in desired {
        if check.owner != owner || !seen.insert((&check.resource, &check.target)) {
            continue;
        }
        let config = check.config.normalized();
        let key = (
            Some(tag_value(&check.resource)),
            Some(tag_value(&check.target)),
        );
        let mut candidates = ours.remove(&key).unwrap_or_default();
        candidates.sort_by_key(|c| (fit(c, &config), c.id.clone()));
        let mut rest = candidates.into_iter();
        let best = rest.next();
        let needs_create = match best.map(|b| (b, fit(b, &config))) {
            Some((b, Fit::Equal)) => {
                keeps.push(Action::Keep {
                    id: b.id.clone(),
                    target: check.target.clone(),
                });
                false
            }
            Some((b, Fit::Updatable)) => {
                updates.push(Action::Update {
                    id: b.id.clone(),
                    version: b.version,
                    check: DesiredCheck {
                        config: config.clone(),
                        ..check.clone()
                    },
                });
                false
            }
            Some((b, Fit::Replace)) => {
                deletes.push(b);
                true
            }
            None => true,
        };
        if needs_create && in_use < quota {
            in_use += 1;
            creates.push(Action::Create {
                check: DesiredCheck {
                    config,
                    ..check.clone()
                },
            });
        } else if needs_create {
            creates.push(Action::Refuse {
                target: check.target.clone(),
                why: QuotaExceeded { in_use, quota },
            });
        }
        deletes.extend(rest);
    }

    // The scope in tag values.
    enum Deletable {
        OfResource(String),
        NotLive(HashSet<(String, String)>),
    }
    let deletable = match scope {
        Scope::Resource(resource) => Deletable::OfResource(tag_value(resource)),
        Scope::All { live } => Deletable::NotLive(
            live.iter()
                .map(|(r, t)| (tag_value(r), tag_value(t)))
                .collect(),
        ),
    };
    for ((resource, target), checks) in ours {
        let goes = match (&deletable, resource, target) {
            (Deletable::OfResource(scoped), resource, _) => resource.as_ref() == Some(scoped),
            (Deletable::NotLive(live), Some(r), Some(t)) => !live.contains(&(r, t)),
            // Ours by its owner tag, but not telling what it serves: nothing can be using it.
            (Deletable::NotLive(_), _, _) => true,
        };
        if goes {
            deletes.extend(checks);
        }
    }
    deletes.sort_by(|a, b| a.id.cmp(&b.id));

    creates
        .into_iter()
        .chain(updates)
        .chain(keeps)
        .chain(deletes.into_iter().map(delete))
        .collect()
}

fn delete(check: &ExistingCheck) -> Action {
    Action::Delete {
        id: check.id.clone(),
        resource: check.tags.resource.clone(),
        target: check.tags.target.clone(),
    }
}

/// A tag value for `value`: itself when Route 53 accepts it, else a prefix and a hash of the
/// whole (a `namespace/name` can exceed 256 characters). Tags are always compared through this.
pub fn tag_value(value: &str) -> String {
    shorten(value, MAX_TAG_VALUE)
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

/// `value` when it has at most `max` characters, else its first characters, `~` and 16 hex
/// digits of its FNV-1a hash (stable across builds, unlike std's hasher).
fn shorten(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        return value.to_owned();
    }
    let mut out: String = value.chars().take(max - 17).collect();
    let _ = write!(out, "~{:016x}", fnv1a(value.as_bytes()));
    out
}

/// FNV-1a, 64 bits.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "hub-1";
    const RESOURCE: &str = "shop/web";

    fn http(port: u16) -> CheckConfig {
        CheckConfig::Endpoint(EndpointCheck {
            protocol: Protocol::Http,
            endpoint: Endpoint::Ip {
                ip: "192.0.2.10".parse().unwrap(),
                host: Some("web.example.com".to_owned()),
            },
            port,
            resource_path: Some("/healthz".to_owned()),
            request_interval: RequestInterval::Fast,
            failure_threshold: 3,
        })
    }

    fn desired(target: &str, config: CheckConfig) -> DesiredCheck {
        DesiredCheck {
            owner: OWNER.to_owned(),
            resource: RESOURCE.to_owned(),
            target: target.to_owned(),
            config,
        }
    }

    fn existing(id: &str, owner: Option<&str>, target: &str, config: CheckConfig) -> ExistingCheck {
        ExistingCheck {
            id: id.to_owned(),
            caller_reference: format!("ref-{id}"),
            version: 4,
            config: Some(config.normalized()),
            drifted: false,
            tags: Tags {
                owner: owner.map(str::to_owned),
                resource: Some(RESOURCE.to_owned()),
                target: Some(target.to_owned()),
            },
        }
    }

    fn plan_one(desired: &[DesiredCheck], existing: &[ExistingCheck]) -> Vec<Action> {
        plan(desired, existing, OWNER, Scope::Resource(RESOURCE), 200)
    }

    #[test]
    fn a_missing_check_is_created_with_normalized_settings() {
        let mut config = http(80);
        if let CheckConfig::Endpoint(check) = &mut config {
            check.endpoint = Endpoint::Name("Web.Example.COM.".to_owned());
            check.resource_path = None;
            check.failure_threshold = 0;
        }
        let actions = plan_one(&[desired("eu", config)], &[]);
        let [Action::Create { check }] = actions.as_slice() else {
            panic!("{actions:?}");
        };
        let CheckConfig::Endpoint(endpoint) = &check.config else {
            panic!("{check:?}");
        };
        assert_eq!(endpoint.endpoint, Endpoint::Name("web.example.com".into()));
        assert_eq!(endpoint.resource_path.as_deref(), Some("/"));
        assert_eq!(endpoint.failure_threshold, 1);
    }

    #[test]
    fn an_equal_check_is_kept() {
        let actions = plan_one(
            &[desired("eu", http(80))],
            &[existing("hc1", Some(OWNER), "eu", http(80))],
        );
        assert_eq!(
            actions,
            vec![Action::Keep {
                id: "hc1".into(),
                target: "eu".into()
            }]
        );
    }

    #[test]
    fn port_path_and_threshold_changes_are_updated_in_place() {
        let mut changed = http(8080);
        if let CheckConfig::Endpoint(check) = &mut changed {
            check.resource_path = Some("/ready".into());
            check.failure_threshold = 5;
        }
        let actions = plan_one(
            &[desired("eu", changed.clone())],
            &[existing("hc1", Some(OWNER), "eu", http(80))],
        );
        assert_eq!(
            actions,
            vec![Action::Update {
                id: "hc1".into(),
                version: 4,
                check: desired("eu", changed),
            }]
        );
    }

    #[test]
    fn a_drifted_check_is_updated_in_place() {
        let mut drifted = existing("hc1", Some(OWNER), "eu", http(80));
        drifted.drifted = true;
        let actions = plan_one(&[desired("eu", http(80))], &[drifted]);
        assert!(
            matches!(actions.as_slice(), [Action::Update { id, .. }] if id == "hc1"),
            "{actions:?}"
        );
    }

    #[test]
    fn a_protocol_or_interval_change_replaces_the_check() {
        let mut tcp = http(80);
        if let CheckConfig::Endpoint(check) = &mut tcp {
            check.protocol = Protocol::Tcp;
        }
        let mut slow = http(80);
        if let CheckConfig::Endpoint(check) = &mut slow {
            check.request_interval = RequestInterval::Standard;
        }
        let private = CheckConfig::private("eu-west-1", RESOURCE, "eu");
        for new in [tcp, slow, private] {
            let actions = plan_one(
                &[desired("eu", new.clone())],
                &[existing("hc1", Some(OWNER), "eu", http(80))],
            );
            assert_eq!(
                actions,
                vec![
                    Action::Create {
                        check: desired("eu", new.normalized())
                    },
                    Action::Delete {
                        id: "hc1".into(),
                        resource: Some(RESOURCE.into()),
                        target: Some("eu".into())
                    },
                ]
            );
        }
    }

    #[test]
    fn a_duplicate_for_one_target_is_deleted_and_the_best_fit_kept() {
        let actions = plan_one(
            &[desired("eu", http(81))],
            &[
                existing("hc1", Some(OWNER), "eu", http(80)),
                existing("hc2", Some(OWNER), "eu", http(81)),
            ],
        );
        assert_eq!(
            actions,
            vec![
                Action::Keep {
                    id: "hc2".into(),
                    target: "eu".into()
                },
                Action::Delete {
                    id: "hc1".into(),
                    resource: Some(RESOURCE.into()),
                    target: Some("eu".into())
                },
            ]
        );
    }

    #[test]
    fn foreign_checks_are_never_touched() {
        let mut untagged = existing("untagged", None, "eu", http(80));
        untagged.tags = Tags::default();
        let existing = [
            existing("other", Some("hub-2"), "eu", http(80)),
            existing("other-gone", Some("hub-2"), "gone", http(80)),
            untagged,
        ];
        // The desired check gets a new one of its own; the foreign ones appear nowhere.
        let actions = plan_one(&[desired("eu", http(80))], &existing);
        assert_eq!(
            actions,
            vec![Action::Create {
                check: desired("eu", http(80).normalized())
            }]
        );
        let live = HashSet::new();
        assert_eq!(
            plan(&[], &existing, OWNER, Scope::All { live: &live }, 200),
            vec![]
        );
    }

    #[test]
    fn a_removed_target_is_deleted_within_its_resource_only() {
        let mut elsewhere = existing("hc3", Some(OWNER), "eu", http(80));
        elsewhere.tags.resource = Some("shop/other".into());
        let actions = plan_one(
            &[desired("eu", http(80))],
            &[
                existing("hc1", Some(OWNER), "eu", http(80)),
                existing("hc2", Some(OWNER), "us", http(80)),
                elsewhere,
            ],
        );
        assert_eq!(
            actions,
            vec![
                Action::Keep {
                    id: "hc1".into(),
                    target: "eu".into()
                },
                Action::Delete {
                    id: "hc2".into(),
                    resource: Some(RESOURCE.into()),
                    target: Some("us".into())
                },
            ]
        );
    }

    #[test]
    fn garbage_collection_deletes_what_is_not_live() {
        let mut orphan = existing("orphan", Some(OWNER), "eu", http(80));
        orphan.tags.resource = Some("shop/deleted".into());
        let mut half_tagged = existing("half", Some(OWNER), "eu", http(80));
        half_tagged.tags.resource = None;
        let existing = [
            existing("live", Some(OWNER), "eu", http(80)),
            existing("gone-target", Some(OWNER), "us", http(80)),
            orphan,
            half_tagged,
            existing("foreign", Some("hub-2"), "us", http(80)),
        ];
        let live = HashSet::from([(RESOURCE.to_owned(), "eu".to_owned())]);
        let deleted: Vec<_> = plan(&[], &existing, OWNER, Scope::All { live: &live }, 200)
            .into_iter()
            .map(|a| match a {
                Action::Delete { id, .. } => id,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(deleted, vec!["gone-target", "half", "orphan"]);
    }

    #[test]
    fn creates_beyond_the_quota_are_refused() {
        let foreign = [
            existing("f1", Some("hub-2"), "eu", http(80)),
            existing("f2", None, "eu", http(80)),
        ];
        let actions = plan(
            &[
                desired("a", http(80)),
                desired("b", http(80)),
                desired("c", http(80)),
            ],
            &foreign,
            OWNER,
            Scope::Resource(RESOURCE),
            3,
        );
        assert_eq!(
            actions,
            vec![
                Action::Create {
                    check: desired("a", http(80).normalized())
                },
                Action::Refuse {
                    target: "b".into(),
                    why: QuotaExceeded {
                        in_use: 3,
                        quota: 3
                    }
                },
                Action::Refuse {
                    target: "c".into(),
                    why: QuotaExceeded {
                        in_use: 3,
                        quota: 3
                    }
                },
            ]
        );
        // Keeping and updating need no room.
        let full = [
            existing("f1", Some("hub-2"), "eu", http(80)),
            existing("hc1", Some(OWNER), "a", http(80)),
        ];
        let actions = plan(
            &[desired("a", http(81))],
            &full,
            OWNER,
            Scope::Resource(RESOURCE),
            2,
        );
        assert!(
            matches!(actions.as_slice(), [Action::Update { .. }]),
            "{actions:?}"
        );
    }

    #[test]
    fn long_names_are_shortened_stably() {
        let long = format!("ns/{}", "x".repeat(300));
        let value = tag_value(&long);
        assert_eq!(value.chars().count(), 256);
        assert_eq!(value, tag_value(&long));
        assert_ne!(value, tag_value(&format!("{long}y")));
        assert_eq!(tag_value("shop/web"), "shop/web");
    }

    #[test]
    fn alarm_names_are_sanitized() {
        assert_eq!(
            alarm_name("shop/web", "eu-1"),
            "globalingress-shop-web-eu-1"
        );
        assert_eq!(alarm_name(&"n".repeat(400), "t").len(), 255);
    }

    #[test]
    fn the_request_interval_follows_the_probe_interval() {
        assert_eq!(
            RequestInterval::for_probe_interval(Duration::from_secs(5)),
            RequestInterval::Fast
        );
        assert_eq!(
            RequestInterval::for_probe_interval(Duration::from_secs(30)),
            RequestInterval::Standard
        );
    }
}
