//! observe: what exists, gathered before planning — read from the watch caches, the prober and
//! the spoke watches into a [`Snapshot`]. No side effects: nothing is registered, nothing
//! written (the probes and watches a plan needs are registered after planning).
//!
//! The one read that is not a cache: an adopted target whose spoke watch has not listed its
//! Service yet is asked for it once (the first reconcile after a start).

use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use tracing::debug;

use super::Deps;
use super::discover;
use super::plan::{self, Problem, TargetView, reasons};
use crate::api::global_ingress::{
    AdoptKind, GlobalIngress, LoadBalancerMode, ProbeVia, ServiceRef, Target,
};
use crate::api::{DNSZone, SpokeCluster};
use crate::model::dns::{ProviderKind, Zone};
use crate::model::health::Signal;
use crate::model::ownership::owner_key;
use crate::model::target::Endpoint;

/// Annotation approving a Manual failback: an RFC 3339 time; targets withdrawn before it may
/// take traffic again once healthy (`kubectl annotate gi NAME
/// globalingress.io/approve-failback=$(date -u +%FT%TZ) --overwrite`).
pub const APPROVE_FAILBACK: &str = "globalingress.io/approve-failback";

/// What observe found about one GlobalIngress.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `namespace/name`.
    pub owner: String,
    /// The zone of `spec.dnsZoneRef`, when its DNSZone exists.
    pub zone: Option<Zone>,
    pub zone_object: Option<Arc<DNSZone>>,
    /// Missing references and hostname conflicts.
    pub problems: Vec<Problem>,
    /// One per `spec.targets`, in order.
    pub targets: Vec<TargetView>,
    /// The false-failover guard is engaged for this object's threshold.
    pub panic: bool,
    pub failback_approved_at: Option<jiff::Timestamp>,
    /// When this was observed: the plan's `now` (a failback's "detected").
    pub now: jiff::Timestamp,
    /// The order of this observation among all ([`observation`]): taken before anything was
    /// read, so a higher number saw at least as much.
    pub observed: u64,
}

/// A number greater than every one handed out before: the order of observations, by which the
/// zone writer keeps a claim from an older one from undoing a newer one.
pub fn observation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Snapshot {
    /// The plan's input.
    pub fn input<'a>(&'a self, gi: &'a GlobalIngress) -> plan::Input<'a> {
        plan::Input {
            owner: &self.owner,
            spec: &gi.spec,
            zone: self.zone.as_ref(),
            targets: &self.targets,
            panic: self.panic,
            previous: gi.status.as_ref().map_or(&[][..], |s| s.targets.as_slice()),
            failback_approved_at: self.failback_approved_at,
            now: self.now,
        }
    }
}

/// The DNS name of the interface endpoint in the first consumer VPC of `target`'s endpoint
/// service, as the status last reported it.
fn endpoint_dns(gi: &GlobalIngress, target: &str) -> Option<String> {
    gi.status
        .as_ref()?
        .targets
        .iter()
        .find(|t| t.name == target)?
        .private_link
        .as_ref()?
        .endpoints
        .first()?
        .dns_name
        .clone()
}

/// The zone of a DNSZone, as the plan sees it.
pub fn zone_of(zone: &DNSZone) -> Zone {
    Zone {
        domain: zone.spec.domain.trim_end_matches('.').to_ascii_lowercase(),
        provider: if zone.spec.provider.route53.is_some() {
            ProviderKind::Route53
        } else {
            ProviderKind::Rfc2136
        },
        private: zone
            .spec
            .provider
            .route53
            .as_ref()
            .is_some_and(|r| r.private),
    }
}

