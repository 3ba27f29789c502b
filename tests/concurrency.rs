//! Concurrent clients, graceful shutdown and the removal of abandoned uploads.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use tokio::sync::Barrier;

/// Uploads `content` in chunks, waits at `barrier` for the other clients,
/// then completes; returns the closing response's status.
async fn push_chunks_then_close_together(
    client: RegistryClient,
    repo: String,
    content: Arc<Vec<u8>>,
    barrier: Arc<Barrier>,
) -> StatusCode {
    let digest = sha256(&content);
    let upload = client.start_upload(&repo).await;
    let mut offset = 0;
    for chunk in content.chunks(MIB) {
        let response = client.send_chunk(&upload.location, offset, chunk).await;
        expect_status(response, StatusCode::ACCEPTED).await;
        offset += chunk.len() as u64;
    }
    barrier.wait().await;
    client
        .finish_upload(&upload.location, &digest)
        .await
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_blob_pushed_by_concurrent_clients() {
    let registry = TestRegistry::start().await;
    // Several rounds, each closing all uploads at once, in one repository
    // and across repositories.
    for round in 0..4 {
        let content = Arc::new(blob_content(&format!("contended {round}"), 3 * MIB + 1));
        let digest = sha256(&content);
        let repos = ["app", "app", "app", "other"];
        let barrier = Arc::new(Barrier::new(repos.len()));
        let pushes = repos.iter().map(|repo| {
            tokio::spawn(push_chunks_then_close_together(
                registry.client().clone(),
                repo.to_string(),
                content.clone(),
                barrier.clone(),
            ))
        });

        for status in futures::future::join_all(pushes).await {
            assert_eq!(status.unwrap(), StatusCode::CREATED, "round {round}");
        }
        for repo in ["app", "other"] {
            let stored = registry.blob_bytes(repo, &digest).await;
            assert_eq!(sha256(&stored), digest, "round {round}, {repo}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_different_blobs_pushed_concurrently() {
    let registry = TestRegistry::start().await;
    let blobs: Vec<Vec<u8>> = (0..24)
        .map(|i| blob_content(&format!("concurrent {i}"), 150_000 + i * 1_000))
        .collect();

    let pushes = blobs.iter().enumerate().map(|(i, content)| {
        let client = registry.client().clone();
        let content = content.clone();
        let repo = format!("repo{}", i % 3);
        tokio::spawn(async move {
            // Every way of pushing, at once.
            match i % 3 {
                0 => client.push_blob(&repo, &content).await,
                1 => client.push_blob_in_chunks(&repo, &content, 40_000).await,
                _ => {
                    let digest = sha256(&content);
                    let response = client.post_blob(&repo, &digest, &content).await;
                    expect_status(response, StatusCode::CREATED).await;
                    digest
                }
            }
        })
    });
    let digests: Vec<String> = futures::future::join_all(pushes)
        .await
        .into_iter()
        .map(|pushed| pushed.expect("push task"))
        .collect();

    for (i, (content, digest)) in blobs.iter().zip(&digests).enumerate() {
        assert_eq!(*digest, sha256(content));
        let stored = registry.blob_bytes(&format!("repo{}", i % 3), digest).await;
        assert!(stored == *content, "blob {i} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_lets_an_inflight_upload_finish() {
    let mut registry = TestRegistry::start().await;
    let content = blob_content("slow upload", 640 * 1024);
    let digest = sha256(&content);
    let upload = registry.start_upload("app").await;
    let sent = Arc::new(AtomicU64::new(0));
    let body = slow_body(
        &content,
        64 * 1024,
        Duration::from_millis(150),
        sent.clone(),
    );
    let client = registry.client().clone();
    let location = upload.location.clone();
    let patch = tokio::spawn(async move { client.stream_to_upload(&location, body).await });
    while sent.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let server = registry.take_server();
    let sent_by_then = sent.clone();
    let shutdown = tokio::spawn(async move {
        server.shutdown().await.expect("clean shutdown");
        // berth could only answer once it had every byte.
        sent_by_then.load(Ordering::SeqCst)
    });

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown returned while an upload was still streaming"
    );
    let response = expect_status(patch.await.unwrap(), StatusCode::ACCEPTED).await;
    assert_upload_range(&response, content.len() as u64);
    let sent_when_shut_down = tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown finishes once the upload is done")
        .unwrap();
    assert_eq!(
        sent_when_shut_down,
        content.len() as u64,
        "shutdown returned before the upload was sent"
    );

    // No new connections are taken…
    let fresh = RegistryClient::new(registry.base_url().to_owned(), ADMIN_USER, "");
    assert!(
        fresh.request(Method::GET, "/healthz").send().await.is_err(),
        "berth still accepts connections after shutdown"
    );
    // …and what the upload received was kept.
    let registry = registry.restart().await;
    let status = registry.upload_status(&upload.location).await;
    assert_upload_range(&status, content.len() as u64);
    let response = registry.finish_upload(&upload.location, &digest).await;
    expect_status(response, StatusCode::CREATED).await;
    assert_eq!(registry.blob_bytes("app", &digest).await, content);
}

/// berth that calls an upload abandoned after a second without requests.
async fn registry_with_quick_cleanup() -> TestRegistry {
    TestRegistry::start_with(|config| {
        config.uploads.stale_after = Duration::from_secs(1);
        config.uploads.cleanup_interval = Duration::from_millis(200);
    })
    .await
}

#[tokio::test]
async fn abandoned_upload_is_removed() {
    let registry = registry_with_quick_cleanup().await;
    let upload = registry.start_upload("app").await;
    let chunk = blob_content("abandoned", 1_000);
    let response = registry.send_chunk(&upload.location, 0, &chunk).await;
    expect_status(response, StatusCode::ACCEPTED).await;
    let last_touched = Instant::now();
    assert!(registry.upload_file(&upload.uuid).exists());

    let removed_after = loop {
        let status = registry.upload_status(&upload.location).await;
        if status.status() == StatusCode::NOT_FOUND {
            let elapsed = last_touched.elapsed();
            assert_error(status, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
            break elapsed;
        }
        expect_status(status, StatusCode::NO_CONTENT).await;
        assert!(
            last_touched.elapsed() < Duration::from_secs(15),
            "the abandoned upload was never removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    assert!(
        removed_after >= Duration::from_millis(800),
        "removed after {removed_after:?}, before it was stale"
    );
    assert!(
        !registry.upload_file(&upload.uuid).exists(),
        "the upload's bytes are still stored"
    );
    let response = registry.send_chunk(&upload.location, 1_000, &chunk).await;
    assert_error(response, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn upload_touched_regularly_is_not_removed() {
    let registry = registry_with_quick_cleanup().await;
    let content = blob_content("kept alive", 10_000);
    let upload = registry.start_upload("app").await;

    for (i, chunk) in content.chunks(1_000).enumerate() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let response = registry
            .send_chunk(&upload.location, (i * 1_000) as u64, chunk)
            .await;
        expect_status(response, StatusCode::ACCEPTED).await;
    }

    let response = registry
        .finish_upload(&upload.location, &sha256(&content))
        .await;
    expect_status(response, StatusCode::CREATED).await;
}

#[tokio::test]
async fn upload_receiving_a_long_chunk_is_not_removed() {
    let registry = registry_with_quick_cleanup().await;
    let content = blob_content("long chunk", 300 * 1024);
    let upload = registry.start_upload("app").await;
    let sent = Arc::new(AtomicU64::new(0));

    // One PATCH that streams for three seconds, three times `staleAfter`.
    let body = slow_body(&content, 10 * 1024, Duration::from_millis(100), sent);
    let response = registry.stream_to_upload(&upload.location, body).await;

    let response = expect_status(response, StatusCode::ACCEPTED).await;
    assert_upload_range(&response, content.len() as u64);
    let response = registry
        .finish_upload(&upload.location, &sha256(&content))
        .await;
    expect_status(response, StatusCode::CREATED).await;
}
