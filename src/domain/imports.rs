//! Imports from other registries: `berth import-image` and the scheduled
//! re-import of tags (OpenShift's ImageStreamImport).
//!
//! An import records an upstream manifest, its exact bytes and digest, as
//! a revision of a stream's tag; it copies no blob (pull-through fetches
//! them when pulled). Each imported tag gets a spec tag saying where it
//! comes from and how it is imported, so that it can be imported again,
//! by hand or on schedule ([`crate::jobs::ScheduledImports`]). A failed
//! import leaves the tag's history as it was and says why in the tag's
//! `ImportSuccess` condition; a successful one clears that condition.
//!
//! The upstream is reached with the namespace's pull secret for it (if it
//! has one), over HTTPS verified against the system's roots and the
//! configured CAs; plain HTTP or an unverified certificate only for a tag
//! imported as insecure.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::image_streams::{
    DOCKER_IMAGE, ImageDescription, ImageStreams, StreamError, Tagged, condition,
    describe_manifest, import_mode, reference_policy,
};
use super::quotas;
use super::registry::Registry;
use super::secrets::PullSecrets;
use crate::error::{QuotaRefusal, RegistryError};
use crate::metadata::access::AccessStore;
use crate::metadata::image_streams::{
    DueImport, RevisionCause, RevisionOrigin, SpecTag, TagSource,
};
use crate::metadata::{Timestamp, now};
use crate::oci::digest::Digest;
use crate::oci::names::{RepositoryName, Tag};
use crate::upstream::{
    UpstreamAccess, UpstreamClient, UpstreamError, UpstreamManifest, UpstreamReference,
};

/// The condition an import sets on a tag it could not import.
pub const IMPORT_CONDITION: &str = "ImportSuccess";
/// The platform a `Legacy` import takes from an index.
pub const LEGACY_PLATFORM: (&str, &str) = super::negotiation::DEFAULT_PLATFORM;
/// Tags imported at once.
const IMPORT_CONCURRENCY: usize = 4;

/// The knobs of imports (`imagePolicy` in the configuration).
#[derive(Debug, Clone)]
pub struct ImportSettings {
    /// Tags `--all` imports at most (the newest first).
    pub max_bulk_tags: usize,
    /// How often a scheduled tag is checked again, at least.
    pub scheduled_interval: Duration,
}

impl Default for ImportSettings {
    fn default() -> Self {
        ImportSettings {
            max_bulk_tags: 50,
            scheduled_interval: Duration::from_secs(900),
        }
    }
}

/// How a tag is imported (its spec tag's `importPolicy` and
/// `referencePolicy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPolicy {
    pub scheduled: bool,
    pub insecure: bool,
    /// `Source` or `Local`.
    pub reference_policy: String,
    /// `PreserveOriginal` or `Legacy`.
    pub import_mode: String,
    /// The namespace's pull secret to use (a proxy namespace's); `None`:
    /// the one matching the upstream, if any. Not recorded.
    pub secret: Option<String>,
}

impl Default for ImportPolicy {
    fn default() -> Self {
        ImportPolicy {
            scheduled: false,
            insecure: false,
            reference_policy: "Source".into(),
            import_mode: "PreserveOriginal".into(),
            secret: None,
        }
    }
}

impl ImportPolicy {
    fn of_spec(spec: &SpecTag) -> ImportPolicy {
        ImportPolicy {
            scheduled: spec.import_scheduled,
            insecure: spec.import_insecure,
            reference_policy: spec.reference_policy.clone(),
            import_mode: spec.import_mode.clone(),
            secret: None,
        }
    }
}

/// One upstream image to import as one tag.
#[derive(Debug, Clone)]
pub struct ImageImport {
    pub tag: Tag,
    /// `REGISTRY/REPO[:TAG|@DIGEST]`.
    pub from: String,
    pub policy: ImportPolicy,
}

