//! The records deployer: hands the plan's record sets to the zone's writer as one claim, with
//! the health-check references resolved from what the health-check deployer returned.

use super::super::Deps;
use super::health_checks::Step;
use crate::api::DNSZone;
use crate::api::global_ingress::GlobalIngress;
use crate::dns::provider::ProviderError;
use crate::dns::records::{Claim, Owner, Rrset};
use crate::dns::zone_writer::{self, OwnerSync, Timing};
use crate::model::dns::RecordSet;
use crate::reconcile::plan::{Problem, reasons};

const CONTROLLER: &str = "globalingress";

/// What happened when the records were published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publish {
    /// Not attempted: the spec has problems, the object is paused, or this replica does not
    /// lead (the records already published stay as they are).
    Skipped,
    /// Accepted by the provider; `refused` lists changes it refused.
    Done {
        changes: usize,
        refused: Vec<String>,
        /// When the changes were sent and seen (nothing written: `None`).
        timing: Option<Timing>,
        /// Where the object's latest change stands (submitted, in sync).
        sync: Option<OwnerSync>,
    },
    /// The zone could not be written: (reason, message).
    Failed {
        reason: &'static str,
        message: String,
    },
}

/// Reasons of a failed publish.
pub mod reasons_failed {
    pub const PUBLISH_FAILED: &str = "PublishFailed";
    /// The DNSZone's hosted zone does not exist at Route 53.
    pub const HOSTED_ZONE_NOT_FOUND: &str = "HostedZoneNotFound";
}

/// The ownership the records of `gi` carry in `zone`.
pub fn claim_owner(gi: &GlobalIngress, zone: &DNSZone) -> Owner {
    Owner {
        owner: zone.spec.owner_id.clone(),
        resource: crate::model::ownership::owner_key(
            gi.metadata.namespace.as_deref().unwrap_or_default(),
            gi.metadata.name.as_deref().unwrap_or_default(),
        ),
    }
}

/// The claim of `gi`'s records in `zone`, with the health-check ids `checks` resolved and the
/// shared record sets (validation CNAMEs, verification TXTs) beside them.
pub fn claim(
    gi: &GlobalIngress,
    zone: &DNSZone,
    records: &[RecordSet],
    shared: &[Rrset],
    checks: &Step,
) -> Claim {
    Claim {
        owner: claim_owner(gi, zone),
        names: gi.spec.hostnames.clone(),
        desired: records
            .iter()
            .map(|r| Rrset::from_planned(r, checks.resolve(r.health_check.as_ref())))
            .collect(),
        shared: shared.to_vec(),
        keep_health_checks: checks.keep_existing(),
    }
}

/// Publishes `records` (their inputs observed at `observed`, see [`zone_writer`]'s "Waves");
/// returns the outcome and, as problems, the hostnames it may not change.
pub async fn deploy(
    gi: &GlobalIngress,
    zone: &DNSZone,
    (records, shared): (&[RecordSet], &[Rrset]),
    checks: &Step,
    observed: u64,
    deps: &Deps,
) -> (Publish, Vec<Problem>) {
    if !deps.gate.may_write(CONTROLLER, "dns") {
        return (Publish::Skipped, Vec::new());
    }
    let writer = match deps.writers.for_zone(zone).await {
        Ok(w) => w,
        Err((reason, message)) => return (Publish::Failed { reason, message }, Vec::new()),
    };
    let claim = claim(gi, zone, records, shared, checks);
    // A wave recomputing these records later needs the shared ones as they are now.
    deps.waves.remember(&claim.owner.resource, shared);
    let outcome = writer.submit_observed(claim, observed).await;
    published(gi, outcome)
}

/// What a writer's answer to a claim of `gi` means for its status.
pub fn published(
    gi: &GlobalIngress,
    outcome: Result<zone_writer::Outcome, zone_writer::Error>,
) -> (Publish, Vec<Problem>) {
    match outcome {
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
                        reason: reasons::HOSTNAME_CONFLICT,
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
                    sync: outcome.sync,
                },
                problems,
            )
        }
        Err(zone_writer::Error::NotLeader) => (Publish::Skipped, Vec::new()),
        Err(e) => (failed(&e, gi), Vec::new()),
    }
}

/// A writer's error as the status says it: a missing hosted zone names the field that points
/// at it.
pub fn failed(e: &zone_writer::Error, gi: &GlobalIngress) -> Publish {
    match e.provider() {
        Some(ProviderError::ZoneNotFound { message }) => Publish::Failed {
            reason: reasons_failed::HOSTED_ZONE_NOT_FOUND,
            message: format!(
                "spec.dnsZoneRef: DNSZone {:?}: {message}",
                gi.spec.dns_zone_ref
            ),
        },
        _ => Publish::Failed {
            reason: reasons_failed::PUBLISH_FAILED,
            message: crate::telemetry::error_chain(e),
        },
    }
}
