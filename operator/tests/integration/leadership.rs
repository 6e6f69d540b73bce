//! One writer: the Lease holder writes, a follower takes over when the holder dies, and a holder
//! that cannot reach the hub stops writing at its renew deadline.

use std::time::{Duration, Instant};

use globalingress::api::GlobalIngress;
use globalingress::model::dns::RecordRouting;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use crate::controller::{external_gi, knot_zone, ready};
use crate::support::dataplane::DataPlane;
use crate::support::logs::Tail;
use crate::support::operator::{Operator, Options, eventually};
use crate::support::proxy::FaultProxy;
use crate::support::tcp_proxy::{TcpProxy, kubeconfig_via};
use crate::support::{self, Cluster, env};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn one_leader_writes_and_a_follower_takes_over_within_the_lease_duration() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "leader").await;
    let zone = knot_zone(&client, &ns).await;
    let lease_args = [
        "--lease-duration",
        "6s",
        "--renew-deadline",
        "4s",
        "--retry-period",
        "1s",
    ];
    let options = Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "leader",
        extra: &lease_args,
    };
    let mut first = Operator::start(&options);
    first.wait_ready(WAIT).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &first.lease_namespace);
    let holder = || async {
        leases
            .get_opt(&first.lease_name)
            .await
            .ok()??
            .spec?
            .holder_identity
            .filter(|h| !h.is_empty())
    };
    let first_holder = eventually("a lease holder", WAIT, holder).await;
    assert_eq!(first_holder, first.identity);
    let second = Operator::start(&options);
    second.wait_ready(WAIT).await;

    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    let host = format!("{}.example.test", support::unique_name("lead"));
    api.create(
        &PostParams::default(),
        &external_gi(&ns, "one", &zone, &host, "Delete"),
    )
    .await
    .unwrap();
    eventually("status from the leader", WAIT, || async {
        (ready(&api.get("one").await.ok()?)?.0 == "True").then_some(())
    })
    .await;
    // Let the follower reconcile too (resync is 5 s), then compare what each one wrote.
    eventually("the follower to skip a status write", WAIT, || async {
        let skipped = second.metric("globalingress_writes_skipped_not_leader_total{controller=\"globalingress\",write=\"status\"}").await;
        (skipped > 0.0).then_some(())
    })
    .await;
    assert_eq!(second.metric("globalingress_leader").await, 0.0);
    assert_eq!(first.metric("globalingress_leader").await, 1.0);
    assert!(
        first
            .metric("globalingress_writes_total{controller=\"globalingress\",write=\"status\"}")
            .await
            >= 1.0
    );
    // Present and 0: a missing sample would say nothing.
    for write in ["status", "dns", "event"] {
        let sample =
            format!("globalingress_writes_total{{controller=\"globalingress\",write=\"{write}\"}}");
        assert_eq!(
            second.metric_opt(&sample).await,
            Some(0.0),
            "the follower must export {sample} and write nothing"
        );
    }
    assert_eq!(holder().await.as_deref(), Some(first.identity.as_str()));

    // Kill the leader without a chance to release the Lease: the follower must wait it out.
    first.child.start_kill().unwrap();
    let _ = first.child.wait().await;
    let killed = Instant::now();
    let new_holder = eventually("takeover", Duration::from_secs(20), || async {
        holder().await.filter(|h| *h == second.identity)
    })
    .await;
    let takeover = killed.elapsed();
    eprintln!("leader killed -> follower holds the lease after {takeover:?} (lease duration 6s)");
    assert_eq!(new_holder, second.identity);
    assert!(
        takeover <= Duration::from_secs(6 + 3),
        "takeover took {takeover:?}"
    );

    // The new leader writes: a new object gets its status.
    api.create(
        &PostParams::default(),
        &external_gi(&ns, "two", &zone, &format!("two-{host}"), "Delete"),
    )
    .await
    .unwrap();
    eventually("status from the new leader", WAIT, || async {
        (ready(&api.get("two").await.ok()?)?.0 == "True").then_some(())
    })
    .await;
    assert!(
        second
            .metric("globalingress_writes_total{controller=\"globalingress\",write=\"status\"}")
            .await
            >= 1.0
    );
}

