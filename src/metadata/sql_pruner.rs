//! The image pruner's store over SQL (both engines, like `sql.rs`). Times
//! that decide what is trimmed are the database's clock, as the revisions'
//! and the garbage collector's are.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::pruner::{
    HistoryRevision, PruneProgress, PruneRun, PruneRunEnd, PrunerRecord, PrunerSettings,
    PrunerStore,
};
use super::sql::{SqlMetadataStore, from_row, get_u64, to_i64};
use super::{MetadataError, Result, millis};

fn count(row: &AnyRow, column: &str) -> Result<u32> {
    let n: i64 = row.try_get(column)?;
    u32::try_from(n).map_err(|_| MetadataError::Corrupt(format!("{column} out of range: {n}")))
}

fn record(row: &AnyRow) -> Result<PrunerRecord> {
    let keep_younger_than: i64 = row.try_get("keep_younger_than_ms")?;
    Ok(PrunerRecord {
        settings: PrunerSettings {
            schedule: row.try_get("schedule")?,
            suspend: row.try_get::<i64, _>("suspend")? != 0,
            keep_tag_revisions: count(row, "keep_tag_revisions")?,
            keep_younger_than: Duration::from_millis(u64::try_from(keep_younger_than).unwrap_or(0)),
            successful_jobs_history_limit: count(row, "successful_jobs_history_limit")?,
            failed_jobs_history_limit: count(row, "failed_jobs_history_limit")?,
            ignore_invalid_image_references: row
                .try_get::<i64, _>("ignore_invalid_image_references")?
                != 0,
        },
        scheduled_through: row.try_get("scheduled_through")?,
        updated_by: row.try_get("updated_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const RUN_COLUMNS: &str = "id, replica, trigger_kind, started_at, finished_at, phase, outcome, \
    error, options, revisions_removed, tags_removed, manifests_removed, blobs_removed, \
    bytes_freed, gc_run, removed";

#[async_trait]
impl PrunerStore for SqlMetadataStore {
    async fn pruner(&self) -> Result<PrunerRecord> {
        let row = sqlx::query("SELECT * FROM image_pruner WHERE id = 1")
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| MetadataError::Corrupt("the image pruner's row is missing".into()))?;
        record(&row)
    }

    async fn set_pruner(
        &self,
        settings: &PrunerSettings,
        by: Option<&str>,
    ) -> Result<PrunerRecord> {
        let clock = self.engine().clock_ms();
        // A new schedule, or a resume, counts from now.
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE image_pruner SET \
               scheduled_through = CASE WHEN schedule <> $1 OR (suspend <> 0 AND $2 = 0) \
                 THEN {clock} ELSE scheduled_through END, \
               schedule = $1, suspend = $2, keep_tag_revisions = $3, keep_younger_than_ms = $4, \
               successful_jobs_history_limit = $5, failed_jobs_history_limit = $6, \
               ignore_invalid_image_references = $7, updated_by = $8, updated_at = {clock} \
             WHERE id = 1"
        )))
        .bind(settings.schedule.as_str())
        .bind(i64::from(settings.suspend))
        .bind(i64::from(settings.keep_tag_revisions))
        .bind(millis(settings.keep_younger_than))
        .bind(i64::from(settings.successful_jobs_history_limit))
        .bind(i64::from(settings.failed_jobs_history_limit))
        .bind(i64::from(settings.ignore_invalid_image_references))
        .bind(by)
        .execute(self.writer())
        .await?;
        let row = sqlx::query("SELECT * FROM image_pruner WHERE id = 1")
            .fetch_one(self.writer())
            .await?;
        record(&row)
    }

    async fn take_scheduled_time(&self, due: i64) -> Result<bool> {
        let taken =
            sqlx::query("UPDATE image_pruner SET scheduled_through = $1 WHERE id = 1 AND scheduled_through < $1")
                .bind(due)
                .execute(self.writer())
                .await?;
        Ok(taken.rows_affected() == 1)
    }

    async fn count_expired_tags(&self) -> Result<u64> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM tags WHERE expires_at IS NOT NULL AND expires_at <= {}",
            self.engine().clock_ms()
        )))
        .fetch_one(self.reader())
        .await?;
        get_u64(&row, "n")
    }

    async fn tag_histories(
        &self,
        after: i64,
        limit: u32,
        namespace: Option<&str>,
    ) -> Result<Vec<HistoryRevision>> {
        let in_namespace = if namespace.is_some() {
            "AND substr(rr.name, 1, CAST($4 AS INTEGER)) = $3"
        } else {
            ""
        };
        let clock = self.engine().clock_ms();
        let sql = format!(
            "SELECT tr.repository_id, r.name AS repository, tr.tag, tr.generation, tr.digest, \
                    tr.created_at, t.digest AS current \
             FROM (SELECT rr.id, rr.name FROM repositories rr WHERE rr.id > $1 {in_namespace} \
                   AND EXISTS (SELECT 1 FROM tag_revisions x WHERE x.repository_id = rr.id) \
                   ORDER BY rr.id LIMIT $2) r \
             JOIN tag_revisions tr ON tr.repository_id = r.id \
             LEFT JOIN tags t ON t.repository_id = tr.repository_id AND t.name = tr.tag \
                  AND (t.expires_at IS NULL OR t.expires_at > {clock}) \
             ORDER BY tr.repository_id, tr.tag, tr.generation DESC"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(after)
            .bind(i64::from(limit));
        if let Some(ns) = namespace {
            let prefix = format!("{ns}/");
            let length = prefix.chars().count() as i64;
            query = query.bind(prefix).bind(length);
        }
        let rows = query.fetch_all(self.reader()).await?;
        rows.iter().map(from_row).collect()
    }

    async fn delete_tag_revisions(
        &self,
        repository_id: i64,
        revisions: &[(String, i64)],
        keep: u32,
        keep_younger_than: Duration,
    ) -> Result<Vec<(String, i64)>> {
        let clock = self.engine().clock_ms();
        let delete = format!(
            "DELETE FROM tag_revisions WHERE repository_id = $1 AND tag = $2 AND generation = $3 \
               AND created_at < {clock} - $4 \
               AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = $1 AND t.name = $2 \
                               AND t.digest = tag_revisions.digest) \
               AND (NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = $1 AND t.name = $2) \
                    OR (SELECT COUNT(*) FROM tag_revisions n WHERE n.repository_id = $1 \
                        AND n.tag = $2 AND n.generation > $3) >= $5)"
        );
        let mut tx = self.writer().begin().await?;
        let mut deleted = Vec::new();
        for (tag, generation) in revisions {
            let done = sqlx::query(AssertSqlSafe(delete.clone()))
                .bind(repository_id)
                .bind(tag.as_str())
                .bind(*generation)
                .bind(millis(keep_younger_than))
                .bind(i64::from(keep))
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 1 {
                deleted.push((tag.clone(), *generation));
            }
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn start_prune_run(
        &self,
        id: &str,
        replica: &str,
        trigger: &str,
        options: &str,
        stale_after: std::time::Duration,
    ) -> Result<Option<String>> {
        let clock = self.engine().clock_ms();
        let mut tx = self.writer().begin().await?;
        // The pruner's row, locked: starts on any replica take turns here
        // (SQLite's one writer does this by itself).
        sqlx::query("UPDATE image_pruner SET id = id WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE prune_runs SET outcome = 'Interrupted', finished_at = {clock} \
             WHERE outcome IS NULL AND replica <> $1 AND heartbeat_at < {clock} - $2"
        )))
        .bind(replica)
        .bind(millis(stale_after))
        .execute(&mut *tx)
        .await?;
        let going: Option<String> =
            sqlx::query_scalar("SELECT id FROM prune_runs WHERE outcome IS NULL LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        if going.is_some() {
            tx.commit().await?;
            return Ok(going);
        }
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO prune_runs (id, replica, trigger_kind, started_at, phase, options, \
             heartbeat_at) VALUES ($1, $2, $3, {clock}, 'starting', $4, {clock})"
        )))
        .bind(id)
        .bind(replica)
        .bind(trigger)
        .bind(options)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(None)
    }

    async fn prune_run_alive(&self, id: &str) -> Result<()> {
        let clock = self.engine().clock_ms();
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE prune_runs SET heartbeat_at = {clock} WHERE id = $1 AND outcome IS NULL"
        )))
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn record_prune_progress(&self, id: &str, progress: &PruneProgress) -> Result<()> {
        sqlx::query(
            "UPDATE prune_runs SET phase = $2, revisions_removed = $3, tags_removed = $4, \
             manifests_removed = $5, blobs_removed = $6, bytes_freed = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(progress.phase.as_str())
        .bind(to_i64(progress.revisions_removed))
        .bind(to_i64(progress.tags_removed))
        .bind(to_i64(progress.manifests_removed))
        .bind(to_i64(progress.blobs_removed))
        .bind(to_i64(progress.bytes_freed))
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn finish_prune_run(&self, id: &str, end: &PruneRunEnd<'_>) -> Result<()> {
        self.record_prune_progress(id, end.progress).await?;
        let mut tx = self.writer().begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE prune_runs SET outcome = $2, error = $3, gc_run = $4, removed = $5, \
             finished_at = {} WHERE id = $1",
            self.engine().clock_ms()
        )))
        .bind(id)
        .bind(end.outcome)
        .bind(end.error)
        .bind(end.gc_run)
        .bind(end.removed)
        .execute(&mut *tx)
        .await?;
        // The history limits (runs still going are never dropped).
        for (outcomes, keep) in [
            ("'Succeeded'", end.successful_kept),
            ("'Failed', 'Interrupted'", end.failed_kept),
        ] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM prune_runs WHERE outcome IN ({outcomes}) AND id NOT IN \
                 (SELECT id FROM prune_runs WHERE outcome IN ({outcomes}) \
                  ORDER BY started_at DESC, id LIMIT $1)"
            )))
            .bind(i64::from(keep))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn prune_runs(&self, limit: u32) -> Result<Vec<PruneRun>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM prune_runs ORDER BY started_at DESC, id LIMIT $1"
        )))
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?)
    }

    async fn prune_run(&self, id: &str) -> Result<Option<PruneRun>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM prune_runs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.writer())
        .await?)
    }
}
