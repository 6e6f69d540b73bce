//! The peers scenario: globalingress beside external-dns, on the same API server, the same
//! emulator and the same work.
//!
//! The work: N hostnames with three weighted A records each — for globalingress N
//! GlobalIngresses with three External targets (Weighted routing), for external-dns N
//! DNSEndpoints with three endpoints (set identifiers `a`, `b`, `c` and `aws/weight`). Each
//! tool gets a hosted zone and a namespace of its own and its own counting proxy in front of
//! the environment's AWS endpoint. Three runs: globalingress, external-dns as shipped, and
//! external-dns tuned ([`Variant`]). Each run has three phases:
//! 1. cold: the N objects exist, the tool starts; until every name holds its three records;
//! 2. a change touching every object (every weight moves); until every name shows it;
//! 3. idle: two minutes (`--peers-idle`) with nothing changing.
//!
//! A phase's calls are those the proxy saw from its start until the tool had been quiet for
//! 3 s after convergence (so a batch sent just after the last record appeared still counts
//! there), its CPU seconds the tool's utime + stime over the phase, its peak RSS the tool's
//! VmHWM, reset at the phase's start. The zone is read from moto directly with the admin's
//! keys, not through the counted proxy. A phase that does not converge within `--timeout`
//! says how many names it got. It measures and prints; it asserts nothing.

mod table;
mod zone;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use globalingress::api::{DNSZone, GlobalIngress};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::Args;
use crate::env::{Env, create_all, hosted_zone};
use crate::external_dns::{self, ExternalDns, Variant};
use crate::operator::{self, Operator, peak_rss_mib};
use crate::process::{alive, cpu_seconds, load_average, reset_peak_rss};
use crate::publish::Proxy;
use zone::Weighted;

/// The three targets' weights before and after the change (every one moves).
const BEFORE: [i64; 3] = [10, 20, 30];
const AFTER: [i64; 3] = [11, 21, 31];
const TARGETS: [&str; 3] = ["a", "b", "c"];
const TTL: u32 = 60;
/// The label of a run's objects; its operator selects them (`--selector`).
const RUN_LABEL: &str = "bench.globalingress.io/run";
/// After convergence, a phase ends once the tool made no call for this long.
const QUIET: Duration = Duration::from_secs(3);
/// ... or this long after convergence at the latest.
const QUIET_MAX: Duration = Duration::from_secs(30);

/// Which tool a run measures.
#[derive(Debug, Clone, Copy)]
enum Tool {
    GlobalIngress,
    ExternalDns(Variant),
}

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Self::GlobalIngress => "globalingress",
            Self::ExternalDns(v) => v.label(),
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Self::GlobalIngress => "gi",
            Self::ExternalDns(Variant::Shipped) => "edns-shipped",
            Self::ExternalDns(Variant::Tuned) => "edns-tuned",
        }
    }
}

/// What one phase measured.
#[derive(Debug, Clone, Default)]
pub struct Phase {
    /// Until every name was right (idle: the phase's length).
    pub seconds: f64,
    /// Whether every name was right at the end (idle: still right).
    pub done: bool,
    /// Names right at the end, of N.
    pub matched: usize,
    /// The tool's process had exited.
    pub exited: bool,
    pub calls: BTreeMap<String, usize>,
    pub cpu: f64,
    pub rss: f64,
    /// The machine's 1-minute load average at the phase's end.
    pub load: f64,
}

/// One tool's three phases.
#[derive(Debug)]
pub struct Run {
    pub label: &'static str,
    pub cold: Phase,
    pub change: Phase,
    pub idle: Phase,
}

impl Run {
    pub fn phases(&self) -> [&Phase; 3] {
        [&self.cold, &self.change, &self.idle]
    }
}

