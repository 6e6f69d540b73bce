//! The shipped IAM policies, enforced: a moto of this test's own checks every request against the
//! signer's policies (`support::moto`). The operator signs with a user holding only
//! `terraform/policies/hub.json` and acts in the spoke account through `globalingress-spoke`,
//! which holds only `spoke.json`. It provisions an internal NLB with an ACM certificate (TLS
//! listener) and a PrivateLink endpoint service there, then removes all of it; first without one
//! permission, to see that a missing one fails and says so.
//!
//! Every other test runs under the same enforcement on the environment's moto (with the whole
//! policies, which no test may change there: hence a moto of its own here); the phase
//! `iam-report` holds all their calls against the policies. Records go to Knot here.

use std::collections::BTreeSet;
use std::time::Duration;

use globalingress::api::GlobalIngress;
use globalingress::api::condition::find;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

use crate::load_balancers::{gi, provisioned};
use crate::support::moto::{EnforcingMoto, admin_role, spoke_role};
use crate::support::network::{self, REGION, backend, set_endpoints};
use crate::support::operator::{Operator, Options, eventually};
use crate::support::proxy::FaultProxy;
use crate::support::{self, Cluster, env};

const WAIT: Duration = Duration::from_secs(90);
const SPOKE_ACCOUNT: &str = "222222222222";

fn condition(gi: &GlobalIngress, kind: &str) -> Option<(String, String, String)> {
    let c = find(&gi.status.as_ref()?.conditions, kind)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test]
