//! The GlobalIngress reconciler: the wiring of observe -> plan -> apply -> status
//! ([`crate::reconcile`]) with the finalizer, leadership, Events and requeues.
//!
//! observe reads only from the watch caches (no API calls); plan is pure; apply runs the
//! deployers (health checks, then records); the status is patched only when something but a
//! timestamp changed. A failed publish is retried with a jittered backoff (about 1 s growing to
//! 30 s); a change waiting for Route 53's INSYNC is looked at again when the zone writer says it
//! is in sync.

use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, Event as FinalizerEvent, finalizer};
use kube::{Resource as _, ResourceExt as _};
use tracing::info;

use super::{Context, events};
use crate::api::condition;
use crate::api::global_ingress::GlobalIngress;
use crate::model::health::states;
use crate::reconcile::apply::{self, Publish};
use crate::reconcile::status::{self, READY};
use crate::reconcile::{observe, plan};
use crate::telemetry::ConditionLabels;

pub const FINALIZER: &str = "globalingress.io/cleanup";
const CONTROLLER: &str = "globalingress";

/// The longest one reconcile may take (a hub call or a zone writer that hangs must not hold the
/// object forever; kube's client has no read timeout of its own).
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(120);

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
    #[error("the hub did not answer within {0:?}")]
    HubTimeout(Duration),
    #[error("the reconcile did not finish within {0:?}")]
    TimedOut(Duration),
}

impl super::Category for Error {
    const ALL: &'static [&'static str] = &[
        "PatchStatus",
        "Finalizer",
        "Cleanup",
        "HubTimeout",
        "TimedOut",
    ];

    fn category(&self) -> &'static str {
        match self {
            Self::PatchStatus { .. } => "PatchStatus",
            Self::Finalizer { .. } => "Finalizer",
            Self::Cleanup { .. } => "Cleanup",
            Self::HubTimeout(_) => "HubTimeout",
            Self::TimedOut(_) => "TimedOut",
        }
    }
}

pub use crate::reconcile::observe::APPROVE_FAILBACK;

pub async fn reconcile(gi: Arc<GlobalIngress>, ctx: Arc<Context>) -> Result<Action, Error> {
    super::instrumented(&ctx.metrics, CONTROLLER, async {
        tokio::time::timeout(RECONCILE_TIMEOUT, reconcile_inner(gi, &ctx))
            .await
            .unwrap_or(Err(Error::TimedOut(RECONCILE_TIMEOUT)))
    })
    .await
}

async fn reconcile_inner(gi: Arc<GlobalIngress>, ctx: &Context) -> Result<Action, Error> {
    // A GlobalIngress read before the DNSZones and SpokeClusters are would be judged against
    // empty caches (a false DNSZoneNotFound at every start): look again once they are listed.
    let pending = ctx.readiness.pending();
    if pending.contains(&"dnszones") || pending.contains(&"spokeclusters") {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let namespace = gi.namespace().unwrap_or_default();
    let api: Api<GlobalIngress> = Api::namespaced(ctx.deps.client.clone(), &namespace);
    if !ctx.deps.gate.leadership.is_leader() {
        // Followers keep their caches, plans and probes warm but write nothing.
        let snapshot = observe::gather(&gi, &ctx.deps).await;
        let plan = plan::plan(&snapshot.input(&gi));
        apply::follow(&gi, &plan, &ctx.deps);
        ctx.deps.gate.may_write(CONTROLLER, "status");
        return Ok(Action::requeue(ctx.settings.resync));
    }
    // The finalizer, added under the hub's write permits (kube's helper would add it outside
    // them: at a cold start that was 10,000 patches at once, and the hub timing out on them).
    let gi = if gi.metadata.deletion_timestamp.is_none()
        && !gi.finalizers().iter().any(|f| f == FINALIZER)
    {
        match add_finalizer(&api, &gi, ctx).await? {
            Some(gi) => gi,
            // Not the latest copy (our own write has not come back through the watch yet), or
            // gone: look again shortly.
            None => return Ok(Action::requeue(Duration::from_millis(500))),
        }
    } else {
        gi
    };
    let result = finalizer(&api, FINALIZER, gi, |event| async {
        match event {
            FinalizerEvent::Apply(gi) => reconcile_apply(&gi, &api, ctx).await,
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
            Ok(Action::requeue(Duration::from_millis(500)))
        }
        other => other.map_err(|source| Error::Finalizer {
            source: Box::new(source),
        }),
    }
}

/// Adds [`FINALIZER`] to `gi` as read (its resourceVersion is the precondition); the object
/// with it, or `None` when the copy read was not the latest (or the object is gone).
async fn add_finalizer(
    api: &Api<GlobalIngress>,
    gi: &GlobalIngress,
    ctx: &Context,
) -> Result<Option<Arc<GlobalIngress>>, Error> {
    let mut finalizers = gi.finalizers().to_vec();
    finalizers.push(FINALIZER.to_owned());
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": gi.resource_version(),
        }
    });
    let _permit = ctx.hub_writes.acquire().await;
    if !ctx.deps.gate.leadership.is_leader() {
        return Ok(None);
    }
    let (name, params, patch) = (
        gi.name_any(),
        kube::api::PatchParams::default(),
        kube::api::Patch::Merge(&patch),
    );
    let call = api.patch(&name, &params, &patch);
    match tokio::time::timeout(super::CALL_TIMEOUT, call).await {
        Ok(Ok(updated)) => Ok(Some(Arc::new(updated))),
        Ok(Err(kube::Error::Api(status))) if status.code == 409 || status.code == 404 => Ok(None),
        Ok(Err(source)) => Err(Error::Finalizer {
            source: Box::new(finalizer::Error::AddFinalizer(source)),
        }),
        Err(_) => Err(Error::HubTimeout(super::CALL_TIMEOUT)),
    }
}

