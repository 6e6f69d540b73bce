//! Nothing read from a Secret reaches a status, an Event, a log line or a metric — not even
//! inside a parser's error snippet: a kubeconfig that does not parse and a TSIG key that does
//! not decode are reported by Secret, key and position only.

use std::time::Duration;

use globalingress::api::condition::find;
use globalingress::api::{DNSZone, SpokeCluster};
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

use crate::support::operator::{Operator, Options, eventually};
use crate::support::{self, Cluster, env};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn secrets_that_do_not_parse_are_reported_by_name_key_and_position_only() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "secrets").await;
    // A kubeconfig whose YAML breaks right at the token: a parser quotes that line.
    let token = "s3cr3t-token-4f9c2b7d1e6a";
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n\
         users:\n- name: u\n  user:\n    token: {token}: [unclosed\ncontexts: []\n"
    );
    // A TSIG secret whose base64 breaks right beside the secret bytes.
    let tsig = "c2VjcmV0LWtleS1tYXRlcmlhbA#%k9Zq";
    for (name, key, value) in [
        ("kubeconfig", "kubeconfig", kubeconfig.as_str()),
        ("tsig", "secret", tsig),
    ] {
        Api::<Secret>::namespaced(client.clone(), &ns)
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
    let spoke = support::unique_name("leaky-spoke");
    Api::<SpokeCluster>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "globalingress.io/v1alpha1", "kind": "SpokeCluster",
                "metadata": { "name": spoke, "labels": support::shard(&ns) },
                "spec": { "region": "eu-west-1", "kubeconfigSecretRef": { "namespace": ns, "name": "kubeconfig" } }
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let zone = support::unique_name("leaky-zone");
    Api::<DNSZone>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "globalingress.io/v1alpha1", "kind": "DNSZone",
                "metadata": { "name": zone, "labels": support::shard(&ns) },
                "spec": { "domain": "example.test", "ownerId": "test-hub",
                          "provider": { "rfc2136": { "server": env().dns_server.to_string(),
                              "tsigKeyName": "globalingress-test",
                              "tsigSecretRef": { "namespace": ns, "name": "tsig" } } } }
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "secrets",
        extra: &[],
    });
    let spoke_ready = eventually("the spoke's kubeconfig reported", WAIT, || async {
        let s = Api::<SpokeCluster>::all(client.clone())
            .get(&spoke)
            .await
            .ok()?;
        find(&s.status?.conditions, "Ready")
            .filter(|c| c.reason == "KubeconfigInvalid")
            .cloned()
    })
    .await;
    let zone_ready = eventually("the zone's key reported", WAIT, || async {
        let z = Api::<DNSZone>::all(client.clone()).get(&zone).await.ok()?;
        find(&z.status?.conditions, "Ready")
            .filter(|c| c.reason == "TsigKeyInvalid")
            .cloned()
    })
    .await;
    println!(
        "SpokeCluster: {}\nDNSZone: {}",
        spoke_ready.message, zone_ready.message
    );
    // Named by Secret, key and position.
    assert!(
        spoke_ready
            .message
            .contains(&format!("Secret {ns}/kubeconfig key \"kubeconfig\""))
            && spoke_ready.message.contains("line 10"),
        "{}",
        spoke_ready.message
    );
    assert!(
        zone_ready
            .message
            .contains(&format!("Secret {ns}/tsig key \"secret\""))
            && zone_ready.message.contains("at character 27"),
        "{}",
        zone_ready.message
    );
    // Let Events and log lines be written, then look at everything it said.
    eventually("the SpokeUnreachable Event", WAIT, || async {
        let events = Api::<Event>::all(client.clone())
            .list(&ListParams::default())
            .await
            .ok()?;
        events
            .items
            .iter()
            .any(|e| e.involved_object.name.as_deref() == Some(spoke.as_str()))
            .then_some(())
    })
    .await;
    let z = Api::<DNSZone>::all(client.clone())
        .get(&zone)
        .await
        .unwrap();
    let s = Api::<SpokeCluster>::all(client.clone())
        .get(&spoke)
        .await
        .unwrap();
    support::assert_never_said(
        &client,
        &op,
        &[
            serde_json::to_string(&z.status).unwrap(),
            serde_json::to_string(&s.status).unwrap(),
        ],
        &[
            token,
            "s3cr3t",
            tsig,
            "c2VjcmV0LWtleS1tYXRlcmlhbA",
            "#%k9Zq",
            "[unclosed",
        ],
    )
    .await;
}
