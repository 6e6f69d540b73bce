//! Following submitted changes until the provider reports them in sync (Route 53's GetChange
//! `INSYNC`, "generally within 60 seconds"), in the background, so the writer never waits.
//!
//! Each owner's latest change is remembered ([`OwnerSync`]); a change is polled once right
//! after it was accepted (the claims' replies wait for that one answer), then with a growing
//! delay (first `poll_first`, ×1.5, at most `poll_max`) until it is in sync. Every poll is an
//! AWS call through the shared budget. When a change turns in sync in the background, its owners
//! are named to [`super::Config::notify`] so their status can say so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tracing::debug;

use super::{Config, Notify, ProviderLabels, Stats};
use crate::dns::provider::{Applied, ZoneProvider};
use crate::model::dns::ProviderKind;

/// How long the replies wait for the first INSYNC poll.
const FIRST_POLL_TIMEOUT: Duration = Duration::from_secs(2);

/// Where one owner's latest change stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerSync {
    /// When the change was sent.
    pub submitted_at: jiff::Timestamp,
    /// The provider's change id (Route 53), while there is something to ask about.
    pub change_id: Option<String>,
    /// When the provider reported it in sync; `None` while pending.
    pub in_sync_at: Option<jiff::Timestamp>,
    /// When the authoritative server answered with it (RFC 2136).
    pub answer_seen_at: Option<jiff::Timestamp>,
}

struct Pending {
    owners: Vec<String>,
    sent: Instant,
    next: Instant,
    delay: Duration,
}

#[derive(Default)]
struct State {
    owners: HashMap<String, OwnerSync>,
    pending: HashMap<String, Pending>,
}

struct Inner {
    provider: Arc<dyn ZoneProvider>,
    state: Mutex<State>,
    wake: tokio::sync::Notify,
    notify: Option<Notify>,
    stats: Arc<Stats>,
    metrics: super::WriterMetrics,
    label: ProviderLabels,
    poll_first: Duration,
    poll_max: Duration,
}

/// The INSYNC follower of one writer. Cheap to clone; its poll task ends with the last clone.
#[derive(Clone)]
pub(super) struct Tracker {
    inner: Arc<Inner>,
}

impl Tracker {
    pub fn spawn(provider: Arc<dyn ZoneProvider>, config: &Config, stats: Arc<Stats>) -> Self {
        let label = ProviderLabels {
            provider: match provider.kind() {
                ProviderKind::Route53 => "route53",
                ProviderKind::Rfc2136 => "rfc2136",
            },
        };
        let inner = Arc::new(Inner {
            provider,
            state: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            notify: config.notify.clone(),
            stats,
            metrics: config.metrics.clone(),
            label,
            poll_first: config.poll_first,
            poll_max: config.poll_max.max(config.poll_first),
        });
        tokio::spawn(poll_loop(Arc::downgrade(&inner)));
        Self { inner }
    }

    /// A batch of `owners` was accepted; with `change_id` it is followed until in sync.
    pub fn submitted(
        &self,
        owners: &[String],
        submitted_at: jiff::Timestamp,
        sent: Instant,
        change_id: Option<&str>,
        applied: Applied,
    ) {
        let mut state = self.inner.lock();
        let pending = change_id.filter(|_| applied.in_sync_at.is_none());
        for owner in owners {
            state.owners.insert(
                owner.clone(),
                OwnerSync {
                    submitted_at,
                    change_id: pending.map(str::to_owned),
                    in_sync_at: applied.in_sync_at,
                    answer_seen_at: applied.answer_seen_at,
                },
            );
        }
        match pending {
            Some(id) => {
                state.pending.insert(
                    id.to_owned(),
                    Pending {
                        owners: owners.to_vec(),
                        sent,
                        next: Instant::now() + self.inner.poll_first,
                        delay: self.inner.poll_first,
                    },
                );
                self.inner.wake.notify_one();
            }
            None => self.inner.observe(sent),
        }
    }

    /// Polls each change once, at once (the replies of its claims wait for this).
    pub async fn first_polls(&self, ids: &[String]) {
        let polls = ids.iter().map(|id| async move {
            if let Ok(true) = tokio::time::timeout(FIRST_POLL_TIMEOUT, self.inner.poll(id)).await {
                self.inner.synced(id, false);
            }
        });
        futures::future::join_all(polls).await;
    }

    /// The latest change of `owner`.
    pub fn owner(&self, owner: &str) -> Option<OwnerSync> {
        self.inner.lock().owners.get(owner).cloned()
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn observe(&self, sent: Instant) {
        self.metrics
            .sync_seconds
            .get_or_create(&self.label)
            .observe(sent.elapsed().as_secs_f64());
    }

    /// One GetChange; errors count as "not yet" (the next poll asks again).
    async fn poll(&self, id: &str) -> bool {
        self.stats
            .polls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.provider.in_sync(id).await {
            Ok(in_sync) => in_sync,
            Err(error) => {
                debug!(%error, change = id, "INSYNC poll failed; asking again later");
                false
            }
        }
    }

    /// Change `id` is in sync: its owners whose latest change it is say so (and, from the
    /// background, are named to `notify`).
    fn synced(&self, id: &str, tell: bool) {
        let at = jiff::Timestamp::now();
        let mut told = Vec::new();
        {
            let mut state = self.lock();
            let Some(pending) = state.pending.remove(id) else {
                return;
            };
            self.observe(pending.sent);
            for owner in pending.owners {
                if let Some(sync) = state.owners.get_mut(&owner)
                    && sync.change_id.as_deref() == Some(id)
                {
                    sync.in_sync_at = Some(at);
                    sync.change_id = None;
                    told.push(owner);
                }
            }
        }
        debug!(change = id, owners = told.len(), "change in sync");
        if let (true, Some(notify)) = (tell, &self.notify) {
            for owner in &told {
                (notify.0)(owner);
            }
        }
    }
}

async fn poll_loop(inner: Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let now = Instant::now();
        let due: Vec<String> = strong
            .lock()
            .pending
            .iter()
            .filter(|(_, p)| p.next <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            if strong.poll(&id).await {
                strong.synced(&id, true);
            } else if let Some(p) = strong.lock().pending.get_mut(&id) {
                p.delay = p.delay.mul_f64(1.5).min(strong.poll_max);
                p.next = Instant::now() + p.delay;
            }
        }
        // Nothing pending: sleep until a change is submitted (`wake` keeps a notification sent
        // meanwhile), checking now and then whether the writer is gone.
        let next = strong
            .lock()
            .pending
            .values()
            .map(|p| p.next)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(5));
        // (Holding the writer's tracker for at most one sleep: the loop ends once the writer's
        // last handle is gone.)
        tokio::select! {
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(next)) => {}
            () = strong.wake.notified() => {}
        }
    }
}
