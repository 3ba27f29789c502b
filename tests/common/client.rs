//! [`RegistryClient`]: the distribution API as the tests speak it.
//!
//! Low-level calls (`send_chunk`, `put_manifest`, …) return the response for
//! the test to judge; story-level calls (`push_blob`, `push_image`, …) check
//! that each step succeeded and return what was made.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use reqwest::{Body, Method, RequestBuilder, Response, StatusCode};

use super::assertions::{expect_status, header};
use super::content::{
    Descriptor, Manifest, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, blob_content, image_config,
    image_manifest, sha256,
};

/// Name of the super user berth creates on first start.
pub const ADMIN_USER: &str = "admin";

/// An upload session: where to send its chunks.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The `Location` the registry gave, used as is for the next request.
    pub location: String,
    /// The `Docker-Upload-UUID` the registry gave.
    pub uuid: String,
}

/// An image pushed with [`RegistryClient::push_image`].
#[derive(Debug, Clone)]
/// A small OCI image (config and one layer), its content unique to
/// `repo:tag`.
pub struct SmallImage {
    pub config_bytes: Vec<u8>,
    pub layer_bytes: Vec<u8>,
    pub config: Descriptor,
    pub layer: Descriptor,
    pub manifest: Manifest,
}

impl SmallImage {
    pub fn new(repo: &str, tag: &str) -> SmallImage {
        let label = format!("{repo}:{tag}");
        let config_bytes = image_config(&label);
        let layer_bytes = blob_content(&label, 2048);
        let config = Descriptor::of(OCI_CONFIG, &config_bytes);
        let layer = Descriptor::of(OCI_LAYER, &layer_bytes);
        let manifest = Manifest::from_json(
            OCI_MANIFEST,
            &image_manifest(OCI_MANIFEST, &config, std::slice::from_ref(&layer)),
        );
        SmallImage {
            config_bytes,
            layer_bytes,
            config,
            layer,
            manifest,
        }
    }
}

pub struct PushedImage {
    pub manifest: Manifest,
    pub digest: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

impl PushedImage {
    pub fn descriptor(&self) -> Descriptor {
        self.manifest.descriptor()
    }
}

/// What a client presents in `Authorization`.
#[derive(Clone, Debug)]
enum Credentials {
    Basic(String, String),
    Bearer(String),
}

#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    base_url: String,
    credentials: Option<Credentials>,
}

impl RegistryClient {
    /// A client of the registry at `base_url` (`http://127.0.0.1:port`)
    /// logging in as `user`.
    pub fn new(base_url: String, user: &str, password: &str) -> Self {
        RegistryClient {
            http: http_client(None),
            base_url,
            credentials: Some(Credentials::Basic(user.to_owned(), password.to_owned())),
        }
    }

    /// The same registry and credentials, connecting from the local address
    /// `ip` (any of 127.0.0.0/8 reaches a server on 127.0.0.1), so that the
    /// server sees another client address.
    pub fn connecting_from(&self, ip: std::net::IpAddr) -> Self {
        RegistryClient {
            http: http_client(Some(ip)),
            ..self.clone()
        }
    }

    /// The same registry and credentials over HTTP/2 without TLS (prior
    /// knowledge), as a client that speaks only HTTP/2 would connect.
    pub fn over_http2(&self) -> Self {
        RegistryClient {
            http: reqwest::Client::builder()
                .no_proxy()
                .http2_prior_knowledge()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("HTTP/2 client builds"),
            ..self.clone()
        }
    }

