//! One writer: the Lease holder writes, a follower takes over when the holder dies, and a holder
//! that cannot reach the hub stops writing at its renew deadline.

use std::time::{Duration, Instant};

use globalingress::api::GlobalIngress;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;

use crate::controller::{external_gi, knot_zone, ready};
use crate::support::operator::{Operator, Options, eventually};
use crate::support::{self, Cluster, env};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn one_leader_writes_and_a_follower_takes_over_within_the_lease_duration() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "leader").await;
    let zone = knot_zone(&client, &ns).await;
    let lease_args = [
        "--lease-duration",
        "6s",
        "--renew-deadline",
        "4s",
        "--retry-period",
        "1s",
    ];
    let options = Options {
        kubeconfig: &env().hub_kubeconfig,
        namespace: &ns,
        lease_name: "leader",
        extra: &lease_args,
    };
    let mut first = Operator::start(&options);
    first.wait_ready(WAIT).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let holder = || async {
        leases
            .get_opt("leader")
            .await
            .ok()??
            .spec?
            .holder_identity
            .filter(|h| !h.is_empty())
    };
    let first_holder = eventually("a lease holder", WAIT, holder).await;
    assert_eq!(first_holder, first.identity);
    let second = Operator::start(&options);
    second.wait_ready(WAIT).await;

    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    let host = format!("{}.example.test", support::unique_name("lead"));
    api.create(
        &PostParams::default(),
        &external_gi(&ns, "one", &zone, &host, "Delete"),
    )
    .await
    .unwrap();
    eventually("status from the leader", WAIT, || async {
        (ready(&api.get("one").await.ok()?)?.0 == "True").then_some(())
    })
    .await;
    // Let the follower reconcile too (resync is 5 s), then compare what each one wrote.
    eventually("the follower to skip a status write", WAIT, || async {
        let skipped = second.metric("globalingress_writes_skipped_not_leader_total{controller=\"globalingress\",write=\"status\"}").await;
        (skipped > 0.0).then_some(())
    })
    .await;
    assert_eq!(second.metric("globalingress_leader").await, 0.0);
    assert_eq!(first.metric("globalingress_leader").await, 1.0);
    assert!(
        first
            .metric("globalingress_writes_total{controller=\"globalingress\",write=\"status\"}")
            .await
            >= 1.0
    );
    assert_eq!(
        second
            .metric("globalingress_writes_total{controller=\"globalingress\",write=\"status\"}")
            .await,
        0.0,
        "the follower must not write status"
    );
    assert_eq!(holder().await.as_deref(), Some(first.identity.as_str()));

    // Kill the leader without a chance to release the Lease: the follower must wait it out.
    first.child.start_kill().unwrap();
    let _ = first.child.wait().await;
    let killed = Instant::now();
    let new_holder = eventually("takeover", Duration::from_secs(20), || async {
        holder().await.filter(|h| *h == second.identity)
    })
    .await;
    let takeover = killed.elapsed();
    eprintln!("leader killed -> follower holds the lease after {takeover:?} (lease duration 6s)");
    assert_eq!(new_holder, second.identity);
    assert!(
        takeover <= Duration::from_secs(6 + 3),
        "takeover took {takeover:?}"
    );

    // The new leader writes: a new object gets its status.
    api.create(
        &PostParams::default(),
        &external_gi(&ns, "two", &zone, &format!("two-{host}"), "Delete"),
    )
    .await
    .unwrap();
    eventually("status from the new leader", WAIT, || async {
        (ready(&api.get("two").await.ok()?)?.0 == "True").then_some(())
    })
    .await;
    assert!(
        second
            .metric("globalingress_writes_total{controller=\"globalingress\",write=\"status\"}")
            .await
            >= 1.0
    );
}
