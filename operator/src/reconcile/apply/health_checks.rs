//! The health-check deployer: Route 53 health checks of GlobalIngresses (`healthCheck.route53`),
//! applied first (the records name them) and pruned after the records (deletes run the other
//! way).
//!
//! Creating checks is slow on purpose (Route 53 refills `CreateHealthCheck` at 0.5/s, and the
//! registry serializes its calls), and a failover must never wait for it. So syncs run in the
//! background, one per GlobalIngress at a time ([`CheckJobs`]); a reconcile publishes with the ids
//! known so far and, while a sync is pending or failed, tells the zone writer to keep the ids the
//! records already carry (`Claim::keep_health_checks`) rather than detach them. When a sync ends
//! the GlobalIngress is reconciled again and its records get the new ids; checks no record names
//! any more are pruned after that publish. Deletion prunes (or, with `deletionPolicy: Retain`,
//! releases) its checks after the records; the leader's garbage collector deletes checks tagged
//! as ours whose GlobalIngress target no longer exists.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use futures::channel::mpsc;
use kube::runtime::reflector::ObjectRef;
use tracing::{info, warn};

use super::super::Deps;
use crate::api::DNSZone;
use crate::api::condition;
use crate::api::global_ingress::GlobalIngress;
use crate::api::global_ingress::conditions::HEALTH_CHECKS_SYNCED;
use crate::aws::route53_health::{CheckConfig, HealthChecks};
use crate::model::ownership::owner_key;
use crate::model::stack::{self, Ref};

const CONTROLLER: &str = "globalingress";

/// What a reconcile knows about its object's health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `healthCheck.route53` is None (or the zone is not Route 53), and always was.
    NotUsed,
    /// A follower: keep the condition as it is.
    Skipped,
    /// The checks match the spec.
    Synced {
        ids: BTreeMap<String, String>,
        quota_exhausted: Option<String>,
        /// Checks of this object no record should name any more (prune after publishing).
        stale: bool,
    },
    /// A sync is running (or failed: `error`); `ids` are the ones known so far.
    Pending {
        ids: BTreeMap<String, String>,
        error: Option<String>,
    },
    /// Turned off: the records lose their checks, then the checks go.
    Released,
}

impl Step {
    /// The check id a record's reference names, when known.
    pub fn resolve(&self, reference: Option<&Ref>) -> Option<String> {
        let ids = match self {
            Self::Synced { ids, .. } | Self::Pending { ids, .. } => ids,
            Self::NotUsed | Self::Released | Self::Skipped => return None,
        };
        match reference? {
            Ref::HealthCheckOf(target) => ids.get(target).cloned(),
        }
    }

    /// Whether a record whose check is not known yet keeps the one the zone gives it (a sync is
    /// pending: never detach checks just because the answer is late).
    pub fn keep_existing(&self) -> bool {
        matches!(self, Self::Pending { .. } | Self::Skipped)
    }
}

#[derive(Debug, Default)]
struct JobState {
    /// The desired checks of the last finished sync, and what it returned.
    synced_for: Option<BTreeMap<String, CheckConfig>>,
    ids: BTreeMap<String, String>,
    quota_exhausted: Option<String>,
    stale: bool,
    error: Option<String>,
    running: bool,
    synced_at: Option<std::time::Instant>,
}

/// A sync that matched is done again this often in the background (someone may have changed
/// or deleted a check by hand).
const RESYNC: std::time::Duration = std::time::Duration::from_secs(300);

/// Background health-check syncs, one at a time per GlobalIngress.
#[derive(Debug, Clone)]
pub struct CheckJobs {
    registry: Arc<HealthChecks>,
    trigger: mpsc::UnboundedSender<ObjectRef<GlobalIngress>>,
    jobs: Arc<Mutex<HashMap<String, JobState>>>,
}

impl CheckJobs {
    pub fn new(
        registry: HealthChecks,
        trigger: mpsc::UnboundedSender<ObjectRef<GlobalIngress>>,
    ) -> Self {
        Self {
            registry: Arc::new(registry),
            trigger,
            jobs: Arc::default(),
        }
    }

