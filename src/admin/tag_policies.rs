//! Immutable-tags policies (`berth set immutable-tags NS[/REPO] PATTERN…`):
//! who may see and change them. Seeing takes a role in the namespace;
//! setting or clearing takes `admin` there (registry-admin, or a cluster
//! admin), as the namespace's other rules do. The policies themselves are
//! enforced by the metadata store where tags are written.

use super::*;
use crate::auth::roles::Verb;
use crate::metadata::MetadataStore;
use crate::metadata::tag_policies::ImmutableTagPolicy;
use crate::oci::names::RepositoryName;
use crate::oci::tag_pattern::TagPattern;

/// Most patterns one policy holds: a policy is a handful of release
/// conventions, and each push to a covered repository reads them all.
pub const MAX_TAG_PATTERNS: usize = 64;

/// The patterns as typed, checked: each a valid glob, at least one, at
/// most [`MAX_TAG_PATTERNS`], duplicates dropped. A bad one is a `400`
/// naming it.
pub fn parse_tag_patterns(patterns: &[String]) -> AdminResult<Vec<TagPattern>> {
    if patterns.is_empty() {
        return Err(AdminError::BadRequest(
            "patterns: give at least one tag pattern such as 'v*' (to remove the policy, delete it)"
                .into(),
        ));
    }
    if patterns.len() > MAX_TAG_PATTERNS {
        return Err(AdminError::BadRequest(format!(
            "patterns: at most {MAX_TAG_PATTERNS} patterns per policy"
        )));
    }
    let mut parsed: Vec<TagPattern> = Vec::with_capacity(patterns.len());
    for text in patterns {
        let pattern = text
            .parse::<TagPattern>()
            .map_err(|e| AdminError::BadRequest(format!("patterns: {e}")))?;
        if !parsed.contains(&pattern) {
            parsed.push(pattern);
        }
    }
    Ok(parsed)
}

/// A repository named within `namespace` (`app`, `team/app`), checked.
fn repository_within(namespace: &str, repository: Option<&str>) -> AdminResult<Option<String>> {
    let Some(repository) = repository.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    format!("{namespace}/{repository}")
        .parse::<RepositoryName>()
        .map_err(|e| AdminError::BadRequest(format!("repository {repository:?}: {e}")))?;
    Ok(Some(repository.to_owned()))
}

impl Admin<'_> {
    /// The policies of `namespace` (its own, then its repositories').
    pub async fn immutable_tag_policies(
        &self,
        metadata: &dyn MetadataStore,
        namespace: &str,
    ) -> AdminResult<Vec<ImmutableTagPolicy>> {
        self.visible_namespace(namespace).await?;
        Ok(metadata.immutable_tag_policies(namespace).await?)
    }

    /// Replaces the policy of `namespace` or of its `repository`.
    pub async fn set_immutable_tag_policy(
        &self,
        metadata: &dyn MetadataStore,
        namespace: &str,
        repository: Option<&str>,
        patterns: &[String],
    ) -> AdminResult<ImmutableTagPolicy> {
        self.namespace_for(namespace, Verb::Admin, "set immutable tags")
            .await?;
        let repository = repository_within(namespace, repository)?;
        let patterns = parse_tag_patterns(patterns)?;
        let by = self.caller.principal.name();
        metadata
            .set_immutable_tag_policy(namespace, repository.as_deref(), &patterns, Some(&by))
            .await?;
        tracing::info!(namespace = %namespace, repository = ?repository, patterns = ?patterns, by = %by, "immutable-tags policy set");
        metadata
            .immutable_tag_policies(namespace)
            .await?
            .into_iter()
            .find(|p| p.repository == repository)
            .ok_or_else(|| AdminError::Internal("the policy just set is gone".into()))
    }

    /// Removes the policy of `namespace` or of its `repository`.
    pub async fn clear_immutable_tag_policy(
        &self,
        metadata: &dyn MetadataStore,
        namespace: &str,
        repository: Option<&str>,
    ) -> AdminResult<String> {
        self.namespace_for(namespace, Verb::Admin, "clear immutable tags")
            .await?;
        let repository = repository_within(namespace, repository)?;
        let scope = match &repository {
            Some(repo) => format!("{namespace}/{repo}"),
            None => namespace.to_owned(),
        };
        if !metadata
            .set_immutable_tag_policy(namespace, repository.as_deref(), &[], None)
            .await?
        {
            return Err(not_found("immutabletagpolicies", &scope));
        }
        tracing::info!(scope = %scope, by = %self.caller.principal.name(), "immutable-tags policy cleared");
        Ok(scope)
    }
}
