use std::collections::BTreeMap;
use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::api::global_ingress::{Geo, GlobalIngressSpec, Target};
use crate::model::dns::Continent;

fn spec(yaml: &str) -> GlobalIngressSpec {
    serde_saphyr::from_str(yaml).expect("spec yaml")
}

fn zone(provider: ProviderKind) -> Zone {
    Zone {
        domain: "example.com".into(),
        provider,
        private: false,
    }
}

fn addr(ips: &[&str], health: Health) -> Observed {
    Observed {
        endpoint: Some(Endpoint::Addresses(
            ips.iter().map(|i| i.parse::<IpAddr>().unwrap()).collect(),
        )),
        region: Some("eu-west-1".into()),
        health,
    }
}

const WEIGHTED: &str = r#"
hostnames: [app.example.com]
dnsZoneRef: z
routing: { policy: Weighted }
targets:
  - { name: a, weight: 10, loadBalancer: { mode: External, external: { addresses: [192.0.2.1] } } }
  - { name: b, weight: 20, loadBalancer: { mode: External, external: { addresses: [192.0.2.2] } } }
"#;

fn observed(pairs: &[(&str, Observed)]) -> BTreeMap<String, Observed> {
    pairs
        .iter()
        .map(|(n, o)| ((*n).to_owned(), o.clone()))
        .collect()
}

