//! `/api/v1/proxies`: namespaces caching an upstream registry.

use std::collections::BTreeMap;
use std::time::Duration;

use super::objects::{Answer, Call, created, deleted, listed, ok};
use super::{JsonBody, Params};
use crate::admin::{AdminError, rfc3339};
use crate::domain::proxies::{NewProxy, ProxyNamespace};
use crate::wire::{self, API_VERSION, Extra, ObjectMeta, Proxy, ProxyRequest};

impl From<ProxyNamespace> for wire::Proxy {
    fn from(proxy: ProxyNamespace) -> wire::Proxy {
        let mut annotations = BTreeMap::new();
        if let Some(by) = proxy.created_by {
            annotations.insert("berth.dev/created-by".to_owned(), by);
        }
        wire::Proxy {
            api_version: API_VERSION.into(),
            kind: "Proxy".into(),
            metadata: ObjectMeta {
                name: proxy.namespace,
                namespace: None,
                uid: None,
                creation_timestamp: Some(rfc3339(proxy.created_at)),
                annotations,
                extra: Extra::new(),
            },
            spec: wire::ProxySpec {
                upstream: format!(
                    "{}://{}",
                    if proxy.insecure { "http" } else { "https" },
                    proxy.upstream
                ),
                secret: proxy.secret,
                ttl: Some(humantime::format_duration(proxy.ttl).to_string()),
                insecure: proxy.insecure,
                extra: Extra::new(),
            },
            extra: Extra::new(),
        }
    }
}

/// A TTL as written: `24h`, `90m`, `1d 2h`, or seconds.
fn parse_ttl(text: &str) -> Result<Duration, AdminError> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text)
        .map_err(|e| AdminError::Invalid(format!("spec.ttl {text:?}: {e} (write 24h, 90m, 1d …)")))
}

pub(super) async fn list(call: Call) -> Answer {
    let proxies = call.app.pull_through.proxies();
    listed::<Proxy, _>("Proxy", call.admin().proxies(proxies).await?)
}

pub(super) async fn create(call: Call, JsonBody(body): JsonBody<ProxyRequest>) -> Answer {
    let spec = body.spec;
    let new = NewProxy {
        upstream: spec.upstream,
        secret: spec.secret,
        ttl: spec.ttl.as_deref().map(parse_ttl).transpose()?,
        insecure: spec.insecure,
    };
    let proxies = call.app.pull_through.proxies();
    let name = body.metadata.name.as_deref();
    created::<Proxy>(call.admin().create_proxy(proxies, name, &new).await?)
}

pub(super) async fn get(call: Call, Params(name): Params<String>) -> Answer {
    let proxies = call.app.pull_through.proxies();
    ok::<Proxy>(call.admin().proxy(proxies, &name).await?)
}

pub(super) async fn delete(call: Call, Params(name): Params<String>) -> Answer {
    let proxies = call.app.pull_through.proxies();
    call.admin().delete_proxy(proxies, &name).await?;
    deleted("proxies", &name)
}
