//! Access-control records: users, groups, namespaces, service accounts,
//! role bindings, tokens and signing keys.
//!
//! Every change made through [`AccessStore`] bumps the policy version in the
//! same transaction, so that each replica can tell when what it cached about
//! who may do what is stale.

use async_trait::async_trait;

use super::{Result, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub name: String,
    pub uid: String,
    /// PHC string (argon2id); `None` for users who log in with tokens only.
    pub password_hash: Option<String>,
    pub email: Option<String>,
    #[sqlx(try_from = "super::sql::Flag")]
    pub super_user: bool,
    pub created_at: Timestamp,
    /// Moves on with every password change, ending the bearer tokens the
    /// old password obtained (see [`crate::auth::bearer::Claims::epoch`]).
    pub credential_epoch: i64,
}

/// What [`AccessStore::delete_user_unless_last_super_user`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserDeletion {
    Deleted,
    NotFound,
    /// Refused: no super user would be left.
    LastSuperUser,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub uid: String,
    pub users: Vec<String>,
    pub created_at: Timestamp,
}

/// An OpenShift "project": the first component of repository names.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Namespace {
    pub name: String,
    pub uid: String,
    pub created_by: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ServiceAccount {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectKind {
    User,
    Group,
    ServiceAccount,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::User => "User",
            SubjectKind::Group => "Group",
            SubjectKind::ServiceAccount => "ServiceAccount",
        }
    }

    pub fn parse(text: &str) -> Option<SubjectKind> {
        match text {
            "User" => Some(SubjectKind::User),
            "Group" => Some(SubjectKind::Group),
            "ServiceAccount" => Some(SubjectKind::ServiceAccount),
            _ => None,
        }
    }
}

/// Who a role is bound to. Service accounts carry their namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BindingSubject {
    pub kind: SubjectKind,
    pub name: String,
    /// The service account's namespace; empty for users and groups.
    pub namespace: String,
}

/// One subject bound to one role, in a namespace or (namespace `None`)
/// cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Binding {
    pub namespace: Option<String>,
    pub role: String,
    pub subject: BindingSubject,
}

