//! What the image pruner asks of the metadata store ([`PrunerStore`],
//! migration 0018): its settings, shared by the replicas and changed at run
//! time; the tag histories it trims, with the trimming re-decided by the
//! store in the statement that deletes; and the record of its runs.

use std::time::Duration;

use async_trait::async_trait;

use super::{Result, Timestamp};

/// The pruner's settings (OpenShift's `ImagePruner.spec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunerSettings {
    /// Cron, five fields, UTC.
    pub schedule: String,
    pub suspend: bool,
    pub keep_tag_revisions: u32,
    pub keep_younger_than: Duration,
    pub successful_jobs_history_limit: u32,
    pub failed_jobs_history_limit: u32,
    pub ignore_invalid_image_references: bool,
}

impl Default for PrunerSettings {
    fn default() -> Self {
        PrunerSettings {
            schedule: "0 0 * * *".into(),
            suspend: false,
            keep_tag_revisions: 3,
            keep_younger_than: Duration::from_secs(3600),
            successful_jobs_history_limit: 3,
            failed_jobs_history_limit: 3,
            ignore_invalid_image_references: true,
        }
    }
}

/// The settings as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunerRecord {
    pub settings: PrunerSettings,
    /// The latest scheduled time a run was started for.
    pub scheduled_through: Timestamp,
    pub updated_by: Option<String>,
    pub updated_at: Timestamp,
}

/// One revision of a tag's history, as the pruner reads it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HistoryRevision {
    pub repository_id: i64,
    pub repository: String,
    pub tag: String,
    pub generation: i64,
    /// As recorded: a digest, or what an import recorded.
    pub digest: String,
    pub created_at: Timestamp,
    /// The digest the tag points at now; `None` when the tag is gone or
    /// past its expiry, and only its history is left.
    pub current: Option<String>,
}

/// How a run ended, as [`PrunerStore::finish_prune_run`] records it.
#[derive(Debug, Clone, Copy)]
pub struct PruneRunEnd<'a> {
    pub progress: &'a PruneProgress,
    /// `Succeeded` or `Failed`.
    pub outcome: &'a str,
    pub error: Option<&'a str>,
    /// The garbage collection the run started.
    pub gc_run: Option<&'a str>,
    /// The revisions removed, as JSON.
    pub removed: &'a str,
    /// Succeeded runs kept in the history, the newest.
    pub successful_kept: u32,
    /// Failed or interrupted runs kept in the history, the newest.
    pub failed_kept: u32,
}

/// Counts a run keeps as it goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct PruneProgress {
    /// `expired-tags`, `trimming`, `collecting`, `done`.
    pub phase: String,
    #[sqlx(try_from = "i64")]
    pub revisions_removed: u64,
    #[sqlx(try_from = "i64")]
    pub tags_removed: u64,
    #[sqlx(try_from = "i64")]
    pub manifests_removed: u64,
    #[sqlx(try_from = "i64")]
    pub blobs_removed: u64,
    #[sqlx(try_from = "i64")]
    pub bytes_freed: u64,
}

/// A run as recorded in `prune_runs`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PruneRun {
    pub id: String,
    pub replica: String,
    /// `Schedule` or `Manual`.
    #[sqlx(rename = "trigger_kind")]
    pub trigger: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// `Succeeded`, `Failed` or `Interrupted`; `None` while it runs.
    pub outcome: Option<String>,
    pub error: Option<String>,
    /// JSON: the rules it ran with.
    pub options: String,
    #[sqlx(flatten)]
    pub progress: PruneProgress,
    pub gc_run: Option<String>,
    /// JSON: the first revisions it removed.
    pub removed: Option<String>,
}

#[async_trait]
pub trait PrunerStore: Send + Sync + 'static {
    async fn pruner(&self) -> Result<PrunerRecord>;
    /// Replaces the settings. A change of schedule, or a resume, restarts
    /// the schedule from now: runs missed before are not made up.
    async fn set_pruner(&self, settings: &PrunerSettings, by: Option<&str>)
    -> Result<PrunerRecord>;
    /// Takes the scheduled time `due`: true for the one caller that moves
    /// `scheduled_through` up to it, so that each scheduled time is run
    /// once whichever replica looks.
    async fn take_scheduled_time(&self, due: Timestamp) -> Result<bool>;

    /// Tags past their expiry, not yet removed.
    async fn count_expired_tags(&self) -> Result<u64>;
    /// The tag histories of up to `limit` repositories with an id above
    /// `after` (and in `namespace`, if given), in repository order, each
    /// tag's revisions newest first.
    async fn tag_histories(
        &self,
        after: i64,
        limit: u32,
        namespace: Option<&str>,
    ) -> Result<Vec<HistoryRevision>>;
    /// Deletes the revisions `(tag, generation)` of the repository that are
    /// still, checked again in the deleting statement: not what their tag
    /// points at, older than `keep_younger_than` by the database's clock,
    /// and behind at least `keep` newer revisions of their tag (any number
    /// when the tag is gone). Returns those deleted.
    async fn delete_tag_revisions(
        &self,
        repository_id: i64,
        revisions: &[(String, i64)],
        keep: u32,
        keep_younger_than: Duration,
    ) -> Result<Vec<(String, i64)>>;

    // --- runs

    /// Records a run starting, unless another is still going: one of
    /// `replica` itself, or one whose heartbeat is younger than
    /// `stale_after`; its id is then returned and nothing recorded. Runs of
    /// other replicas recorded as running whose heartbeat is older (their
    /// replica died) are marked `Interrupted`. Atomic across replicas: two
    /// runs never both start.
    async fn start_prune_run(
        &self,
        id: &str,
        replica: &str,
        trigger: &str,
        options: &str,
        stale_after: std::time::Duration,
    ) -> Result<Option<String>>;
    /// The run's heartbeat: it is still going.
    async fn prune_run_alive(&self, id: &str) -> Result<()>;
    async fn record_prune_progress(&self, id: &str, progress: &PruneProgress) -> Result<()>;
    /// Records the end of run `id`, then keeps only the latest runs the
    /// end's history limits say.
    async fn finish_prune_run(&self, id: &str, end: &PruneRunEnd<'_>) -> Result<()>;
    /// The latest runs, newest first.
    async fn prune_runs(&self, limit: u32) -> Result<Vec<PruneRun>>;
    async fn prune_run(&self, id: &str) -> Result<Option<PruneRun>>;
}
