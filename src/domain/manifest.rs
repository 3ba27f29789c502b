//! Manifest parsing and validation.
//!
//! berth stores and serves the exact bytes a client pushed; parsing happens
//! only to validate them and to index what they reference. Four media types
//! are accepted: OCI image manifests and indexes, and Docker's schema 2
//! manifests and manifest lists. Schema 1 is refused.

use base64::Engine as _;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::error::RegistryError;
use crate::metadata::ReferenceKind;
use crate::oci::digest::{Digest, DigestAlgorithm};

/// Largest manifest accepted; the spec asks registries to take at least 4 MB.
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// The manifest media types berth serves, in the order it prefers them.
pub const SUPPORTED_MEDIA_TYPES: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest: a config and layers.
    Image,
    /// An index or manifest list: child manifests.
    Index,
}

fn kind_of(media_type: &str) -> Option<ManifestKind> {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Some(ManifestKind::Image),
        OCI_INDEX | DOCKER_MANIFEST_LIST => Some(ManifestKind::Index),
        _ => None,
    }
}

/// A layer whose blob is not expected in the registry (the spec's
/// "non-distributable" layers, Docker's "foreign" layers).
pub fn is_non_distributable(media_type: &str) -> bool {
    media_type.contains(".nondistributable.") || media_type == DOCKER_FOREIGN_LAYER
}

/// A descriptor reduced to what berth needs from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub digest: Digest,
    pub media_type: String,
    pub kind: ReferenceKind,
    /// What the descriptor says the content's size is.
    pub size: u64,
}

/// What validation learned about a manifest.
#[derive(Debug, Clone)]
pub struct ParsedManifest {
    pub media_type: String,
    pub kind: ManifestKind,
    /// Config, layers and child manifests, in document order.
    pub references: Vec<Reference>,
    pub subject: Option<Digest>,
    /// The `artifactType` the referrers API reports for this manifest.
    pub artifact_type: Option<String>,
    /// `annotations` as JSON text.
    pub annotations: Option<String>,
    /// Platforms of child manifests, for clients that cannot take an index.
    pub platforms: Vec<(Digest, String, String)>,
}

impl ParsedManifest {
    /// Blobs that must be in the repository for this manifest to be pullable.
    pub fn required_blobs(&self) -> Vec<Digest> {
        self.pulled_blobs().map(|r| r.digest.clone()).collect()
    }

    /// Config and distributable layers: the blobs a pull fetches.
    pub fn pulled_blobs(&self) -> impl Iterator<Item = &Reference> {
        self.references.iter().filter(|r| match r.kind {
            ReferenceKind::Config => true,
            ReferenceKind::Layer => !is_non_distributable(&r.media_type),
            ReferenceKind::Manifest | ReferenceKind::Subject => false,
        })
    }

    /// Child manifests that must be in the repository.
    pub fn required_manifests(&self) -> Vec<Digest> {
        self.references
            .iter()
            .filter(|r| r.kind == ReferenceKind::Manifest)
            .map(|r| r.digest.clone())
            .collect()
    }
}

fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError::ManifestInvalid(msg.into())
}

/// `type/subtype` of a `Content-Type` header, without parameters.
pub fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Validates `bytes` pushed with `content_type` and extracts its references.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<ParsedManifest, RegistryError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| invalid("manifest is not a JSON object"))?;

    let schema_version = object.get("schemaVersion").and_then(|v| v.as_u64());
    let body_media_type = object.get("mediaType").and_then(|v| v.as_str());
    let header_media_type = content_type.map(essence).filter(|t| {
        // Generic types carry no information; judge by the body instead.
        !t.is_empty() && *t != "application/json" && *t != "application/octet-stream"
    });
    for t in [header_media_type, body_media_type].into_iter().flatten() {
        if t == DOCKER_SCHEMA1 || t == DOCKER_SCHEMA1_SIGNED {
            return Err(schema1_refused());
        }
    }
    match schema_version {
        Some(2) => {}
        Some(1) => return Err(schema1_refused()),
        Some(v) => return Err(invalid(format!("schemaVersion {v} is not supported"))),
        None => return Err(invalid("schemaVersion is missing")),
    }
    if let (Some(header), Some(body)) = (header_media_type, body_media_type)
        && header != body
    {
        return Err(invalid(format!(
            "Content-Type {header} does not match the manifest's mediaType {body}"
        )));
    }
    let media_type = match header_media_type.or(body_media_type) {
        Some(t) => t.to_owned(),
        // Neither says: an OCI document may omit mediaType; tell by shape.
        None if object.contains_key("manifests") => OCI_INDEX.to_owned(),
        None if object.contains_key("config") => OCI_MANIFEST.to_owned(),
        None => return Err(invalid("cannot tell the manifest type: no mediaType")),
    };
    let kind = kind_of(&media_type)
        .ok_or_else(|| invalid(format!("unsupported manifest media type {media_type}")))?;

    match kind {
        ManifestKind::Image => parse_image(bytes, media_type),
        ManifestKind::Index => parse_index(bytes, media_type),
    }
}

