//! The real `berth` binary: killed mid-upload, refusing unsafe addresses,
//! and bootstrapping its admin password.

mod common;

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
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
    let mut berth = BerthProcess::serve(&data)
        .admin_password(PASSWORD)
        .start()
        .await;
    let blob = blob_content("acknowledged", MIB + 3);
    let blob_digest = berth.push_blob("app", &blob).await;
    let image = berth.push_image("app", "v1").await;

    // A large upload: its first 3 MiB acknowledged, then a chunk streamed
    // without an end: 6 more MiB, then silence.
    let big = blob_content("interrupted", 12 * MIB);
    let big_digest = sha256(&big);
    let upload = berth.start_upload("app").await;
    let acknowledged = 3 * MIB;
    let response = berth
        .send_chunk(&upload.location, 0, &big[..acknowledged])
        .await;
    let response = expect_status(response, StatusCode::ACCEPTED).await;
    assert_upload_range(&response, acknowledged as u64);
    let streaming = berth
        .request(Method::PATCH, &upload.location)
        .header("content-type", "application/octet-stream")
        .body(stalled_body(&big[acknowledged..9 * MIB], 64 * 1024))
        .send();
    let streaming = tokio::spawn(streaming);
    let stored = upload_file(&data, &upload.uuid);
    let started = Instant::now();
    while file_size(&stored) < (acknowledged + 3 * MIB) as u64 {
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

    let berth = BerthProcess::serve(&data)
        .admin_password(PASSWORD)
        .start()
        .await;

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

    // The upload reports what was acknowledged, and goes on from there:
    // the interrupted chunk's bytes, in storage but never acknowledged, are
    // left out.
    let status = berth.upload_status(&upload.location).await;
    let status = expect_status(status, StatusCode::NO_CONTENT).await;
    let held = upload_size_from_range(&status);
    assert_eq!(held, acknowledged as u64, "Range after the restart");
    assert!(
        file_size(&stored) > held,
        "storage holds {} bytes: the interrupted chunk's should be there",
        file_size(&stored)
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
    let serve = BerthProcess::serve(&data).listen_on(Ipv4Addr::UNSPECIFIED);
    let addr = format!("0.0.0.0:{}", serve.port());

    let output = serve
        .run_to_refusal(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("berth kept serving plain HTTP on {addr}"));

    let status = output.status;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success(), "exit status {status}");
    assert!(stderr.contains("plain HTTP"), "stderr: {stderr}");
    assert!(stderr.contains("--insecure-http"), "stderr: {stderr}");
}

#[tokio::test]
async fn plain_http_on_a_public_address_is_served_when_asked_for() {
    let (_dir, data) = data_dir();

    let berth = BerthProcess::serve(&data)
        .admin_password(PASSWORD)
        .listen_on(Ipv4Addr::UNSPECIFIED)
        .args(&["--insecure-http"])
        .start()
        .await;

    expect_status(berth.get("/v2/").await, StatusCode::OK).await;
}

