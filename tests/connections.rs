//! Connections from slow, silent and hostile clients, and shutdown, against
//! the real `berth` binary: timeouts on request headers, idle keep-alive
//! connections and stalled bodies; the bound on connections served at once;
//! the memory a stalled upload holds; SIGTERM with transfers in flight.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PASSWORD: &str = "connections-test-password";

async fn serve(env: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf, BerthProcess) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let berth = BerthProcess::serve(&data)
        .admin_password(PASSWORD)
        .envs(env)
        .start()
        .await;
    (dir, data, berth)
}

/// Waits until the server closes `stream` (end of stream or reset), for at
/// most `limit`; returns how long that took, or `None` if it stayed open.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_bounded_and_closed_and_do_not_lock_others_out() {
    let (_dir, _data, berth) = serve(&[
        ("BERTH_HTTP_MAX_CONNECTIONS", "20"),
        ("BERTH_HTTP_TIMEOUTS_REQUEST_HEADERS", "3s"),
    ])
    .await;
    let mut silent = Vec::new();
    for _ in 0..30 {
        silent.push(TcpStream::connect(berth.addr).await.unwrap());
    }

    // Those past the limit are closed at once; the others only when their
    // time for request headers is up.
    let checks = silent.into_iter().map(|mut stream| async move {
        let closed = closed_within(&mut stream, Duration::from_millis(800)).await;
        (closed, stream)
    });
    let mut refused = 0;
    let mut waiting = Vec::new();
    for (closed, stream) in futures::future::join_all(checks).await {
        match closed {
            Some(_) => refused += 1,
            None => waiting.push(stream),
        }
    }
    assert!(
        (10..=12).contains(&refused),
        "{refused} of 30 connections refused at a limit of 20"
    );
    for stream in &mut waiting {
        let closed = closed_within(stream, Duration::from_secs(6)).await;
        assert!(closed.is_some(), "a silent connection outlived its timeout");
    }

    // The registry serves again, and said what happened.
    expect_status(berth.get("/v2/").await, StatusCode::OK).await;
    assert!(
        berth.log().contains("connection limit reached"),
        "no log line says the limit was reached:\n{}",
        berth.log()
    );
    assert!(berth.metric("berth_http_connections_refused_total").await >= 10.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_and_idle_keep_alive_connections_are_cut_off() {
    let (_dir, _data, berth) = serve(&[
        ("BERTH_HTTP_TIMEOUTS_REQUEST_HEADERS", "2s"),
        ("BERTH_HTTP_TIMEOUTS_IDLE", "2s"),
    ])
    .await;

    // Headers trickled a line every 300 ms never finish.
    let mut trickle = TcpStream::connect(berth.addr).await.unwrap();
    trickle
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: berth\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut cut_off = None;
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if trickle
            .write_all(format!("X-Slow-{i}: x\r\n").as_bytes())
            .await
            .is_err()
        {
            cut_off = Some(started.elapsed());
            break;
        }
    }
    let cut_off = match cut_off {
        Some(at) => at,
        None => closed_within(&mut trickle, Duration::from_secs(1))
            .await
            .map(|_| started.elapsed())
            .expect("a connection trickling headers for 12 s is still open"),
    };
    assert!(
        cut_off < Duration::from_secs(5),
        "cut off after {cut_off:?}"
    );

    // A kept-alive connection waiting for its next request is closed.
    let mut idle = TcpStream::connect(berth.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: berth\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    let closed = closed_within(&mut idle, Duration::from_secs(5)).await;
    let closed = closed.expect("an idle keep-alive connection is still open after 5 s");
    assert!(
        closed >= Duration::from_millis(1500),
        "closed after {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_body_is_cut_off_and_the_upload_goes_on() {
    let (_dir, _data, berth) = serve(&[("BERTH_HTTP_TIMEOUTS_BODY_STALL", "1s")]).await;
    let content = blob_content("stalled", 3 * MIB);
    let upload = berth.start_upload("app").await;

    let started = Instant::now();
    let stalled = berth
        .request(Method::PATCH, &upload.location)
        .header("content-type", "application/octet-stream")
        .body(stalled_body(&content[..MIB], 64 * 1024))
        .send();
    let outcome = tokio::time::timeout(Duration::from_secs(10), stalled)
        .await
        .expect("a stalled PATCH is still waiting after 10 s");
    assert!(started.elapsed() < Duration::from_secs(5));
    if let Ok(response) = outcome {
        assert_error(response, StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID").await;
    }

    // The unfinished chunk left nothing behind; the upload goes on.
    let status = expect_status(
        berth.upload_status(&upload.location).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    assert_upload_range(&status, 0);
    let response = expect_status(
        berth.send_chunk(&upload.location, 0, &content).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let location = header(&response, "location");
    expect_status(
        berth.finish_upload(&location, &sha256(&content)).await,
        StatusCode::CREATED,
    )
    .await;
    assert!(berth.blob_bytes("app", &sha256(&content)).await == content);
}

/// Hundreds of clients that send part of a chunk and then wait must not
/// hold a megabyte of buffers each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_hold_little_memory() {
    const STALLED: usize = 100;
    let (_dir, _data, berth) = serve(&[]).await;
    let part = blob_content("waiting", MIB + MIB / 2);
    // One upload first, so that what every upload needs is allocated.
    berth.push_blob("app", &part).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = berth.resident_bytes();

    let mut requests = Vec::new();
    for _ in 0..STALLED {
        let upload = berth.start_upload("app").await;
        let request = berth
            .request(Method::PATCH, &upload.location)
            .header("content-type", "application/octet-stream")
            .body(stalled_body(&part, 256 * 1024))
            .send();
        requests.push(tokio::spawn(request));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let grown = berth.resident_bytes().saturating_sub(before);
    let per_upload = grown / STALLED as u64;
    assert!(
        per_upload < 256 * 1024,
        "{STALLED} stalled uploads grew berth by {} KiB, {} KiB each",
        grown / 1024,
        per_upload / 1024
    );
    for request in requests {
        request.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_upload_and_a_download_in_flight_finish() {
    let (_dir, _data, mut berth) = serve(&[]).await;
    let download = blob_content("download", 32 * MIB);
    let download_digest = berth.push_blob("app", &download).await;
    let upload = blob_content("upload", 4 * MIB);
    let upload_digest = sha256(&upload);

    // A download read slowly, and an upload sent slowly, both under way.
    let mut response = expect_status(
        berth.get_blob("app", &download_digest).await,
        StatusCode::OK,
    )
    .await;
    let mut received = response
        .chunk()
        .await
        .unwrap()
        .expect("first bytes")
        .to_vec();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let uploading = berth
        .request(
            Method::POST,
            &format!("/v2/app/blobs/uploads/?digest={upload_digest}"),
        )
        .header("content-type", "application/octet-stream")
        .body(slow_body(
            &upload,
            256 * 1024,
            Duration::from_millis(100),
            sent.clone(),
        ))
        .send();
    let uploading = tokio::spawn(uploading);
    while sent.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    berth.terminate();

    while let Some(chunk) = response.chunk().await.expect("the download goes on") {
        received.extend_from_slice(&chunk);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        received == download,
        "the download was cut short or changed"
    );
    let uploaded = uploading.await.unwrap().expect("the upload is answered");
    expect_status(uploaded, StatusCode::CREATED).await;
    let status = berth
        .wait_exit(Duration::from_secs(20))
        .await
        .expect("berth exits once its transfers are done");
    assert!(status.success(), "berth exited with {status}");

    // What was uploaded during the shutdown is there after a restart.
    let data = _data.clone();
    drop(berth);
    let berth = BerthProcess::serve(&data)
        .admin_password(PASSWORD)
        .start()
        .await;
    assert!(berth.blob_bytes("app", &upload_digest).await == upload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_stalled_client_exits_within_the_grace_period() {
    let (_dir, _data, mut berth) = serve(&[("BERTH_HTTP_SHUTDOWN_GRACE_PERIOD", "2s")]).await;
    let upload = berth.start_upload("app").await;
    let content = blob_content("stalled at shutdown", MIB);
    let stalled = berth
        .request(Method::PATCH, &upload.location)
        .header("content-type", "application/octet-stream")
        .body(stalled_body(&content, 64 * 1024))
        .send();
    let _stalled = tokio::spawn(stalled);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    berth.terminate();
    let status = berth
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("berth still runs 10 s after SIGTERM with a 2 s grace period");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "exited after {:?}",
        started.elapsed()
    );
    assert!(status.success(), "berth exited with {status}");
}
