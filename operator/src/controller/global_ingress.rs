//! The GlobalIngress reconciler: observe -> plan -> apply -> status.
//!
//! observe reads only from the watch caches (no API calls); plan is
//! [`crate::reconcile::plan::plan`]; apply is the finalizer and, from the DNS engine on, the
//! records; status is [`super::status::compute`], patched only when something but a timestamp
//! changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource as _, ResourceExt as _};
use tracing::{debug, info};

use super::status::{self, Publish, READY};
use super::{Context, events, health_checks};
use crate::api::DNSZone;
use crate::api::condition;
use crate::api::global_ingress::{DeletionPolicy, GlobalIngress, LoadBalancerMode};
use crate::dns::records::{Claim, Owner, Rrset};
use crate::health::signals::Backend;
use crate::health::tracker::{self, Failback, Guarded, Signal, TargetInput, Tracker, states};
use crate::reconcile::observe::external_endpoint;
use crate::reconcile::plan::{self, Endpoint, Health, Observed, Plan, Problem, ProviderKind, Zone};
use crate::telemetry::ConditionLabels;

pub const FINALIZER: &str = "globalingress.io/cleanup";
const CONTROLLER: &str = "globalingress";

/// Reconcile errors; the variant name is the metric's error category.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to patch the status")]
    PatchStatus {
        #[source]
        source: kube::Error,
    },
    #[error("failed to remove the records: {message}")]
    Cleanup { message: String },
    #[error("failed to add or remove the finalizer")]
    Finalizer {
        #[source]
        source: Box<finalizer::Error<Error>>,
    },
}

impl super::Category for Error {
    fn category(&self) -> &'static str {
        match self {
            Self::PatchStatus { .. } => "PatchStatus",
            Self::Finalizer { .. } => "Finalizer",
            Self::Cleanup { .. } => "Cleanup",
        }
    }
}

/// Annotation approving a Manual failback: an RFC 3339 time; targets withdrawn before it may
/// take traffic again once healthy (`kubectl annotate gi NAME
/// globalingress.io/approve-failback=$(date -u +%FT%TZ) --overwrite`).
pub const APPROVE_FAILBACK: &str = "globalingress.io/approve-failback";

/// What observe found.
struct Observation {
    zone: Option<Zone>,
    zone_object: Option<Arc<DNSZone>>,
    problems: Vec<Problem>,
    targets: Vec<(String, Observed)>,
    /// Each target's health decision after the guard rails.
    health: Guarded,
    /// When the decisions were taken (a failback's "detected").
    decided_at: jiff::Timestamp,
}

/// The backend a target's spoke signals come from.
fn backend_of(t: &crate::api::global_ingress::Target) -> Option<Backend> {
    match (&t.cluster_ref, &t.backend) {
        (Some(spoke), Some(b)) => Some(Backend {
            spoke: spoke.clone(),
            namespace: b.service.namespace.clone(),
            name: b.service.name.clone(),
        }),
        _ => None,
    }
}

fn failback_of(gi: &GlobalIngress) -> Failback {
    match gi.spec.failover.failback {
        crate::api::global_ingress::Failback::Automatic => Failback::Automatic(
            crate::cli::parse_duration(&gi.spec.failover.failback_after)
                .unwrap_or(std::time::Duration::from_secs(60)),
        ),
        crate::api::global_ingress::Failback::Manual => Failback::Manual {
            approved_at: gi
                .annotations()
                .get(APPROVE_FAILBACK)
                .and_then(|v| v.trim().parse::<jiff::Timestamp>().ok()),
        },
    }
}

