//! `/api/v1/namespaces/{ns}/serviceaccounts`

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Authenticated, JsonBody, Params};
use crate::admin::{Admin, AdminError};
use crate::api::AppState;
use crate::wire::{self, List, NamedBody, Status};

pub(super) async fn list(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(ns): Params<String>,
) -> Result<Response, AdminError> {
    let accounts = Admin::new(&app.access, &caller)
        .service_accounts(&ns)
        .await?;
    let items = accounts
        .into_iter()
        .map(wire::ServiceAccount::from)
        .collect();
    Ok(Json(List::<wire::ServiceAccount>::of("ServiceAccount", items)).into_response())
}

pub(super) async fn create(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(ns): Params<String>,
    JsonBody(body): JsonBody<NamedBody>,
) -> Result<Response, AdminError> {
    let account = Admin::new(&app.access, &caller)
        .create_service_account(&ns, body.metadata.name.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::ServiceAccount::from(account)),
    )
        .into_response())
}

pub(super) async fn get(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, name)): Params<(String, String)>,
) -> Result<Response, AdminError> {
    let account = Admin::new(&app.access, &caller)
        .service_account(&ns, &name)
        .await?;
    Ok(Json(wire::ServiceAccount::from(account)).into_response())
}

pub(super) async fn delete(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, name)): Params<(String, String)>,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .delete_service_account(&ns, &name)
        .await?;
    Ok(Json(Status::deleted("serviceaccounts", &name)).into_response())
}
