//! `GET /api/v1/version`: which berth answers, for `berth version`. Only to
//! authenticated callers: a stranger learns nothing that would tell which
//! known weaknesses to try.

use axum::Json;
use axum::response::{IntoResponse, Response};

use super::Authenticated;
use crate::wire::{API_VERSION, Extra, ServerVersion};

pub(super) async fn version(Authenticated(_caller): Authenticated) -> Response {
    Json(ServerVersion {
        api_version: API_VERSION.into(),
        kind: "Version".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        extra: Extra::new(),
    })
    .into_response()
}