async fn observe(gi: &GlobalIngress, ctx: &Context) -> Observation {
    let mut problems = Vec::new();
    let zone_object = ctx.zones.get(&ObjectRef::new(&gi.spec.dns_zone_ref));
    let zone = zone_object.as_ref().map(|z| Zone {
        domain: z.spec.domain.trim_end_matches('.').to_ascii_lowercase(),
        provider: if z.spec.provider.route53.is_some() {
            ProviderKind::Route53
        } else {
            ProviderKind::Rfc2136
        },
    });
    if zone.is_none() {
        problems.push(Problem {
            reason: events::DNS_ZONE_NOT_FOUND,
            field: "spec.dnsZoneRef".into(),
            message: format!("DNSZone {:?} does not exist", gi.spec.dns_zone_ref),
        });
    }
    let mut targets = Vec::new();
    let mut all_specs = Vec::new();
    let mut backends = Vec::new();
    let mut decisions = Vec::new();
    let now = jiff::Timestamp::now();
    let failback = failback_of(gi);
    let previous_health = |name: &str| {
        gi.status
            .as_ref()
            .and_then(|s| s.targets.iter().find(|t| t.name == name))
            .map(|t| {
                (
                    t.health.clone(),
                    t.since
                        .as_deref()
                        .and_then(|s| s.parse::<jiff::Timestamp>().ok()),
                )
            })
    };
    for (i, t) in gi.spec.targets.iter().enumerate() {
        let mut region = t.region.clone();
        let mut endpoint = external_endpoint(t);
        let backend = backend_of(t);
        let backend_state = backend.as_ref().and_then(|b| ctx.signals.state(b));
        if let Some(cluster) = &t.cluster_ref {
            match ctx.spokes.get(&ObjectRef::new(cluster)) {
                Some(spoke) => {
                    region = region.or_else(|| Some(spoke.spec.region.clone()));
                    if t.load_balancer.mode == LoadBalancerMode::Adopt
                        && let Some(backend) = &t.backend
                    {
                        // The spoke watch's copy of the Service when it has one; a read
                        // otherwise (the watch has not listed yet).
                        let watched = backend_state.as_ref().and_then(|s| match &s.signal {
                            Signal::ServiceMissing { .. } => Some(Ok(None)),
                            Signal::Unreachable => Some(Err(())),
                            _ => s.service.as_ref().map(|svc| Ok(service_endpoint(svc))),
                        });
                        let found = match watched {
                            Some(found) => found,
                            None => adopted_endpoint(&spoke, &backend.service, ctx).await,
                        };
                        endpoint = match found {
                            Ok(found) => found,
                            // The spoke could not be asked: keep serving the address published
                            // last rather than withdraw a target nobody saw fail.
                            Err(()) => last_known_endpoint(gi, &t.name),
                        };
                    }
                }
                None => problems.push(Problem {
                    reason: events::SPOKE_CLUSTER_NOT_FOUND,
                    field: format!("spec.targets[{i}].clusterRef"),
                    message: format!("SpokeCluster {cluster:?} does not exist"),
                }),
            }
        }
        let specs = endpoint
            .as_ref()
            .map(|e| crate::health::probe_specs(&gi.spec, t, e))
            .unwrap_or_default();
        let trackers: Vec<Tracker> = specs.iter().filter_map(|s| ctx.health.tracker(s)).collect();
        let previous = previous_health(&t.name);
        decisions.push(tracker::decide(&TargetInput {
            probes: trackers.iter().collect(),
            signal: backend_state.map_or(Signal::None, |s| s.signal),
            drained: false,
            failback,
            previous: previous.as_ref().map(|(h, since)| (h.as_str(), *since)),
            now,
        }));
        all_specs.extend(specs);
        backends.extend(backend);
        targets.push((
            t.name.clone(),
            Observed {
                endpoint,
                region,
                health: Health::Unknown,
            },
        ));
    }
    let me = ObjectRef::from_obj(gi);
    let threshold = u32::try_from(gi.spec.failover.panic_threshold).unwrap_or(50);
    ctx.health.register(me.clone(), all_specs, threshold);
    ctx.signals.register(me, backends);
    let names: Vec<String> = gi.spec.targets.iter().map(|t| t.name.clone()).collect();
    let drained: Vec<bool> = gi.spec.targets.iter().map(|t| t.drain).collect();
    let previous: Vec<Option<String>> = names
        .iter()
        .map(|n| previous_health(n).map(|(h, _)| h))
        .collect();
    let previous: Vec<Option<&str>> = previous.iter().map(Option::as_deref).collect();
    let panic = ctx.health.share().exceeds(threshold);
    let health = tracker::guard(&names, decisions, &drained, panic, &previous);
    for ((_, observed), d) in targets.iter_mut().zip(&health.decisions) {
        observed.health = match (d.up, d.state) {
            (false, _) => Health::Unhealthy,
            (true, states::HEALTHY) => Health::Healthy,
            (true, _) => Health::Unknown,
        };
    }
    problems.extend(hostname_conflicts(gi, ctx));
    Observation {
        zone,
        zone_object,
        problems,
        targets,
        health,
        decided_at: now,
    }
}

