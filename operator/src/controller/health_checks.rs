//! Route 53 health checks of GlobalIngresses (`healthCheck.route53`), from the reconciler's side.
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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use futures::channel::mpsc;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use tracing::{info, warn};

use super::{Context, status};
use crate::api::DNSZone;
use crate::api::condition::{self, Desired, Status};
use crate::api::global_ingress::{GlobalIngress, ProbeProtocol, Route53HealthCheck};
use crate::aws::route53_health::{
    CheckConfig, Endpoint as CheckEndpoint, EndpointCheck, HealthChecks, Protocol,
    QUOTA_EXCEEDED_REASON, RequestInterval,
};
use crate::reconcile::plan::{Endpoint, Observed, Plan, RecordRouting};

const CONTROLLER: &str = "globalingress";
const FAILED: &str = "HealthChecksFailed";
const SYNCING: &str = "Syncing";

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
    /// Record sets of a target with a known check name it; with `keep` (ids not known yet) the
    /// zone's current ids stay on the others.
    pub fn attach(&self, plan: &mut Plan) -> bool {
        let (ids, keep) = match self {
            Self::Synced { ids, .. } => (ids, false),
            Self::Pending { ids, .. } => (ids, true),
            Self::NotUsed | Self::Released => return false,
            Self::Skipped => return true,
        };
        for record in &mut plan.records {
            if let [target] = record.targets.as_slice()
                && !matches!(record.routing, RecordRouting::Simple)
            {
                record.health_check_id = ids.get(target).cloned();
            }
        }
        keep
    }

    /// The `HealthChecksSynced` condition; `None` removes it.
    pub fn condition(&self, gi: &GlobalIngress) -> Option<Desired> {
        let previous = gi
            .status
            .as_ref()
            .and_then(|s| condition::find(&s.conditions, status::HEALTH_CHECKS_SYNCED));
        match self {
            Self::NotUsed | Self::Released => None,
            Self::Skipped => previous.map(|c| {
                Desired::new(
                    status::HEALTH_CHECKS_SYNCED,
                    match c.status.as_str() {
                        "True" => Status::True,
                        "False" => Status::False,
                        _ => Status::Unknown,
                    },
                    match c.reason.as_str() {
                        QUOTA_EXCEEDED_REASON => QUOTA_EXCEEDED_REASON,
                        FAILED => FAILED,
                        SYNCING => SYNCING,
                        _ => status::reasons::IN_SYNC,
                    },
                    c.message.clone(),
                )
            }),
            Self::Synced {
                quota_exhausted: Some(message),
                ..
            } => Some(Desired::new(
                status::HEALTH_CHECKS_SYNCED,
                Status::False,
                QUOTA_EXCEEDED_REASON,
                message.clone(),
            )),
            Self::Synced { ids, .. } => Some(Desired::new(
                status::HEALTH_CHECKS_SYNCED,
                Status::True,
                status::reasons::IN_SYNC,
                format!(
                    "{} Route 53 health check(s) attached to the records",
                    ids.len()
                ),
            )),
            Self::Pending {
                error: Some(error), ..
            } => Some(Desired::new(
                status::HEALTH_CHECKS_SYNCED,
                Status::False,
                FAILED,
                format!("{error} (the records keep the checks they have; retrying)"),
            )),
            Self::Pending { .. } => Some(Desired::new(
                status::HEALTH_CHECKS_SYNCED,
                Status::Unknown,
                SYNCING,
                "creating or updating Route 53 health checks",
            )),
        }
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
        let resource = super::global_ingress::owner_key(gi);
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
                            warn!(resource, error = %super::error_chain(&e), "health-check sync failed");
                            job.error = Some(super::error_chain(&e));
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
        let resource = super::global_ingress::owner_key(gi);
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
                    warn!(resource, error = %super::error_chain(&e), "could not delete unused health checks");
                }
            }
        });
    }

    /// `gi` is gone: forget its job.
    pub fn forget(&self, gi: &GlobalIngress) {
        self.lock().remove(&super::global_ingress::owner_key(gi));
    }
}

/// The Route 53 health check each target should have (`healthCheck.route53`). `Public`: Route
/// 53's checkers probe the target with the operator's protocol, port and path — at the first
/// address with the probe's Host header, or, for a host-name endpoint, at that name (which is
/// then also the Host header: route the health path for any host, or use TCP). `Private`:
/// follows a CloudWatch alarm in the target's region.
fn desired(gi: &GlobalIngress, targets: &[(String, Observed)]) -> BTreeMap<String, CheckConfig> {
    let hc = &gi.spec.health_check;
    let resource = super::global_ingress::owner_key(gi);
    let mut out = BTreeMap::new();
    for (t, (name, observed)) in gi.spec.targets.iter().zip(targets) {
        let Some(endpoint) = &observed.endpoint else {
            continue;
        };
        let config = match hc.route53 {
            Route53HealthCheck::None => continue,
            Route53HealthCheck::Private => match &observed.region {
                Some(region) => CheckConfig::private(region, &resource, name),
                None => continue,
            },
            Route53HealthCheck::Public => {
                let Some(probe) = crate::health::probe_specs(&gi.spec, t, endpoint)
                    .into_iter()
                    .next()
                else {
                    continue;
                };
                let protocol = match hc.protocol {
                    ProbeProtocol::HTTP => Protocol::Http,
                    ProbeProtocol::HTTPS => Protocol::Https,
                    ProbeProtocol::TCP => Protocol::Tcp,
                    // Refused by the API server's rules; nothing to check with.
                    ProbeProtocol::None => continue,
                };
                CheckConfig::Endpoint(EndpointCheck {
                    protocol,
                    endpoint: match endpoint {
                        Endpoint::Addresses(ips) => CheckEndpoint::Ip {
                            ip: ips[0],
                            host: Some(probe.host.clone()),
                        },
                        Endpoint::Hostname { name, .. } => CheckEndpoint::Name(name.clone()),
                    },
                    port: probe.port,
                    resource_path: (hc.protocol != ProbeProtocol::TCP).then(|| hc.path.clone()),
                    request_interval: RequestInterval::for_probe_interval(probe.interval),
                    failure_threshold: u8::try_from(hc.unhealthy_threshold.clamp(1, 10))
                        .unwrap_or(3),
                })
            }
        };
        out.insert(name.clone(), config);
    }
    out
}

