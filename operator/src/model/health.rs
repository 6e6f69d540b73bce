//! The pure part of health: hysteresis per endpoint, the false-failover guard across all
//! endpoints, and the decision whether a target receives traffic. No clocks and no I/O: every
//! function takes `now`, so the tests can walk through time.

use std::time::Duration;

use jiff::Timestamp;

/// An endpoint's verdict after hysteresis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Not enough probes yet.
    Unknown,
    Healthy,
    Unhealthy,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "Unknown",
            Self::Healthy => "Healthy",
            Self::Unhealthy => "Unhealthy",
        }
    }
}

/// Hysteresis thresholds of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Thresholds {
    /// Consecutive successes to rise.
    pub healthy: u32,
    /// Consecutive failures to fall.
    pub unhealthy: u32,
}

/// The state of one probed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    pub verdict: Verdict,
    /// When `verdict` last changed (or the first probe, while Unknown).
    pub since: Option<Timestamp>,
    /// When the endpoint last fell to Unhealthy.
    pub fell_at: Option<Timestamp>,
    /// Consecutive successes / failures so far.
    pub ok_streak: u32,
    pub fail_streak: u32,
    /// When the current failure streak began (the first failed probe).
    pub failing_since: Option<Timestamp>,
    /// Verdict changes between Healthy and Unhealthy.
    pub flaps: u64,
    /// Has been Healthy at least once (an endpoint that never answered says nothing about the
    /// hub's own connectivity: the guard leaves it out).
    pub ever_healthy: bool,
    /// What the last probe said ("200 OK in 3ms", "connection refused", ...).
    pub detail: String,
    pub last_probe: Option<Timestamp>,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            verdict: Verdict::Unknown,
            since: None,
            fell_at: None,
            ok_streak: 0,
            fail_streak: 0,
            failing_since: None,
            flaps: 0,
            ever_healthy: false,
            detail: String::new(),
            last_probe: None,
        }
    }
}

impl Tracker {
    /// Records one probe result; returns the new verdict when it changed.
    pub fn record(
        &mut self,
        ok: bool,
        detail: String,
        now: Timestamp,
        thresholds: Thresholds,
    ) -> Option<Verdict> {
        self.detail = detail;
        self.last_probe = Some(now);
        if self.since.is_none() {
            self.since = Some(now);
        }
        if ok {
            self.ok_streak += 1;
            self.fail_streak = 0;
            self.failing_since = None;
        } else {
            if self.fail_streak == 0 {
                self.failing_since = Some(now);
            }
            self.fail_streak += 1;
            self.ok_streak = 0;
        }
        let next = if ok && self.verdict != Verdict::Healthy && self.ok_streak >= thresholds.healthy
        {
            Verdict::Healthy
        } else if !ok
            && self.verdict != Verdict::Unhealthy
            && self.fail_streak >= thresholds.unhealthy
        {
            Verdict::Unhealthy
        } else {
            return None;
        };
        if self.verdict != Verdict::Unknown {
            self.flaps += 1;
        }
        if next == Verdict::Unhealthy {
            self.fell_at = Some(now);
        } else {
            self.ever_healthy = true;
        }
        self.verdict = next;
        self.since = Some(now);
        Some(next)
    }
}

/// The false-failover guard's view: how many of all probed endpoints are failing *now* — either
/// fallen within the last `window`, or not fallen yet but failing their latest probes (they will
/// fall within the same probe window). An endpoint that fell longer than `window` ago counts as
/// settled: a region that is really down stops counting, so a real total outage ends the guard
/// after one window and the normal rules (fail open) take over. Endpoints that have never been
/// healthy (a new load balancer not answering yet) are left out.
pub fn failing_share<'a>(
    trackers: impl IntoIterator<Item = &'a Tracker>,
    now: Timestamp,
    window: Duration,
) -> Share {
    let mut share = Share::default();
    for t in trackers {
        if t.last_probe.is_none() || !t.ever_healthy {
            continue;
        }
        share.total += 1;
        let recent = |at: Option<Timestamp>| {
            at.is_some_and(|at| now.duration_since(at).unsigned_abs() <= window)
        };
        let failing = match t.verdict {
            Verdict::Unhealthy => recent(t.fell_at),
            Verdict::Healthy | Verdict::Unknown => t.fail_streak > 0,
        };
        if failing {
            share.failing += 1;
        }
    }
    share
}