#[tokio::test]
async fn first_start_writes_a_private_admin_password_that_later_starts_keep() {
    let (_dir, data) = data_dir();
    let password_file = data.join("admin-password");

    let mut first = BerthProcess::serve(&data).start().await;

    let written = std::fs::read(&password_file).expect("admin-password is written");
    assert_owner_only(&password_file);
    let password = String::from_utf8(written.clone())
        .unwrap()
        .trim()
        .to_owned();
    assert!(password.len() >= 12, "a short password: {password:?}");
    assert_eq!(first.password(), Some(password.as_str()));
    expect_status(first.get("/v2/").await, StatusCode::OK).await;
    assert_admin_password_refused(&first, "not-it").await;
    first.kill();

    // A second start, even with BERTH_ADMIN_PASSWORD set, changes nothing.
    let second = BerthProcess::serve(&data)
        .admin_password("another-password")
        .start()
        .await;

    assert_eq!(std::fs::read(&password_file).unwrap(), written);
    assert_owner_only(&password_file);
    expect_status(
        second
            .with_credentials(ADMIN_USER, &password)
            .get("/v2/")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_admin_password_refused(&second, "another-password").await;
}

/// berth serving `data` (as the tests' admin), set to crash at `point`.
async fn serve_crashing_at(data: &Path, point: &str) -> BerthProcess {
    BerthProcess::serve(data)
        .admin_password(PASSWORD)
        .env(berth::crash_points::VARIABLE, point)
        .start()
        .await
}

/// Only its owner may read or write the file at `path`.
fn assert_owner_only(path: &Path) {
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}

/// `/v2/` refuses the admin user with `password`.
async fn assert_admin_password_refused(berth: &BerthProcess, password: &str) {
    let caller = berth.with_credentials(ADMIN_USER, password);
    assert_error(
        caller.get("/v2/").await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn admin_password_from_the_environment_writes_no_file() {
    let (_dir, data) = data_dir();

    let berth = BerthProcess::serve(&data)
        .admin_password(PASSWORD)
        .start()
        .await;

    assert!(!data.join("admin-password").exists());
    expect_status(berth.get("/v2/").await, StatusCode::OK).await;
    assert!(!berth.log().contains(PASSWORD), "the password was logged");
}

/// Every blob file in storage holds exactly the bytes its name says: a
/// crash never leaves a partial blob under a blob's name.
fn assert_blob_files_match_their_names(data: &Path) {
    let root = data.join("storage").join("blobs").join("sha256");
    let Ok(prefixes) = std::fs::read_dir(&root) else {
        return;
    };
    for prefix in prefixes {
        for file in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(
                sha256(&bytes),
                format!("sha256:{name}"),
                "{} holds other bytes than its name says",
                path.display()
            );
        }
    }
}

/// berth killed at each step of committing a blob: after a restart,
/// metadata names only blobs storage holds whole, and pushing again works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_each_step_of_a_blob_commit_storage_and_metadata_agree() {
    for point in [
        berth::crash_points::BLOB_AFTER_FSYNC,
        berth::crash_points::BLOB_AFTER_RENAME,
        berth::crash_points::BLOB_AFTER_LINK,
        berth::crash_points::BLOB_AFTER_UPLOAD_ROW_DELETE,
    ] {
        let (_dir, data) = data_dir();
        let mut berth = serve_crashing_at(&data, point).await;
        let content = blob_content(point, 3 * MIB);
        let digest = sha256(&content);
        let upload = berth.start_upload("app").await;
        let response = berth
            .monolithic_put(&upload.location, &digest, &content)
            .send()
            .await;
        assert!(
            response.is_err(),
            "{point}: the commit was answered: {response:?}"
        );
        let status = berth
            .wait_exit(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{point}: berth did not die"));
        assert!(!status.success(), "{point}: {status}");
        assert!(
            berth.log().contains(&format!("crashing at {point}")),
            "{point}"
        );
        drop(berth);

        let berth = BerthProcess::serve(&data)
            .admin_password(PASSWORD)
            .start()
            .await;
        assert_blob_files_match_their_names(&data);
        // Either the blob is in the repository, whole, or it is not at all.
        let head = berth.head_blob("app", &digest).await;
        match head.status() {
            StatusCode::OK => {
                assert!(
                    berth.blob_bytes("app", &digest).await == content,
                    "{point}: linked blob has other bytes"
                );
            }
            StatusCode::NOT_FOUND => {}
            other => panic!("{point}: HEAD of the blob answered {other}"),
        }
        let expected_linked = matches!(
            point,
            berth::crash_points::BLOB_AFTER_LINK
                | berth::crash_points::BLOB_AFTER_UPLOAD_ROW_DELETE
        );
        assert_eq!(head.status() == StatusCode::OK, expected_linked, "{point}");

        // Pushing again works, and so does an image using the blob.
        assert_eq!(berth.push_blob("app", &content).await, digest, "{point}");
        assert!(berth.blob_bytes("app", &digest).await == content, "{point}");
        berth.push_image("app", "after-crash").await;
        assert_blob_files_match_their_names(&data);
    }
}

/// berth killed inside the transaction that stores a manifest: nothing of
/// the manifest is visible after a restart, and pushing it again works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_inside_the_manifest_transaction_nothing_of_it_is_visible() {
    let point = berth::crash_points::MANIFEST_INSIDE_TRANSACTION;
    let (_dir, data) = data_dir();
    let mut berth = serve_crashing_at(&data, point).await;
    let config_bytes = image_config("crash in transaction");
    let layer_bytes = blob_content("crash in transaction", 4096);
    berth.push_blob("app", &config_bytes).await;
    berth.push_blob("app", &layer_bytes).await;
    let manifest = Manifest::from_json(
        OCI_MANIFEST,
        &image_manifest(
            OCI_MANIFEST,
            &Descriptor::of(OCI_CONFIG, &config_bytes),
            &[Descriptor::of(OCI_LAYER, &layer_bytes)],
        ),
    );
    let response = berth
        .request(Method::PUT, "/v2/app/manifests/v1")
        .header("content-type", OCI_MANIFEST)
        .body(manifest.bytes.clone())
        .send()
        .await;
    assert!(
        response.is_err(),
        "the manifest push was answered: {response:?}"
    );
    berth
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("berth died inside the transaction");
    drop(berth);

    let berth = BerthProcess::serve(&data)
        .admin_password(PASSWORD)
        .start()
        .await;
    for reference in ["v1", manifest.digest().as_str()] {
        let response = berth.get_manifest("app", reference).await;
        assert_error(response, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    }
    assert!(berth.tags("app").await.is_empty());
    let digest = berth.push_manifest("app", "v1", &manifest).await;
    assert_eq!(digest, manifest.digest());
    let response = expect_status(berth.get_manifest("app", "v1").await, StatusCode::OK).await;
    assert_eq!(response.bytes().await.unwrap(), manifest.bytes);
}
