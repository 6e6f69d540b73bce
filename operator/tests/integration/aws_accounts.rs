//! Spokes in other AWS accounts: the hub assumes a SpokeCluster's role (with the external id
//! from its Secret) and acts in that account on cached credentials, spending that account's
//! budget; a role STS refuses, credentials that act in another account and an external id STS
//! would refuse are `AWSReady=False` with a reason and an Event, and the external id is never
//! repeated.

use std::time::Duration;

use globalingress::api::SpokeCluster;
use globalingress::api::condition::find;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::operator::{Operator, Options, eventually};
use crate::support::proxy::FaultProxy;
use crate::support::{self, Cluster};

const WAIT: Duration = Duration::from_secs(30);
/// moto's account for the static test credentials.
const HUB_ACCOUNT: &str = "123456789012";
const OTHER_ACCOUNT: &str = "222222222222";
/// The spoke role `tests/env/iam_setup.py` creates there (trusting the operator's user).
const ROLE: &str = "arn:aws:iam::222222222222:role/globalingress-spoke";
const EXTERNAL_ID: &str = "gi-ext-7c1d9e4b";

async fn secret(client: &kube::Client, ns: &str, name: &str, key: &str, value: &str) {
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": name }, "stringData": { key: value }
            }))
            .unwrap(),
        )
        .await
        .unwrap();
}

/// A SpokeCluster for spoke-a (its kubeconfig in Secret `spoke-a` of `ns`) with `aws` as its
/// `spec.aws`; returns its name.
async fn spoke(client: &kube::Client, ns: &str, prefix: &str, aws: Value) -> String {
    let name = support::unique_name(prefix);
    let mut aws = aws;
    aws["vpcId"] = json!("vpc-0a1b2c3d4e5f60718");
    Api::<SpokeCluster>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "globalingress.io/v1alpha1", "kind": "SpokeCluster",
                "metadata": { "name": name, "labels": support::shard(ns) },
                "spec": { "region": "eu-west-1",
                          "kubeconfigSecretRef": { "namespace": ns, "name": "spoke-a" },
                          "aws": aws }
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    name
}

/// The spoke's AWSReady condition once its reason is `reason`.
async fn aws_ready(client: &kube::Client, name: &str, reason: &str) -> (SpokeCluster, String) {
    let what = format!("{name}: AWSReady {reason}");
    eventually(&what, WAIT, || async {
        let s = Api::<SpokeCluster>::all(client.clone())
            .get(name)
            .await
            .ok()?;
        let c = find(&s.status.as_ref()?.conditions, "AWSReady")?.clone();
        (c.reason == reason).then(|| (s, format!("{} {}: {}", c.status, c.reason, c.message)))
    })
    .await
}

