//! The endpoint-service deployer (after the load balancers: a service fronts its target's NLB).
//!
//! For each `privateLink` target: the endpoint service of ours, found by its tags in the NLB's
//! account and region, or created (tags and client token in the call); acceptance, the
//! private DNS name and the NLB modified in place; allowed principals diffed against
//! DescribeVpcEndpointServicePermissions; the private DNS name's verification TXT record handed
//! to the claim, and verification started while pending; each consumer's interface endpoint
//! (in its account, through its role) found by tags or created; pending connection requests
//! accepted when they are our own endpoints or named by the `globalingress.io/accept-endpoint`
//! annotation, rejected when named by `globalingress.io/reject-endpoint`.
//!
//! Removal (the target gone, `privateLink.enabled: false`, deletion) runs the other way:
//! the consumers' endpoints, then the remaining connections rejected, then the service —
//! before the NLB goes (ELBv2 refuses to delete an NLB a service still fronts).

use std::collections::BTreeSet;
use std::sync::Arc;

use tracing::{info, warn};

use super::load_balancers::Note;
use crate::aws::accounts::{Role, Target};
use crate::aws::privatelink::{Ec2, PrivateLinkApi};
use crate::model::dns::Rrset;
use crate::model::load_balancer::{Owned, owned};
use crate::model::ownership::{TAG_OWNER, TAG_RESOURCE, hash64};
use crate::model::privatelink::{
    self, SERVICE, SeenEndpointService, WantedEndpoint, WantedEndpointService, connection_actions,
    principal_diff, service_changes, verification_record,
};
use crate::reconcile::Deps;

/// Annotation naming pending connection requests (endpoint ids, comma-separated) to accept.
pub const ACCEPT_ENDPOINT: &str = "globalingress.io/accept-endpoint";
/// Annotation naming pending connection requests to reject.
pub const REJECT_ENDPOINT: &str = "globalingress.io/reject-endpoint";

/// Event reasons of endpoint services.
pub mod events {
    pub const CREATED: &str = "EndpointServiceCreated";
    pub const DELETED: &str = "EndpointServiceDeleted";
    pub const CONNECTIONS_PENDING: &str = "EndpointConnectionsPending";
    pub const FAILED: &str = "EndpointServiceFailed";
}

/// A consumer's endpoint, as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointReport {
    pub vpc_id: String,
    pub id: Option<String>,
    pub state: Option<String>,
    pub dns_name: Option<String>,
    pub error: Option<String>,
}

/// Where one target's endpoint service stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceReport {
    pub target: String,
    pub service_id: Option<String>,
    pub service_name: Option<String>,
    /// `pendingVerification`, `verified`, `failed` (with a private DNS name).
    pub verification: Option<String>,
    pub pending: Vec<String>,
    pub accepted: u32,
    pub rejected: u32,
    /// The connections could not be listed (the reason).
    pub connections_unknown: Option<String>,
    pub endpoints: Vec<EndpointReport>,
    pub error: Option<String>,
}

/// What the deployer did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointServices {
    pub reports: Vec<ServiceReport>,
    /// Verification TXT records, for the claim.
    pub records: Vec<Rrset>,
}

/// The account and region of a consumer naming `account_id` and `role_arn` (either may be
/// absent) of a service in `service`; `None` when it names neither (the service's own).
pub fn consumer_target(
    service: &Target,
    account_id: Option<&String>,
    role_arn: Option<&String>,
) -> Option<Target> {
    (account_id.is_some() || role_arn.is_some()).then(|| Target {
        account: account_id
            .cloned()
            .unwrap_or_else(|| service.account.clone()),
        region: service.region.clone(),
        role: role_arn.map(|arn| Role {
            arn: arn.clone(),
            external_id: None,
        }),
    })
}

/// The port of a consumer's account and region (the service's when it names none).
fn consumer_api(deps: &Deps, service: &Target, c: &WantedEndpoint) -> Arc<dyn PrivateLinkApi> {
    let target = consumer_target(service, c.account_id.as_ref(), c.role_arn.as_ref());
    deps.privatelink(target.as_ref().unwrap_or(service))
}

