//! The SpokeCluster reconciler: can the hub reach the spoke's API server, and act in its AWS
//! account?
//!
//! It reads the kubeconfig from the referenced Secret, asks the spoke for its version, and
//! reports `reachable`, `kubernetesVersion`, `lastSeen` and a Ready condition. With `spec.aws`
//! it also asks STS whom the spoke's credentials act as (the role assumed, or the hub's own)
//! and reports `status.aws` and an `AWSReady` condition (see [`crate::spoke::aws`]). An
//! unreachable spoke or a refused role is a condition and an Event, never a crash. Nothing of
//! the kubeconfig or the external id reaches logs, Events or status: only error categories,
//! Secret names and the server's address do.

use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource as _, ResourceExt as _};

use super::{Context, StatusError as Error, events};
use crate::api::condition::{self, Desired, Status};
use crate::api::spoke_cluster::SpokeAwsStatus;
use crate::api::{SpokeCluster, SpokeClusterStatus};
use crate::spoke::aws::Access;

const CONTROLLER: &str = "spokecluster";
const READY: &str = "Ready";
const AWS_READY: &str = "AWSReady";

/// The spoke's version, and what its grant lacks (`None`: everything the hub uses is granted).
async fn check(
    spoke: &SpokeCluster,
    name: &str,
    ctx: &Context,
) -> Result<(String, Option<String>), (&'static str, String)> {
    let (client, server) = crate::spoke::client::connect(spoke, &ctx.deps.client).await?;
    let version =
        match tokio::time::timeout(Duration::from_secs(10), client.apiserver_version()).await {
            Ok(Ok(info)) => info.git_version,
            Ok(Err(e)) => {
                ctx.spoke_permissions.forget(name);
                return Err((
                    "Unreachable",
                    format!("{server}: {}", super::error_chain(&e)),
                ));
            }
            Err(_) => {
                ctx.spoke_permissions.forget(name);
                return Err(("Unreachable", format!("{server}: no answer within 10s")));
            }
        };
    if ctx.spoke_permissions.fresh(name) {
        return Ok((version, None));
    }
    match crate::permissions::missing(&client, &crate::permissions::spoke_required()).await {
        Ok(refused) if refused.is_empty() => {
            ctx.spoke_permissions.granted(name);
            Ok((version, None))
        }
        Ok(refused) => {
            let list: Vec<String> = refused.iter().map(ToString::to_string).collect();
            let message = format!(
                "{server} refuses the hub: {}; grant them (deploy/globalingress-spoke)",
                list.join("; ")
            );
            tracing::error!(spoke = name, "{message}");
            Ok((version, Some(message)))
        }
        // Not a verdict on the grant (the spoke answered its version): checked again next time.
        Err(error) => {
            tracing::warn!(spoke = name, error = %super::error_chain(&error), "could not check the hub's permissions in the spoke");
            Ok((version, None))
        }
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
    let name = spoke.name_any();
    let result = check(&spoke, &name, ctx).await;
    let (reachable, version, desired) = match &result {
        Ok((version, None)) => (
            true,
            Some(version.clone()),
            Desired::new(
                READY,
                Status::True,
                "Reachable",
                format!("API server answers, version {version}"),
            ),
        ),
        Ok((version, Some(refused))) => (
            true,
            Some(version.clone()),
            Desired::new(READY, Status::False, "MissingPermissions", refused.clone()),
        ),
        Err((reason, message)) => (
            false,
            previous.kubernetes_version.clone(),
            Desired::new(READY, Status::False, reason, message.clone()),
        ),
    };
    let access = aws_access(&spoke, &name, ctx).await;
    let mut desired = vec![desired];
    // Without spec.aws there is nothing to check: an AWSReady of an earlier spec goes.
    let kept: Vec<_> = previous
        .conditions
        .iter()
        .filter(|c| access.is_some() || c.type_ != AWS_READY)
        .cloned()
        .collect();
    if let Some(access) = &access {
        desired.push(Desired::new(
            AWS_READY,
            if access.ready {
                Status::True
            } else {
                Status::False
            },
            access.reason,
            access.message.clone(),
        ));
    }
    let conditions = condition::merge(&kept, &desired, spoke.metadata.generation, &now);
    // A failed check keeps the identity AWS gave before (it is what was last known).
    let aws = match &access {
        None => None,
        Some(a) => match &a.identity {
            Some(i) => Some(SpokeAwsStatus {
                account: i.account.clone(),
                arn: i.arn.clone(),
            }),
            None => previous.aws.clone(),
        },
    };
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
        aws,
        conditions,
    };
    let changed = new.observed_generation != previous.observed_generation
        || new.reachable != previous.reachable
        || new.kubernetes_version != previous.kubernetes_version
        || new.last_seen != previous.last_seen
        || new.aws != previous.aws
        || !condition::eq_ignoring_time(&new.conditions, &previous.conditions);
    if changed && ctx.may_write(CONTROLLER, "status") {
        let api: Api<SpokeCluster> = Api::all(ctx.deps.client.clone());
        super::apply_status(ctx, &api, &name, &new)
            .await
            .map_err(|source| Error::PatchStatus { source })?;
        let was_ready = previous
            .conditions
            .iter()
            .find(|c| c.type_ == AWS_READY)
            .map(|c| c.status == "True");
        if let Some(access) = access.filter(|a| was_ready != Some(a.ready)) {
            let reason = if access.ready {
                events::AWS_ACCESS_READY
            } else {
                events::AWS_ACCESS_FAILED
            };
            ctx.event(
                CONTROLLER,
                &spoke.object_ref(&()),
                !access.ready,
                reason,
                format!("{}: {}", access.reason, access.message),
            )
            .await;
        }
        let refused = match &result {
            Ok((_, Some(refused))) => Some(refused),
            _ => None,
        };
        let was_refused = previous
            .conditions
            .iter()
            .any(|c| c.type_ == READY && c.reason == "MissingPermissions");
        if let Some(refused) = refused.filter(|_| !was_refused) {
            ctx.event(
                CONTROLLER,
                &spoke.object_ref(&()),
                true,
                events::SPOKE_MISSING_PERMISSIONS,
                refused.clone(),
            )
            .await;
        }
        if previous.reachable != Some(reachable) {
            let (reason, note) = match &result {
                Ok((v, _)) => (
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

/// The AWS access of the spoke (`None` without `spec.aws`): the last check while it holds,
/// else a new one.
async fn aws_access(spoke: &SpokeCluster, name: &str, ctx: &Context) -> Option<Access> {
    let target = match crate::spoke::aws::target(spoke, &ctx.deps.client).await {
        Ok(None) => {
            ctx.aws_access.forget(name);
            return None;
        }
        Ok(Some(target)) => target,
        Err((reason, message)) => {
            return Some(Access {
                ready: false,
                reason,
                message,
                identity: None,
            });
        }
    };
    if let Some(access) = ctx.aws_access.fresh(name, &target) {
        return Some(access);
    }
    let access = crate::spoke::aws::check(&ctx.deps.accounts, &target).await;
    ctx.aws_access.record(name, &target, &access);
    Some(access)
}

pub fn error_policy(_s: Arc<SpokeCluster>, _e: &Error, _ctx: Arc<Context>) -> Action {
    super::requeue_after_error()
}
