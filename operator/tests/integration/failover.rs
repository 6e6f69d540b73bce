//! Automated failover against real parts: the operator process probes loopback data planes,
//! publishes to Knot, and reads spoke EndpointSlices from a real spoke API server. Every
//! duration below is measured and printed, never asserted (`make bench` gives the figures);
//! what is asserted is behaviour: what moved, in how many zone updates, in which order.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use globalingress::api::GlobalIngress;
use globalingress::api::condition::find;
use globalingress::dns::{Name, RData, RecordType, query};
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};

use crate::support::dataplane::{DataPlane, Mode};
use crate::support::operator::{Operator, Options, eventually};
use crate::support::{self, Cluster, env};

pub(crate) const WAIT: Duration = Duration::from_secs(40);

/// Probe settings of every test here: interval 1 s, 2 failures to fall, 1 success to rise.
const INTERVAL_S: f64 = 1.0;
const UNHEALTHY_THRESHOLD: f64 = 2.0;

pub(crate) async fn answer(host: &str) -> BTreeSet<String> {
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

pub(crate) fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Polls the authoritative answer every 25 ms until it equals `want`; returns the time taken.
pub(crate) async fn until_answer(
    host: &str,
    want: &BTreeSet<String>,
    timeout: Duration,
) -> Duration {
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

pub(crate) fn health_check(port: u16, failover: Value) -> Value {
    json!({
        "healthCheck": { "protocol": "HTTP", "path": "/healthz", "port": port,
                         "interval": "1s", "timeout": "500ms",
                         "healthyThreshold": 1, "unhealthyThreshold": 2 },
        "failover": failover
    })
}

pub(crate) fn external(name: &str, ip: &str) -> Value {
    json!({ "name": name, "weight": 1,
            "loadBalancer": { "mode": "External", "external": { "addresses": [ip] } } })
}

pub(crate) fn global_ingress(
    ns: &str,
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
        "metadata": { "name": name, "labels": support::shard(ns) }, "spec": spec
    }))
    .unwrap()
}

