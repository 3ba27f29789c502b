//! The OCI distribution API under `/v2/`.
//!
//! One handler receives every `/v2/` request, parses it into an
//! [`Endpoint`], authenticates the caller and hands over to the handler for
//! that endpoint and method.

mod blobs;
mod listings;
mod manifests;
mod uploads;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::endpoint::Endpoint;
use super::errors::{DOCKER_DISTRIBUTION_API_VERSION, refuse_authentication};
use super::observe::RouteLabel;
use super::sendfile::SendsFromFile;
use crate::auth::roles::Verb;
use crate::auth::{AuthFailure, Caller, Denial};
use crate::error::{RegistryError, Result};
use crate::oci::digest::Digest;
use crate::oci::names::RepositoryName;

pub(crate) static DOCKER_CONTENT_DIGEST: HeaderName =
    HeaderName::from_static("docker-content-digest");
pub(crate) static DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");

/// A request as handlers see it: caller, headers, query. The body is
/// passed separately to the handlers that read one.
pub(crate) struct V2Request {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Query,
    pub caller: Caller,
    /// The client's address (`X-Forwarded-For` from trusted proxies), for
    /// the image stream history of pushes.
    pub client_address: Option<std::net::IpAddr>,
    /// Set when the response body can be sent from blob files
    /// ([`crate::api::sendfile`]): HTTP/1 on a plain TCP connection.
    pub sends_from_file: Option<SendsFromFile>,
}

impl V2Request {
    /// 401 with a challenge naming `scope`.
    pub fn unauthorized(&self, app: &AppState, scope: Option<&str>) -> RegistryError {
        RegistryError::Unauthorized {
            challenge: app.access.challenge(&app.base_url(&self.headers), scope),
        }
    }

    /// The answer to a caller the policy allows but whose bearer token does
    /// not grant `scope`: `403` with `WWW-Authenticate: Bearer …,scope=…,
    /// error="insufficient_scope"`, as RFC 6750 (section 3.1; the Docker
    /// token protocol's challenges are RFC 6750's) says, so that the client
    /// asks the token service for a token that does. (The reference
    /// registry answers 401; clients that fetch a token for a pull first,
    /// as oras-py's default flow does, ask again only on 403.)
    fn insufficient_scope(&self, app: &AppState, scope: &str) -> RegistryError {
        let base_url = app.base_url(&self.headers);
        RegistryError::InsufficientScope {
            challenge: app.access.insufficient_scope_challenge(&base_url, scope),
        }
    }
}

/// A request on one repository, as the handlers of its endpoints take it:
/// the app serving it, the repository its path names, and the request.
#[derive(Clone, Copy)]
pub(crate) struct OnRepository<'a> {
    pub app: &'a AppState,
    pub name: &'a RepositoryName,
    pub request: &'a V2Request,
}

impl OnRepository<'_> {
    /// Fails unless the caller may do `verb` to the repository: 401 (with
    /// a challenge for the scope) for anonymous callers, 403 with a
    /// challenge for a bearer token that does not grant what the caller may
    /// do, 403 otherwise.
    async fn require(&self, verb: Verb) -> Result<()> {
        let OnRepository { app, name, request } = *self;
        let scope = || crate::auth::scope::scope_for(name.as_str(), verb);
        match app.access.check(&request.caller, verb, name).await {
            Ok(()) => Ok(()),
            Err(Denial::Unauthenticated) => Err(request.unauthorized(app, Some(&scope()))),
            Err(Denial::InsufficientScope) => Err(request.insufficient_scope(app, &scope())),
            Err(denial) => Err(denied(denial)),
        }
    }

    /// The first write of a push into the repository: makes its namespace
    /// if it does not exist yet (see
    /// [`crate::auth::AccessControl::prepare_push`]).
    async fn prepare_push(&self) -> Result<()> {
        let OnRepository { app, name, request } = *self;
        match app.access.prepare_push(&request.caller, name).await {
            Ok(()) => match app.pull_through.refuses_pushes(name) {
                Some(reason) => Err(RegistryError::DeniedBecause(reason)),
                None => Ok(()),
            },
            Err(Denial::Unauthenticated | Denial::InsufficientScope) => {
                let scope = crate::auth::scope::scope_for(name.as_str(), Verb::Push);
                Err(request.unauthorized(app, Some(&scope)))
            }
            Err(denial) => Err(denied(denial)),
        }
    }

    /// The quota of the repository's namespace, from the policy snapshot
    /// the request's authorization already read: no query.
    async fn namespace_quota(&self) -> Result<Option<crate::metadata::quotas::NamespaceQuota>> {
        let policy = self.app.access.policy().await?;
        Ok(policy.quota(self.name.namespace()).cloned())
    }
}

/// A refusal of an authenticated caller.
fn denied(denial: Denial) -> RegistryError {
    match denial {
        Denial::Forbidden {
            reason: Some(reason),
        } => RegistryError::DeniedBecause(reason),
        Denial::Store(e) => e.into(),
        Denial::Forbidden { reason: None }
        | Denial::Unauthenticated
        | Denial::InsufficientScope => RegistryError::Denied,
    }
}

/// A failed authentication's answer, with the challenge of `/v2/`.
pub(crate) fn auth_failure(app: &AppState, base_url: &str, failure: AuthFailure) -> RegistryError {
    refuse_authentication(failure, app.access.challenge(base_url, None)).into()
}

