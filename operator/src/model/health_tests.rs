use super::*;

const T: Thresholds = Thresholds {
    healthy: 2,
    unhealthy: 3,
};

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

fn walk(t: &mut Tracker, results: &[(i64, bool)]) -> Vec<(i64, Verdict)> {
    results
        .iter()
        .filter_map(|(s, ok)| t.record(*ok, String::new(), at(*s), T).map(|v| (*s, v)))
        .collect()
}

#[test]
fn thresholds_decide_when_the_verdict_moves() {
    let mut t = Tracker::default();
    let changes = walk(
        &mut t,
        &[
            (0, true),
            (1, true),
            (2, false),
            (3, false),
            (4, true),
            (5, false),
            (6, false),
            (7, false),
            (8, true),
            (9, true),
        ],
    );
    assert_eq!(
        changes,
        vec![
            (1, Verdict::Healthy),
            (7, Verdict::Unhealthy),
            (9, Verdict::Healthy)
        ]
    );
    assert_eq!(t.flaps, 2);
    assert_eq!(t.fell_at, Some(at(7)));
}

fn input<'a>(probes: Vec<&'a Tracker>, failback: Failback, now: i64) -> TargetInput<'a> {
    TargetInput {
        probes,
        signal: Signal::None,
        drained: false,
        failback,
        previous: None,
        now: at(now),
    }
}

#[test]
fn a_recovered_target_waits_failback_after() {
    let mut t = Tracker::default();
    walk(
        &mut t,
        &[(0, true), (1, true), (2, false), (3, false), (4, false)],
    );
    let auto = Failback::Automatic(Duration::from_secs(60));
    assert_eq!(decide(&input(vec![&t], auto, 4)).state, states::UNHEALTHY);
    walk(&mut t, &[(10, true), (11, true)]);
    let mut i = input(vec![&t], auto, 20);
    i.previous = Some((states::UNHEALTHY, Some(at(4))));
    let d = decide(&i);
    assert_eq!((d.up, d.state), (false, states::RECOVERING));
    assert_eq!(d.recheck_after, Some(Duration::from_secs(51)));
    assert!(d.message.contains("2027-01-15T08:01:11Z"), "{}", d.message);
    i.now = at(71);
    assert!(decide(&i).up);
    // A fall and a rise the status never showed withdrew nothing: no failback wait.
    assert!(decide(&input(vec![&t], auto, 20)).up);
    // Nor for a target the guard held.
    i.previous = Some((states::HELD, Some(at(4))));
    i.now = at(20);
    assert!(decide(&i).up);
}

#[test]
fn a_flapping_endpoint_is_withdrawn_once_per_window() {
    let mut t = Tracker::default();
    let thresholds = Thresholds {
        healthy: 1,
        unhealthy: 1,
    };
    let auto = Failback::Automatic(Duration::from_secs(30));
    let mut previous = (states::HEALTHY, None);
    let mut withdrawals = 0;
    for s in 0..120 {
        t.record(s % 2 == 0, String::new(), at(s), thresholds);
        let mut i = input(vec![&t], auto, s);
        i.previous = Some(previous);
        let d = decide(&i);
        if !d.up && !withdrawn_state(previous.0) {
            withdrawals += 1;
        }
        previous = (d.state, d.detected_at);
    }
    assert_eq!(
        withdrawals, 1,
        "alternating results never stay healthy for 30s"
    );
}

#[test]
fn manual_failback_needs_an_approval_newer_than_the_withdrawal() {
    let mut t = Tracker::default();
    walk(
        &mut t,
        &[(0, true), (1, true), (2, false), (3, false), (4, false)],
    );
    walk(&mut t, &[(10, true), (11, true)]);
    let mut i = input(vec![&t], Failback::Manual { approved_at: None }, 500);
    i.previous = Some((states::UNHEALTHY, Some(at(4))));
    assert_eq!(decide(&i).state, states::AWAITING_FAILBACK);
    i.failback = Failback::Manual {
        approved_at: Some(at(3)),
    };
    assert!(!decide(&i).up, "an approval older than the withdrawal");
    i.failback = Failback::Manual {
        approved_at: Some(at(12)),
    };
    assert!(decide(&i).up);
}

#[test]
fn spoke_signals_override_a_passing_probe_but_unreachable_does_not() {
    let mut t = Tracker::default();
    walk(&mut t, &[(0, true), (1, true)]);
    let auto = Failback::Automatic(Duration::from_secs(30));
    let mut i = input(vec![&t], auto, 2);
    i.signal = Signal::Endpoints {
        ready: 0,
        since: at(2),
    };
    assert!(!decide(&i).up);
    i.signal = Signal::ServiceMissing { since: at(2) };
    assert!(!decide(&i).up);
    i.signal = Signal::Unreachable;
    assert!(decide(&i).up);
    i.signal = Signal::Endpoints {
        ready: 3,
        since: at(2),
    };
    assert!(decide(&i).up);
    i.drained = true;
    assert_eq!(decide(&i).state, states::DRAINED);
}

#[test]
fn any_healthy_address_keeps_a_target_up() {
    let mut a = Tracker::default();
    let mut b = Tracker::default();
    walk(&mut a, &[(0, true), (1, true)]);
    walk(&mut b, &[(0, false), (1, false), (2, false)]);
    let auto = Failback::Automatic(Duration::from_secs(30));
    assert!(decide(&input(vec![&a, &b], auto, 3)).up);
    assert!(!decide(&input(vec![&b], auto, 3)).up);
    assert_eq!(decide(&input(vec![], auto, 3)).state, states::UNKNOWN);
}