#[test]
fn weighted_gives_one_record_per_target_and_zero_to_the_unhealthy() {
    let s = spec(WEIGHTED);
    let p = plan(
        &s,
        &zone(ProviderKind::Route53),
        &observed(&[
            ("a", addr(&["192.0.2.1"], Health::Healthy)),
            ("b", addr(&["192.0.2.2"], Health::Unhealthy)),
        ]),
    );
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let weights: Vec<(String, u8)> = p
        .records
        .iter()
        .map(|r| match &r.routing {
            RecordRouting::Weighted { set_id, weight } => (set_id.clone(), *weight),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(weights, vec![("a".into(), 10), ("b".into(), 0)]);
    assert_eq!(p.active_targets, vec!["a"]);
    assert!(!p.failing_open);
}

#[test]
fn every_target_unhealthy_fails_open() {
    let s = spec(WEIGHTED);
    let p = plan(
        &s,
        &zone(ProviderKind::Route53),
        &observed(&[
            ("a", addr(&["192.0.2.1"], Health::Unhealthy)),
            ("b", addr(&["192.0.2.2"], Health::Unhealthy)),
        ]),
    );
    assert!(p.failing_open);
    assert!(
        p.notices
            .iter()
            .any(|n| n.reason == reasons::ALL_TARGETS_UNHEALTHY)
    );
    assert_eq!(p.active_targets, vec!["a", "b"]);
    assert!(
        p.records
            .iter()
            .all(|r| matches!(r.routing, RecordRouting::Weighted { weight, .. } if weight > 0))
    );
}

#[test]
fn failover_tiers_weight_only_the_best_healthy_tier() {
    let s = spec(
        r#"
hostnames: [api.example.com]
dnsZoneRef: z
routing: { policy: Failover }
targets:
  - { name: p0, priority: 0, loadBalancer: { mode: External, external: { addresses: [192.0.2.1] } } }
  - { name: p1a, priority: 1, loadBalancer: { mode: External, external: { addresses: [192.0.2.2] } } }
  - { name: p1b, priority: 1, loadBalancer: { mode: External, external: { addresses: [192.0.2.3] } } }
  - { name: p2, priority: 2, loadBalancer: { mode: External, external: { addresses: [192.0.2.4] } } }
"#,
    );
    let weights = |health: [Health; 4]| {
        let o = observed(&[
            ("p0", addr(&["192.0.2.1"], health[0])),
            ("p1a", addr(&["192.0.2.2"], health[1])),
            ("p1b", addr(&["192.0.2.3"], health[2])),
            ("p2", addr(&["192.0.2.4"], health[3])),
        ]);
        plan(&s, &zone(ProviderKind::Route53), &o)
            .records
            .iter()
            .map(|r| match r.routing {
                RecordRouting::Weighted { weight, .. } => weight,
                _ => 255,
            })
            .collect::<Vec<_>>()
    };
    use Health::*;
    assert_eq!(
        weights([Healthy, Healthy, Healthy, Healthy]),
        vec![1, 0, 0, 0]
    );
    assert_eq!(
        weights([Unhealthy, Healthy, Unhealthy, Healthy]),
        vec![0, 1, 0, 0]
    );
    assert_eq!(
        weights([Unhealthy, Unhealthy, Unhealthy, Healthy]),
        vec![0, 0, 0, 1]
    );
}

#[test]
fn geolocation_lists_every_geography_and_the_default() {
    let s = spec(
        r#"
hostnames: [m.example.com]
dnsZoneRef: z
routing: { policy: Geolocation }
targets:
  - { name: eu, geo: { continents: [EU], countries: [TR] }, loadBalancer: { mode: External, external: { addresses: [192.0.2.1] } } }
  - { name: us, geo: { default: true, subdivisions: [US-CA] }, loadBalancer: { mode: External, external: { addresses: [192.0.2.2] } } }
"#,
    );
    let p = plan(
        &s,
        &zone(ProviderKind::Route53),
        &observed(&[
            ("eu", addr(&["192.0.2.1"], Health::Healthy)),
            ("us", addr(&["192.0.2.2"], Health::Healthy)),
        ]),
    );
    let ids: Vec<&str> = p.records.iter().map(|r| r.routing.set_id()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["eu-eu", "eu-tr", "us-default", "us-us-ca"]);
}

#[test]
fn an_unhealthy_regions_geographies_go_to_the_nearest_healthy_target() {
    let s = spec(
        r#"
hostnames: [m.example.com]
dnsZoneRef: z
routing: { policy: Geolocation }
targets:
  - { name: dublin, geo: { continents: [EU] }, loadBalancer: { mode: External, external: { addresses: [192.0.2.1] } } }
  - { name: london, geo: { countries: [GB] }, loadBalancer: { mode: External, external: { addresses: [192.0.2.2] } } }
  - { name: virginia, geo: { default: true }, loadBalancer: { mode: External, external: { addresses: [192.0.2.3] } } }
"#,
    );
    let at = |ip: &str, region: &str, h: Health| Observed {
        region: Some(region.into()),
        ..addr(&[ip], h)
    };
    let p = plan(
        &s,
        &zone(ProviderKind::Route53),
        &observed(&[
            ("dublin", at("192.0.2.1", "eu-west-1", Health::Unhealthy)),
            ("london", at("192.0.2.2", "eu-west-2", Health::Healthy)),
            ("virginia", at("192.0.2.3", "us-east-1", Health::Healthy)),
        ]),
    );
    let europe = p
        .records
        .iter()
        .find(|r| r.routing.set_id() == "dublin-eu")
        .unwrap();
    assert_eq!(
        europe.values,
        vec!["192.0.2.2"],
        "London is nearer to Dublin than Virginia"
    );
    assert_eq!(europe.targets, vec!["london"]);
    assert_eq!(p.records.len(), 3, "every geography is still published");
}

#[test]
fn latency_needs_a_region() {
    let s = spec(
        r#"
hostnames: [s.example.com]
dnsZoneRef: z
routing: { policy: Latency }
targets:
  - { name: a, loadBalancer: { mode: External, external: { addresses: [192.0.2.1] } } }
"#,
    );
    let mut o = addr(&["192.0.2.1"], Health::Healthy);
    let p = plan(
        &s,
        &zone(ProviderKind::Route53),
        &observed(&[("a", o.clone())]),
    );
    assert!(
        matches!(&p.records[0].routing, RecordRouting::Latency { region, .. } if region == "eu-west-1")
    );
    o.region = None;
    let p = plan(&s, &zone(ProviderKind::Route53), &observed(&[("a", o)]));
    assert_eq!(p.problems[0].reason, reasons::MISSING_REGION);
    assert_eq!(p.problems[0].field, "spec.targets[0].region");
}

#[test]
fn ipv4_and_ipv6_become_a_and_aaaa_and_alias_for_known_load_balancers() {
    let s = spec(WEIGHTED);
    let lb = Observed {
        endpoint: Some(Endpoint::Hostname {
            name: "lb-1.elb.eu-west-1.amazonaws.com".into(),
            alias_hosted_zone_id: Some("Z32O12XQLNTSW2".into()),
        }),
        region: None,
        health: Health::Healthy,
    };
    let p = plan(
        &s,
        &zone(ProviderKind::Route53),
        &observed(&[
            ("a", addr(&["192.0.2.1", "2001:db8::1"], Health::Healthy)),
            ("b", lb),
        ]),
    );
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let kinds: Vec<(RecordType, bool)> = p
        .records
        .iter()
        .map(|r| (r.rtype, r.alias.is_some()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (RecordType::A, false),
            (RecordType::A, true),
            (RecordType::AAAA, false)
        ]
    );
    assert_eq!(
        p.records[1].ttl, None,
        "alias records take the load balancer's TTL"
    );
}

#[test]
fn cname_targets_cannot_mix_with_addresses_or_sit_at_the_apex() {
    let s = spec(WEIGHTED);
    let cname = Observed {
        endpoint: Some(Endpoint::Hostname {
            name: "legacy.example.net".into(),
            alias_hosted_zone_id: None,
        }),
        region: None,
        health: Health::Healthy,
    };
    let p = plan(
        &s,
        &zone(ProviderKind::Route53),
        &observed(&[
            ("a", addr(&["192.0.2.1"], Health::Healthy)),
            ("b", cname.clone()),
        ]),
    );
    assert_eq!(p.problems[0].reason, reasons::MIXED_ENDPOINT_KINDS);
    assert!(
        p.records.is_empty(),
        "nothing is published while the spec has a problem"
    );

    let mut apex = spec(WEIGHTED);
    apex.hostnames = vec!["example.com".into()];
    apex.targets.truncate(1);
    let p = plan(
        &apex,
        &zone(ProviderKind::Route53),
        &observed(&[("a", cname)]),
    );
    assert_eq!(p.problems[0].reason, reasons::CNAME_AT_APEX);
    assert_eq!(p.problems[0].field, "spec.hostnames[0]");
}

#[test]
fn hostnames_outside_the_zone_are_problems_naming_the_field() {
    let mut s = spec(WEIGHTED);
    s.hostnames.push("app.example.org".into());
    let p = plan(&s, &zone(ProviderKind::Route53), &BTreeMap::new());
    assert_eq!(p.problems[0].reason, reasons::HOSTNAME_OUTSIDE_ZONE);
    assert_eq!(p.problems[0].field, "spec.hostnames[1]");
    assert_eq!(p.pending_targets, vec!["a", "b"]);
}

#[test]
fn rfc2136_publishes_one_rrset_of_the_active_targets() {
    let s = spec(WEIGHTED);
    let p = plan(
        &s,
        &zone(ProviderKind::Rfc2136),
        &observed(&[
            ("a", addr(&["192.0.2.1"], Health::Healthy)),
            ("b", addr(&["192.0.2.2", "2001:db8::2"], Health::Healthy)),
        ]),
    );
    assert_eq!(p.records.len(), 2);
    assert_eq!(p.records[0].values, vec!["192.0.2.1", "192.0.2.2"]);
    assert_eq!(p.records[0].routing, RecordRouting::Simple);
    assert_eq!(p.records[1].rtype, RecordType::AAAA);
}

fn arb_health() -> impl Strategy<Value = Health> {
    prop_oneof![
        Just(Health::Healthy),
        Just(Health::Unhealthy),
        Just(Health::Unknown)
    ]
}

proptest! {
    /// Weights are never all zero while a target with weight > 0 is healthy; no record carries
    /// weight for an unhealthy target unless failing open; input order does not matter.
    #[test]
    fn weighted_invariants(targets in prop::collection::vec((1u8..=255, arb_health()), 1..8), rotate in 0usize..8) {
        let mut s = spec(WEIGHTED);
        s.targets = targets.iter().enumerate().map(|(i, (w, _))| Target {
            name: format!("t{i}"),
            weight: Some(i32::from(*w)),
            ..s.targets[0].clone()
        }).collect();
        let o: BTreeMap<String, Observed> = targets.iter().enumerate()
            .map(|(i, (_, h))| (format!("t{i}"), addr(&[&format!("192.0.2.{}", i + 1)], *h)))
            .collect();
        let p = plan(&s, &zone(ProviderKind::Route53), &o);
        let weight_of = |p: &Routes, name: &str| p.records.iter().find_map(|r| match &r.routing {
            RecordRouting::Weighted { set_id, weight } if set_id == name => Some(*weight),
            _ => None,
        });
        let any_up = targets.iter().any(|(_, h)| *h != Health::Unhealthy);
        let positive = p.records.iter().any(|r| matches!(r.routing, RecordRouting::Weighted { weight, .. } if weight > 0));
        prop_assert!(positive, "some weight must be above 0");
        prop_assert_eq!(p.failing_open, !any_up);
        for (i, (_, h)) in targets.iter().enumerate() {
            if *h == Health::Unhealthy && any_up {
                prop_assert_eq!(weight_of(&p, &format!("t{i}")), Some(0));
            }
        }
        let mut rotated = s.clone();
        let n = rotated.targets.len();
        rotated.targets.rotate_left(rotate % n);
        prop_assert_eq!(plan(&rotated, &zone(ProviderKind::Route53), &o).records, p.records);
    }

    /// Geographies published never depend on health (coverage never shrinks) and every record
    /// points at a listed target.
    #[test]
    fn geo_coverage_is_stable(h1 in arb_health(), h2 in arb_health()) {
        let mut s = spec(WEIGHTED);
        s.routing.policy = RoutingPolicy::Geolocation;
        s.targets[0].geo = Some(Geo { continents: vec![Continent::EU], ..Geo::default() });
        s.targets[1].geo = Some(Geo { default: true, ..Geo::default() });
        let all_up = plan(&s, &zone(ProviderKind::Route53), &observed(&[
            ("a", addr(&["192.0.2.1"], Health::Healthy)), ("b", addr(&["192.0.2.2"], Health::Healthy))]));
        let p = plan(&s, &zone(ProviderKind::Route53), &observed(&[
            ("a", addr(&["192.0.2.1"], h1)), ("b", addr(&["192.0.2.2"], h2))]));
        let ids = |p: &Routes| p.records.iter().map(|r| r.routing.set_id().to_owned()).collect::<Vec<_>>();
        prop_assert_eq!(ids(&p), ids(&all_up));
    }
}
