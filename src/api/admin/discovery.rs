//! `GET /api/v1/discovery`: the OpenAPI 3 description of this API, open to
//! anyone (it says nothing about the registry's contents).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The document, kept beside this file. A test checks that it lists
/// exactly the routes of [`super::routes`].
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

pub(super) async fn discovery() -> Response {
    let mut response = OPENAPI.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
