//! The charts' RBAC, proven on real API servers. Every other test runs the operator with the hub
//! chart's ServiceAccount token and hands it the spoke chart's grant (`tests/env/grants.sh`), and
//! fails on any refusal in its log (`support::operator`). Here one verb is taken away from each
//! chart's ClusterRole: the operator must say which, where a person looks, and recover without a
//! restart once it is granted again.

use std::time::Duration;

use globalingress::api::condition::find;
use globalingress::api::{GlobalIngress, SpokeCluster};
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{ListParams, PostParams};

use crate::support::operator::{Operator, Options, eventually};
use crate::support::{self, Cluster, chart, env};

const WAIT: Duration = Duration::from_secs(30);

/// A rule line of `rendered` with `verb` taken out of it (panics when nothing changes).
fn without(rendered: &str, rule: &str, edited: &str) -> String {
    assert!(
        rendered.contains(rule),
        "the rendered chart has no line {rule:?}"
    );
    rendered.replace(rule, edited)
}

#[tokio::test]
async fn a_verb_missing_on_the_hub_is_named_in_readyz_and_the_log_until_it_is_granted() {
    let hub = support::kube(Cluster::Hub).await;
    support::install_crds(&hub).await;
    let ns = support::namespace(&hub, "rbac").await;
    // The chart's ServiceAccount, ClusterRole, Lease Role and bindings for a release of this
    // test's own, in its namespace.
    let release = support::unique_name("rbac");
    let rendered = chart::template(
        "globalingress",
        &release,
        &ns,
        &[
            "--set",
            "aws.identity=none",
            "--set",
            "networkPolicy.apiServer.cidrs={127.0.0.1/32}",
            "--set",
            &format!("leaderElection.namespace={ns}"),
            "--show-only",
            "templates/serviceaccount.yaml",
            "--show-only",
            "templates/rbac.yaml",
            "--show-only",
            "templates/leader-election.yaml",
        ],
    )
    .await;
    let broken = without(
        &rendered,
        "resources: [globalingresses/status, dnszones/status, spokeclusters/status]",
        "resources: [dnszones/status, spokeclusters/status]",
    );
    chart::apply(&env().hub_kubeconfig, &broken).await;
    let kubeconfig = chart::token_kubeconfig(
        &env().hub_kubeconfig,
        &ns,
        &format!("{release}-globalingress"),
    )
    .await;

    let mut op = Operator::start(&Options {
        kubeconfig: &kubeconfig,
        namespace: &ns,
        lease_name: "rbac",
        extra: &[],
    });
    op.refusals_expected = true;
    let body = eventually("readyz naming the missing permission", WAIT, || async {
        let (code, body) = op.get("/readyz").await?;
        (code == 503 && body.contains("globalingresses/status")).then_some(body)
    })
    .await;
    let expected = format!(
        "permissions (missing on the hub: patch globalingresses/status (API group globalingress.io) in namespace {ns})"
    );
    assert!(body.contains(&expected), "{body}");
    // Only that one: the rest of the chart's grant is there.
    assert_eq!(body.matches("(API group").count(), 1, "{body}");
    let log = op.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("missing permission on the hub"))
        .unwrap_or_else(|| panic!("no log line names the missing permission:\n{log}"));
    assert!(
        line.contains("patch globalingresses/status (API group globalingress.io)"),
        "{line}"
    );
    // A GlobalIngress whose status cannot be written: the refusal itself is in the log, in the
    // words the other tests look for when they fail on any refusal.
    let api: Api<GlobalIngress> = Api::namespaced(hub.clone(), &ns);
    let host = format!("{}.example.test", support::unique_name("rbac"));
    api.create(
        &PostParams::default(),
        &crate::controller::external_gi(&ns, "web", "no-such-zone", &host, "Delete"),
    )
    .await
    .unwrap();
    eventually("the refused status patch in the log", WAIT, || async {
        op.log_text()
            .lines()
            .any(|l| {
                l.contains(" is forbidden: ")
                    && l.contains("cannot patch resource \"globalingresses/status\"")
            })
            .then_some(())
    })
    .await;

    // Granted again: ready within the 10 s recheck, without a restart.
    chart::apply(&env().hub_kubeconfig, &rendered).await;
    eventually("ready once the verb is granted", WAIT, || async {
        matches!(op.get("/readyz").await, Some((200, _))).then_some(())
    })
    .await;
    assert!(
        op.child.try_wait().unwrap().is_none(),
        "the operator restarted"
    );
}

#[tokio::test]
async fn a_verb_missing_in_a_spoke_is_a_condition_and_an_event_naming_it() {
    let hub = support::kube(Cluster::Hub).await;
    support::install_crds(&hub).await;
    let ns = support::namespace(&hub, "spokerbac").await;
    let spoke = support::kube(Cluster::SpokeA).await;
    let spoke_ns = support::namespace(&spoke, "grant").await;
    // The spoke chart for a release of this test's own, without `watch` on EndpointSlices.
    let release = support::unique_name("grant");
    let service_account = support::unique_name("hub");
    let rendered = chart::template(
        "globalingress-spoke",
        &release,
        &spoke_ns,
        &[
            "--set",
            "tokenSecret.create=false",
            "--set",
            &format!("serviceAccount.name={service_account}"),
        ],
    )
    .await;
    let rule = "  - apiGroups: [discovery.k8s.io]\n    resources: [endpointslices]\n    verbs: [list, watch]";
    let broken = without(&rendered, rule, &rule.replace("[list, watch]", "[list]"));
    chart::apply(&env().spoke_a_kubeconfig, &broken).await;
    let kubeconfig =
        chart::token_kubeconfig(&env().spoke_a_kubeconfig, &spoke_ns, &service_account).await;
    let name = support::spoke_from(&hub, &ns, "grant", std::fs::read(&kubeconfig).unwrap()).await;
    let spokes: Api<SpokeCluster> = Api::all(hub.clone());
    let mut op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "spokerbac",
        extra: &[],
    });
    op.refusals_expected = true;

    let status = eventually("Ready=False MissingPermissions", WAIT, || async {
        let status = spokes.get(&name).await.ok()?.status?;
        let ready = find(&status.conditions, "Ready")?;
        (ready.reason == "MissingPermissions").then(|| (status.clone(), ready.message.clone()))
    })
    .await;
    let (status, message) = status;
    assert_eq!(
        status.reachable,
        Some(true),
        "the spoke answers: {status:?}"
    );
    assert!(
        message.contains("watch endpointslices (API group discovery.k8s.io) in all namespaces"),
        "{message}"
    );
    assert_eq!(message.matches("(API group").count(), 1, "{message}");
    eventually("a SpokeMissingPermissions Event", WAIT, || async {
        let events = Api::<Event>::all(hub.clone())
            .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
            .await
            .ok()?;
        events
            .items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("SpokeMissingPermissions")
                    && e.type_.as_deref() == Some("Warning")
                    && e.message
                        .as_deref()
                        .is_some_and(|m| m.contains("watch endpointslices"))
            })
            .then_some(())
    })
    .await;
    assert!(op.log_text().contains("watch endpointslices"));

    // Granted again: Ready at the next spoke check (2 s here).
    chart::apply(&env().spoke_a_kubeconfig, &rendered).await;
    eventually("Ready=True once granted", WAIT, || async {
        let status = spokes.get(&name).await.ok()?.status?;
        (find(&status.conditions, "Ready")?.status == "True").then_some(())
    })
    .await;
}
