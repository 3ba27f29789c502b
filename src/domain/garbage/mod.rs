//! Online garbage collection: removes the manifests nothing keeps and the
//! blobs no manifest references, while pushes, pulls and mounts go on
//! (ARCHITECTURE.md, "Garbage collection").
//!
//! A run ([`GarbageCollector::collect`], the `garbage-collection` job):
//!
//! 1. **resuming**: blobs a stopped run marked and whose deadline has
//!    passed are marked again and their deletes finished;
//! 2. **manifests**: per repository, the manifests no tag, tag history,
//!    kept index or kept subject reaches, past the grace period, are
//!    unlinked (parents first), then manifest rows no repository links are
//!    deleted;
//! 3. **blobs**: blobs no manifest references, past the grace period, are
//!    marked (their links removed) in one transaction per batch, their
//!    bytes deleted after that commit (in parallel), their rows last;
//! 4. **blob-links**: links of blobs still used elsewhere that no manifest
//!    of their repository references are removed.
//!
//! Every removal is decided again by the store under row locks (see
//! [`crate::metadata::garbage`]). A dry run ([`GarbageCollector::dry_run`])
//! reads the same candidates and foresees what removing the manifests would
//! free, without writing anything.
//!
//! The push path's side: [`claim_blob`] before an upload's bytes become a
//! blob, and [`BlobTouches`] for the HEADs of a push.

pub mod reachability;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::registry::Registry;
use crate::crash_points;
use crate::error::RegistryError;
use crate::metadata::garbage::{GarbageStore, GcBlob, GcProgress, GcRun};
use crate::metadata::{BlobClaim, BlobLink, MetadataError, MetadataStore, Timestamp, now};
use crate::oci::digest::Digest;
use crate::oci::names::RepositoryName;
use crate::storage::BlobStore;

/// How long a mark holds a blob (by the database's clock): an upload of the
/// same content waits for the row to go, at most this long after a run died.
pub const DELETE_WINDOW: Duration = Duration::from_secs(60);
/// For the tests only: `BERTH_TEST_GC_DELETE_WINDOW=DURATION` shortens
/// [`DELETE_WINDOW`], so that a test can see a killed run's marks finished
/// by the next run without waiting a minute.
pub const TEST_DELETE_WINDOW_VARIABLE: &str = "BERTH_TEST_GC_DELETE_WINDOW";
/// A storage delete that has not answered in this long is given up (its
/// row stays marked for the next run).
const DELETE_TIMEOUT: Duration = Duration::from_secs(10);
/// An upload completing a blob being deleted waits this long for the
/// delete to end (a batch takes well under a second), then is told to
/// retry.
const CLAIM_WAIT: Duration = Duration::from_secs(10);
const CLAIM_POLL: Duration = Duration::from_millis(50);
/// What a report lists; the counts say how many there were.
const REMOVED_LISTED: usize = 1000;
/// Progress is written to the run's row at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Repositories read per page.
const REPOSITORY_PAGE: u32 = 100;
/// Touches of blobs sent at once; more are skipped (a touch only narrows a
/// race the manifest put settles anyway).
const MAX_TOUCHES_IN_FLIGHT: usize = 1024;

/// The `gc` section of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcSettings {
    /// Nothing made or touched more recently than this is collected.
    pub blob_grace_period: Duration,
    /// Remove manifests no tag, history, index or subject keeps.
    pub delete_untagged_manifests: bool,
    /// Rows decided and removed per transaction.
    pub batch_size: u32,
    /// Storage deletes in flight at once.
    pub concurrency: usize,
    /// The share of its time a run works, in percent; it rests the rest
    /// between batches ([`Pacer`]).
    pub busy_percent: u32,
    /// How long a mark holds a blob ([`DELETE_WINDOW`]). A run sends a
    /// batch's deletes for at most half of it after it began marking the
    /// batch, each bounded by a quarter of it (at most [`DELETE_TIMEOUT`]):
    /// they are all over before the window ends and the row may be taken
    /// over.
    pub delete_window: Duration,
}

impl GcSettings {
    fn send_deletes_for(&self) -> Duration {
        self.delete_window / 2
    }

