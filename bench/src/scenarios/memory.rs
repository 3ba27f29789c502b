//! Idle memory of the registry processes, at the start and end of the run.

use std::time::Duration;

use anyhow::{Result, anyhow};

use super::Ctx;
use crate::procfs;
use crate::report::{Sample, Section};

fn read(ctx: &Ctx, t: usize, when: &str) -> Result<Vec<Sample>> {
    let pid = ctx.targets[t]
        .spec
        .pid
        .ok_or_else(|| anyhow!("no pid= given for this target"))?;
    let mut samples = vec![Sample::lower(
        format!("idle RSS, {when}"),
        "MiB",
        procfs::rss_kib(pid)? as f64 / 1024.0,
    )];
    if when == "end" {
        samples.push(Sample::lower(
            "peak RSS over the process lifetime (VmHWM)",
            "MiB",
            procfs::hwm_kib(pid)? as f64 / 1024.0,
        ));
    }
    Ok(samples)
}

async fn settle(ctx: &Ctx) {
    // Let background work (upload purging, GC, connection teardown) finish so
    // that the figure is the registry's resting footprint.
    tokio::time::sleep(Duration::from_secs_f64(ctx.cli.idle_wait)).await;
}

fn record(ctx: &Ctx, section: &mut Section, when: &str) {
    for t in 0..ctx.targets.len() {
        if section.failed(t) {
            continue;
        }
        match read(ctx, t, when) {
            Ok(samples) => {
                for s in samples {
                    eprintln!(
                        "[memory] {}: {} {:.1} MiB",
                        ctx.targets[t].name(),
                        s.metric,
                        s.value
                    );
                    section.record(t, s);
                }
            }
            Err(e) => section.fail(t, &e),
        }
    }
}

/// Reads idle RSS before anything is pushed; the section is completed by `finish`.
pub async fn start(ctx: &Ctx) -> Section {
    let description = format!(
        "VmRSS from /proc/PID/status of each registry process after {} s without \
         requests, at the start of the run (before this run pushes anything) and at the end. \
         Peak RSS while a large blob streams in is in the push-monolithic and push-chunked \
         rows (`server peak RSS`, VmRSS sampled every 10 ms during the push). Needs pid= on \
         the target and the registry on this machine.",
        ctx.cli.idle_wait
    );
    let mut section = Section::new("memory", "registry memory", description, ctx.columns());
    settle(ctx).await;
    record(ctx, &mut section, "start");
    section
}

pub async fn finish(ctx: &Ctx, section: &mut Section) {
    settle(ctx).await;
    record(ctx, section, "end");
}
