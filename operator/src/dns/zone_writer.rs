//! The zone writer: one task per DNSZone, shared by every reconcile.
//!
//! It collects the claims that arrive close together (each one extends a 100 ms window, up to one
//! second), computes their changes against its cached copy of the zone (listed every
//! [`Config::relist`], then kept current from its own writes, so a reconcile costs no reads and
//! an in-sync zone costs no writes), and sends them as few change batches as the provider's
//! limits allow (Route 53: 1,000 values and 32,000 characters per batch, an UPSERT counting
//! twice). When the provider refuses a batch, the writer splits it until the refused change is
//! alone, so one bad record never blocks the others, and reports it to the claim it came from.
//!
//! **Route 53's pace.** A change is accepted at once but reported `INSYNC` only tens of seconds
//! later. The writer never holds its slot for that: batches go out one after the other, each as
//! soon as the previous one was accepted (so the order of changes per zone is kept), and every
//! accepted change is followed in the background ([`sync`]) with a backoff poll of GetChange that
//! spends from the shared budget. A claim's reply says where its owner's latest change stands
//! ([`OwnerSync`]: submitted, in sync); when a change turns in sync later, [`Config::notify`]
//! names its owners so their status can say so.
//!
//! **Waves.** A health change moves the records of every GlobalIngress using the endpoint: their
//! claims come in one request ([`ZoneWriter::submit_all`]) and go out in one round — one change
//! call per zone, two where the provider's limits force it. Every claim carries when its inputs
//! were observed (a number from [`crate::reconcile::observe`]); a claim observed before one
//! already processed for the same owner is superseded, not written, so a reconcile that read
//! the health before the change cannot undo the wave's publish.
//!
//! **One writer.** Before every batch the writer checks [`Config::fence`]: a replica that lost
//! (or cannot prove) the Lease sends nothing more, mid-claim included, and lists the zone again
//! once it leads again (the other leader may have changed it).

mod batch;
mod sync;

#[cfg(test)]
pub(crate) use batch::split_by_limits;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::provider::{Applied, ProviderError, ZoneProvider};
use super::records::{self, Claim, Conflict, Zone};
pub use sync::OwnerSync;

/// Metrics a writer reports into (families shared with the process's registry).
#[derive(Debug, Clone)]
pub struct WriterMetrics {
    /// Changes per batch sent.
    pub batch_size: Family<ProviderLabels, Histogram>,
    /// Seconds from sending a batch until the provider reports it in sync (Route 53: GetChange
    /// INSYNC; RFC 2136: the server's answer shows it).
    pub sync_seconds: Family<ProviderLabels, Histogram>,
    /// Batches by outcome (`ok`, `refused`, `unavailable`, `zone_missing`).
    pub batches: Family<OutcomeLabels, Counter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub provider: &'static str,
    pub outcome: &'static str,
}

impl Default for WriterMetrics {
    fn default() -> Self {
        Self {
            batch_size: Family::new_with_constructor(|| {
                Histogram::new([1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0])
            }),
            sync_seconds: Family::new_with_constructor(|| {
                Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
            }),
            batches: Family::default(),
        }
    }
}

impl WriterMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "dns_batch_size",
            "Changes per DNS change batch",
            self.batch_size.clone(),
        );
        registry.register(
            "dns_sync_seconds",
            "Seconds from sending a change batch until it is in sync (Route 53 INSYNC, RFC 2136 answer seen)",
            self.sync_seconds.clone(),
        );
        registry.register(
            "dns_batches",
            "DNS change batches by outcome",
            self.batches.clone(),
        );
    }
}

/// Called with the owner (`namespace/name`) of a change that turned in sync after its claim
/// was answered.
#[derive(Clone)]
pub struct Notify(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notify")
    }
}

/// Limits and timing of a writer.
#[derive(Debug, Clone)]
pub struct Config {
    pub metrics: WriterMetrics,
    /// How long to wait for another claim before sending what has come (the batching window
    /// restarts with every claim that arrives in time).
    pub window: Duration,
    /// The longest a claim waits for others to batch with.
    pub max_wait: Duration,
    /// List the zone again at least this often (changes made by others become visible;
    /// `--zone-relist-interval`).
    pub relist: Duration,
    /// A zone its provider does not have is asked again only after this long; claims meanwhile
    /// get the same answer without a call.
    pub missing_retry: Duration,
    pub max_values: usize,
    pub max_chars: usize,
    /// Batches are sent only while this replica holds the Lease.
    pub fence: crate::leader::Leadership,
    /// Told when a change turns in sync in the background.
    pub notify: Option<Notify>,
    /// The INSYNC poll: first after this long, then growing by half up to `poll_max`.
    pub poll_first: Duration,
    pub poll_max: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window: Duration::from_millis(100),
            max_wait: Duration::from_secs(1),
            relist: Duration::from_secs(300),
            missing_retry: Duration::from_secs(30),
            max_values: 1000,
            max_chars: 32_000,
            metrics: WriterMetrics::default(),
            fence: crate::leader::Leadership::always(),
            notify: None,
            poll_first: Duration::from_secs(1),
            poll_max: Duration::from_secs(5),
        }
    }
}

