//! Authentication and authorization: who is calling, and may they do this.
//!
//! This is the one seam every request passes through. [`AccessControl`]
//! turns request headers into a [`Principal`] and answers whether that
//! principal may perform an [`Action`] on a repository. Today: HTTP Basic
//! against the users table; every authenticated user may do everything.
//! Roles, bindings and tokens plug in behind these same two calls.

pub mod password;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;

use crate::domain::digest::sha256_raw;
use crate::domain::names::RepositoryName;
use crate::error::RegistryError;
use crate::metadata::MetadataStore;

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User { name: String, super_user: bool },
}

impl Principal {
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Principal::Anonymous)
    }

    /// A name for logs.
    pub fn display_name(&self) -> &str {
        match self {
            Principal::Anonymous => "system:anonymous",
            Principal::User { name, .. } => name,
        }
    }
}

/// What a request does to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

/// How long a verified credential is remembered, so that a password hash is
/// computed once per client rather than once per request.
const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(60);
const CREDENTIAL_CACHE_MAX: usize = 10_000;

pub struct AccessControl {
    metadata: Arc<dyn MetadataStore>,
    realm: String,
    /// sha256(Authorization header) → principal. Keyed by a hash so that no
    /// secret is kept in memory in the clear.
    verified: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

impl AccessControl {
    pub fn new(metadata: Arc<dyn MetadataStore>, realm: impl Into<String>) -> Self {
        AccessControl {
            metadata,
            realm: realm.into(),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The `WWW-Authenticate` challenge sent with 401 responses.
    pub fn challenge(&self) -> HeaderValue {
        HeaderValue::try_from(format!("Basic realm=\"{}\"", self.realm))
            .unwrap_or(HeaderValue::from_static("Basic realm=\"berth\""))
    }

    pub fn unauthorized(&self) -> RegistryError {
        RegistryError::Unauthorized {
            challenge: self.challenge(),
        }
    }

    /// Identifies the caller. No credentials is `Anonymous`; wrong ones are
    /// an error (401), never a silent downgrade to anonymous.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, RegistryError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(Principal::Anonymous);
        };
        let key = sha256_raw(value.as_bytes());
        if let Some(principal) = self.cached(&key) {
            return Ok(principal);
        }
        let (user, password) = parse_basic(value).ok_or_else(|| self.unauthorized())?;
        let principal = self.verify_password(&user, &password).await?;
        self.remember(key, principal.clone());
        Ok(principal)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Principal> {
        let cache = self.verified.lock().ok()?;
        match cache.get(key) {
            Some((principal, at)) if at.elapsed() < CREDENTIAL_CACHE_TTL => Some(principal.clone()),
            _ => None,
        }
    }

    fn remember(&self, key: [u8; 32], principal: Principal) {
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= CREDENTIAL_CACHE_MAX {
                cache.retain(|_, (_, at)| at.elapsed() < CREDENTIAL_CACHE_TTL);
                if cache.len() >= CREDENTIAL_CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(key, (principal, Instant::now()));
        }
    }

    async fn verify_password(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Principal, RegistryError> {
        let record = self.metadata.user(user).await?;
        // Unknown users are checked against a dummy hash so that the time
        // taken does not reveal which user names exist.
        let hash = record
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| password::DUMMY_HASH.to_owned());
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || password::verify(&password, &hash))
            .await
            .map_err(|e| RegistryError::Internal(e.to_string()))?;
        match record {
            Some(u) if ok && u.password_hash.is_some() => Ok(Principal::User {
                name: u.name,
                super_user: u.super_user,
            }),
            _ => {
                tracing::info!(user, outcome = "failure", "login");
                Err(self.unauthorized())
            }
        }
    }

    /// May `principal` do `action` on `repo`?
    pub fn allowed(&self, principal: &Principal, _action: Action, _repo: &RepositoryName) -> bool {
        !principal.is_anonymous()
    }

    /// May `principal` list the catalog (it sees only what it may pull)?
    pub fn may_list_catalog(&self, principal: &Principal) -> bool {
        !principal.is_anonymous()
    }

    /// Fails with 401 for anonymous callers and 403 `DENIED` otherwise, the
    /// same whether or not the repository exists.
    pub fn require(
        &self,
        principal: &Principal,
        action: Action,
        repo: &RepositoryName,
    ) -> Result<(), RegistryError> {
        if self.allowed(principal, action, repo) {
            Ok(())
        } else if principal.is_anonymous() {
            Err(self.unauthorized())
        } else {
            Err(RegistryError::Denied)
        }
    }
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let text = value.to_str().ok()?;
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic_credentials() {
        let v = HeaderValue::from_static("Basic YWRtaW46czNjcjN0OndpdGg6Y29sb25z");
        assert_eq!(
            parse_basic(&v),
            Some(("admin".into(), "s3cr3t:with:colons".into()))
        );
        assert_eq!(parse_basic(&HeaderValue::from_static("Bearer abc")), None);
        assert_eq!(parse_basic(&HeaderValue::from_static("Basic !!!")), None);
        assert_eq!(parse_basic(&HeaderValue::from_static("Basic")), None);
    }
}
