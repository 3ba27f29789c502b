//! `/api/v1/projects`

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Authenticated, JsonBody, Params};
use crate::admin::{Admin, AdminError};
use crate::api::AppState;
use crate::wire::{List, NamedBody, Project, Status};

pub(super) async fn list(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Response, AdminError> {
    let projects = Admin::new(&app.access, &caller).projects().await?;
    let items = projects.into_iter().map(Project::from).collect();
    Ok(Json(List::<Project>::of("Project", items)).into_response())
}

pub(super) async fn create(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<NamedBody>,
) -> Result<Response, AdminError> {
    let project = Admin::new(&app.access, &caller)
        .create_project(body.metadata.name.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(Project::from(project))).into_response())
}

pub(super) async fn get(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(name): Params<String>,
) -> Result<Response, AdminError> {
    let project = Admin::new(&app.access, &caller).project(&name).await?;
    Ok(Json(Project::from(project)).into_response())
}

pub(super) async fn delete(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(name): Params<String>,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .delete_project(&name)
        .await?;
    // Its repositories went with it.
    app.registry.forget_namespace(&name);
    Ok(Json(Status::deleted("projects", &name)).into_response())
}
