//! The referrers API: manifests that name another one as their `subject`.

mod common;

use common::*;
use serde_json::{Value, json};

const SBOM: &str = "application/vnd.example.sbom.v1";
const SIGNATURE: &str = "application/vnd.example.signature.v1";

/// An artifact manifest about `subject`: an empty config, one layer of
/// `payload` (pushed to `repo`), and `fields` merged into the top level.
async fn push_referrer(
    registry: &RegistryClient,
    repo: &str,
    subject: &Descriptor,
    payload: &str,
    fields: Value,
) -> Manifest {
    registry.push_blob(repo, b"{}").await;
    let layer = payload.as_bytes();
    registry.push_blob(repo, layer).await;
    let mut value = image_manifest(
        OCI_MANIFEST,
        &Descriptor::of(OCI_EMPTY, b"{}"),
        &[Descriptor::of("application/octet-stream", layer)],
    );
    value["subject"] = subject.json();
    for (key, field) in fields.as_object().expect("fields are an object") {
        value[key] = field.clone();
    }
    let manifest = Manifest::from_json(OCI_MANIFEST, &value);
    let response = registry
        .put_manifest(repo, &manifest.digest(), &manifest)
        .await;
    let response = expect_status(response, StatusCode::CREATED).await;
    assert_header(&response, "oci-subject", &subject.digest);
    manifest
}

/// [`push_referrer`] of an artifact of `artifact_type`.
async fn push_artifact(
    registry: &RegistryClient,
    repo: &str,
    subject: &Descriptor,
    payload: &str,
    artifact_type: &str,
) -> Manifest {
    let fields = json!({ "artifactType": artifact_type });
    push_referrer(registry, repo, subject, payload, fields).await
}

/// A registry holding the image `app:v1`, and an SBOM and a signature
/// about it.
async fn image_with_sbom_and_signature() -> (TestRegistry, PushedImage, [Manifest; 2]) {
    let registry = TestRegistry::start().await;
    let image = registry.push_image("app", "v1").await;
    let subject = image.descriptor();
    let sbom = push_artifact(&registry, "app", &subject, "sbom", SBOM).await;
    let signature = push_artifact(&registry, "app", &subject, "signature", SIGNATURE).await;
    (registry, image, [sbom, signature])
}

/// The `manifests` of a referrers response (checked to be an OCI index).
async fn referrer_list(response: reqwest::Response) -> Vec<Value> {
    let response = expect_status(response, StatusCode::OK).await;
    assert_header(&response, "content-type", OCI_INDEX);
    let index: Value = response.json().await.expect("referrers index is JSON");
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    index["manifests"]
        .as_array()
        .expect("manifests is a list")
        .clone()
}

/// The descriptor the referrers API should list for `manifest`.
fn entry_for(manifest: &Manifest) -> Value {
    let descriptor = manifest.descriptor().json();
    let value: Value = serde_json::from_slice(&manifest.bytes).unwrap();
    let mut entry = descriptor;
    let artifact_type = value
        .get("artifactType")
        .or_else(|| value.pointer("/config/mediaType"));
    if let Some(t) = artifact_type {
        entry["artifactType"] = t.clone();
    }
    if let Some(annotations) = value.get("annotations") {
        entry["annotations"] = annotations.clone();
    }
    entry
}

/// `?artifactType=<artifact_type>`, encoded (media types may hold a `+`).
fn artifact_type_filter(artifact_type: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("artifactType", artifact_type)
        .finish();
    format!("?{query}")
}

/// `entries` sorted by digest, to compare listings whatever their order.
fn by_digest(mut entries: Vec<Value>) -> Vec<Value> {
    entries.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
    entries
}

#[tokio::test]
async fn referrers_of_a_subject_that_was_never_pushed() {
    let registry = TestRegistry::start().await;
    let subject = Descriptor::of(OCI_MANIFEST, b"a manifest pushed later, or never");
    let sbom = push_referrer(
        &registry,
        "app",
        &subject,
        "sbom",
        json!({ "artifactType": SBOM, "annotations": { "org.example.format": "spdx" } }),
    )
    .await;

    let listed = referrer_list(registry.referrers("app", &subject.digest, "").await).await;

    assert_eq!(listed, vec![entry_for(&sbom)]);
    assert_eq!(listed[0]["artifactType"], SBOM);
    assert_eq!(listed[0]["annotations"]["org.example.format"], "spdx");
    assert_eq!(listed[0]["size"], sbom.bytes.len());
}