    fn delete_timeout(&self) -> Duration {
        (self.delete_window / 4).min(DELETE_TIMEOUT)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// Some storage deletes failed: those blobs stay marked (invisible) and
    /// the next run deletes them.
    #[error("{failed} blob deletes failed (the next run retries them): {first}")]
    DeletesFailed { failed: u64, first: String },
}

/// What was (or, in a dry run, would be) removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemovedKind {
    /// A manifest unlinked from a repository (its tags gone before).
    Manifest,
    /// A blob's bytes and row.
    Blob,
    /// A blob's link into a repository that no longer uses it.
    BlobLink,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    pub kind: RemovedKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// A run, or a dry run, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// The run's id (`None` for a dry run, which is not recorded).
    pub id: Option<String>,
    pub dry_run: bool,
    pub replica: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// `Succeeded`, `Failed`, `Interrupted`; `None` while it runs.
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub progress: GcProgress,
    /// The first [`REMOVED_LISTED`] things removed.
    pub removed: Vec<Removed>,
}

impl GcReport {
    /// From a recorded run.
    pub fn of_run(run: GcRun) -> GcReport {
        let removed = run
            .removed
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        GcReport {
            id: Some(run.id),
            dry_run: false,
            replica: run.replica,
            started_at: run.started_at,
            finished_at: run.finished_at,
            outcome: run.outcome,
            error: run.error,
            progress: run.progress,
            removed,
        }
    }
}

/// A run's state as it goes.
struct Run {
    id: Option<String>,
    progress: GcProgress,
    removed: Vec<Removed>,
    failed_deletes: u64,
    first_failure: Option<String>,
    recorded_at: Option<Instant>,
}

impl Run {
    fn new(id: Option<String>) -> Run {
        Run {
            id,
            progress: GcProgress {
                phase: "starting".into(),
                ..GcProgress::default()
            },
            removed: Vec::new(),
            failed_deletes: 0,
            first_failure: None,
            recorded_at: None,
        }
    }

    fn list(
        &mut self,
        kind: RemovedKind,
        repository: Option<&str>,
        digest: &Digest,
        size: Option<u64>,
    ) {
        if self.removed.len() < REMOVED_LISTED {
            self.removed.push(Removed {
                kind,
                repository: repository.map(str::to_owned),
                digest: digest.to_string(),
                size,
            });
        }
    }
}

pub struct GarbageCollector {
    store: Arc<dyn GarbageStore>,
    blobs: BlobStore,
    registry: Arc<Registry>,
    settings: GcSettings,
    replica: String,
    touches: BlobTouches,
}

impl GarbageCollector {
    pub fn new(
        store: Arc<dyn GarbageStore>,
        registry: Arc<Registry>,
        settings: GcSettings,
        replica: String,
    ) -> GarbageCollector {
        let touches = BlobTouches::new(registry.metadata().clone(), settings.blob_grace_period);
        GarbageCollector {
            store,
            blobs: registry.blob_store().clone(),
            registry,
            settings,
            replica,
            touches,
        }
    }

    pub fn settings(&self) -> &GcSettings {
        &self.settings
    }

    /// What the blob reads of a push refresh (see [`BlobTouches`]).
    pub fn touches(&self) -> &BlobTouches {
        &self.touches
    }

    /// The latest runs, newest first.
    pub async fn runs(&self, limit: u32) -> Result<Vec<GcReport>, MetadataError> {
        Ok(self
            .store
            .gc_runs(limit)
            .await?
            .into_iter()
            .map(GcReport::of_run)
            .collect())
    }

    pub async fn run(&self, id: &str) -> Result<Option<GcReport>, MetadataError> {
        Ok(self.store.gc_run(id).await?.map(GcReport::of_run))
    }

