//! routing: `(spec, zone, observed targets) -> Routes`, the record sets of one GlobalIngress
//! per routing policy (pure, like the whole plan).
//!
//! How each policy becomes records (Route 53):
//! - **Weighted**: one record set per target and record type, `SetIdentifier` = target name,
//!   `Weight` = the spec's weight, 0 while the target is unhealthy.
//! - **Failover** with any number of priority tiers: Route 53's native PRIMARY/SECONDARY has two
//!   levels only, so tiers are weighted records — every target of the best tier that has a
//!   healthy member gets weight 1, every other target weight 0. Traffic moves as soon as the
//!   operator re-weights, with one change batch per zone.
//! - **Geolocation**: one record set per continent, country and subdivision a target lists
//!   (`SetIdentifier` = `<target>-<code>`), plus `*` (default location) for the default target.
//! - **Latency**: one record set per target with the target's region.
//!
//! A target's records are A and AAAA for addresses, CNAME for a hostname, and ALIAS (with
//! `EvaluateTargetHealth`) for a hostname whose Route 53 hosted zone is known (an AWS load
//! balancer). RFC 2136 zones cannot weight or route by geography: they get one plain RRset per
//! hostname and type holding the active targets (see [`ProviderKind::Rfc2136`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

pub use super::{Notice, Problem};
use crate::api::global_ingress::{GlobalIngressSpec, RoutingPolicy, Target};
pub use crate::model::dns::{
    Alias, Location, ProviderKind, RecordRouting, RecordSet, RecordType, Zone,
};
pub use crate::model::target::{Endpoint, Health, Observed};

/// The records of one GlobalIngress and what they say about its targets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Routes {
    /// Record sets to publish, sorted.
    pub records: Vec<RecordSet>,
    /// Targets that receive traffic.
    pub active_targets: Vec<String>,
    /// Targets whose endpoint is not known yet (they get no records until it is).
    pub pending_targets: Vec<String>,
    pub problems: Vec<Problem>,
    pub notices: Vec<Notice>,
    /// Every target is unhealthy: all are published anyway (fail open).
    pub failing_open: bool,
}

/// Problem and notice reasons.
pub mod reasons {
    /// `spec.dnsZoneRef` names no DNSZone (of this shard).
    pub const DNS_ZONE_NOT_FOUND: &str = "DNSZoneNotFound";
    /// A target's `clusterRef` names no SpokeCluster (of this shard).
    pub const SPOKE_CLUSTER_NOT_FOUND: &str = "SpokeClusterNotFound";
    /// A hostname an older GlobalIngress claims, or a name holding records we do not own.
    pub const HOSTNAME_CONFLICT: &str = "HostnameConflict";
    pub const HOSTNAME_OUTSIDE_ZONE: &str = "HostnameOutsideZone";
    pub const CNAME_AT_APEX: &str = "CnameAtZoneApex";
    pub const MIXED_ENDPOINT_KINDS: &str = "MixedEndpointKinds";
    pub const MISSING_REGION: &str = "MissingRegion";
    pub const POLICY_NOT_EXPRESSIBLE: &str = "ProviderCannotExpressPolicy";
    pub const ALL_TARGETS_UNHEALTHY: &str = "AllTargetsUnhealthy";
    pub const NO_ENDPOINT_YET: &str = "TargetEndpointPending";
}

/// Computes the records for `spec` in `zone`, given what is known of each target (by name;
/// a target missing from `observed` is pending). Set identifiers are the target names.
pub fn plan(
    spec: &GlobalIngressSpec,
    zone: &Zone,
    observed: &BTreeMap<String, Observed>,
) -> Routes {
    plan_for("", spec, zone, observed)
}

