//! Many small image pushes from concurrent clients.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::{Ctx, for_each_concurrent, run_rounds};
use crate::data::{self, Image};
use crate::registry::Registry;
use crate::report::{Sample, Section};

/// Payload of each image's single layer; with the tar framing the layer is
/// exactly 4 KiB.
const FILE_SIZE: usize = 4096 - 1536;

#[derive(Deserialize)]
pub struct TagList {
    pub tags: Option<Vec<String>>,
}

pub async fn small_images(ctx: &Ctx) -> Section {
    let cli = &ctx.cli;
    let description = format!(
        "{} images per round, each with a unique config and one unique 4 KiB tar layer, pushed \
         by {} concurrent workers into one fresh repository per round and target (images \
         and repository unique to each target, so that targets sharing storage never \
         find each other's blobs), each image under its own tag. Each push is the full client protocol: for each blob `HEAD` (404 expected: the blobs are new), \
         `POST` an upload, `PUT ?digest=` with the bytes; then `PUT` the manifest by tag. \
         Images are generated before timing; afterwards the tag list must contain all of them.",
        cli.small_images, cli.small_workers
    );
    let mut section = Section::new(
        "small-images",
        "small image pushes",
        description,
        ctx.columns(),
    );
    run_rounds(
        ctx,
        &mut section,
        async |round| {
            // Images and repository of each target its own: targets that
            // share a database and storage (replicas) would otherwise find
            // the blobs the target before them pushed, and skip them.
            let images: Vec<Vec<Arc<Image>>> = (0..ctx.targets.len())
                .map(|t| {
                    (0..cli.small_images)
                        .map(|i| {
                            Arc::new(Image::generate(
                                data::seed(ctx.run_seed, &format!("small-images-{t}"), round, i),
                                1,
                                FILE_SIZE,
                            ))
                        })
                        .collect()
                })
                .collect();
            Ok(images)
        },
        async |t, round, images| {
            let images = &images[t];
            let registry = &ctx.targets[t];
            let repo = ctx.repo(&format!("small-{}-{t}", round + 1));
            let work: Vec<(usize, Arc<Image>)> = images.iter().cloned().enumerate().collect();
            let started = Instant::now();
            for_each_concurrent(work, cli.small_workers, |(i, image)| {
                let repo = repo.as_str();
                async move {
                    registry
                        .push_image(repo, &format!("img-{i:04}"), &image)
                        .await
                        .with_context(|| format!("pushing image {i}"))
                }
            })
            .await?;
            let secs = started.elapsed().as_secs_f64();
            let tags = list_tags(registry, &repo).await?;
            let expected: HashSet<String> =
                (0..images.len()).map(|i| format!("img-{i:04}")).collect();
            ensure!(
                expected.is_subset(&tags),
                "tag list has {} of the {} pushed images",
                expected.intersection(&tags).count(),
                expected.len()
            );
            Ok(vec![Sample::higher(
                "throughput",
                "images/s",
                images.len() as f64 / secs,
            )])
        },
    )
    .await;
    section
}

/// Full `tags/list` of a repository, without pagination.
pub async fn list_tags(registry: &Registry, repo: &str) -> Result<HashSet<String>> {
    let url = registry.url(&format!("v2/{repo}/tags/list"))?;
    let response = registry
        .call_bare(Method::GET, url, &[StatusCode::OK])
        .await?;
    let list: TagList = response.json().await.context("tags/list is not JSON")?;
    Ok(list.tags.unwrap_or_default().into_iter().collect())
}
