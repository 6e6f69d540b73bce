//! API servers that go away and come back: the hub (the operator keeps serving and picks up
//! changes within seconds of its return) and a spoke (its targets keep their records: the probe
//! decides).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use globalingress::api::condition::find;
use globalingress::api::{GlobalIngress, SpokeCluster};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::failover::{answer, set, until_answer};
use crate::support::components::{Component, private_dir};
use crate::support::dataplane::DataPlane;
use crate::support::operator::{Operator, Options, eventually};
use crate::support::{self, Cluster, env};

const WAIT: Duration = Duration::from_secs(40);

async fn start(dir: &Path, name: &'static str) -> Component {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || Component::start(&dir, name))
        .await
        .unwrap()
}

/// Runs a blocking component command off the runtime.
async fn blocking(component: Component, f: fn(&Component)) -> Component {
    tokio::task::spawn_blocking(move || {
        f(&component);
        component
    })
    .await
    .unwrap()
}

async fn client_of(component: &Component) -> kube::Client {
    globalingress::kube_client::connect(Some(Path::new(component.get("GI_KUBECONFIG"))))
        .await
        .unwrap()
}

fn target(name: &str, ip: &str, extra: Value) -> Value {
    let mut t = json!({ "name": name, "weight": 1,
                        "loadBalancer": { "mode": "External", "external": { "addresses": [ip] } } });
    for (k, v) in extra.as_object().unwrap() {
        t[k] = v.clone();
    }
    t
}

fn health_check(port: u16) -> Value {
    json!({ "protocol": "HTTP", "path": "/healthz", "port": port, "interval": "1s",
            "timeout": "500ms", "healthyThreshold": 1, "unhealthyThreshold": 2 })
}

/// A Secret holding the shared Knot's TSIG key and a DNSZone for it, in `client`'s cluster.
async fn knot_zone_in(client: &kube::Client, ns: &str) -> String {
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "tsig" },
                "stringData": { "secret": env().tsig_secret }
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let name = support::unique_name("knot");
    Api::<globalingress::api::DNSZone>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "globalingress.io/v1alpha1", "kind": "DNSZone",
                "metadata": { "name": name, "labels": support::shard(ns) },
                "spec": { "domain": "example.test", "ownerId": "test-hub",
                          "provider": { "rfc2136": { "server": env().dns_server.to_string(),
                              "tsigKeyName": env().tsig_key.name().to_string().trim_end_matches('.'),
                              "tsigSecretRef": { "namespace": ns, "name": "tsig" } } } }
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    name
}

