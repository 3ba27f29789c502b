//! What garbage collection is measured on (scripts/bench-gc.sh), not part
//! of `all`:
//!
//! - `gc-populate`: fills each target with `--gc-manifests` images of
//!   `--gc-layers` unique small layers and a unique config each, tagged
//!   across `--gc-repos` repositories, then deletes every other image by
//!   digest: half the blobs become garbage. Run once per target.
//! - `gc-probe`: for `--duration` seconds, `--small-workers` clients each
//!   push a small image (one 4 KiB layer), pull it back (manifest, then
//!   every blob) and delete it: images/s, the throughput a collection must
//!   not take away. Deleting keeps the tagged content as populated, so that
//!   rounds taken late in a long collection meet a registry of the same
//!   size as those before it; what the probe leaves is garbage, as a
//!   registry in use makes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use reqwest::{Method, StatusCode};

use super::{Ctx, for_each_concurrent, run_rounds, setup_each};
use crate::data::{self, Image, sha256_of};
use crate::registry::Registry;
use crate::report::{Sample, Section};

/// Payload of each layer's one file: with the tar framing, 2 KiB.
const LAYER_FILE: usize = 2048 - 1536;
/// Payload of the probe's one layer: 4 KiB with the framing.
const PROBE_FILE: usize = 4096 - 1536;

pub async fn populate(ctx: &Ctx) -> Section {
    let cli = &ctx.cli;
    let description = format!(
        "{} images of {} unique 2 KiB layers and a unique config ({} blobs), tagged across {} \
         repositories by {} concurrent clients (`HEAD`, `POST`, `PUT` per blob, then the \
         manifest); then every other image deleted by digest: {} manifests and {} blobs become \
         garbage.",
        cli.gc_manifests,
        cli.gc_layers,
        cli.gc_manifests * (cli.gc_layers + 1),
        cli.gc_repos,
        cli.populate_concurrency,
        cli.gc_manifests / 2,
        cli.gc_manifests / 2 * (cli.gc_layers + 1),
    );
    let mut section = Section::new(
        "gc-populate",
        "garbage to collect",
        description,
        ctx.columns(),
    );
    let results = setup_each(ctx, &mut section, async |t| {
        fill(ctx, &ctx.targets[t]).await
    })
    .await;
    for (t, result) in results.into_iter().enumerate() {
        if let Some(samples) = result {
            for sample in samples {
                section.record(t, sample);
            }
        }
    }
    section
}

async fn fill(ctx: &Ctx, registry: &Registry) -> Result<Vec<Sample>> {
    let cli = &ctx.cli;
    let repo = |i: usize| ctx.repo(&format!("gc-{}", i % cli.gc_repos.max(1)));
    let started = Instant::now();
    let digests: Vec<(usize, String)> = {
        let done = Arc::new(AtomicU64::new(0));
        let pushed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let work: Vec<usize> = (0..cli.gc_manifests).collect();
        for_each_concurrent(work, cli.populate_concurrency, |i| {
            let (done, pushed) = (done.clone(), pushed.clone());
            let repo = repo(i);
            async move {
                let image = Image::generate(
                    data::seed(ctx.run_seed, "gc-populate", 0, i),
                    cli.gc_layers,
                    LAYER_FILE,
                );
                registry
                    .push_image(&repo, &format!("t{i}"), &image)
                    .await
                    .with_context(|| format!("pushing image {i}"))?;
                pushed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((i, image.manifest_digest.clone()));
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(1000) {
                    eprintln!(
                        "[gc-populate] {}: {n} images pushed in {:.0} s",
                        registry.name(),
                        started.elapsed().as_secs_f64()
                    );
                }
                Ok(())
            }
        })
        .await?;
        let mut list = pushed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        list.sort();
        list
    };
    let pushed_in = started.elapsed().as_secs_f64();
    let doomed: Vec<(usize, String)> = digests.into_iter().filter(|(i, _)| i % 2 == 1).collect();
    let deleted = doomed.len();
    for_each_concurrent(doomed, cli.populate_concurrency, |(i, digest)| {
        let repo = repo(i);
        async move {
            let url = registry.url(&format!("v2/{repo}/manifests/{digest}"))?;
            registry
                .call_bare(Method::DELETE, url, &[StatusCode::ACCEPTED])
                .await
                .with_context(|| format!("deleting image {i}"))?;
            Ok(())
        }
    })
    .await?;
    eprintln!(
        "[gc-populate] {}: {} images pushed in {pushed_in:.0} s, {deleted} deleted",
        registry.name(),
        cli.gc_manifests
    );
    Ok(vec![
        Sample::lower("push time", "s", pushed_in),
        Sample::higher("images deleted", "images", deleted as f64),
    ])
}

pub async fn probe(ctx: &Ctx) -> Section {
    let cli = &ctx.cli;
    let description = format!(
        "{} clients for {} s, each in a loop: push an image of one unique 4 KiB layer and a \
         unique config (`HEAD`, `POST`, `PUT` per blob, the manifest by tag), pull it \
         (the manifest by tag, every blob, checked against its digest), then delete it by \
         digest.",
        cli.small_workers, cli.duration
    );
    let mut section = Section::new(
        "gc-probe",
        "push and pull throughput",
        description,
        ctx.columns(),
    );
    run_rounds(
        ctx,
        &mut section,
        async |_| Ok(()),
        async |t, round, _| {
            let registry = &ctx.targets[t];
            let repo = ctx.repo("probe");
            let deadline = Instant::now() + Duration::from_secs_f64(cli.duration);
            let started = Instant::now();
            let images = Arc::new(AtomicU64::new(0));
            let workers: Vec<usize> = (0..cli.small_workers).collect();
            for_each_concurrent(workers, cli.small_workers, |w| {
                let (images, repo) = (images.clone(), repo.clone());
                async move {
                    let mut n = 0;
                    while Instant::now() < deadline {
                        n += 1;
                        let image = Image::generate(
                            data::seed(ctx.run_seed, "gc-probe", round * 1000 + w, n),
                            1,
                            PROBE_FILE,
                        );
                        let tag = format!("r{round}-w{w}-{n}");
                        registry.push_image(&repo, &tag, &image).await?;
                        pull(registry, &repo, &tag, &image).await?;
                        let url = registry
                            .url(&format!("v2/{repo}/manifests/{}", image.manifest_digest))?;
                        registry
                            .call_bare(Method::DELETE, url, &[StatusCode::ACCEPTED])
                            .await?;
                        images.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }
            })
            .await?;
            let secs = started.elapsed().as_secs_f64();
            Ok(vec![Sample::higher(
                "throughput",
                "images/s",
                images.load(Ordering::Relaxed) as f64 / secs,
            )])
        },
    )
    .await;
    section
}

/// The manifest by tag, then every blob, each checked.
async fn pull(registry: &Registry, repo: &str, tag: &str, image: &Image) -> Result<()> {
    let digest = registry
        .manifest_digest(repo, tag)
        .await?
        .context("the manifest just pushed is not found")?;
    ensure!(digest == image.manifest_digest, "{repo}:{tag} is {digest}");
    for blob in image.blobs() {
        let blob_digest = sha256_of(blob);
        let url = registry.url(&format!("v2/{repo}/blobs/{blob_digest}"))?;
        let bytes = registry
            .call_bare(Method::GET, url, &[StatusCode::OK])
            .await?
            .bytes()
            .await?;
        ensure!(
            sha256_of(&bytes) == blob_digest,
            "{repo}: blob {blob_digest} came back different"
        );
    }
    Ok(())
}
