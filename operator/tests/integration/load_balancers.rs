//! Provisioned load balancers against moto's EC2, ELBv2, Route 53 and STS and a real spoke API
//! server: an internal NLB registering the ready endpoints of the spoke's EndpointSlices and
//! following them, an internet-facing ALB on the NodePort of the spoke's nodes, a scheme change
//! that replaces the load balancer with no moment without records, a load balancer in a second
//! account, foreign resources with our names left alone, deletion and Retain.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2 as elbv2;
use globalingress::api::GlobalIngress;
use globalingress::api::condition::find;
use k8s_openapi::api::core::v1::{Node, Service};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::moto;
use crate::support::network::{self, REGION, Setup, backend, set_endpoints, setup};
use crate::support::operator::{Operator, Options, eventually};
use crate::support::{self, Cluster};

pub const WAIT: Duration = Duration::from_secs(60);
/// moto's one canonical hosted zone id of every load balancer.
pub const MOTO_LB_ZONE: &str = "Z2P70J7EXAMPLE";

pub fn gi(ns: &str, name: &str, zone: &str, host: &str, targets: Value) -> GlobalIngress {
    serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
        "metadata": { "name": name, "namespace": ns, "labels": support::shard(ns) },
        "spec": { "hostnames": [host], "dnsZoneRef": zone, "ttl": 30,
                  "routing": { "policy": "Weighted" },
                  "healthCheck": { "protocol": "None" },
                  "targets": targets }
    }))
    .unwrap()
}

pub fn provisioned(spoke: &str, app_ns: &str, lb: Value) -> Value {
    json!({ "name": "eu", "weight": 1, "clusterRef": spoke,
            "backend": { "service": { "namespace": app_ns, "name": "web", "port": 80 } },
            "loadBalancer": lb })
}

/// The ALIAS of `host` in the zone: (DNS name without the final dot, hosted zone id).
pub async fn alias(
    r53: &aws_sdk_route53::Client,
    zone_id: &str,
    host: &str,
) -> Option<(String, String)> {
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .send()
        .await
        .ok()?;
    out.resource_record_sets().iter().find_map(|r| {
        let a = r.alias_target()?;
        (r.name().trim_end_matches('.') == host).then(|| {
            (
                a.dns_name().trim_end_matches('.').to_ascii_lowercase(),
                a.hosted_zone_id().to_owned(),
            )
        })
    })
}

pub fn operator(ns: &str) -> Operator {
    Operator::start(&Options {
        kubeconfig: &support::env().operator_kubeconfig,
        namespace: ns,
        lease_name: "globalingress-lb",
        extra: &[],
    })
}

pub async fn condition(
    api: &Api<GlobalIngress>,
    name: &str,
    type_: &str,
) -> Option<(String, String)> {
    let gi = api.get(name).await.ok()?;
    let c = find(&gi.status?.conditions, type_)?.clone();
    Some((c.status, c.reason))
}