/// The globalingress run, then external-dns as shipped and tuned; prints the tables.
pub async fn run(args: &Args, env: &Env) -> anyhow::Result<()> {
    let binary = args.external_dns.as_deref().context(
        "peers: --external-dns (the binary tests/env/external-dns.sh builds and prints)",
    )?;
    let client = globalingress::kube_client::connect(Some(&env.hub_kubeconfig)).await?;
    Api::<CustomResourceDefinition>::all(client)
        .get(external_dns::CRD)
        .await
        .with_context(|| {
            format!(
                "peers: CRD {} is not installed (kubectl apply -f \"$(tests/env/external-dns.sh crd)\")",
                external_dns::CRD
            )
        })?;
    let version = std::process::Command::new(binary)
        .arg("--version")
        .output()
        // kingpin prints the version on standard error.
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text).trim().to_owned()
        })
        .unwrap_or_default();
    let mut runs = Vec::new();
    for tool in [
        Tool::GlobalIngress,
        Tool::ExternalDns(Variant::Shipped),
        Tool::ExternalDns(Variant::Tuned),
    ] {
        let started = Instant::now();
        runs.push(measure(args, env, tool, binary).await?);
        eprintln!(
            "[peers {}] {} done in {:.0?}",
            args.peers_size,
            tool.label(),
            started.elapsed()
        );
    }
    table::print(&table::Header {
        size: args.peers_size,
        idle: args.peers_idle,
        timeout: args.timeout,
        external_dns: binary,
        version: &version,
    });
    table::phases(args.peers_size, &runs);
    Ok(())
}

/// The records every name should hold with `weights`.
fn expected(size: usize, domain: &str, weights: [i64; 3]) -> Weighted {
    (0..size)
        .map(|i| {
            let records: BTreeSet<(String, i64)> =
                (0..3).map(|t| (address(t, i), weights[t])).collect();
            (format!("svc{i}.{domain}"), records)
        })
        .collect()
}

fn address(target: usize, i: usize) -> String {
    format!("10.{}.{}.{}", target + 1, i / 250, i % 250)
}

/// The objects of one run: GlobalIngresses or DNSEndpoints, in the run's namespace.
enum Objects {
    GlobalIngresses {
        api: Api<GlobalIngress>,
        /// The DNSZone's name, the run's tag (also its label value).
        zone_ref: String,
    },
    DnsEndpoints(Api<DynamicObject>),
}

impl Objects {
    fn spec(&self, i: usize, domain: &str, weights: [i64; 3]) -> Value {
        match self {
            Self::GlobalIngresses { zone_ref, .. } => json!({
                "hostnames": [format!("svc{i}.{domain}")], "dnsZoneRef": zone_ref, "ttl": TTL,
                "routing": {"policy": "Weighted"},
                // The DNS engine alone: external-dns probes nothing either.
                "healthCheck": {"protocol": "None"},
                "targets": (0..3).map(|t| json!({
                    "name": TARGETS[t], "weight": weights[t],
                    "loadBalancer": {"mode": "External", "external": {"addresses": [address(t, i)]}}
                })).collect::<Vec<_>>()
            }),
            Self::DnsEndpoints(_) => json!({
                "endpoints": (0..3).map(|t| json!({
                    "dnsName": format!("svc{i}.{domain}"), "recordType": "A", "recordTTL": TTL,
                    "targets": [address(t, i)], "setIdentifier": TARGETS[t],
                    "providerSpecific": [{"name": "aws/weight", "value": weights[t].to_string()}]
                })).collect::<Vec<_>>()
            }),
        }
    }

    async fn create(&self, size: usize, domain: &str) -> anyhow::Result<()> {
        match self {
            Self::GlobalIngresses { api, zone_ref } => {
                create_all(api, size, |i| {
                    json!({
                        "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
                        "metadata": {"name": format!("svc{i}"), "labels": {RUN_LABEL: zone_ref}},
                        "spec": self.spec(i, domain, BEFORE)
                    })
                })
                .await
            }
            Self::DnsEndpoints(api) => in_flight(size, |i| async move {
                let doc: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "externaldns.k8s.io/v1alpha1", "kind": "DNSEndpoint",
                    "metadata": {"name": format!("svc{i}")}, "spec": self.spec(i, domain, BEFORE)
                }))?;
                api.create(&PostParams::default(), &doc).await?;
                Ok(())
            })
            .await,
        }
    }

    /// Every object's weights to [`AFTER`] (a merge patch replacing the list: the same
    /// request for both kinds).
    async fn change(&self, size: usize, domain: &str) -> anyhow::Result<()> {
        in_flight(size, |i| async move {
            let name = format!("svc{i}");
            let patch = Patch::Merge(json!({"spec": self.spec(i, domain, AFTER)}));
            match self {
                Self::GlobalIngresses { api, .. } => {
                    api.patch(&name, &PatchParams::default(), &patch).await?;
                }
                Self::DnsEndpoints(api) => {
                    api.patch(&name, &PatchParams::default(), &patch).await?;
                }
            }
            Ok(())
        })
        .await
    }
}

