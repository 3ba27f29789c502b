//! Images of a test's own, pushed piece by piece (what garbage collection
//! and the pruner must keep or remove), and the blobs the filesystem store
//! holds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::json;

use super::assertions::{expect_status, header};
use super::client::RegistryClient;
use super::content::*;

/// Where the filesystem store keeps a blob.
pub fn blob_file(data: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').expect("algorithm:hex");
    data.join("storage/blobs")
        .join(algorithm)
        .join(&hex[..2])
        .join(hex)
}

/// Every blob the filesystem store holds.
pub fn stored_blobs(data: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let root = data.join("storage/blobs");
    let Ok(algorithms) = std::fs::read_dir(&root) else {
        return found;
    };
    for algorithm in algorithms.flatten() {
        let algorithm_name = algorithm.file_name().to_string_lossy().into_owned();
        for prefix in std::fs::read_dir(algorithm.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for blob in std::fs::read_dir(prefix.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                found.insert(format!(
                    "{algorithm_name}:{}",
                    blob.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

/// An image of the test's own: a config naming `label` and `layers`.
#[derive(Clone)]
pub struct Image {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Manifest,
}

impl Image {
    pub fn new(label: &str, layers: Vec<Vec<u8>>) -> Image {
        let config = image_config(label);
        let descriptors: Vec<Descriptor> = layers
            .iter()
            .map(|l| Descriptor::of(OCI_LAYER, l))
            .collect();
        let manifest = Manifest::from_json(
            OCI_MANIFEST,
            &image_manifest(
                OCI_MANIFEST,
                &Descriptor::of(OCI_CONFIG, &config),
                &descriptors,
            ),
        );
        Image {
            config,
            layers,
            manifest,
        }
    }

    /// An artifact whose subject is `subject` (a signature, say).
    pub fn referrer(label: &str, subject: &Manifest) -> Image {
        let config = b"{}".to_vec();
        let layer = blob_content(label, 300);
        let value = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.test.signature",
            "config": Descriptor::of(OCI_EMPTY, &config).json(),
            "layers": [Descriptor::of(OCI_LAYER, &layer).json()],
            "subject": subject.descriptor().json(),
        });
        Image {
            config,
            layers: vec![layer],
            manifest: Manifest::from_json(OCI_MANIFEST, &value),
        }
    }

    pub fn contents(&self) -> impl Iterator<Item = &Vec<u8>> {
        std::iter::once(&self.config).chain(&self.layers)
    }

    pub fn blobs(&self) -> Vec<String> {
        self.contents().map(|c| sha256(c)).collect()
    }

    pub fn digest(&self) -> String {
        self.manifest.digest()
    }

    /// Pushes what a HEAD says is missing, then the manifest as `reference`.
    pub async fn push(&self, client: &RegistryClient, repo: &str, reference: &str) {
        for content in self.contents() {
            let digest = sha256(content);
            if client.head_blob(repo, &digest).await.status() != StatusCode::OK {
                client.push_blob(repo, content).await;
            }
        }
        client.push_manifest(repo, reference, &self.manifest).await;
    }
}

pub fn index_of(children: &[&Image]) -> Manifest {
    Manifest::from_json(
        OCI_INDEX,
        &index_manifest(
            OCI_INDEX,
            children
                .iter()
                .map(|c| c.manifest.descriptor().with_platform("linux", "amd64"))
                .collect(),
        ),
    )
}

/// Pulls `image` by `reference` from `repo` and checks every digest.
pub async fn assert_pulls(client: &RegistryClient, repo: &str, reference: &str, image: &Image) {
    let response = expect_status(client.get_manifest(repo, reference).await, StatusCode::OK).await;
    assert_eq!(header(&response, "docker-content-digest"), image.digest());
    for content in image.contents() {
        let digest = sha256(content);
        let bytes = client.blob_bytes(repo, &digest).await;
        assert_eq!(sha256(&bytes), digest, "{repo}: blob {digest}");
    }
}

/// Tag `tag` in an image stream's `status.tags`, as `/api/v1` shows it.
pub fn status_tag<'a>(stream: &'a serde_json::Value, tag: &str) -> Option<&'a serde_json::Value> {
    stream["status"]["tags"]
        .as_array()?
        .iter()
        .find(|t| t["tag"] == tag)
}

/// The images tag `tag` has pointed at, newest first.
pub fn tag_history(stream: &serde_json::Value, tag: &str) -> Vec<String> {
    status_tag(stream, tag)
        .and_then(|t| t["items"].as_array())
        .map(|items| {
            items
                .iter()
                .map(|i| i["image"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