/// [`plan`] for the GlobalIngress `owner` (`namespace/name`): every set identifier carries a
/// short tag of the owner (`<target>.<8 hex>`), so this object's record sets can never be
/// mistaken for another's or a foreign record's with the same target name — and an emulator
/// that deletes every record with a given set identifier (moto does) cannot take others' along.
pub fn plan_for(
    owner: &str,
    spec: &GlobalIngressSpec,
    zone: &Zone,
    observed: &BTreeMap<String, Observed>,
) -> Routes {
    let tag = crate::model::ownership::set_id_tag(owner);
    let set_id = |target: &str| match &tag {
        Some(tag) => format!("{target}.{tag}"),
        None => target.to_owned(),
    };
    let mut out = Routes::default();
    let domain = zone.domain.trim_end_matches('.').to_ascii_lowercase();

    for (i, host) in spec.hostnames.iter().enumerate() {
        if !in_zone(host, &domain) {
            out.problems.push(Problem {
                reason: reasons::HOSTNAME_OUTSIDE_ZONE,
                field: format!("spec.hostnames[{i}]"),
                message: format!("{host} is not inside zone {domain}"),
            });
        }
    }

    // Targets with an endpoint, in spec order.
    let known: Vec<(usize, &Target, &Observed, &Endpoint)> = spec
        .targets
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let o = observed.get(&t.name)?;
            Some((i, t, o, o.endpoint.as_ref()?))
        })
        .collect();
    out.pending_targets = spec
        .targets
        .iter()
        .filter(|t| !known.iter().any(|(_, k, _, _)| k.name == t.name))
        .map(|t| t.name.clone())
        .collect();
    if !out.pending_targets.is_empty() {
        out.notices.push(Notice {
            reason: reasons::NO_ENDPOINT_YET,
            message: format!(
                "no endpoint known yet for {}",
                out.pending_targets.join(", ")
            ),
        });
    }

    let cname_targets: Vec<usize> = known
        .iter()
        .filter(|(_, _, _, e)| is_cname(e, zone.provider))
        .map(|(i, _, _, _)| *i)
        .collect();
    let cname_conflict = known.len() > cname_targets.len()
        || (zone.provider == ProviderKind::Rfc2136 && cname_targets.len() > 1);
    if !cname_targets.is_empty() && cname_conflict {
        // A CNAME cannot share its name with other data, weighted sets included.
        out.problems.push(Problem {
            reason: reasons::MIXED_ENDPOINT_KINDS,
            field: format!("spec.targets[{}]", cname_targets[0]),
            message: "a hostname target (CNAME) cannot share a name with address or ALIAS \
                      targets, nor, in an RFC 2136 zone, with another hostname target"
                .to_owned(),
        });
    }
    if !cname_targets.is_empty() {
        for (i, host) in spec.hostnames.iter().enumerate() {
            if host.trim_end_matches('.').eq_ignore_ascii_case(&domain) {
                out.problems.push(Problem {
                    reason: reasons::CNAME_AT_APEX,
                    field: format!("spec.hostnames[{i}]"),
                    message: format!(
                        "{host} is the zone apex, where a CNAME is not allowed; use addresses \
                         or a load balancer with a known hosted zone (ALIAS)"
                    ),
                });
            }
        }
    }

    let up: Vec<bool> = known.iter().map(|(_, _, o, _)| o.health.is_up()).collect();
    out.failing_open = !known.is_empty() && up.iter().all(|u| !u);
    if out.failing_open {
        out.notices.push(Notice {
            reason: reasons::ALL_TARGETS_UNHEALTHY,
            message: "every target is unhealthy: publishing all of them (fail open)".to_owned(),
        });
    }
    // With every target down, publishing all beats publishing none.
    let usable = |k: usize| out.failing_open || up[k];

    let active: Vec<bool> = match spec.routing.policy {
        RoutingPolicy::Weighted => known
            .iter()
            .enumerate()
            .map(|(k, (_, t, _, _))| usable(k) && t.weight.unwrap_or(0) > 0)
            .collect(),
        RoutingPolicy::Failover => {
            let best = known
                .iter()
                .enumerate()
                .filter(|(k, _)| usable(*k))
                .map(|(_, (_, t, _, _))| t.priority.unwrap_or(i32::MAX))
                .min();
            known
                .iter()
                .enumerate()
                .map(|(k, (_, t, _, _))| usable(k) && Some(t.priority.unwrap_or(i32::MAX)) == best)
                .collect()
        }
        RoutingPolicy::Geolocation | RoutingPolicy::Latency => {
            (0..known.len()).map(usable).collect()
        }
    };
    out.active_targets = known
        .iter()
        .zip(&active)
        .filter(|(_, a)| **a)
        .map(|((_, t, _, _), _)| t.name.clone())
        .collect();

    if !out.problems.is_empty() {
        return out;
    }

    let ttl = u32::try_from(spec.ttl).unwrap_or(30);
    match zone.provider {
        ProviderKind::Route53 => {
            for host in &spec.hostnames {
                for (k, (i, t, o, endpoint)) in known.iter().enumerate() {
                    let routings: Vec<RecordRouting> = match spec.routing.policy {
                        RoutingPolicy::Weighted => vec![RecordRouting::Weighted {
                            set_id: set_id(&t.name),
                            weight: if usable(k) {
                                u8::try_from(t.weight.unwrap_or(0)).unwrap_or(u8::MAX)
                            } else {
                                0
                            },
                        }],
                        RoutingPolicy::Failover => vec![RecordRouting::Weighted {
                            set_id: set_id(&t.name),
                            weight: u8::from(active[k]),
                        }],
                        RoutingPolicy::Geolocation => geo_routings(t, &set_id(&t.name)),
                        RoutingPolicy::Latency => match &o.region {
                            Some(region) => vec![RecordRouting::Latency {
                                set_id: set_id(&t.name),
                                region: region.clone(),
                            }],
                            None => {
                                out.problems.push(Problem {
                                    reason: reasons::MISSING_REGION,
                                    field: format!("spec.targets[{i}].region"),
                                    message: format!(
                                        "target {} has no region (set it, or its SpokeCluster's)",
                                        t.name
                                    ),
                                });
                                continue;
                            }
                        },
                    };
                    // An unhealthy target's geographies are served by the nearest usable one
                    // (same set identifiers and locations: coverage never shrinks).
                    let (endpoint, carrier) =
                        if spec.routing.policy == RoutingPolicy::Geolocation && !usable(k) {
                            match nearest_usable(k, &known, &usable) {
                                Some(n) => (known[n].3, &known[n].1.name),
                                None => (*endpoint, &t.name),
                            }
                        } else {
                            (*endpoint, &t.name)
                        };
                    for routing in routings {
                        out.records.extend(records_for(
                            host,
                            endpoint,
                            &routing,
                            ttl,
                            std::slice::from_ref(carrier),
                        ));
                    }
                }
            }
        }
        ProviderKind::Rfc2136 => {
            if matches!(
                spec.routing.policy,
                RoutingPolicy::Geolocation | RoutingPolicy::Latency
            ) {
                out.notices.push(Notice {
                    reason: reasons::POLICY_NOT_EXPRESSIBLE,
                    message: format!(
                        "an RFC 2136 zone cannot route by {:?}: publishing the healthy targets \
                         as one plain record set",
                        spec.routing.policy
                    ),
                });
            }
            let chosen: Vec<usize> = match spec.routing.policy {
                RoutingPolicy::Geolocation => {
                    // The default target stands for everyone; if it is down, every healthy one.
                    let default = known
                        .iter()
                        .position(|(_, t, _, _)| t.geo.as_ref().is_some_and(|g| g.default));
                    match default {
                        Some(d) if usable(d) => vec![d],
                        _ => (0..known.len()).filter(|k| active[*k]).collect(),
                    }
                }
                _ => (0..known.len()).filter(|k| active[*k]).collect(),
            };
            for host in &spec.hostnames {
                let mut merged: BTreeMap<RecordType, (Vec<String>, Vec<String>)> = BTreeMap::new();
                for k in &chosen {
                    let (_, t, _, endpoint) = known[*k];
                    for r in records_for(
                        host,
                        endpoint,
                        &RecordRouting::Simple,
                        ttl,
                        std::slice::from_ref(&t.name),
                    ) {
                        let entry = merged.entry(r.rtype).or_default();
                        entry.0.extend(r.values);
                        entry.1.push(t.name.clone());
                    }
                }
                for (rtype, (mut values, mut targets)) in merged {
                    values.sort();
                    values.dedup();
                    targets.dedup();
                    out.records.push(RecordSet {
                        name: host.clone(),
                        rtype,
                        routing: RecordRouting::Simple,
                        ttl: Some(ttl),
                        values,
                        alias: None,
                        health_check: None,
                        targets,
                    });
                }
            }
        }
    }
    out.records.sort();
    out
}

