//! Watching a failover from outside the operator: what Knot answers, what the Route 53 zone
//! holds, and what the operator wrote into every GlobalIngress's status.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use aws_sdk_route53::types::RrType;
use globalingress::api::GlobalIngress;
use globalingress::dns::{Name, RData, RecordType, query};
use k8s_openapi::jiff::Timestamp;
use kube::Api;

/// Which way the region's address is expected to move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Region `a` out of the answer (Route 53: weight 0 or gone).
    Withdrawn,
    /// Region `a` back in.
    Restored,
}

/// Where the benchmark looks for the change.
#[derive(Debug)]
pub enum Observer {
    /// Authoritative queries to Knot, for these names.
    Knot {
        server: SocketAddr,
        names: Vec<Name>,
    },
    /// ListResourceRecordSets of the whole zone; `hosts` lower-case, without the trailing dot.
    Route53 {
        client: aws_sdk_route53::Client,
        zone_id: String,
        hosts: Vec<String>,
    },
}

/// What one observation saw.
#[derive(Debug)]
pub struct Observed {
    /// Per observed name: seconds from `since` until it showed the change.
    pub times: Vec<f64>,
    /// Route 53: mean seconds one full listing of the zone took.
    pub listing: Option<f64>,
}

impl Observer {
    /// Polls until every observed name shows `expect` for region `a` (`b` always stays).
    pub async fn until(
        &self,
        expect: Expect,
        a: &str,
        b: &str,
        since: Instant,
        timeout: Duration,
    ) -> anyhow::Result<Observed> {
        match self {
            Self::Knot { server, names } => {
                let want: BTreeSet<String> = match expect {
                    Expect::Withdrawn => [b.to_owned()].into(),
                    Expect::Restored => [a.to_owned(), b.to_owned()].into(),
                };
                let times = knot(*server, names, &want, since, timeout).await?;
                Ok(Observed {
                    times,
                    listing: None,
                })
            }
            Self::Route53 {
                client,
                zone_id,
                hosts,
            } => route53(client, zone_id, hosts, a, expect, since, timeout).await,
        }
    }

    pub fn observed(&self) -> usize {
        match self {
            Self::Knot { names, .. } => names.len(),
            Self::Route53 { hosts, .. } => hosts.len(),
        }
    }
}

async fn answer(server: SocketAddr, name: &Name) -> BTreeSet<String> {
    match query::authoritative(server, name, RecordType::A, Duration::from_secs(1)).await {
        Ok(a) => a
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0.to_string()),
                _ => None,
            })
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// Every pending name is asked once per round, all at once; a round starts every 20 ms (a few
/// names) or 50 ms (many: 100 queries per round is load of its own on 2 cores).
async fn knot(
    server: SocketAddr,
    names: &[Name],
    want: &BTreeSet<String>,
    since: Instant,
    timeout: Duration,
) -> anyhow::Result<Vec<f64>> {
    let poll = Duration::from_millis(if names.len() <= 10 { 20 } else { 50 });
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut times: Vec<Option<f64>> = vec![None; names.len()];
    loop {
        tick.tick().await;
        let pending: Vec<usize> = (0..names.len()).filter(|&i| times[i].is_none()).collect();
        if pending.is_empty() {
            return Ok(times.into_iter().flatten().collect());
        }
        if since.elapsed() > timeout {
            bail!(
                "{} of {} names still not answering {want:?} after {timeout:?}",
                pending.len(),
                names.len()
            );
        }
        let answers = futures::future::join_all(pending.iter().map(|&i| async move {
            let got = answer(server, &names[i]).await;
            (i, got, since.elapsed().as_secs_f64())
        }))
        .await;
        for (i, got, at) in answers {
            if &got == want {
                times[i] = Some(at);
            }
        }
    }
}

