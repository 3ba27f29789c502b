//! `/api/v1/groups`

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Authenticated, JsonBody, Params};
use crate::admin::{Admin, AdminError};
use crate::api::AppState;
use crate::wire::{self, GroupRequest, List, Status};

pub(super) async fn list(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Response, AdminError> {
    let groups = Admin::new(&app.access, &caller).groups().await?;
    let items = groups.into_iter().map(wire::Group::from).collect();
    Ok(Json(List::<wire::Group>::of("Group", items)).into_response())
}

pub(super) async fn create(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<GroupRequest>,
) -> Result<Response, AdminError> {
    let group = Admin::new(&app.access, &caller)
        .create_group(
            body.metadata.name.as_deref(),
            &body.users.unwrap_or_default(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(wire::Group::from(group))).into_response())
}

pub(super) async fn get(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(name): Params<String>,
) -> Result<Response, AdminError> {
    let group = Admin::new(&app.access, &caller).group(&name).await?;
    Ok(Json(wire::Group::from(group)).into_response())
}

/// `PUT`: replaces the members. A `metadata.name` in the body, if any, must
/// be the group's.
pub(super) async fn replace(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(name): Params<String>,
    JsonBody(body): JsonBody<GroupRequest>,
) -> Result<Response, AdminError> {
    if body.metadata.name.as_deref().is_some_and(|n| n != name) {
        return Err(AdminError::BadRequest(format!(
            "metadata.name {:?} does not match the group in the path, {name:?}",
            body.metadata.name.unwrap_or_default()
        )));
    }
    let users = body.users.ok_or_else(|| {
        AdminError::Invalid("users: required (an empty list removes every member)".into())
    })?;
    let group = Admin::new(&app.access, &caller)
        .replace_group(&name, &users)
        .await?;
    Ok(Json(wire::Group::from(group)).into_response())
}

pub(super) async fn delete(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(name): Params<String>,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller).delete_group(&name).await?;
    Ok(Json(Status::deleted("groups", &name)).into_response())
}
