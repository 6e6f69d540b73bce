//! apply: one deployer per resource kind, in dependency order — Route 53 health checks (the
//! records name them), then the records through the zone writer; what the records no longer
//! name is pruned after them. Deletion runs the other way: records first, then health checks.
//!
//! The stack is destructured without `..`: a resource kind added to [`Stack`] does not compile
//! until apply handles it.

pub mod health_checks;
pub mod records;

use kube::runtime::reflector::ObjectRef;

use super::Deps;
use super::plan::{Plan, Problem};
use crate::api::DNSZone;
use crate::api::global_ingress::{DeletionPolicy, GlobalIngress};
use crate::dns::provider::ProviderError;
use crate::dns::records::Claim;
use crate::model::stack::Stack;
pub use health_checks::Step;
pub use records::Publish;

/// Annotation letting a GlobalIngress be deleted although its records (or health checks)
/// cannot be removed — its zone is unreachable, its TSIG key wrong: with `"true"`, deletion
/// completes and a Warning Event `RecordsAbandoned` says what was left behind.
pub const ABANDON_RECORDS: &str = "globalingress.io/abandon-records";

/// What one apply did.
#[derive(Debug)]
pub struct Applied {
    pub publish: Publish,
    /// Where the Route 53 health checks stand.
    pub checks: Step,
    /// Hostnames the zone writer would not change.
    pub conflicts: Vec<Problem>,
}

/// Registers what the plan follows — the endpoints to probe and the spoke backends to watch —
/// on leader and followers alike (a follower's prober is warm when it takes over).
pub fn follow(gi: &GlobalIngress, plan: &Plan, deps: &Deps) {
    let me = ObjectRef::from_obj(gi);
    let threshold = u32::try_from(gi.spec.failover.panic_threshold).unwrap_or(50);
    deps.health
        .register(me.clone(), plan.probes.clone(), threshold);
    deps.signals.register(me, plan.backends.clone());
}

/// Applies the plan's stack in `zone`; with `publishing` false (problems, paused) nothing is
/// changed and the records published before stay.
pub async fn apply(
    gi: &GlobalIngress,
    zone: Option<&DNSZone>,
    plan: &Plan,
    publishing: bool,
    deps: &Deps,
) -> Applied {
    let Stack {
        health_checks,
        records,
    } = &plan.desired;
    let Some(zone) = zone.filter(|_| publishing && plan.routed) else {
        return Applied {
            publish: Publish::Skipped,
            checks: Step::Skipped,
            conflicts: Vec::new(),
        };
    };
    let checks = health_checks::before_publish(gi, zone, health_checks, deps);
    let (publish, conflicts) = records::deploy(gi, zone, records, &checks, deps).await;
    // Checks no record names any more go once the records are written.
    if let Publish::Done { refused, .. } = &publish
        && refused.is_empty()
    {
        health_checks::after_publish(gi, zone, &checks, deps);
    }
    Applied {
        publish,
        checks,
        conflicts,
    }
}

/// What deleting a GlobalIngress did, for its Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub reason: &'static str,
    pub note: String,
    pub warning: bool,
}

/// Event reasons of deletion.
pub mod deletion_reasons {
    pub const DELETED_RECORDS: &str = "DeletedRecords";
    pub const RETAINED_RECORDS: &str = "RetainedRecords";
    pub const RECORDS_ABANDONED: &str = "RecordsAbandoned";
}

/// Removes (or, with `Retain`, hands over) what `gi` owns: records first, then health checks.
/// `Err` keeps the finalizer (the message says why); with [`ABANDON_RECORDS`] what cannot be
/// removed is left behind instead, and said so.
pub async fn delete(gi: &GlobalIngress, deps: &Deps) -> Result<Deleted, String> {
    let me = ObjectRef::from_obj(gi);
    deps.health.unregister(&me);
    deps.signals.unregister(&me);
    let zone = deps.zones.get(&ObjectRef::new(&gi.spec.dns_zone_ref));
    let abandon = gi
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ABANDON_RECORDS))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let left_behind = |why: String| {
        let hosts = gi.spec.hostnames.join(", ");
        Deleted {
            reason: deletion_reasons::RECORDS_ABANDONED,
            note: format!(
                "{ABANDON_RECORDS}: left behind in DNSZone {:?}: the records of {hosts} and their \
                 _gi registry entries, and any Route 53 health checks tagged with this object \
                 ({why}); remove them by hand",
                gi.spec.dns_zone_ref
            ),
            warning: true,
        }
    };
    match gi.spec.deletion_policy {
        DeletionPolicy::Retain => {
            // The retained records still name their health checks: hand those over too.
            if let Some(zone) = &zone {
                health_checks::on_delete(gi, zone, true, deps).await?;
            }
            Ok(Deleted {
                reason: deletion_reasons::RETAINED_RECORDS,
                note: "deletionPolicy Retain: records and resources are left in place (Route 53 \
                       health checks are re-tagged <ownerId>/retained and no longer managed)"
                    .to_owned(),
                warning: false,
            })
        }
        DeletionPolicy::Delete => {
            let Some(zone) = zone else {
                return Ok(Deleted {
                    reason: deletion_reasons::DELETED_RECORDS,
                    note: format!(
                        "DNSZone {:?} no longer exists: no records to remove",
                        gi.spec.dns_zone_ref
                    ),
                    warning: false,
                });
            };
            let records = match release_records(gi, &zone, deps).await {
                Ok(records) => records,
                Err(why) if abandon => return Ok(left_behind(why)),
                Err(why) => {
                    return Err(format!(
                        "{why} (annotate {ABANDON_RECORDS}=true to delete the object anyway, \
                         leaving them behind)"
                    ));
                }
            };
            // The records are gone: their health checks may go too.
            match health_checks::on_delete(gi, &zone, false, deps).await {
                Ok(()) => {}
                Err(why) if abandon => return Ok(left_behind(why)),
                Err(why) => return Err(why),
            }
            Ok(Deleted {
                reason: deletion_reasons::DELETED_RECORDS,
                note: records,
                warning: false,
            })
        }
    }
}

/// Releases every name `gi` holds in `zone`: exactly its records and registry entries go.
/// `Ok` says what was done; a hosted zone that does not exist holds nothing of ours.
async fn release_records(
    gi: &GlobalIngress,
    zone: &DNSZone,
    deps: &Deps,
) -> Result<String, String> {
    let writer = deps
        .writers
        .for_zone(zone)
        .await
        .map_err(|(reason, message)| format!("{reason}: {message}"))?;
    let outcome = writer
        .submit(Claim {
            owner: records::claim_owner(gi, zone),
            names: Vec::new(),
            desired: Vec::new(),
            keep_health_checks: false,
        })
        .await;
    match outcome {
        Ok(outcome) if outcome.refused.is_empty() => Ok(format!(
            "deletionPolicy Delete: {} change(s) removed this object's records",
            outcome.changes
        )),
        Ok(outcome) => Err(outcome.refused.join("; ")),
        Err(e) => match e.provider() {
            Some(ProviderError::ZoneNotFound { message }) => Ok(format!(
                "deletionPolicy Delete: nothing to remove ({message}: none of our records can \
                 exist there)"
            )),
            _ => Err(crate::telemetry::error_chain(&e)),
        },
    }
}
