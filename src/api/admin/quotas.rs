//! Storage usage and quotas: `/api/v1/namespaces/{ns}/usage`,
//! `/api/v1/namespaceusages`, `/api/v1/namespaces/{ns}/repositoryusages`,
//! `/api/v1/repositoryusages` and `/api/v1/namespaces/{ns}/quota`.

use super::objects::{Answer, Call, deleted, listed, ok};
use super::{JsonBody, Params};
use crate::admin::{NamespaceUsage, QuotaLimits, rfc3339};
use crate::metadata::quotas::{NamespaceQuota, RepositoryUsage, Usage};
use crate::wire::{self, API_VERSION, Extra, ObjectMeta, ResourceQuotaRequest};

fn limits(quota: &NamespaceQuota) -> wire::QuotaLimits {
    wire::QuotaLimits {
        bytes: quota.max_bytes,
        repositories: quota.max_repositories,
        tags: quota.max_tags,
    }
}

fn figures(usage: &Usage) -> wire::UsageFigures {
    wire::UsageFigures {
        bytes: usage.bytes,
        raw_bytes: usage.raw_bytes,
        uploading_bytes: usage.uploading_bytes,
        repositories: usage.repositories,
        tags: usage.tags,
        manifests: usage.manifests,
        blobs: usage.blobs,
    }
}

impl From<NamespaceUsage> for wire::NamespaceUsage {
    fn from(usage: NamespaceUsage) -> wire::NamespaceUsage {
        wire::NamespaceUsage {
            api_version: API_VERSION.into(),
            kind: "NamespaceUsage".into(),
            metadata: ObjectMeta::named(&usage.namespace),
            usage: figures(&usage.usage),
            quota: usage.quota.as_ref().map(limits),
            extra: Extra::new(),
        }
    }
}

impl From<RepositoryUsage> for wire::RepositoryUsage {
    fn from(usage: RepositoryUsage) -> wire::RepositoryUsage {
        wire::RepositoryUsage {
            api_version: API_VERSION.into(),
            kind: "RepositoryUsage".into(),
            metadata: ObjectMeta {
                namespace: Some(usage.repository.namespace().to_owned()),
                ..ObjectMeta::named(usage.repository.as_str())
            },
            usage: wire::RepositoryFigures {
                bytes: usage.bytes,
                shared_bytes: usage.shared_bytes,
                tags: usage.tags,
                manifests: usage.manifests,
                blobs: usage.blobs,
            },
            extra: Extra::new(),
        }
    }
}

/// A quota as a `ResourceQuota`, with the usage it limits when known.
fn resource_quota(quota: &NamespaceQuota, used: Option<&Usage>) -> wire::ResourceQuota {
    let mut annotations = std::collections::BTreeMap::new();
    if let Some(by) = &quota.updated_by {
        annotations.insert("berth.dev/updated-by".to_owned(), by.clone());
    }
    wire::ResourceQuota {
        api_version: API_VERSION.into(),
        kind: "ResourceQuota".into(),
        metadata: ObjectMeta {
            name: quota.namespace.clone(),
            namespace: Some(quota.namespace.clone()),
            uid: None,
            creation_timestamp: Some(rfc3339(quota.updated_at)),
            annotations,
            extra: Extra::new(),
        },
        spec: wire::ResourceQuotaSpec {
            hard: limits(quota),
        },
        status: used.map(|usage| wire::ResourceQuotaStatus {
            hard: limits(quota),
            used: wire::QuotaUsed {
                bytes: usage.bytes.saturating_add(usage.uploading_bytes),
                repositories: usage.repositories,
                tags: usage.tags,
            },
        }),
        extra: Extra::new(),
    }
}

/// `GET /namespaces/{ns}/usage`
pub(super) async fn namespace_usage(call: Call, Params(ns): Params<String>) -> Answer {
    let metadata = call.app.registry.metadata().clone();
    ok::<wire::NamespaceUsage>(call.admin().namespace_usage(metadata.as_ref(), &ns).await?)
}

/// `GET /namespaceusages`
pub(super) async fn namespace_usages(call: Call) -> Answer {
    let metadata = call.app.registry.metadata().clone();
    listed::<wire::NamespaceUsage, _>(
        "NamespaceUsage",
        call.admin().namespace_usages(metadata.as_ref()).await?,
    )
}

/// `GET /namespaces/{ns}/repositoryusages`
pub(super) async fn repository_usages(call: Call, Params(ns): Params<String>) -> Answer {
    let metadata = call.app.registry.metadata().clone();
    listed::<wire::RepositoryUsage, _>(
        "RepositoryUsage",
        call.admin()
            .repository_usages(metadata.as_ref(), Some(&ns))
            .await?,
    )
}

/// `GET /repositoryusages`
pub(super) async fn all_repository_usages(call: Call) -> Answer {
    let metadata = call.app.registry.metadata().clone();
    listed::<wire::RepositoryUsage, _>(
        "RepositoryUsage",
        call.admin()
            .repository_usages(metadata.as_ref(), None)
            .await?,
    )
}

/// `GET /namespaces/{ns}/quota`
pub(super) async fn get_quota(call: Call, Params(ns): Params<String>) -> Answer {
    let quota = call.admin().namespace_quota(&ns).await?;
    let usage = call.app.registry.metadata().namespace_usage(&ns).await?;
    ok::<wire::ResourceQuota>(resource_quota(&quota, Some(&usage)))
}

/// `PUT /namespaces/{ns}/quota`
pub(super) async fn put_quota(
    call: Call,
    Params(ns): Params<String>,
    JsonBody(body): JsonBody<ResourceQuotaRequest>,
) -> Answer {
    let hard = body.spec.hard;
    let quota = call
        .admin()
        .set_namespace_quota(
            &ns,
            QuotaLimits {
                bytes: hard.bytes,
                repositories: hard.repositories,
                tags: hard.tags,
            },
        )
        .await?;
    let usage = call.app.registry.metadata().namespace_usage(&ns).await?;
    ok::<wire::ResourceQuota>(resource_quota(&quota, Some(&usage)))
}

/// `DELETE /namespaces/{ns}/quota`
pub(super) async fn delete_quota(call: Call, Params(ns): Params<String>) -> Answer {
    call.admin().clear_namespace_quota(&ns).await?;
    deleted("quota", &ns)
}
