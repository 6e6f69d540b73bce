//! The reconcile pipeline of a GlobalIngress: observe -> plan -> apply -> status.

pub mod observe;
pub mod plan;
pub mod regions;
