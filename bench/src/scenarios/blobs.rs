//! Large blob push (monolithic and chunked) and pull (whole and ranged).

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use aws_lc_rs::digest;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, HeaderValue, RANGE};
use reqwest::{Method, StatusCode};

use super::{Ctx, MIB, measure_on_setup, run_rounds, setup_each};
use crate::data::{self, BlobSpec, sha256_string};
use crate::procfs::{self, RssSampler};
use crate::registry::{
    Payload, Registry, check_digest_header, check_reported_digest, content_length, header_text,
};
use crate::report::{Sample, Section};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PushMode {
    Monolithic,
    Chunked,
}

/// The blob the pull scenarios read, pushed once per target.
#[derive(Clone)]
pub struct PullBlob {
    pub repo: String,
    pub spec: BlobSpec,
    pub digest: String,
}

/// Server CPU seconds and peak RSS while `work` runs, when a PID is known.
struct ServerWatch {
    pid: Option<u32>,
    cpu_before: Option<f64>,
    sampler: Option<RssSampler>,
}

impl ServerWatch {
    fn start(ctx: &Ctx, target: usize, sample_memory: bool) -> Result<ServerWatch> {
        let pid = ctx.targets[target].spec.pid;
        let cpu_before = pid.map(procfs::cpu_seconds).transpose()?;
        let sampler = if sample_memory {
            ctx.memory_pid(target).map(RssSampler::start)
        } else {
            None
        };
        Ok(ServerWatch {
            pid,
            cpu_before,
            sampler,
        })
    }

    /// Stops sampling; must be called even if the measured work failed, so
    /// the sampler thread does not outlive the scenario.
    fn finish(self, samples: &mut Vec<Sample>) -> Result<()> {
        if let Some(sampler) = self.sampler {
            let peak = sampler.finish()?;
            samples.push(Sample::lower(
                "server peak RSS",
                "MiB",
                peak as f64 / 1024.0,
            ));
        }
        if let (Some(pid), Some(before)) = (self.pid, self.cpu_before) {
            let used = procfs::cpu_seconds(pid)? - before;
            samples.push(Sample::lower("server CPU time", "s", used));
        }
        Ok(())
    }
}

pub async fn push(ctx: &Ctx, mode: PushMode) -> Section {
    let size = ctx.cli.blob_size;
    let chunk = ctx.cli.chunk_size;
    let (id, title, description) = match mode {
        PushMode::Monolithic => (
            "push-monolithic",
            "blob push in one request",
            format!(
                "`POST /v2/<repo>/blobs/uploads/` then one `PUT <location>?digest=` carrying \
                 the whole {size} blob, streamed from a PRNG (never held in memory); the digest \
                 is computed before timing. Every round pushes a new blob to a new repository. \
                 Before each push (untimed) the machine's dirty pages are written out with \
                 `sync(2)` and, when the benchmark runs as root, the clean page cache is \
                 dropped (`/proc/sys/vm/drop_caches`), so that no target pays for writing out \
                 the previous one's blob or for page cache it filled. \
                 Afterwards `HEAD` on the blob must report its size. Peak RSS is VmRSS sampled \
                 every 10 ms during the push."
            ),
        ),
        PushMode::Chunked => (
            "push-chunked",
            "chunked blob push",
            format!(
                "The same {size} blob as `PATCH` requests of {chunk} (`Content-Range`, \
                 `Content-Type: application/octet-stream`), following `Location` each time \
                 and checking the returned `Range`, then `PUT <location>?digest=` with no body."
            ),
        ),
    };
    let mut section = Section::new(id, title, description, ctx.columns());
    run_rounds(
        ctx,
        &mut section,
        async |round| {
            // A blob of each target's own: targets sharing storage
            // (replicas) would otherwise find it committed by the target
            // before them, and skip making it durable.
            let mut blobs = Vec::with_capacity(ctx.targets.len());
            for t in 0..ctx.targets.len() {
                let spec = BlobSpec {
                    seed: data::seed(ctx.run_seed, id, round, t),
                    size: size.0,
                };
                let digest = tokio::task::spawn_blocking(move || spec.digest()).await?;
                blobs.push((spec, digest));
            }
            Ok(blobs)
        },
        async |t, round, blobs| {
            let (spec, digest) = &blobs[t];
            let registry = &ctx.targets[t];
            let repo = ctx.repo(&format!("{id}-{}", round + 1));
            tokio::task::spawn_blocking(settle_page_cache).await?;
            let watch = ServerWatch::start(ctx, t, true)?;
            let started = Instant::now();
            let pushed = match mode {
                PushMode::Monolithic => push_monolithic(registry, &repo, spec, digest).await,
                PushMode::Chunked => push_chunked(registry, &repo, spec, digest, chunk.0).await,
            };
            let secs = started.elapsed().as_secs_f64();
            let mut samples = vec![Sample::higher(
                "throughput",
                "MiB/s",
                spec.size as f64 / MIB / secs,
            )];
            // Stop the watch first, but report a failed push before a failed watch.
            let watched = watch.finish(&mut samples);
            pushed?;
            watched?;
            verify_blob_size(registry, &repo, digest, spec.size).await?;
            Ok(samples)
        },
    )
    .await;
    section
}

