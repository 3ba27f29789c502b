//! [`UpstreamClient`]: the distribution API of other registries, from the
//! outside: manifests (exact bytes), tag lists, blobs as streams; with
//! anonymous, Basic and Bearer-token authentication, and TLS verified
//! against the system's roots plus configured CA files.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use dashmap::{DashMap, DashSet};
use futures::{Stream, StreamExt};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use url::Url;

use super::challenge::{UpstreamChallenge, parse_challenges};
use super::error::UpstreamError;
use super::reference::{RegistryHost, UpstreamReference};
use crate::oci::digest::{Digest, DigestAlgorithm, sha256_raw};
use crate::oci::names::RepositoryName;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// What berth asks an upstream for: the manifest types it stores.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Manifests berth accepts on push are at most this large; so are those it
/// imports.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Error bodies and token answers are read up to this much.
const MAX_SMALL_BODY: u64 = 64 << 10;
/// One page of a tag list.
const MAX_TAG_PAGE_BYTES: u64 = 8 << 20;
/// A tag list followed further than this is an upstream in a loop.
const MAX_TAG_PAGES: usize = 10_000;
/// The token cache is swept of expired tokens when it grows past this.
const TOKEN_CACHE_SWEEP: usize = 4096;
/// How long a token without `expires_in` lives (the token spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Index children are fetched this many at a time.
const CHILD_FETCH_CONCURRENCY: usize = 4;

/// How the client talks to every upstream.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// PEM files of CA certificates trusted besides the system's roots.
    pub ca_files: Vec<PathBuf>,
    /// Giving up on a connection that is not made in this time.
    pub connect_timeout: Duration,
    /// Giving up on an answer (headers or body) quiet for this long.
    pub read_timeout: Duration,
    /// The whole of a manifest, tag page or token request.
    pub request_timeout: Duration,
    pub max_manifest_bytes: u64,
    /// A tag list longer than this is refused rather than held.
    pub max_tags: usize,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        UpstreamSettings {
            ca_files: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            max_manifest_bytes: MAX_MANIFEST_BYTES,
            max_tags: 100_000,
        }
    }
}

/// A user name and password for an upstream (from a pull secret). Never
/// printed.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamCredentials {
    username: String,
    password: String,
}

impl UpstreamCredentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        UpstreamCredentials {
            username: username.into(),
            password: password.into(),
        }
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// Who these credentials are, for cache keys, without keeping the
    /// password itself.
    fn identity(&self) -> [u8; 32] {
        let mut text = Vec::with_capacity(self.username.len() + self.password.len() + 1);
        text.extend_from_slice(self.username.as_bytes());
        text.push(0);
        text.extend_from_slice(self.password.as_bytes());
        sha256_raw(&text)
    }
}

impl std::fmt::Debug for UpstreamCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How one operation reaches its upstream: with which credentials, and
/// whether plain HTTP or an unverified certificate is acceptable.
#[derive(Debug, Clone, Default)]
pub struct UpstreamAccess {
    pub credentials: Option<UpstreamCredentials>,
    pub insecure: bool,
}

impl UpstreamAccess {
    pub fn anonymous() -> Self {
        UpstreamAccess::default()
    }

    pub fn with_credentials(credentials: UpstreamCredentials) -> Self {
        UpstreamAccess {
            credentials: Some(credentials),
            insecure: false,
        }
    }

    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }
}

/// A manifest as the upstream serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamManifest {
    /// Exactly the bytes the upstream sent.
    pub bytes: Bytes,
    pub media_type: String,
    /// The digest of `bytes` (with the algorithm asked for, else sha256).
    pub digest: Digest,
}

impl UpstreamManifest {
    /// Whether it is an OCI index or a Docker manifest list.
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_MANIFEST_LIST
    }
}

/// What a `HEAD` of a manifest tells without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Docker-Content-Digest`, if the upstream sends it.
    pub digest: Option<Digest>,
    pub media_type: Option<String>,
    pub size: Option<u64>,
}

/// A blob being read from an upstream: its bytes as they arrive, to be
/// taken verified ([`UpstreamBlob::verified`]) or, by a caller that hashes
/// them itself as it stores them, unverified ([`UpstreamBlob::unverified`]),
/// so that no byte is hashed twice.
pub struct UpstreamBlob {
    /// `Content-Length`, if sent.
    pub size: Option<u64>,
    body: Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>,
    expected: Digest,
    upstream: String,
    host: String,
}

