//! The scenarios, and the round/target alternation they share.

mod blobs;
mod ceilings;
mod gc;
mod images;
mod listing;
mod manifests;
mod memory;
mod skopeo;
mod small;
mod soak;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::ValueEnum;

use crate::registry::Registry;
use crate::report::{Sample, Section, fmt_value};
use crate::{Cli, ScenarioName};

/// Everything a scenario needs: options, connected targets, and fixtures
/// shared between scenarios (created lazily, once per target).
pub struct Ctx {
    pub cli: Cli,
    pub targets: Vec<Registry>,
    /// Distinguishes this run's repositories from earlier runs' on the same registry.
    pub run_id: String,
    /// Makes generated data differ between runs, so a registry kept from an
    /// earlier run cannot shortcut pushes either.
    pub run_seed: u64,
    pub scratch: PathBuf,
    pub fixtures: Fixtures,
}

#[derive(Default)]
pub struct Fixtures {
    pull: FixtureMap<blobs::PullBlob>,
    manifest: FixtureMap<manifests::SmallImage>,
}

/// Fixtures by target index. The lock is never held across an await.
pub struct FixtureMap<T>(Mutex<HashMap<usize, T>>);

impl<T> Default for FixtureMap<T> {
    fn default() -> Self {
        FixtureMap(Mutex::new(HashMap::new()))
    }
}

impl<T: Clone> FixtureMap<T> {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<usize, T>> {
        // Poisoning only means another task panicked while inserting; the
        // map is still consistent.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, target: usize) -> Option<T> {
        self.map().get(&target).cloned()
    }

    /// Any target's fixture, to reuse what is the same for all of them.
    pub fn any(&self) -> Option<T> {
        self.map().values().next().cloned()
    }

    pub fn insert(&self, target: usize, value: T) {
        self.map().insert(target, value);
    }
}

impl Ctx {
    pub fn columns(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.name().to_owned()).collect()
    }

    /// A repository name unique to this run.
    pub fn repo(&self, what: &str) -> String {
        format!("{}/{}/{what}", self.cli.repo_prefix, self.run_id)
    }

    /// PID to sample for memory, when the memory scenario is selected.
    pub fn memory_pid(&self, target: usize) -> Option<u32> {
        if self.cli.wants(ScenarioName::Memory) {
            self.targets[target].spec.pid
        } else {
            None
        }
    }
}

pub const MIB: f64 = (1u64 << 20) as f64;

/// Runs `prepare` once per round (untimed, shared by all targets, e.g. to
/// generate data and digests), then `measure` for each target in order:
/// A then B, round after round. A target that fails is reported and skipped
/// for the rest of the scenario; the other targets go on.
pub async fn run_rounds<I>(
    ctx: &Ctx,
    section: &mut Section,
    prepare: impl AsyncFn(usize) -> Result<I>,
    mut measure: impl AsyncFnMut(usize, usize, &I) -> Result<Vec<Sample>>,
) {
    let rounds = ctx.cli.rounds;
    for round in 0..rounds {
        if (0..ctx.targets.len()).all(|t| section.failed(t)) {
            return;
        }
        let input = match prepare(round).await {
            Ok(input) => input,
            Err(e) => {
                eprintln!(
                    "[{}] preparing round {} FAILED: {e:#}",
                    section.id,
                    round + 1
                );
                section.fail_all(&e);
                return;
            }
        };
        for (t, target) in ctx.targets.iter().enumerate() {
            if section.failed(t) {
                continue;
            }
            match measure(t, round, &input).await {
                Ok(samples) => {
                    let text: Vec<String> = samples
                        .iter()
                        .map(|s| format!("{} {} {}", s.metric, fmt_value(s.value), s.unit))
                        .collect();
                    eprintln!(
                        "[{}] round {}/{rounds} {}: {}",
                        section.id,
                        round + 1,
                        target.name(),
                        text.join(", ")
                    );
                    for sample in samples {
                        section.record(t, sample);
                    }
                }
                Err(e) => {
                    eprintln!(
                        "[{}] round {}/{rounds} {} FAILED: {e:#}",
                        section.id,
                        round + 1,
                        target.name()
                    );
                    section.fail(t, &e);
                }
            }
        }
    }
}

/// [`run_rounds`] for a scenario whose data [`setup_each`] made once per
/// target before timing: nothing is prepared per round, and `measure` gets
/// the target's index, the target and what its setup left (`missing` is the
/// error of a target whose setup failed).
pub async fn measure_on_setup<S>(
    ctx: &Ctx,
    section: &mut Section,
    setups: &[Option<S>],
    missing: &str,
    mut measure: impl AsyncFnMut(usize, &Registry, &S) -> Result<Vec<Sample>>,
) {
    run_rounds(
        ctx,
        section,
        async |_| Ok(()),
        async |t, _, _| {
            let setup = setups[t].as_ref().ok_or_else(|| anyhow!("{missing}"))?;
            measure(t, &ctx.targets[t], setup).await
        },
    )
    .await;
}

