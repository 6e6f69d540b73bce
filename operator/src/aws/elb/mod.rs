//! Elastic Load Balancing (v2) per account and region: what exists, found by tags, and the
//! writes that change it.
//!
//! Each (account, region, role) has one [`Inventory`]: every load balancer and target group of
//! the region (DescribeLoadBalancers and DescribeTargetGroups in pages of 400, DescribeTags 20
//! ARNs a call); the listeners and target health of ours, read when first needed. It is
//! listed again when older than the resync interval (or after a write failed), and updated from
//! our own writes in between — never a remembered ARN across restarts: after a crash the next
//! listing finds what the last process created by its tags. Every load balancer of the region
//! is listed, not only ours: a name another tool already uses is refused before a create (ELBv2
//! answers a create of an existing name with identical settings with the existing resource),
//! and adopted load balancers are found by DNS name.

pub mod alarms;
pub mod listeners;
pub mod sdk;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::accounts::{Scope, Target};
use crate::model::certificate::SeenCertificate;
use crate::model::elb::{Registered, Registration};
use crate::model::load_balancer::{SeenListener, SeenLoadBalancer, SeenTargetGroup};

/// How long a listing is trusted (our own writes keep it current in between).
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(300);

/// The shortest time between two listings of one scope after failed writes.
pub const RELIST_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// Labels of ELBv2 resource changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ChangeLabels {
    /// `loadbalancer`, `targetgroup`, `listener`.
    pub resource: &'static str,
    /// `created`, `modified`, `deleted`, `retained`.
    pub action: &'static str,
}

/// Labels of target registrations.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RegistrationLabels {
    /// `register`, `deregister`.
    pub action: &'static str,
}

/// Labels of a certificate's expiry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CertificateLabels {
    /// `namespace/name` of the GlobalIngress.
    pub global_ingress: String,
    pub region: String,
    pub certificate_arn: String,
}

/// Metrics of the load balancers (the calls themselves are counted by the budget).
#[derive(Debug, Clone, Default)]
pub struct ElbMetrics {
    pub changes: Family<ChangeLabels, Counter>,
    pub registrations: Family<RegistrationLabels, Counter>,
    /// Seconds until each certificate in use expires (negative once expired).
    pub certificate_expiry: Family<CertificateLabels, Gauge>,
}

impl ElbMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "elb_resource_changes",
            "ELBv2 resources created, modified, deleted or retained, by resource",
            self.changes.clone(),
        );
        registry.register(
            "elb_target_registrations",
            "Targets registered with and deregistered from target groups",
            self.registrations.clone(),
        );
        registry.register(
            "certificate_expiry_seconds",
            "Seconds until a certificate on a provisioned load balancer's listener expires",
            self.certificate_expiry.clone(),
        );
    }

    pub fn changed(&self, resource: &'static str, action: &'static str) {
        self.changes
            .get_or_create(&ChangeLabels { resource, action })
            .inc();
    }
}

/// What one listing (and our writes since) say.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Every load balancer of the region, by ARN.
    pub load_balancers: BTreeMap<String, SeenLoadBalancer>,
    /// Every target group of the region, by ARN.
    pub target_groups: BTreeMap<String, SeenTargetGroup>,
    /// The listeners of our load balancers read or written since the listing, by load balancer
    /// ARN (read when first needed: see [`Inventory::listeners`]).
    pub listeners: BTreeMap<String, Vec<SeenListener>>,
}

impl Listing {
    /// The load balancer whose DNS name is `dns_name`.
    pub fn by_dns_name(&self, dns_name: &str) -> Option<&SeenLoadBalancer> {
        let name = dns_name.trim_end_matches('.').to_ascii_lowercase();
        self.load_balancers.values().find(|lb| lb.dns_name == name)
    }
}

/// A target group's targets as DescribeTargetHealth reports them: registration, state,
/// healthy.
pub type TargetHealth = Vec<(Registration, Registered, bool)>;

