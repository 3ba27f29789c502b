//! Pushing blobs: every way of uploading, and every way of getting it wrong.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::StreamExt;
use reqwest::Body;

/// The `201 Created` of a finished blob push.
async fn assert_blob_created(response: reqwest::Response, repo: &str, digest: &str) {
    let response = expect_status(response, StatusCode::CREATED).await;
    assert_header(&response, "location", &format!("/v2/{repo}/blobs/{digest}"));
    assert_header(&response, "docker-content-digest", digest);
}

/// The blob is in `repo` with exactly `content`.
async fn assert_blob_is(registry: &RegistryClient, repo: &str, digest: &str, content: &[u8]) {
    let stored = registry.blob_bytes(repo, digest).await;
    assert_eq!(stored.len(), content.len(), "size of blob {digest}");
    assert!(stored == content, "content of blob {digest} differs");
}

/// The `201 Created` of a push of `content`, and the blob stored with it.
async fn assert_stored(
    registry: &RegistryClient,
    response: reqwest::Response,
    repo: &str,
    digest: &str,
    content: &[u8],
) {
    assert_blob_created(response, repo, digest).await;
    assert_blob_is(registry, repo, digest, content).await;
}

/// The whole of `content` in the closing `PUT` of `upload` (in `app`),
/// which stores it.
async fn assert_stored_by_closing_put(
    registry: &RegistryClient,
    upload: &Upload,
    digest: &str,
    content: &[u8],
) {
    let response = registry
        .finish_upload_with_chunk(&upload.location, digest, 0, content)
        .await;
    assert_stored(registry, response, "app", digest, content).await;
}

