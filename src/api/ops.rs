//! Operational endpoints: liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The process can serve: both stores answer.
pub async fn readyz(State(app): State<AppState>) -> Response {
    let metadata = app.registry.metadata().ping().await;
    let storage = app.registry.blob_store().check().await;
    match (metadata, storage) {
        (Ok(()), Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        (m, s) => {
            tracing::warn!(metadata = ?m.err(), storage = ?s.err(), "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
        }
    }
}

pub async fn metrics(State(app): State<AppState>) -> Response {
    metrics::gauge!("berth_uploads_in_progress").set(app.uploads.in_progress() as f64);
    match &app.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics disabled\n").into_response(),
    }
}
