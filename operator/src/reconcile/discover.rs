//! What observe learns about a target's load balancer: for `Provision`, the load balancer of
//! ours that serves it (found by tags in the spoke account's ELBv2 listing) and the targets its
//! target group should hold (the spoke's ready endpoints or nodes); for `Adopt`, the hosted zone
//! of the load balancer behind the hostname the spoke reports (found by DNS name in the same
//! listing), so the record can be an ALIAS, and the hostname an Ingress or a Gateway reports.
//! Reads only: nothing is created here.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use tracing::debug;

use super::Deps;
use super::apply::load_balancers::{endpoint_of, inventory_of};
use super::plan::Problem;
use super::plan::load_balancers::{ProvisionView, key};
use crate::api::SpokeCluster;
use crate::api::global_ingress::{AdoptKind, Target, TargetType};
use crate::model::elb::{Registration, load_balancer_name};
use crate::model::target::Endpoint;
use crate::spoke::signals::{BackendState, serving_endpoints};

/// Problem reasons found while observing load balancers.
pub mod reasons {
    /// An Instance target's backend Service has no NodePort.
    pub const NO_NODE_PORT: &str = "NoNodePort";
}

/// What a Provision target's load balancer looks like now.
#[derive(Debug)]
pub struct Provisioned {
    pub view: ProvisionView,
    /// The serving load balancer of ours (the wanted one, or the one it replaces), `Err` when
    /// the spoke's account could not be listed.
    pub endpoint: Result<Option<Endpoint>, String>,
    pub problem: Option<Problem>,
    /// `healthCheck.via: TargetHealth`: the target group's verdict.
    pub target_health: Option<crate::model::health::Tracker>,
}

/// Observes a Provision target `t` (index `i`) of `owner` in `spoke`.
pub async fn provisioned(
    (owner_id, owner): (&str, &str),
    i: usize,
    t: &Target,
    spoke: &SpokeCluster,
    backend: Option<&BackendState>,
    via_target_health: bool,
    deps: &Deps,
) -> Provisioned {
    let spoke_name = t.cluster_ref.clone().unwrap_or_default();
    let (registrations, problem) = registrations(i, t, &spoke_name, backend, deps);
    let view = ProvisionView {
        owner_id: owner_id.to_owned(),
        spoke: spoke_name.clone(),
        aws: spoke.spec.aws.clone(),
        registrations,
        region: spoke.spec.region.clone(),
    };
    if view.aws.is_none() {
        return Provisioned {
            view,
            endpoint: Ok(None),
            problem,
            target_health: None,
        };
    }
    let wanted = load_balancer_name(&key(owner_id, owner, t));
    let inventory = inventory_of(&spoke_name, deps).await.map(|(_, i)| i);
    let listing = match &inventory {
        Err(e) => Err(e.clone()),
        Ok(inventory) => inventory.listing().await,
    };
    let endpoint = listing.as_ref().map_err(Clone::clone).map(|listing| {
        endpoint_of(listing, owner_id, owner, &t.name, &wanted).map(|lb| Endpoint::Hostname {
            name: lb.dns_name.clone(),
            alias_hosted_zone_id: Some(lb.hosted_zone_id.clone()).filter(|z| !z.is_empty()),
        })
    });
    let target_health = match (&inventory, &listing) {
        (Ok(inventory), Ok(listing)) if via_target_health => {
            Some(target_health(owner, t, owner_id, inventory, listing, deps).await)
        }
        _ => None,
    };
    Provisioned {
        view,
        endpoint,
        problem,
        target_health,
    }
}

/// The verdict of `t`'s target group, read now (DescribeTargetHealth, under the budget).
async fn target_health(
    owner: &str,
    t: &Target,
    owner_id: &str,
    inventory: &crate::aws::elb::Inventory,
    listing: &crate::aws::elb::Listing,
    deps: &Deps,
) -> crate::model::health::Tracker {
    use crate::model::load_balancer::{Owned, owned, resources};
    let key = format!("{owner}/{}", t.name);
    let now = jiff::Timestamp::now();
    let tg = listing.target_groups.values().find(|tg| {
        tg.tags
            .get(crate::model::ownership::TAG_RESOURCE)
            .map(String::as_str)
            == Some(resources::TARGET_GROUP)
            && owned(&tg.tags, owner_id, owner, &t.name) == Owned::Mine
    });
    let Some(tg) = tg else {
        return deps.load_balancers.target_health_verdict(
            &key,
            None,
            "target health: no target group yet".to_owned(),
            now,
        );
    };
    match crate::aws::elb::sdk::target_health(&inventory.client, &tg.arn).await {
        Ok(health) => {
            let healthy = health.iter().filter(|(_, _, ok)| *ok).count();
            deps.load_balancers.target_health_verdict(
                &key,
                Some(healthy > 0),
                format!(
                    "target health: {healthy} of {} registered target(s) healthy in ELBv2",
                    health.len()
                ),
                now,
            )
        }
        Err(e) => deps.load_balancers.target_health_verdict(
            &key,
            None,
            format!("target health not read: {e}"),
            now,
        ),
    }
}

