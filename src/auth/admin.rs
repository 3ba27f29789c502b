//! The administration service behind `/api/v1` (docs/rest-api.md):
//! projects, service accounts, tokens, role bindings, users and groups, and
//! the rules saying who may read or change them.
//!
//! Nothing here knows HTTP beyond the challenge carried by
//! [`AdminError::Unauthorized`]; `api::admin` turns requests into calls on
//! [`Admin`] and [`AdminError`]s into `Status` objects.
//!
//! Visibility follows OpenShift: a namespace the caller has no role in is
//! reported as not found, whatever the request; `Forbidden` is reserved for
//! things the caller can see but not change. Every write tells
//! [`AccessControl::policy_changed`] so the very next request sees it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;

use super::policy::{
    GROUP_AUTHENTICATED, GROUP_SERVICE_ACCOUNTS, GROUP_UNAUTHENTICATED, PolicySnapshot, Principal,
};
use super::roles::{ROLES, Verb, Verbs, verbs_of};
use super::{AccessControl, Caller, password, tokens};
use crate::metadata::access::{
    AccessStore, Binding, BindingSubject, Group, Namespace, ServiceAccount, SubjectKind, Token,
    TokenSubject, User, UserDeletion,
};
use crate::metadata::{MetadataError, Timestamp, now};

/// Longest project name (a DNS label, as in OpenShift).
pub const MAX_PROJECT_NAME: usize = 63;
/// Longest user, group, service account or token name.
pub const MAX_OBJECT_NAME: usize = 253;
/// Longest password accepted (argon2 takes any length; this bounds work).
pub const MAX_PASSWORD: usize = 1024;

const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

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
    Unauthorized { challenge: Option<HeaderValue> },
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

// ---------------------------------------------------------------------------
// Names

/// `[a-z0-9]+([._-][a-z0-9]+)*`, at most 63 characters.
pub fn valid_project_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    name.len() <= MAX_PROJECT_NAME
        && !name.is_empty()
        && name
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.chars().all(alnum))
}

/// `[a-z0-9]([-a-z0-9._@]*[a-z0-9])?`, at most 253 characters: service
/// accounts, users, groups and tokens.
pub fn valid_object_name(name: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= MAX_OBJECT_NAME
                && alnum(first)
                && alnum(last)
                && bytes
                    .iter()
                    .all(|&b| alnum(b) || matches!(b, b'-' | b'.' | b'_' | b'@'))
        }
        _ => false,
    }
}

fn require_object_name(what: &str, name: Option<&str>) -> AdminResult<String> {
    let name = name.ok_or_else(|| AdminError::Invalid("metadata.name: required".into()))?;
    if name.starts_with("system:") {
        return Err(AdminError::Invalid(format!(
            "{what} name {name:?} is invalid: system: names are built in and cannot be created"
        )));
    }
    if !valid_object_name(name) {
        return Err(AdminError::Invalid(format!(
            "{what} name {name:?} is invalid: lowercase letters, digits, '-', '.', '_' and '@', \
             starting and ending with a letter or digit, at most {MAX_OBJECT_NAME} characters"
        )));
    }
    Ok(name.to_owned())
}

fn require_password(password: &str) -> AdminResult<()> {
    if password.is_empty() || password.len() > MAX_PASSWORD {
        return Err(AdminError::Invalid(format!(
            "password: must be 1 to {MAX_PASSWORD} bytes"
        )));
    }
    Ok(())
}

fn require_email(email: Option<&str>) -> AdminResult<Option<String>> {
    match email {
        None | Some("") => Ok(None),
        Some(e)
            if e.len() <= 254
                && e.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
                && !e.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(Some(e.to_owned()))
        }
        Some(e) => Err(AdminError::Invalid(format!(
            "email {e:?} is not an e-mail address"
        ))),
    }
}

/// A role name as given in a path: one of [`ROLES`], else 422.
pub fn require_role(role: &str) -> AdminResult<()> {
    if verbs_of(role).is_some() {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "role {role:?} does not exist; roles are {}",
            ROLES.join(", ")
        )))
    }
}

/// The units of a duration, as the OpenAPI document lists them.
const DURATION_UNITS: &[&str] = &[
    "nsec", "ns", "usec", "us", "msec", "ms", "seconds", "second", "sec", "s", "minutes", "minute",
    "min", "m", "hours", "hour", "hr", "h", "days", "day", "d", "weeks", "week", "w", "months",
    "month", "M", "years", "year", "y",
];

/// Whether `text` has the form the OpenAPI document gives for durations,
/// `^ *([0-9]{1,12} *UNIT *)+$`: humantime alone would also take fractions
/// and spaces inside numbers, which the document does not promise.
fn documented_duration(text: &str) -> bool {
    let mut rest = text.trim_start_matches(' ');
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if !(1..=12).contains(&digits) {
            return false;
        }
        rest = rest[digits..].trim_start_matches(' ');
        let letters = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        if !DURATION_UNITS.contains(&&rest[..letters]) {
            return false;
        }
        rest = rest[letters..].trim_start_matches(' ');
    }
    true
}

