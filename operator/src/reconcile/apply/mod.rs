//! apply: one deployer per resource kind, in dependency order — Route 53 health checks (the
//! records name them), then the records through the zone writer; what the records no longer
//! name is pruned after them. Deletion runs the other way: records first, then health checks.
//!
//! The stack is destructured without `..`: a resource kind added to [`Stack`] does not compile
//! until apply handles it.

pub mod backend_policies;
pub mod certificates;
pub mod endpoint_services;
pub mod health_checks;
pub mod load_balancers;
pub mod records;

use kube::runtime::reflector::ObjectRef;

use std::collections::{BTreeMap, BTreeSet};

use super::Deps;
use super::plan::{Plan, Problem};
use crate::api::DNSZone;
use crate::api::global_ingress::{DeletionPolicy, GlobalIngress, LoadBalancerMode};
use crate::dns::provider::ProviderError;
use crate::dns::records::Claim;
use crate::model::stack::Stack;
use crate::model::target::Endpoint;
pub use health_checks::Step;
pub use records::Publish;

/// Annotation letting a GlobalIngress be deleted although its records (or health checks)
/// cannot be removed — its zone is unreachable, its TSIG key wrong: with `"true"`, deletion
/// completes and a Warning Event `RecordsAbandoned` says what was left behind.
pub const ABANDON_RECORDS: &str = "globalingress.io/abandon-records";

/// What one apply did.
#[derive(Debug)]
pub struct Applied {
    /// Where the certificates of the TLS listeners stand (`None`: not applied, or no TLS).
    pub certificates: Option<certificates::Certificates>,
    /// Where the provisioned load balancers stand.
    pub load_balancers: load_balancers::Step,
    /// Where the PrivateLink endpoint services stand (`None`: not applied, or none).
    pub endpoint_services: Option<endpoint_services::EndpointServices>,
    /// Each target's backend NetworkPolicy (`None`: not applied, or none wanted or had).
    pub backend_policies: Option<BTreeMap<String, String>>,
    /// Events to send (load balancers created, replaced, deleted).
    pub notes: Vec<load_balancers::Note>,
    pub publish: Publish,
    /// Where the Route 53 health checks stand.
    pub checks: Step,
    /// Hostnames the zone writer would not change.
    pub conflicts: Vec<Problem>,
}

/// Registers what the plan follows — the endpoints to probe and the spoke backends to watch —
/// on leader and followers alike (a follower's prober is warm when it takes over).
pub fn follow(gi: &GlobalIngress, plan: &Plan, deps: &Deps) {
    let me = ObjectRef::from_obj(gi);
    let threshold = u32::try_from(gi.spec.failover.panic_threshold).unwrap_or(50);
    deps.health
        .register(me.clone(), plan.probes.clone(), threshold);
    deps.signals.register(me.clone(), plan.backends.clone());
    deps.nodes.register(me, plan.node_spokes.clone());
}

/// Where `gi`'s load balancers can be: nowhere when it has no Provision target and its status
/// names no load balancer; else every SpokeCluster with `spec.aws` (a removed target's spoke
/// may be named by no target any more), each with whether a target names it (only those must
/// be reachable: an unrelated broken spoke never blocks a prune or a deletion).
fn aws_spokes(gi: &GlobalIngress, deps: &Deps) -> BTreeMap<String, bool> {
    let provisions = gi
        .spec
        .targets
        .iter()
        .any(|t| t.load_balancer.mode == LoadBalancerMode::Provision);
    let had = gi.status.as_ref().is_some_and(|s| {
        s.load_balancers.is_some() || s.targets.iter().any(|t| t.load_balancer.is_some())
    });
    if !provisions && !had {
        return BTreeMap::new();
    }
    let named: BTreeSet<&str> = gi
        .spec
        .targets
        .iter()
        .filter_map(|t| t.cluster_ref.as_deref())
        .collect();
    deps.spokes
        .state()
        .iter()
        .filter(|s| s.spec.aws.is_some())
        .filter_map(|s| s.metadata.name.clone())
        .map(|name| {
            let required = named.contains(name.as_str());
            (name, required)
        })
        .collect()
}

