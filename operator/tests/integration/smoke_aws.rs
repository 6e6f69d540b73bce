//! The AWS SDK talks to the emulator: a Route 53 zone and a weighted record set round-trip.

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};

use crate::support;

#[tokio::test]
async fn route53_weighted_records_round_trip() {
    let config = support::aws().await;
    let r53 = aws_sdk_route53::Client::new(&config);
    let domain = format!("{}.test.", support::unique_name("smoke"));
    let zone = r53
        .create_hosted_zone()
        .name(&domain)
        .caller_reference(support::unique_name("ref"))
        .send()
        .await
        .expect("CreateHostedZone");
    let zone_id = zone.hosted_zone().expect("zone").id().to_owned();
    let name = format!("app.{domain}");

    let weighted = |id: &str, weight: i64, ip: &str| {
        ResourceRecordSet::builder()
            .name(&name)
            .r#type(RrType::A)
            .set_identifier(id)
            .weight(weight)
            .ttl(30)
            .resource_records(ResourceRecord::builder().value(ip).build().unwrap())
            .build()
            .unwrap()
    };
    let batch = ChangeBatch::builder()
        .changes(
            Change::builder()
                .action(ChangeAction::Create)
                .resource_record_set(weighted("eu-west-1", 200, "192.0.2.10"))
                .build()
                .unwrap(),
        )
        .changes(
            Change::builder()
                .action(ChangeAction::Create)
                .resource_record_set(weighted("us-east-1", 0, "192.0.2.20"))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let change = r53
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(batch)
        .send()
        .await
        .expect("ChangeResourceRecordSets");
    let change_id = change.change_info().expect("change info").id().to_owned();
    let status = r53
        .get_change()
        .id(&change_id)
        .send()
        .await
        .expect("GetChange");
    assert_eq!(
        status.change_info().map(|c| c.status()),
        Some(&ChangeStatus::Insync)
    );

    let listed = r53
        .list_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .send()
        .await
        .expect("ListResourceRecordSets");
    let mut found: Vec<(String, i64, String, i64)> = listed
        .resource_record_sets()
        .iter()
        .filter(|r| r.name() == name && r.r#type() == &RrType::A)
        .map(|r| {
            (
                r.set_identifier().unwrap_or_default().to_owned(),
                r.weight().unwrap_or(-1),
                r.resource_records()[0].value().to_owned(),
                r.ttl().unwrap_or(-1),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("eu-west-1".to_owned(), 200, "192.0.2.10".to_owned(), 30),
            ("us-east-1".to_owned(), 0, "192.0.2.20".to_owned(), 30),
        ]
    );
}

#[tokio::test]
async fn route53_refuses_a_change_to_a_missing_zone() {
    let config = support::aws().await;
    let r53 = aws_sdk_route53::Client::new(&config);
    let err = r53
        .list_resource_record_sets()
        .hosted_zone_id("ZNOSUCHZONE0000")
        .send()
        .await
        .expect_err("a missing zone must be an error");
    assert!(
        err.into_service_error().is_no_such_hosted_zone(),
        "expected NoSuchHostedZone"
    );
}
