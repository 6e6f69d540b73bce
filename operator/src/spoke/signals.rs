//! Spoke signals: what each spoke's API server says about a target's backend — does the Service
//! exist, and how many ready endpoints do its EndpointSlices list.
//!
//! One task per spoke (not per Service or GlobalIngress), holding two watches on it: every
//! Service and every EndpointSlice of the spoke, kept in the spoke's cache; each backend
//! `(spoke, namespace, service)` a GlobalIngress registers is judged from that cache (its Service
//! by name, its slices by the `kubernetes.io/service-name` label), at once when the cache has
//! listed, and again at every event of its objects. A change that matters (Service appears or goes, ready endpoints reach or leave zero,
//! the load balancer's address changes) sends the GlobalIngresses using the backend to the
//! controller at once. A spoke that cannot be reached reports [`Signal::Unreachable`]: the probe
//! through the data path decides alone then.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{StreamExt as _, TryStreamExt as _};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tracing::{debug, info};

use crate::api::{GlobalIngress, SpokeCluster};
use crate::model::health::Signal;
pub use crate::model::target::Backend;

type GiRef = ObjectRef<GlobalIngress>;

/// What is known about a backend.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendState {
    pub signal: Signal,
    /// The Service, when it exists (its `status.loadBalancer` is an adopted target's address).
    pub service: Option<Service>,
    /// Its EndpointSlices (a provisioned target group registers their ready endpoints).
    pub slices: Vec<EndpointSlice>,
}

struct Watch {
    state: BackendState,
    /// Since when ready endpoints have been there without a break (a spoke API outage is not a
    /// break: it says nothing about the pods).
    ready_since: Option<Timestamp>,
    users: HashSet<GiRef>,
}

/// A backend's signal, its Service and its slices, as judged from a spoke's cache.
type Judged = (Signal, Option<Service>, Vec<EndpointSlice>);

/// What one spoke's watches have seen: `None` until each has listed once.
#[derive(Default)]
struct SpokeCache {
    /// Services by (namespace, name).
    services: Option<HashMap<(String, String), Service>>,
    /// EndpointSlices by (namespace, name).
    slices: Option<HashMap<(String, String), EndpointSlice>>,
}

impl SpokeCache {
    /// The state of `b` (namespace and name of its Service), once both watches listed.
    fn judge(&self, b: &Backend) -> Option<Judged> {
        let (services, slices) = (self.services.as_ref()?, self.slices.as_ref()?);
        let service = services
            .get(&(b.namespace.clone(), b.name.clone()))
            .cloned();
        let mine: Vec<EndpointSlice> = slices
            .iter()
            .filter(|((ns, _), slice)| {
                *ns == b.namespace && service_of(slice) == Some(b.name.as_str())
            })
            .map(|(_, slice)| slice.clone())
            .collect();
        let signal = match &service {
            None => Signal::ServiceMissing {
                since: Timestamp::now(),
            },
            Some(_) => Signal::Endpoints {
                ready: ready_endpoints(&mine),
                since: Timestamp::now(),
            },
        };
        Some((signal, service, mine))
    }
}

/// The Service an EndpointSlice belongs to (its `kubernetes.io/service-name` label).
fn service_of(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .labels
        .as_ref()?
        .get("kubernetes.io/service-name")
        .map(String::as_str)
}

struct Inner {
    hub: kube::Client,
    spokes: Store<SpokeCluster>,
    trigger: mpsc::UnboundedSender<GiRef>,
    watches: Mutex<HashMap<Backend, Watch>>,
    registrations: Mutex<HashMap<GiRef, Vec<Backend>>>,
    /// One task per spoke with a registered backend.
    tasks: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    caches: Mutex<HashMap<String, SpokeCache>>,
}

/// The spoke watches. Cheap to clone.
#[derive(Clone)]
pub struct SpokeSignals {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SpokeSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpokeSignals").finish_non_exhaustive()
    }
}