/// [`failing_share`] kept current as trackers change, so asking costs O(log n) and not a walk
/// over every endpoint (every reconcile asks: a walk made a wave of N reconciles O(N²)).
///
/// Each endpoint has an id; its contribution is taken out with [`ShareCounter::remove`] before
/// its tracker changes and put back with [`ShareCounter::add`] after.
#[derive(Debug, Clone, Default)]
pub struct ShareCounter {
    /// Endpoints that count at all (probed, and healthy once).
    total: usize,
    /// Counted endpoints not Unhealthy but failing their latest probes.
    streaking: usize,
    /// When each counted Unhealthy endpoint fell, sorted (the id breaks ties).
    fallen: Vec<(Timestamp, u64)>,
}

impl ShareCounter {
    /// Counts `tracker` as the state of endpoint `id`.
    pub fn add(&mut self, id: u64, tracker: &Tracker) {
        match contribution(tracker) {
            Contribution::None => {}
            Contribution::Counted => self.total += 1,
            Contribution::Streaking => {
                self.total += 1;
                self.streaking += 1;
            }
            Contribution::Fell(at) => {
                self.total += 1;
                let entry = (at, id);
                let i = self.fallen.partition_point(|e| *e < entry);
                self.fallen.insert(i, entry);
            }
        }
    }

    /// Takes out what [`ShareCounter::add`] counted for `id` with this same `tracker`.
    pub fn remove(&mut self, id: u64, tracker: &Tracker) {
        match contribution(tracker) {
            Contribution::None => {}
            Contribution::Counted => self.total = self.total.saturating_sub(1),
            Contribution::Streaking => {
                self.total = self.total.saturating_sub(1);
                self.streaking = self.streaking.saturating_sub(1);
            }
            Contribution::Fell(at) => {
                self.total = self.total.saturating_sub(1);
                if let Ok(i) = self.fallen.binary_search(&(at, id)) {
                    self.fallen.remove(i);
                }
            }
        }
    }

    /// The guard's count now: what [`failing_share`] over the same trackers returns.
    pub fn share(&self, now: Timestamp, window: Duration) -> Share {
        // Fallen within `window` of `now`, either side (as `failing_share` counts it).
        let window = jiff::SignedDuration::try_from(window).unwrap_or(jiff::SignedDuration::MAX);
        let from = now.checked_sub(window).unwrap_or(Timestamp::MIN);
        let to = now.checked_add(window).unwrap_or(Timestamp::MAX);
        let recent = self.fallen.partition_point(|(at, _)| *at <= to)
            - self.fallen.partition_point(|(at, _)| *at < from);
        Share {
            failing: self.streaking + recent,
            total: self.total,
        }
    }
}

enum Contribution {
    None,
    Counted,
    Streaking,
    Fell(Timestamp),
}

fn contribution(t: &Tracker) -> Contribution {
    if t.last_probe.is_none() || !t.ever_healthy {
        return Contribution::None;
    }
    match t.verdict {
        Verdict::Unhealthy => t.fell_at.map_or(Contribution::Counted, Contribution::Fell),
        Verdict::Healthy | Verdict::Unknown if t.fail_streak > 0 => Contribution::Streaking,
        Verdict::Healthy | Verdict::Unknown => Contribution::Counted,
    }
}

/// Failing endpoints among all probed ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Share {
    pub failing: usize,
    pub total: usize,
}

