//! Per-request observation: a request id (taken from `X-Request-Id` or made
//! up), a tracing span carrying it, a log line per request, and Prometheus
//! counters and latencies by route and status; and the guard on request
//! bodies (`api::request_body`).

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header::HeaderName};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::AppState;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Set by handlers on their response so metrics use a bounded label.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// Bytes of request or response bodies that moved through blob endpoints.
pub fn count_bytes_in(n: usize) {
    metrics::counter!("berth_http_bytes_received_total").increment(n as u64);
}

pub fn count_bytes_out(n: usize) {
    metrics::counter!("berth_http_bytes_sent_total").increment(n as u64);
}

/// Of the bytes sent, those the kernel sent straight from a blob's file
/// (`sendfile`), without the process copying them.
pub fn count_bytes_sent_from_file(n: usize) {
    metrics::counter!("berth_http_bytes_sent_from_file_total").increment(n as u64);
}

pub async fn observe(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut request = super::request_body::guard(request, app.body_stall);
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        request.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("request", id = %request_id, method = %method, path = %path);

    let mut response = next.run(request).instrument(span.clone()).await;

    let status = response.status().as_u16();
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0)
        .unwrap_or(match path.as_str() {
            "/healthz" => "healthz",
            "/readyz" => "readyz",
            "/metrics" => "metrics",
            _ => "other",
        });
    let elapsed = started.elapsed();
    let labels = [
        ("route", route.to_owned()),
        ("method", method.as_str().to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("berth_http_requests_total", &labels).increment(1);
    metrics::histogram!(
        "berth_http_request_duration_seconds",
        "route" => route,
        "method" => method.as_str().to_owned()
    )
    .record(elapsed.as_secs_f64());
    let elapsed_ms = elapsed.as_secs_f64() * 1e3;
    // Successful reads are the bulk of traffic; they are logged only at
    // debug level so that the access log stays affordable under load.
    let quiet = matches!(method.as_str(), "GET" | "HEAD") && status < 400;
    span.in_scope(|| {
        if quiet {
            tracing::debug!(status, route, elapsed_ms, "handled");
        } else {
            tracing::info!(status, route, elapsed_ms, "handled");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    response
}