/// Puts every push on the same footing:
/// - writes every dirty page of the machine to disk (`sync(2)`): a registry
///   that does not fsync leaves its blob dirty in the page cache, and the
///   next target's push would pay for writing it out;
/// - drops the clean page cache, when allowed (root): on a virtual machine,
///   the first write to guest memory the host has never backed is several
///   times slower, so a push that fills the cache with fresh memory is
///   slowed by what earlier pushes left there (measured here: the same
///   1 GiB push fell from 850 to 320 MiB/s as the cache filled).
fn settle_page_cache() {
    // SAFETY: sync has no preconditions and cannot fail.
    unsafe { libc::sync() }
    // Not being allowed to is fine: the push is then measured as it comes.
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "1\n");
}

pub async fn push_monolithic(
    registry: &Registry,
    repo: &str,
    spec: &BlobSpec,
    digest: &str,
) -> Result<()> {
    let location = registry.start_upload(repo).await?;
    let mut headers = content_length(spec.size);
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let body = reqwest::Body::wrap_stream(spec.stream(0, spec.size));
    registry
        .finish_upload(location, digest, headers, Payload::Stream(body))
        .await
}

async fn push_chunked(
    registry: &Registry,
    repo: &str,
    spec: &BlobSpec,
    digest: &str,
    chunk: u64,
) -> Result<()> {
    let mut location = registry.start_upload(repo).await?;
    let mut offset = 0;
    while offset < spec.size {
        let len = chunk.min(spec.size - offset);
        let end = offset + len - 1;
        let mut headers = content_length(len);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(
            CONTENT_RANGE,
            HeaderValue::from_str(&format!("{offset}-{end}"))?,
        );
        let body = reqwest::Body::wrap_stream(spec.stream(offset, len));
        let response = registry
            .call(
                Method::PATCH,
                location.clone(),
                headers,
                Payload::Stream(body),
                &[StatusCode::ACCEPTED],
            )
            .await
            .with_context(|| format!("PATCH of bytes {offset}-{end}"))?;
        // The registry must acknowledge everything received so far.
        let range = header_text(response.headers(), RANGE).unwrap_or("<none>");
        ensure!(
            range == format!("0-{end}") || range == format!("bytes=0-{end}"),
            "after PATCH of bytes {offset}-{end} the registry reported Range {range}"
        );
        location = registry.location(&response)?;
        offset += len;
    }
    registry
        .finish_upload(location, digest, content_length(0), Payload::Empty)
        .await
}

async fn verify_blob_size(registry: &Registry, repo: &str, digest: &str, size: u64) -> Result<()> {
    let url = registry.url(&format!("v2/{repo}/blobs/{digest}"))?;
    let response = registry
        .call_bare(Method::HEAD, url, &[StatusCode::OK])
        .await
        .context("HEAD of the pushed blob")?;
    let length = header_u64(response.headers(), CONTENT_LENGTH.as_str());
    ensure!(
        length == Some(size),
        "HEAD of pushed blob reports Content-Length {length:?}, expected {size}"
    );
    check_digest_header(&response, digest)
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.parse().ok()
}

