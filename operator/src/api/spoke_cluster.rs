//! `SpokeCluster`: a cluster that runs workloads, how to reach it, and where it lives in AWS.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::condition::Condition;

/// Spec of a SpokeCluster.
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "globalingress.io",
    doc = "A cluster that runs workloads: how the hub reaches its API server and where it lives in AWS.",
    version = "v1alpha1",
    kind = "SpokeCluster",
    plural = "spokeclusters",
    shortname = "spoke",
    status = "SpokeClusterStatus",
    cel,
    printcolumn = r#"{"name":"Region","type":"string","jsonPath":".spec.region"}"#,
    printcolumn = r#"{"name":"Reachable","type":"boolean","jsonPath":".status.reachable"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.kubernetesVersion"}"#,
    printcolumn = r#"{"name":"AWS","type":"string","jsonPath":".status.conditions[?(@.type==\"AWSReady\")].status"}"#,
    printcolumn = r#"{"name":"Account","type":"string","priority":1,"jsonPath":".status.aws.account"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SpokeClusterSpec {
    /// AWS region the cluster runs in, e.g. `eu-west-1`.
    #[schemars(
        length(max = 32),
        pattern(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$")
    )]
    pub region: String,

    /// Secret holding a kubeconfig for the spoke: read access to Services, EndpointSlices, Nodes
    /// and Ingresses is enough. Its credentials never appear in logs, Events or status.
    pub kubeconfig_secret_ref: SecretKeyRef,

    /// Where the cluster lives in AWS (needed to provision load balancers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<SpokeAws>,
}

/// A key of a Secret.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Namespace of the Secret (in the hub cluster).
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[serde(default = "default_kubeconfig_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_kubeconfig_key() -> String {
    "kubeconfig".to_owned()
}

/// The spoke's AWS account and network.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.roleArn) || self.roleArn.split(':')[4] == self.accountId").message("roleArn must be a role in accountId").field_path(".roleArn"))]
#[x_kube(validation = Rule::new("!has(self.externalIdSecretRef) || has(self.roleArn)").message("externalIdSecretRef needs roleArn (the external id is sent when assuming it)").field_path(".externalIdSecretRef"))]
pub struct SpokeAws {
    /// 12-digit AWS account id.
    #[schemars(pattern(r"^[0-9]{12}$"))]
    pub account_id: String,
    /// Role the hub assumes (STS AssumeRole) to act in this account; without it the hub's own
    /// credentials are used, and must act in `accountId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 2048),
        pattern(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")
    )]
    pub role_arn: Option<String>,
    /// Secret holding the external id the role's trust policy asks for (sent with AssumeRole;
    /// never shown in logs, Events or status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_secret_ref: Option<ExternalIdSecretRef>,
    /// VPC of the cluster.
    #[schemars(pattern(r"^vpc-[0-9a-f]{8,17}$"))]
    pub vpc_id: String,
    /// Subnets for load balancers.
    #[serde(default)]
    pub subnets: Subnets,
    /// Security groups attached to provisioned load balancers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5), inner(pattern(r"^sg-[0-9a-f]{8,17}$")))]
    pub security_groups: Vec<String>,
}

/// The key of a Secret in the hub that holds an external id.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalIdSecretRef {
    /// Namespace of the Secret.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[serde(default = "default_external_id_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_external_id_key() -> String {
    "externalId".to_owned()
}

/// Subnets by exposure.
#[derive(KubeSchema, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subnets {
    /// Private subnets, for internal load balancers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(pattern(r"^subnet-[0-9a-f]{8,17}$")))]
    pub internal: Vec<String>,
    /// Public subnets, for internet-facing load balancers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(pattern(r"^subnet-[0-9a-f]{8,17}$")))]
    pub public: Vec<String>,
}

/// Observed state of a SpokeCluster.
#[derive(KubeSchema, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpokeClusterStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Whether the hub reached the spoke's API server at the last check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachable: Option<bool>,
    /// The spoke API server's version, e.g. `v1.36.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// When the spoke last answered (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// Who the hub acts as in the spoke's AWS account, as AWS last said (STS
    /// GetCallerIdentity through the spoke's credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<SpokeAwsStatus>,
    /// `Ready` (the API server answers) and `AWSReady` (the hub can act in `spec.aws.accountId`).
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// The AWS identity the hub uses for a spoke.
#[derive(KubeSchema, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpokeAwsStatus {
    /// The account the credentials act in.
    pub account: String,
    /// The caller's ARN: the assumed role's session (`arn:aws:sts::<account>:assumed-role/...`)
    /// or the hub's own identity.
    pub arn: String,
}
