//! The registry of one account's health checks: a cached list, the plan applied, one writer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{error, info};

use super::api::{ApiError, HealthCheckApi, Route53HealthChecks};
use super::plan::{self, Action, CheckConfig, DesiredCheck, ExistingCheck, Scope, Tags};
use crate::aws::Aws;
use crate::model::ownership::{self, TAG_OWNER, tag_value};

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
                        && c.tags.global_ingress.as_deref() == Some(resource)
                })
                .map(|c| c.id.clone())
                .collect();
            let retained = tag_value(&format!("{owner}/retained"));
            for id in &ours {
                self.api
                    .tag(id, &[(TAG_OWNER.to_owned(), retained.clone())])
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
                Action::Create { check } => match self.create(cache, &check).await {
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

    /// Creates and tags one check (CreateHealthCheck takes no tags: tagging is a second call).
    ///
    /// The crash window between the two calls is closed by the CallerReference, derived from
    /// what the check is for ([`caller_reference`]): a check created but never tagged (the
    /// process died in between) is found again by its reference in the listed account and
    /// adopted — tagged — instead of a second one being made; and a create retried after a lost
    /// answer sends the same reference, for which Route 53 returns the check it already made. A
    /// check whose tagging fails is deleted again: untagged, nothing else would find it.
    async fn create(&self, cache: &Cache, check: &DesiredCheck) -> Result<ExistingCheck, Error> {
        let stem = reference_stem(check);
        let adoptable = cache.checks.iter().find(|c| {
            c.tags.owner.is_none()
                && c.caller_reference.starts_with(&stem)
                && c.config.as_ref() == Some(&check.config)
        });
        let (created, reference) = match adoptable {
            Some(c) => {
                info!(id = %c.id, resource = %check.resource, target = %check.target, "adopting an untagged health check created before a restart");
                (
                    super::api::Created {
                        id: c.id.clone(),
                        version: c.version,
                    },
                    c.caller_reference.clone(),
                )
            }
            None => self.create_fresh(cache, check, &stem).await?,
        };
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

    /// CreateHealthCheck with the first reference `<stem><n>` not taken: a reference of a
    /// deleted check (the same target and settings before) is refused by Route 53 for days.
    async fn create_fresh(
        &self,
        cache: &Cache,
        check: &DesiredCheck,
        stem: &str,
    ) -> Result<(super::api::Created, String), Error> {
        let used: HashSet<&str> = cache
            .checks
            .iter()
            .map(|c| c.caller_reference.as_str())
            .collect();
        let mut refused = 0;
        for n in 0..MAX_REFERENCES {
            let reference = format!("{stem}{n}");
            if used.contains(reference.as_str()) {
                continue;
            }
            match self.api.create(&reference, &check.config).await {
                Ok(created) => return Ok((created, reference)),
                Err(ApiError::ReferenceTaken) => refused += 1,
                Err(source) => {
                    return Err(Error::CreateHealthCheck {
                        target: check.target.clone(),
                        source,
                    });
                }
            }
        }
        Err(Error::CreateHealthCheck {
            target: check.target.clone(),
            source: ApiError::Failed {
                message: format!(
                    "every caller reference {stem}0..{MAX_REFERENCES} is taken ({refused} refused)"
                ),
            },
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

/// References tried per (check, settings) before giving up: each one used by a deleted check
/// stays refused for days, so a target whose check is deleted and made again with the same
/// settings moves on to the next.
const MAX_REFERENCES: u32 = 16;

/// The CallerReference of a check without its counter: `gi-<hash>-`, the hash of the owner,
/// GlobalIngress, target and settings. The same check always gets the same references, which is
/// what lets a restarted operator find the one it made before it could tag it.
fn reference_stem(check: &DesiredCheck) -> String {
    let key = format!(
        "{}\0{}\0{}\0{:?}",
        check.owner,
        check.resource,
        check.target,
        check.config.normalized()
    );
    format!("gi-{:016x}-", ownership::hash64(key.as_bytes()))
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