/// The address in a LoadBalancer Service's status.
fn service_endpoint(svc: &Service) -> Option<Endpoint> {
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())?;
    let ips: Vec<std::net::IpAddr> = ingress
        .iter()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect();
    if !ips.is_empty() {
        return Some(Endpoint::Addresses(ips));
    }
    ingress.iter().find_map(|i| {
        i.hostname.as_ref().map(|h| Endpoint::Hostname {
            name: h.trim_end_matches('.').to_ascii_lowercase(),
            // Finding the load balancer's hosted zone (for ALIAS) needs the ELBv2 API: the
            // load balancer issue adds it. Until then a hostname is published as CNAME.
            alias_hosted_zone_id: None,
        })
    })
}

/// The addresses this object's status last reported for a target.
fn last_known_endpoint(gi: &GlobalIngress, target: &str) -> Option<Endpoint> {
    let addresses = &gi
        .status
        .as_ref()?
        .targets
        .iter()
        .find(|t| t.name == target)?
        .addresses;
    let ips: Vec<std::net::IpAddr> = addresses.iter().filter_map(|a| a.parse().ok()).collect();
    match (ips.is_empty(), addresses.first()) {
        (false, _) => Some(Endpoint::Addresses(ips)),
        (true, Some(host)) => Some(Endpoint::Hostname {
            name: host.clone(),
            alias_hosted_zone_id: None,
        }),
        (true, None) => None,
    }
}

/// The address of an adopted load balancer: the spoke Service's `status.loadBalancer.ingress`
/// (type LoadBalancer). `Ok(None)` (the target is pending) when the Service does not exist or
/// has no load balancer yet; `Err` when the spoke could not be asked at all.
async fn adopted_endpoint(
    spoke: &crate::api::SpokeCluster,
    service: &crate::api::global_ingress::ServiceRef,
    ctx: &Context,
) -> Result<Option<Endpoint>, ()> {
    // Only until the spoke watch has listed the Service once (see `SpokeSignals`).
    let (client, server) = match super::spoke_cluster::spoke_client(spoke, &ctx.client).await {
        Ok(c) => c,
        Err((reason, message)) => {
            debug!(
                reason,
                message, "spoke not readable; keeping the last known address"
            );
            return Err(());
        }
    };
    let api: Api<Service> = Api::namespaced(client, &service.namespace);
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        api.get_opt(&service.name),
    );
    let svc = match read.await {
        Ok(Ok(Some(svc))) => svc,
        Ok(Ok(None)) => {
            debug!(%server, service = %service.name, "backend Service not found; target pending");
            return Ok(None);
        }
        Ok(Err(error)) => {
            debug!(%server, %error, "cannot read the backend Service; keeping the last known address");
            return Err(());
        }
        Err(_) => {
            debug!(%server, "spoke did not answer in 5s; keeping the last known address");
            return Err(());
        }
    };
    Ok(service_endpoint(&svc))
}

/// Hostnames this object claims that an older GlobalIngress already claims: the older keeps
/// them (ties broken by namespace/name, so both sides agree).
fn hostname_conflicts(gi: &GlobalIngress, ctx: &Context) -> Vec<Problem> {
    let mine = super::index::age_key(gi);
    let views = ctx.index.views(&ctx.ingresses);
    let mut out = Vec::new();
    for (i, host) in gi.spec.hostnames.iter().enumerate() {
        // Only a claim in the same DNSZone conflicts (a private and a public zone may serve the
        // same name on purpose).
        let key = (
            gi.spec.dns_zone_ref.clone(),
            host.trim_end_matches('.').to_ascii_lowercase(),
        );
        let older = views.claims.get(&key).and_then(|claimants| {
            claimants
                .iter()
                .filter(|c| c.uid != gi.metadata.uid && c.age_key < mine)
                .min_by(|a, b| a.age_key.cmp(&b.age_key))
        });
        if let Some(other) = older {
            out.push(Problem {
                reason: events::HOSTNAME_CONFLICT,
                field: format!("spec.hostnames[{i}]"),
                message: format!(
                    "{host} is already claimed by the older GlobalIngress {}/{}",
                    other.age_key.1, other.age_key.2
                ),
            });
        }
    }
    out
}

pub async fn reconcile(gi: Arc<GlobalIngress>, ctx: Arc<Context>) -> Result<Action, Error> {
    super::instrumented(&ctx.metrics, CONTROLLER, reconcile_inner(gi, &ctx)).await
}

