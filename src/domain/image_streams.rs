//! Image streams: every repository is one (OpenShift's ImageStream), whose
//! tags keep a history of revisions, newest first. Pushes record revisions
//! as they store manifests ([`super::registry::Registry::store_manifest`]);
//! this service does the rest, independent of HTTP and of who asks (the
//! API checks roles first): making and deleting streams, tagging an image
//! or another tag's image, rolling a tag back to an earlier revision,
//! recording spec tags, and describing images.
//!
//! The seam for imports from other registries: [`ImageStreams::record_spec_tag`]
//! records what a tag is to track (`from: DockerImage`, import policy,
//! reference policy) without fetching anything; the importer records what
//! it fetched with [`ImageStreams::record_import`] and failures with
//! [`ImageStreams::set_condition`].

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;

use super::manifest::{self, ManifestKind};
use super::registry::Registry;
use crate::metadata::image_streams::{
    DueImport, ImageStreamStore, RevisionCause, RevisionOrigin, SpecTag, StoredStream,
    TagCondition, TagMove, TagSource, TagTarget,
};
use crate::metadata::tag_policies::ImmutableTag;
use crate::metadata::{MetadataError, Timestamp, now};
use crate::oci::digest::Digest;
use crate::oci::names::{Reference, RepositoryName, Tag};
use crate::storage::StorageError;

/// Spec tag sources (`spec.tags[].from.kind`).
pub const DOCKER_IMAGE: &str = "DockerImage";
pub const IMAGE_STREAM_TAG: &str = "ImageStreamTag";
pub const IMAGE_STREAM_IMAGE: &str = "ImageStreamImage";

/// Largest image config read to describe an image.
const MAX_CONFIG_SIZE: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The stream, tag, image or revision does not exist.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// A value that cannot be taken (a bad name, reference or policy).
    #[error("{0}")]
    Invalid(String),
    /// An immutable-tags policy refuses the move or delete.
    #[error("{0}")]
    Immutable(Box<ImmutableTag>),
    #[error(transparent)]
    Metadata(MetadataError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Recording an imported manifest failed.
    #[error(transparent)]
    Registry(crate::error::RegistryError),
}

impl From<MetadataError> for StreamError {
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::TagImmutable(refusal) => StreamError::Immutable(refusal),
            other => StreamError::Metadata(other),
        }
    }
}

impl From<crate::error::RegistryError> for StreamError {
    fn from(e: crate::error::RegistryError) -> Self {
        match e {
            crate::error::RegistryError::TagImmutable(refusal) => StreamError::Immutable(refusal),
            other => StreamError::Registry(other),
        }
    }
}

pub type StreamResult<T> = Result<T, StreamError>;

/// Longest stream name (the repository's path below its project).
pub const MAX_STREAM_NAME: usize = 253;

/// `ns/NAME` of a stream `NAME` in `namespace`, checked.
pub fn repository_of(namespace: &str, name: &str) -> StreamResult<RepositoryName> {
    if name.is_empty() || namespace.is_empty() {
        return Err(StreamError::Invalid(
            "an image stream needs a namespace and a name".into(),
        ));
    }
    if name.len() > MAX_STREAM_NAME {
        return Err(StreamError::Invalid(format!(
            "image stream names are at most {MAX_STREAM_NAME} characters"
        )));
    }
    format!("{namespace}/{name}")
        .parse()
        .map_err(|e| StreamError::Invalid(format!("image stream name {name:?} is invalid: {e}")))
}

/// `NAME:TAG` split and checked.
pub fn split_stream_tag(text: &str) -> StreamResult<(&str, Tag)> {
    let Some((name, tag)) = text.rsplit_once(':') else {
        return Err(StreamError::Invalid(format!(
            "{text:?} is not an image stream tag: write NAME:TAG"
        )));
    };
    let tag = tag
        .parse()
        .map_err(|e| StreamError::Invalid(format!("{text:?}: {e}")))?;
    Ok((name, tag))
}

