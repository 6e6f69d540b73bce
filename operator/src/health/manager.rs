//! The prober: one task per unique [`ProbeSpec`] — address, port, protocol, Host header and path,
//! plus the probe settings (interval, timeout, thresholds, expected codes): GlobalIngresses that
//! probe one load balancer with different settings get one task each — shared by every
//! GlobalIngress that uses it.
//!
//! Each reconcile registers the specs its targets need ([`Health::register`]); a spec nobody
//! registers any more stops. A verdict change sends, at once, the GlobalIngresses using that
//! endpoint as one wave (not a periodic sweep): their records are recomputed and published
//! together, one change per zone whatever their number, and they are reconciled after. The
//! false-failover guard's count is kept current as verdicts change ([`ShareCounter`]), so a
//! reconcile asking for it does not walk every endpoint. Probes start at a random offset within
//! their interval and every wait is jittered by ±10 %, so thousands of endpoints do not probe in
//! step; a semaphore bounds how many probes run at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;
use jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;
use tracing::{debug, info};

use super::probe::{ProbeSpec, Prober, Protocol};
use crate::api::GlobalIngress;
use crate::model::health::{Share, ShareCounter, Tracker, Verdict};

/// Settings of the prober.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Probes in flight at once.
    pub concurrency: usize,
    /// The false-failover guard's window.
    pub panic_window: Duration,
}

/// Metrics of the prober.
#[derive(Debug, Clone)]
pub struct HealthMetrics {
    pub probes: Family<ProbeLabels, Counter>,
    pub probe_seconds: Family<ProtocolLabels, Histogram>,
    pub transitions: Family<VerdictLabels, Counter>,
    pub endpoints: Family<VerdictLabels, Gauge>,
    pub failing_percent: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Failover and failback: detected -> answer seen (or in sync, where no answer is checked).
    pub failover_seconds: Family<FailoverLabels, Histogram>,
    /// Targets by the health their GlobalIngress's status reports.
    pub targets: Family<HealthLabels, Gauge>,
    /// Waves: from the health event to every zone writer's answer.
    pub wave_seconds: Histogram,
    /// GlobalIngresses whose records waves recomputed.
    pub wave_objects: Counter,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HealthLabels {
    pub health: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FailoverLabels {
    /// `Failover` or `Failback`.
    pub kind: &'static str,
    /// `answer_seen` or `in_sync`: where the measurement ends.
    pub until: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProbeLabels {
    pub protocol: &'static str,
    pub result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProtocolLabels {
    pub protocol: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct VerdictLabels {
    pub verdict: &'static str,
}

impl Default for HealthMetrics {
    fn default() -> Self {
        Self {
            probes: Family::default(),
            probe_seconds: Family::new_with_constructor(|| {
                Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
            }),
            transitions: Family::default(),
            endpoints: Family::default(),
            failing_percent: Gauge::default(),
            failover_seconds: Family::new_with_constructor(|| {
                Histogram::new([0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0])
            }),
            targets: Family::default(),
            wave_seconds: Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0]),
            wave_objects: Counter::default(),
        }
    }
}

impl HealthMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "probes",
            "Probes by protocol and result (success, failure)",
            self.probes.clone(),
        );
        registry.register(
            "probe_duration_seconds",
            "Time one probe took",
            self.probe_seconds.clone(),
        );
        registry.register(
            "endpoint_transitions",
            "Endpoint verdict changes (flaps) by the verdict reached",
            self.transitions.clone(),
        );
        registry.register(
            "probed_endpoints",
            "Probed endpoints by verdict",
            self.endpoints.clone(),
        );
        registry.register(
            "failover_duration_seconds",
            "Failovers and failbacks: from the health change being detected to the new answer \
             (RFC 2136: seen at the authoritative server; Route 53: in sync)",
            self.failover_seconds.clone(),
        );
        registry.register(
            "targets",
            "Targets of all GlobalIngresses by the health their status reports",
            self.targets.clone(),
        );
        registry.register(
            "wave_duration_seconds",
            "Waves (a verdict change, the guard engaging, a DNSZone or SpokeCluster change): \
             from the event until every zone writer answered the recomputed records",
            self.wave_seconds.clone(),
        );
        registry.register(
            "wave_objects",
            "GlobalIngresses whose records waves recomputed",
            self.wave_objects.clone(),
        );
        registry.register(
            "failing_endpoints_percent",
            "Share of probed endpoints failing now, as the false-failover guard counts them",
            self.failing_percent.clone(),
        );
    }
}

