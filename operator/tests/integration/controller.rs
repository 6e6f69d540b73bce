//! The controllers, run as real `globalingress run` processes against the real hub.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use globalingress::api::condition::find;
use globalingress::api::{DNSZone, GlobalIngress, SpokeCluster};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Event, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::support::operator::{Operator, Options, eventually};
use crate::support::{self, Cluster, env};

const WAIT: Duration = Duration::from_secs(30);

/// A DNSZone for the environment's Knot zone, with its TSIG Secret in `ns`.
pub(crate) async fn knot_zone(client: &kube::Client, ns: &str) -> String {
    let env = env();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": "tsig" },
        "data": { "secret": ByteString(env.tsig_secret.as_bytes().to_vec()) }
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let name = support::unique_name("zone");
    let zone: DNSZone = serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "DNSZone",
        "metadata": { "name": name, "labels": support::shard(ns) },
        "spec": {
            "domain": env.dns_zone.to_string().trim_end_matches('.'),
            "ownerId": "test-hub",
            "provider": { "rfc2136": {
                "server": env.dns_server.to_string(),
                "tsigKeyName": env.tsig_key.name().to_string(),
                "algorithm": "hmac-sha256",
                "tsigSecretRef": { "namespace": ns, "name": "tsig", "key": "secret" }
            } }
        }
    }))
    .unwrap();
    Api::<DNSZone>::all(client.clone())
        .create(&PostParams::default(), &zone)
        .await
        .unwrap();
    name
}

pub(crate) fn external_gi(
    ns: &str,
    name: &str,
    zone: &str,
    host: &str,
    policy: &str,
) -> GlobalIngress {
    serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress",
        "metadata": { "name": name, "labels": support::shard(ns) },
        "spec": {
            "hostnames": [host],
            "dnsZoneRef": zone,
            "routing": { "policy": "Weighted" },
            // About the controller, not health: no probes of these documentation addresses.
            "healthCheck": { "protocol": "None" },
            "deletionPolicy": policy,
            "targets": [
                { "name": "a", "weight": 1, "loadBalancer": { "mode": "External", "external": { "addresses": ["192.0.2.1"] } } },
                { "name": "b", "weight": 1, "loadBalancer": { "mode": "External", "external": { "addresses": ["192.0.2.2", "2001:db8::2"] } } }
            ]
        }
    }))
    .unwrap()
}

pub(crate) fn ready(gi: &GlobalIngress) -> Option<(String, String)> {
    let s = gi.status.as_ref()?;
    let c = find(&s.conditions, "Ready")?;
    Some((c.status.clone(), c.reason.clone()))
}

async fn events_for(client: &kube::Client, ns: &str, name: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn global_ingress_gets_finalizer_status_and_is_deleted_with_either_policy() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "lifecycle").await;
    let zone = knot_zone(&client, &ns).await;
    let op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "lifecycle",
        extra: &[],
    });
    op.wait_ready(WAIT).await;

    // The DNSZone controller proves the zone with a signed SOA query and reports its servers.
    let zones: Api<DNSZone> = Api::all(client.clone());
    let servers = eventually("DNSZone Ready", WAIT, || async {
        let z = zones.get(&zone).await.ok()?;
        let s = z.status?;
        (find(&s.conditions, "Ready")?.status == "True").then_some(s.name_servers)
    })
    .await;
    assert_eq!(servers, vec!["ns1.example.test.".to_owned()]);

    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    for (name, policy) in [("deleted", "Delete"), ("retained", "Retain")] {
        let host = format!("{}.example.test", support::unique_name(name));
        api.create(
            &PostParams::default(),
            &external_gi(&ns, name, &zone, &host, policy),
        )
        .await
        .unwrap();
        let gi = eventually("finalizer, observedGeneration and Ready", WAIT, || async {
            let gi = api.get(name).await.ok()?;
            let has_finalizer = gi
                .metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == "globalingress.io/cleanup");
            let observed = gi.status.as_ref()?.observed_generation == gi.metadata.generation;
            (has_finalizer && observed && ready(&gi)?.0 == "True").then_some(gi)
        })
        .await;
        let status = gi.status.clone().unwrap();
        assert_eq!(status.active_targets.as_deref(), Some("a,b"));
        let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, vec!["DNSSynced", "Degraded", "Ready"]);
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.observed_generation == gi.metadata.generation)
        );

        // A spec change is observed: observedGeneration follows generation.
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ttl": 60}})),
        )
        .await
        .unwrap();
        eventually("observedGeneration 2", WAIT, || async {
            let gi = api.get(name).await.ok()?;
            (gi.metadata.generation == Some(2) && gi.status?.observed_generation == Some(2))
                .then_some(())
        })
        .await;

        api.delete(name, &DeleteParams::default()).await.unwrap();
        eventually("deletion to complete", WAIT, || async {
            api.get_opt(name).await.ok()?.is_none().then_some(())
        })
        .await;
        let reason = if policy == "Delete" {
            "DeletedRecords"
        } else {
            "RetainedRecords"
        };
        let events = events_for(&client, &ns, name).await;
        assert!(
            events.iter().any(|e| e.reason.as_deref() == Some(reason)),
            "expected a {reason} event: {events:?}"
        );
    }
}

