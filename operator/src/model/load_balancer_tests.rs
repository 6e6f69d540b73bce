use super::*;
use crate::model::elb::{Kind, Protocol, Scheme, TargetHealthCheck, TargetKind};

fn check() -> TargetHealthCheck {
    TargetHealthCheck {
        protocol: Protocol::Tcp,
        path: None,
        port: "traffic-port".into(),
        interval_seconds: 10,
        timeout_seconds: 5,
        healthy_threshold: 2,
        unhealthy_threshold: 3,
        matcher: None,
    }
}

fn wanted(kind: Kind) -> WantedLoadBalancer {
    WantedLoadBalancer {
        target: "eu".into(),
        spoke: "spoke-eu".into(),
        name: "gi-web-eu-0123abcd".into(),
        kind,
        scheme: Scheme::Internal,
        vpc_id: "vpc-1".into(),
        subnets: BTreeSet::from(["subnet-a".to_owned(), "subnet-b".to_owned()]),
        security_groups: BTreeSet::from(["sg-1".to_owned()]),
        listener: WantedListener {
            port: 80,
            protocol: Protocol::Tcp,
            certificate: None,
        },
        redirect: None,
        target_group: WantedTargetGroup {
            name: "gi-web-eu-80-89abcdef".into(),
            protocol: Protocol::Tcp,
            port: 80,
            target_kind: TargetKind::Ip,
            health_check: check(),
            health_check_notes: Vec::new(),
            registrations: None,
        },
        alarm: None,
        tags: tags("hub-1", "shop/web", "eu", resources::LOAD_BALANCER),
    }
}

fn seen(name: &str, dns: &str, tags: BTreeMap<String, String>) -> SeenLoadBalancer {
    SeenLoadBalancer {
        arn: format!("arn:{name}"),
        name: name.into(),
        dns_name: dns.into(),
        hosted_zone_id: "Z1".into(),
        state: LbState::Active,
        kind: Some(Kind::Network),
        scheme: Some(Scheme::Internal),
        vpc_id: "vpc-1".into(),
        subnets: BTreeSet::from(["subnet-a".to_owned(), "subnet-b".to_owned()]),
        security_groups: BTreeSet::new(),
        tags,
    }
}

#[test]
fn ownership_is_read_from_the_tags_and_nothing_else() {
    let mine = tags("hub-1", "shop/web", "eu", resources::LOAD_BALANCER);
    assert_eq!(owned(&mine, "hub-1", "shop/web", "eu"), Owned::Mine);
    assert_eq!(
        owned(&mine, "hub-1", "shop/web", "us"),
        Owned::OurOther {
            global_ingress: "shop/web".into(),
            target: "eu".into()
        }
    );
    // Another hub's, a retained one and an untagged one are all foreign.
    assert_eq!(owned(&mine, "hub-2", "shop/web", "eu"), Owned::Foreign);
    let mut retained = mine.clone();
    retained.insert(TAG_OWNER.into(), retained_owner("hub-1"));
    assert_eq!(owned(&retained, "hub-1", "shop/web", "eu"), Owned::Foreign);
    assert_eq!(
        owned(&BTreeMap::new(), "hub-1", "shop/web", "eu"),
        Owned::Foreign
    );
}

#[test]
fn tags_name_owner_object_target_and_resource() {
    let t = tags("hub-1", "shop/web", "eu", resources::TARGET_GROUP);
    assert_eq!(t[TAG_OWNER], "hub-1");
    assert_eq!(t[TAG_GLOBALINGRESS], "shop/web");
    assert_eq!(t[TAG_TARGET], "eu");
    assert_eq!(t[TAG_RESOURCE], "targetgroup");
    assert_eq!(t["Name"], "shop/web/eu");
}

#[test]
fn subnets_change_in_place_and_security_groups_only_on_albs() {
    let w = wanted(Kind::Network);
    let mut s = seen("gi-web-eu-0123abcd", "a.elb", BTreeMap::new());
    assert!(
        load_balancer_changes(&w, &s).is_empty(),
        "an NLB has no groups"
    );
    s.subnets = BTreeSet::from(["subnet-a".to_owned()]);
    assert_eq!(
        load_balancer_changes(&w, &s).subnets,
        Some(w.subnets.clone())
    );
    let alb = wanted(Kind::Application);
    let s = seen("gi-web-eu-0123abcd", "a.elb", BTreeMap::new());
    assert_eq!(
        load_balancer_changes(&alb, &s).security_groups,
        Some(alb.security_groups.clone())
    );
}

