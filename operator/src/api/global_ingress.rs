//! `GlobalIngress`: one global service, its hostnames, where its traffic may go and how.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::geo;
pub use crate::model::dns::Continent;

/// Pattern of a hostname: lower-case DNS labels, a wildcard allowed only as the first label.
pub const HOSTNAME_PATTERN: &str =
    r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$";
/// Pattern of a duration as Kubernetes writes them (`500ms`, `5s`, `1m30s`).
pub const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h))+$";
/// Pattern of an AWS region name (`eu-west-1`, `us-gov-west-1`, `cn-north-1`).
pub const REGION_PATTERN: &str = r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$";

/// Spec of a GlobalIngress: one global service.
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "globalingress.io",
    doc = "One global service: hostnames, the targets (regions) traffic may go to, and how it is routed and health-checked.",
    version = "v1alpha1",
    kind = "GlobalIngress",
    plural = "globalingresses",
    shortname = "gi",
    namespaced,
    status = "GlobalIngressStatus",
    cel,
    printcolumn = r#"{"name":"Hostnames","type":"string","jsonPath":".spec.hostnames"}"#,
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".spec.routing.policy"}"#,
    printcolumn = r#"{"name":"Active","type":"string","jsonPath":".status.activeTargets"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Degraded","type":"string","jsonPath":".status.conditions[?(@.type==\"Degraded\")].reason"}"#,
    printcolumn = r#"{"name":"Last-Failover","type":"string","priority":1,"jsonPath":".status.lastFailover.detectedAt"}"#,
    printcolumn = r#"{"name":"LBs","type":"string","priority":1,"jsonPath":".status.loadBalancers"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
// One rule for what each routing policy needs of the targets (one evaluation per object instead
// of three: `make bench` scenario admission), its message chosen by the policy.
#[x_kube(validation = Rule::new(
    "self.routing.policy == 'Weighted' ? (self.targets.all(t, has(t.weight)) && self.targets.exists(t, t.weight > 0)) \
     : self.routing.policy == 'Failover' ? (self.targets.all(t, has(t.priority)) && self.targets.all(t, self.targets.exists_one(u, u.priority == t.priority))) \
     : self.routing.policy != 'Geolocation' || (self.targets.all(t, has(t.geo)) && self.targets.exists_one(t, has(t.geo.default) && t.geo.default))"
).message(kube::core::Message::Expression(
    "self.routing.policy == 'Weighted' ? 'Weighted routing needs a weight on every target and at least one weight above 0' \
     : self.routing.policy == 'Failover' ? 'Failover routing needs a priority on every target, each priority used once' \
     : 'Geolocation routing needs geo on every target and exactly one target with geo.default: true'".into()
)).field_path(".targets"))]
#[x_kube(validation = Rule::new(
    "!has(self.tls) || self.tls.mode != 'ACM' || size(self.hostnames) <= 10"
).message("tls.mode ACM: ACM issues at most 10 names per certificate (its default quota); use at most 10 hostnames, or tls.mode CertificateArn").field_path(".hostnames"))]
pub struct GlobalIngressSpec {
    /// Hostnames served, all inside the referenced DNSZone's domain. Lower-case DNS names; a
    /// wildcard (`*.`) is allowed only as the first label. A hostname already claimed by an older
    /// GlobalIngress is not taken over (this one reports `HostnameConflict`).
    #[schemars(
        length(min = 1, max = 16),
        inner(
            length(min = 1, max = 253),
            pattern(
                r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
            )
        )
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub hostnames: Vec<String>,

    /// Name of the DNSZone (cluster-scoped) that holds the records.
    #[schemars(length(min = 1, max = 253))]
    pub dns_zone_ref: String,

    /// TTL of the records, in seconds (5-3600). Low values make failover fast; alias records to
    /// AWS load balancers use the load balancer's TTL instead.
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 5, max = 3600))]
    pub ttl: i32,

    /// How traffic is spread over the targets.
    pub routing: Routing,

    /// Where traffic may go: one entry per region or cluster.
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[x_kube(validation = Rule::new("self.exists(t, !has(t.drain) || !t.drain)").message("at least one target must not be drained"))]
    pub targets: Vec<Target>,

    /// How each target is probed.
    #[serde(default)]
    pub health_check: HealthCheck,

    /// When traffic leaves an unhealthy target and when it comes back.
    #[serde(default)]
    pub failover: Failover,

    /// TLS for provisioned load balancers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,

    /// Write, in each spoke, a NetworkPolicy admitting the backend pods of every Provision
    /// target that registers pod IPs only from its load balancer's subnets, on the target
    /// port: nothing else reaches those pods any more (in-cluster clients of the Service are cut
    /// off too). Removed with the target or this object. Unset: the operator's
    /// `--backend-network-policies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_network_policy: Option<bool>,

    /// Stop changing anything outside Kubernetes for this object (records, load balancers);
    /// status still reports what is observed.
    #[serde(default)]
    pub paused: bool,

    /// What happens to records and AWS resources when this object is deleted: `Delete` removes
    /// everything it owns, `Retain` leaves it all in place.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_ttl() -> i32 {
    30
}

