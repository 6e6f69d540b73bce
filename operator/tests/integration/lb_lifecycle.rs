//! What comes and goes with a provisioned load balancer: the CloudWatch alarm a `Private`
//! Route 53 health check follows (made with the load balancer, on its target group, tagged,
//! deleted with it), and `deletionPolicy: Retain`, which leaves the load balancer, its target
//! group, its ACM certificate, its PrivateLink endpoint service and the records in place and
//! marks them retained; and a load balancer with our name but not our owner tag, which nothing
//! ever touches.

use aws_sdk_cloudwatch as cloudwatch;
use aws_sdk_elasticloadbalancingv2 as elbv2;
use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use globalingress::model::ownership::TAG_OWNER;

use crate::load_balancers::{WAIT, alias, condition, gi, operator, provisioned};
use crate::privatelink::services_of;
use crate::support::moto;
use crate::support::network::{self, HUB_ACCOUNT};
use crate::support::network::{Setup, set_endpoints, setup};
use crate::support::operator::eventually;

#[tokio::test]
async fn a_private_check_follows_an_alarm_made_and_deleted_with_the_load_balancer() {
    let Setup {
        spoke,
        ns,
        config,
        elb,
        spoke_name,
        app,
        zone,
        api,
        ..
    } = setup("lb-alarm", "ClusterIP").await;
    let cw = cloudwatch::Client::new(&config);
    set_endpoints(&spoke, &app, &[("10.0.7.10", true, false)]).await;
    let host = format!("private.{}", zone.domain);
    let mut object = gi(
        &ns,
        "private",
        &zone.name,
        &host,
        json!([provisioned(
            &spoke_name,
            &app,
            json!({ "mode": "Provision" })
        )]),
    );
    object.spec.health_check.route53 =
        globalingress::api::global_ingress::Route53HealthCheck::Private;
    api.create(&PostParams::default(), &object).await.unwrap();
    let op = operator(&ns);
    let owner = format!("{ns}/private");
    let alarm_name = globalingress::model::health_check::alarm_name(&owner, "eu");

    let owned = eventually("the load balancer", WAIT, || async {
        let owned = network::owned_by(&elb, &owner).await;
        (owned.load_balancers.len() == 1 && owned.target_groups.len() == 1).then_some(owned)
    })
    .await;
    let alarm = eventually("the alarm", WAIT, || async {
        let out = cw
            .describe_alarms()
            .alarm_names(&alarm_name)
            .send()
            .await
            .ok()?;
        out.metric_alarms().first().cloned()
    })
    .await;
    let lb_arn = owned
        .load_balancers
        .values()
        .next()
        .unwrap()
        .load_balancer_arn()
        .unwrap();
    let tg_arn = owned
        .target_groups
        .values()
        .next()
        .unwrap()
        .target_group_arn()
        .unwrap();
    assert_eq!(alarm.metric_name(), Some("HealthyHostCount"));
    let dims: Vec<(String, String)> = alarm
        .dimensions()
        .iter()
        .map(|d| (d.name().unwrap().to_owned(), d.value().unwrap().to_owned()))
        .collect();
    assert!(
        dims.iter()
            .any(|(k, v)| k == "TargetGroup" && tg_arn.ends_with(v.as_str())),
        "{dims:?}"
    );
    assert!(
        dims.iter()
            .any(|(k, v)| k == "LoadBalancer" && lb_arn.ends_with(v.as_str())),
        "{dims:?}"
    );
    let tags = cw
        .list_tags_for_resource()
        .resource_arn(alarm.alarm_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == Some("globalingress.io/owner") && t.value() == Some("test-hub")),
        "{:?}",
        tags.tags()
    );
    // The Route 53 check follows that alarm, and the record names the check.
    let check_id = eventually("a record with its health check", WAIT, || async {
        let out = zone
            .r53
            .list_resource_record_sets()
            .hosted_zone_id(&zone.zone_id)
            .send()
            .await
            .ok()?;
        out.resource_record_sets()
            .iter()
            .find(|r| r.name().trim_end_matches('.') == host && r.alias_target().is_some())
            .and_then(|r| r.health_check_id().map(str::to_owned))
    })
    .await;
    let check = zone
        .r53
        .get_health_check()
        .health_check_id(&check_id)
        .send()
        .await
        .unwrap();
    let config = check.health_check().unwrap().health_check_config().unwrap();
    assert_eq!(config.r#type().as_str(), "CLOUDWATCH_METRIC");
    // moto 5.2.5 drops AlarmIdentifier (see route53_health.rs): the check's alarm name is the
    // one `alarm_name` gives, used by both the check and the alarm, checked above.

    api.delete("private", &DeleteParams::default())
        .await
        .unwrap();
    eventually("deleted", WAIT, || async {
        api.get_opt("private").await.ok()?.is_none().then_some(())
    })
    .await;
    let left = cw
        .describe_alarms()
        .alarm_names(&alarm_name)
        .send()
        .await
        .unwrap();
    assert!(
        left.metric_alarms().is_empty(),
        "the alarm went with the load balancer"
    );
    assert!(
        network::owned_by(&elb, &owner)
            .await
            .load_balancers
            .is_empty()
    );
    drop(op);
}

