//! The load balancers a GlobalIngress wants (`loadBalancer.mode: Provision`) and what discovery
//! found, as pure data; and the pure decisions between them: whose a resource is, what to change
//! in place, what replaces it.
//!
//! One load balancer per Provision target, in its SpokeCluster's account, region and VPC, with
//! one listener on the backend Service's port forwarding to one target group. Its identity
//! (type, scheme) is in its name ([`super::elb::load_balancer_name`]); so is the target group's
//! (protocol, port, target type). Subnets, security groups and the target health check are
//! changed in place.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::certificate::CertificateRef;
use super::elb::{Kind, Protocol, Registration, Scheme, TargetHealthCheck, TargetKind};
use super::ownership::{TAG_GLOBALINGRESS, TAG_OWNER, TAG_RESOURCE, TAG_TARGET, tag_value};

/// [`TAG_RESOURCE`] values of ELBv2 resources.
pub mod resources {
    pub const LOAD_BALANCER: &str = "loadbalancer";
    pub const TARGET_GROUP: &str = "targetgroup";
    pub const LISTENER: &str = "listener";
    pub const ALARM: &str = "alarm";
}

/// The owner tag of a resource whose GlobalIngress was deleted with `deletionPolicy: Retain`:
/// no hub manages it any more.
pub fn retained_owner(owner: &str) -> String {
    format!("{owner}/retained")
}

/// The load balancer of one Provision target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WantedLoadBalancer {
    pub target: String,
    /// The SpokeCluster whose account, region and VPC it lives in.
    pub spoke: String,
    pub name: String,
    #[serde(serialize_with = "kind_str")]
    pub kind: Kind,
    #[serde(serialize_with = "scheme_str")]
    pub scheme: Scheme,
    pub vpc_id: String,
    pub subnets: BTreeSet<String>,
    /// ALBs only (NLBs are created without).
    pub security_groups: BTreeSet<String>,
    pub listener: WantedListener,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<WantedRedirect>,
    pub target_group: WantedTargetGroup,
    /// The CloudWatch alarm a `Private` Route 53 health check of this target follows (on the
    /// target group's healthy host count), by name.
    pub alarm: Option<String>,
    /// The four ownership tags (and `Name`), set in every create call.
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WantedListener {
    pub port: u16,
    #[serde(serialize_with = "protocol_str")]
    pub protocol: Protocol,
    /// HTTPS and TLS listeners: the certificate (with `spec.tls`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateRef>,
}

/// An HTTP listener that redirects to the HTTPS one (ALBs with `spec.tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WantedRedirect {
    pub port: u16,
    pub to_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WantedTargetGroup {
    pub name: String,
    #[serde(serialize_with = "protocol_str")]
    pub protocol: Protocol,
    /// The default port of registrations (each registration names its own).
    pub port: u16,
    #[serde(serialize_with = "target_kind_str")]
    pub target_kind: TargetKind,
    #[serde(skip)]
    pub health_check: TargetHealthCheck,
    /// What the health check had to give up to fit ELBv2, in words.
    pub health_check_notes: Vec<String>,
    /// The targets to register; `None` while the spoke has not said (its watch has not listed,
    /// or it cannot be reached): registrations are left as they are.
    pub registrations: Option<BTreeSet<Registration>>,
}

fn kind_str<S: serde::Serializer>(k: &Kind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}
fn scheme_str<S: serde::Serializer>(k: &Scheme, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}
fn protocol_str<S: serde::Serializer>(k: &Protocol, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}
fn target_kind_str<S: serde::Serializer>(k: &TargetKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

/// The tags of one resource of one target.
pub fn tags(
    owner: &str,
    global_ingress: &str,
    target: &str,
    resource: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_OWNER.to_owned(), tag_value(owner)),
        (TAG_GLOBALINGRESS.to_owned(), tag_value(global_ingress)),
        (TAG_TARGET.to_owned(), tag_value(target)),
        (TAG_RESOURCE.to_owned(), resource.to_owned()),
        (
            super::ownership::TAG_NAME.to_owned(),
            tag_value(&format!("{global_ingress}/{target}")),
        ),
    ])
}

/// Whose a discovered resource is, by its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned {
    /// This hub's, for this GlobalIngress and target.
    Mine,
    /// This hub's, for another GlobalIngress or target.
    OurOther {
        global_ingress: String,
        target: String,
    },
    /// No owner tag, or another hub's (a retained one included): never touched.
    Foreign,
}

/// Whose a resource with `tags` is, seen from `owner`'s `global_ingress`/`target`.
pub fn owned(
    tags: &BTreeMap<String, String>,
    owner: &str,
    global_ingress: &str,
    target: &str,
) -> Owned {
    if tags.get(TAG_OWNER) != Some(&tag_value(owner)) {
        return Owned::Foreign;
    }
    let gi = tags.get(TAG_GLOBALINGRESS).cloned().unwrap_or_default();
    let t = tags.get(TAG_TARGET).cloned().unwrap_or_default();
    if gi == tag_value(global_ingress) && t == tag_value(target) {
        Owned::Mine
    } else {
        Owned::OurOther {
            global_ingress: gi,
            target: t,
        }
    }
}

/// The lifecycle state ELBv2 reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum LbState {
    Provisioning,
    Active,
    /// `active_impaired`: serving, but not in every zone.
    Impaired,
    Failed(String),
}