#[tokio::test]
async fn an_internal_nlb_registers_the_spokes_ready_endpoints_and_is_published_as_alias() {
    let Setup {
        spoke,
        ns,
        elb,
        vpc,
        spoke_name,
        app,
        zone,
        api,
        ..
    } = setup("lb-nlb", "ClusterIP").await;
    set_endpoints(
        &spoke,
        &app,
        &[
            ("10.0.1.10", true, false),
            ("10.0.1.11", true, false),
            ("10.0.1.12", false, false),
            ("10.0.1.13", true, true),
        ],
    )
    .await;
    let host = format!("web.{}", zone.domain);
    let targets = json!([provisioned(
        &spoke_name,
        &app,
        json!({ "mode": "Provision", "type": "NLB", "scheme": "Internal", "targetType": "IP" })
    )]);
    api.create(
        &PostParams::default(),
        &gi(&ns, "web", &zone.name, &host, targets),
    )
    .await
    .unwrap();
    let op = operator(&ns);
    let owner = format!("{ns}/web");

    // One internal NLB on the internal subnets, a TCP listener on 80 to one IP target group
    // holding exactly the ready, not terminating endpoints on the target port.
    let found = eventually("the load balancer with its registrations", WAIT, || async {
        let found = network::owned_by(&elb, &owner).await;
        let tg = found.target_groups.values().next()?;
        let registered = network::registered(&elb, tg).await;
        (found.load_balancers.len() == 1 && !registered.is_empty()).then_some((found, registered))
    })
    .await;
    let (owned, registered) = found;
    assert_eq!(
        registered,
        BTreeSet::from(["10.0.1.10:8080".to_owned(), "10.0.1.11:8080".to_owned()])
    );
    let lb = owned.load_balancers.values().next().unwrap();
    assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internal"));
    assert_eq!(lb.r#type().map(|t| t.as_str()), Some("network"));
    let subnets: BTreeSet<String> = lb
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id().map(str::to_owned))
        .collect();
    assert_eq!(subnets, vpc.internal.iter().cloned().collect());
    assert_eq!(owned.target_groups.len(), 1);
    let tg = owned.target_groups.values().next().unwrap();
    assert_eq!(tg.target_type().map(|t| t.as_str()), Some("ip"));
    assert_eq!(tg.vpc_id(), Some(vpc.id.as_str()));
    assert_eq!(owned.listeners.len(), 1);
    assert_eq!(owned.listeners[0].port(), Some(80));
    assert_eq!(
        owned.listeners[0].default_actions()[0].target_group_arn(),
        tg.target_group_arn()
    );
    assert!(
        owned.owners.values().all(|o| o == "test-hub"),
        "{:?}",
        owned.owners
    );

    // The record is an ALIAS to it, and the status says so.
    let dns = lb.dns_name().unwrap().to_ascii_lowercase();
    let published = eventually("the ALIAS record", WAIT, || async {
        alias(&zone.r53, &zone.zone_id, &host).await
    })
    .await;
    assert_eq!(published, (dns.clone(), MOTO_LB_ZONE.to_owned()));
    let status = eventually("LoadBalancersReady", WAIT, || async {
        let gi = api.get("web").await.ok()?;
        let status = gi.status?;
        let c = find(&status.conditions, "LoadBalancersReady")?;
        (c.status == "True").then_some(status)
    })
    .await;
    let t = &status.targets[0];
    let lbs = t
        .load_balancer
        .as_ref()
        .expect("status.targets[0].loadBalancer");
    assert_eq!(lbs.dns_name.as_deref(), Some(dns.as_str()));
    assert_eq!(lbs.arn.as_deref(), lb.load_balancer_arn());
    assert_eq!(lbs.hosted_zone_id.as_deref(), Some(MOTO_LB_ZONE));
    assert_eq!(lbs.state.as_deref(), Some("active"));
    assert_eq!(lbs.registered_targets, Some(2));
    assert_eq!(status.load_balancers.as_deref(), Some("1/1"));
    let wide = support::kubectl_hub(&["-n", &ns, "get", "gi", "web", "-o", "wide"]);
    assert!(wide.contains("LBS") && wide.contains("1/1"), "{wide}");

    // The slice scales up and one endpoint starts terminating: the registrations follow.
    set_endpoints(
        &spoke,
        &app,
        &[
            ("10.0.1.10", true, true),
            ("10.0.1.11", true, false),
            ("10.0.1.14", true, false),
            ("10.0.1.15", true, false),
        ],
    )
    .await;
    let want = BTreeSet::from([
        "10.0.1.11:8080".to_owned(),
        "10.0.1.14:8080".to_owned(),
        "10.0.1.15:8080".to_owned(),
    ]);
    eventually("registrations follow the slice up", WAIT, || async {
        (network::registered(&elb, tg).await == want).then_some(())
    })
    .await;
    // ... and down.
    set_endpoints(&spoke, &app, &[("10.0.1.15", true, false)]).await;
    let want = BTreeSet::from(["10.0.1.15:8080".to_owned()]);
    eventually("registrations follow the slice down", WAIT, || async {
        (network::registered(&elb, tg).await == want).then_some(())
    })
    .await;
    let created = op
        .metric("globalingress_elb_resource_changes_total{resource=\"loadbalancer\",action=\"created\"}")
        .await;
    assert_eq!(created, 1.0, "one load balancer created, once");

    // Deletion: records first, then the load balancer and target group.
    api.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("GlobalIngress gone", WAIT, || async {
        api.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(alias(&zone.r53, &zone.zone_id, &host).await, None);
    let left = network::owned_by(&elb, &owner).await;
    assert!(
        left.load_balancers.is_empty() && left.target_groups.is_empty(),
        "left behind: {:?} {:?}",
        left.load_balancers.keys(),
        left.target_groups.keys()
    );
    drop(op);
}

#[tokio::test]
async fn an_internet_facing_alb_registers_the_spokes_nodes_on_the_node_port() {
    let Setup {
        spoke,
        ns,
        config,
        elb,
        vpc,
        spoke_name,
        app,
        zone,
        api,
        ..
    } = setup("lb-alb", "NodePort").await;
    let ids = network::instances(&config, &vpc.public[0], 3).await;
    assert_eq!(ids.len(), 3);
    // Three nodes on those instances: two Ready, one NotReady.
    let nodes: Api<Node> = Api::all(spoke.clone());
    let mut node_names = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let name = support::unique_name("node");
        let node: Node = serde_json::from_value(json!({
            "metadata": { "name": name },
            "spec": { "providerID": format!("aws:///{REGION}a/{id}") }
        }))
        .unwrap();
        nodes.create(&PostParams::default(), &node).await.unwrap();
        let ready = if i < 2 { "True" } else { "False" };
        nodes
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": { "conditions": [
                    { "type": "Ready", "status": ready, "reason": "Test", "message": "test",
                      "lastHeartbeatTime": "2026-12-01T00:00:00Z",
                      "lastTransitionTime": "2026-12-01T00:00:00Z" }
                ] } })),
            )
            .await
            .unwrap();
        node_names.push(name);
    }
    set_endpoints(&spoke, &app, &[("10.0.1.10", true, false)]).await;
    let node_port = Api::<Service>::namespaced(spoke.clone(), &app)
        .get("web")
        .await
        .unwrap()
        .spec
        .unwrap()
        .ports
        .unwrap()[0]
        .node_port
        .expect("a NodePort");
    let host = format!("shop.{}", zone.domain);
    let targets = json!([provisioned(
        &spoke_name,
        &app,
        json!({ "mode": "Provision", "type": "ALB", "scheme": "InternetFacing",
                "targetType": "Instance" })
    )]);
    api.create(
        &PostParams::default(),
        &gi(&ns, "shop", &zone.name, &host, targets),
    )
    .await
    .unwrap();
    let op = operator(&ns);
    let owner = format!("{ns}/shop");

    // Our nodes may share spoke-a with other tests' nodes: only ours are in this VPC, but every
    // Ready node of the spoke is registered. Check ours are exactly the Ready ones.
    let mine = |r: &BTreeSet<String>| -> BTreeSet<String> {
        r.iter()
            .filter(|t| ids.iter().any(|id| t.starts_with(id.as_str())))
            .cloned()
            .collect()
    };
    let want: BTreeSet<String> = ids[..2]
        .iter()
        .map(|id| format!("{id}:{node_port}"))
        .collect();
    let owned = eventually("the ALB with our Ready nodes", WAIT, || async {
        let owned = network::owned_by(&elb, &owner).await;
        let tg = owned.target_groups.values().next()?;
        (mine(&network::registered(&elb, tg).await) == want).then_some(owned)
    })
    .await;
    let lb = owned.load_balancers.values().next().unwrap();
    assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internet-facing"));
    assert_eq!(lb.r#type().map(|t| t.as_str()), Some("application"));
    assert_eq!(
        lb.security_groups(),
        std::slice::from_ref(&vpc.security_group)
    );
    let tg = owned.target_groups.values().next().unwrap();
    assert_eq!(tg.target_type().map(|t| t.as_str()), Some("instance"));
    assert_eq!(tg.protocol().map(|p| p.as_str()), Some("HTTP"));
    assert_eq!(
        owned.listeners[0].protocol().map(|p| p.as_str()),
        Some("HTTP")
    );
    let published = eventually("the ALIAS record", WAIT, || async {
        alias(&zone.r53, &zone.zone_id, &host).await
    })
    .await;
    assert_eq!(published.0, lb.dns_name().unwrap().to_ascii_lowercase());

    // A node goes NotReady: it is deregistered.
    nodes
        .patch_status(
            &node_names[0],
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "conditions": [
                { "type": "Ready", "status": "False", "reason": "Test", "message": "test",
                  "lastHeartbeatTime": "2026-12-01T00:00:00Z",
                  "lastTransitionTime": "2026-12-01T00:00:01Z" }
            ] } })),
        )
        .await
        .unwrap();
    let want = BTreeSet::from([format!("{}:{node_port}", ids[1])]);
    eventually("the NotReady node deregistered", WAIT, || async {
        (mine(&network::registered(&elb, tg).await) == want).then_some(())
    })
    .await;
    for name in &node_names {
        let _ = nodes.delete(name, &DeleteParams::default()).await;
    }
    api.delete("shop", &DeleteParams::default()).await.unwrap();
    eventually("GlobalIngress gone", WAIT, || async {
        api.get_opt("shop").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(
        network::owned_by(&elb, &owner)
            .await
            .load_balancers
            .is_empty()
    );
    drop(op);
}

#[tokio::test]
async fn a_scheme_change_replaces_the_load_balancer_with_no_moment_without_records() {
    let Setup {
        spoke,
        ns,
        elb,
        spoke_name,
        app,
        zone,
        api,
        ..
    } = setup("lb-replace", "ClusterIP").await;
    set_endpoints(&spoke, &app, &[("10.0.2.10", true, false)]).await;
    let host = format!("api.{}", zone.domain);
    let targets = json!([provisioned(
        &spoke_name,
        &app,
        json!({ "mode": "Provision", "type": "NLB", "scheme": "Internal" })
    )]);
    api.create(
        &PostParams::default(),
        &gi(&ns, "api", &zone.name, &host, targets),
    )
    .await
    .unwrap();
    let op = operator(&ns);
    let owner = format!("{ns}/api");
    let first = eventually("the internal load balancer published", WAIT, || async {
        alias(&zone.r53, &zone.zone_id, &host).await
    })
    .await;

    // Watch the zone the whole time the scheme changes: the host never lacks its ALIAS.
    let watcher = {
        let r53 = zone.r53.clone();
        let (zone_id, host) = (zone.zone_id.clone(), host.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..600 {
                let now = alias(&r53, &zone_id, &host).await;
                if seen.last() != Some(&now) {
                    seen.push(now);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            seen
        })
    };
    api.patch(
        "api",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "targets": [provisioned(
            &spoke_name,
            &app,
            json!({ "mode": "Provision", "type": "NLB", "scheme": "InternetFacing" })
        )] } })),
    )
    .await
    .unwrap();
    let second = eventually(
        "the internet-facing load balancer published",
        WAIT,
        || async {
            alias(&zone.r53, &zone.zone_id, &host)
                .await
                .filter(|a| *a != first)
        },
    )
    .await;
    // The old one stays for the grace period after the records left it (resolvers still hold
    // the old ALIAS for its TTL): 1 s in tests, so it is still there now.
    let both = network::owned_by(&elb, &owner).await;
    assert_eq!(
        both.load_balancers.len(),
        2,
        "deleted before its grace period"
    );
    let owned = eventually("the old load balancer deleted", WAIT, || async {
        let owned = network::owned_by(&elb, &owner).await;
        (owned.load_balancers.len() == 1 && owned.target_groups.len() == 1).then_some(owned)
    })
    .await;
    let lb = owned.load_balancers.values().next().unwrap();
    assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internet-facing"));
    assert_eq!(second.0, lb.dns_name().unwrap().to_ascii_lowercase());
    watcher.abort();
    let seen = watcher.await.unwrap_or_default();
    assert!(
        seen.iter().all(Option::is_some),
        "a moment without the ALIAS: {seen:?}"
    );
    let events = support::kubectl_hub(&["-n", &ns, "get", "events", "-o", "json"]);
    assert!(
        events.contains("LoadBalancerReplaced"),
        "no LoadBalancerReplaced Event"
    );
    assert!(
        events.contains("LoadBalancerDeleted"),
        "no LoadBalancerDeleted Event"
    );
    drop(op);
}