impl UpstreamBlob {
    /// The bytes, hashed as they pass: the stream ends with
    /// [`UpstreamError::DigestMismatch`] instead of ending cleanly when they
    /// do not hash to the digest asked for.
    pub fn verified(self) -> Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamError>> + Send>> {
        let state = Verifying {
            hasher: Some(self.expected.algorithm().hasher()),
            blob: self,
        };
        Box::pin(futures::stream::unfold(state, |mut state| async move {
            let hasher = state.hasher.as_mut()?;
            match state.blob.body.next().await {
                Some(Ok(chunk)) => {
                    hasher.update(&chunk);
                    Some((Ok(chunk), state))
                }
                Some(Err(error)) => {
                    state.hasher = None;
                    Some((Err(state.blob.transport_error(&error)), state))
                }
                None => {
                    let actual = state.hasher.take()?.finish();
                    if actual == state.blob.expected {
                        None
                    } else {
                        let error = UpstreamError::DigestMismatch {
                            upstream: state.blob.upstream.clone(),
                            what: "blob",
                            expected: state.blob.expected.to_string(),
                            actual: actual.to_string(),
                        };
                        Some((Err(error), state))
                    }
                }
            }
        }))
    }

    /// The bytes as the upstream sends them, not checked against the
    /// digest: only for a caller that verifies them as it stores them
    /// (the pull-through fill, whose upload hashes every byte).
    pub fn unverified(self) -> Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamError>> + Send>> {
        let UpstreamBlob {
            body,
            upstream,
            host,
            ..
        } = self;
        Box::pin(
            body.map(move |item| item.map_err(|error| transport_error(&host, &upstream, &error))),
        )
    }

    fn transport_error(&self, error: &reqwest::Error) -> UpstreamError {
        transport_error(&self.host, &self.upstream, error)
    }
}

impl std::fmt::Debug for UpstreamBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBlob")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Https,
    Http,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    realm: String,
    service: Option<String>,
    scope: String,
    identity: Option<[u8; 32]>,
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: String,
    fresh_until: Instant,
}

/// What an `Authorization` header carries.
#[derive(Debug, Clone)]
enum Authorization {
    None,
    Basic(UpstreamCredentials),
    Bearer(String),
}

/// One request to an upstream.
struct Call<'a> {
    registry: &'a RegistryHost,
    access: &'a UpstreamAccess,
    /// `repository:NAME:pull`, for a token.
    scope: String,
    method: Method,
    /// Path and query, from `/v2/`.
    path: String,
    accept: Option<&'static str>,
    timeout: Option<Duration>,
    /// What is asked for, for errors: `manifest quay.io/org/app:1.0`.
    what: String,
    /// Where, for errors: `quay.io/org/app:1.0`.
    upstream: String,
}

/// The client of upstream registries. Cheap to clone; one per process, so
/// that tokens and what each upstream asks for are learnt once.
#[derive(Clone)]
pub struct UpstreamClient {
    inner: Arc<Inner>,
}

struct Inner {
    verified: reqwest::Client,
    unverified: reqwest::Client,
    settings: UpstreamSettings,
    /// The challenge each upstream answered last, so that later requests
    /// carry credentials (or a token) from the start.
    challenges: DashMap<String, UpstreamChallenge>,
    /// Upstreams reached insecurely that answered only plain HTTP.
    plain_http: DashSet<String>,
    tokens: DashMap<TokenKey, CachedToken>,
    requests: DashMap<String, u64>,
}

