//! One round of the writer: diff every claim against the zone, split the changes into batches
//! within the provider's limits, and submit them one after the other.

use std::time::Instant;

use tracing::{debug, warn};

use super::sync::Tracker;
use super::{Config, Error, Outcome, OutcomeLabels, ProviderLabels, Reply, Stats, Timing};
use crate::dns::provider::{ProviderError, ZoneProvider};
use crate::dns::records::{self, Change, Claim, Zone};
use crate::model::dns::ProviderKind;

/// What one round did.
pub(super) struct Processed {
    /// The updated copy of the zone; `None` when its state is uncertain (list again).
    pub zone: Option<Zone>,
    /// Each claim's result, in the order of the claims.
    pub results: Vec<Result<Outcome, Error>>,
    /// The changes whose INSYNC the replies wait for (their first poll).
    pub change_ids: Vec<String>,
    /// The provider said the zone does not exist.
    pub zone_missing: Option<ProviderError>,
}

/// Diffs every claim, writes the changes in batches (each one only while the fence holds), and
/// returns the updated cache and each claim's result.
pub(super) async fn process(
    provider: &dyn ZoneProvider,
    config: &Config,
    mut zone: Zone,
    claims: &[(Claim, Vec<Reply>)],
    stats: &Stats,
    tracker: &Tracker,
) -> Processed {
    // Later claims see the earlier ones' changes: two claims cannot both take one free name.
    let mut scratch = zone.clone();
    let mut results: Vec<Result<Outcome, Error>> = Vec::new();
    let mut pending: Vec<(usize, Change)> = Vec::new();
    // One scan for every claim's previously owned names (each owner has one claim per batch,
    // so earlier claims' changes cannot alter another's entry).
    let owned = records::owned_names(&zone);
    for (i, (claim, _)) in claims.iter().enumerate() {
        let before = owned.get(&claim.owner).map_or(&[][..], Vec::as_slice);
        let (changes, conflicts) = records::diff_with(claim, &scratch, before);
        records::apply_to(&mut scratch, &changes);
        results.push(Ok(Outcome {
            conflicts,
            changes: changes.len(),
            refused: Vec::new(),
            timing: None,
            sync: None,
        }));
        pending.extend(changes.into_iter().map(|c| (i, c)));
    }
    let mut out = Processed {
        zone: None,
        results,
        change_ids: Vec::new(),
        zone_missing: None,
    };
    if pending.is_empty() {
        out.zone = Some(zone);
        return out;
    }
    let label = ProviderLabels {
        provider: match provider.kind() {
            ProviderKind::Route53 => "route53",
            ProviderKind::Rfc2136 => "rfc2136",
        },
    };
    let mut uncertain = false;
    let mut fenced = false;
    let bytes = |c: &Change| provider.change_bytes(c);
    for batch in split_by_limits(pending, config, (provider.max_batch_bytes(), &bytes)) {
        let mut queue = vec![batch];
        while let Some(batch) = queue.pop() {
            // The Lease is checked just before every batch, so a replica that lost it stops
            // mid-claim too.
            if fenced || !config.fence.is_leader() {
                fenced = true;
                uncertain = true;
                for (claim, _) in &batch {
                    out.results[*claim] = Err(Error::NotLeader);
                }
                continue;
            }
            let changes: Vec<Change> = batch.iter().map(|(_, c)| c.clone()).collect();
            stats
                .batches
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            debug!(
                changes = changes.len(),
                first = %describe(&changes[0]),
                "writing a change batch"
            );
            config
                .metrics
                .batch_size
                .get_or_create(&label)
                .observe(changes.len() as f64);
            let sent = Instant::now();
            let submitted_at = jiff::Timestamp::now();
            let result = provider.submit(&changes).await;
            let outcome = match &result {
                Ok(_) => "ok",
                Err(ProviderError::Refused { .. }) => "refused",
                Err(ProviderError::ZoneNotFound { .. }) => "zone_missing",
                Err(ProviderError::Unavailable { .. }) => "unavailable",
            };
            config
                .metrics
                .batches
                .get_or_create(&OutcomeLabels {
                    provider: label.provider,
                    outcome,
                })
                .inc();
            match result {
                Ok(submitted) => {
                    let owners: Vec<String> = unique_claims(&batch)
                        .map(|i| claims[i].0.owner.resource.clone())
                        .collect();
                    tracker.submitted(
                        &owners,
                        submitted_at,
                        sent,
                        submitted.change_id.as_deref(),
                        submitted.applied,
                    );
                    if let Some(id) = submitted.change_id {
                        out.change_ids.push(id);
                    }
                    for i in unique_claims(&batch) {
                        if let Some(Ok(outcome)) = out.results.get_mut(i) {
                            outcome.timing = Some(Timing {
                                submitted_at,
                                applied: submitted.applied,
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
                    if let Some(Ok(outcome)) = out.results.get_mut(*claim) {
                        outcome.changes = outcome.changes.saturating_sub(1);
                        outcome
                            .refused
                            .push(format!("{}: {message}", describe(change)));
                    }
                }
                Err(e) => {
                    warn!(error = %e, changes = batch.len(), "change batch failed; the claims will retry");
                    uncertain = true;
                    if matches!(e, ProviderError::ZoneNotFound { .. }) {
                        out.zone_missing = Some(e.clone());
                    }
                    for (claim, _) in &batch {
                        out.results[*claim] = Err(Error::Write(e.clone()));
                    }
                }
            }
        }
    }
    out.zone = (!uncertain).then_some(zone);
    out
}

/// The claims a batch carries changes of, each once.
fn unique_claims(batch: &[(usize, Change)]) -> impl Iterator<Item = usize> + '_ {
    let mut seen = std::collections::BTreeSet::new();
    batch
        .iter()
        .map(|(i, _)| *i)
        .filter(move |i| seen.insert(*i))
}

fn describe(change: &Change) -> String {
    let (verb, r) = match change {
        Change::Create(r) => ("create", r),
        Change::Upsert { new, .. } => ("update", new),
        Change::Delete(r) => ("delete", r),
    };
    format!("{verb} {} {:?}", r.name, r.rtype)
}

/// The largest batch in bytes, and the bytes of a change.
pub(crate) type ByteLimit<'a> = (usize, &'a dyn Fn(&Change) -> usize);

/// Splits changes into batches within the provider's limits, keeping their order.
pub(crate) fn split_by_limits(
    changes: Vec<(usize, Change)>,
    config: &Config,
    (max_bytes, bytes_of): ByteLimit<'_>,
) -> Vec<Vec<(usize, Change)>> {
    let mut out: Vec<Vec<(usize, Change)>> = Vec::new();
    let (mut values, mut chars, mut bytes) = (0usize, 0usize, 0usize);
    for (claim, change) in changes {
        let (v, c, b) = (
            change.batch_values(),
            change.batch_chars(),
            bytes_of(&change),
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