impl Share {
    /// Whether more than `threshold_percent` of all endpoints are failing.
    pub fn exceeds(self, threshold_percent: u32) -> bool {
        self.total > 0 && self.failing * 100 > self.total * threshold_percent as usize
    }

    pub fn percent(self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.failing as f64 * 100.0 / self.total as f64
        }
    }
}

/// What the spoke's API server says about a target's backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// No spoke to ask (External targets) or not known yet.
    None,
    /// The Service exists and its EndpointSlices have this many ready endpoints.
    Endpoints { ready: usize, since: Timestamp },
    /// The backend Service does not exist.
    ServiceMissing { since: Timestamp },
    /// The spoke API server cannot be reached: says nothing about the data path.
    Unreachable,
}

/// Failback settings of a GlobalIngress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failback {
    /// Traffic returns once the target has been healthy for this long.
    Automatic(Duration),
    /// Traffic returns only when approved at or after the withdrawal (annotation).
    Manual { approved_at: Option<Timestamp> },
}

/// Everything that decides one target.
#[derive(Debug, Clone)]
pub struct TargetInput<'a> {
    /// The probe verdicts of the target's endpoints (a target with several addresses has one per
    /// address); empty when nothing is probed.
    pub probes: Vec<&'a Tracker>,
    pub signal: Signal,
    pub drained: bool,
    pub failback: Failback,
    /// The previous status of this target: its health string and since when.
    pub previous: Option<(&'a str, Option<Timestamp>)>,
    pub now: Timestamp,
}

/// Target health strings in the status.
pub mod states {
    pub const HEALTHY: &str = "Healthy";
    pub const UNHEALTHY: &str = "Unhealthy";
    pub const UNKNOWN: &str = "Unknown";
    /// Healthy again, waiting `failbackAfter` before traffic returns.
    pub const RECOVERING: &str = "Recovering";
    /// Healthy again, waiting for a manual failback approval.
    pub const AWAITING_FAILBACK: &str = "AwaitingFailback";
    pub const DRAINED: &str = "Drained";
    /// Failing its probes, but kept in service by the false-failover guard.
    pub const HELD: &str = "Held";
}

/// The decision about one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetDecision {
    /// Whether the target may receive traffic.
    pub up: bool,
    /// Status string (see [`states`]).
    pub state: &'static str,
    pub message: String,
    /// When the fact behind this decision was observed (the verdict change, the spoke signal).
    pub detected_at: Option<Timestamp>,
    /// Look again after this long (failback waiting).
    pub recheck_after: Option<Duration>,
    /// What the decision rests on.
    pub source: Source,
}

impl TargetDecision {
    /// Withdrawn by `spec.targets[].drain`.
    fn drained() -> Self {
        Self {
            up: false,
            state: states::DRAINED,
            message: "drained by spec.targets[].drain".into(),
            detected_at: None,
            recheck_after: None,
            source: Source::Drain,
        }
    }
}

/// What a decision rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The probes through the data path.
    Probe,
    /// The spoke's API server (Service missing, no ready endpoint).
    Spoke,
    /// The failback rules (a recovered target waiting).
    Failback,
    /// `spec.targets[].drain`.
    Drain,
}

fn withdrawn_state(state: &str) -> bool {
    matches!(
        state,
        states::UNHEALTHY | states::RECOVERING | states::AWAITING_FAILBACK
    )
}