/// Every tag of an upstream repository (`--all`), each as a tag of its name.
#[derive(Debug, Clone)]
pub struct RepositoryImport {
    /// `REGISTRY/REPO`.
    pub from: String,
    pub policy: ImportPolicy,
}

/// What to import into one stream.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub repo: RepositoryName,
    pub images: Vec<ImageImport>,
    pub repository: Option<RepositoryImport>,
    /// False: only look (fetch and check), record nothing.
    pub record: bool,
}

/// Why a tag was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportFailure {
    /// Short, for a condition's `reason`: `NotFound`, `Unauthorized`, …
    pub reason: String,
    pub message: String,
    /// How long the upstream asked to be left alone.
    pub retry_after: Option<Duration>,
    /// Whether trying again later may work without anyone changing
    /// anything.
    pub transient: bool,
}

impl ImportFailure {
    fn from_upstream(e: &UpstreamError) -> ImportFailure {
        ImportFailure {
            reason: e.reason().to_owned(),
            message: e.to_string(),
            retry_after: e.retry_after(),
            transient: e.is_transient(),
        }
    }

    fn new(reason: &str, message: impl Into<String>) -> ImportFailure {
        ImportFailure {
            reason: reason.to_owned(),
            message: message.into(),
            retry_after: None,
            transient: false,
        }
    }
}

/// An upstream image as imported (or, looking only, as it would be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    pub digest: Digest,
    pub media_type: String,
    /// `REGISTRY/REPO@DIGEST` upstream.
    pub docker_image_reference: String,
    /// Child manifests recorded with an index.
    pub child_manifests: usize,
    /// What its manifest says (layers, or an index's platforms).
    pub description: ImageDescription,
    /// What the tag did; `None` when only looking.
    pub tagged: Option<Tagged>,
}

/// The outcome of one tag.
#[derive(Debug, Clone)]
pub struct TagImport {
    pub tag: Tag,
    pub from: String,
    pub result: Result<ImportedImage, ImportFailure>,
}

/// What listing an upstream repository's tags for `--all` found.
#[derive(Debug, Clone)]
pub struct RepositoryListing {
    pub from: String,
    /// Tags the upstream has.
    pub upstream_tags: usize,
    /// Those not imported because of the cap, newest first.
    pub left_out: Vec<String>,
    pub limit: usize,
    /// The tags could not be listed.
    pub failure: Option<ImportFailure>,
    /// The tags imported from it.
    pub images: Vec<TagImport>,
}

#[derive(Debug, Clone)]
pub struct ImportOutcome {
    pub images: Vec<TagImport>,
    pub repository: Option<RepositoryListing>,
}

/// Imports from upstream registries: built from the services it uses and
/// its settings, and keeping no state between imports.
pub struct Importer {
    pub registry: Arc<Registry>,
    pub streams: Arc<ImageStreams>,
    pub secrets: Arc<PullSecrets>,
    /// Where the namespaces' quotas are read, once per tag recorded.
    pub quotas: Arc<dyn AccessStore>,
    pub upstream: UpstreamClient,
    pub settings: ImportSettings,
}

