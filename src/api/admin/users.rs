//! `/api/v1/users`

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Authenticated, JsonBody, Params};
use crate::admin::{Admin, AdminError, NewUser};
use crate::api::AppState;
use crate::wire::{self, List, PasswordRequest, Status, UserRequest};

pub(super) async fn list(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Response, AdminError> {
    let users = Admin::new(&app.access, &caller).users().await?;
    let items = users.into_iter().map(wire::User::from).collect();
    Ok(Json(List::<wire::User>::of("User", items)).into_response())
}

pub(super) async fn create(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<UserRequest>,
) -> Result<Response, AdminError> {
    let user = Admin::new(&app.access, &caller)
        .create_user(&NewUser {
            name: body.metadata.name,
            password: body.password,
            email: body.email,
            super_user: body.super_user,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(wire::User::from(user))).into_response())
}

/// `GET /api/v1/users/~`: the caller.
pub(super) async fn me(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Response, AdminError> {
    let me = Admin::new(&app.access, &caller).me().await?;
    Ok(Json(wire::User::from(me)).into_response())
}

pub(super) async fn get(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(name): Params<String>,
) -> Result<Response, AdminError> {
    let user = Admin::new(&app.access, &caller).user(&name).await?;
    Ok(Json(wire::User::from(user)).into_response())
}

pub(super) async fn delete(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(name): Params<String>,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller).delete_user(&name).await?;
    Ok(Json(Status::deleted("users", &name)).into_response())
}

/// `POST /api/v1/users/{name}/unlock`
pub(super) async fn unlock(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(name): Params<String>,
) -> Result<Response, AdminError> {
    let was_locked = Admin::new(&app.access, &caller).unlock_user(&name).await?;
    let message = if was_locked {
        format!("user \"{name}\" unlocked")
    } else {
        format!("user \"{name}\" was not locked out")
    };
    Ok(Json(Status {
        message,
        ..Status::deleted("users", &name)
    })
    .into_response())
}

pub(super) async fn set_password(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(name): Params<String>,
    JsonBody(body): JsonBody<PasswordRequest>,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .set_password(&name, body.password.as_deref())
        .await?;
    Ok(Json(Status {
        message: format!("password of user \"{name}\" changed"),
        ..Status::deleted("users", &name)
    })
    .into_response())
}