/// Gathers everything the plan of `gi` needs.
pub async fn gather(gi: &GlobalIngress, deps: &Deps) -> Snapshot {
    let observed = observation();
    let mut problems = Vec::new();
    let zone_object = deps.zones.get(&ObjectRef::new(&gi.spec.dns_zone_ref));
    let zone = zone_object.as_deref().map(zone_of);
    if zone.is_none() {
        problems.push(Problem {
            reason: reasons::DNS_ZONE_NOT_FOUND,
            field: "spec.dnsZoneRef".into(),
            message: format!("DNSZone {:?} does not exist", gi.spec.dns_zone_ref),
        });
    }
    let owner = owner_key(&gi.namespace().unwrap_or_default(), &gi.name_any());
    let owner_id = zone_object.as_ref().map(|z| z.spec.owner_id.clone());
    let mut targets = Vec::new();
    for (i, t) in gi.spec.targets.iter().enumerate() {
        let backend_state = plan::backend_of(t).and_then(|b| deps.signals.state(&b));
        let mut region = t.region.clone();
        let mut endpoint = external_endpoint(t);
        let mut provision = None;
        let mut target_health = None;
        if let Some(cluster) = &t.cluster_ref {
            match deps.spokes.get(&ObjectRef::new(cluster)) {
                Some(spoke) => {
                    region = region.or_else(|| Some(spoke.spec.region.clone()));
                    match (t.load_balancer.mode, &owner_id) {
                        (LoadBalancerMode::Provision, Some(owner_id)) => {
                            let found = discover::provisioned(
                                (owner_id, &owner),
                                i,
                                t,
                                &spoke,
                                backend_state.as_ref(),
                                gi.spec.health_check.via == ProbeVia::TargetHealth,
                                deps,
                            )
                            .await;
                            target_health = found.target_health.clone();
                            problems.extend(found.problem);
                            endpoint = match found.endpoint {
                                Ok(found) => found,
                                Err(message) => {
                                    // The account could not be listed: keep serving what was
                                    // published last.
                                    debug!(target = %t.name, %message, "load balancers not listed");
                                    last_known_endpoint(gi, &t.name)
                                }
                            };
                            provision = Some(found.view);
                        }
                        (LoadBalancerMode::Adopt, _) => {
                            endpoint = adopted(gi, t, &spoke, backend_state.as_ref(), deps).await;
                        }
                        _ => {}
                    }
                }
                None => problems.push(Problem {
                    reason: reasons::SPOKE_CLUSTER_NOT_FOUND,
                    field: format!("spec.targets[{i}].clusterRef"),
                    message: format!("SpokeCluster {cluster:?} does not exist"),
                }),
            }
        }
        // `healthCheck.via: Endpoint`: probes go through the target's interface endpoint in
        // its first consumer VPC (the hub's), as the last status reported it.
        let via_endpoint = (gi.spec.health_check.via == ProbeVia::Endpoint
            && t.private_link.as_ref().is_some_and(|p| p.enabled))
        .then(|| {
            endpoint_dns(gi, &t.name).map(|name| Endpoint::Hostname {
                name,
                alias_hosted_zone_id: None,
            })
        });
        let probed = match &via_endpoint {
            Some(e) => e.as_ref(),
            None => endpoint.as_ref(),
        };
        let probes = probed
            .map(|e| plan::probes::specs(&gi.spec, t, e))
            .unwrap_or_default()
            .into_iter()
            .map(|spec| {
                let tracker = deps.health.tracker(&spec);
                (spec, tracker)
            })
            .collect();
        targets.push(TargetView {
            endpoint,
            region,
            probes,
            signal: backend_state.map_or(Signal::None, |s| s.signal),
            provision,
            target_health,
        });
    }
    let threshold = u32::try_from(gi.spec.failover.panic_threshold).unwrap_or(50);
    problems.extend(hostname_conflicts(gi, deps));
    Snapshot {
        owner,
        zone,
        zone_object,
        problems,
        targets,
        panic: deps.health.share().exceeds(threshold),
        failback_approved_at: gi
            .annotations()
            .get(APPROVE_FAILBACK)
            .and_then(|v| v.trim().parse::<jiff::Timestamp>().ok()),
        now: jiff::Timestamp::now(),
        observed,
    }
}

/// The endpoint of an Adopt target: what the spoke's Service (its watch's copy, or one read),
/// Ingress or Gateway reports, with the hosted zone of the load balancer behind a hostname
/// when the spoke's account has it (an ALIAS record then).
async fn adopted(
    gi: &GlobalIngress,
    t: &Target,
    spoke: &SpokeCluster,
    backend_state: Option<&crate::spoke::signals::BackendState>,
    deps: &Deps,
) -> Option<Endpoint> {
    let backend = t.backend.as_ref()?;
    let from = t.load_balancer.adopt.as_ref();
    let found = match from.map_or(AdoptKind::Service, |a| a.kind) {
        AdoptKind::Service => {
            // The spoke watch's copy of the Service when it has one; a read otherwise (the
            // watch has not listed yet).
            let watched = backend_state.and_then(|s| match &s.signal {
                Signal::ServiceMissing { .. } => Some(Ok(None)),
                Signal::Unreachable => Some(Err(())),
                _ => s.service.as_ref().map(|svc| Ok(service_endpoint(svc))),
            });
            match watched {
                Some(found) => found,
                None => adopted_endpoint(spoke, &backend.service, deps).await,
            }
        }
        kind => {
            let name = from
                .and_then(|a| a.name.as_deref())
                .unwrap_or(&backend.service.name);
            discover::adopted_object(spoke, kind, &backend.service.namespace, name, deps).await
        }
    };
    let found = match found {
        Ok(found) => found,
        // The spoke could not be asked: keep serving the address published last rather than
        // withdraw a target nobody saw fail.
        Err(()) => return last_known_endpoint(gi, &t.name),
    };
    match found {
        Some(Endpoint::Hostname {
            name,
            alias_hosted_zone_id: None,
        }) => {
            let zone = discover::alias_zone(spoke, &name, deps).await;
            Some(Endpoint::Hostname {
                name,
                alias_hosted_zone_id: zone,
            })
        }
        other => other,
    }
}

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

