//! What the plan knows about one target: where its traffic goes and whether it may have it.

use std::net::IpAddr;

use serde::Serialize;

/// Where a target's traffic goes, once known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Endpoint {
    Addresses(Vec<IpAddr>),
    Hostname {
        name: String,
        /// Route 53 hosted zone id of the load balancer behind `name`, for ALIAS records.
        alias_hosted_zone_id: Option<String>,
    },
}

/// A target's health as the plan sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Health {
    Healthy,
    Unhealthy,
    /// Not probed yet: counts as healthy (a new target must be able to receive traffic).
    Unknown,
}

impl Health {
    pub fn is_up(self) -> bool {
        !matches!(self, Health::Unhealthy)
    }
}

/// What is known about one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// `None` while the address is not known yet (load balancer not provisioned or not found).
    pub endpoint: Option<Endpoint>,
    /// The target's region (its own, or its SpokeCluster's).
    pub region: Option<String>,
    pub health: Health,
}

/// One backend Service in one spoke, whose signals (Service present, ready endpoints) the
/// decisions follow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Backend {
    pub spoke: String,
    pub namespace: String,
    pub name: String,
}
