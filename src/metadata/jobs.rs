//! The job seam: background jobs that run on exactly one replica at a time
//! ([`JobStore`]), kept in the `jobs` table on both engines.
//!
//! A job is a row: its name, its lease (the replica holding it, a lease id
//! unique to the claim, and until when), its last run (start, end, outcome,
//! error, the replica that ran it), its consecutive failures and its next
//! run. A replica *claims* a due job whose lease is free or expired with one
//! conditional `UPDATE`, which only one claimant can win on either engine;
//! it renews the lease while the job runs and, when the run ends, records
//! the outcome and the next run and clears the lease in one `UPDATE` that
//! names its lease id, so a replica whose lease was taken over records
//! nothing.
//!
//! Every time here is read from the database's clock (and durations are
//! added to it there), so that replicas whose clocks disagree still agree
//! on whether a lease has expired.

use std::time::Duration;

use async_trait::async_trait;

use super::{Result, Timestamp};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    Succeeded,
    Failed,
}

impl JobOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Succeeded => "succeeded",
            JobOutcome::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<JobOutcome> {
        match text {
            "succeeded" => Some(JobOutcome::Succeeded),
            "failed" => Some(JobOutcome::Failed),
            _ => None,
        }
    }
}

/// A claim won: the lease is this replica's until renewed or released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobClaim {
    /// Unique to this claim; renewing and finishing name it.
    pub lease_id: String,
    /// When the run started (the claim), by the database's clock.
    pub started_at: Timestamp,
    /// Failures in a row before this run, for the backoff after it.
    pub consecutive_failures: u32,
}

/// What a run left behind, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobResult {
    pub outcome: JobOutcome,
    /// The error of a failed run.
    pub error: Option<String>,
    /// When the job is next due, from the end of this run.
    pub next_run_in: Duration,
}

/// A run recorded by [`JobStore::finish_job`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct FinishedRun {
    #[sqlx(rename = "last_started_at")]
    pub started_at: Timestamp,
    #[sqlx(rename = "last_finished_at")]
    pub finished_at: Timestamp,
    pub next_run_at: Timestamp,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    pub name: String,
    /// The replica running it now (its lease may have expired: see
    /// `lease_until`).
    pub lease_holder: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub last_started_at: Option<Timestamp>,
    pub last_finished_at: Option<Timestamp>,
    pub last_outcome: Option<JobOutcome>,
    pub last_error: Option<String>,
    /// The replica that started the last run.
    pub last_replica: Option<String>,
    pub consecutive_failures: u32,
    /// Runs recorded (finished, successfully or not).
    pub runs: u64,
    pub next_run_at: Timestamp,
    /// The database's clock when this was read.
    pub as_of: Timestamp,
}

impl JobStatus {
    /// Held by a replica whose lease has not expired.
    pub fn is_running(&self) -> bool {
        self.lease_holder.is_some() && self.lease_until.is_some_and(|until| until > self.as_of)
    }

    /// Due and not held: a claim now would win (unless another is faster).
    pub fn is_claimable(&self) -> bool {
        !self.is_running() && self.next_run_at <= self.as_of
    }
}

/// The answer to [`JobStore::make_job_due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MadeDue {
    /// Due now; the next replica to look runs it.
    Due,
    /// Running now on this replica; a run just started is not queued again.
    Running {
        holder: String,
    },
    NotFound,
}

#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Adds the job, due at once, unless it is there already (its schedule
    /// and status are then kept).
    async fn register_job(&self, name: &str) -> Result<()>;

    /// Takes the lease of `name` for `replica` for `lease` if the job is due
    /// and its lease free or expired. `None` if it is not due, held, unknown,
    /// or another claimant won.
    async fn claim_job(
        &self,
        name: &str,
        replica: &str,
        lease: Duration,
    ) -> Result<Option<JobClaim>>;

    /// Extends the lease to `lease` from now; false if the lease is no
    /// longer this claim's (another replica took the job over).
    async fn renew_job_lease(&self, name: &str, lease_id: &str, lease: Duration) -> Result<bool>;

    /// Records the run, schedules the next and clears the lease; `None`
    /// (nothing recorded) if the lease is no longer this claim's.
    async fn finish_job(
        &self,
        name: &str,
        lease_id: &str,
        result: &JobResult,
    ) -> Result<Option<FinishedRun>>;

    /// Clears the lease without recording a run, leaving the job due (for
    /// a run stopped by shutdown: another replica takes it up at once).
    async fn release_job(&self, name: &str, lease_id: &str) -> Result<bool>;

    /// Every job, by name.
    async fn jobs(&self) -> Result<Vec<JobStatus>>;

    async fn job(&self, name: &str) -> Result<Option<JobStatus>>;

    /// Makes the job due now, unless it is running.
    async fn make_job_due(&self, name: &str) -> Result<MadeDue>;
}