/// The targets a Provision target's group should hold; `None` while the spoke has not said.
fn registrations(
    i: usize,
    t: &Target,
    spoke: &str,
    backend: Option<&BackendState>,
    deps: &Deps,
) -> (Option<BTreeSet<Registration>>, Option<Problem>) {
    let Some(b) = &t.backend else {
        return (None, None);
    };
    let Some(state) = backend else {
        return (None, None);
    };
    let Some(service) = &state.service else {
        // Missing or not listed yet: leave the registrations as they are (the signal withdraws
        // the target if the Service is really gone).
        return (None, None);
    };
    let port = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|ports| ports.iter().find(|p| p.port == b.service.port));
    let Some(port) = port else {
        return (None, None);
    };
    match t.load_balancer.target_type {
        TargetType::IP => {
            let endpoints = serving_endpoints(&state.slices, port.name.as_deref());
            (
                Some(
                    endpoints
                        .into_iter()
                        .map(|(id, port)| Registration { id, port })
                        .collect(),
                ),
                None,
            )
        }
        TargetType::Instance => {
            let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok()) else {
                return (
                    None,
                    Some(Problem {
                        reason: reasons::NO_NODE_PORT,
                        field: format!("spec.targets[{i}].backend.service.port"),
                        message: format!(
                            "Service {}/{} port {} has no NodePort: an Instance target group \
                             needs a Service of type NodePort or LoadBalancer",
                            b.service.namespace, b.service.name, b.service.port
                        ),
                    }),
                );
            };
            let instances = deps.nodes.instances(spoke);
            (
                instances.map(|ids| {
                    ids.into_iter()
                        .map(|id| Registration {
                            id,
                            port: node_port,
                        })
                        .collect()
                }),
                None,
            )
        }
    }
}

/// The hosted zone of the load balancer named `hostname` in `spoke`'s account and region, for
/// an ALIAS record (`None`: not an ELBv2 load balancer there, or the account cannot be listed:
/// the record stays a CNAME).
pub async fn alias_zone(spoke: &SpokeCluster, hostname: &str, deps: &Deps) -> Option<String> {
    spoke.spec.aws.as_ref()?;
    let name = spoke.metadata.name.clone()?;
    let (_, inventory) = inventory_of(&name, deps).await.ok()?;
    let listing = inventory.listing().await.ok()?;
    listing
        .by_dns_name(hostname)
        .map(|lb| lb.hosted_zone_id.clone())
        .filter(|z| !z.is_empty())
}

/// The hostname (or addresses) an adopted Ingress or Gateway reports. `Ok(None)`: the object
/// does not exist or has no address yet; `Err`: the spoke could not be asked.
pub async fn adopted_object(
    spoke: &SpokeCluster,
    kind: AdoptKind,
    namespace: &str,
    name: &str,
    deps: &Deps,
) -> Result<Option<Endpoint>, ()> {
    let (client, _) = crate::spoke::client::connect(spoke, &deps.client)
        .await
        .map_err(|_| ())?;
    let timeout = Duration::from_secs(5);
    let values: Vec<(Option<String>, Option<String>)> = match kind {
        AdoptKind::Service => return Err(()),
        AdoptKind::Ingress => {
            let api: Api<Ingress> = Api::namespaced(client, namespace);
            let found = tokio::time::timeout(timeout, api.get_opt(name))
                .await
                .map_err(|_| ())?
                .map_err(|e| debug!(error = %e, "cannot read the adopted Ingress"))?;
            let Some(ingress) = found else {
                return Ok(None);
            };
            ingress
                .status
                .and_then(|s| s.load_balancer)
                .and_then(|lb| lb.ingress)
                .unwrap_or_default()
                .into_iter()
                .map(|i| (i.ip, i.hostname))
                .collect()
        }
        AdoptKind::Gateway => {
            let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway");
            let api: Api<DynamicObject> =
                Api::namespaced_with(client, namespace, &ApiResource::from_gvk(&gvk));
            let found = tokio::time::timeout(timeout, api.get_opt(name))
                .await
                .map_err(|_| ())?
                .map_err(|e| debug!(error = %e, "cannot read the adopted Gateway"))?;
            let Some(gateway) = found else {
                return Ok(None);
            };
            gateway
                .data
                .pointer("/status/addresses")
                .and_then(|a| a.as_array())
                .into_iter()
                .flatten()
                .filter_map(|a| {
                    let value = a.get("value")?.as_str()?.to_owned();
                    match a
                        .get("type")
                        .and_then(|t| t.as_str())
                        .unwrap_or("IPAddress")
                    {
                        "Hostname" => Some((None, Some(value))),
                        _ => Some((Some(value), None)),
                    }
                })
                .collect()
        }
    };
    let ips: Vec<std::net::IpAddr> = values
        .iter()
        .filter_map(|(ip, _)| ip.as_deref()?.parse().ok())
        .collect();
    if !ips.is_empty() {
        return Ok(Some(Endpoint::Addresses(ips)));
    }
    Ok(values.into_iter().find_map(|(_, h)| {
        h.map(|h| Endpoint::Hostname {
            name: h.trim_end_matches('.').to_ascii_lowercase(),
            alias_hosted_zone_id: None,
        })
    }))
}
