//! The backend border: a NetworkPolicy in a spoke that admits a provisioned target's pods only from
//! its load balancer's subnets, on the ports the target group sends to ("prove endpoints before
//! debugging L7": nothing else reaches those pods, so what does is the load balancer).
//!
//! Ours is found by name (`globalingress-<8 hex of the owner>-<target>`) and proven ours by its
//! labels (`app.kubernetes.io/managed-by: globalingress` and the owner's hash): a NetworkPolicy
//! of that name without them is somebody's, and is never changed or deleted.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::ownership::hash64;

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGER: &str = "globalingress";
/// Label: a hash of the hub and the GlobalIngress (label values cannot hold `ns/name`).
pub const OWNER_LABEL: &str = "globalingress.io/owner-hash";
/// Annotations saying the same in words.
pub const GLOBALINGRESS_ANNOTATION: &str = "globalingress.io/globalingress";
pub const TARGET_ANNOTATION: &str = "globalingress.io/target";

/// One NetworkPolicy we want in a spoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedBackendPolicy {
    pub target: String,
    pub spoke: String,
    pub namespace: String,
    pub name: String,
    /// The backend Service's selector: the pods the load balancer reaches.
    pub pod_selector: BTreeMap<String, String>,
    /// The load balancer's subnets' CIDRs.
    pub cidrs: BTreeSet<String>,
    /// The target group's ports (the pods' ports).
    pub ports: BTreeSet<u16>,
    pub owner_hash: String,
    /// `namespace/name` of the GlobalIngress.
    pub owner: String,
}

/// Why a target gets no policy (said in an Event; nothing is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPolicy {
    /// A Service without a selector: an empty podSelector would isolate every pod of the
    /// namespace.
    NoSelector,
    /// The target group has no registrations yet: no port to admit.
    NoPorts,
    /// No CIDR known for the load balancer's subnets.
    NoCidrs,
}

impl NoPolicy {
    pub fn describe(&self) -> &'static str {
        match self {
            Self::NoSelector => {
                "its Service has no selector (a policy for it would isolate every pod of the namespace)"
            }
            Self::NoPorts => "no pod is registered yet",
            Self::NoCidrs => "the load balancer's subnets have no known CIDR",
        }
    }
}

/// The label value of an owner (hub `owner_id`, GlobalIngress `owner`): 16 hex digits.
pub fn owner_hash(owner_id: &str, owner: &str) -> String {
    format!("{:016x}", hash64(format!("{owner_id}\n{owner}").as_bytes()))
}

/// The policy's name: `globalingress-<8 hex of the owner>-<target>`, at most 63 characters, a
/// DNS label (target names are DNS labels already).
pub fn name(owner: &str, target: &str) -> String {
    let hash = format!("{:016x}", hash64(owner.as_bytes()));
    let name = format!("globalingress-{}-{target}", &hash[..8]);
    name.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

/// What one target's policy must say; `Err` when it cannot say anything safe.
pub fn wanted(
    (owner_id, owner): (&str, &str),
    target: &str,
    spoke: &str,
    namespace: &str,
    selector: &BTreeMap<String, String>,
    cidrs: BTreeSet<String>,
    ports: BTreeSet<u16>,
) -> Result<WantedBackendPolicy, NoPolicy> {
    if selector.is_empty() {
        return Err(NoPolicy::NoSelector);
    }
    if ports.is_empty() {
        return Err(NoPolicy::NoPorts);
    }
    if cidrs.is_empty() {
        return Err(NoPolicy::NoCidrs);
    }
    Ok(WantedBackendPolicy {
        target: target.to_owned(),
        spoke: spoke.to_owned(),
        namespace: namespace.to_owned(),
        name: name(owner, target),
        pod_selector: selector.clone(),
        cidrs,
        ports,
        owner_hash: owner_hash(owner_id, owner),
        owner: owner.to_owned(),
    })
}

/// The NetworkPolicy object for `wanted`.
pub fn object(wanted: &WantedBackendPolicy) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(wanted.name.clone()),
            namespace: Some(wanted.namespace.clone()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.to_owned(), MANAGER.to_owned()),
                (OWNER_LABEL.to_owned(), wanted.owner_hash.clone()),
            ])),
            annotations: Some(BTreeMap::from([
                (GLOBALINGRESS_ANNOTATION.to_owned(), wanted.owner.clone()),
                (TARGET_ANNOTATION.to_owned(), wanted.target.clone()),
            ])),
            ..ObjectMeta::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(wanted.pod_selector.clone()),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(
                    wanted
                        .cidrs
                        .iter()
                        .map(|cidr| NetworkPolicyPeer {
                            ip_block: Some(IPBlock {
                                cidr: cidr.clone(),
                                except: None,
                            }),
                            ..NetworkPolicyPeer::default()
                        })
                        .collect(),
                ),
                ports: Some(
                    wanted
                        .ports
                        .iter()
                        .map(|p| NetworkPolicyPort {
                            port: Some(IntOrString::Int(i32::from(*p))),
                            protocol: Some("TCP".to_owned()),
                            end_port: None,
                        })
                        .collect(),
                ),
            }]),
            egress: None,
        }),
    }
}

