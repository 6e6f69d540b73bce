//! Elastic Load Balancing (v2) vocabulary: the names, target health checks and target
//! registrations of the load balancers the hub provisions, as pure data and rules.
//!
//! - **Names** are deterministic and within ELBv2's rules (at most 32 characters of
//!   `[A-Za-z0-9-]`, no hyphen at either end, a load balancer's not starting with
//!   `internal-`): `gi-<readable part>-<8 hex>`, the hex a hash of everything that cannot change
//!   in place (owner, GlobalIngress, target, and for a load balancer its type and scheme; for a
//!   target group also its protocol, port and target type). A change of any of those is a new
//!   name, so the replacement can be created beside the old one before the old one goes.
//!   Names are for people and uniqueness only: resources are found by their tags.
//! - **Target health checks** come from `spec.healthCheck`, clamped to what ELBv2 accepts; each
//!   clamp is said in words for the status.
//! - **Registrations** are diffed against what DescribeTargetHealth reports.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::ownership::hash64;

/// ELBv2's longest load balancer and target group name.
pub const MAX_NAME: usize = 32;

/// Application or Network load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Application,
    Network,
}

impl Kind {
    /// The ELBv2 `Type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::Network => "network",
        }
    }
}

/// Reachable from the VPC only, or from the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    Internal,
    InternetFacing,
}

impl Scheme {
    /// The ELBv2 `Scheme` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::InternetFacing => "internet-facing",
        }
    }
}

/// What a target group sends traffic to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetKind {
    /// Pod IPs from the backend's EndpointSlices, on the target port.
    Ip,
    /// The spoke's nodes (EC2 instance ids from `spec.providerID`), on the NodePort.
    Instance,
}

impl TargetKind {
    /// The ELBv2 `TargetType` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Instance => "instance",
        }
    }
}

/// Listener, target group and health-check protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Http,
    Https,
    Tcp,
    Tls,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "HTTP",
            Self::Https => "HTTPS",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }
}

/// What a load balancer's identity is made of: a change of any of it replaces the load
/// balancer (ELBv2 cannot change type or scheme in place).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoadBalancerKey<'a> {
    /// The hub (`DNSZone.spec.ownerId`).
    pub owner: &'a str,
    /// `namespace/name` of the GlobalIngress.
    pub global_ingress: &'a str,
    pub target: &'a str,
    pub kind: Kind,
    pub scheme: Scheme,
}

/// The load balancer's name.
pub fn load_balancer_name(key: &LoadBalancerKey<'_>) -> String {
    let identity = format!(
        "lb\0{}\0{}\0{}\0{}\0{}",
        key.owner,
        key.global_ingress,
        key.target,
        key.kind.as_str(),
        key.scheme.as_str()
    );
    name(&readable(key), &identity)
}

/// A target group's name: one per (load balancer, protocol, port, target kind), since none of
/// these can change in place.
pub fn target_group_name(
    key: &LoadBalancerKey<'_>,
    protocol: Protocol,
    port: u16,
    targets: TargetKind,
) -> String {
    let identity = format!(
        "tg\0{}\0{}\0{}\0{}\0{}\0{}\0{port}\0{}",
        key.owner,
        key.global_ingress,
        key.target,
        key.kind.as_str(),
        key.scheme.as_str(),
        protocol.as_str(),
        targets.as_str()
    );
    name(&format!("{}-{port}", readable(key)), &identity)
}

/// The part of a name people read: the GlobalIngress's name and the target's.
fn readable(key: &LoadBalancerKey<'_>) -> String {
    let gi = key
        .global_ingress
        .rsplit_once('/')
        .map_or(key.global_ingress, |(_, name)| name);
    format!("{gi}-{}", key.target)
}

/// `gi-<readable>-<8 hex of identity>`, within [`MAX_NAME`]: the readable part keeps only
/// `[a-z0-9-]` (others become `-`, runs of `-` one), cut to fit.
fn name(readable: &str, identity: &str) -> String {
    let mut cleaned = String::new();
    for c in readable.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if c == '-' && (cleaned.is_empty() || cleaned.ends_with('-')) {
            continue;
        }
        cleaned.push(c);
    }
    // "gi-" + readable + "-" + 8 hex.
    let room = MAX_NAME - 3 - 1 - 8;
    let mut cut: String = cleaned.chars().take(room).collect();
    while cut.ends_with('-') {
        cut.pop();
    }
    let mut out = String::from("gi-");
    if !cut.is_empty() {
        out.push_str(&cut);
        out.push('-');
    }
    // The low 32 bits of the 64-bit hash: 8 hex digits.
    let _ = write!(out, "{:08x}", hash64(identity.as_bytes()) & 0xffff_ffff);
    out
}