/// `24h`, `90m`, `30d`: the lifetime of a new token.
pub fn parse_expires_in(text: &str) -> AdminResult<Duration> {
    let invalid = || {
        AdminError::Invalid(format!(
            "spec.expiresIn {text:?} is not a duration such as 24h, 90m or 30d"
        ))
    };
    if !documented_duration(text) {
        return Err(invalid());
    }
    let duration = humantime::parse_duration(text.trim_matches(' ')).map_err(|_| invalid())?;
    // Whole seconds at least, and no more than a century.
    if duration < Duration::from_secs(1) || duration > Duration::from_secs(100 * 366 * 86_400) {
        return Err(invalid());
    }
    Ok(duration)
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
// Subjects of role bindings

/// A subject as a client gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectRef {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

fn valid_namespace_ref(ns: &str) -> bool {
    !ns.contains('/') && ns.parse::<crate::domain::names::RepositoryName>().is_ok()
}

fn is_builtin_group(name: &str) -> bool {
    matches!(
        name,
        GROUP_AUTHENTICATED | GROUP_UNAUTHENTICATED | GROUP_SERVICE_ACCOUNTS
    ) || name
        .strip_prefix(GROUP_SERVICE_ACCOUNTS)
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(valid_namespace_ref)
}

fn service_account_subject(namespace: &str, name: &str) -> AdminResult<BindingSubject> {
    if !valid_namespace_ref(namespace) || !valid_object_name(name) {
        return Err(AdminError::Invalid(format!(
            "service account {SERVICE_ACCOUNT_PREFIX}{namespace}:{name} is not a valid name"
        )));
    }
    Ok(BindingSubject {
        kind: SubjectKind::ServiceAccount,
        name: name.to_owned(),
        namespace: namespace.to_owned(),
    })
}

/// Validates a subject. A `User` named `system:serviceaccount:NS:NAME` is
/// that service account; a `ServiceAccount` without a namespace is in the
/// binding's namespace.
pub fn parse_subject(
    subject: &SubjectRef,
    binding_namespace: Option<&str>,
) -> AdminResult<BindingSubject> {
    let name = subject.name.as_str();
    match subject.kind.as_str() {
        "User" => {
            if let Some(rest) = name.strip_prefix(SERVICE_ACCOUNT_PREFIX) {
                let (ns, account) = rest.split_once(':').unwrap_or(("", rest));
                return service_account_subject(ns, account);
            }
            if name.starts_with("system:") || !valid_object_name(name) {
                return Err(AdminError::Invalid(format!(
                    "user name {name:?} is invalid (bind the group system:unauthenticated or \
                     system:authenticated to grant everyone)"
                )));
            }
            Ok(BindingSubject {
                kind: SubjectKind::User,
                name: name.to_owned(),
                namespace: String::new(),
            })
        }
        "Group" => {
            if !is_builtin_group(name) && (name.starts_with("system:") || !valid_object_name(name))
            {
                return Err(AdminError::Invalid(format!(
                    "group name {name:?} is invalid"
                )));
            }
            Ok(BindingSubject {
                kind: SubjectKind::Group,
                name: name.to_owned(),
                namespace: String::new(),
            })
        }
        "ServiceAccount" => {
            if let Some(rest) = name.strip_prefix(SERVICE_ACCOUNT_PREFIX) {
                let (ns, account) = rest.split_once(':').unwrap_or(("", rest));
                return service_account_subject(ns, account);
            }
            let namespace = subject
                .namespace
                .as_deref()
                .filter(|ns| !ns.is_empty())
                .or(binding_namespace)
                .ok_or_else(|| {
                    AdminError::Invalid(format!(
                        "service account subject {name:?} needs a namespace"
                    ))
                })?;
            service_account_subject(namespace, name)
        }
        other => Err(AdminError::Invalid(format!(
            "subject kind {other:?} is invalid: User, Group or ServiceAccount"
        ))),
    }
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
    let secret = secret.to_owned();
    tokio::task::spawn_blocking(move || password::hash(&secret))
        .await
        .map_err(|e| AdminError::Internal(format!("hashing a password: {e}")))?
        .map_err(|e| AdminError::Internal(format!("hashing a password: {e}")))
}

/// Makes a token for `subject`, named `name` or `<owner>-token-xxxxx`.
async fn issue_token(
    access: &AccessControl,
    subject: TokenSubject,
    name: Option<&str>,
    expires_in: Option<&str>,
) -> AdminResult<CreatedToken> {
    if let Some(name) = name {
        require_object_name("token", Some(name))?;
    }
    let lifetime = expires_in.map(parse_expires_in).transpose()?;
    let owner = match &subject {
        TokenSubject::User(name) => name.clone(),
        TokenSubject::ServiceAccount { name, .. } => name.clone(),
    };
    // A generated name may collide with an existing one; try a few.
    for _ in 0..5 {
        let created_at = now();
        let expires_at = match lifetime {
            Some(d) => Some(
                i64::try_from(d.as_millis())
                    .ok()
                    .and_then(|ms| created_at.checked_add(ms))
                    .ok_or_else(|| AdminError::Invalid("spec.expiresIn is too long".into()))?,
            ),
            None => None,
        };
        let token = Token {
            uid: uuid::Uuid::new_v4().to_string(),
            name: name
                .map(str::to_owned)
                .unwrap_or_else(|| tokens::generated_name(&format!("{owner}-token"))),
            subject: subject.clone(),
            created_at,
            expires_at,
        };
        let secret = tokens::new_secret();
        if access
            .store()
            .create_token(&token, &tokens::secret_hash(&secret))
            .await?
        {
            access.policy_changed();
            tracing::info!(token = %token.name, subject = ?token.subject, "token created");
            return Ok(CreatedToken { token, secret });
        }
        if name.is_some() {
            return Err(already_exists("tokens", &token.name));
        }
    }
    Err(AdminError::Internal(
        "could not find a free token name".into(),
    ))
}

/// Serializes first-user creation within this process.
static INITIALIZING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `POST /api/v1/user/initialize`: creates the first super user while no
/// user exists (`open` is whether the configuration allows it at all).
///
/// Within one process, calls are serialized and the user count is checked
/// under the lock. Across replicas sharing a database, each caller counts
/// users again after creating its own: whoever sees more than one backs
/// out (deletes the user it made). Of two concurrent first users at most one
/// can see itself alone, so there are never two; at worst both back out and
/// the client retries.
pub async fn initialize(
    access: &AccessControl,
    open: bool,
    username: Option<&str>,
    secret: Option<&str>,
    email: Option<&str>,
    with_token: bool,
) -> AdminResult<Initialized> {
    let refused = || AdminError::BadRequest("the registry is already initialized".into());
    let store = access.store();
    if !open || store.count_users().await? > 0 {
        return Err(refused());
    }
    let name = require_object_name("user", username)?;
    let secret = secret.ok_or_else(|| AdminError::Invalid("password: required".into()))?;
    require_password(secret)?;
    let email = require_email(email)?;
    let hash = hash_password(secret).await?;

    let _initializing = INITIALIZING.lock().await;
    if store.count_users().await? > 0 {
        return Err(refused());
    }
    let user = User {
        name: name.clone(),
        uid: uuid::Uuid::new_v4().to_string(),
        password_hash: Some(hash),
        email,
        super_user: true,
        created_at: now(),
        credential_epoch: 0,
    };
    if !store.create_user(&user).await? {
        return Err(refused());
    }
    if store.count_users().await? != 1 {
        store.delete_user(&name).await?;
        access.policy_changed();
        return Err(refused());
    }
    access.policy_changed();
    tracing::info!(user = %name, "registry initialized: first super user created");
    let token = if with_token {
        Some(issue_token(access, TokenSubject::User(name), None, None).await?)
    } else {
        None
    };
    Ok(Initialized { user, token })
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

    // --- projects

    /// Projects where the caller has any role (cluster admins: all).
    pub async fn projects(&self) -> AdminResult<Vec<Namespace>> {
        let policy = self.policy().await?;
        let mut all = self.store().namespaces().await?;
        all.retain(|ns| !policy.verbs(&self.caller.principal, &ns.name).is_empty());
        Ok(all)
    }

    /// Creates a project; the caller becomes its `registry-admin`.
    pub async fn create_project(&self, name: Option<&str>) -> AdminResult<Namespace> {
        let policy = self.policy().await?;
        if !policy.is_cluster_admin(&self.caller.principal)
            && !self.access.may_create_namespace(self.caller, &policy)
        {
            return Err(self.forbidden("create projects"));
        }
        let name = name.ok_or_else(|| AdminError::Invalid("metadata.name: required".into()))?;
        if !valid_project_name(name) {
            return Err(AdminError::Invalid(format!(
                "project name {name:?} is invalid: lowercase letters and digits separated by \
                 single '.', '_' or '-', at most {MAX_PROJECT_NAME} characters"
            )));
        }
        if !self
            .access
            .create_namespace(name, &self.caller.principal)
            .await?
        {
            return Err(already_exists("projects", name));
        }
        self.access.policy_changed();
        self.store()
            .namespace(name)
            .await?
            .ok_or_else(|| not_found("projects", name))
    }

    pub async fn project(&self, name: &str) -> AdminResult<Namespace> {
        self.visible_namespace(name)
            .await
            .map(|(ns, _)| ns)
            .map_err(|e| project_not_found(e, name))
    }

    /// Deletes a project with its service accounts, their tokens, its role
    /// bindings and its repositories (see [`AccessStore::delete_namespace`]).
    pub async fn delete_project(&self, name: &str) -> AdminResult<()> {
        let (_, verbs) = self
            .visible_namespace(name)
            .await
            .map_err(|e| project_not_found(e, name))?;
        if !verbs.contains(Verb::Admin) {
            return Err(self.forbidden(&format!("delete project \"{name}\"")));
        }
        if !self.store().delete_namespace(name).await? {
            return Err(not_found("projects", name));
        }
        self.access.policy_changed();
        tracing::info!(namespace = name, by = %self.caller.principal.name(), "project deleted");
        Ok(())
    }

    // --- service accounts

    pub async fn service_accounts(&self, namespace: &str) -> AdminResult<Vec<ServiceAccount>> {
        self.namespace_for(namespace, Verb::View, "list serviceaccounts")
            .await?;
        Ok(self.store().service_accounts(namespace).await?)
    }

    pub async fn service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> AdminResult<ServiceAccount> {
        self.namespace_for(namespace, Verb::View, "get serviceaccounts")
            .await?;
        self.store()
            .service_account(namespace, name)
            .await?
            .ok_or_else(|| not_found("serviceaccounts", name))
    }

    pub async fn create_service_account(
        &self,
        namespace: &str,
        name: Option<&str>,
    ) -> AdminResult<ServiceAccount> {
        self.namespace_for(namespace, Verb::Admin, "create serviceaccounts")
            .await?;
        let name = require_object_name("service account", name)?;
        let account = ServiceAccount {
            namespace: namespace.to_owned(),
            name: name.clone(),
            uid: uuid::Uuid::new_v4().to_string(),
            created_at: now(),
        };
        if !self.store().create_service_account(&account).await? {
            return Err(already_exists("serviceaccounts", &name));
        }
        self.access.policy_changed();
        Ok(account)
    }

    /// Deletes the account and revokes its tokens.
    pub async fn delete_service_account(&self, namespace: &str, name: &str) -> AdminResult<()> {
        self.namespace_for(namespace, Verb::Admin, "delete serviceaccounts")
            .await?;
        if !self.store().delete_service_account(namespace, name).await? {
            return Err(not_found("serviceaccounts", name));
        }
        self.access.policy_changed();
        Ok(())
    }

    // --- tokens

    /// A token for the caller, who must be a user (what `berth login` does).
    pub async fn create_own_token(
        &self,
        name: Option<&str>,
        expires_in: Option<&str>,
    ) -> AdminResult<CreatedToken> {
        match self.principal()? {
            Principal::User(user) => {
                issue_token(
                    self.access,
                    TokenSubject::User(user.clone()),
                    name,
                    expires_in,
                )
                .await
            }
            _ => Err(self.forbidden(
                "create tokens for itself; a service account's tokens are made by its project's admins",
            )),
        }
    }

    /// A token for another user (cluster admins): how a user without a
    /// password gets in.
    pub async fn create_user_token(
        &self,
        user: &str,
        name: Option<&str>,
        expires_in: Option<&str>,
    ) -> AdminResult<CreatedToken> {
        self.require_cluster_admin("create tokens for other users")
            .await?;
        if self.store().user(user).await?.is_none() {
            return Err(not_found("users", user));
        }
        issue_token(
            self.access,
            TokenSubject::User(user.to_owned()),
            name,
            expires_in,
        )
        .await
    }

    /// The caller's tokens; cluster admins see every user's.
    pub async fn own_tokens(&self) -> AdminResult<Vec<Token>> {
        let policy = self.policy().await?;
        Ok(match self.principal()? {
            Principal::User(_) if policy.is_cluster_admin(&self.caller.principal) => {
                self.store().tokens(None, None).await?
            }
            Principal::User(user) => {
                self.store()
                    .tokens(None, Some(&TokenSubject::User(user.clone())))
                    .await?
            }
            Principal::ServiceAccount { namespace, name } => {
                let subject = TokenSubject::ServiceAccount {
                    namespace: namespace.clone(),
                    name: name.clone(),
                };
                self.store()
                    .tokens(Some(namespace.as_str()), Some(&subject))
                    .await?
            }
            Principal::Anonymous => Vec::new(),
        })
    }

    /// Revokes one of the caller's tokens. Cluster admins may name any user
    /// token: their own of that name first, else `owner`'s (`None`: the one
    /// user's who has a token of that name; when several have, `409`).
    pub async fn delete_own_token(&self, name: &str, owner: Option<&str>) -> AdminResult<()> {
        let principal = self.principal()?;
        // Every token the caller may see (its own; a cluster admin's: every
        // user's), so nothing is said about tokens it may not.
        let named: Vec<Token> = self
            .own_tokens()
            .await?
            .into_iter()
            .filter(|t| t.name == name)
            .collect();
        let owned_by = |user: &str| {
            named
                .iter()
                .find(|t| t.subject == TokenSubject::User(user.to_owned()))
        };
        let token = match (owner, principal) {
            (Some(user), _) => owned_by(user),
            (None, Principal::User(me)) if owned_by(me).is_some() => owned_by(me),
            (None, _) if named.len() > 1 => {
                let mut owners: Vec<String> = named
                    .iter()
                    .map(|t| match &t.subject {
                        TokenSubject::User(user) => user.clone(),
                        TokenSubject::ServiceAccount { namespace, name } => {
                            format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")
                        }
                    })
                    .collect();
                owners.sort();
                return Err(AdminError::Conflict(format!(
                    "users {} each have a token named \"{name}\"; say whose with ?user=NAME",
                    owners.join(", ")
                )));
            }
            (None, _) => named.first(),
        }
        .ok_or_else(|| not_found("tokens", name))?;
        if !self.store().delete_token(&token.uid).await? {
            return Err(not_found("tokens", name));
        }
        self.access.policy_changed();
        tracing::info!(token = name, by = %self.caller.principal.name(), "token revoked");
        Ok(())
    }

    pub async fn create_service_account_token(
        &self,
        namespace: &str,
        account: &str,
        name: Option<&str>,
        expires_in: Option<&str>,
    ) -> AdminResult<CreatedToken> {
        self.namespace_for(namespace, Verb::Admin, "create tokens")
            .await?;
        if self
            .store()
            .service_account(namespace, account)
            .await?
            .is_none()
        {
            return Err(not_found("serviceaccounts", account));
        }
        let subject = TokenSubject::ServiceAccount {
            namespace: namespace.to_owned(),
            name: account.to_owned(),
        };
        issue_token(self.access, subject, name, expires_in).await
    }

    /// The project's service-account tokens.
    pub async fn namespace_tokens(&self, namespace: &str) -> AdminResult<Vec<Token>> {
        self.namespace_for(namespace, Verb::View, "list tokens")
            .await?;
        Ok(self.store().tokens(Some(namespace), None).await?)
    }

    pub async fn delete_namespace_token(&self, namespace: &str, name: &str) -> AdminResult<()> {
        self.namespace_for(namespace, Verb::Admin, "delete tokens")
            .await?;
        let token = self
            .store()
            .tokens(Some(namespace), None)
            .await?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| not_found("tokens", name))?;
        if !self.store().delete_token(&token.uid).await? {
            return Err(not_found("tokens", name));
        }
        self.access.policy_changed();
        tracing::info!(namespace, token = name, by = %self.caller.principal.name(), "token revoked");
        Ok(())
    }

    // --- role bindings

    /// Checks the caller may read (or change) bindings in `namespace`
    /// (`None`: cluster-wide).
    async fn binding_scope(&self, namespace: Option<&str>, write: bool) -> AdminResult<()> {
        let what = if write {
            "change rolebindings"
        } else {
            "list rolebindings"
        };
        match namespace {
            None => self
                .require_cluster_admin(if write {
                    "change clusterrolebindings"
                } else {
                    "list clusterrolebindings"
                })
                .await
                .map(|_| ()),
            Some(ns) => self
                .namespace_for(ns, if write { Verb::Admin } else { Verb::View }, what)
                .await
                .map(|_| ()),
        }
    }

    /// Bindings in `namespace` (`None`: cluster-wide), one per role with
    /// subjects, in the order of [`ROLES`].
    async fn load_bindings(&self, namespace: Option<&str>) -> AdminResult<Vec<RoleBinding>> {
        let mut by_role: BTreeMap<(usize, String), Vec<BindingSubject>> = BTreeMap::new();
        for binding in self.store().bindings().await? {
            if binding.namespace.as_deref() != namespace {
                continue;
            }
            let rank = ROLES
                .iter()
                .position(|r| *r == binding.role)
                .unwrap_or(ROLES.len());
            by_role
                .entry((rank, binding.role))
                .or_default()
                .push(binding.subject);
        }
        Ok(by_role
            .into_iter()
            .map(|((_, role), mut subjects)| {
                subjects.sort();
                RoleBinding {
                    namespace: namespace.map(str::to_owned),
                    role,
                    subjects,
                }
            })
            .collect())
    }

    async fn load_binding(&self, namespace: Option<&str>, role: &str) -> AdminResult<RoleBinding> {
        Ok(self
            .load_bindings(namespace)
            .await?
            .into_iter()
            .find(|b| b.role == role)
            .unwrap_or(RoleBinding {
                namespace: namespace.map(str::to_owned),
                role: role.to_owned(),
                subjects: Vec::new(),
            }))
    }

    pub async fn role_bindings(&self, namespace: Option<&str>) -> AdminResult<Vec<RoleBinding>> {
        self.binding_scope(namespace, false).await?;
        self.load_bindings(namespace).await
    }

    /// One role's binding; not found when nobody is bound to it.
    pub async fn role_binding(
        &self,
        namespace: Option<&str>,
        role: &str,
    ) -> AdminResult<RoleBinding> {
        self.binding_scope(namespace, false).await?;
        require_role(role)?;
        let binding = self.load_binding(namespace, role).await?;
        if binding.subjects.is_empty() {
            return Err(not_found(binding_resource(namespace), role));
        }
        Ok(binding)
    }

    fn parse_subjects(
        &self,
        namespace: Option<&str>,
        subjects: &[SubjectRef],
    ) -> AdminResult<Vec<BindingSubject>> {
        if subjects.is_empty() {
            return Err(AdminError::Invalid(
                "subjects: at least one is required".into(),
            ));
        }
        subjects
            .iter()
            .map(|s| parse_subject(s, namespace))
            .collect()
    }

    pub async fn add_subjects(
        &self,
        namespace: Option<&str>,
        role: &str,
        subjects: &[SubjectRef],
    ) -> AdminResult<RoleBinding> {
        self.binding_scope(namespace, true).await?;
        require_role(role)?;
        let subjects = self.parse_subjects(namespace, subjects)?;
        for subject in subjects {
            self.store()
                .add_binding(&Binding {
                    namespace: namespace.map(str::to_owned),
                    role: role.to_owned(),
                    subject,
                })
                .await?;
        }
        self.access.policy_changed();
        tracing::info!(namespace = ?namespace, role, by = %self.caller.principal.name(), "subjects bound");
        self.load_binding(namespace, role).await
    }

    /// Unbinds `subjects` (those not bound are ignored); answers what is
    /// left, possibly no subject at all.
    pub async fn remove_subjects(
        &self,
        namespace: Option<&str>,
        role: &str,
        subjects: &[SubjectRef],
    ) -> AdminResult<RoleBinding> {
        self.binding_scope(namespace, true).await?;
        require_role(role)?;
        let subjects = self.parse_subjects(namespace, subjects)?;
        if self
            .load_binding(namespace, role)
            .await?
            .subjects
            .is_empty()
        {
            return Err(not_found(binding_resource(namespace), role));
        }
        for subject in subjects {
            self.store()
                .remove_binding(&Binding {
                    namespace: namespace.map(str::to_owned),
                    role: role.to_owned(),
                    subject,
                })
                .await?;
        }
        self.access.policy_changed();
        tracing::info!(namespace = ?namespace, role, by = %self.caller.principal.name(), "subjects unbound");
        self.load_binding(namespace, role).await
    }

    pub async fn delete_role_binding(
        &self,
        namespace: Option<&str>,
        role: &str,
    ) -> AdminResult<()> {
        self.binding_scope(namespace, true).await?;
        require_role(role)?;
        let binding = self.load_binding(namespace, role).await?;
        if binding.subjects.is_empty() {
            return Err(not_found(binding_resource(namespace), role));
        }
        for subject in binding.subjects {
            self.store()
                .remove_binding(&Binding {
                    namespace: namespace.map(str::to_owned),
                    role: role.to_owned(),
                    subject,
                })
                .await?;
        }
        self.access.policy_changed();
        tracing::info!(namespace = ?namespace, role, by = %self.caller.principal.name(), "binding deleted");
        Ok(())
    }

    /// Who may `verb` (pull, push or delete) in `namespace`: bound users,
    /// service accounts and groups, and super users.
    pub async fn who_can(&self, namespace: &str, verb: Option<&str>) -> AdminResult<WhoCan> {
        self.namespace_for(namespace, Verb::View, "list rolebindings")
            .await?;
        let verb = verb.ok_or_else(|| {
            AdminError::BadRequest(
                "the verb query parameter is required (pull, push or delete)".into(),
            )
        })?;
        let verb = match verb {
            "pull" => Verb::Pull,
            "push" => Verb::Push,
            "delete" => Verb::Delete,
            other => {
                return Err(AdminError::Invalid(format!(
                    "verb {other:?} is invalid: pull, push or delete"
                )));
            }
        };
        let mut users = Vec::new();
        let mut groups = Vec::new();
        for subject in self.access.who_can(namespace, verb).await? {
            match subject.kind {
                SubjectKind::Group => groups.push(subject.name),
                _ => users.push(subject_display(&subject)),
            }
        }
        users.sort();
        users.dedup();
        groups.sort();
        groups.dedup();
        Ok(WhoCan {
            namespace: namespace.to_owned(),
            verb,
            users,
            groups,
        })
    }

    // --- users

    pub async fn users(&self) -> AdminResult<Vec<UserInfo>> {
        let policy = self.require_cluster_admin("list users").await?;
        let users = self.store().users().await?;
        Ok(users.iter().map(|u| user_info(&policy, u)).collect())
    }

    pub async fn create_user(&self, new: &NewUser) -> AdminResult<UserInfo> {
        self.require_cluster_admin("create users").await?;
        let name = require_object_name("user", new.name.as_deref())?;
        let email = require_email(new.email.as_deref())?;
        let password_hash = match new.password.as_deref() {
            Some(secret) => {
                require_password(secret)?;
                Some(hash_password(secret).await?)
            }
            None => None,
        };
        let user = User {
            name: name.clone(),
            uid: uuid::Uuid::new_v4().to_string(),
            password_hash,
            email,
            super_user: new.super_user,
            created_at: now(),
            credential_epoch: 0,
        };
        if !self.store().create_user(&user).await? {
            return Err(already_exists("users", &name));
        }
        self.access.policy_changed();
        tracing::info!(user = %name, super_user = new.super_user, by = %self.caller.principal.name(), "user created");
        let policy = self.access.policy().await?;
        Ok(user_info(&policy, &user))
    }

    /// Whether the caller is the user `name`.
    fn is_self(&self, name: &str) -> bool {
        matches!(&self.caller.principal, Principal::User(me) if me == name)
    }

    /// `~` (however the client encoded it) names the caller.
    fn resolve<'n>(&'n self, name: &'n str) -> &'n str {
        match (&self.caller.principal, name) {
            (Principal::User(me), "~") => me,
            _ => name,
        }
    }

    /// A user: cluster admins see anyone, users themselves.
    pub async fn user(&self, name: &str) -> AdminResult<UserInfo> {
        if name == "~" {
            return self.me().await;
        }
        let policy = self.policy().await?;
        if !self.is_self(name) && !policy.is_cluster_admin(&self.caller.principal) {
            return Err(self.forbidden("get users"));
        }
        let user = self
            .store()
            .user(name)
            .await?
            .ok_or_else(|| not_found("users", name))?;
        Ok(user_info(&policy, &user))
    }

    /// The caller: a user, or a service account shown as a user named
    /// `system:serviceaccount:NS:NAME`.
    pub async fn me(&self) -> AdminResult<UserInfo> {
        let policy = self.policy().await?;
        match self.principal()? {
            Principal::User(name) => {
                let user = self
                    .store()
                    .user(name)
                    .await?
                    .ok_or_else(|| not_found("users", name))?;
                Ok(user_info(&policy, &user))
            }
            Principal::ServiceAccount { namespace, name } => {
                let account = self.store().service_account(namespace, name).await?;
                Ok(UserInfo {
                    name: self.caller.principal.name(),
                    uid: account.as_ref().map(|a| a.uid.clone()),
                    created_at: account.as_ref().map(|a| a.created_at),
                    email: None,
                    groups: vec![
                        GROUP_AUTHENTICATED.to_owned(),
                        GROUP_SERVICE_ACCOUNTS.to_owned(),
                        format!("{GROUP_SERVICE_ACCOUNTS}:{namespace}"),
                    ],
                    super_user: false,
                })
            }
            Principal::Anonymous => Err(AdminError::Unauthorized { challenge: None }),
        }
    }

    /// Deletes a user and revokes its tokens. Its bindings stay. The last
    /// super user is not deleted: nobody could administer the registry
    /// after it.
    pub async fn delete_user(&self, name: &str) -> AdminResult<()> {
        self.require_cluster_admin("delete users").await?;
        match self
            .store()
            .delete_user_unless_last_super_user(name, self.access.configured_super_users())
            .await?
        {
            UserDeletion::Deleted => {}
            UserDeletion::NotFound => return Err(not_found("users", name)),
            UserDeletion::LastSuperUser => {
                return Err(AdminError::Conflict(format!(
                    "user \"{name}\" is the last super user; make another super user \
                     (berth create user NAME --super-user) before deleting it"
                )));
            }
        }
        self.access.policy_changed();
        tracing::info!(user = name, by = %self.caller.principal.name(), "user deleted");
        Ok(())
    }

    /// Forgets the failed logins counted against `name` (cluster admins):
    /// whatever addresses guessed at it may try again, and its logins are no
    /// longer slowed down. Addresses locked out as a whole stay so. Returns
    /// whether the user was locked out anywhere or slowed down.
    pub async fn unlock_user(&self, name: &str) -> AdminResult<bool> {
        self.require_cluster_admin("unlock users").await?;
        if self.store().user(name).await?.is_none() {
            return Err(not_found("users", name));
        }
        let was_locked = self.access.unlock(name);
        tracing::info!(user = name, was_locked, by = %self.caller.principal.name(), "user unlocked");
        Ok(was_locked)
    }

    /// Sets a password: the user itself or a cluster admin.
    pub async fn set_password(&self, name: &str, secret: Option<&str>) -> AdminResult<()> {
        let name = self.resolve(name);
        let policy = self.policy().await?;
        if !self.is_self(name) && !policy.is_cluster_admin(&self.caller.principal) {
            return Err(self.forbidden(&format!("change the password of user \"{name}\"")));
        }
        let secret = secret.ok_or_else(|| AdminError::Invalid("password: required".into()))?;
        require_password(secret)?;
        if self.store().user(name).await?.is_none() {
            return Err(not_found("users", name));
        }
        let hash = hash_password(secret).await?;
        if !self.store().set_password(name, Some(&hash)).await? {
            return Err(not_found("users", name));
        }
        self.access.policy_changed();
        tracing::info!(user = name, by = %self.caller.principal.name(), "password changed");
        Ok(())
    }

    // --- groups

    fn member_names(users: &[String]) -> AdminResult<Vec<String>> {
        let mut names = Vec::with_capacity(users.len());
        for user in users {
            if user.starts_with("system:") || !valid_object_name(user) {
                return Err(AdminError::Invalid(format!(
                    "users: {user:?} is not a valid user name"
                )));
            }
            names.push(user.clone());
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    pub async fn groups(&self) -> AdminResult<Vec<Group>> {
        self.require_cluster_admin("list groups").await?;
        Ok(self.store().groups().await?)
    }

    pub async fn group(&self, name: &str) -> AdminResult<Group> {
        self.require_cluster_admin("get groups").await?;
        self.store()
            .group(name)
            .await?
            .ok_or_else(|| not_found("groups", name))
    }

    /// Creates a group. Members need not exist yet.
    pub async fn create_group(&self, name: Option<&str>, users: &[String]) -> AdminResult<Group> {
        self.require_cluster_admin("create groups").await?;
        let name = require_object_name("group", name)?;
        let users = Self::member_names(users)?;
        if !self.store().create_group(&name, &users).await? {
            return Err(already_exists("groups", &name));
        }
        self.access.policy_changed();
        self.store()
            .group(&name)
            .await?
            .ok_or_else(|| not_found("groups", &name))
    }

    /// Replaces a group's members.
    pub async fn replace_group(&self, name: &str, users: &[String]) -> AdminResult<Group> {
        self.require_cluster_admin("change groups").await?;
        let users = Self::member_names(users)?;
        if self.store().group(name).await?.is_none() {
            return Err(not_found("groups", name));
        }
        let group = self.store().put_group(name, &users).await?;
        self.access.policy_changed();
        Ok(group)
    }

    pub async fn delete_group(&self, name: &str) -> AdminResult<()> {
        self.require_cluster_admin("delete groups").await?;
        if !self.store().delete_group(name).await? {
            return Err(not_found("groups", name));
        }
        self.access.policy_changed();
        Ok(())
    }
}

/// Says "projects" rather than "namespaces" in a not-found message.
fn project_not_found(error: AdminError, name: &str) -> AdminError {
    match error {
        AdminError::NotFound(_) => not_found("projects", name),
        other => other,
    }
}

fn binding_resource(namespace: Option<&str>) -> &'static str {
    match namespace {
        Some(_) => "rolebindings",
        None => "clusterrolebindings",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::lockout::LockoutPolicy;
    use crate::auth::{AccessOptions, AutoCreateNamespaces};
    use crate::metadata::{DatabaseConfig, SqlMetadataStore};

    #[test]
    fn project_names() {
        for ok in ["a", "myproj", "my-proj", "a.b_c-d", "x1", &"a".repeat(63)] {
            assert!(valid_project_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a--b",
            "a__b",
            "a/b",
            "a:b",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(!valid_project_name(bad), "{bad}");
        }
    }

    #[test]
    fn object_names() {
        for ok in ["a", "builder", "alice@example.com", "a.b-c_d", "x-1"] {
            assert!(valid_object_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Alice",
            "a:b",
            "system:x",
            "a b",
            &"a".repeat(254),
        ] {
            assert!(!valid_object_name(bad), "{bad}");
        }
        assert!(matches!(
            require_object_name("group", Some("system:authenticated")),
            Err(AdminError::Invalid(m)) if m.contains("built in")
        ));
        assert!(matches!(
            require_object_name("user", None),
            Err(AdminError::Invalid(_))
        ));
    }

    #[test]
    fn durations_and_timestamps() {
        assert_eq!(
            parse_expires_in("24h").unwrap(),
            Duration::from_secs(86_400)
        );
        assert_eq!(parse_expires_in("90m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(
            parse_expires_in("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            parse_expires_in(" 1h 30m ").unwrap(),
            Duration::from_secs(5_400)
        );
        assert_eq!(
            parse_expires_in("2 w").unwrap(),
            Duration::from_secs(1_209_600)
        );
        for bad in ["", "0s", "soon", "-1h", "500ms", "1000000d"] {
            assert!(
                matches!(parse_expires_in(bad), Err(AdminError::Invalid(_))),
                "{bad}"
            );
        }
        // Only the form the OpenAPI document gives, though humantime would
        // take these.
        for undocumented in ["1.5h", "1 2h", "24h\t", "\n24h", "2µs", "1234567890123s"] {
            assert!(
                matches!(parse_expires_in(undocumented), Err(AdminError::Invalid(_))),
                "{undocumented:?}"
            );
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_341_600_999), "2026-11-22T10:00:00Z");
    }

    fn subject(kind: &str, name: &str, namespace: Option<&str>) -> SubjectRef {
        SubjectRef {
            kind: kind.into(),
            name: name.into(),
            namespace: namespace.map(str::to_owned),
        }
    }

    #[test]
    fn subjects_are_validated() {
        let sa = |ns: &str, n: &str| BindingSubject {
            kind: SubjectKind::ServiceAccount,
            name: n.into(),
            namespace: ns.into(),
        };
        assert_eq!(
            parse_subject(&subject("User", "alice", None), Some("p")).unwrap(),
            crate::auth::policy::user_subject("alice")
        );
        // A user named like a service account is that service account.
        assert_eq!(
            parse_subject(
                &subject("User", "system:serviceaccount:ns:builder", None),
                None
            )
            .unwrap(),
            sa("ns", "builder")
        );
        // Service accounts default to the binding's namespace.
        assert_eq!(
            parse_subject(&subject("ServiceAccount", "builder", None), Some("p")).unwrap(),
            sa("p", "builder")
        );
        assert_eq!(
            parse_subject(&subject("ServiceAccount", "b", Some("q")), Some("p")).unwrap(),
            sa("q", "b")
        );
        assert!(parse_subject(&subject("ServiceAccount", "b", None), None).is_err());
        for group in [
            "system:authenticated",
            "system:unauthenticated",
            "system:serviceaccounts",
            "system:serviceaccounts:myapp",
            "devs",
        ] {
            assert_eq!(
                parse_subject(&subject("Group", group, None), None).unwrap(),
                crate::auth::policy::group_subject(group)
            );
        }
        for bad in [
            subject("Group", "system:masters", None),
            subject("Group", "Devs", None),
            subject("User", "system:anonymous", None),
            subject("User", "", None),
            subject("Robot", "x", None),
            subject("User", "system:serviceaccount:ns", None),
        ] {
            assert!(
                matches!(parse_subject(&bad, Some("p")), Err(AdminError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    struct Fixture {
        access: AccessControl,
        _dir: tempfile::TempDir,
    }

    async fn fixture(auto_create: AutoCreateNamespaces) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlMetadataStore::connect(&DatabaseConfig::Sqlite {
            path: dir.path().join("berth.db"),
        })
        .await
        .unwrap();
        let access = AccessControl::new(
            Arc::new(store),
            AccessOptions {
                service: "berth".into(),
                token_lifetime: Duration::from_secs(300),
                key_rotation: Duration::from_secs(3600),
                super_users: vec!["admin".into()],
                auto_create_namespaces: auto_create,
                lockout: LockoutPolicy {
                    per_user: 100,
                    per_address: 100,
                    window: Duration::from_secs(60),
                    duration: Duration::from_secs(60),
                    slowdown: Duration::from_secs(1),
                },
                trusted_proxies: Default::default(),
            },
        );
        Fixture { access, _dir: dir }
    }

    fn user(name: &str) -> Caller {
        Caller {
            principal: Principal::User(name.into()),
            token_uid: None,
            grants: None,
            stamp: None,
        }
    }

    fn sa_caller(ns: &str, name: &str) -> Caller {
        Caller {
            principal: Principal::ServiceAccount {
                namespace: ns.into(),
                name: name.into(),
            },
            token_uid: None,
            grants: None,
            stamp: None,
        }
    }

    async fn add_user(f: &Fixture, name: &str) {
        let admin = user("admin");
        Admin::new(&f.access, &admin)
            .create_user(&NewUser {
                name: Some(name.into()),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn namespaces_are_hidden_without_a_role_and_forbidden_without_the_verb() {
        let f = fixture(AutoCreateNamespaces::Superusers).await;
        let admin = user("admin");
        let alice = user("alice");
        add_user(&f, "alice").await;
        let as_admin = Admin::new(&f.access, &admin);
        let as_alice = Admin::new(&f.access, &alice);
        as_admin.create_project(Some("p")).await.unwrap();

        // No role: as if it did not exist.
        assert!(matches!(
            as_alice.project("p").await,
            Err(AdminError::NotFound(_))
        ));
        assert!(matches!(
            as_alice.service_accounts("p").await,
            Err(AdminError::NotFound(_))
        ));
        assert!(matches!(
            as_alice.delete_project("p").await,
            Err(AdminError::NotFound(_))
        ));
        assert!(as_alice.projects().await.unwrap().is_empty());
        // Not allowed to create projects (superusers only).
        assert!(matches!(
            as_alice.create_project(Some("q")).await,
            Err(AdminError::Forbidden(_))
        ));

        // A puller sees the project but not its service accounts.
        let alice_subject = [subject("User", "alice", None)];
        as_admin
            .add_subjects(Some("p"), "system:image-puller", &alice_subject)
            .await
            .unwrap();
        assert_eq!(as_alice.project("p").await.unwrap().name, "p");
        assert_eq!(as_alice.projects().await.unwrap().len(), 1);
        assert!(matches!(
            as_alice.service_accounts("p").await,
            Err(AdminError::Forbidden(_))
        ));
        assert!(matches!(
            as_alice.delete_project("p").await,
            Err(AdminError::Forbidden(_))
        ));

        // A viewer reads, but does not write.
        as_admin
            .add_subjects(Some("p"), "registry-viewer", &alice_subject)
            .await
            .unwrap();
        assert!(as_alice.service_accounts("p").await.unwrap().is_empty());
        assert_eq!(as_alice.role_bindings(Some("p")).await.unwrap().len(), 3);
        assert!(matches!(
            as_alice.create_service_account("p", Some("builder")).await,
            Err(AdminError::Forbidden(_))
        ));
        assert!(matches!(
            as_alice
                .add_subjects(Some("p"), "registry-admin", &alice_subject)
                .await,
            Err(AdminError::Forbidden(_))
        ));
        // Cluster bindings are for cluster admins.
        assert!(matches!(
            as_alice.role_bindings(None).await,
            Err(AdminError::Forbidden(_))
        ));

        // registry-admin manages the project, and may delete it.
        as_admin
            .add_subjects(Some("p"), "registry-admin", &alice_subject)
            .await
            .unwrap();
        let sa = as_alice
            .create_service_account("p", Some("builder"))
            .await
            .unwrap();
        assert_eq!(sa.name, "builder");
        assert!(matches!(
            as_alice.create_service_account("p", Some("builder")).await,
            Err(AdminError::AlreadyExists(_))
        ));
        assert!(matches!(
            as_alice.create_service_account("p", Some("Bad")).await,
            Err(AdminError::Invalid(_))
        ));
        as_alice.delete_project("p").await.unwrap();
        assert!(matches!(
            as_admin.project("p").await,
            Err(AdminError::NotFound(_))
        ));
        // Its bindings went with it.
        assert!(
            f.access
                .store()
                .bindings()
                .await
                .unwrap()
                .iter()
                .all(|b| b.namespace.as_deref() != Some("p"))
        );
    }

    #[tokio::test]
    async fn project_creators_become_admins_when_anyone_may_create() {
        let f = fixture(AutoCreateNamespaces::Authenticated).await;
        let bob = user("bob");
        add_user(&f, "bob").await;
        let as_bob = Admin::new(&f.access, &bob);
        let project = as_bob.create_project(Some("bobs")).await.unwrap();
        assert_eq!(project.created_by.as_deref(), Some("bob"));
        assert!(matches!(
            as_bob.create_project(Some("bobs")).await,
            Err(AdminError::AlreadyExists(_))
        ));
        assert!(matches!(
            as_bob.create_project(Some("Bad_")).await,
            Err(AdminError::Invalid(_))
        ));
        let binding = as_bob
            .role_binding(Some("bobs"), "registry-admin")
            .await
            .unwrap();
        assert_eq!(
            binding.subjects,
            vec![crate::auth::policy::user_subject("bob")]
        );
        // Anonymous callers are refused before anything else.
        let anonymous = Caller::anonymous();
        assert!(matches!(
            Admin::new(&f.access, &anonymous).projects().await,
            Err(AdminError::Unauthorized { .. })
        ));
    }

    #[tokio::test]
    async fn bindings_add_remove_delete_and_who_can() {
        let f = fixture(AutoCreateNamespaces::Superusers).await;
        let admin = user("admin");
        let as_admin = Admin::new(&f.access, &admin);
        as_admin.create_project(Some("shared")).await.unwrap();
        assert!(matches!(
            as_admin
                .add_subjects(
                    Some("shared"),
                    "system:image-nothing",
                    &[subject("User", "x", None)]
                )
                .await,
            Err(AdminError::Invalid(_))
        ));
        assert!(matches!(
            as_admin
                .add_subjects(Some("shared"), "system:image-puller", &[])
                .await,
            Err(AdminError::Invalid(_))
        ));
        assert!(matches!(
            as_admin
                .role_binding(Some("shared"), "system:image-pusher")
                .await,
            Err(AdminError::NotFound(_))
        ));
        let binding = as_admin
            .add_subjects(
                Some("shared"),
                "system:image-puller",
                &[
                    subject("Group", "system:serviceaccounts:myapp", None),
                    subject("User", "system:serviceaccount:ci:builder", None),
                    subject("User", "carol", None),
                ],
            )
            .await
            .unwrap();
        assert_eq!(binding.subjects.len(), 3);
        // The shared-project flow: any service account of myapp may pull.
        let myapp = sa_caller("myapp", "default");
        assert!(
            f.access
                .verbs(&myapp, "shared")
                .await
                .unwrap()
                .contains(Verb::Pull)
        );

        let who = as_admin.who_can("shared", Some("pull")).await.unwrap();
        assert_eq!(
            who.users,
            vec!["admin", "carol", "system:serviceaccount:ci:builder"]
        );
        assert_eq!(who.groups, vec!["system:serviceaccounts:myapp"]);
        let who = as_admin.who_can("shared", Some("push")).await.unwrap();
        assert!(!who.users.contains(&"carol".to_owned()));
        assert!(who.users.contains(&"admin".to_owned()));
        assert!(matches!(
            as_admin.who_can("shared", Some("fly")).await,
            Err(AdminError::Invalid(_))
        ));
        assert!(matches!(
            as_admin.who_can("shared", None).await,
            Err(AdminError::BadRequest(_))
        ));

        let left = as_admin
            .remove_subjects(
                Some("shared"),
                "system:image-puller",
                &[
                    subject("User", "carol", None),
                    subject("User", "nobody", None),
                ],
            )
            .await
            .unwrap();
        assert_eq!(left.subjects.len(), 2);
        as_admin
            .delete_role_binding(Some("shared"), "system:image-puller")
            .await
            .unwrap();
        assert!(matches!(
            as_admin
                .delete_role_binding(Some("shared"), "system:image-puller")
                .await,
            Err(AdminError::NotFound(_))
        ));
        assert!(
            !f.access
                .verbs(&myapp, "shared")
                .await
                .unwrap()
                .contains(Verb::Pull)
        );

        // Cluster-wide: cluster-admin makes a cluster admin.
        let dave = user("dave");
        assert!(matches!(
            Admin::new(&f.access, &dave).users().await,
            Err(AdminError::Forbidden(_))
        ));
        let b = as_admin
            .add_subjects(None, "cluster-admin", &[subject("User", "dave", None)])
            .await
            .unwrap();
        assert_eq!(b.namespace, None);
        assert!(Admin::new(&f.access, &dave).users().await.is_ok());
        assert_eq!(as_admin.role_bindings(None).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn tokens_for_users_and_service_accounts() {
        let f = fixture(AutoCreateNamespaces::Superusers).await;
        let admin = user("admin");
        let as_admin = Admin::new(&f.access, &admin);
        add_user(&f, "alice").await;
        let alice = user("alice");
        let as_alice = Admin::new(&f.access, &alice);

        let created = as_alice.create_own_token(None, Some("24h")).await.unwrap();
        assert!(created.token.name.starts_with("alice-token-"));
        assert!(created.secret.starts_with("berth_"));
        let lifetime = created.token.expires_at.unwrap() - created.token.created_at;
        assert_eq!(lifetime, 86_400_000);
        assert!(matches!(
            as_alice
                .create_own_token(Some(&created.token.name), None)
                .await,
            Err(AdminError::AlreadyExists(_))
        ));
        assert!(matches!(
            as_alice.create_own_token(None, Some("forever")).await,
            Err(AdminError::Invalid(_))
        ));
        let named = as_alice
            .create_own_token(Some("laptop"), None)
            .await
            .unwrap();
        assert_eq!(named.token.expires_at, None);
        assert_eq!(as_alice.own_tokens().await.unwrap().len(), 2);

        // Admins see every user token; others only theirs.
        as_admin.create_own_token(Some("ci"), None).await.unwrap();
        assert_eq!(as_admin.own_tokens().await.unwrap().len(), 3);
        assert_eq!(as_alice.own_tokens().await.unwrap().len(), 2);
        assert!(matches!(
            as_alice.delete_own_token("ci", None).await,
            Err(AdminError::NotFound(_))
        ));
        as_alice.delete_own_token("laptop", None).await.unwrap();
        as_admin
            .delete_own_token(&created.token.name, None)
            .await
            .unwrap();
        assert!(as_alice.own_tokens().await.unwrap().is_empty());

        // Service-account tokens.
        as_admin.create_project(Some("p")).await.unwrap();
        assert!(matches!(
            as_admin
                .create_service_account_token("p", "ghost", None, None)
                .await,
            Err(AdminError::NotFound(_))
        ));
        as_admin
            .create_service_account("p", Some("builder"))
            .await
            .unwrap();
        let sa_token = as_admin
            .create_service_account_token("p", "builder", None, None)
            .await
            .unwrap();
        assert!(sa_token.token.name.starts_with("builder-token-"));
        assert_eq!(sa_token.token.namespace(), Some("p"));
        assert_eq!(as_admin.namespace_tokens("p").await.unwrap().len(), 1);
        // The account sees its own tokens, but makes none.
        let builder = sa_caller("p", "builder");
        let as_builder = Admin::new(&f.access, &builder);
        assert_eq!(as_builder.own_tokens().await.unwrap().len(), 1);
        assert!(matches!(
            as_builder.create_own_token(None, None).await,
            Err(AdminError::Forbidden(_))
        ));
        let me = as_builder.me().await.unwrap();
        assert_eq!(me.name, "system:serviceaccount:p:builder");
        assert!(me.groups.contains(&"system:serviceaccounts:p".to_owned()));
        // Deleting the account revokes its tokens.
        as_admin
            .delete_service_account("p", "builder")
            .await
            .unwrap();
        assert!(as_admin.namespace_tokens("p").await.unwrap().is_empty());
        assert!(matches!(
            as_admin
                .delete_namespace_token("p", &sa_token.token.name)
                .await,
            Err(AdminError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn users_groups_and_passwords() {
        let f = fixture(AutoCreateNamespaces::Superusers).await;
        let admin = user("admin");
        let as_admin = Admin::new(&f.access, &admin);
        let alice_info = as_admin
            .create_user(&NewUser {
                name: Some("alice".into()),
                password: Some("s3cret".into()),
                email: Some("alice@example.com".into()),
                super_user: false,
            })
            .await
            .unwrap();
        assert_eq!(alice_info.groups, vec!["system:authenticated"]);
        assert!(!alice_info.super_user);
        assert!(matches!(
            as_admin
                .create_user(&NewUser {
                    name: Some("alice".into()),
                    ..Default::default()
                })
                .await,
            Err(AdminError::AlreadyExists(_))
        ));
        for bad in [
            NewUser {
                name: Some("system:admin".into()),
                ..Default::default()
            },
            NewUser {
                name: Some("x".into()),
                password: Some(String::new()),
                ..Default::default()
            },
            NewUser {
                name: Some("x".into()),
                email: Some("not an address".into()),
                ..Default::default()
            },
        ] {
            assert!(matches!(
                as_admin.create_user(&bad).await,
                Err(AdminError::Invalid(_))
            ));
        }

        let group = as_admin
            .create_group(
                Some("devs"),
                &["alice".into(), "alice".into(), "bob".into()],
            )
            .await
            .unwrap();
        assert_eq!(group.users, vec!["alice", "bob"]);
        assert!(matches!(
            as_admin.create_group(Some("devs"), &[]).await,
            Err(AdminError::AlreadyExists(_))
        ));
        assert!(matches!(
            as_admin
                .create_group(Some("system:authenticated"), &[])
                .await,
            Err(AdminError::Invalid(_))
        ));
        assert!(matches!(
            as_admin.replace_group("nope", &[]).await,
            Err(AdminError::NotFound(_))
        ));
        let alice = user("alice");
        let as_alice = Admin::new(&f.access, &alice);
        assert_eq!(
            as_alice.me().await.unwrap().groups,
            vec!["devs", "system:authenticated"]
        );
        assert_eq!(
            as_admin
                .replace_group("devs", &["bob".into()])
                .await
                .unwrap()
                .users,
            vec!["bob"]
        );
        assert_eq!(
            as_alice.me().await.unwrap().groups,
            vec!["system:authenticated"]
        );
        assert!(matches!(
            as_alice.groups().await,
            Err(AdminError::Forbidden(_))
        ));
        as_admin.delete_group("devs").await.unwrap();
        assert!(matches!(
            as_admin.delete_group("devs").await,
            Err(AdminError::NotFound(_))
        ));

        // Passwords: oneself or a cluster admin.
        assert!(matches!(
            as_alice.set_password("admin", Some("x")).await,
            Err(AdminError::Forbidden(_))
        ));
        as_alice.set_password("~", Some("new")).await.unwrap();
        assert!(matches!(
            as_admin.set_password("ghost", Some("x")).await,
            Err(AdminError::NotFound(_))
        ));
        let stored = f.access.store().user("alice").await.unwrap().unwrap();
        assert!(password::verify(
            "new",
            stored.password_hash.as_deref().unwrap()
        ));

        // Users see themselves, not others.
        assert_eq!(as_alice.user("alice").await.unwrap().name, "alice");
        assert_eq!(as_alice.user("~").await.unwrap().name, "alice");
        assert!(matches!(
            as_alice.user("admin").await,
            Err(AdminError::Forbidden(_))
        ));
        assert!(matches!(
            as_admin.user("ghost").await,
            Err(AdminError::NotFound(_))
        ));
        as_admin.delete_user("alice").await.unwrap();
        assert!(matches!(
            as_admin.delete_user("alice").await,
            Err(AdminError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn initialize_makes_exactly_one_first_user() {
        let f = fixture(AutoCreateNamespaces::Superusers).await;
        // Closed unless the configuration opens it.
        assert!(matches!(
            initialize(&f.access, false, Some("root"), Some("pw"), None, false).await,
            Err(AdminError::BadRequest(_))
        ));
        assert!(matches!(
            initialize(&f.access, true, Some("Root"), Some("pw"), None, false).await,
            Err(AdminError::Invalid(_))
        ));
        // Concurrent attempts: one wins.
        let names = ["root", "boss", "chief", "head"];
        let attempts = names
            .iter()
            .map(|n| initialize(&f.access, true, Some(n), Some("pw"), None, true));
        let results = futures::future::join_all(attempts).await;
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        assert!(winners[0].user.super_user);
        assert!(winners[0].token.is_some());
        for r in &results {
            if let Err(e) = r {
                assert!(
                    matches!(e, AdminError::BadRequest(m) if m == "the registry is already initialized")
                );
            }
        }
        assert_eq!(f.access.store().count_users().await.unwrap(), 1);
        assert!(matches!(
            initialize(&f.access, true, Some("late"), Some("pw"), None, false).await,
            Err(AdminError::BadRequest(_))
        ));
    }
}
