//! The administration service behind `/api/v1` (docs/rest-api.md):
//! projects, service accounts, tokens, role bindings, users and groups, and
//! the rules saying who may read or change them.
//!
//! Nothing here knows HTTP; `api::admin` turns requests into calls on
//! [`Admin`] and [`AdminError`]s into `Status` objects. One file per
//! resource, as in `api::admin`.
//!
//! Visibility follows OpenShift: a namespace the caller has no role in is
//! reported as not found, whatever the request; `Forbidden` is reserved for
//! things the caller can see but not change. Every write tells
//! [`AccessControl::policy_changed`] so the very next request sees it.

mod garbage;
mod groups;
mod image_streams;
mod initialize;
mod jobs;
mod names;
mod projects;
mod proxies;
mod pruner;
mod quotas;
mod role_bindings;
mod secrets;
mod service_accounts;
mod subjects;
mod tag_policies;
#[cfg(test)]
mod tests;
mod tokens;
mod users;

pub use initialize::initialize;
pub use names::{
    MAX_OBJECT_NAME, MAX_PASSWORD, MAX_PROJECT_NAME, parse_expires_in, require_role,
    valid_object_name, valid_project_name,
};
pub use quotas::{NamespaceUsage, QuotaLimits};
pub use secrets::{NewSecret, SecretView};
pub use subjects::{SubjectRef, parse_subject};
pub use tag_policies::{MAX_TAG_PATTERNS, parse_tag_patterns};

use std::sync::Arc;

use crate::auth::policy::{GROUP_AUTHENTICATED, PolicySnapshot, Principal};
use crate::auth::roles::{Verb, Verbs};
use crate::auth::{AccessControl, Caller, Challenge, password};
use crate::metadata::access::{AccessStore, BindingSubject, Namespace, SubjectKind, Token, User};
use crate::metadata::{MetadataError, Timestamp};
use crate::wire::SERVICE_ACCOUNT_PREFIX;

/// Everything the administration API can answer besides success. Mapped to
/// `Status` objects (reason and code) in one place, `api::admin`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Malformed request (400 `BadRequest`).
    #[error("{0}")]
    BadRequest(String),
    /// No or wrong credentials (401 `Unauthorized`); the HTTP layer adds
    /// the challenge.
    #[error("authentication required")]
    Unauthorized { challenge: Option<Challenge> },
    /// Visible but not allowed (403 `Forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// Absent, or in a namespace the caller has no role in (404 `NotFound`).
    #[error("{0}")]
    NotFound(String),
    /// 409 `AlreadyExists`.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request conflicts with the state of things (409 `Conflict`).
    #[error("{0}")]
    Conflict(String),
    /// A field's value is not acceptable (422 `Invalid`).
    #[error("{0}")]
    Invalid(String),
    /// 405 `MethodNotAllowed` (a path that exists, a method it lacks).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Locked out after failed logins (429 `TooManyRequests`).
    #[error("too many failed logins; retry in {retry_after_secs}s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] MetadataError),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type AdminResult<T> = Result<T, AdminError>;

fn not_found(resource: &str, name: &str) -> AdminError {
    AdminError::NotFound(format!("{resource} \"{name}\" not found"))
}

fn already_exists(resource: &str, name: &str) -> AdminError {
    AdminError::AlreadyExists(format!("{resource} \"{name}\" already exists"))
}

/// `RFC 3339`, UTC, whole seconds: `2026-11-22T10:00:00Z`.
pub fn rfc3339(at: Timestamp) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(at.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

// ---------------------------------------------------------------------------
// Results

/// A token just made, with its secret (shown this once).
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub token: Token,
    pub secret: String,
}

/// The subjects bound to one role, in a namespace or (`None`) cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleBinding {
    pub namespace: Option<String>,
    pub role: String,
    pub subjects: Vec<BindingSubject>,
}

/// A user (or, for `users/~`, a service account) as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: Option<String>,
    pub created_at: Option<Timestamp>,
    pub email: Option<String>,
    /// Named groups, then the built-in ones that apply.
    pub groups: Vec<String>,
    pub super_user: bool,
}