/// The Lease's holder and renewTime, as the hub has it.
async fn lease_of(leases: &Api<Lease>, name: &str) -> Option<(String, jiff::Timestamp)> {
    let spec = leases.get_opt(name).await.ok()??.spec?;
    Some((spec.holder_identity?, spec.renew_time?.0))
}

fn unix(t: jiff::Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

#[tokio::test]
async fn a_leader_cut_off_from_the_hub_writes_nothing_after_its_renew_deadline() {
    let env = env();
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "fence").await;
    // Both kinds of zone: Route 53 (each replica through a fault proxy of its own, so its writes
    // can be counted) and Knot (each replica's DNS connections from an address of its own, which
    // Knot logs with every update).
    let knot = knot_zone(&client, &ns).await;
    let r53 = support::route53_zone(Some((&client, &ns)), "fence").await;
    let planes = DataPlane::start_many(&["127.0.0.23", "127.0.0.24"]).await;
    let (a, b) = (&planes[0], &planes[1]);
    let dir = std::env::temp_dir().join(support::unique_name("fence"));
    std::fs::create_dir_all(&dir).unwrap();
    let replica = |source: &str| {
        let hub = TcpProxy::start(&env.url(Cluster::Hub));
        let kubeconfig = dir.join(format!("hub-via-{}.yaml", hub.port()));
        kubeconfig_via(&env.operator_kubeconfig, hub.port(), &kubeconfig);
        (hub, kubeconfig, FaultProxy::start(), source.to_owned())
    };
    let (hub_1, kubeconfig_1, aws_1, source_1) = replica("127.0.0.21");
    let (_hub_2, kubeconfig_2, aws_2, source_2) = replica("127.0.0.22");
    let knot_log = Tail::start(&env.knot_log);
    let start = |kubeconfig: &std::path::Path, aws: &FaultProxy, source: &str| {
        Operator::start(&Options {
            kubeconfig,
            namespace: &ns,
            lease_name: "fence",
            extra: &[
                "--lease-duration",
                "6s",
                "--renew-deadline",
                "4s",
                "--retry-period",
                "1s",
                "--aws-endpoint-url",
                &aws.url,
                "--dns-bind-address",
                source,
            ],
        })
    };
    let first = start(&kubeconfig_1, &aws_1, &source_1);
    first.wait_ready(WAIT).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &first.lease_namespace);
    let lease = first.lease_name.clone();
    eventually("replica 1 leads", WAIT, || async {
        lease_of(&leases, &lease)
            .await
            .filter(|(h, _)| *h == first.identity)
    })
    .await;
    let second = start(&kubeconfig_2, &aws_2, &source_2);
    second.wait_ready(WAIT).await;

    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    let targets = json!([
        { "name": "a", "weight": 1, "loadBalancer": { "mode": "External", "external": { "addresses": [a.ip()] } } },
        { "name": "b", "weight": 1, "loadBalancer": { "mode": "External", "external": { "addresses": [b.ip()] } } }
    ]);
    let knot_host = format!("{}.example.test", support::unique_name("fence"));
    let r53_host = format!("web.{}", r53.domain);
    for (name, zone, host) in [
        ("knot", &knot, &knot_host),
        ("route53", &r53.name, &r53_host),
    ] {
        let gi: GlobalIngress = serde_json::from_value(json!({
            "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
            "metadata": { "name": name, "labels": support::shard(&ns) },
            "spec": { "hostnames": [host], "dnsZoneRef": zone, "ttl": 5,
                      "routing": { "policy": "Weighted" }, "targets": targets,
                      "healthCheck": { "protocol": "HTTP", "path": "/healthz", "port": a.port(),
                                       "interval": "1s", "timeout": "500ms",
                                       "healthyThreshold": 1, "unhealthyThreshold": 2 } }
        }))
        .unwrap();
        api.create(&PostParams::default(), &gi).await.unwrap();
    }
    let both = crate::failover::set(&[&a.ip(), &b.ip()]);
    crate::failover::until_answer(&knot_host, &both, WAIT).await;
    let weight_of_a = || async {
        let records = globalingress::dns::provider::ZoneProvider::list(
            &globalingress::dns::route53::Route53Zone::new(r53.r53.clone(), &r53.zone_id),
        )
        .await
        .ok()?;
        records
            .iter()
            .find(|r| r.name == r53_host && r.values == vec![a.ip()])
            .and_then(|r| match r.routing {
                RecordRouting::Weighted { weight, .. } => Some(weight),
                _ => None,
            })
    };
    eventually("route53 records published", WAIT, || async {
        (weight_of_a().await? == 1).then_some(())
    })
    .await;
    let before = aws_1.requests().await.iter().filter(|r| r.write).count();
    assert!(before > 0, "replica 1 wrote to Route 53 while it led");
    let knot_writes_1 = format!("action update, remote {source_1}@");
    let knot_writes_2 = format!("action update, remote {source_2}@");

    // Cut replica 1 off from the hub: its connection stays open, nothing moves.
    let (_, last_renewal) = lease_of(&leases, &lease).await.unwrap();
    hub_1.blackhole(true).await;
    // Its last renewal the hub saw (one may have been on the way when the hole opened).
    let (holder, renewed) = lease_of(&leases, &lease).await.unwrap();
    assert_eq!(holder, first.identity);
    let renewed = renewed.max(last_renewal);
    let deadline = renewed + jiff::SignedDuration::from_secs(4);
    // Region a fails while replica 1 still holds the Lease on paper: it sees the failure
    // (its probes do not go through the hub) after its deadline, and must not act on it.
    let down_at = renewed + jiff::SignedDuration::from_secs(3);
    tokio::time::sleep(
        down_at
            .duration_since(jiff::Timestamp::now())
            .unsigned_abs()
            .min(Duration::from_secs(4)),
    )
    .await;
    a.stop().await;

    // Replica 2 takes the Lease once it expires and completes the failover in both zones.
    let takeover = eventually("replica 2 takes over", Duration::from_secs(20), || async {
        lease_of(&leases, &lease)
            .await
            .filter(|(h, _)| *h == second.identity)
    })
    .await;
    crate::failover::until_answer(&knot_host, &crate::failover::set(&[&b.ip()]), WAIT).await;
    eventually("a at weight 0 in Route 53", WAIT, || async {
        (weight_of_a().await? == 0).then_some(())
    })
    .await;
    // Give the old leader every chance to write: its probes say a is down, its reconciles run.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let late_aws: Vec<_> = aws_1
        .requests()
        .await
        .into_iter()
        .filter(|r| r.write && r.t >= unix(deadline))
        .collect();
    let late_knot: Vec<_> = knot_log
        .matching(&knot_writes_1)
        .into_iter()
        .filter(|(t, _)| jiff::Timestamp::try_from(*t).unwrap() >= deadline)
        .collect();
    println!(
        "replica 1 renewed last at {renewed}, deadline {deadline}; replica 2 took over at {}; \
         writes from replica 1 after its deadline: Route 53 {}, Knot {}",
        takeover.1,
        late_aws.len(),
        late_knot.len()
    );
    assert!(
        late_aws.is_empty(),
        "replica 1 wrote to Route 53 after its deadline: {late_aws:?}"
    );
    assert!(
        late_knot.is_empty(),
        "replica 1 updated Knot after its deadline: {late_knot:?}"
    );
    // The counts can see writes: replica 1 wrote before, replica 2 after.
    assert!(
        !knot_log.matching(&knot_writes_2).is_empty(),
        "replica 2 updated Knot"
    );
    assert!(
        aws_2
            .requests()
            .await
            .iter()
            .any(|r| r.write && r.op == "ChangeResourceRecordSets"),
        "replica 2 wrote the Route 53 failover"
    );
    // And replica 1 knows it lost: it says so (its log) and still runs.
    assert!(
        first.log_text().contains("stepping down") || first.log_text().contains("lost the lease"),
        "replica 1's log:\n{}",
        first.log_text()
    );
}
