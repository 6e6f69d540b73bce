//! status: the GlobalIngress status computed from the plan, what apply did and the problems
//! observe found. Pure: one input struct, no client, no clock (`now` is an argument).

use crate::api::condition::{self, Desired, Status};
use crate::api::global_ingress::{FailoverRecord, GlobalIngressStatus, TargetStatus};
use crate::dns::zone_writer::{OwnerSync, Timing};
use crate::model::dns::RecordRouting;
use crate::model::health::{Guarded, TargetDecision, states};
use crate::model::target::{Endpoint, Observed};
pub use crate::reconcile::apply::Publish;
use crate::reconcile::apply::Step;
use crate::reconcile::apply::load_balancers::Step as LbStep;
use crate::reconcile::plan::{Plan, Problem};

pub use crate::api::global_ingress::conditions::{
    CERTIFICATES_READY, DEGRADED, DNS_SYNCED, HEALTH_CHECKS_SYNCED, LOAD_BALANCERS_READY, READY,
};
use crate::reconcile::apply::certificates::Resolved;

#[path = "status_resources.rs"]
mod resources;
pub use resources::{CertificatesStep, ServicesStep};
use resources::{
    certificates_condition, load_balancer_status, load_balancers_condition, private_link_status,
};

/// Reasons of conditions.
pub mod reasons {
    pub const RECONCILED: &str = "Reconciled";
    pub const PAUSED: &str = "Paused";
    pub const NOT_PUBLISHED: &str = "NotPublished";
    pub const IN_SYNC: &str = "InSync";
    pub const CHANGE_REFUSED: &str = "ChangeRefused";
    /// Accepted by the provider, not reported in sync yet (Route 53 takes tens of seconds).
    pub const SUBMITTED: &str = "Submitted";
    pub const AS_EXPECTED: &str = "AsExpected";
    pub const ALL_TARGETS_UNHEALTHY: &str = "AllTargetsUnhealthy";
    pub const TARGETS_PENDING: &str = "TargetsPending";
    pub const PANIC_THRESHOLD: &str = "PanicThreshold";
    pub const DRAIN_REFUSED: &str = "DrainRefused";
    pub const TARGETS_WITHDRAWN: &str = "TargetsWithdrawn";
    /// A Route 53 health-check sync is running.
    pub const SYNCING: &str = "Syncing";
    pub const HEALTH_CHECKS_FAILED: &str = "HealthChecksFailed";
    pub use crate::aws::route53_health::QUOTA_EXCEEDED_REASON;
}

/// Everything the status is computed from.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub previous: Option<&'a GlobalIngressStatus>,
    pub generation: Option<i64>,
    pub paused: bool,
    /// Problems found while observing (missing references, conflicts) and by the plan.
    pub problems: &'a [Problem],
    pub plan: Option<&'a Plan>,
    pub targets: &'a [(String, Observed)],
    /// Each target's health decision, in the order of `targets` (none: not probed).
    pub health: Option<&'a Guarded>,
    /// The failover this reconcile made, if any (else the previous one is kept).
    pub failover: Option<FailoverRecord>,
    /// The Route 53 health checks' condition; `None` removes it (no checks used).
    pub health_checks: Option<Desired>,
    pub publish: &'a Publish,
    /// Where the provisioned load balancers stand.
    pub load_balancers: &'a LbStep,
    /// Where their certificates stand.
    pub certificates: CertificatesStep<'a>,
    /// Where the PrivateLink endpoint services stand.
    pub endpoint_services: ServicesStep<'a>,
    /// Each target's backend NetworkPolicy (`None`: not applied this time, the last ones hold).
    pub backend_policies: Option<&'a std::collections::BTreeMap<String, String>>,
    /// RFC 3339, for transition times.
    pub now: &'a str,
}

