//! The image pruner (OpenShift's `ImagePruner` named `cluster`;
//! ARCHITECTURE.md, "Pruning and garbage collection"): trims each tag's
//! history to what its rules keep, then has garbage collection remove the
//! images and blobs nothing names any more.
//!
//! A run ([`Pruner::prune`]), scheduled by cron (the `image-pruner` job) or
//! asked for (`berth adm prune images --confirm`):
//!
//! 1. **expired-tags**: tags past their expiry go (as garbage collection's
//!    first phase does), their history left to the rules below;
//! 2. **trimming**: a revision is removed when it is not what its tag points
//!    at, is older than `keepYoungerThan`, and has at least
//!    `keepTagRevisions` newer revisions of its tag (any number when the tag
//!    is gone: an expired tag's history is kept only while it is young).
//!    The store decides each removal again in the statement that deletes;
//! 3. **collecting**: a garbage collection run (through its job, so that it
//!    runs on one replica at a time) removes the manifests no tag, history,
//!    kept index or kept subject reaches and the blobs no manifest
//!    references, each past its grace period.
//!
//! A dry run ([`Pruner::dry_run`]) decides the same and foresees what the
//! collection would then remove, writing nothing.
//!
//! Stopped midway (the replica killed), a run leaves only whole steps done:
//! a revision is deleted or not, a blob is marked or not; the next run, or
//! garbage collection's next run, finishes the rest.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::garbage::{GarbageCollector, GcError, GcReport, Pacer};
use super::registry::Registry;
use crate::crash_points;
use crate::metadata::pruner::{
    HistoryRevision, PruneProgress, PruneRun, PruneRunEnd, PrunerRecord, PrunerSettings,
    PrunerStore,
};
use crate::metadata::{MetadataError, Timestamp, millis, now};
use crate::oci::digest::Digest;

/// Repositories whose histories are read per page.
const REPOSITORY_PAGE: u32 = 100;
/// Revisions deleted per transaction.
const REVISION_BATCH: usize = 500;
/// Expired tags removed per transaction.
const TAG_BATCH: u32 = 500;
/// What a report lists; the counts say how many there were.
const REMOVED_LISTED: usize = 1000;
/// Runs shown in the pruner's status.
pub const RUNS_SHOWN: u32 = 20;

/// How often a run says it is going on.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(10);
/// A run silent this long is taken for dead (its replica stopped): well
/// over the heartbeat, for a database that answers slowly for a while.
const HEARTBEAT_STALE: std::time::Duration = std::time::Duration::from_secs(90);

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Collection(#[from] GcError),
    /// `ignoreInvalidImageReferences` is off and a tag's history names
    /// something that is not a digest.
    #[error(
        "{repository}:{tag} (generation {generation}) names {reference:?}, which is not an image \
         digest; set ignoreInvalidImageReferences to leave such revisions alone"
    )]
    InvalidReference {
        repository: String,
        tag: String,
        generation: i64,
        reference: String,
    },
    /// Settings that cannot be kept (a schedule cron does not parse, …).
    #[error("{0}")]
    Invalid(String),
    /// The garbage collection run could not be started or followed.
    #[error("garbage collection: {0}")]
    CollectionNotRun(String),
    /// Another run is going on (on this replica or another).
    #[error("image pruning run {0} is going on; try again once it has ended")]
    Busy(String),
}

/// How a run of garbage collection is had: through its job, so that one
/// replica at a time runs it (`jobs::CollectThroughJob`).
#[async_trait]
pub trait CollectGarbage: Send + Sync + 'static {
    /// Starts a run, or waits for one under way to end and starts the next,
    /// and returns it once it has ended.
    async fn collect_now(&self) -> Result<GcReport, PruneError>;
}

