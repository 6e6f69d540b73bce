//! The API server enforces the CRDs' schema and CEL rules: every example is accepted, and each
//! malformed object is refused with a message naming the field.

use kube::api::{DynamicObject, PostParams};
use serde_json::{Value, json};

use crate::support::{self, Cluster};

/// (case, base object, [(JSON pointer, new value)], field the refusal must name)
type Case<'a> = (&'a str, &'a Value, Vec<(&'a str, Value)>, &'a str);
/// The same, with the kind first.
type KindCase<'a> = (&'a str, &'a str, &'a Value, Vec<(&'a str, Value)>, &'a str);

/// Sets `value` at a JSON pointer, creating the last key if needed.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    let shown = doc.to_string();
    let parent = doc
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent} in {shown}"));
    match parent {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
        }
        Value::Array(items) => {
            let index: usize = key.parse().expect("index");
            if index == items.len() {
                items.push(value);
            } else {
                items[index] = value;
            }
        }
        other => panic!("cannot set {key} in {other}"),
    }
}

/// Gives a cluster-scoped example a name of its own, so runs and tests do not collide.
fn renamed(mut doc: Value, prefix: &str) -> (Value, String) {
    let name = support::unique_name(prefix);
    set(&mut doc, "/metadata/name", json!(name));
    (doc, name)
}

async fn create(kind: &str, ns: Option<&str>, doc: &Value) -> Result<DynamicObject, kube::Error> {
    let client = support::kube(Cluster::Hub).await;
    let object: DynamicObject = serde_json::from_value(doc.clone()).expect("object");
    support::dynamic_api(&client, kind, ns)
        .create(&PostParams::default(), &object)
        .await
}

fn assert_refused(case: &str, result: Result<DynamicObject, kube::Error>, field: &str) {
    match result {
        Ok(_) => panic!("{case}: accepted, but must be refused naming {field}"),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{case}: {status:?}");
            assert!(
                status.message.contains(field),
                "{case}: message must name {field}: {}",
                status.message
            );
        }
        Err(other) => panic!("{case}: expected a 422, got {other}"),
    }
}

#[tokio::test]
async fn every_example_is_accepted() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "examples").await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "expected the examples, found {files:?}");
    for file in files {
        let doc = support::example(&file);
        let kind = doc["kind"].as_str().expect("kind").to_owned();
        let (doc, ns) = match kind.as_str() {
            "GlobalIngress" => (doc, Some(ns.as_str())),
            _ => (renamed(doc, "ex").0, None),
        };
        create(&kind, ns, &doc)
            .await
            .unwrap_or_else(|e| panic!("{file} must be accepted: {e}"));
    }
}