/// What `spec.healthCheck` asks of the load balancer's target health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedHealthCheck {
    /// `None`: the spec probes nothing (protocol `None`); the target group checks TCP.
    pub protocol: Option<Protocol>,
    pub path: String,
    /// `None`: the traffic port.
    pub port: Option<u16>,
    pub interval_seconds: u64,
    pub timeout_seconds: u64,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    pub expected_status: Vec<u16>,
}

/// A target group's health check, as ELBv2 takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealthCheck {
    pub protocol: Protocol,
    /// HTTP(S) only.
    pub path: Option<String>,
    /// `traffic-port` or a port number.
    pub port: String,
    pub interval_seconds: i32,
    pub timeout_seconds: i32,
    pub healthy_threshold: i32,
    pub unhealthy_threshold: i32,
    /// HTTP codes (`200,301` or `200-399`), HTTP(S) only.
    pub matcher: Option<String>,
}

/// The health check and what had to change to fit ELBv2, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clamped {
    pub check: TargetHealthCheck,
    pub notes: Vec<String>,
}

/// ELBv2's bounds (2026): interval 5–300 s, timeout 2–120 s and shorter than the interval,
/// thresholds 2–10, HTTP codes 200–499 for ALB target groups and 200–599 for NLB ones.
const INTERVAL: (u64, u64) = (5, 300);
const TIMEOUT: (u64, u64) = (2, 120);
const THRESHOLD: (u64, u64) = (2, 10);

/// The target group health check for `wanted` on a load balancer of `kind`.
pub fn target_health_check(kind: Kind, wanted: &WantedHealthCheck) -> Clamped {
    let mut notes = Vec::new();
    let protocol = match (kind, wanted.protocol) {
        (_, Some(Protocol::Http)) => Protocol::Http,
        (_, Some(Protocol::Https)) => Protocol::Https,
        // An ALB target group checks over HTTP at least.
        (Kind::Application, Some(Protocol::Tcp | Protocol::Tls) | None) => {
            notes.push("ALB target groups check over HTTP: health check protocol HTTP".to_owned());
            Protocol::Http
        }
        (Kind::Network, Some(Protocol::Tcp | Protocol::Tls) | None) => Protocol::Tcp,
    };
    let interval = bounded(
        "interval",
        wanted.interval_seconds,
        INTERVAL,
        "s",
        &mut notes,
    );
    let mut timeout = bounded("timeout", wanted.timeout_seconds, TIMEOUT, "s", &mut notes);
    if timeout >= interval {
        let shorter = interval.saturating_sub(1).max(TIMEOUT.0);
        notes.push(format!(
            "timeout {timeout}s set to {shorter}s: ELBv2 needs it shorter than the interval"
        ));
        timeout = shorter;
    }
    let healthy = bounded(
        "healthyThreshold",
        u64::from(wanted.healthy_threshold),
        THRESHOLD,
        "",
        &mut notes,
    );
    let unhealthy = bounded(
        "unhealthyThreshold",
        u64::from(wanted.unhealthy_threshold),
        THRESHOLD,
        "",
        &mut notes,
    );
    let http = matches!(protocol, Protocol::Http | Protocol::Https);
    let matcher = http.then(|| matcher(kind, &wanted.expected_status, &mut notes));
    let to_i32 = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
    Clamped {
        check: TargetHealthCheck {
            protocol,
            path: http.then(|| wanted.path.clone()),
            port: wanted
                .port
                .map_or_else(|| "traffic-port".to_owned(), |p| p.to_string()),
            interval_seconds: to_i32(interval),
            timeout_seconds: to_i32(timeout),
            healthy_threshold: to_i32(healthy),
            unhealthy_threshold: to_i32(unhealthy),
            matcher,
        },
        notes,
    }
}

/// `value` within ELBv2's `(min, max)`; a clamp is said in `notes`.
fn bounded(
    what: &str,
    value: u64,
    (min, max): (u64, u64),
    unit: &str,
    notes: &mut Vec<String>,
) -> u64 {
    let out = value.clamp(min, max);
    if out != value {
        let bound = if value < min { "minimum" } else { "maximum" };
        notes.push(format!(
            "{what} {value}{unit} set to ELBv2's {bound} {out}{unit}"
        ));
    }
    out
}