async fn the_shipped_policies_are_enough_to_provision_tls_and_privatelink_and_to_clean_up() {
    let moto = EnforcingMoto::start().await;
    // Between the operator and moto: what the operator asked for, operation by operation.
    let proxy = FaultProxy::start_with_upstream(&moto.url);
    let spoke_admin = moto
        .admin_config(REGION, Some(&admin_role(SPOKE_ACCOUNT)))
        .await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&spoke_admin);
    let vpc = network::vpc(&spoke_admin).await;

    let hub = support::kube(Cluster::Hub).await;
    let spoke = support::kube(Cluster::SpokeA).await;
    support::install_crds(&hub).await;
    let ns = support::namespace(&hub, "iam").await;
    let _ = support::spoke_a(&hub, &ns).await;
    let zone = crate::controller::knot_zone(&hub, &ns).await;
    let spoke_name = network::spoke(
        &hub,
        &ns,
        "iam",
        vpc.spec(SPOKE_ACCOUNT, Some(&spoke_role(SPOKE_ACCOUNT))),
    )
    .await;
    let app = backend(&spoke, "ClusterIP").await;
    set_endpoints(&spoke, &app, &[("10.0.1.10", true, false)]).await;

    // First without one permission the provisioning needs.
    let missing = "elasticloadbalancing:CreateTargetGroup";
    moto.set_spoke_policy(SPOKE_ACCOUNT, Some(missing)).await;

    let host = format!(
        "{}.{}",
        support::unique_name("web"),
        env().dns_zone.to_string().trim_end_matches('.')
    );
    let mut target = provisioned(
        &spoke_name,
        &app,
        json!({ "mode": "Provision", "type": "NLB", "scheme": "Internal" }),
    );
    // A consumer endpoint in the spoke's own VPC too: the endpoint calls are the spoke role's.
    target["privateLink"] = json!({
        "enabled": true,
        "allowedPrincipals": ["111122223333"],
        "consumers": [{ "vpcId": vpc.id, "subnets": vpc.internal }]
    });
    let mut object = gi(&ns, "web", &zone, &host, json!([target]));
    object.spec.tls = Some(serde_json::from_value(json!({ "mode": "ACM" })).unwrap());
    let api: Api<GlobalIngress> = Api::namespaced(hub.clone(), &ns);
    api.create(&PostParams::default(), &object).await.unwrap();
    let mut op = Operator::start_with_aws_keys(
        &Options {
            kubeconfig: &env().operator_kubeconfig,
            namespace: &ns,
            lease_name: "iam",
            extra: &[
                "--aws-endpoint-url",
                &proxy.url,
                "--spoke-check-interval",
                "2s",
            ],
        },
        (&moto.operator.0, &moto.operator.1),
    );
    op.refusals_expected = true;

    // (moto's ELBv2 denial carries its code where the SDK does not look for it: the message
    // says "no error code" here, "AccessDenied: ..." at AWS.)
    let (_, reason, message) = eventually("the refusal reported", WAIT, || async {
        let c = condition(&api.get("web").await.ok()?, "LoadBalancersReady")?;
        (c.0 == "False" && c.2.contains("CreateTargetGroup")).then_some(c)
    })
    .await;
    println!("without {missing}: LoadBalancersReady=False {reason}: {message}");
    assert_eq!(reason, "ProvisioningFailed");
    let denied = proxy.requests().await;
    assert!(
        denied
            .iter()
            .any(|r| r.op == "CreateTargetGroup" && r.status == Some(403)),
        "moto refused CreateTargetGroup with 403"
    );
    assert!(
        !denied
            .iter()
            .any(|r| r.status == Some(403) && r.op != "CreateTargetGroup"),
        "only the missing permission is refused: {:?}",
        denied
            .iter()
            .filter(|r| r.status == Some(403))
            .map(|r| &r.op)
            .collect::<Vec<_>>()
    );

    // The whole policy: everything gets made.
    moto.set_spoke_policy(SPOKE_ACCOUNT, None).await;
    let status = eventually(
        "load balancer, certificate and endpoint service",
        WAIT,
        || async {
            let gi = api.get("web").await.ok()?;
            let lb = condition(&gi, "LoadBalancersReady")?;
            let cert = condition(&gi, "CertificatesReady")?;
            let target = gi.status.as_ref()?.targets.first()?.clone();
            let service = target.private_link.as_ref()?.endpoint_service_name.clone();
            (lb.0 == "True" && cert.0 == "True" && service.is_some()).then_some(target)
        },
    )
    .await;
    assert!(status.certificate_arn.is_some(), "{status:?}");
    let owner = format!("{ns}/web");
    let owned = network::owned_by(&elb, &owner).await;
    assert_eq!(owned.load_balancers.len(), 1, "{owned:?}");
    eventually("the consumer endpoint", WAIT, || async {
        let pl = api
            .get("web")
            .await
            .ok()?
            .status?
            .targets
            .first()?
            .private_link
            .clone()?;
        (!pl.endpoints.is_empty()).then_some(())
    })
    .await;
    // The backend moves to another pod: registered and deregistered with the spoke role's rights.
    set_endpoints(&spoke, &app, &[("10.0.1.11", true, false)]).await;
    eventually("the new pod registered, the old one gone", WAIT, || async {
        let owned = network::owned_by(&elb, &owner).await;
        let tg = owned.target_groups.values().next()?.clone();
        let targets = network::registered(&elb, &tg).await;
        (targets.len() == 1 && targets.iter().all(|t| t.starts_with("10.0.1.11:"))).then_some(())
    })
    .await;

    // Deleted: everything of ours goes, with the same rights.
    api.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the GlobalIngress gone", WAIT, || async {
        api.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    let left = network::owned_by(&elb, &owner).await;
    assert!(
        left.load_balancers.is_empty() && left.target_groups.is_empty(),
        "left behind: {left:?}"
    );

    // What the operator asked for, and that nothing was refused once the policy was whole.
    let requests = proxy.requests().await;
    let refused_after: Vec<_> = requests
        .iter()
        .skip_while(|r| r.status != Some(403))
        .filter(|r| r.status == Some(403) && r.op != "CreateTargetGroup")
        .map(|r| r.op.clone())
        .collect();
    assert!(
        refused_after.is_empty(),
        "refused besides {missing}: {refused_after:?} (moto log {})",
        moto.log().display()
    );
    let seen: BTreeSet<String> = requests.iter().map(|r| r.op.clone()).collect();
    println!("operations the operator made ({}): {seen:?}", seen.len());
    // The spoke policy's actions this scenario did not need (other paths: listener changes,
    // retained resources, alarms, connection requests moto does not implement).
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../terraform/policies/spoke.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let unused: BTreeSet<&str> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap())
        .filter_map(|a| a.as_str()?.split_once(':').map(|(_, op)| op))
        .filter(|op| !seen.contains(*op))
        .collect();
    println!(
        "spoke.json actions this scenario did not use ({}): {unused:?}",
        unused.len()
    );
    for op in [
        "CreateVpcEndpoint",
        "DeleteVpcEndpoints",
        "DeregisterTargets",
    ] {
        assert!(seen.contains(op), "{op} not made: {seen:?}");
    }
    assert!(
        seen.contains("CreateVpcEndpointServiceConfiguration"),
        "{seen:?}"
    );
    assert!(seen.contains("RequestCertificate"), "{seen:?}");
    assert!(seen.contains("AssumeRole"), "{seen:?}");
}
