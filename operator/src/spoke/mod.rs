//! The spokes: a client per SpokeCluster from its kubeconfig Secret, its AWS access, and the
//! watches of the backends' Services and EndpointSlices whose signals the health decisions
//! follow.

pub mod aws;
pub mod client;
pub mod nodes;
pub mod signals;
