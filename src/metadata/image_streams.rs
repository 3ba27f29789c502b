//! Image streams in the metadata ([`ImageStreamStore`]): every repository
//! is one (OpenShift's `image.openshift.io/v1` ImageStream), with its spec
//! tags, each tag's history of revisions (newest first) and each tag's
//! conditions. Kept in migration 0009's tables on both engines, with the
//! import schedule of migration 0011.
//!
//! A tag's row in `tags` (what pulls read) and its newest revision are
//! written in one transaction, by pushes ([`super::MetadataStore::put_manifest_from`])
//! and by [`ImageStreamStore::move_tag`], so that every replica sees both
//! or neither.

use async_trait::async_trait;

use super::{Result, Timestamp};
use crate::oci::digest::Digest;
use crate::oci::names::{RepositoryName, Tag};

/// Why a revision was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevisionCause {
    /// A manifest pushed to the tag.
    Push,
    /// `berth tag`: an image or another tag's image given to the tag (or a
    /// tag following another one with `--alias`).
    Tag,
    /// `berth rollback`: an earlier revision's image made current again.
    Rollback,
    /// An image imported from another registry.
    Import,
}

impl RevisionCause {
    pub fn as_str(self) -> &'static str {
        match self {
            RevisionCause::Push => "Push",
            RevisionCause::Tag => "Tag",
            RevisionCause::Rollback => "Rollback",
            RevisionCause::Import => "Import",
        }
    }

    pub fn parse(text: &str) -> Option<RevisionCause> {
        [
            RevisionCause::Push,
            RevisionCause::Tag,
            RevisionCause::Rollback,
            RevisionCause::Import,
        ]
        .into_iter()
        .find(|c| c.as_str() == text)
    }
}

/// Who made a revision, from where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionOrigin {
    pub cause: RevisionCause,
    /// The principal's name (`alice`, `system:serviceaccount:ns:builder`).
    pub by: Option<String>,
    /// The client's address, as access control saw it.
    pub address: Option<String>,
    /// What the image was tagged, rolled back or imported from.
    pub source: Option<String>,
}

impl RevisionOrigin {
    /// A push whose pusher is not known (tests, tools writing directly).
    pub fn unknown_push() -> RevisionOrigin {
        RevisionOrigin {
            cause: RevisionCause::Push,
            by: None,
            address: None,
            source: None,
        }
    }
}

/// One entry of a tag's history (`status.tags[].items[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub tag: String,
    pub generation: i64,
    pub digest: Digest,
    /// Where the image is pulled from when not from berth itself.
    pub docker_image_reference: Option<String>,
    pub created_at: Timestamp,
    pub origin: RevisionOrigin,
}

/// Where a spec tag takes its image from (`spec.tags[].from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSource {
    /// `DockerImage`, `ImageStreamTag` or `ImageStreamImage`.
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// A spec tag: what was asked of a tag (`spec.tags[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecTag {
    pub name: String,
    pub from: Option<TagSource>,
    /// `reference`: the tag only points at its source, which is not imported.
    pub reference: bool,
    /// `Source` or `Local`.
    pub reference_policy: String,
    pub import_scheduled: bool,
    pub import_insecure: bool,
    /// `Legacy` or `PreserveOriginal`.
    pub import_mode: String,
    /// The stream's generation when this spec tag was last set.
    pub generation: i64,
}

/// A condition of a tag (`status.tags[].conditions[]`), such as a failed
/// import.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TagCondition {
    pub tag: String,
    /// e.g. `ImportSuccess`.
    pub condition_type: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_at: Timestamp,
    pub generation: i64,
}

/// A stream and everything recorded of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStream {
    pub repository: RepositoryName,
    pub uid: String,
    pub generation: i64,
    pub lookup_local: bool,
    pub created_at: Timestamp,
    /// By name.
    pub spec_tags: Vec<SpecTag>,
    /// By tag name, then newest first.
    pub history: Vec<Revision>,
    /// By tag name and type.
    pub conditions: Vec<TagCondition>,
    /// The tags current now (their rows, not expired), with their expiry.
    pub current_tags: Vec<(String, Option<Timestamp>)>,
}

impl StoredStream {
    /// `tag`'s revisions, newest first.
    pub fn history_of<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a Revision> + 'a {
        self.history.iter().filter(move |r| r.tag == tag)
    }

    /// Whether `tag` has a history but is no longer current: it expired
    /// (its revisions stay until pruned). Views show it gone.
    pub fn is_gone(&self, tag: &str) -> bool {
        !self.current_tags.iter().any(|(t, _)| t == tag) && self.history_of(tag).next().is_some()
    }

    /// The newest revision of `tag`, unless the tag is gone.
    pub fn current_of<'a>(&'a self, tag: &'a str) -> Option<&'a Revision> {
        if self.is_gone(tag) {
            return None;
        }
        self.history_of(tag).next()
    }

    /// When `tag` expires, if it is current and has an expiry.
    pub fn expiry_of(&self, tag: &str) -> Option<Timestamp> {
        self.current_tags
            .iter()
            .find(|(t, _)| t == tag)
            .and_then(|(_, e)| *e)
    }

    pub fn spec_tag(&self, tag: &str) -> Option<&SpecTag> {
        self.spec_tags.iter().find(|s| s.name == tag)
    }
}