    /// One run: removes what nothing uses, recording its progress and
    /// outcome in `gc_runs`. Stopped at any await (the job's lease lost),
    /// it leaves only rows marked for deletion, which the next run
    /// finishes.
    pub async fn collect(&self) -> Result<GcReport, GcError> {
        let id = uuid::Uuid::new_v4().to_string();
        self.store.start_gc_run(&id, &self.replica).await?;
        tracing::info!(run = %id, "garbage collection started");
        let began = std::time::Instant::now();
        let running = RunningGauge::new();
        let mut run = Run::new(Some(id.clone()));
        let result = self.phases(&mut run).await;
        let result = match result {
            Ok(()) if run.failed_deletes > 0 => Err(GcError::DeletesFailed {
                failed: run.failed_deletes,
                first: run.first_failure.clone().unwrap_or_default(),
            }),
            other => other,
        };
        drop(running);
        run.progress.phase = "done".into();
        let (outcome, error) = match &result {
            Ok(()) => ("Succeeded", None),
            Err(e) => ("Failed", Some(e.to_string())),
        };
        metrics::counter!("berth_gc_runs_total", "outcome" => outcome).increment(1);
        metrics::histogram!("berth_gc_run_seconds").record(began.elapsed().as_secs_f64());
        let listed = serde_json::to_string(&run.removed).unwrap_or_else(|_| "[]".into());
        if let Err(e) = self
            .store
            .finish_gc_run(&id, &run.progress, outcome, error.as_deref(), &listed)
            .await
        {
            tracing::warn!(run = %id, error = %e, "could not record the garbage collection's outcome");
        }
        let p = &run.progress;
        tracing::info!(
            run = %id,
            outcome,
            manifests_removed = p.manifests_removed,
            blobs_removed = p.blobs_removed,
            links_removed = p.links_removed,
            bytes_freed = p.bytes_freed,
            seconds = began.elapsed().as_secs_f64(),
            "garbage collection finished"
        );
        result?;
        Ok(self
            .store
            .gc_run(&id)
            .await?
            .map(GcReport::of_run)
            .unwrap_or_else(|| self.report_of(run, false)))
    }

    fn report_of(&self, run: Run, dry_run: bool) -> GcReport {
        GcReport {
            id: run.id,
            dry_run,
            replica: self.replica.clone(),
            started_at: now(),
            finished_at: Some(now()),
            outcome: Some("Succeeded".into()),
            error: None,
            progress: run.progress,
            removed: run.removed,
        }
    }

    async fn phases(&self, run: &mut Run) -> Result<(), GcError> {
        let cutoff = Cutoff::starting_now(self.settings.blob_grace_period);
        let batch = self.settings.batch_size.max(1);
        self.refresh_statistics().await;
        run.progress.blobs_examined = self.store.count_blobs().await?;
        metrics::counter!("berth_gc_blobs_examined_total").increment(run.progress.blobs_examined);

        let mut pacer = Pacer::new(self.settings.busy_percent);
        // Expired tags first: their rows go (their history stays, keeping
        // their images until a pruner decides), so the phases below see
        // the repository as pulls do.
        self.enter(run, "expired-tags").await?;
        loop {
            pacer.rest().await;
            let expired = self.registry.remove_expired_tags(batch).await?;
            if (expired.len() as u32) < batch {
                break;
            }
        }

        self.enter(run, "resuming").await?;
        loop {
            pacer.rest().await;
            let marking = Instant::now();
            let blobs = self
                .store
                .remark_abandoned_blobs(batch, self.settings.delete_window)
                .await?;
            if blobs.is_empty() {
                break;
            }
            tracing::info!(
                blobs = blobs.len(),
                "finishing the deletes of an interrupted garbage collection"
            );
            self.delete_marked(run, blobs, marking).await?;
        }

        if self.settings.delete_untagged_manifests {
            self.enter(run, "manifests").await?;
            let mut after = 0;
            loop {
                let repositories = self.store.gc_repositories(after, REPOSITORY_PAGE).await?;
                let Some((last, _)) = repositories.last() else {
                    break;
                };
                after = *last;
                for (id, name) in repositories {
                    pacer.rest().await;
                    let graph = self
                        .store
                        .repository_graph(id, &name, cutoff.grace())
                        .await?;
                    let examined = graph.links.len() as u64;
                    run.progress.manifests_examined += examined;
                    metrics::counter!("berth_gc_manifests_examined_total").increment(examined);
                    let garbage = reachability::garbage_in_order(&graph);
                    for chunk in garbage.chunks(batch as usize) {
                        let removed = self
                            .store
                            .delete_manifest_links(id, chunk, cutoff.grace())
                            .await?;
                        if removed.is_empty() {
                            continue;
                        }
                        // Other replicas hear of it from the database
                        // (PostgreSQL's notifications); this one now.
                        if let Ok(repo) = name.parse::<RepositoryName>() {
                            self.registry.forget_repository(&repo);
                        }
                        run.progress.manifests_removed += removed.len() as u64;
                        metrics::counter!("berth_gc_manifests_removed_total")
                            .increment(removed.len() as u64);
                        for digest in &removed {
                            run.list(RemovedKind::Manifest, Some(&name), digest, None);
                        }
                    }
                    self.record(run, false).await;
                }
            }
            let mut after: Option<Digest> = None;
            loop {
                pacer.rest().await;
                let orphans = self.store.orphan_manifests(after.as_ref(), batch).await?;
                let Some(last) = orphans.last() else {
                    break;
                };
                after = Some(last.clone());
                let deleted = self.store.delete_orphan_manifests(&orphans).await?;
                if !deleted.is_empty() {
                    tracing::debug!(
                        manifests = deleted.len(),
                        "deleted manifests no repository holds"
                    );
                }
            }
        }

        self.enter(run, "blobs").await?;
        let mut after: Option<Digest> = None;
        loop {
            pacer.rest().await;
            let candidates = self
                .store
                .unreferenced_blobs(after.as_ref(), batch, cutoff.grace())
                .await?;
            let Some(last) = candidates.last() else {
                break;
            };
            after = Some(last.digest.clone());
            let digests: Vec<Digest> = candidates.into_iter().map(|b| b.digest).collect();
            let marking = Instant::now();
            let marked = self
                .store
                .mark_blobs(&digests, cutoff.grace(), self.settings.delete_window)
                .await?;
            if marked.is_empty() {
                continue;
            }
            crash_points::reached(crash_points::GC_AFTER_MARK);
            self.delete_marked(run, marked, marking).await?;
            self.record(run, false).await;
        }

        self.enter(run, "blob-links").await?;
        let mut after: Option<(i64, Digest)> = None;
        loop {
            pacer.rest().await;
            let links = self
                .store
                .unreferenced_blob_links(
                    after.as_ref().map(|(id, d)| (*id, d)),
                    batch,
                    cutoff.grace(),
                )
                .await?;
            let Some(last) = links.last() else {
                break;
            };
            after = Some((last.repository_id, last.digest.clone()));
            let mut by_repository: BTreeMap<(i64, String), Vec<Digest>> = BTreeMap::new();
            for link in links {
                by_repository
                    .entry((link.repository_id, link.repository))
                    .or_default()
                    .push(link.digest);
            }
            for ((id, name), digests) in by_repository {
                let removed = self
                    .store
                    .delete_blob_links(id, &digests, cutoff.grace())
                    .await?;
                run.progress.links_removed += removed.len() as u64;
                metrics::counter!("berth_gc_blob_links_removed_total")
                    .increment(removed.len() as u64);
                for digest in &removed {
                    run.list(RemovedKind::BlobLink, Some(&name), digest, None);
                }
            }
            self.record(run, false).await;
        }
        Ok(())
    }