/// `repo` has no blob `digest`.
async fn assert_no_blob(registry: &RegistryClient, repo: &str, digest: &str) {
    expect_status(
        registry.head_blob(repo, digest).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

/// A registry, and the content of a blob to push to it (`len` bytes made
/// from `label`) with its sha256 digest.
async fn blob_of(label: &str, len: usize) -> (TestRegistry, Vec<u8>, String) {
    let registry = TestRegistry::start().await;
    let content = blob_content(label, len);
    let digest = sha256(&content);
    (registry, content, digest)
}

/// As [`blob_of`], with an upload begun in `app`.
async fn upload_of(label: &str, len: usize) -> (TestRegistry, Vec<u8>, String, Upload) {
    let (registry, content, digest) = blob_of(label, len).await;
    let upload = registry.start_upload("app").await;
    (registry, content, digest, upload)
}

/// A registry with an upload in `app` that has taken one chunk, 1,000
/// bytes made from `label`.
async fn upload_holding(label: &str) -> (TestRegistry, Upload, Vec<u8>) {
    let registry = TestRegistry::start().await;
    let upload = registry.start_upload("app").await;
    let chunk = blob_content(label, 1_000);
    accept_chunk(&registry, &upload.location, 0, &chunk).await;
    (registry, upload, chunk)
}

/// `digest` is refused (`400 DIGEST_INVALID`) by the closing `PUT` of an
/// upload of `content` into `app`, and by a single `POST` of it.
async fn assert_digest_refused(registry: &RegistryClient, digest: &str, content: &[u8]) {
    let upload = registry.start_upload("app").await;
    accept_chunk(registry, &upload.location, 0, content).await;
    let response = registry.finish_upload(&upload.location, digest).await;
    assert_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;

    let response = registry.post_blob("app", digest, content).await;
    assert_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

/// Sends a chunk that the upload takes (`202 Accepted`).
async fn accept_chunk(
    client: &RegistryClient,
    location: &str,
    offset: u64,
    chunk: &[u8],
) -> reqwest::Response {
    expect_status(
        client.send_chunk(location, offset, chunk).await,
        StatusCode::ACCEPTED,
    )
    .await
}

#[tokio::test]
async fn post_opens_an_upload_session() {
    let registry = TestRegistry::start().await;

    let response = registry.post_upload("app", "").await;

    let response = expect_status(response, StatusCode::ACCEPTED).await;
    let uuid = header(&response, "docker-upload-uuid");
    assert!(!uuid.is_empty());
    assert_header(
        &response,
        "location",
        &format!("/v2/app/blobs/uploads/{uuid}"),
    );
    assert_header(&response, "content-length", "0");
}

#[tokio::test]
async fn each_session_has_its_own_id() {
    let registry = TestRegistry::start().await;

    let first = registry.start_upload("app").await;
    let second = registry.start_upload("app").await;

    assert_ne!(first.uuid, second.uuid);
    assert_ne!(first.location, second.location);
}

#[tokio::test]
async fn monolithic_post_then_put() {
    let (registry, content, digest, upload) = upload_of("monolithic", 10_000).await;

    let response = registry
        .monolithic_put(&upload.location, &digest, &content)
        .send()
        .await
        .unwrap();

    assert_stored(&registry, response, "app", &digest, &content).await;
    // The session is closed.
    let status = registry.upload_status(&upload.location).await;
    assert_error(status, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let again = registry.finish_upload(&upload.location, &digest).await;
    assert_error(again, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

/// A blob pushed in one `POST` with its digest, by `digest_of`.
async fn single_post(label: &str, len: usize, digest_of: fn(&[u8]) -> String) {
    let registry = TestRegistry::start().await;
    let content = blob_content(label, len);
    let digest = digest_of(&content);

    let response = registry.post_blob("app", &digest, &content).await;

    assert_stored(&registry, response, "app", &digest, &content).await;
}

#[tokio::test]
async fn single_post_with_digest() {
    single_post("single post", 5_000, sha256).await;
}

#[tokio::test]
async fn single_post_with_a_wrong_digest_stores_nothing() {
    let registry = TestRegistry::start().await;
    let content = blob_content("single post", 5_000);
    let claimed = sha256(b"something else");

    let response = registry.post_blob("app", &claimed, &content).await;

    assert_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    for digest in [claimed, sha256(&content)] {
        assert_no_blob(&registry, "app", &digest).await;
    }
}

#[tokio::test]
async fn streamed_patch_without_content_range() {
    let (registry, content, digest, upload) = upload_of("streamed", 3 * MIB + 17).await;

    let response = registry
        .stream_to_upload(&upload.location, chunked_body(&content, 64 * 1024))
        .await;

    let response = expect_status(response, StatusCode::ACCEPTED).await;
    assert_upload_range(&response, content.len() as u64);
    assert_header(&response, "docker-upload-uuid", &upload.uuid);
    let location = header(&response, "location");
    let response = registry.finish_upload(&location, &digest).await;
    assert_stored(&registry, response, "app", &digest, &content).await;
}

#[tokio::test]
async fn several_streamed_patches_append() {
    let (registry, content, digest, upload) = upload_of("streamed twice", 300_000).await;
    let (first, second) = content.split_at(123_456);

    for part in [first, second] {
        let response = registry
            .stream_to_upload(&upload.location, chunked_body(part, 10_000))
            .await;
        expect_status(response, StatusCode::ACCEPTED).await;
    }

    let status = registry.upload_status(&upload.location).await;
    assert_upload_range(&status, content.len() as u64);
    let response = registry.finish_upload(&upload.location, &digest).await;
    assert_stored(&registry, response, "app", &digest, &content).await;
}

/// An HTTP/2 client that gives up on a request resets its stream. hyper
/// ends the request body there as if it were complete, and drops the
/// request wherever it then waits (here, while the received bytes are
/// being written). The upload must stay one the client can go on with from
/// the status it reports, to the right content.
#[tokio::test]
async fn an_abandoned_http2_patch_leaves_an_upload_to_go_on_with() {
    let registry = TestRegistry::start().await;
    let h2 = registry.over_http2();
    let content = blob_content("abandoned", 300_000);
    let digest = sha256(&content);
    let upload = h2.start_upload("app").await;
    let first = 100_000;
    accept_chunk(&h2, &upload.location, 0, &content[..first]).await;

    // Part of the rest, then nothing more, until the client gives up.
    let part = Bytes::copy_from_slice(&content[first..first + 50_000]);
    let stalled =
        futures::stream::iter([Ok::<_, std::io::Error>(part)]).chain(futures::stream::pending());
    let abandoned = tokio::time::timeout(
        Duration::from_millis(500),
        h2.stream_to_upload(&upload.location, Body::wrap_stream(stalled)),
    )
    .await;
    assert!(abandoned.is_err(), "the stalled PATCH must be abandoned");

    // Asked at once: the status waits for any write the dropped request
    // left running.
    let status = h2.upload_status(&upload.location).await;
    let offset = upload_size_from_range(&status) as usize;
    assert!(
        offset == first || offset == first + 50_000,
        "upload holds {offset} bytes"
    );
    let response = h2
        .finish_upload_with_chunk(&upload.location, &digest, offset as u64, &content[offset..])
        .await;
    assert_stored(&registry, response, "app", &digest, &content).await;
}

#[tokio::test]
async fn chunked_patches_with_content_range() {
    let (registry, content, digest, mut upload) = upload_of("chunked", 250_000).await;

    let mut offset = 0;
    for chunk in content.chunks(100_000) {
        let response = registry.send_chunk(&upload.location, offset, chunk).await;
        let response = expect_status(response, StatusCode::ACCEPTED).await;
        offset += chunk.len() as u64;
        assert_upload_range(&response, offset);
        assert_header(&response, "docker-upload-uuid", &upload.uuid);
        upload.location = header(&response, "location");
    }

    let response = registry.finish_upload(&upload.location, &digest).await;
    assert_stored(&registry, response, "app", &digest, &content).await;
}

#[tokio::test]
async fn final_chunk_in_the_closing_put() {
    let (registry, content, digest, upload) = upload_of("final chunk in put", 150_000).await;
    let (head, tail) = content.split_at(100_000);
    let response = registry.send_chunk(&upload.location, 0, head).await;
    expect_status(response, StatusCode::ACCEPTED).await;

    let response = registry
        .finish_upload_with_chunk(&upload.location, &digest, head.len() as u64, tail)
        .await;

    assert_stored(&registry, response, "app", &digest, &content).await;
}

#[tokio::test]
async fn whole_blob_as_the_only_chunk_of_the_put() {
    let (registry, content, digest, upload) = upload_of("only chunk in put", 4_096).await;

    assert_stored_by_closing_put(&registry, &upload, &digest, &content).await;
}

#[tokio::test]
async fn upload_status_reports_what_was_received() {
    let (registry, upload, _) = upload_holding("status").await;

    let response = registry.upload_status(&upload.location).await;

    let response = expect_status(response, StatusCode::NO_CONTENT).await;
    assert_upload_range(&response, 1_000);
    assert_header(&response, "location", &upload.location);
    assert_header(&response, "docker-upload-uuid", &upload.uuid);
}

#[tokio::test]
async fn cancelled_upload_is_gone() {
    let (registry, upload, chunk) = upload_holding("cancelled").await;

    let response = registry.cancel_upload(&upload.location).await;

    expect_status(response, StatusCode::NO_CONTENT).await;
    let status = registry.upload_status(&upload.location).await;
    assert_error(status, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let more = registry.send_chunk(&upload.location, 1_000, &chunk).await;
    assert_error(more, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let finish = registry
        .finish_upload(&upload.location, &sha256(&chunk))
        .await;
    assert_error(finish, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let again = registry.cancel_upload(&upload.location).await;
    assert_error(again, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn out_of_order_chunk_is_refused_and_the_upload_stays_usable() {
    let (registry, content, digest, upload) = upload_of("out of order", 30_000).await;
    accept_chunk(&registry, &upload.location, 0, &content[..10_000]).await;

    // A gap, an overlap, and a chunk that starts over.
    for offset in [15_000, 5_000, 0] {
        let response = registry
            .send_chunk(&upload.location, offset, &content[offset as usize..20_000])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::RANGE_NOT_SATISFIABLE,
            "chunk at {offset}"
        );
        assert_upload_range(&response, 10_000);
        assert_header(&response, "location", &upload.location);
        assert_error(
            response,
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
        )
        .await;
    }
    // The final chunk of a PUT is checked the same way.
    let response = registry
        .finish_upload_with_chunk(&upload.location, &digest, 25_000, &content[25_000..])
        .await;
    assert_error(
        response,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "BLOB_UPLOAD_INVALID",
    )
    .await;

    let status = registry.upload_status(&upload.location).await;
    let status = expect_status(status, StatusCode::NO_CONTENT).await;
    assert_upload_range(&status, 10_000);
    accept_chunk(
        &registry,
        &upload.location,
        10_000,
        &content[10_000..20_000],
    )
    .await;
    let response = registry
        .finish_upload_with_chunk(&upload.location, &digest, 20_000, &content[20_000..])
        .await;
    assert_stored(&registry, response, "app", &digest, &content).await;
}

#[tokio::test]
async fn wrong_digest_is_refused_and_nothing_is_stored() {
    let registry = TestRegistry::start().await;
    let content = blob_content("wrong digest", 2_000);
    let claimed = sha256(b"other content");
    let upload = registry.start_upload("app").await;
    accept_chunk(&registry, &upload.location, 0, &content).await;

    let response = registry.finish_upload(&upload.location, &claimed).await;

    assert_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    for digest in [claimed, sha256(&content)] {
        assert_no_blob(&registry, "app", &digest).await;
    }
}

#[tokio::test]
async fn malformed_digests_are_refused() {
    let registry = TestRegistry::start().await;
    let content = blob_content("malformed", 100);
    let hex = sha256(&content)["sha256:".len()..].to_owned();
    let malformed = [
        "not-a-digest".to_owned(),
        format!("sha256:{}", hex.to_uppercase()),
        format!("sha256:{}", &hex[1..]),
        format!("sha256:{hex}00"),
        "sha256:".to_owned(),
        format!(":{hex}"),
        format!("sha256:{}zz", &hex[2..]),
    ];

    for digest in &malformed {
        assert_digest_refused(&registry, digest, &content).await;
    }
}

#[tokio::test]
async fn unsupported_digest_algorithms_are_refused() {
    let registry = TestRegistry::start().await;
    let content = blob_content("md5", 100);
    let md5 = "md5:9e107d9d372bb6826bd81d3542a419d6";

    assert_digest_refused(&registry, md5, &content).await;
    let response = registry.post_upload("app", "?digest-algorithm=md5").await;
    assert_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn closing_put_needs_a_digest_and_the_upload_survives_without_one() {
    let registry = TestRegistry::start().await;
    let content = blob_content("no digest", 1_000);
    let upload = registry.start_upload("app").await;
    accept_chunk(&registry, &upload.location, 0, &content).await;

    let response = registry.send(Method::PUT, &upload.location).await;

    assert_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    let digest = sha256(&content);
    let response = registry.finish_upload(&upload.location, &digest).await;
    assert_blob_created(response, "app", &digest).await;
}

#[tokio::test]
async fn chunk_length_must_match_its_content_range() {
    let (registry, content, digest, upload) = upload_of("size mismatch", 20_000).await;
    accept_chunk(&registry, &upload.location, 0, &content[..5_000]).await;

    // Shorter, then longer, than the range says.
    for end in [9_000, 12_000] {
        let chunk = content[5_000..end].to_vec();
        let response = registry
            .send_chunk_claiming(&upload.location, "5000-9999", chunk)
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, "SIZE_INVALID").await;
    }

    // Neither left anything behind.
    let status = registry.upload_status(&upload.location).await;
    assert_upload_range(&status, 5_000);
    accept_chunk(&registry, &upload.location, 5_000, &content[5_000..]).await;
    let response = registry.finish_upload(&upload.location, &digest).await;
    assert_stored(&registry, response, "app", &digest, &content).await;
}

#[tokio::test]
async fn malformed_content_range_is_refused() {
    let registry = TestRegistry::start().await;
    let content = blob_content("malformed range", 100);
    let upload = registry.start_upload("app").await;

    for range in ["abc", "99-0", "-99", "0-", "0-99-100"] {
        let response = registry
            .send_chunk_claiming(&upload.location, range, content.clone())
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID").await;
    }
    let status = registry.upload_status(&upload.location).await;
    assert_upload_range(&status, 0);
    let response = registry.send_chunk(&upload.location, 0, &content).await;
    let response = expect_status(response, StatusCode::ACCEPTED).await;
    assert_upload_range(&response, 100);
}

/// A 12 MiB blob's chunk that claims `0-{last}` but carries its first
/// `sent` bytes is refused, leaves the upload empty, and the blob can then
/// be pushed whole.
async fn mismatched_large_chunk_leaves_nothing_behind(label: &str, last: usize, sent: usize) {
    let (registry, content, digest, upload) = upload_of(label, 12 * MIB).await;

    let response = registry
        .send_chunk_claiming(
            &upload.location,
            &format!("0-{last}"),
            content[..sent].to_vec(),
        )
        .await;

    assert_error(response, StatusCode::BAD_REQUEST, "SIZE_INVALID").await;
    let status = registry.upload_status(&upload.location).await;
    assert_upload_range(&status, 0);
    assert_stored_by_closing_put(&registry, &upload, &digest, &content).await;
}

#[tokio::test]
async fn large_chunk_longer_than_its_content_range_leaves_nothing_behind() {
    // The range promises 6 MiB; the body carries 12 MiB.
    mismatched_large_chunk_leaves_nothing_behind("large size mismatch", 6 * MIB - 1, 12 * MIB)
        .await;
}

#[tokio::test]
async fn large_chunk_shorter_than_its_content_range_leaves_nothing_behind() {
    // The range promises 12 MiB; the body carries 9 MiB.
    mismatched_large_chunk_leaves_nothing_behind("large short chunk", 12 * MIB - 1, 9 * MIB).await;
}

#[tokio::test]
async fn unknown_upload_id_is_404() {
    let registry = TestRegistry::start().await;
    registry.push_image("app", "latest").await;
    let location = "/v2/app/blobs/uploads/2b7a5c1e-0000-4000-8000-000000000000";
    let content = blob_content("unknown upload", 10);

    let responses = [
        registry.upload_status(location).await,
        registry.send_chunk(location, 0, &content).await,
        registry.finish_upload(location, &sha256(&content)).await,
        registry.cancel_upload(location).await,
    ];

    for response in responses {
        assert_error(response, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    }
}

#[tokio::test]
async fn upload_id_belongs_to_its_repository() {
    let (registry, content, digest, upload) = upload_of("bound upload", 1_000).await;
    registry.start_upload("other").await;
    let elsewhere = format!("/v2/other/blobs/uploads/{}", upload.uuid);

    let responses = [
        registry.upload_status(&elsewhere).await,
        registry.send_chunk(&elsewhere, 0, &content).await,
        registry
            .finish_upload_with_chunk(&elsewhere, &digest, 0, &content)
            .await,
        registry.cancel_upload(&elsewhere).await,
    ];

    for response in responses {
        assert_error(response, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    }
    assert_no_blob(&registry, "other", &digest).await;
    let status = registry.upload_status(&upload.location).await;
    let status = expect_status(status, StatusCode::NO_CONTENT).await;
    assert_upload_range(&status, 0);
    let response = registry
        .finish_upload_with_chunk(&upload.location, &digest, 0, &content)
        .await;
    assert_blob_created(response, "app", &digest).await;
}

#[tokio::test]
async fn sha512_blob_announced_with_digest_algorithm() {
    let registry = TestRegistry::start().await;
    let content = blob_content("sha512 announced", 70_000);
    let digest = sha512(&content);
    let upload = registry
        .start_upload_with("app", "?digest-algorithm=sha512")
        .await;
    accept_chunk(&registry, &upload.location, 0, &content[..40_000]).await;

    let response = registry
        .finish_upload_with_chunk(&upload.location, &digest, 40_000, &content[40_000..])
        .await;

    assert_stored(&registry, response, "app", &digest, &content).await;
    let head = registry.head_blob("app", &digest).await;
    assert_header(&head, "docker-content-digest", &digest);
}

#[tokio::test]
async fn sha512_blob_without_digest_algorithm() {
    let registry = TestRegistry::start().await;
    let content = blob_content("sha512 unannounced", 70_000);
    let digest = sha512(&content);
    let upload = registry.start_upload("app").await;
    accept_chunk(&registry, &upload.location, 0, &content).await;

    let response = registry.finish_upload(&upload.location, &digest).await;

    assert_stored(&registry, response, "app", &digest, &content).await;
    assert_no_blob(&registry, "app", &sha256(&content)).await;
}

#[tokio::test]
async fn sha512_blob_in_a_single_post() {
    single_post("sha512 single post", 9_000, sha512).await;
}

#[tokio::test]
async fn sha256_digest_for_an_upload_announced_as_sha512() {
    let (registry, content, digest) = blob_of("announced sha512, closed sha256", 3_000).await;
    let upload = registry
        .start_upload_with("app", "?digest-algorithm=sha512")
        .await;

    assert_stored_by_closing_put(&registry, &upload, &digest, &content).await;
}

#[tokio::test]
async fn empty_blob_by_post_then_put() {
    let registry = TestRegistry::start().await;
    let digest = sha256(b"");
    let upload = registry.start_upload("app").await;

    let response = registry.finish_upload(&upload.location, &digest).await;

    assert_blob_created(response, "app", &digest).await;
    let response = expect_status(registry.get_blob("app", &digest).await, StatusCode::OK).await;
    assert_header(&response, "content-length", "0");
    assert_header(&response, "docker-content-digest", &digest);
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn empty_blob_by_single_post() {
    let registry = TestRegistry::start().await;
    let digest = sha256(b"");

    let response = registry.post_blob("app", &digest, b"").await;

    assert_blob_created(response, "app", &digest).await;
    let head = expect_status(registry.head_blob("app", &digest).await, StatusCode::OK).await;
    assert_header(&head, "content-length", "0");
}

#[tokio::test]
async fn multi_mib_blob_in_uneven_chunks() {
    let (registry, content, digest, mut upload) = upload_of("multi MiB", 9 * MIB + 12_345).await;
    let sizes = [MIB, 3 * MIB + 7, 5, 2 * MIB - 5, 3 * MIB];

    let mut offset = 0;
    for size in sizes {
        let chunk = &content[offset..offset + size];
        let response = registry
            .send_chunk(&upload.location, offset as u64, chunk)
            .await;
        let response = expect_status(response, StatusCode::ACCEPTED).await;
        offset += size;
        assert_upload_range(&response, offset as u64);
        upload.location = header(&response, "location");
    }
    let response = registry
        .finish_upload_with_chunk(&upload.location, &digest, offset as u64, &content[offset..])
        .await;

    assert_blob_created(response, "app", &digest).await;
    let response = expect_status(registry.get_blob("app", &digest).await, StatusCode::OK).await;
    assert_header(&response, "content-length", &content.len().to_string());
    assert_header(&response, "docker-content-digest", &digest);
    let body = response.bytes().await.unwrap();
    assert_eq!(sha256(&body), digest, "digest of the pulled blob");
}

#[tokio::test]
async fn pushing_the_same_blob_twice_is_harmless() {
    let registry = TestRegistry::start().await;
    let content = blob_content("twice", 4_000);

    let first = registry.push_blob("app", &content).await;
    let second = registry.push_blob("app", &content).await;

    assert_eq!(first, second);
    assert_blob_is(&registry, "app", &first, &content).await;
}

#[tokio::test]
async fn upload_to_an_invalid_repository_name_is_refused() {
    let registry = TestRegistry::start().await;

    for name in ["Upper", "a//b", "-leading", "trailing-", "a..b"] {
        let response = registry.post_upload(name, "").await;
        assert_error(response, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
    }
}