pub fn compute(input: &Inputs<'_>) -> GlobalIngressStatus {
    let ready = if input.paused {
        Desired::new(
            READY,
            Status::Unknown,
            reasons::PAUSED,
            "spec.paused is true: nothing outside Kubernetes is changed",
        )
    } else if let Some(first) = input.problems.first() {
        let message: Vec<String> = input
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect();
        Desired::new(READY, Status::False, first.reason, message.join("; "))
    } else {
        let records = input.plan.map_or(0, |p| p.desired.records.len());
        let mut message = format!("{records} record set(s) planned");
        if let Some(p) = input.plan.filter(|p| !p.pending_targets.is_empty()) {
            message.push_str(&format!(
                "; waiting for the endpoint of {}",
                p.pending_targets.join(", ")
            ));
        }
        Desired::new(READY, Status::True, reasons::RECONCILED, message)
    };
    let dns = match (input.paused, input.publish) {
        (true, _) => Desired::new(
            DNS_SYNCED,
            Status::Unknown,
            reasons::PAUSED,
            "paused: records are not changed",
        ),
        (false, Publish::Skipped) => Desired::new(
            DNS_SYNCED,
            Status::False,
            reasons::NOT_PUBLISHED,
            "not published while the spec has problems (see Ready); records published before stay",
        ),
        (false, Publish::Done { refused, .. }) if !refused.is_empty() => Desired::new(
            DNS_SYNCED,
            Status::False,
            reasons::CHANGE_REFUSED,
            format!("the DNS provider refused: {}", refused.join("; ")),
        ),
        (
            false,
            Publish::Done {
                sync:
                    Some(OwnerSync {
                        in_sync_at: None,
                        submitted_at,
                        change_id,
                        ..
                    }),
                ..
            },
        ) => Desired::new(
            DNS_SYNCED,
            Status::False,
            reasons::SUBMITTED,
            format!(
                "change {} submitted at {}; waiting for the provider to report it in sync",
                change_id.as_deref().unwrap_or("-"),
                millis(*submitted_at)
            ),
        ),
        (false, Publish::Done { changes, .. }) => Desired::new(
            DNS_SYNCED,
            Status::True,
            reasons::IN_SYNC,
            format!("records match the plan ({changes} change(s) written this time)"),
        ),
        (false, Publish::Failed { reason, message }) => {
            Desired::new(DNS_SYNCED, Status::False, reason, message.clone())
        }
    };
    let withdrawn: Vec<String> = input
        .targets
        .iter()
        .zip(
            input
                .health
                .map(|h| h.decisions.as_slice())
                .unwrap_or_default(),
        )
        .filter(|(_, d)| !d.up)
        .map(|((name, _), d)| format!("{name}: {}", d.message))
        .collect();
    let degraded = match input.plan {
        _ if input.health.is_some_and(|h| h.panic) => Desired::new(
            DEGRADED,
            Status::True,
            reasons::PANIC_THRESHOLD,
            "more than failover.panicThreshold of all probed endpoints failed at once: the hub \
             may be the one cut off, so no target is withdrawn until the share falls back",
        ),
        Some(p) if p.failing_open => Desired::new(
            DEGRADED,
            Status::True,
            reasons::ALL_TARGETS_UNHEALTHY,
            "every target is unhealthy: all are published (fail open)",
        ),
        _ if input.health.is_some_and(|h| !h.drain_refused.is_empty()) => Desired::new(
            DEGRADED,
            Status::True,
            reasons::DRAIN_REFUSED,
            format!(
                "drain of {} refused: no other target can take the traffic",
                input
                    .health
                    .map(|h| h.drain_refused.join(", "))
                    .unwrap_or_default()
            ),
        ),
        _ if !withdrawn.is_empty() => Desired::new(
            DEGRADED,
            Status::True,
            reasons::TARGETS_WITHDRAWN,
            withdrawn.join("; "),
        ),
        Some(p) if !p.pending_targets.is_empty() => Desired::new(
            DEGRADED,
            Status::True,
            reasons::TARGETS_PENDING,
            format!("no endpoint yet for {}", p.pending_targets.join(", ")),
        ),
        _ => Desired::new(DEGRADED, Status::False, reasons::AS_EXPECTED, ""),
    };
    let existing: Vec<condition::Condition> = input
        .previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|c| c.type_ != HEALTH_CHECKS_SYNCED || input.health_checks.is_some())
        .filter(|c| {
            c.type_ != LOAD_BALANCERS_READY || !matches!(input.load_balancers, LbStep::NotUsed)
        })
        .filter(|c| {
            c.type_ != CERTIFICATES_READY
                || !matches!(input.certificates, CertificatesStep::NotUsed)
        })
        .cloned()
        .collect();
    let mut desired = vec![ready, dns, degraded];
    desired.extend(input.health_checks.clone());
    desired.extend(load_balancers_condition(input.load_balancers));
    if let CertificatesStep::Done(c) = input.certificates {
        desired.push(certificates_condition(c));
    }
    let conditions = condition::merge(&existing, &desired, input.generation, input.now);

    let active = input
        .plan
        .map(|p| p.active_targets.clone())
        .unwrap_or_default();
    let decisions = input.health.map(|h| h.decisions.as_slice());
    let targets = input
        .targets
        .iter()
        .enumerate()
        .map(|(i, (name, o))| TargetStatus {
            name: name.clone(),
            health: decisions
                .and_then(|d| d.get(i))
                .map_or(states::UNKNOWN, |d| d.state)
                .to_owned(),
            since: decisions
                .and_then(|d| d.get(i))
                .and_then(|d| d.detected_at)
                .map(millis),
            message: decisions
                .and_then(|d| d.get(i))
                .map(|d| d.message.clone())
                .filter(|m| !m.is_empty()),
            addresses: match &o.endpoint {
                Some(Endpoint::Addresses(ips)) => ips.iter().map(ToString::to_string).collect(),
                Some(Endpoint::Hostname { name, .. }) => vec![name.clone()],
                None => Vec::new(),
            },
            // The weight of the record sets carrying this target's own traffic (their set
            // identifiers carry the owner's tag, so they are found by target, not by name).
            weight_applied: input.plan.and_then(|p| {
                p.desired.records.iter().find_map(|r| match &r.routing {
                    RecordRouting::Weighted { weight, .. }
                        if r.targets.as_slice() == std::slice::from_ref(name) =>
                    {
                        Some(i32::from(*weight))
                    }
                    _ => None,
                })
            }),
            load_balancer: match input.load_balancers {
                LbStep::NotUsed => None,
                LbStep::Skipped => input
                    .previous
                    .and_then(|p| p.targets.iter().find(|t| t.name == *name))
                    .and_then(|t| t.load_balancer.clone()),
                LbStep::Done(reports) => reports
                    .iter()
                    .find(|r| r.target == *name)
                    .map(load_balancer_status),
            },
            private_link: match input.endpoint_services {
                ServicesStep::NotUsed => None,
                ServicesStep::Skipped => {
                    previous_target(input, name).and_then(|t| t.private_link.clone())
                }
                ServicesStep::Done(s) => s
                    .reports
                    .iter()
                    .find(|r| r.target == *name)
                    .map(private_link_status),
            },
            certificate_arn: match input.certificates {
                CertificatesStep::NotUsed => None,
                CertificatesStep::Skipped => {
                    previous_target(input, name).and_then(|t| t.certificate_arn.clone())
                }
                CertificatesStep::Done(c) => {
                    c.targets.get(name).and_then(|r| r.arn().map(str::to_owned))
                }
            },
            backend_policy: match input.backend_policies {
                None => previous_target(input, name).and_then(|t| t.backend_policy.clone()),
                Some(now) => now.get(name).cloned(),
            },
            not_after: match input.certificates {
                CertificatesStep::NotUsed => None,
                CertificatesStep::Skipped => {
                    previous_target(input, name).and_then(|t| t.not_after.clone())
                }
                CertificatesStep::Done(c) => match c.targets.get(name) {
                    Some(Resolved::Ready {
                        not_after: Some(t), ..
                    }) => jiff::Timestamp::from_second(*t).ok().map(|t| t.to_string()),
                    _ => None,
                },
            },
        })
        .collect();
    let load_balancers = match input.load_balancers {
        LbStep::NotUsed => None,
        LbStep::Skipped => input.previous.and_then(|p| p.load_balancers.clone()),
        LbStep::Done(reports) => Some(format!(
            "{}/{}",
            reports
                .iter()
                .filter(|r| r.error.is_none() && r.waiting.is_none() && r.state.is_some())
                .count(),
            reports.len()
        )),
    };
    GlobalIngressStatus {
        load_balancers,
        last_failover: input
            .failover
            .clone()
            .or_else(|| input.previous.and_then(|p| p.last_failover.clone())),
        observed_generation: input.generation,
        conditions,
        active_targets: (!active.is_empty()).then(|| active.join(",")),
        targets,
    }
}

