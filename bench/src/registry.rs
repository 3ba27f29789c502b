//! A minimal OCI distribution client with HTTP Basic and Docker token auth.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine;
use bytes::Bytes;
use reqwest::header::{
    AUTHORIZATION, AsHeaderName, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION,
    WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode, Url};
use serde::Deserialize;

use crate::auth::{Challenge, parse_challenge, scope_for_path};
use crate::config::{Credentials, TargetSpec};
use crate::data::{Image, OCI_MANIFEST, sha256_of};
use crate::download::{self, Download};

/// How the registry wants to be authenticated, learnt from `GET /v2/`.
#[derive(Clone, Debug)]
enum AuthMode {
    Anonymous,
    Basic,
    Bearer { realm: Url, service: Option<String> },
}

struct CachedToken {
    value: HeaderValue,
    refresh_at: Instant,
}

/// A request body; only buffered bodies can be replayed after a 401.
pub enum Payload {
    Empty,
    Bytes(Bytes),
    Stream(reqwest::Body),
}

pub struct Registry {
    pub spec: TargetSpec,
    http: reqwest::Client,
    mode: AuthMode,
    tokens: Mutex<HashMap<String, CachedToken>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl Registry {
    /// Connects, discovers the auth scheme from `GET /v2/` and checks that
    /// the credentials are accepted, so that a wrong password fails here and
    /// not in the middle of a timed scenario.
    pub async fn connect(spec: TargetSpec) -> Result<Registry> {
        let http = reqwest::Client::builder()
            .http1_only()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            // Generous: a slow registry should show up as slow, not as an error,
            // but a hung one must not hang the benchmark forever.
            .read_timeout(Duration::from_secs(300))
            .pool_max_idle_per_host(64)
            .build()
            .context("building HTTP client")?;
        let base = spec.url.join("v2/")?;
        let probe = http
            .get(base.clone())
            .send()
            .await
            .with_context(|| format!("{}: GET {base}", spec.name))?;
        let mode = match probe.status() {
            StatusCode::OK => AuthMode::Anonymous,
            StatusCode::UNAUTHORIZED => {
                let challenge = pick_challenge(probe.headers()).ok_or_else(|| {
                    anyhow!(
                        "{}: 401 from /v2/ without a usable WWW-Authenticate",
                        spec.name
                    )
                })?;
                mode_from_challenge(&challenge, &spec.url)?
            }
            s => bail!(
                "{}: GET {base} returned {s}, expected 200 or 401",
                spec.name
            ),
        };
        // Token servers may hand out anonymous tokens, Basic needs credentials.
        if matches!(mode, AuthMode::Basic) {
            ensure!(
                spec.credentials.is_some(),
                "{}: registry requires Basic authentication but no user/password was given",
                spec.name
            );
        }
        let registry = Registry {
            spec,
            http,
            mode,
            tokens: Mutex::new(HashMap::new()),
        };
        let check = registry
            .send(Method::GET, base.clone(), HeaderMap::new(), Payload::Empty)
            .await?;
        ensure!(
            check.status() == StatusCode::OK,
            "{}: GET {base} with credentials returned {}",
            registry.spec.name,
            check.status()
        );
        Ok(registry)
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The HTTP client, for requests sent without this registry's
    /// credentials (or with deliberately wrong ones).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn auth_description(&self) -> &'static str {
        match self.mode {
            AuthMode::Anonymous => "anonymous",
            AuthMode::Basic => "HTTP Basic",
            AuthMode::Bearer { .. } => "Docker token (Bearer)",
        }
    }

    /// Resolves a path like `v2/repo/blobs/uploads/` (relative to the
    /// target URL, keeping any path prefix), or a `Location`/`Link` value
    /// (absolute URL, or absolute path on the registry host), to a full URL.
    pub fn url(&self, path_or_location: &str) -> Result<Url> {
        // `Url::join` implements exactly these RFC 3986 rules, given that the
        // target URL always ends with '/'.
        self.spec
            .url
            .join(path_or_location)
            .with_context(|| format!("invalid URL or path {path_or_location:?}"))
    }

    pub fn host_port(&self) -> String {
        self.spec.url.authority().to_owned()
    }

    /// The Authorization header for requests needing `scope` (None for
    /// anonymous registries). Tokens are cached per scope until shortly
    /// before they expire.
    pub async fn authorization(&self, scope: Option<&str>) -> Result<Option<HeaderValue>> {
        match &self.mode {
            AuthMode::Anonymous => Ok(None),
            AuthMode::Basic => Ok(Some(self.basic_header()?)),
            AuthMode::Bearer { realm, service } => {
                let key = scope.unwrap_or("");
                if let Some(cached) = self.lock_tokens().get(key)
                    && Instant::now() < cached.refresh_at
                {
                    return Ok(Some(cached.value.clone()));
                }
                let token = self.fetch_token(realm, service.as_deref(), scope).await?;
                self.lock_tokens().insert(key.to_owned(), token);
                Ok(self.lock_tokens().get(key).map(|t| t.value.clone()))
            }
        }
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedToken>> {
        // A poisoned cache only means another task panicked mid-insert; the
        // map itself is still usable.
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn basic_header(&self) -> Result<HeaderValue> {
        let creds = self.credentials()?;
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", creds.user, creds.password));
        HeaderValue::from_str(&format!("Basic {encoded}")).context("credentials not header-safe")
    }

    fn credentials(&self) -> Result<&Credentials> {
        self.spec
            .credentials
            .as_ref()
            .ok_or_else(|| anyhow!("{}: no credentials", self.spec.name))
    }

    async fn fetch_token(
        &self,
        realm: &Url,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<CachedToken> {
        let mut url = realm.clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            if let Some(scope) = scope {
                query.append_pair("scope", scope);
            }
        }
        let mut request = self.http.get(url.clone());
        if self.spec.credentials.is_some() {
            request = request.header(AUTHORIZATION, self.basic_header()?);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{}: token request {url}", self.spec.name))?;
        let response = expect_status(response, &[StatusCode::OK]).await?;
        let body: TokenResponse = response
            .json()
            .await
            .context("token response is not JSON")?;
        let token = body
            .token
            .or(body.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow!("token response has neither token nor access_token"))?;
        // The Docker token spec defaults to 60 s; refresh at 80% of the
        // lifetime so a token never expires during a measurement.
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(60).max(1));
        Ok(CachedToken {
            value: HeaderValue::from_str(&format!("Bearer {token}"))
                .context("token is not header-safe")?,
            refresh_at: Instant::now() + lifetime.mul_f64(0.8),
        })
    }

    /// Sends a request with the right credentials. A 401 on a replayable
    /// request is retried once with a fresh token (for the scope named in the
    /// challenge, if any); any other status is returned for the caller to check.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Payload,
    ) -> Result<Response> {
        let mut scope = scope_for_path(url.path());
        if method == Method::DELETE
            && let Some(scope) = scope.as_mut()
            && scope.starts_with("repository:")
        {
            scope.push_str(",delete");
        }
        let replay = match &body {
            Payload::Empty => Some(None),
            Payload::Bytes(b) => Some(Some(b.clone())),
            Payload::Stream(_) => None,
        };
        let auth = self.authorization(scope.as_deref()).await?;
        let response = self
            .build(method.clone(), url.clone(), headers.clone(), auth, body)
            .send()
            .await
            .with_context(|| format!("{}: {method} {url}", self.spec.name))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let AuthMode::Bearer { realm, service } = &self.mode else {
            return Ok(response);
        };
        let Some(replay) = replay else {
            return Ok(response);
        };
        let wanted_scope = pick_challenge(response.headers())
            .and_then(|c| c.params.get("scope").cloned())
            .or_else(|| scope.clone());
        let token = self
            .fetch_token(realm, service.as_deref(), wanted_scope.as_deref())
            .await?;
        let auth = Some(token.value.clone());
        // Cache under the key later requests to this path look up, so they
        // reuse the token the challenge asked for.
        let key = scope.or(wanted_scope).unwrap_or_default();
        self.lock_tokens().insert(key, token);
        let body = replay.map_or(Payload::Empty, Payload::Bytes);
        self.build(method.clone(), url.clone(), headers, auth, body)
            .send()
            .await
            .with_context(|| format!("{}: {method} {url} (after token refresh)", self.spec.name))
    }

    fn build(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        auth: Option<HeaderValue>,
        body: Payload,
    ) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, url).headers(headers);
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth);
        }
        match body {
            Payload::Empty => request,
            Payload::Bytes(b) => request.body(b),
            Payload::Stream(s) => request.body(s),
        }
    }

    /// `send` plus a status check.
    pub async fn call(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Payload,
        expected: &[StatusCode],
    ) -> Result<Response> {
        let response = self.send(method, url, headers, body).await?;
        expect_status(response, expected).await
    }

    /// `call` for a request that is only its method and URL: no headers of
    /// its own, no body.
    pub async fn call_bare(
        &self,
        method: Method,
        url: Url,
        expected: &[StatusCode],
    ) -> Result<Response> {
        self.call(method, url, HeaderMap::new(), Payload::Empty, expected)
            .await
    }

    /// Starts an upload session and returns its Location.
    pub async fn start_upload(&self, repo: &str) -> Result<Url> {
        let url = self.url(&format!("v2/{repo}/blobs/uploads/"))?;
        let response = self
            .call(
                Method::POST,
                url,
                content_length(0),
                Payload::Empty,
                &[StatusCode::ACCEPTED],
            )
            .await?;
        self.location(&response)
    }

    pub fn location(&self, response: &Response) -> Result<Url> {
        let location = response
            .headers()
            .get(LOCATION)
            .ok_or_else(|| anyhow!("{}: {} without Location", self.name(), response.url()))?
            .to_str()
            .context("Location is not ASCII")?;
        self.url(location)
    }

    /// Pushes a small in-memory blob the way a client does: HEAD to see if
    /// it exists, then POST + monolithic PUT.
    pub async fn push_blob(&self, repo: &str, blob: &Bytes) -> Result<()> {
        let digest = sha256_of(blob);
        let head_url = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let head = self
            .call_bare(
                Method::HEAD,
                head_url,
                &[StatusCode::OK, StatusCode::NOT_FOUND],
            )
            .await?;
        if head.status() == StatusCode::OK {
            return Ok(());
        }
        let location = self.start_upload(repo).await?;
        let mut headers = content_length(blob.len() as u64);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        self.finish_upload(location, &digest, headers, Payload::Bytes(blob.clone()))
            .await
    }

    /// The closing `PUT <location>?digest=` of an upload, checking the digest
    /// the registry reports.
    pub async fn finish_upload(
        &self,
        mut location: Url,
        digest: &str,
        headers: HeaderMap,
        body: Payload,
    ) -> Result<()> {
        location.query_pairs_mut().append_pair("digest", digest);
        let response = self
            .call(Method::PUT, location, headers, body, &[StatusCode::CREATED])
            .await?;
        check_digest_header(&response, digest)
    }

    pub async fn put_manifest(&self, repo: &str, reference: &str, image: &Image) -> Result<()> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let mut headers = content_length(image.manifest.len() as u64);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCI_MANIFEST));
        let response = self
            .call(
                Method::PUT,
                url,
                headers,
                Payload::Bytes(image.manifest.clone()),
                &[StatusCode::CREATED],
            )
            .await?;
        check_digest_header(&response, &image.manifest_digest)
    }

    /// Full client push of an in-memory image: every blob, then the manifest.
    pub async fn push_image(&self, repo: &str, tag: &str, image: &Image) -> Result<()> {
        for blob in image.blobs() {
            self.push_blob(repo, blob).await?;
        }
        self.put_manifest(repo, tag, image).await
    }

    /// `GET` of a large body through the bare client in [`download`], with
    /// this registry's credentials, following redirects on the same host
    /// (with credentials) or elsewhere (without). Plain HTTP targets only.
    pub async fn download(&self, mut url: Url, hash: bool) -> Result<Download> {
        let scope = scope_for_path(url.path());
        let auth = self.authorization(scope.as_deref()).await?;
        for _ in 0..5 {
            let mut headers = HeaderMap::new();
            if let Some(auth) = &auth
                && url.origin() == self.spec.url.origin()
            {
                headers.insert(AUTHORIZATION, auth.clone());
            }
            let answer = download::get(&url, &headers, hash)
                .await
                .with_context(|| format!("{}: GET {url}", self.spec.name))?;
            if !(300..400).contains(&answer.status) {
                return Ok(answer);
            }
            let location = answer
                .headers
                .get(LOCATION)
                .ok_or_else(|| anyhow!("{}: redirect without Location", self.spec.name))?;
            url = url.join(location.to_str().context("Location is not ASCII")?)?;
        }
        bail!("{}: more than 5 redirects from a download", self.spec.name)
    }

    /// The digest the registry reports for a manifest, from a HEAD request.
    pub async fn manifest_digest(&self, repo: &str, reference: &str) -> Result<Option<String>> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static(crate::data::MANIFEST_ACCEPT),
        );
        let response = self
            .call(
                Method::HEAD,
                url,
                headers,
                Payload::Empty,
                &[StatusCode::OK, StatusCode::NOT_FOUND],
            )
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(header_text(response.headers(), "docker-content-digest").map(str::to_owned))
    }
}