    /// Deletes the bytes of blobs just marked (from `marking`, taken before
    /// the mark was sent), then their rows. A delete not sent in time, or
    /// failed, leaves its row marked for the next run.
    async fn delete_marked(
        &self,
        run: &mut Run,
        marked: Vec<GcBlob>,
        marking: Instant,
    ) -> Result<(), GcError> {
        let deadline = marking + self.settings.send_deletes_for();
        let timeout = self.settings.delete_timeout();
        if self.deleted_in_batches(&marked, deadline).await {
            return self.swept(run, marked).await;
        }
        let outcomes: Vec<(GcBlob, Result<(), String>)> = futures::stream::iter(marked)
            .map(|blob| async move {
                if Instant::now() >= deadline {
                    return (
                        blob,
                        Err("not sent: the batch's time for deletes ran out".to_owned()),
                    );
                }
                metrics::counter!("berth_gc_delete_requests_total", "way" => "one").increment(1);
                let deleted =
                    tokio::time::timeout(timeout, self.blobs.delete_blob(&blob.digest)).await;
                let outcome = match deleted {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) if e.is_not_found() => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {timeout:?}")),
                };
                (blob, outcome)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let mut deleted = Vec::new();
        for (blob, outcome) in outcomes {
            match outcome {
                Ok(()) => deleted.push(blob),
                Err(e) => {
                    tracing::warn!(digest = %blob.digest, error = %e, "deleting a garbage blob's bytes failed; the next run retries");
                    metrics::counter!("berth_gc_blob_delete_failures_total").increment(1);
                    run.failed_deletes += 1;
                    if run.first_failure.is_none() {
                        run.first_failure = Some(format!("{}: {e}", blob.digest));
                    }
                }
            }
        }
        self.swept(run, deleted).await
    }

    /// Deletes the marked blobs' bytes with the store's batch delete, where
    /// it has one: an object store then takes a few requests for a batch,
    /// not one each (less work for it and for berth, while clients use
    /// both). `true` when all are gone; `false` where the store has none,
    /// or the batch failed or ran past the deadline: the blobs are then
    /// deleted one by one, which tells which of them failed.
    async fn deleted_in_batches(&self, marked: &[GcBlob], deadline: Instant) -> bool {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return false;
        };
        let digests: Vec<Digest> = marked.iter().map(|b| b.digest.clone()).collect();
        let batch = self.blobs.delete_blobs_in_batches(&digests);
        let outcome = tokio::time::timeout(left, batch).await;
        if !matches!(outcome, Ok(None)) {
            metrics::counter!("berth_gc_delete_requests_total", "way" => "batch").increment(1);
        }
        match outcome {
            Ok(None) => false,
            Ok(Some(Ok(()))) => true,
            Ok(Some(Err(e))) => {
                tracing::info!(blobs = marked.len(), error = %e, "a batch delete failed; deleting the blobs one by one");
                false
            }
            Err(_) => {
                tracing::info!(
                    blobs = marked.len(),
                    "a batch delete had no answer in time; deleting the blobs one by one"
                );
                false
            }
        }
    }

