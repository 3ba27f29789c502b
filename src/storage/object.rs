//! The object-store backends (S3, Azure Blob, GCS, Swift), through OpenDAL.
//!
//! Each part of an upload is an object of its own,
//! `uploads/<id>/parts/<n>-<token>`, written whole through one OpenDAL
//! writer whose buffer is the configured part size (so a part of any length
//! holds at most that much in memory). The token is drawn anew for every
//! write: a replica that wrote a part and lost the race to record it (or
//! was killed first) cannot overwrite or delete a part another replica
//! recorded under the same number. Which parts count is for the metadata
//! upload row to say; objects it does not name are ignored, and removed
//! with the upload.
//!
//! Committing composes the recorded parts into `blobs/<alg>/<xx>/<hex>`:
//! one part is copied by the store itself (`CopyObject`); several are
//! written through one multipart writer, each part's range handed over with
//! [`opendal::Writer::copy_from`], which the S3 backend turns into
//! `UploadPartCopy` (the store copies, berth moves no byte) for whole
//! part-sized pieces, and streams through berth where it cannot (the
//! pieces that straddle two parts, and stores without it, such as Azure).
//! The blob's object appears whole when the multipart write completes.

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind, FuturesBytesStream, Operator};

use super::settings::{AzureStorage, GcsStorage, S3Storage, StorageTimeouts, SwiftStorage};
use super::{Result, StorageError, UploadPart, paths};
use crate::oci::digest::Digest;

/// Size of the pieces a blob is read in. Large enough that per-read overhead
/// vanishes, small enough that a slow reader does not pin much memory.
const READ_CHUNK: usize = 4 << 20;

/// The most one `Writer::copy_from` (one `UploadPartCopy`, one
/// `CopyObject`) may copy.
const MAX_COPY: u64 = 5 << 30;

/// Part size for the backends whose configuration has no `chunkSizeMiB`.
const DEFAULT_CHUNK: usize = (super::settings::DEFAULT_CHUNK_SIZE_MIB as usize) << 20;

#[derive(Debug)]
pub(super) struct ObjectStore {
    /// Every request, each bounded by `storage.timeouts.request` and retried.
    op: Operator,
    /// The same store for what a commit asks of it: the copies the store
    /// makes (and the writes composing a blob), bounded by
    /// `storage.timeouts.copy` each, and retried.
    commit: Operator,
    /// The same store for readiness checks: one attempt, bounded by
    /// `storage.timeouts.request`, so that `/readyz` answers promptly.
    probe: Operator,
    /// Bytes per part of a multipart write: what a writer buffers.
    chunk: usize,
    /// `s3 bucket at endpoint`, for logs and errors.
    description: String,
}

/// How store calls are retried: throttling (503 SlowDown, 429) and other
/// temporary failures are tried again after 0.2, 0.4, 0.8, 1.6, 3.2 s
/// (each plus up to 0.2 s of jitter), about 6 s in all; only then does the
/// error reach the request, which answers 503.
fn retry_layer() -> RetryLayer<impl opendal::layers::RetryInterceptor> {
    RetryLayer::new()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(4))
        .with_factor(2.0)
        .with_max_times(5)
        .with_jitter()
        .with_notify(|event: opendal::layers::RetryEvent<'_>| {
            metrics::counter!("berth_storage_retries_total").increment(1);
            tracing::warn!(
                operation = ?event.op,
                attempt = event.attempt,
                after_ms = event.retry_after.as_millis() as u64,
                error = %event.err,
                "the object store refused a request or did not answer in time; trying again"
            );
        })
}

/// Bounds each store call: `control` a call with no body to move (HEAD,
/// DELETE, signing), `io` each step of one that moves data (opening a read
/// and every piece read, every write, copy and completion). Put under the
/// retry layer, so that each attempt has its own bound and a call that
/// timed out is retried (a stalled connection is replaced by a new one);
/// above it, a timeout could drop a retry half-way through a write.
fn timeout_layer(control: Duration, io: Duration) -> TimeoutLayer {
    TimeoutLayer::new()
        .with_timeout(control)
        .with_io_timeout(io)
}