#[tokio::test]
async fn missing_references_and_hostname_conflicts_are_conditions_and_events() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "conditions").await;
    let zone = knot_zone(&client, &ns).await;
    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "conditions",
        extra: &[],
    });
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    let host = format!("{}.example.test", support::unique_name("shared"));

    api.create(
        &PostParams::default(),
        &external_gi(&ns, "orphan", "no-such-zone", &host, "Delete"),
    )
    .await
    .unwrap();
    let (status, reason) = eventually("Ready False", WAIT, || async {
        ready(&api.get("orphan").await.ok()?)
    })
    .await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "DNSZoneNotFound")
    );
    let message = find(
        &api.get("orphan").await.unwrap().status.unwrap().conditions,
        "Ready",
    )
    .unwrap()
    .message
    .clone();
    assert!(message.contains("spec.dnsZoneRef"), "{message}");

    api.create(
        &PostParams::default(),
        &external_gi(&ns, "first", &zone, &host, "Delete"),
    )
    .await
    .unwrap();
    eventually("first Ready", WAIT, || async {
        (ready(&api.get("first").await.ok()?)?.0 == "True").then_some(())
    })
    .await;
    // Creation timestamps have one-second resolution: make sure the second is younger.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    api.create(
        &PostParams::default(),
        &external_gi(&ns, "second", &zone, &host, "Delete"),
    )
    .await
    .unwrap();
    let (status, reason) = eventually("second refused", WAIT, || async {
        ready(&api.get("second").await.ok()?).filter(|(s, _)| s == "False")
    })
    .await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "HostnameConflict")
    );
    assert_eq!(
        ready(&api.get("first").await.unwrap()).unwrap().0,
        "True",
        "the older keeps its hostname"
    );
    let events = eventually("HostnameConflict event", WAIT, || async {
        let events = events_for(&client, &ns, "second").await;
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("HostnameConflict"))
            .then_some(events)
    })
    .await;
    assert!(events.iter().any(|e| e.type_.as_deref() == Some("Warning")));
}

#[tokio::test]
async fn spoke_clusters_report_reachability_without_leaking_credentials() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "spokes").await;
    let good = std::fs::read_to_string(&env().spoke_a_grant_kubeconfig).unwrap();
    let token = good
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_owned();
    // The same credentials against a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = good
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap()
        .to_owned();
    let bad = good.replace(&server, &format!("https://127.0.0.1:{closed}"));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    for (name, kubeconfig) in [("good", &good), ("bad", &bad)] {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                "kubeconfig".to_owned(),
                ByteString(kubeconfig.as_bytes().to_vec()),
            )])),
            ..Default::default()
        };
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
    let spokes: Api<SpokeCluster> = Api::all(client.clone());
    let names: Vec<String> = ["good", "bad"]
        .iter()
        .map(|n| support::unique_name(n))
        .collect();
    for (name, secret) in names.iter().zip(["good", "bad"]) {
        let spoke: SpokeCluster = serde_json::from_value(json!({
            "apiVersion": "globalingress.io/v1alpha1", "kind": "SpokeCluster",
            "metadata": { "name": name, "labels": support::shard(&ns) },
            "spec": { "region": "eu-west-1", "kubeconfigSecretRef": { "namespace": ns, "name": secret } }
        }))
        .unwrap();
        spokes.create(&PostParams::default(), &spoke).await.unwrap();
    }
    let op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "spokes",
        extra: &[],
    });
    let good_status = eventually("good spoke reachable", WAIT, || async {
        let s = spokes.get(&names[0]).await.ok()?.status?;
        (s.reachable == Some(true)).then_some(s)
    })
    .await;
    assert_eq!(good_status.kubernetes_version.as_deref(), Some("v1.36.3"));
    assert!(good_status.last_seen.is_some());
    let bad_status = eventually("bad spoke unreachable", WAIT, || async {
        let s = spokes.get(&names[1]).await.ok()?.status?;
        (s.reachable == Some(false)).then_some(s)
    })
    .await;
    let condition = find(&bad_status.conditions, "Ready").unwrap();
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "Unreachable")
    );
    let shown =
        serde_json::to_string(&bad_status).unwrap() + &serde_json::to_string(&good_status).unwrap();
    assert!(
        !shown.contains(&token),
        "status must not carry the kubeconfig's token"
    );
    let events = eventually("SpokeUnreachable event", WAIT, || async {
        let events = Api::<Event>::all(client.clone())
            .list(&ListParams::default().fields(&format!("involvedObject.name={}", names[1])))
            .await
            .ok()?;
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("SpokeUnreachable"))
            .then_some(events)
    })
    .await;
    assert!(
        !serde_json::to_string(&events.items)
            .unwrap()
            .contains(&token)
    );
    assert!(
        !op.log_text().contains(&token),
        "logs must not carry the token"
    );
}

