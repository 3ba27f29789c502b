//! Records of the administration service as the API's objects: the
//! conversions into the shapes of [`crate::wire`], which the server writes and
//! the CLI reads; and the answers that carry them ([`ok`], [`created`],
//! [`listed`], [`deleted`]), with [`Call`], what a handler starts from, so
//! that each handler says only what it asks of the service.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Authenticated;
use crate::admin::{
    Admin, AdminError, CreatedToken, RoleBinding, SubjectRef, UserInfo, WhoCan, rfc3339,
};
use crate::api::AppState;
use crate::auth::Caller;
use crate::metadata::access::{
    BindingSubject, Group, Namespace, ServiceAccount, SubjectKind, Token, TokenSubject,
};
use crate::metadata::jobs::{JobOutcome, JobStatus};
use crate::wire::{self, API_VERSION, Extra, List, ObjectMeta, Status, Subject};

// --- answers: the one place where a handler's result becomes a response.

/// What a handler of the administration API returns.
pub(super) type Answer = Result<Response, AdminError>;

/// The application and the authenticated caller, which every handler but
/// the bootstrap's starts from. Extracted first, as [`Authenticated`] is,
/// so that an anonymous caller is `401` before the path or body is read.
pub(super) struct Call {
    pub app: AppState,
    pub caller: Caller,
}

impl Call {
    /// The administration service, acting for the caller.
    pub fn admin(&self) -> Admin<'_> {
        Admin::new(&self.app.access, &self.caller)
    }
}

impl FromRequestParts<AppState> for Call {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AdminError> {
        let Authenticated(caller) = Authenticated::from_request_parts(parts, app).await?;
        Ok(Call {
            app: app.clone(),
            caller,
        })
    }
}

/// `200` with `record` as the API's object `W`.
pub(super) fn ok<W: Serialize>(record: impl Into<W>) -> Answer {
    Ok(Json(record.into()).into_response())
}

/// `201` with the object just created.
pub(super) fn created<W: Serialize>(record: impl Into<W>) -> Answer {
    Ok((StatusCode::CREATED, Json(record.into())).into_response())
}

/// `200` with a `<kind>List` of the records as objects `W`.
pub(super) fn listed<W: Serialize + From<T>, T>(kind: &str, records: Vec<T>) -> Answer {
    let items = records.into_iter().map(W::from).collect();
    Ok(Json(List::<W>::of(kind, items)).into_response())
}

/// `200` with the `Status` of a deletion of `kind` `name`.
pub(super) fn deleted(kind: &str, name: &str) -> Answer {
    Ok(Json(Status::deleted(kind, name)).into_response())
}

/// `200` with a `Status` that says `message` about `kind` `name`.
pub(super) fn done(kind: &str, name: &str, message: String) -> Answer {
    Ok(Json(Status {
        message,
        ..Status::deleted(kind, name)
    })
    .into_response())
}

/// An answer that holds a secret, which no cache may keep.
pub(super) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The value of the query parameter `key`, if given.
pub(super) fn query_param(uri: &Uri, key: &str) -> Option<String> {
    uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    })
}

// --- records as objects

fn meta(name: &str, uid: Option<&str>, created_at: Option<i64>) -> ObjectMeta {
    ObjectMeta {
        name: name.to_owned(),
        namespace: None,
        uid: uid.map(str::to_owned),
        creation_timestamp: created_at.map(rfc3339),
        annotations: BTreeMap::new(),
        extra: Extra::new(),
    }
}

impl From<Namespace> for wire::Project {
    fn from(ns: Namespace) -> wire::Project {
        let mut metadata = meta(&ns.name, Some(&ns.uid), Some(ns.created_at));
        if let Some(by) = ns.created_by {
            metadata
                .annotations
                .insert("openshift.io/requester".to_owned(), by);
        }
        wire::Project {
            api_version: API_VERSION.into(),
            kind: "Project".into(),
            metadata,
            status: Some(wire::ProjectStatus {
                phase: "Active".into(),
                extra: Extra::new(),
            }),
            extra: Extra::new(),
        }
    }
}

impl From<ServiceAccount> for wire::ServiceAccount {
    fn from(sa: ServiceAccount) -> Self {
        let mut metadata = meta(&sa.name, Some(&sa.uid), Some(sa.created_at));
        metadata.namespace = Some(sa.namespace.clone());
        wire::ServiceAccount {
            api_version: API_VERSION.into(),
            kind: "ServiceAccount".into(),
            username: Some(format!(
                "{}{}:{}",
                wire::SERVICE_ACCOUNT_PREFIX,
                sa.namespace,
                sa.name
            )),
            metadata,
            extra: Extra::new(),
        }
    }
}