async fn reconcile_inner(gi: Arc<GlobalIngress>, ctx: &Context) -> Result<Action, Error> {
    // A GlobalIngress read before the DNSZones and SpokeClusters are would be judged against
    // empty caches (a false DNSZoneNotFound at every start): look again once they are listed.
    let pending = ctx.readiness.pending();
    if pending.contains(&"dnszones") || pending.contains(&"spokeclusters") {
        return Ok(Action::requeue(std::time::Duration::from_millis(200)));
    }
    let namespace = gi.namespace().unwrap_or_default();
    let api: Api<GlobalIngress> = Api::namespaced(ctx.client.clone(), &namespace);
    if !ctx.leadership.is_leader() {
        // Followers keep their caches and plans warm but write nothing.
        let observation = observe(&gi, ctx).await;
        if let Some(zone) = &observation.zone {
            let _ = plan::plan_for(
                &owner_key(&gi),
                &gi.spec,
                zone,
                &observation.targets.iter().cloned().collect(),
            );
        }
        ctx.may_write(CONTROLLER, "status");
        return Ok(Action::requeue(ctx.settings.resync));
    }
    let result = finalizer(&api, FINALIZER, gi, |event| async {
        match event {
            FinalizerEvent::Apply(gi) => apply(&gi, &api, ctx).await,
            FinalizerEvent::Cleanup(gi) => cleanup(&gi, ctx).await,
        }
    })
    .await;
    match result {
        // The finalizer patch tests the list it read from the cache; when the cache was older
        // than the object (our own write has not come back through the watch yet) the server
        // refuses the patch. Not an error: look again shortly.
        Err(finalizer::Error::AddFinalizer(kube::Error::Api(status)))
            if status.code == 422 || status.code == 409 =>
        {
            Ok(Action::requeue(std::time::Duration::from_millis(500)))
        }
        other => other.map_err(|source| Error::Finalizer {
            source: Box::new(source),
        }),
    }
}

async fn apply(
    gi: &GlobalIngress,
    api: &Api<GlobalIngress>,
    ctx: &Context,
) -> Result<Action, Error> {
    let observation = observe(gi, ctx).await;
    let targets: BTreeMap<String, Observed> = observation.targets.iter().cloned().collect();
    let planned = observation
        .zone
        .as_ref()
        .map(|zone| plan::plan_for(&owner_key(gi), &gi.spec, zone, &targets));
    let mut planned = planned;
    let mut problems = observation.problems;
    if let Some(p) = &planned {
        problems.extend(p.problems.iter().cloned());
    }
    // Route 53 health checks first: the records name them (never waiting for a slow sync).
    let publishing = problems.is_empty() && !gi.spec.paused;
    let checks = match &observation.zone_object {
        Some(zone) if publishing => {
            health_checks::before_publish(gi, zone, &observation.targets, ctx)
        }
        _ => health_checks::Step::Skipped,
    };
    let keep_checks = planned.as_mut().is_some_and(|p| checks.attach(p));
    // Publish only a plan without problems: a broken spec leaves the last good records serving.
    let publish = match (&observation.zone_object, &planned) {
        (Some(zone), Some(plan)) if publishing => {
            let (publish, conflicts) = publish(gi, zone, plan, keep_checks, ctx).await;
            problems.extend(conflicts);
            publish
        }
        _ => Publish::Skipped,
    };
    // Checks no record names any more go once the records are written.
    if let (Some(zone), Publish::Done { refused, .. }) = (&observation.zone_object, &publish)
        && refused.is_empty()
    {
        health_checks::after_publish(gi, zone, &checks, ctx);
    }
    let now = super::now_rfc3339();
    let failover = match (&publish, &planned) {
        (Publish::Done { timing, .. }, Some(plan)) => status::failover_record(
            gi.status.as_ref(),
            gi.metadata.generation,
            &plan.active_targets,
            &observation
                .targets
                .iter()
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>(),
            &observation.health.decisions,
            timing.as_ref(),
            observation.decided_at,
        ),
        _ => None,
    };
    let failover = remember_failover(gi, failover, ctx);
    let new = status::compute(&status::Inputs {
        previous: gi.status.as_ref(),
        generation: gi.metadata.generation,
        paused: gi.spec.paused,
        problems: &problems,
        plan: planned.as_ref(),
        targets: &observation.targets,
        health: Some(&observation.health),
        failover: failover.clone().map(|(record, _)| record),
        health_checks: checks.condition(gi),
        publish: &publish,
        now: &now,
    });
    record_condition(ctx);
    if let Some((record, true)) = &failover {
        observe_failover(record, ctx);
    }
    if status::changed(gi.status.as_ref(), &new) && ctx.may_write(CONTROLLER, "status") {
        super::apply_status(api, &gi.name_any(), &new)
            .await
            .map_err(|source| Error::PatchStatus { source })?;
        announce(gi, &new, ctx).await;
        announce_degraded(gi, &new, ctx).await;
        if let Some((record, true)) = &failover {
            ctx.event(
                CONTROLLER,
                &gi.object_ref(&()),
                record.kind == "Failover",
                &record.kind,
                describe_failover(record),
            )
            .await;
        }
    }
    // A recovered target waiting for failbackAfter: look again when it is due — counted from
    // the decision, not from now: a wave of reconciles that finish at different times must
    // still fail back together (one change batch).
    let recheck = observation
        .health
        .decisions
        .iter()
        .filter_map(|d| d.recheck_after)
        .min()
        .map(|d| {
            let elapsed = jiff::Timestamp::now()
                .duration_since(observation.decided_at)
                .unsigned_abs();
            d.saturating_sub(elapsed) + std::time::Duration::from_millis(50)
        });
    Ok(Action::requeue(recheck.map_or(ctx.settings.resync, |r| {
        r.min(ctx.settings.resync)
    })))
}

