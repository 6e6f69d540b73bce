//! plan: `(spec, snapshot, now) -> Plan`, a pure function.
//!
//! No client, no clock, no I/O: everything the plan depends on is in [`Input`] (gathered by
//! observe), so the same plan is printed by `globalingress plan -f` and executed by the
//! controller, and most tests live here. The plan holds the desired [`Stack`] of the
//! GlobalIngress (Route 53 health checks, record sets), the health decision about each target,
//! what the prober and the spoke watches should follow, and the problems and notices the status
//! reports.
//!
//! - [`health`]: each target's decision (hysteresis verdicts, spoke signals, failback, the
//!   guard rails);
//! - [`routing`]: the record sets of each routing policy;
//! - [`health_checks`]: the Route 53 health check each target should carry;
//! - [`probes`]: the endpoints to probe;
//! - [`render`]: the plan as a table for people.

pub mod certificates;
pub mod endpoint_services;
pub mod health;
pub mod health_checks;
pub mod load_balancers;
pub mod probes;
pub mod regions;
pub mod render;
pub mod routing;

use serde::Serialize;

use crate::api::global_ingress::{GlobalIngressSpec, TargetStatus};
use crate::model::dns::{RecordRouting, Zone};
use crate::model::health::{Guarded, Signal, Tracker};
use crate::model::probe::ProbeSpec;
use crate::model::stack::{HealthChecks, Ref, Stack};
use crate::model::target::{Backend, Endpoint, Observed};

pub use routing::reasons;

/// Something in the spec the plan cannot publish; the object is not Ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// PascalCase reason for the condition.
    pub reason: &'static str,
    /// The field at fault, e.g. `spec.hostnames[1]`.
    pub field: String,
    pub message: String,
}

/// Something worth saying that does not stop publishing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub reason: &'static str,
    pub message: String,
}

/// What observe found about one target, in spec order.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetView {
    /// `None` while the address is not known (an adopted Service without a load balancer yet).
    pub endpoint: Option<Endpoint>,
    /// The target's own region, else its SpokeCluster's.
    pub region: Option<String>,
    /// The endpoints its probes go to ([`probes::specs`] of the endpoint), with the prober's
    /// state of each (`None`: not probed yet).
    pub probes: Vec<(ProbeSpec, Option<Tracker>)>,
    /// What the spoke says about the backend.
    pub signal: Signal,
    /// A Provision target's spoke and registrations (`None` for other modes, or before the
    /// zone's owner id is known).
    pub provision: Option<load_balancers::ProvisionView>,
    /// `healthCheck.via: TargetHealth`: the verdict of its target group's health in ELBv2, in
    /// place of probes.
    pub target_health: Option<Tracker>,
}

/// Everything the plan of one GlobalIngress depends on.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The GlobalIngress as owner, `namespace/name`.
    pub owner: &'a str,
    pub spec: &'a GlobalIngressSpec,
    /// The zone, when its DNSZone exists (without it nothing is routed).
    pub zone: Option<&'a Zone>,
    /// One per `spec.targets`, in order.
    pub targets: &'a [TargetView],
    /// More than this object's `panicThreshold` of every probed endpoint is failing now.
    pub panic: bool,
    /// The targets of the previous status (their health and since when).
    pub previous: &'a [TargetStatus],
    /// The time in the `globalingress.io/approve-failback` annotation.
    pub failback_approved_at: Option<jiff::Timestamp>,
    /// When the decisions are taken.
    pub now: jiff::Timestamp,
}

/// The plan of one GlobalIngress.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The resources to apply.
    pub desired: Stack,
    /// Targets that receive traffic.
    pub active_targets: Vec<String>,
    /// Targets whose endpoint is not known yet (they get no records until it is).
    pub pending_targets: Vec<String>,
    /// Every target is unhealthy: all are published anyway (fail open).
    pub failing_open: bool,
    pub problems: Vec<Problem>,
    pub notices: Vec<Notice>,
    /// The zone was known (without it nothing was routed and there is nothing to apply).
    #[serde(skip)]
    pub routed: bool,
    /// Each target's decision, in spec order.
    #[serde(skip)]
    pub health: Guarded,
    /// What is known of each target after the decisions, in spec order.
    #[serde(skip)]
    pub targets: Vec<(String, Observed)>,
    /// Every endpoint the prober should follow for this object.
    #[serde(skip)]
    pub probes: Vec<ProbeSpec>,
    /// Every backend whose spoke signals this object follows.
    #[serde(skip)]
    pub backends: Vec<Backend>,
    /// The spokes whose nodes this object registers (Instance targets).
    #[serde(skip)]
    pub node_spokes: Vec<String>,
}

