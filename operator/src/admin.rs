//! The admin HTTP server: `/healthz`, `/readyz`, `/metrics`.
//!
//! `/healthz` answers while the process serves requests. `/readyz` answers 200 only once every
//! registered readiness gate (one per watch) has opened, and names the closed ones otherwise.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::telemetry::Metrics;

/// Named gates that must all open before the process is ready.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    /// Each gate: open, or closed with what it waits for (empty: nothing to say).
    gates: Arc<Mutex<BTreeMap<&'static str, Result<(), String>>>>,
}

impl Readiness {
    /// Registers a closed gate (call before serving, so `/readyz` cannot answer too early).
    pub fn register(&self, gate: &'static str) {
        self.lock().entry(gate).or_insert(Err(String::new()));
    }

    pub fn open(&self, gate: &'static str) {
        self.lock().insert(gate, Ok(()));
    }

    /// Closes `gate` (again), saying why in `/readyz`.
    pub fn close(&self, gate: &'static str, why: String) {
        self.lock().insert(gate, Err(why));
    }

    /// The gates still closed, in name order.
    pub fn pending(&self) -> Vec<&'static str> {
        self.lock()
            .iter()
            .filter(|(_, state)| state.is_err())
            .map(|(name, _)| *name)
            .collect()
    }

    /// The closed gates with why, one `gate (why)` each.
    fn waiting(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter_map(|(name, state)| match state {
                Ok(()) => None,
                Err(why) if why.is_empty() => Some((*name).to_owned()),
                Err(why) => Some(format!("{name} ({why})")),
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Result<(), String>>> {
        // A panic while holding this lock cannot leave the map half-written.
        self.gates.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Clone)]
struct AppState {
    readiness: Readiness,
    metrics: Metrics,
}

/// The admin routes.
pub fn router(readiness: Readiness, metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { readiness, metrics })
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let pending = state.readiness.waiting();
    if pending.is_empty() {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("waiting for: {}\n", pending.join(", ")),
        )
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Binds `address` (before returning, so a taken port fails start-up) and serves until `shutdown`
/// resolves.
pub async fn serve(
    address: SocketAddr,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((bound, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_waits_for_every_gate() {
        let readiness = Readiness::default();
        assert!(readiness.pending().is_empty());
        readiness.register("namespaces");
        readiness.register("globalingresses");
        assert_eq!(readiness.pending(), vec!["globalingresses", "namespaces"]);
        readiness.open("namespaces");
        assert_eq!(readiness.pending(), vec!["globalingresses"]);
        readiness.open("globalingresses");
        assert!(readiness.pending().is_empty());
    }
}
