//! The wave task: health events from the prober ([`crate::health::Health`]) and changes of
//! DNSZones and SpokeClusters become one publish of every GlobalIngress concerned
//! ([`crate::reconcile::wave`]), then a reconcile of each for the status and Events. Events queued while a wave is taken up join it. Objects whose plan
//! changes again after a while (a recovered target's `failbackAfter`) come back as one wave when
//! they are due.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::channel::mpsc;
use kube::runtime::reflector::ObjectRef;
use tracing::{debug, info};

use super::Context;
use crate::api::GlobalIngress;
use crate::reconcile::wave;

type GiRef = ObjectRef<GlobalIngress>;

/// Objects due within one such step of each other join one wave.
const DUE_STEP: Duration = Duration::from_millis(100);

/// Runs until the prober or the context is gone; `again` sends to `waves`.
pub async fn run(
    ctx: Weak<Context>,
    (again, mut waves): (
        mpsc::UnboundedSender<Vec<GiRef>>,
        mpsc::UnboundedReceiver<Vec<GiRef>>,
    ),
    trigger: mpsc::UnboundedSender<GiRef>,
) {
    while let Some(first) = waves.next().await {
        let started = Instant::now();
        let mut refs: HashSet<GiRef> = first.into_iter().collect();
        while let Ok(more) = waves.try_recv() {
            refs.extend(more);
        }
        let Some(ctx) = ctx.upgrade() else { return };
        let trigger = trigger.clone();
        let again = again.clone();
        // Not awaited here: the next event's wave need not wait for this one's answers (the
        // writers keep the order, the observations' numbers the outcome).
        tokio::spawn(async move {
            let gis: Vec<Arc<GlobalIngress>> = refs
                .iter()
                .filter_map(|r| ctx.deps.ingresses.get(r))
                .collect();
            let (report, due) = wave::publish(gis, &ctx.deps).await;
            schedule(due, &again);
            let metrics = &ctx.settings.health_metrics;
            metrics
                .wave_seconds
                .observe(started.elapsed().as_secs_f64());
            metrics.wave_objects.inc_by(report.claims as u64);
            if report.changes > 0 || report.failed > 0 {
                info!(
                    objects = report.objects,
                    claims = report.claims,
                    zones = report.zones,
                    changes = report.changes,
                    failed = report.failed,
                    seconds = started.elapsed().as_secs_f64(),
                    "health wave published"
                );
            } else {
                debug!(?report, "health wave: nothing to change");
            }
            for r in refs {
                let _ = trigger.unbounded_send(r);
            }
        });
    }
}

/// Sends `due` back as waves when due, those within [`DUE_STEP`] of each other together.
fn schedule(due: wave::Due, again: &mpsc::UnboundedSender<Vec<GiRef>>) {
    let mut steps: BTreeMap<u128, Vec<GiRef>> = BTreeMap::new();
    for (gi, after) in due {
        steps
            .entry(after.as_millis().div_ceil(DUE_STEP.as_millis()))
            .or_default()
            .push(gi);
    }
    for (step, refs) in steps {
        let again = again.clone();
        let after = DUE_STEP * u32::try_from(step).unwrap_or(u32::MAX);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = again.unbounded_send(refs);
        });
    }
}
