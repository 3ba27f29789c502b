//! Authentication and authorization: who is calling, and may they do this.
//!
//! [`AccessControl`] is the one seam every request passes through:
//! [`authenticate`](AccessControl::authenticate) turns request headers into
//! a [`Caller`], [`check`](AccessControl::check) decides whether that
//! caller may do something (a [`Verb`]) to a repository, and
//! [`grant`](AccessControl::grant) answers the token service.
//!
//! Credentials: HTTP Basic with a user's password or with any user name and
//! a token; `Bearer` with a token, or with a JWT from the token service.
//! Verified credentials are remembered (by a hash of the header) until the
//! policy changes, so no password is hashed per request and a revoked token
//! stops working at once; never longer than the token they came from lives,
//! and a lockout refuses remembered credentials too.

pub mod address;
pub mod bearer;
mod challenge;
pub mod lockout;
pub mod password;
pub mod policy;
pub mod roles;
pub mod scope;
pub mod tokens;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;

use self::address::TrustedProxies;
use self::bearer::{AccessEntry, BearerError, BearerTokens, PasswordStamp};
pub use self::challenge::Challenge;
use self::lockout::{Admission, Key, Lockout, LockoutPolicy, SharedFailures};
pub use self::policy::Principal;
use self::policy::{PolicyCache, PolicySnapshot};
use self::roles::Verb;
use crate::metadata::access::{
    AccessStore, BindingSubject, FailureCount, LoginFailureKeys, LoginFailures, Namespace,
    TokenSubject,
};
use crate::metadata::{MetadataError, Timestamp, now};
use crate::oci::digest::sha256_raw;
use crate::oci::names::RepositoryName;

/// Who may create a namespace by pushing into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoCreateNamespaces {
    /// Super users (and cluster admins) only.
    Superusers,
    /// Any authenticated user or service account.
    Authenticated,
    /// Nobody: namespaces are made with `berth new-project`.
    Never,
}

/// How access control is set up.
#[derive(Debug, Clone)]
pub struct AccessOptions {
    /// The token service's name (`service=` in challenges, `aud` in tokens).
    pub service: String,
    pub token_lifetime: Duration,
    pub key_rotation: Duration,
    /// User names that are super users whatever the database says.
    pub super_users: Vec<String>,
    pub auto_create_namespaces: AutoCreateNamespaces,
    pub lockout: LockoutPolicy,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
}

/// An authenticated (or anonymous) caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    /// The opaque token presented, directly or behind a bearer token.
    pub token_uid: Option<String>,
    /// For bearer JWTs: what the token grants. Access is then what both the
    /// token and the current policy allow.
    pub grants: Option<Vec<AccessEntry>>,
    /// For a user who signed in with a password (directly, or behind a
    /// bearer token): which password, so that bearer tokens issued for it
    /// end when it changes.
    pub stamp: Option<PasswordStamp>,
}

