//! Small reads one after another: small blobs, and small `Range`s of a large
//! blob, where the time to the first byte is all there is to measure.
//!
//! These are what a pull of a small image, a signature or an SBOM costs,
//! and what random access into a large blob (lazy pulling) costs. A
//! server that delays small responses (Nagle's algorithm meeting delayed
//! ACKs: 40 ms a response) shows here as milliseconds where there should be
//! a fraction of one.

use std::time::Instant;

use anyhow::{Context, Result, anyhow, ensure};
use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::{Method, StatusCode};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_RANGE, HeaderName, HeaderValue, RANGE};

use super::blobs::{PullBlob, pull_fixture};
use super::{Ctx, measure_on_setup, run_rounds, setup_each};
use crate::auth::scope_for_path;
use crate::data::{self, BlobSpec, GEN_CHUNK, Prng, sha256_of};
use crate::load::{self, KeepAlive, Response};
use crate::procfs;
use crate::registry::{Registry, header_text};
use crate::report::{Sample, Section};

/// The small blob sizes, in bytes, with their labels: a config or a
/// signature, a page, a small layer or SBOM, and the largest size the
/// delayed-response defect was seen at.
const SIZES: [(usize, &str); 4] = [
    (1536, "1.5 KiB"),
    (4 << 10, "4 KiB"),
    (20 << 10, "20 KiB"),
    (64 << 10, "64 KiB"),
];

/// Distinct blobs of each size, read in turn.
const BLOBS_PER_SIZE: usize = 4;

/// Bytes in each range of small-ranges.
const RANGE_BYTES: u64 = 4096;

/// The small blobs pushed to one target.
struct SmallBlobs {
    repo: String,
    /// Per size (in `SIZES` order): the blobs' digests and contents.
    blobs: Vec<Vec<(String, Bytes)>>,
}

fn small_blob_contents(ctx: &Ctx) -> Vec<Vec<(String, Bytes)>> {
    SIZES
        .iter()
        .enumerate()
        .map(|(s, (size, _))| {
            (0..BLOBS_PER_SIZE)
                .map(|i| {
                    let content =
                        Prng::new(data::seed(ctx.run_seed, "small-blobs", s, i)).bytes(*size);
                    (sha256_of(&content), content)
                })
                .collect()
        })
        .collect()
}

/// The credentials header for reads of `repo`, fetched (or taken from the
/// token cache) before timing.
async fn auth_headers(registry: &Registry, repo: &str) -> Result<Vec<(HeaderName, HeaderValue)>> {
    let scope = scope_for_path(&format!("/v2/{repo}/blobs/"));
    Ok(registry
        .authorization(scope.as_deref())
        .await?
        .map(|value| (AUTHORIZATION, value))
        .into_iter()
        .collect())
}

fn check_blob(response: &Response, expected: &Bytes) -> Result<()> {
    ensure!(
        response.status == StatusCode::OK,
        "status {}, expected 200; body: {}",
        response.status,
        String::from_utf8_lossy(&response.body[..response.body.len().min(300)])
    );
    ensure!(
        response.body == *expected,
        "body of {} bytes differs from the {}-byte blob",
        response.body.len(),
        expected.len()
    );
    Ok(())
}

fn micros_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn ms(histogram: &Histogram<u64>, q: f64) -> f64 {
    histogram.value_at_quantile(q) as f64 / 1000.0
}

/// Server CPU seconds used since `before`, per request, in µs.
fn cpu_per_request(pid: Option<u32>, before: Option<f64>, requests: u64) -> Result<Option<Sample>> {
    let (Some(pid), Some(before)) = (pid, before) else {
        return Ok(None);
    };
    let used = procfs::cpu_seconds(pid)? - before;
    Ok(Some(Sample::lower(
        "server CPU per request",
        "µs",
        used / requests.max(1) as f64 * 1e6,
    )))
}

fn reconnect_sample(reconnects: u64) -> Option<Sample> {
    (reconnects > 0).then(|| {
        Sample::lower(
            "reconnects (server closed the keep-alive connection)",
            "count",
            reconnects as f64,
        )
    })
}

