//! Automated failover against real parts: the operator process probes loopback data planes,
//! publishes to Knot, and reads spoke EndpointSlices from a real spoke API server. Every
//! duration below is measured and printed; the bounds asserted are deliberately loose (a busy
//! 2-core machine), `make bench` gives the precise figures.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use globalingress::api::GlobalIngress;
use globalingress::api::condition::find;
use globalingress::dns::{Name, RData, RecordType, query};
use k8s_openapi::api::core::v1::{Event, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::dataplane::{DataPlane, Mode};
use crate::support::operator::{Operator, Options, eventually};
use crate::support::{self, Cluster, env};

const WAIT: Duration = Duration::from_secs(40);

/// Probe settings of every test here: interval 1 s, 2 failures to fall, 1 success to rise.
const INTERVAL_S: f64 = 1.0;
const UNHEALTHY_THRESHOLD: f64 = 2.0;

async fn answer(host: &str) -> BTreeSet<String> {
    let name = Name::from_ascii(format!("{host}.")).unwrap();
    match query::authoritative(
        env().dns_server,
        &name,
        RecordType::A,
        Duration::from_secs(2),
    )
    .await
    {
        Ok(a) => a
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0.to_string()),
                _ => None,
            })
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Polls the authoritative answer every 25 ms until it equals `want`; returns the time taken.
async fn until_answer(host: &str, want: &BTreeSet<String>, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = answer(host).await;
        if &got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "{host}: answer {got:?}, still not {want:?} after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn health_check(port: u16, failover: Value) -> Value {
    json!({
        "healthCheck": { "protocol": "HTTP", "path": "/healthz", "port": port,
                         "interval": "1s", "timeout": "500ms",
                         "healthyThreshold": 1, "unhealthyThreshold": 2 },
        "failover": failover
    })
}

fn external(name: &str, ip: &str) -> Value {
    json!({ "name": name, "weight": 1,
            "loadBalancer": { "mode": "External", "external": { "addresses": [ip] } } })
}

fn global_ingress(
    name: &str,
    zone: &str,
    host: &str,
    targets: Value,
    extra: Value,
) -> GlobalIngress {
    let mut spec = json!({ "hostnames": [host], "dnsZoneRef": zone, "ttl": 5,
                           "routing": { "policy": "Weighted" }, "targets": targets });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
        "metadata": { "name": name }, "spec": spec
    }))
    .unwrap()
}

async fn degraded(api: &Api<GlobalIngress>, name: &str) -> Option<(String, String, String)> {
    let gi = api.get(name).await.ok()?;
    let c = find(&gi.status.as_ref()?.conditions, "Degraded")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn event_reasons(client: &kube::Client, ns: &str) -> Vec<(String, String)> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

struct Setup {
    client: kube::Client,
    ns: String,
    zone: String,
    host: String,
    api: Api<GlobalIngress>,
}

impl Setup {
    /// The operator, watching this test's namespace (its Lease there too).
    fn operator(&self, extra: &[&str]) -> Operator {
        Operator::start(&Options {
            kubeconfig: &env().hub_kubeconfig,
            namespace: &self.ns,
            lease_name: "failover",
            extra,
        })
    }
}

async fn setup(prefix: &str) -> Setup {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, prefix).await;
    let zone = crate::controller::knot_zone(&client, &ns).await;
    let host = format!("{}.example.test", support::unique_name(prefix));
    let api = Api::namespaced(client.clone(), &ns);
    Setup {
        client,
        ns,
        zone,
        host,
        api,
    }
}

