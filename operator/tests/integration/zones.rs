//! DNSZones as a platform team meets them: a hosted zone that does not exist, a name that
//! holds someone's MX, records changed behind the operator's back, the Records column, zone
//! checks that must not eat the Route 53 budget, and deleting a GlobalIngress whose zone cannot
//! be reached.

use std::time::{Duration, Instant};

use aws_sdk_route53::types::RrType;
use globalingress::api::condition::find;
use globalingress::api::{DNSZone, GlobalIngress};
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::support::operator::{Operator, Options, eventually};
use crate::support::proxy::FaultProxy;
use crate::support::{self, Cluster, env, zone_records};

const WAIT: Duration = Duration::from_secs(30);

fn gi(ns: &str, name: &str, zone: &str, host: &str) -> GlobalIngress {
    serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
        "metadata": { "name": name, "labels": support::shard(ns) },
        "spec": { "hostnames": [host], "dnsZoneRef": zone, "routing": { "policy": "Weighted" },
                  "healthCheck": { "protocol": "None" },
                  "targets": [{ "name": "a", "weight": 1,
                                "loadBalancer": { "mode": "External", "external": { "addresses": ["192.0.2.44"] } } }] }
    }))
    .unwrap()
}

async fn condition(
    api: &Api<GlobalIngress>,
    name: &str,
    type_: &str,
) -> Option<(String, String, String)> {
    let gi = api.get(name).await.ok()?;
    let c = find(&gi.status.as_ref()?.conditions, type_)?.clone();
    Some((c.status, c.reason, c.message))
}

async fn event_notes(client: &kube::Client, ns: &str, reason: &str) -> Vec<String> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.message)
        .collect()
}

fn route53_dns_zone(ns: &str, name: &str, domain: &str, zone_id: &str) -> DNSZone {
    serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "DNSZone",
        "metadata": { "name": name, "labels": support::shard(ns) },
        "spec": { "domain": domain, "ownerId": "test-hub", "provider": { "route53": { "hostedZoneId": zone_id } } }
    }))
    .unwrap()
}

#[tokio::test]
async fn a_missing_hosted_zone_is_named_not_hammered_and_does_not_block_deletion() {
    let proxy = FaultProxy::start();
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "nozone").await;
    let zone = support::unique_name("nozone");
    Api::<DNSZone>::all(client.clone())
        .create(
            &PostParams::default(),
            &route53_dns_zone(&ns, &zone, "nozone.test", "ZNOSUCHZONE42"),
        )
        .await
        .unwrap();
    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "nozone",
        extra: &["--aws-endpoint-url", &proxy.url, "--resync-interval", "2s"],
    });
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    for i in 0..5 {
        api.create(
            &PostParams::default(),
            &gi(
                &ns,
                &format!("app{i}"),
                &zone,
                &format!("app{i}.nozone.test"),
            ),
        )
        .await
        .unwrap();
    }
    let (status, reason, message) = eventually("DNSSynced HostedZoneNotFound", WAIT, || async {
        condition(&api, "app0", "DNSSynced")
            .await
            .filter(|c| c.1 == "HostedZoneNotFound")
    })
    .await;
    println!("{status} {reason}: {message}");
    assert_eq!(status, "False");
    assert!(
        message.contains("spec.dnsZoneRef") && message.contains("ZNOSUCHZONE42"),
        "{message}"
    );
    // Five objects, resyncing every 2 s, for 10 s: the zone is asked once, not at every try.
    let since = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let lists = proxy
        .requests()
        .await
        .into_iter()
        .filter(|r| r.op == "ListResourceRecordSets")
        .count();
    println!(
        "ListResourceRecordSets for the missing zone in {:?} and before: {lists}",
        since.elapsed()
    );
    assert!(lists <= 2, "{lists} listings of a zone that does not exist");

    // Nothing of ours can be in a hosted zone that does not exist: deletion completes.
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    eventually("every GlobalIngress deleted", WAIT, || async {
        api.list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    let notes = event_notes(&client, &ns, "DeletedRecords").await;
    assert!(
        notes.iter().any(|n| n.contains("nothing to remove")),
        "{notes:?}"
    );
}

#[tokio::test]
async fn a_name_holding_only_a_foreign_mx_is_never_taken() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "mx").await;
    let zone = support::route53_zone(Some((&client, &ns)), "mx").await;
    let host = format!("mail.{}", zone.domain);
    let mx = format!("10 mx1.{}.", zone.domain);
    support::create_records(
        &zone.r53,
        &zone.zone_id,
        vec![support::record_set(&host, RrType::Mx, &[&mx])],
    )
    .await;
    let before = zone_records(&zone.r53, &zone.zone_id).await;
    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "mx",
        extra: &[],
    });
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &gi(&ns, "mail", &zone.name, &host))
        .await
        .unwrap();
    let (status, _, message) = eventually("HostnameConflict", WAIT, || async {
        condition(&api, "mail", "Ready")
            .await
            .filter(|c| c.1 == "HostnameConflict")
    })
    .await;
    assert_eq!(status, "False");
    assert!(message.contains("no GlobalIngress owns"), "{message}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        zone_records(&zone.r53, &zone.zone_id).await,
        before,
        "no A record and no registry beside someone's MX"
    );
}

