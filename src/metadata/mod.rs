//! Metadata: repositories, manifests and the blobs they reference, tags,
//! blob-to-repository links and upload sessions ([`MetadataStore`]); users,
//! groups, namespaces, service accounts, role bindings and tokens
//! ([`AccessStore`]); background jobs and their leases ([`JobStore`]); pull
//! secrets, sealed ([`SecretStore`]).
//!
//! Each trait has one implementation over SQL that runs on
//! the embedded SQLite database (the default) and on PostgreSQL (for several
//! replicas). The same test suite (`testsuite`) runs against both engines.
//!
//! Blob *bytes* are not here: they are in [`crate::storage`]. A blob is visible
//! in a repository only when this store links it there.

pub mod access;
pub mod changes;
pub mod garbage;
pub mod image_streams;
pub mod jobs;
pub mod proxies;
pub mod pruner;
pub mod quotas;
pub mod secrets;
mod sql;
mod sql_access;
mod sql_garbage;
mod sql_image_streams;
mod sql_jobs;
mod sql_proxies;
mod sql_pruner;
mod sql_quotas;
mod sql_secrets;
mod sql_tag_policies;
pub mod tag_policies;
#[cfg(test)]
pub(crate) mod testsuite;

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::error::DatabaseError as _;

use crate::oci::digest::Digest;
use crate::oci::names::{Reference, RepositoryName, Tag};

pub use access::AccessStore;
pub use garbage::GarbageStore;
pub use image_streams::ImageStreamStore;
pub use jobs::JobStore;
pub use pruner::PrunerStore;
pub use secrets::SecretStore;
pub use sql::{DatabaseConfig, SqlMetadataStore};

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The database could not write for lack of space. Nothing was
    /// committed; the same write succeeds once space is freed.
    #[error("the database's storage is full: {0}")]
    StorageFull(sqlx::Error),
    #[error("database: {0}")]
    Database(sqlx::Error),
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    /// A manifest's required content is not in its repository (or is being
    /// deleted by garbage collection), found in the transaction that would
    /// have recorded it: nothing was stored.
    #[error("{0} is not in the repository")]
    ReferenceUnknown(Digest),
    /// A move or delete of a tag that an immutable-tags policy covers:
    /// nothing was written.
    #[error("{0}")]
    TagImmutable(Box<tag_policies::ImmutableTag>),
}

impl MetadataError {
    /// The database cannot be reached right now (down, restarting, the
    /// network between): nothing was done, and the same request may
    /// succeed once it is back.
    pub fn is_unreachable(&self) -> bool {
        let MetadataError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            // PostgreSQL's connection exceptions (class 08) and its
            // shutdown and start-up refusals (57P01-57P03).
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
            }),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for MetadataError {
    fn from(e: sqlx::Error) -> Self {
        if is_storage_full(&e) {
            MetadataError::StorageFull(e)
        } else if let sqlx::Error::ColumnDecode { .. } = e {
            // A value the row's type refuses (a negative count, a digest
            // that does not parse): the stored data is wrong, not the
            // database.
            MetadataError::Corrupt(e.to_string())
        } else {
            MetadataError::Database(e)
        }
    }
}

/// SQLite's `SQLITE_FULL` (primary result code 13, whatever the extended
/// code), PostgreSQL's `disk_full` (SQLSTATE 53100), or an I/O error saying
/// the disk or quota is exhausted.
fn is_storage_full(e: &sqlx::Error) -> bool {
    const SQLITE_FULL: i64 = 13;
    const POSTGRES_DISK_FULL: &str = "53100";
    match e {
        sqlx::Error::Database(db) => {
            if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                sqlite
                    .code()
                    .and_then(|code| code.parse::<i64>().ok())
                    .is_some_and(|extended| extended & 0xff == SQLITE_FULL)
            } else if let Some(postgres) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            {
                postgres.code() == POSTGRES_DISK_FULL
            } else {
                false
            }
        }
        sqlx::Error::Io(io) => crate::files::is_out_of_space(io),
        _ => false,
    }
}

pub type Result<T> = std::result::Result<T, MetadataError>;

/// Milliseconds since the Unix epoch; portable across both SQL engines.
pub type Timestamp = i64;

