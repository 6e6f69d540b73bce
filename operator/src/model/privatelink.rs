//! PrivateLink as pure data: the endpoint service a target's internal NLB is exposed through,
//! its consumers' interface endpoints, what EC2 says of them, and the pure decisions between
//! them — principals to add and remove (ARNs normalised as AWS stores them), settings changed
//! in place, the private DNS name's verification record, the connection requests to accept or
//! reject.
//!
//! The endpoint service is tagged (in the create call) with the ownership tags of its target and
//! `globalingress.io/resource=endpointservice`; each interface endpoint with those of its target
//! and `endpoint-<vpc id>`. Both are found again by tags.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::dns::{RecordRouting, RecordType, Rrset};
use super::ownership::tags;

/// [`super::ownership::TAG_RESOURCE`] of an endpoint service.
pub const SERVICE: &str = "endpointservice";

/// [`super::ownership::TAG_RESOURCE`] of a consumer's interface endpoint in `vpc`.
pub fn endpoint_resource(vpc: &str) -> String {
    format!("endpoint-{vpc}")
}

/// TTL of the verification TXT record.
pub const VERIFICATION_TTL: u32 = 300;

/// The endpoint service one target wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WantedEndpointService {
    pub target: String,
    /// The SpokeCluster whose account and region the NLB is in.
    pub spoke: String,
    /// The NLB's name (its ARN is what the load-balancer deployer reports).
    pub load_balancer: String,
    pub acceptance_required: bool,
    /// Normalised ([`normalise_principal`]).
    pub allowed_principals: BTreeSet<String>,
    pub private_dns_name: Option<String>,
    pub consumers: Vec<WantedEndpoint>,
    #[serde(skip)]
    pub tags: BTreeMap<String, String>,
}

/// A consumer's interface endpoint for the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WantedEndpoint {
    pub vpc_id: String,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    /// The consumer's account (default: the service's).
    pub account_id: Option<String>,
    /// The role the hub assumes there (default: its own credentials).
    pub role_arn: Option<String>,
    #[serde(skip)]
    pub tags: BTreeMap<String, String>,
}

/// The tags of `target`'s endpoint service.
pub fn service_tags(owner_id: &str, owner: &str, target: &str) -> BTreeMap<String, String> {
    tags(owner_id, owner, target, SERVICE).into_iter().collect()
}

/// The tags of `target`'s interface endpoint in `vpc`.
pub fn endpoint_tags(
    owner_id: &str,
    owner: &str,
    target: &str,
    vpc: &str,
) -> BTreeMap<String, String> {
    tags(owner_id, owner, target, &endpoint_resource(vpc))
        .into_iter()
        .collect()
}

/// A principal as AWS stores it: an account id becomes `arn:aws:iam::<id>:root`, and IAM paths
/// are stripped (`role/team/app` → `role/app`), so a diff against
/// DescribeVpcEndpointServicePermissions does not add and remove the same principal forever.
pub fn normalise_principal(p: &str) -> String {
    let p = p.trim();
    if p.len() == 12 && p.chars().all(|c| c.is_ascii_digit()) {
        return format!("arn:aws:iam::{p}:root");
    }
    let Some((head, resource)) = p.rsplit_once(':') else {
        return p.to_owned();
    };
    match resource.split_once('/') {
        Some((kind @ ("role" | "user"), rest)) => {
            let name = rest.rsplit('/').next().unwrap_or(rest);
            format!("{head}:{kind}/{name}")
        }
        _ => p.to_owned(),
    }
}

/// An endpoint service as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeenEndpointService {
    pub id: String,
    /// `com.amazonaws.vpce.<region>.vpce-svc-…`: what consumers connect to.
    pub name: String,
    pub load_balancers: BTreeSet<String>,
    pub acceptance_required: bool,
    pub private_dns_name: Option<String>,
    /// The private DNS name's verification: state and the TXT record asked for.
    pub verification: Option<Verification>,
    pub state: String,
    pub tags: BTreeMap<String, String>,
}

/// A private DNS name's domain verification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verification {
    /// `pendingVerification`, `verified` or `failed`.
    pub state: String,
    /// The record's name: a label under the private DNS name's domain.
    pub name: String,
    pub value: String,
}