impl Caller {
    pub fn anonymous() -> Caller {
        Caller {
            principal: Principal::Anonymous,
            token_uid: None,
            grants: None,
            stamp: None,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.principal.is_anonymous()
    }

    fn token_grants(&self, kind: &str, name: &str, action: &str) -> bool {
        match &self.grants {
            None => true,
            Some(entries) => entries.iter().any(|e| {
                e.kind == kind
                    && e.name == name
                    && e.actions.iter().any(|a| a == action || a == "*")
            }),
        }
    }
}

/// Why authentication failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("invalid credentials")]
    BadCredentials,
    #[error("too many failed logins; retry in {0:?}")]
    LockedOut(Duration),
    #[error(transparent)]
    Store(#[from] MetadataError),
    #[error(transparent)]
    Bearer(BearerError),
}

/// Why an authenticated caller may not do something.
#[derive(Debug, thiserror::Error)]
pub enum Denial {
    /// Anonymous: credentials might help (401).
    #[error("authentication required")]
    Unauthenticated,
    /// Authenticated but not allowed (403), told the same way whether or not
    /// the repository exists. The reason, when there is one, says no more
    /// than the caller may know (see [`AccessControl::push_refusal`]).
    #[error("access denied")]
    Forbidden { reason: Option<String> },
    /// Allowed, but the bearer token presented does not say so: the client
    /// should fetch a token for this scope (401 with a challenge naming it).
    #[error("the bearer token does not grant this")]
    InsufficientScope,
    #[error(transparent)]
    Store(#[from] MetadataError),
}

/// How long a verified credential is trusted without looking again, even
/// if the policy does not change.
const CREDENTIAL_TTL: Duration = Duration::from_secs(300);
const CREDENTIAL_CACHE_MAX: usize = 10_000;

struct Verified {
    caller: Caller,
    /// The user name of a password login, which the brute-force defence
    /// counts failures against (`None` for token logins).
    lockout_user: Option<String>,
    policy_version: i64,
    until: Instant,
}

/// A verified caller, and when the credential expires: the bearer token, or
/// the opaque token behind it if that expires first.
struct Verification {
    caller: Caller,
    expires_at: Option<Timestamp>,
}

impl Verification {
    fn new(caller: Caller) -> Self {
        Verification {
            caller,
            expires_at: None,
        }
    }
}

pub struct AccessControl {
    store: Arc<dyn AccessStore>,
    policy: PolicyCache,
    bearer: BearerTokens,
    lockout: Lockout,
    trusted_proxies: TrustedProxies,
    auto_create_namespaces: AutoCreateNamespaces,
    /// sha256(Authorization header) → caller. Keyed by a hash so that no
    /// secret is kept in memory in the clear.
    verified: Mutex<HashMap<[u8; 32], Verified>>,
    lockout_sync: Mutex<LockoutSync>,
}

/// When this replica last adopted the failed logins other replicas counted.
struct LockoutSync {
    next_at: Instant,
    /// The store's clock at the last look (milliseconds).
    seen_until: Timestamp,
    next_cleanup_at: Instant,
}

/// How often the shared failure counts are read: the longest another
/// replica's lockout takes to reach this one.
const LOCKOUT_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Credentials as the `Authorization` header presents them.
enum Presented {
    Basic { user: String, secret: String },
    Bearer(String),
}

fn presented(value: &HeaderValue) -> Result<Presented, AuthFailure> {
    let text = value.to_str().map_err(|_| AuthFailure::BadCredentials)?;
    let (scheme, rest) = text.split_once(' ').ok_or(AuthFailure::BadCredentials)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| AuthFailure::BadCredentials)?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthFailure::BadCredentials)?;
        let (user, secret) = decoded.split_once(':').ok_or(AuthFailure::BadCredentials)?;
        Ok(Presented::Basic {
            user: user.to_owned(),
            secret: secret.to_owned(),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Presented::Bearer(rest.to_owned()))
    } else {
        Err(AuthFailure::BadCredentials)
    }
}

/// A login refused by the brute-force defence, logged.
fn shared_failures(row: &LoginFailures, now: Timestamp) -> SharedFailures {
    SharedFailures {
        count: row.count,
        since: row.since,
        locked_until: row.locked_until,
        now,
    }
}

fn locked_out(user: Option<&str>, address: Option<IpAddr>, wait: Duration) -> AuthFailure {
    tracing::warn!(user = user.unwrap_or(""), address = ?address, outcome = "locked_out", "login");
    AuthFailure::LockedOut(wait)
}