/// Lists the whole zone every ~150 ms. A name counts as changed at the moment the page holding
/// its record arrived (a name gone from the listing: when the listing ended).
async fn route53(
    client: &aws_sdk_route53::Client,
    zone_id: &str,
    hosts: &[String],
    a: &str,
    expect: Expect,
    since: Instant,
    timeout: Duration,
) -> anyhow::Result<Observed> {
    let mut times: Vec<Option<f64>> = vec![None; hosts.len()];
    let (mut listings, mut listing_time) = (0u32, 0.0);
    loop {
        let pending: Vec<usize> = (0..hosts.len()).filter(|&i| times[i].is_none()).collect();
        if pending.is_empty() {
            return Ok(Observed {
                times: times.into_iter().flatten().collect(),
                listing: Some(listing_time / f64::from(listings.max(1))),
            });
        }
        if since.elapsed() > timeout {
            bail!(
                "{} of {} records of region a not {expect:?} after {timeout:?}",
                pending.len(),
                hosts.len()
            );
        }
        let started = Instant::now();
        let weights = a_weights(client, zone_id, a, since).await?;
        let ended = since.elapsed().as_secs_f64();
        listings += 1;
        listing_time += started.elapsed().as_secs_f64();
        for i in pending {
            match (weights.get(&hosts[i]), expect) {
                (Some(&(Some(0), at)), Expect::Withdrawn) => times[i] = Some(at),
                (None, Expect::Withdrawn) => times[i] = Some(ended),
                (Some(&(Some(w), at)), Expect::Restored) if w > 0 => times[i] = Some(at),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Name -> (weight of the record pointing at `a`, seconds since `since` its page arrived).
async fn a_weights(
    client: &aws_sdk_route53::Client,
    zone_id: &str,
    a: &str,
    since: Instant,
) -> anyhow::Result<HashMap<String, (Option<i64>, f64)>> {
    let mut out = HashMap::new();
    let mut cursor: Option<(String, RrType, Option<String>)> = None;
    let mut seen = BTreeSet::new();
    loop {
        let mut req = client.list_resource_record_sets().hosted_zone_id(zone_id);
        if let Some((name, rtype, id)) = &cursor {
            req = req
                .start_record_name(name)
                .start_record_type(rtype.clone())
                .set_start_record_identifier(id.clone());
        }
        let page = req.send().await.context("ListResourceRecordSets")?;
        let at = since.elapsed().as_secs_f64();
        for set in page.resource_record_sets() {
            if set.r#type() == &RrType::A && set.resource_records().iter().any(|r| r.value() == a) {
                let name = set.name().trim_end_matches('.').to_ascii_lowercase();
                out.insert(name, (set.weight(), at));
            }
        }
        if !page.is_truncated() {
            return Ok(out);
        }
        let next = (
            page.next_record_name().unwrap_or_default().to_owned(),
            page.next_record_type().cloned().unwrap_or(RrType::A),
            page.next_record_identifier().map(str::to_owned),
        );
        // Moto never returns the identifier inside a weighted set: a repeated cursor would loop.
        if !seen.insert(format!("{next:?}")) {
            return Ok(out);
        }
        cursor = Some(next);
    }
}

pub fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn epoch(rfc3339: &str) -> Option<f64> {
    rfc3339
        .parse::<Timestamp>()
        .ok()
        .map(|t| t.as_millisecond() as f64 / 1000.0)
}

/// The operator's own timeline of one GlobalIngress, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct OperatorTimes {
    /// From the region's change (wall clock of the benchmark) to `detectedAt`.
    pub detected: f64,
    /// From `detectedAt` to `answerSeenAt` (RFC 2136) or `inSyncAt` (Route 53).
    pub done: Option<f64>,
}

/// Waits until every one of the `n` GlobalIngresses has a `status.lastFailover` of `kind`
/// detected after `since_wall` (so not the previous repeat's), and returns their timelines.
pub async fn operator_times(
    api: &Api<GlobalIngress>,
    n: usize,
    kind: &str,
    since_wall: f64,
    timeout: Duration,
) -> anyhow::Result<Vec<OperatorTimes>> {
    let started = Instant::now();
    loop {
        let list = api.list(&Default::default()).await?;
        let times: Vec<OperatorTimes> = list
            .items
            .iter()
            .filter_map(|gi| {
                let r = gi.status.as_ref()?.last_failover.as_ref()?;
                let detected = epoch(&r.detected_at)?;
                (r.kind == kind && detected > since_wall - 0.001).then(|| OperatorTimes {
                    detected: detected - since_wall,
                    done: r
                        .answer_seen_at
                        .as_deref()
                        .or(r.in_sync_at.as_deref())
                        .and_then(epoch)
                        .map(|t| t - detected),
                })
            })
            .collect();
        if times.len() >= n {
            return Ok(times);
        }
        if started.elapsed() > timeout {
            bail!(
                "{} of {n} GlobalIngresses recorded the {kind} after {timeout:?}",
                times.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(if n > 100 { 1000 } else { 250 })).await;
    }
}
