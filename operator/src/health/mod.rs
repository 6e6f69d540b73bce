//! Health: probes through the real data path (the address the records point at, so app, ingress
//! and load balancer are all on the path).
//!
//! - [`probe`]: one probe (HTTP, HTTPS, TCP) with its own resolver;
//! - [`manager`]: one task per unique endpoint, shared, triggering reconciles on verdict changes.
//!
//! The pure rules (hysteresis, the guard, failback, the target decision) are
//! [`crate::model::health`]; spoke signals are [`crate::spoke::signals`]; which endpoints a
//! target needs is [`crate::reconcile::plan::probes`].

pub mod manager;
pub mod probe;

pub use manager::Health;
