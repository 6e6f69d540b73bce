//! The controllers: GlobalIngress (the reconcile pipeline of [`crate::reconcile`]), SpokeCluster
//! (is the spoke reachable) and DNSZone (does the zone exist at its provider) — and their wiring:
//! watches, the finalizer, leadership, Events, garbage collection.
//!
//! Every replica runs all three and computes everything; only the Lease holder writes (status,
//! finalizers, Events, DNS, AWS). Writes go through [`crate::reconcile::Gate::may_write`], which
//! counts what a follower skipped; every call to the hub runs under a timeout.

mod backoff;
pub mod dns_zone;
pub mod events;
pub mod global_ingress;
pub mod health_checks;
pub mod spoke_cluster;
mod watches;
mod waves;
mod zone_vpcs;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt as _, reflector, watcher};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::admin::Readiness;
use crate::api::{DNSZone, GlobalIngress, SpokeCluster};
use crate::kube_client::CALL_TIMEOUT;
use crate::leader::Leadership;
use crate::reconcile::{Deps, Gate};
use crate::telemetry::Metrics;
pub use crate::telemetry::error_chain;
pub use backoff::{Backoff, ZoneChecks};
use watches::{gated_stream, reopened_on, watch_task};

/// Field manager of status patches (server-side apply).
pub const STATUS_MANAGER: &str = "globalingress/status";

/// Settings of the controllers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Requeue of every GlobalIngress even without watch events (external state — DNS, AWS,
    /// spokes — changes without them).
    pub resync: Duration,
    /// How often each spoke's API server is checked.
    pub spoke_check_interval: Duration,
    /// How often a DNSZone found at its provider is checked again (errors: sooner).
    pub zone_check_interval: Duration,
    /// Restrict GlobalIngresses to one namespace (all when `None`).
    pub watch_namespace: Option<String>,
    /// Manage only the GlobalIngresses, DNSZones and SpokeClusters with these labels.
    pub selector: Option<String>,
    /// Name of this replica, in Events.
    pub identity: String,
    /// Reconciles running at once, per controller.
    pub concurrency: u16,
    /// Writes to the hub in flight at once (`--hub-write-concurrency`).
    pub hub_write_concurrency: usize,
    /// Backend NetworkPolicies for GlobalIngresses that do not say.
    pub backend_network_policies: bool,
    /// The zone writers' settings (metrics, relist interval); the fence and the in-sync
    /// notification are added here.
    pub zone_writer: crate::dns::zone_writer::Config,
    /// Local address of connections to RFC 2136 servers.
    pub dns_bind_address: Option<std::net::IpAddr>,
    /// The prober's resolver, concurrency and guard window.
    pub probe_resolver: crate::health::probe::Resolver,
    pub probe: crate::health::manager::Settings,
    /// Where the prober reports probes, verdicts and failovers.
    pub health_metrics: crate::health::manager::HealthMetrics,
    /// Route 53 health checks: the account's quota and the orphan collection interval.
    pub health_checks: crate::aws::route53_health::Config,
    pub health_check_gc_interval: Duration,
    /// How long an ELBv2 listing is trusted.
    pub elb_resync: Duration,
    /// How long a replaced load balancer stays after the records left it.
    pub replaced_load_balancer_grace: Duration,
    pub elb_metrics: crate::aws::elb::ElbMetrics,
}

/// What every reconcile gets.
pub struct Context {
    /// What the reconcile pipeline reads and writes through.
    pub deps: Deps,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub settings: Settings,
    /// Which watches have listed everything once.
    pub readiness: Readiness,
    /// The last failover each GlobalIngress recorded (`namespace/name`), until the watch cache
    /// shows it: a reconcile reading an older status must not drop it.
    pub last_failovers: Mutex<HashMap<String, crate::api::global_ingress::FailoverRecord>>,
    /// Failed publishes in a row per GlobalIngress (and failed checks per DNSZone), for the
    /// retry backoff.
    pub publish_backoff: Backoff,
    /// DNSZones recently found at their provider.
    pub zone_checks: ZoneChecks,
    /// The last AWS access check of each SpokeCluster.
    pub aws_access: crate::spoke::aws::AccessChecks,
    /// Spokes whose grant was found complete (see [`crate::permissions::SpokeChecks`]).
    pub spoke_permissions: crate::permissions::SpokeChecks,
    /// For the DNSZone checks (GetHostedZone).
    pub aws: crate::aws::Aws,
    /// Permits for writes to the hub (`--hub-write-concurrency`).
    pub hub_writes: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Whether this replica may make a write of this kind now; counts the write either way.
    pub fn may_write(&self, controller: &'static str, write: &'static str) -> bool {
        self.deps.gate.may_write(controller, write)
    }

