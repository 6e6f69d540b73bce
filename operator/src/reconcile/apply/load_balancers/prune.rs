//! Removing what a GlobalIngress no longer wants: its load balancers that no wanted one is and no
//! record points at, their target groups (unless a kept listener forwards to them) and the
//! alarms of their targets; with `Retain`, re-tagging them `<ownerId>/retained` instead.

use std::collections::{BTreeMap, BTreeSet};

use tracing::{debug, info};

use super::{Note, events, inventory_of};
use crate::aws::acm;
use crate::aws::elb::{Inventory, alarms, sdk};
use crate::model::certificate::{self, is_mine};
use crate::model::load_balancer::{SeenLoadBalancer, resources, retained_owner, stale};
use crate::model::ownership::{TAG_GLOBALINGRESS, TAG_OWNER, TAG_TARGET, tag_value};
use crate::reconcile::Deps;

/// What [`prune`] removes: the load balancers and target groups of `owner` (a GlobalIngress,
/// `namespace/name`) of hub `owner_id` not named in `keep` and that no record points at
/// (`published` DNS names) — or, with `retain`, re-tags them `<ownerId>/retained`.
#[derive(Debug, Clone)]
pub struct Prune<'a> {
    pub owner_id: &'a str,
    pub owner: &'a str,
    pub keep: &'a BTreeSet<String>,
    pub published: &'a BTreeSet<String>,
    pub retain: bool,
    /// How long a load balancer must have been unpublished before it is deleted (resolvers
    /// keep an ALIAS for its TTL after Route 53 changed it); zero on deletion.
    pub grace: std::time::Duration,
    /// Whether certificates of `owner` not in `keep` (by ARN) go too: not while the certificate
    /// deployer could not say which it keeps.
    pub certificates: bool,
}

