//! [`JobStore`] over SQL (both engines, like `sql.rs`).
//!
//! The statements are the same on both engines but for one expression, the
//! database's clock in milliseconds, which each engine spells its own way
//! (`NOW_MS` in the templates below). It is stable within a statement on
//! both: PostgreSQL's `statement_timestamp()`, SQLite's `'now'`.
//!
//! A claim is one conditional `UPDATE … RETURNING`. On PostgreSQL two
//! claims of one row serialize on its row lock, and the second re-checks
//! its `WHERE` against the row the first wrote (READ COMMITTED's rule for
//! `UPDATE`), which by then holds a live lease: it updates nothing. On
//! SQLite writers are serialized by the database lock. Either way exactly
//! one claimant gets a row back.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::jobs::{FinishedRun, JobClaim, JobOutcome, JobResult, JobStatus, JobStore, MadeDue};
use super::sql::{Engine, SqlMetadataStore};
use super::{MetadataError, Result, millis};

const REGISTER: &str = "INSERT INTO jobs (name, next_run_at) VALUES ($1, NOW_MS) \
     ON CONFLICT (name) DO NOTHING";

const CLAIM: &str = "UPDATE jobs SET lease_holder = $2, lease_id = $3, lease_until = NOW_MS + $4, \
     last_started_at = NOW_MS, last_replica = $2 \
     WHERE name = $1 AND next_run_at <= NOW_MS AND (lease_until IS NULL OR lease_until <= NOW_MS) \
     RETURNING last_started_at, consecutive_failures";

const RENEW: &str = "UPDATE jobs SET lease_until = NOW_MS + $3 WHERE name = $1 AND lease_id = $2";

const FINISH: &str = "UPDATE jobs SET lease_holder = NULL, lease_id = NULL, lease_until = NULL, \
     last_finished_at = NOW_MS, last_outcome = $3, last_error = $4, \
     consecutive_failures = CASE WHEN $3 = 'succeeded' THEN 0 ELSE consecutive_failures + 1 END, \
     runs = runs + 1, next_run_at = NOW_MS + $5 \
     WHERE name = $1 AND lease_id = $2 \
     RETURNING last_started_at, last_finished_at, next_run_at";

const RELEASE: &str = "UPDATE jobs SET lease_holder = NULL, lease_id = NULL, lease_until = NULL \
     WHERE name = $1 AND lease_id = $2";

const MAKE_DUE: &str = "UPDATE jobs SET next_run_at = NOW_MS \
     WHERE name = $1 AND (lease_until IS NULL OR lease_until <= NOW_MS)";

const SELECT: &str = "SELECT name, lease_holder, lease_until, last_started_at, last_finished_at, \
     last_outcome, last_error, last_replica, consecutive_failures, runs, next_run_at, \
     NOW_MS AS as_of FROM jobs";

/// The statements above, with the engine's clock put in.
struct Statements {
    register: String,
    claim: String,
    renew: String,
    finish: String,
    release: String,
    make_due: String,
    all: String,
    one: String,
}

impl Statements {
    fn for_clock(now_ms: &str) -> Statements {
        let spell = |template: &str| template.replace("NOW_MS", now_ms);
        Statements {
            register: spell(REGISTER),
            claim: spell(CLAIM),
            renew: spell(RENEW),
            finish: spell(FINISH),
            release: spell(RELEASE),
            make_due: spell(MAKE_DUE),
            all: spell(&format!("{SELECT} ORDER BY name")),
            one: spell(&format!("{SELECT} WHERE name = $1")),
        }
    }
}

static POSTGRES: LazyLock<Statements> = LazyLock::new(|| {
    Statements::for_clock("(EXTRACT(EPOCH FROM statement_timestamp()) * 1000)::BIGINT")
});
static SQLITE: LazyLock<Statements> =
    LazyLock::new(|| Statements::for_clock("CAST(ROUND(unixepoch('subsec') * 1000) AS INTEGER)"));

fn count(row: &AnyRow, column: &str) -> Result<i64> {
    let value: i64 = row.try_get(column)?;
    if value < 0 {
        return Err(MetadataError::Corrupt(format!(
            "negative {column}: {value}"
        )));
    }
    Ok(value)
}

