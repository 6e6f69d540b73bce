//! `globalingress run`: the long-running controller process.
//!
//! Connects to the hub, starts leader election, the three controllers and the admin server, and
//! runs until SIGTERM or SIGINT; then stops the controllers, releases the Lease (so a follower
//! takes over at once) and stops the admin server.

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::admin::{self, Readiness};
use crate::aws::budget::{Budget, BudgetConfig, Rate};
use crate::aws::{Aws, SdkSettings};
use crate::cli::RunArgs;
use crate::controller::{self, Settings};
use crate::dns::zone_writer::WriterMetrics;
use crate::kube_client;
use crate::leader::{self, LeaseConfig};
use crate::telemetry::Metrics;

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

/// Runs until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(args: RunArgs) -> Result<(), Error> {
    let client = kube_client::connect(args.kube.kubeconfig.as_deref())
        .await
        .map_err(|source| Error::ConnectHub { source })?;
    let version = client
        .apiserver_version()
        .await
        .map_err(|source| Error::HubVersion { source })?;
    info!(version = %version.git_version, "connected to the hub API server");

    let identity = args
        .leader
        .identity
        .clone()
        .unwrap_or_else(default_identity);
    let readiness = Readiness::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    // Registered before the admin server serves: not ready until the permissions were checked.
    readiness.register(crate::permissions::GATE);
    let permissions = tokio::spawn(crate::permissions::watch(
        client.clone(),
        crate::permissions::required(
            args.controller.watch_namespace.as_deref(),
            &args.leader.lease_namespace,
        ),
        readiness.clone(),
    ));

    // Leadership first: the budget's connector fences every AWS write with it.
    let leases: Api<Lease> = Api::namespaced(client.clone(), &args.leader.lease_namespace);
    let (leadership, lease_task) = leader::spawn(
        leases,
        LeaseConfig {
            namespace: args.leader.lease_namespace.clone(),
            name: args.leader.lease_name.clone(),
            identity: identity.clone(),
            lease_duration: args.leader.lease_duration,
            renew_deadline: args.leader.renew_deadline,
            retry_period: args.leader.retry_period,
        },
        stop_rx.clone(),
    );
    info!(%identity, lease = %args.leader.lease_name, namespace = %args.leader.lease_namespace, "joined leader election");

    let budget = Budget::new(
        BudgetConfig {
            route53: Rate {
                per_second: args.aws.route53_rate,
                burst: args.aws.route53_burst,
            },
            attempt_timeout: args.aws.aws_attempt_timeout,
            ..BudgetConfig::default()
        },
        leadership.clone(),
    );
    let dns_metrics = WriterMetrics::default();
    let health_metrics = crate::health::manager::HealthMetrics::default();
    let elb_metrics = crate::aws::elb::ElbMetrics::default();
    let metrics = Metrics::with_extra(|registry| {
        elb_metrics.register(registry);
        budget.register(registry);
        dns_metrics.register(registry);
        health_metrics.register(registry);
    });

    let router = admin::router(readiness.clone(), metrics.clone());
    let admin_stop = {
        let mut stop = stop_rx.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    let (bound, admin_task) = admin::serve(args.admin.admin_address, router, admin_stop)
        .await
        .map_err(|source| Error::AdminServer {
            address: args.admin.admin_address,
            source,
        })?;
    info!(address = %bound, "admin server listening (/healthz, /readyz, /metrics)");
    {
        let gauge = metrics.leader.clone();
        let mut changes = leadership.changes();
        tokio::spawn(async move {
            loop {
                gauge.set(i64::from(*changes.borrow_and_update()));
                if changes.changed().await.is_err() {
                    break;
                }
            }
        });
    }

    let aws = Aws::new(
        &SdkSettings {
            region: Some(args.aws.aws_region.clone()),
            endpoint_url: args.aws.aws_endpoint_url.clone(),
            static_credentials: None,
            max_attempts: args.aws.aws_max_attempts,
        },
        budget,
    )
    .await;
    let controllers = tokio::spawn(controller::run(
        client,
        metrics,
        leadership,
        aws,
        Settings {
            resync: args.controller.resync_interval,
            spoke_check_interval: args.controller.spoke_check_interval,
            zone_check_interval: args.controller.zone_check_interval,
            watch_namespace: args.controller.watch_namespace.clone(),
            selector: args.controller.selector.clone(),
            zone_writer: crate::dns::zone_writer::Config {
                metrics: dns_metrics,
                relist: args.dns.zone_relist_interval,
                ..crate::dns::zone_writer::Config::default()
            },
            dns_bind_address: args.dns.dns_bind_address,
            probe_resolver: args.health.probe_resolver,
            probe: crate::health::manager::Settings {
                concurrency: args.health.probe_concurrency,
                panic_window: args.health.panic_window,
            },
            health_metrics,
            health_checks: crate::aws::route53_health::Config {
                quota: args.aws.route53_health_check_quota,
                ..crate::aws::route53_health::Config::default()
            },
            health_check_gc_interval: args.aws.health_check_gc_interval,
            elb_resync: args.aws.elb_resync_interval,
            replaced_load_balancer_grace: args.aws.replaced_load_balancer_grace,
            elb_metrics: elb_metrics.clone(),
            concurrency: args.controller.reconcile_concurrency,
            hub_write_concurrency: args.controller.hub_write_concurrency,
            backend_network_policies: args.controller.backend_network_policies,
            identity,
        },
        readiness,
        stop_rx,
    ));

    wait_for_signal().await?;
    info!("shutting down");
    permissions.abort();
    let _ = stop_tx.send(true);
    if let Err(error) = controllers.await {
        warn!(%error, "controllers ended abnormally");
    }
    if let Err(error) = lease_task.await {
        warn!(%error, "leader election ended abnormally");
    }
    match admin_task.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => warn!(%error, "admin server failed"),
        Err(error) => warn!(%error, "admin server task ended abnormally"),
    }
    info!("stopped");
    Ok(())
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "globalingress".to_owned());
    format!("{host}-{}", std::process::id())
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
