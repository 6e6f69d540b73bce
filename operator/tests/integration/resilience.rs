//! Crashes and outages lose nothing: the operator killed at random moments, AWS unreachable,
//! Knot stopped — against the real servers, with the zone compared record set by record set.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_route53::types::RrType;
use globalingress::api::condition::find;
use globalingress::api::{DNSZone, GlobalIngress};
use globalingress::dns::records::Rrset;
use globalingress::model::dns::{RecordRouting, RecordType};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::components::{Component, private_dir};
use crate::support::operator::{Operator, Options, eventually};
use crate::support::proxy::FaultProxy;
use crate::support::{self, Cluster, env, zone_records};

/// A GlobalIngress with two External targets weighted `wa` and `wb` (no probes: this is about
/// publishing).
fn weighted(ns: &str, i: usize, zone: &str, domain: &str, wa: u8, wb: u8) -> GlobalIngress {
    serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
        "metadata": { "name": format!("gi{i}"), "labels": support::shard(ns) },
        "spec": { "hostnames": [format!("gi{i}.{domain}")], "dnsZoneRef": zone,
                  "routing": { "policy": "Weighted" }, "healthCheck": { "protocol": "None" },
                  "targets": targets(i, wa, wb) }
    }))
    .unwrap()
}

fn targets(i: usize, wa: u8, wb: u8) -> Value {
    json!([
        { "name": "a", "weight": wa, "loadBalancer": { "mode": "External", "external": { "addresses": [address(i, 'a')] } } },
        { "name": "b", "weight": wb, "loadBalancer": { "mode": "External", "external": { "addresses": [address(i, 'b')] } } }
    ])
}

fn address(i: usize, target: char) -> String {
    let net = if target == 'a' { "10.1" } else { "10.2" };
    format!("{net}.{}.{}", i / 250, i % 250 + 1)
}

/// The record sets of GlobalIngress `i`, written out: its registry and one weighted A per
/// target.
fn expected(ns: &str, i: usize, domain: &str, wa: u8, wb: u8) -> Vec<Rrset> {
    let resource = format!("{ns}/gi{i}");
    let tag = globalingress::model::ownership::set_id_tag(&resource).unwrap();
    let host = format!("gi{i}.{domain}");
    let a = |target: char, weight: u8| Rrset {
        name: host.clone(),
        rtype: RecordType::A,
        routing: RecordRouting::Weighted {
            set_id: format!("{target}.{tag}"),
            weight,
        },
        ttl: Some(30),
        values: vec![address(i, target)],
        alias: None,
        health_check_id: None,
    };
    vec![
        Rrset {
            name: format!("_gi.{host}"),
            rtype: RecordType::TXT,
            routing: RecordRouting::Simple,
            ttl: Some(300),
            values: vec![format!(
                "\"heritage=globalingress,owner=test-hub,resource={resource}\""
            )],
            alias: None,
            health_check_id: None,
        },
        a('a', wa),
        a('b', wb),
    ]
}

/// Foreign records in the zone before the operator ever runs: plain and weighted (with our
/// target names as set identifiers) and an MX.
async fn foreign_records(r53: &aws_sdk_route53::Client, zone_id: &str, domain: &str) {
    let mut sets: Vec<_> = (0..40)
        .map(|i| {
            let set = support::record_set(
                &format!("foreign-{i}.{domain}"),
                RrType::A,
                &[&format!("198.51.100.{}", i + 1)],
            );
            if i % 2 == 0 {
                set.set_identifier(if i % 4 == 0 { "a" } else { "b" })
                    .weight(7)
            } else {
                set
            }
        })
        .collect();
    sets.push(support::record_set(
        &format!("mail.{domain}"),
        RrType::Mx,
        &[&format!("10 mx.{domain}.")],
    ));
    support::create_records(r53, zone_id, sets).await;
}

/// Waits until `gi0` reports `DNSSynced=False` for its second generation: (reason, message).
async fn publish_failing(api: &Api<GlobalIngress>) -> (String, String) {
    eventually(
        "DNSSynced False with a reason",
        Duration::from_secs(9),
        || async {
            let gi = api.get("gi0").await.ok()?;
            let c = find(&gi.status.as_ref()?.conditions, "DNSSynced")?.clone();
            (c.status == "False" && gi.status?.observed_generation == Some(2))
                .then_some((c.reason, c.message))
        },
    )
    .await
}

/// Our record sets in the zone (names `gi<N>.` and their registry), as the operator reads them.
async fn ours(r53: &aws_sdk_route53::Client, zone_id: &str) -> Vec<Rrset> {
    let listed = globalingress::dns::route53::Route53Zone::new(r53.clone(), zone_id);
    let mut held: Vec<Rrset> = globalingress::dns::provider::ZoneProvider::list(&listed)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.name.starts_with("gi") || r.name.starts_with("_gi.gi"))
        .collect();
    held.sort();
    held
}