impl LbState {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Impaired => "active_impaired",
            Self::Failed(_) => "failed",
        }
    }

    /// Traffic can be sent to it.
    pub fn serving(&self) -> bool {
        matches!(self, Self::Active | Self::Impaired)
    }
}

/// A load balancer as DescribeLoadBalancers and DescribeTags report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenLoadBalancer {
    pub arn: String,
    pub name: String,
    pub dns_name: String,
    pub hosted_zone_id: String,
    pub state: LbState,
    pub kind: Option<Kind>,
    pub scheme: Option<Scheme>,
    pub vpc_id: String,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    pub tags: BTreeMap<String, String>,
}

/// A target group as DescribeTargetGroups and DescribeTags report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenTargetGroup {
    pub arn: String,
    pub name: String,
    pub vpc_id: String,
    pub health_check: TargetHealthCheck,
    pub tags: BTreeMap<String, String>,
}

/// A listener of one of our load balancers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenListener {
    pub arn: String,
    pub port: u16,
    pub protocol: String,
    /// The target group of its forward action.
    pub target_group: Option<String>,
    /// Its default certificate (HTTPS, TLS).
    pub certificate: Option<String>,
    /// The port its redirect action sends clients to.
    pub redirect_to: Option<u16>,
}

/// What to change on an existing load balancer so it matches the wanted one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadBalancerChanges {
    pub subnets: Option<BTreeSet<String>>,
    pub security_groups: Option<BTreeSet<String>>,
}

impl LoadBalancerChanges {
    pub fn is_empty(&self) -> bool {
        self.subnets.is_none() && self.security_groups.is_none()
    }
}

/// The in-place changes from `seen` to `wanted` (type and scheme are in the name: a load
/// balancer of another type or scheme is another load balancer).
pub fn load_balancer_changes(
    wanted: &WantedLoadBalancer,
    seen: &SeenLoadBalancer,
) -> LoadBalancerChanges {
    LoadBalancerChanges {
        subnets: (seen.subnets != wanted.subnets).then(|| wanted.subnets.clone()),
        security_groups: (wanted.kind == Kind::Application
            && seen.security_groups != wanted.security_groups)
            .then(|| wanted.security_groups.clone()),
    }
}

/// Whether the target group's health check must be modified.
pub fn health_check_differs(wanted: &TargetHealthCheck, seen: &TargetHealthCheck) -> bool {
    let normal = |c: &TargetHealthCheck| {
        let http = matches!(c.protocol, Protocol::Http | Protocol::Https);
        TargetHealthCheck {
            path: c.path.clone().filter(|_| http),
            matcher: c.matcher.clone().filter(|_| http),
            ..c.clone()
        }
    };
    normal(wanted) != normal(seen)
}

/// What the listener needs: `None` when it forwards to `target_group` on the wanted protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerChange {
    Create,
    Modify { arn: String },
}

/// The listener change for the wanted listener on a load balancer with `seen` listeners.
/// `certificate`: the ARN the wanted listener's [`WantedListener::certificate`] resolved to.
pub fn listener_change(
    wanted: &WantedListener,
    target_group: &str,
    certificate: Option<&str>,
    seen: &[SeenListener],
) -> Option<ListenerChange> {
    match seen.iter().find(|l| l.port == wanted.port) {
        None => Some(ListenerChange::Create),
        Some(l)
            if l.protocol.eq_ignore_ascii_case(wanted.protocol.as_str())
                && l.target_group.as_deref() == Some(target_group)
                && l.certificate.as_deref() == certificate
                && l.redirect_to.is_none() =>
        {
            None
        }
        Some(l) => Some(ListenerChange::Modify { arn: l.arn.clone() }),
    }
}

/// The change the redirect listener needs.
pub fn redirect_change(wanted: &WantedRedirect, seen: &[SeenListener]) -> Option<ListenerChange> {
    match seen.iter().find(|l| l.port == wanted.port) {
        None => Some(ListenerChange::Create),
        Some(l) if l.redirect_to == Some(wanted.to_port) && l.protocol == "HTTP" => None,
        Some(l) => Some(ListenerChange::Modify { arn: l.arn.clone() }),
    }
}

/// Listeners of one of our load balancers on ports nothing wants any more (the plain listener
/// once TLS is on, the redirect once it is off): they are deleted.
pub fn unwanted_listeners<'a>(
    lb: &WantedLoadBalancer,
    seen: &'a [SeenListener],
) -> Vec<&'a SeenListener> {
    seen.iter()
        .filter(|l| l.port != lb.listener.port && lb.redirect.is_none_or(|r| r.port != l.port))
        .collect()
}

/// The load balancers of one GlobalIngress (`mine`) that no wanted load balancer is, and that the published
/// records no longer point at: they go once the records are written. `published` holds the
/// DNS names the records carry now.
pub fn stale<'a>(
    wanted_names: &BTreeSet<String>,
    published: &BTreeSet<String>,
    mine: impl IntoIterator<Item = &'a SeenLoadBalancer>,
) -> Vec<&'a SeenLoadBalancer> {
    mine.into_iter()
        .filter(|lb| !wanted_names.contains(&lb.name))
        .filter(|lb| !published.contains(&lb.dns_name.to_ascii_lowercase()))
        .collect()
}

#[cfg(test)]
#[path = "load_balancer_tests.rs"]
mod tests;
