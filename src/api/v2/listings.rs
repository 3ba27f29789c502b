//! Listings: the catalog, tags of a repository, and referrers of a manifest.

use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{OnRepository, V2Request, header_value, next_link, parse_digest};
use crate::api::AppState;
use crate::auth::roles::Verb;
use crate::domain::manifest::OCI_INDEX;
use crate::error::{RegistryError, Result};

static OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

/// Page size of the catalog when the client does not say.
const DEFAULT_CATALOG_PAGE: u32 = 100;
/// Largest page served; larger requests get this many and a `Link`.
const MAX_PAGE: u32 = 10_000;
/// Tags returned when `n` is absent: all of them, up to this many.
const MAX_UNPAGED_TAGS: u32 = 100_000;

/// `n` as given (`None` if absent), capped; a malformed `n` is a 400.
fn page_size(request: &V2Request) -> Result<Option<u32>> {
    match request.query.get("n") {
        None => Ok(None),
        Some(text) => text
            .parse::<u64>()
            .map(|n| Some(n.min(u64::from(MAX_PAGE)) as u32))
            .map_err(|_| {
                RegistryError::Unsupported(format!("n={text:?} is not a non-negative integer"))
            }),
    }
}

fn json_response<T: Serialize>(
    value: &T,
    link: Option<axum::http::HeaderValue>,
) -> Result<Response> {
    let body = serde_json::to_vec(value).map_err(|e| RegistryError::Internal(e.to_string()))?;
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

#[derive(Serialize)]
struct Catalog {
    repositories: Vec<String>,
}

/// `GET /v2/_catalog[?n=&last=]`: repositories the caller may pull.
pub(super) async fn catalog(app: &AppState, request: &V2Request) -> Result<Response> {
    // Credentials are needed (a bearer token, even an anonymous one, counts),
    // but no particular grant: clients such as podman fetch a token without
    // a catalog scope, and the list holds only what the caller's principal
    // may pull anyway.
    if request.caller.is_anonymous() && request.caller.grants.is_none() {
        return Err(request.unauthorized(app, Some("registry:catalog:*")));
    }
    let n = page_size(request)?.unwrap_or(DEFAULT_CATALOG_PAGE);
    let visible = app.access.pullable_by(&request.caller).await?;
    let page = app
        .registry
        .catalog(request.query.get("last"), n, visible)
        .await?;
    let (repositories, more) = (page.items, page.more);
    let link = match (more, repositories.last()) {
        (true, Some(last)) => Some(next_link("/v2/_catalog", n, last)?),
        _ => None,
    };
    json_response(&Catalog { repositories }, link)
}

#[derive(Serialize)]
struct TagList<'a> {
    name: &'a str,
    tags: Vec<String>,
}

/// `GET /v2/<name>/tags/list[?n=&last=]`
pub(super) async fn tags(on: OnRepository<'_>) -> Result<Response> {
    let OnRepository { app, name, request } = on;
    on.require(Verb::Pull).await?;
    let n = page_size(request)?;
    let last = request.query.get("last");
    let limit = n.unwrap_or(MAX_UNPAGED_TAGS);
    if limit == 0 {
        // Still a 404 for a repository that does not exist.
        app.registry.tags(name, None, 0).await?;
        return json_response(
            &TagList {
                name: name.as_str(),
                tags: Vec::new(),
            },
            None,
        );
    }
    let page = app.registry.tags(name, last, limit).await?;
    let link = match (page.more, page.items.last()) {
        (true, Some(last)) => Some(next_link(&format!("/v2/{name}/tags/list"), limit, last)?),
        _ => None,
    };
    json_response(
        &TagList {
            name: name.as_str(),
            tags: page.items,
        },
        link,
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

/// `GET /v2/<name>/referrers/<digest>[?artifactType=]`: manifests in the
/// repository whose subject is `digest`, whether or not it was pushed.
pub(super) async fn referrers(on: OnRepository<'_>, digest: &str) -> Result<Response> {
    let OnRepository { app, name, request } = on;
    on.require(Verb::Pull).await?;
    let subject = parse_digest(digest)?;
    let artifact_type = request.query.get("artifactType").filter(|t| !t.is_empty());
    let referrers = app
        .registry
        .referrers(name, &subject, artifact_type)
        .await?;
    let manifests = referrers
        .into_iter()
        .map(|r| Descriptor {
            media_type: r.media_type,
            digest: r.digest.to_string(),
            size: r.size,
            artifact_type: r.artifact_type,
            annotations: r.annotations.and_then(|a| serde_json::from_str(&a).ok()),
        })
        .collect();
    let index = Index {
        schema_version: 2,
        media_type: OCI_INDEX,
        manifests,
    };
    let body = serde_json::to_vec(&index).map_err(|e| RegistryError::Internal(e.to_string()))?;
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, OCI_INDEX)], body).into_response();
    if artifact_type.is_some() {
        response
            .headers_mut()
            .insert(OCI_FILTERS_APPLIED.clone(), header_value("artifactType")?);
    }
    Ok(response)
}