    pub fn registry(&self) -> &HealthChecks {
        &self.registry
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, JobState>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where `gi`'s checks stand for `desired`; starts a sync when they are not known to match.
    fn step(
        &self,
        gi: &GlobalIngress,
        owner: &str,
        desired: BTreeMap<String, CheckConfig>,
    ) -> Step {
        let resource = key(gi);
        let mut jobs = self.lock();
        let job = jobs.entry(resource.clone()).or_default();
        let matches = job.synced_for.as_ref() == Some(&desired) && job.error.is_none();
        let due = job.synced_at.is_none_or(|at| at.elapsed() >= RESYNC);
        if !job.running && (!matches || due) {
            job.running = true;
            let this = self.clone();
            let owner = owner.to_owned();
            let me = ObjectRef::from_obj(gi);
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                tracing::debug!(
                    resource,
                    checks = desired.len(),
                    "syncing Route 53 health checks"
                );
                let result = this.registry.sync(&owner, &resource, &desired).await;
                if let Ok(outcome) = &result {
                    info!(
                        resource,
                        created = outcome.created,
                        updated = outcome.updated,
                        stale = outcome.stale,
                        seconds = started.elapsed().as_secs_f64(),
                        "Route 53 health checks synced"
                    );
                }
                {
                    let mut jobs = this.lock();
                    let job = jobs.entry(resource.clone()).or_default();
                    job.running = false;
                    match result {
                        Ok(outcome) => {
                            job.synced_at = Some(std::time::Instant::now());
                            job.synced_for = Some(desired);
                            job.ids = outcome.ids;
                            job.quota_exhausted = outcome.quota_exhausted;
                            job.stale = outcome.stale > 0;
                            job.error = None;
                        }
                        Err(e) => {
                            let error = crate::telemetry::error_chain(&e);
                            warn!(resource, %error, "health-check sync failed");
                            job.error = Some(error);
                        }
                    }
                }
                let _ = this.trigger.unbounded_send(me);
            });
        }
        if matches {
            return Step::Synced {
                ids: job.ids.clone(),
                quota_exhausted: job.quota_exhausted.clone(),
                stale: job.stale,
            };
        }
        Step::Pending {
            ids: job.ids.clone(),
            error: job.error.clone(),
        }
    }

    /// Deletes `gi`'s checks that no record names any more, in the background (after a publish).
    fn prune(&self, gi: &GlobalIngress, owner: &str, keep: BTreeMap<String, String>) {
        let resource = key(gi);
        let this = self.clone();
        let owner = owner.to_owned();
        tokio::spawn(async move {
            match this.registry.prune(&owner, &resource, &keep).await {
                Ok(_) => {
                    if let Some(job) = this.lock().get_mut(&resource) {
                        job.stale = false;
                    }
                }
                Err(e) => {
                    warn!(resource, error = %crate::telemetry::error_chain(&e), "could not delete unused health checks");
                }
            }
        });
    }

    /// `gi` is gone: forget its job.
    pub fn forget(&self, gi: &GlobalIngress) {
        self.lock().remove(&key(gi));
    }
}

fn had_checks(gi: &GlobalIngress) -> bool {
    gi.status
        .as_ref()
        .is_some_and(|s| condition::find(&s.conditions, HEALTH_CHECKS_SYNCED).is_some())
}

fn key(gi: &GlobalIngress) -> String {
    owner_key(
        gi.metadata.namespace.as_deref().unwrap_or_default(),
        gi.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// Where this object's checks stand, before its records are published (starting a background
/// sync when they do not match the plan).
pub fn before_publish(
    gi: &GlobalIngress,
    zone: &DNSZone,
    wanted: &stack::HealthChecks,
    deps: &Deps,
) -> Step {
    let desired = match wanted {
        stack::HealthChecks::Wanted(desired) => Some(desired),
        stack::HealthChecks::NotUsed => None,
    };
    if zone.spec.provider.route53.is_none() || (desired.is_none() && !had_checks(gi)) {
        return Step::NotUsed;
    }
    if !deps.gate.may_write(CONTROLLER, "health-checks") {
        return Step::Skipped;
    }
    match desired {
        None => Step::Released,
        Some(desired) => deps
            .health_checks
            .step(gi, &zone.spec.owner_id, desired.clone()),
    }
}

/// After the records were written: delete the checks no record names any more.
pub fn after_publish(gi: &GlobalIngress, zone: &DNSZone, step: &Step, deps: &Deps) {
    match step {
        Step::Synced {
            ids, stale: true, ..
        } => deps
            .health_checks
            .prune(gi, &zone.spec.owner_id, ids.clone()),
        Step::Released => {
            deps.health_checks.forget(gi);
            deps.health_checks
                .prune(gi, &zone.spec.owner_id, BTreeMap::new());
        }
        _ => {}
    }
}

/// On deletion, after the records are gone: delete the checks (`Delete`) or hand them over
/// untouched (`Retain`: the retained records still name them).
pub async fn on_delete(
    gi: &GlobalIngress,
    zone: &DNSZone,
    retain: bool,
    deps: &Deps,
) -> Result<(), String> {
    deps.health_checks.forget(gi);
    let used = gi.spec.health_check.route53 != crate::api::global_ingress::Route53HealthCheck::None;
    if zone.spec.provider.route53.is_none() || (!used && !had_checks(gi)) {
        return Ok(());
    }
    let registry = deps.health_checks.registry();
    let resource = key(gi);
    let result = if retain {
        registry.release(&zone.spec.owner_id, &resource).await
    } else {
        registry
            .prune(&zone.spec.owner_id, &resource, &BTreeMap::new())
            .await
    };
    result
        .map(|_| ())
        .map_err(|e| crate::telemetry::error_chain(&e))
}