async fn reconcile_apply(
    gi: &GlobalIngress,
    api: &Api<GlobalIngress>,
    ctx: &Context,
) -> Result<Action, Error> {
    let snapshot = observe::gather(gi, &ctx.deps).await;
    let plan = plan::plan(&snapshot.input(gi));
    apply::follow(gi, &plan, &ctx.deps);
    let mut problems = snapshot.problems.clone();
    problems.extend(plan.problems.iter().cloned());
    // Publish only a plan without problems: a broken spec leaves the last good records serving.
    let publishing = problems.is_empty() && !gi.spec.paused;
    let applied = apply::apply(
        gi,
        snapshot.zone_object.as_deref(),
        (&plan, snapshot.observed),
        publishing,
        &ctx.deps,
    )
    .await;
    problems.extend(applied.conflicts.iter().cloned());
    let now = super::now_rfc3339();
    let made = match (&applied.publish, plan.routed) {
        // Nothing written by this claim: the move was published by a wave before it (the
        // owner's latest change).
        (Publish::Done { timing, sync, .. }, true) => status::failover_record(
            gi.status.as_ref(),
            gi.metadata.generation,
            &plan.active_targets,
            &plan
                .targets
                .iter()
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>(),
            &plan.health.decisions,
            timing
                .or_else(|| sync.as_ref().map(status::timing_of))
                .as_ref(),
            snapshot.now,
        ),
        _ => None,
    };
    let mut failover = remember_failover(gi, made, ctx);
    // A failover submitted before, now reported in sync: its timeline is complete.
    let completed = match (&failover, &applied.publish) {
        (Some((record, false)), Publish::Done { sync, .. }) => {
            status::completed_failover(record, sync.as_ref())
        }
        (None, Publish::Done { sync, .. }) => gi
            .status
            .as_ref()
            .and_then(|s| s.last_failover.as_ref())
            .and_then(|record| status::completed_failover(record, sync.as_ref())),
        _ => None,
    };
    if let Some(record) = completed {
        observe_failover(&record, ctx);
        remember(gi, &record, ctx);
        failover = Some((record, false));
    }
    let new = status::compute(&status::Inputs {
        previous: gi.status.as_ref(),
        generation: gi.metadata.generation,
        paused: gi.spec.paused,
        problems: &problems,
        plan: plan.routed.then_some(&plan),
        targets: &plan.targets,
        health: Some(&plan.health),
        failover: failover.clone().map(|(record, _)| record),
        health_checks: status::health_checks(&applied.checks, gi.status.as_ref()),
        publish: &applied.publish,
        load_balancers: &applied.load_balancers,
        certificates: match (&applied.certificates, &applied.load_balancers) {
            (Some(c), _) => status::CertificatesStep::Done(c),
            (None, apply::load_balancers::Step::Skipped)
                if plan::certificates::terminates(&gi.spec) =>
            {
                status::CertificatesStep::Skipped
            }
            _ => status::CertificatesStep::NotUsed,
        },
        backend_policies: applied.backend_policies.as_ref(),
        endpoint_services: match (&applied.endpoint_services, &applied.load_balancers) {
            (Some(s), _) => status::ServicesStep::Done(s),
            (None, apply::load_balancers::Step::Skipped)
                if gi.spec.targets.iter().any(|t| t.private_link.is_some()) =>
            {
                status::ServicesStep::Skipped
            }
            _ => status::ServicesStep::NotUsed,
        },
        now: &now,
    });
    record_condition(ctx);
    for note in &applied.notes {
        ctx.event(
            CONTROLLER,
            &gi.object_ref(&()),
            note.warning,
            note.reason,
            note.message.clone(),
        )
        .await;
    }
    if let Some((record, true)) = &failover {
        observe_failover(record, ctx);
    }
    if status::changed(gi.status.as_ref(), &new) && ctx.deps.gate.may_write(CONTROLLER, "status") {
        super::apply_status(ctx, api, &gi.name_any(), &new)
            .await
            .map_err(|e| match e {
                super::HubCallError::Api(source) => Error::PatchStatus { source },
                super::HubCallError::Timeout(d) => Error::HubTimeout(d),
            })?;
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
    // A failed publish: again soon, then less and less often (not at the next resync, and not
    // in a hot loop against a zone that is down).
    let key = owner_key(gi);
    if let Publish::Failed { .. } = &applied.publish {
        return Ok(Action::requeue(ctx.publish_backoff.failed(&key)));
    }
    ctx.publish_backoff.succeeded(&key);
    // A load balancer still provisioning (or failing): look again soon; that is progress, not
    // an error.
    if let apply::load_balancers::Step::Done(reports) = &applied.load_balancers
        && reports.iter().any(|r| {
            r.waiting.is_some()
                || r.error.is_some()
                // Created just now: its records can be written at once.
                || (plan.pending_targets.contains(&r.target) && r.dns_name.is_some())
        })
    {
        let failing = reports.iter().any(|r| r.error.is_some());
        let waiting = reports.iter().any(|r| r.waiting.is_some());
        return Ok(Action::requeue(if failing {
            Duration::from_secs(10).min(ctx.settings.resync)
        } else if waiting {
            Duration::from_secs(2)
        } else {
            Duration::from_millis(100)
        }));
    }
    // A recovered target waiting for failbackAfter: look again when it is due — counted from
    // the decision, not from now: a wave of reconciles that finish at different times must
    // still fail back together (one change batch).
    let recheck = plan.due_in(snapshot.now, jiff::Timestamp::now());
    // `healthCheck.via: TargetHealth`: the verdict is read at every interval (no prober does).
    let recheck = match gi.spec.health_check.via {
        crate::api::global_ingress::ProbeVia::TargetHealth => {
            Some(recheck.map_or(gi.spec.health_check.interval(), |r| {
                r.min(gi.spec.health_check.interval())
            }))
        }
        _ => recheck,
    };
    Ok(Action::requeue(recheck.map_or(ctx.settings.resync, |r| {
        r.min(ctx.settings.resync)
    })))
}

/// Remembers `record` as the last failover of `gi` (see [`remember_failover`]).
fn remember(
    gi: &GlobalIngress,
    record: &crate::api::global_ingress::FailoverRecord,
    ctx: &Context,
) {
    ctx.last_failovers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(owner_key(gi), record.clone());
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
    let views = ctx.deps.index.views(&ctx.deps.ingresses);
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

/// `namespace/name`: the GlobalIngress as owner of records and resources.
pub(crate) fn owner_key(gi: &GlobalIngress) -> String {
    crate::model::ownership::owner_key(&gi.namespace().unwrap_or_default(), &gi.name_any())
}

async fn cleanup(gi: &GlobalIngress, ctx: &Context) -> Result<Action, Error> {
    let deleted = apply::delete(gi, &ctx.deps)
        .await
        .map_err(|message| Error::Cleanup { message })?;
    info!(globalingress = %gi.name_any(), policy = ?gi.spec.deletion_policy, reason = deleted.reason, "cleaned up");
    ctx.event(
        CONTROLLER,
        &gi.object_ref(&()),
        deleted.warning,
        deleted.reason,
        deleted.note,
    )
    .await;
    ctx.publish_backoff.succeeded(&owner_key(gi));
    Ok(Action::await_change())
}

pub fn error_policy(_gi: Arc<GlobalIngress>, _error: &Error, _ctx: Arc<Context>) -> Action {
    super::requeue_after_error()
}