#[tokio::test]
async fn retain_leaves_the_load_balancer_and_records_and_marks_them_retained() {
    let Setup {
        spoke,
        ns,
        elb,
        spoke_name,
        app,
        zone,
        api,
        config,
        ..
    } = setup("lb-retain", "ClusterIP").await;
    set_endpoints(&spoke, &app, &[("10.0.8.10", true, false)]).await;
    let host = format!("kept.{}", zone.domain);
    let mut target = provisioned(
        &spoke_name,
        &app,
        json!({ "mode": "Provision", "type": "NLB", "scheme": "Internal" }),
    );
    target["privateLink"] = json!({ "enabled": true });
    let mut object = gi(&ns, "kept", &zone.name, &host, json!([target]));
    object.spec.deletion_policy = globalingress::api::global_ingress::DeletionPolicy::Retain;
    object.spec.tls = Some(serde_json::from_value(json!({ "mode": "ACM" })).unwrap());
    api.create(&PostParams::default(), &object).await.unwrap();
    let op = operator(&ns);
    let owner = format!("{ns}/kept");
    let acm = aws_sdk_acm::Client::new(&config);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let (published, certificate, service) = eventually(
        "the ALIAS record, the TLS listener and the endpoint service",
        Duration::from_secs(60),
        || async {
            let published = alias(&zone.r53, &zone.zone_id, &host).await?;
            let owned = network::owned_by(&elb, &owner).await;
            let certificate = owned.listeners.iter().find_map(|l| {
                l.certificates()
                    .first()
                    .and_then(|c| c.certificate_arn().map(str::to_owned))
            })?;
            let service = services_of(&ec2, &owner).await.into_keys().next()?;
            Some((published, certificate, service))
        },
    )
    .await;
    api.delete("kept", &DeleteParams::default()).await.unwrap();
    eventually("deleted", WAIT, || async {
        api.get_opt("kept").await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(
        alias(&zone.r53, &zone.zone_id, &host).await,
        Some(published)
    );
    let owned = network::owned_by(&elb, &owner).await;
    assert_eq!(owned.load_balancers.len(), 1, "the load balancer stays");
    assert_eq!(owned.target_groups.len(), 1, "its target group stays");
    assert!(
        owned.owners.values().all(|o| o == "test-hub/retained"),
        "{:?}",
        owned.owners
    );
    // The certificate and the endpoint service stay too, marked the same way.
    let tags = acm
        .list_tags_for_certificate()
        .certificate_arn(&certificate)
        .send()
        .await
        .expect("the certificate stays");
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == TAG_OWNER && t.value() == Some("test-hub/retained")),
        "{:?}",
        tags.tags()
    );
    let kept = services_of(&ec2, &owner).await;
    let kept_owner = kept.get(&service).and_then(|s| {
        s.tags()
            .iter()
            .find(|t| t.key() == Some(TAG_OWNER))
            .and_then(|t| t.value())
    });
    assert_eq!(kept_owner, Some("test-hub/retained"), "{kept:?}");
    drop(op);
}