/// The failover to put in the status, and whether it is new: the one this reconcile made, else
/// the last one this process recorded when the (cached) status does not show it yet — a
/// reconcile reading an older copy must not drop it.
fn remember_failover(
    gi: &GlobalIngress,
    made: Option<crate::api::global_ingress::FailoverRecord>,
    ctx: &Context,
) -> Option<(crate::api::global_ingress::FailoverRecord, bool)> {
    let key = owner_key(gi);
    let mut memory = ctx
        .last_failovers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(record) = made {
        memory.insert(key, record.clone());
        return Some((record, true));
    }
    let shown = gi.status.as_ref().and_then(|s| s.last_failover.as_ref());
    let at = |r: &crate::api::global_ingress::FailoverRecord| {
        r.detected_at.parse::<jiff::Timestamp>().ok()
    };
    match (memory.get(&key), shown) {
        (Some(mine), Some(shown)) if at(shown) >= at(mine) => {
            memory.remove(&key);
            None
        }
        (Some(mine), _) => Some((mine.clone(), false)),
        (None, _) => None,
    }
}

/// `Failover: traffic moved from eu,us to us; detected 10:00:01.200, submitted +0.21s, in sync
/// +0.35s, answer seen +0.40s`.
pub fn describe_failover(r: &crate::api::global_ingress::FailoverRecord) -> String {
    let detected = r.detected_at.parse::<jiff::Timestamp>().ok();
    let step = |label: &str, at: &Option<String>| {
        let at = at.as_deref()?.parse::<jiff::Timestamp>().ok()?;
        let d = at.duration_since(detected?).as_secs_f64();
        Some(format!("{label} +{d:.2}s"))
    };
    let steps: Vec<String> = [
        step("submitted", &r.submitted_at),
        step("in sync", &r.in_sync_at),
        step("answer seen", &r.answer_seen_at),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!(
        "{}: traffic moved from {} to {}; detected {}, {}",
        r.kind,
        if r.from.is_empty() { "-" } else { &r.from },
        if r.to.is_empty() { "-" } else { &r.to },
        r.detected_at,
        steps.join(", ")
    )
}

fn observe_failover(r: &crate::api::global_ingress::FailoverRecord, ctx: &Context) {
    let parse = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<jiff::Timestamp>().ok());
    let Ok(detected) = r.detected_at.parse::<jiff::Timestamp>() else {
        return;
    };
    let (end, until) = match (parse(&r.answer_seen_at), parse(&r.in_sync_at)) {
        (Some(seen), _) => (seen, "answer_seen"),
        (None, Some(sync)) => (sync, "in_sync"),
        _ => return,
    };
    ctx.settings
        .health_metrics
        .failover_seconds
        .get_or_create(&crate::health::manager::FailoverLabels {
            kind: if r.kind == "Failover" {
                "Failover"
            } else {
                "Failback"
            },
            until,
        })
        .observe(end.duration_since(detected).as_secs_f64().max(0.0));
}

