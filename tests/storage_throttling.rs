//! An object store that throttles: S3's `503 SlowDown` answers are retried
//! by berth with backoff and never reach the client; a store that keeps
//! refusing is answered `503 UNAVAILABLE` with a message saying so and a
//! `Retry-After`, never `500`. A store that accepts connections and then
//! never answers fails requests the same way, within `storage.timeouts`.
//!
//! Between berth and SeaweedFS sits a small HTTP proxy of the test's own
//! that passes requests through untouched (signatures included), answers
//! some of them with S3's throttling error, as S3 does under load, or
//! takes them and never answers.
//! A missing SeaweedFS skips these loudly, or fails them with
//! `BERTH_REQUIRE_OBJECT_STORES=1`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use berth::config::S3Storage;
use common::*;
use futures::TryStreamExt;

/// Everything passes.
const PASS: u8 = 0;
/// Every other new request is refused with `503 SlowDown`, once: the same
/// request sent again (a retry) passes.
const EVERY_OTHER: u8 = 1;
/// Every request is refused.
const ALL: u8 = 2;
/// Every request is taken (the connection accepted, the request read) and
/// never answered, as a store that hangs does.
const STALL: u8 = 3;

const SLOW_DOWN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
     <Message>Please reduce your request rate.</Message><RequestId>test</RequestId></Error>";

#[derive(Clone)]
struct Throttle {
    upstream: String,
    mode: Arc<AtomicU8>,
    requests: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    /// Requests refused once (method, path and query, range).
    once: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    http: reqwest::Client,
}

