//! The registry of one account's health checks: a cached list, the plan applied, one writer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{error, info};

use super::api::{ApiError, HealthCheckApi, Route53HealthChecks};
use super::plan::{self, Action, CheckConfig, DesiredCheck, ExistingCheck, Scope, Tags};
use crate::aws::Aws;

/// Route 53's default limit of health checks per account.
pub const DEFAULT_QUOTA: usize = 200;

/// Registry settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The account's health-check limit (`--route53-health-check-quota`); every check in the
    /// account counts, whoever made it.
    pub quota: usize,
    /// The cached list is read again after this long (and after any error).
    pub relist_after: Duration,
    /// Garbage collection spares checks this registry created less than this long ago: the
    /// caller's set of live targets may predate them.
    pub gc_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            quota: DEFAULT_QUOTA,
            relist_after: Duration::from_secs(5 * 60),
            gc_grace: Duration::from_secs(10 * 60),
        }
    }
}

/// What [`HealthChecks::sync`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Health check id by target, for the records. A target missing here has no check (quota).
    pub ids: BTreeMap<String, String>,
    pub created: usize,
    pub updated: usize,
    /// This resource's checks no longer needed (replaced, or of removed targets): delete them
    /// with [`HealthChecks::prune`] once the records no longer name them.
    pub stale: usize,
    /// Why some targets got no check: the account's quota is used up. The caller reports it as
    /// a condition with reason [`super::QUOTA_EXCEEDED_REASON`]; it is not an error.
    pub quota_exhausted: Option<String>,
}

/// Why a registry call failed. The cached list is dropped: the next call lists again.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to list the account's health checks")]
    ListHealthChecks {
        #[source]
        source: ApiError,
    },
    #[error("failed to create the health check of target {target}")]
    CreateHealthCheck {
        target: String,
        #[source]
        source: ApiError,
    },
    #[error("failed to tag health check {id}")]
    TagHealthCheck {
        id: String,
        #[source]
        source: ApiError,
    },
    #[error("failed to update health check {id}")]
    UpdateHealthCheck {
        id: String,
        #[source]
        source: ApiError,
    },
    #[error("failed to delete health check {id}")]
    DeleteHealthCheck {
        id: String,
        #[source]
        source: ApiError,
    },
}

#[derive(Debug, Default)]
struct Cache {
    checks: Vec<ExistingCheck>,
    listed_at: Option<Instant>,
    /// When this registry created a check, for the garbage collector's grace period.
    created_at: HashMap<String, Instant>,
}

/// The health checks of one AWS account, shared by every reconcile of the hub.
///
/// Every call holds one lock for its whole run, API calls included: two reconciles never plan
/// from the same list, so neither creates a check the other just made.
#[derive(Debug)]
pub struct HealthChecks {
    api: Arc<dyn HealthCheckApi>,
    config: Config,
    cache: Mutex<Cache>,
}

impl HealthChecks {
    pub fn new(api: Arc<dyn HealthCheckApi>, config: Config) -> Self {
        Self {
            api,
            config,
            cache: Mutex::default(),
        }
    }

    /// The registry over Route 53, spending `aws`'s budget.
    pub fn route53(aws: &Aws, config: Config) -> Self {
        Self::new(Arc::new(Route53HealthChecks::new(aws.route53())), config)
    }

    /// Makes `owner`'s checks for `resource` (`namespace/name`) match `targets` (config by target
    /// name): creates the missing, updates the changed in place, keeps the rest. Deletes
    /// nothing: call [`Self::prune`] after the records stop naming the stale checks (Route 53 lets
    /// a check be deleted under a record, whose health then becomes unpredictable).
    pub async fn sync(
        &self,
        owner: &str,
        resource: &str,
        targets: &BTreeMap<String, CheckConfig>,
    ) -> Result<SyncOutcome, Error> {
        let mut cache = self.cache.lock().await;
        let result = self.sync_locked(&mut cache, owner, resource, targets).await;
        if result.is_err() {
            cache.listed_at = None;
        }
        result
    }

