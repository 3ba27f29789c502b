//! Operational endpoints and per-request observability: health, readiness,
//! Prometheus metrics and request ids.
//!
//! Metrics are process-wide (one recorder) and all tests of this file run in
//! one process, so every test here holds [`METRICS`] while it makes requests:
//! then the difference between two scrapes is exactly one test's traffic.

mod common;

use common::*;
use tokio::sync::{Mutex, MutexGuard};

static METRICS: Mutex<()> = Mutex::const_new(());

/// Exclusive use of the process-wide metrics for one test.
async fn exclusive_metrics() -> MutexGuard<'static, ()> {
    METRICS.lock().await
}

/// A Prometheus text exposition.
struct Scrape(String);

impl Scrape {
    async fn take(registry: &RegistryClient) -> Scrape {
        let response =
            expect_status(registry.anonymous().get("/metrics").await, StatusCode::OK).await;
        let content_type = header(&response, "content-type");
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        Scrape(response.text().await.unwrap())
    }

    /// Sum of the samples of `name` whose labels include all of `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (metric, label_text) = match series.split_once('{') {
                    Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                let matches = metric == name
                    && labels
                        .iter()
                        .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
                matches.then(|| value.parse::<f64>().ok()).flatten()
            })
            .sum()
    }

    fn has_series(&self, name: &str) -> bool {
        self.0
            .lines()
            .any(|line| !line.starts_with('#') && line.starts_with(name))
    }
}

#[tokio::test]
async fn healthz_and_readyz_answer_without_credentials() {
    let _metrics = exclusive_metrics().await;
    let registry = TestRegistry::start().await;
    let anonymous = registry.anonymous();

    for path in ["/healthz", "/readyz"] {
        let response = anonymous.get(path).await;
        expect_status(response, StatusCode::OK).await;
    }
}