impl Importer {
    /// Imports what `request` asks into its stream (making the stream if
    /// it records and the stream does not exist). Tags are imported a few
    /// at a time; each succeeds or fails on its own.
    pub async fn import(
        &self,
        request: &ImportRequest,
        origin: &RevisionOrigin,
    ) -> Result<ImportOutcome, StreamError> {
        for image in &request.images {
            check_policy(&image.policy)?;
            check_reference(&image.from)?;
        }
        let mut images = request.images.clone();
        let mut listing = None;
        if let Some(repository) = &request.repository {
            check_policy(&repository.policy)?;
            check_reference(&repository.from)?;
            let (found, listed) = self.list_repository(&request.repo, repository).await?;
            images.extend(found);
            listing = Some(listed);
        }
        let mut results = futures::stream::iter(images)
            .map(|image| async move {
                let result = self
                    .import_image(&request.repo, &image, request.record, origin)
                    .await?;
                Ok::<_, StreamError>(TagImport {
                    tag: image.tag,
                    from: image.from,
                    result,
                })
            })
            .buffered(IMPORT_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(listing) = listing.as_mut() {
            listing.images = results.split_off(request.images.len());
        }
        Ok(ImportOutcome {
            images: results,
            repository: listing,
        })
    }

    /// Imports one spec tag again from where it says (the scheduled check).
    pub async fn reimport(
        &self,
        repo: &RepositoryName,
        spec: &SpecTag,
        failures: u32,
    ) -> Result<TagImport, StreamError> {
        let tag: Tag = spec
            .name
            .parse()
            .map_err(|e: crate::oci::names::NameError| StreamError::Invalid(e.to_string()))?;
        let Some(from) = spec.from.as_ref().filter(|f| f.kind == DOCKER_IMAGE) else {
            return Err(StreamError::Invalid(format!(
                "tag {} of {repo} is not imported from another registry",
                spec.name
            )));
        };
        let image = ImageImport {
            tag,
            from: from.name.clone(),
            policy: ImportPolicy::of_spec(spec),
        };
        let origin = RevisionOrigin {
            cause: RevisionCause::Import,
            by: Some("system:scheduled-import".into()),
            address: None,
            source: None,
        };
        let result = self
            .fetch_and_record(repo, &image, true, &origin, failures, spec.generation)
            .await?;
        Ok(TagImport {
            tag: image.tag,
            from: image.from,
            result,
        })
    }

    /// Stores the upstream image `from` names (by digest) in `repo` without
    /// tagging it: a proxy namespace's pull by digest.
    pub async fn import_untagged(
        &self,
        repo: &RepositoryName,
        from: &str,
        policy: &ImportPolicy,
    ) -> Result<Result<ImportedImage, ImportFailure>, StreamError> {
        let fetched = match self.fetch(repo, from, policy).await {
            Ok(fetched) => fetched,
            Err(failure) => return Ok(Err(failure)),
        };
        let origin = RevisionOrigin {
            cause: RevisionCause::Import,
            by: None,
            address: None,
            source: Some(from.to_owned()),
        };
        for manifest in fetched.manifests {
            self.registry
                .store_manifest(repo, manifest, &origin)
                .await?;
        }
        Ok(Ok(fetched.image))
    }

    /// The digest the upstream's tag `from` names now, by a `HEAD` (which
    /// registries such as Docker Hub do not count against pull limits);
    /// `None` if the upstream does not say.
    pub async fn upstream_digest(
        &self,
        namespace: &str,
        from: &str,
        policy: &ImportPolicy,
    ) -> Result<Option<Digest>, ImportFailure> {
        let reference: UpstreamReference =
            from.parse()
                .map_err(|e: crate::upstream::reference::ReferenceError| {
                    ImportFailure::new("InvalidReference", e.to_string())
                })?;
        let access = self.access(namespace, &reference, policy).await?;
        let head = self
            .upstream
            .manifest_head(&reference, &access)
            .await
            .map_err(|e| ImportFailure::from_upstream(&e))?;
        Ok(head.digest)
    }

    /// Tags whose check is due now, the longest due first.
    pub async fn due(&self, limit: u32) -> Result<Vec<DueImport>, StreamError> {
        self.streams.due_imports(now(), limit).await
    }

    /// Checks `tag` no sooner than `wait` from now (its upstream asked to
    /// be left alone), keeping its count of failures.
    pub async fn put_off(
        &self,
        repo: &RepositoryName,
        tag: &str,
        wait: Duration,
        failures: u32,
    ) -> Result<(), StreamError> {
        self.streams
            .set_import_schedule(repo, tag, Some(now() + to_millis(wait)), failures)
            .await
    }

    /// The upstream repository's tags, newest first, up to the cap.
    async fn list_repository(
        &self,
        repo: &RepositoryName,
        repository: &RepositoryImport,
    ) -> Result<(Vec<ImageImport>, RepositoryListing), StreamError> {
        let limit = self.settings.max_bulk_tags;
        let mut listing = RepositoryListing {
            from: repository.from.clone(),
            upstream_tags: 0,
            left_out: Vec::new(),
            limit,
            failure: None,
            images: Vec::new(),
        };
        let reference: UpstreamReference = match repository.from.parse() {
            Ok(reference) => reference,
            Err(e) => {
                listing.failure = Some(ImportFailure::new(
                    "InvalidReference",
                    format!("{e}: --all takes REGISTRY/REPOSITORY"),
                ));
                return Ok((Vec::new(), listing));
            }
        };
        let access = match self
            .access(repo.namespace(), &reference, &repository.policy)
            .await
        {
            Ok(access) => access,
            Err(failure) => {
                listing.failure = Some(failure);
                return Ok((Vec::new(), listing));
            }
        };
        let mut tags = match self
            .upstream
            .tags(&reference.registry, &reference.repository, &access, None)
            .await
        {
            Ok(tags) => tags,
            Err(e) => {
                listing.failure = Some(ImportFailure::from_upstream(&e));
                return Ok((Vec::new(), listing));
            }
        };
        tags.sort_by(|a, b| newest_first(a, b));
        tags.dedup();
        listing.upstream_tags = tags.len();
        let kept = tags.len().min(limit);
        listing.left_out = tags.split_off(kept);
        let images = tags
            .into_iter()
            .filter_map(|tag| {
                let parsed: Tag = tag.parse().ok()?;
                Some(ImageImport {
                    from: reference.at_tag(parsed.clone()).to_string(),
                    tag: parsed,
                    policy: repository.policy.clone(),
                })
            })
            .collect();
        Ok((images, listing))
    }

    /// One tag: record its spec tag, fetch and check its manifest(s), record
    /// them and the revision, and the tag's condition and next check.
    async fn import_image(
        &self,
        repo: &RepositoryName,
        image: &ImageImport,
        record: bool,
        origin: &RevisionOrigin,
    ) -> Result<Result<ImportedImage, ImportFailure>, StreamError> {
        let generation = if record {
            // Recording the spec tag makes the stream: a new repository,
            // held to the repository quota before anything is recorded.
            let quota = self.quotas.namespace_quota(repo.namespace()).await?;
            let metadata = self.registry.metadata().as_ref();
            if let Err(e) = quotas::admit_repository(metadata, quota.as_ref(), repo).await {
                return Ok(Err(quota_failure(e, &image.from)?));
            }
            let spec = SpecTag {
                name: image.tag.as_str().to_owned(),
                from: Some(TagSource {
                    kind: DOCKER_IMAGE.into(),
                    namespace: None,
                    name: image.from.clone(),
                }),
                reference: false,
                reference_policy: image.policy.reference_policy.clone(),
                import_scheduled: image.policy.scheduled,
                import_insecure: image.policy.insecure,
                import_mode: image.policy.import_mode.clone(),
                generation: 0,
            };
            self.streams.record_spec_tag(repo, &spec).await?
        } else {
            0
        };
        self.fetch_and_record(repo, image, record, origin, 0, generation)
            .await
    }

    async fn fetch_and_record(
        &self,
        repo: &RepositoryName,
        image: &ImageImport,
        record: bool,
        origin: &RevisionOrigin,
        failures: u32,
        generation: i64,
    ) -> Result<Result<ImportedImage, ImportFailure>, StreamError> {
        let fetched = self.fetch(repo, &image.from, &image.policy).await;
        let imported = match fetched {
            Ok(fetched) if record => self.record(repo, image, fetched, origin).await,
            Ok(fetched) => Ok(Ok(fetched.image)),
            Err(failure) => Ok(Err(failure)),
        }?;
        if record {
            self.record_check(repo, image, &imported, failures, generation)
                .await?;
        }
        Ok(imported)
    }

    /// The manifests to record, children first, and what the tag will
    /// point at.
    async fn fetch(
        &self,
        repo: &RepositoryName,
        from: &str,
        policy: &ImportPolicy,
    ) -> Result<Fetched, ImportFailure> {
        let reference: UpstreamReference =
            from.parse()
                .map_err(|e: crate::upstream::reference::ReferenceError| {
                    ImportFailure::new("InvalidReference", e.to_string())
                })?;
        let access = self.access(repo.namespace(), &reference, policy).await?;
        let upstream = |e: UpstreamError| ImportFailure::from_upstream(&e);
        let top = self
            .upstream
            .manifest(&reference, &access)
            .await
            .map_err(upstream)?;
        let mut manifests = Vec::new();
        let chosen = if top.is_index() {
            let children = self
                .upstream
                .child_manifests(&reference, &top, &access)
                .await
                .map_err(upstream)?;
            if policy.import_mode == "Legacy" {
                let child = legacy_platform(&top, children, &reference)?;
                manifests.push(child.clone());
                child
            } else {
                manifests.extend(children);
                manifests.push(top.clone());
                top
            }
        } else {
            manifests.push(top.clone());
            top
        };
        let mut valid = Vec::with_capacity(manifests.len());
        for manifest in &manifests {
            let checked = self
                .registry
                .validate_imported_manifest(
                    repo,
                    &manifest.digest,
                    &manifest.media_type,
                    manifest.bytes.clone(),
                )
                .await
                .map_err(|e| {
                    ImportFailure::new(
                        "InvalidManifest",
                        format!(
                            "manifest {} from {}: {e}",
                            manifest.digest,
                            reference.repository_path()
                        ),
                    )
                })?;
            valid.push(checked);
        }
        let mut description = describe_manifest(&chosen.digest, &chosen.media_type, &chosen.bytes);
        description.manifest_size = chosen.bytes.len() as u64;
        Ok(Fetched {
            image: ImportedImage {
                description,
                docker_image_reference: format!(
                    "{}@{}",
                    reference.repository_path(),
                    chosen.digest
                ),
                digest: chosen.digest,
                media_type: chosen.media_type,
                child_manifests: manifests.len() - 1,
                tagged: None,
            },
            manifests: valid,
        })
    }

    async fn access(
        &self,
        namespace: &str,
        reference: &UpstreamReference,
        policy: &ImportPolicy,
    ) -> Result<UpstreamAccess, ImportFailure> {
        self.secrets
            .upstream_access(
                namespace,
                policy.secret.as_deref(),
                &reference.repository_path(),
                policy.insecure,
            )
            .await
            .map_err(|e| ImportFailure::new("SecretUnusable", e.to_string()))
    }

    async fn record(
        &self,
        repo: &RepositoryName,
        image: &ImageImport,
        fetched: Fetched,
        origin: &RevisionOrigin,
    ) -> Result<Result<ImportedImage, ImportFailure>, StreamError> {
        let origin = RevisionOrigin {
            cause: RevisionCause::Import,
            by: origin.by.clone(),
            address: origin.address.clone(),
            source: Some(image.from.clone()),
        };
        // Under the namespace's quota as a push is, before anything is
        // recorded; refused, it is the tag's own failure, as an immutable
        // tag is (and, scheduled, checked again after the usual backoff).
        let quota = self.quotas.namespace_quota(repo.namespace()).await?;
        let admitted = self
            .registry
            .admit_import(repo, &image.tag, &fetched.manifests, quota.as_ref())
            .await;
        if let Err(e) = admitted {
            return Ok(Err(quota_failure(e, &image.from)?));
        }
        for manifest in fetched.manifests {
            self.registry
                .store_manifest(repo, manifest, &origin)
                .await?;
        }
        let mut imported = fetched.image;
        // With reference policy Source, pullers are pointed at the
        // upstream; with Local, at this registry (the reference is then
        // berth's own, made when shown).
        let reference = (image.policy.reference_policy != "Local")
            .then(|| imported.docker_image_reference.clone());
        let tagged = match self
            .streams
            .record_import(repo, &image.tag, &imported.digest, reference, &origin)
            .await
        {
            Ok(tagged) => tagged,
            // The tag's own failure, as the upstream's are: the other tags
            // of the request go on, and a scheduled check records it as the
            // tag's condition (not transient: the policy has to change).
            Err(StreamError::Immutable(refusal)) => {
                return Ok(Err(ImportFailure::new("TagImmutable", refusal.to_string())));
            }
            Err(e) => return Err(e),
        };
        imported.tagged = Some(tagged);
        Ok(Ok(imported))
    }

    /// After a check: the tag's condition, and when it is checked next.
    async fn record_check(
        &self,
        repo: &RepositoryName,
        image: &ImageImport,
        result: &Result<ImportedImage, ImportFailure>,
        failures: u32,
        generation: i64,
    ) -> Result<(), StreamError> {
        let tag = image.tag.as_str();
        let (due, failures) = match result {
            Ok(_) => {
                self.streams
                    .clear_condition(repo, tag, IMPORT_CONDITION)
                    .await?;
                let due = image
                    .policy
                    .scheduled
                    .then(|| self.first_check(repo, tag, now()));
                (due, 0)
            }
            Err(failure) => {
                tracing::warn!(stream = %repo, tag, from = %image.from, reason = %failure.reason, message = %failure.message, "import failed");
                self.streams
                    .set_condition(
                        repo,
                        &condition(
                            tag,
                            IMPORT_CONDITION,
                            false,
                            &failure.reason,
                            &failure.message,
                            generation,
                        ),
                    )
                    .await?;
                let failures = failures.saturating_add(1);
                let due = image
                    .policy
                    .scheduled
                    .then(|| now() + to_millis(self.backoff(failures, failure.retry_after)));
                (due, failures)
            }
        };
        self.streams
            .set_import_schedule(repo, tag, due, failures)
            .await
    }

    /// A scheduled tag's next check after a success: one interval, plus a
    /// part of another fixed per tag, so that tags imported together are
    /// checked spread over the interval and never sooner than it.
    fn first_check(&self, repo: &RepositoryName, tag: &str, at: Timestamp) -> Timestamp {
        let interval = to_millis(self.settings.scheduled_interval).max(1);
        let spread = spread_of(repo.as_str(), tag) % interval as u64;
        at + interval + spread as i64
    }

    fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        backoff(self.settings.scheduled_interval, failures, retry_after)
    }
}