/// A duration in the milliseconds times are kept in, saturating far below
/// `i64::MAX` so that adding it to a time cannot overflow.
pub fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How a manifest refers to another piece of content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceKind {
    Config,
    Layer,
    /// A child manifest of an index.
    Manifest,
    Subject,
}

impl ReferenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferenceKind::Config => "config",
            ReferenceKind::Layer => "layer",
            ReferenceKind::Manifest => "manifest",
            ReferenceKind::Subject => "subject",
        }
    }
}

/// A manifest as pushed: the exact bytes plus what was parsed from them.
#[derive(Debug, Clone)]
pub struct NewManifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: Bytes,
    /// `artifactType`, or for an image manifest without one, its config media type.
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    /// The manifest's `annotations` object as JSON text, for the referrers API.
    pub annotations: Option<String>,
    pub references: Vec<(Digest, ReferenceKind)>,
    /// What must be in the repository for the manifest to be stored,
    /// checked in the transaction that records it (empty for manifests
    /// allowed to lack content: imports, sparse manifests).
    pub required: RequiredContent,
    /// When the tags it is pushed to expire (`None`: never), reset by
    /// every push to them.
    pub tag_expires_at: Option<Timestamp>,
}

/// Content a manifest needs in its repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequiredContent {
    /// Config and layers (blobs linked into the repository).
    pub blobs: Vec<Digest>,
    /// Child manifests of an index.
    pub manifests: Vec<Digest>,
}

/// A blob linked into a repository, as a read finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLink {
    pub size: u64,
    /// When the blob was last touched (or made), by the database's clock:
    /// what garbage collection goes by. A touch refreshes the link too.
    pub touched_at: Timestamp,
}

/// What [`MetadataStore::claim_blob`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobClaim {
    /// The blob's row exists, live and touched now (made if new): garbage
    /// collection leaves it for a grace period.
    Claimed,
    /// Garbage collection is deleting the blob's bytes: writing them now
    /// could be undone by that delete. Claimable once the row is gone, or
    /// once the deadline (database clock) has passed.
    BeingDeleted { until: Timestamp },
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ManifestMeta {
    #[sqlx(try_from = "String")]
    pub digest: Digest,
    pub media_type: String,
    #[sqlx(try_from = "i64")]
    pub size: u64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredManifest {
    #[sqlx(flatten)]
    pub meta: ManifestMeta,
    #[sqlx(try_from = "Vec<u8>")]
    pub content: Bytes,
    /// Found by a tag that expires then (read with the tag's row): a cache
    /// must not serve it past that.
    pub expires_at: Option<Timestamp>,
}

/// A manifest whose `subject` is the digest asked about.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Referrer {
    #[sqlx(try_from = "String")]
    pub digest: Digest,
    pub media_type: String,
    #[sqlx(try_from = "i64")]
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

/// An upload in progress. `size`, `parts` and `hash_state` are its
/// authoritative state, changed together as each part is recorded
/// ([`MetadataStore::record_upload_part`]): any replica continues from them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Upload {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub repository: RepositoryName,
    #[sqlx(try_from = "String")]
    pub algorithm: crate::oci::digest::DigestAlgorithm,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bytes in the recorded parts.
    #[sqlx(try_from = "i64")]
    pub size: u64,
    /// Parts recorded (numbered from 1).
    #[sqlx(try_from = "i64")]
    pub parts: u32,
    /// The hash of the recorded bytes, saved (see
    /// `oci::digest::ResumableHasher`); `None` only for rows written before
    /// uploads were recorded part by part.
    pub hash_state: Option<Vec<u8>>,
}

/// A recorded part of an upload: which write of part `number` counts.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UploadPartRecord {
    #[sqlx(try_from = "i64")]
    pub number: u32,
    /// The storage's name for this write of the part.
    pub token: String,
    #[sqlx(try_from = "i64")]
    pub size: u64,
}

/// A page of names in lexical order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<String>,
    /// There are more items after the last one returned.
    pub more: bool,
    /// For tags: the earliest expiry among the repository's tags still
    /// current, when one of them will vanish from the listing (`None`:
    /// none will).
    pub next_expiry: Option<Timestamp>,
}

