//! Background jobs: their status, and making one due now. Cluster admins
//! only: jobs act on the whole registry.

use super::*;
use crate::metadata::JobStore;
use crate::metadata::jobs::{JobStatus, MadeDue};

impl Admin<'_> {
    pub async fn jobs(&self, store: &dyn JobStore) -> AdminResult<Vec<JobStatus>> {
        self.require_cluster_admin("list jobs").await?;
        Ok(store.jobs().await?)
    }

    pub async fn job(&self, store: &dyn JobStore, name: &str) -> AdminResult<JobStatus> {
        self.require_cluster_admin("get jobs").await?;
        store
            .job(name)
            .await?
            .ok_or_else(|| not_found("jobs", name))
    }

    /// Makes the job due now: the next replica to look at it runs it. A job
    /// running now is not queued again; the answer shows it running
    /// (`lease_holder`).
    pub async fn run_job(&self, store: &dyn JobStore, name: &str) -> AdminResult<JobStatus> {
        self.require_cluster_admin("run jobs").await?;
        let by = self.caller.principal.name();
        match store.make_job_due(name).await? {
            MadeDue::Due => tracing::info!(job = name, by = %by, "job made due now"),
            MadeDue::Running { holder } => {
                tracing::info!(job = name, by = %by, holder = %holder, "job asked to run while running: not queued again")
            }
            MadeDue::NotFound => return Err(not_found("jobs", name)),
        }
        store
            .job(name)
            .await?
            .ok_or_else(|| not_found("jobs", name))
    }
}