/// The result of one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Names the claim may not change (another owner, or records nobody owns).
    pub conflicts: Vec<Conflict>,
    /// Changes written for this claim.
    pub changes: usize,
    /// Changes the provider refused, with its message.
    pub refused: Vec<String>,
    /// When this claim's last batch was sent and became visible (for the failover timeline);
    /// `None` when nothing was written.
    pub timing: Option<Timing>,
    /// Where the owner's latest change stands (this claim's or an earlier one's); `None` when
    /// this writer never wrote for it.
    pub sync: Option<OwnerSync>,
}

impl Outcome {
    /// Whether the owner's records are known to be in sync at the provider.
    pub fn in_sync(&self) -> bool {
        self.sync.as_ref().is_none_or(|s| s.in_sync_at.is_some())
    }
}

/// When a claim's changes were sent and became visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub submitted_at: jiff::Timestamp,
    pub applied: Applied,
}

/// Why a claim could not be processed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("failed to list the zone")]
    List(#[source] ProviderError),
    #[error("failed to write the changes")]
    Write(#[source] ProviderError),
    #[error("not written: this replica does not hold the Lease")]
    NotLeader,
    #[error("the zone writer stopped")]
    Stopped,
}

impl Error {
    /// The provider's own error, when there is one.
    pub fn provider(&self) -> Option<&ProviderError> {
        match self {
            Self::List(e) | Self::Write(e) => Some(e),
            Self::NotLeader | Self::Stopped => None,
        }
    }
}

/// Counters of a writer, for metrics and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub lists: std::sync::atomic::AtomicU64,
    pub batches: std::sync::atomic::AtomicU64,
    pub changes: std::sync::atomic::AtomicU64,
    /// GetChange polls made in the background.
    pub polls: std::sync::atomic::AtomicU64,
}

/// How many record sets a zone holds, and how many of them one hub owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneCount {
    pub record_sets: usize,
    /// Record sets at names whose registry names this owner id, registry entries included.
    pub owned: usize,
}

/// Where a claim's result goes.
type Reply = oneshot::Sender<Result<Outcome, Error>>;

/// A claim as the writer receives it: with when its inputs were observed (`0`: unordered, never
/// superseded).
struct Submission {
    claim: Claim,
    observed: u64,
    reply: Reply,
}

enum Request {
    Claims(Vec<Submission>),
    Count {
        owner_id: String,
        reply: oneshot::Sender<Result<ZoneCount, Error>>,
    },
}

/// Handle to a zone's writer task; cheap to clone.
#[derive(Clone)]
pub struct ZoneWriter {
    tx: mpsc::Sender<Request>,
    pub stats: Arc<Stats>,
}

impl std::fmt::Debug for ZoneWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneWriter").finish_non_exhaustive()
    }
}

impl ZoneWriter {
    /// Starts the writer task for one zone (and its INSYNC follower). Both end when every
    /// handle is dropped.
    pub fn spawn(provider: Arc<dyn ZoneProvider>, config: Config) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        let stats = Arc::new(Stats::default());
        let tracker = sync::Tracker::spawn(provider.clone(), &config, stats.clone());
        tokio::spawn(run(provider, config, rx, stats.clone(), tracker));
        Self { tx, stats }
    }

    /// Submits a claim and waits until its changes are accepted (and, when the provider says
    /// so at once, in sync). Unordered: never superseded (see [`ZoneWriter::submit_observed`]).
    pub async fn submit(&self, claim: Claim) -> Result<Outcome, Error> {
        self.submit_observed(claim, 0).await
    }

    /// [`ZoneWriter::submit`] of a claim whose inputs were observed at `observed` (see the
    /// module's "Waves"; `0`: unordered).
    pub async fn submit_observed(&self, claim: Claim, observed: u64) -> Result<Outcome, Error> {
        let mut results = self.submit_all(vec![(claim, observed)]).await;
        results.pop().unwrap_or(Err(Error::Stopped))
    }

    /// Submits claims to be written in one round (a wave); waits for all of them. The results
    /// are in the order of `claims`.
    pub async fn submit_all(&self, claims: Vec<(Claim, u64)>) -> Vec<Result<Outcome, Error>> {
        let (submissions, replies): (Vec<Submission>, Vec<_>) = claims
            .into_iter()
            .map(|(claim, observed)| {
                let (reply, rx) = oneshot::channel();
                (
                    Submission {
                        claim,
                        observed,
                        reply,
                    },
                    rx,
                )
            })
            .unzip();
        let n = replies.len();
        if self.tx.send(Request::Claims(submissions)).await.is_err() {
            return (0..n).map(|_| Err(Error::Stopped)).collect();
        }
        let mut out = Vec::with_capacity(n);
        for rx in replies {
            out.push(rx.await.unwrap_or(Err(Error::Stopped)));
        }
        out
    }

    /// How many record sets the zone holds (listing it first when it was never listed).
    pub async fn count(&self, owner_id: &str) -> Result<ZoneCount, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Count {
                owner_id: owner_id.to_owned(),
                reply,
            })
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }
}

