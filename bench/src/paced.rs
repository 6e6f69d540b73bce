//! `paced`: two failovers in one Route 53 zone, the second while the first's change is still
//! PENDING. The operator's AWS calls go through the fault proxy (tests/env/fault_proxy.py), which
//! answers every ChangeResourceRecordSets PENDING and GetChange PENDING until `pending_s` after the
//! change, as Route 53 does (moto is INSYNC at once). Two groups of N GlobalIngresses share the
//! zone: group 1 on regions a and b, group 2 on c and d. Region a stops; once group 1's records
//! have moved, region c stops: the time until group 2's records move must not include the first
//! change's PENDING time. Runs once without pacing and once with it, and prints both.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use crate::Args;
use crate::dataplane::DataPlane;
use crate::env::{Env, hosted_zone};
use crate::failover::{create_global_ingresses, start_operator};
use crate::observe::{Expect, Observer};
use crate::publish::Proxy;
use globalingress::api::{DNSZone, GlobalIngress};

const TIMEOUT: Duration = Duration::from_secs(180);

struct Run {
    pending_s: u64,
    /// Region a down -> group 1's last name moved (s).
    first: f64,
    /// Region c down (right after) -> group 2's last name moved (s).
    second: f64,
    change_calls: usize,
    get_change_calls: usize,
}

async fn once(args: &Args, env: &Env, size: usize, pending_s: u64) -> anyhow::Result<Run> {
    let tag = format!("paced-{pending_s}-{}", std::process::id());
    let label = format!("[paced pending={pending_s}s N={size}x2]");
    let client = globalingress::kube_client::connect(Some(&env.hub_kubeconfig)).await?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": tag}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let planes =
        DataPlane::start_many(&["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]).await?;
    let (r53, domain, zone_id) = hosted_zone(env, &tag).await?;
    let zone: DNSZone = serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "DNSZone", "metadata": {"name": tag},
        "spec": {"domain": domain, "ownerId": tag, "provider": {"route53": {"hostedZoneId": zone_id}}}
    }))?;
    Api::<DNSZone>::all(client.clone())
        .create(&PostParams::default(), &zone)
        .await?;
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &tag);
    create_global_ingresses(&api, &tag, &domain, ("g1-", size), &planes[..2]).await?;
    create_global_ingresses(&api, &tag, &domain, ("g2-", size), &planes[2..]).await?;
    let observer = |group: usize| Observer::Route53 {
        client: r53.clone(),
        zone_id: zone_id.clone(),
        hosts: (0..size)
            .map(|i| format!("g{group}-{i}.{domain}"))
            .collect(),
    };
    let (one, two) = (observer(1), observer(2));
    let proxy = Proxy::start(&env.aws_endpoint)?;
    proxy.configure(&json!({ "pending_s": pending_s }))?;
    let (op, _log) = start_operator(args, env, &tag, &proxy.url).await?;
    let ips: Vec<String> = planes.iter().map(DataPlane::ip).collect();
    let cold = Instant::now();
    one.until(Expect::Restored, &ips[0], &ips[1], cold, TIMEOUT)
        .await
        .context("group 1 published")?;
    two.until(Expect::Restored, &ips[2], &ips[3], cold, TIMEOUT)
        .await
        .context("group 2 published")?;
    // Every change of the cold start in sync at the proxy too, so the failovers start clean.
    tokio::time::sleep(Duration::from_secs(pending_s + 1)).await;
    let before = proxy.operations()?;
    planes[0].stop().await;
    let down = Instant::now();
    let first = one
        .until(Expect::Withdrawn, &ips[0], &ips[1], down, TIMEOUT)
        .await
        .context("region a down")?;
    planes[2].stop().await;
    let second_down = Instant::now();
    let second = two
        .until(Expect::Withdrawn, &ips[2], &ips[3], second_down, TIMEOUT)
        .await
        .context("region c down")?;
    let after = proxy.operations()?;
    let new = &after[before.len().min(after.len())..];
    let count = |op: &str| new.iter().filter(|o| *o == op).count();
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let run = Run {
        pending_s,
        first: max(&first.times),
        second: max(&second.times),
        change_calls: count("ChangeResourceRecordSets"),
        get_change_calls: count("GetChange"),
    };
    eprintln!(
        "{label} region a down -> group 1 moved {:.2}s; region c down -> group 2 moved {:.2}s",
        run.first, run.second
    );
    drop(op);
    Ok(run)
}

pub async fn run(args: &Args, env: &Env) -> anyhow::Result<()> {
    let size = args.paced_size;
    let mut runs = Vec::new();
    for pending_s in [0, args.paced_pending] {
        runs.push(once(args, env, size, pending_s).await?);
    }
    println!(
        "\nRoute 53 paced: two failovers in one zone ({size} GlobalIngresses each, probes every 1s, \
         unhealthyThreshold 2), the second right after the first's records moved"
    );
    println!(
        "{:>10} {:>12} {:>13} {:>13} {:>10}",
        "PENDING s", "first (s)", "second (s)", "Change calls", "GetChange"
    );
    for r in &runs {
        println!(
            "{:>10} {:>12.2} {:>13.2} {:>13} {:>10}",
            r.pending_s, r.first, r.second, r.change_calls, r.get_change_calls
        );
    }
    println!(
        "(first/second: a region stopped -> the last of its group's names changed in the zone; \
         the second is not delayed by the first when it stays near the unpaced figure)"
    );
    Ok(())
}