impl UpstreamClient {
    pub fn new(settings: UpstreamSettings) -> Result<UpstreamClient, UpstreamError> {
        let mut extra_roots = Vec::new();
        for path in &settings.ca_files {
            extra_roots.extend(read_ca_file(path)?);
        }
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(settings.connect_timeout)
                .read_timeout(settings.read_timeout)
                .no_proxy()
        };
        let verified = builder()
            .tls_certs_merge(extra_roots)
            .build()
            .map_err(|e| UpstreamError::Setup(e.to_string()))?;
        let unverified = builder()
            .tls_danger_accept_invalid_certs(true)
            .build()
            .map_err(|e| UpstreamError::Setup(e.to_string()))?;
        Ok(UpstreamClient {
            inner: Arc::new(Inner {
                verified,
                unverified,
                settings,
                challenges: DashMap::new(),
                plain_http: DashSet::new(),
                tokens: DashMap::new(),
                requests: DashMap::new(),
            }),
        })
    }

    /// How many requests this client sent to `host` (`host[:port]`),
    /// token requests included.
    pub fn requests_to(&self, host: &str) -> u64 {
        self.inner.requests.get(host).map_or(0, |count| *count)
    }

    /// The manifest `reference` names: its exact bytes, media type and
    /// digest. Asked for by digest, the bytes must hash to it; asked for
    /// by tag, they must hash to the `Docker-Content-Digest` the upstream
    /// sends, if it sends one.
    pub async fn manifest(
        &self,
        reference: &UpstreamReference,
        access: &UpstreamAccess,
    ) -> Result<UpstreamManifest, UpstreamError> {
        let call = self.manifest_call(reference, access, Method::GET);
        let response = self.execute(&call).await?;
        let host = reference.registry.api_host();
        let response = expect_success(response, &call, "manifest", "MANIFEST_UNKNOWN").await?;
        let upstream = reference.to_string();
        let limit = self.inner.settings.max_manifest_bytes;
        let header_digest = header_text(response.headers(), "docker-content-digest");
        let content_type = header_text(response.headers(), header::CONTENT_TYPE.as_str());
        let bytes = read_bounded(response, limit, host)
            .await
            .map_err(|e| match e {
                BoundedError::TooLarge(size) => UpstreamError::TooLarge {
                    upstream: upstream.clone(),
                    what: "manifest",
                    limit,
                    size,
                },
                BoundedError::Transport(e) => e,
            })?;
        let algorithm = reference
            .digest()
            .map_or(DigestAlgorithm::Sha256, Digest::algorithm);
        let digest = algorithm.digest_of(&bytes);
        let expected = match reference.digest() {
            Some(asked) => Some(asked.clone()),
            None => header_digest
                .and_then(|text| text.parse::<Digest>().ok())
                .filter(|sent| sent.algorithm() == algorithm),
        };
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(UpstreamError::DigestMismatch {
                upstream,
                what: "manifest",
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
        let media_type = manifest_media_type(content_type.as_deref(), &bytes).ok_or_else(|| {
            UpstreamError::Protocol {
                host: host.to_owned(),
                what: call.what.clone(),
                detail: "the manifest has no media type, in Content-Type or in the document".into(),
            }
        })?;
        Ok(UpstreamManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// `HEAD` of a manifest: its digest without its bytes, to tell whether
    /// a tag moved (rate limits count a `HEAD` as nothing, on Docker Hub).
    pub async fn manifest_head(
        &self,
        reference: &UpstreamReference,
        access: &UpstreamAccess,
    ) -> Result<ManifestHead, UpstreamError> {
        let call = self.manifest_call(reference, access, Method::HEAD);
        let response = self.execute(&call).await?;
        let response = expect_success(response, &call, "manifest", "MANIFEST_UNKNOWN").await?;
        let headers = response.headers();
        Ok(ManifestHead {
            digest: header_text(headers, "docker-content-digest").and_then(|d| d.parse().ok()),
            media_type: header_text(headers, header::CONTENT_TYPE.as_str())
                .map(|t| media_type_of(&t).to_owned()),
            size: header_text(headers, header::CONTENT_LENGTH.as_str())
                .and_then(|n| n.parse().ok()),
        })
    }

    /// The manifests an index (or manifest list) names, in its order, each
    /// fetched by digest and verified.
    pub async fn child_manifests(
        &self,
        index_reference: &UpstreamReference,
        index: &UpstreamManifest,
        access: &UpstreamAccess,
    ) -> Result<Vec<UpstreamManifest>, UpstreamError> {
        #[derive(Deserialize)]
        struct Entry {
            digest: String,
        }
        #[derive(Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Vec<Entry>,
        }
        let host = index_reference.registry.api_host();
        let parsed: Index =
            serde_json::from_slice(&index.bytes).map_err(|e| UpstreamError::Protocol {
                host: host.to_owned(),
                what: format!("index {index_reference}"),
                detail: format!("not an index: {e}"),
            })?;
        let mut children = Vec::with_capacity(parsed.manifests.len());
        for entry in parsed.manifests {
            let digest: Digest = entry.digest.parse().map_err(|e| UpstreamError::Protocol {
                host: host.to_owned(),
                what: format!("index {index_reference}"),
                detail: format!("a child's digest: {e}"),
            })?;
            children.push(index_reference.at_digest(digest));
        }
        futures::stream::iter(children)
            .map(|child| async move { self.manifest(&child, access).await })
            .buffered(CHILD_FETCH_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    /// Every tag of `repository`, following the upstream's pages (`Link:
    /// <…>; rel="next"`). `page_size` asks for pages of that many (`?n=`);
    /// upstreams may answer fewer.
    pub async fn tags(
        &self,
        registry: &RegistryHost,
        repository: &RepositoryName,
        access: &UpstreamAccess,
        page_size: Option<u32>,
    ) -> Result<Vec<String>, UpstreamError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let host = registry.api_host();
        let upstream = format!("{registry}/{repository}");
        let first = format!("/v2/{repository}/tags/list");
        let mut path = match page_size {
            Some(n) => format!("{first}?n={n}"),
            None => first,
        };
        let mut tags = Vec::new();
        let mut seen_pages = std::collections::HashSet::new();
        for _ in 0..MAX_TAG_PAGES {
            if !seen_pages.insert(path.clone()) {
                return Err(UpstreamError::Protocol {
                    host: host.to_owned(),
                    what: format!("tags of {upstream}"),
                    detail: format!("its pages loop back to {path}"),
                });
            }
            let call = Call {
                registry,
                access,
                scope: pull_scope(repository),
                method: Method::GET,
                path: path.clone(),
                accept: Some("application/json"),
                timeout: Some(self.inner.settings.request_timeout),
                what: format!("tags of {upstream}"),
                upstream: upstream.clone(),
            };
            let response = self.execute(&call).await?;
            let response = expect_success(response, &call, "repository", "NAME_UNKNOWN").await?;
            let next = next_link(response.headers());
            let body = read_bounded(response, MAX_TAG_PAGE_BYTES, host)
                .await
                .map_err(|e| match e {
                    BoundedError::TooLarge(size) => UpstreamError::TooLarge {
                        upstream: upstream.clone(),
                        what: "tag list page",
                        limit: MAX_TAG_PAGE_BYTES,
                        size,
                    },
                    BoundedError::Transport(e) => e,
                })?;
            let page: Page =
                serde_json::from_slice(&body).map_err(|e| UpstreamError::Protocol {
                    host: host.to_owned(),
                    what: format!("tags of {upstream}"),
                    detail: format!("not a tag list: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            if tags.len() > self.inner.settings.max_tags {
                return Err(UpstreamError::TooLarge {
                    upstream,
                    what: "tag list",
                    limit: self.inner.settings.max_tags as u64,
                    size: None,
                });
            }
            match next {
                Some(link) => path = same_origin_path(&link, host)?,
                None => return Ok(tags),
            }
        }
        Err(UpstreamError::Protocol {
            host: host.to_owned(),
            what: format!("tags of {upstream}"),
            detail: format!("more than {MAX_TAG_PAGES} pages"),
        })
    }

    /// A blob's answer: its size and its bytes as a stream (see
    /// [`UpstreamBlob`] for verifying them). Only stalls time out, not the
    /// whole transfer.
    pub async fn blob(
        &self,
        registry: &RegistryHost,
        repository: &RepositoryName,
        digest: &Digest,
        access: &UpstreamAccess,
    ) -> Result<UpstreamBlob, UpstreamError> {
        let upstream = format!("{registry}/{repository}@{digest}");
        let call = Call {
            registry,
            access,
            scope: pull_scope(repository),
            method: Method::GET,
            path: format!("/v2/{repository}/blobs/{digest}"),
            accept: None,
            timeout: None,
            what: format!("blob {upstream}"),
            upstream: upstream.clone(),
        };
        let response = self.execute(&call).await?;
        let response = expect_success(response, &call, "blob", "BLOB_UNKNOWN").await?;
        Ok(UpstreamBlob {
            size: response.content_length(),
            body: Box::pin(response.bytes_stream()),
            expected: digest.clone(),
            upstream,
            host: registry.api_host().to_owned(),
        })
    }

    fn manifest_call<'a>(
        &self,
        reference: &'a UpstreamReference,
        access: &'a UpstreamAccess,
        method: Method,
    ) -> Call<'a> {
        Call {
            registry: &reference.registry,
            access,
            scope: pull_scope(&reference.repository),
            method,
            path: format!(
                "/v2/{}/manifests/{}",
                reference.repository, reference.reference
            ),
            accept: Some(MANIFEST_ACCEPT),
            timeout: Some(self.inner.settings.request_timeout),
            what: format!("manifest {reference}"),
            upstream: reference.to_string(),
        }
    }

    /// Sends `call` with whatever authentication its upstream asks for:
    /// what it asked for before, else anonymously first and then as its
    /// `401` says (a token from its realm, or Basic). Answers other than
    /// `401`/`403`/`429` are the caller's to judge.
    async fn execute(&self, call: &Call<'_>) -> Result<Response, UpstreamError> {
        let host = call.registry.api_host();
        let known = self.inner.challenges.get(host).map(|c| c.clone());
        let mut authorization = match known {
            Some(UpstreamChallenge::Bearer { realm, service, .. }) => Authorization::Bearer(
                self.token(call, &realm, service.as_deref(), &call.scope, false)
                    .await?,
            ),
            Some(UpstreamChallenge::Basic) => match &call.access.credentials {
                Some(credentials) => Authorization::Basic(credentials.clone()),
                None => Authorization::None,
            },
            None => Authorization::None,
        };
        let mut answered_challenge = false;
        loop {
            let response = self.send(call, &authorization).await?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                return Err(UpstreamError::RateLimited {
                    host: host.to_owned(),
                    retry_after: retry_after(response.headers()),
                });
            }
            if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
                return Ok(response);
            }
            let challenge = header_text(response.headers(), header::WWW_AUTHENTICATE.as_str())
                .map(|value| parse_challenges(&value))
                .and_then(|found| {
                    // Bearer first: a token is scoped to what is asked for.
                    let bearer = found
                        .iter()
                        .find(|c| matches!(c, UpstreamChallenge::Bearer { .. }))
                        .cloned();
                    bearer.or_else(|| found.into_iter().next())
                });
            if let Some(challenge) = &challenge {
                self.inner
                    .challenges
                    .insert(host.to_owned(), challenge.clone());
            }
            let retry = match (&challenge, status) {
                _ if answered_challenge => None,
                (
                    Some(UpstreamChallenge::Bearer {
                        realm,
                        service,
                        scope,
                    }),
                    _,
                ) => {
                    let scope = scope.clone().unwrap_or_else(|| call.scope.clone());
                    let token = self
                        .token(call, realm, service.as_deref(), &scope, true)
                        .await?;
                    Some(Authorization::Bearer(token))
                }
                (Some(UpstreamChallenge::Basic), StatusCode::UNAUTHORIZED) => {
                    match (&call.access.credentials, &authorization) {
                        (Some(_), Authorization::Basic(_)) | (None, _) => None,
                        (Some(credentials), _) => Some(Authorization::Basic(credentials.clone())),
                    }
                }
                _ => None,
            };
            match retry {
                Some(next) => {
                    authorization = next;
                    answered_challenge = true;
                }
                None => {
                    let message = error_message(response).await;
                    return Err(refused(call, status, &message));
                }
            }
        }
    }

    /// One request, over HTTPS; when the caller allows insecure access and
    /// HTTPS cannot be spoken, over plain HTTP (remembered per upstream).
    async fn send(
        &self,
        call: &Call<'_>,
        authorization: &Authorization,
    ) -> Result<Response, UpstreamError> {
        let host = call.registry.api_host();
        if !call.access.insecure {
            return self
                .send_with(&self.inner.verified, Scheme::Https, call, authorization)
                .await;
        }
        let client = &self.inner.unverified;
        if self.inner.plain_http.contains(host) {
            return self
                .send_with(client, Scheme::Http, call, authorization)
                .await;
        }
        match self
            .send_with(client, Scheme::Https, call, authorization)
            .await
        {
            Err(
                https_error @ (UpstreamError::TlsVerification { .. }
                | UpstreamError::Unreachable { .. }),
            ) => match self
                .send_with(client, Scheme::Http, call, authorization)
                .await
            {
                Ok(response) => {
                    self.inner.plain_http.insert(host.to_owned());
                    Ok(response)
                }
                Err(_) => Err(https_error),
            },
            other => other,
        }
    }

    async fn send_with(
        &self,
        client: &reqwest::Client,
        scheme: Scheme,
        call: &Call<'_>,
        authorization: &Authorization,
    ) -> Result<Response, UpstreamError> {
        let host = call.registry.api_host();
        let url = format!("{}://{host}{}", scheme.as_str(), call.path);
        let mut request = client.request(call.method.clone(), &url);
        if let Some(accept) = call.accept {
            request = request.header(header::ACCEPT, accept);
        }
        if let Some(timeout) = call.timeout {
            request = request.timeout(timeout);
        }
        request = match authorization {
            Authorization::None => request,
            Authorization::Basic(credentials) => {
                request.basic_auth(&credentials.username, Some(&credentials.password))
            }
            Authorization::Bearer(token) => request.bearer_auth(token),
        };
        self.count(host);
        request
            .send()
            .await
            .map_err(|e| transport_error(host, &call.what, &e))
    }

    /// A token for `scope` from `realm`: cached until shortly before it
    /// expires, unless `fresh` (the upstream just refused the cached one).
    async fn token(
        &self,
        call: &Call<'_>,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        fresh: bool,
    ) -> Result<String, UpstreamError> {
        #[derive(Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let host = call.registry.api_host();
        let key = TokenKey {
            realm: realm.to_owned(),
            service: service.map(str::to_owned),
            scope: scope.to_owned(),
            identity: call
                .access
                .credentials
                .as_ref()
                .map(UpstreamCredentials::identity),
        };
        if !fresh
            && let Some(cached) = self.inner.tokens.get(&key)
            && cached.fresh_until > Instant::now()
        {
            return Ok(cached.token.clone());
        }
        let protocol_error = |detail: String| UpstreamError::Protocol {
            host: host.to_owned(),
            what: format!("the token for {}", call.what),
            detail,
        };
        let mut url = Url::parse(realm)
            .map_err(|e| protocol_error(format!("token realm {realm:?} is not a URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if call.access.insecure => {}
            "http" => {
                return Err(UpstreamError::TlsVerification {
                    host: host.to_owned(),
                    detail: format!("its token realm {realm} is plain HTTP"),
                });
            }
            other => return Err(protocol_error(format!("token realm scheme {other:?}"))),
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            if !scope.is_empty() {
                query.append_pair("scope", scope);
            }
        }
        let realm_host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(protocol_error(format!("token realm {realm:?} has no host"))),
        };
        let client = if call.access.insecure {
            &self.inner.unverified
        } else {
            &self.inner.verified
        };
        let mut request = client.get(url).timeout(self.inner.settings.request_timeout);
        if let Some(credentials) = &call.access.credentials {
            request = request.basic_auth(&credentials.username, Some(&credentials.password));
        }
        self.count(&realm_host);
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(&realm_host, &call.what, &e))?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(UpstreamError::RateLimited {
                host: realm_host,
                retry_after: retry_after(response.headers()),
            });
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let message = error_message(response).await;
            return Err(UpstreamError::Unauthorized {
                host: host.to_owned(),
                what: call.what.clone(),
                detail: match &call.access.credentials {
                    Some(c) => format!(
                        "its token service refused the credentials of {:?}{}",
                        c.username,
                        colon(&message)
                    ),
                    None => format!(
                        "its token service wants credentials and none were given{}",
                        colon(&message)
                    ),
                },
            });
        }
        if !status.is_success() {
            let message = error_message(response).await;
            return Err(protocol_error(format!(
                "status {status}{}",
                colon(&message)
            )));
        }
        let body = read_bounded(response, MAX_SMALL_BODY, &realm_host)
            .await
            .map_err(|e| match e {
                BoundedError::TooLarge(_) => protocol_error("the token answer is too large".into()),
                BoundedError::Transport(e) => e,
            })?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| protocol_error(format!("the token answer is not JSON: {e}")))?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| protocol_error("the token answer has no token".into()))?;
        let lifetime = answer
            .expires_in
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        // Renewed a little early, so that a token never expires in flight.
        let margin = (lifetime / 10).max(Duration::from_secs(1));
        let fresh_until = Instant::now() + lifetime.saturating_sub(margin);
        if self.inner.tokens.len() >= TOKEN_CACHE_SWEEP {
            let now = Instant::now();
            self.inner
                .tokens
                .retain(|_, cached| cached.fresh_until > now);
        }
        self.inner.tokens.insert(
            key,
            CachedToken {
                token: token.clone(),
                fresh_until,
            },
        );
        Ok(token)
    }

    fn count(&self, host: &str) {
        *self.inner.requests.entry(host.to_owned()).or_insert(0) += 1;
        metrics::counter!("berth_upstream_requests_total", "host" => host.to_owned()).increment(1);
    }
}

