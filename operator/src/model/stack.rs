//! The desired resources of one GlobalIngress, as the plan returns them and the executor applies
//! them: one field per resource kind, in the order they are applied (deletes run the other way).
//!
//! A resource whose identity is only known once another resource of the same stack exists (a
//! record naming a Route 53 health check, later a load balancer) holds a [`Ref`] to it; the
//! executor resolves it from what that resource's deployer returned.

use std::collections::BTreeMap;

use serde::Serialize;

use super::certificate::WantedCertificate;
use super::dns::RecordSet;
use super::health_check::CheckConfig;
use super::load_balancer::WantedLoadBalancer;
use super::privatelink::WantedEndpointService;

/// A value of another resource of the stack, resolved at apply time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Ref {
    /// The id of the Route 53 health check of this target.
    HealthCheckOf(String),
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HealthCheckOf(target) => write!(f, "health check of {target}"),
        }
    }
}

/// Whether a GlobalIngress wants Route 53 health checks, and which.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase", tag = "state", content = "checks")]
pub enum HealthChecks {
    /// Not used (`healthCheck.route53: None`, or the zone is not Route 53).
    #[default]
    NotUsed,
    /// One check per target, by target name (a target without a known endpoint has none yet).
    Wanted(BTreeMap<String, CheckConfig>),
}

/// The desired resources of one GlobalIngress.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stack {
    /// ACM certificates of `tls.mode: ACM`, one per account and region (applied first: the
    /// listeners use them; their validation records travel with the records).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<WantedCertificate>,
    /// Load balancers of Provision targets, each with its target group, listener and
    /// registrations (applied first: the records point at them).
    pub load_balancers: Vec<WantedLoadBalancer>,
    /// PrivateLink endpoint services on the NLBs of `privateLink` targets, with their
    /// consumers' interface endpoints (after the load balancers; deleted before them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoint_services: Vec<WantedEndpointService>,
    /// Route 53 health checks (applied first: the records name them).
    pub health_checks: HealthChecks,
    /// Record sets to publish, sorted (applied last; deleted first).
    pub records: Vec<RecordSet>,
}
