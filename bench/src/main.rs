//! berth-bench: benchmarks OCI registries over the distribution HTTP API,
//! several targets side by side in one run, alternating between them.

mod auth;
mod config;
mod data;
mod download;
mod load;
mod procfs;
mod registry;
mod report;
mod scenarios;

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, ValueEnum};

use crate::config::{ByteSize, TargetSpec};
use crate::data::GEN_CHUNK;
use crate::registry::Registry;
use crate::scenarios::Ctx;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Benchmark OCI registries side by side over the distribution HTTP API",
    after_help = "Targets: --target name=NAME,url=URL[,user=U,password=P][,pid=PID] (repeatable; \
                  the first two are compared as first/second). Values cannot contain commas."
)]
pub struct Cli {
    /// A registry to measure: name=..,url=..,user=..,password=..,pid=..
    #[arg(long = "target", value_name = "SPEC")]
    pub targets: Vec<TargetSpec>,

    /// Rounds per scenario; each round runs every target once, in order.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,

    /// Comma-separated scenarios to run.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub scenarios: Vec<ScenarioName>,

    /// Size of the blob in the push and pull scenarios.
    #[arg(long, default_value = "1GiB")]
    pub blob_size: ByteSize,

    /// PATCH size for push-chunked and Range size for pull-range (multiple of 1 MiB).
    #[arg(long, default_value = "16MiB")]
    pub chunk_size: ByteSize,

    /// Measured duration of the manifest load scenarios, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Warm-up before each manifest load measurement, in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,

    /// Concurrent keep-alive connections of the manifest load scenarios.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,

    /// Layers of the image copied with skopeo.
    #[arg(long, default_value_t = 8)]
    pub skopeo_layers: usize,

    /// Size of each random file inside the skopeo layers (the tar adds 1.5 KiB).
    #[arg(long, default_value = "8MiB")]
    pub skopeo_layer_size: ByteSize,

    /// skopeo binary.
    #[arg(long, default_value = "skopeo")]
    pub skopeo: PathBuf,

    /// Images pushed per round in small-images.
    #[arg(long, default_value_t = 200)]
    pub small_images: usize,

    /// Concurrent pushers in small-images.
    #[arg(long, default_value_t = 16)]
    pub small_workers: usize,

    /// Repositories in the catalog scenario.
    #[arg(long, default_value_t = 2000)]
    pub catalog_repos: usize,

    /// Tags in the tags scenario.
    #[arg(long, default_value_t = 1000)]
    pub tags: usize,

    /// Listings per round in the tags scenario (the round's value is their mean).
    #[arg(long, default_value_t = 5)]
    pub list_repeat: usize,

    /// Whole-blob GETs per round in the pull scenario, one after another
    /// (the round's value is their aggregate): one pull lasts a fraction of
    /// a second, too short to measure alone.
    #[arg(long, default_value_t = 4)]
    pub pull_repeat: usize,

    /// GETs of each small blob size per round in small-blobs.
    #[arg(long, default_value_t = 100)]
    pub small_blob_repeat: usize,

    /// Random 4 KiB ranges read per round in small-ranges (on one
    /// connection, then again over --range-connections).
    #[arg(long, default_value_t = 1000)]
    pub ranges: usize,

    /// Connections reading ranges at once in small-ranges' second part.
    #[arg(long, default_value_t = 8)]
    pub range_connections: usize,

    /// Requests of the soak scenario (run once per target, not per round).
    #[arg(long, default_value_t = 100_000)]
    pub soak_requests: u64,

    /// Concurrent requests of the soak scenario.
    #[arg(long, default_value_t = 16)]
    pub soak_concurrency: usize,

    /// Seconds without requests after the soak before its memory is read
    /// (time for the registry's background work, such as returning freed
    /// memory to the system).
    #[arg(long, default_value_t = 15.0)]
    pub soak_idle: f64,

    /// Concurrency used to populate the catalog and tags fixtures.
    #[arg(long, default_value_t = 16)]
    pub populate_concurrency: usize,

    /// Seconds to let the registries settle before reading idle memory.
    #[arg(long, default_value_t = 3.0)]
    pub idle_wait: f64,

    /// Data size of the disk, TCP and HTTP ceilings.
    #[arg(long, default_value = "1GiB")]
    pub ceiling_size: ByteSize,

    /// Images gc-populate pushes (half of them are then deleted).
    #[arg(long, default_value_t = 10_000)]
    pub gc_manifests: usize,