type GiRef = ObjectRef<GlobalIngress>;

struct Endpoint {
    /// The endpoint's id in the guard's count.
    id: u64,
    tracker: Tracker,
    users: HashSet<GiRef>,
    task: tokio::task::AbortHandle,
}

struct Registration {
    specs: Vec<ProbeSpec>,
    panic_threshold: u32,
}

struct State {
    endpoints: HashMap<ProbeSpec, Endpoint>,
    registrations: HashMap<GiRef, Registration>,
    /// GlobalIngresses whose guard is engaged, as last announced.
    panicking: HashSet<GiRef>,
    /// The guard's count over every endpoint's tracker.
    counter: ShareCounter,
    /// How many endpoints need each guard window (interval × (unhealthyThreshold + 1)).
    windows: BTreeMap<Duration, usize>,
    next_id: u64,
}

impl State {
    /// Changes the tracker of `spec` with `change`, keeping the guard's count current.
    fn update<T>(&mut self, spec: &ProbeSpec, change: impl FnOnce(&mut Tracker) -> T) -> Option<T> {
        let endpoint = self.endpoints.get_mut(spec)?;
        self.counter.remove(endpoint.id, &endpoint.tracker);
        let out = change(&mut endpoint.tracker);
        self.counter.add(endpoint.id, &endpoint.tracker);
        Some(out)
    }
}

/// An endpoint's share of the guard's window.
fn window_of(spec: &ProbeSpec) -> Duration {
    spec.interval * (spec.unhealthy_threshold + 1)
}

struct Inner {
    prober: Prober,
    settings: Settings,
    state: Mutex<State>,
    waves: mpsc::UnboundedSender<Vec<GiRef>>,
    permits: Semaphore,
    metrics: HealthMetrics,
}

/// The shared prober. Cheap to clone.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Health {
    /// The prober. The GlobalIngresses using an endpoint whose verdict changed, and those whose
    /// guard engaged or let go, go to `waves`, together (one message per event). Starts the
    /// guard's watcher task.
    pub fn new(
        prober: Prober,
        settings: Settings,
        metrics: HealthMetrics,
        waves: mpsc::UnboundedSender<Vec<GiRef>>,
    ) -> Self {
        let inner = Arc::new(Inner {
            prober,
            permits: Semaphore::new(settings.concurrency.max(1)),
            settings,
            state: Mutex::new(State {
                endpoints: HashMap::new(),
                registrations: HashMap::new(),
                panicking: HashSet::new(),
                counter: ShareCounter::default(),
                windows: BTreeMap::new(),
                next_id: 0,
            }),
            waves,
            metrics,
        });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.watch_guard();
            }
        });
        Self { inner }
    }

    /// The endpoints `gi` uses now; starts probes for new ones and stops those nobody uses.
    pub fn register(&self, gi: GiRef, specs: Vec<ProbeSpec>, panic_threshold: u32) {
        let mut state = self.inner.lock();
        let old = state
            .registrations
            .insert(
                gi.clone(),
                Registration {
                    specs: specs.clone(),
                    panic_threshold,
                },
            )
            .map(|r| r.specs)
            .unwrap_or_default();
        for spec in old.iter().filter(|s| !specs.contains(s)) {
            release(&mut state, spec, &gi);
        }
        for spec in specs {
            match state.endpoints.get_mut(&spec) {
                Some(endpoint) => {
                    endpoint.users.insert(gi.clone());
                }
                None => {
                    let task = tokio::spawn(probe_loop(Arc::downgrade(&self.inner), spec.clone()))
                        .abort_handle();
                    debug!(endpoint = %spec.describe(), "probing a new endpoint");
                    let id = state.next_id;
                    state.next_id += 1;
                    *state.windows.entry(window_of(&spec)).or_default() += 1;
                    // A new tracker counts for nothing until it has been healthy.
                    state.endpoints.insert(
                        spec,
                        Endpoint {
                            id,
                            tracker: Tracker::default(),
                            users: HashSet::from([gi.clone()]),
                            task,
                        },
                    );
                }
            }
        }
    }

    /// `gi` is gone: its endpoints lose a user.
    pub fn unregister(&self, gi: &GiRef) {
        let mut state = self.inner.lock();
        if let Some(r) = state.registrations.remove(gi) {
            for spec in &r.specs {
                release(&mut state, spec, gi);
            }
        }
        state.panicking.remove(gi);
    }

    /// The current state of an endpoint.
    pub fn tracker(&self, spec: &ProbeSpec) -> Option<Tracker> {
        self.inner
            .lock()
            .endpoints
            .get(spec)
            .map(|e| e.tracker.clone())
    }

    /// The guard's count over every probed endpoint, now.
    pub fn share(&self) -> Share {
        self.inner.share(&self.inner.lock())
    }

    /// Forgets every GlobalIngress not in `live` (deleted without this replica running its
    /// cleanup: followers, a finalizer removed by hand).
    pub fn retain(&self, live: &HashSet<GiRef>) {
        let gone: Vec<GiRef> = self
            .inner
            .lock()
            .registrations
            .keys()
            .filter(|gi| !live.contains(gi))
            .cloned()
            .collect();
        for gi in gone {
            self.unregister(&gi);
        }
    }

    /// Endpoints probed now.
    pub fn endpoint_count(&self) -> usize {
        self.inner.lock().endpoints.len()
    }
}

