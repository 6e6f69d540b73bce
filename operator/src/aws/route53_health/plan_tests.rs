use std::time::Duration;

use super::*;

const OWNER: &str = "hub-1";
const RESOURCE: &str = "shop/web";

fn http(port: u16) -> CheckConfig {
    CheckConfig::Endpoint(EndpointCheck {
        protocol: Protocol::Http,
        endpoint: Endpoint::Ip {
            ip: "192.0.2.10".parse().unwrap(),
            host: Some("web.example.com".to_owned()),
        },
        port,
        resource_path: Some("/healthz".to_owned()),
        request_interval: RequestInterval::Fast,
        failure_threshold: 3,
    })
}

fn desired(target: &str, config: CheckConfig) -> DesiredCheck {
    DesiredCheck {
        owner: OWNER.to_owned(),
        resource: RESOURCE.to_owned(),
        target: target.to_owned(),
        config,
    }
}

fn existing(id: &str, owner: Option<&str>, target: &str, config: CheckConfig) -> ExistingCheck {
    ExistingCheck {
        id: id.to_owned(),
        caller_reference: format!("ref-{id}"),
        version: 4,
        config: Some(config.normalized()),
        drifted: false,
        tags: Tags {
            owner: owner.map(str::to_owned),
            global_ingress: Some(RESOURCE.to_owned()),
            resource: None,
            target: Some(target.to_owned()),
        },
    }
}

fn plan_one(desired: &[DesiredCheck], existing: &[ExistingCheck]) -> Vec<Action> {
    plan(desired, existing, OWNER, Scope::Resource(RESOURCE), 200)
}

#[test]
fn a_missing_check_is_created_with_normalized_settings() {
    let mut config = http(80);
    if let CheckConfig::Endpoint(check) = &mut config {
        check.endpoint = Endpoint::Name("Web.Example.COM.".to_owned());
        check.resource_path = None;
        check.failure_threshold = 0;
    }
    let actions = plan_one(&[desired("eu", config)], &[]);
    let [Action::Create { check }] = actions.as_slice() else {
        panic!("{actions:?}");
    };
    let CheckConfig::Endpoint(endpoint) = &check.config else {
        panic!("{check:?}");
    };
    assert_eq!(endpoint.endpoint, Endpoint::Name("web.example.com".into()));
    assert_eq!(endpoint.resource_path.as_deref(), Some("/"));
    assert_eq!(endpoint.failure_threshold, 1);
}

#[test]
fn an_equal_check_is_kept() {
    let actions = plan_one(
        &[desired("eu", http(80))],
        &[existing("hc1", Some(OWNER), "eu", http(80))],
    );
    assert_eq!(
        actions,
        vec![Action::Keep {
            id: "hc1".into(),
            target: "eu".into()
        }]
    );
}

#[test]
fn port_path_and_threshold_changes_are_updated_in_place() {
    let mut changed = http(8080);
    if let CheckConfig::Endpoint(check) = &mut changed {
        check.resource_path = Some("/ready".into());
        check.failure_threshold = 5;
    }
    let actions = plan_one(
        &[desired("eu", changed.clone())],
        &[existing("hc1", Some(OWNER), "eu", http(80))],
    );
    assert_eq!(
        actions,
        vec![Action::Update {
            id: "hc1".into(),
            version: 4,
            check: desired("eu", changed),
        }]
    );
}

#[test]
fn a_drifted_check_is_updated_in_place() {
    let mut drifted = existing("hc1", Some(OWNER), "eu", http(80));
    drifted.drifted = true;
    let actions = plan_one(&[desired("eu", http(80))], &[drifted]);
    assert!(
        matches!(actions.as_slice(), [Action::Update { id, .. }] if id == "hc1"),
        "{actions:?}"
    );
}

#[test]
fn a_protocol_or_interval_change_replaces_the_check() {
    let mut tcp = http(80);
    if let CheckConfig::Endpoint(check) = &mut tcp {
        check.protocol = Protocol::Tcp;
    }
    let mut slow = http(80);
    if let CheckConfig::Endpoint(check) = &mut slow {
        check.request_interval = RequestInterval::Standard;
    }
    let private = CheckConfig::private("eu-west-1", RESOURCE, "eu");
    for new in [tcp, slow, private] {
        let actions = plan_one(
            &[desired("eu", new.clone())],
            &[existing("hc1", Some(OWNER), "eu", http(80))],
        );
        assert_eq!(
            actions,
            vec![
                Action::Create {
                    check: desired("eu", new.normalized())
                },
                Action::Delete {
                    id: "hc1".into(),
                    resource: Some(RESOURCE.into()),
                    target: Some("eu".into())
                },
            ]
        );
    }
}

#[test]
fn a_duplicate_for_one_target_is_deleted_and_the_best_fit_kept() {
    let actions = plan_one(
        &[desired("eu", http(81))],
        &[
            existing("hc1", Some(OWNER), "eu", http(80)),
            existing("hc2", Some(OWNER), "eu", http(81)),
        ],
    );
    assert_eq!(
        actions,
        vec![
            Action::Keep {
                id: "hc2".into(),
                target: "eu".into()
            },
            Action::Delete {
                id: "hc1".into(),
                resource: Some(RESOURCE.into()),
                target: Some("eu".into())
            },
        ]
    );
}