/// `NAME@DIGEST` split and checked.
pub fn split_stream_image(text: &str) -> StreamResult<(&str, Digest)> {
    let Some((name, digest)) = text.split_once('@') else {
        return Err(StreamError::Invalid(format!(
            "{text:?} is not an image stream image: write NAME@sha256:…"
        )));
    };
    let digest = digest
        .parse()
        .map_err(|e| StreamError::Invalid(format!("{text:?}: {e}")))?;
    Ok((name, digest))
}

/// `Source` or `Local`, whatever the case it is written in.
pub fn reference_policy(text: &str) -> StreamResult<&'static str> {
    match text.to_ascii_lowercase().as_str() {
        "source" => Ok("Source"),
        "local" => Ok("Local"),
        _ => Err(StreamError::Invalid(format!(
            "reference policy {text:?} is invalid: Source or Local"
        ))),
    }
}

/// `Legacy` or `PreserveOriginal`, whatever the case it is written in.
pub fn import_mode(text: &str) -> StreamResult<&'static str> {
    match text.to_ascii_lowercase().as_str() {
        "legacy" => Ok("Legacy"),
        "preserveoriginal" => Ok("PreserveOriginal"),
        _ => Err(StreamError::Invalid(format!(
            "import mode {text:?} is invalid: Legacy or PreserveOriginal"
        ))),
    }
}

/// How a tag is to be set (the `tag` of an ImageStreamTag request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRequest {
    pub from: TagSource,
    /// Follow the source tag (same stream only) rather than take its
    /// current image.
    pub alias: bool,
    pub reference: bool,
    pub reference_policy: String,
    pub import_scheduled: bool,
    pub import_insecure: bool,
    pub import_mode: String,
    /// `berth tag --expires-after`: how long the tag lives from now,
    /// before the image's label and the configured default.
    pub expires_after: Option<std::time::Duration>,
}

/// What tagging did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tagged {
    /// A revision with this generation (the tag moved).
    Moved { generation: i64 },
    /// The tag already pointed at the image.
    Unchanged,
    /// Only the spec tag was recorded (a `DockerImage` source waits for the
    /// importer).
    SpecOnly { generation: i64 },
}

/// A layer, config or child manifest as an image lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// A child manifest of an index, with its platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifestEntry {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
}

/// What an image (a manifest by digest) says about itself: OpenShift's
/// `Image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDescription {
    pub digest: Digest,
    pub media_type: String,
    pub manifest_size: u64,
    pub config: Option<ImageLayer>,
    pub layers: Vec<ImageLayer>,
    /// For an index: its manifests.
    pub manifests: Vec<ImageManifestEntry>,
    /// From the config.
    pub created: Option<String>,
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl ImageDescription {
    /// The config's and layers' bytes.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum::<u64>() + self.config.as_ref().map_or(0, |c| c.size)
    }
}

pub struct ImageStreams {
    registry: Arc<Registry>,
    store: Arc<dyn ImageStreamStore>,
}

impl ImageStreams {
    pub fn new(registry: Arc<Registry>, store: Arc<dyn ImageStreamStore>) -> Self {
        ImageStreams { registry, store }
    }

    pub async fn create(
        &self,
        repo: &RepositoryName,
        lookup_local: bool,
    ) -> StreamResult<StoredStream> {
        if !self.store.create_stream(repo, lookup_local).await? {
            return Err(StreamError::AlreadyExists(format!(
                "imagestreams \"{}\" already exists",
                stream_display(repo)
            )));
        }
        self.get(repo).await
    }

    pub async fn get(&self, repo: &RepositoryName) -> StreamResult<StoredStream> {
        self.store
            .stream(repo)
            .await?
            .ok_or_else(|| stream_not_found(repo))
    }

    /// The streams of `namespace`, or of every namespace.
    pub async fn list(&self, namespace: Option<&str>) -> StreamResult<Vec<StoredStream>> {
        Ok(self.store.streams(namespace).await?)
    }