pub async fn small_blobs(ctx: &Ctx) -> Section {
    let repeat = ctx.cli.small_blob_repeat;
    let sizes: Vec<&str> = SIZES.iter().map(|(_, label)| *label).collect();
    let description = format!(
        "{BLOBS_PER_SIZE} blobs of each of {} (random bytes) are pushed before timing, \
         then read with `GET /v2/<repo>/blobs/<digest>` one after another on one keep-alive \
         HTTP/1.1 connection (hyper's client connection API, `TCP_NODELAY` on the client), \
         cycling through the sizes: {repeat} GETs of each size per round, after one untimed GET \
         of every blob. Latency is from sending the request to reading the whole body; every \
         answer must be 200 with exactly the blob's bytes. Requests/s is over all sizes. A \
         registry that holds back small responses (Nagle's algorithm meeting the client's \
         delayed ACK) answers these in about 40 ms instead of a fraction of one.",
        sizes.join(", ")
    );
    let mut section = Section::new(
        "small-blobs",
        "small blobs, one after another",
        description,
        ctx.columns(),
    );
    let contents = small_blob_contents(ctx);
    let fixtures = setup_each(ctx, &mut section, async |t| {
        let registry = &ctx.targets[t];
        let repo = ctx.repo("small-blobs");
        for blobs in &contents {
            for (digest, content) in blobs {
                registry
                    .push_blob(&repo, content)
                    .await
                    .with_context(|| format!("pushing small blob {digest}"))?;
            }
        }
        Ok(SmallBlobs {
            repo,
            blobs: contents.clone(),
        })
    })
    .await;
    measure_on_setup(
        ctx,
        &mut section,
        &fixtures,
        "no small blobs were pushed",
        async |_, registry, fixture| {
            let headers = auth_headers(registry, &fixture.repo).await?;
            let urls: Vec<Vec<Url>> = fixture
                .blobs
                .iter()
                .map(|blobs| {
                    blobs
                        .iter()
                        .map(|(digest, _)| {
                            registry.url(&format!("v2/{}/blobs/{digest}", fixture.repo))
                        })
                        .collect::<Result<Vec<Url>>>()
                })
                .collect::<Result<_>>()?;
            let mut conn = KeepAlive::open(&registry.spec.url).await?;
            // Untimed: the first read of each blob (the registry may look
            // it up in its database the first time).
            for (s, blobs) in fixture.blobs.iter().enumerate() {
                for (i, (_, content)) in blobs.iter().enumerate() {
                    let response = conn.request(&Method::GET, &urls[s][i], &headers).await?;
                    check_blob(&response, content).context("untimed first read")?;
                }
            }
            let mut latency = SIZES
                .iter()
                .map(|_| load::new_histogram())
                .collect::<Result<Vec<_>>>()?;
            let pid = registry.spec.pid;
            let cpu_before = pid.map(procfs::cpu_seconds).transpose()?;
            let started = Instant::now();
            for round in 0..repeat {
                for (s, blobs) in fixture.blobs.iter().enumerate() {
                    let i = round % blobs.len();
                    let sent = Instant::now();
                    let response = conn.request(&Method::GET, &urls[s][i], &headers).await?;
                    latency[s].saturating_record(micros_since(sent));
                    check_blob(&response, &blobs[i].1)
                        .with_context(|| format!("GET of a {} blob", SIZES[s].1))?;
                }
            }
            let secs = started.elapsed().as_secs_f64();
            let requests = (repeat * SIZES.len()) as u64;
            let mut samples = Vec::new();
            for (s, (_, label)) in SIZES.iter().enumerate() {
                samples.push(Sample::lower(
                    format!("{label} GET p50"),
                    "ms",
                    ms(&latency[s], 0.50),
                ));
                samples.push(Sample::lower(
                    format!("{label} GET p99"),
                    "ms",
                    ms(&latency[s], 0.99),
                ));
            }
            samples.push(Sample::higher(
                "throughput, all sizes",
                "req/s",
                requests as f64 / secs,
            ));
            samples.extend(cpu_per_request(pid, cpu_before, requests)?);
            samples.extend(reconnect_sample(conn.reconnects));
            Ok(samples)
        },
    )
    .await;
    section
}