/// The wait after `failures` failed checks in a row: one interval, doubled
/// per further failure, at most eight; never sooner than the upstream asked.
pub fn backoff(interval: Duration, failures: u32, retry_after: Option<Duration>) -> Duration {
    let doublings = failures.saturating_sub(1).min(3);
    let wait = interval.saturating_mul(1 << doublings);
    retry_after.map_or(wait, |after| wait.max(after))
}

/// An import of `from` the namespace's quota refuses: the tag's failure,
/// saying which quota, its usage and what the image needs. Any other error
/// is the request's.
fn quota_failure(e: RegistryError, from: &str) -> Result<ImportFailure, StreamError> {
    let RegistryError::QuotaExceeded(refusal) = e else {
        return Err(e.into());
    };
    let mut message = refusal.message_for(from);
    if matches!(*refusal, QuotaRefusal::Bytes { .. }) {
        // An import needs more than it copies: the blobs that pulls of the
        // image will fetch are counted when it asks.
        message.push_str(" (its manifests and the blobs its pulls fetch)");
    }
    Ok(ImportFailure::new("QuotaExceeded", message))
}

/// A fetched image: its manifests checked and ready to record.
struct Fetched {
    image: ImportedImage,
    manifests: Vec<super::registry::ValidManifest>,
}