#[test]
fn a_tcp_check_ignores_path_and_matcher_but_not_timing() {
    let mut other = check();
    other.path = Some("/ignored".into());
    other.matcher = Some("200".into());
    assert!(!health_check_differs(&check(), &other));
    other.interval_seconds = 30;
    assert!(health_check_differs(&check(), &other));
    let mut http = check();
    http.protocol = Protocol::Http;
    http.path = Some("/healthz".into());
    let mut moved = http.clone();
    moved.path = Some("/ready".into());
    assert!(health_check_differs(&http, &moved));
}

#[test]
fn the_listener_is_created_kept_or_pointed_at_the_new_group() {
    let w = WantedListener {
        port: 80,
        protocol: Protocol::Tcp,
        certificate: None,
    };
    assert_eq!(
        listener_change(&w, "tg-1", None, &[]),
        Some(ListenerChange::Create)
    );
    let l = SeenListener {
        arn: "l-1".into(),
        port: 80,
        protocol: "TCP".into(),
        target_group: Some("tg-1".into()),
        certificate: None,
        redirect_to: None,
    };
    assert_eq!(
        listener_change(&w, "tg-1", None, std::slice::from_ref(&l)),
        None
    );
    assert_eq!(
        listener_change(&w, "tg-2", None, std::slice::from_ref(&l)),
        Some(ListenerChange::Modify { arn: "l-1".into() })
    );
    let other_port = SeenListener { port: 443, ..l };
    assert_eq!(
        listener_change(&w, "tg-1", None, &[other_port]),
        Some(ListenerChange::Create)
    );
}

#[test]
fn tls_moves_the_listener_to_443_with_its_certificate_and_drops_the_plain_one() {
    let mut lb = wanted(Kind::Application);
    lb.listener = WantedListener {
        port: 443,
        protocol: Protocol::Https,
        certificate: Some(CertificateRef::Acm("1/eu-west-1".into())),
    };
    lb.redirect = Some(WantedRedirect {
        port: 80,
        to_port: 443,
    });
    let plain = SeenListener {
        arn: "l-80".into(),
        port: 80,
        protocol: "HTTP".into(),
        target_group: Some("tg-1".into()),
        certificate: None,
        redirect_to: None,
    };
    let https = SeenListener {
        arn: "l-443".into(),
        port: 443,
        protocol: "HTTPS".into(),
        target_group: Some("tg-1".into()),
        certificate: Some("cert-old".into()),
        redirect_to: None,
    };
    let seen = vec![plain.clone(), https.clone()];
    // A renewed (replaced) certificate is a modification of the same listener.
    assert_eq!(
        listener_change(&lb.listener, "tg-1", Some("cert-new"), &seen),
        Some(ListenerChange::Modify {
            arn: "l-443".into()
        })
    );
    assert_eq!(
        listener_change(&lb.listener, "tg-1", Some("cert-old"), &seen),
        None
    );
    // The plain listener on 80 becomes the redirect.
    let redirect = lb.redirect.unwrap_or(WantedRedirect {
        port: 0,
        to_port: 0,
    });
    assert_eq!(
        redirect_change(&redirect, &seen),
        Some(ListenerChange::Modify { arn: "l-80".into() })
    );
    let redirecting = SeenListener {
        target_group: None,
        redirect_to: Some(443),
        ..plain
    };
    assert_eq!(redirect_change(&redirect, &[redirecting]), None);
    assert!(unwanted_listeners(&lb, &seen).is_empty());
    // Without TLS, a listener on 443 is no longer wanted.
    let plain_lb = wanted(Kind::Application);
    let gone: Vec<&str> = unwanted_listeners(&plain_lb, &seen)
        .iter()
        .map(|l| l.arn.as_str())
        .collect();
    assert_eq!(gone, vec!["l-443"]);
}

#[test]
fn a_replaced_load_balancer_is_stale_only_once_no_record_points_at_it() {
    let old = seen("gi-web-eu-old", "old.elb", BTreeMap::new());
    let new = seen("gi-web-eu-new", "new.elb", BTreeMap::new());
    let wanted = BTreeSet::from(["gi-web-eu-new".to_owned()]);
    let still_published = BTreeSet::from(["old.elb".to_owned()]);
    assert!(stale(&wanted, &still_published, [&old, &new]).is_empty());
    let moved = BTreeSet::from(["new.elb".to_owned()]);
    let gone = stale(&wanted, &moved, [&old, &new]);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].name, "gi-web-eu-old");
}
