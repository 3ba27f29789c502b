//! Pull-through over HTTP, against an upstream registry the test scripts
//! (it counts every blob it sends, paces large ones, and can be stopped,
//! rate-limit, forget a blob or send corrupt bytes): a tag imported with
//! reference policy `Local` pulled through berth (and accounted for in the
//! project's storage usage exactly: the manifest at import, the blobs once
//! filled), 20 concurrent pulls of
//! one uncached 64 MiB layer causing one upstream download (two replicas
//! on PostgreSQL: at most one per replica), cached content served while
//! the upstream is down, failures said clearly and recorded on the tag, a
//! corrupt blob refused and never stored, a disk that fills during a fill
//! (nothing stored, the next pull recovers), readers that fall behind or
//! join late, another berth as the upstream (its token service answered
//! with the namespace's pull secret), and a proxy namespace caching a
//! whole upstream with TTL re-validation. Real clients against a real
//! reference registry are in `tests/pull_through_clients.rs`.
//!
//! Run alone: `cargo test --test pull_through -- --nocapture`.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use common::{
    BerthProcess, Descriptor, Manifest, PgDatabase, RegistryClient, SmallDisk, StoppableServer,
    blob_content, image_config, image_manifest, sha256,
};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ADMIN_PASSWORD: &str = "pull-through-admin";
const MIB: usize = 1 << 20;

/// How the scripted upstream answers blob requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Serves,
    /// `429` with `Retry-After: 2`.
    RateLimits,
    /// Blobs answered `404 BLOB_UNKNOWN` (garbage-collected upstream).
    Forgot,
    /// Each blob with its first byte changed.
    Corrupts,
}

/// An image the upstream serves.
#[derive(Clone)]
struct UpstreamImage {
    manifest: Manifest,
    config: Vec<u8>,
    layer: Vec<u8>,
}

impl UpstreamImage {
    fn new(label: &str, layer_size: usize) -> UpstreamImage {
        let config = image_config(label);
        let layer = blob_content(label, layer_size);
        let value = image_manifest(
            OCI_MANIFEST,
            &Descriptor::of(OCI_CONFIG, &config),
            &[Descriptor::of(OCI_LAYER, &layer)],
        );
        UpstreamImage {
            manifest: Manifest::from_json(OCI_MANIFEST, &value),
            config,
            layer,
        }
    }

    fn layer_digest(&self) -> String {
        sha256(&self.layer)
    }

    fn config_digest(&self) -> String {
        sha256(&self.config)
    }
}

#[derive(Default)]
struct UpstreamState {
    /// Tag → image, whatever the repository.
    tags: HashMap<String, UpstreamImage>,
    blobs: HashMap<String, Bytes>,
    mode: Option<Mode>,
    /// Blob `GET`s answered, by digest.
    blob_gets: HashMap<String, u64>,
    manifest_requests: u64,
    /// A pause after each MiB of a blob, so that requests overlap.
    pace: Option<Duration>,
}

type Shared = Arc<Mutex<UpstreamState>>;

/// The scripted upstream, over plain HTTP on loopback, on a port it keeps
/// across [`stop`](Self::stop) and [`start_again`](Self::start_again).
struct ScriptedUpstream {
    addr: SocketAddr,
    state: Shared,
    running: Option<StoppableServer>,
}

impl ScriptedUpstream {
    async fn start() -> ScriptedUpstream {
        let state: Shared = Arc::default();
        state.lock().unwrap().mode = Some(Mode::Serves);
        let mut upstream = ScriptedUpstream {
            addr: "127.0.0.1:0".parse().unwrap(),
            state,
            running: None,
        };
        upstream.start_again().await;
        upstream
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    async fn start_again(&mut self) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.addr).unwrap();
        let listener = socket.listen(64).unwrap();
        self.addr = listener.local_addr().unwrap();
        let state = self.state.clone();
        let router = axum::Router::new().fallback(move |method: HttpMethod, uri: Uri| {
            let state = state.clone();
            async move { answer(&state, &method, uri.path()) }
        });
        self.running = Some(StoppableServer::start(listener, router));
    }

    /// Closes the listener: connections are refused until started again.
    async fn stop(&mut self) {
        if let Some(mut server) = self.running.take() {
            server.stop().await;
        }
    }

    fn add(&self, tag: &str, image: &UpstreamImage) {
        let mut state = self.state.lock().unwrap();
        state.tags.insert(tag.to_owned(), image.clone());
        state
            .blobs
            .insert(image.config_digest(), Bytes::from(image.config.clone()));
        state
            .blobs
            .insert(image.layer_digest(), Bytes::from(image.layer.clone()));
    }

    fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    fn set_pace(&self, pace: Option<Duration>) {
        self.state.lock().unwrap().pace = pace;
    }

    fn blob_gets(&self, digest: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .blob_gets
            .get(digest)
            .copied()
            .unwrap_or(0)
    }

    fn manifest_requests(&self) -> u64 {
        self.state.lock().unwrap().manifest_requests
    }
}

