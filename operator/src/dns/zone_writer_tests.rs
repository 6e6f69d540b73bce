use std::sync::Mutex;

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::batch::split_by_limits;
use super::*;
use crate::dns::provider::Submitted;
use crate::dns::records::{Change, Owner, Rrset};
use crate::model::dns::{ProviderKind, RecordRouting, RecordType};

/// An in-memory zone that refuses any change whose name contains "bad". With `pending_polls`,
/// every change gets an id and is in sync only after that many GetChange-like polls (Route
/// 53's pace); with `missing`, the zone does not exist.
#[derive(Default)]
struct FakeZone {
    zone: Mutex<Zone>,
    batches: Mutex<Vec<usize>>,
    lists: Mutex<usize>,
    pending_polls: usize,
    polls: Mutex<std::collections::HashMap<String, usize>>,
    missing: bool,
}

impl ZoneProvider for FakeZone {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Route53
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<Rrset>, ProviderError>> {
        *self.lists.lock().unwrap() += 1;
        let all = self.zone.lock().unwrap().values().cloned().collect();
        let missing = self.missing;
        async move {
            if missing {
                return Err(ProviderError::ZoneNotFound {
                    message: "no such zone".into(),
                });
            }
            Ok(all)
        }
        .boxed()
    }
    fn submit<'a>(
        &'a self,
        changes: &'a [Change],
    ) -> BoxFuture<'a, Result<Submitted, ProviderError>> {
        async move {
            let n = {
                let mut batches = self.batches.lock().unwrap();
                batches.push(changes.len());
                batches.len()
            };
            if changes.iter().any(|c| c.rrset().name.contains("bad")) {
                return Err(ProviderError::Refused {
                    message: "InvalidChangeBatch".into(),
                });
            }
            records::apply_to(&mut self.zone.lock().unwrap(), changes);
            if self.pending_polls == 0 {
                return Ok(Submitted {
                    change_id: None,
                    applied: Applied {
                        in_sync_at: Some(jiff::Timestamp::now()),
                        answer_seen_at: None,
                    },
                });
            }
            Ok(Submitted {
                change_id: Some(format!("C{n}")),
                applied: Applied::default(),
            })
        }
        .boxed()
    }
    fn in_sync<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, ProviderError>> {
        let mut polls = self.polls.lock().unwrap();
        let n = polls.entry(id.to_owned()).or_default();
        *n += 1;
        let done = *n > self.pending_polls;
        async move { Ok(done) }.boxed()
    }
}

fn claim(resource: &str, host: &str) -> Claim {
    Claim {
        owner: Owner {
            owner: "hub".into(),
            resource: resource.into(),
        },
        names: vec![host.into()],
        desired: vec![Rrset {
            name: host.into(),
            rtype: RecordType::A,
            routing: RecordRouting::Simple,
            ttl: Some(30),
            values: vec!["192.0.2.1".into()],
            alias: None,
            health_check_id: None,
        }],
        shared: Vec::new(),
        keep_health_checks: false,
    }
}

