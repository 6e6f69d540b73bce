//! The hub watches behind the controllers: reopened when the hub comes back, feeding the stores
//! and readiness gates, each in a task of its own, with watch errors kept away from the
//! controllers' trigger queues.

use futures::{StreamExt as _, TryStreamExt as _};
use kube::api::Api;
use kube::runtime::{WatchStreamExt as _, reflector, watcher};
use kube::{Resource, ResourceExt as _};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::{debug, warn};

use super::backoff::ReconnectBackoff;
use crate::admin::Readiness;
use crate::telemetry::{Metrics, WatchLabels, error_chain};

/// What the controllers watch: a kind of the hub with its plain dynamic type.
pub(super) trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// A watcher of `api` that starts afresh (a new list) each time `hub_returns` changes: after
/// an outage the old watch may sit on a request the restarted API server answers late, or
/// resume from a version it no longer has (410 after 410) — seconds before a change is seen.
pub(super) fn reopened_on<K>(
    api: Api<K>,
    wc: watcher::Config,
    hub_returns: watch::Receiver<u64>,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Watched,
{
    type Watch<K> = futures::stream::BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>;
    let open = move || -> Watch<K> {
        watcher(api.clone(), wc.clone())
            .backoff(ReconnectBackoff::new())
            .boxed()
    };
    futures::stream::unfold(
        (open(), hub_returns, open),
        |(mut current, mut returns, open)| async move {
            loop {
                tokio::select! {
                    item = current.next() => return item.map(|i| (i, (current, returns, open))),
                    changed = returns.changed() => {
                        if changed.is_ok() {
                            debug!("the hub is back: watching afresh");
                            current = open();
                        } else {
                            // No election any more (shutting down): keep the watch as it is.
                            let item = current.next().await;
                            return item.map(|i| (i, (current, returns, open)));
                        }
                    }
                }
            }
        },
    )
}

/// The watch stream of one kind, feeding its store and opening its readiness gate when the first
/// complete list has been applied.
/// What a change must touch to trigger a reconcile: the spec (the generation), labels,
/// annotations, or the deletion mark. Status patches — every one of them ours — do not: a write
/// of 10,000 statuses was 10,000 more reconciles, and a DNSZone's status (its records count)
/// reconciled every GlobalIngress in the zone again. The caches still see every change.
pub(super) fn changed_by_users<K: Resource>(obj: &K) -> Option<u64> {
    use std::hash::{Hash as _, Hasher as _};
    let meta = obj.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.labels.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

/// kubectl's copy of the object as last applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

pub(super) fn gated_stream<K>(
    api: Api<K>,
    wc: watcher::Config,
    hub_returns: watch::Receiver<u64>,
    readiness: &Readiness,
    metrics: &Metrics,
    gate: &'static str,
    writer: reflector::store::Writer<K>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Watched,
{
    readiness.register(gate);
    let readiness = readiness.clone();
    let events = metrics.watch_events.clone();
    let errors = metrics.watch_events.clone();
    let label = move |event| WatchLabels { kind: gate, event };
    let stream = reopened_on(api, wc, hub_returns)
        // Nothing reads them, and they are most of an object's size: managedFields holds an
        // entry per field per manager (status included), kubectl's last-applied annotation a
        // second copy of the spec. At 10,000 GlobalIngresses they were most of the cache.
        .modify(|obj| {
            obj.managed_fields_mut().clear();
            obj.annotations_mut().remove(LAST_APPLIED);
        })
        .reflect(writer)
        .inspect_ok(move |event| {
            let name = match event {
                watcher::Event::Apply(_) => "apply",
                watcher::Event::Delete(_) => "delete",
                watcher::Event::Init | watcher::Event::InitApply(_) => "list",
                watcher::Event::InitDone => {
                    readiness.open(gate);
                    "init_done"
                }
            };
            events.get_or_create(&label(name)).inc();
        })
        .inspect_err(move |_| {
            errors.get_or_create(&label("error")).inc();
        })
        .applied_objects()
        .predicate_filter(changed_by_users, kube::runtime::PredicateConfig::default());
    watch_task(gate, stream)
}

/// Runs the watch `stream` of `kind` in a task of its own and hands its objects over a channel:
/// a watch (and the store it feeds) keeps up however busy the controller consuming it is — when
/// it did not, a hub that came back was seen again only seconds later.
///
/// Watch errors stay here (logged; counted by `gated_stream`; the watcher reconnects with its own
/// backoff). Handed on, each would make the controller pause *all* its triggers with kube's
/// growing trigger backoff: after a 10 s hub outage the errors queued meanwhile held a change made
/// when the hub was back for 5-6 s.
pub(super) fn watch_task<K, S>(
    kind: &'static str,
    stream: S,
) -> futures::channel::mpsc::UnboundedReceiver<Result<K, watcher::Error>>
where
    S: futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    K: Send + 'static,
{
    let (tx, rx) = futures::channel::mpsc::unbounded();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(object) => {
                    if tx.unbounded_send(Ok(object)).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    warn!(kind, error = %error_chain(&error), "watch failed; reconnecting")
                }
            }
        }
    });
    rx
}
