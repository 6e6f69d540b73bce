//! Records published by the controller, read back from the real servers: Knot (RFC 2136) and
//! moto (Route 53).

use std::collections::BTreeSet;
use std::time::Duration;

use globalingress::api::GlobalIngress;
use globalingress::api::condition::find;
use globalingress::dns::{Name, RData, RecordType, query};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::operator::{Operator, Options, eventually};
use crate::support::{self, Cluster, env};

pub(crate) const WAIT: Duration = Duration::from_secs(30);

pub(crate) async fn answer(host: &str, rtype: RecordType) -> BTreeSet<String> {
    let name = Name::from_ascii(format!("{host}.")).unwrap();
    query::authoritative(env().dns_server, &name, rtype, Duration::from_secs(2))
        .await
        .unwrap()
        .records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|d| String::from_utf8_lossy(d).into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

pub(crate) fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub(crate) fn synced(gi: &GlobalIngress) -> Option<(String, String)> {
    let c = find(&gi.status.as_ref()?.conditions, "DNSSynced")?;
    Some((c.status.clone(), c.reason.clone()))
}

pub(crate) fn gi(
    ns: &str,
    name: &str,
    zone: &str,
    host: &str,
    policy: &str,
    targets: Value,
) -> GlobalIngress {
    serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
        "metadata": { "name": name, "labels": support::shard(ns) },
        // About publishing, not health: no probes of these documentation addresses.
        "spec": { "hostnames": [host], "dnsZoneRef": zone, "routing": { "policy": policy },
                  "healthCheck": { "protocol": "None" }, "targets": targets }
    }))
    .unwrap()
}

pub(crate) fn external(name: &str, addresses: &[&str], extra: Value) -> Value {
    let mut t = json!({ "name": name, "loadBalancer": { "mode": "External", "external": { "addresses": addresses } } });
    for (k, v) in extra.as_object().unwrap() {
        t[k] = v.clone();
    }
    t
}