#[tokio::test]
async fn referrers_of_a_pushed_image() {
    let (registry, image, [sbom, signature]) = image_with_sbom_and_signature().await;

    let response = registry.referrers("app", &image.digest, "").await;

    assert_no_header(&response, "oci-filters-applied");
    let listed = referrer_list(response).await;
    assert_eq!(
        by_digest(listed),
        by_digest(vec![entry_for(&sbom), entry_for(&signature)])
    );
}

#[tokio::test]
async fn referrers_filtered_by_artifact_type() {
    let (registry, image, [sbom, _]) = image_with_sbom_and_signature().await;

    let response = registry
        .referrers("app", &image.digest, &artifact_type_filter(SBOM))
        .await;

    assert_header(&response, "oci-filters-applied", "artifactType");
    assert_eq!(referrer_list(response).await, vec![entry_for(&sbom)]);

    let response = registry
        .referrers(
            "app",
            &image.digest,
            &artifact_type_filter("application/vnd.example.none"),
        )
        .await;
    assert_header(&response, "oci-filters-applied", "artifactType");
    assert!(referrer_list(response).await.is_empty());
}

#[tokio::test]
async fn artifact_type_falls_back_to_the_config_media_type() {
    let registry = TestRegistry::start().await;
    let image = registry.push_image("app", "v1").await;
    let config_type = "application/vnd.example.config.v1+json";
    let config = br#"{"kind":"example"}"#;
    registry.push_blob("app", config).await;
    let mut value = image_manifest(OCI_MANIFEST, &Descriptor::of(config_type, config), &[]);
    value["subject"] = image.descriptor().json();
    let referrer = Manifest::from_json(OCI_MANIFEST, &value);
    registry
        .push_manifest("app", &referrer.digest(), &referrer)
        .await;

    let listed = referrer_list(registry.referrers("app", &image.digest, "").await).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["artifactType"], config_type);
    assert_eq!(listed[0]["digest"], referrer.digest());

    let response = registry
        .referrers("app", &image.digest, &artifact_type_filter(config_type))
        .await;
    assert_eq!(referrer_list(response).await.len(), 1);
}

#[tokio::test]
async fn index_referrer_without_artifact_type_lists_none() {
    let registry = TestRegistry::start().await;
    let image = registry.push_image("app", "v1").await;
    let child = registry.push_image("app", "child").await;
    let mut value = index_manifest(OCI_INDEX, vec![child.descriptor().json()]);
    value["subject"] = image.descriptor().json();
    value["annotations"] = json!({ "org.example.kind": "bundle" });
    let index = Manifest::from_json(OCI_INDEX, &value);
    let response = registry.put_manifest("app", &index.digest(), &index).await;
    let response = expect_status(response, StatusCode::CREATED).await;
    assert_header(&response, "oci-subject", &image.digest);

    let listed = referrer_list(registry.referrers("app", &image.digest, "").await).await;

    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["mediaType"], OCI_INDEX);
    assert_eq!(listed[0]["digest"], index.digest());
    assert!(listed[0].get("artifactType").is_none(), "{}", listed[0]);
    assert_eq!(listed[0]["annotations"]["org.example.kind"], "bundle");
}

#[tokio::test]
async fn referrers_stay_in_their_repository() {
    let registry = TestRegistry::start().await;
    let subject = Descriptor::of(OCI_MANIFEST, b"shared subject");
    push_artifact(&registry, "one", &subject, "sbom", SBOM).await;

    let listed = referrer_list(registry.referrers("two", &subject.digest, "").await).await;

    assert!(listed.is_empty());
}

#[tokio::test]
async fn deleted_referrer_is_no_longer_listed() {
    let registry = TestRegistry::start().await;
    let image = registry.push_image("app", "v1").await;
    let sbom = push_artifact(&registry, "app", &image.descriptor(), "sbom", SBOM).await;

    expect_status(
        registry.delete_manifest("app", &sbom.digest()).await,
        StatusCode::ACCEPTED,
    )
    .await;

    let listed = referrer_list(registry.referrers("app", &image.digest, "").await).await;
    assert!(listed.is_empty());
}

#[tokio::test]
async fn unknown_repository_has_an_empty_referrers_list() {
    let registry = TestRegistry::start().await;

    let response = registry
        .referrers("never/pushed", &sha256(b"anything"), "")
        .await;

    assert!(referrer_list(response).await.is_empty());
}

#[tokio::test]
async fn invalid_digest_is_400() {
    let registry = TestRegistry::start().await;
    registry.push_image("app", "v1").await;

    for digest in ["sha256:nothex", "v1", "sha256:"] {
        let response = registry.referrers("app", digest, "").await;
        assert_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    }
}
