//! Event reasons (PascalCase), in one place.

pub const READY: &str = "Ready";
pub const NOT_READY: &str = "NotReady";
pub use crate::reconcile::plan::reasons::{
    DNS_ZONE_NOT_FOUND, HOSTNAME_CONFLICT, SPOKE_CLUSTER_NOT_FOUND,
};
pub const INVALID_SPEC: &str = "InvalidSpec";
pub const PAUSED: &str = "Paused";
pub const DELETED_RECORDS: &str = "DeletedRecords";
pub const RETAINED_RECORDS: &str = "RetainedRecords";
pub const SPOKE_REACHABLE: &str = "SpokeReachable";
pub const SPOKE_UNREACHABLE: &str = "SpokeUnreachable";
pub const SPOKE_MISSING_PERMISSIONS: &str = "SpokeMissingPermissions";
pub const AWS_ACCESS_READY: &str = "AWSAccessReady";
pub const AWS_ACCESS_FAILED: &str = "AWSAccessFailed";
pub const ZONE_READY: &str = "ZoneReady";
pub const ZONE_UNAVAILABLE: &str = "ZoneUnavailable";
pub const FAILOVER: &str = "Failover";
pub const FAILBACK: &str = "Failback";
pub const PANIC_THRESHOLD: &str = "PanicThreshold";
pub const DRAIN_REFUSED: &str = "DrainRefused";
pub const TARGETS_WITHDRAWN: &str = "TargetsWithdrawn";
pub const ALL_TARGETS_UNHEALTHY: &str = "AllTargetsUnhealthy";
pub const DEGRADATION_CLEARED: &str = "DegradationCleared";
