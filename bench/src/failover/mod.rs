//! The failover scenario: how long a failing region takes to leave the answers of N
//! GlobalIngresses, and what it costs in DNS changes.
//!
//! For each size N and provider (Knot over RFC 2136, Route 53 on the emulator): N GlobalIngresses
//! in one zone, each with two External targets, `a` (127.0.0.2:P) and `b` (127.0.0.3:P), served by
//! in-process data planes. They all share one health check (same port, path and host header), so
//! the operator probes each region once per interval whatever N. Each repeat stops `a` and
//! measures region down -> changed for the observed names without asking the operator (Knot:
//! authoritative queries; Route 53: listing the zone), then reads the operator's own timeline
//! from every status (`status.lastFailover`) and the DNS changes it made; then it restarts `a`
//! and waits until every GlobalIngress failed back before the next repeat.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use globalingress::api::condition::find;
use globalingress::api::{DNSZone, GlobalIngress};
use globalingress::dns::Name;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use crate::Args;
use crate::dataplane::DataPlane;
use crate::env::{Env, create_all, wait_until};
use crate::observe::{Expect, Observed, Observer, OperatorTimes, operator_times, wall_now};
use crate::operator::{self, Operator};

mod table;

/// Where the zone lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    /// The environment's Knot server (RFC 2136).
    Knot,
    /// A hosted zone on the Route 53 emulator.
    Route53,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Knot => "knot",
            Self::Route53 => "route53",
        })
    }
}

/// Names Knot is asked about when N is larger than this: a fixed random sample of this many.
pub(crate) const KNOT_SAMPLE: usize = 50;
/// Give up on publishing the N GlobalIngresses at first after this long.
const COLD_TIMEOUT: Duration = Duration::from_secs(300);
/// Give up on one phase of a repeat after this long.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);
const HOST_HEADER: &str = "failover.bench";

/// DNS changes the operator made, counted from outside the operator where possible.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    /// Route 53 ChangeResourceRecordSets attempts (operator metrics).
    pub(crate) change_calls: f64,
    /// Every Route 53 call (operator metrics).
    pub(crate) route53_calls: f64,
    /// Updates that changed the zone, from Knot's log ("DDNS, finished, serial a -> b").
    pub(crate) knot_updates: f64,
}

impl Counters {
    async fn read(op: &Operator, knot_log: &Path) -> anyhow::Result<Self> {
        let metrics = op.metrics().await?;
        let log = std::fs::read_to_string(knot_log).unwrap_or_default();
        Ok(Self {
            change_calls: operator::metric_sum(
                &metrics,
                "globalingress_aws_calls_total",
                &["operation=\"ChangeResourceRecordSets\""],
            ),
            route53_calls: operator::metric_sum(
                &metrics,
                "globalingress_aws_calls_total",
                &["service=\"route53\""],
            ),
            knot_updates: log.matches("DDNS, finished, serial").count() as f64,
        })
    }

    fn since(self, before: Self) -> Self {
        Self {
            change_calls: self.change_calls - before.change_calls,
            route53_calls: self.route53_calls - before.route53_calls,
            knot_updates: self.knot_updates - before.knot_updates,
        }
    }
}

/// One repeat: region `a` down and back.
#[derive(Debug)]
pub(crate) struct Repeat {
    /// Region down -> the first / last observed name changed (s).
    pub(crate) first: f64,
    pub(crate) last: f64,
    /// Region up -> the last observed name back (s).
    pub(crate) back: f64,
    pub(crate) operator: Vec<OperatorTimes>,
    pub(crate) listing: Option<f64>,
    pub(crate) failover: Counters,
    pub(crate) failback: Counters,
}

/// Every repeat of one size and provider.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) provider: Provider,
    pub(crate) size: usize,
    pub(crate) observed: usize,
    pub(crate) repeats: Vec<Repeat>,
    /// Repeats that did not finish within [`PHASE_TIMEOUT`], and why.
    pub(crate) failed: Vec<String>,
    pub(crate) elapsed: Duration,
}