    /// The same registry and credentials over TLS (`https://`), trusting
    /// only the CA certificate `ca_pem`. HTTP/2 if `http2` (negotiated by
    /// ALPN, as clients do over TLS), else HTTP/1.1 only.
    pub fn over_tls(&self, ca_pem: &[u8], http2: bool) -> Self {
        let ca = reqwest::Certificate::from_pem(ca_pem).expect("CA certificate is PEM");
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(120));
        if !http2 {
            builder = builder.http1_only();
        }
        RegistryClient {
            http: builder.build().expect("TLS client builds"),
            base_url: https_url(&self.base_url),
            ..self.clone()
        }
    }

    /// The same registry and credentials over TLS (`https://`), accepting
    /// any certificate: the harness's own requests to a berth serving TLS,
    /// where checking the certificate is the part of the client under test.
    pub fn over_tls_unverified(&self) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tls_danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(120))
            .build()
            .expect("TLS client builds");
        RegistryClient {
            http,
            base_url: https_url(&self.base_url),
            ..self.clone()
        }
    }

    /// The same registry, with other credentials.
    pub fn with_credentials(&self, user: &str, password: &str) -> Self {
        RegistryClient {
            credentials: Some(Credentials::Basic(user.to_owned(), password.to_owned())),
            ..self.clone()
        }
    }

    /// The same registry, presenting `Authorization: Bearer <token>`.
    pub fn with_bearer(&self, token: &str) -> Self {
        RegistryClient {
            credentials: Some(Credentials::Bearer(token.to_owned())),
            ..self.clone()
        }
    }

    /// The same registry, without credentials.
    pub fn anonymous(&self) -> Self {
        RegistryClient {
            credentials: None,
            ..self.clone()
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn password(&self) -> Option<&str> {
        match &self.credentials {
            Some(Credentials::Basic(_, password)) => Some(password),
            _ => None,
        }
    }

    /// An absolute URL for a path or for a `Location` (relative or absolute).
    pub fn url(&self, path_or_location: &str) -> String {
        if path_or_location.starts_with("http://") || path_or_location.starts_with("https://") {
            path_or_location.to_owned()
        } else {
            format!("{}{path_or_location}", self.base_url)
        }
    }

    /// A request with this client's credentials.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, self.url(path));
        match &self.credentials {
            Some(Credentials::Basic(user, password)) => builder.basic_auth(user, Some(password)),
            Some(Credentials::Bearer(token)) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn send(&self, method: Method, path: &str) -> Response {
        self.request(method.clone(), path)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path).await
    }

    /// `GET /metrics`, anonymously: the Prometheus text.
    pub async fn metrics_text(&self) -> String {
        self.anonymous()
            .get("/metrics")
            .await
            .text()
            .await
            .expect("metrics are read")
    }

    /// The sum of `name`'s samples in `/metrics` (see [`metric_sum`]).
    pub async fn metric(&self, name: &str) -> f64 {
        metric_sum(&self.metrics_text().await, name)
    }

    // ----- blob uploads

    /// `POST /v2/<repo>/blobs/uploads/<query>` with an empty body.
    pub async fn post_upload(&self, repo: &str, query: &str) -> Response {
        self.send(Method::POST, &format!("/v2/{repo}/blobs/uploads/{query}"))
            .await
    }

    /// Opens an upload session (expects `202 Accepted`).
    pub async fn start_upload(&self, repo: &str) -> Upload {
        self.start_upload_with(repo, "").await
    }

    /// Opens an upload session with query parameters such as
    /// `?digest-algorithm=sha512`.
    pub async fn start_upload_with(&self, repo: &str, query: &str) -> Upload {
        let response =
            expect_status(self.post_upload(repo, query).await, StatusCode::ACCEPTED).await;
        Upload {
            location: header(&response, "location"),
            uuid: header(&response, "docker-upload-uuid"),
        }
    }

    /// Single-request upload: `POST ?digest=` with the whole blob as body.
    pub async fn post_blob(&self, repo: &str, digest: &str, content: &[u8]) -> Response {
        self.request(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
        )
        .header("content-type", "application/octet-stream")
        .body(content.to_vec())
        .send()
        .await
        .expect("single-request upload is sent")
    }

    /// `PATCH` of one chunk starting at `offset`, with its `Content-Range`.
    pub async fn send_chunk(&self, location: &str, offset: u64, chunk: &[u8]) -> Response {
        let last = offset + chunk.len() as u64 - 1;
        self.send_chunk_claiming(location, &format!("{offset}-{last}"), chunk.to_vec())
            .await
    }

    /// `PATCH` with any `Content-Range`, true or not.
    pub async fn send_chunk_claiming(
        &self,
        location: &str,
        content_range: &str,
        body: Vec<u8>,
    ) -> Response {
        self.request(Method::PATCH, location)
            .header("content-type", "application/octet-stream")
            .header("content-range", content_range)
            .body(body)
            .send()
            .await
            .expect("chunk is sent")
    }

    /// `PATCH` without `Content-Range`: the body streamed as it comes.
    pub async fn stream_to_upload(&self, location: &str, body: Body) -> Response {
        self.request(Method::PATCH, location)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .expect("streamed PATCH is sent")
    }

    /// `GET <upload>`: how much the registry holds.
    pub async fn upload_status(&self, location: &str) -> Response {
        self.get(location).await
    }

    /// The closing `PUT <upload>?digest=`, to be given a body or not.
    pub fn closing_put(&self, location: &str, digest: &str) -> RequestBuilder {
        self.request(
            Method::PUT,
            &with_query(location, &format!("digest={digest}")),
        )
    }

    /// The monolithic `PUT <upload>?digest=` carrying the whole blob.
    pub fn monolithic_put(&self, location: &str, digest: &str, content: &[u8]) -> RequestBuilder {
        self.closing_put(location, digest)
            .header("content-type", "application/octet-stream")
            .body(content.to_vec())
    }

    /// `PUT <upload>?digest=` without a body: completes the upload.
    pub async fn finish_upload(&self, location: &str, digest: &str) -> Response {
        self.closing_put(location, digest)
            .send()
            .await
            .expect("closing PUT is sent")
    }

    /// `PUT <upload>?digest=` carrying the last chunk, which starts at `offset`.
    pub async fn finish_upload_with_chunk(
        &self,
        location: &str,
        digest: &str,
        offset: u64,
        chunk: &[u8],
    ) -> Response {
        let last = offset + chunk.len() as u64 - 1;
        self.closing_put(location, digest)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{offset}-{last}"))
            .body(chunk.to_vec())
            .send()
            .await
            .expect("closing PUT is sent")
    }

    pub async fn cancel_upload(&self, location: &str) -> Response {
        self.send(Method::DELETE, location).await
    }

    /// Pushes `content` with POST then PUT; returns its digest.
    pub async fn push_blob(&self, repo: &str, content: &[u8]) -> String {
        let digest = sha256(content);
        let upload = self.start_upload(repo).await;
        let response = self
            .monolithic_put(&upload.location, &digest, content)
            .send()
            .await
            .expect("monolithic PUT is sent");
        expect_status(response, StatusCode::CREATED).await;
        digest
    }

    /// Pushes `content` as chunks of `chunk_size` with `Content-Range`s,
    /// then a bodiless PUT; returns its digest.
    pub async fn push_blob_in_chunks(
        &self,
        repo: &str,
        content: &[u8],
        chunk_size: usize,
    ) -> String {
        let digest = sha256(content);
        let mut upload = self.start_upload(repo).await;
        let mut offset = 0;
        for chunk in content.chunks(chunk_size) {
            let response = self.send_chunk(&upload.location, offset, chunk).await;
            let response = expect_status(response, StatusCode::ACCEPTED).await;
            upload.location = header(&response, "location");
            offset += chunk.len() as u64;
        }
        let response = self.finish_upload(&upload.location, &digest).await;
        expect_status(response, StatusCode::CREATED).await;
        digest
    }

    // ----- blob reads

    pub async fn get_blob(&self, repo: &str, digest: &str) -> Response {
        self.get(&format!("/v2/{repo}/blobs/{digest}")).await
    }

    pub async fn head_blob(&self, repo: &str, digest: &str) -> Response {
        self.send(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"))
            .await
    }

    pub async fn get_blob_range(&self, repo: &str, digest: &str, range: &str) -> Response {
        self.request(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
            .header("range", range)
            .send()
            .await
            .expect("ranged GET is sent")
    }

    /// The bytes of a blob (expects `200 OK`).
    pub async fn blob_bytes(&self, repo: &str, digest: &str) -> Vec<u8> {
        let response = expect_status(self.get_blob(repo, digest).await, StatusCode::OK).await;
        response.bytes().await.expect("blob body").to_vec()
    }

    pub async fn delete_blob(&self, repo: &str, digest: &str) -> Response {
        self.send(Method::DELETE, &format!("/v2/{repo}/blobs/{digest}"))
            .await
    }

    /// `POST ?mount=<digest>[&from=<from>]`.
    pub async fn mount_blob(&self, repo: &str, digest: &str, from: Option<&str>) -> Response {
        let query = match from {
            Some(from) => format!("?mount={digest}&from={from}"),
            None => format!("?mount={digest}"),
        };
        self.post_upload(repo, &query).await
    }

    // ----- manifests

    pub async fn put_manifest(&self, repo: &str, reference: &str, manifest: &Manifest) -> Response {
        self.request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", manifest.media_type.as_str())
            .body(manifest.bytes.clone())
            .send()
            .await
            .expect("manifest PUT is sent")
    }

    /// Pushes a manifest (expects `201 Created`); returns its digest.
    pub async fn push_manifest(&self, repo: &str, reference: &str, manifest: &Manifest) -> String {
        let response = self.put_manifest(repo, reference, manifest).await;
        let response = expect_status(response, StatusCode::CREATED).await;
        header(&response, "docker-content-digest")
    }

    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Response {
        self.get(&format!("/v2/{repo}/manifests/{reference}")).await
    }

    pub async fn head_manifest(&self, repo: &str, reference: &str) -> Response {
        self.send(Method::HEAD, &format!("/v2/{repo}/manifests/{reference}"))
            .await
    }

    pub async fn delete_manifest(&self, repo: &str, reference: &str) -> Response {
        self.send(Method::DELETE, &format!("/v2/{repo}/manifests/{reference}"))
            .await
    }

    /// Pushes a small OCI image (config and one layer, content unique to
    /// `repo` and `tag`) and tags it `tag`.
    pub async fn push_image(&self, repo: &str, tag: &str) -> PushedImage {
        let image = SmallImage::new(repo, tag);
        self.push_blob(repo, &image.config_bytes).await;
        self.push_blob(repo, &image.layer_bytes).await;
        let digest = self.push_manifest(repo, tag, &image.manifest).await;
        assert_eq!(
            digest,
            image.manifest.digest(),
            "digest of the pushed manifest"
        );
        PushedImage {
            manifest: image.manifest,
            digest,
            config: image.config,
            layers: vec![image.layer],
        }
    }

    // ----- listings

    /// `GET /v2/<repo>/tags/list<query>`.
    pub async fn list_tags(&self, repo: &str, query: &str) -> Response {
        self.get(&format!("/v2/{repo}/tags/list{query}")).await
    }

    /// Every tag of `repo` in one request (expects `200 OK`).
    pub async fn tags(&self, repo: &str) -> Vec<String> {
        let response = expect_status(self.list_tags(repo, "").await, StatusCode::OK).await;
        let body: serde_json::Value = response.json().await.expect("tag list is JSON");
        assert_eq!(body["name"], repo, "name in the tag list");
        string_list(&body["tags"])
    }

    /// `GET /v2/_catalog<query>`.
    pub async fn catalog(&self, query: &str) -> Response {
        self.get(&format!("/v2/_catalog{query}")).await
    }

    /// `GET /v2/<repo>/referrers/<digest><query>`.
    pub async fn referrers(&self, repo: &str, digest: &str, query: &str) -> Response {
        self.get(&format!("/v2/{repo}/referrers/{digest}{query}"))
            .await
    }
}

fn http_client(local_address: Option<std::net::IpAddr>) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(local_address)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("HTTP client builds")
}

/// `base_url` with `https://` for `http://`.
fn https_url(base_url: &str) -> String {
    match base_url.strip_prefix("http://") {
        Some(rest) => format!("https://{rest}"),
        None => base_url.to_owned(),
    }
}

/// The sum of the samples in Prometheus `text` whose line starts with
/// `name` (every label set of a metric).
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A JSON array of strings (`null` counts as empty).
pub fn string_list(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().expect("list of strings").to_owned())
            .collect(),
        other => panic!("expected a list of strings, got {other}"),
    }
}

