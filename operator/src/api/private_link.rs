//! `targets[].privateLink`: a PrivateLink endpoint service in front of a target's provisioned
//! NLB, and the consumers' interface endpoints.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A PrivateLink endpoint service in front of a target's NLB.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateLink {
    /// Create (true) or remove (false) the endpoint service.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Principals allowed to connect: `*`, an account id, or an IAM ARN (paths are stripped,
    /// as AWS stores them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 64),
        inner(
            length(max = 2048),
            pattern(r"^(\*|[0-9]{12}|arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/.+|user/.+))$")
        )
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub allowed_principals: Vec<String>,
    /// Consumers' connection requests wait for acceptance (the
    /// `globalingress.io/accept-endpoint` annotation, or automatically for the consumers
    /// listed here).
    #[serde(default = "default_true")]
    pub acceptance_required: bool,
    /// A private DNS name consumers resolve to their endpoint; its domain is verified through
    /// a TXT record the operator publishes in the DNSZone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 253),
        pattern(
            r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
        )
    )]
    pub private_dns_name: Option<String>,
    /// VPCs (here or in other accounts) that get an interface endpoint for the service. The
    /// first one is where `healthCheck.via: Endpoint` probes from (the hub's VPC).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub consumers: Vec<Consumer>,
}

fn default_true() -> bool {
    true
}

/// A VPC that consumes an endpoint service through an interface endpoint.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consumer {
    #[schemars(pattern(r"^vpc-[0-9a-f]{8,17}$"))]
    pub vpc_id: String,
    /// Subnets of the endpoint's network interfaces (one per zone).
    #[schemars(length(min = 1, max = 16), inner(pattern(r"^subnet-[0-9a-f]{8,17}$")))]
    pub subnets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5), inner(pattern(r"^sg-[0-9a-f]{8,17}$")))]
    pub security_groups: Vec<String>,
    /// The consumer's account (default: the target's SpokeCluster's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[0-9]{12}$"))]
    pub account_id: Option<String>,
    /// Role the hub assumes in that account (default: its own credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 2048),
        pattern(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")
    )]
    pub role_arn: Option<String>,
}