/// The usable target nearest to `from` by region (unknown regions count as far away); ties and
/// unknowns fall back to the geo default target, then to spec order.
fn nearest_usable(
    from: usize,
    known: &[(usize, &Target, &Observed, &Endpoint)],
    usable: &dyn Fn(usize) -> bool,
) -> Option<usize> {
    let origin = known[from].2.region.as_deref();
    (0..known.len())
        .filter(|k| *k != from && usable(*k))
        .min_by(|a, b| {
            let d = |k: &usize| {
                origin
                    .zip(known[*k].2.region.as_deref())
                    .and_then(|(o, r)| super::regions::distance_km(o, r))
                    .unwrap_or(f64::MAX)
            };
            let is_default = |k: &usize| known[*k].1.geo.as_ref().is_some_and(|g| g.default);
            d(a).total_cmp(&d(b))
                .then(is_default(b).cmp(&is_default(a)))
                .then(a.cmp(b))
        })
}

fn in_zone(host: &str, domain: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == domain || host.ends_with(&format!(".{domain}"))
}

fn is_cname(endpoint: &Endpoint, provider: ProviderKind) -> bool {
    match endpoint {
        Endpoint::Addresses(_) => false,
        Endpoint::Hostname {
            alias_hosted_zone_id,
            ..
        } => provider == ProviderKind::Rfc2136 || alias_hosted_zone_id.is_none(),
    }
}