#[tokio::test]
async fn a_stopped_region_is_withdrawn_in_seconds_and_returns_after_failback_after() {
    let s = setup("failover").await;
    let planes = DataPlane::start_many(&["127.0.0.2", "127.0.0.3"]).await;
    let (a, b) = (&planes[0], &planes[1]);
    let op = s.operator(&[]);
    s.api
        .create(
            &PostParams::default(),
            &global_ingress(
                "shop",
                &s.zone,
                &s.host,
                json!([external("a", &a.ip()), external("b", &b.ip())]),
                health_check(a.port(), json!({ "failbackAfter": "5s" })),
            ),
        )
        .await
        .unwrap();
    let both = set(&[&a.ip(), &b.ip()]);
    until_answer(&s.host, &both, WAIT).await;
    eventually("both targets Healthy", WAIT, || async {
        let st = s.api.get("shop").await.ok()?.status?;
        st.targets
            .iter()
            .all(|t| t.health == "Healthy")
            .then_some(())
    })
    .await;

    // Region a's data plane stops: withdrawn within interval × unhealthyThreshold (+ the first
    // probe's offset, the batch window and the update).
    a.stop().await;
    let took = until_answer(&s.host, &set(&[&b.ip()]), WAIT).await;
    let bound = INTERVAL_S * UNHEALTHY_THRESHOLD + 2.0;
    println!(
        "failover: region down -> Knot answer changed in {:.2}s (target {bound:.1}s)",
        took.as_secs_f64()
    );
    assert!(
        took.as_secs_f64() <= bound + 3.0,
        "failover took {took:?}, target {bound}s (+3s slack for a busy machine)"
    );
    let status = eventually("lastFailover recorded", WAIT, || async {
        let st = s.api.get("shop").await.ok()?.status?;
        st.last_failover
            .clone()
            .filter(|f| f.kind == "Failover")
            .map(|f| (f, st))
    })
    .await;
    let (record, st) = status;
    assert_eq!((record.from.as_str(), record.to.as_str()), ("a,b", "b"));
    assert!(record.submitted_at.is_some() && record.in_sync_at.is_some());
    assert!(record.answer_seen_at.is_some(), "{record:?}");
    let target_a = st.targets.iter().find(|t| t.name == "a").unwrap();
    assert_eq!(target_a.health, "Unhealthy");
    assert!(
        target_a
            .message
            .as_deref()
            .is_some_and(|m| m.contains("connection refused")),
        "{target_a:?}"
    );
    let d = degraded(&s.api, "shop").await.unwrap();
    assert_eq!((d.0.as_str(), d.1.as_str()), ("True", "TargetsWithdrawn"));
    // The Event follows the status write.
    let event = eventually("a Failover Event", WAIT, || async {
        event_reasons(&s.client, &s.ns)
            .await
            .into_iter()
            .find(|(r, m)| r == "Failover" && m.contains("from a,b to b"))
    })
    .await;
    println!("event: {}", event.1);
    assert!(
        !event_reasons(&s.client, &s.ns)
            .await
            .iter()
            .any(|(r, _)| r == "Failback"),
        "the first publish is not a failback"
    );

    // The metrics say it too.
    let measured = op
        .metric(
            "globalingress_failover_duration_seconds_count{kind=\"Failover\",until=\"answer_seen\"}",
        )
        .await;
    assert_eq!(measured, 1.0);
    assert!(
        op.metric("globalingress_probes_total{protocol=\"HTTP\",result=\"failure\"}")
            .await
            >= UNHEALTHY_THRESHOLD
    );
    assert_eq!(
        op.metric("globalingress_endpoint_transitions_total{verdict=\"Unhealthy\"}")
            .await,
        1.0
    );

    // Back up: healthy after one probe, but traffic returns only after failbackAfter (5 s).
    let restarted = Instant::now();
    a.restart().await;
    eventually("a Recovering", WAIT, || async {
        let st = s.api.get("shop").await.ok()?.status?;
        st.targets
            .iter()
            .any(|t| t.name == "a" && t.health == "Recovering")
            .then_some(())
    })
    .await;
    until_answer(&s.host, &both, WAIT).await;
    let back = restarted.elapsed();
    println!(
        "failback: region up -> answer restored in {:.2}s (failbackAfter 5s)",
        back.as_secs_f64()
    );
    assert!(
        back >= Duration::from_secs(5),
        "traffic came back after {back:?}, before failbackAfter"
    );
    let record = eventually("Failback recorded", WAIT, || async {
        s.api
            .get("shop")
            .await
            .ok()?
            .status?
            .last_failover
            .filter(|f| f.kind == "Failback")
    })
    .await;
    assert_eq!((record.from.as_str(), record.to.as_str()), ("b", "a,b"));
}

