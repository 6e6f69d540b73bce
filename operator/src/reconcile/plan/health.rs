//! Each target's health decision: the pure rules of [`crate::model::health`] applied to what
//! observe found (probe verdicts, spoke signals, the previous status) at the plan's `now`.

use super::Input;
use crate::api::global_ingress::Failback as FailbackMode;
use crate::model::health::{self, Failback, Guarded, TargetDecision, TargetInput, Tracker, states};
use crate::model::target::Health;

/// The decisions of every target, after the guard rails (false-failover guard, drains).
pub fn decide(input: &Input<'_>) -> Guarded {
    let spec = input.spec;
    let failback = match spec.failover.failback {
        FailbackMode::Automatic => Failback::Automatic(spec.failover.failback_after()),
        FailbackMode::Manual => Failback::Manual {
            approved_at: input.failback_approved_at,
        },
    };
    let previous = |name: &str| {
        input.previous.iter().find(|t| t.name == name).map(|t| {
            (
                t.health.as_str(),
                t.since
                    .as_deref()
                    .and_then(|s| s.parse::<jiff::Timestamp>().ok()),
            )
        })
    };
    let decisions: Vec<TargetDecision> = spec
        .targets
        .iter()
        .zip(input.targets)
        .map(|(t, view)| {
            let probes: Vec<&Tracker> = view
                .probes
                .iter()
                .filter_map(|(_, t)| t.as_ref())
                .chain(view.target_health.as_ref())
                .collect();
            health::decide(&TargetInput {
                probes,
                signal: view.signal.clone(),
                drained: false,
                failback,
                previous: previous(&t.name),
                now: input.now,
            })
        })
        .collect();
    let names: Vec<String> = spec.targets.iter().map(|t| t.name.clone()).collect();
    let drained: Vec<bool> = spec.targets.iter().map(|t| t.drain).collect();
    let before: Vec<Option<&str>> = names
        .iter()
        .map(|n| previous(n).map(|(health, _)| health))
        .collect();
    health::guard(&names, decisions, &drained, input.panic, &before)
}

/// A decision as the routing sees it.
pub fn as_observed(decision: &TargetDecision) -> Health {
    match (decision.up, decision.state) {
        (false, _) => Health::Unhealthy,
        (true, states::HEALTHY) => Health::Healthy,
        (true, _) => Health::Unknown,
    }
}