/// `namespace/name`: the GlobalIngress as owner of records.
pub(crate) fn owner_key(gi: &GlobalIngress) -> String {
    format!("{}/{}", gi.namespace().unwrap_or_default(), gi.name_any())
}

fn claim_owner(gi: &GlobalIngress, zone: &DNSZone) -> Owner {
    Owner {
        owner: zone.spec.owner_id.clone(),
        resource: owner_key(gi),
    }
}

/// Hands the plan's records to the zone's writer; returns the outcome and, as problems, the
/// hostnames it may not change.
async fn publish(
    gi: &GlobalIngress,
    zone: &DNSZone,
    plan: &Plan,
    keep_health_checks: bool,
    ctx: &Context,
) -> (Publish, Vec<Problem>) {
    if !ctx.may_write(CONTROLLER, "dns") {
        return (Publish::Skipped, Vec::new());
    }
    let writer = match ctx.writers.for_zone(zone).await {
        Ok(w) => w,
        Err((reason, message)) => return (Publish::Failed { reason, message }, Vec::new()),
    };
    let claim = Claim {
        owner: claim_owner(gi, zone),
        names: gi.spec.hostnames.clone(),
        desired: plan.records.iter().map(Rrset::from).collect(),
        keep_health_checks,
    };
    match writer.submit(claim).await {
        Ok(outcome) => {
            let problems = outcome
                .conflicts
                .iter()
                .map(|c| {
                    let index = gi
                        .spec
                        .hostnames
                        .iter()
                        .position(|h| h.trim_end_matches('.').eq_ignore_ascii_case(&c.name))
                        .unwrap_or(0);
                    Problem {
                        reason: events::HOSTNAME_CONFLICT,
                        field: format!("spec.hostnames[{index}]"),
                        message: c.message.clone(),
                    }
                })
                .collect();
            (
                Publish::Done {
                    changes: outcome.changes,
                    refused: outcome.refused,
                    timing: outcome.timing,
                },
                problems,
            )
        }
        Err(e) => (
            Publish::Failed {
                reason: "PublishFailed",
                message: super::error_chain(&e),
            },
            Vec::new(),
        ),
    }
}

/// An Event when the Degraded condition changes status or reason (the guard engaging, a drain
/// refused, targets withdrawn, failing open, and the all-clear).
async fn announce_degraded(
    gi: &GlobalIngress,
    new: &crate::api::GlobalIngressStatus,
    ctx: &Context,
) {
    let before = gi
        .status
        .as_ref()
        .and_then(|s| condition::find(&s.conditions, status::DEGRADED));
    let Some(after) = condition::find(&new.conditions, status::DEGRADED) else {
        return;
    };
    if before.is_none_or(|b| b.status == after.status && b.reason == after.reason) {
        return;
    }
    let reason = match (after.status.as_str(), after.reason.as_str()) {
        ("True", status::reasons::PANIC_THRESHOLD) => events::PANIC_THRESHOLD,
        ("True", status::reasons::DRAIN_REFUSED) => events::DRAIN_REFUSED,
        ("True", status::reasons::TARGETS_WITHDRAWN) => events::TARGETS_WITHDRAWN,
        ("True", status::reasons::ALL_TARGETS_UNHEALTHY) => events::ALL_TARGETS_UNHEALTHY,
        ("True", _) => return,
        _ => events::DEGRADATION_CLEARED,
    };
    let message = if after.message.is_empty() {
        "every target is serving as planned".to_owned()
    } else {
        after.message.clone()
    };
    ctx.event(
        CONTROLLER,
        &gi.object_ref(&()),
        after.status == "True",
        reason,
        message,
    )
    .await;
}

/// An Event when the Ready condition changes status or reason.
async fn announce(gi: &GlobalIngress, new: &crate::api::GlobalIngressStatus, ctx: &Context) {
    let before = gi
        .status
        .as_ref()
        .and_then(|s| condition::find(&s.conditions, READY));
    let Some(after) = condition::find(&new.conditions, READY) else {
        return;
    };
    if before.is_some_and(|b| b.status == after.status && b.reason == after.reason) {
        return;
    }
    let reason = match after.status.as_str() {
        "True" => events::READY,
        "Unknown" => events::PAUSED,
        _ => match after.reason.as_str() {
            events::DNS_ZONE_NOT_FOUND => events::DNS_ZONE_NOT_FOUND,
            events::SPOKE_CLUSTER_NOT_FOUND => events::SPOKE_CLUSTER_NOT_FOUND,
            events::HOSTNAME_CONFLICT => events::HOSTNAME_CONFLICT,
            _ => events::INVALID_SPEC,
        },
    };
    ctx.event(
        CONTROLLER,
        &gi.object_ref(&()),
        after.status == "False",
        reason,
        after.message.clone(),
    )
    .await;
}

