//! Usage sums and namespace quotas over SQL (both engines, like `sql.rs`).
//!
//! Sums are `CAST … AS BIGINT`: PostgreSQL sums `BIGINT`s as `NUMERIC`,
//! which the `Any` driver does not read.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::quotas::{Counts, NamespaceQuota, RepositoryUsage, Usage};
use super::sql::{SqlMetadataStore, get_u64, parse};
use super::sql_access::escape_like;
use super::{MetadataError, Result, now};
use crate::oci::digest::Digest;

/// `$2` for a namespace `$1`: its repositories below it (`ns/…`), for
/// `name = $1 OR name LIKE $2 ESCAPE '\'`.
fn below(namespace: &str) -> String {
    format!("{}/%", escape_like(namespace))
}

fn sum(expression: &str) -> String {
    format!("CAST(COALESCE(SUM({expression}), 0) AS BIGINT)")
}

fn optional_u64(row: &AnyRow, column: &str) -> Result<Option<u64>> {
    let v: Option<i64> = row.try_get(column)?;
    v.map(|v| {
        u64::try_from(v).map_err(|_| MetadataError::Corrupt(format!("negative {column}: {v}")))
    })
    .transpose()
}

fn stored(limit: Option<u64>) -> Option<i64> {
    limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX))
}