fn previous_target<'a>(input: &Inputs<'a>, name: &str) -> Option<&'a TargetStatus> {
    input
        .previous
        .and_then(|p| p.targets.iter().find(|t| t.name == name))
}

/// The `HealthChecksSynced` condition of a health-check step; `None` removes it.
pub fn health_checks(step: &Step, previous: Option<&GlobalIngressStatus>) -> Option<Desired> {
    let previous = previous.and_then(|s| condition::find(&s.conditions, HEALTH_CHECKS_SYNCED));
    match step {
        Step::NotUsed | Step::Released => None,
        Step::Skipped => previous.map(|c| {
            Desired::new(
                HEALTH_CHECKS_SYNCED,
                match c.status.as_str() {
                    "True" => Status::True,
                    "False" => Status::False,
                    _ => Status::Unknown,
                },
                match c.reason.as_str() {
                    reasons::QUOTA_EXCEEDED_REASON => reasons::QUOTA_EXCEEDED_REASON,
                    reasons::HEALTH_CHECKS_FAILED => reasons::HEALTH_CHECKS_FAILED,
                    reasons::SYNCING => reasons::SYNCING,
                    _ => reasons::IN_SYNC,
                },
                c.message.clone(),
            )
        }),
        Step::Synced {
            quota_exhausted: Some(message),
            ..
        } => Some(Desired::new(
            HEALTH_CHECKS_SYNCED,
            Status::False,
            reasons::QUOTA_EXCEEDED_REASON,
            message.clone(),
        )),
        Step::Synced { ids, .. } => Some(Desired::new(
            HEALTH_CHECKS_SYNCED,
            Status::True,
            reasons::IN_SYNC,
            format!(
                "{} Route 53 health check(s) attached to the records",
                ids.len()
            ),
        )),
        Step::Pending {
            error: Some(error), ..
        } => Some(Desired::new(
            HEALTH_CHECKS_SYNCED,
            Status::False,
            reasons::HEALTH_CHECKS_FAILED,
            format!("{error} (the records keep the checks they have; retrying)"),
        )),
        Step::Pending { .. } => Some(Desired::new(
            HEALTH_CHECKS_SYNCED,
            Status::Unknown,
            reasons::SYNCING,
            "creating or updating Route 53 health checks",
        )),
    }
}

