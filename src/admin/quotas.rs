//! Storage usage and namespace quotas: who may see and set them. A
//! namespace's usage, quota and repositories' usage are seen by anyone
//! with a role there; every namespace's (and every repository's) only by
//! cluster admins, as is setting or removing a quota: a quota limits what a
//! project's own admins may store, so it is not theirs to change. Quotas
//! are enforced on the push path (`domain::quotas`).

use super::*;
use crate::metadata::MetadataStore;
use crate::metadata::quotas::{NamespaceQuota, RepositoryUsage, Usage};

/// A namespace's usage, with its quota if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceUsage {
    pub namespace: String,
    pub usage: Usage,
    pub quota: Option<NamespaceQuota>,
}

/// The limits a quota is set to; `None`: no limit of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    pub bytes: Option<u64>,
    pub repositories: Option<u64>,
    pub tags: Option<u64>,
}

/// Limits are stored as signed 64-bit integers.
const MAX_LIMIT: u64 = i64::MAX as u64;

impl Admin<'_> {
    /// The usage of `namespace` (any role there).
    pub async fn namespace_usage(
        &self,
        metadata: &dyn MetadataStore,
        namespace: &str,
    ) -> AdminResult<NamespaceUsage> {
        self.visible_namespace(namespace).await?;
        Ok(NamespaceUsage {
            namespace: namespace.to_owned(),
            usage: metadata.namespace_usage(namespace).await?,
            quota: self.store().namespace_quota(namespace).await?,
        })
    }

    /// Every namespace's usage (cluster admins). One sum per namespace:
    /// an administrator's listing, not a request path.
    pub async fn namespace_usages(
        &self,
        metadata: &dyn MetadataStore,
    ) -> AdminResult<Vec<NamespaceUsage>> {
        self.require_cluster_admin("list the storage usage of every project")
            .await?;
        let mut quotas: std::collections::HashMap<String, NamespaceQuota> = self
            .store()
            .namespace_quotas()
            .await?
            .into_iter()
            .map(|q| (q.namespace.clone(), q))
            .collect();
        let mut usages = Vec::new();
        for namespace in self.store().namespaces().await? {
            let usage = metadata.namespace_usage(&namespace.name).await?;
            usages.push(NamespaceUsage {
                quota: quotas.remove(&namespace.name),
                namespace: namespace.name,
                usage,
            });
        }
        Ok(usages)
    }

    /// What each repository of `namespace` holds (any role there); of
    /// every namespace (`None`) for cluster admins.
    pub async fn repository_usages(
        &self,
        metadata: &dyn MetadataStore,
        namespace: Option<&str>,
    ) -> AdminResult<Vec<RepositoryUsage>> {
        match namespace {
            Some(namespace) => {
                self.visible_namespace(namespace).await?;
            }
            None => {
                self.require_cluster_admin("list the storage usage of every repository")
                    .await?;
            }
        }
        Ok(metadata.repository_usages(namespace).await?)
    }

    /// The quota of `namespace` (any role there); not found without one.
    pub async fn namespace_quota(&self, namespace: &str) -> AdminResult<NamespaceQuota> {
        self.visible_namespace(namespace).await?;
        self.store()
            .namespace_quota(namespace)
            .await?
            .ok_or_else(|| not_found("quota of namespace", namespace))
    }

    /// Sets the quota of `namespace` (cluster admins).
    pub async fn set_namespace_quota(
        &self,
        namespace: &str,
        limits: QuotaLimits,
    ) -> AdminResult<NamespaceQuota> {
        self.require_cluster_admin(&format!("set the quota of project \"{namespace}\""))
            .await?;
        if limits.bytes.is_none() && limits.repositories.is_none() && limits.tags.is_none() {
            return Err(AdminError::Invalid(
                "spec.hard: give at least one of bytes, repositories and tags (to remove the quota, delete it)"
                    .into(),
            ));
        }
        for (field, value) in [
            ("bytes", limits.bytes),
            ("repositories", limits.repositories),
            ("tags", limits.tags),
        ] {
            if value.is_some_and(|v| v > MAX_LIMIT) {
                return Err(AdminError::Invalid(format!(
                    "spec.hard.{field}: at most {MAX_LIMIT}"
                )));
            }
        }
        let quota = NamespaceQuota {
            namespace: namespace.to_owned(),
            max_bytes: limits.bytes,
            max_repositories: limits.repositories,
            max_tags: limits.tags,
            updated_by: Some(self.caller.principal.name()),
            updated_at: crate::metadata::now(),
        };
        if !self.store().set_namespace_quota(&quota).await? {
            return Err(not_found("namespaces", namespace));
        }
        self.access.policy_changed();
        tracing::info!(namespace = %namespace, bytes = ?limits.bytes, repositories = ?limits.repositories, tags = ?limits.tags, by = %self.caller.principal.name(), "quota set");
        Ok(quota)
    }

    /// Removes the quota of `namespace` (cluster admins).
    pub async fn clear_namespace_quota(&self, namespace: &str) -> AdminResult<()> {
        self.require_cluster_admin(&format!("clear the quota of project \"{namespace}\""))
            .await?;
        let cleared = NamespaceQuota {
            namespace: namespace.to_owned(),
            max_bytes: None,
            max_repositories: None,
            max_tags: None,
            updated_by: None,
            updated_at: crate::metadata::now(),
        };
        if !self.store().set_namespace_quota(&cleared).await? {
            return Err(not_found("quota of namespace", namespace));
        }
        self.access.policy_changed();
        tracing::info!(namespace = %namespace, by = %self.caller.principal.name(), "quota cleared");
        Ok(())
    }
}