/// The address in a LoadBalancer Service's status.
pub fn service_endpoint(svc: &Service) -> Option<Endpoint> {
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())?;
    let ips: Vec<IpAddr> = ingress
        .iter()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect();
    if !ips.is_empty() {
        return Some(Endpoint::Addresses(ips));
    }
    ingress.iter().find_map(|i| {
        i.hostname.as_ref().map(|h| Endpoint::Hostname {
            name: h.trim_end_matches('.').to_ascii_lowercase(),
            // Found by DNS name in the spoke's account by the caller (see `adopted`).
            alias_hosted_zone_id: None,
        })
    })
}

/// The addresses this object's status last reported for a target.
fn last_known_endpoint(gi: &GlobalIngress, target: &str) -> Option<Endpoint> {
    let status = gi
        .status
        .as_ref()?
        .targets
        .iter()
        .find(|t| t.name == target)?;
    let addresses = &status.addresses;
    let ips: Vec<IpAddr> = addresses.iter().filter_map(|a| a.parse().ok()).collect();
    match (ips.is_empty(), addresses.first()) {
        (false, _) => Some(Endpoint::Addresses(ips)),
        (true, Some(host)) => Some(Endpoint::Hostname {
            name: host.clone(),
            // A provisioned load balancer's ALIAS stays an ALIAS.
            alias_hosted_zone_id: status
                .load_balancer
                .as_ref()
                .filter(|lb| lb.dns_name.as_ref() == Some(host))
                .and_then(|lb| lb.hosted_zone_id.clone()),
        }),
        (true, None) => None,
    }
}

/// The address of an adopted load balancer: the spoke Service's `status.loadBalancer.ingress`
/// (type LoadBalancer). `Ok(None)` (the target is pending) when the Service does not exist or
/// has no load balancer yet; `Err` when the spoke could not be asked at all.
async fn adopted_endpoint(
    spoke: &SpokeCluster,
    service: &ServiceRef,
    deps: &Deps,
) -> Result<Option<Endpoint>, ()> {
    // Only until the spoke watch has listed the Service once (see `SpokeSignals`).
    let (client, server) = match crate::spoke::client::connect(spoke, &deps.client).await {
        Ok(c) => c,
        Err((reason, message)) => {
            debug!(
                reason,
                message, "spoke not readable; keeping the last known address"
            );
            return Err(());
        }
    };
    let api: Api<Service> = Api::namespaced(client, &service.namespace);
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        api.get_opt(&service.name),
    );
    let svc = match read.await {
        Ok(Ok(Some(svc))) => svc,
        Ok(Ok(None)) => {
            debug!(%server, service = %service.name, "backend Service not found; target pending");
            return Ok(None);
        }
        Ok(Err(error)) => {
            debug!(%server, %error, "cannot read the backend Service; keeping the last known address");
            return Err(());
        }
        Err(_) => {
            debug!(%server, "spoke did not answer in 5s; keeping the last known address");
            return Err(());
        }
    };
    Ok(service_endpoint(&svc))
}

/// Hostnames this object claims that an older GlobalIngress already claims: the older keeps
/// them (ties broken by namespace/name, so both sides agree).
fn hostname_conflicts(gi: &GlobalIngress, deps: &Deps) -> Vec<Problem> {
    let mine = super::index::age_key(gi);
    let views = deps.index.views(&deps.ingresses);
    let mut out = Vec::new();
    for (i, host) in gi.spec.hostnames.iter().enumerate() {
        // Only a claim in the same DNSZone conflicts (a private and a public zone may serve the
        // same name on purpose).
        let key = (
            gi.spec.dns_zone_ref.clone(),
            host.trim_end_matches('.').to_ascii_lowercase(),
        );
        let older = views.claims.get(&key).and_then(|claimants| {
            claimants
                .iter()
                .filter(|c| c.uid != gi.metadata.uid && c.age_key < mine)
                .min_by(|a, b| a.age_key.cmp(&b.age_key))
        });
        if let Some(other) = older {
            out.push(Problem {
                reason: reasons::HOSTNAME_CONFLICT,
                field: format!("spec.hostnames[{i}]"),
                message: format!(
                    "{host} is already claimed by the older GlobalIngress {}/{}",
                    other.age_key.1, other.age_key.2
                ),
            });
        }
    }
    out
}
