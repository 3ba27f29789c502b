//! Blob reads (`GET`/`HEAD`, with `Range`) and deletes.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::{
    DOCKER_CONTENT_DIGEST, OnRepository, V2Request, header_str, header_value, parse_digest,
};
use crate::api::observe::count_bytes_out;
use crate::api::range::{ByteRange, parse_range};
use crate::auth::roles::Verb;
use crate::domain::pull_through::{FillReader, PulledBlob};
use crate::error::{RegistryError, Result};
use crate::oci::digest::Digest;

pub(super) async fn get(on: OnRepository<'_>, digest: &str) -> Result<Response> {
    let OnRepository { app, name, request } = on;
    on.require(Verb::Pull).await?;
    let digest = parse_digest(digest)?;
    let size = match app.registry.blob_link(name, &digest).await? {
        Some(link) => {
            app.pull_through.served_locally(name);
            // A push checks with HEAD that a layer exists before it puts a
            // manifest referencing it: garbage collection leaves the blob
            // for another grace period. A GET refreshes only for callers
            // who may push (a push reading back what it uploaded); pulls
            // write nothing. The check and the write happen only when the
            // touch read is stale.
            let touches = app.garbage.touches();
            if touches.is_stale(&link)
                && (request.method == Method::HEAD
                    || app
                        .access
                        .check(&request.caller, Verb::Push, name)
                        .await
                        .is_ok())
            {
                touches.refresh(name, &digest);
            }
            link.size
        }
        None => match app.pull_through.blob(name, &digest).await? {
            None => return Err(RegistryError::BlobUnknown(digest)),
            Some(PulledBlob::Linked(size)) => size,
            Some(PulledBlob::Filling(fill)) => return from_fill(fill, &digest, request).await,
        },
    };

    let range = parse_range(header_str(&request.headers, &header::RANGE), size);
    let (status, bytes) = match range {
        ByteRange::Whole => (StatusCode::OK, 0..size),
        ByteRange::Partial(r) => (StatusCode::PARTIAL_CONTENT, r),
        ByteRange::Unsatisfiable => return Err(RegistryError::RangeNotSatisfiable { size }),
    };
    if request.method == Method::GET
        && app.redirect_blob_reads
        && !bytes.is_empty()
        && let Some(url) = app.registry.blob_read_url(&digest).await
    {
        // The client sends its Range header again to the store.
        metrics::counter!("berth_blob_redirects_total").increment(1);
        return Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(header::LOCATION, header_value(url.as_str())?)
            .header(
                DOCKER_CONTENT_DIGEST.clone(),
                header_value(digest.as_str())?,
            )
            .body(Body::empty())
            .map_err(|e| RegistryError::Internal(e.to_string()));
    }
    let builder = blob_headers(status, &digest, &bytes, size)?;
    let body = if request.method == Method::HEAD || bytes.is_empty() {
        Body::empty()
    } else {
        let index = request.sends_from_file.as_ref().map(|s| s.0.clone());
        let stream = app.registry.read_blob(&digest, bytes, index).await?;
        Body::from_stream(stream.inspect(|chunk| {
            if let Ok(c) = chunk {
                count_bytes_out(c.len());
            }
        }))
    };
    builder
        .body(body)
        .map_err(|e| RegistryError::Internal(e.to_string()))
}

/// A blob being fetched from its upstream (pull-through): answered once
/// the upstream said its size, its bytes streamed as they arrive. Never
/// redirected: the store does not hold it yet.
async fn from_fill(mut fill: FillReader, digest: &Digest, request: &V2Request) -> Result<Response> {
    let size = fill.size().await?;
    let range = parse_range(header_str(&request.headers, &header::RANGE), size);
    let (status, bytes) = match range {
        ByteRange::Whole => (StatusCode::OK, 0..size),
        ByteRange::Partial(r) => (StatusCode::PARTIAL_CONTENT, r),
        ByteRange::Unsatisfiable => return Err(RegistryError::RangeNotSatisfiable { size }),
    };
    let builder = blob_headers(status, digest, &bytes, size)?;
    let body = if request.method == Method::HEAD || bytes.is_empty() {
        Body::empty()
    } else {
        let index = request.sends_from_file.as_ref().map(|s| s.0.clone());
        Body::from_stream(fill.read(bytes, index).inspect(|chunk| {
            if let Ok(c) = chunk {
                count_bytes_out(c.len());
            }
        }))
    };
    builder
        .body(body)
        .map_err(|e| RegistryError::Internal(e.to_string()))
}

/// The headers of a blob's (or a range of it) answer.
fn blob_headers(
    status: StatusCode,
    digest: &Digest,
    bytes: &std::ops::Range<u64>,
    size: u64,
) -> Result<axum::http::response::Builder> {
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, bytes.end - bytes.start)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, header_value(&format!("\"{digest}\""))?)
        .header(header::CACHE_CONTROL, "max-age=31536000")
        .header(
            DOCKER_CONTENT_DIGEST.clone(),
            header_value(digest.as_str())?,
        );
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {}-{}/{size}", bytes.start, bytes.end - 1))?,
        );
    }
    Ok(builder)
}

pub(super) async fn delete(on: OnRepository<'_>, digest: &str) -> Result<Response> {
    on.require(Verb::Delete).await?;
    let digest = parse_digest(digest)?;
    on.app.registry.delete_blob(on.name, &digest).await?;
    Ok((
        StatusCode::ACCEPTED,
        [(
            DOCKER_CONTENT_DIGEST.clone(),
            header_value(digest.as_str())?,
        )],
    )
        .into_response())
}