    pub async fn delete(&self, repo: &RepositoryName) -> StreamResult<()> {
        let deleted = self.store.delete_stream(repo).await?;
        self.registry.forget_repository(repo);
        if deleted {
            Ok(())
        } else {
            Err(stream_not_found(repo))
        }
    }

    pub async fn set_lookup_policy(
        &self,
        repo: &RepositoryName,
        local: bool,
    ) -> StreamResult<StoredStream> {
        if !self.store.set_lookup_policy(repo, local).await? {
            return Err(stream_not_found(repo));
        }
        self.get(repo).await
    }

    /// Sets `tag` of `repo` as `request` says: to an image of a stream
    /// (`ImageStreamImage`), to another tag's current image
    /// (`ImageStreamTag`; with `alias`, following that tag from now on), or
    /// to an external image to be imported (`DockerImage`: recorded only).
    /// The source's namespace is `request.from.namespace`, defaulting to
    /// `repo`'s. Nothing changes when the source cannot be found.
    pub async fn tag(
        &self,
        repo: &RepositoryName,
        tag: &Tag,
        request: &TagRequest,
        origin: &RevisionOrigin,
    ) -> StreamResult<Tagged> {
        let namespace = request
            .from
            .namespace
            .clone()
            .unwrap_or_else(|| repo.namespace().to_owned());
        let mut spec = SpecTag {
            name: tag.as_str().to_owned(),
            from: Some(TagSource {
                kind: request.from.kind.clone(),
                namespace: Some(namespace.clone()),
                name: request.from.name.clone(),
            }),
            reference: request.reference,
            reference_policy: reference_policy(&request.reference_policy)?.to_owned(),
            import_scheduled: request.import_scheduled,
            import_insecure: request.import_insecure,
            import_mode: import_mode(&request.import_mode)?.to_owned(),
            generation: 0,
        };
        let (source_repo, digest, description) = match request.from.kind.as_str() {
            DOCKER_IMAGE => {
                if request.expires_after.is_some() {
                    return Err(StreamError::Invalid(
                        "an expiry applies to images berth holds; an imported tag takes the \
                         image's label or the configured default"
                            .into(),
                    ));
                }
                if request.alias {
                    return Err(StreamError::Invalid(
                        "--alias applies to image stream tags only".into(),
                    ));
                }
                check_external_reference(&request.from.name)?;
                if let Some(from) = spec.from.as_mut() {
                    // An external reference names its registry, not a namespace.
                    from.namespace = None;
                }
                let generation = self.record_spec_tag(repo, &spec).await?;
                return Ok(Tagged::SpecOnly { generation });
            }
            IMAGE_STREAM_IMAGE => {
                if request.alias {
                    return Err(StreamError::Invalid(
                        "--alias applies to image stream tags, not to images".into(),
                    ));
                }
                let (name, digest) = split_stream_image(&request.from.name)?;
                let source = repository_of(&namespace, name)?;
                let description = format!("{source}@{digest}");
                (source, digest, description)
            }
            IMAGE_STREAM_TAG => {
                let (name, source_tag) = split_stream_tag(&request.from.name)?;
                let source = repository_of(&namespace, name)?;
                if request.alias && source != *repo {
                    return Err(StreamError::Invalid(
                        "--alias applies within one image stream: the source tag must be in \
                         the stream being tagged"
                            .into(),
                    ));
                }
                if request.alias && source_tag == *tag {
                    return Err(StreamError::Invalid("a tag cannot follow itself".into()));
                }
                let meta = self
                    .registry
                    .metadata()
                    .manifest_meta(&source, &Reference::Tag(source_tag.clone()))
                    .await?
                    .ok_or_else(|| {
                        StreamError::NotFound(format!(
                            "imagestreamtags \"{}:{source_tag}\" not found",
                            stream_display(&source)
                        ))
                    })?;
                if !request.alias {
                    // As `oc tag` does: the tag gets the source's current
                    // image, and keeps it when the source moves on.
                    spec.from = Some(TagSource {
                        kind: IMAGE_STREAM_IMAGE.into(),
                        namespace: Some(namespace.clone()),
                        name: format!("{name}@{}", meta.digest),
                    });
                }
                let description = format!("{source}:{source_tag}");
                (source, meta.digest, description)
            }
            other => {
                return Err(StreamError::Invalid(format!(
                    "tag.from.kind {other:?} is invalid: DockerImage, ImageStreamTag or \
                     ImageStreamImage"
                )));
            }
        };
        let origin = RevisionOrigin {
            cause: origin.cause,
            by: origin.by.clone(),
            address: origin.address.clone(),
            source: Some(description.clone()),
        };
        let outcome = self
            .move_tag(
                repo,
                tag,
                (&source_repo, &digest),
                None,
                &origin,
                request.expires_after,
            )
            .await?;
        self.record_spec_tag(repo, &spec).await?;
        Ok(outcome)
    }