/// Whom a token stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TokenSubject {
    User(String),
    ServiceAccount { namespace: String, name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub uid: String,
    pub name: String,
    pub subject: TokenSubject,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

impl Token {
    /// Service-account tokens live in the account's namespace.
    pub fn namespace(&self) -> Option<&str> {
        match &self.subject {
            TokenSubject::User(_) => None,
            TokenSubject::ServiceAccount { namespace, .. } => Some(namespace),
        }
    }

    pub fn expired(&self, at: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= at)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SigningKey {
    pub kid: String,
    /// PKCS#8 DER, base64.
    pub private_key: String,
    pub created_at: Timestamp,
}

/// Which failure counts to reset.
#[derive(Debug, Clone, Copy)]
pub enum LoginFailureKeys<'a> {
    /// Every key counting failures of this user name.
    User(&'a str),
    One(&'a str),
}

/// Failed logins counted under one key, as every replica sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailures {
    pub key: String,
    pub count: u32,
    /// When the current window of failures began.
    pub since: Timestamp,
    pub locked_until: Option<Timestamp>,
}

/// How one failed login is counted under a key.
#[derive(Debug, Clone, Copy)]
pub struct FailureCount<'a> {
    pub key: &'a str,
    /// The user name the key counts for, if any (for unlocking).
    pub user: Option<&'a str>,
    pub at: Timestamp,
    /// Failures older than this (and not locked) start a new window.
    pub window_ms: i64,
    /// Failures that lock the key, and for how long.
    pub limit: Option<u32>,
    pub lock_ms: i64,
}

#[async_trait]
pub trait AccessStore: Send + Sync + 'static {
    /// Changes whenever anything below changes (tokens, bindings, …).
    async fn policy_version(&self) -> Result<i64>;

    // --- users
    async fn user(&self, name: &str) -> Result<Option<User>>;
    async fn users(&self) -> Result<Vec<User>>;
    /// Creates the user; false if the name is taken.
    async fn create_user(&self, user: &User) -> Result<bool>;
    /// Sets (or clears) the password and moves the credential epoch on.
    async fn set_password(&self, name: &str, password_hash: Option<&str>) -> Result<bool>;
    /// Deletes the user and its tokens.
    async fn delete_user(&self, name: &str) -> Result<bool>;
    /// Deletes the user and its tokens unless it is the last super user
    /// (flagged so, or named in `configured_super_users`) among the users
    /// stored, checked and done in one transaction.
    async fn delete_user_unless_last_super_user(
        &self,
        name: &str,
        configured_super_users: &[String],
    ) -> Result<UserDeletion>;
    async fn count_users(&self) -> Result<u64>;

    // --- groups
    async fn group(&self, name: &str) -> Result<Option<Group>>;
    async fn groups(&self) -> Result<Vec<Group>>;
    /// Creates the group with `users` as members; false if the name is taken.
    async fn create_group(&self, name: &str, users: &[String]) -> Result<bool>;
    /// Creates the group, or replaces its members.
    async fn put_group(&self, name: &str, users: &[String]) -> Result<Group>;
    async fn delete_group(&self, name: &str) -> Result<bool>;

    // --- namespaces
    async fn namespace(&self, name: &str) -> Result<Option<Namespace>>;
    async fn namespaces(&self) -> Result<Vec<Namespace>>;
    /// Creates the namespace; false if it exists.
    async fn create_namespace(&self, namespace: &Namespace) -> Result<bool>;
    /// Deletes the namespace with its service accounts, their tokens, its
    /// role bindings and its repositories (their tags and their links to
    /// manifests and blobs), in one transaction, so that a namespace made
    /// again under the same name starts empty. Manifests and blobs stay
    /// stored, for garbage collection to reclaim.
    async fn delete_namespace(&self, name: &str) -> Result<bool>;

    // --- quotas (policy: setting one moves the policy version on)
    /// Every namespace's quota, by namespace.
    async fn namespace_quotas(&self) -> Result<Vec<super::quotas::NamespaceQuota>>;
    async fn namespace_quota(
        &self,
        namespace: &str,
    ) -> Result<Option<super::quotas::NamespaceQuota>>;
    /// Sets the namespace's quota; one limiting nothing removes it. False
    /// if the namespace does not exist (for a removal: had no quota).
    async fn set_namespace_quota(&self, quota: &super::quotas::NamespaceQuota) -> Result<bool>;

    // --- service accounts
    async fn service_account(&self, namespace: &str, name: &str) -> Result<Option<ServiceAccount>>;
    async fn service_accounts(&self, namespace: &str) -> Result<Vec<ServiceAccount>>;
    async fn create_service_account(&self, account: &ServiceAccount) -> Result<bool>;
    /// Deletes the account and its tokens.
    async fn delete_service_account(&self, namespace: &str, name: &str) -> Result<bool>;

    // --- role bindings
    /// Every binding; the policy is small enough to be held in memory.
    async fn bindings(&self) -> Result<Vec<Binding>>;
    async fn add_binding(&self, binding: &Binding) -> Result<bool>;
    async fn remove_binding(&self, binding: &Binding) -> Result<bool>;

    // --- tokens
    /// Creates the token; false if its owner has one of that name already
    /// (a user's token names are the user's; a service account's are its
    /// namespace's).
    async fn create_token(&self, token: &Token, secret_hash: &str) -> Result<bool>;
    async fn token_by_secret_hash(&self, secret_hash: &str) -> Result<Option<Token>>;
    async fn token(&self, uid: &str) -> Result<Option<Token>>;
    /// Tokens in `namespace` (`None`: user tokens); all of them when `subject` is `None`.
    async fn tokens(
        &self,
        namespace: Option<&str>,
        subject: Option<&TokenSubject>,
    ) -> Result<Vec<Token>>;
    /// Revokes the token `uid`. Names are not unique across owners: find
    /// the token among its owner's first.
    async fn delete_token(&self, uid: &str) -> Result<bool>;

    // --- keys signing bearer tokens
    async fn signing_keys(&self) -> Result<Vec<SigningKey>>;
    async fn add_signing_key(&self, key: &SigningKey) -> Result<()>;
    async fn delete_signing_keys_before(&self, before: Timestamp) -> Result<u64>;

    // --- failed logins, shared by replicas
    /// Counts one failure (a new window if the last one passed), locks the
    /// key when the count reaches the limit, and returns the key's state.
    async fn count_login_failure(&self, count: FailureCount<'_>) -> Result<LoginFailures>;
    /// Keys changed at or after `since` (counted, locked or reset).
    async fn login_failures_changed_since(&self, since: Timestamp) -> Result<Vec<LoginFailures>>;
    /// Resets the keys of `user` (all of them) or the one `key`; returns
    /// whether any was locked.
    async fn reset_login_failures(
        &self,
        which: LoginFailureKeys<'_>,
        at: Timestamp,
    ) -> Result<bool>;
    /// Removes keys unchanged since `before` and not locked at `at`.
    async fn remove_login_failures_before(&self, before: Timestamp, at: Timestamp) -> Result<u64>;
}
