//! What the controller publishes to Route 53, read back from the emulator: exactly the planned
//! record sets per policy, and every foreign record byte-identical.

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use globalingress::api::condition::find;
use globalingress::api::{DNSZone, GlobalIngress};
use globalingress::dns::records::Rrset;
use globalingress::model::dns::{Continent, Location, RecordRouting, RecordType as ModelType};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::publishing::{WAIT, external, gi, wait_synced};
use crate::support::operator::{Operator, Options, eventually};
use crate::support::{self, Cluster, env, zone_records};

/// One record set as Route 53 holds it, TTL 30 (the spec's default).
fn rrset(host: &str, rtype: ModelType, routing: RecordRouting, values: &[&str]) -> Rrset {
    Rrset {
        name: host.to_owned(),
        rtype,
        routing,
        ttl: Some(30),
        values: values.iter().map(|v| (*v).to_owned()).collect(),
        alias: None,
        health_check_id: None,
    }
}

/// The record sets each policy case of the Route 53 test must publish, written out by hand.
fn expected_records(ns: &str, name: &str, host: &str) -> Vec<Rrset> {
    let tag = globalingress::model::ownership::set_id_tag(&format!("{ns}/{name}")).unwrap();
    let weighted = |target: &str, weight: u8| RecordRouting::Weighted {
        set_id: format!("{target}.{tag}"),
        weight,
    };
    let geo = |target: &str, code: &str, location: Location| RecordRouting::Geolocation {
        set_id: format!("{target}.{tag}-{code}"),
        location,
    };
    let latency = |target: &str, region: &str| RecordRouting::Latency {
        set_id: format!("{target}.{tag}"),
        region: region.to_owned(),
    };
    match name {
        "weighted" => vec![
            rrset(host, ModelType::A, weighted("eu", 3), &["192.0.2.1"]),
            rrset(host, ModelType::A, weighted("us", 1), &["192.0.2.2"]),
            rrset(host, ModelType::AAAA, weighted("us", 1), &["2001:db8::2"]),
        ],
        // Three tiers: the best one weight 1, the others 0.
        "failover" => vec![
            rrset(host, ModelType::A, weighted("p0", 1), &["192.0.2.3"]),
            rrset(host, ModelType::A, weighted("p1", 0), &["192.0.2.4"]),
            rrset(host, ModelType::A, weighted("p2", 0), &["192.0.2.5"]),
        ],
        "geo" => vec![
            rrset(
                host,
                ModelType::A,
                geo("eu", "eu", Location::Continent(Continent::EU)),
                &["192.0.2.6"],
            ),
            rrset(
                host,
                ModelType::A,
                geo("eu", "tr", Location::Country("TR".into())),
                &["192.0.2.6"],
            ),
            rrset(
                host,
                ModelType::A,
                geo("us", "default", Location::Default),
                &["192.0.2.7"],
            ),
            rrset(
                host,
                ModelType::A,
                geo(
                    "us",
                    "us-ca",
                    Location::Subdivision {
                        country: "US".into(),
                        subdivision: "CA".into(),
                    },
                ),
                &["192.0.2.7"],
            ),
        ],
        "latency" => vec![
            rrset(
                host,
                ModelType::A,
                latency("eu", "eu-west-1"),
                &["192.0.2.8"],
            ),
            rrset(
                host,
                ModelType::A,
                latency("ap", "ap-southeast-2"),
                &["192.0.2.9"],
            ),
        ],
        other => panic!("no expectation for {other}"),
    }
}

