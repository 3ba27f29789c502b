//! `/api/v1/tokens` (the caller's own) and
//! `/api/v1/namespaces/{ns}/…/tokens` (service accounts').

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::{Authenticated, JsonBody, Params};
use crate::admin::{Admin, AdminError, CreatedToken};
use crate::api::AppState;
use crate::wire::{self, List, Status, TokenRequest};

/// `201` with the secret, which no cache may keep.
fn created(token: CreatedToken) -> Response {
    let mut response = (StatusCode::CREATED, Json(wire::Token::from(token))).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn list(tokens: Vec<crate::metadata::access::Token>) -> Response {
    let items = tokens.into_iter().map(wire::Token::from).collect();
    Json(List::<wire::Token>::of("Token", items)).into_response()
}

pub(super) async fn create_own(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<TokenRequest>,
) -> Result<Response, AdminError> {
    let token = Admin::new(&app.access, &caller)
        .create_own_token(
            body.metadata.name.as_deref(),
            body.spec.expires_in.as_deref(),
        )
        .await?;
    Ok(created(token))
}

pub(super) async fn list_own(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Response, AdminError> {
    Ok(list(Admin::new(&app.access, &caller).own_tokens().await?))
}

/// `DELETE /api/v1/tokens/{name}[?user=NAME]`: `user` says whose token a
/// cluster admin revokes (token names are unique per user only).
pub(super) async fn delete_own(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(name): Params<String>,
    uri: Uri,
) -> Result<Response, AdminError> {
    let owner = uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "user")
            .map(|(_, v)| v.into_owned())
    });
    Admin::new(&app.access, &caller)
        .delete_own_token(&name, owner.as_deref())
        .await?;
    Ok(Json(Status::deleted("tokens", &name)).into_response())
}

pub(super) async fn create_for_user(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(user): Params<String>,
    JsonBody(body): JsonBody<TokenRequest>,
) -> Result<Response, AdminError> {
    let token = Admin::new(&app.access, &caller)
        .create_user_token(
            &user,
            body.metadata.name.as_deref(),
            body.spec.expires_in.as_deref(),
        )
        .await?;
    Ok(created(token))
}

pub(super) async fn create_for_service_account(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, sa)): Params<(String, String)>,
    JsonBody(body): JsonBody<TokenRequest>,
) -> Result<Response, AdminError> {
    let token = Admin::new(&app.access, &caller)
        .create_service_account_token(
            &ns,
            &sa,
            body.metadata.name.as_deref(),
            body.spec.expires_in.as_deref(),
        )
        .await?;
    Ok(created(token))
}

pub(super) async fn list_namespace(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(ns): Params<String>,
) -> Result<Response, AdminError> {
    Ok(list(
        Admin::new(&app.access, &caller)
            .namespace_tokens(&ns)
            .await?,
    ))
}

pub(super) async fn delete_namespace(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, name)): Params<(String, String)>,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .delete_namespace_token(&ns, &name)
        .await?;
    Ok(Json(Status::deleted("tokens", &name)).into_response())
}