/// Routing settings.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Routing {
    /// `Weighted` (by target weight), `Failover` (the best healthy priority tier),
    /// `Geolocation` (by client geography) or `Latency` (the lowest-latency region).
    pub policy: RoutingPolicy,
}

/// Routing policies.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoutingPolicy {
    Weighted,
    Failover,
    Geolocation,
    Latency,
}

/// One place traffic may go.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.loadBalancer.mode == 'External' || (has(self.clusterRef) && has(self.backend))").message("Provision and Adopt targets need clusterRef and backend").field_path(".loadBalancer.mode"))]
#[x_kube(validation = Rule::new("self.loadBalancer.mode != 'External' || has(self.loadBalancer.external)").message("External targets need loadBalancer.external").field_path(".loadBalancer.external"))]
#[x_kube(validation = Rule::new(
    "!has(self.privateLink) || !self.privateLink.enabled || ((!has(self.loadBalancer) || ((!has(self.loadBalancer.mode) || self.loadBalancer.mode == 'Provision') && (!has(self.loadBalancer.type) || self.loadBalancer.type == 'NLB'))))"
).message("privateLink needs a provisioned NLB (loadBalancer.mode Provision, loadBalancer.type NLB): endpoint services front network load balancers only").field_path(".privateLink"))]
pub struct Target {
    /// Unique name of the target within this GlobalIngress (a DNS label); also the record's set
    /// identifier.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,

    /// Name of the SpokeCluster running the backend. Not needed for External targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub cluster_ref: Option<String>,

    /// The backend Service in the spoke cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,

    /// Weighted routing: share of traffic, 0-255 (0 = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 255))]
    pub weight: Option<i32>,

    /// Failover routing: lower is preferred; each priority is one tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub priority: Option<i32>,

    /// Geolocation routing: the geographies this target serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<Geo>,

    /// AWS region of the target, for Latency routing and geo distances. Defaults to the
    /// SpokeCluster's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 32),
        pattern(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$")
    )]
    pub region: Option<String>,

    /// How the target is exposed.
    #[serde(default)]
    pub load_balancer: LoadBalancer,

    /// Expose the target's provisioned NLB as a PrivateLink endpoint service (and create its
    /// consumers' interface endpoints). NLB targets with `loadBalancer.mode: Provision` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_link: Option<PrivateLink>,

    /// Take the target out of rotation (maintenance) as if it were unhealthy. Refused — the
    /// target keeps its traffic and `Degraded` says `DrainRefused` — when no other target could
    /// take the traffic.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drain: bool,
}

/// The backend of a target.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// The Service in the spoke cluster.
    pub service: ServiceRef,
}

/// A Service port in a spoke cluster.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRef {
    /// Namespace of the Service.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// Name of the Service.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Service port (1-65535).
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

/// Geographies served by a target (Geolocation routing).
#[derive(KubeSchema, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Geo {
    /// This target also serves every location no other target lists (exactly one target).
    #[serde(default)]
    pub default: bool,
    /// Continent codes: AF, AN, AS, EU, NA, OC, SA.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub continents: Vec<Continent>,
    /// ISO 3166-1 alpha-2 country codes (e.g. DE, US).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 2, max = 2)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    #[x_kube(validation = geo::countries_rule())]
    pub countries: Vec<String>,
    /// ISO 3166-2 subdivision codes (e.g. US-CA).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(length(max = 6), pattern(r"^[A-Z]{2}-[A-Z0-9]{1,3}$"))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub subdivisions: Vec<String>,
}

/// How a target is exposed.
#[derive(KubeSchema, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    /// `Provision` (the hub creates an LB in the spoke's VPC), `Adopt` (use the LB the spoke's
    /// Service of type LoadBalancer already has) or `External` (a fixed hostname or addresses).
    #[serde(default)]
    pub mode: LoadBalancerMode,
    /// `ALB` or `NLB` (Provision).
    #[serde(default, rename = "type")]
    pub type_: LoadBalancerType,
    /// `Internal` or `InternetFacing` (Provision).
    #[serde(default)]
    pub scheme: Scheme,
    /// `IP` (pod IPs from the EndpointSlices) or `Instance` (nodes on the NodePort).
    #[serde(default)]
    pub target_type: TargetType,
    /// Where an External target lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<External>,
    /// What an Adopt target takes the load balancer from (default: the backend Service's
    /// `status.loadBalancer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<AdoptFrom>,
}