/// A reference no import could use is refused before anything is recorded.
fn check_reference(from: &str) -> Result<(), StreamError> {
    from.parse::<UpstreamReference>()
        .map(drop)
        .map_err(|e| StreamError::Invalid(format!("{e}: import from REGISTRY/REPO[:TAG|@DIGEST]")))
}

fn check_policy(policy: &ImportPolicy) -> Result<(), StreamError> {
    reference_policy(&policy.reference_policy)?;
    import_mode(&policy.import_mode)?;
    Ok(())
}

/// The child of `index` for [`LEGACY_PLATFORM`].
fn legacy_platform(
    index: &UpstreamManifest,
    children: Vec<UpstreamManifest>,
    reference: &UpstreamReference,
) -> Result<UpstreamManifest, ImportFailure> {
    let parsed = super::manifest::parse(&index.bytes, Some(&index.media_type)).map_err(|e| {
        ImportFailure::new(
            "InvalidManifest",
            format!("index {}: {e}", reference.repository_path()),
        )
    })?;
    let (os, architecture) = LEGACY_PLATFORM;
    let wanted = parsed
        .platforms
        .iter()
        .find(|(_, o, a)| o == os && a == architecture)
        .map(|(digest, _, _)| digest.clone())
        .ok_or_else(|| {
            ImportFailure::new(
                "NoMatchingPlatform",
                format!(
                    "{reference} lists no {os}/{architecture} image; import it with \
                     --import-mode=PreserveOriginal to keep every platform"
                ),
            )
        })?;
    children
        .into_iter()
        .find(|c| c.digest == wanted)
        .ok_or_else(|| {
            ImportFailure::new(
                "InvalidManifest",
                format!("{reference}: the child {wanted} was not fetched"),
            )
        })
}

