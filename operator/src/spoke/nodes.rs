//! The Nodes of each spoke, for `targetType: Instance` target groups: one watch per spoke (not
//! per Service or GlobalIngress), started when the first GlobalIngress needs it and stopped
//! with the last. A change in the registrable nodes (EC2 instance id from `spec.providerID`,
//! Ready, not excluded from load balancers) sends the GlobalIngresses using the spoke to the
//! controller at once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt as _;
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tracing::debug;

use crate::api::{GlobalIngress, SpokeCluster};

type GiRef = ObjectRef<GlobalIngress>;

/// The label that keeps a node out of every load balancer (as the AWS Load Balancer
/// Controller and the cloud providers read it).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// The EC2 instance id in a node's `spec.providerID` (`aws:///eu-west-1a/i-0abc…`).
pub fn instance_id(provider_id: &str) -> Option<&str> {
    let id = provider_id.strip_prefix("aws://")?.rsplit('/').next()?;
    (id.starts_with("i-") && id.len() > 2).then_some(id)
}

/// The instance ids of the nodes a target group should register: Ready, not being deleted,
/// not labelled [`EXCLUDE_LABEL`].
pub fn registrable(nodes: &[Node]) -> BTreeSet<String> {
    nodes
        .iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter(|n| {
            !n.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(EXCLUDE_LABEL))
        })
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|n| instance_id(n.spec.as_ref()?.provider_id.as_deref()?).map(str::to_owned))
        .collect()
}

struct Watch {
    /// `None` until the watch has listed once.
    instances: Option<BTreeSet<String>>,
    users: HashSet<GiRef>,
    task: tokio::task::AbortHandle,
}

struct Inner {
    hub: kube::Client,
    spokes: Store<SpokeCluster>,
    trigger: mpsc::UnboundedSender<GiRef>,
    watches: Mutex<HashMap<String, Watch>>,
    registrations: Mutex<HashMap<GiRef, Vec<String>>>,
}

/// The node watches. Cheap to clone.
#[derive(Clone)]
pub struct SpokeNodes {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SpokeNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpokeNodes").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SpokeNodes {
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

    /// The spokes whose nodes `gi` uses now.
    pub fn register(&self, gi: GiRef, spokes: Vec<String>) {
        let old = lock(&self.inner.registrations)
            .insert(gi.clone(), spokes.clone())
            .unwrap_or_default();
        let mut watches = lock(&self.inner.watches);
        for s in old.iter().filter(|s| !spokes.contains(s)) {
            release(&mut watches, s, &gi);
        }
        for s in spokes {
            if let Some(w) = watches.get_mut(&s) {
                w.users.insert(gi.clone());
                continue;
            }
            let task =
                tokio::spawn(watch_spoke(Arc::downgrade(&self.inner), s.clone())).abort_handle();
            watches.insert(
                s,
                Watch {
                    instances: None,
                    users: HashSet::from([gi.clone()]),
                    task,
                },
            );
        }
    }