#[derive(Debug, Default)]
struct State {
    listed_at: Option<Instant>,
    listing: Listing,
    /// Target health of our target groups, by ARN, with when it was read.
    health: HashMap<String, (Instant, TargetHealth)>,
    /// Alarms of ours seen or written since the listing, by name: their dimensions.
    alarms: HashMap<String, BTreeMap<String, String>>,
    /// Since when each load balancer has been seen stale (kept across listings).
    stale_since: HashMap<String, Instant>,
    /// The certificates of any globalingress hub in the region, by ARN, with when they were
    /// listed (see [`Inventory::certificates`]).
    certificates: Option<(Instant, BTreeMap<String, SeenCertificate>)>,
    /// Tags of every certificate of the region seen, by ARN (kept across listings: they do
    /// not change on ours, and a foreign one's are read once).
    certificate_tags: HashMap<String, BTreeMap<String, String>>,
    /// Certificates named by `spec.tls.certificateArn`, with when they were described.
    given: HashMap<String, (Instant, Option<SeenCertificate>)>,
    /// When each pending certificate of ours was last described (see
    /// [`Inventory::describe_due`]).
    described: HashMap<String, Instant>,
}

/// The ELBv2 state of one (account, region, role), shared by every reconcile.
#[derive(Debug)]
pub struct Inventory {
    pub client: aws_sdk_elasticloadbalancingv2::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub acm: aws_sdk_acm::Client,
    resync: Duration,
    /// Held while listing (one listing at a time; readers wait for it rather than list too).
    state: tokio::sync::Mutex<State>,
    /// A write failed, or was abandoned before its answer came back (a reconcile timed out),
    /// since the listing: what we remember may be wrong.
    doubtful: AtomicBool,
}

/// Marks the inventory doubtful unless [`WriteGuard::done`] is called: held across a create
/// whose answer updates the inventory, so a future dropped mid-call (the reconcile timed out
/// after the request left) makes the next reconcile list again instead of creating twice.
#[derive(Debug)]
pub struct WriteGuard<'a> {
    inventory: &'a Inventory,
    done: bool,
}

impl WriteGuard<'_> {
    pub fn done(mut self) {
        self.done = true;
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.inventory.doubtful.store(true, Ordering::Relaxed);
        }
    }
}

impl Inventory {
    /// What exists, listed again first when older than the resync interval, or after a failed
    /// write (at most every [`RELIST_AFTER_FAILURE`]: a wave of failures lists once).
    pub async fn listing(&self) -> Result<Listing, String> {
        let mut state = self.state.lock().await;
        let due = match state.listed_at {
            None => true,
            Some(at) => {
                at.elapsed() >= self.resync
                    || (self.doubtful.load(Ordering::Relaxed)
                        && at.elapsed() >= RELIST_AFTER_FAILURE)
            }
        };
        if due {
            // Cleared before listing: a write failing while the listing runs sets it again.
            // A listing that fails leaves it set.
            let was = self.doubtful.swap(false, Ordering::Relaxed);
            state.listing = match list(&self.client).await {
                Ok(listing) => listing,
                Err(e) => {
                    if was {
                        self.doubtful.store(true, Ordering::Relaxed);
                    }
                    return Err(e);
                }
            };
            state.listed_at = Some(Instant::now());
            state.health.clear();
            state.alarms.clear();
        }
        Ok(state.listing.clone())
    }

    /// Lists again at the next [`Self::listing`] (a write failed: what we remember may be
    /// wrong).
    pub async fn invalidate(&self) {
        self.doubtful.store(true, Ordering::Relaxed);
    }