/// The HTTP codes of a matcher: the expected codes ELBv2 accepts for `kind`, comma-separated;
/// `200-399` when none is left.
fn matcher(kind: Kind, expected: &[u16], notes: &mut Vec<String>) -> String {
    let max = match kind {
        Kind::Application => 499,
        Kind::Network => 599,
    };
    let codes: BTreeSet<u16> = expected.iter().copied().collect();
    let (kept, dropped): (Vec<u16>, Vec<u16>) =
        codes.into_iter().partition(|c| (200..=max).contains(c));
    if !dropped.is_empty() {
        let list: Vec<String> = dropped.iter().map(u16::to_string).collect();
        notes.push(format!(
            "status codes {} left out of the target health check (ELBv2 takes 200-{max} here)",
            list.join(",")
        ));
    }
    if kept.is_empty() {
        notes.push("the target health check expects 200-399".to_owned());
        return "200-399".to_owned();
    }
    let list: Vec<String> = kept.iter().map(u16::to_string).collect();
    list.join(",")
}

/// One registered (or wanted) target: an IP or instance id and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Registration {
    pub id: String,
    pub port: u16,
}

/// A target's state as DescribeTargetHealth reports it, as far as the diff cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// Registered and not on its way out (initial, healthy, unhealthy, unused, unavailable).
    Serving,
    /// Deregistration in progress (connection draining).
    Draining,
}

/// What to register and deregister so the target group holds exactly `wanted`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrationDiff {
    pub register: Vec<Registration>,
    pub deregister: Vec<Registration>,
}

impl RegistrationDiff {
    pub fn is_empty(&self) -> bool {
        self.register.is_empty() && self.deregister.is_empty()
    }
}

