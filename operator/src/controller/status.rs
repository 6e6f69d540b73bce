//! status: the GlobalIngress status computed from the plan and the problems observe found. Pure.

use crate::api::condition::{self, Desired, Status};
use crate::api::global_ingress::{GlobalIngressStatus, TargetStatus};
use crate::reconcile::plan::{Endpoint, Health, Observed, Plan, Problem, RecordRouting};

pub const READY: &str = "Ready";
pub const DNS_SYNCED: &str = "DNSSynced";
pub const DEGRADED: &str = "Degraded";

/// Reasons of conditions.
pub mod reasons {
    pub const RECONCILED: &str = "Reconciled";
    pub const PAUSED: &str = "Paused";
    pub const NOT_PUBLISHED: &str = "NotPublished";
    pub const IN_SYNC: &str = "InSync";
    pub const CHANGE_REFUSED: &str = "ChangeRefused";
    pub const AS_EXPECTED: &str = "AsExpected";
    pub const ALL_TARGETS_UNHEALTHY: &str = "AllTargetsUnhealthy";
    pub const TARGETS_PENDING: &str = "TargetsPending";
}

/// What happened when the records were published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publish {
    /// Not attempted: the spec has problems (the records already published stay as they are).
    Skipped,
    /// Written and in sync; `refused` lists changes the provider refused.
    Done {
        changes: usize,
        refused: Vec<String>,
    },
    /// The zone could not be written: (reason, message).
    Failed {
        reason: &'static str,
        message: String,
    },
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
        let records = input.plan.map_or(0, |p| p.records.len());
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
    let degraded = match input.plan {
        Some(p) if p.failing_open => Desired::new(
            DEGRADED,
            Status::True,
            reasons::ALL_TARGETS_UNHEALTHY,
            "every target is unhealthy: all are published (fail open)",
        ),
        Some(p) if !p.pending_targets.is_empty() => Desired::new(
            DEGRADED,
            Status::True,
            reasons::TARGETS_PENDING,
            format!("no endpoint yet for {}", p.pending_targets.join(", ")),
        ),
        _ => Desired::new(DEGRADED, Status::False, reasons::AS_EXPECTED, ""),
    };
    let existing = input
        .previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let conditions = condition::merge(
        existing,
        &[ready, dns, degraded],
        input.generation,
        input.now,
    );

    let active = input
        .plan
        .map(|p| p.active_targets.clone())
        .unwrap_or_default();
    let targets = input
        .targets
        .iter()
        .map(|(name, o)| TargetStatus {
            name: name.clone(),
            health: match o.health {
                Health::Healthy => "Healthy",
                Health::Unhealthy => "Unhealthy",
                Health::Unknown => "Unknown",
            }
            .to_owned(),
            addresses: match &o.endpoint {
                Some(Endpoint::Addresses(ips)) => ips.iter().map(ToString::to_string).collect(),
                Some(Endpoint::Hostname { name, .. }) => vec![name.clone()],
                None => Vec::new(),
            },
            since: None,
            message: None,
            weight_applied: input.plan.and_then(|p| {
                p.records.iter().find_map(|r| match &r.routing {
                    RecordRouting::Weighted { set_id, weight } if set_id == name => {
                        Some(i32::from(*weight))
                    }
                    _ => None,
                })
            }),
        })
        .collect();
    GlobalIngressStatus {
        last_failover: None,
        observed_generation: input.generation,
        conditions,
        active_targets: (!active.is_empty()).then(|| active.join(",")),
        targets,
    }
}

/// Whether `new` differs from `old` in anything but condition transition times.
pub fn changed(old: Option<&GlobalIngressStatus>, new: &GlobalIngressStatus) -> bool {
    let Some(old) = old else { return true };
    old.observed_generation != new.observed_generation
        || old.active_targets != new.active_targets
        || old.targets != new.targets
        || !condition::eq_ignoring_time(&old.conditions, &new.conditions)
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
