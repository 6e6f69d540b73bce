//! TLS on provisioned load balancers against moto's ACM, ELBv2, EC2 and Route 53: `tls.mode:
//! ACM` with two regions (a certificate per region, one validation record for both in the
//! zone, both issued and on their listeners, the record kept while one region still needs it,
//! certificates gone after their listeners on deletion), a SIGKILL while ACM validates, and a
//! `CertificateArn` that does not cover a hostname.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_acm as acm;
use aws_sdk_elasticloadbalancingv2 as elbv2;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::load_balancers::{WAIT, condition, gi, operator, provisioned};
use crate::support::network::{self, HUB_ACCOUNT, Setup, set_endpoints, setup};
use crate::support::operator::eventually;

/// The second region of the two-region tests.
const OTHER_REGION: &str = "us-east-1";

/// The certificates tagged as `owner`'s in `acm`'s region: ARN → status.
async fn certificates_of(acm: &acm::Client, owner: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let list = acm
        .list_certificates()
        .send()
        .await
        .expect("ListCertificates");
    for c in list.certificate_summary_list() {
        let arn = c.certificate_arn().unwrap_or_default();
        let Ok(tags) = acm
            .list_tags_for_certificate()
            .certificate_arn(arn)
            .send()
            .await
        else {
            continue; // deleted while we looked
        };
        if tags
            .tags()
            .iter()
            .any(|t| t.key() == "globalingress.io/globalingress" && t.value() == Some(owner))
        {
            out.insert(
                arn.to_owned(),
                c.status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            );
        }
    }
    out
}