#[tokio::test]
async fn foreign_load_balancers_with_our_names_are_never_touched() {
    use globalingress::model::elb::{Kind, LoadBalancerKey, Scheme, load_balancer_name};
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
    } = setup("lb-foreign", "ClusterIP").await;
    set_endpoints(&spoke, &app, &[("10.0.4.10", true, false)]).await;
    // The names two GlobalIngresses would use, taken: one untagged, one another hub's.
    let name_of = |gi: &str| {
        load_balancer_name(&LoadBalancerKey {
            owner: "test-hub",
            global_ingress: &format!("{ns}/{gi}"),
            target: "eu",
            kind: Kind::Network,
            scheme: Scheme::Internal,
        })
    };
    let untagged = network::foreign_load_balancer(&elb, &name_of("one"), &vpc.internal, &[]).await;
    let other_hub = network::foreign_load_balancer(
        &elb,
        &name_of("two"),
        &vpc.internal,
        &[
            ("globalingress.io/owner", "another-hub"),
            ("globalingress.io/globalingress", &format!("{ns}/two")),
            ("globalingress.io/target", "eu"),
        ],
    )
    .await;
    for name in ["one", "two"] {
        let host = format!("{name}.{}", zone.domain);
        let targets = json!([provisioned(
            &spoke_name,
            &app,
            json!({ "mode": "Provision" })
        )]);
        api.create(
            &PostParams::default(),
            &gi(&ns, name, &zone.name, &host, targets),
        )
        .await
        .unwrap();
    }
    let op = operator(&ns);
    for name in ["one", "two"] {
        let (status, _) = eventually("NameTaken", WAIT, || async {
            condition(&api, name, "LoadBalancersReady")
                .await
                .filter(|(_, r)| r == "NameTaken")
        })
        .await;
        assert_eq!(status, "False");
        // Nothing was made for a load balancer that cannot be.
        let owned = network::owned_by(&elb, &format!("{ns}/{name}")).await;
        assert!(
            owned.target_groups.is_empty(),
            "{:?}",
            owned.target_groups.keys()
        );
    }
    // An update, then deletion: the foreign load balancers stay, untouched.
    api.patch(
        "one",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "ttl": 60 } })),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    for name in ["one", "two"] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    eventually("both deleted", WAIT, || async {
        (api.get_opt("one").await.ok()?.is_none() && api.get_opt("two").await.ok()?.is_none())
            .then_some(())
    })
    .await;
    for lb in [&untagged, &other_hub] {
        let arn = lb.load_balancer_arn().unwrap();
        let out = elb
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
            .expect("the foreign load balancer still exists");
        assert_eq!(out.load_balancers().len(), 1);
        let tags = elb.describe_tags().resource_arns(arn).send().await.unwrap();
        let tags = tags.tag_descriptions()[0].tags();
        assert!(
            tags.iter()
                .all(|t| t.key() != Some("globalingress.io/resource")),
            "tags changed: {tags:?}"
        );
    }
    // No listener was added to them either.
    for lb in [&untagged, &other_hub] {
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(lb.load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        assert!(listeners.listeners().is_empty());
    }
    drop(op);
}

#[tokio::test]
async fn a_removed_target_loses_its_load_balancer_even_when_no_target_names_its_spoke() {
    let Setup {
        hub,
        spoke,
        ns,
        elb,
        vpc,
        app,
        zone,
        api,
        ..
    } = setup("lb-removed", "ClusterIP").await;
    let first = network::spoke(&hub, &ns, "first", vpc.spec(HUB_ACCOUNT, None)).await;
    // The second target's spoke in another account: a scope of its own, which no target names
    // once that target is gone.
    let role = &moto::spoke_role("444444444444");
    let other = network::config(Some(&moto::admin_role("444444444444"))).await;
    let other_vpc = network::vpc(&other).await;
    let second = network::spoke(
        &hub,
        &ns,
        "second",
        other_vpc.spec("444444444444", Some(role)),
    )
    .await;
    set_endpoints(&spoke, &app, &[("10.0.9.10", true, false)]).await;
    let host = format!("two.{}", zone.domain);
    let eu = provisioned(&first, &app, json!({ "mode": "Provision" }));
    let mut us = provisioned(&second, &app, json!({ "mode": "Provision" }));
    us["name"] = json!("us");
    api.create(
        &PostParams::default(),
        &gi(&ns, "two", &zone.name, &host, json!([eu.clone(), us])),
    )
    .await
    .unwrap();
    let op = operator(&ns);
    let owner = format!("{ns}/two");
    let there = elbv2::Client::new(&other);
    eventually("a load balancer in each account", WAIT, || async {
        (network::owned_by(&elb, &owner).await.load_balancers.len() == 1
            && network::owned_by(&there, &owner).await.load_balancers.len() == 1)
            .then_some(())
    })
    .await;
    api.patch(
        "two",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "targets": [eu] } })),
    )
    .await
    .unwrap();
    eventually(
        "the removed target's load balancer deleted",
        WAIT,
        || async {
            let gone = network::owned_by(&there, &owner).await;
            (gone.load_balancers.is_empty() && gone.target_groups.is_empty()).then_some(())
        },
    )
    .await;
    let kept = network::owned_by(&elb, &owner).await;
    assert_eq!(kept.load_balancers.len(), 1, "eu's stays");
    drop(op);
}