    /// Publishes an Event about `reference` (leader only). Failures are logged, never fatal.
    pub async fn event(
        &self,
        controller: &'static str,
        reference: &ObjectReference,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        if !self.may_write(controller, "event") {
            return;
        }
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        let _permit = self.hub_writes.acquire().await;
        match tokio::time::timeout(CALL_TIMEOUT, self.recorder.publish(&event, reference)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => warn!(%error, reason, "could not publish event"),
            Err(_) => warn!(reason, "could not publish event: the hub did not answer"),
        }
    }
}

/// Why a call to the hub failed.
#[derive(Debug, thiserror::Error)]
pub enum HubCallError {
    #[error(transparent)]
    Api(kube::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Applies `status` to the status subresource with server-side apply, under [`CALL_TIMEOUT`].
pub async fn apply_status<K>(
    ctx: &Context,
    api: &Api<K>,
    name: &str,
    status: &impl Serialize,
) -> Result<(), HubCallError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    // Waiting for a permit is not the hub's time: the timeout starts with the call.
    let _permit = ctx.hub_writes.acquire().await;
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(STATUS_MANAGER).force();
    let body = Patch::Apply(&body);
    let patch = api.patch_status(name, &params, &body);
    match tokio::time::timeout(CALL_TIMEOUT, patch).await {
        Ok(result) => result.map(|_| ()).map_err(HubCallError::Api),
        Err(_) => Err(HubCallError::Timeout(CALL_TIMEOUT)),
    }
}

/// The current time as RFC 3339, for condition transition times and `lastSeen`.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string())
}

