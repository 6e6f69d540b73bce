//! PrivateLink against moto's EC2, ELBv2, STS and Route 53: an endpoint service on a target's
//! internal NLB, its principals changed in place (added, removed), acceptance toggled, the
//! private DNS name's verification TXT in the zone, consumers' interface endpoints in a second
//! VPC and in a second account (through its role), a foreign endpoint service untouched, and
//! deletion removing endpoints and service before the NLB. Connection requests are not tested
//! here: moto answers DescribeVpcEndpointConnections and Accept/Reject with HTTP 500 (the
//! deployer's unit tests drive them through an in-memory port).

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2 as ec2;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::load_balancers::{WAIT, gi, operator, provisioned};
use crate::support::moto;
use crate::support::network::{self, Setup, set_endpoints, setup};
use crate::support::operator::eventually;

const OTHER: &str = "210987654321";

/// The endpoint services tagged as `owner`'s: id → configuration.
pub(crate) async fn services_of(
    ec2: &ec2::Client,
    owner: &str,
) -> BTreeMap<String, ec2::types::ServiceConfiguration> {
    ec2.describe_vpc_endpoint_service_configurations()
        .send()
        .await
        .expect("DescribeVpcEndpointServiceConfigurations")
        .service_configurations()
        .iter()
        .filter(|s| {
            s.tags().iter().any(|t| {
                t.key() == Some("globalingress.io/globalingress") && t.value() == Some(owner)
            })
        })
        .map(|s| (s.service_id().unwrap_or_default().to_owned(), s.clone()))
        .collect()
}

async fn principals(ec2: &ec2::Client, id: &str) -> Vec<String> {
    let mut p: Vec<String> = ec2
        .describe_vpc_endpoint_service_permissions()
        .service_id(id)
        .send()
        .await
        .expect("permissions")
        .allowed_principals()
        .iter()
        .filter_map(|p| p.principal().map(str::to_owned))
        .collect();
    p.sort();
    p
}