/// The header's value, if it is there and is text.
pub fn header_text(headers: &HeaderMap, name: impl AsHeaderName) -> Option<&str> {
    headers.get(name)?.to_str().ok()
}

pub fn content_length(len: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    headers
}

/// Fails with the response body in the message unless the status is expected.
pub async fn expect_status(response: Response, expected: &[StatusCode]) -> Result<Response> {
    if expected.contains(&response.status()) {
        return Ok(response);
    }
    let status = response.status();
    let url = response.url().clone();
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(500).collect();
    bail!("{url}: status {status}, expected one of {expected:?}; body: {body}")
}

/// If the registry sent `Docker-Content-Digest` it must match; it is optional
/// in the OCI spec, so its absence is not an error.
pub fn check_digest_header(response: &Response, digest: &str) -> Result<()> {
    check_reported_digest(response.headers(), digest).with_context(|| response.url().to_string())
}

/// [`check_digest_header`] on bare headers.
pub fn check_reported_digest(headers: &HeaderMap, digest: &str) -> Result<()> {
    if let Some(reported) = headers.get("docker-content-digest") {
        let reported = reported.to_str().unwrap_or("<non-ascii>");
        ensure!(
            reported == digest,
            "registry reported digest {reported}, expected {digest}"
        );
    }
    Ok(())
}