    /// A guard to hold across a create (see [`WriteGuard`]).
    pub fn write_guard(&self) -> WriteGuard<'_> {
        WriteGuard {
            inventory: self,
            done: false,
        }
    }

    /// The listeners of our load balancer `lb`: remembered since the listing, else read.
    pub async fn listeners(&self, lb: &str) -> Result<Vec<SeenListener>, String> {
        if let Some(known) = self.state.lock().await.listing.listeners.get(lb) {
            return Ok(known.clone());
        }
        let read = listeners::listeners(&self.client, lb).await?;
        self.put_listeners(lb, read.clone()).await;
        Ok(read)
    }

    /// Records a load balancer we created or looked at.
    pub async fn put_load_balancer(&self, lb: SeenLoadBalancer) {
        let mut state = self.state.lock().await;
        state.listing.load_balancers.insert(lb.arn.clone(), lb);
    }

    pub async fn put_target_group(&self, tg: SeenTargetGroup) {
        let mut state = self.state.lock().await;
        state.listing.target_groups.insert(tg.arn.clone(), tg);
    }

    pub async fn put_listeners(&self, lb: &str, listeners: Vec<SeenListener>) {
        let mut state = self.state.lock().await;
        state.listing.listeners.insert(lb.to_owned(), listeners);
    }

    pub async fn forget_load_balancer(&self, arn: &str) {
        let mut state = self.state.lock().await;
        state.stale_since.remove(arn);
        state.listing.load_balancers.remove(arn);
        state.listing.listeners.remove(arn);
    }

    pub async fn forget_target_group(&self, arn: &str) {
        let mut state = self.state.lock().await;
        state.listing.target_groups.remove(arn);
        state.health.remove(arn);
    }

    /// The target health of `tg`: remembered when read (or written) within the resync
    /// interval, else read.
    pub async fn target_health(&self, tg: &str) -> Result<TargetHealth, String> {
        {
            let state = self.state.lock().await;
            if let Some((at, health)) = state.health.get(tg)
                && at.elapsed() < self.resync
            {
                return Ok(health.clone());
            }
        }
        let health = sdk::target_health(&self.client, tg).await?;
        self.state
            .lock()
            .await
            .health
            .insert(tg.to_owned(), (Instant::now(), health.clone()));
        Ok(health)
    }

    /// The dimensions of alarm `name`, when it was seen or written since the listing.
    pub async fn alarm(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.state.lock().await.alarms.get(name).cloned()
    }

    pub async fn put_alarm(&self, name: &str, dimensions: BTreeMap<String, String>) {
        self.state
            .lock()
            .await
            .alarms
            .insert(name.to_owned(), dimensions);
    }

    pub async fn forget_alarm(&self, name: &str) {
        self.state.lock().await.alarms.remove(name);
    }

    /// How long load balancer `arn` has been seen stale (zero the first time).
    pub async fn stale_for(&self, arn: &str) -> Duration {
        let mut state = self.state.lock().await;
        state
            .stale_since
            .entry(arn.to_owned())
            .or_insert_with(Instant::now)
            .elapsed()
    }

    /// Forgets when these load balancers were seen stale (they are published or wanted again).
    pub async fn not_stale(&self, arns: &[&str]) {
        let mut state = self.state.lock().await;
        for arn in arns {
            state.stale_since.remove(*arn);
        }
    }

    /// Forgets the remembered target health of `tg` (read again next time).
    pub async fn forget_health(&self, tg: &str) {
        self.state.lock().await.health.remove(tg);
    }

    /// The certificates of every globalingress hub in the region (by their owner tag),
    /// listed again when older than the resync interval or after a failed write.
    pub async fn certificates(&self) -> Result<BTreeMap<String, SeenCertificate>, String> {
        let mut state = self.state.lock().await;
        if let Some((at, known)) = &state.certificates
            && at.elapsed() < self.resync
            && !(self.doubtful.load(Ordering::Relaxed) && at.elapsed() >= RELIST_AFTER_FAILURE)
        {
            return Ok(known.clone());
        }
        let arns = super::acm::list(&self.acm).await?;
        let mut found = BTreeMap::new();
        for arn in arns {
            let tags = match state.certificate_tags.get(&arn) {
                Some(tags) => tags.clone(),
                None => {
                    let tags = super::acm::tags(&self.acm, &arn).await?;
                    state.certificate_tags.insert(arn.clone(), tags.clone());
                    tags
                }
            };
            if !super::acm::ours(&tags) {
                continue;
            }
            if let Some(seen) = super::acm::describe(&self.acm, &arn, tags).await? {
                found.insert(arn, seen);
            }
        }
        state.certificates = Some((Instant::now(), found.clone()));
        Ok(found)
    }

    /// Whether a pending certificate is due to be described again (at most every `every`:
    /// ACM takes minutes to validate, and reconciles come every few seconds meanwhile); when
    /// due, now counts as described.
    pub async fn describe_due(&self, arn: &str, every: Duration) -> bool {
        let mut state = self.state.lock().await;
        let due = state
            .described
            .get(arn)
            .is_none_or(|at| at.elapsed() >= every);
        if due {
            state.described.insert(arn.to_owned(), Instant::now());
        }
        due
    }

    /// Records a certificate we requested or described.
    pub async fn put_certificate(&self, seen: SeenCertificate) {
        let mut state = self.state.lock().await;
        state
            .certificate_tags
            .insert(seen.arn.clone(), seen.tags.clone());
        if let Some((_, known)) = &mut state.certificates {
            known.insert(seen.arn.clone(), seen);
        }
    }

    pub async fn forget_certificate(&self, arn: &str) {
        let mut state = self.state.lock().await;
        if let Some((_, known)) = &mut state.certificates {
            known.remove(arn);
        }
    }

    /// A certificate named by `spec.tls.certificateArn`: described again once older than the
    /// resync interval, and at every call while it is not issued.
    pub async fn given_certificate(&self, arn: &str) -> Result<Option<SeenCertificate>, String> {
        if let Some((at, seen)) = self.state.lock().await.given.get(arn)
            && at.elapsed() < self.resync
            && seen.as_ref().is_some_and(SeenCertificate::issued)
        {
            return Ok(seen.clone());
        }
        let seen = super::acm::describe(&self.acm, arn, BTreeMap::new()).await?;
        self.state
            .lock()
            .await
            .given
            .insert(arn.to_owned(), (Instant::now(), seen.clone()));
        Ok(seen)
    }

    /// Every listener of ours seen since the listing (to tell whether a certificate is in use).
    pub async fn known_listeners(&self) -> Vec<SeenListener> {
        let state = self.state.lock().await;
        state
            .listing
            .listeners
            .values()
            .flatten()
            .cloned()
            .collect()
    }
}