    /// The planner's statistics, for the queries below: without them a
    /// run still works, only more slowly, so a failure is logged.
    async fn refresh_statistics(&self) {
        if let Err(e) = self.store.refresh_statistics().await {
            tracing::warn!(error = %e, "refreshing the database's statistics before garbage collection");
        }
    }

    /// Sweeps the rows of blobs whose bytes are gone, and counts them.
    async fn swept(&self, run: &mut Run, deleted: Vec<GcBlob>) -> Result<(), GcError> {
        let sizes: HashMap<Digest, u64> =
            deleted.iter().map(|b| (b.digest.clone(), b.size)).collect();
        let deleted: Vec<Digest> = deleted.into_iter().map(|b| b.digest).collect();
        let swept = self.store.sweep_blobs(&deleted).await?;
        let freed: u64 = swept.iter().filter_map(|d| sizes.get(d)).sum();
        run.progress.blobs_removed += swept.len() as u64;
        run.progress.bytes_freed += freed;
        metrics::counter!("berth_gc_blobs_removed_total").increment(swept.len() as u64);
        metrics::counter!("berth_gc_bytes_freed_total").increment(freed);
        for digest in &swept {
            run.list(RemovedKind::Blob, None, digest, sizes.get(digest).copied());
        }
        Ok(())
    }

    async fn enter(&self, run: &mut Run, phase: &str) -> Result<(), GcError> {
        run.progress.phase = phase.to_owned();
        self.record(run, true).await;
        Ok(())
    }

    /// Writes the run's progress, at most every [`PROGRESS_EVERY`] unless
    /// `now`. A failure to write it is logged: progress is for people.
    async fn record(&self, run: &mut Run, now: bool) {
        let Some(id) = run.id.clone() else {
            return;
        };
        if !now
            && run
                .recorded_at
                .is_some_and(|at| at.elapsed() < PROGRESS_EVERY)
        {
            return;
        }
        run.recorded_at = Some(Instant::now());
        if let Err(e) = self.store.record_gc_progress(&id, &run.progress).await {
            tracing::debug!(run = %id, error = %e, "could not record the garbage collection's progress");
        }
    }

    /// What a run would remove now, without removing anything: the same
    /// candidates, and the blobs that removing the manifests would leave
    /// unreferenced.
    pub async fn dry_run(&self) -> Result<GcReport, GcError> {
        self.dry_run_without(&HashMap::new()).await
    }

