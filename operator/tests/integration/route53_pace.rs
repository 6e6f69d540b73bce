//! Route 53's real pace: a change is accepted at once and reported INSYNC tens of seconds later
//! (the fault proxy answers GetChange PENDING for a while, as Route 53 does). A second failover
//! in the same zone must not wait for the first one's INSYNC.

use std::time::Duration;

use globalingress::api::GlobalIngress;
use globalingress::api::condition::find;
use globalingress::api::global_ingress::FailoverRecord;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use crate::support::dataplane::DataPlane;
use crate::support::operator::{Operator, Options, eventually};
use crate::support::proxy::FaultProxy;
use crate::support::{self, Cluster, env};

const PENDING_S: f64 = 20.0;

fn at(s: &Option<String>) -> jiff::Timestamp {
    s.as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no time in {s:?}"))
}

fn seconds(from: jiff::Timestamp, to: jiff::Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64()
}

#[tokio::test]
async fn a_second_failover_is_submitted_while_the_first_is_still_pending() {
    let proxy = FaultProxy::start();
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "pace").await;
    let zone = support::route53_zone(Some((&client, &ns)), "pace").await;
    let planes =
        DataPlane::start_many(&["127.0.0.30", "127.0.0.31", "127.0.0.32", "127.0.0.33"]).await;
    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "pace",
        extra: &["--aws-endpoint-url", &proxy.url],
    });
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    for (name, a, b) in [
        ("one", &planes[0], &planes[1]),
        ("two", &planes[2], &planes[3]),
    ] {
        let target = |n: &str, ip: String| {
            json!({ "name": n, "weight": 1,
                    "loadBalancer": { "mode": "External", "external": { "addresses": [ip] } } })
        };
        let gi: GlobalIngress = serde_json::from_value(json!({
            "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
            "metadata": { "name": name, "labels": support::shard(&ns) },
            "spec": { "hostnames": [format!("{name}.{}", zone.domain)], "dnsZoneRef": zone.name,
                      "routing": { "policy": "Weighted" },
                      "targets": [target("a", a.ip()), target("b", b.ip())],
                      "healthCheck": { "protocol": "HTTP", "path": "/healthz", "port": a.port(),
                                       "interval": "1s", "timeout": "500ms",
                                       "healthyThreshold": 1, "unhealthyThreshold": 2 },
                      "failover": { "failbackAfter": "10m" } }
        }))
        .unwrap();
        api.create(&PostParams::default(), &gi).await.unwrap();
    }
    let synced = |name: &'static str| {
        let api = api.clone();
        async move {
            let gi = api.get(name).await.ok()?;
            let c = find(&gi.status.as_ref()?.conditions, "DNSSynced")?.clone();
            let healthy = gi
                .status
                .as_ref()?
                .targets
                .iter()
                .all(|t| t.health == "Healthy");
            (c.status == "True" && healthy).then_some(())
        }
    };
    eventually("one in sync", Duration::from_secs(40), || synced("one")).await;
    eventually("two in sync", Duration::from_secs(40), || synced("two")).await;

    // From now on every change stays PENDING for 20 s, as at Route 53.
    proxy.pending(PENDING_S).await;
    planes[0].stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    planes[2].stop().await;

    let submitted = |name: &'static str| {
        let api = api.clone();
        async move {
            let gi = api.get(name).await.ok()?;
            let record = gi.status.as_ref()?.last_failover.clone()?;
            (record.kind == "Failover").then_some((gi, record))
        }
    };
    let (one, first) = eventually("one's failover submitted", Duration::from_secs(20), || {
        submitted("one")
    })
    .await;
    // Accepted, not in sync: the status says so, and the weights say what was sent.
    let dns = find(&one.status.as_ref().unwrap().conditions, "DNSSynced").unwrap();
    assert_eq!(
        (dns.status.as_str(), dns.reason.as_str()),
        ("False", "Submitted")
    );
    assert!(first.in_sync_at.is_none(), "{first:?}");
    let weights: Vec<(String, Option<i32>)> = one
        .status
        .as_ref()
        .unwrap()
        .targets
        .iter()
        .map(|t| (t.name.clone(), t.weight_applied))
        .collect();
    assert_eq!(
        weights,
        vec![("a".to_owned(), Some(0)), ("b".to_owned(), Some(1))]
    );
    let (_, second) = eventually("two's failover submitted", Duration::from_secs(20), || {
        submitted("two")
    })
    .await;

    // Both timelines get their INSYNC, about 20 s after their submission.
    let in_sync = |name: &'static str| {
        let api = api.clone();
        async move {
            let gi = api.get(name).await.ok()?;
            let record: FailoverRecord = gi.status.as_ref()?.last_failover.clone()?;
            let dns = find(&gi.status.as_ref()?.conditions, "DNSSynced")?.clone();
            (record.in_sync_at.is_some() && dns.status == "True").then_some(record)
        }
    };
    let first = eventually("one in sync again", Duration::from_secs(60), || {
        in_sync("one")
    })
    .await;
    let second = {
        let done = eventually("two in sync again", Duration::from_secs(60), || {
            in_sync("two")
        })
        .await;
        assert_eq!(done.submitted_at, second.submitted_at, "the same failover");
        done
    };
    let report = |r: &FailoverRecord| {
        let detected = at(&Some(r.detected_at.clone()));
        (
            seconds(detected, at(&r.submitted_at)),
            seconds(detected, at(&r.in_sync_at)),
        )
    };
    let (s1, i1) = report(&first);
    let (s2, i2) = report(&second);
    println!(
        "with {PENDING_S} s PENDING: failover 1 detected -> submitted {s1:.2} s, -> in sync {i1:.2} s; \
         failover 2 (2 s later) detected -> submitted {s2:.2} s, -> in sync {i2:.2} s; \
         failover 2 submitted {:.2} s before failover 1 was in sync",
        seconds(at(&second.submitted_at), at(&first.in_sync_at))
    );
    assert!(
        s2 < 1.0,
        "the second change went out {s2:.2} s after its detection"
    );
    assert!(
        at(&second.submitted_at) < at(&first.in_sync_at),
        "the second change waited for the first one's INSYNC"
    );
    for (submitted, synced) in [
        (&first.submitted_at, &first.in_sync_at),
        (&second.submitted_at, &second.in_sync_at),
    ] {
        let pending = seconds(at(submitted), at(synced));
        assert!(
            pending >= PENDING_S - 1.0,
            "in sync {pending:.2} s after submission: the PENDING answers were not waited for"
        );
    }
    // The proxy saw both changes go out before either was in sync.
    let changes: Vec<f64> = proxy
        .requests()
        .await
        .into_iter()
        .filter(|r| r.op == "ChangeResourceRecordSets")
        .map(|r| r.t)
        .collect();
    assert!(changes.len() >= 2, "{changes:?}");
}
