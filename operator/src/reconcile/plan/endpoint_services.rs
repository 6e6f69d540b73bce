//! The PrivateLink endpoint services of the targets with `privateLink.enabled`: pure, from the
//! spec and the load balancers the plan wants (the service fronts the target's NLB).

use std::collections::BTreeSet;

use super::TargetView;
use crate::api::global_ingress::GlobalIngressSpec;
use crate::model::load_balancer::WantedLoadBalancer;
use crate::model::privatelink::{
    WantedEndpoint, WantedEndpointService, endpoint_tags, normalise_principal, service_tags,
};

/// The endpoint services (with their consumers' endpoints) the spec wants.
pub fn desired(
    owner: &str,
    spec: &GlobalIngressSpec,
    views: &[TargetView],
    load_balancers: &[WantedLoadBalancer],
) -> Vec<WantedEndpointService> {
    let mut out = Vec::new();
    for (target, view) in spec.targets.iter().zip(views) {
        let Some(pl) = target.private_link.as_ref().filter(|p| p.enabled) else {
            continue;
        };
        let Some(lb) = load_balancers.iter().find(|lb| lb.target == target.name) else {
            continue;
        };
        let Some(owner_id) = view.provision.as_ref().map(|p| p.owner_id.as_str()) else {
            continue;
        };
        out.push(WantedEndpointService {
            target: target.name.clone(),
            spoke: lb.spoke.clone(),
            load_balancer: lb.name.clone(),
            acceptance_required: pl.acceptance_required,
            allowed_principals: pl
                .allowed_principals
                .iter()
                .map(|p| normalise_principal(p))
                .collect(),
            private_dns_name: pl
                .private_dns_name
                .as_ref()
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase()),
            consumers: pl
                .consumers
                .iter()
                .map(|c| WantedEndpoint {
                    vpc_id: c.vpc_id.clone(),
                    subnets: c.subnets.iter().cloned().collect::<BTreeSet<_>>(),
                    security_groups: c.security_groups.iter().cloned().collect(),
                    account_id: c.account_id.clone(),
                    role_arn: c.role_arn.clone(),
                    tags: endpoint_tags(owner_id, owner, &target.name, &c.vpc_id),
                })
                .collect(),
            tags: service_tags(owner_id, owner, &target.name),
        });
    }
    out
}