async fn all_synced(api: &Api<GlobalIngress>, count: usize, generation: i64) -> Option<()> {
    let list = api.list(&ListParams::default()).await.ok()?;
    let synced = list
        .items
        .iter()
        .filter(|gi| {
            gi.status.as_ref().is_some_and(|s| {
                s.observed_generation == Some(generation)
                    && find(&s.conditions, "DNSSynced").is_some_and(|c| c.status == "True")
            })
        })
        .count();
    (synced == count).then_some(())
}

#[tokio::test]
async fn killed_at_random_moments_ten_times_the_operator_loses_nothing() {
    const COUNT: usize = 200;
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "kill").await;
    let zone = support::route53_zone(Some((&client, &ns)), "kill").await;
    foreign_records(&zone.r53, &zone.zone_id, &zone.domain).await;
    let foreign_before = zone_records(&zone.r53, &zone.zone_id).await;

    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    futures::future::join_all((0..COUNT).map(|i| {
        let api = api.clone();
        let gi = weighted(&ns, i, &zone.name, &zone.domain, 1, 1);
        async move { api.create(&PostParams::default(), &gi).await.unwrap() }
    }))
    .await;
    let options = Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "kill",
        // A lease the next process can take at once after a kill.
        extra: &[
            "--lease-duration",
            "2s",
            "--renew-deadline",
            "1500ms",
            "--retry-period",
            "500ms",
        ],
    };
    let mut rng = fastrand::Rng::with_seed(9);
    for round in 0..10 {
        if round == 5 {
            // Half-way, every object changes: the kills now hit updates (weights) as well.
            futures::future::join_all((0..COUNT).map(|i| {
                let api = api.clone();
                async move {
                    let patch = json!({ "spec": { "targets": targets(i, 2, 0) } });
                    api.patch(
                        &format!("gi{i}"),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                    .unwrap()
                }
            }))
            .await;
        }
        let mut op = Operator::start(&options);
        let alive = Duration::from_millis(rng.u64(500..4000));
        tokio::time::sleep(alive).await;
        // SIGKILL: no chance to release the Lease or finish a batch.
        op.child.start_kill().unwrap();
        let _ = op.child.wait().await;
        println!("round {round}: killed after {alive:?}");
    }
    let _op = Operator::start(&options);
    eventually(
        "every GlobalIngress DNSSynced at generation 2",
        Duration::from_secs(120),
        || all_synced(&api, COUNT, 2),
    )
    .await;
    let mut want: Vec<Rrset> = (0..COUNT)
        .flat_map(|i| expected(&ns, i, &zone.domain, 2, 0))
        .collect();
    want.sort();
    let got = ours(&zone.r53, &zone.zone_id).await;
    let missing: BTreeSet<_> = want.iter().filter(|r| !got.contains(r)).collect();
    let extra: BTreeSet<_> = got.iter().filter(|r| !want.contains(r)).collect();
    println!(
        "after 10 kills: {} record sets of ours, {} missing, {} extra (the zone diff)",
        got.len(),
        missing.len(),
        extra.len()
    );
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
    assert_eq!(got.len(), 3 * COUNT, "no duplicates");
    let foreign_after: Vec<String> = zone_records(&zone.r53, &zone.zone_id)
        .await
        .into_iter()
        .filter(|r| foreign_before.contains(r))
        .collect();
    assert_eq!(
        foreign_after, foreign_before,
        "foreign records byte-identical"
    );

    // Deleting all of them leaves the zone exactly as it was before the operator ran.
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    eventually(
        "every GlobalIngress gone",
        Duration::from_secs(120),
        || async {
            api.list(&ListParams::default())
                .await
                .ok()?
                .items
                .is_empty()
                .then_some(())
        },
    )
    .await;
    assert_eq!(zone_records(&zone.r53, &zone.zone_id).await, foreign_before);
}

#[tokio::test]
async fn aws_unreachable_for_ten_seconds_is_reported_then_converges() {
    let proxy = FaultProxy::start();
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "awsdown").await;
    let zone = support::route53_zone(Some((&client, &ns)), "awsdown").await;
    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "awsdown",
        // The retries after the outage come from the publish backoff, not from a resync.
        extra: &[
            "--aws-endpoint-url",
            &proxy.url,
            "--resync-interval",
            "10m",
            "--aws-max-attempts",
            "2",
            "--aws-attempt-timeout",
            "2s",
        ],
    });
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &weighted(&ns, 0, &zone.name, &zone.domain, 1, 1),
    )
    .await
    .unwrap();
    eventually("published", Duration::from_secs(30), || {
        all_synced(&api, 1, 1)
    })
    .await;

    // AWS goes away (connections refused) and a change comes in meanwhile.
    proxy.refuse_for(10.0).await;
    let refused_at = Instant::now();
    let patch = json!({ "spec": { "targets": targets(0, 3, 1) } });
    api.patch("gi0", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let reason = publish_failing(&api).await;
    println!("while AWS is unreachable: DNSSynced False, {reason:?}");
    assert_eq!(reason.0, "PublishFailed");
    assert!(
        reason.1.contains("not reachable") || reason.1.contains("timed out"),
        "{reason:?}"
    );
    eventually("in sync after the outage", Duration::from_secs(40), || {
        all_synced(&api, 1, 2)
    })
    .await;
    println!(
        "AWS back after 10 s: in sync {:?} after the outage began",
        refused_at.elapsed()
    );
    let mut want = expected(&ns, 0, &zone.domain, 3, 1);
    want.sort();
    assert_eq!(
        ours(&zone.r53, &zone.zone_id).await,
        want,
        "no duplicates, the change made"
    );
}

