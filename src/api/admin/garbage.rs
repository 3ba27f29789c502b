//! `/api/v1/garbagecollections`: run garbage collection (or a dry run) and
//! read its runs. Cluster admins only.
//!
//! A dry run is answered by this replica at once; it writes nothing. A real
//! run goes through the job seam, so that it runs on one replica at a time
//! whichever replica is asked: the `garbage-collection` job is made due
//! (after a run under way, if any, has ended), this replica looks at it at
//! once, and the answer waits for the run that starts then: `200` with what
//! it removed if it ends within [`WAIT`], else `202` with its progress so
//! far, to be followed at `/api/v1/garbagecollections/{name}`.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::objects::{Answer, Call, listed, ok};
use super::{JsonBody, Params};
use crate::admin::{AdminError, rfc3339};
use crate::domain::garbage::{GcError, GcReport, Removed, RemovedKind};
use crate::jobs::{CollectError, CollectThroughJob};
use crate::wire::{
    self, API_VERSION, Extra, GarbageCollection, GarbageCollectionRequest, ObjectMeta,
};

/// How long a request for a run waits for it: under the CLI's 120 s.
const WAIT: Duration = Duration::from_secs(50);
/// Runs listed.
const RUNS_LISTED: u32 = 20;

impl From<CollectError> for AdminError {
    fn from(e: CollectError) -> AdminError {
        match e {
            CollectError::Metadata(e) => AdminError::Store(e),
            other => AdminError::Conflict(other.to_string()),
        }
    }
}

impl From<GcError> for AdminError {
    fn from(e: GcError) -> AdminError {
        match e {
            GcError::Metadata(e) => AdminError::Store(e),
            other => AdminError::Internal(other.to_string()),
        }
    }
}

impl From<GcReport> for GarbageCollection {
    fn from(report: GcReport) -> Self {
        // A dry run is not recorded, so it has no name to get it by.
        let name = report.id.clone().unwrap_or_default();
        let p = &report.progress;
        GarbageCollection {
            api_version: API_VERSION.into(),
            kind: "GarbageCollection".into(),
            metadata: ObjectMeta::named(&name),
            spec: wire::GarbageCollectionSpec {
                dry_run: report.dry_run,
                extra: Extra::new(),
            },
            status: wire::GarbageCollectionStatus {
                phase: p.phase.clone(),
                outcome: report.outcome.clone(),
                error: report.error.clone(),
                replica: Some(report.replica.clone()),
                start_time: Some(rfc3339(report.started_at)),
                completion_time: report.finished_at.map(rfc3339),
                manifests_examined: p.manifests_examined,
                manifests_removed: p.manifests_removed,
                blobs_examined: p.blobs_examined,
                blobs_removed: p.blobs_removed,
                blob_links_removed: p.links_removed,
                bytes_freed: p.bytes_freed,
                removed: removed_objects(&report.removed),
                extra: Extra::new(),
            },
            extra: Extra::new(),
        }
    }
}

/// What a run removed, as the API lists it.
pub(super) fn removed_objects(removed: &[Removed]) -> Vec<wire::RemovedObject> {
    removed
        .iter()
        .map(|r| wire::RemovedObject {
            kind: match r.kind {
                RemovedKind::Manifest => "Manifest",
                RemovedKind::Blob => "Blob",
                RemovedKind::BlobLink => "BlobLink",
            }
            .to_owned(),
            repository: r.repository.clone(),
            digest: r.digest.clone(),
            size: r.size,
        })
        .collect()
}

/// `POST /api/v1/garbagecollections` with `{"dryRun": bool}`.
pub(super) async fn create(
    call: Call,
    JsonBody(request): JsonBody<GarbageCollectionRequest>,
) -> Answer {
    call.admin()
        .authorize_garbage_collection("run garbage collection")
        .await?;
    let by = call.caller.principal.name();
    if request.dry_run {
        tracing::info!(by = %by, "garbage collection dry run");
        return ok::<GarbageCollection>(call.app.garbage.dry_run().await?);
    }
    tracing::info!(by = %by, "garbage collection asked for");
    let report = CollectThroughJob::new(call.app.jobs.clone(), call.app.garbage.clone())
        .start_and_wait(WAIT)
        .await?;
    let status = if report.outcome.is_some() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(GarbageCollection::from(report))).into_response())
}

/// `GET /api/v1/garbagecollections`: the latest runs, newest first.
pub(super) async fn list(call: Call) -> Answer {
    call.admin()
        .authorize_garbage_collection("list garbage collections")
        .await?;
    listed::<GarbageCollection, _>(
        "GarbageCollection",
        call.app.garbage.runs(RUNS_LISTED).await?,
    )
}

/// `GET /api/v1/garbagecollections/{name}`: one run, as it goes.
pub(super) async fn get(call: Call, Params(name): Params<String>) -> Answer {
    call.admin()
        .authorize_garbage_collection("get garbage collections")
        .await?;
    match call.app.garbage.run(&name).await? {
        Some(run) => ok::<GarbageCollection>(run),
        None => Err(AdminError::NotFound(format!(
            "garbagecollections \"{name}\" not found"
        ))),
    }
}
