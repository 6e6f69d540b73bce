//! The backend NetworkPolicies in the spokes (`spec.backendNetworkPolicy` or
//! `--backend-network-policies`; the pure part is `model::backend_policy`).
//!
//! One per Provision target that registers pod IPs, in its backend Service's namespace: written
//! when missing or different (server-side apply, fenced by the Lease), never when a policy of
//! that name is not ours. The ones this GlobalIngress has are in its status
//! (`targets[].backendPolicy`), so removal needs no listing: a policy no target has any more, or
//! every one when the feature is off, is deleted if it is still ours. A target whose step fails
//! (AWS or the spoke not answering) keeps its policy as it was; so does a spoke that cannot be
//! reached for a removal (tried again next time).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;

use super::load_balancers::Note;
use crate::api::{DNSZone, GlobalIngress};
use crate::model::backend_policy::{self, WantedBackendPolicy};
use crate::model::elb::TargetKind;
use crate::model::load_balancer::WantedLoadBalancer;
use crate::reconcile::Deps;

pub mod events {
    pub const APPLIED: &str = "BackendPolicyApplied";
    pub const REMOVED: &str = "BackendPolicyRemoved";
    pub const CONFLICT: &str = "BackendPolicyConflict";
    pub const FAILED: &str = "BackendPolicyFailed";
}

const FIELD_MANAGER: &str = "globalingress";
/// How long the CIDRs of a load balancer's subnets are trusted (subnets do not change blocks).
const CIDRS_FOR: Duration = Duration::from_secs(600);

/// (account, region, subnet id).
type SubnetKey = (String, String, String);

/// Subnet CIDRs by (account, region, subnet), read with DescribeSubnets at most every
/// [`CIDRS_FOR`].
#[derive(Debug, Default, Clone)]
pub struct SubnetCidrs(Arc<Mutex<BTreeMap<SubnetKey, (Instant, String)>>>);

impl SubnetCidrs {
    fn get(&self, key: &SubnetKey) -> Option<String> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key)
            .filter(|(at, _)| at.elapsed() < CIDRS_FOR)
            .map(|(_, c)| c.clone())
    }

    fn put(&self, key: SubnetKey, cidr: String) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(key, (Instant::now(), cidr));
    }
}

/// Whether `gi` wants backend policies.
pub fn enabled(gi: &GlobalIngress, deps: &Deps) -> bool {
    gi.spec
        .backend_network_policy
        .unwrap_or(deps.backend_network_policies)
}

/// `namespace/name` of each target's policy, as the status last said (the spoke is the target's).
fn previous(gi: &GlobalIngress) -> BTreeMap<String, String> {
    gi.status
        .iter()
        .flat_map(|s| &s.targets)
        .filter_map(|t| Some((t.name.clone(), t.backend_policy.clone()?)))
        .collect()
}

/// Makes the wanted policies exist and removes ours no target wants; returns each target's
/// policy (`namespace/name`) as it stands now, for the status. `None` when the GlobalIngress
/// neither wants nor had any.
pub async fn deploy(
    gi: &GlobalIngress,
    (owner_id, owner): (&str, &str),
    load_balancers: &[WantedLoadBalancer],
    deps: &Deps,
    notes: &mut Vec<Note>,
) -> Option<BTreeMap<String, String>> {
    let on = enabled(gi, deps);
    let before = previous(gi);
    if !on && before.is_empty() {
        return None;
    }
    let hash = backend_policy::owner_hash(owner_id, owner);
    // Each target's policy after this step; a target whose step failed keeps what it had (the
    // last good state stays).
    let mut now = BTreeMap::new();
    if on {
        for lb in load_balancers
            .iter()
            .filter(|lb| lb.target_group.target_kind == TargetKind::Ip)
        {
            match step(gi, (owner_id, owner), lb, deps, notes).await {
                Outcome::Present(at) => {
                    now.insert(lb.target.clone(), at);
                }
                Outcome::Keep => {
                    if let Some(old) = before.get(&lb.target) {
                        now.insert(lb.target.clone(), old.clone());
                    }
                }
                Outcome::Absent => {}
            }
        }
    }
    // Ours that nothing has any more (off, target gone, renamed, somebody's in its place).
    for (target, at) in &before {
        if now.get(target) == Some(at) {
            continue;
        }
        let Some(spoke) = spoke_of(gi, target) else {
            continue;
        };
        match remove(&spoke, at, &hash, deps).await {
            Ok(true) => notes.push(Note {
                warning: false,
                reason: events::REMOVED,
                message: format!("NetworkPolicy {at} in spoke {spoke} removed"),
            }),
            Ok(false) => {}
            Err(e) => {
                notes.push(failed(target, &e));
                now.entry(target.clone()).or_insert_with(|| at.clone());
            }
        }
    }
    Some(now)
}

