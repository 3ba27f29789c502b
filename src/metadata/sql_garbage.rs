//! Garbage collection over SQL (both engines, like `sql.rs`): the
//! [`GarbageStore`] the collector runs on, and the steps of the push path
//! that hold what they use against it (a blob touched when an upload
//! completes or a mount links it, a manifest's references locked while its
//! put records them).
//!
//! The protocol (ARCHITECTURE.md, "Garbage collection"): the collector
//! locks candidate rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL: a row a
//! push holds is skipped, as in use), then decides again in a statement
//! whose snapshot is taken after the locks, so that whatever a push
//! committed before is seen; a push that comes after waits for the
//! collector's commit and then finds the row gone or marked. Every time
//! here is the database's clock.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Row};

use super::garbage::{
    GarbageStore, GcBlob, GcBlobLink, GcBlobRow, GcProgress, GcRun, RepositoryGraph,
};
use super::sql::{Engine, SqlMetadataStore, from_row, get_u64, parse, placeholders, to_i64};
use super::{
    BlobClaim, BlobLink, MetadataError, NewManifest, ReferenceKind, Result, Timestamp, millis,
};
use crate::oci::digest::Digest;
use crate::oci::names::RepositoryName;

/// Digests per statement, where a statement names a list of them.
const IN_LIST: usize = 500;

/// The later of two times a row was made and touched.
fn latest(row: &AnyRow, made: &str, touched: &str) -> Result<Timestamp> {
    let made: i64 = row.try_get(made)?;
    let touched: i64 = row.try_get(touched)?;
    Ok(made.max(touched))
}

fn digests_of(rows: &[AnyRow], column: &str) -> Result<Vec<Digest>> {
    rows.iter().map(|r| parse(r, column)).collect()
}

/// Sorted and without repeats: rows are locked in this order everywhere,
/// so that two transactions never wait for each other crosswise.
fn sorted(digests: impl IntoIterator<Item = Digest>) -> Vec<Digest> {
    digests
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

// ---------------------------------------------------------------------------
// The push path.

/// The blob's size and when it was last touched (or made), if it is linked
/// into `repo`: what a blob GET or HEAD reads, in one indexed query. Only
/// the blob's row is read for it, as for the size: the link's own columns
/// would cost a lookup of its table row, where its primary key's index
/// alone answers (about a tenth of a blob HEAD's time on SQLite).
pub(super) async fn blob_link(
    pool: &AnyPool,
    repo: &RepositoryName,
    digest: &Digest,
) -> Result<Option<BlobLink>> {
    let row = sqlx::query(
        "SELECT b.size, b.created_at, b.touched_at FROM repository_blobs rb \
         JOIN repositories r ON r.id = rb.repository_id \
         JOIN blobs b ON b.digest = rb.digest \
         WHERE r.name = $1 AND rb.digest = $2",
    )
    .bind(repo.as_str())
    .bind(digest.as_str())
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(BlobLink {
            size: get_u64(&r, "size")?,
            touched_at: latest(&r, "created_at", "touched_at")?,
        })
    })
    .transpose()
}