#[tokio::test]
async fn a_flapping_endpoint_is_withdrawn_at_most_once_per_failback_window() {
    let s = setup("flap").await;
    let planes = DataPlane::start_many(&["127.0.0.4", "127.0.0.5"]).await;
    let (a, b) = (&planes[0], &planes[1]);
    let _op = s.operator(&[]);
    let mut settings = health_check(a.port(), json!({ "failbackAfter": "6s" }));
    settings["healthCheck"]["unhealthyThreshold"] = json!(1);
    s.api
        .create(
            &PostParams::default(),
            &global_ingress(
                "flappy",
                &s.zone,
                &s.host,
                json!([external("a", &a.ip()), external("b", &b.ip())]),
                settings,
            ),
        )
        .await
        .unwrap();
    until_answer(&s.host, &set(&[&a.ip(), &b.ip()]), WAIT).await;
    // Every other probe fails: without failbackAfter this would withdraw a every 2 s.
    a.set_mode(Mode::Flap);
    let watch = Duration::from_secs(15);
    let started = Instant::now();
    let mut withdrawals = 0;
    let mut present = true;
    while started.elapsed() < watch {
        let now_present = answer(&s.host).await.contains(&a.ip());
        if present && !now_present {
            withdrawals += 1;
        }
        present = now_present;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let windows = (watch.as_secs_f64() / 6.0).ceil() as usize;
    println!("flapping for {watch:?}: {withdrawals} withdrawal(s), at most {windows} allowed");
    assert!(
        withdrawals >= 1,
        "the flapping endpoint was never withdrawn"
    );
    assert!(
        withdrawals <= windows,
        "{withdrawals} withdrawals in {watch:?} with failbackAfter 6s"
    );
}

#[tokio::test]
async fn every_region_down_at_once_withdraws_nothing_then_fails_open() {
    let s = setup("panic").await;
    let planes = DataPlane::start_many(&["127.0.0.6", "127.0.0.7"]).await;
    let (a, b) = (&planes[0], &planes[1]);
    let _op = s.operator(&["--panic-window", "8s"]);
    s.api
        .create(
            &PostParams::default(),
            &global_ingress(
                "guarded",
                &s.zone,
                &s.host,
                json!([external("a", &a.ip()), external("b", &b.ip())]),
                health_check(
                    a.port(),
                    json!({ "failbackAfter": "2s", "panicThreshold": 50 }),
                ),
            ),
        )
        .await
        .unwrap();
    let both = set(&[&a.ip(), &b.ip()]);
    until_answer(&s.host, &both, WAIT).await;
    eventually("both Healthy", WAIT, || async {
        let st = s.api.get("guarded").await.ok()?.status?;
        (st.targets.len() == 2 && st.targets.iter().all(|t| t.health == "Healthy")).then_some(())
    })
    .await;

    // The hub loses both regions at once (as when its own network fails): the guard holds.
    a.stop().await;
    b.stop().await;
    let d = eventually("Degraded PanicThreshold", WAIT, || async {
        degraded(&s.api, "guarded")
            .await
            .filter(|d| d.1 == "PanicThreshold")
    })
    .await;
    assert_eq!(d.0, "True");
    // Well past the time a real failover takes, nothing was withdrawn.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        assert_eq!(
            answer(&s.host).await,
            both,
            "the guard let a withdrawal through"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually("a PanicThreshold Event", WAIT, || async {
        event_reasons(&s.client, &s.ns)
            .await
            .into_iter()
            .find(|(r, _)| r == "PanicThreshold")
    })
    .await;

    // Still down after the guard's window: the outage is real, every target is unhealthy, and
    // the operator fails open (publishes all) instead of withdrawing everything.
    eventually("Degraded AllTargetsUnhealthy", WAIT, || async {
        degraded(&s.api, "guarded")
            .await
            .filter(|d| d.1 == "AllTargetsUnhealthy")
    })
    .await;
    assert_eq!(answer(&s.host).await, both);

    // Both return: after failbackAfter the object is back to normal…
    a.restart().await;
    b.restart().await;
    eventually("Degraded False", WAIT, || async {
        degraded(&s.api, "guarded").await.filter(|d| d.0 == "False")
    })
    .await;
    // …and a single region failing is withdrawn as usual (1 of 2 is not more than 50 %).
    a.stop().await;
    until_answer(&s.host, &set(&[&b.ip()]), WAIT).await;
}

#[tokio::test]
async fn zero_ready_endpoints_in_the_spoke_withdraw_a_target_whose_probe_passes() {
    let s = setup("slices").await;
    let planes = DataPlane::start_many(&["127.0.0.8", "127.0.0.9"]).await;
    let (a, b) = (&planes[0], &planes[1]);
    // The backend in spoke-a: a LoadBalancer Service whose load balancer is data plane a, and
    // its EndpointSlice with one ready endpoint.
    let spoke = support::kube(Cluster::SpokeA).await;
    let app_ns = support::namespace(&spoke, "app").await;
    let services: Api<Service> = Api::namespaced(spoke.clone(), &app_ns);
    let svc: Service = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": { "type": "LoadBalancer", "ports": [{ "port": a.port(), "targetPort": 8080 }],
                  "selector": { "app": "web" } }
    }))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    services
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": a.ip()}]}}})),
        )
        .await
        .unwrap();
    let slices: Api<EndpointSlice> = Api::namespaced(spoke.clone(), &app_ns);
    let slice = |ready: bool| -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": { "name": "web-abc", "labels": { "kubernetes.io/service-name": "web" } },
            "addressType": "IPv4",
            "endpoints": [{ "addresses": ["10.1.0.5"], "conditions": { "ready": ready } }],
            "ports": [{ "port": 8080 }]
        }))
        .unwrap()
    };
    slices
        .create(&PostParams::default(), &slice(true))
        .await
        .unwrap();

    let spoke_name = support::spoke_a(&s.client, &s.ns).await;

    let _op = s.operator(&[]);
    let targets = json!([
        { "name": "eu", "weight": 1, "clusterRef": spoke_name,
          "backend": { "service": { "namespace": app_ns, "name": "web", "port": a.port() } },
          "loadBalancer": { "mode": "Adopt" } },
        external("b", &b.ip())
    ]);
    s.api
        .create(
            &PostParams::default(),
            &global_ingress(
                "shop",
                &s.zone,
                &s.host,
                targets,
                health_check(a.port(), json!({ "failbackAfter": "3s" })),
            ),
        )
        .await
        .unwrap();
    let both = set(&[&a.ip(), &b.ip()]);
    until_answer(&s.host, &both, WAIT).await;

    // The pods go unready; the load balancer (data plane a) still answers 200.
    let started = Instant::now();
    slices
        .replace("web-abc", &PostParams::default(), &{
            let mut s = slices.get("web-abc").await.unwrap();
            s.endpoints = slice(false).endpoints;
            s
        })
        .await
        .unwrap();
    until_answer(&s.host, &set(&[&b.ip()]), WAIT).await;
    println!(
        "zero ready endpoints -> withdrawn in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    // The status follows the records (written right after them).
    let eu = eventually("eu Unhealthy in the status", WAIT, || async {
        let st = s.api.get("shop").await.ok()?.status?;
        st.targets
            .into_iter()
            .find(|t| t.name == "eu" && t.health == "Unhealthy")
    })
    .await;
    assert!(
        eu.message
            .as_deref()
            .is_some_and(|m| m.contains("no ready endpoint")),
        "{eu:?}"
    );

    // Ready again: back after failbackAfter.
    let started = Instant::now();
    slices
        .replace("web-abc", &PostParams::default(), &{
            let mut s = slices.get("web-abc").await.unwrap();
            s.endpoints = slice(true).endpoints;
            s
        })
        .await
        .unwrap();
    until_answer(&s.host, &both, WAIT).await;
    assert!(started.elapsed() >= Duration::from_secs(3));
}