    async fn move_tag(
        &self,
        repo: &RepositoryName,
        tag: &Tag,
        (source_repo, digest): (&RepositoryName, &Digest),
        docker_image_reference: Option<String>,
        origin: &RevisionOrigin,
        expires_after: Option<std::time::Duration>,
    ) -> StreamResult<Tagged> {
        // Every write pointing a tag sets its expiry, as a push does:
        // explicit, else the image's label, else the default.
        let expires_at = self
            .registry
            .tag_expiry_of(source_repo, digest, expires_after)
            .await?;
        let target = TagTarget {
            digest: digest.clone(),
            docker_image_reference,
            from_repository: Some(source_repo.clone()),
            expires_at,
        };
        let moved = self.store.move_tag(repo, tag, &target, origin).await?;
        self.registry.forget_repository(repo);
        match moved {
            TagMove::Moved { generation, .. } => Ok(Tagged::Moved { generation }),
            TagMove::Unchanged => Ok(Tagged::Unchanged),
            TagMove::ImageUnknown => Err(StreamError::NotFound(format!(
                "imagestreamimages \"{}@{digest}\" not found",
                stream_display(source_repo)
            ))),
        }
    }

    /// Makes the image of revision `generation` of `tag` current again,
    /// as a new revision.
    pub async fn rollback(
        &self,
        repo: &RepositoryName,
        tag: &Tag,
        generation: i64,
        origin: &RevisionOrigin,
    ) -> StreamResult<Tagged> {
        let stream = self.get(repo).await?;
        let mut history = stream.history_of(tag.as_str()).peekable();
        if history.peek().is_none() {
            return Err(StreamError::NotFound(format!(
                "imagestreamtags \"{}:{tag}\" not found",
                stream_display(repo)
            )));
        }
        let Some(revision) = history.find(|r| r.generation == generation) else {
            let known: Vec<String> = stream
                .history_of(tag.as_str())
                .map(|r| r.generation.to_string())
                .collect();
            return Err(StreamError::Invalid(format!(
                "tag {tag} of {} has no revision of generation {generation} (its revisions: {})",
                stream_display(repo),
                known.join(", ")
            )));
        };
        let origin = RevisionOrigin {
            cause: RevisionCause::Rollback,
            by: origin.by.clone(),
            address: origin.address.clone(),
            source: Some(format!("generation {generation}")),
        };
        let digest = revision.digest.clone();
        let reference = revision.docker_image_reference.clone();
        self.move_tag(repo, tag, (repo, &digest), reference, &origin, None)
            .await
            .map_err(|e| match e {
                StreamError::NotFound(_) => StreamError::NotFound(format!(
                    "the image of generation {generation} ({digest}) is no longer in {}",
                    stream_display(repo)
                )),
                other => other,
            })
    }

    /// Records what a tag is to track, fetching nothing: the seam the
    /// importer builds on. Returns the stream's new generation.
    pub async fn record_spec_tag(
        &self,
        repo: &RepositoryName,
        spec: &SpecTag,
    ) -> StreamResult<i64> {
        spec.name
            .parse::<Tag>()
            .map_err(|e| StreamError::Invalid(e.to_string()))?;
        Ok(self.store.set_spec_tag(repo, spec).await?)
    }