/// What to change on an existing endpoint service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceChanges {
    pub acceptance_required: Option<bool>,
    /// `Some(None)`: remove the private DNS name.
    pub private_dns_name: Option<Option<String>>,
    pub add_load_balancers: Vec<String>,
    pub remove_load_balancers: Vec<String>,
}

impl ServiceChanges {
    pub fn is_empty(&self) -> bool {
        self.acceptance_required.is_none()
            && self.private_dns_name.is_none()
            && self.add_load_balancers.is_empty()
            && self.remove_load_balancers.is_empty()
    }
}

/// The in-place changes from `seen` to `wanted`, whose NLB is `lb_arn` (a replaced NLB moves
/// under the same service: its consumers keep their endpoints).
pub fn service_changes(
    wanted: &WantedEndpointService,
    lb_arn: &str,
    seen: &SeenEndpointService,
) -> ServiceChanges {
    let name = |n: &Option<String>| {
        n.as_deref()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
    };
    ServiceChanges {
        acceptance_required: (seen.acceptance_required != wanted.acceptance_required)
            .then_some(wanted.acceptance_required),
        private_dns_name: (name(&seen.private_dns_name) != name(&wanted.private_dns_name))
            .then(|| wanted.private_dns_name.clone()),
        add_load_balancers: (!seen.load_balancers.contains(lb_arn))
            .then(|| lb_arn.to_owned())
            .into_iter()
            .collect(),
        remove_load_balancers: seen
            .load_balancers
            .iter()
            .filter(|a| *a != lb_arn)
            .cloned()
            .collect(),
    }
}

/// Principals to add and to remove so the service allows exactly `wanted`.
pub fn principal_diff(wanted: &BTreeSet<String>, seen: &[String]) -> (Vec<String>, Vec<String>) {
    let seen: BTreeSet<String> = seen.iter().map(|p| normalise_principal(p)).collect();
    let add = wanted.difference(&seen).cloned().collect();
    let remove = seen.difference(wanted).cloned().collect();
    (add, remove)
}

/// The verification TXT record of the private DNS name, when EC2 asks for one.
pub fn verification_record(seen: &SeenEndpointService) -> Option<Rrset> {
    let domain = seen.private_dns_name.as_deref()?.trim_end_matches('.');
    let v = seen.verification.as_ref()?;
    if v.name.is_empty() || v.value.is_empty() {
        return None;
    }
    // The private DNS name may be a wildcard: the record goes under its domain.
    let domain = domain.strip_prefix("*.").unwrap_or(domain);
    Some(Rrset {
        name: format!("{}.{domain}", v.name.trim_end_matches('.')).to_ascii_lowercase(),
        rtype: RecordType::TXT,
        routing: RecordRouting::Simple,
        ttl: Some(VERIFICATION_TTL),
        values: vec![format!("\"{}\"", v.value.trim_matches('"'))],
        alias: None,
        health_check_id: None,
    })
}

/// A connection request to the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub endpoint_id: String,
    /// The consumer's account.
    pub owner: String,
    /// `pendingAcceptance`, `available`, `rejected`, ...
    pub state: String,
}

impl Connection {
    pub fn pending(&self) -> bool {
        self.state.eq_ignore_ascii_case("pendingAcceptance")
    }
}

/// Which pending connections to accept and reject: those named by the accept and reject
/// annotations, and (accepted) the endpoints the hub made itself for this service.
pub fn connection_actions(
    connections: &[Connection],
    accept: &BTreeSet<String>,
    reject: &BTreeSet<String>,
    own: &BTreeSet<String>,
) -> (Vec<String>, Vec<String>) {
    let mut to_accept = Vec::new();
    let mut to_reject = Vec::new();
    for c in connections.iter().filter(|c| c.pending()) {
        if reject.contains(&c.endpoint_id) {
            to_reject.push(c.endpoint_id.clone());
        } else if accept.contains(&c.endpoint_id) || own.contains(&c.endpoint_id) {
            to_accept.push(c.endpoint_id.clone());
        }
    }
    (to_accept, to_reject)
}

/// The comma-separated endpoint ids of an annotation.
pub fn ids(annotation: Option<&str>) -> BTreeSet<String> {
    annotation
        .unwrap_or_default()
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| s.starts_with("vpce-"))
        .map(str::to_owned)
        .collect()
}

