//! Route 53 health checks against the emulator: created, read back, updated in place, replaced,
//! pruned with their records, garbage-collected when orphaned, and foreign checks left alone;
//! the quota counts every check of the account.
//!
//! moto 5.2.5 gaps these tests work around (real Route 53 does these right):
//! - UpdateHealthCheck ignores `HealthCheckVersion` and never bumps it: "updated in place" is
//!   checked as same id, new settings.
//! - CLOUDWATCH_METRIC checks are created, but `AlarmIdentifier` and
//!   `InsufficientDataHealthStatus` are not kept.
//! - There is no health-check limit (`TooManyHealthChecks` never comes; the unit tests cover it),
//!   ListHealthChecks never pages, and deleting a missing check succeeds.
//!
//! The quota test has an account of its own (other tests create checks in the hub's account
//! concurrently): the operator's code acts there as role `globalingress-hub` (the hub policy),
//! the test as its admin role.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType, Tag, TagResourceType};
use globalingress::aws::Aws;
use globalingress::aws::budget::{Budget, BudgetConfig};
use globalingress::aws::route53_health::{
    CheckConfig, Config, Endpoint, EndpointCheck, HealthChecks, Protocol, RequestInterval,
    Route53HealthChecks,
};
use globalingress::model::ownership::{
    TAG_GLOBALINGRESS, TAG_NAME, TAG_OWNER, TAG_RESOURCE, TAG_TARGET,
};

use crate::support::{self, env};

/// The operator's own AWS setup: every call under the budget.
async fn budgeted() -> Aws {
    Aws::new(
        &support::operator_aws_settings(),
        Budget::new(
            BudgetConfig::default(),
            globalingress::leader::Leadership::always(),
        ),
    )
    .await
}

/// A plain client for what a human (or another tool) does by hand.
async fn raw() -> aws_sdk_route53::Client {
    aws_sdk_route53::Client::new(&support::aws().await)
}

fn https(port: u16) -> CheckConfig {
    CheckConfig::Endpoint(EndpointCheck {
        protocol: Protocol::Https,
        endpoint: Endpoint::Ip {
            ip: "192.0.2.10".parse().unwrap(),
            host: Some("web.example.test".to_owned()),
        },
        port,
        resource_path: Some("/healthz".to_owned()),
        request_interval: RequestInterval::Fast,
        failure_threshold: 2,
    })
}

fn plain(protocol: Protocol) -> CheckConfig {
    CheckConfig::Endpoint(EndpointCheck {
        protocol,
        endpoint: Endpoint::Ip {
            ip: "198.51.100.7".parse().unwrap(),
            host: None,
        },
        port: 80,
        resource_path: None,
        request_interval: RequestInterval::Standard,
        failure_threshold: 3,
    })
}

fn targets(list: &[(&str, CheckConfig)]) -> BTreeMap<String, CheckConfig> {
    list.iter()
        .map(|(t, c)| ((*t).to_owned(), c.clone()))
        .collect()
}