fn schema1_refused() -> RegistryError {
    invalid(
        "Docker schema 1 manifests are not supported; push schema 2 or OCI \
         (for example with `skopeo copy --format v2s2` or `--format oci`)",
    )
}

fn parse_image(bytes: &[u8], media_type: String) -> Result<ParsedManifest, RegistryError> {
    let manifest: ImageManifest = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("invalid image manifest: {e}")))?;
    let mut references = Vec::with_capacity(manifest.layers().len() + 1);
    references.push(reference(manifest.config(), ReferenceKind::Config)?);
    for layer in manifest.layers() {
        references.push(reference(layer, ReferenceKind::Layer)?);
    }
    let artifact_type = manifest
        .artifact_type()
        .as_ref()
        .map(|t| t.to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| Some(manifest.config().media_type().to_string()));
    Ok(ParsedManifest {
        media_type,
        kind: ManifestKind::Image,
        references,
        subject: subject(manifest.subject().as_ref())?,
        artifact_type,
        annotations: annotations_json(manifest.annotations().as_ref())?,
        platforms: Vec::new(),
    })
}

fn parse_index(bytes: &[u8], media_type: String) -> Result<ParsedManifest, RegistryError> {
    let index: ImageIndex =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("invalid image index: {e}")))?;
    let mut references = Vec::with_capacity(index.manifests().len());
    let mut platforms = Vec::new();
    for child in index.manifests() {
        let r = reference(child, ReferenceKind::Manifest)?;
        if let Some(p) = child.platform() {
            platforms.push((
                r.digest.clone(),
                p.os().to_string(),
                p.architecture().to_string(),
            ));
        }
        references.push(r);
    }
    Ok(ParsedManifest {
        media_type,
        kind: ManifestKind::Index,
        references,
        subject: subject(index.subject().as_ref())?,
        artifact_type: index
            .artifact_type()
            .as_ref()
            .map(|t| t.to_string())
            .filter(|t| !t.is_empty()),
        annotations: annotations_json(index.annotations().as_ref())?,
        platforms,
    })
}

fn descriptor_digest(d: &Descriptor) -> Result<Digest, RegistryError> {
    d.digest()
        .as_ref()
        .parse::<Digest>()
        .map_err(|e| invalid(format!("descriptor digest: {e}")))
}

fn reference(d: &Descriptor, kind: ReferenceKind) -> Result<Reference, RegistryError> {
    let digest = descriptor_digest(d)?;
    if let Some(data) = d.data() {
        check_embedded_data(data, d.size(), &digest)?;
    }
    Ok(Reference {
        digest,
        media_type: d.media_type().to_string(),
        kind,
        size: d.size(),
    })
}

/// A descriptor's `data` must be the base64 of exactly the content it describes.
fn check_embedded_data(data: &str, size: u64, digest: &Digest) -> Result<(), RegistryError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| invalid(format!("descriptor {digest}: data is not base64: {e}")))?;
    if bytes.len() as u64 != size {
        return Err(invalid(format!(
            "descriptor {digest}: data holds {} bytes but size says {size}",
            bytes.len()
        )));
    }
    if digest.algorithm().digest_of(&bytes) != *digest {
        return Err(invalid(format!(
            "descriptor {digest}: data does not match the digest"
        )));
    }
    Ok(())
}

fn subject(d: Option<&Descriptor>) -> Result<Option<Digest>, RegistryError> {
    d.map(descriptor_digest).transpose()
}

fn annotations_json(
    annotations: Option<&std::collections::HashMap<String, String>>,
) -> Result<Option<String>, RegistryError> {
    match annotations {
        Some(map) if !map.is_empty() => {
            // Sorted, so the same manifest always yields the same text.
            let sorted: std::collections::BTreeMap<_, _> = map.iter().collect();
            serde_json::to_string(&sorted)
                .map(Some)
                .map_err(|e| RegistryError::Internal(e.to_string()))
        }
        _ => Ok(None),
    }
}

