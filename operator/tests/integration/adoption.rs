//! Adopt, by what the spoke already has: a Service of type LoadBalancer, an Ingress (the ALB
//! Ingress option) and a Gateway (`status.addresses`) whose hostnames belong to load balancers
//! in the spoke's account become ALIAS records with those load balancers' hosted zone; a
//! hostname no load balancer there has stays a CNAME. The adopted load balancers are never
//! modified.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::load_balancers::{MOTO_LB_ZONE, WAIT, alias, gi, operator};
use crate::support;
use crate::support::network;
use crate::support::network::{Setup, set_endpoints, setup};
use crate::support::operator::eventually;

/// The Gateway API's Gateway kind, as far as this test needs it (status.addresses).
async fn install_gateway_crd(spoke: &kube::Client) {
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": { "name": "gateways.gateway.networking.k8s.io",
                      // As the upstream CRDs carry it (a k8s.io group needs it).
                      "annotations": { "api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/2466" } },
        "spec": {
            "group": "gateway.networking.k8s.io",
            "names": { "kind": "Gateway", "plural": "gateways", "singular": "gateway", "listKind": "GatewayList" },
            "scope": "Namespaced",
            "versions": [{ "name": "v1", "served": true, "storage": true,
                "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } }]
        }
    }))
    .unwrap();
    let api: Api<CustomResourceDefinition> = Api::all(spoke.clone());
    api.patch(
        "gateways.gateway.networking.k8s.io",
        &PatchParams::apply("globalingress-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        kube::runtime::wait::await_condition(
            api,
            "gateways.gateway.networking.k8s.io",
            kube::runtime::wait::conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
}

fn adopted(
    name: &str,
    spoke: &str,
    app: &str,
    service: &str,
    adopt: serde_json::Value,
) -> serde_json::Value {
    let mut lb = json!({ "mode": "Adopt" });
    if !adopt.is_null() {
        lb["adopt"] = adopt;
    }
    json!({ "name": name, "weight": 1, "clusterRef": spoke,
            "backend": { "service": { "namespace": app, "name": service, "port": 80 } },
            "loadBalancer": lb })
}

/// The CNAME value of `host`, if it has one.
async fn cname(r53: &aws_sdk_route53::Client, zone_id: &str, host: &str) -> Option<String> {
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .send()
        .await
        .ok()?;
    out.resource_record_sets().iter().find_map(|r| {
        (r.name().trim_end_matches('.') == host && r.r#type().as_str() == "CNAME")
            .then(|| r.resource_records().first().map(|v| v.value().to_owned()))
            .flatten()
    })
}

#[tokio::test]
async fn adopted_services_ingresses_and_gateways_become_alias_records() {
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
    } = setup("adopt", "LoadBalancer").await;
    install_gateway_crd(&spoke).await;
    // Three load balancers another tool made in the spoke's account.
    let mut dns = Vec::new();
    for prefix in ["svc", "ing", "gw"] {
        let lb =
            network::foreign_load_balancer(&elb, &support::unique_name(prefix), &vpc.internal, &[])
                .await;
        dns.push(lb.dns_name().unwrap().to_ascii_lowercase());
    }
    set_endpoints(&spoke, &app, &[("10.0.5.10", true, false)]).await;
    let services: Api<Service> = Api::namespaced(spoke.clone(), &app);
    services
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "status": { "loadBalancer": { "ingress": [{ "hostname": dns[0] }] } } }),
            ),
        )
        .await
        .unwrap();
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": { "name": "web-alb" },
        "spec": { "defaultBackend": { "service": { "name": "web", "port": { "number": 80 } } } }
    }))
    .unwrap();
    let ingresses: Api<Ingress> = Api::namespaced(spoke.clone(), &app);
    ingresses
        .create(&PostParams::default(), &ingress)
        .await
        .unwrap();
    ingresses
        .patch_status(
            "web-alb",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "status": { "loadBalancer": { "ingress": [{ "hostname": dns[1] }] } } }),
            ),
        )
        .await
        .unwrap();
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway");
    let gateways: Api<DynamicObject> =
        Api::namespaced_with(spoke.clone(), &app, &ApiResource::from_gvk(&gvk));
    let gateway: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": { "name": "web-gw" },
        "spec": { "gatewayClassName": "aws", "listeners": [{ "name": "http", "port": 80, "protocol": "HTTP" }] }
    }))
    .unwrap();
    gateways
        .create(&PostParams::default(), &gateway)
        .await
        .unwrap();
    gateways
        .patch_status(
            "web-gw",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "status": { "addresses": [{ "type": "Hostname", "value": dns[2] }] } }),
            ),
        )
        .await
        .unwrap();
    // A Service whose load balancer is not in the spoke's account.
    let other: Service = serde_json::from_value(json!({
        "metadata": { "name": "legacy" },
        "spec": { "type": "LoadBalancer", "ports": [{ "port": 80, "targetPort": 8080 }] }
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &other)
        .await
        .unwrap();
    services
        .patch_status(
            "legacy",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "loadBalancer": { "ingress": [{ "hostname": "lb.legacy.example.org" }] } } })),
        )
        .await
        .unwrap();

    let hosts: Vec<String> = ["svc", "ing", "gw", "legacy"]
        .iter()
        .map(|h| format!("{h}.{}", zone.domain))
        .collect();
    let targets = [
        adopted("svc", &spoke_name, &app, "web", serde_json::Value::Null),
        adopted(
            "ing",
            &spoke_name,
            &app,
            "web",
            json!({ "kind": "Ingress", "name": "web-alb" }),
        ),
        adopted(
            "gw",
            &spoke_name,
            &app,
            "web",
            json!({ "kind": "Gateway", "name": "web-gw" }),
        ),
        adopted(
            "legacy",
            &spoke_name,
            &app,
            "legacy",
            serde_json::Value::Null,
        ),
    ];
    for (host, target) in hosts.iter().zip(targets) {
        let name = host.split('.').next().unwrap().to_owned();
        api.create(
            &PostParams::default(),
            &gi(&ns, &name, &zone.name, host, json!([target])),
        )
        .await
        .unwrap();
    }
    let op = operator(&ns);
    for (host, dns) in hosts.iter().zip(&dns) {
        let published = eventually(&format!("the ALIAS of {host}"), WAIT, || async {
            alias(&zone.r53, &zone.zone_id, host).await
        })
        .await;
        assert_eq!(published, (dns.clone(), MOTO_LB_ZONE.to_owned()), "{host}");
    }
    let plain = eventually("the CNAME of the legacy host", WAIT, || async {
        cname(&zone.r53, &zone.zone_id, &hosts[3]).await
    })
    .await;
    assert_eq!(plain.trim_end_matches('.'), "lb.legacy.example.org");
    assert_eq!(alias(&zone.r53, &zone.zone_id, &hosts[3]).await, None);
    // Adopt never modifies what it adopts: no listener, no tag of ours on them.
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    for lb in lbs
        .load_balancers()
        .iter()
        .filter(|l| dns.contains(&l.dns_name().unwrap_or_default().to_ascii_lowercase()))
    {
        let arn = lb.load_balancer_arn().unwrap();
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(arn)
            .send()
            .await
            .unwrap();
        assert!(listeners.listeners().is_empty());
        let tags = elb.describe_tags().resource_arns(arn).send().await.unwrap();
        assert!(tags.tag_descriptions()[0].tags().is_empty());
    }
    drop(op);
}
