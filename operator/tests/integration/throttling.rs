//! Under throttling, everything converges, nothing is duplicated, and the request rate seen by
//! AWS never exceeds the budget (measured at the fault-injecting proxy).

use std::time::{Duration, Instant};

use futures::StreamExt as _;

use globalingress::api::GlobalIngress;
use globalingress::api::condition::find;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use crate::support::operator::{Operator, Options, eventually};
use crate::support::proxy::FaultProxy;
use crate::support::{self, Cluster, env};

/// Waits until `count` GlobalIngresses in `api` report DNSSynced=True.
async fn wait_all_synced(api: &Api<GlobalIngress>, count: usize, timeout: Duration) {
    eventually(
        &format!("{count} GlobalIngresses DNSSynced"),
        timeout,
        || async {
            let list = api.list(&Default::default()).await.ok()?;
            let synced = list
                .items
                .iter()
                .filter(|gi| {
                    gi.status
                        .as_ref()
                        .and_then(|s| find(&s.conditions, "DNSSynced"))
                        .is_some_and(|c| c.status == "True")
                })
                .count();
            (synced == count).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn thirty_percent_throttled_converges_within_the_budget() {
    let proxy = FaultProxy::start();
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "throttle").await;
    let support::Route53Zone {
        r53,
        domain,
        zone_id,
        name: zone_name,
        ..
    } = support::route53_zone(Some((&client, &ns)), "throttled").await;

    proxy
        .configure(json!({"throttle": 0.2, "prior": 0.05, "error500": 0.05, "seed": 7}))
        .await;
    let (rate, burst) = (5, 5);
    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "throttle",
        extra: &[
            "--aws-endpoint-url",
            &proxy.url,
            "--route53-rate",
            "5",
            "--route53-burst",
            "5",
        ],
    });
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    let count = 30;
    let started = Instant::now();
    for i in 0..count {
        let gi: GlobalIngress = serde_json::from_value(json!({
            "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
            "metadata": { "name": format!("app{i}"), "labels": support::shard(&ns) },
            "spec": {
                "hostnames": [format!("app{i}.{domain}")], "dnsZoneRef": zone_name, "routing": { "policy": "Weighted" },
                "healthCheck": { "protocol": "None" },
                "targets": [
                    { "name": "a", "weight": 1, "loadBalancer": { "mode": "External", "external": { "addresses": [format!("192.0.2.{}", i + 1)] } } },
                    { "name": "b", "weight": 1, "loadBalancer": { "mode": "External", "external": { "addresses": [format!("198.51.100.{}", i + 1)] } } }
                ]
            }
        }))
        .unwrap();
        api.create(&PostParams::default(), &gi).await.unwrap();
    }
    wait_all_synced(&api, count, Duration::from_secs(120)).await;
    let converged = started.elapsed();

    // No duplicates, nothing missing: exactly registry + a + b per name.
    let listed = globalingress::dns::route53::Route53Zone::new(r53.clone(), &zone_id);
    let held = globalingress::dns::provider::ZoneProvider::list(&listed)
        .await
        .unwrap();
    for i in 0..count {
        let host = format!("app{i}.{domain}");
        let at: Vec<_> = held.iter().filter(|r| r.name == host).collect();
        assert_eq!(at.len(), 2, "{host}: {at:?}");
        assert_eq!(
            held.iter()
                .filter(|r| r.name == format!("_gi.{host}"))
                .count(),
            1
        );
    }

    // The rate seen by "AWS": no one-second window holds more than burst + rate requests.
    let requests = proxy.requests().await;
    let times: Vec<f64> = requests.iter().map(|r| r.t).collect();
    let max_window = times
        .iter()
        .map(|t| times.iter().filter(|u| **u >= *t && **u < t + 1.0).count())
        .max()
        .unwrap_or(0);
    let faults = requests.iter().filter(|r| r.fault.is_some()).count();
    let changes = requests
        .iter()
        .filter(|r| r.op == "ChangeResourceRecordSets")
        .count();
    eprintln!(
        "{count} GlobalIngresses converged in {converged:?} through {} requests ({faults} answered with faults, \
         {changes} ChangeResourceRecordSets); busiest second: {max_window} requests (budget {rate}/s, burst {burst})",
        requests.len()
    );
    assert!(faults > 0, "the proxy injected faults");
    assert!(
        max_window <= burst + rate,
        "busiest second had {max_window} requests"
    );
}