    /// Deletes `owner`'s checks of `resource` except those in `keep` (the ids the records now
    /// name, usually [`SyncOutcome::ids`]; empty when the resource is gone). Returns how many
    /// were deleted.
    pub async fn prune(
        &self,
        owner: &str,
        resource: &str,
        keep: &BTreeMap<String, String>,
    ) -> Result<usize, Error> {
        let mut cache = self.cache.lock().await;
        let result = async {
            self.refresh(&mut cache, false).await?;
            let kept: HashSet<&str> = keep.values().map(String::as_str).collect();
            let candidates: Vec<ExistingCheck> = cache
                .checks
                .iter()
                .filter(|c| !kept.contains(c.id.as_str()))
                .cloned()
                .collect();
            let actions = plan::plan(
                &[],
                &candidates,
                owner,
                Scope::Resource(resource),
                self.config.quota,
            );
            self.delete_all(&mut cache, actions, None).await
        }
        .await;
        if result.is_err() {
            cache.listed_at = None;
        }
        result
    }

    /// Deletes every check tagged with `owner` whose (resource, target) is not in `live`, after
    /// listing the account afresh. Checks this registry created within `gc_grace` are spared.
    /// Returns how many were deleted.
    pub async fn collect_garbage(
        &self,
        owner: &str,
        live: &HashSet<(String, String)>,
    ) -> Result<usize, Error> {
        let mut cache = self.cache.lock().await;
        let result = async {
            self.refresh(&mut cache, true).await?;
            let actions = plan::plan(
                &[],
                &cache.checks,
                owner,
                Scope::All { live },
                self.config.quota,
            );
            let now = Instant::now();
            let young: HashSet<String> = cache
                .created_at
                .iter()
                .filter(|(_, at)| now.duration_since(**at) < self.config.gc_grace)
                .map(|(id, _)| id.clone())
                .collect();
            self.delete_all(&mut cache, actions, Some(&young)).await
        }
        .await;
        if result.is_err() {
            cache.listed_at = None;
        }
        result
    }

    /// Gives up `owner`'s checks of `resource` without deleting them (`deletionPolicy: Retain`:
    /// the retained records still name them): their owner tag becomes `<owner>/retained`, so no
    /// sync, prune or garbage collection of this hub touches them again. Returns how many.
    pub async fn release(&self, owner: &str, resource: &str) -> Result<usize, Error> {
        let mut cache = self.cache.lock().await;
        let result = async {
            self.refresh(&mut cache, false).await?;
            let ours: Vec<String> = cache
                .checks
                .iter()
                .filter(|c| {
                    c.tags.owner.as_deref() == Some(owner)
                        && c.tags.resource.as_deref() == Some(resource)
                })
                .map(|c| c.id.clone())
                .collect();
            let retained = plan::tag_value(&format!("{owner}/retained"));
            for id in &ours {
                self.api
                    .tag(id, &[(plan::TAG_OWNER.to_owned(), retained.clone())])
                    .await
                    .map_err(|source| Error::TagHealthCheck {
                        id: id.clone(),
                        source,
                    })?;
                if let Some(cached) = cache.checks.iter_mut().find(|c| &c.id == id) {
                    cached.tags.owner = Some(retained.clone());
                }
                info!(%id, resource, "released Route 53 health check (deletionPolicy Retain)");
            }
            Ok(ours.len())
        }
        .await;
        if result.is_err() {
            cache.listed_at = None;
        }
        result
    }

    async fn refresh(&self, cache: &mut Cache, force: bool) -> Result<(), Error> {
        let fresh = cache
            .listed_at
            .is_some_and(|at| at.elapsed() < self.config.relist_after);
        if force || !fresh {
            cache.checks = self
                .api
                .list()
                .await
                .map_err(|source| Error::ListHealthChecks { source })?;
            cache.listed_at = Some(Instant::now());
            let listed: HashSet<&str> = cache.checks.iter().map(|c| c.id.as_str()).collect();
            cache
                .created_at
                .retain(|id, _| listed.contains(id.as_str()));
        }
        Ok(())
    }

