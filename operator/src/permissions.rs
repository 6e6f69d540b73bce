//! The operator's own permissions on the hub, checked with SelfSubjectAccessReviews at start and
//! every few minutes.
//!
//! A missing verb would otherwise show only as a watch that never lists, or a status that never
//! changes: here it closes the `permissions` readiness gate (`/readyz` names it) and logs one line
//! per missing permission with its verb, resource and namespace. The list is what the Helm chart's
//! ClusterRole and Role grant (`deploy/globalingress/templates/rbac.yaml`,
//! `leader-election.yaml`); Secrets are not in it (their namespaces are the objects' choice: a
//! Secret that cannot be read is reported on the object naming it).

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use tracing::{error, info, warn};

use crate::admin::Readiness;

/// The readiness gate this check holds.
pub const GATE: &str = "permissions";

/// How often the permissions are checked again (a Role edited later is noticed).
pub const RECHECK: Duration = Duration::from_secs(300);

/// One permission the operator needs on the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    /// `None`: in every namespace (cluster-wide).
    pub namespace: Option<String>,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if !self.subresource.is_empty() {
            write!(f, "/{}", self.subresource)?;
        }
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        write!(f, " (API group {group})")?;
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => write!(f, " in all namespaces"),
        }
    }
}

/// Every permission `globalingress run` uses on the hub. `watch_namespace` narrows the
/// GlobalIngress permissions to that namespace, as `--watch-namespace` does.
pub fn required(watch_namespace: Option<&str>, lease_namespace: &str) -> Vec<Permission> {
    let p = |verb, group, resource, subresource, namespace: Option<&str>| Permission {
        verb,
        group,
        resource,
        subresource,
        namespace: namespace.map(str::to_owned),
    };
    const G: &str = "globalingress.io";
    let mut all = Vec::new();
    for verb in ["list", "watch", "patch"] {
        all.push(p(verb, G, "globalingresses", "", watch_namespace));
    }
    all.push(p("patch", G, "globalingresses", "status", watch_namespace));
    for kind in ["dnszones", "spokeclusters"] {
        for verb in ["list", "watch"] {
            all.push(p(verb, G, kind, "", None));
        }
        all.push(p("patch", G, kind, "status", None));
    }
    // Events of cluster-scoped objects (DNSZones, SpokeClusters) go to `default`.
    for verb in ["create", "patch"] {
        all.push(p(verb, "events.k8s.io", "events", "", None));
    }
    for verb in ["get", "create", "update"] {
        all.push(p(
            verb,
            "coordination.k8s.io",
            "leases",
            "",
            Some(lease_namespace),
        ));
    }
    all
}

/// Every permission the hub uses in a spoke with the identity of the SpokeCluster's kubeconfig:
/// what `deploy/globalingress-spoke` grants.
pub fn spoke_required() -> Vec<Permission> {
    let p = |verb, group, resource| Permission {
        verb,
        group,
        resource,
        subresource: "",
        namespace: None,
    };
    vec![
        p("get", "", "services"),
        p("list", "", "services"),
        p("watch", "", "services"),
        p("list", "discovery.k8s.io", "endpointslices"),
        p("watch", "discovery.k8s.io", "endpointslices"),
        p("list", "", "nodes"),
        p("watch", "", "nodes"),
        p("get", "networking.k8s.io", "ingresses"),
        p("get", "gateway.networking.k8s.io", "gateways"),
    ]
}

/// Spokes whose grant was found complete, by SpokeCluster name, and when: checked again after
/// [`RECHECK`] (a refused permission is checked at every spoke check, so a fix is seen soon).
#[derive(Debug, Default)]
pub struct SpokeChecks(std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>);

impl SpokeChecks {
    pub fn fresh(&self, spoke: &str) -> bool {
        self.lock()
            .get(spoke)
            .is_some_and(|at| at.elapsed() < RECHECK)
    }

    pub fn granted(&self, spoke: &str) {
        self.lock()
            .insert(spoke.to_owned(), std::time::Instant::now());
    }

    pub fn forget(&self, spoke: &str) {
        self.lock().remove(spoke);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, std::time::Instant>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The permissions of `wanted` the API server of `client` refuses its identity (one review
/// each).
pub async fn missing(
    client: &kube::Client,
    wanted: &[Permission],
) -> Result<Vec<Permission>, kube::Error> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut refused = Vec::new();
    for permission in wanted {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(permission.verb.to_owned()),
                    group: Some(permission.group.to_owned()),
                    resource: Some(permission.resource.to_owned()),
                    subresource: Some(permission.subresource.to_owned()).filter(|s| !s.is_empty()),
                    namespace: permission.namespace.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let params = PostParams::default();
        let call = api.create(&params, &review);
        let answer = tokio::time::timeout(crate::kube_client::CALL_TIMEOUT, call)
            .await
            .map_err(|_| {
                kube::Error::Service(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer to a SelfSubjectAccessReview",
                )))
            })??;
        if !answer.status.is_some_and(|s| s.allowed) {
            refused.push(permission.clone());
        }
    }
    Ok(refused)
}

