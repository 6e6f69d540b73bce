//! The local environment the benchmarks run against (`tests/env/env.sh up` writes its env file),
//! and waiting for things in it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Endpoints of the environment.
#[derive(Debug)]
pub struct Env {
    pub dir: PathBuf,
    pub hub_kubeconfig: PathBuf,
    pub spoke_a_kubeconfig: PathBuf,
    pub aws_endpoint: String,
    /// moto itself, behind no proxy (reads that must not be counted).
    pub moto_endpoint: String,
    /// moto enforces IAM: the benchmarks' own calls sign with the admin's keys (everything),
    /// the operator's with the user holding only `terraform/policies/hub.json`.
    pub aws_admin_keys: (String, String),
    pub aws_operator_keys: (String, String),
    pub dns_server: SocketAddr,
    /// `example.test`, without the trailing dot.
    pub dns_zone: String,
    pub tsig_key_name: String,
    pub tsig_algorithm: String,
    pub tsig_secret: String,
}

pub fn load(file: &Path) -> anyhow::Result<Env> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
            .with_context(|| format!("{key} missing from {}", file.display()))
    };
    let secret_file = get("GI_TSIG_SECRET_FILE")?;
    Ok(Env {
        dir: get("GI_ENV_DIR")?.into(),
        hub_kubeconfig: get("GI_HUB_KUBECONFIG")?.into(),
        spoke_a_kubeconfig: get("GI_SPOKE_A_KUBECONFIG")?.into(),
        aws_endpoint: get("GI_AWS_ENDPOINT")?,
        moto_endpoint: get("GI_MOTO_ENDPOINT")?,
        aws_admin_keys: (
            get("GI_AWS_ADMIN_ACCESS_KEY_ID")?,
            get("GI_AWS_ADMIN_SECRET_ACCESS_KEY")?,
        ),
        aws_operator_keys: (
            get("GI_AWS_OPERATOR_ACCESS_KEY_ID")?,
            get("GI_AWS_OPERATOR_SECRET_ACCESS_KEY")?,
        ),
        dns_server: get("GI_DNS_SERVER")?.parse().context("GI_DNS_SERVER")?,
        dns_zone: get("GI_DNS_ZONE")?.trim_end_matches('.').to_owned(),
        tsig_key_name: get("GI_TSIG_KEY_NAME")?,
        tsig_algorithm: get("GI_TSIG_ALGORITHM")?,
        tsig_secret: std::fs::read_to_string(&secret_file)
            .with_context(|| format!("reading {secret_file}"))?
            .trim()
            .to_owned(),
    })
}

/// Polls `check` every `poll` until it holds; returns how long that took.
pub async fn wait_until<F, Fut>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut check: F,
) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        if started.elapsed() > timeout {
            bail!("{what}: not done after {timeout:?}");
        }
        tokio::time::sleep(poll).await;
    }
    Ok(started.elapsed())
}

/// A Route 53 hosted zone `<tag>.test` on the emulator: a client, its domain and its id.
pub async fn hosted_zone(
    env: &Env,
    tag: &str,
) -> anyhow::Result<(aws_sdk_route53::Client, String, String)> {
    let sdk = globalingress::aws::sdk_config(&globalingress::aws::SdkSettings {
        static_credentials: Some(env.aws_admin_keys.clone()),
        ..globalingress::aws::SdkSettings::emulator(env.aws_endpoint.clone())
    })
    .await;
    let r53 = aws_sdk_route53::Client::new(&sdk);
    let domain = format!("{tag}.test");
    let hosted = r53
        .create_hosted_zone()
        .name(&domain)
        .caller_reference(tag)
        .send()
        .await?;
    let zone_id = hosted
        .hosted_zone()
        .context("hosted zone")?
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned();
    Ok((r53, domain, zone_id))
}

/// Whether every one of `size` GlobalIngresses in `api` has condition `type_` True (a list
/// that fails counts as not yet).
pub async fn all_true(
    api: &kube::Api<globalingress::api::GlobalIngress>,
    type_: &str,
    size: usize,
) -> bool {
    api.list(&Default::default()).await.is_ok_and(|l| {
        l.items
            .iter()
            .filter(|gi| {
                gi.status
                    .as_ref()
                    .and_then(|s| globalingress::api::condition::find(&s.conditions, type_))
                    .is_some_and(|c| c.status == "True")
            })
            .count()
            == size
    })
}

/// Creates the GlobalIngresses `object(0..size)` in `api`, 16 requests in flight.
pub async fn create_all(
    api: &kube::Api<globalingress::api::GlobalIngress>,
    size: usize,
    object: impl Fn(usize) -> serde_json::Value,
) -> anyhow::Result<()> {
    use futures::StreamExt as _;
    let mut creates = futures::stream::iter((0..size).map(|i| {
        let doc = object(i);
        async move {
            let gi: globalingress::api::GlobalIngress = serde_json::from_value(doc)?;
            api.create(&kube::api::PostParams::default(), &gi).await?;
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(16);
    while let Some(r) = creates.next().await {
        r?;
    }
    Ok(())
}
