//! A full disk: the real `berth` binary with its data directory on a small
//! tmpfs that fills up.
//!
//! While the disk is full every write must fail promptly with a clear
//! answer (507, saying the storage is full) and pulls must keep working.
//! Once space returns, berth must recover by itself, and everything it
//! acknowledges from then on must really be committed: still there after
//! the process is killed and started again.
//!
//! Mounting a tmpfs needs root. Without it the test is reported as skipped,
//! or fails when `BERTH_REQUIRE_ROOT=1` (as in CI).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const PASSWORD: &str = "disk-full-test-password";
/// Small enough to fill in a moment, large enough for berth's database.
const TMPFS_SIZE: &str = "48m";
/// A write refused for lack of space must be answered at least this fast.
const PROMPT: Duration = Duration::from_secs(5);

/// Sends a request and checks it was answered promptly.
async fn prompt<F: std::future::Future<Output = reqwest::Response>>(
    what: &str,
    request: F,
) -> reqwest::Response {
    let started = Instant::now();
    let response = request.await;
    assert!(
        started.elapsed() < PROMPT,
        "{what}: answered after {:?}",
        started.elapsed()
    );
    response
}

/// A `/v2/` answer to a write refused for lack of space: 507 and an OCI
/// error body whose message says the storage is full.
async fn assert_storage_full(what: &str, response: reqwest::Response) {
    let response = expect_status(response, StatusCode::INSUFFICIENT_STORAGE).await;
    let body: Value = response.json().await.expect("error body is JSON");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("storage is full"),
        "{what}: message {message:?} does not say the storage is full: {body}"
    );
}

/// The administration API's answer to the same: a `Status` object.
async fn assert_api_storage_full(what: &str, response: reqwest::Response) {
    let response = expect_status(response, StatusCode::INSUFFICIENT_STORAGE).await;
    let body: Value = response.json().await.expect("Status is JSON");
    assert_eq!(body["kind"], "Status", "{what}: {body}");
    assert_eq!(body["code"], 507, "{what}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("storage is full"),
        "{what}: message {message:?} does not say the storage is full"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_and_loses_nothing_acknowledged_after() {
    let Some(disk) = SmallDisk::mount(TMPFS_SIZE) else {
        return;
    };
    let data = disk.mount_point.clone();
    let mut berth = BerthProcess::serve(&data)
        .admin_password(PASSWORD)
        .start()
        .await;

    // Before the disk fills: an image to pull, a token to revoke later, and
    // an upload that will receive chunks while the disk is full.
    let image = berth.push_image("proj/app", "v1").await;
    let token = berth.create_token("/api/v1/tokens", None).await;
    let token_client = berth.with_credentials("anyone", &token.secret);
    expect_status(token_client.get("/v2/").await, StatusCode::OK).await;
    let upload = berth.start_upload("proj/app").await;
    let first_chunk = blob_content("first chunk", MIB);
    let chunk_response = berth.send_chunk(&upload.location, 0, &first_chunk).await;
    let chunk_response = expect_status(chunk_response, StatusCode::ACCEPTED).await;
    let location = header(&chunk_response, "location");

    let filler = disk.fill();

    // Every write is refused promptly and clearly.
    let user = json!({"metadata": {"name": "carol"}, "password": "carol-password-1"});
    for attempt in 0..2 {
        let response = prompt(
            "creating a user",
            berth.api(Method::POST, "/api/v1/users", Some(&user)),
        )
        .await;
        assert_api_storage_full(&format!("creating a user (attempt {attempt})"), response).await;
        let response = prompt(
            "pushing a manifest",
            berth.put_manifest("proj/app", "v2", &image.manifest),
        )
        .await;
        assert_storage_full(&format!("pushing a manifest (attempt {attempt})"), response).await;
    }
    let second_chunk = blob_content("second chunk", 4 * MIB);
    let response = prompt(
        "sending a chunk",
        berth.send_chunk(&location, MIB as u64, &second_chunk),
    )
    .await;
    assert_storage_full("sending a chunk", response).await;
    let response = prompt("starting an upload", berth.post_upload("proj/app", "")).await;
    assert_storage_full("starting an upload", response).await;

    // Pulls keep working, and the refused chunk left the upload as it was.
    assert!(
        berth
            .blob_bytes("proj/app", &image.layers[0].digest)
            .await
            .len()
            == 2048
    );
    let response = expect_status(berth.get_manifest("proj/app", "v1").await, StatusCode::OK).await;
    assert_eq!(response.bytes().await.unwrap(), image.manifest.bytes);
    let status = expect_status(berth.upload_status(&location).await, StatusCode::NO_CONTENT).await;
    assert_upload_range(&status, MIB as u64);

    // Space returns: berth recovers by itself, and what it acknowledges
    // from now on is committed.
    std::fs::remove_file(&filler).expect("freeing the disk");
    berth
        .api_expect(
            Method::POST,
            "/api/v1/users",
            Some(&user),
            StatusCode::CREATED,
        )
        .await;
    let retagged = berth.push_manifest("proj/app", "v2", &image.manifest).await;
    assert_eq!(retagged, image.digest);
    expect_status(
        berth
            .api(
                Method::DELETE,
                &format!("/api/v1/tokens/{}", token.name),
                None,
            )
            .await,
        StatusCode::OK,
    )
    .await;
    expect_status(token_client.get("/v2/").await, StatusCode::UNAUTHORIZED).await;
    let response = berth.send_chunk(&location, MIB as u64, &second_chunk).await;
    let response = expect_status(response, StatusCode::ACCEPTED).await;
    let whole = [first_chunk.as_slice(), second_chunk.as_slice()].concat();
    let whole_digest = sha256(&whole);
    expect_status(
        berth
            .finish_upload(&header(&response, "location"), &whole_digest)
            .await,
        StatusCode::CREATED,
    )
    .await;

    // Killed and started again, berth still has all of it.
    berth.kill();
    let berth = BerthProcess::serve(&data)
        .admin_password(PASSWORD)
        .start()
        .await;
    assert_everything_acknowledged_is_there(&berth, &image, &token, &whole, &whole_digest).await;
}

async fn assert_everything_acknowledged_is_there(
    berth: &BerthProcess,
    image: &PushedImage,
    token: &ApiToken,
    blob: &[u8],
    blob_digest: &str,
) {
    berth
        .api_expect(Method::GET, "/api/v1/users/carol", None, StatusCode::OK)
        .await;
    for tag in ["v1", "v2"] {
        let response =
            expect_status(berth.get_manifest("proj/app", tag).await, StatusCode::OK).await;
        assert_header(&response, "docker-content-digest", &image.digest);
    }
    let revoked = berth.with_credentials("anyone", &token.secret);
    expect_status(revoked.get("/v2/").await, StatusCode::UNAUTHORIZED).await;
    assert!(berth.blob_bytes("proj/app", blob_digest).await == blob);
}
