//! The load balancers of the Provision targets: pure, from the spec and what observe found of
//! each target's SpokeCluster and backend.
//!
//! A Provision target gets an NLB (TCP listener and target group) or an ALB (HTTP) on its
//! SpokeCluster's internal or public subnets, in its VPC, named and tagged after the hub, the
//! GlobalIngress and the target. The listener listens on the backend Service's port; the
//! target group's health check follows `spec.healthCheck`, clamped to ELBv2's bounds.

use std::collections::BTreeSet;

use super::{Problem, TargetView};
use crate::api::global_ingress::{
    GlobalIngressSpec, LoadBalancerMode, LoadBalancerType, ProbeProtocol, Route53HealthCheck,
    Scheme as SpecScheme, Target, TargetType,
};
use crate::api::spoke_cluster::SpokeAws;
use crate::model::elb::{
    self, Kind, LoadBalancerKey, Protocol, Registration, Scheme, TargetKind, WantedHealthCheck,
};
use crate::model::health_check::alarm_name;
use crate::model::load_balancer::{
    WantedListener, WantedLoadBalancer, WantedTargetGroup, resources, tags,
};

/// Problem reasons of load balancers.
pub mod reasons {
    /// A Provision target's SpokeCluster has no `spec.aws`.
    pub const SPOKE_NOT_IN_AWS: &str = "SpokeNotInAWS";
    /// The SpokeCluster lists no subnets for the target's scheme.
    pub const NO_SUBNETS: &str = "NoSubnets";
}

/// What observe found for a Provision target.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionView {
    /// The hub's owner id (the DNSZone's `spec.ownerId`).
    pub owner_id: String,
    pub spoke: String,
    /// The SpokeCluster's `spec.aws`.
    pub aws: Option<SpokeAws>,
    /// The targets to register (`None`: the spoke has not said yet).
    pub registrations: Option<BTreeSet<Registration>>,
    /// The SpokeCluster's region (where its load balancer and certificate live).
    pub region: String,
}

/// The identity of a target's load balancer.
pub fn key<'a>(owner_id: &'a str, owner: &'a str, target: &'a Target) -> LoadBalancerKey<'a> {
    LoadBalancerKey {
        owner: owner_id,
        global_ingress: owner,
        target: &target.name,
        kind: kind(target.load_balancer.type_),
        scheme: match target.load_balancer.scheme {
            SpecScheme::Internal => Scheme::Internal,
            SpecScheme::InternetFacing => Scheme::InternetFacing,
        },
    }
}

fn kind(t: LoadBalancerType) -> Kind {
    match t {
        LoadBalancerType::ALB => Kind::Application,
        LoadBalancerType::NLB => Kind::Network,
    }
}

/// The load balancers the spec wants, and why a Provision target cannot have one.
/// `route53`: the zone is a Route 53 one (a `Private` health check there follows an alarm
/// made with the load balancer).
pub fn desired(
    owner: &str,
    spec: &GlobalIngressSpec,
    views: &[TargetView],
    route53: bool,
) -> (Vec<WantedLoadBalancer>, Vec<Problem>) {
    let mut wanted = Vec::new();
    let mut problems = Vec::new();
    for (i, (target, view)) in spec.targets.iter().zip(views).enumerate() {
        if target.load_balancer.mode != LoadBalancerMode::Provision {
            continue;
        }
        let Some(provision) = &view.provision else {
            continue;
        };
        let Some(aws) = &provision.aws else {
            problems.push(Problem {
                reason: reasons::SPOKE_NOT_IN_AWS,
                field: format!("spec.targets[{i}].clusterRef"),
                message: format!(
                    "SpokeCluster {:?} has no spec.aws (account, VPC, subnets): the hub cannot \
                     provision a load balancer in it",
                    provision.spoke
                ),
            });
            continue;
        };
        let key = key(&provision.owner_id, owner, target);
        let subnets: BTreeSet<String> = match key.scheme {
            Scheme::Internal => aws.subnets.internal.iter().cloned().collect(),
            Scheme::InternetFacing => aws.subnets.public.iter().cloned().collect(),
        };
        if subnets.is_empty() {
            let which = match key.scheme {
                Scheme::Internal => "internal",
                Scheme::InternetFacing => "public",
            };
            problems.push(Problem {
                reason: reasons::NO_SUBNETS,
                field: format!("spec.targets[{i}].loadBalancer.scheme"),
                message: format!(
                    "SpokeCluster {:?} lists no spec.aws.subnets.{which} for an {} load balancer",
                    provision.spoke,
                    key.scheme.as_str()
                ),
            });
            continue;
        }
        let mut lb = one(spec, target, &key, provision, aws, subnets);
        if route53 && spec.health_check.route53 == Route53HealthCheck::Private {
            lb.alarm = Some(alarm_name(owner, &target.name));
        }
        wanted.push(lb);
    }
    (wanted, problems)
}