/// The spoke object whose load balancer an Adopt target uses, in the backend's namespace.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdoptFrom {
    /// `Service` (type LoadBalancer: `status.loadBalancer.ingress`), `Ingress` (an ALB Ingress:
    /// `status.loadBalancer.ingress`) or `Gateway` (Gateway API: `status.addresses`).
    pub kind: AdoptKind,
    /// The object's name; defaults to the backend Service's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub name: Option<String>,
}

#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdoptKind {
    Service,
    Ingress,
    Gateway,
}

/// A fixed destination.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
// Exactly one of hostname and addresses, and addresses that are IPs, in one rule (one evaluation
// per target instead of two).
#[x_kube(validation = Rule::new(
    "has(self.hostname) != (has(self.addresses) && size(self.addresses) > 0) && (!has(self.addresses) || self.addresses.all(a, isIP(a)))"
).message(kube::core::Message::Expression(
    "has(self.hostname) == (has(self.addresses) && size(self.addresses) > 0) ? 'set exactly one of hostname and addresses' : 'each address must be an IPv4 or IPv6 address'".into()
)).field_path(".addresses"))]
pub struct External {
    /// A DNS name (published as CNAME, or ALIAS when it is an AWS load balancer of a known zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 253),
        pattern(r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?\.?$")
    )]
    pub hostname: Option<String>,
    /// IPv4 and IPv6 addresses (published as A and AAAA).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(max = 45)))]
    pub addresses: Vec<String>,
    /// Route 53 hosted zone id of the load balancer behind `hostname`, to publish an ALIAS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), pattern(r"^[A-Z0-9]+$"))]
    pub alias_hosted_zone_id: Option<String>,
}

#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize,
)]
pub enum LoadBalancerMode {
    #[default]
    Provision,
    Adopt,
    External,
}

#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize,
)]
pub enum LoadBalancerType {
    ALB,
    #[default]
    NLB,
}

#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize,
)]
pub enum Scheme {
    #[default]
    Internal,
    InternetFacing,
}

#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize,
)]
pub enum TargetType {
    #[default]
    IP,
    Instance,
}

/// How targets are probed.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.timeout) < duration(self.interval)").message("timeout must be shorter than interval").field_path(".timeout"))]
#[x_kube(validation = Rule::new("self.protocol != 'None' || !has(self.route53) || self.route53 != 'Public'").message("Public Route 53 health checks need a protocol").field_path(".route53"))]
pub struct HealthCheck {
    /// `HTTP`, `HTTPS`, `TCP`, or `None` (no active probes: only spoke signals and drains
    /// withdraw a target).
    #[serde(default)]
    pub protocol: ProbeProtocol,
    /// Path requested by HTTP and HTTPS probes.
    #[serde(default = "default_path")]
    #[schemars(length(min = 1, max = 1024), pattern(r"^/"))]
    pub path: String,
    /// Port probed on the load balancer (1-65535). Defaults to the listener's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Host header (and TLS SNI) of HTTP(S) probes. Defaults to the first hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub host_header: Option<String>,
    /// Status codes that count as healthy.
    #[serde(default = "default_expected_status")]
    #[schemars(length(min = 1, max = 16), inner(range(min = 100, max = 599)))]
    pub expected_status: Vec<i32>,
    /// Time between probes (at least 1s), e.g. `5s`.
    #[serde(default = "default_interval")]
    #[schemars(length(max = 16), pattern(r"^([0-9]+(ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s')").message("interval must be at least 1s"))]
    pub interval: String,
    /// How long one probe may take; shorter than `interval`.
    #[serde(default = "default_timeout")]
    #[schemars(length(max = 16), pattern(r"^([0-9]+(ms|s|m|h))+$"))]
    pub timeout: String,
    /// Consecutive successes before an unhealthy target counts as healthy (1-10).
    #[serde(default = "default_healthy_threshold")]
    #[schemars(range(min = 1, max = 10))]
    pub healthy_threshold: i32,
    /// Consecutive failures before a healthy target counts as unhealthy (1-10).
    #[serde(default = "default_unhealthy_threshold")]
    #[schemars(range(min = 1, max = 10))]
    pub unhealthy_threshold: i32,
    /// Route 53 health checks attached to the records: `None`, `Public` (internet-facing LBs)
    /// or `Private` (health-check sources in the VPC, for internal LBs).
    #[serde(default)]
    pub route53: Route53HealthCheck,
    /// HTTPS probes: accept any certificate (self-signed test backends). The handshake still
    /// has to succeed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_tls_verify: bool,
    /// How the hub reaches provisioned load balancers: `Direct` (probes go to the load
    /// balancer: peering, a transit gateway, or internet-facing), `Endpoint` (probes go to the
    /// target's PrivateLink interface endpoint in its first consumer VPC, the hub's), or
    /// `TargetHealth` (no probe: the verdict is the target group's health in ELBv2).
    #[serde(default)]
    pub via: ProbeVia,
}

