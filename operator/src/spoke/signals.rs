//! Spoke signals: what each spoke's API server says about a target's backend — does the Service
//! exist, and how many ready endpoints do its EndpointSlices list.
//!
//! One task per backend `(spoke, namespace, service)`, shared like the probes, holding two watches
//! on the spoke (the Service by name, the EndpointSlices by the `kubernetes.io/service-name`
//! label). A change that matters (Service appears or goes, ready endpoints reach or leave zero,
//! the load balancer's address changes) sends the GlobalIngresses using the backend to the
//! controller at once. A spoke that cannot be reached reports [`Signal::Unreachable`]: the probe
//! through the data path decides alone then.

use std::collections::{BTreeMap, HashMap, HashSet};
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
    task: tokio::task::AbortHandle,
}

struct Inner {
    hub: kube::Client,
    spokes: Store<SpokeCluster>,
    trigger: mpsc::UnboundedSender<GiRef>,
    watches: Mutex<HashMap<Backend, Watch>>,
    registrations: Mutex<HashMap<GiRef, Vec<Backend>>>,
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
            }),
        }
    }

    /// The backends `gi` uses now; watches new ones and stops those nobody uses.
    pub fn register(&self, gi: GiRef, backends: Vec<Backend>) {
        let old = lock(&self.inner.registrations)
            .insert(gi.clone(), backends.clone())
            .unwrap_or_default();
        let mut watches = lock(&self.inner.watches);
        for b in old.iter().filter(|b| !backends.contains(b)) {
            release(&mut watches, b, &gi);
        }
        for b in backends {
            match watches.get_mut(&b) {
                Some(w) => {
                    w.users.insert(gi.clone());
                }
                None => {
                    let task = tokio::spawn(watch_backend(Arc::downgrade(&self.inner), b.clone()))
                        .abort_handle();
                    watches.insert(
                        b,
                        Watch {
                            state: BackendState {
                                signal: Signal::None,
                                service: None,
                                slices: Vec::new(),
                            },
                            users: HashSet::from([gi.clone()]),
                            ready_since: None,
                            task,
                        },
                    );
                }
            }
        }
    }

    pub fn unregister(&self, gi: &GiRef) {
        let old = lock(&self.inner.registrations)
            .remove(gi)
            .unwrap_or_default();
        let mut watches = lock(&self.inner.watches);
        for b in &old {
            release(&mut watches, b, gi);
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

fn release(watches: &mut HashMap<Backend, Watch>, b: &Backend, gi: &GiRef) {
    if let Some(w) = watches.get_mut(b) {
        w.users.remove(gi);
        if w.users.is_empty() {
            w.task.abort();
            watches.remove(b);
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

async fn watch_backend(inner: std::sync::Weak<Inner>, backend: Backend) {
    let mut attempt = 0u32;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let spoke = strong.spokes.get(&ObjectRef::new(&backend.spoke));
        let client = match spoke {
            Some(spoke) => super::client::connect_for_watches(&spoke, &strong.hub)
                .await
                .map(|(c, _)| c)
                .map_err(|(reason, message)| format!("{reason}: {message}")),
            None => Err(format!("SpokeCluster {} not found", backend.spoke)),
        };
        drop(strong);
        let client = match client {
            Ok(c) => c,
            Err(message) => {
                debug!(spoke = %backend.spoke, %message, "spoke not readable");
                publish(&inner, &backend, Signal::Unreachable, None, Vec::new());
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
        };
        attempt = 0;
        run_watches(&inner, &backend, client).await;
        tokio::time::sleep(backoff(1)).await;
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((500u64 << attempt.min(5)).min(15_000))
}

/// Follows the Service and its EndpointSlices until a watch fails for longer than a moment.
async fn run_watches(inner: &std::sync::Weak<Inner>, backend: &Backend, client: kube::Client) {
    let services: Api<Service> = Api::namespaced(client.clone(), &backend.namespace);
    let slices: Api<EndpointSlice> = Api::namespaced(client, &backend.namespace);
    let config = watcher::Config::default().timeout(super::client::WATCH_SECONDS);
    let service_events = watcher(
        services,
        config
            .clone()
            .fields(&format!("metadata.name={}", backend.name)),
    )
    .map_ok(|e| Update::Service(Box::new(e)));
    let slice_events = watcher(
        slices,
        config.labels(&format!("kubernetes.io/service-name={}", backend.name)),
    )
    .map_ok(|e| Update::Slices(Box::new(e)));
    let mut events = futures::stream::select(service_events, slice_events)
        .map(|r| r.unwrap_or_else(|e| Update::Failed(e.to_string())))
        .boxed();
    let mut service: Option<Option<Service>> = None;
    let mut pending_service: Option<Service> = None;
    let mut slices_now: Option<BTreeMap<String, EndpointSlice>> = None;
    let mut pending_slices: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut failures = 0u32;
    while let Some(update) = events.next().await {
        match update {
            Update::Failed(message) => {
                failures += 1;
                debug!(spoke = %backend.spoke, %message, "spoke watch failed");
                // The watcher retries by itself; after a few failures in a row the spoke is
                // unreachable until a list succeeds again.
                if failures >= 2 {
                    publish(inner, backend, Signal::Unreachable, None, Vec::new());
                }
                if failures >= 3 {
                    return;
                }
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
            Update::Service(event) => match *event {
                watcher::Event::Init => pending_service = None,
                watcher::Event::InitApply(s) => pending_service = Some(s),
                watcher::Event::InitDone => service = Some(pending_service.take()),
                watcher::Event::Apply(s) => service = Some(Some(s)),
                watcher::Event::Delete(_) => service = Some(None),
            },
            Update::Slices(event) => match *event {
                watcher::Event::Init => pending_slices.clear(),
                watcher::Event::InitApply(s) => {
                    pending_slices.insert(s.metadata.name.clone().unwrap_or_default(), s);
                }
                watcher::Event::InitDone => {
                    slices_now = Some(std::mem::take(&mut pending_slices));
                }
                watcher::Event::Apply(s) => {
                    slices_now
                        .get_or_insert_with(BTreeMap::new)
                        .insert(s.metadata.name.clone().unwrap_or_default(), s);
                }
                watcher::Event::Delete(s) => {
                    if let Some(all) = slices_now.as_mut() {
                        all.remove(&s.metadata.name.clone().unwrap_or_default());
                    }
                }
            },
        }
        failures = 0;
        let (Some(service), Some(slices)) = (&service, &slices_now) else {
            continue;
        };
        let signal = match service {
            None => Signal::ServiceMissing {
                since: Timestamp::now(),
            },
            Some(_) => Signal::Endpoints {
                ready: ready_endpoints(slices.values()),
                since: Timestamp::now(),
            },
        };
        publish(
            inner,
            backend,
            signal,
            service.clone(),
            slices.values().cloned().collect(),
        );
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