    pub fn unregister(&self, gi: &GiRef) {
        let old = lock(&self.inner.registrations)
            .remove(gi)
            .unwrap_or_default();
        let mut watches = lock(&self.inner.watches);
        for s in &old {
            release(&mut watches, s, gi);
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

    /// The registrable instance ids of `spoke` (`None` until its watch has listed).
    pub fn instances(&self, spoke: &str) -> Option<BTreeSet<String>> {
        lock(&self.inner.watches).get(spoke)?.instances.clone()
    }
}

fn release(watches: &mut HashMap<String, Watch>, spoke: &str, gi: &GiRef) {
    if let Some(w) = watches.get_mut(spoke) {
        w.users.remove(gi);
        if w.users.is_empty() {
            w.task.abort();
            watches.remove(spoke);
        }
    }
}

async fn watch_spoke(inner: std::sync::Weak<Inner>, spoke: String) {
    let mut attempt = 0u32;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let object = strong.spokes.get(&ObjectRef::new(&spoke));
        let client = match object {
            Some(object) => super::client::connect_for_watches(&object, &strong.hub)
                .await
                .map(|(c, _)| c)
                .map_err(|(reason, message)| format!("{reason}: {message}")),
            None => Err(format!("SpokeCluster {spoke} not found")),
        };
        drop(strong);
        match client {
            Ok(client) => {
                attempt = 0;
                follow(&inner, &spoke, Api::all(client)).await;
            }
            Err(message) => debug!(%spoke, %message, "spoke not readable for its nodes"),
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(
            (500u64 << attempt.min(5)).min(15_000),
        ))
        .await;
    }
}

/// Follows the spoke's Nodes until the watch fails three times in a row.
async fn follow(inner: &std::sync::Weak<Inner>, spoke: &str, api: Api<Node>) {
    let mut events = watcher(
        api,
        watcher::Config::default().timeout(super::client::WATCH_SECONDS),
    )
    .boxed();
    let mut nodes: Option<BTreeMap<String, Node>> = None;
    let mut pending = BTreeMap::new();
    let mut failures = 0u32;
    while let Some(event) = events.next().await {
        match event {
            Err(error) => {
                failures += 1;
                debug!(%spoke, %error, "spoke node watch failed");
                if failures >= 3 {
                    return;
                }
                continue;
            }
            Ok(watcher::Event::Init) => pending.clear(),
            Ok(watcher::Event::InitApply(n)) => {
                pending.insert(n.metadata.name.clone().unwrap_or_default(), n);
            }
            Ok(watcher::Event::InitDone) => nodes = Some(std::mem::take(&mut pending)),
            Ok(watcher::Event::Apply(n)) => {
                if let Some(all) = nodes.as_mut() {
                    all.insert(n.metadata.name.clone().unwrap_or_default(), n);
                }
            }
            Ok(watcher::Event::Delete(n)) => {
                if let Some(all) = nodes.as_mut() {
                    all.remove(&n.metadata.name.clone().unwrap_or_default());
                }
            }
        }
        failures = 0;
        let Some(all) = &nodes else { continue };
        let instances = registrable(&all.values().cloned().collect::<Vec<_>>());
        let Some(inner) = inner.upgrade() else { return };
        let mut watches = lock(&inner.watches);
        let Some(watch) = watches.get_mut(spoke) else {
            return;
        };
        if watch.instances.as_ref() != Some(&instances) {
            watch.instances = Some(instances);
            for gi in &watch.users {
                let _ = inner.trigger.unbounded_send(gi.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_come_from_aws_provider_ids_only() {
        assert_eq!(
            instance_id("aws:///eu-west-1a/i-0abc123"),
            Some("i-0abc123")
        );
        assert_eq!(instance_id("aws:///i-0abc"), Some("i-0abc"));
        assert_eq!(instance_id("gce://p/z/i-0abc"), None);
        assert_eq!(instance_id("aws:///eu-west-1a/"), None);
        assert_eq!(instance_id("aws:///eu-west-1a/fargate-ip-10"), None);
    }

    #[test]
    fn only_ready_nodes_not_excluded_nor_deleted_are_registrable() {
        let node = |name: &str, ready: &str, labels: &[(&str, &str)]| {
            serde_json::from_value::<Node>(serde_json::json!({
                "metadata": { "name": name, "labels": labels.iter().cloned().collect::<BTreeMap<_, _>>() },
                "spec": { "providerID": format!("aws:///eu-west-1a/i-{name}") },
                "status": { "conditions": [{ "type": "Ready", "status": ready }] }
            }))
            .unwrap_or_default()
        };
        let nodes = [
            node("a1", "True", &[]),
            node("b2", "False", &[]),
            node("c3", "True", &[(EXCLUDE_LABEL, "")]),
            node("d4", "Unknown", &[]),
        ];
        assert_eq!(registrable(&nodes), BTreeSet::from(["i-a1".to_owned()]));
    }
}