fn had_checks(gi: &GlobalIngress) -> bool {
    gi.status
        .as_ref()
        .is_some_and(|s| condition::find(&s.conditions, status::HEALTH_CHECKS_SYNCED).is_some())
}

/// Where this object's checks stand, before its records are published (starting a background
/// sync when they do not match the spec).
pub fn before_publish(
    gi: &GlobalIngress,
    zone: &DNSZone,
    targets: &[(String, Observed)],
    ctx: &Context,
) -> Step {
    let used = gi.spec.health_check.route53 != Route53HealthCheck::None;
    if zone.spec.provider.route53.is_none() || (!used && !had_checks(gi)) {
        return Step::NotUsed;
    }
    if !ctx.may_write(CONTROLLER, "health-checks") {
        return Step::Skipped;
    }
    if !used {
        return Step::Released;
    }
    ctx.health_checks
        .step(gi, &zone.spec.owner_id, desired(gi, targets))
}

/// After the records were written: delete the checks no record names any more.
pub fn after_publish(gi: &GlobalIngress, zone: &DNSZone, step: &Step, ctx: &Context) {
    match step {
        Step::Synced {
            ids, stale: true, ..
        } => ctx
            .health_checks
            .prune(gi, &zone.spec.owner_id, ids.clone()),
        Step::Released => {
            ctx.health_checks.forget(gi);
            ctx.health_checks
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
    ctx: &Context,
) -> Result<(), String> {
    ctx.health_checks.forget(gi);
    let used = gi.spec.health_check.route53 != Route53HealthCheck::None;
    if zone.spec.provider.route53.is_none() || (!used && !had_checks(gi)) {
        return Ok(());
    }
    let registry = ctx.health_checks.registry();
    let resource = super::global_ingress::owner_key(gi);
    let result = if retain {
        registry.release(&zone.spec.owner_id, &resource).await
    } else {
        registry
            .prune(&zone.spec.owner_id, &resource, &BTreeMap::new())
            .await
    };
    result.map(|_| ()).map_err(|e| super::error_chain(&e))
}

/// Every `interval` (the first time after one interval, when every object has been reconciled),
/// the leader deletes Route 53 health checks tagged with a Route 53 zone's owner whose
/// GlobalIngress target no longer exists. A target counts as live while its GlobalIngress lists
/// it in its spec or its status (paused or broken objects keep what their records name).
pub async fn collect_garbage(ctx: std::sync::Weak<Context>, interval: std::time::Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(ctx) = ctx.upgrade() else { return };
        if !ctx.leadership.is_leader() {
            continue;
        }
        let owners: std::collections::BTreeSet<String> = ctx
            .zones
            .state()
            .iter()
            .filter(|z| z.spec.provider.route53.is_some())
            .map(|z| z.spec.owner_id.clone())
            .collect();
        if owners.is_empty() {
            continue;
        }
        // Every GlobalIngress of the cluster counts, not only the watched namespace's.
        let all: Api<GlobalIngress> = Api::all(ctx.client.clone());
        let live: HashSet<(String, String)> = match all.list(&Default::default()).await {
            Ok(list) => list
                .items
                .iter()
                .flat_map(|gi| {
                    let key = super::global_ingress::owner_key(gi);
                    gi.spec
                        .targets
                        .iter()
                        .map(|t| t.name.clone())
                        .chain(
                            gi.status
                                .iter()
                                .flat_map(|s| s.targets.iter().map(|t| t.name.clone())),
                        )
                        .map(move |t| (key.clone(), t))
                        .collect::<Vec<_>>()
                })
                .collect(),
            Err(e) => {
                warn!(error = %e, "cannot list GlobalIngresses for health-check garbage collection");
                continue;
            }
        };
        for owner in owners {
            if !ctx.may_write(CONTROLLER, "health-checks") {
                break;
            }
            match ctx
                .health_checks
                .registry()
                .collect_garbage(&owner, &live)
                .await
            {
                Ok(0) => {}
                Ok(n) => info!(
                    owner,
                    deleted = n,
                    "deleted orphaned Route 53 health checks"
                ),
                Err(e) => {
                    warn!(owner, error = %super::error_chain(&e), "health-check garbage collection failed");
                }
            }
        }
    }
}
