//! Test support: the shared environment and small helpers.
//!
//! With `GLOBALINGRESS_TEST_ENV=<dir>/env` (what `make test` and `make env-up` provide) the tests
//! use that running environment. Without it the first test starts one itself with
//! `tests/env/env.sh run`, holding that script's standard input: when this process exits, for
//! whatever reason, the pipe closes and the script stops every server it started.
//!
//! A part that cannot be found or started fails the test that needs it. Nothing is skipped.

pub mod chart;
pub mod components;
pub mod dataplane;
pub mod env;
pub mod logs;
pub mod moto;
pub mod network;
pub mod operator;
pub mod prometheus;
pub mod proxy;
pub mod tcp_proxy;

use std::sync::atomic::{AtomicU32, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;

pub use env::{Cluster, env};

/// A name no other test (or earlier run against the same environment) has used:
/// `<prefix>-<pid>-<time>-<counter>`, valid as a DNS label and a Kubernetes name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() % 1_000_000)
        .unwrap_or(0);
    format!("{prefix}-{}-{t}-{n}", std::process::id())
}

/// The label every object of one test carries (`globalingress.io/shard=<namespace>`): each
/// test's operator manages only its own DNSZones, SpokeClusters and GlobalIngresses
/// (`--selector`), however many tests run at once.
pub const SHARD_LABEL: &str = "globalingress.io/shard";

/// `{"globalingress.io/shard": ns}`, for an object's `metadata.labels`.
pub fn shard(ns: &str) -> serde_json::Value {
    serde_json::json!({ SHARD_LABEL: ns })
}

/// A kube client for one of the environment's clusters.
pub async fn kube(cluster: Cluster) -> kube::Client {
    let path = env().kubeconfig(cluster);
    globalingress::kube_client::connect(Some(path))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot build a client for {cluster:?} from {}: {e:#}",
                path.display()
            )
        })
}

/// Creates a fresh namespace for one test and returns its name.
pub async fn namespace(client: &kube::Client, prefix: &str) -> String {
    let name = unique_name(prefix);
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": name, "labels": { "globalingress.io/test": "true" } }
    }))
    .expect("namespace json");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("cannot create namespace {name}: {e}"));
    name
}

/// Settings for the environment's moto in us-east-1, signed with the tests' admin keys.
pub fn aws_settings() -> globalingress::aws::SdkSettings {
    globalingress::aws::SdkSettings {
        static_credentials: Some(env().aws_admin_keys.clone()),
        ..globalingress::aws::SdkSettings::emulator(env().aws_endpoint.clone())
    }
}

/// [`aws_settings`] signed as the operator's user (`hub.json` only): for tests that drive the
/// operator's own AWS code in-process.
pub fn operator_aws_settings() -> globalingress::aws::SdkSettings {
    globalingress::aws::SdkSettings {
        static_credentials: Some(env().aws_operator_keys.clone()),
        ..aws_settings()
    }
}

/// The AWS SDK configuration pointed at the emulator, as the tests' admin.
pub async fn aws() -> aws_config::SdkConfig {
    globalingress::aws::sdk_config(&aws_settings()).await
}

/// Installs (server-side apply) the project's CRDs in `client`'s cluster and waits until they
/// are established. Idempotent; every test that needs them calls it.
pub async fn install_crds(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Patch, PatchParams};
    use kube::runtime::wait::{await_condition, conditions};

    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in globalingress::api::crds() {
        let name = crd.metadata.name.clone().expect("crd name");
        api.patch(
            &name,
            &PatchParams::apply("globalingress-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot apply CRD {name}: {e}"));
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .unwrap_or_else(|_| panic!("CRD {name} not established after 30s"))
        .unwrap_or_else(|e| panic!("waiting for CRD {name}: {e}"));
    }
}