fn to_millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A number fixed per tag, to spread checks.
fn spread_of(repo: &str, tag: &str) -> u64 {
    let hash = crate::oci::digest::sha256_raw(format!("{repo}:{tag}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first)
}

/// Tags in the order `--all` takes them: versions newest first (numbers
/// compared as numbers, so `1.10` before `1.9`), then other names.
pub fn newest_first(a: &str, b: &str) -> Ordering {
    natural_order(b, a)
}

fn natural_order(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let by_number = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if by_number != Ordering::Equal {
                    return by_number;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[start.min(digits.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_newest_first() {
        let mut tags = vec![
            "1.9",
            "1.10",
            "latest",
            "1.2.3",
            "2.0",
            "1.10-alpine",
            "01.1",
        ];
        tags.sort_by(|a, b| newest_first(a, b));
        assert_eq!(
            tags,
            vec![
                "latest",
                "2.0",
                "1.10-alpine",
                "1.10",
                "1.9",
                "1.2.3",
                "01.1"
            ]
        );
    }

    #[test]
    fn backoff_doubles_to_eight_intervals_and_honours_retry_after() {
        let interval = Duration::from_secs(10);
        assert_eq!(backoff(interval, 1, None), Duration::from_secs(10));
        assert_eq!(backoff(interval, 2, None), Duration::from_secs(20));
        assert_eq!(backoff(interval, 3, None), Duration::from_secs(40));
        assert_eq!(backoff(interval, 9, None), Duration::from_secs(80));
        let asked = Some(Duration::from_secs(60));
        assert_eq!(backoff(interval, 1, asked), Duration::from_secs(60));
        assert_eq!(backoff(interval, 4, asked), Duration::from_secs(80));
    }

    #[test]
    fn checks_spread_over_the_interval() {
        let spreads: std::collections::BTreeSet<u64> = (0..50)
            .map(|n| spread_of("ns/app", &format!("v{n}")) % 1000)
            .collect();
        // 50 tags over 1000 slots: nearly all distinct, none bunched.
        assert!(spreads.len() > 45, "{spreads:?}");
        assert!(spreads.iter().any(|&s| s < 250) && spreads.iter().any(|&s| s >= 750));
    }
}