/// An interface endpoint as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeenEndpoint {
    pub id: String,
    pub vpc_id: String,
    pub service_name: String,
    pub state: String,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    /// Its first DNS name (where `healthCheck.via: Endpoint` probes go).
    pub dns_name: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_are_normalised_as_aws_stores_them() {
        assert_eq!(
            normalise_principal("arn:aws:iam::111122223333:role/team/app/consumer"),
            "arn:aws:iam::111122223333:role/consumer"
        );
        assert_eq!(
            normalise_principal("111122223333"),
            "arn:aws:iam::111122223333:root"
        );
        assert_eq!(normalise_principal("*"), "*");
        assert_eq!(
            normalise_principal("arn:aws:iam::111122223333:user/ops/alice"),
            "arn:aws:iam::111122223333:user/alice"
        );
        let wanted = BTreeSet::from([
            normalise_principal("arn:aws:iam::111122223333:role/path/a"),
            normalise_principal("444455556666"),
        ]);
        // AWS holds `role/a` (path stripped) and a principal no longer wanted.
        let (add, remove) = principal_diff(
            &wanted,
            &[
                "arn:aws:iam::111122223333:role/a".into(),
                "arn:aws:iam::777788889999:root".into(),
            ],
        );
        assert_eq!(add, vec!["arn:aws:iam::444455556666:root".to_owned()]);
        assert_eq!(remove, vec!["arn:aws:iam::777788889999:root".to_owned()]);
    }

    fn wanted() -> WantedEndpointService {
        WantedEndpointService {
            target: "eu".into(),
            spoke: "s".into(),
            load_balancer: "lb".into(),
            acceptance_required: true,
            allowed_principals: BTreeSet::new(),
            private_dns_name: Some("api.example.com".into()),
            consumers: Vec::new(),
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn settings_change_in_place_and_a_replaced_nlb_moves_under_the_same_service() {
        let seen = SeenEndpointService {
            id: "vpce-svc-1".into(),
            load_balancers: BTreeSet::from(["old-lb".to_owned()]),
            acceptance_required: false,
            private_dns_name: Some("API.example.com.".into()),
            ..SeenEndpointService::default()
        };
        let changes = service_changes(&wanted(), "new-lb", &seen);
        assert_eq!(changes.acceptance_required, Some(true));
        assert_eq!(changes.private_dns_name, None, "same name, other spelling");
        assert_eq!(changes.add_load_balancers, vec!["new-lb".to_owned()]);
        assert_eq!(changes.remove_load_balancers, vec!["old-lb".to_owned()]);
        let in_sync = SeenEndpointService {
            load_balancers: BTreeSet::from(["new-lb".to_owned()]),
            acceptance_required: true,
            ..seen
        };
        assert!(service_changes(&wanted(), "new-lb", &in_sync).is_empty());
    }

    #[test]
    fn the_verification_record_sits_under_the_private_dns_name() {
        let seen = SeenEndpointService {
            private_dns_name: Some("*.api.example.com".into()),
            verification: Some(Verification {
                state: "pendingVerification".into(),
                name: "_abc123".into(),
                value: "vpce:xyz".into(),
            }),
            ..SeenEndpointService::default()
        };
        let r = verification_record(&seen).unwrap_or_else(|| panic!("a record"));
        assert_eq!(r.name, "_abc123.api.example.com");
        assert_eq!(r.values, vec!["\"vpce:xyz\"".to_owned()]);
        assert_eq!(verification_record(&SeenEndpointService::default()), None);
    }

    #[test]
    fn pending_connections_are_accepted_or_rejected_only_when_named_or_our_own() {
        let c = |id: &str, state: &str| Connection {
            endpoint_id: id.into(),
            owner: "111122223333".into(),
            state: state.into(),
        };
        let connections = vec![
            c("vpce-a", "pendingAcceptance"),
            c("vpce-b", "pendingAcceptance"),
            c("vpce-c", "pendingAcceptance"),
            c("vpce-d", "available"),
            c("vpce-e", "pendingAcceptance"),
        ];
        let (accept, reject) = connection_actions(
            &connections,
            &ids(Some("vpce-a, vpce-d")),
            &ids(Some("vpce-b")),
            &BTreeSet::from(["vpce-c".to_owned()]),
        );
        assert_eq!(accept, vec!["vpce-a".to_owned(), "vpce-c".to_owned()]);
        assert_eq!(reject, vec!["vpce-b".to_owned()]);
        assert!(ids(Some("not-an-id")).is_empty());
    }
}