/// The rule, in order:
/// 1. drained → withdrawn (the caller refuses a drain that would leave no target up);
/// 2. the spoke says the Service is missing or has zero ready endpoints → withdrawn, whatever the
///    probe says (the load balancer may still answer from a cache or a default backend);
/// 3. every probed endpoint of the target is Unhealthy → withdrawn (a spoke API that cannot be
///    reached changes nothing: the probe through the data path decides);
/// 4. healthy again after a withdrawal → back only after `failbackAfter` of continuous health
///    (Automatic) or an approval newer than the withdrawal (Manual);
/// 5. otherwise up (Unknown counts as up: a new target must be able to receive traffic).
pub fn decide(input: &TargetInput<'_>) -> TargetDecision {
    let now = input.now;
    if input.drained {
        return TargetDecision::drained();
    }
    match &input.signal {
        Signal::ServiceMissing { since } => {
            return TargetDecision {
                up: false,
                state: states::UNHEALTHY,
                message: "spoke: the backend Service does not exist".into(),
                detected_at: Some(*since),
                recheck_after: None,
                source: Source::Spoke,
            };
        }
        Signal::Endpoints { ready: 0, since } => {
            return TargetDecision {
                up: false,
                state: states::UNHEALTHY,
                message: "spoke: the backend's EndpointSlices have no ready endpoint".into(),
                detected_at: Some(*since),
                recheck_after: None,
                source: Source::Spoke,
            };
        }
        _ => {}
    }
    let unreachable_note = if input.signal == Signal::Unreachable {
        "; spoke API unreachable (probe decides)"
    } else {
        ""
    };
    let probes = &input.probes;
    if !probes.is_empty() && probes.iter().all(|t| t.verdict == Verdict::Unhealthy) {
        let fell = probes.iter().filter_map(|t| t.fell_at).max();
        return TargetDecision {
            up: false,
            state: states::UNHEALTHY,
            message: format!("probe: {}{unreachable_note}", probes[0].detail),
            detected_at: fell,
            recheck_after: None,
            source: Source::Probe,
        };
    }
    let healthy: Vec<&&Tracker> = probes
        .iter()
        .filter(|t| t.verdict == Verdict::Healthy)
        .collect();
    // When did the target become usable again: the earliest rise among its healthy endpoints
    // (any healthy address serves).
    let risen_at = healthy.iter().filter_map(|t| t.since).min();
    // Ready endpoints came back after the probes rose: the failback clock starts then.
    let risen_at = match (&input.signal, risen_at) {
        (Signal::Endpoints { ready, since }, Some(r)) if *ready > 0 => Some(r.max(*since)),
        (_, r) => r,
    };
    let fell_at = probes.iter().filter_map(|t| t.fell_at).max();
    let previously_withdrawn = input.previous.filter(|(state, _)| withdrawn_state(state));
    // The failback rules apply only to a target whose withdrawal was published (the previous
    // status says so): a fall and a rise between two reconciles withdrew nothing, and a target
    // the guard held (`Held`) never lost its traffic.
    if let (Some(risen), Some((_, status_since))) = (risen_at, previously_withdrawn) {
        match input.failback {
            Failback::Automatic(after) => {
                let healthy_for = now.duration_since(risen).unsigned_abs();
                if healthy_for < after {
                    let due = risen
                        .checked_add(after)
                        .ok()
                        .and_then(|t| t.round(jiff::Unit::Second).ok())
                        .map_or_else(String::new, |t| t.to_string());
                    return TargetDecision {
                        up: false,
                        state: states::RECOVERING,
                        message: format!("healthy again; traffic returns at {due} (failbackAfter)"),
                        detected_at: Some(risen),
                        recheck_after: Some(after - healthy_for),
                        source: Source::Failback,
                    };
                }
            }
            Failback::Manual { approved_at } => {
                let withdrawn = fell_at.or(status_since).unwrap_or(risen);
                if approved_at.is_none_or(|a| a < withdrawn) {
                    return TargetDecision {
                        up: false,
                        state: states::AWAITING_FAILBACK,
                        message: "healthy again; failback is Manual: annotate \
                                  globalingress.io/approve-failback with the current time"
                            .into(),
                        detected_at: Some(risen),
                        recheck_after: None,
                        source: Source::Failback,
                    };
                }
            }
        }
    }
    if healthy.is_empty()
        && let Some((state, since)) = previously_withdrawn
    {
        // Withdrawn before and no verdict yet (a restarted operator): stay away until the probes
        // say healthy.
        return TargetDecision {
            up: false,
            state: if state == states::AWAITING_FAILBACK {
                states::AWAITING_FAILBACK
            } else {
                states::UNHEALTHY
            },
            message: "withdrawn before; waiting for the probes to say healthy".into(),
            detected_at: since,
            recheck_after: None,
            source: Source::Probe,
        };
    }
    let (state, detected_at) = if healthy.is_empty() {
        (states::UNKNOWN, None)
    } else {
        (states::HEALTHY, risen_at)
    };
    let detail = probes
        .iter()
        .map(|t| t.detail.as_str())
        .find(|d| !d.is_empty())
        .unwrap_or("not probed yet");
    let endpoints = match &input.signal {
        Signal::Endpoints { ready, .. } => format!("; spoke: {ready} ready endpoint(s)"),
        _ => String::new(),
    };
    TargetDecision {
        up: true,
        state,
        message: format!("probe: {detail}{endpoints}{unreachable_note}"),
        detected_at,
        recheck_after: None,
        source: Source::Probe,
    }
}

