//! Uploads across replicas: berth processes sharing one PostgreSQL
//! database and one S3 bucket (SeaweedFS), configured the way an operator
//! would (`BERTH_DATABASE_URL`, `BERTH_STORAGE_S3_*`). An upload's chunks
//! alternate between the replicas and it is finished on either; a replica
//! killed with SIGKILL right after acknowledging a chunk, or in the middle
//! of one, loses nothing it acknowledged, and the other goes on.
//!
//! A missing SeaweedFS or PostgreSQL skips these loudly, or fails them
//! with `BERTH_REQUIRE_OBJECT_STORES=1` / `BERTH_REQUIRE_POSTGRES=1`.

mod common;

use std::time::{Duration, Instant};

use common::*;

const PASSWORD: &str = "replica-test-password";

/// The shared engines, and a directory for the replicas' own files.
struct Shared {
    mini: SeaweedMini,
    database: PgDatabase,
    dir: tempfile::TempDir,
}

impl Shared {
    async fn start() -> Option<Shared> {
        let mini = SeaweedMini::start().await?;
        let database = PgDatabase::create().await?;
        Some(Shared {
            mini,
            database,
            dir: tempfile::tempdir().expect("temporary directory"),
        })
    }

    /// A replica: its own data directory, the shared database and bucket.
    async fn replica(&self, name: &str) -> BerthProcess {
        BerthProcess::serve(&self.dir.path().join(name))
            .admin_password(PASSWORD)
            .envs(&self.mini.berth_env())
            .envs(&[
                ("BERTH_DATABASE_URL", self.database.url.as_str()),
                ("BERTH_STORAGE_S3_CHUNK_SIZE_MIB", "5"),
            ])
            .start()
            .await
    }

    /// Multipart writes begun and neither completed nor aborted.
    async fn multipart_uploads(&self) -> usize {
        let listing = self
            .mini
            .s3
            .list(
                "ListMultipartUploads",
                &self.mini.bucket,
                &[("uploads", "")],
            )
            .await;
        listing.text().matches("<UploadId>").count()
    }

    /// Keys the bucket holds under `prefix`, read with the test's own S3
    /// client.
    async fn keys(&self, prefix: &str) -> Vec<String> {
        let query = [("list-type", "2"), ("prefix", prefix)];
        let listing = self
            .mini
            .s3
            .list("ListObjectsV2", &self.mini.bucket, &query)
            .await;
        listing
            .text()
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_owned()))
            .collect()
    }
}

