//! Pushing, pulling and deleting manifests.

mod common;

use common::*;
use serde_json::json;

/// Limit up to which the spec expects manifests to be accepted.
const MANIFEST_LIMIT: usize = 4 * MIB;

/// Pushes a config and a layer for an image labelled `label`, with the
/// given media types; returns their descriptors.
async fn push_image_blobs(
    registry: &RegistryClient,
    repo: &str,
    label: &str,
    config_type: &str,
    layer_type: &str,
) -> (Descriptor, Descriptor) {
    let config = image_config(label);
    let layer = blob_content(label, 3_000);
    registry.push_blob(repo, &config).await;
    registry.push_blob(repo, &layer).await;
    (
        Descriptor::of(config_type, &config),
        Descriptor::of(layer_type, &layer),
    )
}

/// The OCI image manifest of `config` and `layers`.
fn oci_manifest_of(config: &Descriptor, layers: &[Descriptor]) -> Manifest {
    Manifest::from_json(OCI_MANIFEST, &image_manifest(OCI_MANIFEST, config, layers))
}

/// [`push_image_blobs`] of an OCI image.
async fn push_oci_blobs(
    registry: &RegistryClient,
    repo: &str,
    label: &str,
) -> (Descriptor, Descriptor) {
    push_image_blobs(registry, repo, label, OCI_CONFIG, OCI_LAYER).await
}

