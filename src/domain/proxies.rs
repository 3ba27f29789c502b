//! Proxy namespaces: a namespace that caches a whole upstream registry
//! (Quay's and Harbor's proxy-cache projects). `NS/library/alpine:3.20`
//! is `library/alpine:3.20` of the namespace's upstream: the first pull
//! imports the tag with reference policy `Local` (see
//! [`super::pull_through`]), later pulls are served from berth and the tag
//! is checked against the upstream once its TTL has passed, or served as
//! it is when the upstream fails. Pushes into the namespace are refused.
//!
//! Which namespaces are proxies is read on every pull and push, so it is
//! kept in memory: this replica's changes are seen at once, other
//! replicas' within [`RELOAD_INTERVAL`] (the upkeep job reloads it).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::metadata::proxies::{ProxyStore, StoredProxy};
use crate::metadata::{MetadataError, now};
use crate::oci::names::RepositoryName;
use crate::upstream::RegistryHost;

/// How often every replica reloads the proxy namespaces.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);
/// A tag's TTL unless the proxy says otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] MetadataError),
}

/// A namespace caching an upstream registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyNamespace {
    pub namespace: String,
    pub upstream: RegistryHost,
    /// The pull secret to reach the upstream with (by name); otherwise the
    /// namespace's secret matching the upstream, if any.
    pub secret: Option<String>,
    pub ttl: Duration,
    pub insecure: bool,
    pub created_by: Option<String>,
    pub created_at: crate::metadata::Timestamp,
}

impl ProxyNamespace {
    /// The upstream repository `repo` of this namespace caches: its name
    /// below the namespace (`hub/library/alpine` → `library/alpine`).
    pub fn upstream_path<'a>(&self, repo: &'a RepositoryName) -> &'a str {
        &repo.as_str()[repo.namespace().len() + 1..]
    }

    fn from_row(row: StoredProxy) -> Result<ProxyNamespace, ProxyError> {
        Ok(ProxyNamespace {
            upstream: RegistryHost::new(&row.upstream)
                .map_err(|e| ProxyError::Invalid(format!("upstream {}: {e}", row.upstream)))?,
            namespace: row.namespace,
            secret: row.secret,
            ttl: Duration::from_secs(row.ttl_seconds.max(0) as u64),
            insecure: row.insecure,
            created_by: row.created_by,
            created_at: row.created_at,
        })
    }
}

/// What `berth create proxy` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewProxy {
    /// `https://host[:port]`, `http://host[:port]` (insecure) or `host[:port]`.
    pub upstream: String,
    pub secret: Option<String>,
    pub ttl: Option<Duration>,
    pub insecure: bool,
}

/// `host[:port]` and whether plain HTTP is asked for, from an upstream as
/// written.
pub fn parse_upstream(text: &str) -> Result<(RegistryHost, bool), ProxyError> {
    let (rest, plain_http) = if let Some(rest) = text.strip_prefix("https://") {
        (rest, false)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (rest, true)
    } else {
        (text, false)
    };
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        return Err(ProxyError::Invalid(format!(
            "upstream {text:?}: give the registry as https://HOST[:PORT] (a whole registry, no path)"
        )));
    }
    let host = RegistryHost::new(host)
        .map_err(|e| ProxyError::Invalid(format!("upstream {text:?}: {e}")))?;
    Ok((host, plain_http))
}

pub struct Proxies {
    store: Arc<dyn ProxyStore>,
    known: RwLock<Arc<HashMap<String, ProxyNamespace>>>,
}

impl Proxies {
    /// The proxy namespaces as stored now.
    pub async fn load(store: Arc<dyn ProxyStore>) -> Result<Proxies, ProxyError> {
        let proxies = Proxies {
            store,
            known: RwLock::new(Arc::default()),
        };
        proxies.reload().await?;
        Ok(proxies)
    }

    /// Reads them again (another replica may have changed them). A row
    /// that no longer parses is logged and left out.
    pub async fn reload(&self) -> Result<(), ProxyError> {
        let mut known = HashMap::new();
        for row in self.store.proxies().await? {
            let namespace = row.namespace.clone();
            match ProxyNamespace::from_row(row) {
                Ok(proxy) => {
                    known.insert(namespace, proxy);
                }
                Err(e) => tracing::warn!(namespace, error = %e, "ignoring a proxy namespace"),
            }
        }
        *self.known.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(known);
        Ok(())
    }

    /// The proxy `namespace` is, if it is one.
    pub fn get(&self, namespace: &str) -> Option<ProxyNamespace> {
        self.known
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(namespace)
            .cloned()
    }

    pub fn all(&self) -> Vec<ProxyNamespace> {
        let known = self.known.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut all: Vec<_> = known.values().cloned().collect();
        all.sort_by(|a, b| a.namespace.cmp(&b.namespace));
        all
    }

    /// Makes the existing namespace a proxy of `new.upstream`.
    pub async fn set(
        &self,
        namespace: &str,
        new: &NewProxy,
        by: Option<&str>,
    ) -> Result<ProxyNamespace, ProxyError> {
        let (upstream, plain_http) = parse_upstream(&new.upstream)?;
        let ttl = new.ttl.unwrap_or(DEFAULT_TTL);
        if ttl.is_zero() {
            return Err(ProxyError::Invalid(
                "ttl: must be at least one second".into(),
            ));
        }
        let row = StoredProxy {
            namespace: namespace.to_owned(),
            upstream: upstream.to_string(),
            secret: new.secret.clone().filter(|s| !s.is_empty()),
            ttl_seconds: ttl.as_secs().min(i64::MAX as u64) as i64,
            insecure: new.insecure || plain_http,
            created_by: by.map(str::to_owned),
            created_at: now(),
        };
        self.store.put_proxy(&row).await?;
        self.reload().await?;
        self.get(namespace)
            .ok_or_else(|| ProxyError::Invalid(format!("proxy {namespace} vanished")))
    }

    /// Makes `namespace` an ordinary namespace again (what it cached stays).
    pub async fn remove(&self, namespace: &str) -> Result<bool, ProxyError> {
        let removed = self.store.delete_proxy(namespace).await?;
        self.reload().await?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_whole_registries() {
        let (host, plain) = parse_upstream("https://registry.example.com").unwrap();
        assert_eq!(
            (host.to_string().as_str(), plain),
            ("registry.example.com", false)
        );
        let (host, plain) = parse_upstream("http://127.0.0.1:5000/").unwrap();
        assert_eq!((host.to_string().as_str(), plain), ("127.0.0.1:5000", true));
        let (host, _) = parse_upstream("quay.io").unwrap();
        assert_eq!(host.to_string(), "quay.io");
        assert!(parse_upstream("https://quay.io/org").is_err());
        assert!(parse_upstream("").is_err());
        assert!(parse_upstream("https://").is_err());
    }
}
