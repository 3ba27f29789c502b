//! `berth adm gc [--dry-run] [-o FORMAT]` and `berth adm gc runs`: online
//! garbage collection, run by hand through `/api/v1/garbagecollections`.

use time::OffsetDateTime;

use super::client::{GarbageCollection, List};
use super::output::{OutputFormat, Printable, age, object_identity, print_list};
use super::runs::{
    ManualRun, counted, follow_and_print, phase_or_starting, removed_table, run_fields,
    summary_sentence,
};
use super::session::Session;
use crate::size_text::format_size;

#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "\
A run removes manifests that no tag, tag history, kept index or kept subject \
keeps, and blobs that no manifest references, once they are older than \
gc.blobGracePeriod (1h by default, counted from an upload, a mount, a manifest \
put or a HEAD of the blob). Pushes and pulls go on while it runs. It runs on one \
replica at a time, as the garbage-collection job does on schedule (gc.interval); \
a run that does not end within 50 s is followed until it does."
)]
pub struct AdmGcArgs {
    #[command(subcommand)]
    pub command: Option<AdmGcCommand>,
    /// Only list what a run would remove now and the bytes it would free;
    /// change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format instead of the summary and table: json, yaml, name or
    /// jsonpath=TEMPLATE.
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdmGcCommand {
    /// The latest runs, newest first: when, phase, outcome, what they
    /// removed.
    Runs(RunsArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

pub async fn gc(session: &Session, args: AdmGcArgs) -> anyhow::Result<()> {
    let client = session.client()?;
    if let Some(AdmGcCommand::Runs(runs)) = args.command {
        let list: List<GarbageCollection> = client.list_garbage_collections().await?;
        return print_list(&list, runs.output.as_ref(), None);
    }
    let run = client.run_garbage_collection(args.dry_run).await?;
    let client = &client;
    follow_and_print(run, args.output.as_ref(), |name| async move {
        Ok(client.get_garbage_collection(&name).await?)
    })
    .await
}

impl ManualRun for GarbageCollection {
    const KIND: &'static str = "garbagecollection";
    const ACTIVITY: &'static str = "garbage collection";
    run_fields!();
    fn progress_line(&self) -> String {
        let s = &self.status;
        format!(
            "{}: {} manifests, {} blobs ({}), {} blob links removed",
            phase_or_starting(&s.phase),
            s.manifests_removed,
            s.blobs_removed,
            format_size(s.bytes_freed),
            s.blob_links_removed
        )
    }
    fn summary(&self) -> String {
        let s = &self.status;
        let listed = s.removed.len() as u64;
        let total = s.manifests_removed + s.blobs_removed + s.blob_links_removed;
        let more = if total > listed {
            format!(" (the first {listed} listed)")
        } else {
            String::new()
        };
        let what = format!(
            "{}, {} ({}) and {}{more}",
            counted(s.manifests_removed, "manifest", "manifests"),
            counted(s.blobs_removed, "blob", "blobs"),
            format_size(s.bytes_freed),
            counted(s.blob_links_removed, "blob link", "blob links"),
        );
        summary_sentence(self, &what, "")
    }
    fn details(&self) -> String {
        if self.status.removed.is_empty() {
            String::new()
        } else {
            removed_table(&self.status.removed)
        }
    }
}

impl Printable for GarbageCollection {
    object_identity!("garbagecollection");
    fn headers() -> &'static [&'static str] {
        &[
            "NAME",
            "STARTED",
            "PHASE",
            "OUTCOME",
            "MANIFESTS",
            "BLOBS",
            "FREED",
            "ERROR",
        ]
    }
    fn row(&self, now: OffsetDateTime) -> Vec<String> {
        let s = &self.status;
        vec![
            self.metadata.name.clone(),
            format!("{} ago", age(s.start_time.as_deref(), now)),
            s.phase.clone(),
            s.outcome.clone().unwrap_or_else(|| "Running".into()),
            s.manifests_removed.to_string(),
            s.blobs_removed.to_string(),
            format_size(s.bytes_freed),
            s.error
                .as_deref()
                .map(|e| e.lines().next().unwrap_or_default().to_owned())
                .unwrap_or_default(),
        ]
    }
    fn wide_headers() -> &'static [&'static str] {
        &["REPLICA", "BLOB LINKS", "EXAMINED", "FINISHED"]
    }
    fn wide_cells(&self) -> Vec<String> {
        let s = &self.status;
        vec![
            s.replica.clone().unwrap_or_else(|| "<none>".into()),
            s.blob_links_removed.to_string(),
            format!(
                "{} manifests, {} blobs",
                s.manifests_examined, s.blobs_examined
            ),
            s.completion_time.clone().unwrap_or_else(|| "<none>".into()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::client::{ObjectMeta, RemovedObject};
    use crate::cli::output::datetime;
    use crate::wire::{GarbageCollectionSpec, GarbageCollectionStatus};

    fn run(dry_run: bool) -> GarbageCollection {
        GarbageCollection {
            api_version: "v1".into(),
            kind: "GarbageCollection".into(),
            metadata: ObjectMeta::named("run-1"),
            spec: GarbageCollectionSpec {
                dry_run,
                ..Default::default()
            },
            status: GarbageCollectionStatus {
                phase: "done".into(),
                outcome: Some("Succeeded".into()),
                start_time: Some("2026-11-22T09:58:00Z".into()),
                manifests_removed: 1,
                blobs_removed: 2,
                bytes_freed: 3 * 1024 * 1024 + 512 * 1024,
                removed: vec![
                    RemovedObject {
                        kind: "Manifest".into(),
                        repository: Some("ns/app".into()),
                        digest: "sha256:aa".into(),
                        size: None,
                    },
                    RemovedObject {
                        kind: "Blob".into(),
                        repository: None,
                        digest: "sha256:bb".into(),
                        size: Some(2048),
                    },
                ],
                ..Default::default()
            },
            extra: Default::default(),
        }
    }

    #[test]
    fn sizes_read_like_sizes() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(format_size(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn the_summary_says_what_went_or_would_go() {
        // Three things removed, two listed.
        assert_eq!(
            run(true).summary(),
            "Dry run: would remove 1 manifest, 2 blobs (3.5 MiB) and 0 blob links \
             (the first 2 listed); nothing was changed."
        );
        assert_eq!(
            run(false).summary(),
            "garbagecollection/run-1: Succeeded; removed 1 manifest, 2 blobs (3.5 MiB) \
             and 0 blob links (the first 2 listed)."
        );
        let table = run(false).details();
        assert!(table.contains("ns/app"), "{table}");
        assert!(table.contains("2.0 KiB"), "{table}");
    }

    #[test]
    fn runs_list_as_rows() {
        let now = datetime("2026-11-22T10:00:00Z");
        assert_eq!(
            run(false).row(now),
            [
                "run-1",
                "2m ago",
                "done",
                "Succeeded",
                "1",
                "2",
                "3.5 MiB",
                ""
            ]
        );
    }
}
