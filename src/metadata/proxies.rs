//! Proxy namespaces as stored ([`ProxyStore`]): which namespaces cache
//! which upstream registry, and how (migration 0014).

use async_trait::async_trait;

use super::{Result, Timestamp};

/// A proxy namespace's row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredProxy {
    pub namespace: String,
    /// `host[:port]` of the upstream registry.
    pub upstream: String,
    /// The namespace's pull secret to reach it with; `None`: the secret
    /// matching the upstream, if any.
    pub secret: Option<String>,
    /// How long a tag is served before it is checked against the upstream.
    pub ttl_seconds: i64,
    /// Plain HTTP or an unverified certificate accepted.
    #[sqlx(try_from = "super::sql::Flag")]
    pub insecure: bool,
    pub created_by: Option<String>,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait ProxyStore: Send + Sync + 'static {
    /// Records the namespace as a proxy (replacing what it was). The
    /// namespace must exist.
    async fn put_proxy(&self, proxy: &StoredProxy) -> Result<()>;
    /// Every proxy namespace, by name.
    async fn proxies(&self) -> Result<Vec<StoredProxy>>;
    /// Makes the namespace an ordinary one again; false if it was not a proxy.
    async fn delete_proxy(&self, namespace: &str) -> Result<bool>;
}
