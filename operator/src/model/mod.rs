//! The pure vocabulary of the operator: no Kubernetes client, no AWS SDK, no tokio, no clock.
//!
//! - [`ownership`]: the tag names and the one owner key and hash everything outside Kubernetes
//!   is recognized by;
//! - [`duration`]: the one duration parser (flags and spec fields);
//! - [`dns`]: record sets as the plan wants them and as zones hold them;
//! - [`target`]: where a target's traffic goes and whether it may have it;
//! - [`probe`]: one endpoint to probe;
//! - [`health`]: hysteresis, the false-failover guard and the target decision (pure rules);
//! - [`health_check`]: Route 53 health-check settings;
//! - [`elb`]: load balancer and target group names, target health checks clamped to ELBv2's
//!   bounds, the registration diff;
//! - [`load_balancer`]: the load balancers a GlobalIngress wants, what discovery found, and
//!   the decisions between them (ownership, in-place changes, what is stale);
//! - [`stack`]: the desired resources of one GlobalIngress.

pub mod backend_policy;
pub mod certificate;
pub mod dns;
pub mod duration;
pub mod elb;
pub mod health;
pub mod health_check;
pub mod load_balancer;
pub mod ownership;
pub mod privatelink;
pub mod probe;
pub mod stack;
pub mod target;
