//! The status of what apply made outside the zone: load balancers, their certificates and
//! endpoint services — conditions and per-target parts.

use crate::api::condition::{Desired, Status};
use crate::api::global_ingress::LoadBalancerStatus;
use crate::reconcile::apply::certificates::{self as certs, Certificates, Resolved};
use crate::reconcile::apply::endpoint_services::{EndpointServices, ServiceReport};
use crate::reconcile::apply::load_balancers::{self as lb, Step as LbStep};

use super::{CERTIFICATES_READY, LOAD_BALANCERS_READY};

/// Where the endpoint services stand, for the status.
#[derive(Debug, Clone, Copy)]
pub enum ServicesStep<'a> {
    /// No `privateLink` target.
    NotUsed,
    /// Not applied: kept as it is.
    Skipped,
    Done(&'a EndpointServices),
}

pub(super) fn private_link_status(
    r: &ServiceReport,
) -> crate::api::global_ingress::PrivateLinkStatus {
    let mut message: Vec<String> = r.error.iter().cloned().collect();
    message.extend(r.endpoints.iter().filter_map(|e| {
        e.error
            .as_ref()
            .map(|m| format!("endpoint in {}: {m}", e.vpc_id))
    }));
    message.extend(
        r.connections_unknown
            .as_ref()
            .map(|m| format!("connection requests unknown: {m}")),
    );
    crate::api::global_ingress::PrivateLinkStatus {
        endpoint_service_name: r.service_name.clone(),
        service_id: r.service_id.clone(),
        private_dns_verification: r.verification.clone(),
        pending_connections: r.pending.clone(),
        accepted_connections: r.accepted,
        rejected_connections: r.rejected,
        endpoints: r
            .endpoints
            .iter()
            .map(|e| crate::api::global_ingress::EndpointStatus {
                vpc_id: e.vpc_id.clone(),
                id: e.id.clone(),
                state: e.state.clone(),
                dns_name: e.dns_name.clone(),
            })
            .collect(),
        message: (!message.is_empty()).then(|| message.join("; ")),
    }
}

/// Where the certificates stand, for the status.
#[derive(Debug, Clone, Copy)]
pub enum CertificatesStep<'a> {
    /// No TLS listener: `CertificatesReady` is removed.
    NotUsed,
    /// Not applied (a follower, problems, paused): kept as it is.
    Skipped,
    Done(&'a Certificates),
}

/// `CertificatesReady` of what the certificate deployer did: the first failure, else what is
/// still being validated, else ready.
pub(super) fn certificates_condition(c: &Certificates) -> Desired {
    let failed: Vec<(&'static str, String)> = c
        .targets
        .iter()
        .filter_map(|(t, r)| match r {
            Resolved::Failed { reason, message } => Some((*reason, format!("{t}: {message}"))),
            _ => None,
        })
        .collect();
    if let Some((reason, _)) = failed.first() {
        let message: Vec<String> = failed.iter().map(|(_, m)| m.clone()).collect();
        return Desired::new(
            CERTIFICATES_READY,
            Status::False,
            reason,
            message.join("; "),
        );
    }
    let waiting: Vec<String> = c
        .targets
        .iter()
        .filter_map(|(t, r)| match r {
            Resolved::Waiting { message, .. } => Some(format!("{t}: {message}")),
            _ => None,
        })
        .collect();
    if !waiting.is_empty() {
        return Desired::new(
            CERTIFICATES_READY,
            Status::False,
            certs::reasons::PENDING_VALIDATION,
            waiting.join("; "),
        );
    }
    Desired::new(
        CERTIFICATES_READY,
        Status::True,
        certs::reasons::ISSUED,
        format!(
            "{} TLS listener(s) have an issued certificate",
            c.targets.len()
        ),
    )
}

/// A target's load balancer as the status shows it.
pub(super) fn load_balancer_status(r: &lb::Report) -> LoadBalancerStatus {
    let mut message: Vec<String> = r.error.iter().map(|(_, m)| m.clone()).collect();
    message.extend(r.waiting.clone());
    message.extend(r.notes.iter().cloned());
    LoadBalancerStatus {
        arn: r.arn.clone(),
        dns_name: r.dns_name.clone(),
        hosted_zone_id: r.hosted_zone_id.clone(),
        state: r.state.clone(),
        registered_targets: r.registered,
        healthy_targets: r.healthy,
        message: (!message.is_empty()).then(|| message.join("; ")),
    }
}

/// `LoadBalancersReady` of a load-balancer step; `None` keeps the condition as it is
/// (skipped) or, with no Provision target, the filter above removes it.
pub(super) fn load_balancers_condition(step: &LbStep) -> Option<Desired> {
    let LbStep::Done(reports) = step else {
        return None;
    };
    let failed: Vec<&lb::Report> = reports.iter().filter(|r| r.error.is_some()).collect();
    if let Some(first) = failed.first() {
        let reason = first
            .error
            .as_ref()
            .map_or(lb::reasons::FAILED, |(r, _)| *r);
        let message: Vec<String> = failed
            .iter()
            .filter_map(|r| r.error.as_ref().map(|(_, m)| format!("{}: {m}", r.target)))
            .collect();
        return Some(Desired::new(
            LOAD_BALANCERS_READY,
            Status::False,
            reason,
            message.join("; "),
        ));
    }
    let waiting: Vec<String> = reports
        .iter()
        .filter_map(|r| r.waiting.as_ref().map(|w| format!("{}: {w}", r.target)))
        .collect();
    if !waiting.is_empty() {
        return Some(Desired::new(
            LOAD_BALANCERS_READY,
            Status::False,
            lb::reasons::PROVISIONING,
            waiting.join("; "),
        ));
    }
    Some(Desired::new(
        LOAD_BALANCERS_READY,
        Status::True,
        lb::reasons::READY,
        format!(
            "{} load balancer(s) active with their listeners and registrations",
            reports.len()
        ),
    ))
}
