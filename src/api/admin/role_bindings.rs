//! `/api/v1/namespaces/{ns}/rolebindings`, `/api/v1/clusterrolebindings`
//! and `/api/v1/namespaces/{ns}/whocan`.

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};

use super::{Authenticated, JsonBody, Params};
use crate::admin::{Admin, AdminError, RoleBinding, SubjectRef};
use crate::api::AppState;
use crate::auth::Caller;
use crate::wire::{self, Status, SubjectsBody};

fn list_response(cluster: bool, bindings: Vec<RoleBinding>) -> Response {
    let items = bindings.into_iter().map(wire::RoleBinding::from).collect();
    Json(wire::List::<wire::RoleBinding>::of(
        wire::RoleBinding::kind_for(cluster),
        items,
    ))
    .into_response()
}

fn one(binding: RoleBinding) -> Response {
    Json(wire::RoleBinding::from(binding)).into_response()
}

fn subjects(body: &SubjectsBody) -> Vec<SubjectRef> {
    body.subjects.iter().map(SubjectRef::from).collect()
}

async fn list_in(
    app: &AppState,
    caller: &Caller,
    ns: Option<&str>,
) -> Result<Response, AdminError> {
    let bindings = Admin::new(&app.access, caller).role_bindings(ns).await?;
    Ok(list_response(ns.is_none(), bindings))
}

async fn get_in(
    app: &AppState,
    caller: &Caller,
    ns: Option<&str>,
    role: &str,
) -> Result<Response, AdminError> {
    Ok(one(Admin::new(&app.access, caller)
        .role_binding(ns, role)
        .await?))
}

async fn delete_in(
    app: &AppState,
    caller: &Caller,
    ns: Option<&str>,
    role: &str,
) -> Result<Response, AdminError> {
    Admin::new(&app.access, caller)
        .delete_role_binding(ns, role)
        .await?;
    let kind = if ns.is_some() {
        "rolebindings"
    } else {
        "clusterrolebindings"
    };
    Ok(Json(Status::deleted(kind, role)).into_response())
}

async fn add_in(
    app: &AppState,
    caller: &Caller,
    ns: Option<&str>,
    role: &str,
    body: &SubjectsBody,
) -> Result<Response, AdminError> {
    Ok(one(Admin::new(&app.access, caller)
        .add_subjects(ns, role, &subjects(body))
        .await?))
}

async fn remove_in(
    app: &AppState,
    caller: &Caller,
    ns: Option<&str>,
    role: &str,
    body: &SubjectsBody,
) -> Result<Response, AdminError> {
    Ok(one(Admin::new(&app.access, caller)
        .remove_subjects(ns, role, &subjects(body))
        .await?))
}

pub(super) async fn list(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(ns): Params<String>,
) -> Result<Response, AdminError> {
    list_in(&app, &caller, Some(&ns)).await
}

pub(super) async fn get(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, role)): Params<(String, String)>,
) -> Result<Response, AdminError> {
    get_in(&app, &caller, Some(&ns), &role).await
}

pub(super) async fn delete(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, role)): Params<(String, String)>,
) -> Result<Response, AdminError> {
    delete_in(&app, &caller, Some(&ns), &role).await
}

pub(super) async fn add_subjects(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, role)): Params<(String, String)>,
    JsonBody(body): JsonBody<SubjectsBody>,
) -> Result<Response, AdminError> {
    add_in(&app, &caller, Some(&ns), &role, &body).await
}

pub(super) async fn remove_subjects(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params((ns, role)): Params<(String, String)>,
    JsonBody(body): JsonBody<SubjectsBody>,
) -> Result<Response, AdminError> {
    remove_in(&app, &caller, Some(&ns), &role, &body).await
}

pub(super) async fn cluster_list(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Response, AdminError> {
    list_in(&app, &caller, None).await
}

pub(super) async fn cluster_get(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(role): Params<String>,
) -> Result<Response, AdminError> {
    get_in(&app, &caller, None, &role).await
}

pub(super) async fn cluster_delete(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(role): Params<String>,
) -> Result<Response, AdminError> {
    delete_in(&app, &caller, None, &role).await
}

pub(super) async fn cluster_add_subjects(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(role): Params<String>,
    JsonBody(body): JsonBody<SubjectsBody>,
) -> Result<Response, AdminError> {
    add_in(&app, &caller, None, &role, &body).await
}

pub(super) async fn cluster_remove_subjects(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(role): Params<String>,
    JsonBody(body): JsonBody<SubjectsBody>,
) -> Result<Response, AdminError> {
    remove_in(&app, &caller, None, &role, &body).await
}

/// `GET /api/v1/namespaces/{ns}/whocan?verb=pull`
pub(super) async fn who_can(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(ns): Params<String>,
    uri: Uri,
) -> Result<Response, AdminError> {
    let verb = uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "verb")
            .map(|(_, v)| v.into_owned())
    });
    let answer = Admin::new(&app.access, &caller)
        .who_can(&ns, verb.as_deref())
        .await?;
    Ok(Json(wire::AccessReview::from(answer)).into_response())
}