/// Runs `f(0..size)`, 16 at a time (as [`create_all`] does).
async fn in_flight<F, Fut>(size: usize, f: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut all = futures::stream::iter((0..size).map(f)).buffer_unordered(16);
    while let Some(r) = all.next().await {
        r?;
    }
    Ok(())
}

/// The running tool; stopped when dropped.
enum Running {
    Operator(Operator),
    ExternalDns(ExternalDns),
}

impl Running {
    fn pid(&self) -> u32 {
        match self {
            Self::Operator(o) => o.id(),
            Self::ExternalDns(e) => e.id(),
        }
    }
}

/// One run's namespace and hosted zone (both named `tag`), and its objects.
struct Setup {
    tag: String,
    domain: String,
    zone_id: String,
    objects: Objects,
}

async fn setup(env: &Env, tool: Tool, size: usize) -> anyhow::Result<Setup> {
    let tag = format!("peers-{}-{size}-{}", tool.tag(), std::process::id());
    let client = globalingress::kube_client::connect(Some(&env.hub_kubeconfig)).await?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": tag}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let (_, domain, zone_id) = hosted_zone(env, &tag).await?;
    let objects = match tool {
        Tool::GlobalIngress => {
            let zone: DNSZone = serde_json::from_value(json!({
                "apiVersion": "globalingress.io/v1alpha1", "kind": "DNSZone",
                "metadata": {"name": tag, "labels": {RUN_LABEL: tag}},
                "spec": {"domain": domain, "ownerId": "bench-peers", "provider": {"route53": {"hostedZoneId": zone_id}}}
            }))?;
            Api::<DNSZone>::all(client.clone())
                .create(&PostParams::default(), &zone)
                .await?;
            Objects::GlobalIngresses {
                api: Api::namespaced(client.clone(), &tag),
                zone_ref: tag.clone(),
            }
        }
        Tool::ExternalDns(_) => Objects::DnsEndpoints(external_dns::dns_endpoints(client, &tag)),
    };
    Ok(Setup {
        tag,
        domain,
        zone_id,
        objects,
    })
}

/// Starts the tool on `s`, its AWS calls through `proxy`.
fn start(
    args: &Args,
    env: &Env,
    tool: Tool,
    s: &Setup,
    proxy: &Proxy,
    binary: &Path,
) -> anyhow::Result<Running> {
    let log = env.dir.join(format!("{}.log", s.tag));
    Ok(match tool {
        // Its own DNSZone only: the DNSZones of earlier runs (publish's, say) share the owner id
        // and would be checked and listed too.
        Tool::GlobalIngress => Running::Operator(Operator::start_with(
            &operator::Options {
                binary: &args.operator,
                kubeconfig: &env.hub_kubeconfig,
                namespace: &s.tag,
                aws_endpoint: &proxy.url,
                aws_keys: &env.aws_operator_keys,
                log: Some(log),
                log_filter: "warn",
            },
            &["--selector", &format!("{RUN_LABEL}={}", s.tag)],
        )?),
        Tool::ExternalDns(variant) => {
            Running::ExternalDns(ExternalDns::start(&external_dns::Options {
                binary,
                kubeconfig: &env.hub_kubeconfig,
                namespace: &s.tag,
                domain: &s.domain,
                zone_id: &s.zone_id,
                aws_endpoint: &proxy.url,
                aws_keys: &env.aws_admin_keys,
                variant,
                log,
            })?)
        }
    })
}

/// Measures one tool's three phases.
async fn measure(args: &Args, env: &Env, tool: Tool, binary: &Path) -> anyhow::Result<Run> {
    let size = args.peers_size;
    let say = |what: &str| eprintln!("[peers {size}] {}: {what}", tool.label());
    let s = setup(env, tool, size).await?;
    say(&format!("creating {size} objects x 3 weighted targets"));
    s.objects.create(size, &s.domain).await?;

    let proxy = Proxy::start(&env.aws_endpoint)?;
    let moto = aws_sdk_route53::Client::new(
        &globalingress::aws::sdk_config(&globalingress::aws::SdkSettings {
            static_credentials: Some(env.aws_admin_keys.clone()),
            ..globalingress::aws::SdkSettings::emulator(env.moto_endpoint.clone())
        })
        .await,
    );
    let started = Instant::now();
    let running = start(args, env, tool, &s, &proxy, binary)?;
    let watch = Watch {
        moto,
        zone_id: s.zone_id.clone(),
        pid: running.pid(),
        proxy: &proxy,
        size,
        timeout: Duration::from_secs(args.timeout),
    };

    say("started; cold");
    let cold = watch
        .phase(
            Mark {
                at: started,
                cpu: 0.0,
                calls: 0,
            },
            &expected(size, &s.domain, BEFORE),
        )
        .await?;
    say(&format!(
        "cold: {:.1} s; changing every weight",
        cold.seconds
    ));
    let mark = watch.mark()?;
    s.objects.change(size, &s.domain).await?;
    let change = watch.phase(mark, &expected(size, &s.domain, AFTER)).await?;
    say(&format!(
        "change: {:.1} s; idle for {} s",
        change.seconds, args.peers_idle
    ));
    let mark = watch.mark()?;
    tokio::time::sleep(Duration::from_secs(args.peers_idle)).await;
    let idle = watch.end(mark, &expected(size, &s.domain, AFTER)).await?;
    drop(running);
    Ok(Run {
        label: tool.label(),
        cold,
        change,
        idle,
    })
}

