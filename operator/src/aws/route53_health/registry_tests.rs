use std::sync::Mutex as StdMutex;

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::*;
use crate::aws::route53_health::api::Created;
use crate::aws::route53_health::plan::{Endpoint, EndpointCheck, Protocol, RequestInterval};
use crate::model::ownership::{TAG_GLOBALINGRESS, TAG_TARGET};

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
    reference: String,
}

#[derive(Debug, Default)]
struct FakeState {
    checks: BTreeMap<String, FakeCheck>,
    next: u32,
    lists: usize,
    fail_tagging: bool,
    limit: Option<usize>,
    /// Every CallerReference ever used (Route 53 refuses one of a deleted check for days).
    references: std::collections::HashSet<String>,
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
                caller_reference: check.reference.clone(),
                version: check.version,
                config: Some(check.config.clone()),
                drifted: false,
                tags: Tags::from_pairs(check.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            })
            .collect();
        async move { Ok(checks) }.boxed()
    }

    fn create<'a>(
        &'a self,
        caller_reference: &'a str,
        config: &'a CheckConfig,
    ) -> BoxFuture<'a, Result<Created, ApiError>> {
        let mut state = self.state();
        let existing = state
            .checks
            .iter()
            .find(|(_, c)| c.reference == caller_reference)
            .map(|(id, c)| (id.clone(), c.version, c.config == *config));
        let result = if let Some((id, version, same)) = existing {
            // Route 53: the same reference and settings return the existing check.
            if same {
                Ok(Created { id, version })
            } else {
                Err(ApiError::ReferenceTaken)
            }
        } else if state.references.contains(caller_reference) {
            Err(ApiError::ReferenceTaken)
        } else if state.limit.is_some_and(|l| state.checks.len() >= l) {
            Err(ApiError::TooManyHealthChecks)
        } else {
            state.references.insert(caller_reference.to_owned());
            state.next += 1;
            let id = format!("hc{}", state.next);
            state.checks.insert(
                id.clone(),
                FakeCheck {
                    config: config.clone(),
                    version: 1,
                    tags: Vec::new(),
                    reference: caller_reference.to_owned(),
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
        assert!(tags.contains(&(TAG_GLOBALINGRESS.into(), "ns/app".into())));
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

#[tokio::test]
async fn a_check_made_but_not_tagged_before_a_crash_is_adopted_not_duplicated() {
    let fake = Arc::new(Fake::default());
    let check = DesiredCheck {
        owner: "me".into(),
        resource: "ns/app".into(),
        target: "a".into(),
        config: tcp(80).normalized(),
    };
    // The process died between CreateHealthCheck and ChangeTagsForResource.
    let made = fake
        .create(&format!("{}0", reference_stem(&check)), &check.config)
        .await
        .unwrap();
    assert!(fake.state().checks[&made.id].tags.is_empty());
    // The restarted operator lists the account, finds it by its reference and tags it.
    let outcome = registry(&fake, 200)
        .sync("me", "ns/app", &targets(&[("a", tcp(80))]))
        .await
        .unwrap();
    assert_eq!(outcome.ids.get("a"), Some(&made.id));
    assert_eq!(fake.state().checks.len(), 1, "no second check");
    let tags = &fake.state().checks[&made.id].tags;
    assert!(tags.contains(&(TAG_GLOBALINGRESS.into(), "ns/app".into())));
}

#[tokio::test]
async fn a_check_made_again_after_its_deletion_takes_the_next_reference() {
    let fake = Arc::new(Fake::default());
    let checks = registry(&fake, 200);
    let wanted = targets(&[("a", tcp(80))]);
    let first = checks.sync("me", "ns/app", &wanted).await.unwrap();
    checks
        .prune("me", "ns/app", &BTreeMap::new())
        .await
        .unwrap();
    assert!(fake.state().checks.is_empty());
    // The same target and settings again: the first reference is refused (it belonged to the
    // deleted check), the next one is used.
    let second = checks.sync("me", "ns/app", &wanted).await.unwrap();
    assert_eq!(second.created, 1);
    assert_ne!(first.ids.get("a"), second.ids.get("a"));
    let reference = fake
        .state()
        .checks
        .values()
        .next()
        .unwrap()
        .reference
        .clone();
    assert!(reference.ends_with("-1"), "{reference}");
}
