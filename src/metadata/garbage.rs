//! What online garbage collection asks of the metadata store
//! ([`GarbageStore`]): finding what nothing references any more, and
//! removing it in steps that re-check, under row locks, what a concurrent
//! push may have changed (ARCHITECTURE.md, "Garbage collection").
//!
//! Every "is it still unused" question is asked twice: once to find
//! candidates (a plain read, no locks), and again in the transaction that
//! removes them, after the rows are locked, so that a push committed in
//! between is seen. On PostgreSQL the collector locks with `SKIP LOCKED`:
//! a row a push holds (a manifest put holds what it references `FOR
//! SHARE`) is skipped, as in use, and the collector never waits for a
//! client, so it can never be part of a deadlock with one. On SQLite the
//! one writer connection serialises the two.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;

use super::{Result, Timestamp};
use crate::oci::digest::Digest;

/// A blob as garbage collection sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GcBlob {
    #[sqlx(try_from = "String")]
    pub digest: Digest,
    #[sqlx(try_from = "i64")]
    pub size: u64,
}

/// A blob's link into a repository that no manifest of that repository
/// references.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GcBlobLink {
    pub repository_id: i64,
    pub repository: String,
    #[sqlx(try_from = "String")]
    pub digest: Digest,
    #[sqlx(try_from = "i64")]
    pub size: u64,
}

/// A repository's manifests and what keeps them, read for one pass of the
/// collector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryGraph {
    pub id: i64,
    pub name: String,
    /// The manifests linked into the repository, each with whether it was
    /// made or touched within the grace period.
    pub links: Vec<(Digest, bool)>,
    /// Digests a tag of the repository, or a tag's history, names.
    pub named: Vec<Digest>,
    /// `(parent, child)`: what keeps what, within the repository. An index
    /// keeps its child manifests; a manifest keeps its referrers (the
    /// manifests whose `subject` it is).
    pub edges: Vec<(Digest, Digest)>,
}

/// A blob row, for dry runs: whether a run would collect it if nothing
/// referenced it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GcBlobRow {
    #[sqlx(flatten)]
    pub blob: GcBlob,
    /// Past the grace period (blob and links), and not being deleted.
    #[sqlx(try_from = "super::sql::Flag")]
    pub collectable: bool,
}

/// Counts a run keeps as it goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct GcProgress {
    /// What the run is doing: `resuming` (deletes a stopped run left),
    /// `manifests`, `blob-links`, `blobs`, `done`.
    pub phase: String,
    #[sqlx(try_from = "i64")]
    pub manifests_examined: u64,
    #[sqlx(try_from = "i64")]
    pub manifests_removed: u64,
    #[sqlx(try_from = "i64")]
    pub blobs_examined: u64,
    #[sqlx(try_from = "i64")]
    pub blobs_removed: u64,
    #[sqlx(try_from = "i64")]
    pub links_removed: u64,
    #[sqlx(try_from = "i64")]
    pub bytes_freed: u64,
}

/// A run as recorded in `gc_runs`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GcRun {
    pub id: String,
    pub replica: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// `Succeeded`, `Failed` or `Interrupted`; `None` while it runs.
    pub outcome: Option<String>,
    pub error: Option<String>,
    #[sqlx(flatten)]
    pub progress: GcProgress,
    /// JSON: the first things it removed.
    pub removed: Option<String>,
}