    /// A dry run as if the tag histories no longer named `unnamed` (per
    /// repository id): what a run would remove after the pruner's trimming.
    pub async fn dry_run_without(
        &self,
        unnamed: &HashMap<i64, HashSet<Digest>>,
    ) -> Result<GcReport, GcError> {
        let grace = self.settings.blob_grace_period;
        let batch = self.settings.batch_size.max(1);
        let started_at = now();
        let mut run = Run::new(None);
        self.refresh_statistics().await;
        run.progress.blobs_examined = self.store.count_blobs().await?;

        // Manifests, and those that would then be in no repository.
        let mut unlinked: HashMap<Digest, u64> = HashMap::new();
        let mut gone: HashSet<Digest> = HashSet::new();
        if self.settings.delete_untagged_manifests {
            let mut after = 0;
            loop {
                let repositories = self.store.gc_repositories(after, REPOSITORY_PAGE).await?;
                let Some((last, _)) = repositories.last() else {
                    break;
                };
                after = *last;
                for (id, name) in repositories {
                    let mut graph = self.store.repository_graph(id, &name, grace).await?;
                    if let Some(unnamed) = unnamed.get(&id) {
                        graph.named.retain(|digest| !unnamed.contains(digest));
                    }
                    run.progress.manifests_examined += graph.links.len() as u64;
                    for digest in reachability::garbage_in_order(&graph) {
                        run.progress.manifests_removed += 1;
                        run.list(RemovedKind::Manifest, Some(&name), &digest, None);
                        *unlinked.entry(digest).or_default() += 1;
                    }
                }
            }
            let candidates: Vec<Digest> = unlinked.keys().cloned().collect();
            let links = self.store.manifest_link_counts(&candidates).await?;
            gone.extend(
                unlinked
                    .iter()
                    .filter(|(digest, n)| links.get(*digest) == Some(n))
                    .map(|(digest, _)| digest.clone()),
            );
            let mut after: Option<Digest> = None;
            loop {
                let orphans = self.store.orphan_manifests(after.as_ref(), batch).await?;
                let Some(last) = orphans.last() else {
                    break;
                };
                after = Some(last.clone());
                gone.extend(orphans);
            }
        }

        // Blobs unreferenced now.
        let mut blobs: HashSet<Digest> = HashSet::new();
        let mut after: Option<Digest> = None;
        loop {
            let page = self
                .store
                .unreferenced_blobs(after.as_ref(), batch, grace)
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.digest.clone());
            for blob in page {
                run.progress.blobs_removed += 1;
                run.progress.bytes_freed += blob.size;
                run.list(RemovedKind::Blob, None, &blob.digest, Some(blob.size));
                blobs.insert(blob.digest);
            }
        }
        // Blobs only the manifests going away reference.
        let gone_list: Vec<Digest> = gone.iter().cloned().collect();
        let children: Vec<Digest> = self
            .store
            .references_of(&gone_list)
            .await?
            .into_iter()
            .map(|(_, child)| child)
            .filter(|child| !blobs.contains(child))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut kept_by_other: HashSet<Digest> = HashSet::new();
        for (child, manifest) in self.store.references_to(&children).await? {
            if !gone.contains(&manifest) {
                kept_by_other.insert(child);
            }
        }
        let freed: Vec<Digest> = children
            .into_iter()
            .filter(|c| !kept_by_other.contains(c))
            .collect();
        for row in self.store.blob_rows(&freed, grace).await? {
            if row.collectable {
                run.progress.blobs_removed += 1;
                run.progress.bytes_freed += row.blob.size;
                run.list(
                    RemovedKind::Blob,
                    None,
                    &row.blob.digest,
                    Some(row.blob.size),
                );
                blobs.insert(row.blob.digest);
            }
        }

        // Links of blobs that stay, unused in their repository now.
        let mut after: Option<(i64, Digest)> = None;
        loop {
            let links = self
                .store
                .unreferenced_blob_links(after.as_ref().map(|(id, d)| (*id, d)), batch, grace)
                .await?;
            let Some(last) = links.last() else {
                break;
            };
            after = Some((last.repository_id, last.digest.clone()));
            for link in links.into_iter().filter(|l| !blobs.contains(&l.digest)) {
                run.progress.links_removed += 1;
                run.list(
                    RemovedKind::BlobLink,
                    Some(&link.repository),
                    &link.digest,
                    None,
                );
            }
        }
        run.progress.phase = "done".into();
        let mut report = self.report_of(run, true);
        report.started_at = started_at;
        Ok(report)
    }
}

/// What a run may remove: what was untouched for the grace period when the
/// run began. Measured from the run's start rather than from each query, so
/// that a run ends while clients keep making garbage: what they leave after
/// it began is the next run's (otherwise a phase could chase a steady stream
/// of new garbage for as long as clients push and delete).
#[derive(Debug, Clone, Copy)]
struct Cutoff {
    grace: Duration,
    run_began: Instant,
}

impl Cutoff {
    fn starting_now(grace: Duration) -> Cutoff {
        Cutoff {
            grace,
            run_began: Instant::now(),
        }
    }

    /// The grace period to ask the store for now: the configured one plus
    /// the run's age.
    fn grace(&self) -> Duration {
        self.grace + self.run_began.elapsed()
    }
}