/// Where one target's policy stands after [`step`].
enum Outcome {
    /// Ours exists as wanted, at `namespace/name`.
    Present(String),
    /// Not changed this time (not known yet, not the leader, or failed): what the status said holds.
    Keep,
    /// No policy of ours for it (somebody's holds the name).
    Absent,
}

/// Writes `lb`'s target's policy if it is missing or different.
async fn step(
    gi: &GlobalIngress,
    who: (&str, &str),
    lb: &WantedLoadBalancer,
    deps: &Deps,
    notes: &mut Vec<Note>,
) -> Outcome {
    let w = match wanted_for(gi, who, lb, deps).await {
        Ok(Some(w)) => w,
        Ok(None) => return Outcome::Keep,
        Err(e) => {
            notes.push(failed(&lb.target, &e));
            return Outcome::Keep;
        }
    };
    let at = format!("{}/{}", w.namespace, w.name);
    match write(&w, deps).await {
        Ok(Written::Unchanged) => Outcome::Present(at),
        Ok(Written::Applied) => {
            notes.push(Note {
                warning: false,
                reason: events::APPLIED,
                message: format!(
                    "NetworkPolicy {at} in spoke {}: pods of {} admitted only from {} on port(s) {}",
                    w.spoke,
                    selector_text(&w.pod_selector),
                    w.cidrs.iter().cloned().collect::<Vec<_>>().join(", "),
                    w.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
                ),
            });
            Outcome::Present(at)
        }
        Ok(Written::NotOurs) => {
            notes.push(Note {
                warning: true,
                reason: events::CONFLICT,
                message: format!(
                    "target {}: NetworkPolicy {at} in spoke {} exists and is not ours (no {}={} label): left alone",
                    lb.target, w.spoke, backend_policy::OWNER_LABEL, w.owner_hash
                ),
            });
            Outcome::Absent
        }
        Ok(Written::Skipped) => Outcome::Keep,
        Err(e) => {
            notes.push(failed(&lb.target, &e));
            Outcome::Keep
        }
    }
}

/// Removes every policy the status names (GlobalIngress deletion); what cannot be removed is
/// said, and left.
pub async fn remove_all(gi: &GlobalIngress, zone: &DNSZone, deps: &Deps) -> Vec<String> {
    let owner = super::records::claim_owner(gi, zone);
    let hash = backend_policy::owner_hash(&owner.owner, &owner.resource);
    let mut left = Vec::new();
    for (target, at) in previous(gi) {
        let Some(spoke) = spoke_of(gi, &target) else {
            continue;
        };
        if let Err(e) = remove(&spoke, &at, &hash, deps).await {
            left.push(format!("NetworkPolicy {at} in spoke {spoke}: {e}"));
        }
    }
    left
}

fn failed(target: &str, e: &str) -> Note {
    Note {
        warning: true,
        reason: events::FAILED,
        message: format!("target {target}: backend NetworkPolicy: {e}"),
    }
}