/// Touches the blob, and its link into `repo`, each if it was not touched
/// within `older_than`.
pub(super) async fn touch_blob(
    pool: &AnyPool,
    engine: Engine,
    repo: &RepositoryName,
    digest: &Digest,
    older_than: Duration,
) -> Result<bool> {
    let now = engine.clock_ms();
    let mut tx = pool.begin().await?;
    let blob = sqlx::query(AssertSqlSafe(format!(
        "UPDATE blobs SET touched_at = {now} WHERE digest = $1 AND deleting_until IS NULL \
         AND created_at < {now} - $2 AND touched_at < {now} - $2"
    )))
    .bind(digest.as_str())
    .bind(millis(older_than))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let link = sqlx::query(AssertSqlSafe(format!(
        "UPDATE repository_blobs SET touched_at = {now} WHERE digest = $1 \
         AND repository_id = (SELECT id FROM repositories WHERE name = $3) \
         AND created_at < {now} - $2 AND touched_at < {now} - $2"
    )))
    .bind(digest.as_str())
    .bind(millis(older_than))
    .bind(repo.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(blob + link > 0)
}

/// Makes sure the blob's row exists, live and touched now (see
/// [`super::MetadataStore::claim_blob`]). Each step is its own statement:
/// on PostgreSQL an update of a row the collector is marking waits for its
/// commit and then sees the mark.
pub(super) async fn claim_blob(
    pool: &AnyPool,
    engine: Engine,
    digest: &Digest,
    size: u64,
) -> Result<BlobClaim> {
    let now = engine.clock_ms();
    let mut until = 0;
    // A row can come and go between the steps (marked, swept, made again):
    // a few rounds settle it.
    for _ in 0..4 {
        let touched = sqlx::query(AssertSqlSafe(format!(
            "UPDATE blobs SET touched_at = {now} WHERE digest = $1 AND deleting_until IS NULL"
        )))
        .bind(digest.as_str())
        .execute(pool)
        .await?
        .rows_affected();
        if touched > 0 {
            return Ok(BlobClaim::Claimed);
        }
        let made = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO blobs (digest, size, created_at, touched_at) VALUES ($1, $2, {now}, {now}) \
             ON CONFLICT (digest) DO NOTHING"
        )))
        .bind(digest.as_str())
        .bind(to_i64(size))
        .execute(pool)
        .await?
        .rows_affected();
        if made > 0 {
            return Ok(BlobClaim::Claimed);
        }
        // Marked by a run that is past its deadline (it stopped or died): it
        // sends no delete any more, so the row can be used again. Its bytes
        // may be gone: the caller is about to write them.
        let taken_over = sqlx::query(AssertSqlSafe(format!(
            "UPDATE blobs SET deleting_until = NULL, touched_at = {now} \
             WHERE digest = $1 AND deleting_until IS NOT NULL AND deleting_until < {now}"
        )))
        .bind(digest.as_str())
        .execute(pool)
        .await?
        .rows_affected();
        if taken_over > 0 {
            tracing::info!(%digest, "took over a blob an interrupted garbage collection was deleting");
            return Ok(BlobClaim::Claimed);
        }
        let row = sqlx::query("SELECT deleting_until FROM blobs WHERE digest = $1")
            .bind(digest.as_str())
            .fetch_optional(pool)
            .await?;
        if let Some(row) = row
            && let Some(deadline) = row.try_get::<Option<i64>, _>("deleting_until")?
        {
            until = deadline;
            return Ok(BlobClaim::BeingDeleted { until });
        }
    }
    Ok(BlobClaim::BeingDeleted { until })
}

/// Touches the blob if it is live, inside the caller's transaction; its
/// size, or `None` if it is unknown or being deleted.
pub(super) async fn touch_live_blob(
    conn: &mut AnyConnection,
    engine: Engine,
    digest: &Digest,
) -> Result<Option<u64>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE blobs SET touched_at = {} WHERE digest = $1 AND deleting_until IS NULL \
         RETURNING size",
        engine.clock_ms()
    )))
    .bind(digest.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| get_u64(&r, "size")).transpose()
}