pub(crate) async fn degraded(
    api: &Api<GlobalIngress>,
    name: &str,
) -> Option<(String, String, String)> {
    let gi = api.get(name).await.ok()?;
    let c = find(&gi.status.as_ref()?.conditions, "Degraded")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

pub(crate) async fn event_reasons(client: &kube::Client, ns: &str) -> Vec<(String, String)> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

pub(crate) struct Setup {
    pub(crate) client: kube::Client,
    pub(crate) ns: String,
    pub(crate) zone: String,
    pub(crate) host: String,
    pub(crate) api: Api<GlobalIngress>,
}

impl Setup {
    /// The operator, watching this test's namespace (its Lease there too).
    pub(crate) fn operator(&self, extra: &[&str]) -> Operator {
        Operator::start(&Options {
            kubeconfig: &env().operator_kubeconfig,
            namespace: &self.ns,
            lease_name: "failover",
            extra,
        })
    }
}

pub(crate) async fn setup(prefix: &str) -> Setup {
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
                &s.ns,
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
    // Printed, not asserted: `make bench` measures the time (a test asserts behaviour).
    let bound = INTERVAL_S * UNHEALTHY_THRESHOLD + 2.0;
    println!(
        "failover: region down -> Knot answer changed in {:.2}s (target {bound:.1}s)",
        took.as_secs_f64()
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
                &s.ns,
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
    // Withdrawn at its first fall; never healthy for 6 s in a row afterwards, so never back:
    // exactly one withdrawal (no failback, no second fall).
    println!("flapping for {watch:?}: {withdrawals} withdrawal(s)");
    assert_eq!(
        withdrawals, 1,
        "a flapping endpoint with failbackAfter 6s is withdrawn once and stays out"
    );
    assert!(!present, "still withdrawn at the end");
}

#[tokio::test]
async fn most_regions_down_at_once_withdraw_nothing_until_the_guard_window_ends() {
    let s = setup("panic").await;
    let planes = DataPlane::start_many(&["127.0.0.6", "127.0.0.7", "127.0.0.8"]).await;
    let (a, b, c) = (&planes[0], &planes[1], &planes[2]);
    let _op = s.operator(&["--panic-window", "8s"]);
    s.api
        .create(
            &PostParams::default(),
            &global_ingress(
                &s.ns,
                "guarded",
                &s.zone,
                &s.host,
                json!([
                    external("a", &a.ip()),
                    external("b", &b.ip()),
                    external("c", &c.ip())
                ]),
                health_check(
                    a.port(),
                    json!({ "failbackAfter": "2s", "panicThreshold": 50 }),
                ),
            ),
        )
        .await
        .unwrap();
    let all = set(&[&a.ip(), &b.ip(), &c.ip()]);
    until_answer(&s.host, &all, WAIT).await;
    eventually("all Healthy", WAIT, || async {
        let st = s.api.get("guarded").await.ok()?.status?;
        (st.targets.len() == 3 && st.targets.iter().all(|t| t.health == "Healthy")).then_some(())
    })
    .await;

    // Two of three regions fail at once (as when the hub's own network fails): more than the
    // 50 % threshold, so the guard holds both: nothing is withdrawn, and they say Held.
    a.stop().await;
    b.stop().await;
    let d = eventually("Degraded PanicThreshold", WAIT, || async {
        degraded(&s.api, "guarded")
            .await
            .filter(|d| d.1 == "PanicThreshold")
    })
    .await;
    assert_eq!(d.0, "True");
    let held = eventually("a and b Held", WAIT, || async {
        let st = s.api.get("guarded").await.ok()?.status?;
        let health = |n: &str| {
            st.targets
                .iter()
                .find(|t| t.name == n)
                .map(|t| t.health.clone())
        };
        (health("a")? == "Held" && health("b")? == "Held").then(|| health("c"))
    })
    .await;
    assert_eq!(held.as_deref(), Some("Healthy"));
    // Well past the time a real failover takes, nothing was withdrawn.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        assert_eq!(
            answer(&s.host).await,
            all,
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

    // Still down after the guard's window: the outage is real. One region is up, so this is no
    // fail-open: the two are withdrawn and only c answers.
    until_answer(&s.host, &set(&[&c.ip()]), WAIT).await;
    // (The status follows the records.)
    eventually("Degraded TargetsWithdrawn", WAIT, || async {
        degraded(&s.api, "guarded")
            .await
            .filter(|d| d.0 == "True" && d.1 == "TargetsWithdrawn")
    })
    .await;

    // Both return: after failbackAfter the object is back to normal.
    a.restart().await;
    b.restart().await;
    until_answer(&s.host, &all, WAIT).await;
    eventually("Degraded False", WAIT, || async {
        degraded(&s.api, "guarded").await.filter(|d| d.0 == "False")
    })
    .await;
    // Every region down at once, past the window: fail open (publish all) rather than none.
    a.stop().await;
    b.stop().await;
    c.stop().await;
    eventually("Degraded AllTargetsUnhealthy", WAIT, || async {
        degraded(&s.api, "guarded")
            .await
            .filter(|d| d.1 == "AllTargetsUnhealthy")
    })
    .await;
    assert_eq!(answer(&s.host).await, all);
}

/// GlobalIngresses sharing one region's health check (one endpoint probed for all of them).
const WAVE_SIZE: usize = 12;

#[tokio::test]
async fn a_region_failing_under_many_global_ingresses_moves_them_all_in_one_zone_update() {
    let s = setup("wave").await;
    let planes = DataPlane::start_many(&["127.0.0.50", "127.0.0.51"]).await;
    let (a, b) = (&planes[0], &planes[1]);
    let op = s.operator(&[]);
    let mut check = health_check(a.port(), json!({ "failbackAfter": "2s" }));
    check["healthCheck"]["hostHeader"] = json!("wave.test");
    let hosts: Vec<String> = (0..WAVE_SIZE).map(|i| format!("w{i}-{}", s.host)).collect();
    for (i, host) in hosts.iter().enumerate() {
        let targets = json!([external("a", &a.ip()), external("b", &b.ip())]);
        let gi = global_ingress(
            &s.ns,
            &format!("w{i}"),
            &s.zone,
            host,
            targets,
            check.clone(),
        );
        s.api.create(&PostParams::default(), &gi).await.unwrap();
    }
    let both = set(&[&a.ip(), &b.ip()]);
    for host in &hosts {
        until_answer(host, &both, WAIT).await;
    }
    let all_status = |want: &'static str| {
        let api = s.api.clone();
        async move {
            let list = api.list(&ListParams::default()).await.ok()?;
            let done = list.items.iter().filter(|gi| {
                gi.status.as_ref().is_some_and(|st| match want {
                    "Healthy" => st.targets.iter().all(|t| t.health == "Healthy"),
                    kind => st.last_failover.as_ref().is_some_and(|f| f.kind == kind),
                })
            });
            (done.count() == WAVE_SIZE).then_some(())
        }
    };
    eventually("every target Healthy", WAIT, || all_status("Healthy")).await;
    // One endpoint for all of them: a verdict change concerns every object at once.
    assert_eq!(
        op.metric("globalingress_probed_endpoints{verdict=\"Healthy\"}")
            .await,
        2.0
    );
    let updates =
        || op.metric("globalingress_dns_batches_total{provider=\"rfc2136\",outcome=\"ok\"}");
    let recomputed = || op.metric("globalingress_wave_objects_total");

    // Region a stops: one wave recomputes every object's records, one UPDATE carries them all,
    // and the reconciles after it (status, Events) find nothing left to write.
    let (before, waved) = (updates().await, recomputed().await);
    a.stop().await;
    for host in &hosts {
        until_answer(host, &set(&[&b.ip()]), WAIT).await;
    }
    eventually("every object recorded the Failover", WAIT, || {
        all_status("Failover")
    })
    .await;
    assert_eq!(
        updates().await - before,
        1.0,
        "one zone update for the failover"
    );
    assert!(recomputed().await - waved >= WAVE_SIZE as f64);
    // The status's timeline names the wave's publish.
    let gi = s.api.get("w0").await.unwrap();
    let record = gi.status.unwrap().last_failover.unwrap();
    assert!(
        record.submitted_at.is_some() && record.answer_seen_at.is_some(),
        "{record:?}"
    );

    // Back up: the recovery is due after failbackAfter in every object at once; the failback
    // is one update too.
    let before = updates().await;
    a.restart().await;
    for host in &hosts {
        until_answer(host, &both, WAIT).await;
    }
    eventually("every object recorded the Failback", WAIT, || {
        all_status("Failback")
    })
    .await;
    assert_eq!(
        updates().await - before,
        1.0,
        "one zone update for the failback"
    );
}
