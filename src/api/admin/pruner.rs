//! `/api/v1/imagepruners/cluster`: the image pruner's settings, conditions
//! and runs (`PATCH` changes the settings given), and
//! `/api/v1/imagepruners/cluster/prunes`: a run by hand, a dry run unless
//! `spec.dryRun` is false. Cluster admins only.
//!
//! A dry run is answered at once and writes nothing. A run goes on in this
//! replica whether or not the request waits for it; the answer waits at
//! most [`WAIT`]: `200` once it has ended, else `202` with its progress, to
//! be followed at `…/prunes/{name}`.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio::time::Instant;

use super::garbage::removed_objects;
use super::objects::{Answer, Call, ok};
use super::{JsonBody, Params};
use crate::admin::{AdminError, rfc3339};
use crate::domain::pruner::{PruneError, PruneOptions, PruneReport, RUNS_SHOWN, Schedule};
use crate::metadata::now;
use crate::metadata::pruner::PrunerRecord;
use crate::wire::{
    self, API_VERSION, Extra, ImagePrune, ImagePruneSpec, ImagePruner, ImagePrunerSpec, ObjectMeta,
    TagEventCondition,
};

/// How long a request for a run waits for it: under the CLI's 120 s.
const WAIT: Duration = Duration::from_secs(50);
const POLL: Duration = Duration::from_millis(200);
/// The pruner's one name, as in OpenShift.
const NAME: &str = "cluster";

impl From<PruneError> for AdminError {
    fn from(e: PruneError) -> AdminError {
        match e {
            PruneError::Metadata(e) => AdminError::Store(e),
            PruneError::Invalid(message) => AdminError::Invalid(message),
            busy @ PruneError::Busy(_) => AdminError::Conflict(busy.to_string()),
            other => AdminError::Internal(other.to_string()),
        }
    }
}