impl SpokeSignals {
    pub fn new(
        hub: kube::Client,
        spokes: Store<SpokeCluster>,
        trigger: mpsc::UnboundedSender<GiRef>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                hub,
                spokes,
                trigger,
                watches: Mutex::new(HashMap::new()),
                registrations: Mutex::new(HashMap::new()),
                tasks: Mutex::new(HashMap::new()),
                caches: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The backends `gi` uses now; watches new ones and stops those nobody uses.
    pub fn register(&self, gi: GiRef, backends: Vec<Backend>) {
        let old = lock(&self.inner.registrations)
            .insert(gi.clone(), backends.clone())
            .unwrap_or_default();
        let mut added = Vec::new();
        {
            let mut watches = lock(&self.inner.watches);
            for b in old.iter().filter(|b| !backends.contains(b)) {
                release(&self.inner, &mut watches, b, &gi);
            }
            for b in backends {
                match watches.get_mut(&b) {
                    Some(w) => {
                        w.users.insert(gi.clone());
                    }
                    None => {
                        watches.insert(
                            b.clone(),
                            Watch {
                                state: BackendState {
                                    signal: Signal::None,
                                    service: None,
                                    slices: Vec::new(),
                                },
                                users: HashSet::from([gi.clone()]),
                                ready_since: None,
                            },
                        );
                        added.push(b);
                    }
                }
            }
        }
        for b in added {
            let mut tasks = lock(&self.inner.tasks);
            if !tasks.contains_key(&b.spoke) {
                let task = tokio::spawn(watch_spoke(Arc::downgrade(&self.inner), b.spoke.clone()))
                    .abort_handle();
                tasks.insert(b.spoke.clone(), task);
            }
            drop(tasks);
            // A spoke already listed judges a new backend at once.
            let judged = lock(&self.inner.caches)
                .get(&b.spoke)
                .and_then(|c| c.judge(&b));
            if let Some((signal, service, slices)) = judged {
                publish(&Arc::downgrade(&self.inner), &b, signal, service, slices);
            }
        }
    }

    pub fn unregister(&self, gi: &GiRef) {
        let old = lock(&self.inner.registrations)
            .remove(gi)
            .unwrap_or_default();
        let mut watches = lock(&self.inner.watches);
        for b in &old {
            release(&self.inner, &mut watches, b, gi);
        }
    }

    /// Forgets every GlobalIngress not in `live` (see [`crate::health::Health::retain`]).
    pub fn retain(&self, live: &HashSet<GiRef>) {
        let gone: Vec<GiRef> = lock(&self.inner.registrations)
            .keys()
            .filter(|gi| !live.contains(gi))
            .cloned()
            .collect();
        for gi in gone {
            self.unregister(&gi);
        }
    }

    /// What is known about `backend` (nothing until its watches have listed once).
    pub fn state(&self, backend: &Backend) -> Option<BackendState> {
        lock(&self.inner.watches)
            .get(backend)
            .map(|w| w.state.clone())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn release(inner: &Inner, watches: &mut HashMap<Backend, Watch>, b: &Backend, gi: &GiRef) {
    if let Some(w) = watches.get_mut(b) {
        w.users.remove(gi);
        if w.users.is_empty() {
            watches.remove(b);
            // The spoke's watches stop with its last backend.
            if !watches.keys().any(|other| other.spoke == b.spoke) {
                if let Some(task) = lock(&inner.tasks).remove(&b.spoke) {
                    task.abort();
                }
                lock(&inner.caches).remove(&b.spoke);
            }
        }
    }
}

/// Ready endpoints across slices (an endpoint whose `ready` is unset counts as ready, as the
/// EndpointSlice API defines).
pub fn ready_endpoints<'a>(slices: impl IntoIterator<Item = &'a EndpointSlice>) -> usize {
    slices
        .into_iter()
        .flat_map(|s| s.endpoints.iter().flatten())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .count()
}

/// The addresses a target group would register: ready, not terminating (a terminating
/// endpoint is deregistered before it goes), with the slice's port of that name.
pub fn serving_endpoints(slices: &[EndpointSlice], port_name: Option<&str>) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for slice in slices.iter().filter(|s| s.address_type == "IPv4") {
        let port = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().filter(|n| !n.is_empty()) == port_name.filter(|n| !n.is_empty())
        });
        let Some(port) = port
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for e in slice.endpoints.iter().flatten() {
            let conditions = e.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            if ready && !terminating {
                out.extend(e.addresses.iter().map(|a| (a.clone(), port)));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The part of a state whose change concerns the GlobalIngresses using it.
fn essence(state: &BackendState) -> (u8, Option<String>, Vec<(String, u16)>) {
    let kind = match &state.signal {
        Signal::None => 0,
        Signal::Endpoints { ready: 0, .. } => 1,
        Signal::Endpoints { .. } => 2,
        Signal::ServiceMissing { .. } => 3,
        Signal::Unreachable => 4,
    };
    let lb = state
        .service
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.load_balancer.as_ref())
        .map(|lb| format!("{:?}", lb.ingress));
    // Every port's endpoints: a provisioned target group follows them.
    let mut endpoints = Vec::new();
    for slice in &state.slices {
        for port in slice.ports.iter().flatten() {
            endpoints.extend(serving_endpoints(
                std::slice::from_ref(slice),
                port.name.as_deref(),
            ));
        }
    }
    endpoints.sort();
    (kind, lb, endpoints)
}

enum Update {
    Service(Box<watcher::Event<Service>>),
    Slices(Box<watcher::Event<EndpointSlice>>),
    Failed(String),
}

/// The backends of `spoke` now registered.
fn backends_of(inner: &Inner, spoke: &str) -> Vec<Backend> {
    lock(&inner.watches)
        .keys()
        .filter(|b| b.spoke == spoke)
        .cloned()
        .collect()
}

async fn watch_spoke(inner: std::sync::Weak<Inner>, spoke: String) {
    let mut attempt = 0u32;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let object = strong.spokes.get(&ObjectRef::new(&spoke));
        let client = match object {
            Some(object) => super::client::connect(&object, &strong.hub)
                .await
                .map(|(c, _)| c)
                .map_err(|(reason, message)| format!("{reason}: {message}")),
            None => Err(format!("SpokeCluster {spoke} not found")),
        };
        let client = match client {
            Ok(c) => c,
            Err(message) => {
                debug!(%spoke, %message, "spoke not readable");
                for b in backends_of(&strong, &spoke) {
                    publish(&inner, &b, Signal::Unreachable, None, Vec::new());
                }
                drop(strong);
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
        };
        drop(strong);
        attempt = 0;
        run_watches(&inner, &spoke, client).await;
        tokio::time::sleep(backoff(1)).await;
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((500u64 << attempt.min(5)).min(15_000))
}

fn key_of(meta: &kube::api::ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Follows every Service and EndpointSlice of the spoke until a watch fails for longer than a
/// moment, judging each registered backend its events concern.
async fn run_watches(inner: &std::sync::Weak<Inner>, spoke: &str, client: kube::Client) {
    let services: Api<Service> = Api::all(client.clone());
    let slices: Api<EndpointSlice> = Api::all(client);
    let service_events =
        watcher(services, watcher::Config::default()).map_ok(|e| Update::Service(Box::new(e)));
    let slice_events =
        watcher(slices, watcher::Config::default()).map_ok(|e| Update::Slices(Box::new(e)));
    let mut events = futures::stream::select(service_events, slice_events)
        .map(|r| r.unwrap_or_else(|e| Update::Failed(e.to_string())))
        .boxed();
    let mut pending_services: HashMap<(String, String), Service> = HashMap::new();
    let mut pending_slices: HashMap<(String, String), EndpointSlice> = HashMap::new();
    let mut failures = 0u32;
    while let Some(update) = events.next().await {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        // Which backends (namespace, service name) this event concerns; `None`: all of them.
        let mut concerns: Option<Vec<(String, String)>> = Some(Vec::new());
        match update {
            Update::Failed(message) => {
                failures += 1;
                debug!(%spoke, %message, "spoke watch failed");
                // The watcher retries by itself; after a few failures in a row the spoke is
                // unreachable until a list succeeds again.
                if failures >= 2 {
                    for b in backends_of(&strong, spoke) {
                        publish(inner, &b, Signal::Unreachable, None, Vec::new());
                    }
                }
                if failures >= 3 {
                    lock(&strong.caches).remove(spoke);
                    return;
                }
                drop(strong);
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
            Update::Service(event) => {
                let mut caches = lock(&strong.caches);
                let cache = caches.entry(spoke.to_owned()).or_default();
                match *event {
                    watcher::Event::Init => pending_services.clear(),
                    watcher::Event::InitApply(s) => {
                        pending_services.insert(key_of(&s.metadata), s);
                    }
                    watcher::Event::InitDone => {
                        cache.services = Some(std::mem::take(&mut pending_services));
                        concerns = None;
                    }
                    watcher::Event::Apply(s) => {
                        let key = key_of(&s.metadata);
                        if let Some(all) = cache.services.as_mut() {
                            all.insert(key.clone(), s);
                        }
                        concerns = Some(vec![key]);
                    }
                    watcher::Event::Delete(s) => {
                        let key = key_of(&s.metadata);
                        if let Some(all) = cache.services.as_mut() {
                            all.remove(&key);
                        }
                        concerns = Some(vec![key]);
                    }
                }
            }
            Update::Slices(event) => {
                let mut caches = lock(&strong.caches);
                let cache = caches.entry(spoke.to_owned()).or_default();
                let owner = |s: &EndpointSlice| {
                    (
                        s.metadata.namespace.clone().unwrap_or_default(),
                        service_of(s).unwrap_or_default().to_owned(),
                    )
                };
                match *event {
                    watcher::Event::Init => pending_slices.clear(),
                    watcher::Event::InitApply(s) => {
                        pending_slices.insert(key_of(&s.metadata), s);
                    }
                    watcher::Event::InitDone => {
                        cache.slices = Some(std::mem::take(&mut pending_slices));
                        concerns = None;
                    }
                    watcher::Event::Apply(s) => {
                        let key = key_of(&s.metadata);
                        let mut touched = vec![owner(&s)];
                        if let Some(all) = cache.slices.as_mut() {
                            // A slice that changed Services concerns the old one too.
                            if let Some(old) = all.insert(key, s) {
                                touched.push(owner(&old));
                            }
                        }
                        concerns = Some(touched);
                    }
                    watcher::Event::Delete(s) => {
                        let key = key_of(&s.metadata);
                        if let Some(all) = cache.slices.as_mut() {
                            all.remove(&key);
                        }
                        concerns = Some(vec![owner(&s)]);
                    }
                }
            }
        }
        failures = 0;
        let backends: Vec<Backend> = backends_of(&strong, spoke)
            .into_iter()
            .filter(|b| {
                concerns.as_ref().is_none_or(|c| {
                    c.iter()
                        .any(|(ns, name)| *ns == b.namespace && *name == b.name)
                })
            })
            .collect();
        let judged: Vec<(Backend, Judged)> = {
            let caches = lock(&strong.caches);
            let Some(cache) = caches.get(spoke) else {
                continue;
            };
            backends
                .into_iter()
                .filter_map(|b| cache.judge(&b).map(|j| (b, j)))
                .collect()
        };
        drop(strong);
        for (b, (signal, service, slices)) in judged {
            publish(inner, &b, signal, service, slices);
        }
    }
}

/// Stores a new state; when it differs in what matters, keeps the old `since` otherwise, and tells
/// the users.
fn publish(
    inner: &std::sync::Weak<Inner>,
    backend: &Backend,
    signal: Signal,
    service: Option<Service>,
    slices: Vec<EndpointSlice>,
) {
    let Some(inner) = inner.upgrade() else { return };
    let mut watches = lock(&inner.watches);
    let Some(watch) = watches.get_mut(backend) else {
        return;
    };
    let mut signal = signal;
    match &mut signal {
        Signal::Endpoints { ready, since } if *ready > 0 => {
            *since = *watch.ready_since.get_or_insert(*since);
        }
        Signal::Endpoints { .. } | Signal::ServiceMissing { .. } => watch.ready_since = None,
        Signal::Unreachable | Signal::None => {}
    }
    let new = BackendState {
        signal,
        service,
        slices,
    };
    // Unreachable again is no change (the kept Service and slices are not compared with the
    // empty ones an unreachable spoke reports).
    let changed = match (&new.signal, &watch.state.signal) {
        (Signal::Unreachable, Signal::Unreachable) => false,
        _ => essence(&new) != essence(&watch.state),
    };
    if !changed {
        // Same verdict: keep the time it began; take the newer count and Service.
        if let (Signal::Endpoints { ready, .. }, Signal::Endpoints { ready: old, .. }) =
            (&new.signal, &mut watch.state.signal)
        {
            *old = *ready;
        }
        if new.service.is_some() {
            watch.state.service = new.service;
            watch.state.slices = new.slices;
        }
        return;
    }
    info!(
        spoke = %backend.spoke,
        service = %format!("{}/{}", backend.namespace, backend.name),
        signal = ?new.signal,
        "spoke signal changed"
    );
    let keep_service = new.signal == Signal::Unreachable;
    let (service, slices) = if keep_service {
        (
            watch.state.service.take(),
            std::mem::take(&mut watch.state.slices),
        )
    } else {
        (new.service, new.slices)
    };
    watch.state = BackendState {
        signal: new.signal,
        service,
        slices,
    };
    for gi in &watch.users {
        let _ = inner.trigger.unbounded_send(gi.clone());
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};

    use super::*;

    fn slice(ready: &[Option<bool>]) -> EndpointSlice {
        EndpointSlice {
            address_type: "IPv4".into(),
            endpoints: Some(
                ready
                    .iter()
                    .map(|r| Endpoint {
                        addresses: vec!["10.0.0.1".into()],
                        conditions: Some(EndpointConditions {
                            ready: *r,
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn unset_ready_counts_as_ready_and_false_does_not() {
        let a = slice(&[Some(true), None, Some(false)]);
        let b = slice(&[Some(false)]);
        assert_eq!(ready_endpoints([&a, &b]), 2);
        assert_eq!(ready_endpoints([&b]), 0);
    }
}