/// Applies the plan's stack in `zone`; with `publishing` false (problems, paused) nothing is
/// changed and the records published before stay.
pub async fn apply(
    gi: &GlobalIngress,
    zone: Option<&DNSZone>,
    (plan, observed): (&Plan, u64),
    publishing: bool,
    deps: &Deps,
) -> Applied {
    let Stack {
        certificates: wanted_certificates,
        load_balancers,
        endpoint_services: wanted_services,
        health_checks,
        records,
    } = &plan.desired;
    let provisioning = gi
        .spec
        .targets
        .iter()
        .any(|t| t.load_balancer.mode == LoadBalancerMode::Provision);
    let Some(zone) = zone.filter(|_| publishing && plan.routed) else {
        return Applied {
            certificates: None,
            endpoint_services: None,
            backend_policies: None,
            load_balancers: if provisioning {
                load_balancers::Step::Skipped
            } else {
                load_balancers::Step::NotUsed
            },
            notes: Vec::new(),
            publish: Publish::Skipped,
            checks: Step::Skipped,
            conflicts: Vec::new(),
        };
    };
    let owner_id = zone.spec.owner_id.clone();
    let owner = records::claim_owner(gi, zone).resource;
    let mut notes = Vec::new();
    let writing = deps.gate.may_write("globalingress", "load-balancers");
    let tls = crate::reconcile::plan::certificates::terminates(&gi.spec);
    let certs = if provisioning && writing && tls {
        Some(
            certificates::deploy(
                &owner_id,
                &owner,
                &gi.spec.hostnames,
                wanted_certificates,
                load_balancers,
                deps,
                &mut notes,
            )
            .await,
        )
    } else {
        None
    };
    let lbs = if !provisioning {
        load_balancers::Step::NotUsed
    } else if writing {
        load_balancers::Step::Done(
            load_balancers::deploy(
                &owner_id,
                &owner,
                load_balancers,
                certs
                    .as_ref()
                    .unwrap_or(&certificates::Certificates::default()),
                deps,
                &mut notes,
            )
            .await,
        )
    } else {
        load_balancers::Step::Skipped
    };
    let services = match &lbs {
        load_balancers::Step::Done(reports) if !wanted_services.is_empty() => {
            let arns: Vec<(String, String)> = reports
                .iter()
                .filter(|r| r.error.is_none())
                .filter_map(|r| Some((r.target.clone(), r.arn.clone()?)))
                .collect();
            let annotation = |key: &str| {
                crate::model::privatelink::ids(
                    gi.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(key))
                        .map(String::as_str),
                )
            };
            let (accept, reject) = (
                annotation(endpoint_services::ACCEPT_ENDPOINT),
                annotation(endpoint_services::REJECT_ENDPOINT),
            );
            let done = endpoint_services::deploy(
                (&owner_id, &owner),
                wanted_services,
                &arns,
                (&accept, &reject),
                deps,
                &mut notes,
            )
            .await;
            endpoint_services::pending_notes(
                gi.metadata.name.as_deref().unwrap_or_default(),
                gi.status.as_ref().map_or(&[][..], |s| s.targets.as_slice()),
                &done,
                &mut notes,
            );
            Some(done)
        }
        _ => None,
    };
    // Also without Provision targets: policies of removed ones go.
    let policies = if writing {
        backend_policies::deploy(gi, (&owner_id, &owner), load_balancers, deps, &mut notes).await
    } else {
        None
    };
    let checks = health_checks::before_publish(gi, zone, health_checks, deps);
    let shared: Vec<crate::model::dns::Rrset> = certs
        .iter()
        .flat_map(|c| c.records.iter().cloned())
        .chain(services.iter().flat_map(|s| s.records.iter().cloned()))
        .collect();
    let (publish, conflicts) =
        records::deploy(gi, zone, (records, &shared), &checks, observed, deps).await;
    // Checks no record names any more go once the records are written; so do load balancers
    // no target wants and no record points at (a replaced one, a removed target's).
    if let Publish::Done { refused, .. } = &publish
        && refused.is_empty()
    {
        health_checks::after_publish(gi, zone, &checks, deps);
        // Kept by name (load balancers, target groups, alarms) or by ARN (certificates: a
        // pending one is kept too, for its listener to come).
        let keep: BTreeSet<String> = load_balancers
            .iter()
            .flat_map(|lb| [lb.name.clone(), lb.target_group.name.clone()])
            .chain(load_balancers.iter().filter_map(|lb| lb.alarm.clone()))
            .chain(certs.iter().flat_map(|c| c.keep.iter().cloned()))
            .collect();
        let published: BTreeSet<String> = plan
            .targets
            .iter()
            .filter_map(|(_, o)| match &o.endpoint {
                Some(Endpoint::Hostname { name, .. }) => Some(name.clone()),
                _ => None,
            })
            .collect();
        let spokes = aws_spokes(gi, deps);
        let keep_services: BTreeSet<String> =
            wanted_services.iter().map(|s| s.target.clone()).collect();
        if let Err(why) = prune_services(
            gi,
            (&owner_id, &owner),
            &keep_services,
            &spokes,
            false,
            deps,
            &mut notes,
        )
        .await
        {
            notes.push(load_balancers::Note {
                warning: true,
                reason: endpoint_services::events::FAILED,
                message: format!("could not remove an endpoint service: {why}"),
            });
        } else if !spokes.is_empty()
            && let Err(why) = load_balancers::prune(
                &load_balancers::Prune {
                    owner_id: &owner_id,
                    owner: &owner,
                    keep: &keep,
                    published: &published,
                    retain: false,
                    grace: deps.load_balancers.grace,
                    certificates: certs.as_ref().is_none_or(|c| c.complete),
                },
                &spokes,
                deps,
                &mut notes,
            )
            .await
        {
            notes.push(load_balancers::Note {
                warning: true,
                reason: load_balancers::events::FAILED,
                message: format!("could not remove a replaced load balancer: {why}"),
            });
        }
    }
    Applied {
        certificates: certs,
        endpoint_services: services,
        backend_policies: policies,
        load_balancers: lbs,
        notes,
        publish,
        checks,
        conflicts,
    }
}