impl Plan {
    /// How long from `now` until a decision changes by itself (a recovered target's
    /// `failbackAfter`), counted from `observed_at` (the plan's `now`), not from `now`: objects
    /// planned at different times still come due together. A little after the instant.
    pub fn due_in(
        &self,
        observed_at: jiff::Timestamp,
        now: jiff::Timestamp,
    ) -> Option<std::time::Duration> {
        let elapsed = now.duration_since(observed_at).unsigned_abs();
        self.health
            .decisions
            .iter()
            .filter_map(|d| d.recheck_after)
            .min()
            .map(|d| d.saturating_sub(elapsed) + std::time::Duration::from_millis(50))
    }
}

/// Plans one GlobalIngress.
pub fn plan(input: &Input<'_>) -> Plan {
    let spec = input.spec;
    let health = health::decide(input);
    let targets: Vec<(String, Observed)> = spec
        .targets
        .iter()
        .zip(input.targets)
        .zip(&health.decisions)
        .map(|((t, view), decision)| {
            (
                t.name.clone(),
                Observed {
                    endpoint: view.endpoint.clone(),
                    region: view.region.clone(),
                    health: health::as_observed(decision),
                },
            )
        })
        .collect();
    let routes = input
        .zone
        .map(|zone| routing::plan_for(input.owner, spec, zone, &targets.iter().cloned().collect()));
    let health_checks = match input.zone {
        Some(zone) => health_checks::desired(spec, input.owner, zone, &targets, input.targets),
        None => HealthChecks::NotUsed,
    };
    let routes = routes.unwrap_or_default();
    let route53 = input
        .zone
        .is_some_and(|z| z.provider == crate::model::dns::ProviderKind::Route53);
    let (mut load_balancers, lb_problems) =
        load_balancers::desired(input.owner, spec, input.targets, route53);
    let certificates = certificates::desired(input.owner, spec, input.targets, &mut load_balancers);
    let services = endpoint_services::desired(input.owner, spec, input.targets, &load_balancers);
    let mut records = routes.records;
    if let HealthChecks::Wanted(checks) = &health_checks {
        // A record set carrying one target's traffic follows that target's check; a plain RRset
        // (RFC 2136) has no checks at all.
        for record in &mut records {
            if let [target] = record.targets.as_slice()
                && !matches!(record.routing, RecordRouting::Simple)
                && checks.contains_key(target)
            {
                record.health_check = Some(Ref::HealthCheckOf(target.clone()));
            }
        }
    }
    Plan {
        desired: Stack {
            certificates,
            load_balancers,
            endpoint_services: services,
            health_checks,
            records,
        },
        active_targets: routes.active_targets,
        pending_targets: routes.pending_targets,
        failing_open: routes.failing_open,
        problems: routes
            .problems
            .into_iter()
            .chain(lb_problems)
            .chain(private_zone_problems(spec, input.zone))
            .collect(),
        notices: routes.notices,
        routed: input.zone.is_some(),
        probes: input
            .targets
            .iter()
            .flat_map(|t| t.probes.iter().map(|(spec, _)| spec.clone()))
            .collect(),
        backends: spec.targets.iter().filter_map(backend_of).collect(),
        node_spokes: spec
            .targets
            .iter()
            .filter(|t| {
                t.load_balancer.mode == crate::api::global_ingress::LoadBalancerMode::Provision
                    && t.load_balancer.target_type
                        == crate::api::global_ingress::TargetType::Instance
            })
            .filter_map(|t| t.cluster_ref.clone())
            .collect(),
        health,
        targets,
    }
}

