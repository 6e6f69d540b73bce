//! The publishing scenario: the scale of the DNS engine.
//!
//! For each size N: N GlobalIngresses x 3 targets (Latency routing) in one Route 53 zone on the
//! emulator, with the AWS calls going through the project's counting proxy. It measures the time
//! to converge from cold, Route 53 calls by operation, and the operator's peak RSS; then one
//! change that touches every GlobalIngress (the SpokeCluster all first targets take their region
//! from moves), the time until every record shows it, and the change calls it took.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use globalingress::api::{DNSZone, GlobalIngress, SpokeCluster};
use globalingress::dns::provider::ZoneProvider as _;
use globalingress::dns::route53::Route53Zone;
use globalingress::model::dns::RecordRouting;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::Args;
use crate::env::{Env, all_true, create_all, hosted_zone, wait_until};
use crate::operator::{self, Operator};

/// Runs every size in `args.sizes` and prints the table.
pub async fn run(args: &Args, env: &Env) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for size in &args.sizes {
        let started = Instant::now();
        rows.push(scenario(args, env, *size).await?);
        eprintln!("[{size}] done in {:?}", started.elapsed());
    }
    print(&rows);
    Ok(())
}

fn print(rows: &[Row]) {
    println!();
    println!(
        "DNS engine scale (Route 53 on the emulator, 3 targets per GlobalIngress, Latency routing)"
    );
    println!(
        "{:>7}  {:>10}  {:>8}  {:>6}  {:>6}  {:>6}  {:>9}  {:>11}  {:>12}",
        "N",
        "cold (s)",
        "records",
        "Change",
        "List",
        "Other",
        "peak RSS",
        "change (s)",
        "change calls"
    );
    for r in rows {
        let change = r
            .calls
            .get("ChangeResourceRecordSets")
            .copied()
            .unwrap_or(0);
        let list = r.calls.get("ListResourceRecordSets").copied().unwrap_or(0);
        let other: usize = r.calls.values().sum::<usize>() - change - list;
        println!(
            "{:>7}  {:>10.2}  {:>8}  {:>6}  {:>6}  {:>6}  {:>6.0} MiB  {:>11.2}  {:>12}",
            r.size,
            r.cold.as_secs_f64(),
            r.size * 4,
            change,
            list,
            other,
            r.rss,
            r.change.as_secs_f64(),
            r.change_calls
        );
    }
    println!(
        "(records: 3 latency record sets + 1 ownership TXT per GlobalIngress; calls counted at the proxy)"
    );
}

/// The counting proxy (tests/env/fault_proxy.py), no faults.
pub struct Proxy {
    pub url: String,
    child: Child,
}