/// What deleting a GlobalIngress did, for its Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub reason: &'static str,
    pub note: String,
    pub warning: bool,
}

/// Event reasons of deletion.
pub mod deletion_reasons {
    pub const DELETED_RECORDS: &str = "DeletedRecords";
    pub const RETAINED_RECORDS: &str = "RetainedRecords";
    pub const RECORDS_ABANDONED: &str = "RecordsAbandoned";
}

/// Removes (or, with `Retain`, hands over) what `gi` owns: records first, then health checks.
/// `Err` keeps the finalizer (the message says why); with [`ABANDON_RECORDS`] what cannot be
/// removed is left behind instead, and said so.
pub async fn delete(gi: &GlobalIngress, deps: &Deps) -> Result<Deleted, String> {
    let me = ObjectRef::from_obj(gi);
    deps.health.unregister(&me);
    deps.signals.unregister(&me);
    deps.nodes.unregister(&me);
    let zone = deps.zones.get(&ObjectRef::new(&gi.spec.dns_zone_ref));
    let abandon = gi
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ABANDON_RECORDS))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let left_behind = |why: String| {
        let hosts = gi.spec.hostnames.join(", ");
        Deleted {
            reason: deletion_reasons::RECORDS_ABANDONED,
            note: format!(
                "{ABANDON_RECORDS}: left behind in DNSZone {:?}: the records of {hosts} and their \
                 _gi registry entries, and any Route 53 health checks tagged with this object \
                 ({why}); remove them by hand",
                gi.spec.dns_zone_ref
            ),
            warning: true,
        }
    };
    match gi.spec.deletion_policy {
        DeletionPolicy::Retain => {
            // The retained records still name their health checks and point at the load
            // balancers: hand those over too.
            if let Some(zone) = &zone {
                health_checks::on_delete(gi, zone, true, deps).await?;
                delete_load_balancers(gi, zone, true, deps).await?;
            }
            Ok(Deleted {
                reason: deletion_reasons::RETAINED_RECORDS,
                note: "deletionPolicy Retain: records and resources are left in place (Route 53 \
                       health checks, load balancers, target groups, certificates, endpoint \
                       services and endpoints are re-tagged <ownerId>/retained and no longer \
                       managed)"
                    .to_owned(),
                warning: false,
            })
        }
        DeletionPolicy::Delete => {
            let Some(zone) = zone else {
                // The hub's owner id is the DNSZone's: without it, its load balancers cannot be
                // told from another hub's. Keep the object until the zone is back, or until
                // it is let go by hand.
                if !aws_spokes(gi, deps).is_empty() && !abandon {
                    return Err(format!(
                        "DNSZone {:?} no longer exists: its ownerId names this hub's load \
                         balancers, which cannot be removed without it (recreate the DNSZone, \
                         or annotate {ABANDON_RECORDS}=true to delete the object anyway, \
                         leaving them behind)",
                        gi.spec.dns_zone_ref
                    ));
                }
                return Ok(Deleted {
                    reason: deletion_reasons::DELETED_RECORDS,
                    note: format!(
                        "DNSZone {:?} no longer exists: no records to remove",
                        gi.spec.dns_zone_ref
                    ),
                    warning: false,
                });
            };
            let records = match release_records(gi, &zone, deps).await {
                Ok(records) => records,
                Err(why) if abandon => return Ok(left_behind(why)),
                Err(why) => {
                    return Err(format!(
                        "{why} (annotate {ABANDON_RECORDS}=true to delete the object anyway, \
                         leaving them behind)"
                    ));
                }
            };
            // The records are gone: their health checks and load balancers may go too.
            match health_checks::on_delete(gi, &zone, false, deps).await {
                Ok(()) => {}
                Err(why) if abandon => return Ok(left_behind(why)),
                Err(why) => return Err(why),
            }
            match delete_load_balancers(gi, &zone, false, deps).await {
                Ok(()) => {}
                Err(why) if abandon => return Ok(left_behind(why)),
                Err(why) => return Err(why),
            }
            // A backend NetworkPolicy in a spoke that cannot be reached is said and left (it
            // admits only what the removed load balancer sent): it must not hold the object.
            let left = backend_policies::remove_all(gi, &zone, deps).await;
            Ok(Deleted {
                reason: deletion_reasons::DELETED_RECORDS,
                note: if left.is_empty() {
                    records
                } else {
                    format!("{records}; left behind: {}", left.join("; "))
                },
                warning: !left.is_empty(),
            })
        }
    }
}

