//! Leader election with a `coordination.k8s.io` Lease, and the fence every write checks.
//!
//! Every replica watches and plans; only the holder of the Lease writes (AWS, DNS, status,
//! finalizers, Events). The holder renews every `retry_period`; a replica takes the Lease over
//! when its `renewTime` is older than `lease_duration`.
//!
//! **The fence.** [`Leadership::is_leader`] is not a flag the election loop sets and clears: it
//! is a deadline. Each successful renewal moves it to (the instant the renewal was *sent*) +
//! `renew_deadline` − [`FENCE_MARGIN`], and `is_leader` compares it with the clock. So a leader
//! whose renewals hang (a hub connection that stops answering, a call that never returns) stops
//! writing on time by itself, before any other replica can take the Lease (renew deadline <
//! lease duration), without the loop having to notice. Every Lease call also runs under a
//! timeout shorter than the renew deadline. Every external write — a DNS batch, an AWS call, a
//! status patch, an Event — asks `is_leader` just before it is sent.
//!
//! On shutdown the holder releases the Lease so a follower takes over at once instead of after
//! the lease duration.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// How much earlier than the renew deadline writes stop: a write checked at the last instant
/// still arrives before the deadline, and the clocks of hub and replica may disagree a little.
pub const FENCE_MARGIN: Duration = Duration::from_millis(500);

/// Lease settings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's name in `holderIdentity`.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// The timeout of one Lease call: well inside the renew deadline, so a hanging call leaves
    /// time for another attempt before it passes.
    pub fn call_timeout(&self) -> Duration {
        (self.renew_deadline / 2).max(Duration::from_millis(500))
    }
}

struct Shared {
    /// Writes are allowed until this instant; `None`: not the leader.
    valid_until: Mutex<Option<Instant>>,
    /// A leadership that never ends (a single replica, tests).
    forever: bool,
    /// `true` each time leadership is gained, `false` when it is lost.
    changes: watch::Sender<bool>,
    /// Counts the times the hub answered a Lease call again after failing to.
    hub_returns: watch::Sender<u64>,
}

/// Whether this replica holds the Lease, readable anywhere without waiting. Cheap to clone.
#[derive(Clone)]
pub struct Leadership {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("is_leader", &self.is_leader())
            .finish()
    }
}

impl Leadership {
    fn new(forever: bool) -> Self {
        let (changes, _) = watch::channel(forever);
        let (hub_returns, _) = watch::channel(0);
        Self {
            shared: Arc::new(Shared {
                valid_until: Mutex::new(None),
                forever,
                changes,
                hub_returns,
            }),
        }
    }

    /// A leadership that is always held (single replica, tests of the pipeline).
    pub fn always() -> Self {
        Self::new(true)
    }

    /// A leadership set by hand (tests): held until [`Self::step_down`].
    pub fn held_until_stepped_down() -> Self {
        let leadership = Self::new(false);
        leadership.hold_until(Instant::now() + Duration::from_secs(365 * 24 * 3600));
        leadership
    }

    /// Whether this replica may write now: it holds the Lease and its last renewal is recent
    /// enough (see the module docs).
    pub fn is_leader(&self) -> bool {
        self.shared.forever || self.lock().is_some_and(|until| Instant::now() < until)
    }

    /// Resolves each time leadership is gained (`true`) or lost (`false`).
    pub fn changes(&self) -> watch::Receiver<bool> {
        self.shared.changes.subscribe()
    }

