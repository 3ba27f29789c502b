//! Catalog and tag listing, with and without pagination.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use reqwest::header::LINK;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use super::images::{TagList, list_tags};
use super::{Ctx, for_each_concurrent, measure_on_setup, setup_each};
use crate::auth::next_link;
use crate::data::{self, Image};
use crate::registry::{Registry, header_text};
use crate::report::{Sample, Section};

/// Stop following `Link` after this many pages: a registry that loops must
/// fail the scenario, not hang it.
const MAX_PAGES: usize = 100_000;

#[derive(Deserialize)]
struct Catalog {
    repositories: Option<Vec<String>>,
}

/// What a full pass over a paginated listing returned.
struct Pass {
    names: Vec<String>,
    pages: usize,
    /// Largest page; more than the requested n means n was ignored.
    largest_page: usize,
}

/// One full pass over a paginated listing, following `Link` headers.
async fn paged<T: for<'de> Deserialize<'de>>(
    registry: &Registry,
    first: Url,
    names: impl Fn(T) -> Vec<String>,
) -> Result<Pass> {
    let mut url = first;
    let mut pass = Pass {
        names: Vec::new(),
        pages: 0,
        largest_page: 0,
    };
    for page in 1..=MAX_PAGES {
        let response = registry
            .call_bare(Method::GET, url.clone(), &[StatusCode::OK])
            .await?;
        let next = header_text(response.headers(), LINK).and_then(next_link);
        let body: T = response
            .json()
            .await
            .with_context(|| format!("page {page} of {url} is not valid JSON"))?;
        let batch = names(body);
        pass.pages = page;
        pass.largest_page = pass.largest_page.max(batch.len());
        pass.names.extend(batch);
        match next {
            Some(next) => url = registry.url(&next)?,
            None => return Ok(pass),
        }
    }
    bail!("listing did not end after {MAX_PAGES} pages")
}

/// Fails unless `seen` contains every expected name exactly once.
fn verify_names(seen: &[String], expected: &HashSet<String>) -> Result<()> {
    let unique: HashSet<&String> = seen.iter().collect();
    ensure!(
        unique.len() == seen.len(),
        "listing repeated {} names",
        seen.len() - unique.len()
    );
    let found = expected.iter().filter(|n| unique.contains(n)).count();
    ensure!(
        found == expected.len(),
        "listing contains {found} of the {} expected names",
        expected.len()
    );
    Ok(())
}

fn catalog_repo(ctx: &Ctx, i: usize) -> String {
    format!("{}-catalog/r{i:05}", ctx.cli.repo_prefix)
}

async fn catalog_pass(registry: &Registry, page_size: usize) -> Result<Pass> {
    let first = registry.url(&format!("v2/_catalog?n={page_size}"))?;
    paged(registry, first, |c: Catalog| {
        c.repositories.unwrap_or_default()
    })
    .await
}

/// Reports, per target, how a paged listing was split; a registry that
/// ignores n still passes, but the note says its figure is not paged.
fn page_notes(
    section: &mut Section,
    ctx: &Ctx,
    what: &str,
    page_size: usize,
    seen: &[(usize, Pass)],
) {
    for (t, target) in ctx.targets.iter().enumerate() {
        let Some((_, pass)) = seen.iter().rev().find(|(i, _)| *i == t) else {
            continue;
        };
        let name = target.name();
        if pass.largest_page > page_size {
            section.note(format!(
                "{name} ignored n={page_size} on {what}: a page held {} entries ({} page(s) in \
                 all), so its paged figure is not a paged listing",
                pass.largest_page, pass.pages
            ));
        } else {
            section.note(format!(
                "{name}: {} {what} entries in {} pages of at most {page_size}",
                pass.names.len(),
                pass.pages
            ));
        }
    }
}

/// The tiny image every catalog repository holds: fixed content, so that a
/// later run finds the fixture already in place.
fn tiny_image() -> Image {
    Image::generate(0xCA7A_1065, 0, 0)
}