impl AccessControl {
    pub fn new(store: Arc<dyn AccessStore>, options: AccessOptions) -> Self {
        AccessControl {
            policy: PolicyCache::new(store.clone(), options.super_users),
            bearer: BearerTokens::new(
                store.clone(),
                "berth",
                options.service,
                options.token_lifetime,
                options.key_rotation,
            ),
            store,
            lockout: Lockout::new(options.lockout),
            lockout_sync: Mutex::new(LockoutSync {
                next_at: Instant::now(),
                seen_until: 0,
                next_cleanup_at: Instant::now() + Duration::from_secs(60),
            }),
            trusted_proxies: options.trusted_proxies,
            auto_create_namespaces: options.auto_create_namespaces,
            verified: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Arc<dyn AccessStore> {
        &self.store
    }

    /// Users the configuration makes super users (`auth.superUsers`).
    pub fn configured_super_users(&self) -> &[String] {
        self.policy.configured_super_users()
    }

    pub fn bearer(&self) -> &BearerTokens {
        &self.bearer
    }

    /// The policy as of now.
    pub async fn policy(&self) -> Result<Arc<PolicySnapshot>, MetadataError> {
        self.policy.current().await
    }

    /// Call after changing access data through this process, so that the
    /// change applies to the very next request.
    pub fn policy_changed(&self) {
        self.policy.invalidate();
    }

    /// The challenge to an unauthenticated request: the token service at
    /// `<base_url>/auth/token`, and the scope the request needed, if known.
    pub fn challenge(&self, base_url: &str, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: format!("{}/auth/token", base_url.trim_end_matches('/')),
            service: self.bearer.service().to_owned(),
            scope: scope.map(str::to_owned),
            insufficient_scope: false,
        }
    }

    /// The challenge to a bearer token that does not grant what the request
    /// needs: as [`challenge`](Self::challenge), with
    /// `error="insufficient_scope"` (RFC 6750, the Docker token protocol),
    /// which tells clients to ask the token service for `scope`.
    pub fn insufficient_scope_challenge(&self, base_url: &str, scope: &str) -> Challenge {
        Challenge::Bearer {
            realm: format!("{}/auth/token", base_url.trim_end_matches('/')),
            service: self.bearer.service().to_owned(),
            scope: Some(scope.to_owned()),
            insufficient_scope: true,
        }
    }

    /// The client's address: the peer's, or behind a trusted proxy the one
    /// it forwarded (see [`address::TrustedProxies`]).
    pub fn client_address(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        self.trusted_proxies.client(peer, headers)
    }

    /// Forgets the failed logins counted against `user` (see
    /// [`Lockout::unlock`]), on every replica; returns whether it was locked
    /// out or slowed down.
    pub async fn unlock(&self, user: &str) -> Result<bool, MetadataError> {
        let here = self.lockout.unlock(user);
        let shared = self
            .store
            .reset_login_failures(LoginFailureKeys::User(user), now())
            .await?;
        Ok(here || shared)
    }

    /// Adopts what other replicas counted since the last look, at most once
    /// per [`LOCKOUT_SYNC_INTERVAL`]. A store that does not answer leaves
    /// this replica's own counts in force.
    async fn sync_lockouts(&self) {
        let (since, cleanup) = {
            let mut sync = self.lockout_sync.lock().unwrap_or_else(|e| e.into_inner());
            let instant = Instant::now();
            if instant < sync.next_at {
                return;
            }
            sync.next_at = instant + LOCKOUT_SYNC_INTERVAL;
            let cleanup = instant >= sync.next_cleanup_at;
            if cleanup {
                sync.next_cleanup_at = instant + Duration::from_secs(60);
            }
            // A margin for writes that committed late, and for clocks of
            // replicas that differ a little.
            (sync.seen_until - 5_000, cleanup)
        };
        let at = now();
        match self.store.login_failures_changed_since(since).await {
            Ok(rows) => {
                for row in rows {
                    if let Some(key) = Key::decode(&row.key) {
                        self.lockout.adopt(key, shared_failures(&row, at));
                    }
                }
                let mut sync = self.lockout_sync.lock().unwrap_or_else(|e| e.into_inner());
                sync.seen_until = sync.seen_until.max(at);
            }
            Err(e) => tracing::debug!(error = %e, "reading shared login failures"),
        }
        if cleanup {
            let policy = self.lockout.policy();
            let keep = policy.window.max(policy.duration).as_millis() as i64;
            if let Err(e) = self.store.remove_login_failures_before(at - keep, at).await {
                tracing::debug!(error = %e, "removing old login failures");
            }
        }
    }

    /// Counts a failed login in the shared store and adopts the totals, so
    /// that failures on every replica add up.
    async fn share_failure(&self, user: Option<&str>, address: Option<IpAddr>) {
        let policy = *self.lockout.policy();
        for (key, limit) in self.lockout.failure_keys(user, address) {
            let encoded = key.encode();
            let at = now();
            let counted = self
                .store
                .count_login_failure(FailureCount {
                    key: &encoded,
                    user: key.user(),
                    at,
                    window_ms: policy.window.as_millis() as i64,
                    limit,
                    lock_ms: policy.duration.as_millis() as i64,
                })
                .await;
            match counted {
                Ok(row) => self.lockout.adopt(key, shared_failures(&row, at)),
                Err(e) => tracing::warn!(error = %e, "counting a failed login in the database"),
            }
        }
    }

    /// Identifies the caller. No credentials is anonymous; wrong ones are a
    /// failure, never a silent downgrade to anonymous. `peer` is the
    /// connection's address.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Caller, AuthFailure> {
        let Some(authorization) = headers.get(header::AUTHORIZATION) else {
            return Ok(Caller::anonymous());
        };
        let address = self.client_address(headers, peer);
        self.sync_lockouts().await;
        // The cache is consulted before the header is even parsed: a client
        // sends the same header on every request.
        let key = sha256_raw(authorization.as_bytes());
        let policy = self.policy.current().await?;
        if let Some((caller, lockout_user)) = self.cached(&key, policy.version) {
            // A client locked out is refused even with credentials berth
            // remembers: otherwise a right guess would be told from wrong
            // ones while the lockout lasts. No slowing down: these were
            // verified right.
            if let Admission::Refused(wait) = self.lockout.admit(lockout_user.as_deref(), address) {
                return Err(locked_out(lockout_user.as_deref(), address, wait));
            }
            return Ok(caller);
        }
        let presented = presented(authorization)?;
        // Password logins are counted against their user name; token logins
        // (whatever user name comes with the token) only against the address.
        let lockout_user = match &presented {
            Presented::Basic { user, secret } if !tokens::looks_like_token(secret) => {
                Some(user.as_str())
            }
            _ => None,
        };
        match self.lockout.admit(lockout_user, address) {
            Admission::Refused(wait) => return Err(locked_out(lockout_user, address, wait)),
            Admission::After(delay) => {
                tracing::info!(user = lockout_user.unwrap_or(""), address = ?address, delay = ?delay, outcome = "slowed", "login");
                tokio::time::sleep(delay).await;
            }
            Admission::Now => {}
        }
        let outcome = match &presented {
            Presented::Basic { user, secret } => self.verify_basic(user, secret, &policy).await,
            Presented::Bearer(token) => self.verify_bearer(token, &policy).await,
        };
        match outcome {
            Ok(verified) => {
                if let Some(name) = lockout_user
                    && let Some(key) = self.lockout.record_success(name, address)
                    && let Err(e) = self
                        .store
                        .reset_login_failures(LoginFailureKeys::One(&key.encode()), now())
                        .await
                {
                    tracing::warn!(error = %e, "clearing failed logins in the database");
                }
                let caller = verified.caller.clone();
                tracing::info!(subject = %caller.principal.name(), address = ?address, outcome = "success", "login");
                self.remember(key, verified, lockout_user, policy.version);
                Ok(caller)
            }
            Err(AuthFailure::BadCredentials) => {
                // A bearer JWT that fails (expired, or issued for a password
                // since changed) is no guess: JWTs cannot be guessed, and
                // clients fetch a new one when told to.
                let guess =
                    !matches!(&presented, Presented::Bearer(t) if !tokens::looks_like_token(t));
                if guess {
                    self.lockout.record_failure(lockout_user, address);
                    self.share_failure(lockout_user, address).await;
                }
                let user = match &presented {
                    Presented::Basic { user, .. } => user.as_str(),
                    Presented::Bearer(_) => "",
                };
                tracing::warn!(user, address = ?address, outcome = "failure", "login");
                Err(AuthFailure::BadCredentials)
            }
            Err(e) => Err(e),
        }
    }