/// The answer to who-can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoCan {
    pub namespace: String,
    pub verb: Verb,
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

/// A user to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub name: Option<String>,
    pub password: Option<String>,
    pub email: Option<String>,
    pub super_user: bool,
}

/// The first user, made by `POST /api/v1/user/initialize`.
#[derive(Debug, Clone)]
pub struct Initialized {
    pub user: User,
    pub token: Option<CreatedToken>,
}

/// The name a principal has as a subject of lists (`who-can`).
fn subject_display(subject: &BindingSubject) -> String {
    match subject.kind {
        SubjectKind::ServiceAccount => format!(
            "{SERVICE_ACCOUNT_PREFIX}{}:{}",
            subject.namespace, subject.name
        ),
        _ => subject.name.clone(),
    }
}

fn user_info(policy: &PolicySnapshot, user: &User) -> UserInfo {
    let mut groups = policy.groups_of(&user.name);
    groups.push(GROUP_AUTHENTICATED.to_owned());
    UserInfo {
        name: user.name.clone(),
        uid: Some(user.uid.clone()),
        created_at: Some(user.created_at),
        email: user.email.clone(),
        groups,
        super_user: user.super_user || policy.is_super_user(&user.name),
    }
}

async fn hash_password(secret: &str) -> AdminResult<String> {
    password::hash_bounded(secret.to_owned())
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))
}

// ---------------------------------------------------------------------------
// The service

/// The administration operations, on behalf of one caller.
pub struct Admin<'a> {
    access: &'a AccessControl,
    caller: &'a Caller,
}

impl<'a> Admin<'a> {
    pub fn new(access: &'a AccessControl, caller: &'a Caller) -> Self {
        Admin { access, caller }
    }

    fn store(&self) -> &dyn AccessStore {
        self.access.store().as_ref()
    }

    /// The caller's principal; anonymous callers are refused.
    fn principal(&self) -> AdminResult<&'a Principal> {
        if self.caller.is_anonymous() {
            return Err(AdminError::Unauthorized { challenge: None });
        }
        Ok(&self.caller.principal)
    }

    async fn policy(&self) -> AdminResult<Arc<PolicySnapshot>> {
        self.principal()?;
        Ok(self.access.policy().await?)
    }

    fn forbidden(&self, what: &str) -> AdminError {
        let who = match &self.caller.principal {
            Principal::ServiceAccount { .. } => "ServiceAccount",
            _ => "User",
        };
        AdminError::Forbidden(format!(
            "{who} \"{}\" cannot {what}",
            self.caller.principal.name()
        ))
    }

    async fn require_cluster_admin(&self, what: &str) -> AdminResult<Arc<PolicySnapshot>> {
        let policy = self.policy().await?;
        if policy.is_cluster_admin(&self.caller.principal) {
            Ok(policy)
        } else {
            Err(self.forbidden(what))
        }
    }

    /// The namespace and the caller's verbs in it, if the caller has any
    /// role there; otherwise not found, as if it did not exist.
    async fn visible_namespace(&self, name: &str) -> AdminResult<(Namespace, Verbs)> {
        let policy = self.policy().await?;
        let verbs = policy.verbs(&self.caller.principal, name);
        let namespace = if verbs.is_empty() {
            None
        } else {
            self.store().namespace(name).await?
        };
        namespace
            .map(|ns| (ns, verbs))
            .ok_or_else(|| not_found("namespaces", name))
    }

    /// The namespace, if the caller may `verb` in it: 404 without a role,
    /// 403 with a role lacking `verb`.
    async fn namespace_for(&self, name: &str, verb: Verb, what: &str) -> AdminResult<Namespace> {
        let (namespace, verbs) = self.visible_namespace(name).await?;
        if !verbs.contains(verb) {
            return Err(self.forbidden(&format!("{what} in project \"{name}\"")));
        }
        Ok(namespace)
    }
}