    /// Records an image an importer stored in `repo` (with
    /// `Registry::store_manifest` and no tags) as `tag`'s newest revision,
    /// pulled from `docker_image_reference` when the reference policy is
    /// `Source`.
    pub async fn record_import(
        &self,
        repo: &RepositoryName,
        tag: &Tag,
        digest: &Digest,
        docker_image_reference: Option<String>,
        origin: &RevisionOrigin,
    ) -> StreamResult<Tagged> {
        self.move_tag(
            repo,
            tag,
            (repo, digest),
            docker_image_reference,
            origin,
            None,
        )
        .await
    }

    /// Sets a condition of `tag` (a failed import, say).
    pub async fn set_condition(
        &self,
        repo: &RepositoryName,
        condition: &TagCondition,
    ) -> StreamResult<()> {
        if !self.store.set_tag_condition(repo, condition).await? {
            return Err(stream_not_found(repo));
        }
        Ok(())
    }

    /// Removes a condition of `tag` (the failure of an import that has
    /// now succeeded). Nothing if it has none.
    pub async fn clear_condition(
        &self,
        repo: &RepositoryName,
        tag: &str,
        condition_type: &str,
    ) -> StreamResult<()> {
        self.store
            .clear_tag_condition(repo, tag, condition_type)
            .await?;
        Ok(())
    }

    /// When the importer checks `tag` next (`None`: not unless asked), and
    /// how many checks in a row have failed.
    pub async fn set_import_schedule(
        &self,
        repo: &RepositoryName,
        tag: &str,
        due_at: Option<Timestamp>,
        failures: u32,
    ) -> StreamResult<()> {
        self.store
            .set_import_schedule(repo, tag, due_at, failures)
            .await?;
        Ok(())
    }

    /// Spec tags whose import check is due by `at`, the longest due first.
    pub async fn due_imports(&self, at: Timestamp, limit: u32) -> StreamResult<Vec<DueImport>> {
        Ok(self.store.due_imports(at, limit).await?)
    }

    /// Deletes a tag with its history. The images stay in the stream.
    pub async fn delete_tag(&self, repo: &RepositoryName, tag: &str) -> StreamResult<()> {
        let deleted = self.store.delete_stream_tag(repo, tag).await?;
        self.registry.forget_repository(repo);
        if deleted {
            Ok(())
        } else {
            Err(StreamError::NotFound(format!(
                "imagestreamtags \"{}:{tag}\" not found",
                stream_display(repo)
            )))
        }
    }

    /// The stream and the image `tag` points at now.
    pub async fn stream_tag(
        &self,
        repo: &RepositoryName,
        tag: &Tag,
    ) -> StreamResult<(StoredStream, Option<ImageDescription>)> {
        let stream = self.get(repo).await?;
        // An expired tag is gone from the views, its spec included, as if
        // deleted (its history stays, for the pruner and rollbacks).
        if stream.is_gone(tag.as_str()) {
            return Err(StreamError::NotFound(format!(
                "imagestreamtags \"{}:{tag}\" not found",
                stream_display(repo)
            )));
        }
        let newest = stream.current_of(tag.as_str()).cloned();
        let image = match &newest {
            Some(revision) => Some(self.image(repo, &revision.digest).await?),
            None if stream.spec_tag(tag.as_str()).is_some() => None,
            None => {
                return Err(StreamError::NotFound(format!(
                    "imagestreamtags \"{}:{tag}\" not found",
                    stream_display(repo)
                )));
            }
        };
        Ok((stream, image))
    }