/// The interface endpoints tagged as `owner`'s, by VPC.
async fn endpoints_of(ec2: &ec2::Client, owner: &str) -> BTreeMap<String, String> {
    ec2.describe_vpc_endpoints()
        .send()
        .await
        .expect("DescribeVpcEndpoints")
        .vpc_endpoints()
        .iter()
        // Deleted endpoints linger in state `deleted` (as at AWS).
        .filter(|e| e.state().is_none_or(|s| s.as_str() != "deleted"))
        .filter(|e| {
            e.tags().iter().any(|t| {
                t.key() == Some("globalingress.io/globalingress") && t.value() == Some(owner)
            })
        })
        .map(|e| {
            (
                e.vpc_id().unwrap_or_default().to_owned(),
                e.service_name().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_endpoint_service_on_the_internal_nlb_with_its_consumers_changed_in_place() {
    let Setup {
        spoke,
        ns,
        elb,
        vpc,
        spoke_name,
        app,
        zone,
        api,
        config,
        ..
    } = setup("pl", "ClusterIP").await;
    set_endpoints(&spoke, &app, &[("10.0.1.10", true, false)]).await;
    let hub_ec2 = ec2::Client::new(&config);
    // A consumer VPC in the hub's account and one in a second account.
    let consumer = network::vpc(&config).await;
    let role = moto::spoke_role(OTHER);
    let other_config = network::config(Some(&moto::admin_role(OTHER))).await;
    let other_ec2 = ec2::Client::new(&other_config);
    let other_vpc = network::vpc(&other_config).await;
    // Someone else's endpoint service, on their own NLB.
    let foreign_lb = network::foreign_load_balancer(
        &elb,
        &crate::support::unique_name("theirs"),
        &vpc.internal,
        &[],
    )
    .await;
    let foreign = hub_ec2
        .create_vpc_endpoint_service_configuration()
        .network_load_balancer_arns(foreign_lb.load_balancer_arn().unwrap_or_default())
        .acceptance_required(false)
        .send()
        .await
        .unwrap()
        .service_configuration
        .unwrap();

    let host = format!("web.{}", zone.domain);
    let private_dns = format!("api.{}", zone.domain);
    let mut target = provisioned(
        &spoke_name,
        &app,
        json!({ "mode": "Provision", "type": "NLB", "scheme": "Internal" }),
    );
    target["privateLink"] = json!({
        "enabled": true,
        "allowedPrincipals": [format!("arn:aws:iam::{OTHER}:role/team/consumer"), "111122223333"],
        "acceptanceRequired": true,
        "privateDnsName": private_dns,
        "consumers": [
            { "vpcId": consumer.id, "subnets": consumer.internal },
            { "vpcId": other_vpc.id, "subnets": other_vpc.internal,
              "accountId": OTHER, "roleArn": role }
        ]
    });
    api.create(
        &PostParams::default(),
        &gi(&ns, "web", &zone.name, &host, json!([target])),
    )
    .await
    .unwrap();
    let op = operator(&ns);
    let owner = format!("{ns}/web");

    // One endpoint service on our NLB, as asked, with both consumers' endpoints.
    let (id, service) = eventually("the endpoint service and its endpoints", WAIT, || async {
        let services = services_of(&hub_ec2, &owner).await;
        let (id, s) = services.into_iter().next()?;
        let mine = endpoints_of(&hub_ec2, &owner).await;
        let theirs = endpoints_of(&other_ec2, &owner).await;
        (mine.get(&consumer.id) == s.service_name.as_ref()
            && theirs.get(&other_vpc.id) == s.service_name.as_ref())
        .then_some((id, s))
    })
    .await;
    let nlb = network::owned_by(&elb, &owner).await;
    let nlb_arn = nlb
        .load_balancers
        .values()
        .next()
        .and_then(|l| l.load_balancer_arn.clone())
        .unwrap();
    assert_eq!(
        service.network_load_balancer_arns(),
        std::slice::from_ref(&nlb_arn)
    );
    assert_eq!(service.acceptance_required(), Some(true));
    assert_eq!(service.private_dns_name(), Some(private_dns.as_str()));
    // Principals as AWS stores them: the IAM path stripped, an account id as its root.
    assert_eq!(
        principals(&hub_ec2, &id).await,
        vec![
            "arn:aws:iam::111122223333:root".to_owned(),
            format!("arn:aws:iam::{OTHER}:role/consumer"),
        ]
    );
    // The verification TXT record (moto asks for `n` = `val`) is in the zone, owned through a
    // registry entry.
    let txt = format!("n.{private_dns}.");
    eventually("the verification record in the zone", WAIT, || async {
        let records = crate::support::zone_records(&zone.r53, &zone.zone_id).await;
        records
            .iter()
            .any(|r| r.contains(&format!("name: \"{txt}\"")) && r.contains("\\\"val\\\""))
            .then_some(())
    })
    .await;
    let gi_status = eventually("status of the endpoint service", WAIT, || async {
        let s = api.get("web").await.ok()?.status?;
        let pl = s.targets.first()?.private_link.clone()?;
        (pl.endpoints.len() == 2).then_some(pl)
    })
    .await;
    assert_eq!(gi_status.service_id.as_deref(), Some(id.as_str()));
    assert_eq!(gi_status.endpoint_service_name, service.service_name);
    assert_eq!(
        gi_status.private_dns_verification.as_deref(),
        Some("verified")
    );
    assert!(
        gi_status
            .message
            .as_deref()
            .is_some_and(|m| m.contains("connection requests unknown")),
        "moto cannot list connections: said, not failed: {gi_status:?}"
    );

    // Principals added and removed, acceptance toggled: in place, the same service.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(json!([
                { "op": "replace", "path": "/spec/targets/0/privateLink/allowedPrincipals",
                  "value": ["444455556666"] },
                { "op": "replace", "path": "/spec/targets/0/privateLink/acceptanceRequired",
                  "value": false }
            ]))
            .unwrap(),
        ),
    )
    .await
    .unwrap();
    eventually(
        "principals and acceptance changed in place",
        WAIT,
        || async {
            let services = services_of(&hub_ec2, &owner).await;
            let s = services.get(&id)?;
            (services.len() == 1
                && s.acceptance_required() == Some(false)
                && principals(&hub_ec2, &id).await
                    == vec!["arn:aws:iam::444455556666:root".to_owned()])
            .then_some(())
        },
    )
    .await;

    // Deletion: endpoints and service go before the NLB; the foreign service stays.
    api.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the object deleted", Duration::from_secs(60), || async {
        api.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(services_of(&hub_ec2, &owner).await.is_empty());
    assert!(endpoints_of(&hub_ec2, &owner).await.is_empty());
    assert!(endpoints_of(&other_ec2, &owner).await.is_empty());
    assert!(
        network::owned_by(&elb, &owner)
            .await
            .load_balancers
            .is_empty()
    );
    let still = hub_ec2
        .describe_vpc_endpoint_service_configurations()
        .service_ids(foreign.service_id().unwrap_or_default())
        .send()
        .await
        .unwrap();
    assert_eq!(
        still.service_configurations().len(),
        1,
        "the foreign service is untouched"
    );
    let log = op.log_text();
    let order: Vec<usize> = [
        "interface endpoint deleted",
        "endpoint service deleted",
        "load balancer deleted",
    ]
    .iter()
    .map(|m| log.find(m).unwrap_or_else(|| panic!("no {m:?} in the log")))
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "endpoints, then the service, then the NLB: {order:?}"
    );
}