/// A push of `manifest` to `repo:reference` is refused: it names a blob
/// that `repo` does not hold.
async fn assert_blobs_unknown(
    registry: &RegistryClient,
    repo: &str,
    reference: &str,
    manifest: &Manifest,
) {
    let response = registry.put_manifest(repo, reference, manifest).await;
    assert_error(response, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
}

/// An OCI image whose blobs are pushed to `repo` (the manifest is not).
async fn oci_image(registry: &RegistryClient, repo: &str, label: &str) -> Manifest {
    let (config, layer) = push_oci_blobs(registry, repo, label).await;
    oci_manifest_of(&config, &[layer])
}

/// `reference` in `repo` serves exactly `manifest`, by GET and by HEAD.
async fn assert_manifest_served(
    registry: &RegistryClient,
    repo: &str,
    reference: &str,
    manifest: &Manifest,
) {
    let digest = manifest.digest();
    let length = manifest.bytes.len().to_string();
    let mut bodies = Vec::new();
    // GET and HEAD say the same of it; only GET sends it.
    for head in [false, true] {
        let response = if head {
            registry.head_manifest(repo, reference).await
        } else {
            registry.get_manifest(repo, reference).await
        };
        let response = expect_status(response, StatusCode::OK).await;
        assert_header(&response, "content-type", &manifest.media_type);
        assert_header(&response, "content-length", &length);
        assert_header(&response, "docker-content-digest", &digest);
        bodies.push(response.bytes().await.unwrap());
    }
    assert!(
        bodies[0] == manifest.bytes,
        "{repo}:{reference} served other bytes: {}",
        String::from_utf8_lossy(&bodies[0])
    );
    assert!(bodies[1].is_empty(), "HEAD has a body");
}

/// Pushes `manifest` to `repo:reference`: `201 Created`, and then served.
async fn assert_manifest_pushed(
    registry: &RegistryClient,
    repo: &str,
    reference: &str,
    manifest: &Manifest,
) {
    let response = registry.put_manifest(repo, reference, manifest).await;
    assert_manifest_created(response, repo, manifest).await;
    assert_manifest_served(registry, repo, reference, manifest).await;
}

/// The `201 Created` of a manifest push.
async fn assert_manifest_created(response: reqwest::Response, repo: &str, manifest: &Manifest) {
    let digest = manifest.digest();
    let response = expect_status(response, StatusCode::CREATED).await;
    assert_header(
        &response,
        "location",
        &format!("/v2/{repo}/manifests/{digest}"),
    );
    assert_header(&response, "docker-content-digest", &digest);
}

/// `repo` has no manifest `reference`.
async fn assert_no_manifest(registry: &RegistryClient, repo: &str, reference: &str) {
    let response = registry.get_manifest(repo, reference).await;
    assert_error(response, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}

/// Tags named by `OCI-Tag` headers (comma-separated, possibly repeated).
fn oci_tags(response: &reqwest::Response) -> Vec<String> {
    let mut tags: Vec<String> = header_values(response, "oci-tag")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    tags
}

#[tokio::test]
async fn push_by_tag_then_pull_by_tag_and_digest() {
    let registry = TestRegistry::start().await;
    let manifest = oci_image(&registry, "app", "v1").await;

    assert_manifest_pushed(&registry, "app", "v1", &manifest).await;
    assert_manifest_served(&registry, "app", &manifest.digest(), &manifest).await;
    assert_eq!(registry.tags("app").await, vec!["v1"]);
}

#[tokio::test]
async fn push_by_digest_creates_no_tag() {
    let registry = TestRegistry::start().await;
    let manifest = oci_image(&registry, "app", "untagged").await;
    let digest = manifest.digest();

    assert_manifest_pushed(&registry, "app", &digest, &manifest).await;
    assert!(registry.tags("app").await.is_empty());
}

#[tokio::test]
async fn push_by_sha512_digest() {
    let registry = TestRegistry::start().await;
    let manifest = oci_image(&registry, "app", "sha512").await;
    let digest = sha512(&manifest.bytes);

    let response = registry.put_manifest("app", &digest, &manifest).await;

    let response = expect_status(response, StatusCode::CREATED).await;
    assert_header(
        &response,
        "location",
        &format!("/v2/app/manifests/{digest}"),
    );
    assert_header(&response, "docker-content-digest", &digest);
    let response = expect_status(registry.get_manifest("app", &digest).await, StatusCode::OK).await;
    assert_header(&response, "docker-content-digest", &digest);
    assert_eq!(response.bytes().await.unwrap(), manifest.bytes);
}

#[tokio::test]
async fn content_type_parameters_are_ignored_and_a_missing_one_is_read_from_the_body() {
    let registry = TestRegistry::start().await;
    let with_parameters = oci_image(&registry, "app", "parameters").await;
    let without_type = oci_image(&registry, "app", "no content type").await;

    let response = registry
        .request(Method::PUT, "/v2/app/manifests/parameters")
        .header("content-type", format!("{OCI_MANIFEST}; charset=utf-8"))
        .body(with_parameters.bytes.clone())
        .send()
        .await
        .unwrap();
    assert_manifest_created(response, "app", &with_parameters).await;
    let response = registry
        .request(Method::PUT, "/v2/app/manifests/untyped")
        .body(without_type.bytes.clone())
        .send()
        .await
        .unwrap();
    assert_manifest_created(response, "app", &without_type).await;

    // Served with the bare media type.
    assert_manifest_served(&registry, "app", "parameters", &with_parameters).await;
    assert_manifest_served(&registry, "app", "untyped", &without_type).await;
}

#[tokio::test]
async fn media_type_may_be_left_out_of_the_body() {
    let registry = TestRegistry::start().await;
    let (config, layer) = push_oci_blobs(&registry, "app", "no media type").await;
    let mut value = image_manifest(OCI_MANIFEST, &config, &[layer]);
    value.as_object_mut().unwrap().remove("mediaType");
    let manifest = Manifest::from_json(OCI_MANIFEST, &value);

    assert_manifest_pushed(&registry, "app", "v1", &manifest).await;
}

#[tokio::test]
async fn tags_are_case_sensitive() {
    let registry = TestRegistry::start().await;
    let lower = registry.push_image("app", "latest").await;
    let upper = registry.push_image("app", "Latest").await;

    assert_manifest_served(&registry, "app", "latest", &lower.manifest).await;
    assert_manifest_served(&registry, "app", "Latest", &upper.manifest).await;
    assert_eq!(registry.tags("app").await, vec!["Latest", "latest"]);
}

#[tokio::test]
async fn invalid_tags_are_refused() {
    let registry = TestRegistry::start().await;
    let manifest = oci_image(&registry, "app", "tags").await;
    let too_long = "t".repeat(129);

    // A reference with a colon is a digest, and this one is not valid.
    for (tag, code) in [
        (too_long.as_str(), "MANIFEST_INVALID"),
        (".hidden", "MANIFEST_INVALID"),
        ("-dash", "MANIFEST_INVALID"),
        ("with:colon", "DIGEST_INVALID"),
    ] {
        let response = registry.put_manifest("app", tag, &manifest).await;
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    let longest = "t".repeat(128);
    registry.push_manifest("app", &longest, &manifest).await;
    assert_eq!(registry.tags("app").await, vec![longest]);
}

#[tokio::test]
async fn push_by_digest_with_tag_parameters() {
    let registry = TestRegistry::start().await;
    let manifest = oci_image(&registry, "app", "tagged twice").await;
    let digest = manifest.digest();

    let response = registry
        .put_manifest("app", &format!("{digest}?tag=stable&tag=1.0"), &manifest)
        .await;

    let response = expect_status(response, StatusCode::CREATED).await;
    assert_eq!(oci_tags(&response), vec!["1.0", "stable"]);
    assert_header(&response, "docker-content-digest", &digest);
    for tag in ["stable", "1.0"] {
        assert_manifest_served(&registry, "app", tag, &manifest).await;
    }
    assert_eq!(registry.tags("app").await, vec!["1.0", "stable"]);
}

#[tokio::test]
async fn pushing_to_a_tag_again_moves_it() {
    let registry = TestRegistry::start().await;
    let first = oci_image(&registry, "app", "first").await;
    let second = oci_image(&registry, "app", "second").await;
    registry.push_manifest("app", "latest", &first).await;

    registry.push_manifest("app", "latest", &second).await;

    assert_manifest_served(&registry, "app", "latest", &second).await;
    assert_manifest_served(&registry, "app", &first.digest(), &first).await;
}

#[tokio::test]
async fn docker_schema2_manifest_and_manifest_list() {
    let registry = TestRegistry::start().await;
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let (config, layer) =
            push_image_blobs(&registry, "app", arch, DOCKER_CONFIG, DOCKER_LAYER).await;
        let manifest = Manifest::from_json(
            DOCKER_MANIFEST,
            &image_manifest(DOCKER_MANIFEST, &config, &[layer]),
        );
        assert_manifest_pushed(&registry, "app", &format!("v1-{arch}"), &manifest).await;
        children.push(manifest.descriptor().with_platform("linux", arch));
    }
    let list = Manifest::from_json(
        DOCKER_MANIFEST_LIST,
        &index_manifest(DOCKER_MANIFEST_LIST, children),
    );

    assert_manifest_pushed(&registry, "app", "v1", &list).await;
}

#[tokio::test]
async fn oci_index_with_its_children_present() {
    let registry = TestRegistry::start().await;
    let mut children = Vec::new();
    for arch in ["amd64", "arm64", "s390x"] {
        let image = oci_image(&registry, "app", arch).await;
        registry.push_manifest("app", &image.digest(), &image).await;
        children.push(image.descriptor().with_platform("linux", arch));
    }
    let index = Manifest::from_json(OCI_INDEX, &index_manifest(OCI_INDEX, children));

    assert_manifest_pushed(&registry, "app", "multi", &index).await;
}

#[tokio::test]
async fn index_with_a_missing_child_is_refused() {
    let registry = TestRegistry::start().await;
    let present = oci_image(&registry, "app", "present").await;
    registry
        .push_manifest("app", &present.digest(), &present)
        .await;
    let absent = oci_image(&registry, "app", "absent").await;
    let index = Manifest::from_json(
        OCI_INDEX,
        &index_manifest(
            OCI_INDEX,
            vec![present.descriptor().json(), absent.descriptor().json()],
        ),
    );

    assert_blobs_unknown(&registry, "app", "multi", &index).await;
    assert_no_manifest(&registry, "app", "multi").await;
}

#[tokio::test]
async fn index_child_must_be_in_the_same_repository() {
    let registry = TestRegistry::start().await;
    let image = registry.push_image("elsewhere", "v1").await;
    let index = Manifest::from_json(
        OCI_INDEX,
        &index_manifest(OCI_INDEX, vec![image.descriptor().json()]),
    );

    assert_blobs_unknown(&registry, "app", "multi", &index).await;
}

#[tokio::test]
async fn image_with_a_missing_layer_or_config_is_refused() {
    let registry = TestRegistry::start().await;
    let (config, layer) = push_oci_blobs(&registry, "app", "present").await;
    let missing_layer = Descriptor::of(OCI_LAYER, b"layer never pushed");
    let missing_config = Descriptor::of(OCI_CONFIG, b"{\"never\":\"pushed\"}");
    let refused = [
        image_manifest(OCI_MANIFEST, &config, &[layer.clone(), missing_layer]),
        image_manifest(OCI_MANIFEST, &missing_config, &[layer]),
    ];

    for manifest in refused {
        let manifest = Manifest::from_json(OCI_MANIFEST, &manifest);
        assert_blobs_unknown(&registry, "app", "broken", &manifest).await;
    }
    assert_no_manifest(&registry, "app", "broken").await;
}

#[tokio::test]
async fn layers_must_be_in_the_same_repository() {
    let registry = TestRegistry::start().await;
    let (config, layer) = push_oci_blobs(&registry, "elsewhere", "x").await;
    let manifest = oci_manifest_of(&config, &[layer]);

    assert_blobs_unknown(&registry, "app", "v1", &manifest).await;
}

#[tokio::test]
async fn deleted_layer_can_no_longer_be_referenced() {
    let registry = TestRegistry::start().await;
    let (config, layer) = push_oci_blobs(&registry, "app", "deleted layer").await;
    expect_status(
        registry.delete_blob("app", &layer.digest).await,
        StatusCode::ACCEPTED,
    )
    .await;
    let manifest = oci_manifest_of(&config, &[layer]);

    assert_blobs_unknown(&registry, "app", "v1", &manifest).await;
}

#[tokio::test]
async fn non_distributable_layer_need_not_be_pushed() {
    let registry = TestRegistry::start().await;
    let (config, layer) = push_oci_blobs(&registry, "app", "windows").await;
    let foreign = Descriptor::of(OCI_NONDISTRIBUTABLE_LAYER, b"licensed base layer");
    let manifest = oci_manifest_of(&config, &[foreign, layer]);

    assert_manifest_pushed(&registry, "app", "v1", &manifest).await;
}

#[tokio::test]
async fn digest_mismatch_is_refused() {
    let registry = TestRegistry::start().await;
    let manifest = oci_image(&registry, "app", "mismatch").await;
    let other_digest = sha256(b"some other manifest");

    let response = registry.put_manifest("app", &other_digest, &manifest).await;

    assert_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    for reference in [other_digest, manifest.digest()] {
        assert_no_manifest(&registry, "app", &reference).await;
    }
}

#[tokio::test]
async fn invalid_manifests_are_refused() {
    let registry = TestRegistry::start().await;
    let (config, layer) = push_oci_blobs(&registry, "app", "valid parts").await;
    let valid = image_manifest(OCI_MANIFEST, &config, std::slice::from_ref(&layer));
    let with = |key: &str, value: serde_json::Value| {
        let mut manifest = valid.clone();
        manifest[key] = value;
        serde_json::to_vec(&manifest).unwrap()
    };
    let without = |key: &str| {
        let mut manifest = valid.clone();
        manifest.as_object_mut().unwrap().remove(key);
        serde_json::to_vec(&manifest).unwrap()
    };
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("not JSON", OCI_MANIFEST, b"{\"schemaVersion\": 2,".to_vec()),
        ("a JSON array", OCI_MANIFEST, b"[]".to_vec()),
        (
            "schemaVersion 3",
            OCI_MANIFEST,
            with("schemaVersion", json!(3)),
        ),
        (
            "schemaVersion as text",
            OCI_MANIFEST,
            with("schemaVersion", json!("2")),
        ),
        ("no schemaVersion", OCI_MANIFEST, without("schemaVersion")),
        ("no config", OCI_MANIFEST, without("config")),
        ("layers not a list", OCI_MANIFEST, with("layers", json!({}))),
        (
            "Content-Type of an index for an image",
            OCI_INDEX,
            serde_json::to_vec(&valid).unwrap(),
        ),
        (
            "Content-Type of a Docker manifest for an OCI one",
            DOCKER_MANIFEST,
            serde_json::to_vec(&valid).unwrap(),
        ),
        (
            "mediaType of an index in an image",
            OCI_MANIFEST,
            with("mediaType", json!(OCI_INDEX)),
        ),
    ];

    for (what, content_type, bytes) in cases {
        let manifest = Manifest::raw(content_type, bytes);
        let response = registry.put_manifest("app", "invalid", &manifest).await;
        let codes = error_codes(response, StatusCode::BAD_REQUEST).await;
        assert!(
            codes.iter().any(|c| c == "MANIFEST_INVALID"),
            "{what}: {codes:?}"
        );
    }
    assert_no_manifest(&registry, "app", "invalid").await;
}

#[tokio::test]
async fn docker_schema1_manifests_are_refused() {
    let registry = TestRegistry::start().await;
    let layer = registry
        .push_blob("app", &blob_content("schema1", 100))
        .await;
    let schema1 = json!({
        "schemaVersion": 1,
        "name": "app",
        "tag": "old",
        "architecture": "amd64",
        "fsLayers": [{ "blobSum": layer }],
        "history": [{ "v1Compatibility": "{}" }],
    });

    for content_type in [DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED, "application/json"] {
        let manifest = Manifest::from_json(content_type, &schema1);
        let response = registry.put_manifest("app", "old", &manifest).await;
        assert_error(response, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    }
}

/// An image manifest of exactly `size` bytes (padded with an annotation).
async fn manifest_of_size(registry: &RegistryClient, repo: &str, size: usize) -> Manifest {
    let (config, layer) = push_oci_blobs(registry, repo, "big").await;
    let mut value = image_manifest(OCI_MANIFEST, &config, &[layer]);
    value["annotations"] = json!({ "padding": "" });
    let overhead = serde_json::to_vec(&value).unwrap().len();
    value["annotations"]["padding"] = json!("x".repeat(size - overhead));
    let manifest = Manifest::from_json(OCI_MANIFEST, &value);
    assert_eq!(manifest.bytes.len(), size);
    manifest
}

#[tokio::test]
async fn manifest_of_4_mib_is_accepted() {
    let registry = TestRegistry::start().await;
    let manifest = manifest_of_size(&registry, "app", MANIFEST_LIMIT).await;

    assert_manifest_pushed(&registry, "app", "big", &manifest).await;
}

#[tokio::test]
async fn manifest_over_4_mib_with_content_length_is_413() {
    let registry = TestRegistry::start().await;
    let manifest = manifest_of_size(&registry, "app", MANIFEST_LIMIT + 1).await;

    let response = registry.put_manifest("app", "too-big", &manifest).await;

    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID").await;
    assert_no_manifest(&registry, "app", "too-big").await;
}

/// A client that sends its whole request before reading the answer, as
/// Python's http.client does, gets the 413 (not a broken pipe), told why,
/// and can go on using the connection.
#[tokio::test]
async fn manifest_over_4_mib_sent_whole_before_reading_gets_413_and_keeps_the_connection() {
    use base64::Engine as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let registry = TestRegistry::start().await;
    let manifest = manifest_of_size(&registry, "app", MANIFEST_LIMIT + MIB).await;
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
        "{ADMIN_USER}:{}",
        registry.password().expect("admin password")
    ));
    let mut connection = tokio::net::TcpStream::connect(registry.addr).await.unwrap();
    let head = format!(
        "PUT /v2/app/manifests/too-big HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {credentials}\r\n\
         Content-Type: {OCI_MANIFEST}\r\nContent-Length: {}\r\n\r\n",
        registry.addr,
        manifest.bytes.len()
    );
    connection.write_all(head.as_bytes()).await.unwrap();
    connection
        .write_all(&manifest.bytes)
        .await
        .expect("the whole body is taken, not refused with a broken pipe");
    let next = format!(
        "GET /v2/app/tags/list HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {credentials}\r\n\r\n",
        registry.addr
    );
    connection.write_all(next.as_bytes()).await.unwrap();

    let mut answers = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut buffer = vec![0u8; 64 * 1024];
    while !String::from_utf8_lossy(&answers).contains("\"tags\"") {
        assert!(std::time::Instant::now() < deadline, "no second answer");
        let n = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            connection.read(&mut buffer),
        )
        .await
        .expect("answers within 10 s")
        .unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&answers)
        );
        answers.extend_from_slice(&buffer[..n]);
    }
    let text = String::from_utf8_lossy(&answers);
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    assert!(
        text.contains("exceeds the registry's size limit of 4194304 bytes"),
        "the 413 does not say why: {text}"
    );
    assert!(text.contains("\"SIZE_INVALID\""), "{text}");
    let second = &text[1 + text[1..].find("HTTP/1.1 ").expect("a second answer")..];
    assert!(second.contains("HTTP/1.1 200 OK"), "{second}");
}

