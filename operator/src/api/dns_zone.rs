//! `DNSZone`: where records go, and who owns them.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::condition::Condition;

/// Spec of a DNSZone.
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "globalingress.io",
    doc = "A DNS zone the hub writes records into: a Route 53 hosted zone or an RFC 2136 server.",
    version = "v1alpha1",
    kind = "DNSZone",
    plural = "dnszones",
    shortname = "dnsz",
    status = "DNSZoneStatus",
    cel,
    printcolumn = r#"{"name":"Domain","type":"string","jsonPath":".spec.domain"}"#,
    printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".status.provider"}"#,
    printcolumn = r#"{"name":"Records","type":"integer","jsonPath":".status.recordCount"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct DNSZoneSpec {
    /// The zone's domain, e.g. `example.com` (immutable).
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?\.?$")
    )]
    #[x_kube(validation = Rule::new("self == oldSelf").message("domain is immutable"))]
    pub domain: String,

    /// Where the zone is served: exactly one of `route53` and `rfc2136` (the kind is immutable).
    pub provider: Provider,

    /// Marks every record this hub writes (TXT ownership registry); records with another owner,
    /// or none, are never changed. Use one id per hub.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub owner_id: String,
}

/// The DNS provider of a zone.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.route53) ? 1 : 0) + (has(self.rfc2136) ? 1 : 0) == 1").message("set exactly one provider: route53 or rfc2136"))]
#[x_kube(validation = Rule::new("has(self.route53) == has(oldSelf.route53)").message("the provider kind is immutable; create a new DNSZone instead"))]
pub struct Provider {
    /// An AWS Route 53 hosted zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route53: Option<Route53Provider>,
    /// A DNS server accepting RFC 2136 updates signed with TSIG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rfc2136: Option<Rfc2136Provider>,
}

/// A Route 53 hosted zone.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.associateSpokeVpcs) || !self.associateSpokeVpcs || (has(self.private) && self.private)").message("associateSpokeVpcs needs private: true").field_path(".associateSpokeVpcs"))]
pub struct Route53Provider {
    /// Hosted zone id, e.g. `Z0123456789ABCDEFGHIJ`.
    #[schemars(length(min = 1, max = 64), pattern(r"^(/hostedzone/)?[A-Z0-9]+$"))]
    pub hosted_zone_id: String,
    /// Whether it is a private hosted zone (associated with VPCs).
    #[serde(default)]
    pub private: bool,
    /// Private zones: associate the VPC of every SpokeCluster with `spec.aws` with the zone
    /// (AssociateVPCWithHostedZone; for a VPC of another account, authorised from the zone's
    /// account first and associated with the spoke's credentials). Associations are only
    /// added, never removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub associate_spoke_vpcs: bool,
    /// Role to assume for Route 53 calls (else the hub's own credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 2048),
        pattern(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")
    )]
    pub role_arn: Option<String>,
}

/// An RFC 2136 server.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rfc2136Provider {
    /// The primary server, `host:port` (port 53 unless given).
    #[schemars(length(min = 1, max = 261))]
    pub server: String,
    /// Name of the TSIG key, as the server knows it.
    #[schemars(length(min = 1, max = 253))]
    pub tsig_key_name: String,
    /// Secret holding the base64 TSIG secret.
    pub tsig_secret_ref: TsigSecretRef,
    /// `hmac-sha256`, `hmac-sha384` or `hmac-sha512`.
    #[serde(default)]
    pub algorithm: TsigAlgorithm,
}

/// A key of a Secret in the hub.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TsigSecretRef {
    /// Namespace of the Secret.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[serde(default = "default_secret_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_secret_key() -> String {
    "secret".to_owned()
}

#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize,
)]
pub enum TsigAlgorithm {
    #[default]
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    #[serde(rename = "hmac-sha384")]
    HmacSha384,
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
}

/// Observed state of a DNSZone.
#[derive(KubeSchema, Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DNSZoneStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Route53` or `RFC2136`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The zone's authoritative name servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name_servers: Vec<String>,
    /// Records this hub owns in the zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_count: Option<i64>,
    /// Private zones: the VPCs associated with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vpcs: Vec<String>,
    /// Ready.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
