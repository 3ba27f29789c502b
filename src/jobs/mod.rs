//! Background jobs. Each is a [`Worker`]: a named unit of work run on an
//! interval until shutdown, in one of two ways ([`Jobs`]):
//!
//! - **Once across the replicas** ([`Jobs::once_across_replicas`]): work on
//!   shared state (abandoned uploads, the signing key, garbage collection,
//!   scheduled imports, the image pruner; later event delivery). The job is a
//!   row of the database's `jobs` table ([`crate::metadata::jobs`]); each
//!   replica looks at it when it is due, and the one whose claim wins runs
//!   it under a lease, renewed while it runs, then records the outcome and
//!   the next run: `interval` after a success, a backoff after a failure
//!   (`jobs.retryBackoff`, doubled per failure in a row, at most
//!   `jobs.maxRetryBackoff`). The embedded database works the same way,
//!   with one replica.
//! - **In every replica** ([`Jobs::in_every_replica`]): upkeep of the
//!   process itself (metrics, the signing keys it holds in memory).
//!
//! A replica that dies holding a lease keeps it until the lease expires
//! (`jobs.lease`, 30 s, renewed every third of it); the next replica to look
//! (within `jobs.pollInterval`, 5 s) then takes the job over: at most 35 s
//! with the defaults. A run whose lease could not be renewed is stopped
//! before the lease runs out, so two replicas never run a job at once.
//!
//! Adding a job: a type implementing [`Worker`], and one line in
//! `server::start`: `jobs.once_across_replicas(MyJob::new(…), interval)`.
//! A run may be stopped at any await (lease lost, shutdown), so a job must
//! leave things consistent between its steps and pick up where it stopped.

mod garbage_collection;
mod image_pruner;
mod key_rotation;
mod memory_trim;
mod metrics_upkeep;
mod proxy_reload;
mod scheduled_imports;
mod stale_uploads;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::metadata::JobStore;
use crate::metadata::jobs::{JobClaim, JobOutcome, JobResult, JobStatus};

pub use garbage_collection::{
    CollectError, CollectThroughJob, GARBAGE_COLLECTION, GarbageCollection,
};
pub use image_pruner::{IMAGE_PRUNER, ImagePruner};
pub use key_rotation::{KeyReload, KeyRotation};
pub use memory_trim::MemoryTrim;
pub use metrics_upkeep::MetricsUpkeep;
pub use proxy_reload::ProxyReload;
pub use scheduled_imports::ScheduledImports;
pub use stale_uploads::StaleUploads;

#[async_trait]
pub trait Worker: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// One pass of the job. An error is recorded (and logged); the next pass
    /// runs after the backoff.
    async fn run_once(&self) -> anyhow::Result<()>;
}

/// The timing of the jobs that run once across the replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    /// How long a claim holds a job without renewal. Renewed every third.
    pub lease: Duration,
    /// How often a replica looks at a job that is not due by its schedule
    /// (to see a lease expire, or a job made due by `berth adm jobs run`).
    pub poll_interval: Duration,
    /// The wait after a failed run; doubled after each further failure.
    pub retry_backoff: Duration,
    /// The longest wait after failures.
    pub max_retry_backoff: Duration,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(5),
            retry_backoff: Duration::from_secs(30),
            max_retry_backoff: Duration::from_secs(3600),
        }
    }
}

impl JobSettings {
    pub fn renew_every(&self) -> Duration {
        self.lease / 3
    }

    /// The longest a job stays with a replica that died running it.
    pub fn takeover_within(&self) -> Duration {
        self.lease + self.poll_interval
    }

    /// The wait before the next run after `failures` failed runs in a row.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.retry_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_retry_backoff)
    }
}

/// `hostname-pid-random`: names this process in job leases and logs.
pub fn replica_id() -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| text.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..6])
}

/// For the tests only: `BERTH_TEST_JOB_PAUSE=NAME=DURATION[,…]` makes each
/// run of job NAME last DURATION longer, holding its lease, so that a test
/// can kill the replica running it.
pub const TEST_PAUSE_VARIABLE: &str = "BERTH_TEST_JOB_PAUSE";