/// Starts the three controllers; each opens its readiness gate once its watch has listed
/// everything. Returns when `stop` turns true and every controller has drained.
pub async fn run(
    client: kube::Client,
    metrics: Metrics,
    leadership: Leadership,
    aws: crate::aws::Aws,
    settings: Settings,
    readiness: Readiness,
    stop: watch::Receiver<bool>,
) {
    let shutdown = move || {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    // Lists at the most recent version. (A streaming list — the initial state as watch events —
    // fed 1,000 objects to the controller a third slower on a cold start; after a hub restart
    // the watches start afresh anyway, see `reopened_on`.)
    let mut wc = watcher::Config::default();
    if let Some(selector) = &settings.selector {
        wc = wc.labels(selector);
    }
    // Bounded parallel reconciles: 10,000 objects changing at once must not become 10,000
    // simultaneous requests to the API server.
    let controller_config =
        kube::runtime::controller::Config::default().concurrency(settings.concurrency);
    let (zone_reader, zone_writer) = reflector::store();
    let (spoke_reader, spoke_writer) = reflector::store();
    let (gi_reader, gi_writer) = reflector::store();

    let zones_api: Api<DNSZone> = Api::all(client.clone());
    let spokes_api: Api<SpokeCluster> = Api::all(client.clone());
    let gi_api: Api<GlobalIngress> = match &settings.watch_namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let zone_controller = Controller::for_stream(
        gated_stream(
            zones_api.clone(),
            wc.clone(),
            leadership.hub_returns(),
            &readiness,
            &metrics,
            "dnszones",
            zone_writer,
        ),
        zone_reader,
    )
    .with_config(controller_config.clone())
    .graceful_shutdown_on(shutdown());
    let spoke_controller = Controller::for_stream(
        gated_stream(
            spokes_api.clone(),
            wc.clone(),
            leadership.hub_returns(),
            &readiness,
            &metrics,
            "spokeclusters",
            spoke_writer,
        ),
        spoke_reader,
    )
    .with_config(controller_config.clone())
    .graceful_shutdown_on(shutdown());
    let gi_controller = Controller::for_stream(
        gated_stream(
            gi_api,
            wc.clone(),
            leadership.hub_returns(),
            &readiness,
            &metrics,
            "globalingresses",
            gi_writer,
        ),
        gi_reader,
    )
    .with_config(controller_config.clone())
    .graceful_shutdown_on(shutdown());

    let hub_returns = leadership.hub_returns();
    let gi_store = gi_controller.store();
    let zone_mapper_store = gi_store.clone();
    let spoke_mapper_store = gi_store.clone();
    // A change of leadership makes the new leader reconcile everything at once.
    let leader_gained = futures::stream::unfold(leadership.changes(), |mut rx| async move {
        loop {
            rx.changed().await.ok()?;
            if *rx.borrow_and_update() {
                return Some(((), rx));
            }
        }
    });

    // Verdict changes, spoke signals, the guard, health-check syncs and changes turning in
    // sync send the GlobalIngresses concerned here.
    let (trigger, triggered) = futures::channel::mpsc::unbounded();
    let (wave_sender, waves) = futures::channel::mpsc::unbounded();
    let health = crate::health::Health::new(
        crate::health::probe::Prober::new(settings.probe_resolver),
        settings.probe.clone(),
        settings.health_metrics.clone(),
        wave_sender.clone(),
    );
    let spokes_store = spoke_controller.store();
    let signals = crate::spoke::signals::SpokeSignals::new(
        client.clone(),
        spokes_store.clone(),
        trigger.clone(),
    );
    let in_sync = {
        let trigger = trigger.clone();
        crate::dns::zone_writer::Notify(Arc::new(move |owner: &str| {
            if let Some((namespace, name)) = owner.split_once('/') {
                let _ = trigger.unbounded_send(ObjectRef::new(name).within(namespace));
            }
        }))
    };
    let gate = Gate::new(leadership.clone(), metrics.clone());
    let nodes =
        crate::spoke::nodes::SpokeNodes::new(client.clone(), spokes_store.clone(), trigger.clone());
    let ctx = Arc::new(Context {
        deps: Deps {
            load_balancers: crate::aws::elb::LoadBalancers::new(
                settings.elb_resync,
                settings.replaced_load_balancer_grace,
                settings.elb_metrics.clone(),
            ),
            nodes,
            health_checks: crate::reconcile::apply::health_checks::CheckJobs::new(
                crate::aws::route53_health::HealthChecks::route53(
                    &aws,
                    settings.health_checks.clone(),
                ),
                trigger.clone(),
            ),
            health,
            signals,
            index: crate::reconcile::index::IngressIndex::new(Duration::from_millis(500)),
            writers: crate::dns::writers::ZoneWriters::new(
                client.clone(),
                aws.clone(),
                crate::dns::zone_writer::Config {
                    fence: leadership,
                    notify: Some(in_sync),
                    ..settings.zone_writer.clone()
                },
                settings.dns_bind_address,
            ),
            accounts: aws.accounts(&settings.identity),
            client: client.clone(),
            zones: zone_controller.store(),
            spokes: spokes_store,
            ingresses: gi_store.clone(),
            gate,
            backend_network_policies: settings.backend_network_policies,
            subnet_cidrs: crate::reconcile::apply::backend_policies::SubnetCidrs::default(),
            waves: crate::reconcile::wave::Memory::default(),
        },
        last_failovers: Mutex::default(),
        publish_backoff: Backoff::default(),
        zone_checks: ZoneChecks::default(),
        aws_access: crate::spoke::aws::AccessChecks::default(),
        spoke_permissions: crate::permissions::SpokeChecks::default(),
        aws,
        hub_writes: tokio::sync::Semaphore::new(settings.hub_write_concurrency.max(1)),
        readiness: readiness.clone(),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: "globalingress".into(),
                instance: Some(settings.identity.clone()),
            },
        ),
        metrics,
        settings,
    });

    let (zone_wave, spoke_wave) = (wave_sender.clone(), wave_sender.clone());
    let gi_controller = gi_controller
        .watches_stream(
            watch_task(
                "dnszones",
                reopened_on(zones_api, wc.clone(), hub_returns.clone())
                    .applied_objects()
                    .predicate_filter(watches::changed_by_users, PredicateConfig::default()),
            ),
            // A DNSZone or SpokeCluster change concerns every GlobalIngress naming it: they go as
            // one wave (their records published together, then each reconciled), not as that
            // many reconciles racing the zone writer's batching window.
            move |zone: DNSZone| {
                let name = zone.metadata.name.unwrap_or_default();
                let refs: Vec<_> = zone_mapper_store
                    .state()
                    .into_iter()
                    .filter(|gi| gi.spec.dns_zone_ref == name)
                    .map(|gi| ObjectRef::from_obj(&*gi))
                    .collect();
                let _ = zone_wave.unbounded_send(refs);
                Vec::new()
            },
        )
        .watches_stream(
            watch_task(
                "spokeclusters",
                reopened_on(spokes_api, wc, hub_returns)
                    .applied_objects()
                    .predicate_filter(watches::changed_by_users, PredicateConfig::default()),
            ),
            move |spoke: SpokeCluster| {
                let name = spoke.metadata.name.unwrap_or_default();
                let refs: Vec<_> = spoke_mapper_store
                    .state()
                    .into_iter()
                    .filter(|gi| {
                        gi.spec
                            .targets
                            .iter()
                            .any(|t| t.cluster_ref.as_deref() == Some(name.as_str()))
                    })
                    .map(|gi| ObjectRef::from_obj(&*gi))
                    .collect();
                let _ = spoke_wave.unbounded_send(refs);
                Vec::<ObjectRef<GlobalIngress>>::new()
            },
        )
        .reconcile_all_on(leader_gained)
        .reconcile_on(triggered);

    tokio::spawn(waves::run(
        Arc::downgrade(&ctx),
        (wave_sender, waves),
        trigger.clone(),
    ));
    tokio::spawn(health_checks::collect_garbage(
        Arc::downgrade(&ctx),
        ctx.settings.health_check_gc_interval,
    ));
    // Probes and spoke watches of GlobalIngresses this replica never cleaned up (a follower, a
    // finalizer removed by hand) stop within a minute.
    {
        let ctx = Arc::downgrade(&ctx);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let Some(ctx) = ctx.upgrade() else { return };
                let live: std::collections::HashSet<_> = ctx
                    .deps
                    .ingresses
                    .state()
                    .iter()
                    .map(|gi| ObjectRef::from_obj(&**gi))
                    .collect();
                ctx.deps.health.retain(&live);
                ctx.deps.signals.retain(&live);
                ctx.deps.nodes.retain(&live);
            }
        });
    }
    let gi = gi_controller
        .run(
            global_ingress::reconcile,
            global_ingress::error_policy,
            ctx.clone(),
        )
        .for_each(|r| async move { log_result("GlobalIngress", r) });
    let zones = zone_controller
        .run(dns_zone::reconcile, dns_zone::error_policy, ctx.clone())
        .for_each(|r| async move { log_result("DNSZone", r) });
    let spokes = spoke_controller
        .run(spoke_cluster::reconcile, spoke_cluster::error_policy, ctx)
        .for_each(|r| async move { log_result("SpokeCluster", r) });
    futures::join!(gi, zones, spokes);
}