/// A dynamic API for one of the project's kinds (`GlobalIngress`, `SpokeCluster`, `DNSZone`),
/// for objects the typed structs cannot hold (invalid ones).
pub fn dynamic_api(
    client: &kube::Client,
    kind: &str,
    namespace: Option<&str>,
) -> Api<kube::api::DynamicObject> {
    use globalingress::api::{DNSZone, GlobalIngress, SpokeCluster};
    let resource = match kind {
        "GlobalIngress" => kube::api::ApiResource::erase::<GlobalIngress>(&()),
        "SpokeCluster" => kube::api::ApiResource::erase::<SpokeCluster>(&()),
        "DNSZone" => kube::api::ApiResource::erase::<DNSZone>(&()),
        other => panic!("not one of our kinds: {other}"),
    };
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// Reads an example file (one YAML document) as JSON.
pub fn example(file: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh Route 53 hosted zone on the emulator and, optionally, a DNSZone for it in the hub.
pub struct Route53Zone {
    pub r53: aws_sdk_route53::Client,
    /// Domain without the trailing dot.
    pub domain: String,
    pub zone_id: String,
    /// The hosted zone's delegation set.
    pub name_servers: Vec<String>,
    /// Name of the DNSZone object (when created).
    pub name: String,
}

/// Creates a hosted zone `<prefix>-….test`; with `(client, ns)`, also a DNSZone (ownerId
/// `test-hub`, in the shard of test namespace `ns`) pointing at it.
pub async fn route53_zone(client: Option<(&kube::Client, &str)>, prefix: &str) -> Route53Zone {
    let r53 = aws_sdk_route53::Client::new(&aws().await);
    let domain = format!("{}.test", unique_name(prefix));
    let hosted = r53
        .create_hosted_zone()
        .name(&domain)
        .caller_reference(unique_name("ref"))
        .send()
        .await
        .expect("CreateHostedZone");
    let zone_id = hosted
        .hosted_zone()
        .expect("hosted zone")
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned();
    let name_servers = hosted
        .delegation_set()
        .map(|d| d.name_servers().to_vec())
        .unwrap_or_default();
    let name = unique_name(&format!("{prefix}-zone"));
    if let Some((client, ns)) = client {
        let zone: globalingress::api::DNSZone = serde_json::from_value(serde_json::json!({
            "apiVersion": "globalingress.io/v1alpha1", "kind": "DNSZone",
            "metadata": { "name": name, "labels": shard(ns) },
            "spec": { "domain": domain, "ownerId": "test-hub", "provider": { "route53": { "hostedZoneId": zone_id } } }
        }))
        .expect("zone json");
        Api::<globalingress::api::DNSZone>::all(client.clone())
            .create(&PostParams::default(), &zone)
            .await
            .expect("create DNSZone");
    }
    Route53Zone {
        r53,
        domain,
        zone_id,
        name_servers,
        name,
    }
}

/// A SpokeCluster (region eu-west-1) for the environment's spoke-a, its kubeconfig in Secret
/// `spoke-a` of `ns`; returns the SpokeCluster's name.
pub async fn spoke_a(hub: &kube::Client, ns: &str) -> String {
    // The spoke chart's grant, as a platform team would hand it to the hub.
    let kubeconfig = std::fs::read(&env().spoke_a_grant_kubeconfig).expect("spoke-a kubeconfig");
    spoke_from(hub, ns, "spoke-a", kubeconfig).await
}

/// A SpokeCluster `<prefix>-…` (region eu-west-1, this test's shard) whose kubeconfig is
/// `kubeconfig`, in Secret `prefix` of `ns`; returns the SpokeCluster's name.
pub async fn spoke_from(hub: &kube::Client, ns: &str, prefix: &str, kubeconfig: Vec<u8>) -> String {
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
        "metadata": { "name": prefix },
        "data": { "kubeconfig": k8s_openapi::ByteString(kubeconfig) }
    }))
    .expect("secret json");
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(hub.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the kubeconfig Secret");
    let name = unique_name(prefix);
    let spoke: globalingress::api::SpokeCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "SpokeCluster",
        "metadata": { "name": name, "labels": shard(ns) },
        "spec": { "region": "eu-west-1", "kubeconfigSecretRef": { "namespace": ns, "name": prefix } }
    }))
    .expect("spoke json");
    Api::<globalingress::api::SpokeCluster>::all(hub.clone())
        .create(&PostParams::default(), &spoke)
        .await
        .expect("create the SpokeCluster");
    name
}