impl From<Token> for wire::Token {
    /// Without the secret, as listed.
    fn from(token: Token) -> Self {
        let mut metadata = meta(&token.name, Some(&token.uid), Some(token.created_at));
        metadata.namespace = token.namespace().map(str::to_owned);
        let subject = match &token.subject {
            TokenSubject::User(name) => name.clone(),
            TokenSubject::ServiceAccount { namespace, name } => {
                format!("{}{namespace}:{name}", wire::SERVICE_ACCOUNT_PREFIX)
            }
        };
        wire::Token {
            api_version: API_VERSION.into(),
            kind: "Token".into(),
            metadata,
            spec: wire::TokenSpec {
                subject: Some(subject),
                expiration_timestamp: token.expires_at.map(rfc3339),
                extra: Extra::new(),
            },
            status: None,
            extra: Extra::new(),
        }
    }
}

impl From<CreatedToken> for wire::Token {
    /// With the secret: only when just created.
    fn from(created: CreatedToken) -> Self {
        let mut object = wire::Token::from(created.token);
        object.status = Some(wire::TokenStatus {
            token: Some(created.secret),
            extra: Extra::new(),
        });
        object
    }
}

impl From<BindingSubject> for Subject {
    fn from(s: BindingSubject) -> Self {
        Subject {
            kind: s.kind.as_str().to_owned(),
            name: s.name,
            namespace: (s.kind == SubjectKind::ServiceAccount).then_some(s.namespace),
        }
    }
}

impl From<&Subject> for SubjectRef {
    fn from(s: &Subject) -> Self {
        SubjectRef {
            kind: s.kind.clone(),
            name: s.name.clone(),
            namespace: s.namespace.clone(),
        }
    }
}

impl From<RoleBinding> for wire::RoleBinding {
    fn from(b: RoleBinding) -> Self {
        let mut metadata = meta(&b.role, None, None);
        let cluster = b.namespace.is_none();
        metadata.namespace = b.namespace;
        wire::RoleBinding {
            api_version: API_VERSION.into(),
            kind: wire::RoleBinding::kind_for(cluster).into(),
            metadata,
            role_ref: Some(wire::RoleRef {
                kind: "ClusterRole".into(),
                name: b.role,
            }),
            subjects: b.subjects.into_iter().map(Subject::from).collect(),
            extra: Extra::new(),
        }
    }
}

impl From<WhoCan> for wire::AccessReview {
    fn from(w: WhoCan) -> Self {
        wire::AccessReview {
            api_version: API_VERSION.into(),
            kind: "ResourceAccessReviewResponse".into(),
            namespace: w.namespace,
            verb: w.verb.as_str().into(),
            users: w.users,
            groups: w.groups,
            extra: Extra::new(),
        }
    }
}

impl From<UserInfo> for wire::User {
    fn from(u: UserInfo) -> Self {
        wire::User {
            api_version: API_VERSION.into(),
            kind: "User".into(),
            metadata: meta(&u.name, u.uid.as_deref(), u.created_at),
            email: u.email,
            groups: u.groups,
            super_user: u.super_user,
            extra: Extra::new(),
        }
    }
}

impl From<Group> for wire::Group {
    fn from(g: Group) -> Self {
        wire::Group {
            api_version: API_VERSION.into(),
            kind: "Group".into(),
            metadata: meta(&g.name, Some(&g.uid), Some(g.created_at)),
            users: g.users,
            extra: Extra::new(),
        }
    }
}

impl From<JobStatus> for wire::Job {
    fn from(job: JobStatus) -> Self {
        wire::Job {
            api_version: API_VERSION.into(),
            kind: "Job".into(),
            metadata: meta(&job.name, None, None),
            status: wire::JobStatus {
                holder: job.lease_holder,
                lease_expiry_time: job.lease_until.map(rfc3339),
                last_start_time: job.last_started_at.map(rfc3339),
                last_completion_time: job.last_finished_at.map(rfc3339),
                last_outcome: job.last_outcome.map(|outcome| {
                    match outcome {
                        JobOutcome::Succeeded => "Succeeded",
                        JobOutcome::Failed => "Failed",
                    }
                    .to_owned()
                }),
                last_error: job.last_error,
                last_replica: job.last_replica,
                consecutive_failures: job.consecutive_failures,
                runs: job.runs,
                next_run_time: Some(rfc3339(job.next_run_at)),
                extra: Extra::new(),
            },
            extra: Extra::new(),
        }
    }
}