/// The CNAME records of the zone whose name starts with `_` (ACM's validation records) and
/// their registry values, by name.
async fn validation_records(
    r53: &aws_sdk_route53::Client,
    zone_id: &str,
) -> BTreeMap<String, (Vec<String>, usize)> {
    let sets = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .send()
        .await
        .expect("ListResourceRecordSets");
    let all = sets.resource_record_sets();
    all.iter()
        .filter(|r| r.r#type().as_str() == "CNAME" && r.name().starts_with("_d930"))
        .map(|r| {
            let name = r.name().trim_end_matches('.').to_owned();
            let registry = all
                .iter()
                .find(|g| g.name().trim_end_matches('.') == format!("_gi.{name}"))
                .map_or(0, |g| g.resource_records().len());
            let values = r
                .resource_records()
                .iter()
                .map(|v| v.value().to_owned())
                .collect();
            (name, (values, registry))
        })
        .collect()
}

/// (port, protocol, certificate, redirect port) of every listener of the load balancers.
fn listeners(found: &network::Owned) -> Vec<(i32, String, Option<String>, Option<String>)> {
    let mut out: Vec<_> = found
        .listeners
        .iter()
        .map(|l: &elbv2::types::Listener| {
            (
                l.port().unwrap_or_default(),
                l.protocol()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                l.certificates()
                    .first()
                    .and_then(|c| c.certificate_arn().map(str::to_owned)),
                l.default_actions().iter().find_map(|a| {
                    a.redirect_config()
                        .and_then(|r| r.port().map(str::to_owned))
                }),
            )
        })
        .collect();
    out.sort();
    out
}

/// GlobalIngress `web` at `web.<zone>`, one Provision target (an NLB), with `spec.tls` = `tls`.
fn web(
    ns: &str,
    zone: &crate::support::Route53Zone,
    spoke: &str,
    app: &str,
    tls: Value,
) -> (globalingress::api::GlobalIngress, String) {
    let host = format!("web.{}", zone.domain);
    let mut object = gi(
        ns,
        "web",
        &zone.name,
        &host,
        json!([provisioned(spoke, app, json!({ "mode": "Provision" }))]),
    );
    object.spec.tls = Some(serde_json::from_value(tls).unwrap());
    (object, host)
}

async fn config_in(region: &str) -> aws_config::SdkConfig {
    network::config(None)
        .await
        .into_builder()
        .region(aws_config::Region::new(region.to_owned()))
        .build()
}

#[tokio::test]
async fn acm_certificates_per_region_share_one_validation_record_and_go_after_their_listeners() {
    let Setup {
        hub,
        spoke,
        ns,
        elb,
        spoke_name,
        app,
        zone,
        api,
        ..
    } = setup("tls-acm", "ClusterIP").await;
    set_endpoints(&spoke, &app, &[("10.0.1.10", true, false)]).await;
    // A second spoke (the same cluster) in another region, with its own VPC.
    let us_config = config_in(OTHER_REGION).await;
    let us_vpc = network::vpc(&us_config).await;
    let us_spoke = network::spoke(&hub, &ns, "tls-us", us_vpc.spec(HUB_ACCOUNT, None)).await;
    kube::Api::<globalingress::api::SpokeCluster>::all(hub.clone())
        .patch(
            &us_spoke,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "region": OTHER_REGION } })),
        )
        .await
        .unwrap();
    let host = format!("web.{}", zone.domain);
    let eu = provisioned(
        &spoke_name,
        &app,
        json!({ "mode": "Provision", "type": "ALB", "scheme": "InternetFacing" }),
    );
    let mut us = provisioned(
        &us_spoke,
        &app,
        json!({ "mode": "Provision", "type": "NLB", "scheme": "Internal" }),
    );
    us["name"] = json!("us");
    let mut object = gi(&ns, "web", &zone.name, &host, json!([eu, us]));
    object.spec.tls = Some(serde_json::from_value(json!({ "mode": "ACM" })).unwrap());
    api.create(&PostParams::default(), &object).await.unwrap();
    let op = operator(&ns);
    let owner = format!("{ns}/web");
    let (eu_acm, us_acm) = (
        acm::Client::new(&network::config(None).await),
        acm::Client::new(&us_config),
    );
    let us_elb = elbv2::Client::new(&us_config);

    // One certificate per region, each issued and on its load balancer's listener: HTTPS on
    // the ALB with an HTTP redirect, TLS on the NLB; the plain listener never stays.
    let (eu_cert, us_cert) = eventually(
        "both certificates issued and on their listeners",
        Duration::from_secs(90),
        || async {
            let (e, u) = (
                certificates_of(&eu_acm, &owner).await,
                certificates_of(&us_acm, &owner).await,
            );
            if e.len() != 1 || u.len() != 1 || e.values().chain(u.values()).any(|s| s != "ISSUED") {
                return None;
            }
            let (e, u) = (e.into_keys().next()?, u.into_keys().next()?);
            let alb = network::owned_by(&elb, &owner).await;
            let nlb = network::owned_by(&us_elb, &owner).await;
            let alb_listeners = listeners(&alb);
            let nlb_listeners = listeners(&nlb);
            (alb_listeners
                == vec![
                    (80, "HTTP".to_owned(), None, Some("443".to_owned())),
                    (443, "HTTPS".to_owned(), Some(e.clone()), None),
                ]
                && nlb_listeners == vec![(443, "TLS".to_owned(), Some(u.clone()), None)])
            .then_some((e, u))
        },
    )
    .await;
    // One validation record for both certificates (the same name in both regions), owned
    // through one registry value.
    let records = validation_records(&zone.r53, &zone.zone_id).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let (name, (values, registry)) = records.iter().next().unwrap();
    assert!(name.ends_with(&host), "{name}");
    assert_eq!(values.len(), 1);
    assert_eq!(*registry, 1);
    // The status is written at the end of the reconcile that made the listeners.
    eventually("CertificatesReady", WAIT, || async {
        (condition(&api, "web", "CertificatesReady").await?
            == ("True".to_owned(), "Issued".to_owned()))
            .then_some(())
    })
    .await;
    let status = api.get("web").await.unwrap().status.unwrap();
    let arns: Vec<Option<String>> = status
        .targets
        .iter()
        .map(|t| t.certificate_arn.clone())
        .collect();
    assert_eq!(arns, vec![Some(eu_cert.clone()), Some(us_cert.clone())]);
    assert!(status.targets.iter().all(|t| t.not_after.is_some()));
    let requested = op
        .metric(
            "globalingress_elb_resource_changes_total{resource=\"listener\",action=\"created\"}",
        )
        .await;
    assert_eq!(requested, 3.0, "ALB HTTPS + redirect, NLB TLS");
    let (_, metrics) = op.get("/metrics").await.unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("globalingress_certificate_expiry_seconds{") && l.contains(&eu_cert)
        ),
        "no expiry gauge for {eu_cert}"
    );

    // What one GlobalIngress with two regions cost, per operation (printed for the record).
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("globalingress_aws_calls_total{"))
    {
        eprintln!("calls: {line}");
    }

    // The us target goes: its load balancer and certificate go; the validation record stays
    // for the eu certificate.
    let mut object = api.get("web").await.unwrap();
    object.spec.targets.retain(|t| t.name == "eu");
    object.metadata.managed_fields = None;
    api.replace("web", &PostParams::default(), &object)
        .await
        .unwrap();
    eventually("the us certificate deleted", WAIT, || async {
        certificates_of(&us_acm, &owner)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    assert!(
        network::owned_by(&us_elb, &owner)
            .await
            .load_balancers
            .is_empty()
    );
    assert_eq!(certificates_of(&eu_acm, &owner).await.len(), 1);
    assert_eq!(validation_records(&zone.r53, &zone.zone_id).await.len(), 1);

    // Deletion: listeners and load balancers first, then the certificate and its record.
    api.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the object deleted", WAIT, || async {
        api.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(certificates_of(&eu_acm, &owner).await.is_empty());
    assert!(
        network::owned_by(&elb, &owner)
            .await
            .load_balancers
            .is_empty()
    );
    assert!(
        validation_records(&zone.r53, &zone.zone_id)
            .await
            .is_empty()
    );
    drop(op);
}

#[tokio::test]
async fn a_certificate_arn_that_does_not_cover_a_hostname_is_reported_on_its_field() {
    let Setup {
        spoke,
        ns,
        spoke_name,
        app,
        zone,
        api,
        config,
        ..
    } = setup("tls-arn", "ClusterIP").await;
    set_endpoints(&spoke, &app, &[("10.0.1.10", true, false)]).await;
    let acm = acm::Client::new(&config);
    // Someone's certificate for another name.
    let arn = acm
        .request_certificate()
        .domain_name(format!("other.{}", zone.domain))
        .validation_method(acm::types::ValidationMethod::Dns)
        .send()
        .await
        .unwrap()
        .certificate_arn
        .unwrap();
    let (object, host) = web(
        &ns,
        &zone,
        &spoke_name,
        &app,
        json!({ "mode": "CertificateArn", "certificateArn": arn }),
    );
    api.create(&PostParams::default(), &object).await.unwrap();
    let _op = operator(&ns);
    let message = eventually(
        "CertificatesReady False naming the field",
        Duration::from_secs(60),
        || async {
            let gi = api.get("web").await.ok()?;
            let c =
                globalingress::api::condition::find(&gi.status?.conditions, "CertificatesReady")?
                    .clone();
            (c.status == "False"
                && c.reason == "CertificateInvalid"
                && c.message.contains("does not cover"))
            .then_some(c.message)
        },
    )
    .await;
    assert!(
        message.contains("spec.tls.certificateArn") && message.contains(&host),
        "{message}"
    );
    // Nothing listens with it, and the certificate is not ours to touch.
    let owned = network::owned_by(&network_elb(&config), &format!("{ns}/web")).await;
    assert!(
        owned.listeners.iter().all(|l| l.certificates().is_empty()),
        "{:?}",
        owned.listeners
    );
    let tags = acm
        .list_tags_for_certificate()
        .certificate_arn(&arn)
        .send()
        .await
        .unwrap();
    assert!(tags.tags().is_empty());
}

fn network_elb(config: &aws_config::SdkConfig) -> elbv2::Client {
    elbv2::Client::new(config)
}

#[tokio::test]
async fn sigkill_while_acm_validates_leaves_one_certificate() {
    let Setup {
        spoke,
        ns,
        spoke_name,
        app,
        zone,
        api,
        config,
        ..
    } = setup("tls-kill", "ClusterIP").await;
    set_endpoints(&spoke, &app, &[("10.0.1.10", true, false)]).await;
    let (object, _) = web(&ns, &zone, &spoke_name, &app, json!({ "mode": "ACM" }));
    api.create(&PostParams::default(), &object).await.unwrap();
    let owner = format!("{ns}/web");
    let acm = acm::Client::new(&config);
    for round in 0..3 {
        let mut op = operator(&ns);
        eventually("a certificate requested", WAIT, || async {
            (!certificates_of(&acm, &owner).await.is_empty()).then_some(())
        })
        .await;
        // Killed somewhere while ACM validates (moto issues after 5 s).
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..1500))).await;
        op.child.start_kill().expect("SIGKILL");
        let _ = op.child.wait().await;
        eprintln!("round {round}: {:?}", certificates_of(&acm, &owner).await);
    }
    let _op = operator(&ns);
    eventually("CertificatesReady", Duration::from_secs(60), || async {
        (condition(&api, "web", "CertificatesReady").await? == ("True".into(), "Issued".into()))
            .then_some(())
    })
    .await;
    let certs = certificates_of(&acm, &owner).await;
    assert_eq!(certs.len(), 1, "{certs:?}");
    let tls: Value = json!(listeners(
        &network::owned_by(&network_elb(&config), &owner).await
    ));
    assert_eq!(
        tls,
        json!([[443, "TLS", certs.keys().next(), null]]),
        "the NLB's one listener is TLS with the one certificate"
    );
}