    async fn sync_locked(
        &self,
        cache: &mut Cache,
        owner: &str,
        resource: &str,
        targets: &BTreeMap<String, CheckConfig>,
    ) -> Result<SyncOutcome, Error> {
        self.refresh(cache, false).await?;
        let desired: Vec<DesiredCheck> = targets
            .iter()
            .map(|(target, config)| DesiredCheck {
                owner: owner.to_owned(),
                resource: resource.to_owned(),
                target: target.clone(),
                config: config.clone(),
            })
            .collect();
        let actions = plan::plan(
            &desired,
            &cache.checks,
            owner,
            Scope::Resource(resource),
            self.config.quota,
        );

        let mut outcome = SyncOutcome::default();
        let mut refused: Vec<String> = Vec::new();
        let mut planned_refusal = None;
        let mut route53_refused = false;
        for action in actions {
            match action {
                Action::Keep { id, target } => {
                    outcome.ids.insert(target, id);
                }
                Action::Update { id, version, check } => {
                    let version =
                        self.api
                            .update(&id, version, &check.config)
                            .await
                            .map_err(|source| Error::UpdateHealthCheck {
                                id: id.clone(),
                                source,
                            })?;
                    info!(%id, resource, target = %check.target, "updated Route 53 health check");
                    if let Some(cached) = cache.checks.iter_mut().find(|c| c.id == id) {
                        cached.version = version;
                        cached.config = Some(check.config.clone());
                        cached.drifted = false;
                    }
                    outcome.updated += 1;
                    outcome.ids.insert(check.target, id);
                }
                Action::Create { check } if route53_refused => refused.push(check.target),
                Action::Create { check } => match self.create(&check).await {
                    Ok(created) => {
                        cache.created_at.insert(created.id.clone(), Instant::now());
                        outcome.ids.insert(check.target.clone(), created.id.clone());
                        cache.checks.push(created);
                        outcome.created += 1;
                    }
                    Err(Error::CreateHealthCheck {
                        target,
                        source: ApiError::TooManyHealthChecks,
                    }) => {
                        // Our count was low (a lower limit than configured, or checks made
                        // since the list): refuse the rest and count again next time.
                        route53_refused = true;
                        cache.listed_at = None;
                        refused.push(target);
                    }
                    Err(e) => return Err(e),
                },
                Action::Refuse { target, why } => {
                    planned_refusal = Some(why);
                    refused.push(target);
                }
                Action::Delete { .. } => outcome.stale += 1,
            }
        }
        if !refused.is_empty() {
            let mut message = format!("no Route 53 health check for {}: ", refused.join(", "));
            match planned_refusal {
                Some(why) if !route53_refused => {
                    let _ = write!(
                        message,
                        "the account holds {} health checks and its quota is {}",
                        why.in_use, why.quota
                    );
                }
                _ => message.push_str("Route 53 answered TooManyHealthChecks"),
            }
            outcome.quota_exhausted = Some(message);
        }
        Ok(outcome)
    }

