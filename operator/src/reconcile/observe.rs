//! observe: what exists, gathered before planning. This part holds the pure pieces (what the
//! spec itself says about a target); the controller adds what it reads from spokes and zones.

use std::net::IpAddr;

use crate::api::global_ingress::{LoadBalancerMode, Target};
use crate::reconcile::plan::Endpoint;

/// The endpoint an External target names in its spec; `None` for other modes, or when the spec
/// holds no usable value (the API server's rules make that impossible for stored objects).
pub fn external_endpoint(target: &Target) -> Option<Endpoint> {
    if target.load_balancer.mode != LoadBalancerMode::External {
        return None;
    }
    let external = target.load_balancer.external.as_ref()?;
    if let Some(hostname) = &external.hostname {
        return Some(Endpoint::Hostname {
            name: hostname.trim_end_matches('.').to_ascii_lowercase(),
            alias_hosted_zone_id: external.alias_hosted_zone_id.clone(),
        });
    }
    let ips: Vec<IpAddr> = external
        .addresses
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    (!ips.is_empty()).then_some(Endpoint::Addresses(ips))
}