#[tokio::test]
async fn records_changed_behind_its_back_are_restored_at_the_relist_interval() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "relist").await;
    let zone = support::route53_zone(Some((&client, &ns)), "relist").await;
    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "relist",
        extra: &["--zone-relist-interval", "2s", "--resync-interval", "2s"],
    });
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    let host = format!("web.{}", zone.domain);
    api.create(&PostParams::default(), &gi(&ns, "web", &zone.name, &host))
        .await
        .unwrap();
    let ours = || async {
        zone_records(&zone.r53, &zone.zone_id)
            .await
            .into_iter()
            .filter(|r| r.contains(&format!("\"{host}.\"")))
            .collect::<Vec<_>>()
    };
    let published = eventually("published", WAIT, || async {
        let records = ours().await;
        (!records.is_empty()).then_some(records)
    })
    .await;
    // Someone changes our A record by hand. (Deleting it would do as well at AWS; moto then
    // refuses to create it again: it checks a CREATE against its history of changes.)
    let listed = globalingress::dns::route53::Route53Zone::new(zone.r53.clone(), &zone.zone_id);
    let record = globalingress::dns::provider::ZoneProvider::list(&listed)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name == host)
        .unwrap();
    let mut edited = record.clone();
    edited.values = vec!["203.0.113.99".into()];
    globalingress::dns::provider::ZoneProvider::submit(
        &listed,
        &[globalingress::dns::records::Change::Upsert {
            old: record,
            new: edited,
        }],
    )
    .await
    .unwrap();
    let after_edit = ours().await;
    assert!(
        after_edit.len() == 1 && after_edit != published && after_edit[0].contains("203.0.113.99"),
        "{after_edit:?}"
    );
    let edited_at = Instant::now();
    let restored = eventually("restored", WAIT, || async {
        let records = ours().await;
        (records == published).then_some(records)
    })
    .await;
    println!(
        "a record edited by hand is back as planned after {:?} (relist every 2 s)",
        edited_at.elapsed()
    );
    assert_eq!(restored, published);
}