/// The diff from `registered` to `wanted`: a wanted target that is draining is registered
/// again; one draining and not wanted is left to finish. The caller leaves terminating
/// endpoints out of `wanted`, so they are deregistered before they go. Both lists sorted.
pub fn registration_diff(
    wanted: &BTreeSet<Registration>,
    registered: &[(Registration, Registered)],
) -> RegistrationDiff {
    let serving: BTreeSet<&Registration> = registered
        .iter()
        .filter(|(_, state)| *state == Registered::Serving)
        .map(|(r, _)| r)
        .collect();
    RegistrationDiff {
        register: wanted
            .iter()
            .filter(|r| !serving.contains(r))
            .cloned()
            .collect(),
        deregister: serving
            .into_iter()
            .filter(|r| !wanted.contains(*r))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(gi: &'a str, target: &'a str) -> LoadBalancerKey<'a> {
        LoadBalancerKey {
            owner: "hub-1",
            global_ingress: gi,
            target,
            kind: Kind::Network,
            scheme: Scheme::Internal,
        }
    }

    fn valid(name: &str) -> bool {
        name.len() <= MAX_NAME
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-')
            && !name.starts_with("internal-")
    }

    #[test]
    fn names_are_readable_deterministic_and_within_elbv2s_rules() {
        let k = key("shop/web", "eu");
        let lb = load_balancer_name(&k);
        assert!(lb.starts_with("gi-web-eu-"), "{lb}");
        assert_eq!(lb, load_balancer_name(&k));
        assert!(valid(&lb), "{lb}");
        let long = key(
            "a-very-long-namespace/an.extremely_long.global-ingress.name",
            "europe-west-primary",
        );
        for name in [
            load_balancer_name(&long),
            target_group_name(&long, Protocol::Tcp, 65535, TargetKind::Ip),
            load_balancer_name(&key("ns/---", "-")),
            load_balancer_name(&key("ns/internal", "x")),
        ] {
            assert!(valid(&name), "{name}");
        }
        assert!(load_balancer_name(&key("ns/---", "-")).starts_with("gi-"));
    }

    #[test]
    fn what_cannot_change_in_place_changes_the_name() {
        let k = key("shop/web", "eu");
        let lb = load_balancer_name(&k);
        let mut other = k.clone();
        other.scheme = Scheme::InternetFacing;
        assert_ne!(load_balancer_name(&other), lb);
        other = k.clone();
        other.kind = Kind::Application;
        assert_ne!(load_balancer_name(&other), lb);
        other = k.clone();
        other.owner = "hub-2";
        assert_ne!(load_balancer_name(&other), lb);
        // Same readable part, different GlobalIngress: different names.
        assert_ne!(
            load_balancer_name(&key("a/web", "eu")),
            load_balancer_name(&key("b/web", "eu"))
        );
        let tg = target_group_name(&k, Protocol::Tcp, 8080, TargetKind::Ip);
        assert!(tg.starts_with("gi-web-eu-8080-"), "{tg}");
        assert_ne!(
            tg,
            target_group_name(&k, Protocol::Tcp, 8081, TargetKind::Ip)
        );
        assert_ne!(
            tg,
            target_group_name(&k, Protocol::Tcp, 8080, TargetKind::Instance)
        );
        assert_ne!(
            tg,
            target_group_name(&k, Protocol::Tls, 8080, TargetKind::Ip)
        );
    }

    fn wanted() -> WantedHealthCheck {
        WantedHealthCheck {
            protocol: Some(Protocol::Http),
            path: "/healthz".to_owned(),
            port: None,
            interval_seconds: 10,
            timeout_seconds: 5,
            healthy_threshold: 3,
            unhealthy_threshold: 3,
            expected_status: vec![200],
        }
    }

    #[test]
    fn a_health_check_within_bounds_is_taken_as_it_is() {
        let c = target_health_check(Kind::Application, &wanted());
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        assert_eq!(
            c.check,
            TargetHealthCheck {
                protocol: Protocol::Http,
                path: Some("/healthz".to_owned()),
                port: "traffic-port".to_owned(),
                interval_seconds: 10,
                timeout_seconds: 5,
                healthy_threshold: 3,
                unhealthy_threshold: 3,
                matcher: Some("200".to_owned()),
            }
        );
    }

    #[test]
    fn out_of_bounds_settings_are_clamped_and_said() {
        let mut w = wanted();
        w.interval_seconds = 1;
        w.timeout_seconds = 1;
        w.healthy_threshold = 1;
        w.unhealthy_threshold = 12;
        w.expected_status = vec![204, 200, 503];
        w.port = Some(8081);
        let c = target_health_check(Kind::Application, &w);
        assert_eq!(c.check.interval_seconds, 5);
        assert_eq!(c.check.timeout_seconds, 2);
        assert_eq!(c.check.healthy_threshold, 2);
        assert_eq!(c.check.unhealthy_threshold, 10);
        assert_eq!(c.check.matcher.as_deref(), Some("200,204"));
        assert_eq!(c.check.port, "8081");
        assert_eq!(
            c.notes,
            [
                "interval 1s set to ELBv2's minimum 5s",
                "timeout 1s set to ELBv2's minimum 2s",
                "healthyThreshold 1 set to ELBv2's minimum 2",
                "unhealthyThreshold 12 set to ELBv2's maximum 10",
                "status codes 503 left out of the target health check (ELBv2 takes 200-499 here)",
            ]
        );
        // NLB target groups take 5xx codes.
        let nlb = target_health_check(Kind::Network, &w);
        assert_eq!(nlb.check.matcher.as_deref(), Some("200,204,503"));
        // A timeout as long as the interval is made shorter.
        w.interval_seconds = 5;
        w.timeout_seconds = 5;
        let c = target_health_check(Kind::Network, &w);
        assert_eq!(c.check.timeout_seconds, 4);
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("shorter than the interval"))
        );
    }

    #[test]
    fn protocols_follow_the_load_balancer_kind() {
        let mut w = wanted();
        w.protocol = None;
        let nlb = target_health_check(Kind::Network, &w);
        assert_eq!(nlb.check.protocol, Protocol::Tcp);
        assert_eq!(nlb.check.path, None);
        assert_eq!(nlb.check.matcher, None);
        let alb = target_health_check(Kind::Application, &w);
        assert_eq!(alb.check.protocol, Protocol::Http);
        assert_eq!(alb.check.path.as_deref(), Some("/healthz"));
        assert!(alb.notes[0].contains("ALB target groups check over HTTP"));
        w.protocol = Some(Protocol::Https);
        w.expected_status = vec![100];
        let c = target_health_check(Kind::Network, &w);
        assert_eq!(c.check.protocol, Protocol::Https);
        assert_eq!(c.check.matcher.as_deref(), Some("200-399"));
    }

    fn reg(id: &str, port: u16) -> Registration {
        Registration {
            id: id.to_owned(),
            port,
        }
    }

    #[test]
    fn registrations_follow_the_wanted_set() {
        let wanted: BTreeSet<_> = [
            reg("10.0.0.1", 80),
            reg("10.0.0.2", 80),
            reg("10.0.0.4", 80),
        ]
        .into_iter()
        .collect();
        let registered = [
            (reg("10.0.0.1", 80), Registered::Serving),
            // Same IP on another port: a different target.
            (reg("10.0.0.2", 81), Registered::Serving),
            (reg("10.0.0.3", 80), Registered::Serving),
            // Draining but wanted again: registered again.
            (reg("10.0.0.4", 80), Registered::Draining),
            // Draining and not wanted: left to finish.
            (reg("10.0.0.5", 80), Registered::Draining),
        ];
        let d = registration_diff(&wanted, &registered);
        assert_eq!(d.register, [reg("10.0.0.2", 80), reg("10.0.0.4", 80)]);
        assert_eq!(d.deregister, [reg("10.0.0.2", 81), reg("10.0.0.3", 80)]);
        // In sync: nothing to do.
        let synced: Vec<_> = wanted
            .iter()
            .map(|r| (r.clone(), Registered::Serving))
            .collect();
        assert!(registration_diff(&wanted, &synced).is_empty());
    }
}
