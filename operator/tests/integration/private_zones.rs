//! Route 53 private hosted zones against moto: a GlobalIngress's records published there, the
//! VPCs of the spokes associated with the zone (`associateSpokeVpcs`), and a `Public` Route 53
//! health check refused on its field (Route 53's checkers cannot reach private addresses).

use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use crate::load_balancers::{WAIT, alias, gi, operator, provisioned};
use crate::support::network::{self, HUB_ACCOUNT, REGION, Setup, set_endpoints, setup};
use crate::support::operator::eventually;
use crate::support::{self, unique_name};

#[tokio::test]
async fn records_are_published_in_a_private_zone_and_the_spokes_vpcs_associated() {
    let Setup {
        hub,
        spoke,
        ns,
        vpc,
        spoke_name,
        app,
        api,
        config,
        ..
    } = setup("pzone", "ClusterIP").await;
    set_endpoints(&spoke, &app, &[("10.0.1.10", true, false)]).await;
    // A second spoke in its own VPC.
    let second_vpc = network::vpc(&config).await;
    let _second = network::spoke(&hub, &ns, "pzone-b", second_vpc.spec(HUB_ACCOUNT, None)).await;
    // A private zone, associated with the first spoke's VPC only.
    let r53 = aws_sdk_route53::Client::new(&support::aws().await);
    let domain = format!("{}.internal", unique_name("pzone"));
    let zone_id = r53
        .create_hosted_zone()
        .name(&domain)
        .caller_reference(unique_name("ref"))
        .hosted_zone_config(
            aws_sdk_route53::types::HostedZoneConfig::builder()
                .private_zone(true)
                .build(),
        )
        .vpc(
            aws_sdk_route53::types::Vpc::builder()
                .vpc_id(&vpc.id)
                .vpc_region(aws_sdk_route53::types::VpcRegion::from(REGION))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .hosted_zone
        .unwrap()
        .id
        .trim_start_matches("/hostedzone/")
        .to_owned();
    let zone_name = unique_name("pzone-zone");
    Api::<globalingress::api::DNSZone>::all(hub.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "globalingress.io/v1alpha1", "kind": "DNSZone",
                "metadata": { "name": zone_name, "labels": support::shard(&ns) },
                "spec": { "domain": domain, "ownerId": "test-hub",
                          "provider": { "route53": { "hostedZoneId": zone_id, "private": true,
                                                     "associateSpokeVpcs": true } } }
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let host = format!("web.{domain}");
    let target = provisioned(&spoke_name, &app, json!({ "mode": "Provision" }));
    api.create(
        &PostParams::default(),
        &gi(&ns, "web", &zone_name, &host, json!([target])),
    )
    .await
    .unwrap();
    // A Public Route 53 health check is refused in a private zone, naming the field.
    let mut public = gi(
        &ns,
        "checked",
        &zone_name,
        &format!("checked.{domain}"),
        json!([]),
    );
    public.spec.targets = vec![
        serde_json::from_value(json!({ "name": "ext", "weight": 1,
            "loadBalancer": { "mode": "External", "external": { "addresses": ["10.1.2.3"] } } }))
        .unwrap(),
    ];
    public.spec.health_check =
        serde_json::from_value(json!({ "protocol": "TCP", "port": 80, "route53": "Public" }))
            .unwrap();
    api.create(&PostParams::default(), &public).await.unwrap();
    let _op = operator(&ns);

    eventually("the ALIAS in the private zone", WAIT, || async {
        alias(&r53, &zone_id, &host).await
    })
    .await;
    let vpcs = eventually("both spokes' VPCs associated", WAIT, || async {
        let zone = r53.get_hosted_zone().id(&zone_id).send().await.ok()?;
        let vpcs: Vec<String> = zone
            .vpcs()
            .iter()
            .filter_map(|v| v.vpc_id().map(str::to_owned))
            .collect();
        (vpcs.contains(&vpc.id) && vpcs.contains(&second_vpc.id)).then_some(vpcs)
    })
    .await;
    let mut want = vpcs.clone();
    want.sort();
    // The status is written at the end of the reconcile that associated them: wait for it.
    let status = eventually("the associations in the DNSZone's status", WAIT, || async {
        let status = Api::<globalingress::api::DNSZone>::all(hub.clone())
            .get(&zone_name)
            .await
            .ok()?
            .status?;
        (status.vpcs.contains(&vpc.id) && status.vpcs.contains(&second_vpc.id)).then_some(status)
    })
    .await;
    assert!(status.vpcs.iter().all(|v| want.contains(v)), "{status:?}");
    let message = eventually("the Public check refused", WAIT, || async {
        let gi = api.get("checked").await.ok()?;
        let c = globalingress::api::condition::find(&gi.status?.conditions, "Ready")?.clone();
        (c.reason == "PublicHealthCheckInPrivateZone").then_some(c.message)
    })
    .await;
    assert!(message.contains("spec.healthCheck.route53"), "{message}");
}