#[tokio::test]
async fn readyz_waits_for_the_first_sync_and_metrics_parse() {
    // On spoke-b, without the CRDs, the watches cannot list, so the operator must not be ready.
    // (An earlier run against the same environment may have installed them: remove them first.)
    let client = support::kube(Cluster::SpokeB).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in globalingress::api::crds() {
        let name = crd.metadata.name.unwrap();
        let _ = crds.delete(&name, &DeleteParams::default()).await;
        eventually("CRD removal", WAIT, || async {
            crds.get_opt(&name).await.ok()?.is_none().then_some(())
        })
        .await;
    }
    let ns = support::namespace(&client, "readyz").await;
    let op = Operator::start(&Options {
        kubeconfig: &env().spoke_b_kubeconfig,
        namespace: &ns,
        lease_name: "readyz",
        extra: &[],
    });
    let (code, body) = eventually("admin server up", WAIT, || op.get("/readyz")).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("globalingresses"), "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        op.get("/readyz").await.map(|r| r.0),
        Some(503),
        "still no CRDs, still not ready"
    );
    assert_eq!(
        op.get("/healthz").await.map(|r| r.0),
        Some(200),
        "alive all the same"
    );

    support::install_crds(&client).await;
    op.wait_ready(Duration::from_secs(90)).await;

    let (code, metrics) = op.get("/metrics").await.expect("metrics");
    assert_eq!(code, 200);
    assert_prometheus_text(&metrics);
    for family in [
        "globalingress_leader",
        "globalingress_reconciles",
        "globalingress_reconcile_duration_seconds",
        "globalingress_build_info",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{metrics}"
        );
    }
}

/// Checks the OpenMetrics text format line by line: comments are HELP/TYPE/UNIT/EOF, samples are
/// `name{label="value",...} number`, and the text ends with `# EOF`.
fn assert_prometheus_text(text: &str) {
    let sample = regex::Regex::new(
        r#"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*\})? (-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$"#,
    )
    .unwrap();
    let comment = regex::Regex::new(r"^# (HELP|TYPE|UNIT) [a-zA-Z_:][a-zA-Z0-9_:]* ?.*$").unwrap();
    assert_eq!(text.lines().last(), Some("# EOF"));
    for line in text.lines().filter(|l| *l != "# EOF") {
        assert!(
            sample.is_match(line) || comment.is_match(line),
            "not Prometheus text: {line:?}"
        );
    }
}

