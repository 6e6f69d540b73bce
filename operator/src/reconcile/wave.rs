//! Waves: the records of every GlobalIngress one event concerns (an endpoint's verdict changed,
//! the false-failover guard engaged or let go, a DNSZone or SpokeCluster they name changed),
//! recomputed from the caches — observe and plan, as a reconcile does — and handed to their zone
//! writers in one request per zone. One failover costs one change call per zone (two where the
//! provider's limits force it), whatever the number of GlobalIngresses, instead of a reconcile
//! per object racing the writer's batching window and waiting for the hub's status writes
//! before the next could publish. Their reconciles follow for the status and Events: they find
//! the records written.
//!
//! A recovered target waiting for `failbackAfter` is due at the same instant in every object of
//! the wave: the wave says when ([`Due`]), and the caller runs the next wave then — the failback
//! is one change too.
//!
//! A wave publishes only what a reconcile would: an object with problems, paused, being deleted,
//! or not yet published by this replica is left to its reconcile (which comes after the wave in
//! any case). Its claims carry their observation's number: a reconcile that read the health
//! before the event cannot undo the wave, and the wave cannot undo a newer reconcile.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt as _;
use kube::ResourceExt as _;
use kube::runtime::reflector::ObjectRef;

use super::apply::{health_checks, records};
use super::{Deps, observe, plan};
use crate::api::{DNSZone, GlobalIngress};
use crate::dns::records::{Claim, Rrset};
use crate::model::ownership::owner_key;

/// How long computing one wave may take; objects not computed by then are left to their
/// reconciles (an observe waiting on a spoke or an AWS listing must not hold the others).
const COMPUTE_WITHIN: Duration = Duration::from_secs(5);
/// Objects observed and planned at once.
const CONCURRENCY: usize = 64;

/// What the records deployer last published beside each object's records (validation CNAMEs,
/// verification TXTs): a wave recomputes only the records from the health, and must hand the
/// shared ones on unchanged. An object not in here was never published by this replica.
#[derive(Debug, Default)]
pub struct Memory {
    shared: Mutex<HashMap<String, Vec<Rrset>>>,
}

impl Memory {
    /// `owner` was just published with `shared` beside its records.
    pub fn remember(&self, owner: &str, shared: &[Rrset]) {
        let mut map = self.lock();
        match map.get_mut(owner) {
            Some(known) if known.as_slice() == shared => {}
            _ => {
                map.insert(owner.to_owned(), shared.to_vec());
            }
        }
    }

    /// `owner`'s records are being removed.
    pub fn forget(&self, owner: &str) {
        self.lock().remove(owner);
    }

    fn shared(&self, owner: &str) -> Option<Vec<Rrset>> {
        self.lock().get(owner).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Rrset>>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one wave did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Objects the event concerned.
    pub objects: usize,
    /// Claims handed to zone writers.
    pub claims: usize,
    /// Zones written to.
    pub zones: usize,
    /// Record changes written.
    pub changes: usize,
    /// Claims a zone writer could not write (their reconciles try again).
    pub failed: usize,
}

/// A zone and the claims (with their observations' numbers) for it.
type ZoneClaims = (Arc<DNSZone>, Vec<(Claim, u64)>);

/// Objects whose plan changes again after a while (a recovered target's `failbackAfter`), with
/// how long from now.
pub type Due = Vec<(ObjectRef<GlobalIngress>, Duration)>;

/// Recomputes and publishes the records of `gis` together; returns what it did and what is due
/// later. A follower publishes nothing.
pub async fn publish(gis: Vec<Arc<GlobalIngress>>, deps: &Deps) -> (Report, Due) {
    let mut report = Report {
        objects: gis.len(),
        ..Report::default()
    };
    let mut due = Due::new();
    if gis.is_empty() || !deps.gate.leadership.is_leader() {
        return (report, due);
    }
    let deadline = tokio::time::Instant::now() + COMPUTE_WITHIN;
    let mut computed = futures::stream::iter(gis)
        .map(|gi| async move { claim_of(&gi, deps).await })
        .buffer_unordered(CONCURRENCY);
    let mut by_zone: BTreeMap<String, ZoneClaims> = BTreeMap::new();
    while let Ok(Some(next)) = tokio::time::timeout_at(deadline, computed.next()).await {
        if let Some(Computed {
            zone,
            claim,
            observed,
            due: later,
        }) = next
        {
            due.extend(later);
            by_zone
                .entry(zone.name_any())
                .or_insert_with(|| (zone, Vec::new()))
                .1
                .push((claim, observed));
        }
    }
    drop(computed);
    let mut submits = Vec::new();
    for (zone, claims) in by_zone.into_values() {
        if !deps.gate.may_write("globalingress", "dns") {
            return (report, due);
        }
        let Ok(writer) = deps.writers.for_zone(&zone).await else {
            // The reconciles report why.
            report.failed += claims.len();
            continue;
        };
        report.zones += 1;
        report.claims += claims.len();
        submits.push(async move { writer.submit_all(claims).await });
    }
    for result in futures::future::join_all(submits)
        .await
        .into_iter()
        .flatten()
    {
        match result {
            Ok(outcome) => report.changes += outcome.changes,
            Err(_) => report.failed += 1,
        }
    }
    (report, due)
}

/// One object's part of a wave.
struct Computed {
    zone: Arc<DNSZone>,
    claim: Claim,
    /// The observation's number.
    observed: u64,
    /// When its plan changes next, from now.
    due: Option<(ObjectRef<GlobalIngress>, Duration)>,
}

/// The claim `gi`'s reconcile would hand its zone writer now; `None` when a wave leaves it to
/// the reconcile.
async fn claim_of(gi: &GlobalIngress, deps: &Deps) -> Option<Computed> {
    if gi.metadata.deletion_timestamp.is_some() || gi.spec.paused {
        return None;
    }
    let owner = owner_key(&gi.namespace().unwrap_or_default(), &gi.name_any());
    let shared = deps.waves.shared(&owner)?;
    let snapshot = observe::gather(gi, deps).await;
    let plan = plan::plan(&snapshot.input(gi));
    if !snapshot.problems.is_empty() || !plan.problems.is_empty() || !plan.routed {
        return None;
    }
    let zone = snapshot.zone_object?;
    let checks = health_checks::before_publish(gi, &zone, &plan.desired.health_checks, deps);
    let claim = records::claim(gi, &zone, &plan.desired.records, &shared, &checks);
    // As the reconcile requeues.
    let due = plan
        .due_in(snapshot.now, jiff::Timestamp::now())
        .map(|after| (ObjectRef::from_obj(gi), after));
    Some(Computed {
        zone,
        claim,
        observed: snapshot.observed,
        due,
    })
}