struct Verifying {
    blob: UpstreamBlob,
    hasher: Option<crate::oci::digest::Hasher>,
}

fn pull_scope(repository: &RepositoryName) -> String {
    format!("repository:{repository}:pull")
}

fn colon(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// `200`-ish answers pass; `404` is "not found" (with the upstream's code);
/// anything else is unexpected.
async fn expect_success(
    response: Response,
    call: &Call<'_>,
    what: &'static str,
    default_code: &str,
) -> Result<Response, UpstreamError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let host = call.registry.api_host().to_owned();
    let (code, message) = error_code_and_message(response).await;
    if status == StatusCode::NOT_FOUND {
        return Err(UpstreamError::NotFound {
            upstream: call.upstream.clone(),
            what,
            code: code.unwrap_or_else(|| default_code.to_owned()),
            message,
        });
    }
    let code = code.map(|c| format!(" {c}")).unwrap_or_default();
    Err(UpstreamError::Protocol {
        host,
        what: call.what.clone(),
        detail: format!("status {status}{code}{}", colon(&message)),
    })
}

/// The `401`/`403` that ends an attempt, said for the caller.
fn refused(call: &Call<'_>, status: StatusCode, message: &str) -> UpstreamError {
    let detail = match (&call.access.credentials, status) {
        (_, StatusCode::FORBIDDEN) => "access denied".to_owned(),
        (Some(credentials), _) => {
            format!("the credentials of {:?} were refused", credentials.username)
        }
        (None, _) => "it requires credentials and none were given".to_owned(),
    };
    UpstreamError::Unauthorized {
        host: call.registry.api_host().to_owned(),
        what: call.what.clone(),
        detail: format!("{detail}{}", colon(message)),
    }
}