/// Sends `chunk` at `offset` through `replica` and checks it is
/// acknowledged with the new size.
async fn acknowledged(replica: &BerthProcess, location: &str, offset: usize, chunk: &[u8]) {
    let response = replica.send_chunk(location, offset as u64, chunk).await;
    let response = expect_status(response, StatusCode::ACCEPTED).await;
    assert_upload_range(&response, (offset + chunk.len()) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_alternating_between_replicas_make_one_blob() {
    let Some(shared) = Shared::start().await else {
        return;
    };
    let a = shared.replica("a").await;
    let b = shared.replica("b").await;

    let content = blob_content("alternating", 21 * MIB + 12_345);
    let digest = sha256(&content);
    let upload = a.start_upload("team/app").await;
    // Chunks of uneven sizes (some under the 5 MiB part size, some over),
    // each on the other replica than the one before.
    let cuts = [
        0,
        MIB + 1,
        7 * MIB,
        7 * MIB + 3,
        13 * MIB,
        19 * MIB + 77,
        content.len(),
    ];
    for (i, pair) in cuts.windows(2).enumerate() {
        let replica = if i % 2 == 0 { &b } else { &a };
        acknowledged(
            replica,
            &upload.location,
            pair[0],
            &content[pair[0]..pair[1]],
        )
        .await;
        // Either replica reports where the upload is.
        let other = if i % 2 == 0 { &a } else { &b };
        let status = expect_status(
            other.upload_status(&upload.location).await,
            StatusCode::NO_CONTENT,
        )
        .await;
        assert_eq!(upload_size_from_range(&status), pair[1] as u64);
    }
    // Finished on the second replica, with no final chunk.
    let response = b.finish_upload(&upload.location, &digest).await;
    expect_status(response, StatusCode::CREATED).await;

    for replica in [&a, &b] {
        let pulled = replica.blob_bytes("team/app", &digest).await;
        assert_eq!(sha256(&pulled), digest);
    }
    assert!(
        shared.keys("uploads/").await.is_empty(),
        "the upload's parts are removed once it is a blob"
    );
    let hex = digest.trim_start_matches("sha256:");
    assert_eq!(
        shared.keys("blobs/").await,
        [format!("blobs/sha256/{}/{hex}", &hex[..2])]
    );

    // A chunk that claims the wrong offset is refused by either replica,
    // whatever the other received.
    let upload = b.start_upload("team/app").await;
    acknowledged(&b, &upload.location, 0, b"first").await;
    let response = a.send_chunk(&upload.location, 0, b"again").await;
    expect_status(response, StatusCode::RANGE_NOT_SATISFIABLE).await;
    acknowledged(&a, &upload.location, 5, b"second").await;
    let response = b
        .finish_upload_with_chunk(&upload.location, &sha256(b"firstsecondthird"), 11, b"third")
        .await;
    expect_status(response, StatusCode::CREATED).await;
    assert_eq!(
        a.blob_bytes("team/app", &sha256(b"firstsecondthird")).await,
        b"firstsecondthird"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_loses_no_acknowledged_chunk() {
    let Some(shared) = Shared::start().await else {
        return;
    };
    let mut a = shared.replica("a").await;
    let b = shared.replica("b").await;

    let content = blob_content("killed", 32 * MIB + 999);
    let digest = sha256(&content);
    let upload = a.start_upload("team/app").await;
    acknowledged(&a, &upload.location, 0, &content[..4 * MIB]).await;
    acknowledged(&b, &upload.location, 4 * MIB, &content[4 * MIB..9 * MIB]).await;
    acknowledged(
        &a,
        &upload.location,
        9 * MIB,
        &content[9 * MIB..15 * MIB + 5],
    )
    .await;
    // Killed right after acknowledging.
    a.kill();
    let status = expect_status(
        b.upload_status(&upload.location).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    assert_eq!(upload_size_from_range(&status), (15 * MIB + 5) as u64);

    // The next replica takes one more chunk, then is killed in the middle
    // of another: 12 of its MiB streamed (parts of it stored), never
    // acknowledged.
    let mut c = shared.replica("c").await;
    acknowledged(
        &c,
        &upload.location,
        15 * MIB + 5,
        &content[15 * MIB + 5..17 * MIB],
    )
    .await;
    let streaming = c
        .request(Method::PATCH, &upload.location)
        .header("content-type", "application/octet-stream")
        .body(stalled_body(&content[17 * MIB..29 * MIB], 64 * 1024))
        .send();
    let streaming = tokio::spawn(streaming);
    // Its first 5 MiB go to the store as the first piece of a multipart
    // write (sent once the next 5 MiB are in), which stays invisible until
    // completed.
    let started = Instant::now();
    while shared.multipart_uploads().await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the streamed chunk never reached the store"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.kill();
    assert!(
        streaming.await.unwrap().is_err(),
        "the killed PATCH got an answer"
    );

    // The survivor knows every acknowledged byte, and nothing else.
    let status = expect_status(
        b.upload_status(&upload.location).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    let held = upload_size_from_range(&status) as usize;
    assert_eq!(held, 17 * MIB, "Range after two replicas were killed");
    acknowledged(&b, &upload.location, held, &content[held..20 * MIB]).await;
    let response = b
        .finish_upload_with_chunk(
            &upload.location,
            &digest,
            20 * MIB as u64,
            &content[20 * MIB..],
        )
        .await;
    expect_status(response, StatusCode::CREATED).await;
    let pulled = b.blob_bytes("team/app", &digest).await;
    let first_difference = pulled.iter().zip(&content).position(|(x, y)| x != y);
    assert_eq!(
        (pulled.len(), first_difference),
        (content.len(), None),
        "the pulled blob"
    );
    assert!(
        shared.keys("uploads/").await.is_empty(),
        "parts written by the killed replicas, recorded or not, are removed with the upload"
    );
}