/// Whether `existing` is a policy of the owner `owner_hash` (else it is never touched).
pub fn is_ours(existing: &NetworkPolicy, owner_hash: &str) -> bool {
    let labels = existing.metadata.labels.as_ref();
    labels.and_then(|l| l.get(MANAGED_BY)).map(String::as_str) == Some(MANAGER)
        && labels.and_then(|l| l.get(OWNER_LABEL)).map(String::as_str) == Some(owner_hash)
}

/// Whether `existing` (ours) says something other than `wanted` (a write is needed).
pub fn differs(existing: &NetworkPolicy, wanted: &NetworkPolicy) -> bool {
    let labels_of = |p: &NetworkPolicy| {
        let mut l = p.metadata.labels.clone().unwrap_or_default();
        l.retain(|k, _| k == MANAGED_BY || k == OWNER_LABEL);
        l
    };
    existing.spec != wanted.spec || labels_of(existing) != labels_of(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector() -> BTreeMap<String, String> {
        BTreeMap::from([("app".to_owned(), "web".to_owned())])
    }

    fn cidrs() -> BTreeSet<String> {
        BTreeSet::from(["10.1.0.0/24".to_owned(), "10.1.1.0/24".to_owned()])
    }

    #[test]
    fn the_policy_admits_the_service_pods_only_from_the_subnets_on_the_target_ports() {
        let w = wanted(
            ("hub-1", "shop/web"),
            "eu",
            "spoke-eu",
            "app",
            &selector(),
            cidrs(),
            BTreeSet::from([8080]),
        )
        .unwrap();
        let p = object(&w);
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(
            spec.pod_selector.as_ref().unwrap().match_labels,
            Some(selector())
        );
        assert_eq!(spec.policy_types, Some(vec!["Ingress".to_owned()]));
        let rule = &spec.ingress.as_ref().unwrap()[0];
        let from: Vec<&str> = rule
            .from
            .as_ref()
            .unwrap()
            .iter()
            .map(|peer| peer.ip_block.as_ref().unwrap().cidr.as_str())
            .collect();
        assert_eq!(from, ["10.1.0.0/24", "10.1.1.0/24"]);
        assert_eq!(
            rule.ports.as_ref().unwrap()[0].port,
            Some(IntOrString::Int(8080))
        );
        assert!(is_ours(&p, &owner_hash("hub-1", "shop/web")));
        assert!(!is_ours(&p, &owner_hash("hub-2", "shop/web")));
        assert!(
            p.metadata
                .name
                .as_deref()
                .unwrap()
                .starts_with("globalingress-")
        );
    }

    #[test]
    fn no_selector_no_ports_or_no_cidrs_make_no_policy() {
        let none = BTreeMap::new();
        let who = ("hub", "a/b");
        assert_eq!(
            wanted(who, "eu", "s", "n", &none, cidrs(), BTreeSet::from([80])),
            Err(NoPolicy::NoSelector)
        );
        assert_eq!(
            wanted(who, "eu", "s", "n", &selector(), cidrs(), BTreeSet::new()),
            Err(NoPolicy::NoPorts)
        );
        assert_eq!(
            wanted(
                who,
                "eu",
                "s",
                "n",
                &selector(),
                BTreeSet::new(),
                BTreeSet::from([80])
            ),
            Err(NoPolicy::NoCidrs)
        );
    }

    #[test]
    fn a_foreign_policy_of_the_same_name_is_not_ours_and_ours_differs_only_in_what_we_set() {
        let w = wanted(
            ("hub", "a/b"),
            "eu",
            "s",
            "n",
            &selector(),
            cidrs(),
            BTreeSet::from([80]),
        )
        .unwrap();
        let mine = object(&w);
        let mut foreign = mine.clone();
        foreign.metadata.labels = None;
        assert!(!is_ours(&foreign, &w.owner_hash));
        // Labels others add (and metadata the server sets) are no difference; a changed port is.
        let mut seen = mine.clone();
        seen.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("team".to_owned(), "x".to_owned());
        seen.metadata.resource_version = Some("7".to_owned());
        assert!(!differs(&seen, &mine));
        let other = object(&WantedBackendPolicy {
            ports: BTreeSet::from([81]),
            ..w.clone()
        });
        assert!(differs(&seen, &other));
    }

    #[test]
    fn names_are_dns_labels_of_at_most_63_characters() {
        let n = name("ns/name", &"t".repeat(60));
        assert!(n.len() <= 63, "{n}");
        assert!(!n.ends_with('-'));
        assert_ne!(name("a/b", "eu"), name("a/c", "eu"));
    }
}
