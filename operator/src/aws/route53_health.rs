//! Route 53 health checks for the targets of a GlobalIngress (`healthCheck.route53`).
//!
//! A target with `Public` or `Private` gets one Route 53 health check, whose id goes on that
//! target's records: Route 53 then fails over on its own, even while the operator is down.
//!
//! - **Ownership by tags.** Every check we create carries `globalingress.io/owner` (the DNSZone's
//!   `ownerId`), `globalingress.io/resource` (`namespace/name`), `globalingress.io/target` and a
//!   `Name` for the console. Checks are matched to targets by these tags on every list, never by
//!   a remembered id. A check without our owner tag (another hub's, a human's) is never updated
//!   or deleted.
//! - **Plan, then apply** ([`plan`]): the pure core compares desired and listed checks and returns
//!   `Create` / `Update` / `Keep` / `Delete` / `Refuse` actions. A change of port, path, host,
//!   address, threshold or alarm is an `UpdateHealthCheck` of the same check (with its
//!   `HealthCheckVersion`, so a concurrent edit is not overwritten). Route 53 cannot change a
//!   check's type or request interval: a protocol or interval change (or Public ↔ Private)
//!   creates a new check and deletes the old one.
//! - **Records first, then deletions.** Route 53 lets a check be deleted while a record still
//!   names it, and that record's health is then unpredictable. So [`HealthChecks::sync`] only
//!   creates and updates and returns the ids for the records; [`HealthChecks::prune`], called
//!   once the records are applied, deletes the resource's other checks (all of them when the
//!   resource is deleted, after its records).
//! - **Garbage collection**: [`HealthChecks::collect_garbage`] lists the account afresh and
//!   deletes every check tagged with our owner whose resource and target are not live (a
//!   GlobalIngress deleted while the operator was down, a crash between create and prune).
//! - **Quota.** An account holds at most 200 health checks by default ([`Config::quota`], the
//!   `--route53-health-check-quota` flag when raised): every check in the account counts, ours
//!   and foreign. A create that would exceed it is not sent, and Route 53's own
//!   `TooManyHealthChecks` is treated alike: the target gets no check, and
//!   [`SyncOutcome::quota_exhausted`] says why, for a condition with reason
//!   [`QUOTA_EXCEEDED_REASON`]. It is not an error: everything else still converges.
//! - **Budget.** Every call goes through `Aws::route53()`, so it spends the shared Route 53
//!   budget; `CreateHealthCheck` (AWS refills it at 0.5/s) and `DeleteHealthCheck` (3/s) also
//!   spend a bucket of their own (see [`super::budget`]). The registry lists once, keeps the list
//!   current with its own writes, and lists again every [`Config::relist_after`] or after an
//!   error; its calls are serialized by one lock, so concurrent reconciles cannot create
//!   duplicates.
//! - **Private.** Route 53's checkers run on the internet and cannot reach an internal load
//!   balancer. AWS's answer for private endpoints is a `CLOUDWATCH_METRIC` check on an alarm: a
//!   `Private` target's check follows the alarm [`plan::alarm_name`] names, in the target's
//!   region, keeping its last status while the alarm has no data. The alarm itself (on the
//!   load balancer's `UnHealthyHostCount`) is made with the load balancer; this crate has no
//!   CloudWatch client yet.

mod api;
pub mod plan;
mod registry;

pub use api::{ApiError, Created, HealthCheckApi, Route53HealthChecks};
pub use plan::{
    AlarmCheck, CheckConfig, DesiredCheck, Endpoint, EndpointCheck, ExistingCheck, Protocol,
    RequestInterval,
};
pub use registry::{Config, DEFAULT_QUOTA, Error, HealthChecks, SyncOutcome};

/// Condition reason when some targets got no health check because the account's quota is used
/// up.
pub const QUOTA_EXCEEDED_REASON: &str = "HealthCheckQuotaExceeded";