/// Lists the region: every load balancer and target group with its tags (listeners are read
/// when a deployer first needs them, not here: one call per load balancer would make a listing
/// cost as many calls as there are load balancers).
async fn list(client: &aws_sdk_elasticloadbalancingv2::Client) -> Result<Listing, String> {
    let mut load_balancers: BTreeMap<String, SeenLoadBalancer> = sdk::load_balancers(client)
        .await?
        .into_iter()
        .map(|lb| (lb.arn.clone(), lb))
        .collect();
    let mut target_groups: BTreeMap<String, SeenTargetGroup> = sdk::target_groups(client)
        .await?
        .into_iter()
        .map(|tg| (tg.arn.clone(), tg))
        .collect();
    let arns: Vec<String> = load_balancers
        .keys()
        .chain(target_groups.keys())
        .cloned()
        .collect();
    let mut tags = sdk::tags(client, &arns).await?;
    for (arn, lb) in &mut load_balancers {
        lb.tags = tags.remove(arn).unwrap_or_default();
    }
    for (arn, tg) in &mut target_groups {
        tg.tags = tags.remove(arn).unwrap_or_default();
    }
    Ok(Listing {
        load_balancers,
        target_groups,
        listeners: BTreeMap::new(),
    })
}

/// How long a spoke's AWS target (its external id read from a Secret) is reused before the
/// Secret is read again: a rotated external id is used within this.
pub const TARGET_TTL: Duration = Duration::from_secs(60);

/// A spoke's target: the SpokeCluster's resourceVersion, when it was read, the target.
type RememberedTarget = (String, Instant, Target);