fn root_of(root: &Option<String>) -> String {
    match root.as_deref().map(|r| r.trim_matches('/')) {
        None | Some("") => "/".to_owned(),
        Some(root) => format!("/{root}/"),
    }
}

impl ObjectStore {
    /// The store `builder` configures, writing in parts of `chunk` bytes.
    fn new(
        builder: impl opendal::Builder,
        chunk: usize,
        timeouts: &StorageTimeouts,
        description: String,
    ) -> Result<Self> {
        // The HTTP client OpenDAL's services send their requests with.
        opendal::install_default();
        let base = Operator::new(builder)?;
        let request = timeout_layer(timeouts.request, timeouts.request);
        Ok(ObjectStore {
            op: base.clone().layer(request.clone()).layer(retry_layer()),
            commit: base
                .clone()
                .layer(timeout_layer(timeouts.request, timeouts.copy))
                .layer(retry_layer()),
            probe: base.layer(request),
            chunk,
            description,
        })
    }

    pub(super) fn s3(config: &S3Storage, timeouts: &StorageTimeouts) -> Result<Self> {
        let region = config
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned());
        let mut builder = opendal::services::S3::default()
            .bucket(&config.bucket)
            .region(&region)
            .root(&root_of(&config.root_directory));
        if let Some(endpoint) = &config.region_endpoint {
            builder = builder.endpoint(endpoint.trim_end_matches('/'));
        }
        if !config.path_style() {
            builder = builder.enable_virtual_host_style();
        }
        if let (Some(access), Some(secret)) = (&config.access_key, &config.secret_key) {
            builder = builder.access_key_id(access).secret_access_key(secret);
        }
        if config.encrypt {
            builder = builder.server_side_encryption_with_s3_key();
        }
        let description = format!(
            "s3 bucket {} at {}",
            config.bucket,
            config.region_endpoint.as_deref().unwrap_or("AWS")
        );
        Self::new(builder, config.chunk_size(), timeouts, description)
    }

    pub(super) fn azure(config: &AzureStorage, timeouts: &StorageTimeouts) -> Result<Self> {
        let endpoint = config.endpoint();
        let mut builder = opendal::services::Azblob::default()
            .container(&config.container)
            .account_name(&config.account_name)
            .endpoint(&endpoint)
            .root(&root_of(&config.root_directory));
        if let Some(key) = &config.account_key {
            builder = builder.account_key(key.trim());
        }
        let description = format!("azure container {} at {endpoint}", config.container);
        Self::new(builder, DEFAULT_CHUNK, timeouts, description)
    }

    pub(super) fn gcs(config: &GcsStorage, timeouts: &StorageTimeouts) -> Result<Self> {
        let mut builder = opendal::services::Gcs::default()
            .bucket(&config.bucket)
            .root(&root_of(&config.root_directory));
        if let Some(keyfile) = &config.keyfile {
            builder = builder.credential_path(&keyfile.to_string_lossy());
        }
        let description = format!("gcs bucket {}", config.bucket);
        Self::new(builder, DEFAULT_CHUNK, timeouts, description)
    }

    pub(super) fn swift(config: &SwiftStorage, timeouts: &StorageTimeouts) -> Result<Self> {
        let mut builder = opendal::services::Swift::default()
            .endpoint(config.storage_url.trim_end_matches('/'))
            .container(&config.container)
            .token(&config.auth_token)
            .root(&root_of(&config.root_directory));
        if let Some(key) = &config.temp_url_key {
            builder = builder.temp_url_key(key);
        }
        let description = format!(
            "swift container {} at {}",
            config.container, config.storage_url
        );
        Self::new(builder, DEFAULT_CHUNK, timeouts, description)
    }

    pub(super) fn description(&self) -> &str {
        &self.description
    }

    pub(super) async fn check(&self) -> Result<()> {
        Ok(self.probe.check().await?)
    }

    async fn size_of(&self, path: &str) -> Result<Option<u64>> {
        match self.op.stat(path).await {
            Ok(meta) => Ok(Some(meta.content_length())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        self.size_of(&paths::blob(digest)).await
    }

    async fn read_range(&self, path: &str, range: Range<u64>) -> Result<FuturesBytesStream> {
        let reader = self
            .op
            .reader_with(path)
            .chunk(READ_CHUNK)
            .concurrent(2)
            .await?;
        Ok(reader.into_bytes_stream(range).await?)
    }

    /// The first piece is read before this returns, so that a store that
    /// cannot be read is an error the client is told of, not a response
    /// cut short after its headers.
    pub(super) async fn read_blob(
        &self,
        digest: &Digest,
        range: Range<u64>,
    ) -> Result<futures::stream::BoxStream<'static, std::io::Result<Bytes>>> {
        let mut stream = self.read_range(&paths::blob(digest), range).await?;
        let first = match stream.next().await {
            None => return Ok(futures::stream::empty().boxed()),
            Some(Ok(first)) => first,
            Some(Err(e)) => return Err(store_error(e)),
        };
        Ok(futures::stream::once(async move { Ok(first) })
            .chain(stream)
            .boxed())
    }

    pub(super) async fn delete_blob(&self, digest: &Digest) -> Result<()> {
        Ok(self.op.delete(&paths::blob(digest)).await?)
    }

    pub(super) fn deletes_in_batches(&self) -> bool {
        self.op
            .info()
            .capability()
            .delete_max_size
            .is_some_and(|max| max > 1)
    }

    pub(super) async fn delete_blobs(&self, digests: &[Digest]) -> Result<()> {
        Ok(self.op.delete_iter(digests.iter().map(paths::blob)).await?)
    }

    /// A URL that reads the blob without credentials for `ttl`, where the
    /// store can sign one and the request needs no header a redirected
    /// client would not send.
    pub(super) async fn presign_read(
        &self,
        digest: &Digest,
        ttl: Duration,
    ) -> Result<Option<url::Url>> {
        if !self.op.info().capability().presign_read {
            return Ok(None);
        }
        let signed = self.op.presign_read(&paths::blob(digest), ttl).await?;
        if signed
            .header()
            .keys()
            .any(|name| name != http::header::HOST)
        {
            return Ok(None);
        }
        let url = url::Url::parse(&signed.uri().to_string()).map_err(|e| {
            StorageError::from(opendal::Error::new(
                ErrorKind::Unexpected,
                format!("the store signed an unusable URL: {e}"),
            ))
        })?;
        Ok(Some(url))
    }

    /// A writer for part `number` of an upload, under a fresh token.
    pub(super) async fn write_part(
        &self,
        upload_id: &str,
        number: u32,
    ) -> Result<ObjectPartWriter> {
        let token = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let key = paths::upload_part(upload_id, number, &token);
        let writer = self.op.writer_with(&key).chunk(self.chunk).await?;
        Ok(ObjectPartWriter {
            writer,
            number,
            token,
            written: 0,
        })
    }

    /// The upload's recorded parts, one after the other.
    pub(super) async fn read_upload(
        &self,
        upload_id: &str,
        parts: &[UploadPart],
    ) -> Result<futures::stream::BoxStream<'static, std::io::Result<Bytes>>> {
        let mut streams = Vec::with_capacity(parts.len());
        for part in parts {
            let key = paths::upload_part(upload_id, part.number, &part.token);
            streams.push(self.read_range(&key, 0..part.size).await?);
        }
        Ok(futures::stream::iter(streams).flatten().boxed())
    }

    pub(super) async fn commit_upload(
        &self,
        upload_id: &str,
        parts: &[UploadPart],
        digest: &Digest,
    ) -> Result<()> {
        let blob = paths::blob(digest);
        if self.size_of(&blob).await?.is_none() {
            let keys: Vec<(String, u64)> = parts
                .iter()
                .map(|p| (paths::upload_part(upload_id, p.number, &p.token), p.size))
                .collect();
            match keys.as_slice() {
                [] => {
                    self.op.write(&blob, Bytes::new()).await?;
                }
                [(key, _)] => {
                    self.commit.copy(key, &blob).await?;
                }
                many => {
                    let mut writer = self.commit.writer_with(&blob).chunk(self.chunk).await?;
                    match copy_parts(&mut writer, many, self.chunk as u64).await {
                        Ok(()) => {
                            writer.close().await?;
                        }
                        Err(e) => {
                            let _ = writer.abort().await;
                            return Err(e);
                        }
                    }
                }
            }
        }
        // The blob is whole; what is left of the upload is only clutter,
        // which the stale-upload job removes if this fails.
        if let Err(e) = self.delete_upload(upload_id).await {
            tracing::warn!(upload = upload_id, error = %e, "removing a committed upload's parts");
        }
        Ok(())
    }

    pub(super) async fn delete_upload(&self, upload_id: &str) -> Result<()> {
        Ok(self
            .op
            .delete_with(&paths::upload_dir(upload_id))
            .recursive(true)
            .await?)
    }

    /// Listed object by object: a store may keep a "directory" whose
    /// objects are all gone (SeaweedFS lists it as a common prefix).
    pub(super) async fn list_upload_ids(&self) -> Result<Vec<String>> {
        let entries = match self.op.lister_with(paths::UPLOADS).recursive(true).await {
            Ok(lister) => lister.try_collect::<Vec<_>>().await?,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut ids: Vec<String> = entries
            .iter()
            .filter(|e| e.metadata().is_file())
            .filter_map(|e| {
                let rest = e.path().strip_prefix(paths::UPLOADS)?;
                Some(rest.split('/').next()?.to_owned())
            })
            .filter(|id| !id.is_empty())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

/// The OpenDAL error an `io::Error` of a byte stream carries.
fn store_error(e: std::io::Error) -> StorageError {
    match e.downcast::<opendal::Error>() {
        Ok(e) => StorageError::from(e),
        Err(e) => StorageError::from(
            opendal::Error::new(ErrorKind::Unexpected, "reading from the store").set_source(e),
        ),
    }
}

/// Hands each part's bytes to `writer` in order, in ranges the store can
/// copy in one request.
///
/// A range that starts in the middle of one of the writer's parts is cut
/// in two: first the bytes that complete that part (streamed), then the
/// rest in its own call. OpenDAL 0.59's `Writer::copy_from`, given one
/// range that both completes a buffered part and covers whole parts after
/// it, sends the store's copies of those whole parts ahead of the buffered
/// part it has just completed, putting them out of order; a call that
/// starts on a part boundary first sends what it has buffered.
async fn copy_parts(
    writer: &mut opendal::Writer,
    parts: &[(String, u64)],
    chunk: u64,
) -> Result<()> {
    // Whole parts per call, within the store's limit for one copy.
    let most = (MAX_COPY / chunk).max(1) * chunk;
    let mut written: u64 = 0;
    for (key, size) in parts {
        let mut offset = 0;
        while offset < *size {
            let filled = written % chunk;
            let end = if filled == 0 {
                (offset + most).min(*size)
            } else {
                (offset + chunk - filled).min(*size)
            };
            writer.copy_from(key, offset..end).await?;
            written += end - offset;
            offset = end;
        }
    }
    Ok(())
}

/// A part being written to its own object.
pub(super) struct ObjectPartWriter {
    writer: opendal::Writer,
    number: u32,
    token: String,
    written: u64,
}

impl ObjectPartWriter {
    pub(super) async fn write(&mut self, bytes: Bytes) -> Result<()> {
        self.written += bytes.len() as u64;
        Ok(self.writer.write(bytes).await?)
    }

    /// The part is stored whole (and durable) when this returns.
    pub(super) async fn close(mut self) -> Result<UploadPart> {
        self.writer.close().await?;
        Ok(UploadPart {
            number: self.number,
            token: self.token,
            size: self.written,
        })
    }

    /// Best effort: what a failed abort leaves is removed with the upload.
    pub(super) async fn abort(mut self) {
        let _ = self.writer.abort().await;
    }
}