    /// The remembered caller and the user name of its password login.
    fn cached(&self, key: &[u8; 32], policy_version: i64) -> Option<(Caller, Option<String>)> {
        let cache = self.verified.lock().ok()?;
        let entry = cache.get(key)?;
        (entry.policy_version == policy_version && entry.until > Instant::now())
            .then(|| (entry.caller.clone(), entry.lockout_user.clone()))
    }

    fn remember(
        &self,
        key: [u8; 32],
        verified: Verification,
        lockout_user: Option<&str>,
        policy_version: i64,
    ) {
        let Ok(mut cache) = self.verified.lock() else {
            return;
        };
        if cache.len() >= CREDENTIAL_CACHE_MAX {
            let now = Instant::now();
            cache.retain(|_, v| v.until > now && v.policy_version == policy_version);
            if cache.len() >= CREDENTIAL_CACHE_MAX {
                cache.clear();
            }
        }
        let mut until = Instant::now() + CREDENTIAL_TTL;
        if verified.caller.grants.is_some() {
            // A bearer token must not outlive its own expiry in the cache.
            until = Instant::now() + self.bearer.lifetime().min(CREDENTIAL_TTL);
        }
        if let Some(expires_at) = verified.expires_at {
            // Nor the credential it was verified from its own expiry: a
            // bearer token's `exp`, an opaque token's (presented directly or
            // behind a bearer token).
            let left = u64::try_from(expires_at.saturating_sub(now())).unwrap_or(0);
            until = until.min(Instant::now() + Duration::from_millis(left));
        }
        cache.insert(
            key,
            Verified {
                caller: verified.caller,
                lockout_user: lockout_user.map(str::to_owned),
                policy_version,
                until,
            },
        );
    }