fn test_pauses() -> HashMap<String, Duration> {
    let Ok(text) = std::env::var(TEST_PAUSE_VARIABLE) else {
        return HashMap::new();
    };
    let mut pauses = HashMap::new();
    for item in text.split(',').filter(|i| !i.trim().is_empty()) {
        match item
            .split_once('=')
            .and_then(|(name, d)| Some((name.trim(), humantime::parse_duration(d.trim()).ok()?)))
        {
            Some((name, pause)) => {
                tracing::warn!(
                    job = name,
                    ?pause,
                    "test setting: every run of this job is held longer"
                );
                pauses.insert(name.to_owned(), pause);
            }
            None => tracing::warn!("{TEST_PAUSE_VARIABLE}: {item:?} is not NAME=DURATION; ignored"),
        }
    }
    pauses
}

/// What the API reaches of the jobs: the store holding their status, and
/// a way to have this replica look at a job now.
pub struct JobBoard {
    store: Arc<dyn JobStore>,
    wakeups: Mutex<HashMap<&'static str, Arc<Notify>>>,
}

impl JobBoard {
    pub fn new(store: Arc<dyn JobStore>) -> JobBoard {
        JobBoard {
            store,
            wakeups: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &dyn JobStore {
        self.store.as_ref()
    }

    /// Has this replica look at the job now rather than at its next poll.
    pub fn wake(&self, name: &str) {
        let wakeups = self.wakeups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(notify) = wakeups.get(name) {
            notify.notify_one();
        }
    }

    fn wakeup_of(&self, name: &'static str) -> Arc<Notify> {
        let mut wakeups = self.wakeups.lock().unwrap_or_else(|e| e.into_inner());
        wakeups.entry(name).or_default().clone()
    }
}

/// The jobs of this replica, running until `stop` turns true.
pub struct Jobs {
    shared: Arc<Shared>,
    board: Arc<JobBoard>,
    stop: watch::Receiver<bool>,
    handles: Vec<JoinHandle<()>>,
}

struct Shared {
    store: Arc<dyn JobStore>,
    replica: String,
    settings: JobSettings,
    pauses: HashMap<String, Duration>,
}

impl Jobs {
    pub fn new(
        board: Arc<JobBoard>,
        replica: String,
        settings: JobSettings,
        stop: watch::Receiver<bool>,
    ) -> Jobs {
        Jobs {
            shared: Arc::new(Shared {
                store: board.store.clone(),
                replica,
                settings,
                pauses: test_pauses(),
            }),
            board,
            stop,
            handles: Vec::new(),
        }
    }

    /// Runs `worker` every `interval` on one replica at a time (first run
    /// at once when the job is new to the database).
    pub fn once_across_replicas<W: Worker>(&mut self, worker: W, interval: Duration) {
        let wakeup = self.board.wakeup_of(worker.name());
        let shared = self.shared.clone();
        let stop = self.stop.clone();
        self.handles.push(tokio::spawn(async move {
            shared
                .schedule(Arc::new(worker), interval, wakeup, stop)
                .await;
        }));
    }

    /// Runs `worker` every `interval` (first pass at once) in this process,
    /// whatever the other replicas do: for upkeep of the process itself.
    pub fn in_every_replica<W: Worker>(&mut self, worker: W, interval: Duration) {
        let mut stop = self.stop.clone();
        self.handles.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stopped(&mut stop) => break,
                }
                if let Err(e) = worker.run_once().await {
                    tracing::warn!(job = worker.name(), error = %format!("{e:#}"), "background job failed");
                }
            }
        }));
    }

    /// The tasks, to wait for at shutdown.
    pub fn into_handles(self) -> Vec<JoinHandle<()>> {
        self.handles
    }
}

/// Until `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// The shortest wait between two looks at a job.
const MIN_WAIT: Duration = Duration::from_millis(20);
/// Errors are stored at most this long.
const MAX_ERROR_LENGTH: usize = 2000;