pub async fn dispatch(State(app): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let rest = path
        .strip_prefix("/v2/")
        .or_else(|| path.strip_prefix("/v2"))
        .unwrap_or("");
    let parsed = Endpoint::parse(rest);
    let route = parsed
        .as_ref()
        .map(|e| e.route(&parts.method))
        .unwrap_or("v2_unknown");
    let mut response = match app.admission.admit(&parts.method).await {
        Ok(admitted) => match handle(&app, parsed, parts, body).await {
            Ok(response) => response.map(|body| admitted.hold_until_sent(body)),
            Err(e) => e.into_response(),
        },
        Err(busy) => busy.into_response(),
    };
    response.headers_mut().insert(
        DOCKER_DISTRIBUTION_API_VERSION.clone(),
        HeaderValue::from_static("registry/2.0"),
    );
    response.extensions_mut().insert(RouteLabel(route));
    response
}

async fn handle(
    app: &AppState,
    parsed: Result<Endpoint>,
    parts: Parts,
    body: Body,
) -> Result<Response> {
    let peer = super::peer_ip(&parts.extensions);
    let caller = app
        .access
        .authenticate(&parts.headers, peer)
        .await
        .map_err(|f| auth_failure(app, &app.base_url(&parts.headers), f))?;
    let sends_from_file = match parts.version {
        Version::HTTP_10 | Version::HTTP_11 => parts.extensions.get::<SendsFromFile>().cloned(),
        _ => None,
    };
    let client_address = app.access.client_address(&parts.headers, peer);
    let request = V2Request {
        client_address,
        method: parts.method,
        query: Query::parse(parts.uri.query()),
        headers: parts.headers,
        caller,
        sends_from_file,
    };
    // Anonymous callers are challenged before anything else is said about
    // a request that names no valid endpoint.
    let endpoint = match parsed {
        Ok(endpoint) => endpoint,
        Err(_) if request.caller.is_anonymous() => return Err(request.unauthorized(app, None)),
        Err(e) => return Err(e),
    };
    use Method as M;
    if app.read_only && !matches!(request.method, M::GET | M::HEAD) {
        return Err(RegistryError::ReadOnly);
    }
    let on = |name| OnRepository {
        app,
        name,
        request: &request,
    };
    match (&endpoint, &request.method) {
        (Endpoint::Base, &M::GET | &M::HEAD) => base(app, &request),
        (Endpoint::Catalog, &M::GET) => listings::catalog(app, &request).await,
        (Endpoint::Tags { name }, &M::GET) => listings::tags(on(name)).await,
        (Endpoint::Referrers { name, digest }, &M::GET) => {
            listings::referrers(on(name), digest).await
        }
        (Endpoint::Manifest { name, reference }, &M::GET | &M::HEAD) => {
            manifests::get(on(name), reference).await
        }
        (Endpoint::Manifest { name, reference }, &M::PUT) => {
            manifests::put(on(name), reference, body).await
        }
        (Endpoint::Manifest { name, reference }, &M::DELETE) => {
            manifests::delete(on(name), reference).await
        }
        (Endpoint::Blob { name, digest }, &M::GET | &M::HEAD) => blobs::get(on(name), digest).await,
        (Endpoint::Blob { name, digest }, &M::DELETE) => blobs::delete(on(name), digest).await,
        (Endpoint::UploadStart { name }, &M::POST) => uploads::start(on(name), body).await,
        (Endpoint::Upload { name, id }, &M::GET) => uploads::status(on(name), id).await,
        (Endpoint::Upload { name, id }, &M::PATCH) => uploads::patch(on(name), id, body).await,
        (Endpoint::Upload { name, id }, &M::PUT) => uploads::put(on(name), id, body).await,
        (Endpoint::Upload { name, id }, &M::DELETE) => uploads::cancel(on(name), id).await,
        _ => Err(RegistryError::MethodNotAllowed),
    }
}

/// `GET /v2/`: the API is here, and the caller is authenticated.
fn base(app: &AppState, request: &V2Request) -> Result<Response> {
    if request.caller.is_anonymous() {
        return Err(request.unauthorized(app, None));
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{}",
    )
        .into_response())
}

/// Query parameters in order, repeated keys kept (`?tag=a&tag=b`).
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Query {
        Query(
            query
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A digest from a path segment or query parameter; bad ones are 400.
pub(crate) fn parse_digest(text: &str) -> Result<Digest> {
    Ok(text.parse::<Digest>()?)
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn header_value(text: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(text).map_err(|e| RegistryError::Internal(format!("header value: {e}")))
}

/// The `Link` header pointing at the next page of a listing.
pub(crate) fn next_link(path: &str, n: u32, last: &str) -> Result<HeaderValue> {
    let last: String = url::form_urlencoded::byte_serialize(last.as_bytes()).collect();
    header_value(&format!("<{path}?n={n}&last={last}>; rel=\"next\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_repeated_keys_and_decodes() {
        let q = Query::parse(Some("tag=a&tag=b&digest=sha256%3Aabc&n=5"));
        assert_eq!(q.all("tag").collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(q.get("digest"), Some("sha256:abc"));
        assert_eq!(q.get("missing"), None);
        assert!(Query::parse(None).get("x").is_none());
    }

    #[test]
    fn link_header_escapes_last() {
        assert_eq!(
            next_link("/v2/_catalog", 2, "a/b").unwrap(),
            "</v2/_catalog?n=2&last=a%2Fb>; rel=\"next\""
        );
    }
}
