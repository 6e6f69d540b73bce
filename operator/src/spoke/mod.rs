//! The spokes: a client per SpokeCluster from its kubeconfig Secret, and the watches of the
//! backends' Services and EndpointSlices whose signals the health decisions follow.

pub mod client;
pub mod signals;