/// Prunes in the accounts and regions of `spokes` (name → whether a target names it). `Err`
/// names what could not be removed in a named spoke; in the others a failure is only logged.
pub async fn prune(
    what: &Prune<'_>,
    spokes: &BTreeMap<String, bool>,
    deps: &Deps,
    notes: &mut Vec<Note>,
) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut seen_scopes = BTreeSet::new();
    // The named spokes first: their scopes are the ones that must be pruned.
    let mut ordered: Vec<(&String, bool)> = spokes.iter().map(|(s, r)| (s, *r)).collect();
    ordered.sort_by_key(|(_, required)| !*required);
    for (spoke, required) in ordered {
        let mut fail = |e: String| {
            if required {
                errors.push(e);
            } else {
                debug!(%spoke, error = %e, "not pruned in a spoke no target names");
            }
        };
        let (target, inventory) = match inventory_of(spoke, deps).await {
            Ok(found) => found,
            Err(e) => {
                fail(e);
                continue;
            }
        };
        if !seen_scopes.insert((target.account.clone(), target.region.clone())) {
            continue;
        }
        if let Err(e) = prune_scope(what, &inventory, deps, notes).await {
            inventory.invalidate().await;
            fail(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

async fn prune_scope(
    what: &Prune<'_>,
    inventory: &Inventory,
    deps: &Deps,
    notes: &mut Vec<Note>,
) -> Result<(), String> {
    let Prune {
        owner_id,
        owner,
        keep,
        published,
        retain,
        grace,
        certificates,
    } = *what;
    let listing = inventory.listing().await?;
    let (owner_tag, gi_tag) = (tag_value(owner_id), tag_value(owner));
    let of_this = |tags: &BTreeMap<String, String>| {
        tags.get(TAG_OWNER) == Some(&owner_tag) && tags.get(TAG_GLOBALINGRESS) == Some(&gi_tag)
    };
    let client = &inventory.client;
    let metrics = &deps.load_balancers.metrics;
    let stale_lbs: Vec<SeenLoadBalancer> = stale(
        keep,
        published,
        listing
            .load_balancers
            .values()
            .filter(|lb| of_this(&lb.tags)),
    )
    .into_iter()
    .cloned()
    .collect();
    // Only once it has been stale for the grace period (counted from the first time it was seen
    // stale; a restart counts again).
    let not_stale: Vec<&str> = listing
        .load_balancers
        .values()
        .filter(|lb| of_this(&lb.tags) && !stale_lbs.iter().any(|s| s.arn == lb.arn))
        .map(|lb| lb.arn.as_str())
        .collect();
    inventory.not_stale(&not_stale).await;
    let mut ripe = Vec::new();
    for lb in stale_lbs {
        if inventory.stale_for(&lb.arn).await >= grace {
            ripe.push(lb);
        }
    }
    let stale_lbs = ripe;
    // Target groups and certificates still named by a listener of a load balancer we keep
    // stay.
    let mut in_use = BTreeSet::new();
    for lb in listing
        .load_balancers
        .values()
        .filter(|lb| of_this(&lb.tags) && !stale_lbs.iter().any(|s| s.arn == lb.arn))
    {
        for l in inventory.listeners(&lb.arn).await? {
            in_use.extend(l.target_group);
            in_use.extend(l.certificate);
        }
    }
    let stale_tgs: Vec<_> = listing
        .target_groups
        .values()
        .filter(|tg| of_this(&tg.tags) && !keep.contains(&tg.name) && !in_use.contains(&tg.arn))
        .cloned()
        .collect();
    let stale_certificates: Vec<String> = if certificates {
        inventory
            .certificates()
            .await?
            .into_values()
            .filter(|c| is_mine(&c.tags, owner_id, owner))
            .filter(|c| !keep.contains(&c.arn) && !in_use.contains(&c.arn))
            .map(|c| c.arn)
            .collect()
    } else {
        Vec::new()
    };
    if retain {
        for arn in &stale_certificates {
            acm::retag(&inventory.acm, arn, TAG_OWNER, &retained_owner(owner_id)).await?;
            metrics.changed(certificate::RESOURCE, "retained");
            inventory.forget_certificate(arn).await;
        }
        let arns: Vec<String> = stale_lbs
            .iter()
            .map(|l| l.arn.clone())
            .chain(stale_tgs.iter().map(|t| t.arn.clone()))
            .collect();
        if arns.is_empty() {
            return Ok(());
        }
        let tags = BTreeMap::from([(TAG_OWNER.to_owned(), retained_owner(owner_id))]);
        sdk::add_tags(client, &arns, &tags).await?;
        for lb in &stale_lbs {
            metrics.changed(resources::LOAD_BALANCER, "retained");
            inventory.forget_load_balancer(&lb.arn).await;
        }
        for tg in &stale_tgs {
            metrics.changed(resources::TARGET_GROUP, "retained");
            inventory.forget_target_group(&tg.arn).await;
        }
        return Ok(());
    }
    for lb in &stale_lbs {
        sdk::delete_load_balancer(client, &lb.arn).await?;
        metrics.changed(resources::LOAD_BALANCER, "deleted");
        info!(load_balancer = %lb.name, arn = %lb.arn, "load balancer deleted");
        inventory.forget_load_balancer(&lb.arn).await;
        notes.push(Note {
            warning: false,
            reason: events::DELETED,
            message: format!(
                "load balancer {} of target {} deleted",
                lb.name,
                lb.tags.get(TAG_TARGET).map_or("?", String::as_str)
            ),
        });
    }
    // The alarms of this object's targets that no wanted load balancer keeps (a replaced load
    // balancer's target keeps its alarm, pointed at the new one): from every resource of ours
    // still listed, so an alarm whose load balancer went in an earlier pass is not forgotten.
    let remaining: BTreeSet<String> = listing
        .load_balancers
        .values()
        .filter(|lb| of_this(&lb.tags) && !stale_lbs.iter().any(|s| s.arn == lb.arn))
        .filter_map(|lb| lb.tags.get(TAG_TARGET).cloned())
        .collect();
    let targets: BTreeSet<String> = listing
        .load_balancers
        .values()
        .map(|lb| &lb.tags)
        .chain(listing.target_groups.values().map(|tg| &tg.tags))
        .filter(|tags| of_this(tags))
        .filter_map(|tags| tags.get(TAG_TARGET).cloned())
        .filter(|t| !remaining.contains(t))
        .collect();
    for target in targets {
        let name = crate::model::health_check::alarm_name(owner, &target);
        if keep.contains(&name) {
            continue;
        }
        if let alarms::Existing::Ours(_) =
            alarms::existing(&inventory.cloudwatch, &name, (owner_id, owner, &target)).await?
        {
            alarms::delete(&inventory.cloudwatch, &name).await?;
            metrics.changed(resources::ALARM, "deleted");
        }
        inventory.forget_alarm(&name).await;
    }
    for tg in &stale_tgs {
        sdk::delete_target_group(client, &tg.arn).await?;
        metrics.changed(resources::TARGET_GROUP, "deleted");
        inventory.forget_target_group(&tg.arn).await;
    }
    // Certificates last: no listener of ours uses them any more (ACM refuses to delete one in
    // use, and the next reconcile tries again).
    for arn in &stale_certificates {
        acm::delete(&inventory.acm, arn).await?;
        metrics.changed(certificate::RESOURCE, "deleted");
        info!(certificate = %arn, "certificate deleted");
        inventory.forget_certificate(arn).await;
        notes.push(Note {
            warning: false,
            reason: crate::reconcile::apply::certificates::events::DELETED,
            message: format!("ACM certificate {arn} deleted: no listener uses it any more"),
        });
    }
    Ok(())
}