    /// Layers of each image gc-populate pushes (each image has a config too).
    #[arg(long, default_value_t = 9)]
    pub gc_layers: usize,

    /// Repositories gc-populate spreads its images over.
    #[arg(long, default_value_t = 100)]
    pub gc_repos: usize,

    /// Directory for temporary files (skopeo layouts, disk ceiling).
    #[arg(long)]
    pub scratch_dir: Option<PathBuf>,

    /// Prefix of every repository the benchmark creates.
    #[arg(long, default_value = "berth-bench")]
    pub repo_prefix: String,

    /// Write the Markdown report here (it is always printed to stdout too).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScenarioName {
    All,
    PushMonolithic,
    PushChunked,
    Pull,
    PullRange,
    SmallBlobs,
    SmallRanges,
    ManifestGet,
    /// Not part of `all`: only against registries configured to shed.
    ManifestGetShed,
    ManifestHead,
    ManifestHeadTag,
    BlobHead,
    BlobGet,
    SmallImages,
    Catalog,
    Tags,
    SkopeoCopyIn,
    SkopeoCopyOut,
    Soak,
    Memory,
    Ceilings,
    /// Not part of `all`: the content scripts/bench-gc.sh collects.
    GcPopulate,
    /// Not part of `all`: push and pull throughput while something else runs.
    GcProbe,
}

impl Cli {
    pub fn wants(&self, s: ScenarioName) -> bool {
        self.scenarios.contains(&ScenarioName::All) || self.scenarios.contains(&s)
    }

    fn validate(&self) -> Result<()> {
        ensure!(self.rounds > 0, "--rounds must be at least 1");
        ensure!(self.blob_size.0 > 0, "--blob-size must be positive");
        ensure!(
            self.chunk_size.0 > 0 && self.chunk_size.0.is_multiple_of(GEN_CHUNK as u64),
            "--chunk-size must be a positive multiple of 1 MiB"
        );
        ensure!(self.connections > 0, "--connections must be positive");
        ensure!(
            self.duration > 0.0 && self.warmup >= 0.0,
            "invalid --duration/--warmup"
        );
        ensure!(
            self.small_workers > 0 && self.populate_concurrency > 0,
            "concurrency must be positive"
        );
        ensure!(self.list_repeat > 0, "--list-repeat must be at least 1");
        ensure!(self.pull_repeat > 0, "--pull-repeat must be at least 1");
        ensure!(
            self.small_blob_repeat > 0 && self.ranges > 0,
            "--small-blob-repeat and --ranges must be at least 1"
        );
        ensure!(
            self.range_connections > 0 && self.soak_concurrency > 0,
            "--range-connections and --soak-concurrency must be positive"
        );
        ensure!(self.soak_requests > 0, "--soak-requests must be at least 1");
        ensure!(self.soak_idle >= 0.0, "invalid --soak-idle");
        let needs_target = self.scenarios.iter().any(|s| *s != ScenarioName::Ceilings);
        if needs_target && self.targets.is_empty() {
            bail!("no --target given (only the ceilings scenario runs without one)");
        }
        let mut names: Vec<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        ensure!(
            names.len() == self.targets.len(),
            "target names must be unique"
        );
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("berth-bench: some scenarios FAILED (see the report)");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs everything; returns whether every scenario succeeded on every target.
async fn run(cli: Cli) -> Result<bool> {
    cli.validate()?;
    let started = Instant::now();
    let mut targets = Vec::new();
    for spec in &cli.targets {
        let name = spec.name.clone();
        let registry = Registry::connect(spec.clone())
            .await
            .with_context(|| format!("connecting to target {name}"))?;
        eprintln!(
            "target {name}: {} ({})",
            registry.spec.url,
            registry.auth_description()
        );
        targets.push(registry);
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let scratch = cli
        .scratch_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("berth-bench"));
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("creating scratch dir {}", scratch.display()))?;
    let ctx = Ctx {
        run_id: now.as_secs().to_string(),
        run_seed: now.as_nanos() as u64,
        scratch,
        targets,
        fixtures: Default::default(),
        cli,
    };

    let sections = scenarios::run_all(&ctx).await;
    let ok = !sections.iter().any(|s| s.has_errors());
    let header = scenarios::report_header(&ctx, started.elapsed());
    let text = report::render(&header, &sections, ctx.cli.rounds);
    println!("{text}");
    if let Some(path) = &ctx.cli.output {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    eprintln!("total runtime: {:.0} s", started.elapsed().as_secs_f64());
    Ok(ok)
}