#[test]
fn foreign_checks_are_never_touched() {
    let mut untagged = existing("untagged", None, "eu", http(80));
    untagged.tags = Tags::default();
    let existing = [
        existing("other", Some("hub-2"), "eu", http(80)),
        existing("other-gone", Some("hub-2"), "gone", http(80)),
        untagged,
    ];
    // The desired check gets a new one of its own; the foreign ones appear nowhere.
    let actions = plan_one(&[desired("eu", http(80))], &existing);
    assert_eq!(
        actions,
        vec![Action::Create {
            check: desired("eu", http(80).normalized())
        }]
    );
    let live = HashSet::new();
    assert_eq!(
        plan(&[], &existing, OWNER, Scope::All { live: &live }, 200),
        vec![]
    );
}

#[test]
fn a_removed_target_is_deleted_within_its_resource_only() {
    let mut elsewhere = existing("hc3", Some(OWNER), "eu", http(80));
    elsewhere.tags.global_ingress = Some("shop/other".into());
    let actions = plan_one(
        &[desired("eu", http(80))],
        &[
            existing("hc1", Some(OWNER), "eu", http(80)),
            existing("hc2", Some(OWNER), "us", http(80)),
            elsewhere,
        ],
    );
    assert_eq!(
        actions,
        vec![
            Action::Keep {
                id: "hc1".into(),
                target: "eu".into()
            },
            Action::Delete {
                id: "hc2".into(),
                resource: Some(RESOURCE.into()),
                target: Some("us".into())
            },
        ]
    );
}

#[test]
fn garbage_collection_deletes_what_is_not_live() {
    let mut orphan = existing("orphan", Some(OWNER), "eu", http(80));
    orphan.tags.global_ingress = Some("shop/deleted".into());
    let mut half_tagged = existing("half", Some(OWNER), "eu", http(80));
    half_tagged.tags.global_ingress = None;
    let existing = [
        existing("live", Some(OWNER), "eu", http(80)),
        existing("gone-target", Some(OWNER), "us", http(80)),
        orphan,
        half_tagged,
        existing("foreign", Some("hub-2"), "us", http(80)),
    ];
    let live = HashSet::from([(RESOURCE.to_owned(), "eu".to_owned())]);
    let deleted: Vec<_> = plan(&[], &existing, OWNER, Scope::All { live: &live }, 200)
        .into_iter()
        .map(|a| match a {
            Action::Delete { id, .. } => id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(deleted, vec!["gone-target", "half", "orphan"]);
}

#[test]
fn creates_beyond_the_quota_are_refused() {
    let foreign = [
        existing("f1", Some("hub-2"), "eu", http(80)),
        existing("f2", None, "eu", http(80)),
    ];
    let actions = plan(
        &[
            desired("a", http(80)),
            desired("b", http(80)),
            desired("c", http(80)),
        ],
        &foreign,
        OWNER,
        Scope::Resource(RESOURCE),
        3,
    );
    assert_eq!(
        actions,
        vec![
            Action::Create {
                check: desired("a", http(80).normalized())
            },
            Action::Refuse {
                target: "b".into(),
                why: QuotaExceeded {
                    in_use: 3,
                    quota: 3
                }
            },
            Action::Refuse {
                target: "c".into(),
                why: QuotaExceeded {
                    in_use: 3,
                    quota: 3
                }
            },
        ]
    );
    // Keeping and updating need no room.
    let full = [
        existing("f1", Some("hub-2"), "eu", http(80)),
        existing("hc1", Some(OWNER), "a", http(80)),
    ];
    let actions = plan(
        &[desired("a", http(81))],
        &full,
        OWNER,
        Scope::Resource(RESOURCE),
        2,
    );
    assert!(
        matches!(actions.as_slice(), [Action::Update { .. }]),
        "{actions:?}"
    );
}

#[test]
fn long_names_are_shortened_stably() {
    let long = format!("ns/{}", "x".repeat(300));
    let value = tag_value(&long);
    assert_eq!(value.chars().count(), 256);
    assert_eq!(value, tag_value(&long));
    assert_ne!(value, tag_value(&format!("{long}y")));
    assert_eq!(tag_value("shop/web"), "shop/web");
}

#[test]
fn alarm_names_are_sanitized() {
    assert_eq!(
        alarm_name("shop/web", "eu-1"),
        "globalingress-shop-web-eu-1"
    );
    assert_eq!(alarm_name(&"n".repeat(400), "t").len(), 255);
}

#[test]
fn the_request_interval_follows_the_probe_interval() {
    assert_eq!(
        RequestInterval::for_probe_interval(Duration::from_secs(5)),
        RequestInterval::Fast
    );
    assert_eq!(
        RequestInterval::for_probe_interval(Duration::from_secs(30)),
        RequestInterval::Standard
    );
}