fn log_result<T: std::fmt::Debug, E: std::error::Error>(kind: &str, result: Result<T, E>) {
    match result {
        Ok(done) => debug!(kind, ?done, "reconciled"),
        Err(error) => {
            // The whole chain: the top message alone ("failed to add the finalizer") hides why.
            warn!(kind, error = %error_chain(&error), "reconcile failed");
        }
    }
}

/// The error of the zone and spoke reconcilers, whose only write is their status.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("failed to patch the status")]
    PatchStatus {
        #[source]
        source: HubCallError,
    },
}

impl Category for StatusError {
    const ALL: &'static [&'static str] = &["PatchStatus"];

    fn category(&self) -> &'static str {
        match self {
            Self::PatchStatus { .. } => "PatchStatus",
        }
    }
}

/// A reconcile error's bounded metric label: the name of the variant.
pub trait Category {
    /// Every value `category` can return: each counter exists from the first reconcile, at 0.
    const ALL: &'static [&'static str];

    fn category(&self) -> &'static str;
}

/// Runs one reconcile, counting it, timing it and counting its error by category.
pub async fn instrumented<E: Category>(
    metrics: &Metrics,
    controller: &'static str,
    reconcile: impl std::future::Future<Output = Result<Action, E>>,
) -> Result<Action, E> {
    let started = std::time::Instant::now();
    let labels = crate::telemetry::ReconcileLabels { controller };
    metrics.reconciles.get_or_create(&labels).inc();
    for category in E::ALL {
        metrics
            .reconcile_errors
            .get_or_create(&crate::telemetry::ErrorLabels {
                controller,
                category,
            })
            .inc_by(0);
    }
    let result = reconcile.await;
    metrics
        .reconcile_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    if let Err(error) = &result {
        metrics
            .reconcile_errors
            .get_or_create(&crate::telemetry::ErrorLabels {
                controller,
                category: error.category(),
            })
            .inc();
    }
    result
}

/// The requeue after an error: soon, but not in a hot loop.
pub fn requeue_after_error() -> Action {
    Action::requeue(Duration::from_secs(5))
}
