//! The zone writer: one task per DNSZone, shared by every reconcile.
//!
//! It collects the claims that arrive close together (each one extends a 100 ms window, up to one
//! second), computes their changes against its cached copy of the zone (listed once per resync,
//! then kept current from its own writes, so a reconcile costs no reads and an in-sync zone costs
//! no writes), and sends them as few change
//! batches as the provider's limits allow (Route 53: 1,000 values and 32,000 characters per
//! batch, an UPSERT counting twice), one batch in flight at a time. When the provider refuses a
//! batch, the writer splits it until the refused change is alone, so one bad record never blocks
//! the others, and reports it to the claim it came from.

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
use super::records::{self, Change, Claim, Conflict, Zone};

/// Metrics a writer reports into (families shared with the process's registry).
#[derive(Debug, Clone)]
pub struct WriterMetrics {
    /// Changes per batch sent.
    pub batch_size: Family<ProviderLabels, Histogram>,
    /// Seconds from sending a batch until the provider reports it in sync (Route 53: GetChange
    /// INSYNC; RFC 2136: the server's answer shows it).
    pub sync_seconds: Family<ProviderLabels, Histogram>,
    /// Batches by outcome (`ok`, `refused`, `unavailable`).
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

/// Limits and timing of a writer.
#[derive(Debug, Clone)]
pub struct Config {
    pub metrics: WriterMetrics,
    /// How long to wait for another claim before sending what has come (the batching window
    /// restarts with every claim that arrives in time).
    pub window: Duration,
    /// The longest a claim waits for others to batch with.
    pub max_wait: Duration,
    /// Relist the zone at least this often (changes made by others become visible).
    pub resync: Duration,
    pub max_values: usize,
    pub max_chars: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window: Duration::from_millis(100),
            max_wait: Duration::from_secs(1),
            resync: Duration::from_secs(300),
            max_values: 1000,
            max_chars: 32_000,
            metrics: WriterMetrics::default(),
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
    /// When this claim's last batch was sent, reported in sync and seen in the answers (for the
    /// failover timeline); `None` when nothing was written.
    pub timing: Option<Timing>,
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
    #[error("the zone writer stopped")]
    Stopped,
}

/// Counters of a writer, for metrics and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub lists: std::sync::atomic::AtomicU64,
    pub batches: std::sync::atomic::AtomicU64,
    pub changes: std::sync::atomic::AtomicU64,
}

/// Where a claim's result goes.
type Reply = oneshot::Sender<Result<Outcome, Error>>;

struct Request {
    claim: Claim,
    reply: Reply,
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
    /// Starts the writer task for one zone. It ends when every handle is dropped.
    pub fn spawn(provider: Arc<dyn ZoneProvider>, config: Config) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        let stats = Arc::new(Stats::default());
        tokio::spawn(run(provider, config, rx, stats.clone()));
        Self { tx, stats }
    }

    /// Submits a claim and waits until its changes are written and in sync.
    pub async fn submit(&self, claim: Claim) -> Result<Outcome, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request { claim, reply })
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }
}

async fn run(
    provider: Arc<dyn ZoneProvider>,
    config: Config,
    mut rx: mpsc::Receiver<Request>,
    stats: Arc<Stats>,
) {
    let mut cache: Option<(Zone, Instant)> = None;
    while let Some(first) = rx.recv().await {
        // Collect while claims keep coming (a burst of reconciles after one shared change), until
        // `window` passes without a new one, but never longer than `max_wait` in all.
        let mut requests = vec![first];
        let hard_deadline = tokio::time::Instant::now() + config.max_wait;
        loop {
            let deadline = (tokio::time::Instant::now() + config.window).min(hard_deadline);
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(next)) => requests.push(next),
                _ => break,
            }
        }
        // The newest claim of a GlobalIngress wins; older ones get its result.
        let mut latest: Vec<(Claim, Vec<Reply>)> = Vec::new();
        for r in requests {
            match latest.iter_mut().find(|(c, _)| c.owner == r.claim.owner) {
                Some(entry) => {
                    entry.0 = r.claim;
                    entry.1.push(r.reply);
                }
                None => latest.push((r.claim, vec![r.reply])),
            }
        }
        if cache
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= config.resync)
        {
            stats
                .lists
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match provider.list().await {
                Ok(rrsets) => {
                    cache = Some((
                        rrsets.into_iter().map(|r| (r.key(), r)).collect(),
                        Instant::now(),
                    ));
                }
                Err(e) => {
                    warn!(error = %e, "zone list failed");
                    for (_, replies) in latest {
                        for reply in replies {
                            let _ = reply.send(Err(Error::List(e.clone())));
                        }
                    }
                    continue;
                }
            }
        }
        let Some((zone, listed_at)) = cache.take() else {
            continue;
        };
        let (zone, results) = process(provider.as_ref(), &config, zone, &latest, &stats).await;
        cache = zone.map(|z| (z, listed_at));
        for ((_, replies), result) in latest.into_iter().zip(results) {
            for reply in replies {
                let _ = reply.send(result.clone());
            }
        }
    }
}