fn oci_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({"errors": [{"code": code, "message": message}]}).to_string(),
    )
        .into_response()
}

fn answer(state: &Shared, method: &HttpMethod, path: &str) -> Response {
    if path == "/v2/" {
        return "{}".into_response();
    }
    let mut state = state.lock().unwrap();
    if let Some((_, reference)) = path.rsplit_once("/manifests/") {
        state.manifest_requests += 1;
        let found = state.tags.get(reference).cloned().or_else(|| {
            state
                .tags
                .values()
                .find(|i| i.manifest.digest() == reference)
                .cloned()
        });
        return match found {
            Some(image) => (
                [
                    ("content-type", OCI_MANIFEST.to_owned()),
                    ("docker-content-digest", image.manifest.digest()),
                ],
                image.manifest.bytes.clone(),
            )
                .into_response(),
            None => oci_error(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
            ),
        };
    }
    let Some((_, digest)) = path.rsplit_once("/blobs/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match state.mode.unwrap_or(Mode::Serves) {
        Mode::RateLimits => {
            let mut answer = oci_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TOOMANYREQUESTS",
                "slow down",
            );
            answer
                .headers_mut()
                .insert("retry-after", "2".parse().unwrap());
            return answer;
        }
        Mode::Forgot => {
            return oci_error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown");
        }
        Mode::Serves | Mode::Corrupts => {}
    }
    let Some(bytes) = state.blobs.get(digest).cloned() else {
        return oci_error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown");
    };
    if method == HttpMethod::GET {
        *state.blob_gets.entry(digest.to_owned()).or_default() += 1;
    }
    let bytes = if state.mode == Some(Mode::Corrupts) {
        let mut changed = bytes.to_vec();
        changed[0] ^= 0xff;
        Bytes::from(changed)
    } else {
        bytes
    };
    let pace = state.pace;
    let length = bytes.len();
    let pieces = futures::stream::iter(
        (0..length)
            .step_by(MIB)
            .map(move |start| bytes.slice(start..(start + MIB).min(length))),
    )
    .then(move |piece| async move {
        if let Some(pace) = pace {
            tokio::time::sleep(pace).await;
        }
        Ok::<_, std::io::Error>(piece)
    });
    (
        [
            ("content-type", "application/octet-stream".to_owned()),
            ("content-length", length.to_string()),
            ("docker-content-digest", digest.to_owned()),
        ],
        Body::from_stream(pieces),
    )
        .into_response()
}

/// A scripted upstream and a berth (embedded default) with project `team`.
struct Setup {
    dir: tempfile::TempDir,
    upstream: ScriptedUpstream,
    berth: BerthProcess,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let upstream = ScriptedUpstream::start().await;
    let berth = start_berth(dir.path(), &[]).await;
    berth.client().create_project("team").await;
    Setup {
        dir,
        upstream,
        berth,
    }
}

async fn start_berth(data_dir: &std::path::Path, env: &[(&str, String)]) -> BerthProcess {
    let mut serve = BerthProcess::serve(data_dir).admin_password(ADMIN_PASSWORD);
    for (name, value) in env {
        serve = serve.env(name, value.clone());
    }
    serve.start().await
}

/// [`setup`], with an image of one `layer_size` layer upstream as
/// `lib/app:1`, imported into `team/app:1` with reference policy `Local`.
async fn setup_with_local_image(label: &str, layer_size: usize) -> (Setup, UpstreamImage) {
    let setup = setup().await;
    let image = UpstreamImage::new(label, layer_size);
    setup.upstream.add("1", &image);
    import(setup.berth.client(), &setup.upstream, &["1"], "Local").await;
    (setup, image)
}