/// Fails when any of `secrets` appears in what the operator said: `statuses` (the JSON of the
/// statuses concerned), the message of every Event in the hub, its log and its metrics.
pub async fn assert_never_said(
    client: &kube::Client,
    op: &operator::Operator,
    statuses: &[String],
    secrets: &[&str],
) {
    let mut said = statuses.concat();
    for e in Api::<k8s_openapi::api::core::v1::Event>::all(client.clone())
        .list(&kube::api::ListParams::default())
        .await
        .expect("list Events")
        .items
    {
        said.push_str(&e.message.unwrap_or_default());
        said.push('\n');
    }
    said.push_str(&op.log_text());
    said.push_str(&op.get("/metrics").await.map(|(_, b)| b).unwrap_or_default());
    for secret in secrets {
        assert!(
            !said.contains(secret),
            "{secret:?} reached a status, an Event, a log line or a metric"
        );
    }
}

/// What kubectl (of the servers' version) prints for `args` against the hub; panics when it
/// fails.
pub fn kubectl_hub(args: &[&str]) -> String {
    let output = std::process::Command::new(&env().kubectl)
        .arg("--kubeconfig")
        .arg(&env().hub_kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl");
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every record set of a hosted zone, in a comparable form (sorted).
pub async fn zone_records(r53: &aws_sdk_route53::Client, zone_id: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start: Option<(String, aws_sdk_route53::types::RrType, Option<String>)> = None;
    // A zone of a few thousand record sets is a few dozen pages; more means a cursor that never
    // ends.
    for page in 0.. {
        assert!(page < 1000, "ListResourceRecordSets never ended");
        let mut req = r53.list_resource_record_sets().hosted_zone_id(zone_id);
        if let Some((n, t, i)) = &start {
            req = req
                .start_record_name(n)
                .start_record_type(t.clone())
                .set_start_record_identifier(i.clone());
        }
        let page = req.send().await.unwrap();
        for r in page.resource_record_sets() {
            out.push(format!("{r:?}"));
        }
        if !page.is_truncated() {
            break;
        }
        let next = (
            page.next_record_name().unwrap_or_default().to_owned(),
            page.next_record_type()
                .cloned()
                .unwrap_or(aws_sdk_route53::types::RrType::A),
            page.next_record_identifier().map(str::to_owned),
        );
        if start.as_ref() == Some(&next) {
            break;
        }
        start = Some(next);
    }
    out.sort();
    out.dedup();
    out
}

/// A record set someone else made: `name` (without the final dot), `rtype`, TTL 300, `values`.
pub fn record_set(
    name: &str,
    rtype: aws_sdk_route53::types::RrType,
    values: &[&str],
) -> aws_sdk_route53::types::builders::ResourceRecordSetBuilder {
    let mut set = aws_sdk_route53::types::ResourceRecordSet::builder()
        .name(format!("{name}."))
        .r#type(rtype)
        .ttl(300);
    for value in values {
        set = set.resource_records(
            aws_sdk_route53::types::ResourceRecord::builder()
                .value(*value)
                .build()
                .unwrap(),
        );
    }
    set
}

/// Creates `sets` in a hosted zone directly, in one change (records the operator did not make).
pub async fn create_records(
    r53: &aws_sdk_route53::Client,
    zone_id: &str,
    sets: Vec<aws_sdk_route53::types::builders::ResourceRecordSetBuilder>,
) {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch};
    let mut batch = ChangeBatch::builder();
    for set in sets {
        batch = batch.changes(
            Change::builder()
                .action(ChangeAction::Create)
                .resource_record_set(set.build().unwrap())
                .build()
                .unwrap(),
        );
    }
    r53.change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch.build().unwrap())
        .send()
        .await
        .unwrap();
}