/// Reason of a `Public` Route 53 health check in a private hosted zone.
pub const PUBLIC_CHECK_IN_PRIVATE_ZONE: &str = "PublicHealthCheckInPrivateZone";

/// Reason of TLS or PrivateLink verification asked of a private hosted zone.
pub const VALIDATION_IN_PRIVATE_ZONE: &str = "ValidationInPrivateZone";

/// What a Route 53 private hosted zone cannot do: Route 53's health checkers live on the
/// internet and cannot reach its addresses (`Private`, an alarm on the target group's healthy
/// hosts, works there); ACM's validation and PrivateLink's domain verification read public DNS.
fn private_zone_problems(spec: &GlobalIngressSpec, zone: Option<&Zone>) -> Vec<Problem> {
    let mut out = Vec::new();
    if !zone.is_some_and(|z| z.private) {
        return out;
    }
    if spec.health_check.route53 == crate::api::global_ingress::Route53HealthCheck::Public {
        out.push(Problem {
            reason: PUBLIC_CHECK_IN_PRIVATE_ZONE,
            field: "spec.healthCheck.route53".into(),
            message: "the DNSZone is a Route 53 private hosted zone: Route 53's health checkers \
                      cannot reach private addresses; use Private (a CloudWatch alarm on the \
                      target group's healthy hosts) or None"
                .into(),
        });
    }
    if spec
        .tls
        .as_ref()
        .is_some_and(|t| t.mode == crate::api::global_ingress::TlsMode::ACM)
    {
        out.push(Problem {
            reason: VALIDATION_IN_PRIVATE_ZONE,
            field: "spec.tls.mode".into(),
            message: "ACM validates certificates through public DNS: its validation records \
                      cannot live in a private hosted zone; use a public DNSZone, or \
                      tls.mode CertificateArn"
                .into(),
        });
    }
    for (i, t) in spec.targets.iter().enumerate() {
        if t.private_link
            .as_ref()
            .is_some_and(|p| p.enabled && p.private_dns_name.is_some())
        {
            out.push(Problem {
                reason: VALIDATION_IN_PRIVATE_ZONE,
                field: format!("spec.targets[{i}].privateLink.privateDnsName"),
                message: "PrivateLink verifies a private DNS name's domain through public DNS: \
                          its TXT record cannot live in a private hosted zone"
                    .into(),
            });
        }
    }
    out
}

/// The backend whose spoke signals a target follows: any target naming a spoke and a Service.
pub fn backend_of(t: &crate::api::global_ingress::Target) -> Option<Backend> {
    match (&t.cluster_ref, &t.backend) {
        (Some(spoke), Some(b)) => Some(Backend {
            spoke: spoke.clone(),
            namespace: b.service.namespace.clone(),
            name: b.service.name.clone(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod private_zone_tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> GlobalIngressSpec {
        let mut base = serde_json::json!({
            "hostnames": ["a.example.com"], "dnsZoneRef": "z",
            "routing": { "policy": "Weighted" },
            "targets": [{ "name": "eu", "weight": 1, "clusterRef": "s",
                          "backend": { "service": { "namespace": "n", "name": "s", "port": 80 } },
                          "privateLink": { "privateDnsName": "api.example.com" } }]
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        serde_json::from_value(base).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_private_zone_refuses_public_checks_acm_and_private_dns_verification_by_field() {
        let private = Zone {
            domain: "example.com".into(),
            provider: crate::model::dns::ProviderKind::Route53,
            private: true,
        };
        let s = spec(serde_json::json!({
            "tls": { "mode": "ACM" },
            "healthCheck": { "route53": "Public" }
        }));
        let fields: Vec<String> = private_zone_problems(&s, Some(&private))
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(
            fields,
            vec![
                "spec.healthCheck.route53",
                "spec.tls.mode",
                "spec.targets[0].privateLink.privateDnsName"
            ]
        );
        let public = Zone {
            private: false,
            ..private
        };
        assert!(private_zone_problems(&s, Some(&public)).is_empty());
    }
}