#[tokio::test]
async fn a_thousand_changes_at_once_take_few_change_calls_and_a_quiet_zone_takes_none() {
    let proxy = FaultProxy::start();
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "thousand").await;
    let support::Route53Zone {
        r53,
        domain,
        zone_id,
        name: zone_name,
        ..
    } = support::route53_zone(Some((&client, &ns)), "thousand").await;
    // Every GlobalIngress takes its Latency region from this one spoke; changing the spoke's
    // region changes all 1,000 records at once.
    let spoke_name = support::unique_name("region");
    let spokes: Api<globalingress::api::SpokeCluster> = Api::all(client.clone());
    let spoke: globalingress::api::SpokeCluster = serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "SpokeCluster",
        "metadata": { "name": spoke_name, "labels": support::shard(&ns) },
        "spec": { "region": "eu-west-1", "kubeconfigSecretRef": { "namespace": ns, "name": "none" } }
    }))
    .unwrap();
    spokes.create(&PostParams::default(), &spoke).await.unwrap();

    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    let count = 1000;
    let creating = Instant::now();
    let mut tasks = futures::stream::iter((0..count).map(|i| {
        let api = api.clone();
        let (domain, zone_name, spoke_name) = (domain.clone(), zone_name.clone(), spoke_name.clone());
        let shard = support::shard(&ns);
        async move {
            let gi: GlobalIngress = serde_json::from_value(json!({
                "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
                "metadata": { "name": format!("svc{i}"), "labels": shard },
                "spec": {
                    "hostnames": [format!("svc{i}.{domain}")], "dnsZoneRef": zone_name, "routing": { "policy": "Latency" },
                    "healthCheck": { "protocol": "None" },
                    "targets": [{ "name": "only", "clusterRef": spoke_name,
                        "loadBalancer": { "mode": "External", "external": { "addresses": [format!("10.{}.{}.1", i / 250, i % 250)] } } }]
                }
            }))
            .unwrap();
            api.create(&PostParams::default(), &gi).await.unwrap();
        }
    }))
    .buffer_unordered(16);
    tokio::time::timeout(Duration::from_secs(120), async {
        while tasks.next().await.is_some() {}
    })
    .await
    .expect("1,000 GlobalIngresses created within 120 s");
    eprintln!(
        "created {count} GlobalIngresses in {:?}",
        creating.elapsed()
    );

    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "thousand",
        extra: &[
            "--aws-endpoint-url",
            &proxy.url,
            "--route53-rate",
            "10",
            "--route53-burst",
            "20",
            "--resync-interval",
            "10s",
        ],
    });
    let started = Instant::now();
    wait_all_synced(&api, count, Duration::from_secs(300)).await;
    let cold = started.elapsed();
    let creates = proxy
        .requests()
        .await
        .iter()
        .filter(|r| r.op == "ChangeResourceRecordSets")
        .count();

    // Quiet: two resync periods (10 s each) without any change write nothing.
    let before = proxy.requests().await.len();
    tokio::time::sleep(Duration::from_secs(21)).await;
    let quiet: Vec<_> = proxy.requests().await.into_iter().skip(before).collect();
    let quiet_writes = quiet
        .iter()
        .filter(|r| r.op == "ChangeResourceRecordSets")
        .count();
    assert_eq!(quiet_writes, 0, "in sync for two resync periods: no writes");
    assert!(
        quiet.iter().all(|r| r.op != "ListResourceRecordSets"),
        "a reconcile costs no reads: {quiet:?}"
    );

    // One change that touches every GlobalIngress.
    let before = proxy.requests().await.len();
    spokes
        .patch(
            &spoke_name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"region": "us-east-1"}})),
        )
        .await
        .unwrap();
    let changing = Instant::now();
    eventually("every record in us-east-1", Duration::from_secs(300), || async {
        let listed = globalingress::dns::route53::Route53Zone::new(r53.clone(), &zone_id);
        let held = globalingress::dns::provider::ZoneProvider::list(&listed).await.ok()?;
        let moved = held
            .iter()
            .filter(|r| matches!(&r.routing, globalingress::model::dns::RecordRouting::Latency { region, .. } if region == "us-east-1"))
            .count();
        (moved == count).then_some(())
    })
    .await;
    let changed = changing.elapsed();
    let after: Vec<_> = proxy.requests().await.into_iter().skip(before).collect();
    let change_calls = after
        .iter()
        .filter(|r| r.op == "ChangeResourceRecordSets")
        .count();
    eprintln!(
        "{count} GlobalIngresses: cold convergence {cold:?} with {creates} ChangeResourceRecordSets; \
         one change touching all: {changed:?}, {change_calls} ChangeResourceRecordSets, {} requests in all",
        after.len()
    );
    assert!(
        change_calls <= 4,
        "{change_calls} change calls for 1,000 one-record changes"
    );
}

#[tokio::test]
async fn waits_for_a_budget_token_do_not_count_against_the_attempt_timeout() {
    use globalingress::aws::budget::{Budget, BudgetConfig, DEFAULT_ATTEMPT_TIMEOUT, Rate};
    use globalingress::aws::{Aws, SdkSettings};

    // One Route 53 request a second and a queue of 24: the last one waits 23 s for its token,
    // longer than the 20 s an attempt may take. It must still succeed: its clock starts when it
    // has the token.
    let calls = 24;
    let budget = Budget::new(
        BudgetConfig {
            route53: Rate {
                per_second: 1,
                burst: 1,
            },
            ..BudgetConfig::default()
        },
        globalingress::leader::Leadership::always(),
    );
    assert!(Duration::from_secs(calls - 1) > DEFAULT_ATTEMPT_TIMEOUT);
    let aws = Aws::new(
        &SdkSettings {
            max_attempts: 1,
            ..crate::support::operator_aws_settings()
        },
        budget,
    )
    .await;
    let r53 = aws.route53();
    let started = Instant::now();
    let results =
        futures::future::join_all((0..calls).map(|_| r53.list_health_checks().max_items(1).send()))
            .await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| globalingress::aws::errors::describe("ListHealthChecks", e))
        .collect();
    println!(
        "{calls} calls at 1/s, attempt timeout {DEFAULT_ATTEMPT_TIMEOUT:?}: {} failed, all done in {:?}",
        failed.len(),
        started.elapsed()
    );
    assert!(failed.is_empty(), "{failed:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(calls - 2),
        "the budget paced them"
    );
}