fn geo_routings(t: &Target, set_id: &str) -> Vec<RecordRouting> {
    let Some(geo) = &t.geo else { return Vec::new() };
    let mut locations = Vec::new();
    if geo.default {
        locations.push(("default".to_owned(), Location::Default));
    }
    for c in &geo.continents {
        locations.push((
            format!("{c:?}").to_ascii_lowercase(),
            Location::Continent(*c),
        ));
    }
    for c in &geo.countries {
        locations.push((c.to_ascii_lowercase(), Location::Country(c.clone())));
    }
    for s in &geo.subdivisions {
        let (country, subdivision) = s.split_once('-').unwrap_or((s.as_str(), ""));
        locations.push((
            s.to_ascii_lowercase(),
            Location::Subdivision {
                country: country.to_owned(),
                subdivision: subdivision.to_owned(),
            },
        ));
    }
    locations
        .into_iter()
        .map(|(code, location)| RecordRouting::Geolocation {
            set_id: format!("{set_id}-{code}"),
            location,
        })
        .collect()
}

fn records_for(
    host: &str,
    endpoint: &Endpoint,
    routing: &RecordRouting,
    ttl: u32,
    targets: &[String],
) -> Vec<RecordSet> {
    let make = |rtype, ttl, values, alias| RecordSet {
        name: host.to_owned(),
        rtype,
        routing: routing.clone(),
        ttl,
        values,
        alias,
        health_check: None,
        targets: targets.to_vec(),
    };
    match endpoint {
        Endpoint::Addresses(ips) => {
            let mut v4: Vec<String> = ips
                .iter()
                .filter(|ip| ip.is_ipv4())
                .map(IpAddr::to_string)
                .collect();
            let mut v6: Vec<String> = ips
                .iter()
                .filter(|ip| ip.is_ipv6())
                .map(IpAddr::to_string)
                .collect();
            v4.sort();
            v6.sort();
            let mut out = Vec::new();
            if !v4.is_empty() {
                out.push(make(RecordType::A, Some(ttl), v4, None));
            }
            if !v6.is_empty() {
                out.push(make(RecordType::AAAA, Some(ttl), v6, None));
            }
            out
        }
        Endpoint::Hostname {
            name,
            alias_hosted_zone_id: Some(zone_id),
        } if !matches!(routing, RecordRouting::Simple) => vec![make(
            RecordType::A,
            None,
            Vec::new(),
            Some(Alias {
                dns_name: name.trim_end_matches('.').to_owned(),
                hosted_zone_id: zone_id.clone(),
                evaluate_target_health: true,
            }),
        )],
        Endpoint::Hostname { name, .. } => vec![make(
            RecordType::CNAME,
            Some(ttl),
            vec![name.trim_end_matches('.').to_owned()],
            None,
        )],
    }
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