#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;

    // --- repositories

    async fn repository_exists(&self, repo: &RepositoryName) -> Result<bool>;
    /// Repository names after `after`, at most `limit` of them.
    async fn list_repositories(&self, after: Option<&str>, limit: u32) -> Result<Page>;

    // --- blobs

    /// Size of `digest` if it is linked into `repo`.
    async fn repository_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<u64>>;
    /// Records the blob (or touches it) and links it into `repo`, creating
    /// the repository. False, and nothing written, if garbage collection
    /// is deleting the blob (see [`claim_blob`](Self::claim_blob)).
    async fn link_blob(&self, repo: &RepositoryName, digest: &Digest, size: u64) -> Result<bool>;
    /// The blob's size and when it was last touched, if it is linked into
    /// `repo` (what a blob GET or HEAD reads).
    async fn blob_link(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<BlobLink>>;
    /// Marks the blob and its link into `repo` as used now, if the stored
    /// touch is older than `older_than` ago: protects a blob a push has
    /// seen (HEAD) from garbage collection for a grace period. Whether
    /// anything was written.
    async fn touch_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        older_than: std::time::Duration,
    ) -> Result<bool>;
    /// Before an upload's bytes are made the blob `digest`: makes sure the
    /// blob's row exists and is touched now, so that garbage collection
    /// cannot delete the bytes being written. A row garbage collection is
    /// deleting is taken over once its deadline has passed.
    async fn claim_blob(&self, digest: &Digest, size: u64) -> Result<BlobClaim>;
    /// Links a blob the registry holds into `repo` (a mount), touching it.
    /// `None` (nothing written) if the blob is unknown or being deleted.
    async fn mount_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<u64>>;
    /// Removes the link; returns whether there was one.
    async fn unlink_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<bool>;
    /// Size of a blob known to the registry, in whatever repository.
    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>>;
    /// Repositories the blob is linked into (for mounts without `from`).
    async fn repositories_with_blob(
        &self,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<RepositoryName>>;
    /// Of `blobs`, those not linked into `repo`; of `manifests`, those not in `repo`.
    async fn missing_in_repository(
        &self,
        repo: &RepositoryName,
        blobs: &[Digest],
        manifests: &[Digest],
    ) -> Result<Vec<Digest>>;
    /// Manifests in `repo` that reference any of `children` (as config,
    /// layer or child manifest): which images of the repository a blob or
    /// manifest belongs to.
    async fn manifests_referencing(
        &self,
        repo: &RepositoryName,
        children: &[Digest],
    ) -> Result<Vec<Digest>>;

    // --- manifests and tags

    /// Stores the manifest (if new), puts it in `repo` and points `tags` at it,
    /// all in one transaction.
    async fn put_manifest(
        &self,
        repo: &RepositoryName,
        manifest: &NewManifest,
        tags: &[Tag],
    ) -> Result<()> {
        let origin = image_streams::RevisionOrigin::unknown_push();
        self.put_manifest_from(repo, manifest, tags, &origin).await
    }
    /// [`put_manifest`](Self::put_manifest), recording a revision by
    /// `origin` in the history of each tag that moves (and of the tags
    /// following it), in the same transaction.
    async fn put_manifest_from(
        &self,
        repo: &RepositoryName,
        manifest: &NewManifest,
        tags: &[Tag],
        origin: &image_streams::RevisionOrigin,
    ) -> Result<()>;
    /// The manifest `reference` names in `repo`, with its bytes.
    async fn manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<Option<StoredManifest>>;
    /// Like [`manifest`](Self::manifest) without the bytes (for HEAD).
    async fn manifest_meta(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<Option<ManifestMeta>>;
    /// Removes the manifest from `repo` with every tag pointing at it (and
    /// those tags' histories).
    async fn delete_manifest(&self, repo: &RepositoryName, digest: &Digest) -> Result<bool>;
    async fn referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>>;
    /// Tags of `repo` after `after`; `None` if the repository does not exist.
    async fn list_tags(
        &self,
        repo: &RepositoryName,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Option<Page>>;
    /// Deletes the tag with its history. False for a tag that is not
    /// there or has expired; [`MetadataError::TagImmutable`] for one an
    /// immutable-tags policy covers.
    async fn delete_tag(&self, repo: &RepositoryName, tag: &Tag) -> Result<bool>;

    // --- tag policies

    /// The immutable-tags policies of `namespace`: its own first, then its
    /// repositories', by name.
    async fn immutable_tag_policies(
        &self,
        namespace: &str,
    ) -> Result<Vec<tag_policies::ImmutableTagPolicy>>;
    /// Replaces the policy of `namespace` (`repository: None`) or of one
    /// of its repositories; no patterns removes it (false if there was
    /// none). The tags the policy covers lose their expiry.
    async fn set_immutable_tag_policy(
        &self,
        namespace: &str,
        repository: Option<&str>,
        patterns: &[crate::oci::tag_pattern::TagPattern],
        by: Option<&str>,
    ) -> Result<bool>;
    /// Removes the rows of tags that expired at or before `at` (at most
    /// `limit`), keeping their history, and says which. What garbage
    /// collection runs first; a pruner can call it the same way.
    async fn remove_expired_tags(
        &self,
        at: Timestamp,
        limit: u32,
    ) -> Result<Vec<tag_policies::ExpiredTag>>;

    // --- usage (summed from the links, never counted apart: see `quotas`)

    /// What `namespace` holds: its repositories, current tags, distinct
    /// manifests and blobs, their bytes deduplicated and raw, and the
    /// bytes of its uploads in progress.
    async fn namespace_usage(&self, namespace: &str) -> Result<quotas::Usage>;
    /// What a byte quota counts of `namespace`, and only that (a quarter
    /// of [`namespace_usage`](Self::namespace_usage)'s work): its blobs and
    /// manifests once each, plus its uploads in progress and the live
    /// reservations of writes in flight.
    async fn namespace_bytes(&self, namespace: &str) -> Result<u64>;
    /// Reserves `bytes` of `namespace`'s byte quota `limit` for the write
    /// `holder` (replacing what it held), until `expires_at` at the latest,
    /// if what the namespace counts (as [`namespace_bytes`](Self::namespace_bytes),
    /// less `holder`'s own reservation) leaves room; false if not.
    /// Atomic across replicas: two writers never both take the last bytes.
    async fn reserve_quota(
        &self,
        namespace: &str,
        holder: &str,
        bytes: u64,
        limit: u64,
        expires_at: Timestamp,
    ) -> Result<bool>;
    /// Drops `holder`'s reservation: its bytes now count where they are
    /// recorded (an upload's size, a blob's link), or were never stored.
    async fn release_quota(&self, holder: &str) -> Result<()>;
    /// The repositories and current tags of `namespace`.
    async fn namespace_counts(&self, namespace: &str) -> Result<quotas::Counts>;
    /// What each repository of `namespace` (of every namespace: `None`)
    /// holds, by name.
    async fn repository_usages(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<quotas::RepositoryUsage>>;
    /// Whether a repository of `namespace` holds `digest` (a blob or a
    /// manifest): storing it again there costs the namespace nothing.
    async fn namespace_holds(&self, namespace: &str, digest: &Digest) -> Result<bool>;

    // --- uploads

    async fn create_upload(&self, upload: &Upload) -> Result<()>;
    async fn upload(&self, repo: &RepositoryName, id: &str) -> Result<Option<Upload>>;
    /// Whether the upload `id` exists, in any repository.
    async fn upload_exists(&self, id: &str) -> Result<bool>;
    /// Marks the upload as used now; false if it does not exist.
    async fn touch_upload(&self, id: &str) -> Result<bool>;
    /// Records `part` as the upload's next part and the upload's state after
    /// it (`size` bytes, hashed to `hash_state`), in one transaction, if the
    /// upload has exactly `part.number - 1` parts. False (and nothing
    /// written) if another part was recorded first or the upload is gone.
    async fn record_upload_part(
        &self,
        id: &str,
        part: &UploadPartRecord,
        size: u64,
        hash_state: &[u8],
    ) -> Result<bool>;
    /// The upload's recorded parts, in order.
    async fn upload_parts(&self, id: &str) -> Result<Vec<UploadPartRecord>>;
    /// Deletes the upload and its parts' records.
    async fn delete_upload(&self, id: &str) -> Result<bool>;
    /// Uploads not touched since `before`.
    async fn stale_uploads(&self, before: Timestamp, limit: u32) -> Result<Vec<Upload>>;
}
