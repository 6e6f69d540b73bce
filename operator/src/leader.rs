//! Leader election with a `coordination.k8s.io` Lease.
//!
//! Every replica watches and plans; only the holder of the Lease writes (AWS, DNS, status,
//! finalizers). The holder renews every `retry_period`; a replica takes the Lease over when its
//! `renewTime` is older than `lease_duration`. A holder that cannot renew for `renew_deadline`
//! (shorter than the lease duration) stops writing at once, before anyone else can take over, so
//! two writers never overlap. On shutdown the holder releases the Lease so a follower takes over
//! immediately instead of after the lease duration.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::sync::watch;
use tracing::{info, warn};

/// Lease settings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's name in `holderIdentity`.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// Whether this replica holds the Lease, readable anywhere without waiting.
#[derive(Debug, Clone)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
}

impl Leadership {
    /// A leadership that is always held (single replica, tests of the pipeline).
    pub fn always() -> Self {
        let (_tx, rx) = watch::channel(true);
        Self { rx }
    }

    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves each time leadership is gained.
    pub fn changes(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }
}

/// Runs the election until `stop` turns true; then releases the Lease if held.
pub fn spawn(
    api: Api<Lease>,
    config: LeaseConfig,
    mut stop: watch::Receiver<bool>,
) -> (Leadership, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let handle = tokio::spawn(async move {
        let mut last_renewed: Option<tokio::time::Instant> = None;
        loop {
            match try_acquire_or_renew(&api, &config).await {
                Ok(true) => {
                    last_renewed = Some(tokio::time::Instant::now());
                    if !*tx.borrow() {
                        info!(identity = %config.identity, lease = %config.name, "became leader");
                        let _ = tx.send(true);
                    }
                }
                Ok(false) => {
                    last_renewed = None;
                    if *tx.borrow() {
                        warn!(identity = %config.identity, "lost the lease to another replica");
                        let _ = tx.send(false);
                    }
                }
                Err(error) => {
                    warn!(%error, "lease update failed");
                    // Stop writing before the lease can expire for the others.
                    let expired = last_renewed.is_none_or(|t| t.elapsed() >= config.renew_deadline);
                    if *tx.borrow() && expired {
                        warn!("renew deadline passed: stepping down");
                        let _ = tx.send(false);
                    }
                }
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                () = tokio::time::sleep(config.retry_period) => {}
            }
        }
        if *tx.borrow() {
            let _ = tx.send(false);
            match release(&api, &config).await {
                Ok(()) => info!("released the lease"),
                Err(error) => warn!(%error, "could not release the lease"),
            }
        }
    });
    (Leadership { rx }, handle)
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// One round: `Ok(true)` when this replica holds the Lease afterwards.
async fn try_acquire_or_renew(api: &Api<Lease>, config: &LeaseConfig) -> Result<bool, kube::Error> {
    let duration_secs = i32::try_from(config.lease_duration.as_secs()).unwrap_or(15);
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(duration_secs),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            // Someone else created it first.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let held_by_me = spec.holder_identity.as_deref() == Some(config.identity.as_str());
    let holder_alive = spec
        .holder_identity
        .as_deref()
        .is_some_and(|h| !h.is_empty())
        && spec.renew_time.as_ref().is_some_and(|t| {
            let age = jiff::Timestamp::now().duration_since(t.0);
            let ttl = spec.lease_duration_seconds.unwrap_or(duration_secs);
            age < jiff::SignedDuration::from_secs(i64::from(ttl))
        });
    if !held_by_me && holder_alive {
        return Ok(false);
    }
    if !held_by_me {
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        spec.acquire_time = Some(now());
        spec.holder_identity = Some(config.identity.clone());
    }
    spec.renew_time = Some(now());
    spec.lease_duration_seconds = Some(duration_secs);
    // replace carries the resourceVersion: of two replicas racing for an expired lease, one wins
    // and the other gets a conflict.
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

async fn release(api: &Api<Lease>, config: &LeaseConfig) -> Result<(), kube::Error> {
    let mut lease = api.get(&config.name).await?;
    let Some(spec) = lease.spec.as_mut() else {
        return Ok(());
    };
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.renew_time = None;
    api.replace(&config.name, &PostParams::default(), &lease)
        .await
        .map(|_| ())
}