#[tokio::test]
async fn knot_stopped_for_ten_seconds_is_reported_then_converges() {
    // A Knot of this test's own: stopping the shared one would stop every other test's zone.
    let dir = private_dir("knotdown");
    let knot = tokio::task::spawn_blocking(move || Component::start(&dir, "knot"))
        .await
        .unwrap();
    let server: std::net::SocketAddr = knot.get("GI_DNS_SERVER").parse().unwrap();
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "knotdown").await;
    let secret = std::fs::read_to_string(knot.get("GI_TSIG_SECRET_FILE")).unwrap();
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "tsig" },
                "stringData": { "secret": secret.trim() }
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let zone_name = support::unique_name("privknot");
    Api::<DNSZone>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "globalingress.io/v1alpha1", "kind": "DNSZone",
                "metadata": { "name": zone_name, "labels": support::shard(&ns) },
                "spec": { "domain": "example.test", "ownerId": "test-hub",
                          "provider": { "rfc2136": { "server": server.to_string(),
                              "tsigKeyName": knot.get("GI_TSIG_KEY_NAME"),
                              "tsigSecretRef": { "namespace": ns, "name": "tsig" } } } }
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "knotdown",
        extra: &["--resync-interval", "10m"],
    });
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &weighted(&ns, 0, &zone_name, "example.test", 1, 1),
    )
    .await
    .unwrap();
    eventually("published", Duration::from_secs(30), || {
        all_synced(&api, 1, 1)
    })
    .await;
    let answer = |server| async move {
        let name = globalingress::dns::Name::from_ascii("gi0.example.test.").unwrap();
        globalingress::dns::query::authoritative(
            server,
            &name,
            globalingress::dns::RecordType::A,
            Duration::from_secs(1),
        )
        .await
        .ok()
        .map(|a| {
            a.records
                .iter()
                .filter_map(|r| match &r.data {
                    globalingress::dns::RData::A(a) => Some(a.0.to_string()),
                    _ => None,
                })
                .collect::<BTreeSet<String>>()
        })
    };
    let both: BTreeSet<String> = [address(0, 'a'), address(0, 'b')].into();
    assert_eq!(answer(server).await, Some(both));

    // Knot stops for 10 s; a change comes in meanwhile (target b weighted out).
    let knot = tokio::task::spawn_blocking(move || {
        knot.stop();
        knot
    })
    .await
    .unwrap();
    let stopped = Instant::now();
    let patch = json!({ "spec": { "targets": targets(0, 1, 0) } });
    api.patch("gi0", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let reason = publish_failing(&api).await;
    println!("while Knot is stopped: DNSSynced False, {reason:?}");
    assert_eq!(reason.0, "PublishFailed");
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(stopped.elapsed())).await;
    let knot = tokio::task::spawn_blocking(move || {
        knot.start_again();
        knot
    })
    .await
    .unwrap();
    eventually(
        "in sync after Knot is back",
        Duration::from_secs(40),
        || all_synced(&api, 1, 2),
    )
    .await;
    println!(
        "Knot back after 10 s: in sync {:?} after it stopped",
        stopped.elapsed()
    );
    let only_a: BTreeSet<String> = [address(0, 'a')].into();
    assert_eq!(answer(server).await, Some(only_a));
    // Exactly our record sets, once each: the registry and one plain RRset (RFC 2136).
    let provider = globalingress::dns::rfc2136_zone::Rfc2136Zone::new(
        server,
        "example.test",
        globalingress::dns::tsig::TsigKey::from_base64(
            knot.get("GI_TSIG_KEY_NAME"),
            knot.get("GI_TSIG_ALGORITHM").parse().unwrap(),
            &secret,
        )
        .unwrap(),
        None,
    )
    .unwrap();
    let held: Vec<Rrset> = globalingress::dns::provider::ZoneProvider::list(&provider)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.name.ends_with("gi0.example.test"))
        .collect();
    let names: Vec<(&str, RecordType, Vec<String>)> = held
        .iter()
        .map(|r| (r.name.as_str(), r.rtype, r.values.clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            (
                "_gi.gi0.example.test",
                RecordType::TXT,
                vec![format!(
                    "\"heritage=globalingress,owner=test-hub,resource={ns}/gi0\""
                )]
            ),
            ("gi0.example.test", RecordType::A, vec![address(0, 'a')]),
        ]
    );
}