    /// Basic: a token as the password (whatever the user name), or the
    /// user's password.
    async fn verify_basic(
        &self,
        user: &str,
        secret: &str,
        policy: &PolicySnapshot,
    ) -> Result<Verification, AuthFailure> {
        if tokens::looks_like_token(secret) {
            return self.verify_opaque_token(secret, policy).await;
        }
        let record = self.store.user(user).await?;
        // Unknown users are checked against a dummy hash so that the time
        // taken does not reveal which user names exist.
        let hash = record
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| password::DUMMY_HASH.to_owned());
        let matches = password::verify_bounded(secret.to_owned(), hash)
            .await
            .map_err(|e| AuthFailure::Store(MetadataError::Corrupt(e.to_string())))?;
        match record {
            Some(u) if matches && u.password_hash.is_some() => Ok(Verification::new(Caller {
                principal: Principal::User(u.name),
                token_uid: None,
                grants: None,
                stamp: Some(PasswordStamp {
                    uid: u.uid,
                    epoch: u.credential_epoch,
                }),
            })),
            _ => Err(AuthFailure::BadCredentials),
        }
    }

    async fn verify_opaque_token(
        &self,
        secret: &str,
        policy: &PolicySnapshot,
    ) -> Result<Verification, AuthFailure> {
        let token = self
            .store
            .token_by_secret_hash(&tokens::secret_hash(secret))
            .await?
            .filter(|t| !t.expired(now()))
            .ok_or(AuthFailure::BadCredentials)?;
        let principal = match token.subject {
            TokenSubject::User(name) if policy.user_exists(&name) => Principal::User(name),
            TokenSubject::User(_) => return Err(AuthFailure::BadCredentials),
            TokenSubject::ServiceAccount { namespace, name } => {
                Principal::ServiceAccount { namespace, name }
            }
        };
        Ok(Verification {
            caller: Caller {
                principal,
                token_uid: Some(token.uid),
                grants: None,
                stamp: None,
            },
            expires_at: token.expires_at,
        })
    }

    async fn verify_bearer(
        &self,
        token: &str,
        policy: &PolicySnapshot,
    ) -> Result<Verification, AuthFailure> {
        if tokens::looks_like_token(token) {
            return self.verify_opaque_token(token, policy).await;
        }
        let claims = match self.bearer.verify(token).await {
            Ok(claims) => claims,
            Err(BearerError::Invalid(reason)) => {
                tracing::debug!(reason, "bearer token refused");
                return Err(AuthFailure::BadCredentials);
            }
            Err(e) => return Err(AuthFailure::Bearer(e)),
        };
        // Revoking the token a bearer token was issued for revokes it too,
        // and it expires with it.
        let mut expires_at = None;
        if let Some(uid) = &claims.tid {
            let token = self
                .store
                .token(uid)
                .await?
                .filter(|t| !t.expired(now()))
                .ok_or(AuthFailure::BadCredentials)?;
            expires_at = token.expires_at;
        }
        let principal = Principal::from_name(&claims.sub);
        // Issued for a password: valid while that password is the user's
        // (the user not deleted, not made again, the password not changed).
        let stamp = claims.stamp();
        if let Principal::User(name) = &principal
            && claims.tid.is_none()
            && !stamp
                .as_ref()
                .is_some_and(|stamp| policy.password_current(name, stamp))
        {
            return Err(AuthFailure::BadCredentials);
        }
        // Remembered no longer than the bearer token itself lives: a token
        // verified shortly before its `exp` must not work on from the cache.
        let bearer_expiry = claims.exp.saturating_mul(1000);
        let expires_at = Some(expires_at.map_or(bearer_expiry, |e| e.min(bearer_expiry)));
        Ok(Verification {
            caller: Caller {
                principal,
                token_uid: claims.tid,
                grants: Some(claims.access),
                stamp,
            },
            expires_at,
        })
    }

    /// May `caller` do `verb` to `repo`? An answer and nothing else: it
    /// writes nothing. A push into a namespace that does not exist is
    /// allowed when the caller may create that namespace; the push path
    /// creates it at its first write ([`prepare_push`](Self::prepare_push)).
    pub async fn check(
        &self,
        caller: &Caller,
        verb: Verb,
        repo: &RepositoryName,
    ) -> Result<(), Denial> {
        let policy = self.policy.current().await?;
        if !self.permits(&policy, caller, verb, repo.namespace()) {
            if caller.is_anonymous() {
                return Err(Denial::Unauthenticated);
            }
            let reason =
                (verb == Verb::Push).then(|| self.push_refusal(&policy, caller, repo.namespace()));
            return Err(Denial::Forbidden { reason });
        }
        if !caller.token_grants("repository", repo.as_str(), verb.as_str()) {
            return Err(Denial::InsufficientScope);
        }
        Ok(())
    }

    /// What the policy allows the caller's principal, whatever the bearer
    /// token presented grants. Used to pick mount sources: a mount reveals
    /// nothing the principal could not read anyway, and clients rarely ask
    /// for a token covering the source repository. Writes nothing.
    pub async fn policy_allows(
        &self,
        caller: &Caller,
        verb: Verb,
        repo: &RepositoryName,
    ) -> Result<bool, MetadataError> {
        let policy = self.policy.current().await?;
        Ok(self.permits(&policy, caller, verb, repo.namespace()))
    }

    /// Which repositories `caller`'s principal may pull, as a test that
    /// needs no further lookup (for filtering listings such as the catalog).
    pub async fn pullable_by(
        &self,
        caller: &Caller,
    ) -> Result<impl Fn(&RepositoryName) -> bool + use<>, MetadataError> {
        let policy = self.policy.current().await?;
        let principal = caller.principal.clone();
        Ok(move |repo: &RepositoryName| policy.allows(&principal, repo.namespace(), Verb::Pull))
    }

    /// The policy's answer: the caller's roles, or for a push into a
    /// namespace that does not exist, whether the caller may create it.
    fn permits(
        &self,
        policy: &PolicySnapshot,
        caller: &Caller,
        verb: Verb,
        namespace: &str,
    ) -> bool {
        policy.allows(&caller.principal, namespace, verb)
            || (verb == Verb::Push
                && !policy.namespace_exists(namespace)
                && self.may_create_namespace(caller, policy))
    }

    /// The first write of a push into `repo` (an upload started, a blob
    /// mounted or completed, a manifest stored) calls this after
    /// [`check`](Self::check) allowed it: a namespace that holds
    /// repositories is a project, so one that does not exist yet is
    /// created now, with the caller as its `registry-admin`. A caller
    /// allowed to push by a cluster-wide binding, who may not create
    /// namespaces, is refused here.
    pub async fn prepare_push(&self, caller: &Caller, repo: &RepositoryName) -> Result<(), Denial> {
        let policy = self.policy.current().await?;
        let namespace = repo.namespace();
        if policy.namespace_exists(namespace) {
            return Ok(());
        }
        if !self.may_create_namespace(caller, &policy) {
            if caller.is_anonymous() {
                return Err(Denial::Unauthenticated);
            }
            return Err(Denial::Forbidden {
                reason: Some(self.push_refusal(&policy, caller, namespace)),
            });
        }
        // Created meanwhile (by another request or replica) is as good.
        self.create_namespace(namespace, &caller.principal).await?;
        Ok(())
    }

    /// Why `caller` may not push into `namespace`, in words that tell it no
    /// more than it may know already.
    ///
    /// Whether a namespace exists is for those who can see it anyway: cluster
    /// admins (they list every project), callers with any role there (the
    /// project is in their list; a cluster-wide binding puts every project
    /// there), and callers who may create namespaces (creating it would
    /// answer "already exists"). Anyone else gets one text whether or not the
    /// namespace exists, true in both cases. The repository is never
    /// mentioned: whether it exists is for those who may pull it.
    fn push_refusal(&self, policy: &PolicySnapshot, caller: &Caller, namespace: &str) -> String {
        let verbs = policy.verbs(&caller.principal, namespace);
        let may_create = self.may_create_namespace(caller, policy);
        let may_know =
            may_create || !verbs.is_empty() || policy.is_cluster_admin(&caller.principal);
        if !may_know {
            return format!(
                "you have no role in namespace \"{namespace}\" that allows pushing, and you may \
                 not create namespaces"
            );
        }
        if !policy.namespace_exists(namespace) {
            let how = match self.auto_create_namespaces {
                AutoCreateNamespaces::Never => {
                    "namespaces are not created by pushes here; create the project first"
                }
                _ => "ask a cluster admin to create the project",
            };
            return format!(
                "namespace \"{namespace}\" does not exist and you may not create it ({how})"
            );
        }
        if verbs.is_empty() {
            format!("you have no role in namespace \"{namespace}\" that allows pushing")
        } else {
            format!("your role in namespace \"{namespace}\" does not allow pushing")
        }
    }

    /// Whether `caller` may make a namespace by pushing into it.
    pub fn may_create_namespace(&self, caller: &Caller, policy: &PolicySnapshot) -> bool {
        match self.auto_create_namespaces {
            AutoCreateNamespaces::Never => false,
            AutoCreateNamespaces::Superusers => policy.is_cluster_admin(&caller.principal),
            AutoCreateNamespaces::Authenticated => !caller.is_anonymous(),
        }
    }

    /// Creates `namespace` with `creator` as its `registry-admin`. Returns
    /// false if it already existed.
    pub async fn create_namespace(
        &self,
        namespace: &str,
        creator: &Principal,
    ) -> Result<bool, MetadataError> {
        let created = self
            .store
            .create_namespace(&Namespace {
                name: namespace.to_owned(),
                uid: uuid::Uuid::new_v4().to_string(),
                created_by: (!creator.is_anonymous()).then(|| creator.name()),
                created_at: now(),
            })
            .await?;
        if created && !creator.is_anonymous() {
            self.store
                .add_binding(&crate::metadata::access::Binding {
                    namespace: Some(namespace.to_owned()),
                    role: "registry-admin".into(),
                    subject: policy::user_subject(&creator.name()),
                })
                .await?;
            tracing::info!(namespace, creator = %creator.name(), "namespace created");
        }
        self.policy_changed();
        Ok(created)
    }

    /// The token service's answer: of `requested`, what `caller` may have.
    pub async fn grant(
        &self,
        caller: &Caller,
        requested: &[AccessEntry],
    ) -> Result<Vec<AccessEntry>, MetadataError> {
        let policy = self.policy.current().await?;
        let mut granted = Vec::new();
        for entry in requested {
            let actions: Vec<String> = match entry.kind.as_str() {
                "repository" => {
                    let Ok(repo) = entry.name.parse::<RepositoryName>() else {
                        continue;
                    };
                    let namespace = repo.namespace();
                    let verbs = policy.verbs(&caller.principal, namespace);
                    let creatable = !policy.namespace_exists(namespace)
                        && self.may_create_namespace(caller, &policy);
                    let wanted: Vec<Verb> = if entry.actions.iter().any(|a| a == "*") {
                        Verb::ON_REPOSITORIES.to_vec()
                    } else {
                        entry
                            .actions
                            .iter()
                            .filter_map(|a| Verb::parse_repository_action(a))
                            .collect()
                    };
                    wanted
                        .into_iter()
                        .filter(|&verb| verbs.contains(verb) || (verb == Verb::Push && creatable))
                        .map(|verb| verb.as_str().to_owned())
                        .collect()
                }
                // The catalog itself shows each caller only what it may pull.
                "registry" if entry.name == "catalog" => vec!["*".to_owned()],
                _ => Vec::new(),
            };
            if !actions.is_empty() {
                granted.push(AccessEntry {
                    kind: entry.kind.clone(),
                    name: entry.name.clone(),
                    actions,
                });
            }
        }
        Ok(granted)
    }

    /// Subjects that may do `verb` in `namespace`.
    pub async fn who_can(
        &self,
        namespace: &str,
        verb: Verb,
    ) -> Result<Vec<BindingSubject>, MetadataError> {
        Ok(self.policy.current().await?.who_can(namespace, verb))
    }

    /// Verbs `caller` has in `namespace`.
    pub async fn verbs(
        &self,
        caller: &Caller,
        namespace: &str,
    ) -> Result<roles::Verbs, MetadataError> {
        Ok(self
            .policy
            .current()
            .await?
            .verbs(&caller.principal, namespace))
    }

    pub async fn is_cluster_admin(&self, caller: &Caller) -> Result<bool, MetadataError> {
        Ok(self
            .policy
            .current()
            .await?
            .is_cluster_admin(&caller.principal))
    }
}
