//! Blob uploads: start (with mount and single-request variants), chunk,
//! status, finish and cancel.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};

use super::{
    DOCKER_CONTENT_DIGEST, DOCKER_UPLOAD_UUID, OnRepository, V2Request, header_str, header_value,
    parse_digest,
};
use crate::api::AppState;
use crate::api::errors::upload_range_header;
use crate::api::observe::count_bytes_in;
use crate::api::range::parse_content_range;
use crate::auth::roles::Verb;
use crate::domain::quotas::{self, ByteAllowance};
use crate::domain::uploads::{ChunkRange, upload_location};
use crate::error::{RegistryError, Result};
use crate::metadata::Upload;
use crate::metadata::quotas::NamespaceQuota;
use crate::oci::digest::{Digest, DigestAlgorithm};
use crate::oci::names::RepositoryName;

/// The request body as a stream of chunks, counted for metrics.
fn body_stream(body: Body) -> impl Stream<Item = Result<bytes::Bytes, axum::Error>> + Send + Unpin {
    body.into_data_stream().inspect(|chunk| {
        if let Ok(c) = chunk {
            count_bytes_in(c.len());
        }
    })
}

/// The chunk's `Content-Range`, checked against its `Content-Length` before
/// a byte is read, so that a mismatch is refused without touching storage.
fn chunk_range(request: &V2Request) -> Result<Option<ChunkRange>> {
    let Some(text) = header_str(&request.headers, &header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let range = parse_content_range(text).ok_or_else(|| {
        RegistryError::BlobUploadInvalid(format!(
            "Content-Range {text:?} is not of the form <start>-<end>"
        ))
    })?;
    let length =
        header_str(&request.headers, &header::CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok());
    if let Some(length) = length
        && length != range.byte_count()
    {
        return Err(RegistryError::SizeInvalid(format!(
            "Content-Length {length} does not match Content-Range {text}"
        )));
    }
    Ok(Some(range))
}

/// The byte allowance a write of `digest` (if known) into `name` is held
/// to, with the size the request announces (`Content-Length`) already
/// checked against it, so that an upload too large for the quota is
/// refused before a byte is stored. `None`: nothing to hold it to (no byte
/// quota, or a blob the namespace holds already, which costs nothing).
async fn allowance_for(
    on: OnRepository<'_>,
    quota: Option<&NamespaceQuota>,
    digest: Option<&Digest>,
) -> Result<Option<ByteAllowance>> {
    let OnRepository { app, name, request } = on;
    let metadata = app.registry.metadata().as_ref();
    if let Some(digest) = digest
        && quotas::held_under_quota(metadata, quota, name, digest).await?
    {
        return Ok(None);
    }
    let announced =
        header_str(&request.headers, &header::CONTENT_LENGTH).and_then(|l| l.parse().ok());
    let allowance = quotas::byte_allowance(metadata, quota, name.namespace())
        .await?
        .map(|allowance| allowance.announced(announced));
    if let Some(allowance) = &allowance
        && let Some(announced) = announced
    {
        allowance.admit(announced)?;
    }
    Ok(allowance)
}

/// `201 Created` for a blob now in the repository.
fn created(on: OnRepository<'_>, digest: &Digest) -> Result<Response> {
    let name = on.name;
    Ok((
        StatusCode::CREATED,
        [
            (
                header::LOCATION,
                header_value(&on.app.url(&format!("/v2/{name}/blobs/{digest}")))?,
            ),
            (
                DOCKER_CONTENT_DIGEST.clone(),
                header_value(digest.as_str())?,
            ),
            (header::CONTENT_LENGTH, header_value("0")?),
        ],
    )
        .into_response())
}

/// Headers describing an upload in progress.
fn in_progress(app: &AppState, status: StatusCode, upload: &Upload, size: u64) -> Result<Response> {
    Ok((
        status,
        [
            (
                header::LOCATION,
                header_value(&app.url(&upload_location(upload)))?,
            ),
            (header::RANGE, upload_range_header(size)),
            (DOCKER_UPLOAD_UUID.clone(), header_value(&upload.id)?),
            (header::CONTENT_LENGTH, header_value("0")?),
        ],
    )
        .into_response())
}

/// `POST /v2/<name>/blobs/uploads/`
pub(super) async fn start(on: OnRepository<'_>, body: Body) -> Result<Response> {
    let OnRepository { app, name, request } = on;
    on.require(Verb::Push).await?;
    let mount = request.query.get("mount").map(parse_digest).transpose()?;
    let digest = request.query.get("digest").map(parse_digest).transpose()?;
    let algorithm = match (request.query.get("digest-algorithm"), &digest) {
        (Some(a), _) => a.parse::<DigestAlgorithm>()?,
        (None, Some(d)) => d.algorithm(),
        (None, None) => DigestAlgorithm::Sha256,
    };
    // Whatever follows writes: a mount, or an upload session.
    on.prepare_push().await?;
    let quota = on.namespace_quota().await?;
    quotas::admit_repository(app.registry.metadata().as_ref(), quota.as_ref(), name).await?;

    // A blob that is not mountable (absent, or not readable by the caller)
    // gets the spec's answer: an ordinary upload session.
    if let Some(mount) = mount
        && mount_blob(on, &mount, quota.as_ref()).await?
    {
        return created(on, &mount);
    }

    // Before the upload exists: a body announced too large for the quota
    // is refused with nothing made.
    let allowance = allowance_for(on, quota.as_ref(), digest.as_ref()).await?;
    let upload = app.uploads.start(name, algorithm).await?;
    let outcome = match &digest {
        // Single-request upload: the body is the whole blob.
        Some(digest) => app
            .uploads
            .finish_within(&upload, digest, None, body_stream(body), allowance.as_ref())
            .await
            .and_then(|_| created(on, digest)),
        None => app
            .uploads
            .append_within(&upload, None, body_stream(body), allowance.as_ref())
            .await
            .and_then(|size| in_progress(app, StatusCode::ACCEPTED, &upload, size)),
    };
    match outcome {
        Err(refused @ RegistryError::QuotaExceeded(_)) => {
            // The client was never told where this upload is: it goes.
            if let Err(e) = app.uploads.cancel(&upload).await {
                tracing::warn!(upload = %upload.id, error = %e, "cancelling an upload refused by a quota");
            }
            Err(refused)
        }
        other => other,
    }
}

/// Links `digest` into `name` from `from`, or (without `from`) from any
/// repository holding it that the caller may pull.
async fn mount_blob(
    on: OnRepository<'_>,
    digest: &Digest,
    quota: Option<&NamespaceQuota>,
) -> Result<bool> {
    let OnRepository { app, name, request } = on;
    let candidates = match request.query.get("from") {
        Some(from) => match from.parse::<RepositoryName>() {
            Ok(from) => vec![from],
            Err(_) => return Ok(false),
        },
        None => app.registry.repositories_with_blob(digest).await?,
    };
    // A blob the caller cannot read is not mounted; the spec's answer is then
    // an ordinary upload, which reveals nothing about the source.
    let mut readable = Vec::with_capacity(candidates.len());
    for repo in candidates {
        if app
            .access
            .policy_allows(&request.caller, Verb::Pull, &repo)
            .await?
        {
            readable.push(repo);
        }
    }
    Ok(app
        .registry
        .mount_blob(name, digest, &readable, quota)
        .await?
        .is_some())
}

/// The upload `id` of the repository, for a caller who may push to it.
async fn find_upload(on: OnRepository<'_>, id: &str) -> Result<Upload> {
    on.require(Verb::Push).await?;
    on.app.uploads.find(on.name, id).await
}

/// `GET <upload>`: how much has been received.
pub(super) async fn status(on: OnRepository<'_>, id: &str) -> Result<Response> {
    let upload = find_upload(on, id).await?;
    let size = on.app.uploads.size(&upload).await?;
    in_progress(on.app, StatusCode::NO_CONTENT, &upload, size)
}

/// `PATCH <upload>`: one chunk, or the whole blob streamed.
pub(super) async fn patch(on: OnRepository<'_>, id: &str, body: Body) -> Result<Response> {
    let upload = find_upload(on, id).await?;
    let range = chunk_range(on.request)?;
    // Read once for the request: the chunk is held to it as it streams,
    // with no query per piece. A refused chunk is not recorded: the
    // upload stays where it was, for the client to cancel.
    let quota = on.namespace_quota().await?;
    let allowance = allowance_for(on, quota.as_ref(), None).await?;
    let size = on
        .app
        .uploads
        .append_within(&upload, range, body_stream(body), allowance.as_ref())
        .await?;
    in_progress(on.app, StatusCode::ACCEPTED, &upload, size)
}

/// `PUT <upload>?digest=`: the last chunk (if any) and completion.
pub(super) async fn put(on: OnRepository<'_>, id: &str, body: Body) -> Result<Response> {
    let OnRepository { app, name, request } = on;
    let upload = find_upload(on, id).await?;
    let digest = request
        .query
        .get("digest")
        .ok_or_else(|| {
            RegistryError::DigestInvalid(
                "the digest parameter is required to complete an upload".into(),
            )
        })
        .and_then(parse_digest)?;
    let range = chunk_range(request)?;
    // Completing links the blob into the repository: its namespace must
    // exist (it may have been deleted since the upload started).
    on.prepare_push().await?;
    let quota = on.namespace_quota().await?;
    quotas::admit_repository(app.registry.metadata().as_ref(), quota.as_ref(), name).await?;
    let allowance = allowance_for(on, quota.as_ref(), Some(&digest)).await?;
    app.uploads
        .finish_within(
            &upload,
            &digest,
            range,
            body_stream(body),
            allowance.as_ref(),
        )
        .await?;
    created(on, &digest)
}

/// `DELETE <upload>`: cancel.
pub(super) async fn cancel(on: OnRepository<'_>, id: &str) -> Result<Response> {
    let upload = find_upload(on, id).await?;
    on.app.uploads.cancel(&upload).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