#[tokio::test]
async fn sigkill_during_endpoint_service_creation_leaves_one_service_and_one_endpoint() {
    let Setup {
        spoke,
        ns,
        spoke_name,
        app,
        zone,
        api,
        config,
        ..
    } = setup("pl-kill", "ClusterIP").await;
    set_endpoints(&spoke, &app, &[("10.0.1.10", true, false)]).await;
    let hub_ec2 = ec2::Client::new(&config);
    let consumer = network::vpc(&config).await;
    let mut target = provisioned(
        &spoke_name,
        &app,
        json!({ "mode": "Provision", "type": "NLB", "scheme": "Internal" }),
    );
    target["privateLink"] = json!({
        "enabled": true,
        "consumers": [{ "vpcId": consumer.id, "subnets": consumer.internal }]
    });
    let host = format!("web.{}", zone.domain);
    api.create(
        &PostParams::default(),
        &gi(&ns, "web", &zone.name, &host, json!([target])),
    )
    .await
    .unwrap();
    let owner = format!("{ns}/web");
    for round in 0..4 {
        let mut op = operator(&ns);
        // Killed at a random moment of the first reconciles: before, during or after the
        // load balancer, the service and the endpoint are created.
        tokio::time::sleep(Duration::from_millis(fastrand::u64(50..1200))).await;
        op.child.start_kill().expect("SIGKILL");
        let _ = op.child.wait().await;
        eprintln!(
            "round {round}: {} service(s), {} endpoint(s)",
            services_of(&hub_ec2, &owner).await.len(),
            endpoints_of(&hub_ec2, &owner).await.len()
        );
    }
    let _op = operator(&ns);
    let name = eventually("the service and its endpoint", WAIT, || async {
        let services = services_of(&hub_ec2, &owner).await;
        let name = services.values().next()?.service_name.clone()?;
        (endpoints_of(&hub_ec2, &owner).await.get(&consumer.id) == Some(&name)).then_some(name)
    })
    .await;
    // Counted by tags, after the last process settled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(services_of(&hub_ec2, &owner).await.len(), 1);
    let all = hub_ec2
        .describe_vpc_endpoints()
        .send()
        .await
        .unwrap()
        .vpc_endpoints()
        .iter()
        .filter(|e| e.service_name() == Some(name.as_str()))
        .count();
    assert_eq!(all, 1, "one endpoint for the service, none untagged");
}

#[tokio::test]
async fn a_private_target_probed_via_target_health_follows_elbv2() {
    let Setup {
        spoke,
        ns,
        elb,
        spoke_name,
        app,
        zone,
        api,
        ..
    } = setup("pl-th", "ClusterIP").await;
    set_endpoints(&spoke, &app, &[("10.0.1.10", true, false)]).await;
    let eu = provisioned(
        &spoke_name,
        &app,
        json!({ "mode": "Provision", "type": "NLB", "scheme": "Internal" }),
    );
    let us = json!({ "name": "us", "weight": 1,
                     "loadBalancer": { "mode": "External",
                                       "external": { "addresses": ["192.0.2.10"] } } });
    let host = format!("web.{}", zone.domain);
    let mut object = gi(&ns, "web", &zone.name, &host, json!([eu, us]));
    object.spec.health_check = serde_json::from_value(json!({
        "protocol": "None", "via": "TargetHealth", "interval": "1s", "timeout": "500ms"
    }))
    .unwrap();
    object.spec.failover.failback_after = "1s".into();
    api.create(&PostParams::default(), &object).await.unwrap();
    let _op = operator(&ns);
    let owner = format!("{ns}/web");
    let active = |want: &'static str| {
        let api = api.clone();
        async move {
            let s = api.get("web").await.ok()?.status?;
            (s.active_targets.as_deref() == Some(want)).then_some(s)
        }
    };
    eventually("both targets active", WAIT, || active("eu,us")).await;
    // Someone deregisters the NLB's only target: ELBv2 reports none healthy.
    let tg = network::owned_by(&elb, &owner)
        .await
        .target_groups
        .into_values()
        .next()
        .unwrap();
    let targets: Vec<_> = elb
        .describe_target_health()
        .target_group_arn(tg.target_group_arn().unwrap_or_default())
        .send()
        .await
        .unwrap()
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target().cloned())
        .collect();
    assert_eq!(targets.len(), 1);
    elb.deregister_targets()
        .target_group_arn(tg.target_group_arn().unwrap_or_default())
        .set_targets(Some(targets.clone()))
        .send()
        .await
        .unwrap();
    let status = eventually("eu withdrawn on its target health", WAIT, || active("us")).await;
    let eu = status.targets.iter().find(|t| t.name == "eu").unwrap();
    assert!(
        eu.message
            .as_deref()
            .is_some_and(|m| m.contains("0 of 0 registered")),
        "{eu:?}"
    );
    // Registered again: back after failbackAfter.
    elb.register_targets()
        .target_group_arn(tg.target_group_arn().unwrap_or_default())
        .set_targets(Some(targets))
        .send()
        .await
        .unwrap();
    eventually("eu back", WAIT, || active("eu,us")).await;
}
