//! `/api/v1/jobs`: the background jobs that run once across the replicas.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{Authenticated, Params};
use crate::admin::{Admin, AdminError};
use crate::api::AppState;
use crate::wire::{self, List};

pub(super) async fn list(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Response, AdminError> {
    let jobs = Admin::new(&app.access, &caller)
        .jobs(app.jobs.store())
        .await?;
    let items = jobs.into_iter().map(wire::Job::from).collect();
    Ok(Json(List::<wire::Job>::of("Job", items)).into_response())
}

pub(super) async fn get(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(name): Params<String>,
) -> Result<Response, AdminError> {
    let job = Admin::new(&app.access, &caller)
        .job(app.jobs.store(), &name)
        .await?;
    Ok(Json(wire::Job::from(job)).into_response())
}

/// `POST /api/v1/jobs/{name}/run`: due now. This replica looks at once;
/// whichever replica claims it first runs it.
pub(super) async fn run(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Params(name): Params<String>,
) -> Result<Response, AdminError> {
    let job = Admin::new(&app.access, &caller)
        .run_job(app.jobs.store(), &name)
        .await?;
    app.jobs.wake(&name);
    Ok(Json(wire::Job::from(job)).into_response())
}