/// The writer's copy of the zone.
#[derive(Default)]
struct Cache {
    zone: Option<(Zone, Instant)>,
    /// The provider said the zone does not exist, at this time.
    missing: Option<(ProviderError, Instant)>,
}

impl Cache {
    /// Takes the zone out of the cache, listed first when stale or unknown; the caller puts it
    /// back (or not, when its state became uncertain).
    async fn take(
        &mut self,
        provider: &dyn ZoneProvider,
        config: &Config,
        stats: &Stats,
    ) -> Result<(Zone, Instant), Error> {
        if let Some((e, at)) = &self.missing
            && at.elapsed() < config.missing_retry
        {
            return Err(Error::List(e.clone()));
        }
        if let Some((zone, at)) = self.zone.take()
            && at.elapsed() < config.relist
        {
            return Ok((zone, at));
        }
        stats
            .lists
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match provider.list().await {
            Ok(rrsets) => {
                self.missing = None;
                Ok((
                    rrsets.into_iter().map(|r| (r.key(), r)).collect(),
                    Instant::now(),
                ))
            }
            Err(e) => {
                warn!(error = %e, "zone list failed");
                if matches!(e, ProviderError::ZoneNotFound { .. }) {
                    self.missing = Some((e.clone(), Instant::now()));
                }
                Err(Error::List(e))
            }
        }
    }

    /// Answers `counts` from the zone (listed when needed).
    async fn count(
        &mut self,
        counts: Vec<(String, oneshot::Sender<Result<ZoneCount, Error>>)>,
        provider: &dyn ZoneProvider,
        config: &Config,
        stats: &Stats,
    ) {
        if counts.is_empty() {
            return;
        }
        match self.take(provider, config, stats).await {
            Ok((zone, at)) => {
                for (owner_id, reply) in counts {
                    let _ = reply.send(Ok(count(&zone, &owner_id)));
                }
                self.zone = Some((zone, at));
            }
            Err(e) => answer_counts(counts, &e),
        }
    }
}