/// `location` with `query` appended, whether or not it already has a query.
pub fn with_query(location: &str, query: &str) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}{query}")
}

// ----- request bodies

/// `content` sent in pieces of `piece` bytes without a `Content-Length`
/// (`Transfer-Encoding: chunked`), as streaming clients do.
pub fn chunked_body(content: &[u8], piece: usize) -> Body {
    let pieces: Vec<Result<Bytes, std::io::Error>> = content
        .chunks(piece)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Body::wrap_stream(futures::stream::iter(pieces))
}

/// `content` sent slowly: a piece of `piece` bytes every `pause`. `sent`
/// counts the bytes handed to the connection so far.
pub fn slow_body(content: &[u8], piece: usize, pause: Duration, sent: Arc<AtomicU64>) -> Body {
    let pieces: Vec<Bytes> = content.chunks(piece).map(Bytes::copy_from_slice).collect();
    let stream = futures::stream::iter(pieces).then(move |piece| {
        let sent = sent.clone();
        async move {
            tokio::time::sleep(pause).await;
            sent.fetch_add(piece.len() as u64, Ordering::SeqCst);
            Ok::<_, std::io::Error>(piece)
        }
    });
    Body::wrap_stream(stream)
}

/// `content` sent at once, and then nothing ever again: the request never
/// ends, as when a client hangs or the server is killed mid-upload.
pub fn stalled_body(content: &[u8], piece: usize) -> Body {
    let pieces: Vec<Result<Bytes, std::io::Error>> = content
        .chunks(piece)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Body::wrap_stream(futures::stream::iter(pieces).chain(futures::stream::pending()))
}
