//! The pure core: what the health checks of an owner should be, compared with what the account
//! holds, as a list of [`Action`]s.
//!
//! Contract: no client, no clock. Input is the desired checks, every health check of the account
//! (ours and foreign, as listed) and the account's quota; output is data that can be printed and
//! tested. Ownership is decided by the `globalingress.io/owner` tag alone: a check without it, or
//! with another owner's, never appears in an `Update`, `Delete` or `Keep`.

use std::collections::{BTreeMap, HashSet};

pub use crate::model::health_check::{
    AlarmCheck, CheckConfig, Endpoint, EndpointCheck, Protocol, RequestInterval, alarm_name,
};
pub use crate::model::ownership::Tags;
use crate::model::ownership::{self, resources, tag_value};

/// One health check the operator wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredCheck {
    /// The owner id (the DNSZone's `spec.ownerId`).
    pub owner: String,
    /// The GlobalIngress, `namespace/name`.
    pub resource: String,
    /// The target's name.
    pub target: String,
    pub config: CheckConfig,
}

impl DesiredCheck {
    /// The tags a check for this target carries.
    pub fn tags(&self) -> Vec<(String, String)> {
        ownership::tags(
            &self.owner,
            &self.resource,
            &self.target,
            resources::HEALTH_CHECK,
        )
    }
}

/// One health check of the account, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingCheck {
    pub id: String,
    pub caller_reference: String,
    /// Route 53's `HealthCheckVersion`, sent back with an update so a concurrent change is not
    /// overwritten.
    pub version: i64,
    /// Normalized settings; `None` for a kind of check this operator never creates (calculated,
    /// string matching, recovery control, an alarm check without its alarm).
    pub config: Option<CheckConfig>,
    /// Settings the operator never changes are not at its values (inverted, disabled, SNI off,
    /// another insufficient-data status): an update puts them back.
    pub drifted: bool,
    pub tags: Tags,
}

/// Which checks a plan may delete.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// The reconcile of one GlobalIngress (`namespace/name`): only its own checks.
    Resource(&'a str),
    /// Garbage collection: every check of the owner whose (resource, target) is not in `live`.
    All { live: &'a HashSet<(String, String)> },
}

/// Why a create was refused before it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// Health checks in the account (every owner's) plus the ones this plan creates first.
    pub in_use: usize,
    pub quota: usize,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create {
        check: DesiredCheck,
    },
    /// A create the account's quota leaves no room for.
    Refuse {
        target: String,
        why: QuotaExceeded,
    },
    Update {
        id: String,
        version: i64,
        check: DesiredCheck,
    },
    Keep {
        id: String,
        target: String,
    },
    Delete {
        id: String,
        /// The check's resource and target tags (for logs).
        resource: Option<String>,
        target: Option<String>,
    },
}

/// How well an existing check serves a desired one: lower is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fit {
    Equal,
    Updatable,
    Replace,
}

fn fit(existing: &ExistingCheck, desired: &CheckConfig) -> Fit {
    match &existing.config {
        Some(config) if config == desired && !existing.drifted => Fit::Equal,
        Some(config) if config.updatable_to(desired) => Fit::Updatable,
        Some(_) | None => Fit::Replace,
    }
}

/// The plan for `owner`'s health checks.
///
/// Every desired check is matched with the owner's checks tagged with its resource and target:
/// the best fit is kept (equal), updated in place (same type and interval) or replaced (a new
/// check is created; the old one is deleted). Extra checks for the same target (a duplicate left
/// by a crash) are deleted. Checks of the owner that match nothing are deleted within `scope`.
/// A create is refused when the account (`existing`, every owner's checks) would hold more than
/// `quota`; planned deletions do not make room, since they run after the records stop pointing at
/// the deleted checks.
///
/// Desired checks of another owner, and repeats of a (resource, target), are ignored.
/// Actions come in a stable order: creates and refusals, updates, keeps, deletes.
pub fn plan(
    desired: &[DesiredCheck],
    existing: &[ExistingCheck],
    owner: &str,
    scope: Scope<'_>,
    quota: usize,
) -> Vec<Action> {
    let owner_tag = tag_value(owner);
    let mut ours: BTreeMap<(Option<String>, Option<String>), Vec<&ExistingCheck>> = BTreeMap::new();
    for check in existing
        .iter()
        .filter(|c| c.tags.owner.as_deref() == Some(&owner_tag))
    {
        ours.entry((check.tags.global_ingress.clone(), check.tags.target.clone()))
            .or_default()
            .push(check);
    }

    let mut creates = Vec::new();
    let mut updates = Vec::new();
    let mut keeps = Vec::new();
    let mut deletes = Vec::new();
    let mut in_use = existing.len();
    let mut seen = HashSet::new();
    for check in desired {
        if check.owner != owner || !seen.insert((&check.resource, &check.target)) {
            continue;
        }
        let config = check.config.normalized();
        let key = (
            Some(tag_value(&check.resource)),
            Some(tag_value(&check.target)),
        );
        let mut candidates = ours.remove(&key).unwrap_or_default();
        candidates.sort_by_key(|c| (fit(c, &config), c.id.clone()));
        let mut rest = candidates.into_iter();
        let best = rest.next();
        let needs_create = match best.map(|b| (b, fit(b, &config))) {
            Some((b, Fit::Equal)) => {
                keeps.push(Action::Keep {
                    id: b.id.clone(),
                    target: check.target.clone(),
                });
                false
            }
            Some((b, Fit::Updatable)) => {
                updates.push(Action::Update {
                    id: b.id.clone(),
                    version: b.version,
                    check: DesiredCheck {
                        config: config.clone(),
                        ..check.clone()
                    },
                });
                false
            }
            Some((b, Fit::Replace)) => {
                deletes.push(b);
                true
            }
            None => true,
        };
        if needs_create && in_use < quota {
            in_use += 1;
            creates.push(Action::Create {
                check: DesiredCheck {
                    config,
                    ..check.clone()
                },
            });
        } else if needs_create {
            creates.push(Action::Refuse {
                target: check.target.clone(),
                why: QuotaExceeded { in_use, quota },
            });
        }
        deletes.extend(rest);
    }

    // The scope in tag values.
    enum Deletable {
        OfResource(String),
        NotLive(HashSet<(String, String)>),
    }
    let deletable = match scope {
        Scope::Resource(resource) => Deletable::OfResource(tag_value(resource)),
        Scope::All { live } => Deletable::NotLive(
            live.iter()
                .map(|(r, t)| (tag_value(r), tag_value(t)))
                .collect(),
        ),
    };
    for ((resource, target), checks) in ours {
        let goes = match (&deletable, resource, target) {
            (Deletable::OfResource(scoped), resource, _) => resource.as_ref() == Some(scoped),
            (Deletable::NotLive(live), Some(r), Some(t)) => !live.contains(&(r, t)),
            // Ours by its owner tag, but not telling what it serves: nothing can be using it.
            (Deletable::NotLive(_), _, _) => true,
        };
        if goes {
            deletes.extend(checks);
        }
    }
    deletes.sort_by(|a, b| a.id.cmp(&b.id));

    creates
        .into_iter()
        .chain(updates)
        .chain(keeps)
        .chain(deletes.into_iter().map(delete))
        .collect()
}

fn delete(check: &ExistingCheck) -> Action {
    Action::Delete {
        id: check.id.clone(),
        resource: check.tags.global_ingress.clone(),
        target: check.tags.target.clone(),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
