//! What the tests push: blob bytes, their digests, and manifests.
//!
//! Digests are computed here with aws-lc-rs directly, not with berth's own
//! digest code, so that a hashing bug in berth cannot hide itself.

use serde_json::{Value, json};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_NONDISTRIBUTABLE_LAYER: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

pub const MIB: usize = 1 << 20;

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    format!("sha256:{}", hex::encode(digest.as_ref()))
}

/// `sha512:<hex>` of `bytes`.
pub fn sha512(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, bytes);
    format!("sha512:{}", hex::encode(digest.as_ref()))
}

/// `len` pseudo-random bytes, the same for the same `label` (splitmix64
/// seeded by the label), different for different labels.
pub fn blob_content(label: &str, len: usize) -> Vec<u8> {
    let mut state = label.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A content descriptor as manifests carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    /// The descriptor of `content` (sha256).
    pub fn of(media_type: &str, content: &[u8]) -> Self {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: sha256(content),
            size: content.len() as u64,
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        })
    }

    /// This descriptor with a `platform`, as index entries have.
    pub fn with_platform(&self, os: &str, architecture: &str) -> Value {
        let mut value = self.json();
        value["platform"] = json!({ "os": os, "architecture": architecture });
        value
    }
}

/// A manifest: its exact bytes and the media type it is pushed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Manifest {
    pub fn from_json(media_type: &str, value: &Value) -> Self {
        Manifest {
            media_type: media_type.to_owned(),
            bytes: serde_json::to_vec(value).expect("manifest JSON serializes"),
        }
    }

    /// Bytes given verbatim (unusual formatting, invalid documents).
    pub fn raw(media_type: &str, bytes: impl Into<Vec<u8>>) -> Self {
        Manifest {
            media_type: media_type.to_owned(),
            bytes: bytes.into(),
        }
    }

    pub fn digest(&self) -> String {
        sha256(&self.bytes)
    }

    pub fn descriptor(&self) -> Descriptor {
        Descriptor::of(&self.media_type, &self.bytes)
    }
}

/// An image manifest (OCI or Docker schema 2, by `media_type`).
pub fn image_manifest(media_type: &str, config: &Descriptor, layers: &[Descriptor]) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.json(),
        "layers": layers.iter().map(Descriptor::json).collect::<Vec<_>>(),
    })
}

/// An index or manifest list (by `media_type`) of `children` descriptors.
pub fn index_manifest(media_type: &str, children: Vec<Value>) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": children,
    })
}

/// An image config naming `label`, so different images get different configs.
pub fn image_config(label: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": { "test": label } },
        "rootfs": { "type": "layers", "diff_ids": [] },
    }))
    .expect("config JSON serializes")
}
