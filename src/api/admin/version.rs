//! `GET /api/v1/version`: which berth answers, for `berth version`. Only to
//! authenticated callers: a stranger learns nothing that would tell which
//! known weaknesses to try.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Authenticated;
use super::objects::API_VERSION;

/// `{"apiVersion":"v1","kind":"Version","version":"0.1.0"}`
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Version {
    api_version: &'static str,
    kind: &'static str,
    version: &'static str,
}

pub(super) async fn version(Authenticated(_caller): Authenticated) -> Response {
    Json(Version {
        api_version: API_VERSION,
        kind: "Version",
        version: env!("CARGO_PKG_VERSION"),
    })
    .into_response()
}