    /// Changes each time the hub answers again after an outage (the Lease calls of leader and
    /// followers alike tell): watches opened before it are worth opening afresh.
    pub fn hub_returns(&self) -> watch::Receiver<u64> {
        self.shared.hub_returns.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.shared
            .valid_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn hold_until(&self, until: Instant) {
        *self.lock() = Some(until);
        self.shared.changes.send_if_modified(|held| {
            let gained = !*held;
            *held = true;
            gained
        });
    }

    /// Stops writing at once.
    pub fn step_down(&self) {
        *self.lock() = None;
        self.shared.changes.send_if_modified(|held| {
            let lost = *held;
            *held = false;
            lost
        });
    }

    /// When writes stop unless the Lease is renewed before.
    fn valid_until(&self) -> Option<Instant> {
        *self.lock()
    }
}

/// Runs the election until `stop` turns true; then releases the Lease if held.
pub fn spawn(
    api: Api<Lease>,
    config: LeaseConfig,
    mut stop: watch::Receiver<bool>,
) -> (Leadership, tokio::task::JoinHandle<()>) {
    let leadership = Leadership::new(false);
    let handle = {
        let leadership = leadership.clone();
        tokio::spawn(async move {
            let mut hub_failing = false;
            loop {
                let sent = Instant::now();
                let attempt = tokio::time::timeout(
                    config.call_timeout(),
                    try_acquire_or_renew(&api, &config),
                );
                // The deadline is kept even while the call hangs: step down the moment it
                // passes (`is_leader` already says false by then; this tells the watchers).
                let deadline = leadership.valid_until().filter(|_| leadership.is_leader());
                let result = tokio::select! {
                    r = attempt => r.map_err(|_| "no answer within the call timeout".to_owned())
                        .and_then(|r| r.map_err(|e| e.to_string())),
                    () = sleep_until(deadline) => Err("renew deadline passed while renewing".to_owned()),
                };
                if result.is_ok() && hub_failing {
                    info!("the hub answers again");
                    leadership.shared.hub_returns.send_modify(|n| *n += 1);
                }
                hub_failing = result.is_err();
                match result {
                    Ok(true) => {
                        let was = leadership.is_leader();
                        leadership
                            .hold_until(sent + config.renew_deadline.saturating_sub(FENCE_MARGIN));
                        if !was {
                            info!(identity = %config.identity, lease = %config.name, "became leader");
                        } else {
                            debug!(lease = %config.name, "lease renewed");
                        }
                    }
                    Ok(false) => {
                        if leadership.valid_until().is_some() {
                            warn!(identity = %config.identity, "lost the lease to another replica");
                            leadership.step_down();
                        }
                    }
                    Err(error) => {
                        warn!(%error, "lease update failed");
                        if leadership.valid_until().is_some() && !leadership.is_leader() {
                            warn!("renew deadline passed: stepping down");
                            leadership.step_down();
                        }
                    }
                }
                // Wake for the deadline too, so the step-down is announced when it happens.
                let deadline = leadership.valid_until().filter(|_| leadership.is_leader());
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    () = tokio::time::sleep(config.retry_period) => {}
                    () = sleep_until(deadline) => {
                        warn!("renew deadline passed: stepping down");
                        leadership.step_down();
                    }
                }
            }
            if leadership.valid_until().is_some() {
                leadership.step_down();
                let release = tokio::time::timeout(config.call_timeout(), release(&api, &config));
                match release.await {
                    Ok(Ok(())) => info!("released the lease"),
                    Ok(Err(error)) => warn!(%error, "could not release the lease"),
                    Err(_) => warn!("could not release the lease: no answer"),
                }
            }
        })
    };
    (leadership, handle)
}

/// Sleeps until `at`; forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// One round: `Ok(true)` when this replica holds the Lease afterwards.
async fn try_acquire_or_renew(api: &Api<Lease>, config: &LeaseConfig) -> Result<bool, kube::Error> {
    let duration_secs = i32::try_from(config.lease_duration.as_secs()).unwrap_or(15);
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(duration_secs),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            // Someone else created it first.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let held_by_me = spec.holder_identity.as_deref() == Some(config.identity.as_str());
    let holder_alive = spec
        .holder_identity
        .as_deref()
        .is_some_and(|h| !h.is_empty())
        && spec.renew_time.as_ref().is_some_and(|t| {
            let age = jiff::Timestamp::now().duration_since(t.0);
            let ttl = spec.lease_duration_seconds.unwrap_or(duration_secs);
            age < jiff::SignedDuration::from_secs(i64::from(ttl))
        });
    if !held_by_me && holder_alive {
        return Ok(false);
    }
    if !held_by_me {
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        spec.acquire_time = Some(now());
        spec.holder_identity = Some(config.identity.clone());
    }
    spec.renew_time = Some(now());
    spec.lease_duration_seconds = Some(duration_secs);
    // replace carries the resourceVersion: of two replicas racing for an expired lease, one wins
    // and the other gets a conflict.
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

async fn release(api: &Api<Lease>, config: &LeaseConfig) -> Result<(), kube::Error> {
    let mut lease = api.get(&config.name).await?;
    let Some(spec) = lease.spec.as_mut() else {
        return Ok(());
    };
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.renew_time = None;
    api.replace(&config.name, &PostParams::default(), &lease)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leadership_ends_at_its_deadline_without_anyone_noticing() {
        let leadership = Leadership::new(false);
        assert!(!leadership.is_leader());
        let mut changes = leadership.changes();
        leadership.hold_until(Instant::now() + Duration::from_millis(200));
        assert!(leadership.is_leader());
        assert!(*changes.borrow_and_update());
        // Nothing renews: the fence closes by the clock alone.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(!leadership.is_leader());
        leadership.step_down();
        changes.changed().await.unwrap();
        assert!(!*changes.borrow());
        assert!(Leadership::always().is_leader());
    }
}