/// The image a tag is to point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTarget {
    pub digest: Digest,
    /// Set for images berth does not hold (imports by reference).
    pub docker_image_reference: Option<String>,
    /// Another repository holding the image: the manifest, its child
    /// manifests and their blobs are linked into the stream's repository in
    /// the same transaction, so the tag can be pulled from there.
    pub from_repository: Option<RepositoryName>,
    /// When the tag expires (`None`: never), set even if it does not move.
    pub expires_at: Option<Timestamp>,
}

/// A spec tag whose import check is due ([`ImageStreamStore::due_imports`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueImport {
    pub repository: RepositoryName,
    /// Its `from` is a `DockerImage`.
    pub spec: SpecTag,
    /// When the check fell due.
    pub due_at: Timestamp,
    /// Checks of this spec tag that failed in a row, before this one.
    pub failures: u32,
}

/// What [`ImageStreamStore::move_tag`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagMove {
    /// A revision was recorded with this generation (and, in `followers`,
    /// one for each tag following this one with `--alias`).
    Moved {
        generation: i64,
        followers: Vec<(String, i64)>,
    },
    /// The tag already points at the image: nothing recorded.
    Unchanged,
    /// The image is not in the repository it was to come from.
    ImageUnknown,
}

#[async_trait]
pub trait ImageStreamStore: Send + Sync + 'static {
    /// Makes an empty stream (its repository too). False if it exists.
    async fn create_stream(&self, repo: &RepositoryName, lookup_local: bool) -> Result<bool>;
    async fn stream(&self, repo: &RepositoryName) -> Result<Option<StoredStream>>;
    /// The streams of `namespace` (`None`: of every namespace), by name.
    /// Repositories of one component (no stream name) are left out.
    async fn streams(&self, namespace: Option<&str>) -> Result<Vec<StoredStream>>;
    /// Deletes the stream with its repository, tags and history (the
    /// images' bytes stay for garbage collection). False if it did not exist.
    async fn delete_stream(&self, repo: &RepositoryName) -> Result<bool>;
    /// Sets `spec.lookupPolicy.local`. False if the stream does not exist.
    async fn set_lookup_policy(&self, repo: &RepositoryName, local: bool) -> Result<bool>;
    /// Points `tag` at `target`, recording a revision (and one for each tag
    /// following it), in one transaction with the tag's row; makes the
    /// stream if needed. Nothing if the tag already points there.
    async fn move_tag(
        &self,
        repo: &RepositoryName,
        tag: &Tag,
        target: &TagTarget,
        origin: &RevisionOrigin,
    ) -> Result<TagMove>;
    /// Records a spec tag (replacing one of the same name), making the
    /// stream if needed; returns the stream's new generation. This records
    /// what is asked only: a `DockerImage` source is imported by the
    /// importer, which then calls [`move_tag`](Self::move_tag). Recording
    /// one makes its import check due now, with no failures counted (see
    /// [`due_imports`](Self::due_imports)); any other source, or none,
    /// leaves the tag with no check due.
    async fn set_spec_tag(&self, repo: &RepositoryName, spec: &SpecTag) -> Result<i64>;
    /// Deletes a tag: its row, spec tag, history and conditions. False if
    /// none of them existed.
    async fn delete_stream_tag(&self, repo: &RepositoryName, tag: &str) -> Result<bool>;
    /// Sets a tag's condition of `condition.condition_type`; the transition
    /// time moves only when the status changes. False if the stream does
    /// not exist.
    async fn set_tag_condition(
        &self,
        repo: &RepositoryName,
        condition: &TagCondition,
    ) -> Result<bool>;
    /// Deletes `tag`'s condition of `condition_type` (a successful import
    /// clears the condition an earlier failure set). False if there was
    /// none.
    async fn clear_tag_condition(
        &self,
        repo: &RepositoryName,
        tag: &str,
        condition_type: &str,
    ) -> Result<bool>;
    /// The spec tags with a `DockerImage` source whose import check is due
    /// at `now` (due at or before it), the longest due first, at most
    /// `limit` of them.
    async fn due_imports(&self, now: Timestamp, limit: u32) -> Result<Vec<DueImport>>;
    /// Sets when `tag`'s next import check is due (`None`: none is) and how
    /// many checks in a row have failed. Bookkeeping of the scheduler, not
    /// a change of the spec: the stream's generation stays. False if the
    /// stream has no spec tag `tag`.
    async fn set_import_schedule(
        &self,
        repo: &RepositoryName,
        tag: &str,
        due_at: Option<Timestamp>,
        failures: u32,
    ) -> Result<bool>;
}