#[tokio::test]
async fn a_spoke_in_another_account_is_reached_through_its_role() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "accounts").await;
    // The Secret `spoke-a` (and a SpokeCluster without spec.aws, which gets no AWSReady).
    let plain = support::spoke_a(&client, &ns).await;
    secret(
        &client,
        &ns,
        "external-id",
        "externalId",
        &format!("{EXTERNAL_ID}\n"),
    )
    .await;
    // An external id STS would refuse, its bad character right beside the rest of it.
    secret(
        &client,
        &ns,
        "bad-external-id",
        "externalId",
        "gi-ext secretword",
    )
    .await;
    let proxy = FaultProxy::start();

    let roled = spoke(
        &client,
        &ns,
        "roled",
        json!({ "accountId": OTHER_ACCOUNT, "roleArn": ROLE,
                "externalIdSecretRef": { "namespace": ns, "name": "external-id" } }),
    )
    .await;
    let own = spoke(&client, &ns, "own", json!({ "accountId": HUB_ACCOUNT })).await;
    let elsewhere = spoke(
        &client,
        &ns,
        "elsewhere",
        json!({ "accountId": "111111111111" }),
    )
    .await;
    let bad_id = spoke(
        &client,
        &ns,
        "bad-id",
        json!({ "accountId": "333333333333", "roleArn": "arn:aws:iam::333333333333:role/x",
                "externalIdSecretRef": { "namespace": ns, "name": "bad-external-id" } }),
    )
    .await;
    let no_secret = spoke(
        &client,
        &ns,
        "no-secret",
        json!({ "accountId": "333333333333", "roleArn": "arn:aws:iam::333333333333:role/x",
                "externalIdSecretRef": { "namespace": ns, "name": "missing" } }),
    )
    .await;

    let op = Operator::start(&Options {
        kubeconfig: &support::env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "accounts",
        extra: &["--aws-endpoint-url", &proxy.url],
    });

    // The role: assumed once, in the other account, with the external id and a session name
    // naming this replica.
    let (s, said) = aws_ready(&client, &roled, "RoleAssumed").await;
    println!("{roled}: {said}");
    let session = format!("globalingress-{}", op.identity);
    let status = s.status.unwrap().aws.expect("status.aws");
    assert_eq!(status.account, OTHER_ACCOUNT);
    assert_eq!(
        status.arn,
        format!("arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/globalingress-spoke/{session}")
    );
    let assumed: Vec<_> = proxy
        .requests()
        .await
        .into_iter()
        .filter(|r| r.op == "AssumeRole")
        .collect();
    assert_eq!(assumed.len(), 1, "{assumed:?}");
    assert_eq!(
        assumed[0].params.get("RoleArn").map(String::as_str),
        Some(ROLE)
    );
    assert_eq!(
        assumed[0].params.get("RoleSessionName"),
        Some(&session),
        "the session name names the replica"
    );
    assert_eq!(
        assumed[0].params.get("ExternalId").map(String::as_str),
        Some(EXTERNAL_ID),
        "the external id from the Secret, trailing newline removed"
    );

    // The others, each with its reason.
    let (s, said) = aws_ready(&client, &own, "HubCredentials").await;
    println!("{own}: {said}");
    assert_eq!(s.status.unwrap().aws.unwrap().account, HUB_ACCOUNT);
    let (_, said) = aws_ready(&client, &elsewhere, "AccountMismatch").await;
    println!("{elsewhere}: {said}");
    assert!(
        said.starts_with("False")
            && said.contains(&format!("act in account {HUB_ACCOUNT}"))
            && said.contains("not in spec.aws.accountId 111111111111"),
        "{said}"
    );
    let (_, said) = aws_ready(&client, &bad_id, "ExternalIdInvalid").await;
    println!("{bad_id}: {said}");
    assert!(
        said.contains(&format!("Secret {ns}/bad-external-id key \"externalId\""))
            && said.contains("character 7"),
        "{said}"
    );
    let (_, said) = aws_ready(&client, &no_secret, "ExternalIdSecretNotFound").await;
    assert!(said.contains(&format!("Secret {ns}/missing")), "{said}");
    let plain = Api::<SpokeCluster>::all(client.clone())
        .get(&plain)
        .await
        .unwrap();
    assert!(find(&plain.status.unwrap().conditions, "AWSReady").is_none());

    // The credentials are cached: three more spoke checks (every 2 s) assume nothing again.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let assumes = proxy
        .requests()
        .await
        .iter()
        .filter(|r| r.op == "AssumeRole")
        .count();
    assert_eq!(assumes, 1, "AssumeRole once, then cached credentials");

    // Each account spends its own budget: the role's calls wait in the other account's STS
    // bucket of the spoke's region, the AssumeRole call in the hub's.
    for bucket in [
        format!("account=\"{OTHER_ACCOUNT}\",region=\"eu-west-1\",service=\"sts\""),
        "account=\"hub\",region=\"eu-west-1\",service=\"sts\"".to_owned(),
    ] {
        let sample = format!("globalingress_aws_budget_wait_seconds_count{{{bucket}}}");
        assert!(op.metric(&sample).await >= 1.0, "{sample}");
    }

    // kubectl tells the story.
    let table = support::kubectl_hub(&["get", "spoke", &roled, "-o", "wide"]);
    println!("{table}");
    let header = table.lines().next().unwrap_or_default();
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(
        header.contains("AWS") && header.contains("ACCOUNT"),
        "{table}"
    );
    assert!(
        row.split_whitespace().any(|c| c == "True")
            && row.split_whitespace().any(|c| c == OTHER_ACCOUNT),
        "{table}"
    );

    // A role STS refuses: AWSReady=False saying so, an Event, and the last identity kept.
    proxy.deny(&["AssumeRole"]).await;
    let other_role = "arn:aws:iam::222222222222:role/globalingress-other";
    Api::<SpokeCluster>::all(client.clone())
        .patch(
            &roled,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "aws": { "roleArn": other_role } } })),
        )
        .await
        .unwrap();
    let (s, said) = aws_ready(&client, &roled, "AccessFailed").await;
    println!("{roled}: {said}");
    assert!(
        said.contains(&format!("cannot assume {other_role}"))
            && said.contains("AccessDenied")
            && said.contains("not sent, no credentials"),
        "{said}"
    );
    assert_eq!(s.status.unwrap().aws.unwrap().account, OTHER_ACCOUNT);
    let failed = eventually("an AWSAccessFailed Event", WAIT, || async {
        let events = Api::<Event>::all(client.clone())
            .list(&ListParams::default())
            .await
            .ok()?;
        events
            .items
            .into_iter()
            .find(|e| {
                e.involved_object.name.as_deref() == Some(roled.as_str())
                    && e.reason.as_deref() == Some("AWSAccessFailed")
            })
            .and_then(|e| e.message)
    })
    .await;
    assert!(failed.contains(other_role), "{failed}");

    // Nothing of the external ids anywhere: statuses, Events, the log, the metrics.
    let mut statuses = Vec::new();
    for name in [&roled, &own, &elsewhere, &bad_id, &no_secret] {
        let s = Api::<SpokeCluster>::all(client.clone())
            .get(name)
            .await
            .unwrap();
        statuses.push(serde_json::to_string(&s.status).unwrap());
    }
    support::assert_never_said(
        &client,
        &op,
        &statuses,
        &[EXTERNAL_ID, "secretword", "gi-ext "],
    )
    .await;
}