/// Pushes (untimed) the blob the pull scenarios read, once per target, and
/// checks a full download against its digest.
pub async fn pull_fixture(ctx: &Ctx, t: usize) -> Result<PullBlob> {
    if let Some(blob) = ctx.fixtures.pull.get(t) {
        return Ok(blob);
    }
    let spec = BlobSpec {
        seed: data::seed(ctx.run_seed, "pull", 0, 0),
        size: ctx.cli.blob_size.0,
    };
    // Shared across targets: compute the digest once.
    let digest = match ctx.fixtures.pull.any().map(|other| other.digest) {
        Some(digest) => digest,
        None => tokio::task::spawn_blocking(move || spec.digest()).await?,
    };
    let blob = PullBlob {
        repo: ctx.repo("pull"),
        spec,
        digest,
    };
    let registry = &ctx.targets[t];
    eprintln!(
        "[pull] pushing the {} pull fixture to {}",
        ctx.cli.blob_size,
        registry.name()
    );
    push_monolithic(registry, &blob.repo, &blob.spec, &blob.digest).await?;
    let (bytes, hashed) = get_blob(registry, &blob, true).await?;
    ensure!(
        bytes == blob.spec.size,
        "pulled {bytes} bytes, expected {}",
        blob.spec.size
    );
    ensure!(
        hashed.as_deref() == Some(blob.digest.as_str()),
        "pulled blob has digest {hashed:?}, expected {}",
        blob.digest
    );
    ctx.fixtures.pull.insert(t, blob.clone());
    Ok(blob)
}

/// GETs the whole blob; returns the byte count and, if asked, its digest.
/// Plain-HTTP targets are read by the bare client of `download`, which costs
/// the client least; HTTPS targets through reqwest.
async fn get_blob(
    registry: &Registry,
    blob: &PullBlob,
    hash: bool,
) -> Result<(u64, Option<String>)> {
    let url = registry.url(&format!("v2/{}/blobs/{}", blob.repo, blob.digest))?;
    if url.scheme() == "http" {
        let answer = registry.download(url, hash).await?;
        ensure!(
            answer.status == StatusCode::OK.as_u16(),
            "GET of the blob answered {}",
            answer.status
        );
        check_blob_headers(&answer.headers, blob)?;
        return Ok((answer.bytes, answer.digest));
    }
    let mut response = registry
        .call_bare(Method::GET, url, &[StatusCode::OK])
        .await?;
    check_blob_headers(response.headers(), blob)?;
    let mut ctx = hash.then(|| digest::Context::new(&digest::SHA256));
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.context("reading blob body")? {
        bytes += chunk.len() as u64;
        if let Some(ctx) = ctx.as_mut() {
            ctx.update(&chunk);
        }
    }
    Ok((bytes, ctx.map(|c| sha256_string(c.finish()))))
}

fn check_blob_headers(headers: &HeaderMap, blob: &PullBlob) -> Result<()> {
    if let Some(length) = header_u64(headers, CONTENT_LENGTH.as_str()) {
        ensure!(
            length == blob.spec.size,
            "Content-Length {length}, expected {}",
            blob.spec.size
        );
    }
    check_reported_digest(headers, &blob.digest)
}

