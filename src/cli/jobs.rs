//! `berth adm jobs [-o FORMAT]` and `berth adm jobs run NAME`: the
//! background jobs that run on one replica at a time.

use time::OffsetDateTime;

use super::client::Job;
use super::output::{
    OutputFormat, Printable, age, object_identity, print_list, print_one, timestamp_cell,
};
use super::session::Session;

#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "\
Jobs every replica runs for itself (metrics upkeep, reloading the signing \
keys) are not listed. HOLDER is the replica running a job now; a replica \
that dies running one holds it until its lease expires (LEASE EXPIRES in \
-o wide), and then another takes it over."
)]
pub struct AdmJobsArgs {
    #[command(subcommand)]
    pub command: Option<AdmJobsCommand>,
    /// Output format instead of a table: json, yaml, name, wide (with the
    /// failure count, runs, lease and exact times), or jsonpath=TEMPLATE.
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdmJobsCommand {
    /// Make a job due now: the next replica to look at it (at once, the
    /// one answering) runs it. A job running now is not queued again.
    Run(RunJobArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunJobArgs {
    /// The job (`berth adm jobs` lists them).
    pub name: String,
    #[arg(short, long, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
}

pub async fn jobs(session: &Session, args: AdmJobsArgs) -> anyhow::Result<()> {
    let client = session.client()?;
    match args.command {
        None => print_list(&client.list_jobs().await?, args.output.as_ref(), None),
        Some(AdmJobsCommand::Run(run)) => {
            let job = client.run_job(&run.name).await?;
            match run.output {
                None => {
                    match &job.status.holder {
                        Some(holder) => {
                            println!("job/{} is running now, on {holder}", job.metadata.name)
                        }
                        None => println!("job/{} is due now", job.metadata.name),
                    }
                    Ok(())
                }
                Some(format) => print_one(&job, Some(&format)),
            }
        }
    }
}

/// `in 5m`, `due` when the time has come, `<none>` when unknown.
fn next_run(timestamp: Option<&str>, now: OffsetDateTime) -> String {
    super::output::until(timestamp, now, "<none>", "due")
}

impl Printable for Job {
    object_identity!("job");
    fn headers() -> &'static [&'static str] {
        &["NAME", "LAST RUN", "OUTCOME", "NEXT RUN", "HOLDER", "ERROR"]
    }
    fn row(&self, now: OffsetDateTime) -> Vec<String> {
        let status = &self.status;
        let last_run = match &status.last_start_time {
            Some(_) => format!("{} ago", age(status.last_start_time.as_deref(), now)),
            None => "never".into(),
        };
        vec![
            self.metadata.name.clone(),
            last_run,
            status
                .last_outcome
                .clone()
                .unwrap_or_else(|| "<none>".into()),
            next_run(status.next_run_time.as_deref(), now),
            status.holder.clone().unwrap_or_else(|| "<none>".into()),
            status
                .last_error
                .as_deref()
                .map(|e| e.lines().next().unwrap_or_default().to_owned())
                .unwrap_or_default(),
        ]
    }
    fn wide_headers() -> &'static [&'static str] {
        &[
            "FAILURES",
            "RUNS",
            "LAST REPLICA",
            "LEASE EXPIRES",
            "STARTED",
            "FINISHED",
        ]
    }
    fn wide_cells(&self) -> Vec<String> {
        let status = &self.status;
        vec![
            status.consecutive_failures.to_string(),
            status.runs.to_string(),
            status
                .last_replica
                .clone()
                .unwrap_or_else(|| "<none>".into()),
            timestamp_cell(status.lease_expiry_time.as_deref()),
            timestamp_cell(status.last_start_time.as_deref()),
            timestamp_cell(status.last_completion_time.as_deref()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::client::{JobStatus, ObjectMeta};
    use crate::cli::output::datetime;

    #[test]
    fn rows_say_when_and_how_it_ran() {
        let job = Job {
            api_version: "v1".into(),
            kind: "Job".into(),
            metadata: ObjectMeta::named("stale-uploads"),
            status: JobStatus {
                holder: Some("host-42-abc123".into()),
                last_start_time: Some("2026-11-22T09:58:00Z".into()),
                last_outcome: Some("Failed".into()),
                last_error: Some("database: gone\nmore detail".into()),
                consecutive_failures: 2,
                runs: 7,
                next_run_time: Some("2026-11-22T10:05:00Z".into()),
                ..JobStatus::default()
            },
            extra: Default::default(),
        };
        let now = datetime("2026-11-22T10:00:00Z");
        assert_eq!(
            job.row(now),
            [
                "stale-uploads",
                "2m ago",
                "Failed",
                "in 5m",
                "host-42-abc123",
                "database: gone"
            ]
        );
        assert_eq!(
            job.wide_cells(),
            [
                "2",
                "7",
                "<none>",
                "<none>",
                "2026-11-22T09:58:00Z",
                "<none>"
            ]
        );
        let fresh = Job {
            status: JobStatus {
                next_run_time: Some("2026-11-22T09:59:59Z".into()),
                ..JobStatus::default()
            },
            ..job
        };
        assert_eq!(
            fresh.row(now),
            ["stale-uploads", "never", "<none>", "due", "<none>", ""]
        );
        assert_eq!(fresh.kind(), "job");
    }
}
