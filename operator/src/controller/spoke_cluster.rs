//! The SpokeCluster reconciler: can the hub reach the spoke's API server?
//!
//! It reads the kubeconfig from the referenced Secret, asks the spoke for its version, and
//! reports `reachable`, `kubernetesVersion`, `lastSeen` and a Ready condition. An unreachable
//! spoke is a condition and an Event, never a crash. The kubeconfig's credentials never reach
//! logs, Events or status: only error categories and the server's address do.

use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource as _, ResourceExt as _};

use super::{Context, StatusError as Error, events};
use crate::api::condition::{self, Desired, Status};
use crate::api::{SpokeCluster, SpokeClusterStatus};

const CONTROLLER: &str = "spokecluster";
const READY: &str = "Ready";

async fn check(spoke: &SpokeCluster, ctx: &Context) -> Result<String, (&'static str, String)> {
    let (client, server) = crate::spoke::client::connect(spoke, &ctx.deps.client).await?;
    match tokio::time::timeout(Duration::from_secs(10), client.apiserver_version()).await {
        Ok(Ok(info)) => Ok(info.git_version),
        Ok(Err(e)) => Err((
            "Unreachable",
            format!("{server}: {}", super::error_chain(&e)),
        )),
        Err(_) => Err(("Unreachable", format!("{server}: no answer within 10s"))),
    }
}

pub async fn reconcile(spoke: Arc<SpokeCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    super::instrumented(&ctx.metrics, CONTROLLER, reconcile_inner(spoke, &ctx)).await
}

async fn reconcile_inner(spoke: Arc<SpokeCluster>, ctx: &Context) -> Result<Action, Error> {
    let requeue = Action::requeue(ctx.settings.spoke_check_interval);
    if !ctx.deps.gate.leadership.is_leader() {
        ctx.may_write(CONTROLLER, "status");
        return Ok(requeue);
    }
    let now = super::now_rfc3339();
    let previous = spoke.status.clone().unwrap_or_default();
    let result = check(&spoke, ctx).await;
    let (reachable, version, desired) = match &result {
        Ok(version) => (
            true,
            Some(version.clone()),
            Desired::new(
                READY,
                Status::True,
                "Reachable",
                format!("API server answers, version {version}"),
            ),
        ),
        Err((reason, message)) => (
            false,
            previous.kubernetes_version.clone(),
            Desired::new(READY, Status::False, reason, message.clone()),
        ),
    };
    let conditions = condition::merge(
        &previous.conditions,
        &[desired],
        spoke.metadata.generation,
        &now,
    );
    // lastSeen moves on every successful check, but is written only with another change or when
    // the stored value is over a minute old: a status write per check would be pure noise.
    let stale = previous
        .last_seen
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .is_none_or(|t| {
            jiff::Timestamp::now().duration_since(t) > jiff::SignedDuration::from_secs(60)
        });
    let last_seen = if reachable && stale {
        Some(now.clone())
    } else {
        previous.last_seen.clone()
    };
    let new = SpokeClusterStatus {
        observed_generation: spoke.metadata.generation,
        reachable: Some(reachable),
        kubernetes_version: version,
        last_seen,
        conditions,
    };
    let changed = new.observed_generation != previous.observed_generation
        || new.reachable != previous.reachable
        || new.kubernetes_version != previous.kubernetes_version
        || new.last_seen != previous.last_seen
        || !condition::eq_ignoring_time(&new.conditions, &previous.conditions);
    if changed && ctx.may_write(CONTROLLER, "status") {
        let api: Api<SpokeCluster> = Api::all(ctx.deps.client.clone());
        super::apply_status(&api, &spoke.name_any(), &new)
            .await
            .map_err(|source| Error::PatchStatus { source })?;
        if previous.reachable != Some(reachable) {
            let (reason, note) = match &result {
                Ok(v) => (
                    events::SPOKE_REACHABLE,
                    format!("spoke API server reachable (version {v})"),
                ),
                Err((r, m)) => (events::SPOKE_UNREACHABLE, format!("{r}: {m}")),
            };
            ctx.event(
                CONTROLLER,
                &spoke.object_ref(&()),
                result.is_err(),
                reason,
                note,
            )
            .await;
        }
    }
    Ok(requeue)
}

pub fn error_policy(_s: Arc<SpokeCluster>, _e: &Error, _ctx: Arc<Context>) -> Action {
    super::requeue_after_error()
}