#[tokio::test]
async fn malformed_global_ingresses_are_refused_naming_the_field() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "invalid-gi").await;
    let weighted = support::example("globalingress-weighted.yaml");
    let failover = support::example("globalingress-failover.yaml");
    let geo = support::example("globalingress-geolocation.yaml");
    let latency = support::example("globalingress-latency.yaml");

    let cases: Vec<Case> = vec![
        (
            "upper-case hostname",
            &weighted,
            vec![("/spec/hostnames", json!(["Shop.example.com"]))],
            "spec.hostnames[0]",
        ),
        (
            "wildcard not first",
            &weighted,
            vec![("/spec/hostnames", json!(["shop.*.example.com"]))],
            "spec.hostnames[0]",
        ),
        (
            "duplicate hostnames",
            &weighted,
            vec![("/spec/hostnames", json!(["a.example.com", "a.example.com"]))],
            "spec.hostnames[1]",
        ),
        (
            "no hostnames",
            &weighted,
            vec![("/spec/hostnames", json!([]))],
            "spec.hostnames",
        ),
        (
            "duplicate target names",
            &weighted,
            vec![("/spec/targets/1/name", json!("eu-west-1"))],
            "spec.targets[1]",
        ),
        (
            "target name not a DNS label",
            &weighted,
            vec![("/spec/targets/0/name", json!("EU_West"))],
            "spec.targets[0].name",
        ),
        (
            "weight above 255",
            &weighted,
            vec![("/spec/targets/0/weight", json!(256))],
            "spec.targets[0].weight",
        ),
        (
            "all weights zero",
            &weighted,
            vec![
                ("/spec/targets/0/weight", json!(0)),
                ("/spec/targets/1/weight", json!(0)),
            ],
            "spec.targets",
        ),
        (
            "duplicate priorities",
            &failover,
            vec![("/spec/targets/1/priority", json!(0))],
            "spec.targets",
        ),
        (
            "two geo defaults",
            &geo,
            vec![("/spec/targets/0/geo/default", json!(true))],
            "spec.targets",
        ),
        (
            "no geo default",
            &geo,
            vec![("/spec/targets/1/geo/default", json!(false))],
            "spec.targets",
        ),
        (
            "unknown continent",
            &geo,
            vec![("/spec/targets/0/geo/continents", json!(["EUR"]))],
            "spec.targets[0].geo.continents[0]",
        ),
        (
            "unknown country",
            &geo,
            vec![("/spec/targets/0/geo/countries", json!(["XX"]))],
            "spec.targets[0].geo.countries",
        ),
        (
            "malformed subdivision",
            &geo,
            vec![("/spec/targets/1/geo/subdivisions", json!(["California"]))],
            "spec.targets[1].geo.subdivisions[0]",
        ),
        (
            "malformed region",
            &latency,
            vec![("/spec/targets/1/region", json!("australia-southeast1"))],
            "spec.targets[1].region",
        ),
        (
            "TTL below 5",
            &weighted,
            vec![("/spec/ttl", json!(4))],
            "spec.ttl",
        ),
        (
            "TTL above 3600",
            &weighted,
            vec![("/spec/ttl", json!(3601))],
            "spec.ttl",
        ),
        (
            "status code above 599",
            &weighted,
            vec![("/spec/healthCheck/expectedStatus", json!([200, 600]))],
            "spec.healthCheck.expectedStatus[1]",
        ),
        (
            "status code below 100",
            &weighted,
            vec![("/spec/healthCheck/expectedStatus", json!([99]))],
            "spec.healthCheck.expectedStatus[0]",
        ),
        (
            "interval below 1s",
            &weighted,
            vec![
                ("/spec/healthCheck/interval", json!("500ms")),
                ("/spec/healthCheck/timeout", json!("100ms")),
            ],
            "spec.healthCheck.interval",
        ),
        (
            "timeout not below interval",
            &weighted,
            vec![("/spec/healthCheck/timeout", json!("5s"))],
            "spec.healthCheck.timeout",
        ),
        (
            "malformed duration",
            &weighted,
            vec![("/spec/healthCheck/interval", json!("five seconds"))],
            "spec.healthCheck.interval",
        ),
        (
            "healthy threshold above 10",
            &weighted,
            vec![("/spec/healthCheck/healthyThreshold", json!(11))],
            "spec.healthCheck.healthyThreshold",
        ),
        (
            "unhealthy threshold 0",
            &weighted,
            vec![("/spec/healthCheck/unhealthyThreshold", json!(0))],
            "spec.healthCheck.unhealthyThreshold",
        ),
        (
            "probe port above 65535",
            &weighted,
            vec![("/spec/healthCheck/port", json!(70000))],
            "spec.healthCheck.port",
        ),
        (
            "backend port 0",
            &weighted,
            vec![("/spec/targets/0/backend/service/port", json!(0))],
            "spec.targets[0].backend.service.port",
        ),
        (
            "panic threshold above 100",
            &weighted,
            vec![("/spec/failover", json!({"panicThreshold": 101}))],
            "spec.failover.panicThreshold",
        ),
        (
            "External without external",
            &weighted,
            vec![("/spec/targets/2/loadBalancer", json!({"mode": "External"}))],
            "spec.targets[2].loadBalancer.external",
        ),
        (
            "Route 53 checks without a protocol",
            &weighted,
            vec![(
                "/spec/healthCheck",
                json!({"protocol": "None", "route53": "Public"}),
            )],
            "spec.healthCheck.route53",
        ),
        (
            "every target drained",
            &weighted,
            vec![
                ("/spec/targets/0/drain", json!(true)),
                ("/spec/targets/1/drain", json!(true)),
                ("/spec/targets/2/drain", json!(true)),
            ],
            "spec.targets",
        ),
        (
            "Adopt without clusterRef",
            &weighted,
            vec![("/spec/targets/2/loadBalancer", json!({"mode": "Adopt"}))],
            "spec.targets[2].loadBalancer.mode",
        ),
        (
            "address not an IP",
            &weighted,
            vec![(
                "/spec/targets/2/loadBalancer/external/addresses",
                json!(["192.0.2.300"]),
            )],
            "spec.targets[2].loadBalancer.external.addresses",
        ),
        (
            "hostname and addresses",
            &weighted,
            vec![(
                "/spec/targets/2/loadBalancer/external/hostname",
                json!("legacy.example.net"),
            )],
            "spec.targets[2].loadBalancer.external",
        ),
        (
            "CertificateArn without ARN",
            &weighted,
            vec![("/spec/tls", json!({"mode": "CertificateArn"}))],
            "spec.tls.certificateArn",
        ),
        (
            "ACM past its 10 names per certificate",
            &weighted,
            vec![
                ("/spec/tls", json!({"mode": "ACM"})),
                (
                    "/spec/hostnames",
                    json!(
                        (0..11)
                            .map(|i| format!("h{i}.example.com"))
                            .collect::<Vec<_>>()
                    ),
                ),
            ],
            "spec.hostnames",
        ),
        (
            "PrivateLink on an ALB",
            &weighted,
            vec![
                (
                    "/spec/targets/0/loadBalancer",
                    json!({"mode": "Provision", "type": "ALB"}),
                ),
                ("/spec/targets/0/privateLink", json!({"enabled": true})),
            ],
            "spec.targets[0].privateLink",
        ),
        (
            "malformed allowed principal",
            &weighted,
            vec![(
                "/spec/targets/0/privateLink",
                json!({"allowedPrincipals": ["bob"]}),
            )],
            "spec.targets[0].privateLink.allowedPrincipals[0]",
        ),
        (
            "unknown routing policy",
            &weighted,
            vec![("/spec/routing/policy", json!("RoundRobin"))],
            "spec.routing.policy",
        ),
    ];
    assert!(cases.len() >= 20);
    for (case, base, edits, field) in cases {
        let mut doc = base.clone();
        set(
            &mut doc,
            "/metadata/name",
            json!(support::unique_name("bad")),
        );
        for (pointer, value) in edits {
            set(&mut doc, pointer, value);
        }
        assert_refused(case, create("GlobalIngress", Some(&ns), &doc).await, field);
    }
}