fn selector_text(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn spoke_of(gi: &GlobalIngress, target: &str) -> Option<String> {
    gi.spec
        .targets
        .iter()
        .find(|t| t.name == target)
        .and_then(|t| t.cluster_ref.clone())
}

/// What `lb`'s target's policy must say; `Ok(None)` while something is not known yet (the
/// Service, the registrations).
async fn wanted_for(
    gi: &GlobalIngress,
    who: (&str, &str),
    lb: &WantedLoadBalancer,
    deps: &Deps,
) -> Result<Option<WantedBackendPolicy>, String> {
    let Some(service) = gi
        .spec
        .targets
        .iter()
        .find(|t| t.name == lb.target)
        .and_then(|t| t.backend.as_ref())
        .map(|b| &b.service)
    else {
        return Ok(None);
    };
    let backend = crate::model::target::Backend {
        spoke: lb.spoke.clone(),
        namespace: service.namespace.clone(),
        name: service.name.clone(),
    };
    let Some(selector) = deps
        .signals
        .state(&backend)
        .and_then(|s| s.service)
        .and_then(|s| s.spec)
        .map(|s| s.selector.unwrap_or_default())
    else {
        return Ok(None);
    };
    let Some(registrations) = &lb.target_group.registrations else {
        return Ok(None);
    };
    let ports: BTreeSet<u16> = registrations.iter().map(|r| r.port).collect();
    let cidrs = cidrs_of(lb, deps).await?;
    match backend_policy::wanted(
        who,
        &lb.target,
        &lb.spoke,
        &service.namespace,
        &selector,
        cidrs,
        ports,
    ) {
        Ok(w) => Ok(Some(w)),
        Err(backend_policy::NoPolicy::NoPorts) => Ok(None),
        Err(why) => Err(format!("none written: {}", why.describe())),
    }
}

async fn cidrs_of(lb: &WantedLoadBalancer, deps: &Deps) -> Result<BTreeSet<String>, String> {
    let (target, _) = super::load_balancers::inventory_of(&lb.spoke, deps).await?;
    let key = |subnet: &str| {
        (
            target.account.clone(),
            target.region.clone(),
            subnet.to_owned(),
        )
    };
    let mut cidrs = BTreeSet::new();
    let mut unknown = Vec::new();
    for subnet in &lb.subnets {
        match deps.subnet_cidrs.get(&key(subnet)) {
            Some(c) => {
                cidrs.insert(c);
            }
            None => unknown.push(subnet.clone()),
        }
    }
    if !unknown.is_empty() {
        let found = deps.privatelink(&target).subnet_cidrs(&unknown).await?;
        for (subnet, cidr) in found {
            deps.subnet_cidrs.put(key(&subnet), cidr.clone());
            cidrs.insert(cidr);
        }
    }
    Ok(cidrs)
}

enum Written {
    Unchanged,
    Applied,
    NotOurs,
    /// Not the leader: nothing sent.
    Skipped,
}

async fn spoke_policies(
    spoke: &str,
    namespace: &str,
    deps: &Deps,
) -> Result<Api<NetworkPolicy>, String> {
    let object = deps
        .spokes
        .get(&ObjectRef::new(spoke))
        .ok_or_else(|| format!("SpokeCluster {spoke:?} does not exist"))?;
    let (client, _) = crate::spoke::client::connect(&object, &deps.client)
        .await
        .map_err(|(reason, message)| format!("{reason}: {message}"))?;
    Ok(Api::namespaced(client, namespace))
}

async fn write(w: &WantedBackendPolicy, deps: &Deps) -> Result<Written, String> {
    let api = spoke_policies(&w.spoke, &w.namespace, deps).await?;
    let wanted = backend_policy::object(w);
    let existing = api
        .get_opt(&w.name)
        .await
        .map_err(|e| format!("reading it: {}", crate::telemetry::error_chain(&e)))?;
    match &existing {
        Some(p) if !backend_policy::is_ours(p, &w.owner_hash) => return Ok(Written::NotOurs),
        Some(p) if !backend_policy::differs(p, &wanted) => return Ok(Written::Unchanged),
        _ => {}
    }
    if !deps.gate.may_write("globalingress", "network-policy") {
        return Ok(Written::Skipped);
    }
    let mut body = serde_json::to_value(&wanted).map_err(|e| e.to_string())?;
    body["apiVersion"] = "networking.k8s.io/v1".into();
    body["kind"] = "NetworkPolicy".into();
    api.patch(
        &w.name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| format!("writing it: {}", crate::telemetry::error_chain(&e)))?;
    Ok(Written::Applied)
}

/// Deletes `at` (`namespace/name`) in `spoke` if it is ours; `Ok(false)` when it is gone already
/// or somebody else's.
async fn remove(spoke: &str, at: &str, owner_hash: &str, deps: &Deps) -> Result<bool, String> {
    let (namespace, name) = at.split_once('/').unwrap_or(("", at));
    let api = spoke_policies(spoke, namespace, deps).await?;
    let existing = api
        .get_opt(name)
        .await
        .map_err(|e| format!("reading {at}: {}", crate::telemetry::error_chain(&e)))?;
    match existing {
        Some(p) if backend_policy::is_ours(&p, owner_hash) => {
            if !deps.gate.may_write("globalingress", "network-policy") {
                return Ok(false);
            }
            api.delete(name, &DeleteParams::default())
                .await
                .map_err(|e| format!("deleting {at}: {}", crate::telemetry::error_chain(&e)))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}