impl Deps {
    /// The PrivateLink port of `target`'s account and region.
    pub fn privatelink(&self, target: &Target) -> Arc<dyn PrivateLinkApi> {
        Arc::new(Ec2 {
            client: self.accounts.scope(target).ec2(),
        })
    }
}

/// Makes every wanted endpoint service exist as wanted; `lb_arns` resolves each target's NLB
/// (from the load-balancer deployer: a target whose NLB is not known yet waits).
pub async fn deploy(
    who: (&str, &str),
    wanted: &[WantedEndpointService],
    lb_arns: &[(String, String)],
    annotations: (&BTreeSet<String>, &BTreeSet<String>),
    deps: &Deps,
    notes: &mut Vec<Note>,
) -> EndpointServices {
    let mut out = EndpointServices::default();
    for w in wanted {
        let Some((_, arn)) = lb_arns.iter().find(|(t, _)| *t == w.target) else {
            out.reports.push(ServiceReport {
                target: w.target.clone(),
                error: Some("waits for its NLB".to_owned()),
                ..ServiceReport::default()
            });
            continue;
        };
        let target = match super::load_balancers::inventory_of(&w.spoke, deps).await {
            Ok((target, _)) => target,
            Err(e) => {
                out.reports.push(ServiceReport {
                    target: w.target.clone(),
                    error: Some(e),
                    ..ServiceReport::default()
                });
                continue;
            }
        };
        let api = deps.privatelink(&target);
        let consumers: Vec<(WantedEndpoint, Arc<dyn PrivateLinkApi>)> = w
            .consumers
            .iter()
            .map(|c| (c.clone(), consumer_api(deps, &target, c)))
            .collect();
        let (report, record) =
            deploy_service(api.as_ref(), who, w, arn, annotations, &consumers, notes).await;
        out.records.extend(record);
        out.reports.push(report);
    }
    out
}

/// An Event for the connection requests that started waiting since the `previous` status
/// (a person has to accept or reject them).
pub fn pending_notes(
    name: &str,
    previous: &[crate::api::global_ingress::TargetStatus],
    services: &EndpointServices,
    notes: &mut Vec<Note>,
) {
    for r in &services.reports {
        let before: BTreeSet<&String> = previous
            .iter()
            .find(|t| t.name == r.target)
            .and_then(|t| t.private_link.as_ref())
            .map(|p| p.pending_connections.iter().collect())
            .unwrap_or_default();
        let new: Vec<&str> = r
            .pending
            .iter()
            .filter(|p| !before.contains(p))
            .map(String::as_str)
            .collect();
        if let Some(first) = new.first() {
            notes.push(Note {
                warning: false,
                reason: events::CONNECTIONS_PENDING,
                message: format!(
                    "target {}: connection request(s) {} wait for acceptance: kubectl annotate \
                     gi {name} {ACCEPT_ENDPOINT}={first} (or {REJECT_ENDPOINT}=...)",
                    r.target,
                    new.join(", ")
                ),
            });
        }
    }
}