/// The decisions of all targets of one GlobalIngress after the guard rails.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Guarded {
    pub decisions: Vec<TargetDecision>,
    /// The false-failover guard held back at least one withdrawal.
    pub panic: bool,
    /// Drained targets whose drain was refused (no other target could take the traffic).
    pub drain_refused: Vec<String>,
}

/// Applies the guard rails to per-target decisions (computed without drains), in order:
/// 1. **false-failover guard** (`panic`: more than `panicThreshold` of all probed endpoints are
///    failing at once, so the hub is probably the one cut off): a target the probes would
///    withdraw now keeps its traffic; one withdrawn before the episode stays withdrawn;
/// 2. **drains**: a drained target is withdrawn unless no other target would be up, in which case
///    the drain is refused.
///
/// `previous[i]` is target i's health in the last status.
pub fn guard(
    names: &[String],
    mut decisions: Vec<TargetDecision>,
    drained: &[bool],
    panic: bool,
    previous: &[Option<&str>],
) -> Guarded {
    let mut held = false;
    if panic {
        for (i, d) in decisions.iter_mut().enumerate() {
            let was_withdrawn = previous
                .get(i)
                .copied()
                .flatten()
                .is_some_and(withdrawn_state);
            if !d.up && d.source == Source::Probe && !was_withdrawn {
                d.up = true;
                d.state = states::HELD;
                d.message = format!(
                    "kept by the false-failover guard (PanicThreshold): {}",
                    d.message
                );
                held = true;
            }
        }
    }
    // Nothing else is up: a recovered target waiting for its failback comes back now rather than
    // failing open to targets that are down.
    if !decisions.iter().any(|d| d.up) {
        for d in decisions
            .iter_mut()
            .filter(|d| matches!(d.state, states::RECOVERING | states::AWAITING_FAILBACK))
        {
            d.up = true;
            d.state = states::HEALTHY;
            d.message = format!(
                "back before its failback: no other target is up ({})",
                d.message
            );
            d.recheck_after = None;
        }
    }
    let mut drain_refused = Vec::new();
    let drained_at = |i: usize| drained.get(i).copied().unwrap_or(false);
    let others_up = decisions
        .iter()
        .enumerate()
        .any(|(i, d)| d.up && !drained_at(i));
    for (i, d) in decisions.iter_mut().enumerate() {
        if !drained_at(i) {
            continue;
        }
        if others_up {
            *d = TargetDecision::drained();
        } else {
            d.message = format!(
                "drain refused: no other target can take the traffic; {}",
                d.message
            );
            drain_refused.push(names.get(i).cloned().unwrap_or_default());
        }
    }
    Guarded {
        decisions,
        panic: held,
        drain_refused,
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
