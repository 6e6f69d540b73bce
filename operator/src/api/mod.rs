//! The API (`globalingress.io/v1alpha1`): `GlobalIngress`, `SpokeCluster`, `DNSZone`.
//!
//! The Rust types are the source of truth; `globalingress crds` prints the CRDs generated from
//! them (committed in `crds/`), with the invariants the API server enforces as CEL rules.

pub mod condition;
pub mod dns_zone;
pub mod geo;
pub mod global_ingress;
pub mod spoke_cluster;

pub use dns_zone::{DNSZone, DNSZoneSpec, DNSZoneStatus};
pub use global_ingress::{GlobalIngress, GlobalIngressSpec, GlobalIngressStatus};
pub use spoke_cluster::{SpokeCluster, SpokeClusterSpec, SpokeClusterStatus};

use kube::CustomResourceExt as _;
use kube::core::crd::merge_crds;

/// The CRDs as one multi-document YAML stream, in a stable order.
pub fn crds_yaml() -> Result<String, serde_saphyr::ser::Error> {
    let crds = [DNSZone::crd(), GlobalIngress::crd(), SpokeCluster::crd()];
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    // merge_crds is kept for when a second version is served.
    let _ = merge_crds;
    Ok(out)
}
