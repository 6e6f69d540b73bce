//! The endpoints a target's probes go to.

use crate::api::global_ingress::{GlobalIngressSpec, ProbeProtocol, Target};
use crate::model::probe::{ProbeSpec, Protocol};
use crate::model::target::Endpoint;

/// The endpoints to probe for one target at `endpoint` (one per address; a host name is resolved
/// at every probe); none with `healthCheck.protocol: None`. Port: `healthCheck.port`, else the
/// load balancer's listener (443 for a provisioned one with `spec.tls`, probed with HTTPS when
/// the protocol is HTTP; else the backend Service's port), else 443 for HTTPS and 80 otherwise.
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
    // An HTTP probe of a TLS listener speaks HTTPS to it (with the hostname as SNI, which the
    // certificate covers); an explicit port is taken as the user's choice of listener.
    let protocol = if tls_listener && hc.port.is_none() && protocol == Protocol::Http {
        Protocol::Https
    } else {
        protocol
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(tls: bool, port: Option<i32>) -> GlobalIngressSpec {
        let mut v = serde_json::json!({
            "hostnames": ["a.example.com"], "dnsZoneRef": "z",
            "routing": { "policy": "Weighted" },
            "targets": [{ "name": "eu", "weight": 1, "clusterRef": "s",
                          "backend": { "service": { "namespace": "n", "name": "s", "port": 8080 } } }]
        });
        if tls {
            v["tls"] = serde_json::json!({ "mode": "ACM" });
        }
        if let Some(p) = port {
            v["healthCheck"] = serde_json::json!({ "port": p });
        }
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn probe(spec: &GlobalIngressSpec) -> (Protocol, u16) {
        let endpoint = Endpoint::Hostname {
            name: "lb.example.net".into(),
            alias_hosted_zone_id: None,
        };
        let p = &specs(spec, &spec.targets[0], &endpoint)[0];
        (p.protocol, p.port)
    }

    #[test]
    fn a_tls_listener_is_probed_with_https_on_443_unless_a_port_is_given() {
        assert_eq!(probe(&spec(false, None)), (Protocol::Http, 8080));
        assert_eq!(probe(&spec(true, None)), (Protocol::Https, 443));
        assert_eq!(probe(&spec(true, Some(80))), (Protocol::Http, 80));
    }
}