#[tokio::test]
async fn a_new_dns_zone_triggers_the_global_ingresses_that_reference_it() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "trigger").await;
    // A resync far away: only the DNSZone watch can make the GlobalIngress Ready in time.
    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "trigger",
        extra: &["--resync-interval", "10m"],
    });
    let zone_name = support::unique_name("later");
    let api: Api<GlobalIngress> = Api::namespaced(client.clone(), &ns);
    let host = format!("{}.example.test", support::unique_name("trig"));
    api.create(
        &PostParams::default(),
        &external_gi(&ns, "waiting", &zone_name, &host, "Delete"),
    )
    .await
    .unwrap();
    eventually("DNSZoneNotFound", WAIT, || async {
        ready(&api.get("waiting").await.ok()?).filter(|(_, r)| r == "DNSZoneNotFound")
    })
    .await;
    // Create the zone under the referenced name (the TSIG Secret does not matter here).
    let mut zone = serde_json::to_value(support::example("dnszone-rfc2136.yaml")).unwrap();
    zone["metadata"]["name"] = json!(zone_name);
    zone["metadata"]["labels"] = support::shard(&ns);
    zone["spec"]["domain"] = json!("example.test");
    let zone: DNSZone = serde_json::from_value(zone).unwrap();
    Api::<DNSZone>::all(client.clone())
        .create(&PostParams::default(), &zone)
        .await
        .unwrap();
    let started = Instant::now();
    eventually(
        "Ready after the zone appears",
        Duration::from_secs(15),
        || async { (ready(&api.get("waiting").await.ok()?)?.0 == "True").then_some(()) },
    )
    .await;
    eprintln!(
        "DNSZone created -> GlobalIngress Ready after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn dns_zones_are_checked_at_route53_and_with_the_tsig_key() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "zones").await;
    let support::Route53Zone {
        domain,
        zone_id: id,
        name_servers: expected_ns,
        ..
    } = support::route53_zone(None, "r53").await;
    assert!(
        !expected_ns.is_empty(),
        "the emulator returns a delegation set"
    );
    let zones: Api<DNSZone> = Api::all(client.clone());
    let make = |name: &str, domain: &str, zone_id: &str| -> DNSZone {
        serde_json::from_value(json!({
            "apiVersion": "globalingress.io/v1alpha1", "kind": "DNSZone",
            "metadata": { "name": name, "labels": support::shard(&ns) },
            "spec": { "domain": domain, "ownerId": "test-hub", "provider": { "route53": { "hostedZoneId": zone_id } } }
        }))
        .unwrap()
    };
    let good = support::unique_name("r53-good");
    let missing = support::unique_name("r53-missing");
    let mismatch = support::unique_name("r53-mismatch");
    zones
        .create(&PostParams::default(), &make(&good, &domain, &id))
        .await
        .unwrap();
    zones
        .create(
            &PostParams::default(),
            &make(&missing, &domain, "ZNOSUCHZONE123"),
        )
        .await
        .unwrap();
    zones
        .create(&PostParams::default(), &make(&mismatch, "other.test", &id))
        .await
        .unwrap();

    // The same Knot zone twice: the right key, and a wrong one.
    let right = knot_zone(&client, &ns).await;
    let wrong_secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("wrong-tsig".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "secret".to_owned(),
            ByteString(b"d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktISE=".to_vec()),
        )])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &wrong_secret)
        .await
        .unwrap();
    let mut wrong = serde_json::to_value(zones.get(&right).await.unwrap()).unwrap();
    let wrong_name = support::unique_name("wrong-key");
    wrong["metadata"] = json!({ "name": wrong_name, "labels": support::shard(&ns) });
    wrong["spec"]["provider"]["rfc2136"]["tsigSecretRef"]["name"] = json!("wrong-tsig");
    wrong.as_object_mut().unwrap().remove("status");
    zones
        .create(
            &PostParams::default(),
            &serde_json::from_value(wrong).unwrap(),
        )
        .await
        .unwrap();

    let _op = Operator::start(&Options {
        kubeconfig: &env().operator_kubeconfig,
        namespace: &ns,
        lease_name: "zones",
        extra: &[],
    });
    let condition = |name: String| {
        let zones = zones.clone();
        async move {
            let z = zones.get(&name).await.ok()?;
            let c = find(&z.status.as_ref()?.conditions, "Ready")?.clone();
            Some((c.status, c.reason, z.status?.name_servers))
        }
    };
    let (status, _, servers) =
        eventually("route53 zone ready", WAIT, || condition(good.clone())).await;
    assert_eq!(status, "True");
    assert_eq!(servers, expected_ns);
    let (status, reason, _) = eventually("missing zone", WAIT, || condition(missing.clone())).await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "HostedZoneNotFound")
    );
    let (status, reason, _) =
        eventually("domain mismatch", WAIT, || condition(mismatch.clone())).await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "DomainMismatch")
    );
    let (status, _, _) = eventually("knot zone ready", WAIT, || condition(right.clone())).await;
    assert_eq!(status, "True");
    let (status, reason, _) =
        eventually("wrong key refused", WAIT, || condition(wrong_name.clone())).await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "UpdateRefused")
    );
}