#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize,
)]
pub enum ProbeVia {
    #[default]
    Direct,
    Endpoint,
    TargetHealth,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            protocol: ProbeProtocol::default(),
            path: default_path(),
            port: None,
            host_header: None,
            expected_status: default_expected_status(),
            interval: default_interval(),
            timeout: default_timeout(),
            healthy_threshold: default_healthy_threshold(),
            unhealthy_threshold: default_unhealthy_threshold(),
            route53: Route53HealthCheck::default(),
            skip_tls_verify: false,
            via: ProbeVia::default(),
        }
    }
}

impl HealthCheck {
    /// `interval`, parsed (5 s for a value the API server would refuse).
    pub fn interval(&self) -> std::time::Duration {
        crate::model::duration::parse(&self.interval).unwrap_or(std::time::Duration::from_secs(5))
    }

    /// `timeout`, parsed, never longer than the interval.
    pub fn timeout(&self) -> std::time::Duration {
        crate::model::duration::parse(&self.timeout)
            .unwrap_or(std::time::Duration::from_secs(2))
            .min(self.interval())
    }
}

fn default_path() -> String {
    "/healthz".to_owned()
}
fn default_expected_status() -> Vec<i32> {
    vec![200]
}
fn default_interval() -> String {
    "5s".to_owned()
}
fn default_timeout() -> String {
    "2s".to_owned()
}
fn default_healthy_threshold() -> i32 {
    2
}
fn default_unhealthy_threshold() -> i32 {
    3
}

#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize,
)]
pub enum ProbeProtocol {
    #[default]
    HTTP,
    HTTPS,
    TCP,
    /// No active probes (the hub cannot reach the targets, or another system judges them):
    /// targets count as healthy unless their spoke reports no ready endpoint.
    None,
}

#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize,
)]
pub enum Route53HealthCheck {
    #[default]
    None,
    Public,
    Private,
}

/// Failover and failback behaviour.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failover {
    /// `Automatic`: traffic returns after `failbackAfter`; `Manual`: it stays away until allowed.
    #[serde(default)]
    pub failback: Failback,
    /// How long a recovered target must stay healthy before traffic returns, e.g. `2m`.
    #[serde(default = "default_failback_after")]
    #[schemars(length(max = 16), pattern(r"^([0-9]+(ms|s|m|h))+$"))]
    pub failback_after: String,
    /// Percentage (1-100) of all the endpoints the hub probes (every GlobalIngress's, one per
    /// address) that, failing at once (within the operator's `--panic-window`), make the hub
    /// assume it is the one cut off: then this object withdraws nothing (`Degraded`,
    /// `PanicThreshold`) until the share falls back.
    #[serde(default = "default_panic_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub panic_threshold: i32,
}

impl Default for Failover {
    fn default() -> Self {
        Self {
            failback: Failback::default(),
            failback_after: default_failback_after(),
            panic_threshold: default_panic_threshold(),
        }
    }
}

impl Failover {
    /// `failbackAfter`, parsed (60 s for a value the API server would refuse).
    pub fn failback_after(&self) -> std::time::Duration {
        crate::model::duration::parse(&self.failback_after)
            .unwrap_or(std::time::Duration::from_secs(60))
    }
}

fn default_failback_after() -> String {
    "60s".to_owned()
}
fn default_panic_threshold() -> i32 {
    50
}

#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize,
)]
pub enum Failback {
    #[default]
    Automatic,
    Manual,
}

/// TLS for provisioned load balancers.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'CertificateArn' || has(self.certificateArn)").message("mode CertificateArn needs certificateArn").field_path(".certificateArn"))]
pub struct Tls {
    /// `ACM` (request and DNS-validate a certificate), `CertificateArn` (use the given one) or
    /// `None` (plain listeners).
    pub mode: TlsMode,
    /// ARN of an existing ACM certificate (mode CertificateArn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 2048),
        pattern(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$")
    )]
    pub certificate_arn: Option<String>,
}

#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsMode {
    ACM,
    CertificateArn,
    None,
}

#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize,
)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    Retain,
}

pub use super::global_ingress_status::*;
pub use super::private_link::*;
