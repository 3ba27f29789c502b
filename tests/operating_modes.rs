//! Operating modes of the operator's `Config`: `readOnly` (pulls served,
//! writes refused with the spec's error and nothing changed) and
//! `requests.read|write` (requests past the bound shed with `429` and
//! `Retry-After`, the registry still answering), against the real binary.

mod common;

use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PASSWORD: &str = "operating-modes-password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_serves_pulls_and_refuses_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut berth = BerthProcess::serve(&data)
        .admin_password(PASSWORD)
        .start()
        .await;
    let image = berth.push_image("proj/app", "v1").await;
    berth.terminate();
    berth
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("berth stops");

    let berth = BerthProcess::serve(&data)
        .admin_password(PASSWORD)
        .env("BERTH_READ_ONLY", "true")
        .start()
        .await;
    // Pulls work as before.
    let pulled = expect_status(berth.get_manifest("proj/app", "v1").await, StatusCode::OK).await;
    assert_eq!(header(&pulled, "docker-content-digest"), image.digest);
    let layer = &image.layers[0];
    let bytes = berth.blob_bytes("proj/app", &layer.digest).await;
    assert_eq!(sha256(&bytes), layer.digest);

    // Every kind of write is refused the same way, and says why.
    let other = image_config("never stored");
    let refusals = [
        ("start an upload", berth.post_upload("proj/app", "").await),
        (
            "push a blob in one request",
            berth.post_blob("proj/app", &sha256(&other), &other).await,
        ),
        (
            "mount a blob",
            berth
                .mount_blob("proj/other", &layer.digest, Some("proj/app"))
                .await,
        ),
        (
            "push a manifest",
            berth.put_manifest("proj/app", "v2", &image.manifest).await,
        ),
        (
            "delete a manifest",
            berth.delete_manifest("proj/app", &image.digest).await,
        ),
        (
            "delete a blob",
            berth.delete_blob("proj/app", &layer.digest).await,
        ),
    ];
    for (what, response) in refusals {
        let body = expect_status(response, StatusCode::METHOD_NOT_ALLOWED).await;
        let errors: serde_json::Value = body.json().await.unwrap();
        assert_eq!(
            errors["errors"][0]["code"], "UNSUPPORTED",
            "{what}: {errors}"
        );
        let message = errors["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("read-only"), "{what}: {message}");
    }
    // Nothing changed.
    assert_eq!(berth.tags("proj/app").await, ["v1"]);
    expect_status(
        berth.head_blob("proj/app", &layer.digest).await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        berth.head_blob("proj/other", &layer.digest).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

/// Sends a GET for `path` with Basic credentials on a raw connection and
/// reads only the response head, leaving the body unread: the request
/// holds its place until its body is sent, which a silent reader delays.
async fn start_unread_download(berth: &BerthProcess, path: &str) -> TcpStream {
    use base64::Engine as _;
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"));
    let mut stream = TcpStream::connect(berth.addr).await.unwrap();
    stream
        .write_all(
            format!(
                "GET {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Basic {credentials}\r\n\r\n",
                berth.addr
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut head = [0u8; 512];
    let read = stream.read(&mut head).await.unwrap();
    let text = String::from_utf8_lossy(&head[..read]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    stream
}

/// berth serving one read at a time with room for one more in the queue,
/// and the blob it holds for them to read.
struct OneReadAtATime {
    _dir: tempfile::TempDir,
    berth: BerthProcess,
    big: Vec<u8>,
    digest: String,
    /// The blob's `/v2/` path.
    path: String,
}

/// [`OneReadAtATime`], where a queued read waits at most `queue_wait`,
/// with the settings `more` too.
async fn one_read_at_a_time(queue_wait: &str, more: &[(&str, &str)]) -> OneReadAtATime {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("BERTH_REQUESTS_READ_MAX_RUNNING", "1"),
        ("BERTH_REQUESTS_READ_MAX_IN_QUEUE", "1"),
        ("BERTH_REQUESTS_READ_MAX_WAIT_IN_QUEUE", queue_wait),
    ];
    env.extend_from_slice(more);
    let berth = BerthProcess::serve(&dir.path().join("data"))
        .admin_password(PASSWORD)
        .envs(&env)
        .start()
        .await;
    // Large enough that the socket's buffers cannot hold it all.
    let big = blob_content("big", 64 << 20);
    let digest = berth.push_blob("proj/app", &big).await;
    let path = format!("/v2/proj/app/blobs/{digest}");
    OneReadAtATime {
        _dir: dir,
        berth,
        big,
        digest,
        path,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_past_the_bound_are_shed_with_retry_after_and_served_again_when_freed() {
    let OneReadAtATime {
        _dir,
        berth,
        digest,
        path,
        ..
    } = one_read_at_a_time("2s", &[]).await;

    let unread = start_unread_download(&berth, &path).await;
    // One more waits in the queue, and gets the place when it is freed...
    let queued = {
        let client = berth.client().clone();
        let path = path.clone();
        tokio::spawn(async move { client.send(Method::HEAD, &path).await.status() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...while the next finds the queue full: refused at once.
    let started = std::time::Instant::now();
    let shed = berth.send(Method::HEAD, "/v2/proj/app/manifests/v1").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "shedding must not wait"
    );
    assert_eq!(shed.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&shed, "retry-after"), "2");
    // Writes have their own lane.
    let config = image_config("written while reads are busy");
    let pushed = berth.post_blob("proj/app", &sha256(&config), &config).await;
    assert_eq!(pushed.status(), StatusCode::CREATED);

    drop(unread);
    assert_eq!(queued.await.unwrap(), StatusCode::OK);
    expect_status(berth.get_blob("proj/app", &digest).await, StatusCode::OK).await;
}

/// A client that asks for a blob and reads none of it would keep its place
/// among `requests.read` for ever; `http.timeouts.sendStall` closes its
/// connection and the place goes to the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_left_unread_gives_its_place_back_after_the_send_stall() {
    let OneReadAtATime {
        _dir,
        berth,
        big,
        digest,
        path,
    } = one_read_at_a_time("20s", &[("BERTH_HTTP_TIMEOUTS_SEND_STALL", "2s")]).await;

    let mut unread = start_unread_download(&berth, &path).await;
    let started = std::time::Instant::now();
    let queued = berth.send(Method::HEAD, &path).await;
    assert_eq!(queued.status(), StatusCode::OK);
    let waited = started.elapsed();
    assert!(
        waited > Duration::from_millis(1500) && waited < Duration::from_secs(10),
        "the queued request waited {waited:?}, not about the 2 s send stall"
    );

    // The stalled download was cut short, not finished.
    let mut received = 0usize;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), unread.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received += n,
            Err(_) => panic!("the stalled connection is still open"),
        }
    }
    assert!(received < big.len(), "{received} bytes arrived");
    let metrics = berth.metrics_text().await;
    let stalls = metric_sum(&metrics, "berth_http_send_stalls_total");
    assert!(stalls >= 1.0, "{metrics}");
    expect_status(berth.get_blob("proj/app", &digest).await, StatusCode::OK).await;
}

#[tokio::test]
async fn request_bounds_that_cannot_work_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let refusal = BerthProcess::serve(&dir.path().join("data"))
        .env("BERTH_REQUESTS_WRITE_MAX_IN_QUEUE", "10")
        .run_to_refusal(Duration::from_secs(30))
        .expect("berth refuses to start");
    let said = String::from_utf8_lossy(&refusal.stderr);
    assert!(said.contains("requests.write.maxInQueue"), "{said}");
}

/// PostgreSQL going away and coming back: while it is down, requests fail
/// promptly with `503 UNAVAILABLE` (not `500`, not a hang) and `/readyz`
/// says not ready; once it is back berth serves again by itself, and
/// nothing acknowledged before is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_fails_requests_cleanly_and_berth_recovers_by_itself() {
    let Some(mut server) = PgServer::start().await else {
        return;
    };
    let database = server.database().await;
    let dir = tempfile::tempdir().unwrap();
    let berth = BerthProcess::serve(&dir.path().join("data"))
        .admin_password(PASSWORD)
        .env("BERTH_DATABASE_URL", database.url.clone())
        .start()
        .await;
    let image = berth.push_image("proj/app", "v1").await;

    server.kill();
    let started = std::time::Instant::now();
    let refused = berth.get_manifest("proj/app", "v1").await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert_header(&refused, "retry-after", "5");
    assert_eq!(
        error_codes(refused, StatusCode::SERVICE_UNAVAILABLE).await,
        ["UNAVAILABLE"]
    );
    let ready = berth.anonymous().get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    server.restart().await;
    let mut back = None;
    for _ in 0..100 {
        let response = berth.get_manifest("proj/app", "v1").await;
        if response.status() == StatusCode::OK {
            back = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = back.expect("berth serves again once PostgreSQL is back");
    assert_eq!(header(&back, "docker-content-digest"), image.digest);
    assert_eq!(
        berth.anonymous().get("/readyz").await.status(),
        StatusCode::OK
    );
    berth.push_image("proj/app", "v2").await;
    assert_eq!(berth.tags("proj/app").await, ["v1", "v2"]);
}