#[tokio::test]
async fn requests_are_counted_by_route_and_status() {
    let _metrics = exclusive_metrics().await;
    let registry = TestRegistry::start().await;
    let image = registry.push_image("app", "v1").await;
    let layer = &image.layers[0].digest;
    let missing = sha256(b"missing");
    let ok = [("route", "blob_read"), ("method", "GET"), ("status", "200")];
    let not_found = [("route", "blob_read"), ("method", "GET"), ("status", "404")];
    let unauthorized = [("route", "manifest_read"), ("status", "401")];
    let before = Scrape::take(&registry).await;

    for _ in 0..3 {
        registry.blob_bytes("app", layer).await;
    }
    for _ in 0..2 {
        let response = registry.get_blob("app", &missing).await;
        assert_error(response, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    }
    let response = registry.anonymous().get_manifest("app", "v1").await;
    assert_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    let after = Scrape::take(&registry).await;
    let counted = |labels: &[(&str, &str)]| {
        after.value("berth_http_requests_total", labels)
            - before.value("berth_http_requests_total", labels)
    };
    assert_eq!(counted(&ok), 3.0);
    assert_eq!(counted(&not_found), 2.0);
    assert_eq!(counted(&unauthorized), 1.0);
}

#[tokio::test]
async fn request_latency_is_a_histogram() {
    let _metrics = exclusive_metrics().await;
    let registry = TestRegistry::start().await;
    let labels = [("route", "base"), ("method", "GET")];
    let before = Scrape::take(&registry).await;

    for _ in 0..4 {
        expect_status(registry.get("/v2/").await, StatusCode::OK).await;
    }

    let after = Scrape::take(&registry).await;
    let name = "berth_http_request_duration_seconds";
    assert!(after.has_series(&format!("{name}_bucket")), "{}", after.0);
    let observed = |scrape: &Scrape| scrape.value(&format!("{name}_count"), &labels);
    assert_eq!(observed(&after) - observed(&before), 4.0);
    let in_all_buckets = |scrape: &Scrape| {
        scrape.value(
            &format!("{name}_bucket"),
            &[labels[0], labels[1], ("le", "+Inf")],
        )
    };
    assert_eq!(in_all_buckets(&after) - in_all_buckets(&before), 4.0);
}

#[tokio::test]
async fn blob_bytes_are_counted_both_ways() {
    let _metrics = exclusive_metrics().await;
    let registry = TestRegistry::start().await;
    let content = blob_content("counted", 300_000);
    let before = Scrape::take(&registry).await;

    let digest = registry.push_blob("app", &content).await;
    registry.blob_bytes("app", &digest).await;
    registry.blob_bytes("app", &digest).await;

    let after = Scrape::take(&registry).await;
    let delta = |name: &str| after.value(name, &[]) - before.value(name, &[]);
    assert_eq!(
        delta("berth_http_bytes_received_total"),
        content.len() as f64
    );
    assert_eq!(
        delta("berth_http_bytes_sent_total"),
        2.0 * content.len() as f64
    );
}

/// Over HTTP/1.1 on plain TCP, blob bodies leave by `sendfile` from the
/// blob's file (counted apart); over HTTP/2 they are copied. The bytes are
/// the blob's either way, across the windows a read is cut into.
#[tokio::test]
async fn http1_blob_bodies_are_sent_from_their_files() {
    let _metrics = exclusive_metrics().await;
    let registry = TestRegistry::start().await;
    // Three and a bit of the 16 MiB windows a sent read is mapped in.
    let content = blob_content("sent from file", (48 << 20) + 4_321);
    let digest = registry.push_blob("app", &content).await;
    let from_file = |scrape: &Scrape| scrape.value("berth_http_bytes_sent_from_file_total", &[]);
    let window = 16 << 20;
    let ranges = [(0, 0), (window - 5, window + 5), (1, 2 * window + 77)];

    let before = Scrape::take(&registry).await;
    assert!(registry.blob_bytes("app", &digest).await == content);
    let mut ranged = 0;
    for (first, last) in ranges {
        let response = registry
            .get_blob_range("app", &digest, &format!("bytes={first}-{last}"))
            .await;
        let response = expect_status(response, StatusCode::PARTIAL_CONTENT).await;
        let body = response.bytes().await.unwrap();
        assert!(body == content[first..=last], "bytes {first}-{last}");
        ranged += last - first + 1;
    }
    let after = Scrape::take(&registry).await;
    assert_eq!(
        from_file(&after) - from_file(&before),
        (content.len() + ranged) as f64
    );

    let http2 = registry.over_http2();
    let before = Scrape::take(&registry).await;
    assert!(http2.blob_bytes("app", &digest).await == content);
    let after = Scrape::take(&registry).await;
    assert_eq!(from_file(&after) - from_file(&before), 0.0);
    assert_eq!(
        after.value("berth_http_bytes_sent_total", &[])
            - before.value("berth_http_bytes_sent_total", &[]),
        content.len() as f64
    );
}

#[tokio::test]
async fn uploads_in_progress_are_reported() {
    let _metrics = exclusive_metrics().await;
    let registry = TestRegistry::start().await;
    let gauge = "berth_uploads_in_progress";
    assert_eq!(Scrape::take(&registry).await.value(gauge, &[]), 0.0);

    let first = registry.start_upload("app").await;
    let second = registry.start_upload("app").await;
    assert_eq!(Scrape::take(&registry).await.value(gauge, &[]), 2.0);

    expect_status(
        registry.cancel_upload(&first.location).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    let content = blob_content("finished", 100);
    let response = registry
        .finish_upload_with_chunk(&second.location, &sha256(&content), 0, &content)
        .await;
    expect_status(response, StatusCode::CREATED).await;
    assert_eq!(Scrape::take(&registry).await.value(gauge, &[]), 0.0);
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let _metrics = exclusive_metrics().await;
    let registry = TestRegistry::start().await;
    let image = registry.push_image("app", "v1").await;
    let requests = [
        (registry.client().clone(), "/v2/".to_owned()),
        (registry.anonymous(), "/v2/".to_owned()),
        (registry.client().clone(), "/v2/app/manifests/v1".to_owned()),
        (
            registry.client().clone(),
            "/v2/app/manifests/nope".to_owned(),
        ),
        (
            registry.client().clone(),
            format!("/v2/app/blobs/{}", image.layers[0].digest),
        ),
        (registry.client().clone(), "/v2/Bad/tags/list".to_owned()),
        (registry.client().clone(), "/v2/app/tags/list".to_owned()),
        (registry.anonymous(), "/healthz".to_owned()),
        (registry.anonymous(), "/readyz".to_owned()),
        (registry.anonymous(), "/no/such/path".to_owned()),
    ];

    let mut generated = Vec::new();
    for (client, path) in &requests {
        let response = client.get(path).await;
        let id = header(&response, "x-request-id");
        assert!(!id.is_empty(), "{path}");
        generated.push(id);

        let given = format!("test-{}", generated.len());
        let response = client
            .request(Method::GET, path)
            .header("x-request-id", &given)
            .send()
            .await
            .unwrap();
        assert_header(&response, "x-request-id", &given);
    }
    let mut distinct = generated.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), generated.len(), "ids repeat: {generated:?}");
}

#[tokio::test]
async fn v2_responses_carry_the_api_version() {
    let _metrics = exclusive_metrics().await;
    let registry = TestRegistry::start().await;
    registry.push_image("app", "v1").await;

    for path in [
        "/v2/",
        "/v2/app/tags/list",
        "/v2/app/manifests/nope",
        "/v2/_catalog",
    ] {
        let response = registry.get(path).await;
        assert_header(&response, "docker-distribution-api-version", "registry/2.0");
    }
}
