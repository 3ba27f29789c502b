//! Pull-through: the blobs of images imported with reference policy
//! `Local` are fetched from their upstream when first pulled, streamed to
//! the puller while they are stored, and served from berth from then on.
//!
//! - **Which upstream.** A blob is fetched only for a repository holding a
//!   manifest that references it (so a puller cannot make berth fetch
//!   anything else), from the upstream of the tags pointing at that image
//!   first, then from the stream's other `Local` tags' upstreams, with the
//!   namespace's pull secret: pullers never need upstream credentials. A
//!   blob berth already stores for another repository is linked, not
//!   fetched again.
//! - **One download per blob and process.** Concurrent requests for a blob
//!   being fetched join its [`Fill`]: the download is written to the blob
//!   store, and every joined request streams the bytes as they arrive:
//!   from memory while it keeps up, else mapped from the spool (sent from
//!   the file on plain connections). On the filesystem the spool is the
//!   upload's own file, followed as it is written; on an object store a
//!   spool file of the fill's own (unlinked, so the kernel frees it with
//!   the last reader). Each byte is hashed once, by the upload that
//!   stores it. The last byte is released only once the whole
//!   blob has matched its digest (its `fsync` and commit follow, off the
//!   readers' path), so a corrupt blob is never served whole and never
//!   stored. A request that goes away does
//!   not stop the download: a fill always runs to its end (the upstream
//!   client gives up on an answer quiet for 30 s), so the next pull finds
//!   the blob stored.
//! - **Failures.** An upstream that fails (unreachable, stalled, 5xx or
//!   `429`) is left alone for a while, doubling per failure in a row up
//!   to [`MAX_HOST_BACKOFF`] and never less than its `Retry-After`; pulls
//!   needing it meanwhile fail at once with `503`/`429`. What berth stores
//!   is served whatever the upstream does. Failures are recorded on the
//!   tags' [`PULL_THROUGH_CONDITION`], cleared by the next success.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, watch};

use super::image_streams::{DOCKER_IMAGE, ImageStreams, StreamError, condition};
use super::imports::{ImageImport, ImportFailure, ImportPolicy, ImportRequest, Importer};
use super::proxies::Proxies;
use super::registry::Registry;
use super::secrets::PullSecrets;
use super::uploads::Uploads;
use crate::error::{RegistryError, Result};
use crate::metadata::image_streams::{RevisionCause, RevisionOrigin, StoredStream};
use crate::oci::digest::Digest;
use crate::oci::names::{Reference, RepositoryName, Tag};
use crate::storage::{WindowIndex, WrittenObserver, map_written_range, window_len};
use crate::upstream::{RegistryHost, UpstreamClient, UpstreamError, UpstreamReference};

/// The condition a failed pull-through sets on a tag.
pub const PULL_THROUGH_CONDITION: &str = "PullThroughSuccess";
/// The longest an upstream that keeps failing is left alone.
pub const MAX_HOST_BACKOFF: Duration = Duration::from_secs(30);
/// The first wait after an upstream failed.
const FIRST_HOST_BACKOFF: Duration = Duration::from_secs(1);
/// Bytes gathered before they are written to the spool.
const SPOOL_WRITE: usize = 256 << 10;
/// Readers are woken at most once per this many bytes received.
const ADVANCE_STEP: u64 = 64 << 10;
/// The newest bytes of a fill kept in memory beyond what awaits the spool:
/// readers that keep up are served from them, without reading the spool.
const RECENT_BYTES: u64 = 2 << 20;
/// Largest piece a reader takes from memory at once.
const READ_PIECE: u64 = 1 << 20;

/// Where a blob can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobSource {
    /// The stream's tag whose import names this upstream (its condition
    /// records failures).
    pub tag: Option<String>,
    pub registry: RegistryHost,
    pub repository: RepositoryName,
    pub insecure: bool,
    /// The pull secret to use (a proxy namespace's), else the matching one.
    pub secret: Option<String>,
}

