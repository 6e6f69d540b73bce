//! A provisioned load balancer changed in place: the spoke's subnets and security groups
//! (SetSubnets, SetSecurityGroups), the target group's health check (ModifyTargetGroup), and the
//! listeners as TLS comes and goes (ModifyListener, CreateListener, DeleteListener) — the same
//! load balancer, target group and port-80 listener throughout.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use globalingress::api::SpokeCluster;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::load_balancers::{WAIT, alias, gi, operator, provisioned};
use crate::support::network::{self, Setup, set_endpoints, setup};
use crate::support::operator::eventually;

/// The listener ports of `owned`, each with what it does: `forward`, `redirect <port>` or the
/// certificate it serves.
fn listeners(owned: &network::Owned) -> BTreeMap<i32, (String, String)> {
    owned
        .listeners
        .iter()
        .map(|l| {
            let action = l.default_actions().first();
            let what = match action.and_then(|a| a.redirect_config()) {
                Some(r) => format!("redirect {}", r.port().unwrap_or_default()),
                None => l
                    .certificates()
                    .first()
                    .and_then(|c| c.certificate_arn().map(str::to_owned))
                    .unwrap_or_else(|| "forward".to_owned()),
            };
            (
                l.port().unwrap_or_default(),
                (l.listener_arn().unwrap_or_default().to_owned(), what),
            )
        })
        .collect()
}

#[tokio::test]
async fn subnets_security_groups_health_check_and_listeners_change_in_place() {
    let Setup {
        hub,
        spoke,
        ns,
        elb,
        vpc,
        spoke_name,
        app,
        zone,
        api,
        config,
    } = setup("lb-in-place", "ClusterIP").await;
    set_endpoints(&spoke, &app, &[("10.0.6.10", true, false)]).await;
    let host = format!("moved.{}", zone.domain);
    let lb = json!({ "mode": "Provision", "type": "ALB", "scheme": "Internal" });
    let object = gi(
        &ns,
        "moved",
        &zone.name,
        &host,
        json!([provisioned(&spoke_name, &app, lb)]),
    );
    api.create(&PostParams::default(), &object).await.unwrap();
    let _op = operator(&ns);
    let owner = format!("{ns}/moved");
    let first = eventually("the ALB, published", WAIT, || async {
        alias(&zone.r53, &zone.zone_id, &host).await?;
        let owned = network::owned_by(&elb, &owner).await;
        (owned.load_balancers.len() == 1 && owned.listeners.len() == 1).then_some(owned)
    })
    .await;
    let arn = first
        .load_balancers
        .values()
        .next()
        .unwrap()
        .load_balancer_arn()
        .unwrap()
        .to_owned();
    let tg = first
        .target_groups
        .values()
        .next()
        .unwrap()
        .target_group_arn()
        .unwrap()
        .to_owned();
    let http = listeners(&first)[&80].0.clone();
    // Whatever changes below, it is the same load balancer, target group and port-80 listener.
    let same = |owned: &network::Owned| {
        owned.load_balancers.len() == 1
            && owned
                .load_balancers
                .values()
                .next()
                .and_then(|l| l.load_balancer_arn())
                == Some(arn.as_str())
            && owned
                .target_groups
                .values()
                .next()
                .and_then(|t| t.target_group_arn())
                == Some(tg.as_str())
            && listeners(owned).get(&80).is_some_and(|l| l.0 == http)
    };

    // The spoke's subnets and security groups change: SetSubnets, SetSecurityGroups.
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let group = ec2
        .create_security_group()
        .group_name(crate::support::unique_name("gi-moved"))
        .description("a second group for the load balancer")
        .vpc_id(&vpc.id)
        .send()
        .await
        .expect("CreateSecurityGroup")
        .group_id
        .unwrap();
    let subnets = vec![vpc.internal[0].clone(), vpc.public[1].clone()];
    Api::<SpokeCluster>::all(hub.clone())
        .patch(
            &spoke_name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "aws": {
                "subnets": { "internal": subnets }, "securityGroups": [group] } } })),
        )
        .await
        .unwrap();
    let wanted: BTreeSet<String> = subnets.iter().cloned().collect();
    eventually("the ALB in its new subnets and group", WAIT, || async {
        let owned = network::owned_by(&elb, &owner).await;
        let lb = owned.load_balancers.values().next()?;
        let now: BTreeSet<String> = lb
            .availability_zones()
            .iter()
            .filter_map(|z| z.subnet_id().map(str::to_owned))
            .collect();
        (same(&owned) && now == wanted && lb.security_groups() == [group.clone()]).then_some(())
    })
    .await;

    // The target group's health check: ModifyTargetGroup.
    api.patch(
        "moved",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "healthCheck": { "healthyThreshold": 4 } } })),
    )
    .await
    .unwrap();
    eventually("the health check modified", WAIT, || async {
        let owned = network::owned_by(&elb, &owner).await;
        let tg = owned.target_groups.values().next()?;
        (same(&owned) && tg.healthy_threshold_count() == Some(4)).then_some(())
    })
    .await;

    // TLS on: port 80 becomes the redirect (ModifyListener), 443 serves the certificate; off
    // again: 80 forwards (ModifyListener) and 443 goes (DeleteListener).
    let acm = aws_sdk_acm::Client::new(&config);
    let certificate = acm
        .request_certificate()
        .domain_name(&host)
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .send()
        .await
        .expect("RequestCertificate")
        .certificate_arn
        .unwrap();
    let tls = |tls: serde_json::Value| {
        let api = api.clone();
        async move {
            api.patch(
                "moved",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "tls": tls } })),
            )
            .await
            .unwrap();
        }
    };
    tls(json!({ "mode": "CertificateArn", "certificateArn": certificate })).await;
    eventually(
        "the redirect and the TLS listener",
        Duration::from_secs(60),
        || async {
            let owned = network::owned_by(&elb, &owner).await;
            let now = listeners(&owned);
            (same(&owned)
                && now.len() == 2
                && now.get(&80)?.1 == "redirect 443"
                && now.get(&443)?.1 == certificate)
                .then_some(())
        },
    )
    .await;
    tls(json!({ "mode": "None" })).await;
    eventually("port 80 forwarding alone", WAIT, || async {
        let owned = network::owned_by(&elb, &owner).await;
        let now = listeners(&owned);
        (same(&owned) && now.len() == 1 && now.get(&80)?.1 == "forward").then_some(())
    })
    .await;
}
