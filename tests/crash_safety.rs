//! The real `berth` binary: killed mid-upload, refusing unsafe addresses,
//! and bootstrapping its admin password.

mod common;

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const PASSWORD: &str = "crash-test-password";

/// A temporary directory and a data directory inside it (berth's log goes
/// next to the data directory).
fn data_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    (dir, data)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_berth_keeps_what_it_acknowledged_and_the_interrupted_upload_resumes() {
    let (_dir, data) = data_dir();
    let mut berth = BerthProcess::serve(&data, Some(PASSWORD)).await;
    let blob = blob_content("acknowledged", MIB + 3);
    let blob_digest = berth.push_blob("app", &blob).await;
    let image = berth.push_image("app", "v1").await;

    // A large upload, streamed without an end: 9 of its 12 MiB, then silence.
    let big = blob_content("interrupted", 12 * MIB);
    let big_digest = sha256(&big);
    let upload = berth.start_upload("app").await;
    let streaming = berth
        .request(Method::PATCH, &upload.location)
        .header("content-type", "application/octet-stream")
        .body(stalled_body(&big[..9 * MIB], 64 * 1024))
        .send();
    let streaming = tokio::spawn(streaming);
    let stored = upload_file(&data, &upload.uuid);
    let started = Instant::now();
    while file_size(&stored) < 4 * MIB as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "berth stored {} bytes of the upload",
            file_size(&stored)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let status = berth.kill();

    assert_eq!(status.signal(), Some(9), "berth was killed by SIGKILL");
    let interrupted = streaming.await.unwrap();
    assert!(
        interrupted.is_err(),
        "the interrupted PATCH got an answer: {interrupted:?}"
    );

    let berth = BerthProcess::serve(&data, Some(PASSWORD)).await;

    // What was acknowledged is intact.
    assert!(berth.blob_bytes("app", &blob_digest).await == blob);
    for reference in ["v1", image.digest.as_str()] {
        let response =
            expect_status(berth.get_manifest("app", reference).await, StatusCode::OK).await;
        assert_header(&response, "docker-content-digest", &image.digest);
        assert_eq!(response.bytes().await.unwrap(), image.manifest.bytes);
    }
    for layer in &image.layers {
        let bytes = berth.blob_bytes("app", &layer.digest).await;
        assert_eq!(sha256(&bytes), layer.digest);
    }
    // What was not is not visible.
    let response = berth.head_blob("app", &big_digest).await;
    expect_status(response, StatusCode::NOT_FOUND).await;

    // The upload reports what storage holds, and can be finished from there.
    let status = berth.upload_status(&upload.location).await;
    let status = expect_status(status, StatusCode::NO_CONTENT).await;
    let held = upload_size_from_range(&status);
    assert_eq!(held, file_size(&stored), "Range vs. bytes in storage");
    assert!(
        (4 * MIB as u64..=9 * MIB as u64).contains(&held),
        "holds {held} bytes"
    );
    let rest = &big[held as usize..];
    let response = berth.send_chunk(&upload.location, held, rest).await;
    let response = expect_status(response, StatusCode::ACCEPTED).await;
    assert_upload_range(&response, big.len() as u64);
    let response = berth.finish_upload(&upload.location, &big_digest).await;
    expect_status(response, StatusCode::CREATED).await;
    let pulled = berth.blob_bytes("app", &big_digest).await;
    assert_eq!(sha256(&pulled), big_digest);
}

#[tokio::test]
async fn plain_http_on_a_public_address_is_refused() {
    let (_dir, data) = data_dir();
    let addr = format!("0.0.0.0:{}", free_loopback_port());
    let mut child = berth_command(&[
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--addr",
        &addr,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("berth binary starts");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("berth kept serving plain HTTP on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "exit status {status}");
    assert!(stderr.contains("plain HTTP"), "stderr: {stderr}");
    assert!(stderr.contains("--insecure-http"), "stderr: {stderr}");
}

#[tokio::test]
async fn plain_http_on_a_public_address_is_served_when_asked_for() {
    let (_dir, data) = data_dir();

    let berth = BerthProcess::serve_with(
        &data,
        Some(PASSWORD),
        Ipv4Addr::UNSPECIFIED,
        &["--insecure-http"],
    )
    .await;

    expect_status(berth.get("/v2/").await, StatusCode::OK).await;
}

#[tokio::test]
async fn first_start_writes_a_private_admin_password_that_later_starts_keep() {
    let (_dir, data) = data_dir();
    let password_file = data.join("admin-password");

    let mut first = BerthProcess::serve(&data, None).await;

    let written = std::fs::read(&password_file).expect("admin-password is written");
    let mode = std::fs::metadata(&password_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let password = String::from_utf8(written.clone())
        .unwrap()
        .trim()
        .to_owned();
    assert!(password.len() >= 12, "a short password: {password:?}");
    assert_eq!(first.password(), Some(password.as_str()));
    expect_status(first.get("/v2/").await, StatusCode::OK).await;
    let impostor = first.with_credentials(ADMIN_USER, "not-it");
    assert_error(
        impostor.get("/v2/").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
    first.kill();

    // A second start, even with BERTH_ADMIN_PASSWORD set, changes nothing.
    let second = BerthProcess::serve(&data, Some("another-password")).await;

    assert_eq!(std::fs::read(&password_file).unwrap(), written);
    let mode = std::fs::metadata(&password_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    expect_status(
        second
            .with_credentials(ADMIN_USER, &password)
            .get("/v2/")
            .await,
        StatusCode::OK,
    )
    .await;
    let other = second.with_credentials(ADMIN_USER, "another-password");
    assert_error(
        other.get("/v2/").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn admin_password_from_the_environment_writes_no_file() {
    let (_dir, data) = data_dir();

    let berth = BerthProcess::serve(&data, Some(PASSWORD)).await;

    assert!(!data.join("admin-password").exists());
    expect_status(berth.get("/v2/").await, StatusCode::OK).await;
    assert!(!berth.log().contains(PASSWORD), "the password was logged");
}