/// One target's endpoint service, through `api` (its account and region) and `consumers`
/// (each consumer's port).
pub async fn deploy_service(
    api: &dyn PrivateLinkApi,
    (owner_id, owner): (&str, &str),
    w: &WantedEndpointService,
    lb_arn: &str,
    (accept, reject): (&BTreeSet<String>, &BTreeSet<String>),
    consumers: &[(WantedEndpoint, Arc<dyn PrivateLinkApi>)],
    notes: &mut Vec<Note>,
) -> (ServiceReport, Option<Rrset>) {
    let mut report = ServiceReport {
        target: w.target.clone(),
        ..ServiceReport::default()
    };
    let service = match ensure_service(api, (owner_id, owner), w, lb_arn, notes).await {
        Ok(s) => s,
        Err(e) => {
            report.error = Some(e);
            return (report, None);
        }
    };
    report.service_id = Some(service.id.clone());
    report.service_name = Some(service.name.clone());
    report.verification = service.verification.as_ref().map(|v| v.state.clone());
    // Kept after verification too: the provider re-checks the domain from time to time.
    let record = verification_record(&service);
    if report.verification.as_deref() == Some("pendingVerification")
        && let Err(e) = api.start_verification(&service.id).await
    {
        // The TXT record is published by this reconcile: the next one starts it again.
        warn!(service = %service.id, error = %e, "private DNS verification not started");
    }
    // The consumers' endpoints.
    let mut own = BTreeSet::new();
    for (c, capi) in consumers {
        let e = ensure_endpoint(capi.as_ref(), (owner_id, owner), w, c, &service).await;
        own.extend(e.id.clone());
        report.endpoints.push(e);
    }
    // Connection requests (moto cannot list them: say so, do not fail).
    match api.connections(&service.id).await {
        Err(e) => report.connections_unknown = Some(e),
        Ok(connections) => {
            let (to_accept, to_reject) = connection_actions(&connections, accept, reject, &own);
            let mut accepted = BTreeSet::new();
            let mut rejected = BTreeSet::new();
            if !to_accept.is_empty() {
                match api.accept(&service.id, &to_accept).await {
                    Ok(()) => accepted.extend(to_accept),
                    Err(e) => report.error = Some(e),
                }
            }
            if !to_reject.is_empty() {
                match api.reject(&service.id, &to_reject).await {
                    Ok(()) => rejected.extend(to_reject),
                    Err(e) => report.error = Some(e),
                }
            }
            for c in &connections {
                let state = if accepted.contains(&c.endpoint_id) {
                    "available"
                } else if rejected.contains(&c.endpoint_id) {
                    "rejected"
                } else {
                    c.state.as_str()
                };
                match state {
                    "available" => report.accepted += 1,
                    "rejected" => report.rejected += 1,
                    s if s.eq_ignore_ascii_case("pendingAcceptance") => {
                        report.pending.push(c.endpoint_id.clone());
                    }
                    _ => {}
                }
            }
            for e in &mut report.endpoints {
                if e.id.as_ref().is_some_and(|id| accepted.contains(id)) {
                    e.state = Some("available".to_owned());
                }
            }
        }
    }
    (report, record)
}

async fn ensure_service(
    api: &dyn PrivateLinkApi,
    (owner_id, owner): (&str, &str),
    w: &WantedEndpointService,
    lb_arn: &str,
    notes: &mut Vec<Note>,
) -> Result<SeenEndpointService, String> {
    let all = api.services().await?;
    let mine = all.into_iter().find(|s| {
        s.tags.get(TAG_RESOURCE).map(String::as_str) == Some(SERVICE)
            && owned(&s.tags, owner_id, owner, &w.target) == Owned::Mine
    });
    let mut service = match mine {
        Some(s) => s,
        None => {
            let token = format!(
                "{:016x}",
                hash64(format!("{owner_id}|{owner}|{}|service", w.target).as_bytes())
            );
            let created = api.create_service(w, lb_arn, &token).await?;
            info!(service = %created.id, target = %w.target, "endpoint service created");
            notes.push(Note {
                warning: false,
                reason: events::CREATED,
                message: format!(
                    "target {}: endpoint service {} ({}) created on its NLB",
                    w.target, created.name, created.id
                ),
            });
            created
        }
    };
    let changes = service_changes(w, lb_arn, &service);
    if !changes.is_empty() {
        api.modify_service(&service.id, &changes).await?;
        if let Some(a) = changes.acceptance_required {
            service.acceptance_required = a;
        }
        if let Some(n) = changes.private_dns_name {
            service.private_dns_name = n;
        }
        service.load_balancers = BTreeSet::from([lb_arn.to_owned()]);
    }
    let (add, remove) = principal_diff(&w.allowed_principals, &api.permissions(&service.id).await?);
    if !add.is_empty() || !remove.is_empty() {
        api.modify_permissions(&service.id, &add, &remove).await?;
        info!(service = %service.id, added = add.len(), removed = remove.len(), "allowed principals changed");
    }
    Ok(service)
}