fn job_from_row(row: &AnyRow) -> Result<JobStatus> {
    let outcome: Option<String> = row.try_get("last_outcome")?;
    let last_outcome = match outcome {
        None => None,
        Some(text) => Some(
            JobOutcome::parse(&text)
                .ok_or_else(|| MetadataError::Corrupt(format!("job outcome {text:?}")))?,
        ),
    };
    Ok(JobStatus {
        name: row.try_get("name")?,
        lease_holder: row.try_get("lease_holder")?,
        lease_until: row.try_get("lease_until")?,
        last_started_at: row.try_get("last_started_at")?,
        last_finished_at: row.try_get("last_finished_at")?,
        last_outcome,
        last_error: row.try_get("last_error")?,
        last_replica: row.try_get("last_replica")?,
        consecutive_failures: u32::try_from(count(row, "consecutive_failures")?)
            .unwrap_or(u32::MAX),
        runs: count(row, "runs")?.unsigned_abs(),
        next_run_at: row.try_get("next_run_at")?,
        as_of: row.try_get("as_of")?,
    })
}

impl SqlMetadataStore {
    fn job_statements(&self) -> &'static Statements {
        match self.engine() {
            Engine::Postgres => &POSTGRES,
            Engine::Sqlite => &SQLITE,
        }
    }
}

#[async_trait]
impl JobStore for SqlMetadataStore {
    async fn register_job(&self, name: &str) -> Result<()> {
        sqlx::query(AssertSqlSafe(self.job_statements().register.as_str()))
            .bind(name)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn claim_job(
        &self,
        name: &str,
        replica: &str,
        lease: Duration,
    ) -> Result<Option<JobClaim>> {
        let lease_id = uuid::Uuid::new_v4().simple().to_string();
        let row = sqlx::query(AssertSqlSafe(self.job_statements().claim.as_str()))
            .bind(name)
            .bind(replica)
            .bind(lease_id.as_str())
            .bind(millis(lease))
            .fetch_optional(self.writer())
            .await?;
        row.map(|row| {
            Ok(JobClaim {
                lease_id,
                started_at: row.try_get("last_started_at")?,
                consecutive_failures: u32::try_from(count(&row, "consecutive_failures")?)
                    .unwrap_or(u32::MAX),
            })
        })
        .transpose()
    }

    async fn renew_job_lease(&self, name: &str, lease_id: &str, lease: Duration) -> Result<bool> {
        let result = sqlx::query(AssertSqlSafe(self.job_statements().renew.as_str()))
            .bind(name)
            .bind(lease_id)
            .bind(millis(lease))
            .execute(self.writer())
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn finish_job(
        &self,
        name: &str,
        lease_id: &str,
        result: &JobResult,
    ) -> Result<Option<FinishedRun>> {
        Ok(
            sqlx::query_as(AssertSqlSafe(self.job_statements().finish.as_str()))
                .bind(name)
                .bind(lease_id)
                .bind(result.outcome.as_str())
                .bind(result.error.as_deref())
                .bind(millis(result.next_run_in))
                .fetch_optional(self.writer())
                .await?,
        )
    }

    async fn release_job(&self, name: &str, lease_id: &str) -> Result<bool> {
        let result = sqlx::query(AssertSqlSafe(self.job_statements().release.as_str()))
            .bind(name)
            .bind(lease_id)
            .execute(self.writer())
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn jobs(&self) -> Result<Vec<JobStatus>> {
        let rows = sqlx::query(AssertSqlSafe(self.job_statements().all.as_str()))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn job(&self, name: &str) -> Result<Option<JobStatus>> {
        let row = sqlx::query(AssertSqlSafe(self.job_statements().one.as_str()))
            .bind(name)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| job_from_row(&r)).transpose()
    }

    async fn make_job_due(&self, name: &str) -> Result<MadeDue> {
        let made = sqlx::query(AssertSqlSafe(self.job_statements().make_due.as_str()))
            .bind(name)
            .execute(self.writer())
            .await?
            .rows_affected()
            > 0;
        if made {
            return Ok(MadeDue::Due);
        }
        // Not made due: running, or not there. Read from the writer, which
        // saw the UPDATE's view of the row.
        let row = sqlx::query(AssertSqlSafe(self.job_statements().one.as_str()))
            .bind(name)
            .fetch_optional(self.writer())
            .await?;
        match row.map(|r| job_from_row(&r)).transpose()? {
            None => Ok(MadeDue::NotFound),
            Some(job) => match job.lease_holder {
                Some(holder) if job.is_running() => Ok(MadeDue::Running { holder }),
                // The lease ran out between the two statements: try again.
                _ => self.make_job_due(name).await,
            },
        }
    }
}
