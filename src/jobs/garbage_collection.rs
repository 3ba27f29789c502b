//! Online garbage collection on a schedule (`gc.interval`), once across the
//! replicas; `berth adm gc` and the pruner make it due at once
//! ([`CollectThroughJob`]). The work is [`GarbageCollector::collect`]: a run
//! stopped midway (its lease lost, the replica killed) leaves only blobs
//! marked for deletion, which the next run, on whichever replica, finishes
//! first.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{JobBoard, Worker};
use crate::domain::garbage::{GarbageCollector, GcReport};
use crate::domain::pruner::{CollectGarbage, PruneError};
use crate::metadata::MetadataError;
use crate::metadata::jobs::MadeDue;

/// The job's name in the `jobs` table and in `berth adm jobs`.
pub const GARBAGE_COLLECTION: &str = "garbage-collection";

const POLL: Duration = Duration::from_millis(200);

pub struct GarbageCollection {
    pub collector: Arc<GarbageCollector>,
}

#[async_trait]
impl Worker for GarbageCollection {
    fn name(&self) -> &'static str {
        GARBAGE_COLLECTION
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        self.collector.collect().await?;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(
        "garbage collection is running on {holder} and did not end within {}s; \
         run it again once it has (`berth adm gc runs`)", waited.as_secs()
    )]
    Busy { holder: String, waited: Duration },
    #[error("the garbage-collection job is not registered yet; try again shortly")]
    NotRegistered,
    #[error("the garbage-collection job did not start within {}s; see `berth adm jobs`", waited.as_secs())]
    NotStarted { waited: Duration },
}

/// A run of garbage collection had through its job, so that one replica
/// at a time runs it whichever replica asks.
pub struct CollectThroughJob {
    board: Arc<JobBoard>,
    garbage: Arc<GarbageCollector>,
}

impl CollectThroughJob {
    pub fn new(board: Arc<JobBoard>, garbage: Arc<GarbageCollector>) -> CollectThroughJob {
        CollectThroughJob { board, garbage }
    }

    /// Makes the job due (after a run under way, if any, has ended), has
    /// this replica look at it at once, and waits for the run that starts
    /// then: ended, or as far as it got when `wait` is up.
    pub async fn start_and_wait(&self, wait: Duration) -> Result<GcReport, CollectError> {
        let deadline = Instant::now() + wait;
        let store = self.board.store();
        let before = loop {
            let newest = self.newest_run().await?;
            match store.make_job_due(GARBAGE_COLLECTION).await? {
                MadeDue::Due => break newest.map(|run| run.id),
                // A run under way started before this request: the one
                // asked for starts after it.
                MadeDue::Running { holder } => {
                    if Instant::now() >= deadline {
                        return Err(CollectError::Busy {
                            holder,
                            waited: wait,
                        });
                    }
                }
                MadeDue::NotFound => return Err(CollectError::NotRegistered),
            }
            tokio::time::sleep(POLL).await;
        };
        self.board.wake(GARBAGE_COLLECTION);
        loop {
            if let Some(run) = self.newest_run().await?
                && Some(&run.id) != before.as_ref()
                && (run.outcome.is_some() || Instant::now() >= deadline)
            {
                return Ok(run);
            }
            if Instant::now() >= deadline {
                return Err(CollectError::NotStarted { waited: wait });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn newest_run(&self) -> Result<Option<GcReport>, MetadataError> {
        Ok(self.garbage.runs(1).await?.into_iter().next())
    }
}

/// How long the pruner waits for its collection: a run that takes longer
/// goes on, and the pruner's run records it as not followed to its end.
const PRUNER_WAIT: Duration = Duration::from_secs(6 * 3600);

#[async_trait]
impl CollectGarbage for CollectThroughJob {
    async fn collect_now(&self) -> Result<GcReport, PruneError> {
        let report = self
            .start_and_wait(PRUNER_WAIT)
            .await
            .map_err(|e| PruneError::CollectionNotRun(e.to_string()))?;
        if report.outcome.is_none() {
            return Err(PruneError::CollectionNotRun(format!(
                "run {} still going after {}s",
                report.id.as_deref().unwrap_or("?"),
                PRUNER_WAIT.as_secs()
            )));
        }
        Ok(report)
    }
}
