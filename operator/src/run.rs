//! `globalingress run`: the long-running controller process.
//!
//! Today it connects to the hub, reports the API server's version, watches Namespaces (logging
//! what it sees and opening the readiness gate after the first full list), and serves the admin
//! endpoints until SIGTERM or SIGINT. The GlobalIngress controllers plug into the same skeleton.

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::admin::{self, Readiness};
use crate::cli::RunArgs;
use crate::kube_client;
use crate::telemetry::{KindLabels, Metrics, WatchLabels};

/// Errors that stop the controller process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to connect to the hub cluster")]
    ConnectHub {
        #[source]
        source: kube_client::Error,
    },
    #[error("failed to read the hub API server's version")]
    HubVersion {
        #[source]
        source: kube::Error,
    },
    #[error("failed to start the admin server on {address}")]
    AdminServer {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to install the signal handler")]
    Signals {
        #[source]
        source: std::io::Error,
    },
}

const NAMESPACES_GATE: &str = "namespaces";

/// Runs until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(args: RunArgs) -> Result<(), Error> {
    let client = kube_client::connect(args.kube.kubeconfig.as_deref())
        .await
        .map_err(|source| Error::ConnectHub { source })?;
    let version = client
        .apiserver_version()
        .await
        .map_err(|source| Error::HubVersion { source })?;
    info!(
        version = %version.git_version,
        platform = %version.platform,
        "connected to the hub API server"
    );

    let metrics = Metrics::new();
    let readiness = Readiness::default();
    readiness.register(NAMESPACES_GATE);

    let (stop_tx, stop_rx) = watch::channel(false);
    let shutdown = {
        let mut stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }
    };
    let router = admin::router(readiness.clone(), metrics.clone());
    let (bound, admin_task) = admin::serve(args.admin.admin_address, router, shutdown)
        .await
        .map_err(|source| Error::AdminServer {
            address: args.admin.admin_address,
            source,
        })?;
    info!(address = %bound, "admin server listening (/healthz, /readyz, /metrics)");

    let watch_task = tokio::spawn(watch_namespaces(
        Api::all(client),
        readiness,
        metrics,
        stop_rx,
    ));

    wait_for_signal().await?;
    info!("shutting down");
    let _ = stop_tx.send(true);
    if let Err(error) = watch_task.await {
        warn!(%error, "namespace watch ended abnormally");
    }
    match admin_task.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => warn!(%error, "admin server failed"),
        Err(error) => warn!(%error, "admin server task ended abnormally"),
    }
    info!("stopped");
    Ok(())
}

async fn watch_namespaces(
    api: Api<Namespace>,
    readiness: Readiness,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) {
    let label = |event| WatchLabels {
        kind: "Namespace",
        event,
    };
    let objects = metrics
        .watched_objects
        .get_or_create(&KindLabels { kind: "Namespace" })
        .clone();
    let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
    // Names seen, so the gauge stays right across re-lists and repeated applies.
    let mut known = std::collections::BTreeSet::new();
    let mut listing = std::collections::BTreeSet::new();
    loop {
        let next = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            next = stream.try_next() => next,
        };
        match next {
            Ok(Some(Event::Init)) => listing.clear(),
            Ok(Some(Event::InitApply(ns))) => {
                listing.insert(ns.metadata.name.unwrap_or_default());
            }
            Ok(Some(Event::InitDone)) => {
                metrics
                    .watch_events
                    .get_or_create(&label("init_done"))
                    .inc();
                known = std::mem::take(&mut listing);
                objects.set(known.len() as i64);
                readiness.open(NAMESPACES_GATE);
                info!(count = known.len(), "namespaces listed");
            }
            Ok(Some(Event::Apply(ns))) => {
                metrics.watch_events.get_or_create(&label("apply")).inc();
                known.insert(ns.metadata.name.clone().unwrap_or_default());
                objects.set(known.len() as i64);
                info!(
                    namespace = ns.metadata.name.as_deref().unwrap_or(""),
                    "namespace applied"
                );
            }
            Ok(Some(Event::Delete(ns))) => {
                metrics.watch_events.get_or_create(&label("delete")).inc();
                known.remove(ns.metadata.name.as_deref().unwrap_or_default());
                objects.set(known.len() as i64);
                info!(
                    namespace = ns.metadata.name.as_deref().unwrap_or(""),
                    "namespace deleted"
                );
            }
            Ok(None) => return,
            Err(error) => {
                // The watcher retries by itself on the next poll; back off so a dead API server
                // does not spin the loop.
                metrics.watch_events.get_or_create(&label("error")).inc();
                warn!(%error, "namespace watch failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

async fn wait_for_signal() -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|source| Error::Signals { source })?;
    let mut int = signal(SignalKind::interrupt()).map_err(|source| Error::Signals { source })?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
