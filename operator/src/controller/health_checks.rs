//! The leader's garbage collection of Route 53 health checks whose GlobalIngress target is gone.

use std::collections::HashSet;

use kube::api::Api;
use tracing::{info, warn};

use super::Context;
use crate::api::GlobalIngress;

const CONTROLLER: &str = "globalingress";

/// Every `interval` (the first time after one interval, when every object has been reconciled),
/// the leader deletes Route 53 health checks tagged with a Route 53 zone's owner whose
/// GlobalIngress target no longer exists. A target counts as live while its GlobalIngress lists
/// it in its spec or its status (paused or broken objects keep what their records name).
pub async fn collect_garbage(ctx: std::sync::Weak<Context>, interval: std::time::Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(ctx) = ctx.upgrade() else { return };
        if !ctx.deps.gate.leadership.is_leader() {
            continue;
        }
        let owners: std::collections::BTreeSet<String> = ctx
            .deps
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
        let all: Api<GlobalIngress> = Api::all(ctx.deps.client.clone());
        let live: HashSet<(String, String)> = match all.list(&Default::default()).await {
            Ok(list) => list
                .items
                .iter()
                .flat_map(|gi| {
                    let key = crate::controller::global_ingress::owner_key(gi);
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
                .deps
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
                    warn!(owner, error = %crate::telemetry::error_chain(&e), "health-check garbage collection failed");
                }
            }
        }
    }
}