/// Runs every size and provider, then prints one table per provider.
pub async fn run(args: &Args, env: &Env) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for &size in &args.failover_sizes {
        for &provider in &args.failover_providers {
            let run_started = Instant::now();
            // A run that cannot even start is a result too: say so in the table, go on.
            let mut outcome = match scenario(args, env, provider, size).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    eprintln!("[{provider} N={size}] FAILED: {e:#}");
                    Outcome {
                        provider,
                        size,
                        observed: 0,
                        repeats: Vec::new(),
                        failed: vec![format!("{e:#}")],
                        elapsed: Duration::ZERO,
                    }
                }
            };
            outcome.elapsed = run_started.elapsed();
            eprintln!(
                "[{provider} N={size}] done in {:.0}s",
                outcome.elapsed.as_secs_f64()
            );
            outcomes.push(outcome);
        }
    }
    for &provider in &args.failover_providers {
        let rows: Vec<&Outcome> = outcomes.iter().filter(|o| o.provider == provider).collect();
        table::print(provider, &rows);
    }
    println!(
        "(failover scenario: {:.1} min in all)",
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// The zone of one run and how to observe it.
struct Zone {
    /// Hostnames are `gi<i>.<domain>`.
    domain: String,
    observer: Observer,
}

async fn create_zone(
    env: &Env,
    client: &kube::Client,
    provider: Provider,
    tag: &str,
    size: usize,
) -> anyhow::Result<Zone> {
    let (zone_domain, domain, observer, spec) = match provider {
        Provider::Knot => {
            let secret: Secret = serde_json::from_value(json!({
                "metadata": {"name": "tsig"},
                "data": {"secret": ByteString(env.tsig_secret.as_bytes().to_vec())}
            }))?;
            Api::<Secret>::namespaced(client.clone(), tag)
                .create(&PostParams::default(), &secret)
                .await?;
            // A subdomain of the shared zone per run, so runs never meet.
            let domain = format!("{tag}.{}", env.dns_zone);
            let names = sample(size, KNOT_SAMPLE)
                .into_iter()
                .map(|i| Name::from_ascii(format!("gi{i}.{domain}.")))
                .collect::<Result<Vec<_>, _>>()?;
            let spec = json!({"rfc2136": {
                "server": env.dns_server.to_string(), "tsigKeyName": env.tsig_key_name,
                "algorithm": env.tsig_algorithm,
                "tsigSecretRef": {"namespace": tag, "name": "tsig", "key": "secret"}
            }});
            let observer = Observer::Knot {
                server: env.dns_server,
                names,
            };
            (env.dns_zone.clone(), domain, observer, spec)
        }
        Provider::Route53 => {
            let (r53, domain, zone_id) = crate::env::hosted_zone(env, tag).await?;
            let spec = json!({"route53": {"hostedZoneId": zone_id}});
            let observer = Observer::Route53 {
                client: r53,
                zone_id,
                hosts: (0..size).map(|i| format!("gi{i}.{domain}")).collect(),
            };
            (domain.clone(), domain, observer, spec)
        }
    };
    let zone: DNSZone = serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "DNSZone", "metadata": {"name": tag},
        "spec": {"domain": zone_domain, "ownerId": tag, "provider": spec}
    }))?;
    Api::<DNSZone>::all(client.clone())
        .create(&PostParams::default(), &zone)
        .await?;
    Ok(Zone { domain, observer })
}