#[tokio::test]
async fn the_records_column_counts_our_record_sets_and_known_zones_are_not_rechecked_every_resync()
{
    let proxy = FaultProxy::start();
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "count").await;
    let zone = support::route53_zone(None, "count").await;
    // Foreign records do not count.
    support::create_records(
        &zone.r53,
        &zone.zone_id,
        vec![support::record_set(
            &format!("foreign.{}", zone.domain),
            RrType::A,
            &["198.51.100.9"],
        )],
    )
    .await;
    let zone_name = support::unique_name("count");
    let zones: Api<DNSZone> = Api::all(client.clone());
    zones
        .create(
            &PostParams::default(),
            &route53_dns_zone(&ns, &zone_name, &zone.domain, &zone.zone_id),
        )
        .await
        .unwrap();
    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "count",
        extra: &["--aws-endpoint-url", &proxy.url, "--resync-interval", "1s"],
    });
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    for name in ["one", "two"] {
        api.create(
            &PostParams::default(),
            &gi(&ns, name, &zone_name, &format!("{name}.{}", zone.domain)),
        )
        .await
        .unwrap();
    }
    // Two names, each its registry and one A record.
    eventually("recordCount 4", WAIT, || async {
        let z = zones.get(&zone_name).await.ok()?;
        (z.status?.record_count == Some(4)).then_some(())
    })
    .await;
    let table = support::kubectl_hub(&["get", "dnszone", &zone_name]);
    println!("{table}");
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(
        row.split_whitespace().any(|cell| cell == "4"),
        "the Records column shows 4: {table}"
    );

    // The zone is known: over 10 s of 1 s resyncs, with an annotation patched every second
    // (each patch reconciles the DNSZone at once), GetHostedZone is not called again.
    let gets = || async {
        proxy
            .requests()
            .await
            .into_iter()
            .filter(|r| r.op == "GetHostedZone")
            .count()
    };
    let before = gets().await;
    for i in 0..10 {
        zones
            .patch(
                &zone_name,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({ "metadata": { "annotations": { "test/poke": i.to_string() } } }),
                ),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let during = gets().await - before;
    println!(
        "GetHostedZone calls in 10 s of 1 s resyncs and 10 reconciling patches: {during} (before: {before})"
    );
    assert_eq!(during, 0, "a known zone was checked again {during} times");
    assert!(before >= 1, "the zone was checked at all");

    // A spec change checks it again at once.
    zones
        .patch(
            &zone_name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "ownerId": "test-hub-2" } })),
        )
        .await
        .unwrap();
    eventually("checked again after the change", WAIT, || async {
        (gets().await > before).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_zone_that_cannot_be_reached_holds_deletion_until_the_abandon_annotation() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "abandon").await;
    let zone = crate::controller::knot_zone(&client, &ns).await;
    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "abandon",
        extra: &[],
    });
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    let host = format!("{}.example.test", support::unique_name("abandon"));
    api.create(&PostParams::default(), &gi(&ns, "web", &zone, &host))
        .await
        .unwrap();
    eventually("published", WAIT, || async {
        condition(&api, "web", "DNSSynced")
            .await
            .filter(|c| c.0 == "True")
    })
    .await;
    // The zone's server moves somewhere nothing answers: its records cannot be reached.
    Api::<DNSZone>::all(client.clone())
        .patch(
            &zone,
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "spec": { "provider": { "rfc2136": { "server": "127.0.0.1:9" } } } }),
            ),
        )
        .await
        .unwrap();
    api.delete("web", &DeleteParams::default()).await.unwrap();
    // The finalizer stays (retried, and failing): our records are still there.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let stuck = api.get("web").await.unwrap();
    assert!(stuck.metadata.deletion_timestamp.is_some());
    assert_eq!(
        crate::publishing::answer(&host, globalingress::dns::RecordType::A).await,
        crate::publishing::set(&["192.0.2.44"]),
        "the records are still served"
    );
    // Letting go, documented: the object goes, and an Event says what was left behind.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "annotations": { "globalingress.io/abandon-records": "true" } } })),
    )
    .await
    .unwrap();
    eventually("deleted", WAIT, || async {
        api.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    let notes = event_notes(&client, &ns, "RecordsAbandoned").await;
    assert!(
        notes
            .iter()
            .any(|n| n.contains(&host) && n.contains("remove them by hand")),
        "{notes:?}"
    );
}
