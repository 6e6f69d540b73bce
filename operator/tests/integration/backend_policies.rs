//! The backend border (`spec.backendNetworkPolicy`): the operator writes, in the spoke, a
//! NetworkPolicy admitting the backend's pods only from the provisioned load balancer's subnets
//! (their CIDRs read from EC2) on the target port; it leaves a same-named policy of somebody
//! else's alone, and removes its own when turned off and with the object. The hub's grant in the
//! spoke is the spoke chart's with `networkPolicies.enabled` (any refusal fails the test).

use std::collections::BTreeSet;
use std::time::Duration;

use globalingress::api::GlobalIngress;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::load_balancers::{gi, provisioned};
use crate::support::network::{Setup, set_endpoints, setup};
use crate::support::operator::{Operator, Options, eventually};
use crate::support::{self, env};

const WAIT: Duration = Duration::from_secs(60);

fn operator(ns: &str) -> Operator {
    Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: ns,
        lease_name: "backendpolicy",
        extra: &[],
    })
}

async fn policy_name(api: &Api<GlobalIngress>) -> Option<String> {
    let status = api.get("web").await.ok()?.status?;
    status.targets.first()?.backend_policy.clone()
}

#[tokio::test]
async fn the_backend_pods_are_admitted_only_from_the_load_balancer_subnets() {
    let Setup {
        spoke,
        ns,
        vpc,
        spoke_name,
        app,
        zone,
        api,
        config,
        ..
    } = setup("bnp", "ClusterIP").await;
    set_endpoints(&spoke, &app, &[("10.0.1.10", true, false)]).await;
    let mut object = gi(
        &ns,
        "web",
        &zone.name,
        &format!("web.{}", zone.domain),
        json!([provisioned(
            &spoke_name,
            &app,
            json!({ "mode": "Provision", "type": "NLB", "scheme": "Internal" })
        )]),
    );
    object.spec.backend_network_policy = Some(true);
    // Somebody's policy under the name ours will have: left alone, and said so.
    let name = globalingress::model::backend_policy::name(&format!("{ns}/web"), "eu");
    let policies: Api<NetworkPolicy> = Api::namespaced(spoke.clone(), &app);
    policies
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": name, "labels": { "team": "theirs" } },
                "spec": { "podSelector": {}, "policyTypes": ["Ingress"] }
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
    let _op = operator(&ns);
    let conflict = eventually("the conflict reported", WAIT, || async {
        crate::failover::event_reasons(&support::kube(support::Cluster::Hub).await, &ns)
            .await
            .into_iter()
            .find(|(r, _)| r == "BackendPolicyConflict")
    })
    .await;
    assert!(conflict.1.contains("is not ours"), "{conflict:?}");
    let theirs = policies.get(&name).await.unwrap();
    assert_eq!(
        theirs
            .metadata
            .labels
            .unwrap()
            .get("team")
            .map(String::as_str),
        Some("theirs"),
        "a foreign policy was changed"
    );

    // Theirs removed: ours is written, from the subnets' real CIDRs.
    policies
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    let at = eventually("ours in the status", WAIT, || policy_name(&api)).await;
    assert_eq!(at, format!("{app}/{name}"));
    let ours = policies.get(&name).await.unwrap();
    let spec = ours.spec.clone().unwrap();
    assert_eq!(
        spec.pod_selector.unwrap().match_labels.unwrap(),
        std::collections::BTreeMap::from([("app".to_owned(), "web".to_owned())])
    );
    assert_eq!(spec.policy_types, Some(vec!["Ingress".to_owned()]));
    let rule = &spec.ingress.unwrap()[0];
    let from: BTreeSet<String> = rule
        .from
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.ip_block.as_ref().unwrap().cidr.clone())
        .collect();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let subnets = ec2
        .describe_subnets()
        .set_subnet_ids(Some(vpc.internal.clone()))
        .send()
        .await
        .unwrap();
    let expected: BTreeSet<String> = subnets
        .subnets()
        .iter()
        .filter_map(|s| s.cidr_block().map(str::to_owned))
        .collect();
    assert_eq!(from, expected, "the internal NLB's subnets");
    let ports: Vec<_> = rule
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| p.port.clone())
        .collect();
    assert_eq!(
        ports,
        vec![Some(
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080)
        )]
    );

    // Turned off: ours goes.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "backendNetworkPolicy": false } })),
    )
    .await
    .unwrap();
    eventually("ours removed when turned off", WAIT, || async {
        let gone = policies.get_opt(&name).await.ok()?.is_none();
        (gone && policy_name(&api).await.is_none()).then_some(())
    })
    .await;

    // On again, then the object deleted: ours goes with it.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "backendNetworkPolicy": true } })),
    )
    .await
    .unwrap();
    eventually("ours back", WAIT, || policy_name(&api)).await;
    assert!(policies.get_opt(&name).await.unwrap().is_some());
    api.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the GlobalIngress and its policy gone", WAIT, || async {
        let gone = api.get_opt("web").await.ok()?.is_none()
            && policies.get_opt(&name).await.ok()?.is_none();
        gone.then_some(())
    })
    .await;
}