/// Keeps a run to its share of the time: before each batch, rests in
/// proportion to the work done since the last rest (at 10%, nine times as
/// long), so that a run yields the CPU, the disk and the database to
/// clients however much it has to remove. The pruner's trimming keeps to
/// the same share.
pub(crate) struct Pacer {
    busy_percent: u32,
    working_since: Instant,
}

impl Pacer {
    pub(crate) fn new(busy_percent: u32) -> Pacer {
        Pacer {
            busy_percent: busy_percent.clamp(1, 100),
            working_since: Instant::now(),
        }
    }

    pub(crate) async fn rest(&mut self) {
        if self.busy_percent < 100 {
            let worked = self.working_since.elapsed();
            let rest = worked * (100 - self.busy_percent) / self.busy_percent;
            tokio::time::sleep(rest).await;
        }
        self.working_since = Instant::now();
    }
}

/// `berth_gc_running` is 1 while a run is under way in this replica.
struct RunningGauge;

impl RunningGauge {
    fn new() -> RunningGauge {
        metrics::gauge!("berth_gc_running").set(1.0);
        RunningGauge
    }
}

impl Drop for RunningGauge {
    fn drop(&mut self) {
        metrics::gauge!("berth_gc_running").set(0.0);
    }
}

/// Before an upload's bytes become the blob `digest`: claims the blob's row
/// ([`MetadataStore::claim_blob`]). If garbage collection is deleting an
/// earlier copy right now, waits for that delete to end (well under a
/// second normally), at most [`CLAIM_WAIT`]; then the client is told to
/// retry, its upload intact.
pub async fn claim_blob(
    metadata: &dyn MetadataStore,
    digest: &Digest,
    size: u64,
) -> Result<(), RegistryError> {
    let started = Instant::now();
    let mut waited = false;
    loop {
        match metadata.claim_blob(digest, size).await? {
            BlobClaim::Claimed => {
                if waited {
                    tracing::info!(%digest, waited = ?started.elapsed(), "an upload waited for garbage collection to delete an earlier copy of its blob");
                }
                return Ok(());
            }
            BlobClaim::BeingDeleted { .. } if started.elapsed() < CLAIM_WAIT => {
                if !waited {
                    metrics::counter!("berth_gc_upload_waits_total").increment(1);
                    waited = true;
                }
                tokio::time::sleep(CLAIM_POLL).await;
            }
            BlobClaim::BeingDeleted { .. } => {
                return Err(RegistryError::BlobBeingDeleted(digest.clone()));
            }
        }
    }
}

/// Refreshes the touch of blobs a push looks at, so that garbage
/// collection leaves them for another grace period: a client checking that
/// a layer exists (HEAD) before it puts a manifest referencing it.
///
/// Kept off the hot path: the read that answers the request already returns
/// when the blob was last touched; only a touch older than a quarter of the
/// grace period is refreshed, by a task of its own, once at a time per
/// blob and repository. A pull of the same blob a thousand times a second
/// writes nothing (and nothing more than every quarter grace period).
pub struct BlobTouches {
    metadata: Arc<dyn MetadataStore>,
    refresh_after: Duration,
    in_flight: Arc<Mutex<HashSet<(String, Digest)>>>,
}