/// Runs one setup step per target (untimed), marking failures in the section.
pub async fn setup_each<S>(
    ctx: &Ctx,
    section: &mut Section,
    setup: impl AsyncFn(usize) -> Result<S>,
) -> Vec<Option<S>> {
    let mut out = Vec::new();
    for (t, target) in ctx.targets.iter().enumerate() {
        match setup(t).await {
            Ok(s) => out.push(Some(s)),
            Err(e) => {
                eprintln!("[{}] setup on {} FAILED: {e:#}", section.id, target.name());
                section.fail(t, &e);
                out.push(None);
            }
        }
    }
    out
}

pub async fn run_all(ctx: &Ctx) -> Vec<Section> {
    use ScenarioName as S;
    let cli = &ctx.cli;
    let mut sections = Vec::new();
    let mut memory = if cli.wants(S::Memory) && !ctx.targets.is_empty() {
        Some(memory::start(ctx).await)
    } else {
        None
    };
    if cli.wants(S::PushMonolithic) {
        sections.push(blobs::push(ctx, blobs::PushMode::Monolithic).await);
    }
    if cli.wants(S::PushChunked) {
        sections.push(blobs::push(ctx, blobs::PushMode::Chunked).await);
    }
    if cli.wants(S::Pull) {
        sections.push(blobs::pull(ctx, false).await);
    }
    if cli.wants(S::PullRange) {
        sections.push(blobs::pull(ctx, true).await);
    }
    if cli.wants(S::SmallBlobs) {
        sections.push(small::small_blobs(ctx).await);
    }
    if cli.wants(S::SmallRanges) {
        sections.push(small::small_ranges(ctx).await);
    }
    if cli.wants(S::ManifestGet) {
        sections.push(manifests::load(ctx, manifests::Kind::GetByTag).await);
    }
    if cli.scenarios.contains(&S::ManifestGetShed) {
        sections.push(manifests::load(ctx, manifests::Kind::GetByTagShedding).await);
    }
    if cli.wants(S::ManifestHead) {
        sections.push(manifests::load(ctx, manifests::Kind::HeadByDigest).await);
    }
    if cli.wants(S::ManifestHeadTag) {
        sections.push(manifests::load(ctx, manifests::Kind::HeadByTag).await);
    }
    if cli.wants(S::BlobHead) {
        sections.push(manifests::load(ctx, manifests::Kind::BlobHead).await);
    }
    if cli.wants(S::BlobGet) {
        sections.push(manifests::load(ctx, manifests::Kind::BlobGet).await);
    }
    if cli.wants(S::SmallImages) {
        sections.push(images::small_images(ctx).await);
    }
    if cli.wants(S::Catalog) {
        sections.push(listing::catalog(ctx).await);
    }
    if cli.wants(S::Tags) {
        sections.push(listing::tags(ctx).await);
    }
    if cli.wants(S::SkopeoCopyIn) || cli.wants(S::SkopeoCopyOut) {
        sections.extend(skopeo::copy(ctx).await);
    }
    if cli.scenarios.contains(&S::GcPopulate) {
        sections.push(gc::populate(ctx).await);
    }
    if cli.scenarios.contains(&S::GcProbe) {
        sections.push(gc::probe(ctx).await);
    }
    if cli.wants(S::Soak) {
        sections.push(soak::soak(ctx).await);
    }
    if let Some(section) = memory.as_mut() {
        memory::finish(ctx, section).await;
    }
    if let Some(section) = memory {
        sections.insert(0, section);
    }
    if cli.wants(S::Ceilings) {
        sections.push(ceilings::run(ctx).await);
    }
    sections
}

/// Describes the run (the machine header is added by scripts/bench.sh).
pub fn report_header(ctx: &Ctx, elapsed: Duration) -> String {
    let cli = &ctx.cli;
    let mut h = String::from("## Results\n\n");
    let _ = writeln!(h, "Targets:\n");
    for t in &ctx.targets {
        let _ = writeln!(
            h,
            "- **{}**: {} ({}{})",
            t.name(),
            t.spec.url,
            t.auth_description(),
            if t.spec.pid.is_some() {
                ", local process sampled for memory/CPU"
            } else {
                ""
            }
        );
    }
    let scenarios: Vec<String> = cli
        .scenarios
        .iter()
        .filter_map(|s| s.to_possible_value())
        .map(|v| v.get_name().to_owned())
        .collect();
    let _ = write!(
        h,
        "\nRounds: {} (targets alternate within each round, in the order above). \
         Scenarios: {}. Blob size: {}, chunk/range size: {}. Manifest load: {} \
         connections, {} s warm-up + {} s measured. Run took {:.0} s.\n\n\
         Client and registries share this machine's cores: every figure includes \
         the cost of the load generator, and the server CPU rows show how much of \
         the machine each registry itself used (user+system time of its process).\n",
        cli.rounds,
        scenarios.join(", "),
        cli.blob_size,
        cli.chunk_size,
        cli.connections,
        cli.warmup,
        cli.duration,
        elapsed.as_secs_f64()
    );
    h
}

/// Bounded-concurrency map over `items`, failing on the first error.
pub async fn for_each_concurrent<T, F, Fut>(items: Vec<T>, concurrency: usize, f: F) -> Result<()>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    use futures::{StreamExt, TryStreamExt};
    futures::stream::iter(items.into_iter().map(f))
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}