fn record_condition(ctx: &Context) {
    // Counted from the shared views (rebuilt at most twice a second), not by scanning the
    // cache in every reconcile.
    let views = ctx.index.views(&ctx.ingresses);
    for s in ["True", "False", "Unknown"] {
        ctx.metrics
            .objects_by_condition
            .get_or_create(&ConditionLabels {
                kind: "GlobalIngress",
                condition: READY,
                status: s.to_owned(),
            })
            .set(views.ready.get(s).copied().unwrap_or(0));
    }
    for s in [
        states::HEALTHY,
        states::UNHEALTHY,
        states::UNKNOWN,
        states::RECOVERING,
        states::AWAITING_FAILBACK,
        states::DRAINED,
        states::HELD,
    ] {
        ctx.settings
            .health_metrics
            .targets
            .get_or_create(&crate::health::manager::HealthLabels {
                health: s.to_owned(),
            })
            .set(views.target_health.get(s).copied().unwrap_or(0));
    }
}

async fn cleanup(gi: &GlobalIngress, ctx: &Context) -> Result<Action, Error> {
    let me = ObjectRef::from_obj(gi);
    ctx.health.unregister(&me);
    ctx.signals.unregister(&me);
    let (reason, note) = match gi.spec.deletion_policy {
        DeletionPolicy::Delete => match ctx.zones.get(&ObjectRef::new(&gi.spec.dns_zone_ref)) {
            Some(zone) => {
                let writer = ctx
                    .writers
                    .for_zone(&zone)
                    .await
                    .map_err(|(reason, message)| Error::Cleanup {
                        message: format!("{reason}: {message}"),
                    })?;
                // Releasing every name deletes exactly this object's records and registry
                // entries; the finalizer stays until that worked.
                let outcome = writer
                    .submit(Claim {
                        owner: claim_owner(gi, &zone),
                        names: Vec::new(),
                        desired: Vec::new(),
                        keep_health_checks: false,
                    })
                    .await
                    .map_err(|e| Error::Cleanup {
                        message: super::error_chain(&e),
                    })?;
                if !outcome.refused.is_empty() {
                    return Err(Error::Cleanup {
                        message: outcome.refused.join("; "),
                    });
                }
                // The records are gone: their health checks may go too.
                health_checks::on_delete(gi, &zone, false, ctx)
                    .await
                    .map_err(|message| Error::Cleanup { message })?;
                (
                    events::DELETED_RECORDS,
                    format!(
                        "deletionPolicy Delete: {} change(s) removed this object's records",
                        outcome.changes
                    ),
                )
            }
            None => (
                events::DELETED_RECORDS,
                format!(
                    "DNSZone {:?} no longer exists: no records to remove",
                    gi.spec.dns_zone_ref
                ),
            ),
        },
        DeletionPolicy::Retain => {
            // The retained records still name their health checks: hand those over too.
            if let Some(zone) = ctx.zones.get(&ObjectRef::new(&gi.spec.dns_zone_ref)) {
                health_checks::on_delete(gi, &zone, true, ctx)
                    .await
                    .map_err(|message| Error::Cleanup { message })?;
            }
            (
                events::RETAINED_RECORDS,
                "deletionPolicy Retain: records and resources are left in place (Route 53 \
                 health checks are re-tagged <ownerId>/retained and no longer managed)"
                    .to_owned(),
            )
        }
    };
    info!(globalingress = %gi.name_any(), policy = ?gi.spec.deletion_policy, "cleaning up");
    ctx.event(
        CONTROLLER,
        &gi.object_ref(&()),
        false,
        reason,
        note.to_owned(),
    )
    .await;
    Ok(Action::await_change())
}

pub fn error_policy(_gi: Arc<GlobalIngress>, _error: &Error, _ctx: Arc<Context>) -> Action {
    super::requeue_after_error()
}