impl BlobTouches {
    pub fn new(metadata: Arc<dyn MetadataStore>, grace: Duration) -> BlobTouches {
        BlobTouches {
            metadata,
            refresh_after: grace / 4,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Whether the link read for a request is old enough to refresh.
    pub fn is_stale(&self, link: &BlobLink) -> bool {
        let age = now().saturating_sub(link.touched_at);
        u128::try_from(age).unwrap_or(0) >= self.refresh_after.as_millis()
    }

    /// Touches the blob and its link into `repo` in the background.
    pub fn refresh(&self, repo: &RepositoryName, digest: &Digest) {
        let key = (repo.to_string(), digest.clone());
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if in_flight.len() >= MAX_TOUCHES_IN_FLIGHT || !in_flight.insert(key.clone()) {
                return;
            }
        }
        let metadata = self.metadata.clone();
        let in_flight = self.in_flight.clone();
        let older_than = self.refresh_after;
        let (repo, digest) = (repo.clone(), digest.clone());
        tokio::spawn(async move {
            match metadata.touch_blob(&repo, &digest, older_than).await {
                Ok(true) => metrics::counter!("berth_gc_blob_touches_total").increment(1),
                Ok(false) => {}
                Err(e) => tracing::debug!(%digest, error = %e, "could not refresh a blob's touch"),
            }
            in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{DatabaseConfig, SqlMetadataStore};
    use crate::oci::digest::DigestAlgorithm;

    async fn store() -> (Arc<SqlMetadataStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlMetadataStore::connect(&DatabaseConfig::Sqlite {
            path: dir.path().join("berth.db"),
        })
        .await
        .unwrap();
        (Arc::new(store), dir)
    }

    /// A blob of `app` marked for deletion, until `window` from now.
    async fn marked(store: &SqlMetadataStore, window: Duration) -> Digest {
        let digest = DigestAlgorithm::Sha256.digest_of(b"marked");
        let repo: RepositoryName = "ns/app".parse().unwrap();
        store.link_blob(&repo, &digest, 6).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let marked = store
            .mark_blobs(
                std::slice::from_ref(&digest),
                Duration::from_millis(1),
                window,
            )
            .await
            .unwrap();
        assert_eq!(marked.len(), 1);
        digest
    }

    /// An upload completing a blob that is being deleted waits for the
    /// delete to end, then claims the blob anew.
    #[tokio::test]
    async fn an_upload_waits_for_a_delete_under_way() {
        let (store, _dir) = store().await;
        let digest = marked(&store, Duration::from_secs(60)).await;
        let started = Instant::now();
        let claim = {
            let (store, digest) = (store.clone(), digest.clone());
            tokio::spawn(async move { claim_blob(store.as_ref(), &digest, 6).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!claim.is_finished(), "the claim did not wait");
        assert_eq!(
            store
                .sweep_blobs(std::slice::from_ref(&digest))
                .await
                .unwrap()
                .len(),
            1
        );
        claim.await.unwrap().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        // The row is new, live and touched: no candidate.
        assert!(
            store
                .unreferenced_blobs(None, 10, Duration::from_secs(60))
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// The run that marked it died: once its deadline has passed, the
    /// upload takes the blob over.
    #[tokio::test]
    async fn an_upload_takes_over_a_mark_past_its_deadline() {
        let (store, _dir) = store().await;
        let digest = marked(&store, Duration::from_millis(300)).await;
        let started = Instant::now();
        claim_blob(store.as_ref(), &digest, 6).await.unwrap();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < CLAIM_WAIT, "{waited:?}");
        assert_eq!(store.blobs_being_deleted().await.unwrap(), 0);
        assert!(
            store
                .sweep_blobs(std::slice::from_ref(&digest))
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// What a client leaves after a run began is the next run's, however
    /// long the run goes on: it is past the grace period by the clock, but
    /// not by the run's cutoff.
    #[tokio::test]
    async fn a_run_leaves_what_was_touched_after_it_began() {
        let (store, _dir) = store().await;
        let grace = Duration::from_millis(100);
        let run = Cutoff::starting_now(grace);
        let digest = DigestAlgorithm::Sha256.digest_of(b"late");
        let repo: RepositoryName = "ns/app".parse().unwrap();
        store.link_blob(&repo, &digest, 4).await.unwrap();
        tokio::time::sleep(grace * 3).await;

        let candidates = |grace| {
            let store = store.clone();
            async move {
                let blobs = store.unreferenced_blobs(None, 10, grace).await.unwrap();
                blobs.into_iter().map(|b| b.digest).collect::<Vec<_>>()
            }
        };
        assert_eq!(candidates(grace).await, std::slice::from_ref(&digest));
        assert!(candidates(run.grace()).await.is_empty());
        assert_eq!(
            candidates(Cutoff::starting_now(grace).grace()).await,
            [digest]
        );
    }

    #[tokio::test]
    async fn a_touch_is_stale_after_a_quarter_of_the_grace_period() {
        let (store, _dir) = store().await;
        let metadata: Arc<dyn MetadataStore> = store;
        let touches = BlobTouches::new(metadata, Duration::from_secs(3600));
        let at = |ago: i64| BlobLink {
            size: 1,
            touched_at: now() - ago,
        };
        assert!(!touches.is_stale(&at(0)));
        assert!(!touches.is_stale(&at(14 * 60 * 1000)));
        assert!(touches.is_stale(&at(15 * 60 * 1000)));
        // A clock that went back: not stale.
        assert!(!touches.is_stale(&at(-5000)));
    }
}