impl BlobSource {
    fn describe(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// What [`PullThrough::blob`] found for a blob a repository lacks.
pub enum PulledBlob {
    /// berth stored it already (for another repository): it is now linked
    /// here too and served like any other.
    Linked(u64),
    /// It is being fetched: read it from the fill.
    Filling(FillReader),
}

#[derive(Debug, Clone)]
enum Progress {
    Connecting,
    /// `received` bytes are in the spool; `verified` once the whole blob
    /// matched its digest (it may still be being made durable).
    Receiving {
        received: u64,
        size: Option<u64>,
        verified: bool,
    },
    Done {
        size: u64,
    },
    Failed(FillFailure),
}

/// Why a fill failed, kept to tell every request that joined it.
#[derive(Debug, Clone)]
struct FillFailure {
    digest: Digest,
    not_found: bool,
    message: String,
    retry_after: Option<Duration>,
    rate_limited: bool,
}

impl FillFailure {
    /// A failure other than "not found", with no rate limit.
    fn unavailable(digest: &Digest, message: String, retry_after: Option<Duration>) -> FillFailure {
        FillFailure {
            digest: digest.clone(),
            not_found: false,
            message,
            retry_after,
            rate_limited: false,
        }
    }

    fn from_upstream(digest: &Digest, e: &UpstreamError) -> FillFailure {
        FillFailure {
            digest: digest.clone(),
            not_found: matches!(e, UpstreamError::NotFound { .. }),
            message: format!("pull-through: {e}"),
            retry_after: e.retry_after(),
            rate_limited: matches!(e, UpstreamError::RateLimited { .. }),
        }
    }

    fn to_error(&self) -> RegistryError {
        if self.not_found {
            RegistryError::UpstreamBlobUnknown {
                digest: self.digest.clone(),
                message: self.message.clone(),
            }
        } else {
            RegistryError::UpstreamUnavailable {
                message: self.message.clone(),
                retry_after_secs: self.retry_after.map(|d| d.as_secs().max(1)),
                rate_limited: self.rate_limited,
            }
        }
    }
}

/// A blob being fetched, shared by every request that wants it.
pub struct Fill {
    spool: Mutex<Spool>,
    progress: watch::Receiver<Progress>,
    /// Repositories that joined besides the one it was started for: the
    /// blob is linked into them too when stored.
    also_for: Mutex<Vec<RepositoryName>>,
}

/// One request's view of a [`Fill`].
pub struct FillReader {
    fill: Arc<Fill>,
    progress: watch::Receiver<Progress>,
}

impl FillReader {
    fn new(fill: Arc<Fill>) -> FillReader {
        let progress = fill.progress.clone();
        FillReader { fill, progress }
    }

    /// The blob's size, once the upstream said it (or the fill ended).
    pub async fn size(&mut self) -> Result<u64> {
        loop {
            match &*self.progress.borrow_and_update() {
                Progress::Receiving {
                    size: Some(size), ..
                }
                | Progress::Done { size } => return Ok(*size),
                Progress::Failed(failure) => return Err(failure.to_error()),
                Progress::Connecting | Progress::Receiving { size: None, .. } => {}
            }
            if self.progress.changed().await.is_err() {
                return Err(RegistryError::Internal(
                    "a pull-through fill ended without a result".into(),
                ));
            }
        }
    }

    /// `range` of the blob, as the fill brings it. Ends with an error if
    /// the fill fails; never yields the blob's last byte before the whole
    /// blob matched its digest.
    ///
    /// Bytes read from the spool are mapped, not copied: with `index` (the
    /// connection's), the socket writer sends them from the file.
    pub fn read(
        self,
        range: Range<u64>,
        index: Option<Arc<WindowIndex>>,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
        futures::stream::unfold(
            (self, range.start, range.end),
            move |(mut reader, position, end)| {
                let index = index.clone();
                async move {
                    if position >= end {
                        return None;
                    }
                    loop {
                        let state = reader.progress.borrow_and_update().clone();
                        let readable = match state {
                            Progress::Done { size } => size,
                            Progress::Receiving {
                                received,
                                verified: true,
                                ..
                            } => received,
                            // Held back until verified: the last byte.
                            Progress::Receiving {
                                received,
                                size: Some(size),
                                verified: false,
                            } => received.min(size.saturating_sub(1)),
                            Progress::Receiving { .. } | Progress::Connecting => 0,
                            Progress::Failed(failure) => {
                                let error = std::io::Error::other(failure.message);
                                return Some((Err(error), (reader, end, end)));
                            }
                        };
                        if readable > position {
                            let limit = readable.min(end);
                            let piece = reader.fill.read_at(position, limit, index.as_ref()).await;
                            match piece {
                                Ok(bytes) if bytes.is_empty() => {}
                                Ok(bytes) => {
                                    let next = position + bytes.len() as u64;
                                    return Some((Ok(bytes), (reader, next, end)));
                                }
                                Err(e) => return Some((Err(e), (reader, end, end))),
                            }
                        }
                        if reader.progress.changed().await.is_err() {
                            let error = std::io::Error::other("pull-through fill ended early");
                            return Some((Err(error), (reader, end, end)));
                        }
                    }
                }
            },
        )
    }
}

impl Fill {
    fn spool(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bytes from `position` up to at most `limit` (both received):
    /// from memory when they are recent, else mapped from the spool.
    async fn read_at(
        &self,
        position: u64,
        limit: u64,
        index: Option<&Arc<WindowIndex>>,
    ) -> std::io::Result<Bytes> {
        let (file, spooled_below) = {
            let spool = self.spool();
            if let Some(piece) = spool
                .recent
                .slice(position, limit.min(position + READ_PIECE))
            {
                return Ok(piece);
            }
            match &spool.file {
                Some(file) => (file.clone(), spool.recent.start),
                None => return Ok(Bytes::new()),
            }
        };
        // Everything before the recent pieces is in the spool. Nothing
        // is when a new source has just started over: the reader asks
        // again once the progress says so.
        // Mapped a window at a time, as blob reads are.
        let available = limit.min(spooled_below).min(position + window_len(index));
        if available <= position {
            return Ok(Bytes::new());
        }
        let length = available - position;
        let index = index.cloned();
        tokio::task::spawn_blocking(move || {
            // SAFETY: a spool file is append-only: each byte is written
            // once, before it counts as spooled, and never truncated (a
            // source tried after another writes a new file). So is an
            // upload's file followed as the spool: it becomes the blob or
            // is unlinked (`PartWriter::observe_written`).
            unsafe { map_written_range(&file, position, length, index.as_ref()) }
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Where a fill keeps what it received for its readers: the spool file,
/// and the newest pieces in memory.
///
/// On the filesystem the spool is the upload's own file, followed as the
/// upload writes it (each byte reaches the page cache once, not twice);
/// elsewhere a file of the fill's own.
struct Spool {
    /// `None` until the upload being followed has written its first bytes.
    file: Option<Arc<File>>,
    recent: RecentPieces,
    /// Which try of the fill's sources this is: a file followed for an
    /// earlier try is never taken up again.
    generation: u64,
}

impl Spool {
    fn new(dir: &std::path::Path, generation: u64) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        Ok(Spool {
            file: Some(Arc::new(tempfile::tempfile_in(dir)?)),
            recent: RecentPieces::default(),
            generation,
        })
    }

    fn following(generation: u64) -> Spool {
        Spool {
            file: None,
            recent: RecentPieces::default(),
            generation,
        }
    }
}

/// Makes the upload's file the fill's spool as the upload writes it.
fn follow_upload(fill: &Arc<Fill>, generation: u64) -> WrittenObserver {
    let fill = Arc::downgrade(fill);
    Arc::new(move |file, end| {
        let Some(fill) = fill.upgrade() else {
            return;
        };
        let mut spool = fill.spool();
        if spool.generation != generation {
            return;
        }
        if spool.file.is_none() {
            spool.file = Some(file.clone());
        }
        spool.recent.spooled(end);
    })
}

/// The newest pieces a fill received, from `start` on: all that is not in
/// the spool yet, and up to [`RECENT_BYTES`] more.
#[derive(Default)]
struct RecentPieces {
    start: u64,
    pieces: std::collections::VecDeque<Bytes>,
}

impl RecentPieces {
    fn push(&mut self, piece: Bytes) {
        self.pieces.push_back(piece);
    }

    fn end(&self) -> u64 {
        self.start + self.pieces.iter().map(|p| p.len() as u64).sum::<u64>()
    }

    /// Drops the oldest pieces that are spooled while more than
    /// [`RECENT_BYTES`] would remain.
    fn spooled(&mut self, spooled: u64) {
        let mut kept = self.end() - self.start;
        while let Some(front) = self.pieces.front() {
            let length = front.len() as u64;
            if self.start + length > spooled || kept - length < RECENT_BYTES {
                break;
            }
            self.pieces.pop_front();
            self.start += length;
            kept -= length;
        }
    }

    /// A piece of the bytes from `position` to at most `limit`, without a
    /// copy, if they are here.
    fn slice(&self, position: u64, limit: u64) -> Option<Bytes> {
        let mut at = self.start;
        if position < at {
            return None;
        }
        for piece in &self.pieces {
            let length = piece.len() as u64;
            if position < at + length {
                let from = (position - at) as usize;
                let to = (limit.min(at + length) - at) as usize;
                return Some(piece.slice(from..to));
            }
            at += length;
        }
        None
    }
}

/// How long each upstream host is left alone after failing.
#[derive(Default)]
struct HostBackoff {
    hosts: Mutex<HashMap<String, (Instant, u32)>>,
}

impl HostBackoff {
    /// How long `host` is still to be left alone.
    fn remaining(&self, host: &str) -> Option<Duration> {
        let hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let (until, _) = hosts.get(host)?;
        until.checked_duration_since(Instant::now())
    }

    fn failed(&self, host: &str, retry_after: Option<Duration>) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let failures = hosts.get(host).map_or(0, |(_, f)| *f).saturating_add(1);
        let wait = host_backoff(failures, retry_after);
        hosts.insert(host.to_owned(), (Instant::now() + wait, failures));
    }

    fn succeeded(&self, host: &str) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.remove(host);
    }
}

/// The wait after `failures` failures in a row: doubling from one second,
/// at most [`MAX_HOST_BACKOFF`], never less than the upstream asked.
pub fn host_backoff(failures: u32, retry_after: Option<Duration>) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let wait = FIRST_HOST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_HOST_BACKOFF);
    retry_after.map_or(wait, |after| wait.max(after))
}

/// The services pull-through works with.
pub struct PullThroughParts {
    pub registry: Arc<Registry>,
    pub uploads: Arc<Uploads>,
    pub streams: Arc<ImageStreams>,
    pub secrets: Arc<PullSecrets>,
    pub importer: Arc<Importer>,
    pub proxies: Arc<Proxies>,
    pub upstream: UpstreamClient,
    /// Where downloads in progress are spooled for their readers.
    pub spool_dir: PathBuf,
}

pub struct PullThrough {
    registry: Arc<Registry>,
    uploads: Arc<Uploads>,
    streams: Arc<ImageStreams>,
    secrets: Arc<PullSecrets>,
    importer: Arc<Importer>,
    proxies: Arc<Proxies>,
    upstream: UpstreamClient,
    spool_dir: PathBuf,
    fills: Mutex<HashMap<Digest, Arc<Fill>>>,
    backoff: HostBackoff,
    /// When each proxied tag was last found current upstream (or served
    /// stale after a failure), by this process.
    checked: Mutex<HashMap<(RepositoryName, String), Instant>>,
    /// One check of a proxied tag at a time; the others wait for it.
    checking: DashMap<(RepositoryName, String), Arc<tokio::sync::Mutex<()>>>,
}

impl PullThrough {
    pub fn new(parts: PullThroughParts) -> PullThrough {
        PullThrough {
            registry: parts.registry,
            uploads: parts.uploads,
            streams: parts.streams,
            secrets: parts.secrets,
            importer: parts.importer,
            proxies: parts.proxies,
            upstream: parts.upstream,
            spool_dir: parts.spool_dir,
            fills: Mutex::new(HashMap::new()),
            backoff: HostBackoff::default(),
            checked: Mutex::new(HashMap::new()),
            checking: DashMap::new(),
        }
    }

    pub fn proxies(&self) -> &Arc<Proxies> {
        &self.proxies
    }

    /// Counts a blob served from what a proxy namespace cached.
    pub fn served_locally(&self, repo: &RepositoryName) {
        if self.proxies.get(repo.namespace()).is_some() {
            count_proxy("hit");
        }
    }

    /// Why a push into `repo` is refused, if its namespace is a proxy.
    pub fn refuses_pushes(&self, repo: &RepositoryName) -> Option<String> {
        self.proxies.get(repo.namespace()).map(|proxy| {
            format!(
                "namespace {} is a pull-through cache of {}: it takes no pushes; push to another namespace",
                proxy.namespace, proxy.upstream
            )
        })
    }

    /// Before a manifest of a proxy namespace is served: fetches it from
    /// the upstream when berth lacks it, or checks the tag against the
    /// upstream once its TTL has passed. When the upstream fails and berth
    /// has the tag, it is served as it is. Nothing for other namespaces.
    pub async fn refresh_proxied(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<()> {
        let Some(proxy) = self.proxies.get(repo.namespace()) else {
            return Ok(());
        };
        let path = proxy.upstream_path(repo);
        let policy = ImportPolicy {
            scheduled: false,
            insecure: proxy.insecure,
            reference_policy: "Local".into(),
            import_mode: "PreserveOriginal".into(),
            secret: proxy.secret.clone(),
        };
        let local = self.registry.manifest_meta(repo, reference).await;
        let tag = match reference {
            Reference::Digest(digest) => {
                if local.is_ok() {
                    count_proxy("hit");
                    return Ok(());
                }
                count_proxy("miss");
                let from = format!("{}/{path}@{digest}", proxy.upstream);
                let imported = self
                    .importer
                    .import_untagged(repo, &from, &policy)
                    .await
                    .map_err(stream_error)?;
                return imported.map(drop).map_err(|f| proxy_failure(&from, &f));
            }
            Reference::Tag(tag) => tag,
        };
        let key = (repo.clone(), tag.as_str().to_owned());
        if local.is_ok() && self.checked_within(&key, proxy.ttl) {
            count_proxy("hit");
            return Ok(());
        }
        let gate = self.checking.entry(key.clone()).or_default().clone();
        let _checking = gate.lock().await;
        let local = self.registry.manifest_meta(repo, reference).await.ok();
        if local.is_some() && self.checked_within(&key, proxy.ttl) {
            count_proxy("hit");
            return Ok(());
        }
        let from = format!("{}/{path}:{tag}", proxy.upstream);
        let host = proxy.upstream.api_host().to_owned();
        let backing_off = self.backoff.remaining(&host);
        let outcome = match backing_off {
            Some(wait) => Err(ImportFailure {
                reason: "UpstreamUnavailable".into(),
                message: format!(
                    "upstream {host} failed recently; berth tries it again in {}s",
                    wait.as_secs().max(1)
                ),
                retry_after: Some(wait),
                transient: true,
            }),
            None => {
                self.check_proxied_tag(repo, tag, &from, &policy, local.as_ref())
                    .await?
            }
        };
        match outcome {
            Ok(()) => {
                self.backoff.succeeded(&host);
                self.mark_checked(key);
                Ok(())
            }
            Err(failure) => {
                // A failure of the upstream itself (not of waiting for it)
                // lengthens the wait.
                if failure.transient && backing_off.is_none() {
                    self.backoff.failed(&host, failure.retry_after);
                    metrics::counter!("berth_pull_through_upstream_errors_total", "host" => host.clone(), "reason" => "manifest")
                        .increment(1);
                }
                if local.is_some() {
                    tracing::warn!(repository = %repo, tag = %tag, upstream = %from, error = %failure.message, "upstream failed; serving the cached tag");
                    count_proxy("stale");
                    return Ok(());
                }
                Err(proxy_failure(&from, &failure))
            }
        }
    }

    /// Whether the tag is current upstream (a `HEAD` when berth has it),
    /// importing it when it is not.
    async fn check_proxied_tag(
        &self,
        repo: &RepositoryName,
        tag: &Tag,
        from: &str,
        policy: &ImportPolicy,
        local: Option<&crate::metadata::ManifestMeta>,
    ) -> Result<std::result::Result<(), ImportFailure>> {
        if let Some(local) = local {
            match self
                .importer
                .upstream_digest(repo.namespace(), from, policy)
                .await
            {
                Ok(Some(digest)) if digest == local.digest => {
                    count_proxy("revalidated");
                    return Ok(Ok(()));
                }
                Ok(_) => {}
                Err(failure) => return Ok(Err(failure)),
            }
        }
        count_proxy("miss");
        let request = ImportRequest {
            repo: repo.clone(),
            images: vec![ImageImport {
                tag: tag.clone(),
                from: from.to_owned(),
                policy: policy.clone(),
            }],
            repository: None,
            record: true,
        };
        let origin = RevisionOrigin {
            cause: RevisionCause::Import,
            by: Some("system:pull-through".into()),
            address: None,
            source: None,
        };
        let outcome = self
            .importer
            .import(&request, &origin)
            .await
            .map_err(stream_error)?;
        let result = outcome
            .images
            .into_iter()
            .next()
            .map(|tag| tag.result.map(drop));
        self.registry.forget_repository(repo);
        Ok(result.unwrap_or_else(|| {
            Err(ImportFailure {
                reason: "NotImported".into(),
                message: format!("{from} was not imported"),
                retry_after: None,
                transient: false,
            })
        }))
    }

    fn checked_within(&self, key: &(RepositoryName, String), ttl: Duration) -> bool {
        let checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        checked.get(key).is_some_and(|at| at.elapsed() < ttl)
    }

    fn mark_checked(&self, key: (RepositoryName, String)) {
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        checked.insert(key, Instant::now());
    }

    /// A blob `repo` does not hold: `None` if it is not berth's to fetch
    /// (no image of the repository needs it from an upstream), else linked
    /// from another repository or being fetched.
    pub async fn blob(
        self: &Arc<Self>,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<PulledBlob>> {
        let sources = self.sources(repo, digest).await?;
        if sources.is_empty() {
            return Ok(None);
        }
        if let Some(size) = self.link_if_stored(repo, digest).await? {
            return Ok(Some(PulledBlob::Linked(size)));
        }
        let fill = {
            let mut fills = self.fills.lock().unwrap_or_else(|p| p.into_inner());
            match fills.get(digest) {
                Some(fill) => {
                    metrics::counter!("berth_pull_through_requests_total", "result" => "coalesced")
                        .increment(1);
                    let fill = fill.clone();
                    let mut also = fill.also_for.lock().unwrap_or_else(|p| p.into_inner());
                    if !also.contains(repo) {
                        also.push(repo.clone());
                    }
                    drop(also);
                    fill
                }
                None => {
                    metrics::counter!("berth_pull_through_requests_total", "result" => "miss")
                        .increment(1);
                    let fill = self.start_fill(repo, digest, sources)?;
                    fills.insert(digest.clone(), fill.clone());
                    fill
                }
            }
        };
        Ok(Some(PulledBlob::Filling(FillReader::new(fill))))
    }

    /// Links a blob berth already stores (for another repository) into
    /// `repo`, as a mount does (touching it, and not if garbage collection
    /// is deleting it), if its bytes are really there.
    async fn link_if_stored(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<u64>> {
        let metadata = self.registry.metadata();
        if metadata.blob_size(digest).await?.is_none()
            || self
                .registry
                .blob_store()
                .blob_size(digest)
                .await?
                .is_none()
        {
            return Ok(None);
        }
        Ok(metadata.mount_blob(repo, digest).await?)
    }

    /// Where `digest` may be fetched from for `repo`, best first; empty
    /// when no image of `repo` that references it was imported with
    /// reference policy `Local`.
    pub async fn sources(&self, repo: &RepositoryName, digest: &Digest) -> Result<Vec<BlobSource>> {
        let metadata = self.registry.metadata();
        // One indexed query settles the usual case (a push asking whether
        // a layer is here yet): no manifest of the repository needs it.
        let images = metadata
            .manifests_referencing(repo, std::slice::from_ref(digest))
            .await?;
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let indexes = metadata.manifests_referencing(repo, &images).await?;
        let stream = match self.streams.get(repo).await {
            Ok(stream) => stream,
            Err(StreamError::NotFound(_)) => return Ok(Vec::new()),
            Err(e) => return Err(stream_error(e)),
        };
        let holding: Vec<&Digest> = images.iter().chain(&indexes).collect();
        let (mut sources, source_only) = sources_of(&stream, &holding);
        if let Some(proxy) = self.proxies.get(repo.namespace()) {
            // The proxy's upstream, with its secret, whatever the tags say.
            let path = proxy.upstream_path(repo);
            if let Ok(upstream) = format!("{}/{path}", proxy.upstream).parse::<UpstreamReference>()
            {
                for source in sources
                    .iter_mut()
                    .filter(|s| s.registry == upstream.registry)
                {
                    source.secret = proxy.secret.clone();
                }
                if !sources
                    .iter()
                    .any(|s| s.registry == upstream.registry && s.repository == upstream.repository)
                {
                    sources.push(BlobSource {
                        tag: None,
                        registry: upstream.registry,
                        repository: upstream.repository,
                        insecure: proxy.insecure,
                        secret: proxy.secret.clone(),
                    });
                }
            }
        }
        if sources.is_empty()
            && let Some(upstream) = source_only
        {
            return Err(RegistryError::UpstreamBlobUnknown {
                digest: digest.clone(),
                message: format!(
                    "blob {digest} is not stored in {repo}: its image was imported with reference policy Source, so it is pulled from {upstream}, not through this registry"
                ),
            });
        }
        Ok(sources)
    }

    fn start_fill(
        self: &Arc<Self>,
        repo: &RepositoryName,
        digest: &Digest,
        sources: Vec<BlobSource>,
    ) -> Result<Arc<Fill>> {
        let spool = self.new_spool(0).map_err(|e| {
            RegistryError::Internal(format!(
                "pull-through spool in {}: {e}",
                self.spool_dir.display()
            ))
        })?;
        let (progress_tx, progress) = watch::channel(Progress::Connecting);
        let fill = Arc::new(Fill {
            spool: Mutex::new(spool),
            progress,
            also_for: Mutex::new(Vec::new()),
        });
        let this = self.clone();
        let task = FillTask {
            repo: repo.clone(),
            digest: digest.clone(),
            sources,
            fill: fill.clone(),
            progress: progress_tx,
        };
        tokio::spawn(async move {
            let digest = task.digest.clone();
            this.run(task).await;
            this.fills
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&digest);
        });
        Ok(fill)
    }

    fn new_spool(&self, generation: u64) -> std::io::Result<Spool> {
        if self.uploads.writes_local_files() {
            Ok(Spool::following(generation))
        } else {
            Spool::new(&self.spool_dir, generation)
        }
    }

    async fn run(&self, task: FillTask) {
        let started = Instant::now();
        let mut last_failure = None;
        let mut tried = Vec::new();
        let mut fetched_before = false;
        for source in &task.sources {
            let host = source.registry.api_host().to_owned();
            if let Some(wait) = self.backoff.remaining(&host) {
                last_failure = Some(FillFailure::unavailable(
                    &task.digest,
                    format!(
                        "pull-through: upstream {host} failed recently; berth tries it again in {}s",
                        wait.as_secs().max(1)
                    ),
                    Some(wait),
                ));
                tried.push(source);
                continue;
            }
            let retry = fetched_before;
            fetched_before = true;
            tried.push(source);
            match self.fetch_from(&task, source, retry).await {
                Ok(size) => {
                    self.finished(&task, source, Ok(size), started);
                    // Readers before the condition: that writes to the
                    // database.
                    let _ = task.progress.send(Progress::Done { size });
                    self.backoff.succeeded(&host);
                    if let Some(tag) = &source.tag
                        && let Err(e) = self
                            .streams
                            .clear_condition(&task.repo, tag, PULL_THROUGH_CONDITION)
                            .await
                    {
                        tracing::warn!(repository = %task.repo, tag, error = %e, "clearing a pull-through condition");
                    }
                    return;
                }
                Err(failure) if failure.served_verified => {
                    // The bytes matched and every reader can finish from
                    // the spool; only storing them failed, so the next
                    // pull fetches the blob again. No other upstream would
                    // do better.
                    if let Progress::Receiving { received, .. } = *task.progress.borrow() {
                        let _ = task.progress.send(Progress::Done { size: received });
                    }
                    self.finished(&task, source, Err(&failure.failure), started);
                    return;
                }
                Err(failure) => {
                    if failure.transient {
                        self.backoff.failed(&host, failure.failure.retry_after);
                    }
                    metrics::counter!("berth_pull_through_upstream_errors_total", "host" => host.clone(), "reason" => failure.reason)
                        .increment(1);
                    self.finished(&task, source, Err(&failure.failure), started);
                    // The next source starts over; readers keep their
                    // place, as its bytes are the same (they match the
                    // same digest).
                    last_failure = Some(failure.failure);
                }
            }
        }
        let failure = last_failure.unwrap_or_else(|| FillFailure {
            digest: task.digest.clone(),
            not_found: true,
            message: format!("pull-through: no upstream to fetch {} from", task.digest),
            retry_after: None,
            rate_limited: false,
        });
        self.record_failure(&task.repo, &tried, &failure).await;
        let _ = task.progress.send(Progress::Failed(failure));
    }

    /// Fetches the blob from one upstream, spooling and storing it;
    /// `retry` after another upstream was tried.
    async fn fetch_from(
        &self,
        task: &FillTask,
        source: &BlobSource,
        retry: bool,
    ) -> std::result::Result<u64, SourceFailure> {
        let from_upstream = |e: UpstreamError| SourceFailure {
            served_verified: false,
            transient: e.is_transient(),
            reason: e.reason(),
            failure: FillFailure::from_upstream(&task.digest, &e),
        };
        let access = self
            .secrets
            .upstream_access(
                task.repo.namespace(),
                source.secret.as_deref(),
                &source.describe(),
                source.insecure,
            )
            .await
            .map_err(|e| {
                SourceFailure::local(
                    task,
                    "SecretUnusable",
                    format!(
                        "pull-through: the pull secret for {} is unusable: {e}",
                        source.describe()
                    ),
                )
            })?;
        let blob = self
            .upstream
            .blob(&source.registry, &source.repository, &task.digest, &access)
            .await
            .map_err(from_upstream)?;
        let size = blob.size;
        if retry {
            // A source tried after another starts over from the first
            // byte, in a spool of its own: readers may still map the old.
            let generation = task.fill.spool().generation + 1;
            let spool = self.new_spool(generation).map_err(|e| {
                SourceFailure::local(
                    task,
                    "SpoolFailed",
                    format!("pull-through: spooling the blob failed: {e}"),
                )
            })?;
            *task.fill.spool() = spool;
        }
        // Following the upload's file, the fill writes no spool of its own.
        let spools = !self.uploads.writes_local_files();
        let following = (!spools).then(|| {
            let generation = task.fill.spool().generation;
            follow_upload(&task.fill, generation)
        });
        let _ = task.progress.send(Progress::Receiving {
            received: 0,
            size,
            verified: false,
        });
        let host = source.registry.api_host().to_owned();

        let (body_tx, body_rx) = mpsc::channel::<std::result::Result<Bytes, String>>(8);
        // Verified before it is durable: readers get the last byte then,
        // not after the `fsync` and the commit.
        let store = self.uploads.store_verified_then(
            &task.repo,
            &task.digest,
            tokio_stream_of(body_rx),
            || {
                task.progress.send_modify(|progress| {
                    if let Progress::Receiving { verified, .. } = progress {
                        *verified = true;
                    }
                });
            },
            following,
        );
        let pump = async {
            // Unverified here: the upload hashes every byte as it stores
            // it, and a mismatch fails the store below.
            let mut upstream = blob.unverified();
            // Received pieces not yet in the spool: written as they are,
            // gathered, never copied into a buffer of their own.
            let mut pending: Vec<Bytes> = Vec::new();
            let mut pending_len = 0usize;
            let mut spooled = 0u64;
            let mut received = 0u64;
            let mut announced = 0u64;
            let mut upstream_error = None;
            while let Some(item) = upstream.next().await {
                match item {
                    Ok(chunk) => {
                        metrics::counter!("berth_pull_through_bytes_total", "host" => host.clone())
                            .increment(chunk.len() as u64);
                        if spools {
                            pending_len += chunk.len();
                            pending.push(chunk.clone());
                        }
                        received += chunk.len() as u64;
                        task.fill.spool().recent.push(chunk.clone());
                        if body_tx.send(Ok(chunk)).await.is_err() {
                            break;
                        }
                        if received - announced >= ADVANCE_STEP {
                            advance(&task.progress, received);
                            announced = received;
                        }
                        if pending_len >= SPOOL_WRITE {
                            spooled =
                                spool(&task.fill, std::mem::take(&mut pending), spooled).await?;
                            pending_len = 0;
                        }
                    }
                    Err(e) => {
                        let _ = body_tx.send(Err(e.to_string())).await;
                        upstream_error = Some(e);
                        break;
                    }
                }
            }
            drop(body_tx);
            if !pending.is_empty() {
                spooled = spool(&task.fill, pending, spooled).await?;
            }
            if !spools {
                // Every piece received is in the upload's file or, until
                // it is written there, among the recent pieces.
                spooled = received;
            }
            advance(&task.progress, spooled);
            Ok::<_, std::io::Error>((spooled, upstream_error))
        };
        let (pumped, stored) = tokio::join!(pump, store);
        let (spooled, upstream_error) = pumped.map_err(|e| {
            SourceFailure::local(
                task,
                "SpoolFailed",
                format!("pull-through: spooling the blob failed: {e}"),
            )
        })?;
        if let Some(e) = upstream_error {
            return Err(from_upstream(e));
        }
        let stored = stored.map_err(|e| {
            if let RegistryError::DigestInvalid(detail) = &e {
                return SourceFailure {
                    failure: FillFailure::unavailable(
                        &task.digest,
                        format!(
                            "pull-through: blob from upstream {} does not match its digest: {detail}",
                            source.describe()
                        ),
                        None,
                    ),
                    reason: "DigestMismatch",
                    transient: false,
                    served_verified: false,
                };
            }
            let mut failure = SourceFailure::local(
                task,
                "StoreFailed",
                format!(
                    "pull-through: storing the blob from {} failed: {e}",
                    source.describe()
                ),
            );
            failure.served_verified = matches!(
                *task.progress.borrow(),
                Progress::Receiving { verified: true, .. }
            ) && size.is_none_or(|size| size == spooled);
            failure
        })?;
        debug_assert_eq!(stored, spooled);
        let also =
            std::mem::take(&mut *task.fill.also_for.lock().unwrap_or_else(|p| p.into_inner()));
        for repo in also.iter().filter(|r| **r != task.repo) {
            if let Err(e) = self
                .registry
                .metadata()
                .mount_blob(repo, &task.digest)
                .await
            {
                tracing::warn!(repository = %repo, digest = %task.digest, error = %e, "linking a fetched blob into a repository that also asked for it");
            }
        }
        Ok(stored)
    }

    /// The log line and metrics of one upstream fetch.
    fn finished(
        &self,
        task: &FillTask,
        source: &BlobSource,
        outcome: std::result::Result<u64, &FillFailure>,
        started: Instant,
    ) {
        let host = source.registry.api_host().to_owned();
        let millis = started.elapsed().as_millis() as u64;
        let upstream = source.describe();
        match outcome {
            Ok(size) => {
                metrics::counter!("berth_pull_through_fetches_total", "host" => host, "outcome" => "stored")
                    .increment(1);
                tracing::info!(repository = %task.repo, digest = %task.digest, upstream = %upstream, size, millis, outcome = "stored", "pull-through fetch");
            }
            Err(failure) => {
                metrics::counter!("berth_pull_through_fetches_total", "host" => host, "outcome" => "failed")
                    .increment(1);
                tracing::warn!(repository = %task.repo, digest = %task.digest, upstream = %upstream, millis, outcome = "failed", error = %failure.message, "pull-through fetch");
            }
        }
    }

    /// The failure on the condition of each tag whose upstream was tried.
    async fn record_failure(
        &self,
        repo: &RepositoryName,
        tried: &[&BlobSource],
        failure: &FillFailure,
    ) {
        let reason = if failure.not_found {
            "NotFound"
        } else if failure.rate_limited {
            "RateLimited"
        } else {
            "UpstreamUnavailable"
        };
        for tag in tried.iter().filter_map(|s| s.tag.as_deref()) {
            let condition = condition(
                tag,
                PULL_THROUGH_CONDITION,
                false,
                reason,
                &failure.message,
                0,
            );
            if let Err(e) = self.streams.set_condition(repo, &condition).await {
                tracing::warn!(repository = %repo, tag, error = %e, "recording a pull-through failure");
            }
        }
    }
}

struct FillTask {
    repo: RepositoryName,
    digest: Digest,
    sources: Vec<BlobSource>,
    fill: Arc<Fill>,
    progress: watch::Sender<Progress>,
}

struct SourceFailure {
    failure: FillFailure,
    reason: &'static str,
    transient: bool,
    /// The whole blob was spooled and matched its digest before storing
    /// it failed: its readers were served all the same.
    served_verified: bool,
}

impl SourceFailure {
    /// A failure on berth's side (secret, spool, store), not the upstream's.
    fn local(task: &FillTask, reason: &'static str, message: String) -> SourceFailure {
        SourceFailure {
            failure: FillFailure::unavailable(&task.digest, message, None),
            reason,
            transient: false,
            served_verified: false,
        }
    }
}

/// Tells readers how much of the blob they can read (from memory or the
/// spool), keeping what else is known (its size, whether it was verified).
fn advance(progress: &watch::Sender<Progress>, readable: u64) {
    progress.send_modify(|progress| {
        if let Progress::Receiving { received, .. } = progress {
            *received = readable;
        }
    });
}

/// Appends `pieces` to the fill's spool, which holds `at` bytes; returns
/// the new length.
async fn spool(fill: &Fill, pieces: Vec<Bytes>, at: u64) -> std::io::Result<u64> {
    let Some(file) = fill.spool().file.clone() else {
        return Err(std::io::Error::other(
            "the fill has no spool file of its own",
        ));
    };
    let length: u64 = pieces.iter().map(|p| p.len() as u64).sum();
    // The spool's one writer appends in order, so the file's own position
    // is `at`: a gathering write needs no offset.
    tokio::task::spawn_blocking(move || append_gathered(&file, &pieces))
        .await
        .map_err(std::io::Error::other)??;
    let spooled = at + length;
    fill.spool().recent.spooled(spooled);
    Ok(spooled)
}

/// Writes `pieces` at the end of `file`, as few system calls as the kernel
/// takes (`writev`), without copying them together first.
fn append_gathered(mut file: &File, pieces: &[Bytes]) -> std::io::Result<()> {
    use std::io::{IoSlice, Write};
    let mut slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
    let mut slices = &mut slices[..];
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut slices, written),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn tokio_stream_of(
    mut receiver: mpsc::Receiver<std::result::Result<Bytes, String>>,
) -> impl Stream<Item = std::result::Result<Bytes, String>> + Send + Unpin {
    Box::pin(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)))
}

fn count_proxy(result: &'static str) {
    metrics::counter!("berth_pull_through_requests_total", "result" => result).increment(1);
}

/// A failed proxied manifest, for the puller.
fn proxy_failure(from: &str, failure: &ImportFailure) -> RegistryError {
    if failure.reason == "NotFound" {
        RegistryError::UpstreamManifestUnknown {
            message: format!("pull-through: {}", failure.message),
        }
    } else {
        RegistryError::UpstreamUnavailable {
            message: format!("pull-through of {from}: {}", failure.message),
            retry_after_secs: failure.retry_after.map(|d| d.as_secs().max(1)),
            rate_limited: failure.reason == "RateLimited",
        }
    }
}

fn stream_error(e: StreamError) -> RegistryError {
    match e {
        StreamError::Metadata(e) => RegistryError::Metadata(e),
        StreamError::Storage(e) => RegistryError::Storage(e),
        StreamError::Registry(e) => e,
        other => RegistryError::Internal(other.to_string()),
    }
}

/// The upstreams `stream`'s `Local` tags import from: first those of tags
/// whose current image is one of `holding` (the images needing the blob),
/// then the others; and, when there is none, the upstream of a `Source`
/// tag holding it (to say where the blob is pulled from instead).
fn sources_of(stream: &StoredStream, holding: &[&Digest]) -> (Vec<BlobSource>, Option<String>) {
    let current =
        |tag: &str| -> Option<Digest> { stream.history_of(tag).next().map(|r| r.digest.clone()) };
    let mut primary = Vec::new();
    let mut others = Vec::new();
    let mut source_only = None;
    for spec in &stream.spec_tags {
        let Some(from) = spec.from.as_ref().filter(|f| f.kind == DOCKER_IMAGE) else {
            continue;
        };
        let Ok(reference) = from.name.parse::<UpstreamReference>() else {
            continue;
        };
        let holds = current(&spec.name).is_some_and(|d| holding.contains(&&d));
        if spec.reference_policy != "Local" {
            if holds && source_only.is_none() {
                source_only = Some(reference.repository_path());
            }
            continue;
        }
        let source = BlobSource {
            tag: Some(spec.name.clone()),
            registry: reference.registry,
            repository: reference.repository,
            insecure: spec.import_insecure,
            secret: None,
        };
        if holds {
            primary.push(source);
        } else {
            others.push(source);
        }
    }
    if primary.is_empty() && source_only.is_some() {
        // Its image is pointed at the upstream, not served from here.
        return (Vec::new(), source_only);
    }
    let mut sources: Vec<BlobSource> = Vec::new();
    for source in primary.into_iter().chain(others) {
        let duplicate = sources
            .iter()
            .any(|s| s.registry == source.registry && s.repository == source.repository);
        if !duplicate {
            sources.push(source);
        }
    }
    (sources, source_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_backoff_doubles_to_its_cap_and_honours_retry_after() {
        assert_eq!(host_backoff(1, None), Duration::from_secs(1));
        assert_eq!(host_backoff(2, None), Duration::from_secs(2));
        assert_eq!(host_backoff(4, None), Duration::from_secs(8));
        assert_eq!(host_backoff(20, None), MAX_HOST_BACKOFF);
        assert_eq!(
            host_backoff(1, Some(Duration::from_secs(90))),
            Duration::from_secs(90)
        );
        assert_eq!(
            host_backoff(3, Some(Duration::from_secs(2))),
            Duration::from_secs(4)
        );
    }

    #[test]
    fn recent_pieces_keep_what_is_not_spooled_and_a_window_more() {
        let mut recent = RecentPieces::default();
        let piece = |n: u8| Bytes::from(vec![n; (RECENT_BYTES / 4) as usize]);
        for n in 0..8 {
            recent.push(piece(n));
        }
        let quarter = RECENT_BYTES / 4;
        assert_eq!(recent.end(), 8 * quarter);
        // Nothing spooled: nothing may go.
        recent.spooled(0);
        assert_eq!(recent.start, 0);
        // Spooled up to inside the third piece: the first two go, but the
        // window keeps RECENT_BYTES at least.
        recent.spooled(2 * quarter + 1);
        assert_eq!(recent.start, 2 * quarter);
        recent.spooled(8 * quarter);
        assert_eq!(recent.start, 4 * quarter);
        assert_eq!(recent.end(), 8 * quarter);

        // Slices cut at the piece's end and at the limit, without a copy.
        assert_eq!(recent.slice(4 * quarter - 1, 5 * quarter), None);
        let sliced = recent.slice(4 * quarter + 10, 6 * quarter).unwrap();
        assert_eq!(sliced.len() as u64, quarter - 10);
        assert!(sliced.iter().all(|&b| b == 4));
        let sliced = recent.slice(7 * quarter, 7 * quarter + 5).unwrap();
        assert_eq!(&sliced[..], &[7u8; 5]);
        assert_eq!(recent.slice(8 * quarter, 9 * quarter), None);
    }

    #[test]
    fn gathered_appends_keep_every_byte_in_order() {
        // More pieces than one `writev` takes (IOV_MAX is 1024), empty ones
        // among them, appended after what the file already holds.
        let pieces: Vec<Bytes> = (0..2500u32)
            .map(|i| Bytes::from(vec![(i % 251) as u8; (i % 7) as usize]))
            .collect();
        let file = tempfile::tempfile().unwrap();
        append_gathered(&file, &[Bytes::from_static(b"head")]).unwrap();
        append_gathered(&file, &pieces).unwrap();
        let mut expected = b"head".to_vec();
        for piece in &pieces {
            expected.extend_from_slice(piece);
        }
        assert_eq!(file.metadata().unwrap().len(), expected.len() as u64);
        let mut read_back = vec![0u8; expected.len()];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut read_back, 0).unwrap();
        assert_eq!(read_back, expected);
    }
}