async fn config_of(r53: &aws_sdk_route53::Client, id: &str) -> HealthCheckConfig {
    r53.get_health_check()
        .health_check_id(id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetHealthCheck {id}: {e:?}"))
        .health_check()
        .and_then(|c| c.health_check_config())
        .cloned()
        .expect("health check config")
}

async fn tags_of(r53: &aws_sdk_route53::Client, id: &str) -> HashMap<String, String> {
    r53.list_tags_for_resource()
        .resource_type(TagResourceType::Healthcheck)
        .resource_id(id)
        .send()
        .await
        .expect("ListTagsForResource")
        .resource_tag_set()
        .map(|set| {
            set.tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

async fn exists(r53: &aws_sdk_route53::Client, id: &str) -> bool {
    match r53.get_health_check().health_check_id(id).send().await {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_health_check()) =>
        {
            false
        }
        Err(e) => panic!("GetHealthCheck {id}: {e:?}"),
    }
}

/// Creates a TCP check by hand with `tags`; returns its id.
async fn by_hand(r53: &aws_sdk_route53::Client, tags: &[(&str, &str)]) -> String {
    let id = r53
        .create_health_check()
        .caller_reference(support::unique_name("by-hand"))
        .health_check_config(
            HealthCheckConfig::builder()
                .r#type(HealthCheckType::Tcp)
                .ip_address("203.0.113.9")
                .port(80)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateHealthCheck")
        .health_check()
        .expect("health check")
        .id()
        .to_owned();
    if !tags.is_empty() {
        r53.change_tags_for_resource()
            .resource_type(TagResourceType::Healthcheck)
            .resource_id(&id)
            .set_add_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .send()
            .await
            .expect("ChangeTagsForResource");
    }
    id
}

#[tokio::test]
async fn health_checks_follow_their_targets() {
    let aws = budgeted().await;
    let r53 = raw().await;
    let registry = HealthChecks::route53(&aws, Config::default());
    let owner = support::unique_name("hc-owner");
    let resource = format!("{}/web", support::unique_name("ns"));

    // Created, tagged, as asked.
    let first = targets(&[("eu", https(443)), ("us", plain(Protocol::Tcp))]);
    let created = registry.sync(&owner, &resource, &first).await.unwrap();
    assert_eq!((created.created, created.updated, created.stale), (2, 0, 0));
    assert_eq!(created.quota_exhausted, None);
    let (eu, us) = (created.ids["eu"].clone(), created.ids["us"].clone());

    let eu_config = config_of(&r53, &eu).await;
    assert_eq!(eu_config.r#type(), &HealthCheckType::Https);
    assert_eq!(eu_config.ip_address(), Some("192.0.2.10"));
    assert_eq!(
        eu_config.fully_qualified_domain_name(),
        Some("web.example.test")
    );
    assert_eq!(eu_config.port(), Some(443));
    assert_eq!(eu_config.resource_path(), Some("/healthz"));
    assert_eq!(eu_config.request_interval(), Some(10));
    assert_eq!(eu_config.failure_threshold(), Some(2));
    assert_eq!(eu_config.enable_sni(), Some(true));
    let us_config = config_of(&r53, &us).await;
    assert_eq!(us_config.r#type(), &HealthCheckType::Tcp);
    assert_eq!(us_config.port(), Some(80));
    assert_eq!(us_config.resource_path(), None);
    assert_eq!(us_config.request_interval(), Some(30));

    let tags = tags_of(&r53, &eu).await;
    assert_eq!(tags.get(TAG_OWNER), Some(&owner));
    assert_eq!(tags.get(TAG_GLOBALINGRESS), Some(&resource));
    assert_eq!(
        tags.get(TAG_RESOURCE).map(String::as_str),
        Some("healthcheck")
    );
    assert_eq!(tags.get(TAG_TARGET).map(String::as_str), Some("eu"));
    assert_eq!(tags.get(TAG_NAME), Some(&format!("{resource}/eu")));

    // Nothing changes: kept, from the cache and from a fresh list alike (what is read back
    // compares equal to what was written).
    let fresh = HealthChecks::route53(&aws, Config::default());
    for registry in [&registry, &fresh] {
        let kept = registry.sync(&owner, &resource, &first).await.unwrap();
        assert_eq!((kept.created, kept.updated, kept.stale), (0, 0, 0));
        assert_eq!(kept.ids, created.ids);
    }

    // A port change: the same check, updated in place. (moto does not bump HealthCheckVersion.)
    let moved = targets(&[("eu", https(8443)), ("us", plain(Protocol::Tcp))]);
    let updated = registry.sync(&owner, &resource, &moved).await.unwrap();
    assert_eq!((updated.created, updated.updated), (0, 1));
    assert_eq!(updated.ids["eu"], eu);
    assert_eq!(config_of(&r53, &eu).await.port(), Some(8443));

    // A protocol change: Route 53 cannot change a type, so a new check; the old one goes once
    // the records no longer name it.
    let http = targets(&[("eu", https(8443)), ("us", plain(Protocol::Http))]);
    let replaced = registry.sync(&owner, &resource, &http).await.unwrap();
    assert_eq!((replaced.created, replaced.stale), (1, 1));
    assert_ne!(replaced.ids["us"], us);
    assert!(exists(&r53, &us).await, "deleted before the records moved");
    assert_eq!(
        registry
            .prune(&owner, &resource, &replaced.ids)
            .await
            .unwrap(),
        1
    );
    assert!(!exists(&r53, &us).await);
    let us = replaced.ids["us"].clone();
    assert_eq!(config_of(&r53, &us).await.r#type(), &HealthCheckType::Http);

    // A target removed: its check goes with its records.
    let fewer = registry
        .sync(&owner, &resource, &targets(&[("eu", https(8443))]))
        .await
        .unwrap();
    assert_eq!(fewer.stale, 1);
    assert_eq!(
        registry.prune(&owner, &resource, &fewer.ids).await.unwrap(),
        1
    );
    assert!(!exists(&r53, &us).await);
    assert!(exists(&r53, &eu).await);

    // Garbage: a check tagged with our owner for a resource that is gone. Foreign checks (another
    // owner's, untagged) are never touched.
    let gone = format!("{}/deleted", support::unique_name("ns"));
    let orphan = by_hand(
        &r53,
        &[
            (TAG_OWNER, &owner),
            (TAG_GLOBALINGRESS, &gone),
            (TAG_TARGET, "eu"),
        ],
    )
    .await;
    let other_owner = support::unique_name("hc-other");
    let foreign = by_hand(
        &r53,
        &[
            (TAG_OWNER, &other_owner),
            (TAG_GLOBALINGRESS, &gone),
            (TAG_TARGET, "eu"),
        ],
    )
    .await;
    let untagged = by_hand(&r53, &[]).await;
    let live = HashSet::from([(resource.clone(), "eu".to_owned())]);
    assert_eq!(registry.collect_garbage(&owner, &live).await.unwrap(), 1);
    assert!(!exists(&r53, &orphan).await);
    assert!(exists(&r53, &foreign).await);
    assert!(exists(&r53, &untagged).await);
    assert!(exists(&r53, &eu).await);

    // The resource deleted (after its records): nothing of ours is left, foreign checks stay.
    assert_eq!(
        registry
            .prune(&owner, &resource, &BTreeMap::new())
            .await
            .unwrap(),
        1
    );
    assert!(!exists(&r53, &eu).await);
    assert_eq!(
        registry
            .collect_garbage(&other_owner, &HashSet::new())
            .await
            .unwrap(),
        1,
        "the other owner's own collection removes its check"
    );
    assert!(exists(&r53, &untagged).await);
    r53.delete_health_check()
        .health_check_id(&untagged)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn private_targets_follow_a_cloudwatch_alarm() {
    let aws = budgeted().await;
    let r53 = raw().await;
    let registry = HealthChecks::route53(&aws, Config::default());
    let owner = support::unique_name("hc-private");
    let resource = format!("{}/internal", support::unique_name("ns"));

    let private = CheckConfig::private("eu-west-1", &resource, "eu");
    let out = registry
        .sync(&owner, &resource, &targets(&[("eu", private)]))
        .await
        .unwrap();
    assert_eq!(out.created, 1);
    let config = config_of(&r53, &out.ids["eu"]).await;
    assert_eq!(config.r#type(), &HealthCheckType::CloudwatchMetric);
    // moto 5.2.5 drops the alarm. When this fails, moto keeps it: assert its name
    // (`globalingress-<namespace>-internal-eu`), region and LastKnownStatus instead.
    assert_eq!(config.alarm_identifier(), None);

    assert_eq!(
        registry
            .prune(&owner, &resource, &BTreeMap::new())
            .await
            .unwrap(),
        1
    );
}

/// The account only the quota test uses (`tests/env/iam_setup.py` made its roles).
const QUOTA_ACCOUNT: &str = "555555555555";

/// `config` with the credentials of `role` (assumed with the tests' admin keys).
async fn as_role(config: &aws_config::SdkConfig, role: &str) -> aws_config::SdkConfig {
    let assumed = support::network::assumed(&support::aws().await, role).await;
    let mut builder = config.to_builder();
    builder.set_credentials_provider(assumed.credentials_provider());
    builder.build()
}

#[tokio::test]
async fn the_quota_counts_every_check_of_the_account() {
    let mut aws = budgeted().await;
    aws.sdk = as_role(
        &aws.sdk,
        &format!("arn:aws:iam::{QUOTA_ACCOUNT}:role/globalingress-hub"),
    )
    .await;
    let r53 = aws_sdk_route53::Client::new(
        &support::network::assumed(
            &support::aws().await,
            &support::moto::admin_role(QUOTA_ACCOUNT),
        )
        .await,
    );
    // Empty, whatever an earlier run on this environment left.
    for check in r53
        .list_health_checks()
        .send()
        .await
        .expect("ListHealthChecks")
        .health_checks()
    {
        r53.delete_health_check()
            .health_check_id(check.id())
            .send()
            .await
            .expect("DeleteHealthCheck");
    }
    let owner = support::unique_name("hc-quota");
    let resource = format!("{}/web", support::unique_name("ns"));

    by_hand(&r53, &[(TAG_OWNER, "someone-else")]).await;
    by_hand(&r53, &[]).await;
    let count = || async {
        r53.list_health_checks()
            .send()
            .await
            .expect("ListHealthChecks")
            .health_checks()
            .len()
    };
    assert_eq!(count().await, 2, "the account is not isolated");

    let wanted = targets(&[("eu", https(443)), ("us", plain(Protocol::Tcp))]);
    let registry = |quota| {
        HealthChecks::new(
            Arc::new(Route53HealthChecks::new(aws.route53())),
            Config {
                quota,
                ..Config::default()
            },
        )
    };

    // Full: nothing created, and it is an outcome, not an error.
    let full = registry(2).sync(&owner, &resource, &wanted).await.unwrap();
    assert_eq!(full.created, 0);
    assert!(full.ids.is_empty());
    let message = full.quota_exhausted.expect("quota_exhausted");
    assert!(message.contains("eu, us"), "{message}");
    assert!(message.contains("quota is 2"), "{message}");
    assert_eq!(count().await, 2);

    // Room for one more: the first target gets it.
    let partial = registry(3).sync(&owner, &resource, &wanted).await.unwrap();
    assert_eq!(partial.created, 1);
    assert_eq!(partial.ids.keys().collect::<Vec<_>>(), ["eu"]);
    assert!(
        partial
            .quota_exhausted
            .as_deref()
            .is_some_and(|m| m.contains("for us:")),
        "{partial:?}"
    );
    assert_eq!(count().await, 3);
}

/// The record sets at `host` and the health check each names, by set identifier prefix (the
/// target).
async fn record_checks(
    r53: &aws_sdk_route53::Client,
    zone_id: &str,
    host: &str,
) -> BTreeMap<String, Option<String>> {
    let out = r53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .send()
        .await
        .expect("ListResourceRecordSets");
    out.resource_record_sets()
        .iter()
        .filter(|r| r.name().trim_end_matches('.') == host)
        .filter_map(|r| {
            let target = r.set_identifier()?.split('.').next()?.to_owned();
            Some((target, r.health_check_id().map(str::to_owned)))
        })
        .collect()
}

/// The operator end to end: `healthCheck.route53: Public` creates one check per target, the
/// records name them, a spec change updates them in place, a removed target's check goes after
/// its records, deletion removes the rest, and the garbage collector deletes an orphan tagged as
/// ours while foreign and untagged checks stay.
#[tokio::test]
async fn the_operator_attaches_updates_and_removes_health_checks_with_the_records() {
    use globalingress::api::GlobalIngress;
    use kube::Api;
    use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
    use serde_json::json;

    use crate::support::dataplane::DataPlane;
    use crate::support::operator::{Operator, Options, eventually};

    let wait = std::time::Duration::from_secs(40);
    let client = support::kube(support::Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "r53hc").await;
    let zone = support::route53_zone(Some((&client, &ns)), "r53hc").await;
    let r53 = raw().await;
    let planes = DataPlane::start_many(&["127.0.0.10", "127.0.0.11"]).await;
    let port = planes[0].port();

    // An orphan with our owner tag (its GlobalIngress is long gone), a foreign check, and an
    // untagged one.
    let orphan = by_hand(
        &r53,
        &[
            (TAG_OWNER, "test-hub"),
            (TAG_RESOURCE, &format!("{ns}/ghost")),
            (TAG_TARGET, "eu"),
        ],
    )
    .await;
    let foreign = by_hand(&r53, &[(TAG_OWNER, "another-hub"), (TAG_TARGET, "eu")]).await;
    let untagged = by_hand(&r53, &[]).await;

    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "r53hc",
        extra: &["--health-check-gc-interval", "3s"],
    });
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    let host = format!("web.{}", zone.domain);
    let target = |name: &str, ip: &str| {
        json!({ "name": name, "weight": 1,
                "loadBalancer": { "mode": "External", "external": { "addresses": [ip] } } })
    };
    let gi: GlobalIngress = serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
        "metadata": { "name": "web", "labels": support::shard(&ns) },
        "spec": { "hostnames": [host], "dnsZoneRef": zone.name, "routing": { "policy": "Weighted" },
                  "healthCheck": { "protocol": "HTTP", "path": "/healthz", "port": port,
                                   "interval": "1s", "timeout": "500ms", "route53": "Public" },
                  "targets": [target("eu", &planes[0].ip()), target("us", &planes[1].ip())] }
    }))
    .unwrap();
    api.create(&PostParams::default(), &gi).await.unwrap();

    // Each target's records name its own check, tagged with the owner and the target.
    let ids = eventually("records name their health checks", wait, || async {
        let checks = record_checks(&r53, &zone.zone_id, &host).await;
        let ids: BTreeMap<String, String> = checks
            .into_iter()
            .map(|(t, id)| Some((t, id?)))
            .collect::<Option<_>>()?;
        (ids.len() == 2).then_some(ids)
    })
    .await;
    for (t, id) in &ids {
        let tags = tags_of(&r53, id).await;
        assert_eq!(tags.get(TAG_OWNER).map(String::as_str), Some("test-hub"));
        assert_eq!(tags.get(TAG_GLOBALINGRESS), Some(&format!("{ns}/web")));
        assert_eq!(
            tags.get(TAG_RESOURCE).map(String::as_str),
            Some("healthcheck")
        );
        assert_eq!(tags.get(TAG_TARGET), Some(t));
        let config = config_of(&r53, id).await;
        assert_eq!(config.port(), Some(i32::from(port)));
        assert_eq!(config.resource_path(), Some("/healthz"));
    }
    assert_ne!(ids["eu"], ids["us"]);
    // Synced in the background: Unknown (Syncing) first, then True.
    let condition = eventually("HealthChecksSynced True", wait, || async {
        let gi = api.get("web").await.ok()?;
        globalingress::api::condition::find(&gi.status?.conditions, "HealthChecksSynced")
            .filter(|c| c.status == "True")
            .cloned()
    })
    .await;
    assert!(
        condition.message.contains("2 Route 53 health check(s)"),
        "{condition:?}"
    );

    // A new path: the same checks, updated in place.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"healthCheck": {"path": "/ready"}}})),
    )
    .await
    .unwrap();
    eventually("checks updated in place", wait, || async {
        for id in ids.values() {
            if config_of(&r53, id).await.resource_path() != Some("/ready") {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert_eq!(
        record_checks(&r53, &zone.zone_id, &host)
            .await
            .into_values()
            .flatten()
            .collect::<HashSet<_>>(),
        ids.values().cloned().collect::<HashSet<_>>()
    );

    // The orphan is collected; the foreign and the untagged checks stay.
    eventually("orphan collected", wait, || async {
        (!exists(&r53, &orphan).await).then_some(())
    })
    .await;

    // us leaves: its records go, then its check.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"targets": [target("eu", &planes[0].ip())]}})),
    )
    .await
    .unwrap();
    eventually("us's check deleted", wait, || async {
        (!exists(&r53, &ids["us"]).await).then_some(())
    })
    .await;
    assert!(exists(&r53, &ids["eu"]).await);
    assert!(
        !record_checks(&r53, &zone.zone_id, &host)
            .await
            .contains_key("us")
    );

    // Deleted: the records and then the last check.
    api.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("eu's check deleted", wait, || async {
        (!exists(&r53, &ids["eu"]).await).then_some(())
    })
    .await;
    assert!(record_checks(&r53, &zone.zone_id, &host).await.is_empty());
    assert!(exists(&r53, &foreign).await, "a foreign check was touched");
    assert!(
        exists(&r53, &untagged).await,
        "an untagged check was touched"
    );
}