/// An owner's latest change as the timing of a publish.
pub fn timing_of(sync: &OwnerSync) -> Timing {
    Timing {
        submitted_at: sync.submitted_at,
        applied: crate::dns::provider::Applied {
            in_sync_at: sync.in_sync_at,
            answer_seen_at: sync.answer_seen_at,
        },
    }
}

/// Timestamps of the failover timeline: RFC 3339 with milliseconds.
pub fn millis(t: jiff::Timestamp) -> String {
    t.round(jiff::Unit::Millisecond).unwrap_or(t).to_string()
}

/// The failover this reconcile makes, if any: the targets receiving traffic changed while the
/// spec did not (`generation` equals the previous status's), the previous records were in sync,
/// and records were written (by this claim, or by a wave after the move was detected).
/// `Failover` when a target lost its traffic, `Failback` when targets only came back. `now` (the
/// decision time) stands in when no health change is known (a drain ending, a recovered target
/// brought back early).
pub fn failover_record(
    previous: Option<&GlobalIngressStatus>,
    generation: Option<i64>,
    active: &[String],
    names: &[String],
    decisions: &[TargetDecision],
    timing: Option<&Timing>,
    now: jiff::Timestamp,
) -> Option<FailoverRecord> {
    let previous = previous?;
    if previous.observed_generation != generation || generation.is_none() {
        return None;
    }
    let before: Vec<&str> = previous
        .active_targets
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .collect();
    let after: Vec<&str> = active.iter().map(String::as_str).collect();
    // The first publish (nothing was serving, or what the status says was never in sync) is
    // not a failback.
    let was_published =
        condition::find(&previous.conditions, DNS_SYNCED).is_some_and(|c| c.status == "True");
    if before == after || before.is_empty() || !was_published {
        return None;
    }
    let timing = timing?;
    let lost: Vec<&str> = before
        .iter()
        .copied()
        .filter(|b| !after.contains(b))
        .collect();
    // Detected: the latest health change among the targets that lost (failover) or gained
    // (failback) traffic — for a failback, when the recovery was seen, so the timeline shows the
    // failbackAfter wait before "submitted".
    let gained: Vec<&str> = after
        .iter()
        .copied()
        .filter(|a| !before.contains(a))
        .collect();
    let (kind, moved) = if lost.is_empty() {
        ("Failback", &gained)
    } else {
        ("Failover", &lost)
    };
    let detected = names
        .iter()
        .zip(decisions)
        .filter(|(n, _)| moved.contains(&n.as_str()))
        .filter_map(|(_, d)| d.detected_at)
        .max()
        .filter(|d| *d <= now)
        .unwrap_or(now);
    // A change sent before the move was detected did not make it (a wave's publish is found
    // as the owner's latest change; an older one says nothing about this move).
    if timing.submitted_at < detected {
        return None;
    }
    Some(FailoverRecord {
        kind: kind.to_owned(),
        from: before.join(","),
        to: after.join(","),
        detected_at: millis(detected),
        submitted_at: Some(millis(timing.submitted_at)),
        in_sync_at: timing.applied.in_sync_at.map(millis),
        answer_seen_at: timing.applied.answer_seen_at.map(millis),
    })
}

/// The last failover completed with its in-sync time, once the provider reported the change
/// that made it in sync (Route 53 says so tens of seconds after the change was submitted);
/// `None` when there is nothing to complete.
pub fn completed_failover(
    record: &FailoverRecord,
    sync: Option<&OwnerSync>,
) -> Option<FailoverRecord> {
    let sync = sync?;
    let in_sync_at = sync.in_sync_at?;
    let same_change = record.submitted_at.as_deref() == Some(millis(sync.submitted_at).as_str());
    (record.in_sync_at.is_none() && same_change).then(|| FailoverRecord {
        in_sync_at: Some(millis(in_sync_at)),
        ..record.clone()
    })
}

/// Whether `new` differs from `old` in anything but condition transition times.
pub fn changed(old: Option<&GlobalIngressStatus>, new: &GlobalIngressStatus) -> bool {
    let Some(old) = old else { return true };
    old.observed_generation != new.observed_generation
        || old.active_targets != new.active_targets
        || old.targets != new.targets
        || old.last_failover != new.last_failover
        || !condition::eq_ignoring_time(&old.conditions, &new.conditions)
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
