//! `POST /api/v1/user/initialize`: the first super user (Quay's bootstrap),
//! without credentials, while no user exists.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::JsonBody;
use super::objects::no_store;
use crate::admin::{self, AdminError};
use crate::api::AppState;
use crate::config::Bootstrap;
use crate::wire::{InitializeRequest, InitializeResponse};

pub(super) async fn initialize(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<InitializeRequest>,
) -> Result<Response, AdminError> {
    let done = admin::initialize(
        &app.access,
        app.bootstrap == Bootstrap::Initialize,
        body.username.as_deref(),
        body.password.as_deref(),
        body.email.as_deref(),
        body.access_token,
    )
    .await?;
    // The answer may hold the new user's token.
    Ok(no_store(
        Json(InitializeResponse {
            username: done.user.name,
            email: done.user.email,
            access_token: done.token.map(|t| t.secret),
        })
        .into_response(),
    ))
}