/// Imports `tags` of the upstream's `lib/app` into `team/app` with
/// reference policy `policy`.
async fn import(client: &RegistryClient, upstream: &ScriptedUpstream, tags: &[&str], policy: &str) {
    let images: Vec<Value> = tags
        .iter()
        .map(|tag| {
            json!({
                "from": {"kind": "DockerImage", "name": format!("{}/lib/app:{tag}", upstream.host())},
                "to": {"name": tag},
                "importPolicy": {"insecure": true},
                "referencePolicy": {"type": policy},
            })
        })
        .collect();
    let answer = client
        .api_call(
            Method::POST,
            "/api/v1/namespaces/team/imagestreamimports",
            Some(json!({"metadata": {"name": "app"}, "spec": {"import": true, "images": images}})),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
}

/// `METHOD /v2/REPO/blobs/DIGEST` through berth.
async fn blob_request(
    client: &RegistryClient,
    method: Method,
    repo: &str,
    digest: &str,
) -> reqwest::Response {
    client
        .request(method, &format!("/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .expect("blob request answered")
}

/// The error a blob `GET` through berth answers: status, code, message.
async fn blob_error(client: &RegistryClient, repo: &str, digest: &str) -> (u16, String, String) {
    error_of(blob_request(client, Method::GET, repo, digest).await).await
}

/// A blob `GET` through berth: the status, and the body if it all came.
async fn get_blob(
    client: &RegistryClient,
    repo: &str,
    digest: &str,
) -> (u16, Result<Vec<u8>, String>) {
    let response = blob_request(client, Method::GET, repo, digest).await;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string());
    (status, body)
}

async fn start_upload(client: &RegistryClient, repo: &str) -> reqwest::Response {
    client
        .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .expect("upload POST answered")
}

/// A blob `GET` through berth that must give exactly `expected`.
async fn pull_blob(client: &RegistryClient, repo: &str, expected: &[u8]) {
    let digest = sha256(expected);
    let (status, body) = get_blob(client, repo, &digest).await;
    assert_eq!(status, 200, "GET {repo}@{digest}: {body:?}");
    let body = body.expect("the whole blob");
    assert_eq!(body.len(), expected.len(), "{digest}: length");
    assert_eq!(sha256(&body), digest, "{digest}: bytes");
}

async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let error = &body["errors"][0];
    (
        status,
        error["code"].as_str().unwrap_or("").to_owned(),
        error["message"].as_str().unwrap_or("").to_owned(),
    )
}

fn condition(stream: &Value, tag: &str, kind: &str) -> Option<Value> {
    stream["status"]["tags"]
        .as_array()?
        .iter()
        .find(|t| t["tag"] == tag)?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .cloned()
}

fn blobs_stored(stream: &Value, tag: &str) -> Value {
    stream["status"]["tags"]
        .as_array()
        .and_then(|tags| tags.iter().find(|t| t["tag"] == tag))
        .map(|t| t["items"][0]["blobsStored"].clone())
        .unwrap_or(Value::Null)
}

/// Waits until berth stores the layer of tag `1` (as `berth describe is`
/// counts it).
async fn layer_stored_eventually(client: &RegistryClient, what: &str) {
    eventually(what, || async {
        let described = stream(client).await;
        (blobs_stored(&described, "1")["stored"] == 1).then_some(())
    })
    .await;
}

async fn stream(client: &RegistryClient) -> Value {
    client
        .api_get("/api/v1/namespaces/team/imagestreams/app")
        .await
        .ok(200)
        .clone()
}

/// Polls `attempt` until it answers `Some`, for at most 40 s.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(done) = attempt().await {
            return done;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{what}: not within 40 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// 20 clients at once pull one uncached 64 MiB layer through `replicas`
/// (round robin): every one gets the right bytes, and the upstream sends
/// the layer at most once per replica.
async fn concurrent_first_pulls(replicas: &[&BerthProcess], upstream: &ScriptedUpstream) {
    let image = UpstreamImage::new("big", 64 * MIB);
    upstream.add("big", &image);
    import(replicas[0].client(), upstream, &["big"], "Local").await;
    // About 1.3 s from first to last byte: the 20 requests overlap it.
    upstream.set_pace(Some(Duration::from_millis(20)));
    let started = Instant::now();
    let pulls = (0..20).map(|i| {
        let client = replicas[i % replicas.len()].client().clone();
        let layer = image.layer.clone();
        tokio::spawn(async move { pull_blob(&client, "team/app", &layer).await })
    });
    for pull in futures::future::join_all(pulls).await {
        pull.expect("a pull task");
    }
    upstream.set_pace(None);
    let downloads = upstream.blob_gets(&image.layer_digest());
    assert!(
        (1..=replicas.len() as u64).contains(&downloads),
        "20 concurrent pulls through {} replica(s) caused {downloads} upstream downloads",
        replicas.len()
    );
    eprintln!(
        "20 concurrent first pulls of 64 MiB through {} replica(s): {:?}, {downloads} upstream download(s)",
        replicas.len(),
        started.elapsed()
    );
    // Served from berth from now on.
    pull_blob(replicas[0].client(), "team/app", &image.layer).await;
    assert_eq!(upstream.blob_gets(&image.layer_digest()), downloads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_local_import_is_fetched_once_then_served_from_berth() {
    let Setup {
        dir: _dir,
        upstream,
        berth,
    } = setup().await;
    let admin = berth.client();

    concurrent_first_pulls(&[&berth], &upstream).await;

    // A small image: its config and layer fetched when pulled, once.
    let small = UpstreamImage::new("small", 300_000);
    upstream.add("1", &small);
    let stored_bytes = async || {
        admin.api_get("/api/v1/namespaces/team/usage").await.ok(200)["usage"]["bytes"]
            .as_u64()
            .unwrap()
    };
    let before_import = stored_bytes().await;
    import(admin, &upstream, &["1"], "Local").await;
    // The import stores the manifest only: only it is accounted for.
    let after_import = stored_bytes().await;
    assert_eq!(
        after_import,
        before_import + small.manifest.bytes.len() as u64
    );
    let before = stream(admin).await;
    assert_eq!(blobs_stored(&before, "1"), json!({"stored": 0, "total": 2}));
    let manifest = admin
        .request(Method::GET, "/v2/team/app/manifests/1")
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), 200);
    assert_eq!(manifest.bytes().await.unwrap(), small.manifest.bytes);
    // HEAD of an uncached blob answers its size (and starts the fetch).
    let head = blob_request(admin, Method::HEAD, "team/app", &small.layer_digest()).await;
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"].to_str().unwrap(),
        small.layer.len().to_string()
    );
    pull_blob(admin, "team/app", &small.layer).await;
    pull_blob(admin, "team/app", &small.config).await;
    // A range of a blob now stored.
    let range = admin
        .request(
            Method::GET,
            &format!("/v2/team/app/blobs/{}", small.layer_digest()),
        )
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.bytes().await.unwrap(), small.layer[10..20]);
    assert_eq!(upstream.blob_gets(&small.layer_digest()), 1);
    assert_eq!(upstream.blob_gets(&small.config_digest()), 1);
    // Stored once verified and committed, which may end just after the
    // puller got the last byte.
    eventually("both blobs stored", || async {
        let after = stream(admin).await;
        (blobs_stored(&after, "1") == json!({"stored": 2, "total": 2})).then_some(())
    })
    .await;
    // The fill is accounted for exactly: its blobs' bytes, once.
    assert_eq!(
        stored_bytes().await,
        after_import + (small.layer.len() + small.config.len()) as u64
    );

    // A digest no image of the repository references is not fetched.
    let stranger = sha256(b"not part of any image");
    let (status, _) = get_blob(admin, "team/app", &stranger).await;
    assert_eq!(status, 404);
    assert_eq!(upstream.blob_gets(&stranger), 0);

    // Reference policy Source: berth points at the upstream, fetches
    // nothing, and says so.
    let sourced = UpstreamImage::new("sourced", 1000);
    upstream.add("s", &sourced);
    import(admin, &upstream, &["s"], "Source").await;
    let (status, code, message) = blob_error(admin, "team/app", &sourced.layer_digest()).await;
    assert_eq!((status, code.as_str()), (404, "BLOB_UNKNOWN"), "{message}");
    assert!(message.contains("reference policy Source"), "{message}");
    assert_eq!(upstream.blob_gets(&sourced.layer_digest()), 0);

    // The metrics count what happened.
    let metrics = admin
        .anonymous()
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "berth_pull_through_fetches_total{host=",
        "berth_pull_through_bytes_total{host=",
        "berth_pull_through_requests_total{result=\"miss\"}",
    ] {
        assert!(metrics.contains(needle), "no {needle} in /metrics");
    }
    // One log line per upstream fetch, with digest, size and outcome.
    let log = berth.log();
    let line = log
        .lines()
        .find(|l| l.contains("pull-through fetch") && l.contains(&small.layer_digest()))
        .expect("a log line for the fetch");
    assert!(line.contains("stored") && line.contains("300000"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_download_a_blob_at_most_once_each() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("shared-storage").display().to_string();
    let env = [
        ("BERTH_DATABASE_URL", database.url.clone()),
        ("BERTH_STORAGE_FILESYSTEM_ROOT_DIRECTORY", storage),
    ];
    let first = start_berth(&dir.path().join("a"), &env).await;
    let second = start_berth(&dir.path().join("b"), &env).await;
    first.client().create_project("team").await;
    let upstream = ScriptedUpstream::start().await;
    concurrent_first_pulls(&[&first, &second], &upstream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upstream_failures_are_told_clearly_and_cached_images_still_pull() {
    let Setup {
        dir: _dir,
        mut upstream,
        berth,
    } = setup().await;
    let admin = berth.client();
    let cached = UpstreamImage::new("cached", 2 * MIB);
    let uncached = UpstreamImage::new("uncached", 2 * MIB);
    upstream.add("cached", &cached);
    upstream.add("uncached", &uncached);
    import(admin, &upstream, &["cached", "uncached"], "Local").await;
    pull_blob(admin, "team/app", &cached.layer).await;
    pull_blob(admin, "team/app", &cached.config).await;

    // The upstream forgot a blob (garbage-collected there): 404
    // BLOB_UNKNOWN naming the upstream, not a 500.
    upstream.set_mode(Mode::Forgot);
    let (status, code, message) = blob_error(admin, "team/app", &uncached.layer_digest()).await;
    assert_eq!((status, code.as_str()), (404, "BLOB_UNKNOWN"), "{message}");
    assert!(message.contains(&upstream.host()), "{message}");

    // Rate-limited: 429 with the upstream's Retry-After.
    upstream.set_mode(Mode::RateLimits);
    let response = blob_request(admin, Method::GET, "team/app", &uncached.layer_digest()).await;
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, code, message) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (429, "TOOMANYREQUESTS"),
        "{message}"
    );
    assert_eq!(retry_after.as_deref(), Some("2"));
    upstream.set_mode(Mode::Serves);

    // The upstream stops: the cached image still pulls, whole; the other
    // fails with 503 naming the upstream, and the tag records it.
    upstream.stop().await;
    let manifest = admin
        .request(Method::GET, "/v2/team/app/manifests/cached")
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), 200);
    pull_blob(admin, "team/app", &cached.layer).await;
    pull_blob(admin, "team/app", &cached.config).await;
    // Wait out the rate limit's back-off, then find the upstream down.
    let message = eventually("the upstream reported down", || async {
        let (status, code, message) = blob_error(admin, "team/app", &uncached.layer_digest()).await;
        assert_eq!((status, code.as_str()), (503, "UNAVAILABLE"), "{message}");
        message.contains("unreachable").then_some(message)
    })
    .await;
    assert!(message.contains(&upstream.host()), "{message}");
    let recorded = condition(&stream(admin).await, "uncached", "PullThroughSuccess")
        .expect("a PullThroughSuccess condition on the tag");
    assert_eq!(recorded["status"], "False");
    assert_eq!(recorded["reason"], "UpstreamUnavailable");

    // Back: once the back-off has passed, the blob comes, and the
    // condition is cleared.
    upstream.start_again().await;
    eventually(
        "the uncached layer pulled after the upstream came back",
        || async {
            let (status, body) = get_blob(admin, "team/app", &uncached.layer_digest()).await;
            (status == 200)
                .then(|| assert_eq!(sha256(&body.expect("body")), uncached.layer_digest()))
        },
    )
    .await;
    // Cleared once the fill's bookkeeping is done, just after the bytes.
    eventually("the condition cleared after a success", || async {
        condition(&stream(admin).await, "uncached", "PullThroughSuccess")
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_upstream_blob_is_refused_and_not_stored() {
    let (
        Setup {
            dir,
            upstream,
            berth,
        },
        image,
    ) = setup_with_local_image("corrupt", 3 * MIB).await;
    let admin = berth.client();
    upstream.set_mode(Mode::Corrupts);
    let (status, body) = get_blob(admin, "team/app", &image.layer_digest()).await;
    // The answer starts before the end is known, so it is cut short: the
    // last byte is held back until the digest matched, and never sent.
    assert_eq!(status, 200);
    match body {
        Err(_) => {}
        Ok(bytes) => assert!(
            bytes.len() < image.layer.len(),
            "a corrupt blob was served whole ({} bytes)",
            bytes.len()
        ),
    }
    // Not stored: the next request fetches again, and now fails before
    // answering (berth knows nothing good of it).
    let hex = image
        .layer_digest()
        .trim_start_matches("sha256:")
        .to_owned();
    let stored = dir
        .path()
        .join("storage/blobs/sha256")
        .join(&hex[..2])
        .join(&hex);
    assert!(!stored.exists(), "a corrupt blob was stored");
    assert_eq!(
        blobs_stored(&stream(admin).await, "1"),
        json!({"stored": 0, "total": 2})
    );
    let log = berth.log();
    assert!(
        log.lines().any(|l| l.contains("pull-through fetch")
            && l.contains("failed")
            && l.contains("digest")),
        "no failed fetch logged"
    );
    // The upstream mended: the right bytes, stored.
    upstream.set_mode(Mode::Serves);
    eventually("the mended blob pulled", || async {
        let (status, body) = get_blob(admin, "team/app", &image.layer_digest()).await;
        let body = body.ok()?;
        (status == 200 && sha256(&body) == image.layer_digest()).then_some(())
    })
    .await;
    eventually("the good blob stored", || async {
        stored.exists().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_proxy_namespace_caches_an_upstream_registry() {
    let dir = tempfile::tempdir().unwrap();
    let mut upstream = ScriptedUpstream::start().await;
    let berth = start_berth(dir.path(), &[]).await;
    let admin = berth.client();
    let first = UpstreamImage::new("alpine 1", 500_000);
    upstream.add("3.20", &first);

    let created = admin
        .api_post(
            "/api/v1/proxies",
            json!({"metadata": {"name": "hub"},
                   "spec": {"upstream": format!("http://{}", upstream.host()), "ttl": "2s"}}),
        )
        .await;
    let proxy = created.ok(201);
    assert_eq!(proxy["spec"]["insecure"], true);
    assert_eq!(proxy["spec"]["ttl"], "2s");
    // Bad requests: no upstream, a path in it, a TTL that is not one.
    for spec in [
        json!({"upstream": ""}),
        json!({"upstream": "https://quay.io/org"}),
        json!({"upstream": "https://quay.io", "ttl": "soon"}),
    ] {
        let answer = admin
            .api_post(
                "/api/v1/proxies",
                json!({"metadata": {"name": "bad"}, "spec": spec}),
            )
            .await;
        assert_eq!(answer.status.as_u16(), 422, "{spec}: {}", answer.body);
    }
    assert_eq!(
        admin.api_get("/api/v1/projects/bad").await.status.as_u16(),
        404
    );

    // The first pull fetches the tag and its blobs; library/-style names
    // pass through as they are.
    let get_manifest = |reference: &str| {
        admin
            .request(
                Method::GET,
                &format!("/v2/hub/library/alpine/manifests/{reference}"),
            )
            .header("accept", OCI_MANIFEST)
            .send()
    };
    let answer = get_manifest("3.20").await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.bytes().await.unwrap(), first.manifest.bytes);
    pull_blob(admin, "hub/library/alpine", &first.layer).await;
    pull_blob(admin, "hub/library/alpine", &first.config).await;
    // Within the TTL: served without asking the upstream.
    let asked = upstream.manifest_requests();
    assert_eq!(get_manifest("3.20").await.unwrap().status(), 200);
    assert_eq!(upstream.manifest_requests(), asked);

    // The tag moves upstream: after the TTL berth serves the new image.
    let second = UpstreamImage::new("alpine 2", 400_000);
    upstream.add("3.20", &second);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let answer = get_manifest("3.20").await.unwrap();
    assert_eq!(answer.bytes().await.unwrap(), second.manifest.bytes);
    // An unknown tag: 404 naming the upstream.
    let (status, code, message) = error_of(get_manifest("nope").await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (404, "MANIFEST_UNKNOWN"),
        "{message}"
    );
    assert!(message.contains(&upstream.host()), "{message}");
    // By digest, a manifest berth has not seen yet.
    upstream.add("3.21", &UpstreamImage::new("alpine 3", 1000));
    let third = UpstreamImage::new("alpine 3", 1000);
    let answer = get_manifest(&third.manifest.digest()).await.unwrap();
    assert_eq!(answer.status(), 200);

    // The upstream down: the cached tag is served as it is, past its TTL.
    upstream.stop().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let answer = get_manifest("3.20").await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.bytes().await.unwrap(), second.manifest.bytes);
    upstream.start_again().await;

    // Pushes are refused, saying why.
    let (status, code, message) = error_of(start_upload(admin, "hub/mine").await).await;
    assert_eq!((status, code.as_str()), (403, "DENIED"), "{message}");
    assert!(message.contains("pull-through cache"), "{message}");

    // Listed, and removed (the project stays, pushes are taken again).
    let list = admin.api_get("/api/v1/proxies").await;
    assert_eq!(list.ok(200)["items"][0]["metadata"]["name"], "hub");
    admin.api_delete("/api/v1/proxies/hub").await.ok(200);
    assert_eq!(start_upload(admin, "hub/mine").await.status(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pull_that_goes_away_does_not_stop_the_download() {
    let (setup, image) = setup_with_local_image("abandoned", 16 * MIB).await;
    let (upstream, admin) = (&setup.upstream, setup.berth.client());
    upstream.set_pace(Some(Duration::from_millis(50)));
    // One client reads the first piece and hangs up.
    let mut response = blob_request(admin, Method::GET, "team/app", &image.layer_digest()).await;
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().expect("a first piece");
    assert_eq!(first[..], image.layer[..first.len()]);
    drop(response);
    // The download goes on to the end and is stored: the next pull is
    // served by berth, without asking the upstream again.
    layer_stored_eventually(admin, "the abandoned download stored").await;
    upstream.set_pace(None);
    pull_blob(admin, "team/app", &image.layer).await;
    assert_eq!(upstream.blob_gets(&image.layer_digest()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pulls_that_fall_behind_or_join_late_get_every_byte() {
    let (setup, image) = setup_with_local_image("behind", 24 * MIB).await;
    let (upstream, admin) = (&setup.upstream, setup.berth.client());
    let digest = image.layer_digest();
    // 1 MiB every 40 ms: about a second from first to last byte.
    upstream.set_pace(Some(Duration::from_millis(40)));
    // One client reads the first piece, then stops reading while the
    // rest arrives: what it reads later is far behind the newest bytes
    // berth holds in memory.
    let mut behind = blob_request(admin, Method::GET, "team/app", &digest).await;
    assert_eq!(behind.status(), 200);
    let mut behind_body = behind
        .chunk()
        .await
        .unwrap()
        .expect("a first piece")
        .to_vec();
    // Another joins when about half has come.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = {
        let client = admin.clone();
        let layer = image.layer.clone();
        tokio::spawn(async move { pull_blob(&client, "team/app", &layer).await })
    };
    layer_stored_eventually(admin, "the blob stored").await;
    while let Some(piece) = behind.chunk().await.expect("the rest of the blob") {
        behind_body.extend_from_slice(&piece);
    }
    assert_eq!(
        behind_body.len(),
        image.layer.len(),
        "length read after falling behind"
    );
    assert!(
        behind_body == image.layer,
        "bytes read after falling behind"
    );
    late.await.expect("the late pull");
    upstream.set_pace(None);
    assert_eq!(upstream.blob_gets(&digest), 1);
    pull_blob(admin, "team/app", &image.layer).await;
    assert_eq!(upstream.blob_gets(&digest), 1);
}

/// The disk fills while a blob is fetched: the pull fails (never with the
/// whole blob), nothing of it is stored or left in the uploads, berth
/// keeps serving; once there is space the next pull fetches it again and
/// stores it. Mounting the small disk needs root (`BERTH_REQUIRE_ROOT=1` in
/// CI makes its absence a failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disk_that_fills_during_a_fill_stores_nothing_and_the_next_pull_recovers() {
    let Some(disk) = SmallDisk::mount("64m") else {
        return;
    };
    let upstream = ScriptedUpstream::start().await;
    let berth = start_berth(&disk.mount_point, &[]).await;
    let admin = berth.client();
    admin.create_project("team").await;
    let image = UpstreamImage::new("no-room", 16 * MIB);
    upstream.add("1", &image);
    import(admin, &upstream, &["1"], "Local").await;
    let digest = image.layer_digest();

    // 4 MiB left: the database still writes, the 16 MiB blob cannot fit.
    let filler = disk.fill();
    let filled = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(filled - 4 * MIB as u64)
        .unwrap();
    let (status, body) = get_blob(admin, "team/app", &digest).await;
    assert!(
        status != 200 || body.as_ref().is_err(),
        "a pull with no room to store the blob: {status}, {} bytes",
        body.as_ref().map(|b| b.len()).unwrap_or(0)
    );
    let uploads = disk.mount_point.join("storage/uploads");
    eventually("the failed fill's upload gone", || async {
        let left: Vec<_> = std::fs::read_dir(&uploads)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        left.is_empty().then_some(())
    })
    .await;
    let described = stream(admin).await;
    assert_eq!(blobs_stored(&described, "1")["stored"], 0, "{described}");
    // What berth holds still pulls meanwhile.
    let manifest = admin.get("/v2/team/app/manifests/1").await;
    assert_eq!(manifest.status(), 200);

    std::fs::remove_file(&filler).unwrap();
    pull_blob(admin, "team/app", &image.layer).await;
    layer_stored_eventually(admin, "the blob stored once there is room").await;
    assert_eq!(upstream.blob_gets(&digest), 2);
    pull_blob(admin, "team/app", &image.layer).await;
    assert_eq!(upstream.blob_gets(&digest), 2);
}

/// The upstream is another berth, behind its own token service: the fill
/// answers the upstream's Bearer challenge with `team`'s pull secret, and
/// the layers are served and stored by this berth; once stored, they pull
/// with the upstream gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_berth_as_the_upstream_is_pulled_through_with_the_pull_secret() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let upstream = start_berth(&dir.path().join("upstream"), &[]).await;
    let pushed = upstream.client().push_image("myorg/myimage", "1").await;
    let host = upstream.url().trim_start_matches("http://").to_owned();
    let berth = start_berth(&dir.path().join("berth"), &[]).await;
    let admin = berth.client();
    admin.create_project("team").await;
    let auths = json!({"auths": {host.clone(): {"username": "admin", "password": ADMIN_PASSWORD}}});
    let secret = json!({
        "metadata": {"name": "upstream-berth"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(auths.to_string())},
    });
    let created = admin
        .api_call(
            Method::POST,
            "/api/v1/namespaces/team/secrets",
            Some(secret),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let import = json!({
        "metadata": {"name": "app"},
        "spec": {"import": true, "images": [{
            "from": {"kind": "DockerImage", "name": format!("{host}/myorg/myimage:1")},
            "to": {"name": "1"},
            "importPolicy": {"insecure": true},
            "referencePolicy": {"type": "Local"},
        }]},
    });
    let imported = admin
        .api_call(
            Method::POST,
            "/api/v1/namespaces/team/imagestreamimports",
            Some(import),
        )
        .await;
    assert_eq!(imported.status, 201, "{}", imported.body);

    let blobs: Vec<Descriptor> = std::iter::once(pushed.config.clone())
        .chain(pushed.layers.iter().cloned())
        .collect();
    let pull_all = || async {
        for blob in &blobs {
            let (status, body) = get_blob(admin, "team/app", &blob.digest).await;
            assert_eq!(status, 200, "{}: {body:?}", blob.digest);
            let body = body.expect("the whole blob");
            assert_eq!(body.len() as u64, blob.size, "{}", blob.digest);
            assert_eq!(sha256(&body), blob.digest);
        }
    };
    pull_all().await;
    eventually("every blob stored", || async {
        let described = stream(admin).await;
        (blobs_stored(&described, "1")["stored"] == blobs.len()).then_some(())
    })
    .await;
    drop(upstream);
    pull_all().await;
}
