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
        load_balancers: &LbStep::NotUsed,
        certificates: CertificatesStep::NotUsed,
        endpoint_services: ServicesStep::NotUsed,
        backend_policies: None,
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
        ready.message.contains("spec.dnsZoneRef") && ready.message.contains("spec.hostnames[0]")
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
