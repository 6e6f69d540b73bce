//! The endpoints a target's probes go to.

use crate::api::global_ingress::{GlobalIngressSpec, ProbeProtocol, Target};
use crate::model::probe::{ProbeSpec, Protocol};
use crate::model::target::Endpoint;

/// The endpoints to probe for one target at `endpoint` (one per address; a host name is resolved
/// at every probe); none with `healthCheck.protocol: None`. Port: `healthCheck.port`, else the
/// load balancer's listener (443 for a provisioned one with `spec.tls`, else the backend
/// Service's port), else 443 for HTTPS and 80 otherwise.
pub fn specs(spec: &GlobalIngressSpec, target: &Target, endpoint: &Endpoint) -> Vec<ProbeSpec> {
    let hc = &spec.health_check;
    // The target group's health in ELBv2 is the verdict: nothing to probe.
    if hc.via == crate::api::global_ingress::ProbeVia::TargetHealth
        && target.load_balancer.mode == crate::api::global_ingress::LoadBalancerMode::Provision
    {
        return Vec::new();
    }
    let protocol = match hc.protocol {
        ProbeProtocol::HTTP => Protocol::Http,
        ProbeProtocol::HTTPS => Protocol::Https,
        ProbeProtocol::TCP => Protocol::Tcp,
        ProbeProtocol::None => return Vec::new(),
    };
    let tls_listener = target.load_balancer.mode
        == crate::api::global_ingress::LoadBalancerMode::Provision
        && super::certificates::terminates(spec);
    let port = hc
        .port
        .or_else(|| tls_listener.then_some(i32::from(super::certificates::TLS_PORT)))
        .or_else(|| target.backend.as_ref().map(|b| b.service.port))
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(if protocol == Protocol::Https { 443 } else { 80 });
    let host = hc.host_header.clone().unwrap_or_else(|| {
        spec.hostnames
            .first()
            .map(|h| h.trim_end_matches('.').replacen('*', "healthcheck", 1))
            .unwrap_or_default()
    });
    let interval = hc.interval();
    let base = |address: String| ProbeSpec {
        address,
        port,
        protocol,
        host: host.clone(),
        path: hc.path.clone(),
        expected_status: hc
            .expected_status
            .iter()
            .filter_map(|s| u16::try_from(*s).ok())
            .collect(),
        interval,
        timeout: hc.timeout(),
        healthy_threshold: u32::try_from(hc.healthy_threshold).unwrap_or(2).max(1),
        unhealthy_threshold: u32::try_from(hc.unhealthy_threshold).unwrap_or(3).max(1),
        verify_tls: !hc.skip_tls_verify,
    };
    match endpoint {
        Endpoint::Addresses(ips) => ips.iter().map(|ip| base(ip.to_string())).collect(),
        Endpoint::Hostname { name, .. } => vec![base(name.clone())],
    }
}