#[tokio::test]
async fn concurrent_claims_share_one_batch_and_a_bad_one_is_isolated() {
    let zone = Arc::new(FakeZone::default());
    let writer = ZoneWriter::spawn(zone.clone(), Config::default());
    let mut tasks = Vec::new();
    for i in 0..50 {
        let writer = writer.clone();
        let host = if i == 7 {
            "bad.example.com".to_owned()
        } else {
            format!("h{i}.example.com")
        };
        tasks.push(tokio::spawn(async move {
            writer.submit(claim(&format!("ns/gi{i}"), &host)).await
        }));
    }
    let mut refused = 0;
    for t in tasks {
        let outcome = t.await.unwrap().unwrap();
        refused += outcome.refused.len();
    }
    assert!(refused >= 1, "the bad record is reported");
    // 49 good claims x (registry + A) are in the zone; the bad name has at most its registry.
    let names: Vec<String> = zone
        .zone
        .lock()
        .unwrap()
        .values()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(names.iter().filter(|n| n.starts_with('h')).count(), 49);
    assert!(!names.iter().any(|n| n == "bad.example.com"));
    let batches = zone.batches.lock().unwrap().clone();
    assert!(
        batches[0] == 100,
        "one batch for everything first: {batches:?}"
    );
    // The bad claim has two refused changes (its registry TXT and its A record); isolating
    // each takes about 2 * log2(100) batches, never one batch per change.
    assert!(batches.len() <= 1 + 2 * 2 * 7, "{batches:?}");

    // Nothing changed: a second round writes nothing.
    let before = zone.batches.lock().unwrap().len();
    let outcome = writer
        .submit(claim("ns/gi1", "h1.example.com"))
        .await
        .unwrap();
    assert_eq!(outcome.changes, 0);
    assert_eq!(zone.batches.lock().unwrap().len(), before);
    // The refusal in the first round made the writer list again once; from then on its
    // cache serves.
    let lists = || {
        writer
            .stats
            .lists
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(lists(), 2, "listed at start and once after the refusal");
    let outcome = writer
        .submit(claim("ns/gi2", "h2.example.com"))
        .await
        .unwrap();
    assert_eq!(outcome.changes, 0);
    assert_eq!(lists(), 2, "no further listing");
}

#[test]
fn batches_respect_the_value_limit_with_upserts_counting_twice() {
    let r = claim("ns/a", "x.example.com").desired[0].clone();
    let changes: Vec<(usize, Change)> = (0..1500)
        .map(|i| {
            (
                i,
                Change::Upsert {
                    old: r.clone(),
                    new: r.clone(),
                },
            )
        })
        .collect();
    let batches = split_by_limits(changes, &Config::default(), (usize::MAX, &|_| 0));
    assert_eq!(batches.len(), 3);
    assert!(
        batches
            .iter()
            .all(|b| b.iter().map(|(_, c)| c.batch_values()).sum::<usize>() <= 1000)
    );
}

#[tokio::test]
async fn the_next_batch_goes_out_while_the_first_is_still_pending() {
    let zone = Arc::new(FakeZone {
        pending_polls: 3,
        ..FakeZone::default()
    });
    let (told, mut notified) = tokio::sync::mpsc::unbounded_channel();
    let writer = ZoneWriter::spawn(
        zone.clone(),
        Config {
            notify: Some(Notify(Arc::new(move |owner: &str| {
                let _ = told.send(owner.to_owned());
            }))),
            poll_first: Duration::from_millis(50),
            poll_max: Duration::from_millis(100),
            ..Config::default()
        },
    );
    let first = writer
        .submit(claim("ns/one", "one.example.com"))
        .await
        .unwrap();
    // Accepted, not in sync: the reply says so and does not wait for it.
    let sync = first.sync.clone().unwrap();
    assert_eq!(sync.change_id.as_deref(), Some("C1"));
    assert!(sync.in_sync_at.is_none() && !first.in_sync());
    let second = writer
        .submit(claim("ns/two", "two.example.com"))
        .await
        .unwrap();
    assert_eq!(second.sync.unwrap().change_id.as_deref(), Some("C2"));
    assert_eq!(zone.batches.lock().unwrap().len(), 2, "both sent");
    // Each turns in sync in the background, and its owner is named.
    let mut owners = vec![
        tokio::time::timeout(Duration::from_secs(5), notified.recv())
            .await
            .unwrap()
            .unwrap(),
        tokio::time::timeout(Duration::from_secs(5), notified.recv())
            .await
            .unwrap()
            .unwrap(),
    ];
    owners.sort();
    assert_eq!(owners, vec!["ns/one", "ns/two"]);
    let again = writer
        .submit(claim("ns/one", "one.example.com"))
        .await
        .unwrap();
    assert_eq!(again.changes, 0);
    let sync = again.sync.unwrap();
    assert!(sync.in_sync_at.is_some(), "{sync:?}");
    assert_eq!(sync.submitted_at, first.timing.unwrap().submitted_at);
    assert!(
        writer
            .stats
            .polls
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 8
    );
}

#[tokio::test]
async fn a_replica_without_the_lease_sends_nothing() {
    let zone = Arc::new(FakeZone::default());
    let leadership = crate::leader::Leadership::held_until_stepped_down();
    let writer = ZoneWriter::spawn(
        zone.clone(),
        Config {
            fence: leadership.clone(),
            ..Config::default()
        },
    );
    writer.submit(claim("ns/a", "a.example.com")).await.unwrap();
    leadership.step_down();
    let refused = writer.submit(claim("ns/b", "b.example.com")).await;
    assert_eq!(refused, Err(Error::NotLeader));
    assert_eq!(zone.batches.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_missing_zone_is_not_asked_again_at_full_speed() {
    let zone = Arc::new(FakeZone {
        missing: true,
        ..FakeZone::default()
    });
    let writer = ZoneWriter::spawn(zone.clone(), Config::default());
    for i in 0..5 {
        let e = writer
            .submit(claim(&format!("ns/{i}"), "a.example.com"))
            .await
            .unwrap_err();
        assert!(
            matches!(e.provider(), Some(ProviderError::ZoneNotFound { .. })),
            "{e:?}"
        );
    }
    assert_eq!(
        *zone.lists.lock().unwrap(),
        1,
        "listed once, then remembered"
    );
}

#[tokio::test]
async fn counts_say_how_many_record_sets_a_hub_owns() {
    let zone = Arc::new(FakeZone::default());
    let writer = ZoneWriter::spawn(zone.clone(), Config::default());
    writer.submit(claim("ns/a", "a.example.com")).await.unwrap();
    let foreign = Rrset {
        name: "x.example.com".into(),
        rtype: RecordType::Other(15),
        routing: RecordRouting::Simple,
        ttl: Some(300),
        values: vec!["10 mail.example.com.".into()],
        alias: None,
        health_check_id: None,
    };
    zone.zone.lock().unwrap().insert(foreign.key(), foreign);
    let count = writer.count("hub").await.unwrap();
    // The registry and the A record; the foreign MX is not in the writer's copy yet.
    assert_eq!(count.owned, 2);
    assert_eq!(writer.count("other-hub").await.unwrap().owned, 0);
}

fn with_value(mut claim: Claim, value: &str) -> Claim {
    claim.desired[0].values = vec![value.into()];
    claim
}

fn value_of(zone: &FakeZone, host: &str) -> Vec<String> {
    zone.zone
        .lock()
        .unwrap()
        .values()
        .find(|r| r.name == host && r.rtype == RecordType::A)
        .map(|r| r.values.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_wave_of_claims_goes_out_in_one_round_whatever_the_window() {
    let zone = Arc::new(FakeZone::default());
    // A window far shorter than the time the claims take to arrive one by one: a wave still
    // goes out together, as one request.
    let writer = ZoneWriter::spawn(
        zone.clone(),
        Config {
            window: Duration::from_millis(1),
            max_wait: Duration::from_millis(1),
            ..Config::default()
        },
    );
    let claims: Vec<(Claim, u64)> = (0..400)
        .map(|i| (claim(&format!("ns/gi{i}"), &format!("h{i}.example.com")), 1))
        .collect();
    let results = writer.submit_all(claims).await;
    assert_eq!(results.len(), 400);
    assert!(results.iter().all(|r| r.as_ref().unwrap().changes == 2));
    // 400 x (registry + A) = 800 values: within one Route 53 batch.
    assert_eq!(zone.batches.lock().unwrap().clone(), vec![800]);
}

#[tokio::test]
async fn a_claim_observed_before_one_already_written_is_superseded() {
    let zone = Arc::new(FakeZone::default());
    let writer = ZoneWriter::spawn(zone.clone(), Config::default());
    let host = "a.example.com";
    let newer = with_value(claim("ns/a", host), "192.0.2.2");
    let outcome = writer.submit_observed(newer, 20).await.unwrap();
    assert_eq!(outcome.changes, 2);
    // A reconcile that read the health before the wave: its claim comes later but changes
    // nothing, and says where the owner's latest change stands.
    let older = with_value(claim("ns/a", host), "192.0.2.1");
    let outcome = writer.submit_observed(older, 10).await.unwrap();
    assert_eq!(outcome.changes, 0);
    assert!(
        outcome.sync.is_some(),
        "the owner's latest change: {outcome:?}"
    );
    assert_eq!(value_of(&zone, host), vec!["192.0.2.2".to_owned()]);
    // Another owner's older observation is not compared with this one's.
    let other = claim("ns/b", "b.example.com");
    assert_eq!(writer.submit_observed(other, 5).await.unwrap().changes, 2);
    // A newer observation is written, and so is an unordered claim.
    let newest = with_value(claim("ns/a", host), "192.0.2.3");
    assert_eq!(writer.submit_observed(newest, 30).await.unwrap().changes, 1);
    assert_eq!(value_of(&zone, host), vec!["192.0.2.3".to_owned()]);
    let unordered = with_value(claim("ns/a", host), "192.0.2.4");
    assert_eq!(writer.submit(unordered).await.unwrap().changes, 1);
    assert_eq!(value_of(&zone, host), vec!["192.0.2.4".to_owned()]);
}

#[tokio::test]
async fn within_one_round_the_newest_observation_of_an_owner_wins() {
    let zone = Arc::new(FakeZone::default());
    let writer = ZoneWriter::spawn(zone.clone(), Config::default());
    let host = "a.example.com";
    // The newer observation arrives first in the same request: the older one is not applied.
    let results = writer
        .submit_all(vec![
            (with_value(claim("ns/a", host), "192.0.2.9"), 9),
            (with_value(claim("ns/a", host), "192.0.2.1"), 1),
        ])
        .await;
    assert_eq!(results.len(), 2);
    assert_eq!(value_of(&zone, host), vec!["192.0.2.9".to_owned()]);
    assert_eq!(zone.batches.lock().unwrap().len(), 1);
}