/// Diffs every claim, writes the changes in batches, and returns the updated cache (`None` when
/// the zone's state is uncertain and must be listed again) and each claim's result.
async fn process(
    provider: &dyn ZoneProvider,
    config: &Config,
    mut zone: Zone,
    claims: &[(Claim, Vec<Reply>)],
    stats: &Stats,
) -> (Option<Zone>, Vec<Result<Outcome, Error>>) {
    // Later claims see the earlier ones' changes: two claims cannot both take one free name.
    let mut scratch = zone.clone();
    let mut outcomes: Vec<Result<Outcome, Error>> = Vec::new();
    let mut pending: Vec<(usize, Change)> = Vec::new();
    // One scan for every claim's previously owned names (each owner has one claim per batch,
    // so earlier claims' changes cannot alter another's entry).
    let owned = records::owned_names(&zone);
    for (i, (claim, _)) in claims.iter().enumerate() {
        let before = owned.get(&claim.owner).map_or(&[][..], Vec::as_slice);
        let (changes, conflicts) = records::diff_with(claim, &scratch, before);
        records::apply_to(&mut scratch, &changes);
        outcomes.push(Ok(Outcome {
            conflicts,
            changes: changes.len(),
            refused: Vec::new(),
            timing: None,
        }));
        pending.extend(changes.into_iter().map(|c| (i, c)));
    }
    if pending.is_empty() {
        return (Some(zone), outcomes);
    }
    let mut uncertain = false;
    for batch in split_by_limits(pending, config, provider.max_batch_bytes()) {
        let mut queue = vec![batch];
        while let Some(batch) = queue.pop() {
            let changes: Vec<Change> = batch.iter().map(|(_, c)| c.clone()).collect();
            stats
                .batches
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            debug!(changes = changes.len(), "writing a change batch");
            let provider_label = ProviderLabels {
                provider: match provider.kind() {
                    crate::reconcile::plan::ProviderKind::Route53 => "route53",
                    crate::reconcile::plan::ProviderKind::Rfc2136 => "rfc2136",
                },
            };
            config
                .metrics
                .batch_size
                .get_or_create(&provider_label)
                .observe(changes.len() as f64);
            let sent = Instant::now();
            let submitted_at = jiff::Timestamp::now();
            let result = provider.apply(&changes).await;
            let outcome = match &result {
                Ok(_) => {
                    config
                        .metrics
                        .sync_seconds
                        .get_or_create(&provider_label)
                        .observe(sent.elapsed().as_secs_f64());
                    "ok"
                }
                Err(ProviderError::Refused { .. }) => "refused",
                Err(ProviderError::Unavailable { .. }) => "unavailable",
            };
            config
                .metrics
                .batches
                .get_or_create(&OutcomeLabels {
                    provider: provider_label.provider,
                    outcome,
                })
                .inc();
            match result {
                Ok(applied) => {
                    for (claim, _) in &batch {
                        if let Some(Ok(outcome)) = outcomes.get_mut(*claim) {
                            outcome.timing = Some(Timing {
                                submitted_at,
                                applied,
                            });
                        }
                    }
                    stats
                        .changes
                        .fetch_add(changes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    records::apply_to(&mut zone, &changes);
                }
                Err(ProviderError::Refused { message }) if batch.len() > 1 => {
                    debug!(%message, "batch refused: splitting it");
                    let mut first = batch;
                    let second = first.split_off(first.len() / 2);
                    queue.push(second);
                    queue.push(first);
                }
                Err(ProviderError::Refused { message }) => {
                    // A refusal can mean our copy of the zone is stale (an RFC 2136
                    // prerequisite failed because someone changed the record): list again
                    // before the next batch.
                    uncertain = true;
                    let (claim, change) = &batch[0];
                    if let Some(Ok(outcome)) = outcomes.get_mut(*claim) {
                        outcome.changes = outcome.changes.saturating_sub(1);
                        outcome
                            .refused
                            .push(format!("{}: {message}", describe(change)));
                    }
                }
                Err(e @ ProviderError::Unavailable { .. }) => {
                    warn!(error = %e, changes = batch.len(), "change batch failed; the claims will retry");
                    uncertain = true;
                    for (claim, _) in &batch {
                        outcomes[*claim] = Err(Error::Write(e.clone()));
                    }
                }
            }
        }
    }
    ((!uncertain).then_some(zone), outcomes)
}

fn describe(change: &Change) -> String {
    let (verb, r) = match change {
        Change::Create(r) => ("create", r),
        Change::Upsert { new, .. } => ("update", new),
        Change::Delete(r) => ("delete", r),
    };
    format!("{verb} {} {:?}", r.name, r.rtype)
}

/// Splits changes into batches within the provider's limits, keeping their order.
fn split_by_limits(
    changes: Vec<(usize, Change)>,
    config: &Config,
    max_bytes: usize,
) -> Vec<Vec<(usize, Change)>> {
    let mut out: Vec<Vec<(usize, Change)>> = Vec::new();
    let (mut values, mut chars, mut bytes) = (0usize, 0usize, 0usize);
    for (claim, change) in changes {
        let (v, c, b) = (
            change.batch_values(),
            change.batch_chars(),
            change.wire_bytes(),
        );
        let full = values + v > config.max_values
            || chars + c > config.max_chars
            || bytes.saturating_add(b) > max_bytes;
        if out.is_empty() || full {
            out.push(Vec::new());
            values = 0;
            chars = 0;
            bytes = 0;
        }
        values += v;
        chars += c;
        bytes = bytes.saturating_add(b);
        if let Some(last) = out.last_mut() {
            last.push((claim, change));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::FutureExt as _;
    use futures::future::BoxFuture;

    use super::*;
    use crate::dns::records::{Owner, Rrset};
    use crate::reconcile::plan::{ProviderKind, RecordRouting, RecordType};

    /// An in-memory zone that refuses any change whose name contains "bad".
    #[derive(Default)]
    struct FakeZone {
        zone: Mutex<Zone>,
        batches: Mutex<Vec<usize>>,
    }

    impl ZoneProvider for FakeZone {
        fn kind(&self) -> ProviderKind {
            ProviderKind::Route53
        }
        fn list(&self) -> BoxFuture<'_, Result<Vec<Rrset>, ProviderError>> {
            let all = self.zone.lock().unwrap().values().cloned().collect();
            async move { Ok(all) }.boxed()
        }
        fn apply<'a>(
            &'a self,
            changes: &'a [Change],
        ) -> BoxFuture<'a, Result<Applied, ProviderError>> {
            async move {
                self.batches.lock().unwrap().push(changes.len());
                if changes.iter().any(|c| c.rrset().name.contains("bad")) {
                    return Err(ProviderError::Refused {
                        message: "InvalidChangeBatch".into(),
                    });
                }
                records::apply_to(&mut self.zone.lock().unwrap(), changes);
                Ok(Applied::default())
            }
            .boxed()
        }
    }

    fn claim(resource: &str, host: &str) -> Claim {
        Claim {
            owner: Owner {
                owner: "hub".into(),
                resource: resource.into(),
            },
            names: vec![host.into()],
            desired: vec![Rrset {
                name: host.into(),
                rtype: RecordType::A,
                routing: RecordRouting::Simple,
                ttl: Some(30),
                values: vec!["192.0.2.1".into()],
                alias: None,
                health_check_id: None,
            }],
            keep_health_checks: false,
        }
    }

    #[tokio::test]
    async fn concurrent_claims_share_one_batch_and_a_bad_one_is_isolated() {
        let zone = Arc::new(FakeZone::default());
        let writer = ZoneWriter::spawn(zone.clone(), Config::default());
        let mut tasks = Vec::new();
        for i in 0..50 {
            let writer = writer.clone();
            let host = if i == 7 {
                "bad.example.com".to_owned()
            } else {
                format!("h{i}.example.com")
            };
            tasks.push(tokio::spawn(async move {
                writer.submit(claim(&format!("ns/gi{i}"), &host)).await
            }));
        }
        let mut refused = 0;
        for t in tasks {
            let outcome = t.await.unwrap().unwrap();
            refused += outcome.refused.len();
        }
        assert!(refused >= 1, "the bad record is reported");
        // 49 good claims x (registry + A) are in the zone; the bad name has at most its registry.
        let names: Vec<String> = zone
            .zone
            .lock()
            .unwrap()
            .values()
            .map(|r| r.name.clone())
            .collect();
        assert_eq!(names.iter().filter(|n| n.starts_with('h')).count(), 49);
        assert!(!names.iter().any(|n| n == "bad.example.com"));
        let batches = zone.batches.lock().unwrap().clone();
        assert!(
            batches[0] == 100,
            "one batch for everything first: {batches:?}"
        );
        // The bad claim has two refused changes (its registry TXT and its A record); isolating
        // each takes about 2 * log2(100) batches, never one batch per change.
        assert!(batches.len() <= 1 + 2 * 2 * 7, "{batches:?}");

        // Nothing changed: a second round writes nothing.
        let before = zone.batches.lock().unwrap().len();
        let outcome = writer
            .submit(claim("ns/gi1", "h1.example.com"))
            .await
            .unwrap();
        assert_eq!(outcome.changes, 0);
        assert_eq!(zone.batches.lock().unwrap().len(), before);
        // The refusal in the first round made the writer list again once; from then on its
        // cache serves.
        let lists = || {
            writer
                .stats
                .lists
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        assert_eq!(lists(), 2, "listed at start and once after the refusal");
        let outcome = writer
            .submit(claim("ns/gi2", "h2.example.com"))
            .await
            .unwrap();
        assert_eq!(outcome.changes, 0);
        assert_eq!(lists(), 2, "no further listing");
    }

    #[test]
    fn batches_respect_the_value_limit_with_upserts_counting_twice() {
        let r = claim("ns/a", "x.example.com").desired[0].clone();
        let changes: Vec<(usize, Change)> = (0..1500)
            .map(|i| {
                (
                    i,
                    Change::Upsert {
                        old: r.clone(),
                        new: r.clone(),
                    },
                )
            })
            .collect();
        let batches = split_by_limits(changes, &Config::default(), usize::MAX);
        assert_eq!(batches.len(), 3);
        assert!(
            batches
                .iter()
                .all(|b| b.iter().map(|(_, c)| c.batch_values()).sum::<usize>() <= 1000)
        );
    }

    #[test]
    fn rfc2136_batches_stay_within_one_dns_message() {
        // 1,000 GlobalIngresses published at once: each a registry TXT and an A record.
        let changes: Vec<(usize, Change)> = (0..1000)
            .flat_map(|i| {
                let c = claim(
                    &format!("bench/gi{i}"),
                    &format!("gi{i}.failover.example.test"),
                );
                let registry = c.owner.registry_rrset(&c.names[0]);
                [
                    (i, Change::Create(registry)),
                    (i, Change::Create(c.desired[0].clone())),
                ]
            })
            .collect();
        let total: usize = changes.iter().map(|(_, c)| c.wire_bytes()).sum();
        assert!(
            total > 65_535,
            "the test needs more than one message: {total}"
        );
        let batches = split_by_limits(changes, &Config::default(), 32_000);
        assert!(batches.len() >= 3);
        for b in &batches {
            assert!(b.iter().map(|(_, c)| c.wire_bytes()).sum::<usize>() <= 32_000);
        }
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 2000);
    }
}