/// Reads the blob as sequential Range requests; returns the digest if asked.
async fn get_ranges(
    registry: &Registry,
    blob: &PullBlob,
    piece: u64,
    hash: bool,
) -> Result<Option<String>> {
    let url = registry.url(&format!("v2/{}/blobs/{}", blob.repo, blob.digest))?;
    let size = blob.spec.size;
    let mut ctx = hash.then(|| digest::Context::new(&digest::SHA256));
    let mut offset = 0;
    while offset < size {
        let end = (offset + piece).min(size) - 1;
        let mut headers = HeaderMap::new();
        headers.insert(
            RANGE,
            HeaderValue::from_str(&format!("bytes={offset}-{end}"))?,
        );
        let mut response = registry
            .call(
                Method::GET,
                url.clone(),
                headers,
                Payload::Empty,
                &[StatusCode::PARTIAL_CONTENT],
            )
            .await
            .with_context(|| format!("GET of bytes {offset}-{end}"))?;
        let content_range = header_text(response.headers(), CONTENT_RANGE)
            .unwrap_or("<none>")
            .to_owned();
        ensure!(
            content_range == format!("bytes {offset}-{end}/{size}"),
            "asked for bytes {offset}-{end}, got Content-Range {content_range}"
        );
        let mut received = 0u64;
        while let Some(chunk) = response.chunk().await.context("reading range body")? {
            received += chunk.len() as u64;
            if let Some(ctx) = ctx.as_mut() {
                ctx.update(&chunk);
            }
        }
        ensure!(
            received == end - offset + 1,
            "range {offset}-{end} returned {received} bytes"
        );
        offset = end + 1;
    }
    Ok(ctx.map(|c| sha256_string(c.finish())))
}

pub async fn pull(ctx: &Ctx, ranged: bool) -> Section {
    let size = ctx.cli.blob_size;
    let piece = ctx.cli.chunk_size.0;
    let (id, title, description) = if ranged {
        (
            "pull-range",
            "blob pull in Range pieces",
            format!(
                "The {size} blob read with sequential `Range: bytes=a-b` requests of {} on \
                 keep-alive connections; each answer must be 206 with the exact \
                 `Content-Range` and length. Before timing, one ranged pass is hashed and \
                 must reproduce the blob's digest.",
                ctx.cli.chunk_size
            ),
        )
    } else {
        (
            "pull",
            "blob pull",
            format!(
                "{} `GET`s in a row (their aggregate is the round's figure) of a {size} blob pushed \
                 (untimed) at the start of the scenario; the body \
                 is read and discarded by a bare HTTP/1.1 client (one connection, 4 MiB socket \
                 reads; reqwest for HTTPS targets). Status, `Content-Length`, `Docker-Content-Digest` and \
                 the byte count are checked on every pull; the content itself is checked \
                 against the digest by a separate, untimed, hashed download (hashing in the \
                 timed loop would add client CPU on a machine where client and server share \
                 the cores).",
                ctx.cli.pull_repeat
            ),
        )
    };
    let mut section = Section::new(id, title, description, ctx.columns());
    let fixtures = setup_each(ctx, &mut section, async |t| {
        let blob = pull_fixture(ctx, t).await?;
        if ranged {
            let hashed = get_ranges(&ctx.targets[t], &blob, piece, true).await?;
            ensure!(
                hashed.as_deref() == Some(blob.digest.as_str()),
                "ranged read has digest {hashed:?}, expected {}",
                blob.digest
            );
        }
        Ok(blob)
    })
    .await;
    measure_on_setup(
        ctx,
        &mut section,
        &fixtures,
        "no pull fixture",
        async |t, registry, blob| {
            let watch = ServerWatch::start(ctx, t, false)?;
            let pulls = if ranged { 1 } else { ctx.cli.pull_repeat };
            let started = Instant::now();
            let mut result = Ok(());
            for _ in 0..pulls {
                let pulled = if ranged {
                    get_ranges(registry, blob, piece, false)
                        .await
                        .map(|_| blob.spec.size)
                } else {
                    get_blob(registry, blob, false)
                        .await
                        .map(|(bytes, _)| bytes)
                };
                result = pulled.and_then(|bytes| {
                    ensure!(
                        bytes == blob.spec.size,
                        "pulled {bytes} bytes, expected {}",
                        blob.spec.size
                    );
                    Ok(())
                });
                if result.is_err() {
                    break;
                }
            }
            let secs = started.elapsed().as_secs_f64();
            let mut samples = vec![Sample::higher(
                "throughput",
                "MiB/s",
                (blob.spec.size * pulls as u64) as f64 / MIB / secs,
            )];
            let watched = watch.finish(&mut samples);
            result?;
            watched?;
            Ok(samples)
        },
    )
    .await;
    section
}
