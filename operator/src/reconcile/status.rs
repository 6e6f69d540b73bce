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
use crate::reconcile::plan::{Plan, Problem};

pub use crate::api::global_ingress::conditions::{
    DEGRADED, DNS_SYNCED, HEALTH_CHECKS_SYNCED, READY,
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
        .cloned()
        .collect();
    let mut desired = vec![ready, dns, degraded];
    desired.extend(input.health_checks.clone());
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
        })
        .collect();
    GlobalIngressStatus {
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

/// Timestamps of the failover timeline: RFC 3339 with milliseconds.
pub fn millis(t: jiff::Timestamp) -> String {
    t.round(jiff::Unit::Millisecond).unwrap_or(t).to_string()
}

/// The failover this reconcile makes, if any: the targets receiving traffic changed while the
/// spec did not (`generation` equals the previous status's), the previous records were in sync,
/// and records were written.
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
mod tests {
    use super::*;
    use crate::api::condition::{Desired, Status};
    use crate::reconcile::plan::reasons as plan_reasons;

    fn inputs<'a>(
        problems: &'a [Problem],
        plan: Option<&'a Plan>,
        previous: Option<&'a GlobalIngressStatus>,
        now: &'a str,
    ) -> Inputs<'a> {
        Inputs {
            previous,
            generation: Some(3),
            paused: false,
            problems,
            plan,
            targets: &[],
            health: None,
            failover: None,
            health_checks: None,
            publish: &Publish::Skipped,
            now,
        }
    }

    #[test]
    fn problems_make_ready_false_with_the_first_reason_and_every_field() {
        let problems = vec![
            Problem {
                reason: "DNSZoneNotFound",
                field: "spec.dnsZoneRef".into(),
                message: "no DNSZone z".into(),
            },
            Problem {
                reason: plan_reasons::HOSTNAME_OUTSIDE_ZONE,
                field: "spec.hostnames[0]".into(),
                message: "x".into(),
            },
        ];
        let s = compute(&inputs(&problems, None, None, "t1"));
        let ready = condition::find(&s.conditions, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "DNSZoneNotFound")
        );
        assert!(
            ready.message.contains("spec.dnsZoneRef")
                && ready.message.contains("spec.hostnames[0]")
        );
        assert_eq!(ready.observed_generation, Some(3));
        assert_eq!(s.observed_generation, Some(3));
    }

    #[test]
    fn recomputing_the_same_status_is_not_a_change() {
        let plan = Plan::default();
        let first = compute(&inputs(&[], Some(&plan), None, "t1"));
        let again = compute(&inputs(&[], Some(&plan), Some(&first), "t2"));
        assert!(!changed(Some(&first), &again));
        assert_eq!(
            again.conditions, first.conditions,
            "transition times stay put"
        );
        let broken = [Problem {
            reason: "X",
            field: "f".into(),
            message: "m".into(),
        }];
        let failed = compute(&inputs(&broken, None, Some(&first), "t3"));
        assert!(changed(Some(&first), &failed));
        assert_eq!(
            condition::find(&failed.conditions, READY)
                .unwrap()
                .last_transition_time,
            "t3"
        );
    }

    fn serving(active: &str, synced: bool) -> GlobalIngressStatus {
        GlobalIngressStatus {
            observed_generation: Some(3),
            active_targets: Some(active.to_owned()),
            conditions: condition::merge(
                &[],
                &[Desired::new(
                    DNS_SYNCED,
                    if synced { Status::True } else { Status::False },
                    reasons::IN_SYNC,
                    "",
                )],
                Some(3),
                "t0",
            ),
            ..GlobalIngressStatus::default()
        }
    }

    fn ts(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn timing() -> Timing {
        Timing {
            submitted_at: ts(12),
            applied: crate::dns::provider::Applied {
                in_sync_at: Some(ts(13)),
                answer_seen_at: Some(ts(14)),
            },
        }
    }

    #[test]
    fn failovers_and_failbacks_are_recorded_only_when_health_moved_traffic() {
        let names = vec!["a".to_owned(), "b".to_owned()];
        let decision = |detected: i64| TargetDecision {
            up: false,
            state: states::UNHEALTHY,
            message: String::new(),
            detected_at: Some(ts(detected)),
            recheck_after: None,
            source: crate::model::health::Source::Probe,
        };
        let decisions = vec![decision(10), decision(5)];
        let previous = serving("a,b", true);
        let b_only = vec!["b".to_owned()];
        let record = failover_record(
            Some(&previous),
            Some(3),
            &b_only,
            &names,
            &decisions,
            Some(&timing()),
            ts(11),
        )
        .unwrap();
        assert_eq!(
            (
                record.kind.as_str(),
                record.from.as_str(),
                record.to.as_str()
            ),
            ("Failover", "a,b", "b")
        );
        assert_eq!(record.detected_at, millis(ts(10)), "a's fall");
        assert_eq!(record.answer_seen_at, Some(millis(ts(14))));

        let back = vec!["a".to_owned(), "b".to_owned()];
        let record = failover_record(
            Some(&serving("b", true)),
            Some(3),
            &back,
            &names,
            &decisions,
            Some(&timing()),
            ts(11),
        )
        .unwrap();
        assert_eq!(
            (record.kind.as_str(), record.detected_at.clone()),
            ("Failback", millis(ts(10)))
        );

        // A spec change, a first publish, records that were never in sync, nothing written:
        // no record.
        let none = |prev: &GlobalIngressStatus, generation: i64, t: Option<&Timing>| {
            failover_record(
                Some(prev),
                Some(generation),
                &b_only,
                &names,
                &decisions,
                t,
                ts(11),
            )
        };
        assert!(none(&previous, 4, Some(&timing())).is_none());
        assert!(none(&serving("", true), 3, Some(&timing())).is_none());
        assert!(none(&serving("a,b", false), 3, Some(&timing())).is_none());
        assert!(none(&previous, 3, None).is_none());
    }
}