async fn run(
    provider: Arc<dyn ZoneProvider>,
    config: Config,
    mut rx: mpsc::Receiver<Request>,
    stats: Arc<Stats>,
    tracker: sync::Tracker,
) {
    let mut cache = Cache::default();
    // The newest observation processed per owner.
    let mut observed: HashMap<String, u64> = HashMap::new();
    while let Some(first) = rx.recv().await {
        let mut claims = Vec::new();
        let mut counts = Vec::new();
        match first {
            Request::Count { owner_id, reply } => counts.push((owner_id, reply)),
            Request::Claims(more) => claims.extend(more),
        }
        // Collect while claims keep coming (a burst of reconciles after one shared change), until
        // `window` passes without a new one, but never longer than `max_wait` in all.
        let hard_deadline = tokio::time::Instant::now() + config.max_wait;
        loop {
            let deadline = (tokio::time::Instant::now() + config.window).min(hard_deadline);
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Request::Claims(more))) => claims.extend(more),
                Ok(Some(Request::Count { owner_id, reply })) => counts.push((owner_id, reply)),
                _ => break,
            }
        }
        if claims.is_empty() {
            cache
                .count(counts, provider.as_ref(), &config, &stats)
                .await;
            continue;
        }
        let latest = newest(claims, &mut observed, &tracker);
        if latest.is_empty() {
            cache
                .count(counts, provider.as_ref(), &config, &stats)
                .await;
            continue;
        }
        if !config.fence.is_leader() {
            // Whatever the other leader wrote meanwhile is not in our copy.
            cache.zone = None;
            reply_all(latest, &Err(Error::NotLeader));
            answer_counts(counts, &Error::NotLeader);
            continue;
        }
        let (zone, listed_at) = match cache.take(provider.as_ref(), &config, &stats).await {
            Ok(zone) => zone,
            Err(e) => {
                answer_counts(counts, &e);
                reply_all(latest, &Err(e));
                continue;
            }
        };
        let processed =
            batch::process(provider.as_ref(), &config, zone, &latest, &stats, &tracker).await;
        cache.zone = processed.zone.map(|z| (z, listed_at));
        if let Some(e @ ProviderError::ZoneNotFound { .. }) = processed.zone_missing {
            cache.missing = Some((e, Instant::now()));
        }
        // Counts asked while the claims were collected: from the copy after them (uncertain
        // after a failed batch: listed again).
        cache
            .count(counts, provider.as_ref(), &config, &stats)
            .await;
        // Replies go once the first INSYNC poll of the changes they wait for has answered (moto
        // and a quick Route 53 are in sync by then: no second reconcile needed). The writer does
        // not wait for that: the next batch can go out meanwhile.
        let tracker = tracker.clone();
        tokio::spawn(async move {
            tracker.first_polls(&processed.change_ids).await;
            for ((claim, replies), mut result) in latest.into_iter().zip(processed.results) {
                if let Ok(outcome) = &mut result {
                    outcome.sync = tracker.owner(&claim.owner.resource);
                    if let (Some(timing), Some(sync)) = (&mut outcome.timing, &outcome.sync)
                        && sync.submitted_at == timing.submitted_at
                    {
                        timing.applied.in_sync_at = timing.applied.in_sync_at.or(sync.in_sync_at);
                    }
                }
                for reply in replies {
                    let _ = reply.send(result.clone());
                }
            }
        });
        debug!("claims processed");
    }
}

/// The newest claim of each owner (observed last; of two observed alike, the later one), with
/// every reply waiting for it: the older ones get its result. A claim observed before one
/// processed earlier for the same owner is answered at once as superseded: nothing written,
/// and the owner's latest change as its sync.
fn newest(
    claims: Vec<Submission>,
    observed: &mut HashMap<String, u64>,
    tracker: &sync::Tracker,
) -> Vec<(Claim, Vec<Reply>)> {
    let mut latest: Vec<(Claim, u64, Vec<Reply>)> = Vec::new();
    let mut at: HashMap<records::Owner, usize> = HashMap::new();
    for Submission {
        claim,
        observed,
        reply,
    } in claims
    {
        match at.get(&claim.owner) {
            Some(&i) => {
                let entry = &mut latest[i];
                if observed >= entry.1 || observed == 0 {
                    entry.0 = claim;
                    entry.1 = observed;
                }
                entry.2.push(reply);
            }
            None => {
                at.insert(claim.owner.clone(), latest.len());
                latest.push((claim, observed, vec![reply]));
            }
        }
    }
    let mut out = Vec::with_capacity(latest.len());
    for (claim, seen, replies) in latest {
        let last = observed.entry(claim.owner.resource.clone()).or_default();
        if seen != 0 && seen < *last {
            debug!(owner = %claim.owner.resource, "claim superseded by a newer observation");
            let outcome = Outcome {
                conflicts: Vec::new(),
                changes: 0,
                refused: Vec::new(),
                timing: None,
                sync: tracker.owner(&claim.owner.resource),
            };
            for reply in replies {
                let _ = reply.send(Ok(outcome.clone()));
            }
            continue;
        }
        *last = (*last).max(seen);
        out.push((claim, replies));
    }
    out
}

fn reply_all(claims: Vec<(Claim, Vec<Reply>)>, result: &Result<Outcome, Error>) {
    for (_, replies) in claims {
        for reply in replies {
            let _ = reply.send(result.clone());
        }
    }
}

fn answer_counts(counts: Vec<(String, oneshot::Sender<Result<ZoneCount, Error>>)>, e: &Error) {
    for (_, reply) in counts {
        let _ = reply.send(Err(e.clone()));
    }
}

/// The zone's record sets, and those at names `owner_id` owns (registry entries included).
fn count(zone: &Zone, owner_id: &str) -> ZoneCount {
    let owned_names: std::collections::HashSet<String> = records::owned_names(zone)
        .into_iter()
        .filter(|(owner, _)| owner.owner == owner_id)
        .flat_map(|(_, names)| names)
        .flat_map(|name| [records::registry_name(&name), name])
        .collect();
    ZoneCount {
        record_sets: zone.len(),
        owned: zone
            .values()
            .filter(|r| owned_names.contains(&r.name))
            .count(),
    }
}

#[cfg(test)]
#[path = "zone_writer_tests.rs"]
mod tests;