/// Checks `wanted` now and every [`RECHECK`], holding the readiness gate closed (with the missing
/// permissions as its detail) while any is refused. Runs until the process ends.
pub async fn watch(client: kube::Client, wanted: Vec<Permission>, readiness: Readiness) {
    readiness.register(GATE);
    let mut reported: Option<Vec<Permission>> = None;
    loop {
        let next = match missing(&client, &wanted).await {
            Ok(refused) if refused.is_empty() => {
                if reported.as_ref().is_some_and(|r| !r.is_empty()) {
                    info!("every permission the operator needs on the hub is granted again");
                }
                readiness.open(GATE);
                reported = Some(refused);
                RECHECK
            }
            Ok(refused) => {
                if reported.as_ref() != Some(&refused) {
                    for permission in &refused {
                        error!(
                            permission = %permission,
                            "missing permission on the hub: the operator cannot {permission}; grant it (deploy/globalingress ClusterRole and Role)"
                        );
                    }
                }
                let list: Vec<String> = refused.iter().map(ToString::to_string).collect();
                readiness.close(GATE, format!("missing on the hub: {}", list.join("; ")));
                reported = Some(refused);
                // Soon: a fixed Role should make the replica ready without a restart.
                Duration::from_secs(10)
            }
            Err(error) => {
                warn!(error = %crate::telemetry::error_chain(&error), "could not check the operator's permissions on the hub");
                Duration::from_secs(5)
            }
        };
        tokio::time::sleep(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_read_as_what_to_grant() {
        let all = required(Some("apps"), "globalingress-system");
        let status = all
            .iter()
            .find(|p| p.resource == "globalingresses" && p.subresource == "status")
            .unwrap();
        assert_eq!(
            status.to_string(),
            "patch globalingresses/status (API group globalingress.io) in namespace apps"
        );
        let lease = all.iter().find(|p| p.resource == "leases").unwrap();
        assert_eq!(lease.namespace.as_deref(), Some("globalingress-system"));
        let zones = all.iter().find(|p| p.resource == "dnszones").unwrap();
        assert_eq!(
            zones.to_string(),
            "list dnszones (API group globalingress.io) in all namespaces"
        );
    }

    /// (resource[/subresource], verb) pairs a chart template grants: its rules are written as a
    /// `resources: [a, b]` line followed by a `verbs: [x, y]` line.
    fn grants(template: &str) -> Vec<(String, String)> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy")
            .join(template);
        let text = std::fs::read_to_string(path).unwrap();
        let list = |line: &str, key: &str| -> Vec<String> {
            line.strip_prefix(key)
                .map(|v| {
                    v.trim_matches(|c| c == '[' || c == ']' || c == ' ')
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let mut out = Vec::new();
        for w in lines.windows(2) {
            for resource in list(w[0], "resources:") {
                for verb in list(w[1], "verbs:") {
                    out.push((resource.clone(), verb));
                }
            }
        }
        out
    }

    /// The chart grants exactly what the operator checks (and `get` on Secrets, which it reads
    /// wherever objects name them): nothing missing, nothing in excess.
    #[test]
    fn the_chart_grants_exactly_the_permissions_the_operator_checks() {
        let mut granted = grants("globalingress/templates/rbac.yaml");
        granted.extend(grants("globalingress/templates/leader-election.yaml"));
        let wanted: Vec<(String, String)> = required(None, "x")
            .into_iter()
            .map(|p| {
                let resource = if p.subresource.is_empty() {
                    p.resource.to_owned()
                } else {
                    format!("{}/{}", p.resource, p.subresource)
                };
                (resource, p.verb.to_owned())
            })
            .collect();
        for w in &wanted {
            assert!(granted.contains(w), "the chart does not grant {w:?}");
        }
        for g in &granted {
            assert!(
                wanted.contains(g) || *g == ("secrets".to_owned(), "get".to_owned()),
                "the chart grants {g:?}, which the operator never uses"
            );
        }
        assert!(granted.len() >= wanted.len());
    }

    /// The spoke chart grants exactly what the hub checks in a spoke, and, with
    /// `networkPolicies.enabled`, what the backend NetworkPolicies need (read and written by name:
    /// get, create and patch for server-side apply, delete).
    #[test]
    fn the_spoke_chart_grants_exactly_what_the_hub_checks() {
        let granted = grants("globalingress-spoke/templates/grant.yaml");
        let wanted: Vec<(String, String)> = spoke_required()
            .into_iter()
            .map(|p| (p.resource.to_owned(), p.verb.to_owned()))
            .chain(
                ["get", "create", "patch", "delete"]
                    .into_iter()
                    .map(|v| ("networkpolicies".to_owned(), v.to_owned())),
            )
            .collect();
        let (mut a, mut b) = (granted.clone(), wanted.clone());
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }
}