/// Indices of the names to observe: all of them up to `max`, else a fixed pseudo-random sample
/// (the same one every run, so runs compare).
fn sample(size: usize, max: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..size).collect();
    if size <= 2 * max {
        return all;
    }
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..max {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = i + (state % (size - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(max);
    all.sort_unstable();
    all
}

/// GlobalIngresses `<prefix><i>` at `<prefix><i>.<domain>`, weighted over targets a and b on the
/// first two of `planes`, probed every second (the paced scenario uses it too).
pub(crate) async fn create_global_ingresses(
    api: &Api<GlobalIngress>,
    tag: &str,
    domain: &str,
    (prefix, size): (&str, usize),
    planes: &[DataPlane],
) -> anyhow::Result<()> {
    let (a, b, port) = (planes[0].ip(), planes[1].ip(), planes[0].port());
    create_all(api, size, |i| {
        json!({
            "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
            "metadata": {"name": format!("{prefix}{i}")},
            "spec": {
                "hostnames": [format!("{prefix}{i}.{domain}")], "dnsZoneRef": tag, "ttl": 5,
                "routing": {"policy": "Weighted"},
                "healthCheck": {"protocol": "HTTP", "path": "/healthz", "port": port,
                                "hostHeader": HOST_HEADER, "interval": "1s", "timeout": "500ms",
                                "healthyThreshold": 1, "unhealthyThreshold": 2},
                "failover": {"failbackAfter": "2s"},
                "targets": [
                    {"name": "a", "weight": 1, "loadBalancer": {"mode": "External", "external": {"addresses": [a]}}},
                    {"name": "b", "weight": 1, "loadBalancer": {"mode": "External", "external": {"addresses": [b]}}}
                ]}
        })
    })
    .await
}

/// Every GlobalIngress published, both targets Healthy.
async fn all_healthy(api: &Api<GlobalIngress>, size: usize) -> bool {
    api.list(&Default::default()).await.is_ok_and(|l| {
        l.items
            .iter()
            .filter(|gi| {
                gi.status.as_ref().is_some_and(|s| {
                    find(&s.conditions, "DNSSynced").is_some_and(|c| c.status == "True")
                        && s.targets.len() == 2
                        && s.targets.iter().all(|t| t.health == "Healthy")
                })
            })
            .count()
            == size
    })
}

/// The operator of run `tag` (its namespace), its AWS calls to `aws_endpoint`, logging to
/// `operator-<tag>.log` in the environment's directory; ready. The log's path comes back.
pub(crate) async fn start_operator(
    args: &Args,
    env: &Env,
    tag: &str,
    aws_endpoint: &str,
) -> anyhow::Result<(Operator, PathBuf)> {
    let log: PathBuf = env.dir.join(format!("operator-{tag}.log"));
    let op = Operator::start(&operator::Options {
        binary: &args.operator,
        kubeconfig: &env.hub_kubeconfig,
        namespace: tag,
        aws_endpoint,
        aws_keys: &env.aws_operator_keys,
        log: Some(log.clone()),
        log_filter: &args.failover_operator_log,
    })?;
    op.wait_ready(Duration::from_secs(60))
        .await
        .with_context(|| format!("operator log: {}", log.display()))?;
    Ok((op, log))
}

async fn scenario(
    args: &Args,
    env: &Env,
    provider: Provider,
    size: usize,
) -> anyhow::Result<Outcome> {
    let tag = format!("fo-{provider}-{size}-{}", std::process::id());
    let label = format!("[{provider} N={size}]");
    let started = Instant::now();
    let client = globalingress::kube_client::connect(Some(&env.hub_kubeconfig)).await?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": tag}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let planes = DataPlane::start_many(&["127.0.0.2", "127.0.0.3"]).await?;
    let (a, b) = (&planes[0], &planes[1]);
    let zone = create_zone(env, &client, provider, &tag, size).await?;
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &tag);
    create_global_ingresses(&api, &tag, &zone.domain, ("gi", size), &planes).await?;
    let (op, log) = start_operator(args, env, &tag, &env.aws_endpoint).await?;
    // 1,000 objects converge in well under a minute; an operator that does not, does not later.
    let timeout = Duration::from_secs(args.timeout).min(COLD_TIMEOUT);
    let (ip_a, ip_b) = (a.ip(), b.ip());
    let poll = Duration::from_millis(250).max(Duration::from_millis(size as u64));
    let cold = async {
        zone.observer
            .until(Expect::Restored, &ip_a, &ip_b, Instant::now(), timeout)
            .await?;
        wait_until("every target Healthy", timeout, poll, || {
            all_healthy(&api, size)
        })
        .await
    };
    if let Err(e) = cold.await {
        eprintln!("{label} statuses now: {}", summarize(&api).await);
        return Err(e.context(format!("cold convergence; operator log: {}", log.display())));
    }
    eprintln!(
        "{label} {size} GlobalIngresses published, both regions Healthy ({:.0}s); observing {} name(s); {} repeats",
        started.elapsed().as_secs_f64(),
        zone.observer.observed(),
        args.failover_repeats
    );
    let knot_log = env.dir.join("knot/knot.log");
    let (mut repeats, mut failed) = (Vec::new(), Vec::new());
    for r in 1..=args.failover_repeats {
        let t = Instant::now();
        let repeat = match repeat(&op, &api, &zone.observer, &planes, size, &knot_log).await {
            Ok(repeat) => repeat,
            Err(e) => {
                // Measure and print: a repeat that does not finish is a result too. Put region a
                // back and go on, unless the operator does not recover either.
                eprintln!(
                    "{label} {r:>2}/{}: FAILED after {:.0}s: {e:#}",
                    args.failover_repeats,
                    t.elapsed().as_secs_f64()
                );
                eprintln!("{label}    statuses now: {}", summarize(&api).await);
                eprintln!("{label}    operator log: {}", log.display());
                failed.push(format!("{e:#}"));
                let recovered = match a.restart().await {
                    Ok(()) => zone
                        .observer
                        .until(
                            Expect::Restored,
                            &ip_a,
                            &ip_b,
                            Instant::now(),
                            PHASE_TIMEOUT,
                        )
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e),
                };
                if let Err(e) = recovered {
                    eprintln!("{label} giving up on this run: region a not back either: {e:#}");
                    break;
                }
                if failed.len() >= 2 && repeats.is_empty() {
                    eprintln!("{label} giving up on this run: the first repeats all failed");
                    break;
                }
                continue;
            }
        };
        let calls = match provider {
            Provider::Knot => format!(
                "zone updates {}+{}",
                repeat.failover.knot_updates, repeat.failback.knot_updates
            ),
            Provider::Route53 => format!(
                "Change calls {}+{}",
                repeat.failover.change_calls, repeat.failback.change_calls
            ),
        };
        eprintln!(
            "{label} {r:>2}/{}: down -> changed first {:.2}s, last {:.2}s; up -> back {:.2}s; {calls} ({:.1}s)",
            args.failover_repeats,
            repeat.first,
            repeat.last,
            repeat.back,
            t.elapsed().as_secs_f64()
        );
        repeats.push(repeat);
    }
    drop(op);
    drop(planes);
    Ok(Outcome {
        provider,
        size,
        observed: zone.observer.observed(),
        repeats,
        failed,
        elapsed: Duration::ZERO,
    })
}

