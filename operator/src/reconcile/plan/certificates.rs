//! The certificates of `spec.tls`: pure, from the spec and the load balancers the plan wants.
//!
//! With `mode: ACM`, one certificate per account and region that holds a provisioned load
//! balancer of the GlobalIngress, for all its hostnames; with `mode: CertificateArn`, the given
//! certificate (checked at apply: it must be in the load balancer's region, issued, and cover
//! every hostname). Either way each provisioned load balancer listens on 443: an ALB with HTTPS
//! (and an HTTP listener on 80 that redirects), an NLB with TLS.

use std::collections::BTreeMap;

use super::TargetView;
use crate::api::global_ingress::{GlobalIngressSpec, TlsMode};
use crate::model::certificate::{self, CertificateRef, WantedCertificate};
use crate::model::elb::{Kind, Protocol};
use crate::model::load_balancer::{WantedListener, WantedLoadBalancer, WantedRedirect};

/// The port of HTTPS and TLS listeners.
pub const TLS_PORT: u16 = 443;
/// The port of the ALB's redirecting HTTP listener.
pub const HTTP_PORT: u16 = 80;

/// Whether the provisioned load balancers of `spec` terminate TLS.
pub fn terminates(spec: &GlobalIngressSpec) -> bool {
    spec.tls.as_ref().is_some_and(|t| t.mode != TlsMode::None)
}

/// Puts the TLS listener (and an ALB's redirect) on every wanted load balancer; returns the
/// ACM certificates the listeners need (none without `mode: ACM`).
pub fn desired(
    owner: &str,
    spec: &GlobalIngressSpec,
    views: &[TargetView],
    load_balancers: &mut [WantedLoadBalancer],
) -> Vec<WantedCertificate> {
    let Some(tls) = spec.tls.as_ref().filter(|t| t.mode != TlsMode::None) else {
        return Vec::new();
    };
    // (account, region) -> (a spoke there, the targets there).
    let mut places: BTreeMap<(String, String), (String, Vec<String>)> = BTreeMap::new();
    let mut owner_id = String::new();
    for lb in load_balancers.iter_mut() {
        let Some(view) = spec
            .targets
            .iter()
            .zip(views)
            .find(|(t, _)| t.name == lb.target)
            .and_then(|(_, v)| v.provision.as_ref())
        else {
            continue;
        };
        let Some(aws) = &view.aws else { continue };
        owner_id.clone_from(&view.owner_id);
        let certificate = match tls.mode {
            TlsMode::ACM => CertificateRef::Acm(certificate::key(&aws.account_id, &view.region)),
            _ => CertificateRef::Arn(tls.certificate_arn.clone().unwrap_or_default()),
        };
        lb.listener = WantedListener {
            port: TLS_PORT,
            protocol: match lb.kind {
                Kind::Application => Protocol::Https,
                Kind::Network => Protocol::Tls,
            },
            certificate: Some(certificate),
        };
        lb.redirect = (lb.kind == Kind::Application).then_some(WantedRedirect {
            port: HTTP_PORT,
            to_port: TLS_PORT,
        });
        places
            .entry((aws.account_id.clone(), view.region.clone()))
            .or_insert_with(|| (view.spoke.clone(), Vec::new()))
            .1
            .push(lb.target.clone());
    }
    if tls.mode != TlsMode::ACM {
        return Vec::new();
    }
    places
        .into_iter()
        .map(|((account, region), (spoke, targets))| {
            certificate::wanted(
                &owner_id,
                owner,
                (&account, &region, &spoke),
                &spec.hostnames,
                targets,
            )
        })
        .collect()
}