/// The inventories of every scope. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LoadBalancers {
    /// By target: a rotated external id is another target (its scope's client assumes the
    /// role with the new id), and replaces the inventory of the old one.
    inventories: Arc<Mutex<HashMap<Target, Arc<Inventory>>>>,
    /// Each spoke's target, by SpokeCluster name: (its resourceVersion, when read, target).
    targets: Arc<Mutex<HashMap<String, RememberedTarget>>>,
    resync: Duration,
    /// How long a replaced (or removed) load balancer stays after the records left it.
    pub grace: Duration,
    pub metrics: ElbMetrics,
    /// `healthCheck.via: TargetHealth`: the verdict of each target (`namespace/name/target`)
    /// from its target group's health, with when it last changed.
    verdicts: Arc<Mutex<HashMap<String, crate::model::health::Tracker>>>,
    /// When each expiring certificate was last warned about, by ARN.
    warned: Arc<Mutex<HashMap<String, Instant>>>,
}

impl LoadBalancers {
    pub fn new(resync: Duration, grace: Duration, metrics: ElbMetrics) -> Self {
        Self {
            grace,
            inventories: Arc::default(),
            targets: Arc::default(),
            resync,
            metrics,
            verdicts: Arc::default(),
            warned: Arc::default(),
        }
    }

    /// Whether `arn` is due a warning (at most one every `every`); when due, now counts.
    pub fn warn_due(&self, arn: &str, every: Duration) -> bool {
        let mut all = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        let due = all.get(arn).is_none_or(|at| at.elapsed() >= every);
        if due {
            all.insert(arn.to_owned(), Instant::now());
        }
        due
    }

    /// The verdict of `key` after its target group reported `healthy` (`None`: not read;
    /// the verdict stays as it was) at `now`.
    pub fn target_health_verdict(
        &self,
        key: &str,
        healthy: Option<bool>,
        detail: String,
        now: jiff::Timestamp,
    ) -> crate::model::health::Tracker {
        use crate::model::health::Verdict;
        let mut all = self.verdicts.lock().unwrap_or_else(PoisonError::into_inner);
        let t = all.entry(key.to_owned()).or_default();
        if let Some(healthy) = healthy {
            let verdict = if healthy {
                Verdict::Healthy
            } else {
                Verdict::Unhealthy
            };
            if t.verdict != verdict {
                if t.verdict != Verdict::Unknown {
                    t.flaps += 1;
                }
                t.verdict = verdict;
                t.since = Some(now);
                if verdict == Verdict::Unhealthy {
                    t.fell_at = Some(now);
                }
            }
            t.ever_healthy |= healthy;
            t.last_probe = Some(now);
        }
        t.detail = detail;
        t.clone()
    }

    /// The target of `spoke` read less than [`TARGET_TTL`] ago from the same version of it.
    pub fn remembered_target(&self, spoke: &str, version: &str) -> Option<Target> {
        let all = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        let (v, at, target) = all.get(spoke)?;
        (v == version && at.elapsed() < TARGET_TTL).then(|| target.clone())
    }

    pub fn remember_target(&self, spoke: &str, version: &str, target: &Target) {
        self.targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                spoke.to_owned(),
                (version.to_owned(), Instant::now(), target.clone()),
            );
    }

    /// The inventory of `target`'s account and region (built on first use, with `scope`'s
    /// client).
    pub fn inventory(&self, target: &Target, scope: &Scope) -> Arc<Inventory> {
        let mut all = self
            .inventories
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = all.get(target) {
            return found.clone();
        }
        all.retain(|t, _| {
            !(t.account == target.account
                && t.region == target.region
                && t.role.as_ref().map(|r| &r.arn) == target.role.as_ref().map(|r| &r.arn))
        });
        let inventory = Arc::new(Inventory {
            client: scope.elbv2(),
            cloudwatch: scope.cloudwatch(),
            acm: scope.acm(),
            resync: self.resync,
            state: tokio::sync::Mutex::new(State::default()),
            doubtful: AtomicBool::new(false),
        });
        all.insert(target.clone(), inventory.clone());
        inventory
    }
}