#[tokio::test]
async fn manifest_over_4_mib_streamed_without_length_is_413() {
    let registry = TestRegistry::start().await;
    let manifest = manifest_of_size(&registry, "app", MANIFEST_LIMIT + 1).await;

    let response = registry
        .request(Method::PUT, "/v2/app/manifests/too-big")
        .header("content-type", OCI_MANIFEST)
        .body(chunked_body(&manifest.bytes, 64 * 1024))
        .send()
        .await
        .unwrap();

    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID").await;
    assert_no_manifest(&registry, "app", "too-big").await;
}

#[tokio::test]
async fn unknown_manifest_is_404() {
    let registry = TestRegistry::start().await;
    registry.push_image("app", "latest").await;
    let unknown_digest = sha256(b"no such manifest");

    for reference in ["no-such-tag", unknown_digest.as_str()] {
        assert_no_manifest(&registry, "app", reference).await;
        let response = registry.head_manifest("app", reference).await;
        expect_status(response, StatusCode::NOT_FOUND).await;
    }
    assert_no_manifest(&registry, "no/such/repo", "latest").await;
}

#[tokio::test]
async fn invalid_repository_name_is_400() {
    let registry = TestRegistry::start().await;
    let manifest = oci_image(&registry, "app", "valid").await;

    for name in ["Upper", "a//b", "-leading", "a..b", "under___score"] {
        let response = registry.get_manifest(name, "latest").await;
        assert_error(response, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
        let response = registry.put_manifest(name, "latest", &manifest).await;
        assert_error(response, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
    }
}

#[tokio::test]
async fn custom_fields_and_embedded_data_are_kept_byte_for_byte() {
    let registry = TestRegistry::start().await;
    let empty_config = b"{}";
    registry.push_blob("app", empty_config).await;
    let layer = blob_content("custom fields", 500);
    let layer_digest = registry.push_blob("app", &layer).await;
    let config_digest = sha256(empty_config);
    // Unusual key order, whitespace, number forms and unknown fields: none of
    // it may be normalised away.
    let text = format!(
        r#"{{
   "mediaType" : "{OCI_MANIFEST}",
	"schemaVersion":2,
  "config": {{"size": 2, "digest": "{config_digest}", "mediaType": "{OCI_EMPTY}", "data": "e30="}},
  "layers": [ {{"mediaType":"{OCI_LAYER}","digest":"{layer_digest}","size":500,
                "annotations": {{"org.example.note": "caf\u00e9 ☕"}} }} ],
  "x-custom": {{"float": 2.50, "big": 1e3, "nested": [true, null, "three"]}},
  "annotations": {{"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}}
}}
"#
    );
    let manifest = Manifest::raw(OCI_MANIFEST, text.into_bytes());

    assert_manifest_pushed(&registry, "app", "custom", &manifest).await;
    assert_manifest_served(&registry, "app", &manifest.digest(), &manifest).await;
}

#[tokio::test]
async fn manifest_with_a_subject_gets_oci_subject() {
    let registry = TestRegistry::start().await;
    let image = registry.push_image("app", "v1").await;
    let (config, layer) = push_oci_blobs(&registry, "app", "signature").await;
    let mut value = image_manifest(OCI_MANIFEST, &config, &[layer]);
    value["subject"] = image.descriptor().json();
    let referrer = Manifest::from_json(OCI_MANIFEST, &value);

    let response = registry
        .put_manifest("app", &referrer.digest(), &referrer)
        .await;

    let response = expect_status(response, StatusCode::CREATED).await;
    assert_header(&response, "oci-subject", &image.digest);
    assert_manifest_served(&registry, "app", &referrer.digest(), &referrer).await;
}

#[tokio::test]
async fn manifest_without_a_subject_gets_no_oci_subject() {
    let registry = TestRegistry::start().await;
    let manifest = oci_image(&registry, "app", "plain").await;

    let response = registry.put_manifest("app", "plain", &manifest).await;

    let response = expect_status(response, StatusCode::CREATED).await;
    assert_no_header(&response, "oci-subject");
}

#[tokio::test]
async fn deleting_a_tag_keeps_the_manifest() {
    let registry = TestRegistry::start().await;
    let image = registry.push_image("app", "v1").await;
    registry
        .push_manifest("app", "stable", &image.manifest)
        .await;

    let response = registry.delete_manifest("app", "v1").await;

    expect_status(response, StatusCode::ACCEPTED).await;
    assert_no_manifest(&registry, "app", "v1").await;
    assert_manifest_served(&registry, "app", &image.digest, &image.manifest).await;
    assert_manifest_served(&registry, "app", "stable", &image.manifest).await;
    assert_eq!(registry.tags("app").await, vec!["stable"]);
}

#[tokio::test]
async fn deleting_a_manifest_by_digest_removes_its_tags() {
    let registry = TestRegistry::start().await;
    let image = registry.push_image("app", "v1").await;
    registry
        .push_manifest("app", "stable", &image.manifest)
        .await;
    let other = registry.push_image("app", "other").await;

    let response = registry.delete_manifest("app", &image.digest).await;

    expect_status(response, StatusCode::ACCEPTED).await;
    for reference in [image.digest.as_str(), "v1", "stable"] {
        assert_no_manifest(&registry, "app", reference).await;
    }
    assert_eq!(registry.tags("app").await, vec!["other"]);
    assert_manifest_served(&registry, "app", "other", &other.manifest).await;
}

#[tokio::test]
async fn deleting_a_manifest_leaves_other_repositories_alone() {
    let registry = TestRegistry::start().await;
    let image = registry.push_image("one", "v1").await;
    for layer in image.layers.iter().chain([&image.config]) {
        let response = registry.mount_blob("two", &layer.digest, Some("one")).await;
        expect_status(response, StatusCode::CREATED).await;
    }
    registry.push_manifest("two", "v1", &image.manifest).await;

    let response = registry.delete_manifest("one", &image.digest).await;

    expect_status(response, StatusCode::ACCEPTED).await;
    assert_no_manifest(&registry, "one", "v1").await;
    assert_manifest_served(&registry, "two", "v1", &image.manifest).await;
    assert_manifest_served(&registry, "two", &image.digest, &image.manifest).await;
}

#[tokio::test]
async fn tags_belong_to_their_repository() {
    let registry = TestRegistry::start().await;
    let one = registry.push_image("one", "latest").await;
    let two = registry.push_image("two", "latest").await;

    assert_manifest_served(&registry, "one", "latest", &one.manifest).await;
    assert_manifest_served(&registry, "two", "latest", &two.manifest).await;
    assert_no_manifest(&registry, "two", &one.digest).await;
}

#[tokio::test]
async fn deleting_an_unknown_manifest_is_404() {
    let registry = TestRegistry::start().await;
    registry.push_image("app", "v1").await;

    for reference in ["no-such-tag".to_owned(), sha256(b"no such manifest")] {
        let response = registry.delete_manifest("app", &reference).await;
        assert_error(response, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    }
    let response = registry.delete_manifest("no-such-repo", "v1").await;
    assert_error(response, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}