/// Links the blob into the repository (touching the link), inside the
/// caller's transaction. With `size`, the blob's row is first made or
/// touched; false (nothing written) if it is being deleted. Without, the
/// caller has touched the row ([`touch_live_blob`]).
pub(super) async fn link_live_blob(
    conn: &mut AnyConnection,
    engine: Engine,
    repository_id: i64,
    digest: &Digest,
    size: Option<u64>,
) -> Result<bool> {
    let now = engine.clock_ms();
    if let Some(size) = size {
        let live = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO blobs (digest, size, created_at, touched_at) VALUES ($1, $2, {now}, {now}) \
             ON CONFLICT (digest) DO UPDATE SET touched_at = excluded.touched_at \
             WHERE blobs.deleting_until IS NULL"
        )))
        .bind(digest.as_str())
        .bind(to_i64(size))
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if live == 0 {
            return Ok(false);
        }
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO repository_blobs (repository_id, digest, created_at, touched_at) \
         VALUES ($1, $2, {now}, {now}) \
         ON CONFLICT (repository_id, digest) DO UPDATE SET touched_at = excluded.touched_at"
    )))
    .bind(repository_id)
    .bind(digest.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Inserts the manifest's row if it is new (true), or holds the existing
/// one (`FOR SHARE` on PostgreSQL) so that the collector cannot delete it
/// before this transaction links it; a row the collector deleted in
/// between is inserted again.
pub(super) async fn hold_manifest_row(
    conn: &mut AnyConnection,
    engine: Engine,
    manifest: &NewManifest,
    at: Timestamp,
) -> Result<bool> {
    for _ in 0..4 {
        let inserted = sqlx::query(
            "INSERT INTO manifests (digest, media_type, size, content, artifact_type, subject, annotations, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(manifest.digest.as_str())
        .bind(manifest.media_type.as_str())
        .bind(to_i64(manifest.content.len() as u64))
        .bind(manifest.content.to_vec())
        .bind(manifest.artifact_type.as_deref())
        .bind(manifest.subject.as_ref().map(Digest::as_str))
        .bind(manifest.annotations.as_deref())
        .bind(at)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            > 0;
        if inserted || engine == Engine::Sqlite {
            return Ok(inserted);
        }
        let held = sqlx::query("SELECT 1 AS one FROM manifests WHERE digest = $1 FOR SHARE")
            .bind(manifest.digest.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        if held.is_some() {
            return Ok(false);
        }
    }
    Err(MetadataError::Corrupt(format!(
        "manifest {} kept disappearing while it was stored",
        manifest.digest
    )))
}

/// Locks (`FOR SHARE`, PostgreSQL) what the manifest references in the
/// repository (blobs with their links, child manifests' links), and
/// returns the first required one missing. A row the collector has
/// locked makes this wait for its commit, after which a removed row is
/// missing; a row held here is skipped by the collector.
pub(super) async fn hold_references(
    conn: &mut AnyConnection,
    engine: Engine,
    repository_id: i64,
    manifest: &NewManifest,
) -> Result<Option<Digest>> {
    let of_kind = |kinds: &[ReferenceKind]| {
        sorted(
            manifest
                .references
                .iter()
                .filter(|(_, kind)| kinds.contains(kind))
                .map(|(digest, _)| digest.clone()),
        )
    };
    let blobs = of_kind(&[ReferenceKind::Config, ReferenceKind::Layer]);
    let mut present = HashSet::new();
    for chunk in blobs.chunks(IN_LIST) {
        let sql = format!(
            "SELECT b.digest FROM blobs b \
             JOIN repository_blobs rb ON rb.digest = b.digest AND rb.repository_id = $1 \
             WHERE b.deleting_until IS NULL AND b.digest IN ({}) ORDER BY b.digest {}",
            placeholders(2, chunk.len()),
            engine.locking("FOR SHARE OF b, rb")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(repository_id);
        for digest in chunk {
            query = query.bind(digest.as_str());
        }
        present.extend(digests_of(&query.fetch_all(&mut *conn).await?, "digest")?);
    }
    let children = of_kind(&[ReferenceKind::Manifest]);
    for chunk in children.chunks(IN_LIST) {
        let sql = format!(
            "SELECT digest FROM repository_manifests WHERE repository_id = $1 \
             AND digest IN ({}) ORDER BY digest {}",
            placeholders(2, chunk.len()),
            engine.locking("FOR SHARE")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(repository_id);
        for digest in chunk {
            query = query.bind(digest.as_str());
        }
        present.extend(digests_of(&query.fetch_all(&mut *conn).await?, "digest")?);
    }
    let required = &manifest.required;
    Ok(required
        .blobs
        .iter()
        .chain(&required.manifests)
        .find(|d| !present.contains(*d))
        .cloned())
}

/// Whether the repository holds the manifest, holding the link (`FOR
/// SHARE`, PostgreSQL) until the caller's transaction ends.
pub(super) async fn hold_manifest_link(
    conn: &mut AnyConnection,
    engine: Engine,
    repository_id: i64,
    digest: &Digest,
) -> Result<bool> {
    let sql = format!(
        "SELECT 1 AS one FROM repository_manifests WHERE repository_id = $1 AND digest = $2 {}",
        engine.locking("FOR SHARE")
    );
    Ok(sqlx::query(AssertSqlSafe(sql))
        .bind(repository_id)
        .bind(digest.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// Links the manifest into `repository_id` if `source_id` holds it (held
/// as by [`hold_manifest_link`]). Whether the source holds it.
pub(super) async fn copy_manifest_link(
    conn: &mut AnyConnection,
    engine: Engine,
    source_id: i64,
    repository_id: i64,
    digest: &Digest,
    at: Timestamp,
) -> Result<bool> {
    if !hold_manifest_link(conn, engine, source_id, digest).await? {
        return Ok(false);
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO repository_manifests (repository_id, digest, created_at, touched_at) \
         VALUES ($1, $2, $3, {}) \
         ON CONFLICT (repository_id, digest) DO UPDATE SET touched_at = excluded.touched_at",
        engine.clock_ms()
    )))
    .bind(repository_id)
    .bind(digest.as_str())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Links the blob into `repository_id` if `source_id` holds it and it is
/// not being deleted (both rows held, as a manifest put holds them).
pub(super) async fn copy_blob_link(
    conn: &mut AnyConnection,
    engine: Engine,
    source_id: i64,
    repository_id: i64,
    digest: &Digest,
) -> Result<bool> {
    let sql = format!(
        "SELECT b.digest FROM blobs b \
         JOIN repository_blobs rb ON rb.digest = b.digest AND rb.repository_id = $1 \
         WHERE b.digest = $2 AND b.deleting_until IS NULL {}",
        engine.locking("FOR SHARE OF b, rb")
    );
    let held = sqlx::query(AssertSqlSafe(sql))
        .bind(source_id)
        .bind(digest.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    if held.is_none() {
        return Ok(false);
    }
    link_live_blob(conn, engine, repository_id, digest, None).await
}

// ---------------------------------------------------------------------------
// The collector.

/// `created_at` and `touched_at` of `alias` both before the cutoff (the
/// grace period bound as `$n`).
fn past_grace(engine: Engine, alias: &str, n: usize) -> String {
    let now = engine.clock_ms();
    format!("{alias}.created_at < {now} - ${n} AND {alias}.touched_at < {now} - ${n}")
}

/// No manifest of the repository of the blob link `link` references its
/// blob.
fn link_unreferenced(link: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM manifest_references mr \
         JOIN repository_manifests rm ON rm.digest = mr.manifest_digest \
         AND rm.repository_id = {link}.repository_id WHERE mr.child_digest = {link}.digest)"
    )
}

/// No tag or tag history in the repository `$1` names the manifest `$2`,
/// no manifest of it keeps it (as a child of an index, or as the subject
/// of a referrer).
const MANIFEST_UNKEPT: &str = "NOT EXISTS (SELECT 1 FROM tags t \
       WHERE t.repository_id = $1 AND t.digest = $2) \
     AND NOT EXISTS (SELECT 1 FROM tag_revisions tr \
       WHERE tr.repository_id = $1 AND tr.digest = $2) \
     AND NOT EXISTS (SELECT 1 FROM manifest_references mr \
       JOIN repository_manifests p ON p.digest = mr.manifest_digest AND p.repository_id = $1 \
       WHERE mr.child_digest = $2 AND mr.kind = 'manifest') \
     AND NOT EXISTS (SELECT 1 FROM manifests m \
       JOIN repository_manifests s ON s.digest = m.subject AND s.repository_id = $1 \
       WHERE m.digest = $2)";

/// The manifest row `m` is linked by no repository and named by no tag or
/// tag history.
fn manifest_orphan(m: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM repository_manifests rm WHERE rm.digest = {m}.digest) \
         AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.digest = {m}.digest) \
         AND NOT EXISTS (SELECT 1 FROM tag_revisions tr WHERE tr.digest = {m}.digest)"
    )
}

/// The blob row `b` is referenced by no manifest, and none of its links
/// was made or touched since the cutoff (the grace period bound as `$n`).
fn blob_unused(engine: Engine, b: &str, n: usize) -> String {
    let now = engine.clock_ms();
    format!(
        "NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.child_digest = {b}.digest) \
         AND NOT EXISTS (SELECT 1 FROM repository_blobs yl WHERE yl.digest = {b}.digest \
           AND (yl.created_at >= {now} - ${n} OR yl.touched_at >= {now} - ${n}))"
    )
}

const GC_RUN_COLUMNS: &str = "id, replica, started_at, finished_at, phase, outcome, error, \
     manifests_examined, manifests_removed, blobs_examined, blobs_removed, links_removed, \
     bytes_freed, removed";

/// Runs kept in `gc_runs`.
const RUNS_KEPT: i64 = 100;

impl SqlMetadataStore {
    /// `SELECT … WHERE digest IN (…)` over `digests`, a chunk at a time, the
    /// list's placeholders numbered from `$first` (`{in}` in `template`),
    /// after the values `before` binds.
    async fn rows_for(
        &self,
        template: &str,
        digests: &[Digest],
        first: usize,
        before: &[i64],
    ) -> Result<Vec<AnyRow>> {
        let mut rows = Vec::new();
        for chunk in digests.chunks(IN_LIST) {
            let sql = template.replace("{in}", &placeholders(first, chunk.len()));
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for value in before {
                query = query.bind(*value);
            }
            for digest in chunk {
                query = query.bind(digest.as_str());
            }
            rows.extend(query.fetch_all(self.reader()).await?);
        }
        Ok(rows)
    }

    /// The `(key, other)` pairs of `manifest_references` whose `key` column
    /// is one of `keys`: a manifest's children, or a child's parents.
    async fn reference_pairs(
        &self,
        key: &'static str,
        other: &'static str,
        keys: &[Digest],
    ) -> Result<Vec<(Digest, Digest)>> {
        let template =
            format!("SELECT {key}, {other} FROM manifest_references WHERE {key} IN ({{in}})");
        let rows = self.rows_for(&template, keys, 1, &[]).await?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((parse(r, key).ok()?, parse(r, other).ok()?)))
            .collect())
    }
}

#[async_trait]
impl GarbageStore for SqlMetadataStore {
    async fn gc_repositories(&self, after: i64, limit: u32) -> Result<Vec<(i64, String)>> {
        let rows =
            sqlx::query("SELECT id, name FROM repositories WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
            .collect()
    }

    async fn repository_graph(
        &self,
        repository_id: i64,
        name: &str,
        grace: Duration,
    ) -> Result<RepositoryGraph> {
        let now = self.engine().clock_ms();
        let links = sqlx::query(AssertSqlSafe(format!(
            "SELECT digest, CASE WHEN created_at >= {now} - $2 OR touched_at >= {now} - $2 \
             THEN 1 ELSE 0 END AS young FROM repository_manifests WHERE repository_id = $1"
        )))
        .bind(repository_id)
        .bind(millis(grace))
        .fetch_all(self.reader())
        .await?;
        let named = sqlx::query(
            "SELECT digest FROM tags WHERE repository_id = $1 \
             UNION SELECT digest FROM tag_revisions WHERE repository_id = $1",
        )
        .bind(repository_id)
        .fetch_all(self.reader())
        .await?;
        let edges = sqlx::query(
            "SELECT mr.manifest_digest AS parent, mr.child_digest AS child \
             FROM repository_manifests rm \
             JOIN manifest_references mr ON mr.manifest_digest = rm.digest \
             WHERE rm.repository_id = $1 AND mr.kind = 'manifest' \
             UNION SELECT m.subject AS parent, m.digest AS child \
             FROM repository_manifests rm JOIN manifests m ON m.digest = rm.digest \
             WHERE rm.repository_id = $1 AND m.subject IS NOT NULL",
        )
        .bind(repository_id)
        .fetch_all(self.reader())
        .await?;
        Ok(RepositoryGraph {
            id: repository_id,
            name: name.to_owned(),
            links: links
                .iter()
                .map(|r| Ok((parse(r, "digest")?, r.try_get::<i64, _>("young")? != 0)))
                .collect::<Result<_>>()?,
            // A tag's history may name what is not a digest berth parses
            // (an import's record): such a row keeps nothing here.
            named: named
                .iter()
                .filter_map(|r| parse(r, "digest").ok())
                .collect(),
            edges: edges
                .iter()
                .filter_map(|r| Some((parse(r, "parent").ok()?, parse(r, "child").ok()?)))
                .collect(),
        })
    }

    async fn delete_manifest_links(
        &self,
        repository_id: i64,
        digests: &[Digest],
        grace: Duration,
    ) -> Result<Vec<Digest>> {
        let engine = self.engine();
        let mut tx = self.writer().begin().await?;
        let mut held = HashSet::new();
        for chunk in sorted(digests.iter().cloned()).chunks(IN_LIST) {
            let sql = format!(
                "SELECT digest FROM repository_manifests WHERE repository_id = $1 \
                 AND digest IN ({}) ORDER BY digest {}",
                placeholders(2, chunk.len()),
                engine.locking("FOR UPDATE SKIP LOCKED")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(repository_id);
            for digest in chunk {
                query = query.bind(digest.as_str());
            }
            held.extend(digests_of(&query.fetch_all(&mut *tx).await?, "digest")?);
        }
        // One statement per manifest, parents first: a child is kept by a
        // parent deleted earlier in this transaction no more.
        let delete = format!(
            "DELETE FROM repository_manifests WHERE repository_id = $1 AND digest = $2 \
             AND {} AND {MANIFEST_UNKEPT}",
            past_grace(engine, "repository_manifests", 3)
        );
        let mut deleted = Vec::new();
        for digest in digests.iter().filter(|d| held.contains(*d)) {
            let gone = sqlx::query(AssertSqlSafe(delete.as_str()))
                .bind(repository_id)
                .bind(digest.as_str())
                .bind(millis(grace))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone > 0 {
                deleted.push(digest.clone());
            }
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn orphan_manifests(&self, after: Option<&Digest>, limit: u32) -> Result<Vec<Digest>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT m.digest FROM manifests m WHERE m.digest > $1 AND {} \
             ORDER BY m.digest LIMIT $2",
            manifest_orphan("m")
        )))
        .bind(after.map_or("", Digest::as_str))
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        digests_of(&rows, "digest")
    }

    async fn delete_orphan_manifests(&self, digests: &[Digest]) -> Result<Vec<Digest>> {
        let engine = self.engine();
        let mut deleted = Vec::new();
        for chunk in sorted(digests.iter().cloned()).chunks(IN_LIST) {
            let mut tx = self.writer().begin().await?;
            let sql = format!(
                "SELECT digest FROM manifests WHERE digest IN ({}) ORDER BY digest {}",
                placeholders(1, chunk.len()),
                engine.locking("FOR UPDATE SKIP LOCKED")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for digest in chunk {
                query = query.bind(digest.as_str());
            }
            let held = digests_of(&query.fetch_all(&mut *tx).await?, "digest")?;
            if !held.is_empty() {
                let sql = format!(
                    "DELETE FROM manifests WHERE digest IN ({}) AND {} RETURNING digest",
                    placeholders(1, held.len()),
                    manifest_orphan("manifests")
                );
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for digest in &held {
                    query = query.bind(digest.as_str());
                }
                deleted.extend(digests_of(&query.fetch_all(&mut *tx).await?, "digest")?);
            }
            tx.commit().await?;
        }
        Ok(deleted)
    }

    async fn refresh_statistics(&self) -> Result<()> {
        // SQLite's planner takes the indexes without statistics.
        if self.engine() == Engine::Postgres {
            sqlx::query(
                "ANALYZE blobs, repository_blobs, manifests, manifest_references, \
                 repository_manifests, repositories, tags, tag_revisions",
            )
            .execute(self.writer())
            .await?;
        }
        Ok(())
    }

    async fn count_blobs(&self) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM blobs")
            .fetch_one(self.reader())
            .await?;
        get_u64(&row, "n")
    }

    async fn unreferenced_blob_links(
        &self,
        after: Option<(i64, &Digest)>,
        limit: u32,
        grace: Duration,
    ) -> Result<Vec<GcBlobLink>> {
        let (after_id, after_digest) = after.map_or((0, ""), |(id, d)| (id, d.as_str()));
        // The cursor is a row comparison: both engines take it as where the
        // key's index starts. Spelled `id > $1 OR (id = $1 AND digest > $2)`,
        // PostgreSQL scanned every link before the cursor again for each
        // batch: the phase grew with the square of the links (seconds of
        // work per batch of 500 at 300,000 links, each followed by the
        // pacer's rest).
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT rb.repository_id, r.name AS repository, rb.digest, b.size \
             FROM repository_blobs rb \
             JOIN repositories r ON r.id = rb.repository_id \
             JOIN blobs b ON b.digest = rb.digest \
             WHERE (rb.repository_id, rb.digest) > ($1, $2) \
             AND {} AND {} \
             ORDER BY rb.repository_id, rb.digest LIMIT $4",
            past_grace(self.engine(), "rb", 3),
            link_unreferenced("rb")
        )))
        .bind(after_id)
        .bind(after_digest)
        .bind(millis(grace))
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?)
    }

    async fn delete_blob_links(
        &self,
        repository_id: i64,
        digests: &[Digest],
        grace: Duration,
    ) -> Result<Vec<Digest>> {
        let engine = self.engine();
        let mut deleted = Vec::new();
        for chunk in sorted(digests.iter().cloned()).chunks(IN_LIST) {
            let mut tx = self.writer().begin().await?;
            let sql = format!(
                "SELECT digest FROM repository_blobs WHERE repository_id = $1 \
                 AND digest IN ({}) ORDER BY digest {}",
                placeholders(2, chunk.len()),
                engine.locking("FOR UPDATE SKIP LOCKED")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(repository_id);
            for digest in chunk {
                query = query.bind(digest.as_str());
            }
            let held = digests_of(&query.fetch_all(&mut *tx).await?, "digest")?;
            if !held.is_empty() {
                let sql = format!(
                    "DELETE FROM repository_blobs WHERE repository_id = $1 AND digest IN ({}) \
                     AND {} AND {} RETURNING digest",
                    placeholders(3, held.len()),
                    past_grace(engine, "repository_blobs", 2),
                    link_unreferenced("repository_blobs")
                );
                let mut query = sqlx::query(AssertSqlSafe(sql))
                    .bind(repository_id)
                    .bind(millis(grace));
                for digest in &held {
                    query = query.bind(digest.as_str());
                }
                deleted.extend(digests_of(&query.fetch_all(&mut *tx).await?, "digest")?);
            }
            tx.commit().await?;
        }
        Ok(deleted)
    }

    async fn unreferenced_blobs(
        &self,
        after: Option<&Digest>,
        limit: u32,
        grace: Duration,
    ) -> Result<Vec<GcBlob>> {
        let engine = self.engine();
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT b.digest, b.size FROM blobs b WHERE b.digest > $1 \
             AND b.deleting_until IS NULL AND {} AND {} ORDER BY b.digest LIMIT $3",
            past_grace(engine, "b", 2),
            blob_unused(engine, "b", 2)
        )))
        .bind(after.map_or("", Digest::as_str))
        .bind(millis(grace))
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?)
    }

    async fn mark_blobs(
        &self,
        digests: &[Digest],
        grace: Duration,
        window: Duration,
    ) -> Result<Vec<GcBlob>> {
        let engine = self.engine();
        let now = engine.clock_ms();
        let mut marked = Vec::new();
        for chunk in sorted(digests.iter().cloned()).chunks(IN_LIST) {
            let mut tx = self.writer().begin().await?;
            // The blob rows, then their links: the order a manifest put
            // takes them in.
            let sql = format!(
                "SELECT digest FROM blobs WHERE digest IN ({}) AND deleting_until IS NULL \
                 ORDER BY digest {}",
                placeholders(1, chunk.len()),
                engine.locking("FOR UPDATE SKIP LOCKED")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for digest in chunk {
                query = query.bind(digest.as_str());
            }
            let mut held: BTreeSet<Digest> =
                digests_of(&query.fetch_all(&mut *tx).await?, "digest")?
                    .into_iter()
                    .collect();
            if engine == Engine::Postgres && !held.is_empty() {
                // A blob with a link someone holds (a manifest put, a
                // mount) is in use: left for another run.
                let list: Vec<Digest> = held.iter().cloned().collect();
                let in_list = placeholders(1, list.len());
                let mut locked = sqlx::query(AssertSqlSafe(format!(
                    "SELECT digest FROM repository_blobs WHERE digest IN ({in_list}) \
                     ORDER BY digest, repository_id FOR UPDATE SKIP LOCKED"
                )));
                let mut all = sqlx::query(AssertSqlSafe(format!(
                    "SELECT digest FROM repository_blobs WHERE digest IN ({in_list})"
                )));
                for digest in &list {
                    locked = locked.bind(digest.as_str());
                    all = all.bind(digest.as_str());
                }
                let mut counts: HashMap<Digest, i64> = HashMap::new();
                for digest in digests_of(&locked.fetch_all(&mut *tx).await?, "digest")? {
                    *counts.entry(digest).or_default() += 1;
                }
                for digest in digests_of(&all.fetch_all(&mut *tx).await?, "digest")? {
                    *counts.entry(digest).or_default() -= 1;
                }
                held.retain(|d| counts.get(d).is_none_or(|n| *n == 0));
            }
            if !held.is_empty() {
                // Decided again, in a statement that sees whatever was
                // committed before the rows were locked.
                let sql = format!(
                    "UPDATE blobs SET deleting_until = {now} + $2 WHERE digest IN ({}) \
                     AND deleting_until IS NULL AND {} AND {} RETURNING digest, size",
                    placeholders(3, held.len()),
                    past_grace(engine, "blobs", 1),
                    blob_unused(engine, "blobs", 1)
                );
                let mut query = sqlx::query(AssertSqlSafe(sql))
                    .bind(millis(grace))
                    .bind(millis(window));
                for digest in &held {
                    query = query.bind(digest.as_str());
                }
                let now_marked: Vec<GcBlob> = query
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(from_row)
                    .collect::<Result<_>>()?;
                if !now_marked.is_empty() {
                    let sql = format!(
                        "DELETE FROM repository_blobs WHERE digest IN ({})",
                        placeholders(1, now_marked.len())
                    );
                    let mut query = sqlx::query(AssertSqlSafe(sql));
                    for blob in &now_marked {
                        query = query.bind(blob.digest.as_str());
                    }
                    query.execute(&mut *tx).await?;
                }
                marked.extend(now_marked);
            }
            tx.commit().await?;
        }
        Ok(marked)
    }

    async fn remark_abandoned_blobs(&self, limit: u32, window: Duration) -> Result<Vec<GcBlob>> {
        let engine = self.engine();
        let now = engine.clock_ms();
        let mut tx = self.writer().begin().await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "UPDATE blobs SET deleting_until = {now} + $1 WHERE digest IN \
             (SELECT digest FROM blobs WHERE deleting_until IS NOT NULL AND deleting_until < {now} \
              ORDER BY deleting_until LIMIT $2 {}) \
             AND deleting_until IS NOT NULL AND deleting_until < {now} RETURNING digest, size",
            engine.locking("FOR UPDATE SKIP LOCKED")
        )))
        .bind(millis(window))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let blobs: Vec<GcBlob> = rows.iter().map(from_row).collect::<Result<_>>()?;
        tx.commit().await?;
        Ok(blobs)
    }

    async fn sweep_blobs(&self, digests: &[Digest]) -> Result<Vec<Digest>> {
        let mut swept = Vec::new();
        for chunk in digests.chunks(IN_LIST) {
            let sql = format!(
                "DELETE FROM blobs WHERE digest IN ({}) AND deleting_until IS NOT NULL \
                 RETURNING digest",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for digest in chunk {
                query = query.bind(digest.as_str());
            }
            swept.extend(digests_of(
                &query.fetch_all(self.writer()).await?,
                "digest",
            )?);
        }
        Ok(swept)
    }

    async fn blobs_being_deleted(&self) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM blobs WHERE deleting_until IS NOT NULL")
            .fetch_one(self.reader())
            .await?;
        get_u64(&row, "n")
    }

    async fn manifest_link_counts(&self, digests: &[Digest]) -> Result<HashMap<Digest, u64>> {
        let rows = self
            .rows_for(
                "SELECT digest, COUNT(*) AS n FROM repository_manifests \
                 WHERE digest IN ({in}) GROUP BY digest",
                digests,
                1,
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((parse(r, "digest")?, get_u64(r, "n")?)))
            .collect()
    }

    async fn references_of(&self, manifests: &[Digest]) -> Result<Vec<(Digest, Digest)>> {
        self.reference_pairs("manifest_digest", "child_digest", manifests)
            .await
    }

    async fn references_to(&self, children: &[Digest]) -> Result<Vec<(Digest, Digest)>> {
        self.reference_pairs("child_digest", "manifest_digest", children)
            .await
    }

    async fn blob_rows(&self, digests: &[Digest], grace: Duration) -> Result<Vec<GcBlobRow>> {
        let engine = self.engine();
        let now = engine.clock_ms();
        let template = format!(
            "SELECT b.digest, b.size, CASE WHEN b.deleting_until IS NULL \
             AND b.created_at < {now} - $1 AND b.touched_at < {now} - $1 \
             AND NOT EXISTS (SELECT 1 FROM repository_blobs yl WHERE yl.digest = b.digest \
               AND (yl.created_at >= {now} - $1 OR yl.touched_at >= {now} - $1)) \
             THEN 1 ELSE 0 END AS collectable FROM blobs b WHERE b.digest IN ({{in}})"
        );
        let rows = self
            .rows_for(&template, digests, 2, &[millis(grace)])
            .await?;
        rows.iter().map(from_row).collect()
    }

    async fn start_gc_run(&self, id: &str, replica: &str) -> Result<()> {
        let now = self.engine().clock_ms();
        let mut tx = self.writer().begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE gc_runs SET outcome = 'Interrupted', finished_at = {now} \
             WHERE outcome IS NULL"
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO gc_runs (id, replica, started_at, phase) VALUES ($1, $2, {now}, 'starting')"
        )))
        .bind(id)
        .bind(replica)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM gc_runs WHERE id NOT IN \
             (SELECT id FROM gc_runs ORDER BY started_at DESC LIMIT $1)",
        )
        .bind(RUNS_KEPT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_gc_progress(&self, id: &str, progress: &GcProgress) -> Result<()> {
        sqlx::query(
            "UPDATE gc_runs SET phase = $2, manifests_examined = $3, manifests_removed = $4, \
             blobs_examined = $5, blobs_removed = $6, links_removed = $7, bytes_freed = $8 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(progress.phase.as_str())
        .bind(to_i64(progress.manifests_examined))
        .bind(to_i64(progress.manifests_removed))
        .bind(to_i64(progress.blobs_examined))
        .bind(to_i64(progress.blobs_removed))
        .bind(to_i64(progress.links_removed))
        .bind(to_i64(progress.bytes_freed))
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn finish_gc_run(
        &self,
        id: &str,
        progress: &GcProgress,
        outcome: &str,
        error: Option<&str>,
        removed: &str,
    ) -> Result<()> {
        self.record_gc_progress(id, progress).await?;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE gc_runs SET outcome = $2, error = $3, removed = $4, finished_at = {} \
             WHERE id = $1",
            self.engine().clock_ms()
        )))
        .bind(id)
        .bind(outcome)
        .bind(error)
        .bind(removed)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn gc_runs(&self, limit: u32) -> Result<Vec<GcRun>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {GC_RUN_COLUMNS} FROM gc_runs ORDER BY started_at DESC, id LIMIT $1"
        )))
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?)
    }

    async fn gc_run(&self, id: &str) -> Result<Option<GcRun>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {GC_RUN_COLUMNS} FROM gc_runs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.reader())
        .await?)
    }
}
