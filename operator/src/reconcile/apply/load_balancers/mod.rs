//! The load-balancer deployer: for each Provision target, in its spoke's account and region,
//! the target group, then the load balancer, its listener and the target registrations; after
//! the records are written, what no wanted load balancer is and no record points at goes
//! (a replaced load balancer, a removed target). Deletion runs the other way: load balancers
//! (their listeners go with them), then target groups — or, with `Retain`, re-tags them
//! `<ownerId>/retained`.
//!
//! Every resource is found by its tags in the [`Inventory`] listing, never by a remembered ARN,
//! and created with its tags in the create call. A resource with our name but without our owner
//! tag (or with another hub's) is never modified or deleted: the target reports `NameTaken`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::info;

use super::super::Deps;
use super::certificates::{Certificates, Resolved};
use crate::aws::accounts::Target;
use crate::aws::elb::{Inventory, Listing, RegistrationLabels, alarms, sdk};
use crate::model::elb::registration_diff;
use crate::model::load_balancer::{
    LbState, Owned, SeenLoadBalancer, WantedLoadBalancer, health_check_differs,
    load_balancer_changes, owned, resources, tags,
};
use crate::model::ownership::TAG_OWNER;

mod listeners;
mod prune;

pub use prune::{Prune, prune};

/// Event reasons of load balancers.
pub mod events {
    pub const CREATED: &str = "LoadBalancerCreated";
    pub const REPLACED: &str = "LoadBalancerReplaced";
    pub const DELETED: &str = "LoadBalancerDeleted";
    pub const FAILED: &str = "LoadBalancerFailed";
}

/// Condition reasons of `LoadBalancersReady`.
pub mod reasons {
    pub const READY: &str = "Ready";
    pub const PROVISIONING: &str = "Provisioning";
    pub const NAME_TAKEN: &str = "NameTaken";
    pub const FAILED: &str = "ProvisioningFailed";
}

/// Where one target's load balancer stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub target: String,
    pub arn: Option<String>,
    pub dns_name: Option<String>,
    pub hosted_zone_id: Option<String>,
    pub state: Option<String>,
    pub registered: Option<u32>,
    pub healthy: Option<u32>,
    /// Not ready yet, and why (`Provisioning`, not an error).
    pub waiting: Option<String>,
    /// `(reason, message)` of what failed.
    pub error: Option<(&'static str, String)>,
    /// What the target health check had to give up.
    pub notes: Vec<String>,
}

/// What the deployer did this time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Step {
    /// No Provision target.
    #[default]
    NotUsed,
    /// Not applied (a follower, problems, paused): keep the condition as it is.
    Skipped,
    Done(Vec<Report>),
}

/// An Event to send about the GlobalIngress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// The scope and inventory of a spoke's account and region (its external id Secret read at
/// most once a minute per version of the SpokeCluster).
pub async fn inventory_of(spoke: &str, deps: &Deps) -> Result<(Target, Arc<Inventory>), String> {
    let object = deps
        .spokes
        .get(&kube::runtime::reflector::ObjectRef::new(spoke))
        .ok_or_else(|| format!("SpokeCluster {spoke:?} does not exist"))?;
    let version = object.metadata.resource_version.clone().unwrap_or_default();
    let target = match deps.load_balancers.remembered_target(spoke, &version) {
        Some(target) => target,
        None => {
            let target = crate::spoke::aws::target(&object, &deps.client)
                .await
                .map_err(|(reason, message)| format!("{reason}: {message}"))?
                .ok_or_else(|| format!("SpokeCluster {spoke:?} has no spec.aws"))?;
            deps.load_balancers
                .remember_target(spoke, &version, &target);
            target
        }
    };
    let scope = deps.accounts.scope(&target);
    let inventory = deps.load_balancers.inventory(&target, &scope);
    Ok((target, inventory))
}