async fn error_message(response: Response) -> String {
    error_code_and_message(response).await.1
}

/// The first error of a distribution-spec error body, if it is one.
async fn error_code_and_message(response: Response) -> (Option<String>, String) {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let host = response.url().host_str().unwrap_or_default().to_owned();
    let Ok(body) = read_bounded(response, MAX_SMALL_BODY, &host).await else {
        return (None, String::new());
    };
    match serde_json::from_slice::<Errors>(&body) {
        Ok(parsed) => match parsed.errors.into_iter().next() {
            Some(entry) => (entry.code, entry.message.unwrap_or_default()),
            None => (None, String::new()),
        },
        Err(_) => (None, String::new()),
    }
}

enum BoundedError {
    TooLarge(Option<u64>),
    Transport(UpstreamError),
}

/// The body, refused as soon as it is known to be over `limit` (by its
/// `Content-Length`, or once that much has arrived), never read whole.
async fn read_bounded(
    mut response: Response,
    limit: u64,
    host: &str,
) -> Result<Bytes, BoundedError> {
    if let Some(length) = response.content_length()
        && length > limit
    {
        return Err(BoundedError::TooLarge(Some(length)));
    }
    let what = response.url().path().to_owned();
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| BoundedError::Transport(transport_error(host, &what, &e)))?
    {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(BoundedError::TooLarge(None));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn media_type_of(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// The manifest's media type: its `Content-Type`, unless that is missing
/// or generic JSON, then the document's `mediaType` (or its shape, as the
/// OCI spec allows documents without one).
fn manifest_media_type(content_type: Option<&str>, bytes: &[u8]) -> Option<String> {
    let declared = content_type.map(media_type_of).unwrap_or("");
    if !declared.is_empty() && declared != "application/json" && declared != "text/plain" {
        return Some(declared.to_owned());
    }
    #[derive(Deserialize)]
    struct Shape {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
    }
    let shape: Shape = serde_json::from_slice(bytes).ok()?;
    match shape {
        Shape {
            media_type: Some(media_type),
            ..
        } if !media_type.is_empty() => Some(media_type),
        Shape {
            manifests: Some(_), ..
        } => Some(OCI_INDEX.to_owned()),
        Shape {
            config: Some(_), ..
        } => Some(OCI_MANIFEST.to_owned()),
        _ => None,
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = header_text(headers, header::RETRY_AFTER.as_str())?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(&value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or_default())
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().split_once(';')?;
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            is_next.then(|| target.to_owned())
        })
}

/// The path and query of a `Link` target, which must stay on the upstream
/// that sent it (credentials go along).
fn same_origin_path(link: &str, host: &str) -> Result<String, UpstreamError> {
    let base = Url::parse(&format!("https://{host}/")).map_err(|e| UpstreamError::Protocol {
        host: host.to_owned(),
        what: "a tag list page".into(),
        detail: e.to_string(),
    })?;
    let target = base.join(link).map_err(|e| UpstreamError::Protocol {
        host: host.to_owned(),
        what: "a tag list page".into(),
        detail: format!("next page {link:?}: {e}"),
    })?;
    let target_host = match (target.host_str(), target.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => String::new(),
    };
    if !target_host.eq_ignore_ascii_case(host) {
        return Err(UpstreamError::Protocol {
            host: host.to_owned(),
            what: "a tag list page".into(),
            detail: format!("next page {link:?} is on another host"),
        });
    }
    Ok(match target.query() {
        Some(query) => format!("{}?{query}", target.path()),
        None => target.path().to_owned(),
    })
}

/// A failed exchange, classified: TLS, no connection, a stall.
fn transport_error(host: &str, what: &str, error: &reqwest::Error) -> UpstreamError {
    let mut detail = innermost(error);
    if let Some(tls) = tls_failure(error) {
        return UpstreamError::TlsVerification {
            host: host.to_owned(),
            detail: tls,
        };
    }
    if error.is_connect() {
        if error.is_timeout() {
            detail = format!("no connection within the connect timeout ({detail})");
        }
        return UpstreamError::Unreachable {
            host: host.to_owned(),
            detail,
        };
    }
    if error.is_timeout() {
        return UpstreamError::TimedOut {
            host: host.to_owned(),
            detail: format!("{what}: {detail}"),
        };
    }
    UpstreamError::Unreachable {
        host: host.to_owned(),
        detail: format!("{what}: {detail}"),
    }
}

fn innermost(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// What TLS said, if the exchange failed in TLS: a certificate that did not
/// verify, or a server that speaks plain HTTP.
fn tls_failure(error: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        let rustls_error = current.downcast_ref::<rustls::Error>().or_else(|| {
            current
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = rustls_error {
            return Some(match tls {
                rustls::Error::InvalidMessage(_) => {
                    format!("{tls} (the upstream seems to speak plain HTTP, not HTTPS)")
                }
                _ => tls.to_string(),
            });
        }
        cause = current.source();
    }
    // Not every layer between reqwest and rustls keeps the error's type;
    // its message still says what happened.
    let text = innermost(error);
    let lowered = text.to_ascii_lowercase();
    if lowered.contains("invalidcontenttype") || lowered.contains("corrupt message") {
        return Some(format!(
            "{text} (the upstream seems to speak plain HTTP, not HTTPS)"
        ));
    }
    (lowered.contains("certificate") || lowered.contains("unknownissuer")).then_some(text)
}

/// Reads the PEM certificates of one CA file.
fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, UpstreamError> {
    crate::files::read_ca_certificates(path).map_err(|detail| UpstreamError::CaFile {
        path: path.to_owned(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn next_links_relative_and_absolute() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LINK,
            HeaderValue::from_static(r#"</v2/a/tags/list?last=t99&n=100>; rel="next""#),
        );
        let link = next_link(&headers).unwrap();
        assert_eq!(
            same_origin_path(&link, "reg.example:5000").unwrap(),
            "/v2/a/tags/list?last=t99&n=100"
        );
        assert_eq!(
            same_origin_path(
                "https://reg.example:5000/v2/a/tags/list?n=1",
                "reg.example:5000"
            )
            .unwrap(),
            "/v2/a/tags/list?n=1"
        );
        assert!(same_origin_path("https://elsewhere/v2/a/tags/list", "reg.example").is_err());

        let mut headers = HeaderMap::new();
        headers.insert(
            header::LINK,
            HeaderValue::from_static(r#"<https://x/prev>; rel="prev", <https://x/next>; rel=next"#),
        );
        assert_eq!(next_link(&headers).as_deref(), Some("https://x/next"));
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("17"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(17)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let after = retry_after(&headers).unwrap();
        assert!(after > Duration::from_secs(100) && after <= Duration::from_secs(120));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn media_types_from_the_header_or_the_document() {
        assert_eq!(
            manifest_media_type(
                Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
                b"{}"
            )
            .as_deref(),
            Some(OCI_INDEX)
        );
        assert_eq!(
            manifest_media_type(
                Some("application/json"),
                br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#
            )
            .as_deref(),
            Some(DOCKER_MANIFEST)
        );
        assert_eq!(
            manifest_media_type(None, br#"{"manifests":[]}"#).as_deref(),
            Some(OCI_INDEX)
        );
        assert_eq!(
            manifest_media_type(None, br#"{"config":{}}"#).as_deref(),
            Some(OCI_MANIFEST)
        );
        assert_eq!(manifest_media_type(None, b"not json"), None);
    }

    #[test]
    fn credentials_never_print_their_password() {
        let credentials = UpstreamCredentials::new("robot", "hunter2");
        assert!(!format!("{credentials:?}").contains("hunter2"));
        assert!(
            !format!("{:?}", UpstreamAccess::with_credentials(credentials)).contains("hunter2")
        );
    }
}
