//! `/api/v1/jobs`: the background jobs that run once across the replicas.

use super::Params;
use super::objects::{Answer, Call, listed, ok};
use crate::wire::Job;

pub(super) async fn list(call: Call) -> Answer {
    listed::<Job, _>("Job", call.admin().jobs(call.app.jobs.store()).await?)
}

pub(super) async fn get(call: Call, Params(name): Params<String>) -> Answer {
    ok::<Job>(call.admin().job(call.app.jobs.store(), &name).await?)
}

/// `POST /api/v1/jobs/{name}/run`: due now. This replica looks at once;
/// whichever replica claims it first runs it.
pub(super) async fn run(call: Call, Params(name): Params<String>) -> Answer {
    let job = call.admin().run_job(call.app.jobs.store(), &name).await?;
    call.app.jobs.wake(&name);
    ok::<Job>(job)
}