pub async fn catalog(ctx: &Ctx) -> Section {
    const PAGE: usize = 100;
    let cli = &ctx.cli;
    let expected: HashSet<String> = (0..cli.catalog_repos)
        .map(|i| catalog_repo(ctx, i))
        .collect();
    let description = format!(
        "Time to page through the whole catalog with `GET /v2/_catalog?n={PAGE}`, following \
         the `Link: <...>; rel=\"next\"` header until it is absent. The fixture is {} \
         repositories `{}`..`{}`, each holding one tiny manifest (a config blob and no \
         layers); it is created before timing with {} concurrent pushers, only where an \
         untimed catalog pass shows it missing, so it is built once per registry and reused \
         by later runs. Each pass must list every fixture repository exactly once and \
         respect n; the catalog may also hold the repositories of other scenarios.",
        cli.catalog_repos,
        catalog_repo(ctx, 0),
        catalog_repo(ctx, cli.catalog_repos.saturating_sub(1)),
        cli.populate_concurrency
    );
    let mut section = Section::new("catalog", "catalog listing", description, ctx.columns());
    let image = tiny_image();
    let setup = setup_each(ctx, &mut section, async |t| {
        let registry = &ctx.targets[t];
        let pass = catalog_pass(registry, PAGE)
            .await
            .context("initial catalog pass")?;
        let seen: HashSet<String> = pass.names.into_iter().collect();
        let missing: Vec<String> = expected.difference(&seen).cloned().collect();
        if !missing.is_empty() {
            eprintln!(
                "[catalog] {}: creating {} repositories",
                registry.name(),
                missing.len()
            );
            let started = Instant::now();
            for_each_concurrent(missing, cli.populate_concurrency, |repo| {
                let image = &image;
                async move { registry.push_image(&repo, "latest", image).await }
            })
            .await?;
            eprintln!(
                "[catalog] {}: populated in {:.1} s",
                registry.name(),
                started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    })
    .await;
    let mut pages_seen = Vec::new();
    measure_on_setup(
        ctx,
        &mut section,
        &setup,
        "catalog setup failed",
        async |t, registry, _| {
            let started = Instant::now();
            let pass = catalog_pass(registry, PAGE).await?;
            let secs = started.elapsed().as_secs_f64();
            verify_names(&pass.names, &expected)?;
            pages_seen.push((t, pass));
            Ok(vec![Sample::lower("full pass", "s", secs)])
        },
    )
    .await;
    page_notes(&mut section, ctx, "catalog", PAGE, &pages_seen);
    section
}

fn tag_names(list: TagList) -> Vec<String> {
    list.tags.unwrap_or_default()
}

pub async fn tags(ctx: &Ctx) -> Section {
    const PAGE: usize = 100;
    let cli = &ctx.cli;
    let repo = format!("{}-tags/many", cli.repo_prefix);
    let expected: HashSet<String> = (0..cli.tags).map(|i| format!("t{i:05}")).collect();
    let description = format!(
        "`GET /v2/{repo}/tags/list` in full (no n), and paged with `?n={PAGE}` following \
         `Link`. The repository holds {} tags of one manifest (`PUT` by tag {} times with {} \
         concurrent writers, done once per registry, before timing). Every listing must \
         return each tag exactly once. Each round's value is the mean of {} listings.",
        cli.tags, cli.tags, cli.populate_concurrency, cli.list_repeat
    );
    let mut section = Section::new("tags", "tag listing", description, ctx.columns());
    let image = Image::generate(data::seed(0, "tags", 0, 0), 1, 1024);
    let setup = setup_each(ctx, &mut section, async |t| {
        let registry = &ctx.targets[t];
        let have = list_tags(registry, &repo).await.unwrap_or_default();
        let missing: Vec<String> = expected.difference(&have).cloned().collect();
        if !missing.is_empty() {
            eprintln!(
                "[tags] {}: creating {} tags",
                registry.name(),
                missing.len()
            );
            // Blobs once, then only manifest PUTs: the scenario is about tags.
            for blob in image.blobs() {
                registry.push_blob(&repo, blob).await?;
            }
            for_each_concurrent(missing, cli.populate_concurrency, |tag| {
                let (image, repo) = (&image, &repo);
                async move { registry.put_manifest(repo, &tag, image).await }
            })
            .await?;
        }
        Ok(())
    })
    .await;
    let mut pages_seen = Vec::new();
    measure_on_setup(
        ctx,
        &mut section,
        &setup,
        "tags setup failed",
        async |t, registry, _| {
            let full_url = registry.url(&format!("v2/{repo}/tags/list"))?;
            let paged_url = registry.url(&format!("v2/{repo}/tags/list?n={PAGE}"))?;
            let mut full_total = 0.0;
            let mut paged_total = 0.0;
            for _ in 0..cli.list_repeat {
                let started = Instant::now();
                let full = paged(registry, full_url.clone(), tag_names).await?;
                full_total += started.elapsed().as_secs_f64();
                verify_names(&full.names, &expected).context("full tag list")?;

                let started = Instant::now();
                let pass = paged(registry, paged_url.clone(), tag_names).await?;
                paged_total += started.elapsed().as_secs_f64();
                verify_names(&pass.names, &expected).context("paged tag list")?;
                pages_seen.push((t, pass));
            }
            let n = cli.list_repeat as f64;
            Ok(vec![
                Sample::lower("full list", "ms", full_total / n * 1000.0),
                Sample::lower(
                    format!("paged list (n={PAGE})"),
                    "ms",
                    paged_total / n * 1000.0,
                ),
            ])
        },
    )
    .await;
    page_notes(&mut section, ctx, "tags/list", PAGE, &pages_seen);
    section
}