async fn ensure_endpoint(
    api: &dyn PrivateLinkApi,
    (owner_id, owner): (&str, &str),
    w: &WantedEndpointService,
    c: &WantedEndpoint,
    service: &SeenEndpointService,
) -> EndpointReport {
    let mut report = EndpointReport {
        vpc_id: c.vpc_id.clone(),
        ..EndpointReport::default()
    };
    let resource = privatelink::endpoint_resource(&c.vpc_id);
    let found = match api.endpoints(owner_id).await {
        Ok(all) => all.into_iter().find(|e| {
            e.tags.get(TAG_RESOURCE) == Some(&resource)
                && owned(&e.tags, owner_id, owner, &w.target) == Owned::Mine
                && e.state != "deleted"
                && e.state != "deleting"
        }),
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    let seen = match found {
        Some(e) => e,
        None => {
            let token = format!(
                "{:016x}",
                hash64(format!("{owner_id}|{owner}|{}|{}", w.target, c.vpc_id).as_bytes())
            );
            match api.create_endpoint(&service.name, c, &token).await {
                Ok(e) => {
                    info!(endpoint = %e.id, vpc = %c.vpc_id, "interface endpoint created");
                    e
                }
                Err(e) => {
                    report.error = Some(e);
                    return report;
                }
            }
        }
    };
    report.id = Some(seen.id);
    report.state = Some(seen.state);
    report.dns_name = seen.dns_name;
    report
}

/// Removes the endpoint services of `owner` whose target is not in `keep`: the endpoints of
/// `consumers` (and any of ours in the service's region) for it, the remaining connections
/// rejected, then the service.
///
/// With `retain` (`deletionPolicy: Retain`) they are re-tagged `<ownerId>/retained` instead,
/// and nothing is deleted or rejected.
pub async fn remove(
    api: &Arc<dyn PrivateLinkApi>,
    (owner_id, owner): (&str, &str),
    keep: &BTreeSet<String>,
    consumers: &[(String, Arc<dyn PrivateLinkApi>)],
    retain: bool,
    notes: &mut Vec<Note>,
) -> Result<(), String> {
    let retained = crate::model::load_balancer::retained_owner(owner_id);
    let all = api.services().await?;
    for service in all.iter().filter(|s| {
        s.tags.get(TAG_RESOURCE).map(String::as_str) == Some(SERVICE)
            && owner_of_target(s, owner_id, owner).is_some_and(|t| !keep.contains(&t))
    }) {
        let target = owner_of_target(service, owner_id, owner).unwrap_or_default();
        for capi in consumers
            .iter()
            .filter(|(t, _)| *t == target)
            .map(|(_, a)| a.clone())
            .chain(std::iter::once(api.clone()))
        {
            for e in capi.endpoints(owner_id).await? {
                if e.service_name == service.name
                    && !matches!(e.state.as_str(), "deleted" | "deleting")
                    && owned(&e.tags, owner_id, owner, &target) == Owned::Mine
                {
                    if retain {
                        capi.retag(std::slice::from_ref(&e.id), TAG_OWNER, &retained)
                            .await?;
                    } else {
                        capi.delete_endpoint(&e.id).await?;
                        info!(endpoint = %e.id, "interface endpoint deleted");
                    }
                }
            }
        }
        if retain {
            api.retag(std::slice::from_ref(&service.id), TAG_OWNER, &retained)
                .await?;
            continue;
        }
        match api.connections(&service.id).await {
            Ok(connections) => {
                let open: Vec<String> = connections
                    .iter()
                    .filter(|c| c.state == "available" || c.pending())
                    .map(|c| c.endpoint_id.clone())
                    .collect();
                if !open.is_empty() {
                    api.reject(&service.id, &open).await?;
                }
            }
            Err(e) => {
                warn!(service = %service.id, error = %e, "connections not listed before deletion")
            }
        }
        api.delete_service(&service.id).await?;
        info!(service = %service.id, "endpoint service deleted");
        notes.push(Note {
            warning: false,
            reason: events::DELETED,
            message: format!(
                "target {target}: endpoint service {} ({}) deleted",
                service.name, service.id
            ),
        });
    }
    Ok(())
}

fn owner_of_target(s: &SeenEndpointService, owner_id: &str, owner: &str) -> Option<String> {
    let target = s.tags.get(crate::model::ownership::TAG_TARGET)?;
    (owned(&s.tags, owner_id, owner, target) == Owned::Mine).then(|| target.clone())
}

#[cfg(test)]
#[path = "endpoint_services_tests.rs"]
mod tests;