    /// An image of the stream, described from its manifest and config.
    pub async fn image(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> StreamResult<ImageDescription> {
        let not_found = || {
            StreamError::NotFound(format!(
                "imagestreamimages \"{}@{digest}\" not found",
                stream_display(repo)
            ))
        };
        let stored = self
            .registry
            .metadata()
            .manifest(repo, &Reference::Digest(digest.clone()))
            .await?
            .ok_or_else(not_found)?;
        let mut image = describe_manifest(digest, &stored.meta.media_type, &stored.content);
        image.manifest_size = stored.meta.size;
        if let Some(config) = image.config.clone()
            && config.size <= MAX_CONFIG_SIZE
            && let Ok(config_digest) = config.digest.parse::<Digest>()
            && self
                .registry
                .metadata()
                .repository_blob(repo, &config_digest)
                .await?
                .is_some()
        {
            match self.read_small_blob(&config_digest, config.size).await {
                Ok(bytes) => describe_config(&mut image, &bytes),
                Err(e) => {
                    tracing::warn!(digest = %config_digest, error = %e, "reading an image config to describe it")
                }
            }
        }
        Ok(image)
    }

    /// A small blob's bytes, whole; an error says why not (it is logged,
    /// and the image described without what the blob would have said).
    async fn read_small_blob(&self, digest: &Digest, size: u64) -> Result<Vec<u8>, String> {
        let mut stream = self
            .registry
            .blob_store()
            .read_blob(digest, 0..size, None)
            .await
            .map_err(|e| e.to_string())?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        while let Some(piece) = stream.next().await {
            bytes.extend_from_slice(&piece.map_err(|e| e.to_string())?);
        }
        Ok(bytes)
    }
}

/// `ns/NAME` as messages name a stream.
fn stream_display(repo: &RepositoryName) -> String {
    repo.as_str().to_owned()
}

fn stream_not_found(repo: &RepositoryName) -> StreamError {
    StreamError::NotFound(format!(
        "imagestreams \"{}\" not found",
        stream_display(repo)
    ))
}

/// An external image reference: `HOST/REPO[:TAG|@DIGEST]`, checked enough
/// to refuse what no importer could use.
fn check_external_reference(text: &str) -> StreamResult<()> {
    let invalid = |why: &str| {
        StreamError::Invalid(format!(
            "{text:?} is not an image reference ({why}): write REGISTRY/REPOSITORY[:TAG|@DIGEST]"
        ))
    };
    if text.is_empty()
        || text.len() > 1024
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid("empty, too long or with spaces"));
    }
    let (path, digest) = match text.split_once('@') {
        Some((path, digest)) => (path, Some(digest)),
        None => (text, None),
    };
    if let Some(digest) = digest {
        digest
            .parse::<Digest>()
            .map_err(|_| invalid("bad digest"))?;
    }
    let (host_and_repo, tag) = match path.rsplit_once(':') {
        Some((before, after)) if !after.contains('/') => (before, Some(after)),
        _ => (path, None),
    };
    if let Some(tag) = tag {
        tag.parse::<Tag>().map_err(|_| invalid("bad tag"))?;
    }
    let repository = match host_and_repo.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => rest,
        _ => host_and_repo,
    };
    repository
        .parse::<RepositoryName>()
        .map_err(|_| invalid("bad repository name"))?;
    Ok(())
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn descriptor(value: &Value) -> ImageLayer {
    ImageLayer {
        digest: text(value, "digest").unwrap_or_default(),
        media_type: text(value, "mediaType").unwrap_or_default(),
        size: value.get("size").and_then(Value::as_u64).unwrap_or(0),
    }
}