impl Proxy {
    pub fn start(upstream: &str) -> anyhow::Result<Self> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/env/fault_proxy.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--upstream", upstream])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("proxy stdout")?).read_line(&mut line)?;
        let port = line
            .trim()
            .strip_prefix("READY ")
            .context("proxy READY line")?
            .to_owned();
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
        })
    }

    /// Sets the proxy's faults or pace, e.g. `{"pending_s": 30}` (tests/env/fault_proxy.py).
    pub fn configure(&self, config: &Value) -> anyhow::Result<()> {
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys,urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method='POST')).read()",
                &format!("{}/__proxy/config", self.url),
                &config.to_string(),
            ])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "configuring the proxy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    pub fn operations(&self) -> anyhow::Result<Vec<String>> {
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())",
                &format!("{}/__proxy/stats", self.url),
            ])
            .output()?;
        let stats: Value = serde_json::from_slice(&out.stdout)?;
        Ok(stats["requests"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["op"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count(ops: &[String], name: &str) -> usize {
    ops.iter().filter(|o| *o == name).count()
}

struct Row {
    size: usize,
    cold: Duration,
    calls: BTreeMap<String, usize>,
    rss: f64,
    change: Duration,
    change_calls: usize,
}

async fn scenario(args: &Args, env: &Env, size: usize) -> anyhow::Result<Row> {
    let tag = format!("bench-{size}-{}", std::process::id());
    let timeout = Duration::from_secs(args.timeout);
    let client = globalingress::kube_client::connect(Some(&env.hub_kubeconfig)).await?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": tag}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let (r53, domain, zone_id) = hosted_zone(env, &tag).await?;
    let zone: DNSZone = serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "DNSZone", "metadata": {"name": tag},
        "spec": {"domain": domain, "ownerId": "bench", "provider": {"route53": {"hostedZoneId": zone_id}}}
    }))?;
    Api::<DNSZone>::all(client.clone())
        .create(&PostParams::default(), &zone)
        .await?;
    let spoke: SpokeCluster = serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "SpokeCluster", "metadata": {"name": tag},
        "spec": {"region": "eu-west-1", "kubeconfigSecretRef": {"namespace": tag, "name": "none"}}
    }))?;
    let spokes: Api<SpokeCluster> = Api::all(client.clone());
    spokes.create(&PostParams::default(), &spoke).await?;
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &tag);
    eprintln!("[{size}] creating {size} GlobalIngresses x 3 targets");
    create_all(&api, size, |i| {
        json!({
            "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress", "metadata": {"name": format!("svc{i}")},
            "spec": {"hostnames": [format!("svc{i}.{domain}")], "dnsZoneRef": tag, "routing": {"policy": "Latency"},
                // The DNS engine alone: no probes of these unreachable addresses (the
                // failover scenario measures health).
                "healthCheck": {"protocol": "None"},
                "targets": [
                    {"name": "a", "clusterRef": tag, "loadBalancer": {"mode": "External", "external": {"addresses": [format!("10.1.{}.{}", i / 250, i % 250)]}}},
                    {"name": "b", "region": "us-west-2", "loadBalancer": {"mode": "External", "external": {"addresses": [format!("10.2.{}.{}", i / 250, i % 250)]}}},
                    {"name": "c", "region": "ap-southeast-2", "loadBalancer": {"mode": "External", "external": {"addresses": [format!("10.3.{}.{}", i / 250, i % 250)]}}}
                ]}
        })
    })
    .await?;

    let proxy = Proxy::start(&env.aws_endpoint)?;
    let operator = Operator::start(&operator::Options {
        binary: &args.operator,
        kubeconfig: &env.hub_kubeconfig,
        namespace: &tag,
        aws_endpoint: &proxy.url,
        aws_keys: &env.aws_operator_keys,
        log: None,
        log_filter: "warn",
    })?;
    let synced = || all_true(&api, "DNSSynced", size);
    eprintln!("[{size}] operator started; waiting for convergence");
    // Listing 10,000 objects is itself load: poll less often the bigger the run.
    let poll = Duration::from_millis(250).max(Duration::from_millis(size as u64));
    let cold = wait_until("cold convergence", timeout, poll, synced).await?;
    let ops = proxy.operations()?;
    let mut calls = BTreeMap::new();
    for op in &ops {
        *calls.entry(op.clone()).or_insert(0) += 1;
    }
    let before = ops.len();

    eprintln!("[{size}] moving the shared region");
    spokes
        .patch(
            &tag,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"region": "us-east-1"}})),
        )
        .await?;
    let listed = Route53Zone::new(r53.clone(), &zone_id);
    let change = wait_until("the change", timeout, poll, || async {
        listed.list().await.is_ok_and(|held| {
            held.iter()
                .filter(|r| matches!(&r.routing, RecordRouting::Latency { region, .. } if region == "us-east-1"))
                .count()
                == size
        })
    })
    .await?;
    let ops = proxy.operations()?;
    let change_calls = count(&ops[before..], "ChangeResourceRecordSets");
    let rss = operator::peak_rss_mib(operator.id());
    drop(operator);
    Ok(Row {
        size,
        cold,
        calls,
        rss,
        change,
        change_calls,
    })
}
