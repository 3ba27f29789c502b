//! What `berth adm gc` and `berth adm prune images` share: a run started by
//! hand is followed until it ends (a progress line on a terminal), then
//! printed in the format asked for, and a failed run fails the command.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde::Serialize;

use super::client::RemovedObject;
use super::output::{OutputFormat, Table, write_structured};
use crate::size_text::format_size;

/// A garbage collection or an image prune, as `/api/v1` answers it.
pub(super) trait ManualRun: Serialize {
    /// `garbagecollection`, `imageprune`: what `-o name` prints.
    const KIND: &'static str;
    /// What a failure is called: "garbage collection failed: …".
    const ACTIVITY: &'static str;
    fn name(&self) -> &str;
    fn dry_run(&self) -> bool;
    fn outcome(&self) -> Option<&str>;
    fn error(&self) -> Option<&str>;
    /// One line of how far the run has got, rewritten each second.
    fn progress_line(&self) -> String;
    /// What the run removed (or would), in one sentence.
    fn summary(&self) -> String;
    /// What follows the summary: the tables of what was removed.
    fn details(&self) -> String;
}

/// The accessors of [`ManualRun`] that read the fields both runs' wire
/// types name alike.
macro_rules! run_fields {
    () => {
        fn name(&self) -> &str {
            &self.metadata.name
        }
        fn dry_run(&self) -> bool {
            self.spec.dry_run
        }
        fn outcome(&self) -> Option<&str> {
            self.status.outcome.as_deref()
        }
        fn error(&self) -> Option<&str> {
            self.status.error.as_deref()
        }
    };
}
pub(super) use run_fields;

/// Follows `run` until it ends (a dry run has ended when it answers),
/// fetching it again each second by name, then prints it.
pub(super) async fn follow_and_print<R, F, Fut>(
    mut run: R,
    output: Option<&OutputFormat>,
    fetch: F,
) -> anyhow::Result<()>
where
    R: ManualRun,
    F: Fn(String) -> Fut,
    Fut: Future<Output = anyhow::Result<R>>,
{
    let progress = std::io::stderr().is_terminal() && output.is_none();
    while run.outcome().is_none() && !run.dry_run() {
        if progress {
            eprint!("\r{}   ", run.progress_line());
            let _ = std::io::stderr().flush();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        run = fetch(run.name().to_owned()).await?;
    }
    if progress {
        eprint!("\r{}\r", " ".repeat(run.progress_line().len() + 3));
    }
    let mut out = std::io::stdout().lock();
    match output {
        Some(OutputFormat::Name) if run.dry_run() => writeln!(out, "{} (dry run)", R::KIND)?,
        Some(OutputFormat::Name) => writeln!(out, "{}/{}", R::KIND, run.name())?,
        Some(format) => write_structured(&mut out, format, &run)?,
        None => {
            writeln!(out, "{}", run.summary())?;
            out.write_all(run.details().as_bytes())?;
        }
    }
    if run.outcome() == Some("Failed") {
        anyhow::bail!(
            "{} failed: {}",
            R::ACTIVITY,
            run.error().unwrap_or("see the server's log")
        );
    }
    Ok(())
}

/// The end of a summary: `Dry run: would remove {what}; nothing was
/// changed{hint}.` or `kind/name: Outcome; removed {what}.`
pub(super) fn summary_sentence<R: ManualRun>(run: &R, what: &str, dry_run_hint: &str) -> String {
    if run.dry_run() {
        format!("Dry run: would remove {what}; nothing was changed{dry_run_hint}.")
    } else {
        let outcome = run.outcome().unwrap_or("Running");
        format!("{}/{}: {outcome}; removed {what}.", R::KIND, run.name())
    }
}

/// A run's phase, or `starting` before it has one.
pub(super) fn phase_or_starting(phase: &str) -> &str {
    if phase.is_empty() { "starting" } else { phase }
}

/// `1 manifest`, `2 manifests`.
pub(super) fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The manifests, blobs and links a run removed (or would).
pub(super) fn removed_table(removed: &[RemovedObject]) -> String {
    let mut table = Table::new(&["KIND", "REPOSITORY", "DIGEST", "SIZE"]);
    for item in removed {
        table.row(vec![
            item.kind.clone(),
            item.repository.clone().unwrap_or_default(),
            item.digest.clone(),
            item.size.map(format_size).unwrap_or_default(),
        ]);
    }
    table.render()
}
