//! `/api/v1/namespaces/{ns}/secrets`: pull secrets. Answers never hold a
//! credential; requests that do are read here and handed to the service,
//! never logged.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Authenticated, JsonBody, Params};
use crate::admin::{Admin, AdminError, NewSecret, SecretView, rfc3339};
use crate::api::AppState;
use crate::wire::{self, API_VERSION, Extra, List, ObjectMeta, SecretRequest, Status};

impl From<SecretView> for wire::Secret {
    fn from(view: SecretView) -> wire::Secret {
        let info = view.info;
        let registries = view.show_registries.then(|| {
            info.registries
                .into_iter()
                .map(|r| wire::SecretRegistry {
                    server: r.server,
                    username: r.username,
                    email: r.email,
                    extra: Extra::new(),
                })
                .collect()
        });
        wire::Secret {
            api_version: API_VERSION.into(),
            kind: "Secret".into(),
            metadata: ObjectMeta {
                name: info.name,
                namespace: Some(info.namespace),
                uid: Some(info.uid),
                creation_timestamp: Some(rfc3339(info.created_at)),
                annotations: BTreeMap::new(),
                extra: Extra::new(),
            },
            secret_type: info.secret_type,
            registries,
            extra: Extra::new(),
        }
    }
}

pub(super) async fn list(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(ns): Params<String>,
) -> Result<Response, AdminError> {
    let secrets = Admin::new(&app.access, &caller)
        .secrets(&app.secrets, &ns)
        .await?;
    let items = secrets.into_iter().map(wire::Secret::from).collect();
    Ok(Json(List::<wire::Secret>::of("Secret", items)).into_response())
}

pub(super) async fn create(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(ns): Params<String>,
    JsonBody(body): JsonBody<SecretRequest>,
) -> Result<Response, AdminError> {
    let request = NewSecret {
        name: body.metadata.name.as_deref(),
        secret_type: body.secret_type.as_deref(),
        data: body.data.as_ref(),
        string_data: body.string_data.as_ref(),
    };
    let secret = Admin::new(&app.access, &caller)
        .create_secret(&app.secrets, &ns, request)
        .await?;
    Ok((StatusCode::CREATED, Json(wire::Secret::from(secret))).into_response())
}

pub(super) async fn get(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, name)): Params<(String, String)>,
) -> Result<Response, AdminError> {
    let secret = Admin::new(&app.access, &caller)
        .secret(&app.secrets, &ns, &name)
        .await?;
    Ok(Json(wire::Secret::from(secret)).into_response())
}

pub(super) async fn delete(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, name)): Params<(String, String)>,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, &caller)
        .delete_secret(&app.secrets, &ns, &name)
        .await?;
    Ok(Json(Status::deleted("secrets", &name)).into_response())
}
