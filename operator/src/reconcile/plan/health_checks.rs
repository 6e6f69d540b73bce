//! The Route 53 health check each target should carry (`healthCheck.route53`).
//!
//! `Public`: Route 53's checkers probe the target with the operator's protocol, port and path —
//! at the first address with the probe's Host header, or, for a host-name endpoint, at that name
//! (which is then also the Host header: route the health path for any host, or use TCP).
//! `Private`: the check follows a CloudWatch alarm in the target's region (Route 53's checkers
//! cannot reach an internal load balancer).

use std::collections::BTreeMap;

use super::TargetView;
use crate::api::global_ingress::{GlobalIngressSpec, ProbeProtocol, Route53HealthCheck};
use crate::model::dns::{ProviderKind, Zone};
use crate::model::health_check::{
    CheckConfig, Endpoint as CheckEndpoint, EndpointCheck, Protocol, RequestInterval,
};
use crate::model::stack::HealthChecks;
use crate::model::target::{Endpoint, Observed};

/// The checks of `owner`'s targets; `NotUsed` outside Route 53 zones or with `route53: None`.
/// A target without a known endpoint (or, for `Private`, a region) gets none yet.
pub fn desired(
    spec: &GlobalIngressSpec,
    owner: &str,
    zone: &Zone,
    targets: &[(String, Observed)],
    views: &[TargetView],
) -> HealthChecks {
    let hc = &spec.health_check;
    if zone.provider != ProviderKind::Route53 || hc.route53 == Route53HealthCheck::None {
        return HealthChecks::NotUsed;
    }
    let mut out = BTreeMap::new();
    for ((name, observed), view) in targets.iter().zip(views) {
        let Some(endpoint) = &observed.endpoint else {
            continue;
        };
        let config = match hc.route53 {
            Route53HealthCheck::None => continue,
            Route53HealthCheck::Private => match &observed.region {
                Some(region) => CheckConfig::private(region, owner, name),
                None => continue,
            },
            Route53HealthCheck::Public => {
                let Some((probe, _)) = view.probes.first() else {
                    continue;
                };
                let protocol = match hc.protocol {
                    ProbeProtocol::HTTP => Protocol::Http,
                    ProbeProtocol::HTTPS => Protocol::Https,
                    ProbeProtocol::TCP => Protocol::Tcp,
                    // Refused by the API server's rules; nothing to check with.
                    ProbeProtocol::None => continue,
                };
                let endpoint = match endpoint {
                    Endpoint::Addresses(ips) => match ips.first() {
                        Some(ip) => CheckEndpoint::Ip {
                            ip: *ip,
                            host: Some(probe.host.clone()),
                        },
                        None => continue,
                    },
                    Endpoint::Hostname { name, .. } => CheckEndpoint::Name(name.clone()),
                };
                CheckConfig::Endpoint(EndpointCheck {
                    protocol,
                    endpoint,
                    port: probe.port,
                    resource_path: (hc.protocol != ProbeProtocol::TCP).then(|| hc.path.clone()),
                    request_interval: RequestInterval::for_probe_interval(probe.interval),
                    failure_threshold: u8::try_from(hc.unhealthy_threshold.clamp(1, 10))
                        .unwrap_or(3),
                })
            }
        };
        out.insert(name.clone(), config);
    }
    HealthChecks::Wanted(out)
}