pub(crate) async fn wait_synced(api: &Api<GlobalIngress>, name: &str, generation: i64) {
    eventually(
        &format!("{name} DNSSynced at generation {generation}"),
        WAIT,
        || async {
            let gi = api.get(name).await.ok()?;
            let s = gi.status.as_ref()?;
            (s.observed_generation == Some(generation) && synced(&gi)?.0 == "True").then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn knot_answers_follow_the_active_targets_and_foreign_names_are_left_alone() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "knot").await;
    let zone = crate::controller::knot_zone(&client, &ns).await;
    let host = format!("{}.example.test", support::unique_name("web"));
    let foreign = format!("{}.example.test", support::unique_name("foreign"));

    // A record nobody registered, at a name a second GlobalIngress will claim.
    let env = env();
    let updater = globalingress::dns::rfc2136::UpdateClient::connect(
        env.dns_server,
        &env.tsig_key,
        Duration::from_secs(5),
        None,
    )
    .await
    .unwrap();
    let mut update = globalingress::dns::rfc2136::Update::new(env.dns_zone.clone());
    update.add(globalingress::dns::rfc2136::record(
        Name::from_ascii(format!("{foreign}.")).unwrap(),
        60,
        RData::A(hickory_proto::rr::rdata::A::new(198, 51, 100, 7)),
    ));
    updater.send(update).await.unwrap();

    let _op = Operator::start(&Options {
        kubeconfig: &env.operator_kubeconfig,
        namespace: &ns,
        lease_name: "knot",
        extra: &[],
    });
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    let targets = json!([
        external("a", &["192.0.2.1"], json!({"weight": 10})),
        external("b", &["192.0.2.2", "2001:db8::2"], json!({"weight": 20}))
    ]);
    api.create(
        &PostParams::default(),
        &gi(&ns, "web", &zone, &host, "Weighted", targets),
    )
    .await
    .unwrap();
    wait_synced(&api, "web", 1).await;
    assert_eq!(
        answer(&host, RecordType::A).await,
        set(&["192.0.2.1", "192.0.2.2"])
    );
    assert_eq!(answer(&host, RecordType::AAAA).await, set(&["2001:db8::2"]));
    let registry = answer(&format!("_gi.{host}"), RecordType::TXT).await;
    assert_eq!(
        registry,
        set(&[&format!(
            "heritage=globalingress,owner=test-hub,resource={ns}/web"
        )])
    );

    // Weight 0 withdraws b: its addresses leave the answer, its AAAA set disappears.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"targets": [
            external("a", &["192.0.2.1"], json!({"weight": 10})),
            external("b", &["192.0.2.2", "2001:db8::2"], json!({"weight": 0}))
        ]}})),
    )
    .await
    .unwrap();
    wait_synced(&api, "web", 2).await;
    assert_eq!(answer(&host, RecordType::A).await, set(&["192.0.2.1"]));
    assert!(answer(&host, RecordType::AAAA).await.is_empty());

    // The foreign name is refused to a second GlobalIngress and stays as it was.
    api.create(
        &PostParams::default(),
        &gi(
            &ns,
            "intruder",
            &zone,
            &foreign,
            "Weighted",
            json!([external("x", &["192.0.2.99"], json!({"weight": 1}))]),
        ),
    )
    .await
    .unwrap();
    let ready = eventually("HostnameConflict", WAIT, || async {
        let gi = api.get("intruder").await.ok()?;
        let c = find(&gi.status.as_ref()?.conditions, "Ready")?.clone();
        (c.reason == "HostnameConflict").then_some(c)
    })
    .await;
    assert!(
        ready.message.contains("no GlobalIngress owns"),
        "{}",
        ready.message
    );
    assert_eq!(
        answer(&foreign, RecordType::A).await,
        set(&["198.51.100.7"])
    );

    // Deleting removes exactly what it published.
    api.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("web deleted", WAIT, || async {
        api.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(answer(&host, RecordType::A).await.is_empty());
    assert!(
        answer(&format!("_gi.{host}"), RecordType::TXT)
            .await
            .is_empty()
    );
    assert_eq!(
        answer(&foreign, RecordType::A).await,
        set(&["198.51.100.7"])
    );
}

#[tokio::test]
async fn an_adopted_spoke_load_balancer_is_published_and_followed() {
    use k8s_openapi::api::core::v1::{Secret, Service};
    let hub = support::kube(Cluster::Hub).await;
    support::install_crds(&hub).await;
    let ns = support::namespace(&hub, "adopt").await;
    let zone = crate::controller::knot_zone(&hub, &ns).await;
    // Every address the records will point at answers the operator's probes: this test is about
    // where the address comes from, not about health.
    let planes = crate::support::dataplane::DataPlane::start_many(&[
        "127.0.0.15",
        "127.0.0.16",
        "127.0.0.17",
    ])
    .await;

    // The spoke's Service of type LoadBalancer, with the address its cloud controller would set.
    let spoke = support::kube(Cluster::SpokeA).await;
    let app_ns = support::namespace(&spoke, "shop").await;
    let services: Api<Service> = Api::namespaced(spoke.clone(), &app_ns);
    let svc: Service = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": { "type": "LoadBalancer", "ports": [ { "port": 443 } ] }
    }))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    let set_lb = |ip: &'static str| {
        let services = services.clone();
        async move {
            services
                .patch_status(
                    "web",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}})),
                )
                .await
                .unwrap();
        }
    };
    set_lb("127.0.0.15").await;
    // Its pods are ready (there is no endpoint-slice controller here: the test writes the slice).
    let slice: k8s_openapi::api::discovery::v1::EndpointSlice = serde_json::from_value(json!({
        "metadata": { "name": "web-1", "labels": { "kubernetes.io/service-name": "web" } },
        "addressType": "IPv4",
        "endpoints": [ { "addresses": ["10.1.0.5"], "conditions": { "ready": true } } ]
    }))
    .unwrap();
    Api::<k8s_openapi::api::discovery::v1::EndpointSlice>::namespaced(spoke.clone(), &app_ns)
        .create(&PostParams::default(), &slice)
        .await
        .unwrap();

    let spoke_name = support::spoke_a(&hub, &ns).await;

    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "adopt",
        extra: &[],
    });
    let api: Api<GlobalIngress> = Api::namespaced(hub.clone(), &ns);
    let host = format!("{}.example.test", support::unique_name("shop"));
    let targets = json!([
        { "name": "eu", "weight": 1, "clusterRef": spoke_name,
          "backend": { "service": { "namespace": app_ns, "name": "web", "port": 443 } },
          "loadBalancer": { "mode": "Adopt" } },
        external("legacy", &["127.0.0.17"], json!({"weight": 1}))
    ]);
    let mut shop = gi(&ns, "shop", &zone, &host, "Weighted", targets);
    shop.spec.health_check.protocol = globalingress::api::global_ingress::ProbeProtocol::HTTP;
    shop.spec.health_check.port = Some(i32::from(planes[0].port()));
    shop.spec.health_check.interval = "1s".into();
    shop.spec.health_check.timeout = "500ms".into();
    api.create(&PostParams::default(), &shop).await.unwrap();
    eventually("both targets answered", WAIT, || async {
        (answer(&host, RecordType::A).await == set(&["127.0.0.15", "127.0.0.17"])).then_some(())
    })
    .await;
    // The status follows the records (it is patched once they are published).
    let eu = eventually("eu's address in the status", WAIT, || async {
        let status = api.get("shop").await.ok()?.status?;
        status.targets.into_iter().find(|t| t.name == "eu")
    })
    .await;
    assert_eq!(eu.addresses, vec!["127.0.0.15".to_owned()]);

    // The spoke's load balancer moves: the next resync follows it.
    set_lb("127.0.0.16").await;
    eventually("the new address answered", WAIT, || async {
        (answer(&host, RecordType::A).await == set(&["127.0.0.16", "127.0.0.17"])).then_some(())
    })
    .await;

    // The spoke becomes unreachable (its kubeconfig now points at a closed port): nobody saw the
    // target fail, so its last address keeps being served through two resyncs.
    let good = String::from_utf8(std::fs::read(&env().spoke_a_grant_kubeconfig).unwrap()).unwrap();
    let server = good
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap()
        .to_owned();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bad = good.replace(&server, &format!("https://127.0.0.1:{closed}"));
    Api::<Secret>::namespaced(hub.clone(), &ns)
        .patch(
            "spoke-a",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"data": {"kubeconfig": k8s_openapi::ByteString(bad.into_bytes())}}),
            ),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        answer(&host, RecordType::A).await,
        set(&["127.0.0.16", "127.0.0.17"])
    );
}
