//! `/api/v1/tokens` (the caller's own) and
//! `/api/v1/namespaces/{ns}/…/tokens` (service accounts').

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::objects::{List, Status, TokenObject, TokenRequest};
use super::{Authenticated, JsonBody, Params};
use crate::api::AppState;
use crate::auth::admin::{Admin, AdminError, CreatedToken};

/// `201` with the secret, which no cache may keep.
fn created(token: CreatedToken) -> Response {
    let mut response = (StatusCode::CREATED, Json(TokenObject::from(token))).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn list(tokens: Vec<crate::metadata::access::Token>) -> Response {
    let items = tokens.into_iter().map(TokenObject::from).collect();
    Json(List::<TokenObject>::of("Token", items)).into_response()
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

pub(super) async fn delete_own(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(name): Params<String>,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .delete_own_token(&name)
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