/// One 4 KiB range to read and the bytes it must return.
struct Piece {
    start: u64,
    expected: Bytes,
}

/// `count` random ranges of `RANGE_BYTES` inside the blob.
fn random_pieces(blob: &PullBlob, seed: u64, count: usize) -> Vec<Piece> {
    let mut prng = Prng::new(seed);
    let last_start = blob.spec.size.saturating_sub(RANGE_BYTES);
    (0..count)
        .map(|_| piece_at(&blob.spec, prng.next_u64() % (last_start + 1)))
        .collect()
}

/// The range of `RANGE_BYTES` from `start`, with its bytes regenerated from
/// the blob's seed (the blob is never held whole).
fn piece_at(spec: &BlobSpec, start: u64) -> Piece {
    let end = (start + RANGE_BYTES).min(spec.size);
    let mut bytes = Vec::with_capacity((end - start) as usize);
    let chunk = GEN_CHUNK as u64;
    for block in start / chunk..end.div_ceil(chunk) {
        let data = spec.block(block);
        let block_start = block * chunk;
        let from = start.max(block_start) - block_start;
        let to = end.min(block_start + data.len() as u64) - block_start;
        bytes.extend_from_slice(&data[from as usize..to as usize]);
    }
    Piece {
        start,
        expected: Bytes::from(bytes),
    }
}

fn check_piece(response: &Response, piece: &Piece, size: u64) -> Result<()> {
    let end = piece.start + piece.expected.len() as u64 - 1;
    ensure!(
        response.status == StatusCode::PARTIAL_CONTENT,
        "bytes {}-{end}: status {}, expected 206",
        piece.start,
        response.status
    );
    let content_range = header_text(&response.headers, CONTENT_RANGE).unwrap_or("<none>");
    ensure!(
        content_range == format!("bytes {}-{end}/{size}", piece.start),
        "asked for bytes {}-{end}, got Content-Range {content_range}",
        piece.start
    );
    ensure!(
        response.body == piece.expected,
        "bytes {}-{end}: the body differs from the blob's bytes",
        piece.start
    );
    Ok(())
}

/// Reads `pieces` in order on one connection, recording each latency.
async fn read_pieces(
    url: &Url,
    origin: &Url,
    headers: &[(HeaderName, HeaderValue)],
    pieces: &[&Piece],
    size: u64,
) -> Result<(Histogram<u64>, u64)> {
    let mut conn = KeepAlive::open(origin).await?;
    let mut latency = load::new_histogram()?;
    for piece in pieces {
        let end = piece.start + piece.expected.len() as u64 - 1;
        let mut with_range = headers.to_vec();
        with_range.push((
            RANGE,
            HeaderValue::from_str(&format!("bytes={}-{end}", piece.start))?,
        ));
        let sent = Instant::now();
        let response = conn.request(&Method::GET, url, &with_range).await?;
        latency.saturating_record(micros_since(sent));
        check_piece(&response, piece, size)?;
    }
    Ok((latency, conn.reconnects))
}

