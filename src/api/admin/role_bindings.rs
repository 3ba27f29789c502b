//! `/api/v1/namespaces/{ns}/rolebindings`, `/api/v1/clusterrolebindings`
//! and `/api/v1/namespaces/{ns}/whocan`.
//!
//! A namespace's bindings and the cluster's are served by the same
//! functions: `ns` is `None` for the cluster's.

use axum::http::Uri;

use super::objects::{Answer, Call, deleted, listed, ok, query_param};
use super::{JsonBody, Params};
use crate::admin::SubjectRef;
use crate::wire::{AccessReview, RoleBinding, SubjectsBody};

fn subjects(body: &SubjectsBody) -> Vec<SubjectRef> {
    body.subjects.iter().map(SubjectRef::from).collect()
}

async fn list_in(call: Call, ns: Option<&str>) -> Answer {
    let bindings = call.admin().role_bindings(ns).await?;
    listed::<RoleBinding, _>(RoleBinding::kind_for(ns.is_none()), bindings)
}

async fn get_in(call: Call, ns: Option<&str>, role: &str) -> Answer {
    ok::<RoleBinding>(call.admin().role_binding(ns, role).await?)
}

async fn delete_in(call: Call, ns: Option<&str>, role: &str) -> Answer {
    call.admin().delete_role_binding(ns, role).await?;
    let kind = if ns.is_some() {
        "rolebindings"
    } else {
        "clusterrolebindings"
    };
    deleted(kind, role)
}

async fn add_in(call: Call, ns: Option<&str>, role: &str, body: &SubjectsBody) -> Answer {
    ok::<RoleBinding>(call.admin().add_subjects(ns, role, &subjects(body)).await?)
}

async fn remove_in(call: Call, ns: Option<&str>, role: &str, body: &SubjectsBody) -> Answer {
    ok::<RoleBinding>(
        call.admin()
            .remove_subjects(ns, role, &subjects(body))
            .await?,
    )
}

/// `{ns}/{role}` of a namespace's binding.
type InNamespace = Params<(String, String)>;

pub(super) async fn list(call: Call, Params(ns): Params<String>) -> Answer {
    list_in(call, Some(&ns)).await
}

pub(super) async fn get(call: Call, Params((ns, role)): InNamespace) -> Answer {
    get_in(call, Some(&ns), &role).await
}

pub(super) async fn delete(call: Call, Params((ns, role)): InNamespace) -> Answer {
    delete_in(call, Some(&ns), &role).await
}

pub(super) async fn add_subjects(
    call: Call,
    Params((ns, role)): InNamespace,
    JsonBody(body): JsonBody<SubjectsBody>,
) -> Answer {
    add_in(call, Some(&ns), &role, &body).await
}

pub(super) async fn remove_subjects(
    call: Call,
    Params((ns, role)): InNamespace,
    JsonBody(body): JsonBody<SubjectsBody>,
) -> Answer {
    remove_in(call, Some(&ns), &role, &body).await
}

pub(super) async fn cluster_list(call: Call) -> Answer {
    list_in(call, None).await
}

pub(super) async fn cluster_get(call: Call, Params(role): Params<String>) -> Answer {
    get_in(call, None, &role).await
}

pub(super) async fn cluster_delete(call: Call, Params(role): Params<String>) -> Answer {
    delete_in(call, None, &role).await
}

pub(super) async fn cluster_add_subjects(
    call: Call,
    Params(role): Params<String>,
    JsonBody(body): JsonBody<SubjectsBody>,
) -> Answer {
    add_in(call, None, &role, &body).await
}

pub(super) async fn cluster_remove_subjects(
    call: Call,
    Params(role): Params<String>,
    JsonBody(body): JsonBody<SubjectsBody>,
) -> Answer {
    remove_in(call, None, &role, &body).await
}

/// `GET /api/v1/namespaces/{ns}/whocan?verb=pull`
pub(super) async fn who_can(call: Call, Params(ns): Params<String>, uri: Uri) -> Answer {
    let verb = query_param(&uri, "verb");
    ok::<AccessReview>(call.admin().who_can(&ns, verb.as_deref()).await?)
}