/// The rules a run applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneOptions {
    pub keep_tag_revisions: u32,
    #[serde(with = "crate::duration_text")]
    pub keep_younger_than: Duration,
    /// Only this namespace's tag histories (the collection that follows is
    /// the whole registry's: what nothing references is garbage wherever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default)]
    pub ignore_invalid_image_references: bool,
}

impl PruneOptions {
    pub fn of_settings(settings: &PrunerSettings) -> PruneOptions {
        PruneOptions {
            keep_tag_revisions: settings.keep_tag_revisions,
            keep_younger_than: settings.keep_younger_than,
            namespace: None,
            ignore_invalid_image_references: settings.ignore_invalid_image_references,
        }
    }
}

/// A revision a run removed (or would).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrimmedRevision {
    pub repository: String,
    pub tag: String,
    pub generation: i64,
    pub digest: String,
    pub created_at: Timestamp,
}

/// A run, or a dry run, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// `None` for a dry run (not recorded).
    pub id: Option<String>,
    pub dry_run: bool,
    /// `Schedule`, `Manual`.
    pub trigger: String,
    pub replica: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// `Succeeded`, `Failed`, `Interrupted`; `None` while it runs.
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub options: Option<PruneOptions>,
    pub progress: PruneProgress,
    /// The first [`REMOVED_LISTED`] revisions removed.
    pub revisions: Vec<TrimmedRevision>,
    /// The collection that followed: its run's id, or for a dry run what
    /// it would remove.
    pub gc_run: Option<String>,
    pub collection: Option<GcReport>,
}

impl PruneReport {
    pub fn of_run(run: PruneRun) -> PruneReport {
        PruneReport {
            revisions: run
                .removed
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_default(),
            options: serde_json::from_str(&run.options).ok(),
            id: Some(run.id),
            dry_run: false,
            trigger: run.trigger,
            replica: run.replica,
            started_at: run.started_at,
            finished_at: run.finished_at,
            outcome: run.outcome,
            error: run.error,
            progress: run.progress,
            gc_run: run.gc_run,
            collection: None,
        }
    }
}

/// The revisions of one tag's history (newest first) that the rules
/// remove: not the tag's current image, older than `older_than`, and
/// behind at least `keep` newer ones (when the tag is gone, any number).
/// The store's delete applies the same rule again.
pub fn revisions_to_trim(
    history: &[HistoryRevision],
    keep: u32,
    older_than: Timestamp,
) -> Vec<&HistoryRevision> {
    history
        .iter()
        .enumerate()
        .filter(|(newer, revision)| {
            let current = revision.current.as_deref();
            current != Some(revision.digest.as_str())
                && revision.created_at < older_than
                && (current.is_none() || *newer >= keep as usize)
        })
        .map(|(_, revision)| revision)
        .collect()
}

/// A five-field cron schedule (minute, hour, day of month, month, day of
/// week), in UTC; `@daily` and the other nicknames too.
#[derive(Debug, Clone)]
pub struct Schedule(croner::Cron);

impl FromStr for Schedule {
    type Err = PruneError;

    fn from_str(text: &str) -> Result<Self, PruneError> {
        let text = text.trim();
        if !text.starts_with('@') && text.split_whitespace().count() != 5 {
            return Err(PruneError::Invalid(format!(
                "schedule {text:?}: a cron schedule has five fields (minute hour day-of-month \
                 month day-of-week), such as \"0 0 * * *\""
            )));
        }
        croner::Cron::from_str(text)
            .map(Schedule)
            .map_err(|e| PruneError::Invalid(format!("schedule {text:?}: {e}")))
    }
}

impl Schedule {
    /// The latest scheduled time at or before `at`.
    pub fn latest_at_or_before(&self, at: Timestamp) -> Option<Timestamp> {
        let at = chrono::DateTime::from_timestamp_millis(at)?;
        let previous = self.0.find_previous_occurrence(&at, true).ok()?;
        Some(previous.timestamp_millis())
    }

