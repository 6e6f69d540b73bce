//! The reconcile pipeline of a GlobalIngress: observe -> plan -> apply -> status.
//!
//! - [`observe`]: reads the caches and the prober's state into a [`observe::Snapshot`] (no
//!   side effects);
//! - [`plan`]: pure, `(spec, snapshot, now) -> Plan` — the desired stack, the health decisions,
//!   problems and notices;
//! - [`apply`]: one deployer per resource kind, in dependency order (health checks, then
//!   records), deletes in reverse;
//! - [`status`]: the status from what was applied;
//! - [`wave`]: the records of every object one health event concerns, recomputed and published
//!   together before their reconciles run.
//!
//! The controller (`crate::controller`) keeps the wiring: watches, finalizer, leadership, Events.

pub mod apply;
pub mod discover;
pub mod index;
pub mod observe;
pub mod plan;
pub mod status;
pub mod wave;

use kube::runtime::reflector::Store;

use crate::api::{DNSZone, GlobalIngress, SpokeCluster};
use crate::leader::Leadership;
use crate::telemetry::{Metrics, WriteLabels};

/// What observe reads and apply writes through: the caches, the prober, the spoke watches, the
/// zone writers and the health-check registry.
pub struct Deps {
    /// The hub.
    pub client: kube::Client,
    pub zones: Store<DNSZone>,
    pub spokes: Store<SpokeCluster>,
    pub ingresses: Store<GlobalIngress>,
    /// Hostname claims and Ready counts across all GlobalIngresses.
    pub index: index::IngressIndex,
    /// The shared prober.
    pub health: crate::health::Health,
    /// Service and EndpointSlice watches in the spokes.
    pub signals: crate::spoke::signals::SpokeSignals,
    /// One batching writer per DNSZone.
    pub writers: crate::dns::writers::ZoneWriters,
    /// The account's Route 53 health checks, synced in the background.
    pub health_checks: apply::health_checks::CheckJobs,
    /// AWS clients per spoke account and region (the hub's credentials or an assumed role).
    pub accounts: crate::aws::accounts::Accounts,
    /// ELBv2 listings and writes per spoke account and region.
    pub load_balancers: crate::aws::elb::LoadBalancers,
    /// Node watches of the spokes (Instance targets).
    pub nodes: crate::spoke::nodes::SpokeNodes,
    /// Whether this replica may write.
    pub gate: Gate,
    /// Backend NetworkPolicies for GlobalIngresses that do not say (`--backend-network-policies`).
    pub backend_network_policies: bool,
    /// The CIDRs of load balancers' subnets, for those policies.
    pub subnet_cidrs: apply::backend_policies::SubnetCidrs,
    /// What waves need of the last publish of each object.
    pub waves: wave::Memory,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// The leadership check before a write, counting what was written and what a follower skipped.
#[derive(Debug, Clone)]
pub struct Gate {
    pub leadership: Leadership,
    pub metrics: Metrics,
}

/// Every (controller, write) the operator makes: their counters exist from the start, at 0, so
/// "no write" is a reading, not a missing metric.
pub const WRITES: &[(&str, &str)] = &[
    ("globalingress", "status"),
    ("globalingress", "event"),
    ("globalingress", "dns"),
    ("globalingress", "health-checks"),
    ("globalingress", "load-balancers"),
    ("globalingress", "network-policy"),
    ("dnszone", "status"),
    ("dnszone", "event"),
    ("spokecluster", "status"),
    ("spokecluster", "event"),
];

impl Gate {
    pub fn new(leadership: Leadership, metrics: Metrics) -> Self {
        for &(controller, write) in WRITES {
            let labels = WriteLabels { controller, write };
            drop(metrics.writes.get_or_create(&labels));
            drop(metrics.writes_skipped_not_leader.get_or_create(&labels));
        }
        Self {
            leadership,
            metrics,
        }
    }

    /// Whether this replica may make a write of this kind now; counts the write either way.
    pub fn may_write(&self, controller: &'static str, write: &'static str) -> bool {
        let labels = WriteLabels { controller, write };
        if self.leadership.is_leader() {
            self.metrics.writes.get_or_create(&labels).inc();
            true
        } else {
            self.metrics
                .writes_skipped_not_leader
                .get_or_create(&labels)
                .inc();
            false
        }
    }
}
