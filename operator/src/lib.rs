//! globalingress: a Kubernetes operator that gives a service one global hostname and keeps it
//! pointed at healthy regions.
//!
//! The binary (`src/main.rs`) is a thin shell over this library: the command line in [`cli`], the
//! long-running controller process in [`run`], and the adapters to the outside world — Kubernetes
//! ([`kube_client`]), AWS ([`aws`]) and DNS ([`dns`]) — each behind a small module of its own.

pub mod admin;
pub mod api;
pub mod aws;
pub mod cli;
pub mod controller;
pub mod dns;
pub mod health;
pub mod kube_client;
pub mod leader;
pub mod model;
pub mod offline;
pub mod permissions;
pub mod reconcile;
pub mod run;
pub mod secrets;
pub mod spoke;
pub mod telemetry;

/// Installs the process-wide rustls crypto provider (aws-lc-rs).
///
/// kube and the AWS SDK both use rustls; with more than one provider compiled in, rustls refuses to
/// pick one and panics at the first handshake. Call this once, first thing, in every process
/// (the binary and the test support do).
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod architecture_tests;