    /// The next scheduled time after `at`.
    pub fn next_after(&self, at: Timestamp) -> Option<Timestamp> {
        let at = chrono::DateTime::from_timestamp_millis(at)?;
        let next = self.0.find_next_occurrence(&at, false).ok()?;
        Some(next.timestamp_millis())
    }
}

/// Checks settings before they are stored.
pub fn validate(settings: &PrunerSettings) -> Result<(), PruneError> {
    settings.schedule.parse::<Schedule>()?;
    if settings.keep_younger_than > Duration::from_secs(100 * 365 * 24 * 3600) {
        return Err(PruneError::Invalid(
            "keepYoungerThanDuration is over a hundred years".into(),
        ));
    }
    Ok(())
}

/// The tag histories a run reads, a page of repositories at a time.
struct HistoryPages<'a> {
    namespace: Option<&'a str>,
    /// Revisions made before this are old enough to trim.
    older_than: Timestamp,
    after: i64,
    done: bool,
}

impl<'a> HistoryPages<'a> {
    fn new(options: &'a PruneOptions, at: Timestamp) -> Self {
        HistoryPages {
            namespace: options.namespace.as_deref(),
            older_than: at.saturating_sub(millis(options.keep_younger_than)),
            after: 0,
            done: false,
        }
    }

    async fn next(
        &mut self,
        store: &dyn PrunerStore,
    ) -> Result<Option<Vec<HistoryRevision>>, PruneError> {
        if self.done {
            return Ok(None);
        }
        let page = store
            .tag_histories(self.after, REPOSITORY_PAGE, self.namespace)
            .await?;
        match page.last() {
            Some(last) => self.after = last.repository_id,
            None => self.done = true,
        }
        Ok((!self.done).then_some(page))
    }
}

/// A run's state as it goes.
struct Run {
    id: Option<String>,
    progress: PruneProgress,
    revisions: Vec<TrimmedRevision>,
}

impl Run {
    fn list(&mut self, revision: &HistoryRevision) {
        if self.revisions.len() < REMOVED_LISTED {
            self.revisions.push(TrimmedRevision {
                repository: revision.repository.clone(),
                tag: revision.tag.clone(),
                generation: revision.generation,
                digest: revision.digest.clone(),
                created_at: revision.created_at,
            });
        }
    }
}

pub struct Pruner {
    store: Arc<dyn PrunerStore>,
    registry: Arc<Registry>,
    garbage: Arc<GarbageCollector>,
    collect: Arc<dyn CollectGarbage>,
    replica: String,
    /// How long another replica's run may be silent before it is taken
    /// for dead: [`HEARTBEAT_STALE`], or zero where no other replica can
    /// share the database (the embedded one: a run this process does not
    /// hold is one a killed process left).
    others_stale_after: std::time::Duration,
}

impl Pruner {
    pub fn new(
        store: Arc<dyn PrunerStore>,
        registry: Arc<Registry>,
        garbage: Arc<GarbageCollector>,
        collect: Arc<dyn CollectGarbage>,
        replica: String,
        shared_database: bool,
    ) -> Pruner {
        Pruner {
            store,
            registry,
            garbage,
            collect,
            replica,
            others_stale_after: if shared_database {
                HEARTBEAT_STALE
            } else {
                std::time::Duration::ZERO
            },
        }
    }

    pub async fn settings(&self) -> Result<PrunerRecord, PruneError> {
        Ok(self.store.pruner().await?)
    }

    pub async fn set_settings(
        &self,
        settings: &PrunerSettings,
        by: Option<&str>,
    ) -> Result<PrunerRecord, PruneError> {
        validate(settings)?;
        let record = self.store.set_pruner(settings, by).await?;
        tracing::info!(
            by,
            schedule = %settings.schedule,
            suspend = settings.suspend,
            keep_tag_revisions = settings.keep_tag_revisions,
            keep_younger_than = ?settings.keep_younger_than,
            "image pruner settings changed"
        );
        Ok(record)
    }