/// Prefers a Bearer challenge over Basic when several are offered.
fn pick_challenge(headers: &HeaderMap) -> Option<Challenge> {
    let challenges: Vec<Challenge> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(parse_challenge)
        .collect();
    challenges
        .iter()
        .find(|c| c.scheme == "bearer")
        .or_else(|| challenges.iter().find(|c| c.scheme == "basic"))
        .cloned()
}

fn mode_from_challenge(challenge: &Challenge, base: &Url) -> Result<AuthMode> {
    match challenge.scheme.as_str() {
        "basic" => Ok(AuthMode::Basic),
        "bearer" => {
            let realm = challenge
                .params
                .get("realm")
                .ok_or_else(|| anyhow!("Bearer challenge without realm"))?;
            // Realms are normally absolute; resolve relative ones against the registry.
            let realm = base
                .join(realm)
                .with_context(|| format!("invalid token realm {realm:?}"))?;
            Ok(AuthMode::Bearer {
                realm,
                service: challenge.params.get("service").cloned(),
            })
        }
        other => bail!("unsupported auth scheme {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    //! Exercises the token flow against an in-process fake registry, since the
    //! reference registry available here only does htpasswd.
    use super::*;
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::Full;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    const GOOD_BASIC: &str = "Basic dXNlcjpwYXNz"; // user:pass

    async fn fake_token_registry() -> Result<(String, Arc<AtomicUsize>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let token_requests = Arc::new(AtomicUsize::new(0));
        let counter = token_requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let counter = counter.clone();
                    async move {
                        let auth = header_text(req.headers(), AUTHORIZATION)
                            .unwrap_or("")
                            .to_owned();
                        let uri =
                            Url::parse(&format!("http://fake{}", req.uri())).expect("valid uri");
                        let path = uri.path().to_owned();
                        let mut resp = hyper::Response::new(Full::new(Bytes::new()));
                        if path == "/token" {
                            counter.fetch_add(1, Ordering::SeqCst);
                            if auth != GOOD_BASIC {
                                *resp.status_mut() = StatusCode::UNAUTHORIZED;
                            } else {
                                // The token encodes its scope so the registry side can check it.
                                let scope = uri
                                    .query_pairs()
                                    .find(|(k, _)| k == "scope")
                                    .map(|(_, v)| v.into_owned())
                                    .unwrap_or_default();
                                *resp.body_mut() = Full::new(Bytes::from(format!(
                                    r#"{{"access_token":"tok-{scope}","expires_in":300}}"#
                                )));
                            }
                        } else {
                            // Repositories under narrow/ want a pull-only token and
                            // say so in the challenge, as some token servers do.
                            let (scope, hint) = if path.starts_with("/v2/narrow/") {
                                let s = "repository:narrow/x:pull".to_owned();
                                (s.clone(), format!(r#",scope="{s}""#))
                            } else {
                                (scope_for_path(&path).unwrap_or_default(), String::new())
                            };
                            if auth != format!("Bearer tok-{scope}") {
                                *resp.status_mut() = StatusCode::UNAUTHORIZED;
                                resp.headers_mut().insert(
                                    WWW_AUTHENTICATE,
                                    HeaderValue::from_str(&format!(
                                        r#"Bearer realm="http://{addr}/token",service="fake"{hint}"#
                                    ))
                                    .expect("valid header"),
                                );
                            }
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok((format!("http://{addr}"), token_requests))
    }

    /// A [`Registry`] connected, with the right password, to a new
    /// [`fake_token_registry`], and that registry's count of token requests.
    async fn connected_to_fake() -> Result<(Registry, Arc<AtomicUsize>)> {
        let (url, token_requests) = fake_token_registry().await?;
        let spec: TargetSpec = format!("name=fake,url={url},user=user,password=pass").parse()?;
        Ok((Registry::connect(spec).await?, token_requests))
    }

    /// GETs `url` `times` times, each answered 200.
    async fn get_ok_times(registry: &Registry, url: &Url, times: usize) -> Result<()> {
        for _ in 0..times {
            let r = registry
                .send(Method::GET, url.clone(), HeaderMap::new(), Payload::Empty)
                .await?;
            assert_eq!(r.status(), StatusCode::OK);
        }
        Ok(())
    }

    #[tokio::test]
    async fn token_flow_caches_per_scope() -> Result<()> {
        let (registry, token_requests) = connected_to_fake().await?;
        assert_eq!(registry.auth_description(), "Docker token (Bearer)");
        let after_connect = token_requests.load(Ordering::SeqCst);

        let manifest = registry.url("v2/some/repo/manifests/latest")?;
        get_ok_times(&registry, &manifest, 3).await?;
        // One token for the new scope, then served from the cache.
        assert_eq!(token_requests.load(Ordering::SeqCst), after_connect + 1);

        let other = registry.url("v2/other/blobs/sha256:00")?;
        let r = registry
            .send(Method::HEAD, other, HeaderMap::new(), Payload::Empty)
            .await?;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(token_requests.load(Ordering::SeqCst), after_connect + 2);
        Ok(())
    }

    #[tokio::test]
    async fn token_flow_follows_challenge_scope() -> Result<()> {
        let (registry, token_requests) = connected_to_fake().await?;
        let before = token_requests.load(Ordering::SeqCst);
        let manifest = registry.url("v2/narrow/x/manifests/latest")?;
        get_ok_times(&registry, &manifest, 2).await?;
        // The path's own scope is refused, the challenge's scope is fetched
        // once and then reused.
        assert_eq!(token_requests.load(Ordering::SeqCst), before + 2);
        Ok(())
    }

    #[tokio::test]
    async fn wrong_password_fails_at_connect() -> Result<()> {
        let (url, _) = fake_token_registry().await?;
        let spec: TargetSpec = format!("name=fake,url={url},user=user,password=bad").parse()?;
        assert!(Registry::connect(spec).await.is_err());
        Ok(())
    }
}