fn release(state: &mut State, spec: &ProbeSpec, gi: &GiRef) {
    let Some(endpoint) = state.endpoints.get_mut(spec) else {
        return;
    };
    endpoint.users.remove(gi);
    if !endpoint.users.is_empty() {
        return;
    }
    endpoint.task.abort();
    if let Some(endpoint) = state.endpoints.remove(spec) {
        state.counter.remove(endpoint.id, &endpoint.tracker);
    }
    let window = window_of(spec);
    if let Some(n) = state.windows.get_mut(&window) {
        *n -= 1;
        if *n == 0 {
            state.windows.remove(&window);
        }
    }
    debug!(endpoint = %spec.describe(), "stopped probing an unused endpoint");
}

impl Inner {
    /// The guard's window: the flag, but never shorter than the slowest endpoint needs to fall
    /// (interval × (unhealthyThreshold + 1)), so endpoints probed rarely still fall inside it.
    fn window(&self, state: &State) -> Duration {
        state
            .windows
            .last_key_value()
            .map(|(w, _)| *w)
            .unwrap_or_default()
            .max(self.settings.panic_window)
    }

    /// The guard's count over every probed endpoint, now.
    fn share(&self, state: &State) -> Share {
        state.counter.share(Timestamp::now(), self.window(state))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep going with it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends every GlobalIngress whose guard engaged or let go since the last look to the
    /// controller, and updates the endpoint gauges.
    fn watch_guard(&self) {
        let mut state = self.lock();
        let share = self.share(&state);
        self.metrics.failing_percent.set(share.percent());
        for verdict in [Verdict::Unknown, Verdict::Healthy, Verdict::Unhealthy] {
            let n = state
                .endpoints
                .values()
                .filter(|e| e.tracker.verdict == verdict)
                .count();
            self.metrics
                .endpoints
                .get_or_create(&VerdictLabels {
                    verdict: verdict.as_str(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let flipped: Vec<(GiRef, bool)> = state
            .registrations
            .iter()
            .filter_map(|(gi, r)| {
                let now = share.exceeds(r.panic_threshold);
                (now != state.panicking.contains(gi)).then(|| (gi.clone(), now))
            })
            .collect();
        let mut wave = Vec::new();
        for (gi, now) in flipped {
            if now {
                state.panicking.insert(gi.clone());
            } else {
                state.panicking.remove(&gi);
            }
            // Only an object with a failing endpoint decides differently under the guard.
            let failing = state.registrations.get(&gi).is_some_and(|r| {
                r.specs.iter().any(|s| {
                    state.endpoints.get(s).is_some_and(|e| {
                        e.tracker.fail_streak > 0 || e.tracker.verdict == Verdict::Unhealthy
                    })
                })
            });
            if failing {
                wave.push(gi);
            }
        }
        if !wave.is_empty() {
            let _ = self.waves.unbounded_send(wave);
        }
    }
}

fn protocol_label(p: Protocol) -> &'static str {
    match p {
        Protocol::Http => "HTTP",
        Protocol::Https => "HTTPS",
        Protocol::Tcp => "TCP",
    }
}

fn jittered(d: Duration) -> Duration {
    // ±10 %.
    d.mul_f64(0.9 + fastrand::f64() * 0.2)
}

async fn probe_loop(inner: std::sync::Weak<Inner>, spec: ProbeSpec) {
    // A random start within the interval spreads endpoints registered together.
    tokio::time::sleep(spec.interval.mul_f64(fastrand::f64())).await;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let started = std::time::Instant::now();
        let result = {
            let _permit = strong.permits.acquire().await;
            strong.prober.probe(&spec).await
        };
        let protocol = protocol_label(spec.protocol);
        strong
            .metrics
            .probe_seconds
            .get_or_create(&ProtocolLabels { protocol })
            .observe(started.elapsed().as_secs_f64());
        strong
            .metrics
            .probes
            .get_or_create(&ProbeLabels {
                protocol,
                result: if result.is_ok() { "success" } else { "failure" },
            })
            .inc();
        let users: Vec<GiRef> = {
            let mut state = strong.lock();
            let ok = result.is_ok();
            let detail = result.unwrap_or_else(|e| e);
            let Some(changed) = state.update(&spec, |tracker| {
                tracker.record(ok, detail, Timestamp::now(), spec.thresholds())
            }) else {
                return;
            };
            let Some(endpoint) = state.endpoints.get(&spec) else {
                return;
            };
            match changed {
                Some(verdict) => {
                    info!(
                        endpoint = %spec.describe(),
                        verdict = verdict.as_str(),
                        detail = %endpoint.tracker.detail,
                        users = endpoint.users.len(),
                        "endpoint verdict changed"
                    );
                    strong
                        .metrics
                        .transitions
                        .get_or_create(&VerdictLabels {
                            verdict: verdict.as_str(),
                        })
                        .inc();
                    endpoint.users.iter().cloned().collect()
                }
                None => Vec::new(),
            }
        };
        if !users.is_empty() {
            let _ = strong.waves.unbounded_send(users);
        }
        // The interval counts from the start of this probe.
        let wait = jittered(spec.interval).saturating_sub(started.elapsed());
        drop(strong);
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::health::probe::Resolver;

    fn spec(port: u16) -> ProbeSpec {
        ProbeSpec {
            address: "127.0.0.1".into(),
            port,
            protocol: Protocol::Http,
            host: "a.example.test".into(),
            path: "/".into(),
            expected_status: vec![200],
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(80),
            healthy_threshold: 1,
            unhealthy_threshold: 2,
            verify_tls: true,
        }
    }

    #[tokio::test]
    async fn a_shared_endpoint_is_probed_once_and_its_users_are_told_of_changes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let server = tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
            }
        });
        let (tx, waves) = mpsc::unbounded();
        let mut triggers = waves.flat_map(futures::stream::iter);
        let health = Health::new(
            Prober::new(Resolver::System),
            Settings {
                concurrency: 4,
                panic_window: Duration::from_secs(5),
            },
            HealthMetrics::default(),
            tx,
        );
        let a = ObjectRef::<GlobalIngress>::new("a").within("ns");
        let b = ObjectRef::<GlobalIngress>::new("b").within("ns");
        health.register(a.clone(), vec![spec(port)], 50);
        health.register(b.clone(), vec![spec(port)], 50);
        assert_eq!(health.endpoint_count(), 1);
        // Healthy after one success: both users hear of it.
        let mut told = HashSet::new();
        while told.len() < 2 {
            told.insert(triggers.next().await.unwrap());
        }
        assert_eq!(told, HashSet::from([a.clone(), b.clone()]));
        assert_eq!(
            health.tracker(&spec(port)).unwrap().verdict,
            Verdict::Healthy
        );
        // The server goes away: Unhealthy after two failures, and both are told (the guard
        // also tells them when it engages: every probed endpoint is failing).
        server.abort();
        let _ = server.await;
        let mut told = HashSet::new();
        while told.len() < 2 || health.tracker(&spec(port)).unwrap().verdict != Verdict::Unhealthy {
            told.insert(triggers.next().await.unwrap());
        }
        assert_eq!(told, HashSet::from([a.clone(), b.clone()]));
        assert!(health.share().exceeds(50));
        assert!(hits.load(std::sync::atomic::Ordering::SeqCst) >= 1);
        health.unregister(&a);
        assert_eq!(health.endpoint_count(), 1);
        health.register(b.clone(), Vec::new(), 50);
        assert_eq!(health.endpoint_count(), 0, "no user: the probe stops");
    }
}