    /// The latest runs, newest first.
    pub async fn runs(&self, limit: u32) -> Result<Vec<PruneReport>, PruneError> {
        Ok(self
            .store
            .prune_runs(limit)
            .await?
            .into_iter()
            .map(PruneReport::of_run)
            .collect())
    }

    pub async fn run(&self, id: &str) -> Result<Option<PruneReport>, PruneError> {
        Ok(self.store.prune_run(id).await?.map(PruneReport::of_run))
    }

    /// Runs the pruner if its schedule has come round since its last
    /// scheduled run (once, however many times were missed): the
    /// `image-pruner` job's pass. `None` when nothing was due.
    pub async fn run_if_scheduled(&self) -> Result<Option<PruneReport>, PruneError> {
        let record = self.store.pruner().await?;
        if record.settings.suspend {
            return Ok(None);
        }
        let schedule: Schedule = record.settings.schedule.parse()?;
        let at = now();
        if record.scheduled_through == 0 {
            // A new registry: the schedule starts now.
            self.store.take_scheduled_time(at).await?;
            return Ok(None);
        }
        let Some(due) = schedule.latest_at_or_before(at) else {
            return Ok(None);
        };
        if due <= record.scheduled_through || !self.store.take_scheduled_time(due).await? {
            return Ok(None);
        }
        let options = PruneOptions::of_settings(&record.settings);
        match self.prune(&options, "Schedule").await {
            // As a CronJob with concurrencyPolicy Forbid: this time is
            // skipped; the next one runs.
            Err(PruneError::Busy(going)) => {
                tracing::info!(run = %going, "scheduled image pruning skipped: a run is going on");
                Ok(None)
            }
            result => result.map(Some),
        }
    }

    /// A run: trims the histories, then collects; recorded in `prune_runs`.
    pub async fn prune(
        &self,
        options: &PruneOptions,
        trigger: &str,
    ) -> Result<PruneReport, PruneError> {
        let id = uuid::Uuid::new_v4().to_string();
        let options_text = serde_json::to_string(options).unwrap_or_else(|_| "{}".into());
        if let Some(going) = self
            .store
            .start_prune_run(
                &id,
                &self.replica,
                trigger,
                &options_text,
                self.others_stale_after,
            )
            .await?
        {
            return Err(PruneError::Busy(going));
        }
        tracing::info!(run = %id, trigger, ?options, "image pruning started");
        let began = std::time::Instant::now();
        let mut run = Run {
            id: Some(id.clone()),
            progress: PruneProgress::default(),
            revisions: Vec::new(),
        };
        let mut gc_run = None;
        let result = tokio::select! {
            result = self.phases(&mut run, options, &mut gc_run) => result,
            never = self.heartbeat(&id) => match never {},
        };
        run.progress.phase = "done".into();
        let (outcome, error) = match &result {
            Ok(()) => ("Succeeded", None),
            Err(e) => ("Failed", Some(e.to_string())),
        };
        metrics::counter!("berth_prune_runs_total", "outcome" => outcome).increment(1);
        metrics::counter!("berth_prune_revisions_removed_total")
            .increment(run.progress.revisions_removed);
        let limits = self.store.pruner().await.map(|r| r.settings);
        let (successful, failed) = limits.as_ref().map_or((3, 3), |s| {
            (s.successful_jobs_history_limit, s.failed_jobs_history_limit)
        });
        let listed = serde_json::to_string(&run.revisions).unwrap_or_else(|_| "[]".into());
        if let Err(e) = self
            .store
            .finish_prune_run(
                &id,
                &PruneRunEnd {
                    progress: &run.progress,
                    outcome,
                    error: error.as_deref(),
                    gc_run: gc_run.as_deref(),
                    removed: &listed,
                    successful_kept: successful,
                    failed_kept: failed,
                },
            )
            .await
        {
            tracing::warn!(run = %id, error = %e, "could not record the pruner's outcome");
        }
        let p = &run.progress;
        tracing::info!(
            run = %id,
            outcome,
            error = error.as_deref(),
            revisions_removed = p.revisions_removed,
            tags_removed = p.tags_removed,
            manifests_removed = p.manifests_removed,
            blobs_removed = p.blobs_removed,
            bytes_freed = p.bytes_freed,
            seconds = began.elapsed().as_secs_f64(),
            "image pruning finished"
        );
        result?;
        let mut report = match self.store.prune_run(&id).await? {
            Some(recorded) => PruneReport::of_run(recorded),
            None => self.report_of(run, false, trigger, Some(options.clone())),
        };
        report.options = Some(options.clone());
        Ok(report)
    }

