//! Views derived from the GlobalIngress cache that a reconcile needs about *other* objects:
//! who claims which hostname, and how many objects are Ready.
//!
//! The watch cache has no secondary indexes. Scanning it in every reconcile made a wave of N
//! reconciles cost O(N²) (10,000 objects: 10⁸ steps, the operator's CPU pegged for minutes), so
//! the views are rebuilt at most every `max_age` and shared. A view can lag the cache by that
//! much; the DNS ownership registry still stops two objects from writing one name meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::ResourceExt as _;
use kube::runtime::reflector::Store;

use crate::api::GlobalIngress;
use crate::api::condition::find;

/// One object claiming a hostname.
#[derive(Debug, Clone)]
pub struct Claimant {
    /// Older first: (creation time, namespace, name).
    pub age_key: (Option<jiff::Timestamp>, String, String),
    pub uid: Option<String>,
}

/// A snapshot of the derived views.
#[derive(Debug, Default)]
pub struct Views {
    /// (DNSZone name, lower-case hostname) -> claimants, not being deleted.
    pub claims: HashMap<(String, String), Vec<Claimant>>,
    /// Ready condition status -> number of objects.
    pub ready: BTreeMap<String, i64>,
    /// Target health in the statuses -> number of targets.
    pub target_health: BTreeMap<String, i64>,
}

/// The shared, periodically rebuilt views.
#[derive(Debug)]
pub struct IngressIndex {
    max_age: Duration,
    current: Mutex<Option<(Instant, Arc<Views>)>>,
}

impl IngressIndex {
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            current: Mutex::new(None),
        }
    }

    /// The views, rebuilt from `store` when older than `max_age`.
    pub fn views(&self, store: &Store<GlobalIngress>) -> Arc<Views> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((built, views)) = current.as_ref()
            && built.elapsed() < self.max_age
        {
            return views.clone();
        }
        let views = Arc::new(build(&store.state()));
        *current = Some((Instant::now(), views.clone()));
        views
    }
}

/// Who is older: the key that decides a hostname conflict (ties broken by namespace/name).
pub fn age_key(gi: &GlobalIngress) -> (Option<jiff::Timestamp>, String, String) {
    (
        gi.metadata.creation_timestamp.clone().map(|t| t.0),
        gi.namespace().unwrap_or_default(),
        gi.name_any(),
    )
}

fn build(objects: &[Arc<GlobalIngress>]) -> Views {
    let mut views = Views::default();
    for gi in objects {
        let ready = gi
            .status
            .as_ref()
            .and_then(|s| find(&s.conditions, "Ready"))
            .map_or_else(|| "Unknown".to_owned(), |c| c.status.clone());
        *views.ready.entry(ready).or_default() += 1;
        for t in gi.status.iter().flat_map(|s| &s.targets) {
            *views.target_health.entry(t.health.clone()).or_default() += 1;
        }
        if gi.metadata.deletion_timestamp.is_some() {
            continue;
        }
        for host in &gi.spec.hostnames {
            views
                .claims
                .entry((
                    gi.spec.dns_zone_ref.clone(),
                    host.trim_end_matches('.').to_ascii_lowercase(),
                ))
                .or_default()
                .push(Claimant {
                    age_key: age_key(gi),
                    uid: gi.metadata.uid.clone(),
                });
        }
    }
    views
}
