//! `berth adm pruner status|set` (the image pruner's settings, conditions
//! and runs) and `berth adm prune images` (a dry run, or with `--confirm` a
//! run), through `/api/v1/imagepruners/cluster`.

use std::io::Write;

use super::client::{ImagePrune, ImagePruneSpec, ImagePruner, ImagePrunerSpec};
use super::output::{OutputFormat, Table, write_structured};
use super::runs::{
    ManualRun, counted, follow_and_print, phase_or_starting, removed_table, run_fields,
    summary_sentence,
};
use super::session::Session;
use crate::size_text::format_size;

#[derive(Debug, clap::Args)]
pub struct AdmPrunerArgs {
    #[command(subcommand)]
    pub command: AdmPrunerCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdmPrunerCommand {
    /// The pruner's schedule and rules, its conditions and its latest runs.
    Status(PrunerStatusArgs),
    /// Change the pruner's schedule or rules (the others stay).
    Set(PrunerSetArgs),
}

#[derive(Debug, clap::Args)]
pub struct PrunerStatusArgs {
    /// Output format instead of the summary: json, yaml, name or
    /// jsonpath=TEMPLATE.
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The schedule is cron, five fields (minute hour day-of-month month day-of-week), \
in UTC: '0 3 * * *' runs at 03:00 every day. A new schedule, or a resume, counts \
from now: times missed before are not made up.")]
pub struct PrunerSetArgs {
    #[arg(long, value_name = "CRON")]
    pub schedule: Option<String>,
    /// Stop scheduled runs (`--suspend=false` resumes them).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub suspend: Option<bool>,
    /// Revisions of each tag kept, the current one included.
    #[arg(long, value_name = "N")]
    pub keep_tag_revisions: Option<u32>,
    /// Revisions younger than this are kept whatever their number: 60m, 2d.
    #[arg(long, value_name = "DURATION")]
    pub keep_younger_than: Option<String>,
    /// Succeeded runs kept in the history.
    #[arg(long, value_name = "N")]
    pub successful_jobs_history_limit: Option<u32>,
    /// Failed runs kept in the history.
    #[arg(long, value_name = "N")]
    pub failed_jobs_history_limit: Option<u32>,
    /// Leave alone tag revisions that name no image digest instead of
    /// failing the run.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub ignore_invalid_image_references: Option<bool>,
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, clap::Args)]
pub struct AdmPruneArgs {
    #[command(subcommand)]
    pub command: AdmPruneCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdmPruneCommand {
    /// Remove old tag revisions, then the images and blobs nothing keeps. A
    /// dry run unless --confirm.
    #[command(after_help = "\
Never removed: the revision a tag points at, a revision younger than \
--keep-younger-than or among a tag's --keep-tag-revisions newest, an image a \
kept revision, a kept index or a kept subject (for signatures, SBOMs and \
attestations) reaches, a blob a kept image or an upload in progress needs, and \
anything touched within gc.blobGracePeriod. Pushes and pulls go on meanwhile.")]
    Images(PruneImagesArgs),
}

#[derive(Debug, clap::Args)]
pub struct PruneImagesArgs {
    /// Revisions of each tag kept (default: the pruner's, 3).
    #[arg(long, value_name = "N")]
    pub keep_tag_revisions: Option<u32>,
    /// Revisions younger than this are kept (default: the pruner's, 60m).
    #[arg(long, value_name = "DURATION")]
    pub keep_younger_than: Option<String>,
    /// Only this namespace's tag histories.
    #[arg(long, short = 'n', value_name = "NS", conflicts_with = "all")]
    pub namespace: Option<String>,
    /// Every namespace's tag histories.
    #[arg(long)]
    pub all: bool,
    /// Remove; without it, only list what would be removed.
    #[arg(long)]
    pub confirm: bool,
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

pub async fn pruner(session: &Session, args: AdmPrunerArgs) -> anyhow::Result<()> {
    let client = session.client()?;
    let (pruner, output) = match args.command {
        AdmPrunerCommand::Status(args) => (client.image_pruner().await?, args.output),
        AdmPrunerCommand::Set(args) => {
            let spec = ImagePrunerSpec {
                schedule: args.schedule,
                suspend: args.suspend,
                keep_tag_revisions: args.keep_tag_revisions,
                keep_younger_than_duration: args.keep_younger_than,
                successful_jobs_history_limit: args.successful_jobs_history_limit,
                failed_jobs_history_limit: args.failed_jobs_history_limit,
                ignore_invalid_image_references: args.ignore_invalid_image_references,
            };
            if spec == ImagePrunerSpec::default() {
                anyhow::bail!(
                    "nothing to change: give --schedule, --suspend, --keep-tag-revisions, \
                     --keep-younger-than or a history limit"
                );
            }
            (client.patch_image_pruner(spec).await?, args.output)
        }
    };
    let mut out = std::io::stdout().lock();
    match output.as_ref() {
        Some(OutputFormat::Name) => writeln!(out, "imagepruner/{}", pruner.metadata.name)?,
        Some(format) => write_structured(&mut out, format, &pruner)?,
        None => out.write_all(describe(&pruner).as_bytes())?,
    }
    Ok(())
}

pub async fn prune(session: &Session, args: AdmPruneArgs) -> anyhow::Result<()> {
    let AdmPruneCommand::Images(args) = args.command;
    if args.namespace.is_none() && !args.all {
        anyhow::bail!("name the namespace to prune (--namespace NS) or --all for every namespace");
    }
    let client = session.client()?;
    let run = client
        .prune_images(ImagePruneSpec {
            dry_run: !args.confirm,
            keep_tag_revisions: args.keep_tag_revisions,
            keep_younger_than_duration: args.keep_younger_than,
            namespace: args.namespace,
            ignore_invalid_image_references: None,
        })
        .await?;
    let client = &client;
    follow_and_print(run, args.output.as_ref(), |name| async move {
        Ok(client.get_image_prune(&name).await?)
    })
    .await
}

impl ManualRun for ImagePrune {
    const KIND: &'static str = "imageprune";
    const ACTIVITY: &'static str = "pruning";
    run_fields!();
    fn progress_line(&self) -> String {
        let s = &self.status;
        format!(
            "{}: {} tag revisions, {} images, {} blobs ({}) removed",
            phase_or_starting(&s.phase),
            s.revisions_removed,
            s.manifests_removed,
            s.blobs_removed,
            format_size(s.bytes_freed),
        )
    }
    fn summary(&self) -> String {
        let s = &self.status;
        let what = format!(
            "{}, {}, {} and {} ({})",
            counted(s.revisions_removed, "tag revision", "tag revisions"),
            counted(s.tags_removed, "expired tag", "expired tags"),
            counted(s.manifests_removed, "image", "images"),
            counted(s.blobs_removed, "blob", "blobs"),
            format_size(s.bytes_freed),
        );
        summary_sentence(self, &what, " (--confirm removes)")
    }
    fn details(&self) -> String {
        let mut out = String::new();
        if !self.status.revisions.is_empty() {
            out += &revisions_table(self);
        }
        if !self.status.removed.is_empty() {
            out += "\n";
            out += &removed_table(&self.status.removed);
        }
        out
    }
}

fn revisions_table(run: &ImagePrune) -> String {
    let mut table = Table::new(&["REPOSITORY", "TAG", "GENERATION", "IMAGE", "CREATED"]);
    for r in &run.status.revisions {
        table.row(vec![
            r.repository.clone(),
            r.tag.clone(),
            r.generation.to_string(),
            r.image.clone(),
            r.created.clone().unwrap_or_default(),
        ]);
    }
    table.render()
}

/// `berth adm pruner status`: settings, conditions, runs.
fn describe(pruner: &ImagePruner) -> String {
    let spec = &pruner.spec;
    let status = &pruner.status;
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "<none>".into());
    let number = |v: Option<u32>| v.map_or_else(|| "<none>".into(), |n| n.to_string());
    let mut out = format!("imagepruner/{}\n", pruner.metadata.name);
    out += &format!(
        "Schedule:          {}{}\n",
        text(&spec.schedule),
        if spec.suspend == Some(true) {
            " (suspended)".to_owned()
        } else {
            status
                .next_scheduled_time
                .as_ref()
                .map(|t| format!(" (next: {t})"))
                .unwrap_or_default()
        }
    );
    out += &format!(
        "Keep:              {} tag revisions; revisions younger than {}\n",
        number(spec.keep_tag_revisions),
        text(&spec.keep_younger_than_duration)
    );
    out += &format!(
        "History kept:      {} succeeded, {} failed runs\n",
        number(spec.successful_jobs_history_limit),
        number(spec.failed_jobs_history_limit)
    );
    out += &format!(
        "Invalid references: {}\n",
        if spec.ignore_invalid_image_references == Some(false) {
            "fail the run"
        } else {
            "ignored"
        }
    );
    out += "\nConditions:\n";
    let mut conditions = Table::new(&["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"]);
    for c in &status.conditions {
        conditions.row(vec![
            c.condition_type.clone(),
            c.status.clone(),
            c.reason.clone().unwrap_or_default(),
            c.last_transition_time.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        ]);
    }
    out += &conditions.render();
    out += "\nRuns:\n";
    if status.runs.is_empty() {
        out += "none yet\n";
    } else {
        let mut runs = Table::new(&[
            "NAME",
            "TRIGGER",
            "STARTED",
            "OUTCOME",
            "REVISIONS",
            "IMAGES",
            "BLOBS",
            "FREED",
        ]);
        for run in &status.runs {
            let s = &run.status;
            runs.row(vec![
                run.metadata.name.clone(),
                s.trigger.clone(),
                s.start_time.clone().unwrap_or_default(),
                s.outcome
                    .clone()
                    .unwrap_or_else(|| format!("Running ({})", s.phase)),
                s.revisions_removed.to_string(),
                s.manifests_removed.to_string(),
                s.blobs_removed.to_string(),
                format_size(s.bytes_freed),
            ]);
        }
        out += &runs.render();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ImagePruneStatus, PrunedRevision};

    fn run(dry_run: bool) -> ImagePrune {
        ImagePrune {
            metadata: crate::wire::ObjectMeta::named("run-1"),
            spec: ImagePruneSpec {
                dry_run,
                ..Default::default()
            },
            status: ImagePruneStatus {
                outcome: Some("Succeeded".into()),
                revisions_removed: 2,
                manifests_removed: 1,
                blobs_removed: 3,
                bytes_freed: 3 * 1024 * 1024,
                revisions: vec![PrunedRevision {
                    repository: "ns/app".into(),
                    tag: "latest".into(),
                    generation: 1,
                    image: "sha256:aa".into(),
                    created: None,
                }],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_summary_says_what_went_or_would_go() {
        assert_eq!(
            run(true).summary(),
            "Dry run: would remove 2 tag revisions, 0 expired tags, 1 image and 3 blobs \
             (3.0 MiB); nothing was changed (--confirm removes)."
        );
        assert_eq!(
            run(false).summary(),
            "imageprune/run-1: Succeeded; removed 2 tag revisions, 0 expired tags, 1 image and \
             3 blobs (3.0 MiB)."
        );
        assert!(revisions_table(&run(false)).contains("ns/app"));
    }
}