#[tokio::test]
async fn malformed_zones_and_spokes_are_refused_naming_the_field() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let zone = support::example("dnszone-route53.yaml");
    let spoke = support::example("spokecluster-eu-west-1.yaml");
    let rfc2136 = support::example("dnszone-rfc2136.yaml")["spec"]["provider"]["rfc2136"].clone();

    let cases: Vec<KindCase> = vec![
        (
            "two providers",
            "DNSZone",
            &zone,
            vec![("/spec/provider/rfc2136", rfc2136.clone())],
            "spec.provider",
        ),
        (
            "no provider",
            "DNSZone",
            &zone,
            vec![("/spec/provider", json!({}))],
            "spec.provider",
        ),
        (
            "domain not a DNS name",
            "DNSZone",
            &zone,
            vec![("/spec/domain", json!("example..com"))],
            "spec.domain",
        ),
        (
            "owner id with upper case",
            "DNSZone",
            &zone,
            vec![("/spec/ownerId", json!("Hub_1"))],
            "spec.ownerId",
        ),
        (
            "unknown TSIG algorithm",
            "DNSZone",
            &zone,
            vec![(
                "/spec/provider",
                json!({"rfc2136": {"server": "ns:53", "tsigKeyName": "k", "algorithm": "hmac-md5", "tsigSecretRef": {"namespace": "a", "name": "b"}}}),
            )],
            "spec.provider.rfc2136.algorithm",
        ),
        (
            "spoke region malformed",
            "SpokeCluster",
            &spoke,
            vec![("/spec/region", json!("Europe"))],
            "spec.region",
        ),
        (
            "account id not 12 digits",
            "SpokeCluster",
            &spoke,
            vec![("/spec/aws/accountId", json!("12345"))],
            "spec.aws.accountId",
        ),
        (
            "role in another account",
            "SpokeCluster",
            &spoke,
            vec![(
                "/spec/aws/roleArn",
                json!("arn:aws:iam::999988887777:role/globalingress"),
            )],
            "spec.aws.roleArn",
        ),
        (
            "external id without a role",
            "SpokeCluster",
            &spoke,
            vec![(
                "/spec/aws/externalIdSecretRef",
                json!({"namespace": "a", "name": "b"}),
            )],
            "spec.aws.externalIdSecretRef",
        ),
        (
            "subnet id malformed",
            "SpokeCluster",
            &spoke,
            vec![("/spec/aws/subnets/internal", json!(["net-1"]))],
            "spec.aws.subnets.internal[0]",
        ),
    ];
    for (case, kind, base, edits, field) in cases {
        let (mut doc, _) = renamed(base.clone(), "bad");
        for (pointer, value) in edits {
            set(&mut doc, pointer, value);
        }
        assert_refused(case, create(kind, None, &doc).await, field);
    }
}

#[tokio::test]
async fn dns_zone_domain_and_provider_kind_are_immutable() {
    let client = support::kube(Cluster::Hub).await;
    support::install_crds(&client).await;
    let (doc, name) = renamed(support::example("dnszone-route53.yaml"), "immutable");
    let created = create("DNSZone", None, &doc).await.expect("valid zone");
    let api = support::dynamic_api(&client, "DNSZone", None);

    let mut changed_domain = serde_json::to_value(&created).unwrap();
    set(&mut changed_domain, "/spec/domain", json!("example.org"));
    let result = api
        .replace(
            &name,
            &PostParams::default(),
            &serde_json::from_value(changed_domain).unwrap(),
        )
        .await;
    assert_refused("domain changed", result, "spec.domain");

    let mut changed_kind = serde_json::to_value(&created).unwrap();
    set(
        &mut changed_kind,
        "/spec/provider",
        support::example("dnszone-rfc2136.yaml")["spec"]["provider"].clone(),
    );
    let result = api
        .replace(
            &name,
            &PostParams::default(),
            &serde_json::from_value(changed_kind).unwrap(),
        )
        .await;
    assert_refused("provider kind changed", result, "spec.provider");

    // A change that keeps the kind is allowed.
    let mut same_kind = serde_json::to_value(&created).unwrap();
    set(
        &mut same_kind,
        "/spec/provider/route53/hostedZoneId",
        json!("ZOTHERZONE123"),
    );
    api.replace(
        &name,
        &PostParams::default(),
        &serde_json::from_value(same_kind).unwrap(),
    )
    .await
    .expect("changing the hosted zone id keeps the kind");
}