/// The digest a manifest is known by when pushed by tag.
pub fn default_digest(bytes: &[u8]) -> Digest {
    DigestAlgorithm::Sha256.digest_of(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(seed: &str) -> String {
        DigestAlgorithm::Sha256
            .digest_of(seed.as_bytes())
            .to_string()
    }

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":3}},{{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"{}","size":4}}]{extra}}}"#,
            d("config"),
            d("layer"),
            d("foreign")
        )
    }

    #[test]
    fn image_references_and_requirements() {
        let m = parse(image("").as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.references.len(), 3);
        // The non-distributable layer is referenced but not required.
        assert_eq!(
            m.required_blobs()
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>(),
            vec![d("config"), d("layer")]
        );
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        assert!(m.subject.is_none());
    }

    #[test]
    fn subject_artifact_type_and_annotations() {
        let extra = format!(
            r#","artifactType":"application/x-sbom","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":7}},"annotations":{{"b":"2","a":"1"}}"#,
            d("subject")
        );
        let m = parse(image(&extra).as_bytes(), None).unwrap();
        assert_eq!(m.subject.unwrap().to_string(), d("subject"));
        assert_eq!(m.artifact_type.as_deref(), Some("application/x-sbom"));
        assert_eq!(m.annotations.as_deref(), Some(r#"{"a":"1","b":"2"}"#));
    }

    #[test]
    fn index_children() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":10,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            d("child")
        );
        let m = parse(body.as_bytes(), Some(OCI_INDEX)).unwrap();
        assert_eq!(m.kind, ManifestKind::Index);
        assert_eq!(
            m.required_manifests()
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>(),
            vec![d("child")]
        );
        assert!(m.required_blobs().is_empty());
        assert_eq!(m.platforms[0].1, "linux");
        assert!(m.artifact_type.is_none());
    }

    #[test]
    fn refuses_bad_manifests() {
        let cases: Vec<(String, Option<&str>)> = vec![
            ("not json".into(), None),
            ("[]".into(), None),
            (
                r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#.into(),
                None,
            ),
            ("{}".into(), Some(DOCKER_SCHEMA1_SIGNED)),
            (r#"{"schemaVersion":3}"#.into(), None),
            (r#"{"schemaVersion":2}"#.into(), None),
            (image(""), Some(OCI_INDEX)),
            (image(""), Some("application/vnd.example.unknown")),
            (
                image("").replace(&d("layer"), "sha256:nothex"),
                Some(OCI_MANIFEST),
            ),
            (
                image("").replace(&d("layer"), "sha384:aaaa"),
                Some(OCI_MANIFEST),
            ),
            (
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#),
                None,
            ),
        ];
        for (body, content_type) in cases {
            let result = parse(body.as_bytes(), content_type);
            assert!(
                matches!(result, Err(RegistryError::ManifestInvalid(_))),
                "{body} / {content_type:?} gave {result:?}"
            );
        }
    }

    #[test]
    fn schema1_error_says_what_to_do() {
        let err = parse(br#"{"schemaVersion":1}"#, None).unwrap_err();
        assert!(err.to_string().contains("schema 1"));
    }

    #[test]
    fn content_type_parameters_and_generic_types_are_ignored() {
        let body = image("");
        assert!(
            parse(
                body.as_bytes(),
                Some(&format!("{OCI_MANIFEST}; charset=utf-8"))
            )
            .is_ok()
        );
        assert!(parse(body.as_bytes(), Some("application/json")).is_ok());
    }

    #[test]
    fn embedded_data_is_checked() {
        let content = b"{}";
        let digest = DigestAlgorithm::Sha256.digest_of(content);
        let good = base64::engine::general_purpose::STANDARD.encode(content);
        let body = |data: &str, size: usize| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{digest}","size":{size},"data":"{data}"}},"layers":[]}}"#
            )
        };
        assert!(parse(body(&good, 2).as_bytes(), None).is_ok());
        assert!(parse(body(&good, 3).as_bytes(), None).is_err());
        assert!(parse(body("e30K", 3).as_bytes(), None).is_err());
        assert!(parse(body("%%%", 2).as_bytes(), None).is_err());
    }
}