/// Where a phase began: the clock, the tool's CPU seconds, the proxy's call count.
struct Mark {
    at: Instant,
    cpu: f64,
    calls: usize,
}

struct Watch<'a> {
    /// Route 53 on moto directly, with the admin's keys.
    moto: aws_sdk_route53::Client,
    zone_id: String,
    pid: u32,
    proxy: &'a Proxy,
    size: usize,
    timeout: Duration,
}

impl Watch<'_> {
    /// A phase begins now (the tool's peak RSS starts over).
    fn mark(&self) -> anyhow::Result<Mark> {
        reset_peak_rss(self.pid);
        Ok(Mark {
            at: Instant::now(),
            cpu: cpu_seconds(self.pid).unwrap_or(0.0),
            calls: self.proxy.operations()?.len(),
        })
    }

    /// Waits until every name holds `want` (or the timeout, or the tool's exit), then until the
    /// tool is quiet, and measures the phase.
    async fn phase(&self, mark: Mark, want: &Weighted) -> anyhow::Result<Phase> {
        let mut matched = 0;
        let converged = loop {
            let listed = Instant::now();
            // A listing that fails (moto busy) counts as nothing right yet.
            if let Ok(held) = zone::weighted(&self.moto, &self.zone_id).await {
                matched = zone::matching(&held, want);
            }
            let elapsed = mark.at.elapsed();
            if matched == self.size {
                break Some(elapsed);
            }
            if elapsed > self.timeout || !alive(self.pid) {
                break None;
            }
            // Listing a zone of thousands of records is load of its own on 2 cores: at least
            // as long a pause as the listing took.
            tokio::time::sleep(listed.elapsed().max(Duration::from_millis(250))).await;
        };
        if converged.is_some() {
            self.quiet().await?;
        }
        let mut phase = self.measured(&mark)?;
        phase.seconds = converged.unwrap_or_else(|| mark.at.elapsed()).as_secs_f64();
        phase.done = converged.is_some();
        phase.matched = matched;
        Ok(phase)
    }

    /// The idle phase's end: measured now, the zone still checked.
    async fn end(&self, mark: Mark, want: &Weighted) -> anyhow::Result<Phase> {
        let mut phase = self.measured(&mark)?;
        phase.seconds = mark.at.elapsed().as_secs_f64();
        phase.matched = zone::weighted(&self.moto, &self.zone_id)
            .await
            .map_or(0, |held| zone::matching(&held, want));
        phase.done = phase.matched == self.size;
        Ok(phase)
    }

    /// Until the proxy saw no call for [`QUIET`] ([`QUIET_MAX`] at most).
    async fn quiet(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        let (mut count, mut since) = (self.proxy.operations()?.len(), Instant::now());
        while since.elapsed() < QUIET && started.elapsed() < QUIET_MAX {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.proxy.operations()?.len();
            if now != count {
                (count, since) = (now, Instant::now());
            }
        }
        Ok(())
    }

    fn measured(&self, mark: &Mark) -> anyhow::Result<Phase> {
        let ops = self.proxy.operations()?;
        let mut calls = BTreeMap::new();
        for op in ops.iter().skip(mark.calls) {
            *calls.entry(op.clone()).or_insert(0) += 1;
        }
        Ok(Phase {
            calls,
            cpu: cpu_seconds(self.pid).map_or(0.0, |c| c - mark.cpu),
            rss: peak_rss_mib(self.pid),
            exited: !alive(self.pid),
            load: load_average(),
            ..Phase::default()
        })
    }
}
