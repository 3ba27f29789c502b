//! Manifest reads, pushes (with `?tag=` parameters) and deletes.

use axum::body::Body;
use axum::http::{HeaderName, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::{DOCKER_CONTENT_DIGEST, OnRepository, header_str, header_value};
use crate::auth::roles::Verb;
use crate::domain::manifest::MAX_MANIFEST_SIZE;
use crate::domain::negotiation::Accepted;
use crate::error::{RegistryError, Result};
use crate::metadata::ManifestMeta;
use crate::metadata::image_streams::{RevisionCause, RevisionOrigin};
use crate::oci::names::{Reference, Tag};

static OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
static OCI_TAG: HeaderName = HeaderName::from_static("oci-tag");

/// Tags one push may set through `?tag=` (the spec asks for at least 10).
const MAX_TAG_PARAMETERS: usize = 100;

/// A reference in a read: an invalid tag names nothing (404), an invalid
/// digest is a bad request (400).
fn read_reference(reference: &str) -> Result<Reference> {
    match reference.parse::<Reference>() {
        Ok(r) => Ok(r),
        Err(crate::oci::names::ReferenceError::Tag(_)) => {
            Err(RegistryError::ManifestUnknown(reference.to_owned()))
        }
        Err(e) => Err(e.into()),
    }
}

fn manifest_headers(meta: &ManifestMeta) -> Result<[(HeaderName, axum::http::HeaderValue); 4]> {
    Ok([
        (header::CONTENT_TYPE, header_value(&meta.media_type)?),
        (
            header::CONTENT_LENGTH,
            header_value(&meta.size.to_string())?,
        ),
        (
            DOCKER_CONTENT_DIGEST.clone(),
            header_value(meta.digest.as_str())?,
        ),
        (header::ETAG, header_value(&format!("\"{}\"", meta.digest))?),
    ])
}

/// `GET`/`HEAD /v2/<name>/manifests/<reference>`
pub(super) async fn get(on: OnRepository<'_>, reference: &str) -> Result<Response> {
    let OnRepository { app, name, request } = on;
    on.require(Verb::Pull).await?;
    let reference = read_reference(reference)?;
    let accepted = Accepted::from_headers(
        request
            .headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    app.pull_through.refresh_proxied(name, &reference).await?;
    if request.method == Method::HEAD {
        let meta = app
            .registry
            .negotiated_manifest_meta(name, &reference, &accepted)
            .await?;
        return Ok((StatusCode::OK, manifest_headers(&meta)?).into_response());
    }
    let stored = app
        .registry
        .negotiated_manifest(name, &reference, &accepted)
        .await?;
    let headers = manifest_headers(&stored.meta)?;
    Ok((StatusCode::OK, headers, Body::from(stored.content)).into_response())
}

/// `PUT /v2/<name>/manifests/<reference>[?tag=…]`
pub(super) async fn put(on: OnRepository<'_>, reference: &str, body: Body) -> Result<Response> {
    let OnRepository { app, name, request } = on;
    on.require(Verb::Push).await?;
    let reference: Reference = reference.parse()?;
    let tags = request
        .query
        .all("tag")
        .map(|t| t.parse::<Tag>())
        .collect::<Result<Vec<_>, _>>()?;
    if tags.len() > MAX_TAG_PARAMETERS {
        return Err(RegistryError::Unsupported(format!(
            "at most {MAX_TAG_PARAMETERS} tag parameters per push"
        )));
    }
    if let Some(length) =
        header_str(&request.headers, &header::CONTENT_LENGTH).and_then(|l| l.parse::<usize>().ok())
        && length > MAX_MANIFEST_SIZE
    {
        return Err(RegistryError::ManifestTooLarge {
            limit: MAX_MANIFEST_SIZE,
        });
    }
    let content_type = header_str(&request.headers, &header::CONTENT_TYPE).map(str::to_owned);
    // Bodies may come chunked without a length: cap what is read.
    let limited = http_body_util::Limited::new(body, MAX_MANIFEST_SIZE);
    let content = match limited.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(RegistryError::ManifestTooLarge {
                limit: MAX_MANIFEST_SIZE,
            });
        }
        Err(e) => {
            return Err(RegistryError::ManifestInvalid(format!(
                "reading the manifest: {e}"
            )));
        }
    };
    let valid = app
        .registry
        .validate_manifest(name, &reference, content_type.as_deref(), content, tags)
        .await?;
    // Storing it is the first write of a push made of this manifest alone.
    on.prepare_push().await?;
    let quota = on.namespace_quota().await?;
    app.registry
        .admit_manifest(name, &valid, quota.as_ref())
        .await?;
    let origin = RevisionOrigin {
        cause: RevisionCause::Push,
        by: (!request.caller.is_anonymous()).then(|| request.caller.principal.name()),
        address: request.client_address.map(|a| a.to_string()),
        source: None,
    };
    let pushed = app.registry.store_manifest(name, valid, &origin).await?;

    let mut response = (
        StatusCode::CREATED,
        [
            (
                header::LOCATION,
                header_value(&app.url(&format!("/v2/{name}/manifests/{}", pushed.digest)))?,
            ),
            (
                DOCKER_CONTENT_DIGEST.clone(),
                header_value(pushed.digest.as_str())?,
            ),
            (header::CONTENT_LENGTH, header_value("0")?),
        ],
    )
        .into_response();
    let headers = response.headers_mut();
    if let Some(subject) = &pushed.subject {
        headers.insert(OCI_SUBJECT.clone(), header_value(subject.as_str())?);
    }
    if matches!(reference, Reference::Digest(_)) && !pushed.tags.is_empty() {
        let list: Vec<&str> = pushed.tags.iter().map(Tag::as_str).collect();
        headers.insert(OCI_TAG.clone(), header_value(&list.join(", "))?);
    }
    Ok(response)
}

/// `DELETE /v2/<name>/manifests/<reference>`: a tag, or a manifest and its tags.
pub(super) async fn delete(on: OnRepository<'_>, reference: &str) -> Result<Response> {
    on.require(Verb::Delete).await?;
    let reference = read_reference(reference)?;
    on.app.registry.delete_manifest(on.name, &reference).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
