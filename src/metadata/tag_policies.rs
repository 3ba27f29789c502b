//! Tag policies kept with the metadata: immutable tags (migration 0016)
//! and the types of tag expiration (migration 0015: `tags.expires_at`).
//!
//! Both are enforced where tags are written, inside the transaction that
//! writes them (`sql_image_streams::point_tags`, the deletes of `sql`), so
//! no replica can slip a move past a policy another replica just set.

use std::fmt;

use super::Timestamp;
use crate::oci::names::RepositoryName;
use crate::oci::tag_pattern::TagPattern;

/// An immutable-tags policy: of a whole namespace (`repository: None`) or
/// of one repository of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImmutableTagPolicy {
    pub namespace: String,
    /// The repository's name within the namespace (`app`, `team/app`).
    pub repository: Option<String>,
    pub patterns: Vec<TagPattern>,
    pub updated_by: Option<String>,
    pub updated_at: Timestamp,
}

impl ImmutableTagPolicy {
    /// `NS` or `NS/REPO`, as the CLI names it.
    pub fn scope(&self) -> String {
        match &self.repository {
            Some(repo) => format!("{}/{repo}", self.namespace),
            None => self.namespace.clone(),
        }
    }
}

/// What was asked of an immutable tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagChange {
    /// Pointing it at another image (push, `berth tag`, rollback, import).
    Move,
    /// Deleting it (by tag, or by deleting the manifest it points at).
    Delete,
}

/// A change refused by an immutable-tags policy: which tag, and which
/// policy and pattern refused it (the message the client gets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImmutableTag {
    pub repository: String,
    pub tag: String,
    pub change: TagChange,
    pub policy_namespace: String,
    pub policy_repository: Option<String>,
    pub pattern: String,
}

impl fmt::Display for ImmutableTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.change {
            TagChange::Move => "moved to another image",
            TagChange::Delete => "deleted",
        };
        let policy = match &self.policy_repository {
            Some(repo) => format!("repository \"{}/{repo}\"", self.policy_namespace),
            None => format!("namespace \"{}\"", self.policy_namespace),
        };
        write!(
            f,
            "tag \"{}\" of \"{}\" is immutable and cannot be {verb}: it matches \"{}\" of the \
             immutable-tags policy of {policy}",
            self.tag, self.repository, self.pattern
        )
    }
}

/// The policies that apply to one repository, most specific first.
#[derive(Debug, Clone, Default)]
pub(super) struct ApplicablePolicies(pub Vec<ImmutableTagPolicy>);

impl ApplicablePolicies {
    /// The refusal of `change` to `tag` of `repo`, if a policy matches it.
    pub fn refusal(
        &self,
        repo: &RepositoryName,
        tag: &str,
        change: TagChange,
    ) -> Option<ImmutableTag> {
        self.0.iter().find_map(|policy| {
            let pattern = policy.patterns.iter().find(|p| p.matches(tag))?;
            Some(ImmutableTag {
                repository: repo.to_string(),
                tag: tag.to_owned(),
                change,
                policy_namespace: policy.namespace.clone(),
                policy_repository: policy.repository.clone(),
                pattern: pattern.to_string(),
            })
        })
    }

    pub fn matches(&self, tag: &str) -> bool {
        self.0
            .iter()
            .any(|p| p.patterns.iter().any(|pattern| pattern.matches(tag)))
    }
}

/// A tag whose expiry passed, removed by [`super::MetadataStore::remove_expired_tags`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredTag {
    pub repository: RepositoryName,
    pub tag: String,
    pub expired_at: Timestamp,
}
