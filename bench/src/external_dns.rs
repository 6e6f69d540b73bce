//! external-dns (built by `tests/env/external-dns.sh`) as a child process, and its DNSEndpoint
//! objects: the peer the `peers` scenario measures globalingress beside.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context as _;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

/// The CRD's name, for the check that it is installed.
pub const CRD: &str = "dnsendpoints.externaldns.k8s.io";

/// The DNSEndpoint resource (`externaldns.k8s.io/v1alpha1`, namespaced).
pub fn dns_endpoints(client: kube::Client, namespace: &str) -> kube::Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("externaldns.k8s.io", "v1alpha1", "DNSEndpoint");
    kube::Api::namespaced_with(
        client,
        namespace,
        &ApiResource::from_gvk_with_plural(&gvk, "dnsendpoints"),
    )
}

/// How external-dns is run: as shipped (its defaults), or tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Its defaults: a sync every minute, the Kubernetes client at client-go's 5 requests/s
    /// (burst 10), no sync on Kubernetes events.
    Shipped,
    /// A sync every 10 s and a Kubernetes client 20 times as fast (its sync writes every
    /// changed DNSEndpoint's status, one request each, before it touches Route 53).
    Tuned,
}

impl Variant {
    pub fn label(self) -> &'static str {
        match self {
            Self::Shipped => "ext-dns shipped",
            Self::Tuned => "ext-dns tuned",
        }
    }

    /// The flags that differ from the shipped defaults.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Self::Shipped => &[],
            Self::Tuned => &[
                "--interval=10s",
                "--kube-api-qps=100",
                "--kube-api-burst=200",
            ],
        }
    }
}

/// Where one external-dns runs.
#[derive(Debug)]
pub struct Options<'a> {
    pub binary: &'a Path,
    pub kubeconfig: &'a Path,
    /// DNSEndpoints of this namespace only.
    pub namespace: &'a str,
    /// The hosted zone's domain and id: the only zone it may touch.
    pub domain: &'a str,
    pub zone_id: &'a str,
    pub aws_endpoint: &'a str,
    /// Access key id and secret: the admin's (it lists hosted zones, which the operator's
    /// policy does not grant).
    pub aws_keys: &'a (String, String),
    pub variant: Variant,
    pub log: PathBuf,
}

/// The flags every run shares: the CRD source in one namespace, the AWS provider on one zone,
/// the TXT registry, full sync, and logs at warning like the operator's (`warn`).
pub fn common_flags(
    namespace: &str,
    domain: &str,
    zone_id: &str,
    kubeconfig: &str,
    metrics: &str,
) -> Vec<String> {
    vec![
        "--source=crd".to_owned(),
        "--crd-source-apiversion=externaldns.k8s.io/v1alpha1".to_owned(),
        "--crd-source-kind=DNSEndpoint".to_owned(),
        format!("--namespace={namespace}"),
        "--provider=aws".to_owned(),
        format!("--domain-filter={domain}"),
        format!("--zone-id-filter={zone_id}"),
        "--registry=txt".to_owned(),
        "--txt-owner-id=bench-peers".to_owned(),
        "--policy=sync".to_owned(),
        "--log-level=warning".to_owned(),
        format!("--kubeconfig={kubeconfig}"),
        format!("--metrics-address={metrics}"),
    ]
}

/// One external-dns process; killed when dropped.
#[derive(Debug)]
pub struct ExternalDns {
    child: Child,
}

impl ExternalDns {
    pub fn start(o: &Options<'_>) -> anyhow::Result<Self> {
        let metrics = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let log = std::fs::File::create(&o.log)
            .with_context(|| format!("creating {}", o.log.display()))?;
        let child = Command::new(o.binary)
            .args(common_flags(
                o.namespace,
                o.domain,
                o.zone_id,
                &o.kubeconfig.display().to_string(),
                &metrics.to_string(),
            ))
            .args(o.variant.flags())
            // aws-sdk-go-v2's LoadDefaultConfig takes the endpoint of every service from
            // AWS_ENDPOINT_URL; external-dns has no flag for it.
            .env("AWS_ENDPOINT_URL", o.aws_endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", &o.aws_keys.0)
            .env("AWS_SECRET_ACCESS_KEY", &o.aws_keys.1)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", o.binary.display()))?;
        Ok(Self { child })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ExternalDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