#[tokio::test]
async fn drains_are_refused_when_nothing_would_be_left_and_manual_failback_waits_for_approval() {
    let s = setup("drain").await;
    let planes = DataPlane::start_many(&["127.0.0.13", "127.0.0.14"]).await;
    let (a, b) = (&planes[0], &planes[1]);
    let _op = s.operator(&[]);
    let targets = |drain_a: bool| {
        let mut a = external("a", &a.ip());
        a["drain"] = json!(drain_a);
        json!([a, external("b", &b.ip())])
    };
    s.api
        .create(
            &PostParams::default(),
            &global_ingress(
                "maint",
                &s.zone,
                &s.host,
                targets(false),
                health_check(a.port(), json!({ "failback": "Manual" })),
            ),
        )
        .await
        .unwrap();
    let both = set(&[&a.ip(), &b.ip()]);
    until_answer(&s.host, &both, WAIT).await;
    let patch_targets = |drain_a: bool| {
        let api = s.api.clone();
        let t = targets(drain_a);
        async move {
            api.patch(
                "maint",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"targets": t}})),
            )
            .await
            .unwrap();
        }
    };

    // Drained for maintenance: withdrawn like an unhealthy target, and back when undrained.
    patch_targets(true).await;
    until_answer(&s.host, &set(&[&b.ip()]), WAIT).await;
    eventually("a Drained in the status", WAIT, || async {
        let st = s.api.get("maint").await.ok()?.status?;
        st.targets
            .iter()
            .any(|t| t.name == "a" && t.health == "Drained")
            .then_some(())
    })
    .await;
    patch_targets(false).await;
    until_answer(&s.host, &both, WAIT).await;

    // b fails; draining a now would leave nothing: refused, a keeps the traffic.
    b.stop().await;
    until_answer(&s.host, &set(&[&a.ip()]), WAIT).await;
    patch_targets(true).await;
    let d = eventually("Degraded DrainRefused", WAIT, || async {
        degraded(&s.api, "maint")
            .await
            .filter(|d| d.1 == "DrainRefused")
    })
    .await;
    assert!(d.2.contains("drain of a refused"), "{d:?}");
    assert_eq!(answer(&s.host).await, set(&[&a.ip()]));
    patch_targets(false).await;

    // b recovers, but failback is Manual: it waits for an approval newer than its withdrawal.
    b.restart().await;
    eventually("b AwaitingFailback", WAIT, || async {
        let st = s.api.get("maint").await.ok()?.status?;
        st.targets
            .iter()
            .any(|t| t.name == "b" && t.health == "AwaitingFailback")
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        answer(&s.host).await,
        set(&[&a.ip()]),
        "came back unapproved"
    );
    let now = jiff::Timestamp::now().to_string();
    s.api
        .patch(
            "maint",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"globalingress.io/approve-failback": now}}}),
            ),
        )
        .await
        .unwrap();
    let took = until_answer(&s.host, &both, WAIT).await;
    println!(
        "manual failback: approved -> answer restored in {:.2}s",
        took.as_secs_f64()
    );
}