fn duration_text(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

fn parse_duration(field: &str, text: &str) -> Result<Duration, AdminError> {
    crate::duration_text::parse_or_zero(text)
        .map_err(|e| AdminError::Invalid(format!("{field}: {e}")))
}

impl From<PruneReport> for ImagePrune {
    fn from(report: PruneReport) -> Self {
        // A dry run is not recorded, so it has no name to get it by.
        let name = report.id.clone().unwrap_or_default();
        let p = &report.progress;
        let options = report.options.as_ref();
        ImagePrune {
            api_version: API_VERSION.into(),
            kind: "ImagePrune".into(),
            metadata: ObjectMeta::named(&name),
            spec: ImagePruneSpec {
                dry_run: report.dry_run,
                keep_tag_revisions: options.map(|o| o.keep_tag_revisions),
                keep_younger_than_duration: options.map(|o| duration_text(o.keep_younger_than)),
                namespace: options.and_then(|o| o.namespace.clone()),
                ignore_invalid_image_references: options.map(|o| o.ignore_invalid_image_references),
            },
            status: wire::ImagePruneStatus {
                phase: p.phase.clone(),
                outcome: report.outcome.clone(),
                error: report.error.clone(),
                trigger: report.trigger.clone(),
                replica: Some(report.replica.clone()),
                start_time: Some(rfc3339(report.started_at)),
                completion_time: report.finished_at.map(rfc3339),
                revisions_removed: p.revisions_removed,
                tags_removed: p.tags_removed,
                manifests_removed: p.manifests_removed,
                blobs_removed: p.blobs_removed,
                bytes_freed: p.bytes_freed,
                garbage_collection: report.gc_run.clone(),
                revisions: report
                    .revisions
                    .iter()
                    .map(|r| wire::PrunedRevision {
                        repository: r.repository.clone(),
                        tag: r.tag.clone(),
                        generation: r.generation,
                        image: r.digest.clone(),
                        created: Some(rfc3339(r.created_at)),
                    })
                    .collect(),
                removed: report
                    .collection
                    .as_ref()
                    .map(|c| removed_objects(&c.removed))
                    .unwrap_or_default(),
            },
            extra: Extra::new(),
        }
    }
}

fn condition(
    kind: &str,
    status: bool,
    reason: &str,
    message: String,
    at: i64,
) -> TagEventCondition {
    TagEventCondition {
        condition_type: kind.into(),
        status: if status { "True" } else { "False" }.into(),
        last_transition_time: Some(rfc3339(at)),
        reason: Some(reason.into()),
        message: Some(message),
        generation: 0,
    }
}

/// The pruner as the API shows it: settings, conditions, latest runs.
fn pruner_object(record: &PrunerRecord, runs: Vec<PruneReport>) -> ImagePruner {
    let s = &record.settings;
    let schedule = s.schedule.parse::<Schedule>().ok();
    let next = schedule.as_ref().and_then(|c| c.next_after(now()));
    let mut conditions = vec![match &schedule {
        Some(_) => condition(
            "Available",
            true,
            "AsExpected",
            "the pruner's settings are valid".into(),
            record.updated_at,
        ),
        None => condition(
            "Available",
            false,
            "InvalidSchedule",
            format!("the schedule {:?} does not parse", s.schedule),
            record.updated_at,
        ),
    }];
    conditions.push(match (s.suspend, next) {
        (true, _) => condition(
            "Scheduled",
            false,
            "Suspended",
            "the pruner is suspended: no run is scheduled".into(),
            record.updated_at,
        ),
        (false, Some(at)) => condition(
            "Scheduled",
            true,
            "Scheduled",
            format!("next run at {} ({})", rfc3339(at), s.schedule),
            record.updated_at,
        ),
        (false, None) => condition(
            "Scheduled",
            false,
            "NoNextRun",
            format!("the schedule {:?} has no next time", s.schedule),
            record.updated_at,
        ),
    });
    let last_ended = runs.iter().find(|r| r.outcome.is_some());
    conditions.push(match last_ended {
        Some(run) if run.outcome.as_deref() != Some("Succeeded") => condition(
            "Failed",
            true,
            if run.outcome.as_deref() == Some("Interrupted") {
                "RunInterrupted"
            } else {
                "RunFailed"
            },
            format!(
                "run {} {}: {}",
                run.id.as_deref().unwrap_or("?"),
                run.outcome.as_deref().unwrap_or("failed").to_lowercase(),
                run.error
                    .as_deref()
                    .unwrap_or("the replica running it stopped")
            ),
            run.finished_at.unwrap_or(run.started_at),
        ),
        Some(run) => condition(
            "Failed",
            false,
            "LastRunSucceeded",
            format!("run {} succeeded", run.id.as_deref().unwrap_or("?")),
            run.finished_at.unwrap_or(run.started_at),
        ),
        None => condition(
            "Failed",
            false,
            "NoRunsYet",
            "the pruner has not run yet".into(),
            record.updated_at,
        ),
    });
    ImagePruner {
        api_version: API_VERSION.into(),
        kind: "ImagePruner".into(),
        metadata: ObjectMeta::named(NAME),
        spec: ImagePrunerSpec {
            schedule: Some(s.schedule.clone()),
            suspend: Some(s.suspend),
            keep_tag_revisions: Some(s.keep_tag_revisions),
            keep_younger_than_duration: Some(duration_text(s.keep_younger_than)),
            successful_jobs_history_limit: Some(s.successful_jobs_history_limit),
            failed_jobs_history_limit: Some(s.failed_jobs_history_limit),
            ignore_invalid_image_references: Some(s.ignore_invalid_image_references),
        },
        status: wire::ImagePrunerStatus {
            conditions,
            last_scheduled_time: (record.scheduled_through > 0)
                .then(|| rfc3339(record.scheduled_through)),
            next_scheduled_time: (!s.suspend).then_some(next).flatten().map(rfc3339),
            runs: runs.into_iter().map(ImagePrune::from).collect(),
        },
        extra: Extra::new(),
    }
}

fn only_cluster(name: &str) -> Result<(), AdminError> {
    if name == NAME {
        Ok(())
    } else {
        Err(AdminError::NotFound(format!(
            "imagepruners \"{name}\" not found (the pruner is named \"{NAME}\")"
        )))
    }
}

async fn current(call: &Call) -> Answer {
    let record = call.app.pruner.settings().await?;
    let runs = call.app.pruner.runs(RUNS_SHOWN).await?;
    ok::<ImagePruner>(pruner_object(&record, runs))
}

/// `GET /api/v1/imagepruners/{name}`.
pub(super) async fn get(call: Call, Params(name): Params<String>) -> Answer {
    call.admin().authorize_pruner("get imagepruners").await?;
    only_cluster(&name)?;
    current(&call).await
}

/// `PATCH /api/v1/imagepruners/{name}` with `{"spec": {…}}`: the fields
/// given change, the others stay.
pub(super) async fn patch(
    call: Call,
    Params(name): Params<String>,
    JsonBody(change): JsonBody<ImagePruner>,
) -> Answer {
    call.admin().authorize_pruner("patch imagepruners").await?;
    only_cluster(&name)?;
    let mut settings = call.app.pruner.settings().await?.settings;
    let spec = change.spec;
    if let Some(schedule) = spec.schedule {
        settings.schedule = schedule.trim().to_owned();
    }
    if let Some(suspend) = spec.suspend {
        settings.suspend = suspend;
    }
    if let Some(keep) = spec.keep_tag_revisions {
        settings.keep_tag_revisions = keep;
    }
    if let Some(text) = spec.keep_younger_than_duration {
        settings.keep_younger_than = parse_duration("spec.keepYoungerThanDuration", &text)?;
    }
    if let Some(limit) = spec.successful_jobs_history_limit {
        settings.successful_jobs_history_limit = limit;
    }
    if let Some(limit) = spec.failed_jobs_history_limit {
        settings.failed_jobs_history_limit = limit;
    }
    if let Some(ignore) = spec.ignore_invalid_image_references {
        settings.ignore_invalid_image_references = ignore;
    }
    let by = call.caller.principal.name();
    call.app
        .pruner
        .set_settings(&settings, Some(by.as_str()))
        .await?;
    current(&call).await
}

/// `POST /api/v1/imagepruners/{name}/prunes`: a dry run, or a run.
pub(super) async fn prune(
    call: Call,
    Params(name): Params<String>,
    JsonBody(request): JsonBody<ImagePrune>,
) -> Answer {
    call.admin().authorize_pruner("prune images").await?;
    only_cluster(&name)?;
    let settings = call.app.pruner.settings().await?.settings;
    let spec = request.spec;
    let mut options = PruneOptions::of_settings(&settings);
    if let Some(keep) = spec.keep_tag_revisions {
        options.keep_tag_revisions = keep;
    }
    if let Some(text) = &spec.keep_younger_than_duration {
        options.keep_younger_than = parse_duration("spec.keepYoungerThanDuration", text)?;
    }
    if let Some(ignore) = spec.ignore_invalid_image_references {
        options.ignore_invalid_image_references = ignore;
    }
    if let Some(namespace) = spec.namespace.filter(|ns| !ns.is_empty()) {
        if !call.app.access.policy().await?.namespace_exists(&namespace) {
            return Err(AdminError::NotFound(format!(
                "namespaces \"{namespace}\" not found"
            )));
        }
        options.namespace = Some(namespace);
    }
    let by = call.caller.principal.name();
    if spec.dry_run {
        tracing::info!(by = %by, ?options, "image prune dry run");
        return ok::<ImagePrune>(call.app.pruner.dry_run(&options).await?);
    }
    tracing::info!(by = %by, ?options, "image prune asked for");
    let before = newest_run(&call, None).await?.and_then(|r| r.id);
    let pruner = call.app.pruner.clone();
    let mut run = tokio::spawn(async move { pruner.prune(&options, "Manual").await });
    let deadline = Instant::now() + WAIT;
    let ended = tokio::select! {
        ended = &mut run => Some(ended),
        _ = tokio::time::sleep_until(deadline) => None,
    };
    let report = match ended {
        Some(Ok(Ok(report))) => report,
        // Refused before anything was recorded: the newest run is another's.
        Some(Ok(Err(busy @ PruneError::Busy(_)))) => return Err(busy.into()),
        Some(Ok(Err(e))) => match newest_run(&call, before.as_deref()).await? {
            // Recorded as failed: the run's own record says why.
            Some(report) => report,
            None => return Err(e.into()),
        },
        Some(Err(e)) => return Err(AdminError::Internal(format!("the run panicked: {e}"))),
        None => loop {
            // Still going: its record so far (it is written as it starts).
            if let Some(report) = newest_run(&call, before.as_deref()).await? {
                break report;
            }
            tokio::time::sleep(POLL).await;
        },
    };
    let status = if report.outcome.is_some() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(ImagePrune::from(report))).into_response())
}

/// The newest run, if it is not `before`.
async fn newest_run(call: &Call, before: Option<&str>) -> Result<Option<PruneReport>, AdminError> {
    Ok(call
        .app
        .pruner
        .runs(1)
        .await?
        .into_iter()
        .next()
        .filter(|r| r.id.as_deref() != before))
}

/// `GET /api/v1/imagepruners/{name}/prunes/{run}`: one run, as it goes.
pub(super) async fn get_prune(call: Call, Params((name, run)): Params<(String, String)>) -> Answer {
    call.admin().authorize_pruner("get imageprunes").await?;
    only_cluster(&name)?;
    match call.app.pruner.run(&run).await? {
        Some(report) => ok::<ImagePrune>(report),
        None => Err(AdminError::NotFound(format!(
            "imageprunes \"{run}\" not found (only the latest runs are kept)"
        ))),
    }
}