fn quota_from_row(row: &AnyRow) -> Result<NamespaceQuota> {
    Ok(NamespaceQuota {
        namespace: row.try_get("namespace")?,
        max_bytes: optional_u64(row, "max_bytes")?,
        max_repositories: optional_u64(row, "max_repositories")?,
        max_tags: optional_u64(row, "max_tags")?,
        updated_by: row.try_get("updated_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// What a byte quota counts of namespace `$1` (its repositories `$2`) at
/// `$3`: its blobs and manifests once each, its uploads in progress, and
/// the live reservations of writers in flight other than `$4`.
fn quota_bytes_query() -> String {
    format!(
        "WITH repos AS (SELECT id FROM repositories WHERE name = $1 OR name LIKE $2 ESCAPE '\\') \
         SELECT \
         (SELECT {blob_bytes} FROM blobs b WHERE b.digest IN \
           (SELECT digest FROM repository_blobs WHERE repository_id IN (SELECT id FROM repos))) AS blob_bytes, \
         (SELECT {manifest_bytes} FROM manifests m WHERE m.digest IN \
           (SELECT digest FROM repository_manifests WHERE repository_id IN (SELECT id FROM repos))) AS manifest_bytes, \
         (SELECT {upload_bytes} FROM uploads \
           WHERE repository = $1 OR repository LIKE $2 ESCAPE '\\') AS uploading_bytes, \
         (SELECT {reserved_bytes} FROM quota_reservations \
           WHERE namespace = $1 AND expires_at > $3 AND holder <> $4) AS reserved_bytes",
        blob_bytes = sum("b.size"),
        manifest_bytes = sum("m.size"),
        upload_bytes = sum("size"),
        reserved_bytes = sum("bytes"),
    )
}

fn quota_bytes(row: &AnyRow) -> Result<u64> {
    Ok(get_u64(row, "blob_bytes")?
        + get_u64(row, "manifest_bytes")?
        + get_u64(row, "uploading_bytes")?
        + get_u64(row, "reserved_bytes")?)
}

const QUOTA_COLUMNS: &str =
    "namespace, max_bytes, max_repositories, max_tags, updated_by, updated_at";

impl SqlMetadataStore {
    /// One query: the namespace's repositories (`repos`), the distinct
    /// blobs and manifests linked into them, and the sums over each.
    pub(super) async fn sum_namespace_usage(&self, namespace: &str) -> Result<Usage> {
        let query = format!(
            "WITH repos AS (SELECT id FROM repositories WHERE name = $1 OR name LIKE $2 ESCAPE '\\'), \
             nb AS (SELECT DISTINCT digest FROM repository_blobs WHERE repository_id IN (SELECT id FROM repos)), \
             nm AS (SELECT DISTINCT digest FROM repository_manifests WHERE repository_id IN (SELECT id FROM repos)) \
             SELECT \
             (SELECT COUNT(*) FROM repos) AS repositories, \
             (SELECT COUNT(*) FROM tags WHERE repository_id IN (SELECT id FROM repos) \
               AND (expires_at IS NULL OR expires_at > $3)) AS tags, \
             (SELECT COUNT(*) FROM nm) AS manifests, \
             (SELECT COUNT(*) FROM nb) AS blobs, \
             (SELECT {blob_bytes} FROM nb JOIN blobs b ON b.digest = nb.digest) AS blob_bytes, \
             (SELECT {manifest_bytes} FROM nm JOIN manifests m ON m.digest = nm.digest) AS manifest_bytes, \
             (SELECT {blob_bytes} FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest \
               WHERE rb.repository_id IN (SELECT id FROM repos)) AS raw_blob_bytes, \
             (SELECT {manifest_bytes} FROM repository_manifests rm JOIN manifests m ON m.digest = rm.digest \
               WHERE rm.repository_id IN (SELECT id FROM repos)) AS raw_manifest_bytes, \
             (SELECT {upload_bytes} FROM uploads \
               WHERE repository = $1 OR repository LIKE $2 ESCAPE '\\') AS uploading_bytes",
            blob_bytes = sum("b.size"),
            manifest_bytes = sum("m.size"),
            upload_bytes = sum("size"),
        );
        let row = sqlx::query(AssertSqlSafe(query))
            .bind(namespace)
            .bind(below(namespace))
            .bind(now())
            .fetch_one(self.reader())
            .await?;
        Ok(Usage {
            repositories: get_u64(&row, "repositories")?,
            tags: get_u64(&row, "tags")?,
            manifests: get_u64(&row, "manifests")?,
            blobs: get_u64(&row, "blobs")?,
            bytes: get_u64(&row, "blob_bytes")? + get_u64(&row, "manifest_bytes")?,
            raw_bytes: get_u64(&row, "raw_blob_bytes")? + get_u64(&row, "raw_manifest_bytes")?,
            uploading_bytes: get_u64(&row, "uploading_bytes")?,
        })
    }

    /// Deduplicated bytes, uploads in progress and writes in flight only:
    /// what a byte quota is checked against, once per write request.
    pub(super) async fn sum_namespace_bytes(&self, namespace: &str) -> Result<u64> {
        let row = sqlx::query(AssertSqlSafe(quota_bytes_query()))
            .bind(namespace)
            .bind(below(namespace))
            .bind(now())
            .bind("")
            .fetch_one(self.reader())
            .await?;
        quota_bytes(&row)
    }

    /// Reserves `bytes` of `namespace`'s byte quota `limit` for `holder`
    /// (replacing what it held) if the namespace's usage and the other
    /// live reservations leave room. One transaction, with the quota's row
    /// locked on PostgreSQL (SQLite's one writer serialises it anyway), so
    /// two writers never both take the last bytes.
    pub(super) async fn reserve_namespace_bytes(
        &self,
        namespace: &str,
        holder: &str,
        bytes: u64,
        limit: u64,
        expires_at: i64,
    ) -> Result<bool> {
        let at = now();
        let mut tx = self.writer().begin().await?;
        let lock = format!(
            "SELECT namespace FROM namespace_quotas WHERE namespace = $1 {}",
            self.engine().locking("FOR UPDATE")
        );
        sqlx::query(AssertSqlSafe(lock))
            .bind(namespace)
            .fetch_optional(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM quota_reservations WHERE namespace = $1 AND expires_at <= $2")
            .bind(namespace)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(AssertSqlSafe(quota_bytes_query()))
            .bind(namespace)
            .bind(below(namespace))
            .bind(at)
            .bind(holder)
            .fetch_one(&mut *tx)
            .await?;
        if quota_bytes(&row)?.saturating_add(bytes) > limit {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO quota_reservations (holder, namespace, bytes, expires_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (holder) DO UPDATE SET bytes = excluded.bytes, expires_at = excluded.expires_at",
        )
        .bind(holder)
        .bind(namespace)
        .bind(stored(Some(bytes)))
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn release_reservation(&self, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM quota_reservations WHERE holder = $1")
            .bind(holder)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    pub(super) async fn count_namespace(&self, namespace: &str) -> Result<Counts> {
        Ok(sqlx::query_as(
            "WITH repos AS (SELECT id FROM repositories WHERE name = $1 OR name LIKE $2 ESCAPE '\\') \
             SELECT (SELECT COUNT(*) FROM repos) AS repositories, \
             (SELECT COUNT(*) FROM tags WHERE repository_id IN (SELECT id FROM repos) \
               AND (expires_at IS NULL OR expires_at > $3)) AS tags",
        )
        .bind(namespace)
        .bind(below(namespace))
        .bind(now())
        .fetch_one(self.reader())
        .await?)
    }

    /// Each repository of `namespace` (of all namespaces: `None`), by name.
    pub(super) async fn sum_repository_usages(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<RepositoryUsage>> {
        let shared = |links: &str, table: &str, alias: &str| {
            format!(
                "(SELECT {} FROM {links} l JOIN {table} {alias} ON {alias}.digest = l.digest \
                 WHERE l.repository_id = r.id AND EXISTS \
                 (SELECT 1 FROM {links} o WHERE o.digest = l.digest AND o.repository_id <> r.id))",
                sum(&format!("{alias}.size"))
            )
        };
        let filter = if namespace.is_some() {
            "WHERE r.name = $2 OR r.name LIKE $3 ESCAPE '\\'"
        } else {
            ""
        };
        let query = format!(
            "SELECT r.name, \
             (SELECT COUNT(*) FROM tags t WHERE t.repository_id = r.id \
               AND (t.expires_at IS NULL OR t.expires_at > $1)) AS tags, \
             (SELECT COUNT(*) FROM repository_manifests l WHERE l.repository_id = r.id) AS manifests, \
             (SELECT COUNT(*) FROM repository_blobs l WHERE l.repository_id = r.id) AS blobs, \
             (SELECT {blob_bytes} FROM repository_blobs l JOIN blobs b ON b.digest = l.digest \
               WHERE l.repository_id = r.id) AS blob_bytes, \
             (SELECT {manifest_bytes} FROM repository_manifests l JOIN manifests m ON m.digest = l.digest \
               WHERE l.repository_id = r.id) AS manifest_bytes, \
             {shared_blobs} AS shared_blob_bytes, \
             {shared_manifests} AS shared_manifest_bytes \
             FROM repositories r {filter} ORDER BY r.name",
            blob_bytes = sum("b.size"),
            manifest_bytes = sum("m.size"),
            shared_blobs = shared("repository_blobs", "blobs", "b"),
            shared_manifests = shared("repository_manifests", "manifests", "m"),
        );
        let mut statement = sqlx::query(AssertSqlSafe(query)).bind(now());
        if let Some(namespace) = namespace {
            statement = statement.bind(namespace).bind(below(namespace));
        }
        let rows = statement.fetch_all(self.reader()).await?;
        rows.iter()
            .map(|row| {
                Ok(RepositoryUsage {
                    repository: parse(row, "name")?,
                    tags: get_u64(row, "tags")?,
                    manifests: get_u64(row, "manifests")?,
                    blobs: get_u64(row, "blobs")?,
                    bytes: get_u64(row, "blob_bytes")? + get_u64(row, "manifest_bytes")?,
                    shared_bytes: get_u64(row, "shared_blob_bytes")?
                        + get_u64(row, "shared_manifest_bytes")?,
                })
            })
            .collect()
    }

    /// Whether a repository of `namespace` holds `digest`, as a blob or a
    /// manifest (by the links' digest indexes).
    pub(super) async fn namespace_holds_digest(
        &self,
        namespace: &str,
        digest: &Digest,
    ) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM repository_blobs l JOIN repositories r ON r.id = l.repository_id \
             WHERE l.digest = $3 AND (r.name = $1 OR r.name LIKE $2 ESCAPE '\\') \
             UNION ALL \
             SELECT 1 AS one FROM repository_manifests l JOIN repositories r ON r.id = l.repository_id \
             WHERE l.digest = $3 AND (r.name = $1 OR r.name LIKE $2 ESCAPE '\\') \
             LIMIT 1",
        )
        .bind(namespace)
        .bind(below(namespace))
        .bind(digest.as_str())
        .fetch_optional(self.reader())
        .await?;
        Ok(row.is_some())
    }

    pub(super) async fn list_namespace_quotas(&self) -> Result<Vec<NamespaceQuota>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {QUOTA_COLUMNS} FROM namespace_quotas ORDER BY namespace"
        )))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(quota_from_row).collect()
    }

    pub(super) async fn read_namespace_quota(
        &self,
        namespace: &str,
    ) -> Result<Option<NamespaceQuota>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {QUOTA_COLUMNS} FROM namespace_quotas WHERE namespace = $1"
        )))
        .bind(namespace)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(quota_from_row).transpose()
    }

    /// Sets the quota (one with no limit removes it) and moves the policy
    /// version on, in one transaction. False if the namespace does not
    /// exist (or, for a removal, had no quota).
    pub(super) async fn write_namespace_quota(&self, quota: &NamespaceQuota) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let changed = if quota.is_empty() {
            sqlx::query("DELETE FROM namespace_quotas WHERE namespace = $1")
                .bind(quota.namespace.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0
        } else {
            // Only for a namespace that exists: the foreign key would say
            // so too, but as an error the engines word differently.
            sqlx::query(
                "INSERT INTO namespace_quotas \
                 (namespace, max_bytes, max_repositories, max_tags, updated_by, updated_at) \
                 SELECT name, $2, $3, $4, $5, $6 FROM namespaces WHERE name = $1 \
                 ON CONFLICT (namespace) DO UPDATE SET max_bytes = excluded.max_bytes, \
                 max_repositories = excluded.max_repositories, max_tags = excluded.max_tags, \
                 updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            )
            .bind(quota.namespace.as_str())
            .bind(stored(quota.max_bytes))
            .bind(stored(quota.max_repositories))
            .bind(stored(quota.max_tags))
            .bind(quota.updated_by.as_deref())
            .bind(quota.updated_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0
        };
        if changed {
            super::sql_access::bump(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }
}