/// Makes every wanted load balancer exist as wanted.
pub async fn deploy(
    owner_id: &str,
    owner: &str,
    wanted: &[WantedLoadBalancer],
    certificates: &Certificates,
    deps: &Deps,
    notes: &mut Vec<Note>,
) -> Vec<Report> {
    let mut reports = Vec::new();
    for lb in wanted {
        let mut report = Report {
            target: lb.target.clone(),
            notes: lb.target_group.health_check_notes.clone(),
            ..Report::default()
        };
        match inventory_of(&lb.spoke, deps).await {
            Err(message) => report.error = Some((reasons::FAILED, message)),
            Ok((_, inventory)) => {
                if let Err((reason, message)) = deploy_one(
                    (owner_id, owner),
                    lb,
                    certificates,
                    &inventory,
                    deps,
                    &mut report,
                    notes,
                )
                .await
                {
                    // A failed call may have changed something (a NameTaken wrote nothing).
                    if reason == reasons::FAILED {
                        inventory.invalidate().await;
                    }
                    report.error = Some((reason, message));
                }
            }
        }
        reports.push(report);
    }
    reports
}

type Failure = (&'static str, String);

fn failed(message: String) -> Failure {
    (reasons::FAILED, message)
}

/// The one of ours named `name` among `candidates`; `Err` when the name belongs to someone
/// else.
fn find_mine<'a, T>(
    candidates: impl Iterator<Item = (&'a str, &'a BTreeMap<String, String>, &'a T)>,
    name: &str,
    (owner_id, owner, target): (&str, &str, &str),
    what: &str,
) -> Result<Option<&'a T>, Failure>
where
    T: 'a,
{
    let mut mine = None;
    for (n, tags, item) in candidates {
        if n != name {
            continue;
        }
        match owned(tags, owner_id, owner, target) {
            Owned::Mine => mine = Some(item),
            Owned::OurOther {
                global_ingress,
                target,
            } => {
                return Err((
                    reasons::NAME_TAKEN,
                    format!(
                        "a {what} named {name} belongs to {global_ingress} target {target}: not \
                         touched"
                    ),
                ));
            }
            Owned::Foreign => {
                return Err((
                    reasons::NAME_TAKEN,
                    format!(
                        "a {what} named {name} exists without this hub's owner tag \
                         ({TAG_OWNER}={}): it is never modified or deleted; remove or rename it",
                        tags.get(TAG_OWNER).map_or("none", String::as_str)
                    ),
                ));
            }
        }
    }
    Ok(mine)
}

async fn deploy_one(
    (owner_id, owner): (&str, &str),
    lb: &WantedLoadBalancer,
    certificates: &Certificates,
    inventory: &Inventory,
    deps: &Deps,
    report: &mut Report,
    notes: &mut Vec<Note>,
) -> Result<(), Failure> {
    let listing = inventory.listing().await.map_err(failed)?;
    let who = (owner_id, owner, lb.target.as_str());
    let client = &inventory.client;
    let metrics = &deps.load_balancers.metrics;

    // The load balancer's name is checked first: a foreign one with our name stops
    // everything (no target group is made for a load balancer that cannot be).
    let existing = find_mine(
        listing
            .load_balancers
            .values()
            .map(|l| (l.name.as_str(), &l.tags, l)),
        &lb.name,
        who,
        "load balancer",
    )?
    .cloned();
    // Target group first: the listener forwards to it.
    let tg = find_mine(
        listing
            .target_groups
            .values()
            .map(|t| (t.name.as_str(), &t.tags, t)),
        &lb.target_group.name,
        who,
        "target group",
    )?
    .cloned();
    let tg = match tg {
        Some(tg) => {
            if health_check_differs(&lb.target_group.health_check, &tg.health_check) {
                sdk::modify_health_check(client, &tg.arn, &lb.target_group.health_check)
                    .await
                    .map_err(failed)?;
                metrics.changed(resources::TARGET_GROUP, "modified");
                let mut tg = tg.clone();
                tg.health_check = lb.target_group.health_check.clone();
                inventory.put_target_group(tg.clone()).await;
                tg
            } else {
                tg
            }
        }
        None => {
            let tags = tags(owner_id, owner, &lb.target, resources::TARGET_GROUP);
            let guard = inventory.write_guard();
            let tg = sdk::create_target_group(client, lb, &tags)
                .await
                .map_err(failed)?;
            metrics.changed(resources::TARGET_GROUP, "created");
            info!(target_group = %tg.name, arn = %tg.arn, "target group created");
            inventory.put_target_group(tg.clone()).await;
            guard.done();
            tg
        }
    };

    let mut seen = match existing {
        Some(seen) => {
            let changes = load_balancer_changes(lb, &seen);
            if let Some(subnets) = &changes.subnets {
                sdk::set_subnets(client, &seen.arn, subnets)
                    .await
                    .map_err(failed)?;
            }
            if let Some(groups) = &changes.security_groups {
                sdk::set_security_groups(client, &seen.arn, groups)
                    .await
                    .map_err(failed)?;
            }
            if changes.is_empty() {
                seen
            } else {
                metrics.changed(resources::LOAD_BALANCER, "modified");
                let mut seen = seen.clone();
                if let Some(s) = changes.subnets {
                    seen.subnets = s;
                }
                if let Some(g) = changes.security_groups {
                    seen.security_groups = g;
                }
                inventory.put_load_balancer(seen.clone()).await;
                seen
            }
        }
        None => {
            let guard = inventory.write_guard();
            let created = sdk::create_load_balancer(client, lb)
                .await
                .map_err(failed)?;
            metrics.changed(resources::LOAD_BALANCER, "created");
            info!(load_balancer = %created.name, arn = %created.arn, "load balancer created");
            let replacing = mine_of_target(&listing, owner_id, owner, &lb.target)
                .into_iter()
                .map(|old| old.name.clone())
                .collect::<Vec<_>>();
            notes.push(Note {
                warning: false,
                reason: if replacing.is_empty() {
                    events::CREATED
                } else {
                    events::REPLACED
                },
                message: if replacing.is_empty() {
                    format!(
                        "target {}: {} {} load balancer {} created in {}",
                        lb.target,
                        lb.scheme.as_str(),
                        lb.kind.as_str(),
                        created.name,
                        lb.vpc_id
                    )
                } else {
                    format!(
                        "target {}: load balancer {} ({} {}) created to replace {}; the records \
                         move once it is active, then the old one is deleted",
                        lb.target,
                        created.name,
                        lb.scheme.as_str(),
                        lb.kind.as_str(),
                        replacing.join(", ")
                    )
                },
            });
            inventory.put_load_balancer(created.clone()).await;
            // A load balancer just made has no listener: no need to ask.
            inventory.put_listeners(&created.arn, Vec::new()).await;
            guard.done();
            created
        }
    };
    if !seen.state.serving() {
        // Provisioning takes minutes at AWS: look again (one DescribeLoadBalancers by ARN).
        if let Some(now) = sdk::load_balancer(client, &seen.arn)
            .await
            .map_err(failed)?
        {
            let mut now = now;
            now.tags = seen.tags.clone();
            inventory.put_load_balancer(now.clone()).await;
            seen = now;
        }
    }
    report.arn = Some(seen.arn.clone());
    report.dns_name = Some(seen.dns_name.clone());
    report.hosted_zone_id = Some(seen.hosted_zone_id.clone());
    report.state = Some(seen.state.as_str().to_owned());
    if let LbState::Failed(why) = &seen.state {
        return Err(failed(format!("load balancer {} failed: {why}", seen.name)));
    }

    // The listeners, on the load balancer just created or found: with TLS only once its
    // certificate is issued (until then the listeners there keep serving as they are).
    let certificate = match &lb.listener.certificate {
        None => Ok(None),
        Some(_) => match certificates.targets.get(&lb.target) {
            Some(Resolved::Ready { arn, .. }) => Ok(Some(arn.clone())),
            Some(Resolved::Waiting { message, .. }) => Err(message.clone()),
            Some(Resolved::Failed { message, .. }) => Err(message.clone()),
            None => Err("its certificate is not known yet".to_owned()),
        },
    };
    match certificate {
        Ok(certificate) => {
            listeners::listeners_of(
                owner_id,
                owner,
                lb,
                &seen.arn,
                &tg.arn,
                certificate.as_deref(),
                inventory,
                deps,
            )
            .await?;
        }
        Err(why) => report.waiting = Some(format!("TLS listener waits: {why}")),
    }

    // Registrations: the spoke's endpoints (or nodes), diffed against DescribeTargetHealth.
    let health = inventory.target_health(&tg.arn).await.map_err(failed)?;
    if let Some(wanted) = &lb.target_group.registrations {
        let registered: Vec<_> = health.iter().map(|(r, s, _)| (r.clone(), *s)).collect();
        let diff = registration_diff(wanted, &registered);
        if !diff.register.is_empty() {
            sdk::register(client, &tg.arn, &diff.register)
                .await
                .map_err(failed)?;
            inc(deps, "register", diff.register.len());
        }
        if !diff.deregister.is_empty() {
            sdk::deregister(client, &tg.arn, &diff.deregister)
                .await
                .map_err(failed)?;
            inc(deps, "deregister", diff.deregister.len());
        }
        if !diff.is_empty() {
            info!(
                target_group = %tg.name,
                registered = diff.register.len(),
                deregistered = diff.deregister.len(),
                "target registrations changed"
            );
            inventory.forget_health(&tg.arn).await;
        }
    }
    let health = inventory.target_health(&tg.arn).await.map_err(failed)?;
    let count = |f: &dyn Fn(
        &(
            crate::model::elb::Registration,
            crate::model::elb::Registered,
            bool,
        ),
    ) -> bool| {
        u32::try_from(health.iter().filter(|h| f(h)).count()).unwrap_or(u32::MAX)
    };
    report.registered = Some(count(&|(_, s, _)| {
        *s == crate::model::elb::Registered::Serving
    }));
    report.healthy = Some(count(&|(_, _, healthy)| *healthy));
    if let Some(name) = &lb.alarm {
        ensure_alarm(
            owner_id, owner, lb, name, &seen.arn, &tg.arn, inventory, deps,
        )
        .await?;
    }
    if !seen.state.serving() {
        report.waiting = Some(format!(
            "load balancer {} is {}",
            seen.name,
            seen.state.as_str()
        ));
    }
    Ok(())
}

/// Makes the alarm of a `Private` health check follow this target group.
#[allow(clippy::too_many_arguments)]
async fn ensure_alarm(
    owner_id: &str,
    owner: &str,
    lb: &WantedLoadBalancer,
    name: &str,
    lb_arn: &str,
    tg_arn: &str,
    inventory: &Inventory,
    deps: &Deps,
) -> Result<(), Failure> {
    let wanted = alarms::dimensions(lb_arn, tg_arn);
    if inventory.alarm(name).await.as_ref() == Some(&wanted) {
        return Ok(());
    }
    let action = match alarms::existing(&inventory.cloudwatch, name, (owner_id, owner, &lb.target))
        .await
        .map_err(failed)?
    {
        alarms::Existing::Foreign(tag) => {
            return Err((
                reasons::NAME_TAKEN,
                format!(
                    "a CloudWatch alarm named {name} is not this hub's for this target \
                     ({TAG_OWNER}={}): it is never modified; the Private health check of \
                     target {} cannot follow it",
                    tag.as_deref().unwrap_or("none"),
                    lb.target
                ),
            ));
        }
        alarms::Existing::Ours(d) if d == wanted => None,
        alarms::Existing::Ours(_) => Some("modified"),
        alarms::Existing::None => Some("created"),
    };
    if let Some(action) = action {
        let tags = tags(owner_id, owner, &lb.target, resources::ALARM);
        alarms::put(&inventory.cloudwatch, name, lb.kind, &wanted, &tags)
            .await
            .map_err(failed)?;
        deps.load_balancers
            .metrics
            .changed(resources::ALARM, action);
        info!(alarm = %name, action, "alarm of the Private health check");
    }
    inventory.put_alarm(name, wanted).await;
    Ok(())
}

fn inc(deps: &Deps, action: &'static str, n: usize) {
    deps.load_balancers
        .metrics
        .registrations
        .get_or_create(&RegistrationLabels { action })
        .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
}

/// Our load balancers of one target, as listed.
fn mine_of_target<'a>(
    listing: &'a Listing,
    owner_id: &str,
    owner: &str,
    target: &str,
) -> Vec<&'a SeenLoadBalancer> {
    listing
        .load_balancers
        .values()
        .filter(|lb| owned(&lb.tags, owner_id, owner, target) == Owned::Mine)
        .collect()
}

/// The serving load balancer of ours for `target` that the records should point at: the one
/// named `wanted` when it serves, else another of ours that does (the one it replaces).
pub fn endpoint_of<'a>(
    listing: &'a Listing,
    owner_id: &str,
    owner: &str,
    target: &str,
    wanted: &str,
) -> Option<&'a SeenLoadBalancer> {
    let mine = mine_of_target(listing, owner_id, owner, target);
    mine.iter()
        .find(|lb| lb.name == wanted && lb.state.serving())
        .or_else(|| mine.iter().find(|lb| lb.state.serving()))
        .copied()
}
