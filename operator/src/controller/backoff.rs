//! Retry pacing: the per-object backoff of failed publishes and zone checks, the memory of zones
//! found, and the watchers' reconnect backoff.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// A retry delay per object that grows with each failure in a row: about 1 s, 2 s, 4 s, … up
/// to 30 s, ±20 % so objects failing together do not retry together.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(30);

    /// One more failure of `key`: the delay before its next attempt.
    pub fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let n = failures.entry(key.to_owned()).or_default();
        *n = n.saturating_add(1);
        let base = Self::FIRST
            .saturating_mul(1 << (*n - 1).min(5))
            .min(Self::MAX);
        base.mul_f64(0.8 + fastrand::f64() * 0.4)
    }

    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

/// DNSZones found at their provider, by name: (generation, until when the finding holds).
#[derive(Debug, Default)]
pub struct ZoneChecks {
    found: Mutex<HashMap<String, (Option<i64>, std::time::Instant)>>,
}

impl ZoneChecks {
    /// How long the finding about `zone` at `generation` still holds, if it does.
    pub fn fresh(&self, zone: &str, generation: Option<i64>) -> Option<Duration> {
        let found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        let (at_generation, until) = found.get(zone)?;
        let left = until.checked_duration_since(std::time::Instant::now())?;
        (*at_generation == generation).then_some(left)
    }

    pub fn found(&self, zone: &str, generation: Option<i64>, valid: Duration) {
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                zone.to_owned(),
                (generation, std::time::Instant::now() + valid),
            );
    }

    pub fn forget(&self, zone: &str) {
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(zone);
    }
}

/// The watcher's reconnect backoff: kube's default grows to 30 s, so a hub that was down for a
/// while was seen again only 10–18 s after it came back. This one starts at 250 ms and stays
/// under 1 s (with jitter), so a change made right after the hub returns is picked up within
/// seconds.
#[derive(Debug, Clone)]
pub(super) struct ReconnectBackoff {
    next: Duration,
}

impl ReconnectBackoff {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(1);

    pub(super) fn new() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Iterator for ReconnectBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next.mul_f64(0.5 + fastrand::f64() * 0.5);
        self.next = (self.next * 2).min(Self::MAX);
        Some(delay)
    }
}

impl kube::runtime::utils::Backoff for ReconnectBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}