/// Whether `gi` may have an endpoint service of a target not in `keep`: one its spec turned
/// off, or one its status still reports (a removed target's). In sync, nothing is listed.
fn may_have_stale_services(gi: &GlobalIngress, keep: &BTreeSet<String>) -> bool {
    let off = |name: &str| !keep.contains(name);
    gi.spec
        .targets
        .iter()
        .any(|t| t.private_link.is_some() && off(&t.name))
        || gi.status.as_ref().is_some_and(|s| {
            s.targets
                .iter()
                .any(|t| t.private_link.is_some() && off(&t.name))
        })
}

/// Removes the endpoint services of `gi` whose target is not in `keep` (their consumers'
/// endpoints first), in the accounts and regions of its spokes — before their NLBs go.
async fn prune_services(
    gi: &GlobalIngress,
    who: (&str, &str),
    keep: &BTreeSet<String>,
    spokes: &BTreeMap<String, bool>,
    retain: bool,
    deps: &Deps,
    notes: &mut Vec<load_balancers::Note>,
) -> Result<(), String> {
    if !may_have_stale_services(gi, keep) {
        return Ok(());
    }
    let mut errors = Vec::new();
    let mut scopes = BTreeSet::new();
    for (spoke, required) in spokes {
        let target = match load_balancers::inventory_of(spoke, deps).await {
            Ok((target, _)) => target,
            Err(e) if *required => {
                errors.push(e);
                continue;
            }
            Err(_) => continue,
        };
        if !scopes.insert((target.account.clone(), target.region.clone())) {
            continue;
        }
        let api = deps.privatelink(&target);
        // The consumers the spec still names, in their own accounts.
        let consumers: Vec<(
            String,
            std::sync::Arc<dyn crate::aws::privatelink::PrivateLinkApi>,
        )> = gi
            .spec
            .targets
            .iter()
            .filter_map(|t| Some((t.name.clone(), t.private_link.as_ref()?)))
            .flat_map(|(name, pl)| pl.consumers.iter().map(move |c| (name.clone(), c)))
            .filter_map(|(name, c)| {
                let t = endpoint_services::consumer_target(
                    &target,
                    c.account_id.as_ref(),
                    c.role_arn.as_ref(),
                )?;
                Some((name, deps.privatelink(&t)))
            })
            .collect();
        if let Err(e) = endpoint_services::remove(&api, who, keep, &consumers, retain, notes).await
            && *required
        {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Deletes (or, with `retain`, re-tags) every load balancer and target group of `gi` in the
/// accounts of its spokes.
async fn delete_load_balancers(
    gi: &GlobalIngress,
    zone: &DNSZone,
    retain: bool,
    deps: &Deps,
) -> Result<(), String> {
    let spokes = aws_spokes(gi, deps);
    if spokes.is_empty() {
        return Ok(());
    }
    let mut notes = Vec::new();
    let none = BTreeSet::new();
    let owner = records::claim_owner(gi, zone).resource;
    prune_services(
        gi,
        (&zone.spec.owner_id, &owner),
        &none,
        &spokes,
        retain,
        deps,
        &mut notes,
    )
    .await?;
    load_balancers::prune(
        &load_balancers::Prune {
            owner_id: &zone.spec.owner_id,
            owner: &records::claim_owner(gi, zone).resource,
            keep: &none,
            published: &none,
            retain,
            grace: std::time::Duration::ZERO,
            certificates: true,
        },
        &spokes,
        deps,
        &mut notes,
    )
    .await
}

/// Releases every name `gi` holds in `zone`: exactly its records and registry entries go.
/// `Ok` says what was done; a hosted zone that does not exist holds nothing of ours.
async fn release_records(
    gi: &GlobalIngress,
    zone: &DNSZone,
    deps: &Deps,
) -> Result<String, String> {
    let writer = deps
        .writers
        .for_zone(zone)
        .await
        .map_err(|(reason, message)| format!("{reason}: {message}"))?;
    // Observed now: a claim of a reconcile or wave that read the object before cannot bring
    // the records back.
    let owner = records::claim_owner(gi, zone);
    deps.waves.forget(&owner.resource);
    let outcome = writer
        .submit_observed(
            Claim {
                owner,
                names: Vec::new(),
                desired: Vec::new(),
                shared: Vec::new(),
                keep_health_checks: false,
            },
            crate::reconcile::observe::observation(),
        )
        .await;
    match outcome {
        Ok(outcome) if outcome.refused.is_empty() => Ok(format!(
            "deletionPolicy Delete: {} change(s) removed this object's records",
            outcome.changes
        )),
        Ok(outcome) => Err(outcome.refused.join("; ")),
        Err(e) => match e.provider() {
            Some(ProviderError::ZoneNotFound { message }) => Ok(format!(
                "deletionPolicy Delete: nothing to remove ({message}: none of our records can \
                 exist there)"
            )),
            _ => Err(crate::telemetry::error_chain(&e)),
        },
    }
}