#[async_trait]
pub trait GarbageStore: Send + Sync + 'static {
    // --- manifests

    /// Repositories with an id above `after`, in id order: `(id, name)`.
    async fn gc_repositories(&self, after: i64, limit: u32) -> Result<Vec<(i64, String)>>;
    /// The repository's manifests and what keeps them.
    async fn repository_graph(
        &self,
        repository_id: i64,
        name: &str,
        grace: Duration,
    ) -> Result<RepositoryGraph>;
    /// Removes the links of `digests` (parents before children) from the
    /// repository, each only if, checked again now: no tag or tag history
    /// names it, no manifest of the repository keeps it, and it is past
    /// the grace period. Returns those removed.
    async fn delete_manifest_links(
        &self,
        repository_id: i64,
        digests: &[Digest],
        grace: Duration,
    ) -> Result<Vec<Digest>>;
    /// Manifests (after `after`, in digest order) in no repository and named
    /// by no tag or tag history.
    async fn orphan_manifests(&self, after: Option<&Digest>, limit: u32) -> Result<Vec<Digest>>;
    /// Deletes those of `digests` still orphans (with their references).
    async fn delete_orphan_manifests(&self, digests: &[Digest]) -> Result<Vec<Digest>>;

    /// Brings the query planner's statistics of the tables a collection
    /// reads up to date, where the engine plans by them (PostgreSQL's
    /// `ANALYZE`). Without them (a registry filled in bulk, a server with
    /// autovacuum off) PostgreSQL plans the collection's `NOT EXISTS`
    /// checks as a scan of a whole table per row.
    async fn refresh_statistics(&self) -> Result<()>;

    // --- blobs

    /// Rows in `blobs`.
    async fn count_blobs(&self) -> Result<u64>;
    /// Links (after `after`, in (repository, digest) order) past the grace
    /// period that no manifest of their repository references.
    async fn unreferenced_blob_links(
        &self,
        after: Option<(i64, &Digest)>,
        limit: u32,
        grace: Duration,
    ) -> Result<Vec<GcBlobLink>>;
    /// Removes those of the repository's links to `digests` that are still
    /// unreferenced there and past the grace period.
    async fn delete_blob_links(
        &self,
        repository_id: i64,
        digests: &[Digest],
        grace: Duration,
    ) -> Result<Vec<Digest>>;
    /// Blobs (after `after`, in digest order) past the grace period that no
    /// manifest references and that are not being deleted.
    async fn unreferenced_blobs(
        &self,
        after: Option<&Digest>,
        limit: u32,
        grace: Duration,
    ) -> Result<Vec<GcBlob>>;
    /// Marks those of `digests` still unreferenced and past the grace
    /// period as being deleted until `window` from now, and removes their
    /// links, in one transaction. Returns those marked: their bytes may be
    /// deleted once this returns.
    async fn mark_blobs(
        &self,
        digests: &[Digest],
        grace: Duration,
        window: Duration,
    ) -> Result<Vec<GcBlob>>;
    /// Marks again, until `window` from now, blobs whose marking run's
    /// deadline has passed (the run stopped or died): their deletes are
    /// finished by this run.
    async fn remark_abandoned_blobs(&self, limit: u32, window: Duration) -> Result<Vec<GcBlob>>;
    /// Deletes the rows of marked blobs whose bytes are gone. Returns those
    /// that went (a row taken over by an upload meanwhile stays).
    async fn sweep_blobs(&self, digests: &[Digest]) -> Result<Vec<Digest>>;
    /// Blobs marked for deletion now.
    async fn blobs_being_deleted(&self) -> Result<u64>;

    // --- for dry runs, which remove nothing and so must foresee

    /// How many repositories link each of `digests`.
    async fn manifest_link_counts(&self, digests: &[Digest]) -> Result<HashMap<Digest, u64>>;
    /// `(manifest, child)` for every reference of `manifests`.
    async fn references_of(&self, manifests: &[Digest]) -> Result<Vec<(Digest, Digest)>>;
    /// `(child, manifest)` for every reference to `children`.
    async fn references_to(&self, children: &[Digest]) -> Result<Vec<(Digest, Digest)>>;
    /// The blob rows of `digests` (those that exist).
    async fn blob_rows(&self, digests: &[Digest], grace: Duration) -> Result<Vec<GcBlobRow>>;

    // --- runs

    /// Records a run starting; runs recorded as running before it (their
    /// replica died) are marked `Interrupted`. Keeps the last 100 runs.
    async fn start_gc_run(&self, id: &str, replica: &str) -> Result<()>;
    async fn record_gc_progress(&self, id: &str, progress: &GcProgress) -> Result<()>;
    async fn finish_gc_run(
        &self,
        id: &str,
        progress: &GcProgress,
        outcome: &str,
        error: Option<&str>,
        removed: &str,
    ) -> Result<()>;
    /// The latest runs, newest first.
    async fn gc_runs(&self, limit: u32) -> Result<Vec<GcRun>>;
    async fn gc_run(&self, id: &str) -> Result<Option<GcRun>>;
}