#[tokio::test]
async fn route53_holds_exactly_the_planned_records_and_a_thousand_foreign_records_stay_byte_identical()
 {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "r53").await;
    // The DNSZone comes later, once the foreign records are in place.
    let support::Route53Zone {
        r53,
        domain,
        zone_id,
        ..
    } = support::route53_zone(None, "policies").await;

    // 1,000 foreign records: plain and weighted, many with our target names as set identifiers,
    // and three at a name one of our GlobalIngresses will try to claim.
    let our_target_names = ["eu", "us", "p0", "p1", "p2", "ap", "eu-eu", "us-default"];
    let foreign = |i: usize| {
        let name = if i < 3 {
            format!("collide.{domain}.")
        } else {
            format!("foreign-{i}.{domain}.")
        };
        let mut rr = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::A)
            .ttl(300)
            .resource_records(
                ResourceRecord::builder()
                    .value(format!("198.51.{}.{}", i / 250, i % 250))
                    .build()
                    .unwrap(),
            );
        if i.is_multiple_of(2) || i < 3 {
            rr = rr
                .set_identifier(our_target_names[i % our_target_names.len()])
                .weight(5);
        }
        Change::builder()
            .action(ChangeAction::Create)
            .resource_record_set(rr.build().unwrap())
            .build()
            .unwrap()
    };
    for chunk in [0..500, 500..1000] {
        let mut batch = ChangeBatch::builder();
        for i in chunk {
            batch = batch.changes(foreign(i));
        }
        r53.change_resource_record_sets()
            .hosted_zone_id(&zone_id)
            .change_batch(batch.build().unwrap())
            .send()
            .await
            .unwrap();
    }
    let before = zone_records(&r53, &zone_id).await;

    let zones: Api<DNSZone> = Api::all(client.clone());
    let zone_name = support::unique_name("r53zone");
    let zone: DNSZone = serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "DNSZone",
        "metadata": { "name": zone_name, "labels": support::shard(&ns) },
        "spec": { "domain": domain, "ownerId": "test-hub", "provider": { "route53": { "hostedZoneId": zone_id } } }
    }))
    .unwrap();
    zones.create(&PostParams::default(), &zone).await.unwrap();
    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "r53",
        extra: &[],
    });
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);

    let cases = [
        (
            "weighted",
            "Weighted",
            json!([
                external("eu", &["192.0.2.1"], json!({"weight": 3})),
                external("us", &["192.0.2.2", "2001:db8::2"], json!({"weight": 1}))
            ]),
        ),
        (
            "failover",
            "Failover",
            json!([
                external("p0", &["192.0.2.3"], json!({"priority": 0})),
                external("p1", &["192.0.2.4"], json!({"priority": 1})),
                external("p2", &["192.0.2.5"], json!({"priority": 2}))
            ]),
        ),
        (
            "geo",
            "Geolocation",
            json!([
                external(
                    "eu",
                    &["192.0.2.6"],
                    json!({"geo": {"continents": ["EU"], "countries": ["TR"]}})
                ),
                external(
                    "us",
                    &["192.0.2.7"],
                    json!({"geo": {"default": true, "subdivisions": ["US-CA"]}})
                )
            ]),
        ),
        (
            "latency",
            "Latency",
            json!([
                external("eu", &["192.0.2.8"], json!({"region": "eu-west-1"})),
                external("ap", &["192.0.2.9"], json!({"region": "ap-southeast-2"}))
            ]),
        ),
    ];
    for (name, policy, targets) in &cases {
        let host = format!("{name}.{domain}");
        api.create(
            &PostParams::default(),
            &gi(&ns, name, &zone_name, &host, policy, targets.clone()),
        )
        .await
        .unwrap();
    }
    for (name, _, _) in &cases {
        wait_synced(&api, name, 1).await;
    }
    // The status says which weight each target got (the best failover tier 1, the others 0).
    for (name, expected) in [
        ("weighted", vec![("eu", Some(3)), ("us", Some(1))]),
        (
            "failover",
            vec![("p0", Some(1)), ("p1", Some(0)), ("p2", Some(0))],
        ),
        ("latency", vec![("eu", None), ("ap", None)]),
    ] {
        let status = api.get(name).await.unwrap().status.unwrap();
        let got: Vec<(&str, Option<i32>)> = status
            .targets
            .iter()
            .map(|t| (t.name.as_str(), t.weight_applied))
            .collect();
        assert_eq!(got, expected, "weightApplied of {name}");
    }
    // Everything not ours is byte-identical after the creates.
    let ours = |r: &String| {
        [
            "\"weighted.",
            "\"failover.",
            "\"geo.",
            "\"latency.",
            "\"_gi.",
        ]
        .iter()
        .any(|p| r.contains(p))
    };
    let foreign_before: Vec<String> = before.iter().filter(|r| !ours(r)).cloned().collect();
    assert_eq!(
        foreign_before.len(),
        before.len(),
        "the zone starts with foreign records only"
    );
    let after_create: Vec<String> = zone_records(&r53, &zone_id)
        .await
        .into_iter()
        .filter(|r| !ours(r))
        .collect();
    assert_eq!(after_create, foreign_before, "foreign records after create");

    // A GlobalIngress claiming a foreign name is refused and changes nothing there.
    api.create(
        &PostParams::default(),
        &gi(
            &ns,
            "collide",
            &zone_name,
            &format!("collide.{domain}"),
            "Weighted",
            json!([external("eu", &["192.0.2.10"], json!({"weight": 1}))]),
        ),
    )
    .await
    .unwrap();
    eventually("collide refused", WAIT, || async {
        let gi = api.get("collide").await.ok()?;
        let ready = find(&gi.status.as_ref()?.conditions, "Ready")?.clone();
        (ready.reason == "HostnameConflict").then_some(())
    })
    .await;

    // What the zone holds at each of our names equals the record sets written out here by hand
    // for each policy (set identifiers carry the object's tag: `<target>.<8 hex>`).
    let listed = globalingress::dns::route53::Route53Zone::new(r53.clone(), &zone_id);
    let held = globalingress::dns::provider::ZoneProvider::list(&listed)
        .await
        .unwrap();
    for (name, _, _) in &cases {
        let host = format!("{name}.{domain}");
        let mut expected = expected_records(&ns, name, &host);
        expected.sort();
        let mut got: Vec<Rrset> = held.iter().filter(|r| r.name == host).cloned().collect();
        got.sort();
        assert_eq!(got, expected, "{name}");
    }
    // The registry beside each name says who owns it.
    for (name, _, _) in &cases {
        let registry = held
            .iter()
            .find(|r| r.name == format!("_gi.{name}.{domain}"))
            .unwrap_or_else(|| panic!("no registry record for {name}"));
        assert_eq!(
            registry.values,
            vec![format!(
                "\"heritage=globalingress,owner=test-hub,resource={ns}/{name}\""
            )]
        );
    }

    // A change touches only what it should: one target's weight.
    api.patch("weighted", &PatchParams::default(), &Patch::Merge(json!({"spec": {"targets": [
        external("eu", &["192.0.2.1"], json!({"weight": 3})), external("us", &["192.0.2.2", "2001:db8::2"], json!({"weight": 0}))
    ]}})))
    .await
    .unwrap();
    wait_synced(&api, "weighted", 2).await;
    let after = globalingress::dns::provider::ZoneProvider::list(&listed)
        .await
        .unwrap();
    let changed: Vec<_> = after.iter().filter(|r| !held.contains(r)).collect();
    assert_eq!(changed.len(), 2, "the us A and AAAA sets: {changed:?}");
    assert!(changed.iter().all(|r| r.name == format!("weighted.{domain}")
        && matches!(r.routing, RecordRouting::Weighted { ref set_id, weight: 0 } if set_id.starts_with("us."))));

    let after_update: Vec<String> = zone_records(&r53, &zone_id)
        .await
        .into_iter()
        .filter(|r| !ours(r))
        .collect();
    assert_eq!(after_update, foreign_before, "foreign records after update");

    // Deleting every GlobalIngress gives the zone back exactly as it was, byte for byte.
    let names: Vec<&str> = cases.iter().map(|c| c.0).chain(["collide"]).collect();
    for name in &names {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    for name in &names {
        eventually("deletion", WAIT, || async {
            api.get_opt(name).await.ok()?.is_none().then_some(())
        })
        .await;
    }
    assert_eq!(zone_records(&r53, &zone_id).await, before);
}
