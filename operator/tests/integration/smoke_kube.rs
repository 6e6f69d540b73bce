//! The Kubernetes API servers are real: they persist, validate, authorize and are separate.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::Api;
use kube::api::{ListParams, PostParams};

use crate::support::{self, Cluster, env};

#[tokio::test]
async fn hub_reports_the_real_kubernetes_version() {
    let client = support::kube(Cluster::Hub).await;
    let version = client.apiserver_version().await.expect("GET /version");
    assert_eq!(version.git_version, "v1.36.3");
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "36")
    );
}

#[tokio::test]
async fn namespace_and_configmap_round_trip_through_the_hub() {
    let client = support::kube(Cluster::Hub).await;
    let ns = support::namespace(&client, "smoke").await;
    let read: Namespace = Api::all(client.clone())
        .get(&ns)
        .await
        .expect("get namespace");
    assert_eq!(read.metadata.name.as_deref(), Some(ns.as_str()));

    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    let data = BTreeMap::from([
        ("region".to_owned(), "eu-west-1".to_owned()),
        ("weight".to_owned(), "42".to_owned()),
    ]);
    let cm = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("settings".to_owned()),
            ..Default::default()
        },
        data: Some(data.clone()),
        ..Default::default()
    };
    let created = api
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some(), "the server assigns a uid");
    assert!(created.metadata.resource_version.is_some());

    let read = api.get("settings").await.expect("get");
    assert_eq!(read.data, Some(data));
    let listed = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(listed.items.len(), 1);
}

#[tokio::test]
async fn hub_refuses_invalid_objects_naming_the_field() {
    let client = support::kube(Cluster::Hub).await;
    let ns = support::namespace(&client, "smoke-invalid").await;

    let bad_name: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "Not_A_Valid_Name" }
    }))
    .unwrap();
    let err = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &bad_name)
        .await
        .expect_err("an invalid name must be refused");
    assert_invalid(&err, "metadata.name");

    let bad_port: Service = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": { "ports": [ { "port": 70000 } ] }
    }))
    .unwrap();
    let err = Api::<Service>::namespaced(client, &ns)
        .create(&PostParams::default(), &bad_port)
        .await
        .expect_err("a port above 65535 must be refused");
    assert_invalid(&err, "spec.ports[0].port");
}

fn assert_invalid(err: &kube::Error, field: &str) {
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert_eq!(status.reason, "Invalid", "{status:?}");
            assert!(
                status.message.contains(field),
                "message should name {field}: {}",
                status.message
            );
        }
        other => panic!("expected a 422 from the API server, got {other:?}"),
    }
}

#[tokio::test]
async fn rbac_is_enforced_for_users_outside_system_masters() {
    let client = globalingress::kube_client::connect(Some(&env().hub_unprivileged_kubeconfig))
        .await
        .expect("client");
    let err = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .expect_err("a user without grants must be forbidden");
    match err {
        kube::Error::Api(status) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn hub_and_spokes_are_separate_clusters() {
    let spoke_a = support::kube(Cluster::SpokeA).await;
    let spoke_b = support::kube(Cluster::SpokeB).await;
    let hub = support::kube(Cluster::Hub).await;
    let ns = support::namespace(&spoke_a, "only-on-a").await;
    Api::<Namespace>::all(spoke_a)
        .get(&ns)
        .await
        .expect("exists on spoke-a");
    for (name, other) in [("spoke-b", spoke_b), ("hub", hub)] {
        let found = Api::<Namespace>::all(other)
            .get_opt(&ns)
            .await
            .expect("get");
        assert!(found.is_none(), "{ns} must not exist on {name}");
    }
}