/// What the manifest's JSON says (it was validated when pushed).
/// An image as its manifest alone describes it (no config read).
pub fn describe_manifest(digest: &Digest, media_type: &str, content: &[u8]) -> ImageDescription {
    let value: Value = serde_json::from_slice(content).unwrap_or(Value::Null);
    let mut image = ImageDescription {
        digest: digest.clone(),
        media_type: media_type.to_owned(),
        manifest_size: content.len() as u64,
        config: None,
        layers: Vec::new(),
        manifests: Vec::new(),
        created: None,
        os: None,
        architecture: None,
        variant: None,
        labels: BTreeMap::new(),
    };
    let kind = match media_type {
        manifest::OCI_INDEX | manifest::DOCKER_MANIFEST_LIST => ManifestKind::Index,
        _ => ManifestKind::Image,
    };
    match kind {
        ManifestKind::Image => {
            image.config = value.get("config").map(descriptor);
            image.layers = value
                .get("layers")
                .and_then(Value::as_array)
                .map(|layers| layers.iter().map(descriptor).collect())
                .unwrap_or_default();
        }
        ManifestKind::Index => {
            image.manifests = value
                .get("manifests")
                .and_then(Value::as_array)
                .map(|children| {
                    children
                        .iter()
                        .map(|child| {
                            let d = descriptor(child);
                            let platform = child.get("platform").unwrap_or(&Value::Null);
                            ImageManifestEntry {
                                digest: d.digest,
                                media_type: d.media_type,
                                size: d.size,
                                os: text(platform, "os"),
                                architecture: text(platform, "architecture"),
                                variant: text(platform, "variant"),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
    }
    image
}

/// What the image config says: when it was made, for which platform, its
/// labels.
fn describe_config(image: &mut ImageDescription, bytes: &[u8]) {
    let Ok(config) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    image.created = text(&config, "created");
    image.os = text(&config, "os");
    image.architecture = text(&config, "architecture");
    image.variant = text(&config, "variant");
    if let Some(labels) = config
        .get("config")
        .and_then(|c| c.get("Labels"))
        .and_then(Value::as_object)
    {
        image.labels = labels
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .collect();
    }
}

/// A condition of `tag` as of now.
pub fn condition(
    tag: &str,
    condition_type: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: i64,
) -> TagCondition {
    TagCondition {
        tag: tag.to_owned(),
        condition_type: condition_type.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_transition_at: now(),
        generation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_references() {
        assert_eq!(repository_of("ns", "app").unwrap().as_str(), "ns/app");
        assert_eq!(
            repository_of("ns", "team/app").unwrap().as_str(),
            "ns/team/app"
        );
        assert!(repository_of("ns", "App").is_err());
        assert!(repository_of("ns", "").is_err());
        let (name, tag) = split_stream_tag("app:1.0").unwrap();
        assert_eq!((name, tag.as_str()), ("app", "1.0"));
        assert!(split_stream_tag("app").is_err());
        assert!(split_stream_tag("app:-x").is_err());
        assert!(split_stream_image("app@sha256:abc").is_err());
        assert!(split_stream_image("app:1").is_err());
        assert_eq!(reference_policy("local").unwrap(), "Local");
        assert!(reference_policy("remote").is_err());
        assert_eq!(import_mode("preserveoriginal").unwrap(), "PreserveOriginal");
        assert!(import_mode("all").is_err());
        for good in [
            "quay.io/org/img",
            "quay.io/org/img:1.0",
            "registry.example.com:5000/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "docker.io/library/alpine:3.20",
            "localhost/x",
        ] {
            assert!(check_external_reference(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "quay.io/Org/img",
            "quay.io/org/img:",
            "a b",
            "quay.io/org/img@sha256:zz",
        ] {
            assert!(check_external_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn images_describe_their_parts() {
        let digest: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let image_manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:c", "size": 7},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:l", "size": 100}]
        });
        let mut image = describe_manifest(
            &digest,
            manifest::OCI_MANIFEST,
            image_manifest.to_string().as_bytes(),
        );
        assert_eq!(image.layers.len(), 1);
        assert_eq!(image.size(), 107);
        describe_config(
            &mut image,
            br#"{"created":"2026-01-02T03:04:05Z","os":"linux","architecture":"arm64","config":{"Labels":{"a":"b"}}}"#,
        );
        assert_eq!(image.architecture.as_deref(), Some("arm64"));
        assert_eq!(image.labels["a"], "b");
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": manifest::OCI_MANIFEST, "digest": "sha256:m", "size": 5,
                           "platform": {"os": "linux", "architecture": "amd64"}}]
        });
        let image = describe_manifest(&digest, manifest::OCI_INDEX, index.to_string().as_bytes());
        assert_eq!(image.manifests[0].architecture.as_deref(), Some("amd64"));
        assert!(image.config.is_none());
    }
}