/// How a run under a lease ended.
enum Ended {
    Finished(Result<anyhow::Result<()>, tokio::task::JoinError>),
    /// Another replica holds the job now.
    LeaseLost,
    /// The lease could not be renewed and was about to run out.
    LeaseRunningOut,
    Stopped,
}

impl Shared {
    /// Looks at the job whenever it may be claimable, runs it when a claim
    /// wins, until `stop`.
    async fn schedule(
        &self,
        worker: Arc<dyn Worker>,
        interval: Duration,
        wakeup: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
    ) {
        let name = worker.name();
        let mut registered = false;
        while !*stop.borrow() {
            let wait = match self
                .turn(&worker, interval, &mut registered, &mut stop)
                .await
            {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(job = name, error = %e, "could not look at the job in the database; trying again");
                    self.settings.poll_interval
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = wakeup.notified() => {}
                _ = stopped(&mut stop) => break,
            }
        }
    }

    /// One look: claims and runs the job if it is due and free. Returns how
    /// long to wait before the next look.
    async fn turn(
        &self,
        worker: &Arc<dyn Worker>,
        interval: Duration,
        registered: &mut bool,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Duration, crate::metadata::MetadataError> {
        let name = worker.name();
        if !*registered {
            self.store.register_job(name).await?;
            *registered = true;
        }
        let Some(status) = self.store.job(name).await? else {
            *registered = false;
            return Ok(MIN_WAIT);
        };
        if !status.is_claimable() {
            return Ok(self.wait_for(&status));
        }
        // Taken before the claim is sent: the lease runs from no earlier.
        let asked = Instant::now();
        let Some(claim) = self
            .store
            .claim_job(name, &self.replica, self.settings.lease)
            .await?
        else {
            // Another replica was faster.
            return Ok(MIN_WAIT);
        };
        if let Some(previous) = status.lease_holder.as_deref() {
            tracing::info!(
                job = name,
                replica = %self.replica,
                previous,
                "took the job over: the replica running it stopped renewing its lease"
            );
        }
        self.run(worker, claim, asked, interval, stop).await;
        Ok(Duration::ZERO)
    }

    /// Until the job is due, or its lease runs out; at most a poll interval.
    fn wait_for(&self, status: &JobStatus) -> Duration {
        let until = if status.is_running() {
            status.lease_until.unwrap_or(status.next_run_at)
        } else {
            status.next_run_at
        };
        let millis = u64::try_from(until.saturating_sub(status.as_of)).unwrap_or(0);
        Duration::from_millis(millis).clamp(MIN_WAIT, self.settings.poll_interval.max(MIN_WAIT))
    }

    /// Runs the claimed job, renewing its lease, and records the outcome.
    async fn run(
        &self,
        worker: &Arc<dyn Worker>,
        claim: JobClaim,
        claimed_at: Instant,
        interval: Duration,
        stop: &mut watch::Receiver<bool>,
    ) {
        let name = worker.name();
        let replica = self.replica.as_str();
        tracing::debug!(
            job = name,
            replica,
            started_ms = claim.started_at,
            "job run started"
        );
        let pause = self.pauses.get(name).copied();
        let mut work = {
            let worker = worker.clone();
            tokio::spawn(async move {
                let result = worker.run_once().await;
                if let Some(pause) = pause {
                    tokio::time::sleep(pause).await;
                }
                result
            })
        };
        let lease = self.settings.lease;
        let renew_every = self.settings.renew_every();
        let mut renewed_at = claimed_at;
        let mut next_renewal = claimed_at + renew_every;
        let ended = loop {
            // Stop short of the lease's end by a tenth, for the clocks'
            // rates and the last statement's time in flight.
            let deadline = renewed_at + lease - lease / 10;
            tokio::select! {
                joined = &mut work => break Ended::Finished(joined),
                _ = tokio::time::sleep_until(next_renewal) => {
                    let asked = Instant::now();
                    let renewal = tokio::time::timeout(
                        renew_every,
                        self.store.renew_job_lease(name, &claim.lease_id, lease),
                    );
                    match renewal.await {
                        Ok(Ok(true)) => {
                            renewed_at = asked;
                            next_renewal = asked + renew_every;
                        }
                        Ok(Ok(false)) => break Ended::LeaseLost,
                        Ok(Err(e)) => {
                            tracing::warn!(job = name, error = %e, "could not renew the job's lease");
                            next_renewal = Instant::now() + renew_every / 3;
                        }
                        Err(_) => {
                            tracing::warn!(job = name, "renewing the job's lease took too long");
                            next_renewal = Instant::now() + renew_every / 3;
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline) => break Ended::LeaseRunningOut,
                _ = stopped(stop) => break Ended::Stopped,
            }
        };
        let (outcome, error) = match ended {
            Ended::Finished(Ok(Ok(()))) => (JobOutcome::Succeeded, None),
            Ended::Finished(Ok(Err(e))) => (JobOutcome::Failed, Some(format!("{e:#}"))),
            Ended::Finished(Err(e)) => (JobOutcome::Failed, Some(format!("the job panicked: {e}"))),
            Ended::LeaseLost => {
                work.abort();
                tracing::warn!(
                    job = name,
                    replica,
                    "another replica took the job over; its run here is stopped"
                );
                return;
            }
            Ended::LeaseRunningOut => {
                work.abort();
                tracing::warn!(
                    job = name,
                    replica,
                    "the job's lease could not be renewed; its run here is stopped"
                );
                let _ = self.store.release_job(name, &claim.lease_id).await;
                return;
            }
            Ended::Stopped => {
                work.abort();
                // Due as it was: another replica takes it up without
                // waiting for the lease to run out.
                match self.store.release_job(name, &claim.lease_id).await {
                    Ok(_) => {
                        tracing::info!(job = name, "shutting down: job run stopped, lease released")
                    }
                    Err(e) => {
                        tracing::warn!(job = name, error = %e, "shutting down: could not release the job's lease")
                    }
                }
                return;
            }
        };
        let failures = claim.consecutive_failures.saturating_add(1);
        let next_run_in = match outcome {
            JobOutcome::Succeeded => interval,
            JobOutcome::Failed => self.settings.backoff(failures),
        };
        let result = JobResult {
            outcome,
            error: error.map(|mut text| {
                if text.len() > MAX_ERROR_LENGTH {
                    let mut end = MAX_ERROR_LENGTH;
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.truncate(end);
                }
                text
            }),
            next_run_in,
        };
        match self.store.finish_job(name, &claim.lease_id, &result).await {
            Ok(Some(run)) => match &result.error {
                None => tracing::debug!(
                    job = name,
                    replica,
                    started_ms = run.started_at,
                    finished_ms = run.finished_at,
                    "job run finished"
                ),
                Some(error) => tracing::warn!(
                    job = name,
                    replica,
                    started_ms = run.started_at,
                    finished_ms = run.finished_at,
                    failures,
                    retry_in = ?next_run_in,
                    error = %error,
                    "job run failed"
                ),
            },
            Ok(None) => tracing::warn!(
                job = name,
                replica,
                "the job's run ended after another replica took it over; its outcome is not recorded"
            ),
            Err(e) => tracing::warn!(
                job = name,
                error = %e,
                "could not record the job's run; it runs again once its lease runs out"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let settings = JobSettings {
            retry_backoff: Duration::from_secs(30),
            max_retry_backoff: Duration::from_secs(300),
            ..JobSettings::default()
        };
        let waits: Vec<u64> = (1..=6).map(|n| settings.backoff(n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 300, 300]);
        assert_eq!(settings.backoff(u32::MAX), Duration::from_secs(300));
        assert_eq!(
            JobSettings::default().takeover_within(),
            Duration::from_secs(35)
        );
    }

    #[test]
    fn replica_ids_name_host_and_process() {
        let a = replica_id();
        let b = replica_id();
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
    }
}
