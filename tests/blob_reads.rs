//! Pulling, checking, deleting and mounting blobs.

mod common;

use common::*;

#[tokio::test]
async fn get_returns_the_blob_with_its_headers() {
    let registry = TestRegistry::start().await;
    let content = blob_content("get", 100_000);
    let digest = registry.push_blob("app", &content).await;

    let response = registry.get_blob("app", &digest).await;

    let response = expect_status(response, StatusCode::OK).await;
    assert_header(&response, "docker-content-digest", &digest);
    assert_header(&response, "content-length", &content.len().to_string());
    assert_header(&response, "content-type", "application/octet-stream");
    assert_header(&response, "docker-distribution-api-version", "registry/2.0");
    let body = response.bytes().await.unwrap();
    assert!(body == content, "pulled bytes differ from pushed bytes");
}

#[tokio::test]
async fn head_describes_the_blob_without_a_body() {
    let registry = TestRegistry::start().await;
    let content = blob_content("head", 54_321);
    let digest = registry.push_blob("app", &content).await;

    let response = registry.head_blob("app", &digest).await;

    let response = expect_status(response, StatusCode::OK).await;
    assert_header(&response, "docker-content-digest", &digest);
    assert_header(&response, "content-length", &content.len().to_string());
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn range_requests_return_the_asked_bytes() {
    let registry = TestRegistry::start().await;
    let content = blob_content("ranges", 2_048);
    let size = content.len();
    let digest = registry.push_blob("app", &content).await;
    // (Range header, first byte, last byte)
    let cases = [
        ("bytes=0-0", 0, 0),
        ("bytes=500-1499", 500, 1499),
        ("bytes=500-", 500, size - 1),
        ("bytes=-500", size - 500, size - 1),
        ("bytes=2000-5000", 2000, size - 1),
        ("bytes=-5000", 0, size - 1),
        ("bytes=2047-2047", 2047, 2047),
        // A last position past the end, up to the largest number, means
        // "to the end" (RFC 9110).
        ("bytes=1-18446744073709551615", 1, size - 1),
        ("bytes=2047-18446744073709551615", 2047, size - 1),
        ("bytes=0-2048", 0, size - 1),
        ("bytes=-18446744073709551615", 0, size - 1),
    ];

    for (range, first, last) in cases {
        let response = registry.get_blob_range("app", &digest, range).await;

        let response = expect_status(response, StatusCode::PARTIAL_CONTENT).await;
        assert_header(
            &response,
            "content-range",
            &format!("bytes {first}-{last}/{size}"),
        );
        assert_header(&response, "content-length", &(last - first + 1).to_string());
        assert_header(&response, "docker-content-digest", &digest);
        let body = response.bytes().await.unwrap();
        assert!(body == content[first..=last], "bytes of {range}");
    }
}

#[tokio::test]
async fn unsatisfiable_ranges_are_416() {
    let registry = TestRegistry::start().await;
    let content = blob_content("unsatisfiable", 2_048);
    let digest = registry.push_blob("app", &content).await;

    for range in [
        "bytes=2048-",
        "bytes=2048-2048",
        "bytes=5000-10000",
        "bytes=500-0",
        "bytes=-0",
        "bytes=18446744073709551615-",
        "bytes=2048-18446744073709551615",
    ] {
        let response = registry.get_blob_range("app", &digest, range).await;

        assert_eq!(
            response.status(),
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{range}"
        );
        assert_header(&response, "content-range", "bytes */2048");
        assert_error(
            response,
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
        )
        .await;
    }
}

#[tokio::test]
async fn unknown_blob_is_404() {
    let registry = TestRegistry::start().await;
    registry.push_image("app", "latest").await;
    let digest = sha256(b"never pushed");

    let response = registry.get_blob("app", &digest).await;
    assert_error(response, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    let response = registry.head_blob("app", &digest).await;
    expect_status(response, StatusCode::NOT_FOUND).await;
    let response = registry.get_blob("never-created", &digest).await;
    assert_error(response, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn invalid_digest_in_the_path_is_400() {
    let registry = TestRegistry::start().await;

    for digest in [
        "sha256:xyz",
        "latest",
        "md5:9e107d9d372bb6826bd81d3542a419d6",
    ] {
        let response = registry.get_blob("app", digest).await;
        assert_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    }
}

#[tokio::test]
async fn blob_of_another_repository_is_invisible_until_mounted() {
    let registry = TestRegistry::start().await;
    let content = blob_content("private", 3_000);
    let digest = registry.push_blob("source", &content).await;
    registry.push_image("target", "latest").await;

    let response = registry.get_blob("target", &digest).await;
    assert_error(response, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    let response = registry.head_blob("target", &digest).await;
    expect_status(response, StatusCode::NOT_FOUND).await;

    let mount = registry.mount_blob("target", &digest, Some("source")).await;
    expect_status(mount, StatusCode::CREATED).await;
    assert_eq!(registry.blob_bytes("target", &digest).await, content);
}

#[tokio::test]
async fn delete_removes_the_blob_from_the_repository() {
    let registry = TestRegistry::start().await;
    let content = blob_content("deleted", 1_000);
    let digest = registry.push_blob("app", &content).await;
    registry.push_blob("other", &content).await;

    let response = registry.delete_blob("app", &digest).await;

    expect_status(response, StatusCode::ACCEPTED).await;
    let response = registry.get_blob("app", &digest).await;
    assert_error(response, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    let again = registry.delete_blob("app", &digest).await;
    assert_error(again, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    // Other repositories keep their copy.
    assert_eq!(registry.blob_bytes("other", &digest).await, content);
}

#[tokio::test]
async fn deleting_an_unknown_blob_is_404() {
    let registry = TestRegistry::start().await;
    registry.push_image("app", "latest").await;

    let response = registry.delete_blob("app", &sha256(b"never pushed")).await;

    assert_error(response, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn mount_from_a_repository() {
    let registry = TestRegistry::start().await;
    let content = blob_content("mounted", 5_000);
    let digest = registry.push_blob("source", &content).await;

    let response = registry.mount_blob("target", &digest, Some("source")).await;

    let response = expect_status(response, StatusCode::CREATED).await;
    assert_header(&response, "location", &format!("/v2/target/blobs/{digest}"));
    assert_header(&response, "docker-content-digest", &digest);
    assert_eq!(registry.blob_bytes("target", &digest).await, content);
    assert_eq!(registry.blob_bytes("source", &digest).await, content);
}

#[tokio::test]
async fn mount_without_from_finds_the_blob() {
    let registry = TestRegistry::start().await;
    let content = blob_content("anonymous mount", 5_000);
    let digest = registry.push_blob("somewhere/else", &content).await;

    let response = registry.mount_blob("target", &digest, None).await;

    let response = expect_status(response, StatusCode::CREATED).await;
    assert_header(&response, "location", &format!("/v2/target/blobs/{digest}"));
    assert_header(&response, "docker-content-digest", &digest);
    assert_eq!(registry.blob_bytes("target", &digest).await, content);
}

#[tokio::test]
async fn mount_of_a_blob_that_exists_nowhere_opens_an_upload() {
    let registry = TestRegistry::start().await;
    registry.push_image("source", "latest").await;
    let content = blob_content("not there", 2_000);
    let digest = sha256(&content);

    for from in [Some("source"), None] {
        let response = registry.mount_blob("target", &digest, from).await;

        let response = expect_status(response, StatusCode::ACCEPTED).await;
        let uuid = header(&response, "docker-upload-uuid");
        let location = header(&response, "location");
        assert_eq!(location, format!("/v2/target/blobs/uploads/{uuid}"));
        expect_status(
            registry.head_blob("target", &digest).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        // The session is an ordinary one.
        let response = registry
            .finish_upload_with_chunk(&location, &digest, 0, &content)
            .await;
        expect_status(response, StatusCode::CREATED).await;
        expect_status(
            registry.delete_blob("target", &digest).await,
            StatusCode::ACCEPTED,
        )
        .await;
    }
}

#[tokio::test]
async fn mount_of_a_deleted_blob_opens_an_upload() {
    let registry = TestRegistry::start().await;
    let content = blob_content("deleted then mounted", 2_000);
    let digest = registry.push_blob("source", &content).await;
    expect_status(
        registry.delete_blob("source", &digest).await,
        StatusCode::ACCEPTED,
    )
    .await;

    let response = registry.mount_blob("target", &digest, Some("source")).await;

    expect_status(response, StatusCode::ACCEPTED).await;
    expect_status(
        registry.head_blob("target", &digest).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

/// Small blobs and small ranges, one after another on one kept-alive
/// connection, as a pull of a small image reads them. A response written in
/// two pieces (headers, then the body from the blob's file) must not wait
/// for the client's delayed ACK (Nagle's algorithm: 40 ms a read).
#[tokio::test]
async fn small_reads_on_one_connection_do_not_wait_for_delayed_acks() {
    let registry = TestRegistry::start().await;
    let small = blob_content("small", 4 * 1024);
    let small_digest = registry.push_blob("app", &small).await;
    let large = blob_content("large", MIB);
    let large_digest = registry.push_blob("app", &large).await;

    let mut times = Vec::new();
    for i in 0..40u64 {
        let started = std::time::Instant::now();
        let response = if i % 2 == 0 {
            registry.get_blob("app", &small_digest).await
        } else {
            let first = (i * 20_011) % (MIB as u64 - 4096);
            let range = format!("bytes={first}-{}", first + 4095);
            registry.get_blob_range("app", &large_digest, &range).await
        };
        assert!(response.status().is_success());
        assert_eq!(response.bytes().await.unwrap().len(), 4096);
        times.push(started.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(
        median < std::time::Duration::from_millis(20),
        "median small read took {median:?}: {times:?}"
    );
}

/// A multi-MiB blob pushed and pulled over TLS (berth's own CA, `http.tls:
/// auto`), over HTTP/2 and over HTTP/1.1, whole and in ranges that start,
/// end and cross the 2 MiB windows berth maps a blob in (TLS responses are
/// copied from the mapping, never sent from the file): every byte compared.
/// The HTTP/2 ranges are also fetched all at once, multiplexed on one
/// connection.
#[tokio::test]
async fn large_blob_and_ranges_across_windows_over_tls() {
    use berth::config::{TlsConfig, TlsKeyword};

    let registry = TestRegistry::start_with(|config| {
        config.http.tls = TlsConfig::Keyword(TlsKeyword::Auto);
    })
    .await;
    let ca = std::fs::read(registry.data_dir().join("tls/ca.crt")).expect("berth made its CA");
    let window = 2 * MIB;
    let size = 20 * window + 4_321;
    let content = blob_content("large over TLS", size);
    let http2 = registry.over_tls(&ca, true);
    let http1 = registry.over_tls(&ca, false);
    let digest = http2.push_blob("app", &content).await;
    assert_eq!(digest, sha256(&content));

    // (Range header, first byte, last byte)
    let ranges: Vec<(String, usize, usize)> = [
        (0, 0),
        (window - 1, window - 1),
        (window - 1, window),
        (window, window),
        (window - 5, window + 5),
        (3 * window, 4 * window - 1),
        (3 * window + 1, 4 * window),
        (7 * window + 123, 13 * window + 45),
        (1, size - 2),
        (20 * window - 1, size - 1),
    ]
    .into_iter()
    .map(|(first, last)| (format!("bytes={first}-{last}"), first, last))
    .chain([
        (
            format!("bytes={}-", size - window - 7),
            size - window - 7,
            size - 1,
        ),
        (
            format!("bytes=-{}", window + 3),
            size - window - 3,
            size - 1,
        ),
        (
            format!("bytes={}-{}", 19 * window, size + 1_000),
            19 * window,
            size - 1,
        ),
    ])
    .collect();

    for (client, version) in [
        (&http2, reqwest::Version::HTTP_2),
        (&http1, reqwest::Version::HTTP_11),
    ] {
        let response = expect_status(client.get_blob("app", &digest).await, StatusCode::OK).await;
        assert_eq!(response.version(), version);
        assert_header(&response, "content-length", &size.to_string());
        let body = response.bytes().await.unwrap();
        assert!(body == content, "{version:?}: the whole blob differs");

        for (range, first, last) in &ranges {
            let response = client.get_blob_range("app", &digest, range).await;
            let response = expect_status(response, StatusCode::PARTIAL_CONTENT).await;
            assert_eq!(response.version(), version);
            assert_header(
                &response,
                "content-range",
                &format!("bytes {first}-{last}/{size}"),
            );
            let body = response.bytes().await.unwrap();
            assert!(
                body == content[*first..=*last],
                "{version:?} {range}: {} bytes, not the blob's",
                body.len()
            );
        }
    }

    let concurrent = ranges.iter().map(|(range, first, last)| {
        let http2 = &http2;
        let digest = &digest;
        async move {
            let response = http2.get_blob_range("app", digest, range).await;
            let response = expect_status(response, StatusCode::PARTIAL_CONTENT).await;
            (range, first, last, response.bytes().await.unwrap())
        }
    });
    for (range, first, last, body) in futures::future::join_all(concurrent).await {
        assert!(
            body == content[*first..=*last],
            "{range}, fetched concurrently: not the blob's bytes"
        );
    }
}