#[tokio::test]
async fn the_hub_down_for_ten_seconds_withdraws_nothing_and_a_later_change_is_published() {
    // A hub of this test's own: the shared one serves every other test.
    let hub = start(&private_dir("hubdown"), "hub").await;
    let client = client_of(&hub).await;
    support::install_crds(&client).await;
    let ns = support::unique_name("hubdown");
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": ns } })).unwrap(),
        )
        .await
        .unwrap();
    let zone = knot_zone_in(&client, &ns).await;
    let planes = DataPlane::start_many(&["127.0.0.34", "127.0.0.35"]).await;
    let (a, b) = (&planes[0], &planes[1]);
    let mut op = Operator::start(&Options {
        kubeconfig: Path::new(hub.get("GI_KUBECONFIG")),
        namespace: &ns,
        lease_name: "hubdown",
        extra: &[],
    });
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    let host = format!("{}.example.test", support::unique_name("hubdown"));
    let gi: GlobalIngress = serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
        "metadata": { "name": "web", "labels": support::shard(&ns) },
        "spec": { "hostnames": [host], "dnsZoneRef": zone, "ttl": 5, "routing": { "policy": "Weighted" },
                  "healthCheck": health_check(a.port()),
                  "targets": [target("a", &a.ip(), json!({})), target("b", &b.ip(), json!({}))] }
    }))
    .unwrap();
    api.create(&PostParams::default(), &gi).await.unwrap();
    let both = set(&[&a.ip(), &b.ip()]);
    until_answer(&host, &both, WAIT).await;

    // The hub goes away for 10 s. The leader cannot renew its Lease and stops writing; the
    // records stay as they were (nothing is withdrawn while nobody can see the hub).
    let hub = blocking(hub, Component::stop).await;
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(10) {
        assert_eq!(
            answer(&host).await,
            both,
            "a record changed while the hub was down"
        );
        assert!(
            op.child.try_wait().unwrap().is_none(),
            "the operator exited while the hub was down:\n{}",
            op.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let hub = blocking(hub, Component::start_again).await;
    let back = Instant::now();
    // A change made right after the hub is back is published within seconds: the watches are
    // reopened as soon as the Lease is renewed again (a resumed watch would ask the restarted
    // server for versions it no longer has) and reconnect with a backoff capped at 1 s. With
    // both, 0.4-1.2 s here; without the reopening 5-6 s, without either about 30 s: the bound
    // of 3 s tells those apart.
    let patch = json!({ "spec": { "targets": [
        target("a", &a.ip(), json!({})), target("b", &b.ip(), json!({ "weight": 0 }))
    ] } });
    eventually("the patch accepted", WAIT, || async {
        api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    until_answer(&host, &set(&[&a.ip()]), WAIT).await;
    let seen = back.elapsed();
    println!("hub back -> a change made then is in Knot's answer after {seen:?}");
    assert!(
        seen < Duration::from_secs(3),
        "the change took {seen:?} after the hub came back"
    );
    assert!(
        op.child.try_wait().unwrap().is_none(),
        "the operator restarted"
    );
    drop(hub);
}

#[tokio::test]
async fn a_stopped_spoke_keeps_its_records_and_is_reported_unreachable() {
    let spoke = start(&private_dir("spokedown"), "spoke-x").await;
    let spoke_client = client_of(&spoke).await;
    let hub = support::kube(Cluster::Hub).await;
    support::install_crds(&hub).await;
    let ns = support::namespace(&hub, "spokedown").await;
    let zone = crate::controller::knot_zone(&hub, &ns).await;
    // The backend in the private spoke: a Service with one ready endpoint.
    let app_ns = support::namespace(&spoke_client, "app").await;
    Api::<Service>::namespaced(spoke_client.clone(), &app_ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "web" },
                "spec": { "ports": [{ "port": 80 }] }
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    Api::<EndpointSlice>::namespaced(spoke_client.clone(), &app_ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "web-1", "labels": { "kubernetes.io/service-name": "web" } },
                "addressType": "IPv4",
                "endpoints": [{ "addresses": ["10.0.0.5"], "conditions": { "ready": true } }],
                "ports": [{ "port": 80 }]
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let kubeconfig = std::fs::read(spoke.get("GI_KUBECONFIG")).unwrap();
    let spoke_x = support::spoke_from(&hub, &ns, "spoke-x", kubeconfig).await;
    let spokes: Api<SpokeCluster> = Api::all(hub.clone());
    let spoke_a = support::spoke_a(&hub, &ns).await;
    let planes = DataPlane::start_many(&["127.0.0.36", "127.0.0.37"]).await;
    let (x, y) = (&planes[0], &planes[1]);
    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "spokedown",
        extra: &[],
    });
    let api: Api<GlobalIngress> = Api::namespaced(hub.clone(), &ns);
    let host = format!("{}.example.test", support::unique_name("spokedown"));
    let gi: GlobalIngress = serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
        "metadata": { "name": "web", "labels": support::shard(&ns) },
        "spec": { "hostnames": [host], "dnsZoneRef": zone, "ttl": 5, "routing": { "policy": "Weighted" },
                  "healthCheck": health_check(x.port()),
                  "targets": [
                      target("x", &x.ip(), json!({ "clusterRef": spoke_x,
                          "backend": { "service": { "namespace": app_ns, "name": "web", "port": 80 } } })),
                      target("y", &y.ip(), json!({ "clusterRef": spoke_a }))
                  ] }
    }))
    .unwrap();
    api.create(&PostParams::default(), &gi).await.unwrap();
    let both = set(&[&x.ip(), &y.ip()]);
    until_answer(&host, &both, WAIT).await;
    let ready = |name: String| {
        let spokes = spokes.clone();
        async move {
            let s = spokes.get(&name).await.ok()?;
            let c = find(&s.status.as_ref()?.conditions, "Ready")?.clone();
            Some((c.status, c.reason))
        }
    };
    eventually("spoke-x reachable", WAIT, || async {
        ready(spoke_x.clone()).await.filter(|(s, _)| s == "True")
    })
    .await;

    // The spoke's API server stops: it says Unreachable, its target keeps its records (its data
    // path still answers), and the other spoke is unaffected.
    let spoke = blocking(spoke, Component::stop).await;
    let (_, reason) = eventually("spoke-x Unreachable", WAIT, || async {
        ready(spoke_x.clone()).await.filter(|(s, _)| s == "False")
    })
    .await;
    assert_eq!(reason, "Unreachable");
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            answer(&host).await,
            both,
            "a target lost its records with its spoke"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        ready(spoke_a.clone()).await.map(|(s, _)| s).as_deref(),
        Some("True"),
        "the other spoke is unaffected"
    );
    // The probe still decides: x's data path fails, x is withdrawn.
    x.stop().await;
    until_answer(&host, &set(&[&y.ip()]), WAIT).await;
    x.restart().await;
    let spoke = blocking(spoke, Component::start_again).await;
    eventually("spoke-x reachable again", WAIT, || async {
        ready(spoke_x.clone()).await.filter(|(s, _)| s == "True")
    })
    .await;
    let status = api.get("web").await.unwrap().status.unwrap();
    let x_status: BTreeSet<String> = status
        .targets
        .iter()
        .filter(|t| t.name == "x")
        .map(|t| t.health.clone())
        .collect();
    println!("target x after its spoke came back: {x_status:?}");
    drop(spoke);
}