    /// Creates and tags one check. A check whose tagging fails is deleted again: untagged, no
    /// one would ever find it.
    async fn create(&self, check: &DesiredCheck) -> Result<ExistingCheck, Error> {
        let reference = caller_reference(check);
        let created = self
            .api
            .create(&reference, &check.config)
            .await
            .map_err(|source| Error::CreateHealthCheck {
                target: check.target.clone(),
                source,
            })?;
        let tags = check.tags();
        if let Err(source) = self.api.tag(&created.id, &tags).await {
            if let Err(e) = self.api.delete(&created.id).await {
                error!(id = %created.id, error = %e, "an untagged health check is left behind: delete it by hand");
            }
            return Err(Error::TagHealthCheck {
                id: created.id,
                source,
            });
        }
        info!(id = %created.id, resource = %check.resource, target = %check.target, "created Route 53 health check");
        Ok(ExistingCheck {
            id: created.id,
            caller_reference: reference,
            version: created.version,
            config: Some(check.config.clone()),
            drifted: false,
            tags: Tags::from_pairs(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        })
    }

    async fn delete_all(
        &self,
        cache: &mut Cache,
        actions: Vec<Action>,
        spare: Option<&HashSet<String>>,
    ) -> Result<usize, Error> {
        let mut deleted = 0;
        for action in actions {
            let Action::Delete {
                id,
                resource,
                target,
            } = action
            else {
                continue;
            };
            if spare.is_some_and(|spare| spare.contains(&id)) {
                continue;
            }
            match self.api.delete(&id).await {
                Ok(()) | Err(ApiError::NoSuchHealthCheck) => {}
                Err(source) => return Err(Error::DeleteHealthCheck { id, source }),
            }
            info!(%id, ?resource, ?target, "deleted Route 53 health check");
            cache.checks.retain(|c| c.id != id);
            cache.created_at.remove(&id);
            deleted += 1;
        }
        Ok(deleted)
    }
}

/// A CallerReference never used before (Route 53 refuses one used by a deleted check too):
/// a hash of owner, resource and target, the time and a counter. The SDK's retries of one
/// create send the same reference, so a retried create after a lost answer returns the same
/// check instead of a second one.
fn caller_reference(check: &DesiredCheck) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let key = format!("{}\0{}\0{}", check.owner, check.resource, check.target);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("gi-{:016x}-{millis:x}-{n:x}", plan::fnv1a(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use futures::FutureExt as _;
    use futures::future::BoxFuture;

    use super::*;
    use crate::aws::route53_health::api::Created;
    use crate::aws::route53_health::plan::{
        Endpoint, EndpointCheck, Protocol, RequestInterval, TAG_OWNER, TAG_RESOURCE, TAG_TARGET,
    };

    /// An in-memory account.
    #[derive(Debug, Default)]
    struct Fake {
        state: StdMutex<FakeState>,
    }

    #[derive(Debug)]
    struct FakeCheck {
        config: CheckConfig,
        version: i64,
        tags: Vec<(String, String)>,
    }

    #[derive(Debug, Default)]
    struct FakeState {
        checks: BTreeMap<String, FakeCheck>,
        next: u32,
        lists: usize,
        fail_tagging: bool,
        limit: Option<usize>,
    }

    impl Fake {
        fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
            self.state.lock().unwrap()
        }
    }

    impl HealthCheckApi for Fake {
        fn list(&self) -> BoxFuture<'_, Result<Vec<ExistingCheck>, ApiError>> {
            let mut state = self.state();
            state.lists += 1;
            let checks = state
                .checks
                .iter()
                .map(|(id, check)| ExistingCheck {
                    id: id.clone(),
                    caller_reference: String::new(),
                    version: check.version,
                    config: Some(check.config.clone()),
                    drifted: false,
                    tags: Tags::from_pairs(
                        check.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    ),
                })
                .collect();
            async move { Ok(checks) }.boxed()
        }

        fn create<'a>(
            &'a self,
            _caller_reference: &'a str,
            config: &'a CheckConfig,
        ) -> BoxFuture<'a, Result<Created, ApiError>> {
            let mut state = self.state();
            let result = if state.limit.is_some_and(|l| state.checks.len() >= l) {
                Err(ApiError::TooManyHealthChecks)
            } else {
                state.next += 1;
                let id = format!("hc{}", state.next);
                state.checks.insert(
                    id.clone(),
                    FakeCheck {
                        config: config.clone(),
                        version: 1,
                        tags: Vec::new(),
                    },
                );
                Ok(Created { id, version: 1 })
            };
            async move { result }.boxed()
        }

        fn tag<'a>(
            &'a self,
            id: &'a str,
            tags: &'a [(String, String)],
        ) -> BoxFuture<'a, Result<(), ApiError>> {
            let mut state = self.state();
            let result = if state.fail_tagging {
                Err(ApiError::Failed {
                    message: "boom".into(),
                })
            } else if let Some(check) = state.checks.get_mut(id) {
                check.tags.extend(tags.iter().cloned());
                Ok(())
            } else {
                Err(ApiError::NoSuchHealthCheck)
            };
            async move { result }.boxed()
        }

        fn update<'a>(
            &'a self,
            id: &'a str,
            version: i64,
            config: &'a CheckConfig,
        ) -> BoxFuture<'a, Result<i64, ApiError>> {
            let mut state = self.state();
            let result = match state.checks.get_mut(id) {
                Some(check) if check.version == version => {
                    check.config = config.clone();
                    check.version += 1;
                    Ok(check.version)
                }
                Some(_) => Err(ApiError::VersionMismatch),
                None => Err(ApiError::NoSuchHealthCheck),
            };
            async move { result }.boxed()
        }

        fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), ApiError>> {
            let removed = self.state().checks.remove(id);
            async move { removed.map(|_| ()).ok_or(ApiError::NoSuchHealthCheck) }.boxed()
        }
    }

    fn tcp(port: u16) -> CheckConfig {
        CheckConfig::Endpoint(EndpointCheck {
            protocol: Protocol::Tcp,
            endpoint: Endpoint::Ip {
                ip: "192.0.2.1".parse().unwrap(),
                host: None,
            },
            port,
            resource_path: None,
            request_interval: RequestInterval::Standard,
            failure_threshold: 3,
        })
    }

    fn targets(list: &[(&str, CheckConfig)]) -> BTreeMap<String, CheckConfig> {
        list.iter()
            .map(|(t, c)| ((*t).to_owned(), c.clone()))
            .collect()
    }

    fn registry(fake: &Arc<Fake>, quota: usize) -> HealthChecks {
        HealthChecks::new(
            fake.clone(),
            Config {
                quota,
                ..Config::default()
            },
        )
    }

    #[tokio::test]
    async fn released_checks_are_never_touched_again() {
        let fake = Arc::new(Fake::default());
        let hc = registry(&fake, 200);
        let out = hc
            .sync("me", "ns/app", &targets(&[("a", tcp(80))]))
            .await
            .unwrap();
        assert_eq!(hc.release("me", "ns/app").await.unwrap(), 1);
        // Neither a prune of the (deleted) resource nor garbage collection deletes it.
        assert_eq!(hc.prune("me", "ns/app", &BTreeMap::new()).await.unwrap(), 0);
        // (A registry that did not create it: no grace period applies.)
        let restarted = registry(&fake, 200);
        assert_eq!(
            restarted
                .collect_garbage("me", &HashSet::new())
                .await
                .unwrap(),
            0
        );
        let state = fake.state();
        let tags = Tags::from_pairs(
            state.checks[&out.ids["a"]]
                .tags
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        assert_eq!(tags.owner.as_deref(), Some("me/retained"));
    }

    #[tokio::test]
    async fn create_update_and_prune() {
        let fake = Arc::new(Fake::default());
        let hc = registry(&fake, 200);
        let out = hc
            .sync("me", "ns/app", &targets(&[("a", tcp(80)), ("b", tcp(81))]))
            .await
            .unwrap();
        assert_eq!((out.created, out.updated, out.stale), (2, 0, 0));
        let a = out.ids["a"].clone();
        {
            let state = fake.state();
            let tags = &state.checks[&a].tags;
            assert!(tags.contains(&(TAG_OWNER.into(), "me".into())));
            assert!(tags.contains(&(TAG_RESOURCE.into(), "ns/app".into())));
            assert!(tags.contains(&(TAG_TARGET.into(), "a".into())));
        }

        // Unchanged: nothing written, nothing listed again.
        let again = hc
            .sync("me", "ns/app", &targets(&[("a", tcp(80)), ("b", tcp(81))]))
            .await
            .unwrap();
        assert_eq!(again.ids, out.ids);
        assert_eq!((again.created, again.updated), (0, 0));
        assert_eq!(fake.state().lists, 1);

        // A port change is an update of the same check; dropping b makes it stale.
        let changed = hc
            .sync("me", "ns/app", &targets(&[("a", tcp(8080))]))
            .await
            .unwrap();
        assert_eq!((changed.created, changed.updated, changed.stale), (0, 1, 1));
        assert_eq!(changed.ids["a"], a);
        assert_eq!(fake.state().checks[&a].version, 2);
        assert_eq!(hc.prune("me", "ns/app", &changed.ids).await.unwrap(), 1);
        assert_eq!(fake.state().checks.len(), 1);

        // Deleting the resource: prune with nothing to keep.
        assert_eq!(hc.prune("me", "ns/app", &BTreeMap::new()).await.unwrap(), 1);
        assert!(fake.state().checks.is_empty());
    }

    #[tokio::test]
    async fn a_protocol_change_replaces_the_check_and_prune_deletes_the_old_one() {
        let fake = Arc::new(Fake::default());
        let hc = registry(&fake, 200);
        let before = hc
            .sync("me", "ns/app", &targets(&[("a", tcp(80))]))
            .await
            .unwrap();
        let mut http = tcp(80);
        if let CheckConfig::Endpoint(check) = &mut http {
            check.protocol = Protocol::Http;
        }
        let after = hc
            .sync("me", "ns/app", &targets(&[("a", http)]))
            .await
            .unwrap();
        assert_eq!((after.created, after.updated, after.stale), (1, 0, 1));
        assert_ne!(after.ids["a"], before.ids["a"]);
        // Both exist until the records name the new one.
        assert_eq!(fake.state().checks.len(), 2);
        assert_eq!(hc.prune("me", "ns/app", &after.ids).await.unwrap(), 1);
        let state = fake.state();
        assert_eq!(state.checks.keys().collect::<Vec<_>>(), [&after.ids["a"]]);
    }

    #[tokio::test]
    async fn a_check_that_cannot_be_tagged_is_deleted() {
        let fake = Arc::new(Fake::default());
        fake.state().fail_tagging = true;
        let hc = registry(&fake, 200);
        let err = hc
            .sync("me", "ns/app", &targets(&[("a", tcp(80))]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TagHealthCheck { .. }), "{err}");
        assert!(fake.state().checks.is_empty());
    }

    #[tokio::test]
    async fn the_quota_counts_every_check_of_the_account() {
        let fake = Arc::new(Fake::default());
        let other = registry(&fake, 200);
        other
            .sync("other", "ns/x", &targets(&[("a", tcp(1)), ("b", tcp(2))]))
            .await
            .unwrap();
        let hc = registry(&fake, 3);
        let out = hc
            .sync("me", "ns/app", &targets(&[("a", tcp(80)), ("b", tcp(81))]))
            .await
            .unwrap();
        assert_eq!(out.created, 1);
        assert_eq!(out.ids.keys().collect::<Vec<_>>(), ["a"]);
        let message = out.quota_exhausted.unwrap();
        assert!(
            message.contains("no Route 53 health check for b"),
            "{message}"
        );
        assert!(message.contains("quota is 3"), "{message}");
    }

    #[tokio::test]
    async fn too_many_health_checks_is_reported_not_raised() {
        let fake = Arc::new(Fake::default());
        fake.state().limit = Some(1);
        let hc = registry(&fake, 200);
        let out = hc
            .sync("me", "ns/app", &targets(&[("a", tcp(80)), ("b", tcp(81))]))
            .await
            .unwrap();
        assert_eq!(out.created, 1);
        assert!(
            out.quota_exhausted
                .as_deref()
                .is_some_and(|m| m.contains("TooManyHealthChecks")),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn garbage_collection_spares_young_checks_and_foreign_ones() {
        let fake = Arc::new(Fake::default());
        let hc = registry(&fake, 200);
        registry(&fake, 200)
            .sync("me", "ns/gone", &targets(&[("a", tcp(80))]))
            .await
            .unwrap();
        registry(&fake, 200)
            .sync("other", "ns/gone", &targets(&[("a", tcp(80))]))
            .await
            .unwrap();
        hc.sync("me", "ns/new", &targets(&[("a", tcp(80))]))
            .await
            .unwrap();
        // ns/new is not in the (older) live set, but its check was just made here.
        let deleted = hc.collect_garbage("me", &HashSet::new()).await.unwrap();
        assert_eq!(deleted, 1);
        assert_eq!(fake.state().checks.len(), 2);
    }

    #[tokio::test]
    async fn an_error_drops_the_cached_list() {
        let fake = Arc::new(Fake::default());
        let hc = registry(&fake, 200);
        hc.sync("me", "ns/app", &targets(&[("a", tcp(80))]))
            .await
            .unwrap();
        fake.state().fail_tagging = true;
        hc.sync("me", "ns/app", &targets(&[("a", tcp(80)), ("b", tcp(81))]))
            .await
            .unwrap_err();
        fake.state().fail_tagging = false;
        hc.sync("me", "ns/app", &targets(&[("a", tcp(80))]))
            .await
            .unwrap();
        assert_eq!(fake.state().lists, 2);
    }
}
