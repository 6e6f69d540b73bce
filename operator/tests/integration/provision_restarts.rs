//! A crash at any moment of provisioning leaves nothing untracked: the operator is SIGKILLed
//! five times at random moments while 20 GlobalIngresses (two Provision targets each) are being
//! provisioned; at the end every target has exactly one load balancer, target group and listener
//! (counted by tags), nothing in the VPC is untagged, and deleting them all leaves nothing
//! behind.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;

use crate::load_balancers::{gi, provisioned};
use crate::support::network::{Setup, set_endpoints, setup};
use crate::support::operator::{Operator, Options, eventually};
use crate::support::{self, network};

const COUNT: usize = 20;

#[tokio::test]
async fn sigkill_during_provisioning_leaves_one_of_everything_and_no_orphans() {
    let Setup {
        spoke,
        ns,
        elb,
        vpc,
        spoke_name,
        app,
        zone,
        api,
        ..
    } = setup("lb-kill", "ClusterIP").await;
    set_endpoints(
        &spoke,
        &app,
        &[("10.0.6.10", true, false), ("10.0.6.11", true, false)],
    )
    .await;
    for i in 0..COUNT {
        let name = format!("svc-{i}");
        let mut eu = provisioned(&spoke_name, &app, json!({ "mode": "Provision" }));
        let mut us = eu.clone();
        us["name"] = json!("us");
        eu["loadBalancer"]["scheme"] = json!("Internal");
        us["loadBalancer"]["type"] = json!("ALB");
        let host = format!("{name}.{}", zone.domain);
        api.create(
            &PostParams::default(),
            &gi(&ns, &name, &zone.name, &host, json!([eu, us])),
        )
        .await
        .unwrap();
    }
    // A short Lease, so each new process leads soon after the last one died holding it.
    let start = || {
        Operator::start(&Options {
            kubeconfig: &support::env().operator_kubeconfig,
            namespace: &ns,
            lease_name: "globalingress-kill",
            extra: &[
                "--lease-duration",
                "2s",
                "--renew-deadline",
                "1500ms",
                "--retry-period",
                "200ms",
            ],
        })
    };
    for round in 0..5 {
        let mut op = start();
        eventually("this replica leads", Duration::from_secs(30), || async {
            (op.metric_opt("globalingress_leader").await? == 1.0).then_some(())
        })
        .await;
        // Somewhere in the middle of provisioning (the ELBv2 budget makes 40 load balancers
        // take tens of seconds).
        let wait = Duration::from_millis(fastrand::u64(200..3000));
        tokio::time::sleep(wait).await;
        op.child.start_kill().expect("SIGKILL");
        let _ = op.child.wait().await;
        let made = elb
            .describe_load_balancers()
            .page_size(400)
            .send()
            .await
            .unwrap()
            .load_balancers()
            .iter()
            .filter(|l| l.vpc_id() == Some(vpc.id.as_str()))
            .count();
        eprintln!("round {round}: killed after {wait:?} in the lead; {made} load balancers so far");
    }
    let op = start();
    let counts = eventually(
        "every GlobalIngress LoadBalancersReady",
        Duration::from_secs(180),
        || async {
            let all = api.list(&ListParams::default()).await.ok()?;
            let ready = all
                .items
                .iter()
                .filter(|g| {
                    g.status.as_ref().is_some_and(|s| {
                        globalingress::api::condition::find(&s.conditions, "LoadBalancersReady")
                            .is_some_and(|c| c.status == "True")
                    })
                })
                .count();
            (ready == COUNT).then_some(ready)
        },
    )
    .await;
    assert_eq!(counts, COUNT);
    for i in 0..COUNT {
        let owned = network::owned_by(&elb, &format!("{ns}/svc-{i}")).await;
        assert_eq!(
            owned.load_balancers.len(),
            2,
            "svc-{i}: {:?}",
            owned.load_balancers.keys()
        );
        assert_eq!(
            owned.target_groups.len(),
            2,
            "svc-{i}: {:?}",
            owned.target_groups.keys()
        );
        assert_eq!(owned.listeners.len(), 2, "svc-{i}");
    }
    // Nothing in the test's VPC is untagged: every create carried its tags.
    let all = elb
        .describe_load_balancers()
        .page_size(400)
        .send()
        .await
        .unwrap();
    let in_vpc: Vec<String> = all
        .load_balancers()
        .iter()
        .filter(|l| l.vpc_id() == Some(vpc.id.as_str()))
        .filter_map(|l| l.load_balancer_arn().map(str::to_owned))
        .collect();
    assert_eq!(in_vpc.len(), 2 * COUNT);
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    for chunk in in_vpc.chunks(20) {
        let tags = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .unwrap();
        for d in tags.tag_descriptions() {
            let owner = d
                .tags()
                .iter()
                .find(|t| t.key() == Some("globalingress.io/owner"))
                .and_then(|t| t.value())
                .unwrap_or("untagged")
                .to_owned();
            *owners.entry(owner).or_default() += 1;
        }
    }
    assert_eq!(owners, BTreeMap::from([("test-hub".to_owned(), 2 * COUNT)]));

    for i in 0..COUNT {
        api.delete(&format!("svc-{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    eventually(
        "every GlobalIngress deleted",
        Duration::from_secs(120),
        || async {
            api.list(&ListParams::default())
                .await
                .ok()?
                .items
                .is_empty()
                .then_some(())
        },
    )
    .await;
    for i in 0..COUNT {
        let owned = network::owned_by(&elb, &format!("{ns}/svc-{i}")).await;
        assert!(
            owned.load_balancers.is_empty() && owned.target_groups.is_empty(),
            "svc-{i} left {:?} {:?}",
            owned.load_balancers.keys(),
            owned.target_groups.keys()
        );
    }
    drop(op);
}