#[tokio::test]
async fn a_spoke_in_a_second_account_gets_its_load_balancer_there() {
    let hub = support::kube(Cluster::Hub).await;
    let spoke = support::kube(Cluster::SpokeA).await;
    support::install_crds(&hub).await;
    let ns = support::namespace(&hub, "lb-account").await;
    let _ = support::spoke_a(&hub, &ns).await;
    const OTHER: &str = "333333333333";
    let role = moto::spoke_role(OTHER);
    let other = network::config(Some(&moto::admin_role(OTHER))).await;
    let vpc = network::vpc(&other).await;
    let spoke_name = network::spoke(&hub, &ns, "other", vpc.spec(OTHER, Some(&role))).await;
    let app = backend(&spoke, "ClusterIP").await;
    set_endpoints(&spoke, &app, &[("10.0.3.10", true, false)]).await;
    let zone = support::route53_zone(Some((&hub, &ns)), "lb").await;
    let host = format!("pay.{}", zone.domain);
    let api: Api<GlobalIngress> = Api::namespaced(hub.clone(), &ns);
    let targets = json!([provisioned(
        &spoke_name,
        &app,
        json!({ "mode": "Provision" })
    )]);
    api.create(
        &PostParams::default(),
        &gi(&ns, "pay", &zone.name, &host, targets),
    )
    .await
    .unwrap();
    let op = operator(&ns);
    let owner = format!("{ns}/pay");
    let there = elbv2::Client::new(&other);
    let owned = eventually("the load balancer in the second account", WAIT, || async {
        let owned = network::owned_by(&there, &owner).await;
        (owned.load_balancers.len() == 1).then_some(owned)
    })
    .await;
    let lb = owned.load_balancers.values().next().unwrap();
    assert!(
        lb.load_balancer_arn()
            .unwrap()
            .contains(&format!(":{OTHER}:")),
        "{:?}",
        lb.load_balancer_arn()
    );
    let hubs = network::owned_by(&elbv2::Client::new(&network::config(None).await), &owner).await;
    assert!(
        hubs.load_balancers.is_empty(),
        "nothing in the hub's account"
    );
    let published = eventually("the ALIAS record", WAIT, || async {
        alias(&zone.r53, &zone.zone_id, &host).await
    })
    .await;
    assert_eq!(published.0, lb.dns_name().unwrap().to_ascii_lowercase());
    api.delete("pay", &DeleteParams::default()).await.unwrap();
    eventually("deleted in the second account", WAIT, || async {
        network::owned_by(&there, &owner)
            .await
            .load_balancers
            .is_empty()
            .then_some(())
    })
    .await;
    drop(op);
}