    /// Says the run `id` is going on, every [`HEARTBEAT`], until dropped.
    async fn heartbeat(&self, id: &str) -> std::convert::Infallible {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            if let Err(e) = self.store.prune_run_alive(id).await {
                tracing::warn!(run = %id, error = %e, "could not write the run's heartbeat");
            }
        }
    }

    async fn phases(
        &self,
        run: &mut Run,
        options: &PruneOptions,
        gc_run: &mut Option<String>,
    ) -> Result<(), PruneError> {
        self.enter(run, "expired-tags").await;
        let mut pacer = Pacer::new(self.garbage.settings().busy_percent);
        loop {
            pacer.rest().await;
            let expired = self.registry.remove_expired_tags(TAG_BATCH).await?;
            run.progress.tags_removed += expired.len() as u64;
            if (expired.len() as u32) < TAG_BATCH {
                break;
            }
        }

        self.enter(run, "trimming").await;
        let mut pages = HistoryPages::new(options, now());
        loop {
            pacer.rest().await;
            let Some(page) = pages.next(self.store.as_ref()).await? else {
                break;
            };
            for (repository_id, trimmed) in self.decide(&page, options, pages.older_than)? {
                for chunk in trimmed.chunks(REVISION_BATCH) {
                    let asked: Vec<(String, i64)> = chunk
                        .iter()
                        .map(|r| (r.tag.clone(), r.generation))
                        .collect();
                    let deleted: HashSet<(String, i64)> = self
                        .store
                        .delete_tag_revisions(
                            repository_id,
                            &asked,
                            options.keep_tag_revisions,
                            options.keep_younger_than,
                        )
                        .await?
                        .into_iter()
                        .collect();
                    run.progress.revisions_removed += deleted.len() as u64;
                    for revision in chunk {
                        if deleted.contains(&(revision.tag.clone(), revision.generation)) {
                            run.list(revision);
                        }
                    }
                    crash_points::reached(crash_points::PRUNE_AFTER_TRIM);
                }
            }
            self.record(run).await;
        }

        self.enter(run, "collecting").await;
        let collection = self.collect.collect_now().await?;
        *gc_run = collection.id.clone();
        let p = &collection.progress;
        run.progress.manifests_removed = p.manifests_removed;
        run.progress.blobs_removed = p.blobs_removed;
        run.progress.bytes_freed = p.bytes_freed;
        if let Some(error) = collection.error {
            return Err(PruneError::CollectionNotRun(error));
        }
        Ok(())
    }

    /// Per repository, the revisions its histories' rules remove.
    fn decide<'a>(
        &self,
        page: &'a [HistoryRevision],
        options: &PruneOptions,
        older_than: Timestamp,
    ) -> Result<Vec<(i64, Vec<&'a HistoryRevision>)>, PruneError> {
        let mut decided: Vec<(i64, Vec<&HistoryRevision>)> = Vec::new();
        for history in page.chunk_by(|a, b| a.repository_id == b.repository_id && a.tag == b.tag) {
            let mut valid = Vec::with_capacity(history.len());
            for revision in history {
                if revision.digest.parse::<Digest>().is_ok() {
                    valid.push(revision.clone());
                } else if !options.ignore_invalid_image_references {
                    return Err(PruneError::InvalidReference {
                        repository: revision.repository.clone(),
                        tag: revision.tag.clone(),
                        generation: revision.generation,
                        reference: revision.digest.clone(),
                    });
                }
            }
            let trimmed: HashSet<(String, i64)> =
                revisions_to_trim(&valid, options.keep_tag_revisions, older_than)
                    .into_iter()
                    .map(|r| (r.tag.clone(), r.generation))
                    .collect();
            let repository_id = history[0].repository_id;
            let chosen: Vec<&HistoryRevision> = history
                .iter()
                .filter(|r| trimmed.contains(&(r.tag.clone(), r.generation)))
                .collect();
            match decided.last_mut() {
                Some((id, list)) if *id == repository_id => list.extend(chosen),
                _ => decided.push((repository_id, chosen)),
            }
        }
        Ok(decided)
    }

    /// What a run with `options` would remove now, removing nothing.
    pub async fn dry_run(&self, options: &PruneOptions) -> Result<PruneReport, PruneError> {
        let started_at = now();
        let mut run = Run {
            id: None,
            progress: PruneProgress::default(),
            revisions: Vec::new(),
        };
        // Per repository: the digests only trimmed revisions name.
        let mut unnamed: HashMap<i64, HashSet<Digest>> = HashMap::new();
        let mut pages = HistoryPages::new(options, started_at);
        while let Some(page) = pages.next(self.store.as_ref()).await? {
            for (repository_id, trimmed) in self.decide(&page, options, pages.older_than)? {
                let gone: HashSet<(&str, i64)> = trimmed
                    .iter()
                    .map(|r| (r.tag.as_str(), r.generation))
                    .collect();
                let still_named: HashSet<&str> = page
                    .iter()
                    .filter(|r| r.repository_id == repository_id)
                    .flat_map(|r| {
                        let kept = (!gone.contains(&(r.tag.as_str(), r.generation)))
                            .then_some(r.digest.as_str());
                        kept.into_iter().chain(r.current.as_deref())
                    })
                    .collect();
                for revision in &trimmed {
                    run.progress.revisions_removed += 1;
                    run.list(revision);
                    if !still_named.contains(revision.digest.as_str())
                        && let Ok(digest) = revision.digest.parse::<Digest>()
                    {
                        unnamed.entry(repository_id).or_default().insert(digest);
                    }
                }
            }
        }
        let expired = self.store.count_expired_tags().await?;
        run.progress.tags_removed = expired;
        let collection = self.garbage.dry_run_without(&unnamed).await?;
        let p = &collection.progress;
        run.progress.manifests_removed = p.manifests_removed;
        run.progress.blobs_removed = p.blobs_removed;
        run.progress.bytes_freed = p.bytes_freed;
        run.progress.phase = "done".into();
        let mut report = self.report_of(run, true, "Manual", Some(options.clone()));
        report.started_at = started_at;
        report.collection = Some(collection);
        Ok(report)
    }

    fn report_of(
        &self,
        run: Run,
        dry_run: bool,
        trigger: &str,
        options: Option<PruneOptions>,
    ) -> PruneReport {
        PruneReport {
            id: run.id,
            dry_run,
            trigger: trigger.to_owned(),
            replica: self.replica.clone(),
            started_at: now(),
            finished_at: Some(now()),
            outcome: Some("Succeeded".into()),
            error: None,
            options,
            progress: run.progress,
            revisions: run.revisions,
            gc_run: None,
            collection: None,
        }
    }

    async fn enter(&self, run: &mut Run, phase: &str) {
        run.progress.phase = phase.to_owned();
        self.record(run).await;
    }

    /// Writes the run's progress; a failure is logged (progress is for
    /// people).
    async fn record(&self, run: &Run) {
        let Some(id) = &run.id else {
            return;
        };
        if let Err(e) = self.store.record_prune_progress(id, &run.progress).await {
            tracing::debug!(run = %id, error = %e, "could not record the pruner's progress");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(
        generation: i64,
        digest: &str,
        age_ms: i64,
        current: Option<&str>,
    ) -> HistoryRevision {
        HistoryRevision {
            repository_id: 1,
            repository: "ns/app".into(),
            tag: "latest".into(),
            generation,
            digest: digest.into(),
            created_at: 1_000_000 - age_ms,
            current: current.map(str::to_owned),
        }
    }

    fn generations(trimmed: Vec<&HistoryRevision>) -> Vec<i64> {
        trimmed.iter().map(|r| r.generation).collect()
    }

    /// Five revisions, newest first, each a minute older than the last.
    fn history(current: Option<&str>) -> Vec<HistoryRevision> {
        (0..5)
            .map(|i| revision(5 - i, &format!("d{}", 5 - i), i * 60_000 + 1, current))
            .collect()
    }

    #[test]
    fn revisions_beyond_the_kept_count_and_old_enough_go() {
        let h = history(Some("d5"));
        // Older than 0 ms ago: only the count decides.
        assert_eq!(generations(revisions_to_trim(&h, 3, 1_000_000)), [2, 1]);
        assert_eq!(
            generations(revisions_to_trim(&h, 5, 1_000_000)),
            Vec::<i64>::new()
        );
        // The current revision is never trimmed, even when nothing is kept.
        assert_eq!(
            generations(revisions_to_trim(&h, 0, 1_000_000)),
            [4, 3, 2, 1]
        );
    }

    #[test]
    fn young_revisions_stay_whatever_the_count() {
        let h = history(Some("d5"));
        // Younger than 2.5 minutes: generations 5, 4 and 3 (ages 0, 1, 2 min).
        let older_than = 1_000_000 - 150_000;
        assert_eq!(generations(revisions_to_trim(&h, 0, older_than)), [2, 1]);
        // At the boundary: a revision exactly as old as the threshold stays.
        let older_than = 1_000_000 - (3 * 60_000 + 1);
        assert_eq!(generations(revisions_to_trim(&h, 0, older_than)), [1]);
    }

    #[test]
    fn a_rolled_back_tag_keeps_the_image_it_points_at() {
        // The tag points at d2 again (a rollback wrote no new revision in
        // this picture): every revision naming d2 stays.
        let h = history(Some("d2"));
        assert_eq!(generations(revisions_to_trim(&h, 1, 1_000_000)), [4, 3, 1]);
    }

    #[test]
    fn a_gone_tag_keeps_its_history_only_while_young() {
        let h = history(None);
        assert_eq!(
            generations(revisions_to_trim(&h, 3, 1_000_000)),
            [5, 4, 3, 2, 1]
        );
        let older_than = 1_000_000 - 90_000;
        assert_eq!(generations(revisions_to_trim(&h, 3, older_than)), [3, 2, 1]);
    }

    #[test]
    fn schedules_have_five_fields() {
        assert!("0 0 * * *".parse::<Schedule>().is_ok());
        assert!("*/5 * * * *".parse::<Schedule>().is_ok());
        assert!("@daily".parse::<Schedule>().is_ok());
        for bad in ["0 0 * *", "0 0 0 * * *", "61 * * * *", "nonsense", ""] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?} was accepted");
        }
        // 2026-12-03T10:30:00Z.
        let at = 1_796_293_800_000;
        let daily: Schedule = "0 0 * * *".parse().unwrap();
        assert_eq!(daily.latest_at_or_before(at), Some(1_796_256_000_000));
        assert_eq!(daily.next_after(at), Some(1_796_342_400_000));
        // An occurrence is its own latest.
        assert_eq!(
            daily.latest_at_or_before(1_796_256_000_000),
            Some(1_796_256_000_000)
        );
    }
}