fn one(
    spec: &GlobalIngressSpec,
    target: &Target,
    key: &LoadBalancerKey<'_>,
    provision: &ProvisionView,
    aws: &SpokeAws,
    subnets: BTreeSet<String>,
) -> WantedLoadBalancer {
    let port = target
        .backend
        .as_ref()
        .and_then(|b| u16::try_from(b.service.port).ok())
        .unwrap_or(80);
    let protocol = match key.kind {
        Kind::Application => Protocol::Http,
        Kind::Network => Protocol::Tcp,
    };
    let target_kind = match target.load_balancer.target_type {
        TargetType::IP => TargetKind::Ip,
        TargetType::Instance => TargetKind::Instance,
    };
    let registrations = provision.registrations.clone();
    // The target group's default port is the listener's: each registration names its own (the
    // target port or the NodePort), so a changed target port never replaces the group.
    let tg_port = port;
    let hc = &spec.health_check;
    let clamped = elb::target_health_check(
        key.kind,
        &WantedHealthCheck {
            protocol: match hc.protocol {
                ProbeProtocol::HTTP => Some(Protocol::Http),
                ProbeProtocol::HTTPS => Some(Protocol::Https),
                ProbeProtocol::TCP => Some(Protocol::Tcp),
                ProbeProtocol::None => None,
            },
            path: hc.path.clone(),
            // The hub probes the listener; the load balancer probes each target on its own
            // (traffic) port.
            port: None,
            interval_seconds: hc.interval().as_secs(),
            timeout_seconds: hc.timeout().as_secs(),
            healthy_threshold: u32::try_from(hc.healthy_threshold).unwrap_or(2),
            unhealthy_threshold: u32::try_from(hc.unhealthy_threshold).unwrap_or(3),
            expected_status: hc
                .expected_status
                .iter()
                .filter_map(|s| u16::try_from(*s).ok())
                .collect(),
        },
    );
    WantedLoadBalancer {
        target: target.name.clone(),
        spoke: provision.spoke.clone(),
        name: elb::load_balancer_name(key),
        kind: key.kind,
        scheme: key.scheme,
        vpc_id: aws.vpc_id.clone(),
        subnets,
        security_groups: match key.kind {
            Kind::Application => aws.security_groups.iter().cloned().collect(),
            Kind::Network => BTreeSet::new(),
        },
        listener: WantedListener {
            port,
            protocol,
            certificate: None,
        },
        redirect: None,
        alarm: None,
        target_group: WantedTargetGroup {
            name: elb::target_group_name(key, protocol, tg_port, target_kind),
            protocol,
            port: tg_port,
            target_kind,
            health_check: clamped.check,
            health_check_notes: clamped.notes,
            registrations,
        },
        tags: tags(
            key.owner,
            key.global_ingress,
            key.target,
            resources::LOAD_BALANCER,
        ),
    }
}