pub async fn small_ranges(ctx: &Ctx) -> Section {
    let count = ctx.cli.ranges;
    let connections = ctx.cli.range_connections;
    let description = format!(
        "{count} `GET`s per round of a random {RANGE_BYTES}-byte `Range: bytes=a-b` (any \
         offset) of the {} blob of the pull scenarios (pushed before timing if that scenario \
         did not run): first one after another on one keep-alive HTTP/1.1 connection, then \
         the same number spread over {connections} connections at once (each with one request \
         in flight). Every answer must be 206 with the exact `Content-Range` and exactly the \
         blob's bytes (regenerated from its seed before timing). Latency is from sending the \
         request to reading the whole body; ranges/s is the count over the wall time.",
        ctx.cli.blob_size
    );
    let mut section = Section::new(
        "small-ranges",
        "random 4 KiB ranges of a large blob",
        description,
        ctx.columns(),
    );
    let fixtures = setup_each(ctx, &mut section, async |t| pull_fixture(ctx, t).await).await;
    let Some(blob) = fixtures.iter().flatten().next().cloned() else {
        return section;
    };
    run_rounds(
        ctx,
        &mut section,
        async |round| {
            let seed = data::seed(ctx.run_seed, "small-ranges", round, 0);
            let blob = blob.clone();
            Ok(tokio::task::spawn_blocking(move || random_pieces(&blob, seed, count)).await?)
        },
        async |t, _, pieces| {
            let blob = fixtures[t]
                .as_ref()
                .ok_or_else(|| anyhow!("no pull fixture"))?;
            let registry = &ctx.targets[t];
            let size = blob.spec.size;
            let url = registry.url(&format!("v2/{}/blobs/{}", blob.repo, blob.digest))?;
            let headers = auth_headers(registry, &blob.repo).await?;
            let origin = &registry.spec.url;
            let mut samples = Vec::new();
            let mut reconnects = 0;

            let all: Vec<&Piece> = pieces.iter().collect();
            let started = Instant::now();
            let (latency, again) = read_pieces(&url, origin, &headers, &all, size).await?;
            let secs = started.elapsed().as_secs_f64();
            reconnects += again;
            samples.push(Sample::lower(
                "1 connection: latency p50",
                "ms",
                ms(&latency, 0.50),
            ));
            samples.push(Sample::lower(
                "1 connection: latency p99",
                "ms",
                ms(&latency, 0.99),
            ));
            samples.push(Sample::higher(
                "1 connection: throughput",
                "ranges/s",
                count as f64 / secs,
            ));

            let shares: Vec<Vec<&Piece>> = (0..connections)
                .map(|c| pieces.iter().skip(c).step_by(connections).collect())
                .collect();
            let started = Instant::now();
            let results = futures::future::join_all(
                shares
                    .iter()
                    .map(|share| read_pieces(&url, origin, &headers, share, size)),
            )
            .await;
            let secs = started.elapsed().as_secs_f64();
            let mut latency = load::new_histogram()?;
            for result in results {
                let (histogram, again) = result?;
                latency
                    .add(&histogram)
                    .map_err(|e| anyhow!("merging histograms: {e}"))?;
                reconnects += again;
            }
            samples.push(Sample::lower(
                format!("{connections} connections: latency p50"),
                "ms",
                ms(&latency, 0.50),
            ));
            samples.push(Sample::lower(
                format!("{connections} connections: latency p99"),
                "ms",
                ms(&latency, 0.99),
            ));
            samples.push(Sample::higher(
                format!("{connections} connections: throughput"),
                "ranges/s",
                count as f64 / secs,
            ));
            samples.extend(reconnect_sample(reconnects));
            Ok(samples)
        },
    )
    .await;
    section
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_hold_the_blobs_bytes() {
        let spec = BlobSpec {
            seed: 3,
            size: 2 * GEN_CHUNK as u64 + 100,
        };
        let whole: Vec<u8> = (0..spec.blocks())
            .flat_map(|i| spec.block(i).to_vec())
            .collect();
        let chunk = GEN_CHUNK as u64;
        let ends = [0, chunk - 10, 2 * chunk - 4000, spec.size - RANGE_BYTES];
        let blob = PullBlob {
            repo: "r".into(),
            spec,
            digest: String::new(),
        };
        let random = random_pieces(&blob, 11, 100);
        let pieces = ends
            .iter()
            .map(|&start| piece_at(&spec, start))
            .chain(random);
        for piece in pieces {
            let start = piece.start as usize;
            assert!(piece.start + RANGE_BYTES <= spec.size);
            assert_eq!(piece.expected.len() as u64, RANGE_BYTES);
            assert_eq!(
                &piece.expected[..],
                &whole[start..start + RANGE_BYTES as usize]
            );
        }
    }
}