/// How many GlobalIngresses stand where: DNSSynced status and reason, and the kind of their
/// last failover (for a repeat that did not finish).
async fn summarize(api: &Api<GlobalIngress>) -> String {
    let Ok(list) = api.list(&Default::default()).await else {
        return "(cannot list)".to_owned();
    };
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let mut example = None;
    for gi in &list.items {
        let status = gi.status.as_ref();
        let condition = status.and_then(|s| find(&s.conditions, "DNSSynced"));
        if example.is_none()
            && let Some(c) = condition.filter(|c| c.status != "True")
        {
            example = Some(format!(
                "{}: {}",
                gi.metadata.name.as_deref().unwrap_or("?"),
                c.message
            ));
        }
        let synced = condition.map_or("none".to_owned(), |c| format!("{}/{}", c.status, c.reason));
        let last = status
            .and_then(|s| s.last_failover.as_ref())
            .map_or("none", |f| f.kind.as_str());
        *counts
            .entry(format!("DNSSynced={synced} lastFailover={last}"))
            .or_default() += 1;
    }
    let mut out = counts
        .iter()
        .map(|(k, n)| format!("{n} x {k}"))
        .collect::<Vec<_>>()
        .join("; ");
    if let Some(example) = example {
        out.push_str(&format!("; e.g. {example}"));
    }
    out
}

async fn repeat(
    op: &Operator,
    api: &Api<GlobalIngress>,
    observer: &Observer,
    planes: &[DataPlane],
    size: usize,
    knot_log: &Path,
) -> anyhow::Result<Repeat> {
    let (a, b) = (&planes[0], &planes[1]);
    let (ip_a, ip_b) = (a.ip(), b.ip());
    let before = Counters::read(op, knot_log).await?;
    a.stop().await;
    let (down, down_wall) = (Instant::now(), wall_now());
    let changed: Observed = observer
        .until(Expect::Withdrawn, &ip_a, &ip_b, down, PHASE_TIMEOUT)
        .await
        .context("region a down")?;
    let times = operator_times(api, size, "Failover", down_wall, PHASE_TIMEOUT).await?;
    let after_failover = Counters::read(op, knot_log).await?;

    a.restart().await?;
    let (up, up_wall) = (Instant::now(), wall_now());
    let back = observer
        .until(Expect::Restored, &ip_a, &ip_b, up, PHASE_TIMEOUT)
        .await
        .context("region a back")?;
    operator_times(api, size, "Failback", up_wall, PHASE_TIMEOUT).await?;
    let after_failback = Counters::read(op, knot_log).await?;
    let max = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    Ok(Repeat {
        first: changed.times.iter().copied().fold(f64::NAN, f64::min),
        last: max(&changed.times),
        back: max(&back.times),
        operator: times,
        listing: changed.listing,
        failover: after_failover.since(before),
        failback: after_failback.since(after_failover),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_fixed_distinct_and_complete_for_small_sizes() {
        assert_eq!(sample(3, 50), vec![0, 1, 2]);
        let s = sample(1000, 50);
        assert_eq!(s, sample(1000, 50));
        assert_eq!(s.len(), 50);
        assert!(s.windows(2).all(|w| w[0] < w[1]) && s[49] < 1000);
    }
}