#[test]
fn the_guard_counts_recent_falls_and_failing_streaks_only() {
    let window = Duration::from_secs(20);
    let mut down_long_ago = Tracker::default();
    walk(
        &mut down_long_ago,
        &[(-2, true), (-1, true), (0, false), (1, false), (2, false)],
    );
    let mut just_fell = Tracker::default();
    walk(
        &mut just_fell,
        &[
            (38, true),
            (39, true),
            (40, false),
            (41, false),
            (42, false),
        ],
    );
    let mut never_answered = Tracker::default();
    walk(
        &mut never_answered,
        &[(40, false), (41, false), (42, false)],
    );
    let mut failing = Tracker::default();
    walk(&mut failing, &[(40, true), (41, true), (42, false)]);
    let mut fine = Tracker::default();
    walk(&mut fine, &[(40, true), (41, true)]);
    let share = failing_share(
        [&down_long_ago, &just_fell, &failing, &fine, &never_answered],
        at(43),
        window,
    );
    assert_eq!(
        share,
        Share {
            failing: 2,
            total: 4
        }
    );
    assert!(!share.exceeds(50));
    assert!(share.exceeds(49));
    // A real outage stops counting after the window: the guard lets go.
    let later = failing_share([&down_long_ago, &just_fell], at(100), window);
    assert_eq!(later.failing, 0);
}

fn decision(up: bool, source: Source) -> TargetDecision {
    TargetDecision {
        up,
        state: if up {
            states::HEALTHY
        } else {
            states::UNHEALTHY
        },
        message: String::new(),
        detected_at: None,
        recheck_after: None,
        source,
    }
}

#[test]
fn the_guard_holds_new_probe_withdrawals_only() {
    let names = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
    let decisions = vec![
        decision(false, Source::Probe),
        decision(false, Source::Probe),
        decision(false, Source::Spoke),
    ];
    let previous = [Some(states::HEALTHY), Some(states::UNHEALTHY), None];
    let g = guard(&names, decisions.clone(), &[false; 3], true, &previous);
    assert!(g.panic);
    let up: Vec<bool> = g.decisions.iter().map(|d| d.up).collect();
    assert_eq!(
        up,
        vec![true, false, false],
        "withdrawn before stays, spoke signals stand"
    );
    assert_eq!(g.decisions[0].state, states::HELD);
    // The next reconcile sees `Held` in the status: still held, not "withdrawn before".
    let again = guard(
        &names,
        vec![decision(false, Source::Probe)],
        &[false],
        true,
        &[Some(states::HELD)],
    );
    assert!(again.decisions[0].up);
    let calm = guard(&names, decisions, &[false; 3], false, &previous);
    assert!(!calm.panic && calm.decisions.iter().all(|d| !d.up));
}

#[test]
fn a_drain_that_would_leave_nothing_up_is_refused() {
    let names = vec!["a".to_owned(), "b".to_owned()];
    let both_up = vec![decision(true, Source::Probe), decision(true, Source::Probe)];
    let g = guard(&names, both_up, &[true, false], false, &[None, None]);
    assert_eq!(g.decisions[0].state, states::DRAINED);
    assert!(!g.decisions[0].up && g.decisions[1].up);
    assert!(g.drain_refused.is_empty());
    let other_down = vec![
        decision(true, Source::Probe),
        decision(false, Source::Probe),
    ];
    let g = guard(&names, other_down, &[true, false], false, &[None, None]);
    assert!(g.decisions[0].up);
    assert_eq!(g.drain_refused, vec!["a".to_owned()]);
}

#[test]
fn a_recovering_target_comes_back_early_when_nothing_else_is_up() {
    let names = vec!["a".to_owned(), "b".to_owned()];
    let mut recovering = decision(false, Source::Failback);
    recovering.state = states::RECOVERING;
    let g = guard(
        &names,
        vec![recovering.clone(), decision(false, Source::Probe)],
        &[false, false],
        false,
        &[None, None],
    );
    assert!(g.decisions[0].up, "rather than failing open to a dead b");
    assert!(!g.decisions[1].up);
    let g = guard(
        &names,
        vec![recovering, decision(true, Source::Probe)],
        &[false, false],
        false,
        &[None, None],
    );
    assert!(!g.decisions[0].up, "b serves: a waits for its failback");
}

proptest::proptest! {
    /// The incremental count is the walk's count, whatever the probes said and whenever asked.
    #[test]
    fn the_share_counter_counts_what_the_walk_counts(
        steps in proptest::collection::vec((0usize..6, proptest::bool::ANY, 0u8..4), 1..120),
        window in 1i64..30,
        ask in 0i64..200,
    ) {
        let thresholds = Thresholds { healthy: 1, unhealthy: 2 };
        let mut trackers: Vec<Option<Tracker>> = vec![None; 6];
        let mut counter = ShareCounter::default();
        for (t, (i, ok, op)) in steps.into_iter().enumerate() {
            let id = i as u64;
            match (op, trackers[i].take()) {
                // Gone (and maybe back later as a new endpoint).
                (0, Some(old)) => counter.remove(id, &old),
                (_, old) => {
                    let mut tracker = old.unwrap_or_default();
                    counter.remove(id, &tracker);
                    tracker.record(ok, String::new(), at(t as i64), thresholds);
                    counter.add(id, &tracker);
                    trackers[i] = Some(tracker);
                }
            }
            let window = Duration::from_secs(window as u64);
            for now in [at(t as i64), at(ask)] {
                proptest::prop_assert_eq!(
                    counter.share(now, window),
                    failing_share(trackers.iter().flatten(), now, window)
                );
            }
        }
    }
}
