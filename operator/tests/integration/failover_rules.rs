//! Failover decided by the spoke (zero ready endpoints) and by people (drains, Manual failback).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::failover::{
    WAIT, answer, degraded, external, global_ingress, health_check, set, setup, until_answer,
};
use crate::support::dataplane::DataPlane;
use crate::support::operator::eventually;
use crate::support::{self, Cluster};

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
                &s.ns,
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
                &s.ns,
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
