//! Logs (tracing) and metrics (prometheus-client, one registry per process, no globals).

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber. Logs go to stderr.
pub fn init_logging(
    filter: &str,
    json: bool,
) -> Result<(), tracing_subscriber::filter::ParseError> {
    let filter = EnvFilter::try_new(filter)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    Ok(())
}

/// An error and its sources on one line (the top message alone, e.g. "failed to add the
/// finalizer", hides why).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Labels of watch-event counters: the watched kind and what happened (bounded sets).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WatchLabels {
    pub kind: &'static str,
    pub event: &'static str,
}

/// Labels of reconcile metrics: the controller and, for errors, the error's category (the variant
/// name: a bounded set).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub controller: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: &'static str,
    pub category: &'static str,
}

/// Labels of the objects-by-condition gauge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ConditionLabels {
    pub kind: &'static str,
    pub condition: &'static str,
    pub status: String,
}

/// Labels of write counters: what was written (`status`, `finalizer`, `event`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WriteLabels {
    pub controller: &'static str,
    pub write: &'static str,
}

/// Every metric the process exports, registered once.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Reconciles run, by controller.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile duration in seconds, by controller.
    pub reconcile_duration: Family<ReconcileLabels, Histogram>,
    /// Reconcile errors, by controller and category.
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// 1 while this replica holds the leader Lease.
    pub leader: Gauge,
    /// Writes made to the hub (status patches, finalizers, events), by controller and kind.
    pub writes: Family<WriteLabels, Counter>,
    /// Writes a follower computed but did not make.
    pub writes_skipped_not_leader: Family<WriteLabels, Counter>,
    /// Objects by condition status.
    pub objects_by_condition: Family<ConditionLabels, Gauge<i64, AtomicI64>>,
    /// Watch events received, by kind and event (`list`, `init_done`, `apply`, `delete`, `error`).
    pub watch_events: Family<WatchLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::with_extra(|_| {})
    }

    /// The metrics, with more families registered by `extra` (e.g. the AWS budget's).
    pub fn with_extra(extra: impl FnOnce(&mut Registry)) -> Self {
        let mut registry = Registry::with_prefix("globalingress");
        extra(&mut registry);
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        registry.register("build_info", "Build information", build_info);
        let watch_events = Family::<WatchLabels, Counter>::default();
        registry.register(
            "watch_events",
            "Watch events received, by kind and event",
            watch_events.clone(),
        );
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles run, by controller",
            reconciles.clone(),
        );
        let reconcile_duration = Family::<ReconcileLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration, by controller",
            reconcile_duration.clone(),
        );
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconcile errors, by controller and error category",
            reconcile_errors.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "writes",
            "Writes made to the hub, by controller and kind",
            writes.clone(),
        );
        let writes_skipped_not_leader = Family::<WriteLabels, Counter>::default();
        registry.register(
            "writes_skipped_not_leader",
            "Writes computed but not made because this replica is not the leader",
            writes_skipped_not_leader.clone(),
        );
        let objects_by_condition = Family::<ConditionLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "objects_by_condition",
            "Objects by kind, condition and status",
            objects_by_condition.clone(),
        );
        // Every controller's series exist from the start (at 0), so dashboards and alerts see
        // them before the first reconcile.
        for controller in ["globalingress", "spokecluster", "dnszone"] {
            let labels = ReconcileLabels { controller };
            let _ = reconciles.get_or_create(&labels);
            let _ = reconcile_duration.get_or_create(&labels);
        }
        Self {
            registry: Arc::new(registry),
            watch_events,
            reconciles,
            reconcile_duration,
            reconcile_errors,
            leader,
            writes,
            writes_skipped_not_leader,
            objects_by_condition,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_family_with_the_prefix() {
        let metrics = Metrics::new();
        metrics
            .watch_events
            .get_or_create(&WatchLabels {
                kind: "Namespace",
                event: "apply",
            })
            .inc();
        let text = metrics.encode();
        assert!(
            text.contains("globalingress_build_info{version=\""),
            "{text}"
        );
        assert!(
            text.contains("globalingress_watch_events_total{kind=\"Namespace\",event=\"apply\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