impl Throttle {
    async fn start(upstream: &str) -> (Throttle, SocketAddr) {
        let throttle = Throttle {
            upstream: upstream.trim_end_matches('/').to_owned(),
            mode: Arc::new(AtomicU8::new(PASS)),
            requests: Arc::new(AtomicU64::new(0)),
            refused: Arc::new(AtomicU64::new(0)),
            once: Arc::default(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client"),
        };
        let app = axum::Router::new()
            .fallback(relay)
            .with_state(throttle.clone());
        (throttle, serve_on_loopback(app).await)
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

/// Passes the request to SeaweedFS as it came (the `Host` header too, which
/// the signature covers), or refuses it as a throttled S3 would.
async fn relay(State(throttle): State<Throttle>, request: Request) -> Response {
    let refuse = match throttle.mode.load(Ordering::SeqCst) {
        EVERY_OTHER => {
            let key = format!(
                "{} {} {:?}",
                request.method(),
                request.uri(),
                request.headers().get("range")
            );
            let mut once = throttle.once.lock().expect("not poisoned");
            if once.contains(&key) {
                false
            } else {
                let n = throttle.requests.fetch_add(1, Ordering::SeqCst);
                n % 2 == 1 && once.insert(key)
            }
        }
        ALL => true,
        STALL => {
            throttle.refused.fetch_add(1, Ordering::SeqCst);
            // Held until berth gives up and drops the connection.
            return std::future::pending().await;
        }
        _ => false,
    };
    if refuse {
        throttle.refused.fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(503)
            .header("content-type", "application/xml")
            .body(Body::from(SLOW_DOWN))
            .expect("a response");
    }
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut headers = parts.headers.clone();
    headers.remove("transfer-encoding");
    headers.remove("connection");
    let forwarded = throttle
        .http
        .request(parts.method, format!("{}{path}", throttle.upstream))
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let answer = match forwarded {
        Ok(answer) => answer,
        Err(e) => {
            return Response::builder()
                .status(502)
                .body(Body::from(e.to_string()))
                .expect("a response");
        }
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != "transfer-encoding" && name != "connection" {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .expect("a response")
}

/// berth on an S3 bucket reached through the throttling proxy.
async fn berth_behind_a_throttle() -> Option<(SeaweedMini, Throttle, TestRegistry)> {
    berth_behind_a_throttle_with(|_| {}).await
}

async fn berth_behind_a_throttle_with(
    configure: impl FnOnce(&mut berth::config::Config),
) -> Option<(SeaweedMini, Throttle, TestRegistry)> {
    let mini = SeaweedMini::start().await?;
    let (throttle, addr) = Throttle::start(&mini.endpoint).await;
    let s3 = S3Storage {
        bucket: mini.bucket.clone(),
        region_endpoint: Some(format!("http://{addr}")),
        access_key: Some(mini.access_key.clone()),
        secret_key: Some(mini.secret_key.clone()),
        chunk_size_mib: 5,
        ..S3Storage::default()
    };
    // Reads stream through berth (no redirect), so that its retries are
    // what the client's pulls see.
    let registry = TestRegistry::start_with(|config| {
        config.storage.s3 = Some(s3);
        config.disable_redirect = true;
        configure(config);
    })
    .await;
    Some((mini, throttle, registry))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_answers_are_retried_and_never_reach_the_client() {
    let Some((_mini, throttle, registry)) = berth_behind_a_throttle().await else {
        return;
    };
    throttle.set(EVERY_OTHER);
    let before = throttle.refused.load(Ordering::SeqCst);

    // A blob in one request, one in chunks (parts, then composed by the
    // store), an image, and pulls of them all.
    let content = blob_content("throttled", 12 * MIB + 5);
    let whole = registry.push_blob("team/app", &content).await;
    let chunked = registry
        .push_blob_in_chunks("team/app", &content[..11 * MIB], 3 * MIB + 1)
        .await;
    let image = registry.push_image("team/app", "v1").await;
    assert!(registry.blob_bytes("team/app", &whole).await == content);
    assert!(registry.blob_bytes("team/app", &chunked).await[..] == content[..11 * MIB]);
    for layer in &image.layers {
        let bytes = registry.blob_bytes("team/app", &layer.digest).await;
        assert_eq!(sha256(&bytes), layer.digest);
    }
    let refused = throttle.refused.load(Ordering::SeqCst) - before;
    assert!(
        refused >= 10,
        "the store refused only {refused} requests: the test proved little"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_keeps_refusing_is_answered_503_not_500() {
    let Some((_mini, throttle, registry)) = berth_behind_a_throttle().await else {
        return;
    };
    let content = blob_content("before", MIB);
    let digest = registry.push_blob("team/app", &content).await;
    let upload = registry.start_upload("team/app").await;
    throttle.set(ALL);

    let started = Instant::now();
    let answers = [
        registry.send_chunk(&upload.location, 0, b"refused").await,
        registry.get_blob("team/app", &digest).await,
        registry
            .post_blob("team/app", &sha256(b"new"), b"new")
            .await,
    ];
    for response in answers {
        assert_storage_unavailable(response).await;
    }
    // Each answer came after the retries, which back off for seconds.
    assert!(
        started.elapsed() > Duration::from_secs(3 * 5),
        "{:?}",
        started.elapsed()
    );

    // The store recovers, and so does berth, with nothing lost.
    throttle.set(PASS);
    assert!(registry.blob_bytes("team/app", &digest).await == content);
    let response = registry.send_chunk(&upload.location, 0, b"accepted").await;
    expect_status(response, StatusCode::ACCEPTED).await;
    let response = registry
        .finish_upload(&upload.location, &sha256(b"accepted"))
        .await;
    expect_status(response, StatusCode::CREATED).await;
    let pulled: Vec<bytes::Bytes> = registry
        .get_blob("team/app", &sha256(b"accepted"))
        .await
        .bytes_stream()
        .try_collect()
        .await
        .expect("the blob's bytes");
    assert_eq!(pulled.concat(), b"accepted");
}

/// The store accepts every connection and never answers: each request to it
/// times out after `storage.timeouts.request`, is retried like any other
/// temporary failure, and the client gets `503 UNAVAILABLE` within the
/// bound that makes (six attempts and their backoff), never a hang or a
/// `500`; `/readyz` says not ready at once. Once the store answers again,
/// so does berth, with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_stops_answering_fails_requests_within_the_timeout() {
    const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
    let Some((_mini, throttle, registry)) = berth_behind_a_throttle_with(|config| {
        config.storage.timeouts.request = REQUEST_TIMEOUT;
    })
    .await
    else {
        return;
    };
    let content = blob_content("before the stall", 3 * MIB);
    let digest = registry.push_blob("team/app", &content).await;
    let upload = registry.start_upload("team/app").await;
    assert_eq!(
        registry.anonymous().get("/readyz").await.status(),
        StatusCode::OK
    );
    throttle.set(STALL);

    // Six attempts of 1 s each, and the backoff between them (0.2 s
    // doubling to 3.2 s, each with up to 0.2 s of jitter): at most 13.2 s.
    let bound = 6 * REQUEST_TIMEOUT + Duration::from_millis(7200);
    // A read, a chunk, a whole blob and the readiness probe, at once.
    let chunk = blob_content("a chunk", MIB);
    let new = sha256(b"new");
    let anonymous = registry.anonymous();
    let (read, appended, posted, ready) = tokio::join!(
        timed(registry.get_blob("team/app", &digest)),
        timed(registry.send_chunk(&upload.location, 0, &chunk)),
        timed(registry.post_blob("team/app", &new, b"new")),
        timed(anonymous.get("/readyz")),
    );
    for (response, took) in [read, appended, posted] {
        let url = response.url().clone();
        assert!(
            took >= REQUEST_TIMEOUT && took < bound + Duration::from_secs(5),
            "{url}: answered after {took:?}; the bound is {bound:?}"
        );
        assert_storage_unavailable(response).await;
    }
    let (ready, took) = ready;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        took < REQUEST_TIMEOUT + Duration::from_secs(2),
        "/readyz took {took:?}: one attempt, bounded by the request timeout"
    );
    assert!(
        throttle.refused.load(Ordering::SeqCst) >= 3 * 6,
        "every attempt reached the stalled store"
    );

    // The store answers again: so does berth, with what it had.
    throttle.set(PASS);
    assert_eq!(
        registry.anonymous().get("/readyz").await.status(),
        StatusCode::OK
    );
    assert!(registry.blob_bytes("team/app", &digest).await == content);
    let response = registry.send_chunk(&upload.location, 0, &chunk).await;
    expect_status(response, StatusCode::ACCEPTED).await;
    let response = registry
        .finish_upload(&upload.location, &sha256(&chunk))
        .await;
    expect_status(response, StatusCode::CREATED).await;
    assert!(registry.blob_bytes("team/app", &sha256(&chunk)).await == chunk);
}

/// What `request` answered, and how long it took.
async fn timed<T>(request: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let answer = request.await;
    (answer, started.elapsed())
}

/// `503 UNAVAILABLE` with `Retry-After`, saying the storage is the trouble.
async fn assert_storage_unavailable(response: reqwest::Response) {
    let url = response.url().clone();
    assert_eq!(response.status().as_u16(), 503, "{url}");
    assert_header(&response, "retry-after", "5");
    let body: serde_json::Value = response.json().await.expect("an OCI error body");
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{url}: {body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("storage"), "{url}: {message}");
}
