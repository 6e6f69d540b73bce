//! The status of a `GlobalIngress`: conditions, per-target state, the last failover and the
//! provisioned load balancers.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::condition::Condition;

/// The condition types of a GlobalIngress's status.
pub mod conditions {
    /// The spec can be published (references exist, no conflicts).
    pub const READY: &str = "Ready";
    /// The records match the plan at the provider.
    pub const DNS_SYNCED: &str = "DNSSynced";
    /// Some target is withdrawn, held, pending, or every one is down.
    pub const DEGRADED: &str = "Degraded";
    /// Present only while `healthCheck.route53` is used.
    pub const HEALTH_CHECKS_SYNCED: &str = "HealthChecksSynced";
    /// Present only while some target is `Provision`: every provisioned load balancer is active
    /// with its listener and registrations.
    pub const LOAD_BALANCERS_READY: &str = "LoadBalancersReady";
    /// Present only while provisioned load balancers terminate TLS (`spec.tls`): every
    /// listener's certificate is issued (ACM) or checked (CertificateArn).
    pub const CERTIFICATES_READY: &str = "CertificatesReady";
}

/// Observed state of a GlobalIngress.
#[derive(KubeSchema, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalIngressStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, DNSSynced, Degraded, ...
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Targets that currently receive traffic, comma-separated (for `kubectl get`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_targets: Option<String>,
    /// Per-target state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetStatus>,
    /// The last time traffic moved because of health (not because the spec changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<FailoverRecord>,
    /// Provisioned load balancers that serve, of those wanted, e.g. `2/2` (for `kubectl get -o
    /// wide`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancers: Option<String>,
}

/// One failover or failback and how long each step took.
#[derive(KubeSchema, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverRecord {
    /// `Failover` (targets left) or `Failback` (targets came back).
    pub kind: String,
    /// Targets receiving traffic before, comma-separated.
    pub from: String,
    /// Targets receiving traffic after, comma-separated.
    pub to: String,
    /// When the health change behind it was observed (probe verdict or spoke signal).
    pub detected_at: String,
    /// When the record change was sent to the DNS provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<String>,
    /// When the provider reported the change in sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_sync_at: Option<String>,
    /// When the authoritative server answered with the new records (RFC 2136 zones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_seen_at: Option<String>,
}

/// Observed state of one target.
#[derive(KubeSchema, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetStatus {
    /// The target's name.
    pub name: String,
    /// `Healthy`, `Unhealthy`, `Unknown` (not probed yet; receives traffic), `Recovering`
    /// (healthy again, waiting `failbackAfter`), `AwaitingFailback` (Manual failback), `Held`
    /// (failing, but kept in service by the false-failover guard) or `Drained`.
    pub health: String,
    /// Addresses or hostname the target's records point at, once known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// The weight published for this target, when the policy has weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_applied: Option<i32>,
    /// Since when `health` holds (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Why: the last probe's result and the spoke's signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The load balancer the hub provisioned for this target (`loadBalancer.mode: Provision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerStatus>,
    /// The PrivateLink endpoint service in front of the target's NLB (`privateLink`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_link: Option<PrivateLinkStatus>,
    /// The certificate on the target's TLS listener (`spec.tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<String>,
    /// When that certificate expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// The backend NetworkPolicy in the target's spoke (`namespace/name`, with
    /// `backendNetworkPolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_policy: Option<String>,
}

/// A target's endpoint service, as EC2 last reported it.
#[derive(KubeSchema, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateLinkStatus {
    /// What consumers connect to (`com.amazonaws.vpce.<region>.vpce-svc-…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// The private DNS name's verification: `pendingVerification`, `verified` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_dns_verification: Option<String>,
    /// Connection requests waiting for acceptance (endpoint ids): accept one with
    /// `kubectl annotate gi NAME globalingress.io/accept-endpoint=<id>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_connections: Vec<String>,
    #[serde(default)]
    pub accepted_connections: u32,
    #[serde(default)]
    pub rejected_connections: u32,
    /// The consumers' interface endpoints the hub made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointStatus>,
    /// What failed, or could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A consumer's interface endpoint.
#[derive(KubeSchema, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointStatus {
    pub vpc_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_name: Option<String>,
}

/// A provisioned load balancer, as ELBv2 last reported it.
#[derive(KubeSchema, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_name: Option<String>,
    /// Route 53 hosted zone of the load balancer (the ALIAS records name it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_id: Option<String>,
    /// `provisioning`, `active`, `active_impaired` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Targets registered (not draining) in its target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_targets: Option<u32>,
    /// Of those, the ones the load balancer reports healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_targets: Option<u32>,
    /// What the target health check had to give up to fit ELBv2, and what failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
