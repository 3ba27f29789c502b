//! [`MetadataStore`] over SQL, for the embedded SQLite database and PostgreSQL.
//!
//! Both engines run the same statements through sqlx's `Any` driver; they
//! differ only in their migrations (types, collations) and connection set-up.
//! Placeholders are written `$N`, which both engines accept.
//!
//! SQLite allows one writer at a time, so writes go through a pool of one
//! connection (no `SQLITE_BUSY` between our own connections) while reads use
//! several connections in WAL mode. On PostgreSQL both pools are the same.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Executor, Row};

use super::image_streams::RevisionOrigin;
use super::sql_image_streams::{
    NewRevision, forget_tag, forget_tags_pointing_at, insert_stream_row, point_tags,
};
use super::tag_policies::{ExpiredTag, ImmutableTagPolicy, TagChange};
use super::{
    BlobClaim, BlobLink, ManifestMeta, MetadataError, MetadataStore, NewManifest, Page, Referrer,
    Result, StoredManifest, Timestamp, Upload, UploadPartRecord, now,
};
use super::{sql_garbage, sql_tag_policies};
use crate::oci::digest::Digest;
use crate::oci::names::{Reference, RepositoryName, Tag};
use crate::oci::tag_pattern::TagPattern;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Where metadata lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseConfig {
    /// The embedded database: one file.
    Sqlite { path: std::path::PathBuf },
    /// A PostgreSQL server, shared by every replica.
    Postgres { url: String, max_connections: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The database's clock in milliseconds since the epoch, as an SQL
    /// expression stable within a statement (as `sql_jobs` spells it).
    pub(super) fn clock_ms(self) -> &'static str {
        match self {
            Engine::Postgres => "(EXTRACT(EPOCH FROM statement_timestamp()) * 1000)::BIGINT",
            Engine::Sqlite => "CAST(ROUND(unixepoch('subsec') * 1000) AS INTEGER)",
        }
    }

    /// A row-locking clause for PostgreSQL (`FOR SHARE`, `FOR UPDATE SKIP
    /// LOCKED`, …); nothing on SQLite, whose one writer connection
    /// serialises every write transaction anyway.
    pub(super) fn locking(self, clause: &'static str) -> &'static str {
        match self {
            Engine::Postgres => clause,
            Engine::Sqlite => "",
        }
    }
}

pub struct SqlMetadataStore {
    reader: AnyPool,
    writer: AnyPool,
    engine: Engine,
}

impl SqlMetadataStore {
    /// Connects and brings the schema up to date.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let store = match config {
            DatabaseConfig::Sqlite { path } => {
                let url = format!("sqlite://{}?mode=rwc", path.display());
                // journal_mode is a property of the file and must be set outside a
                // transaction, so before the pools and migrations.
                let writer = sqlite_pool(&url, 1).await?;
                writer.execute("PRAGMA journal_mode = WAL").await?;
                let reader = sqlite_pool(&url, 8).await?;
                SqlMetadataStore {
                    reader,
                    writer,
                    engine: Engine::Sqlite,
                }
            }
            DatabaseConfig::Postgres {
                url,
                max_connections,
            } => {
                let pool = AnyPoolOptions::new()
                    .max_connections(*max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_release(|conn, _meta| Box::pin(close_unless_settled(conn)))
                    .connect(url)
                    .await?;
                SqlMetadataStore {
                    reader: pool.clone(),
                    writer: pool,
                    engine: Engine::Postgres,
                }
            }
        };
        // Replicas starting together on one PostgreSQL database apply each
        // migration once: the migrator holds an advisory lock (its default,
        // `locking`) while it reads and applies them, so the others wait
        // and then find nothing to do (testsuite:
        // migrations_run_once_when_replicas_start_together).
        match store.engine {
            Engine::Sqlite => SQLITE_MIGRATIONS.run(&store.writer).await?,
            Engine::Postgres => POSTGRES_MIGRATIONS.run(&store.writer).await?,
        }
        Ok(store)
    }

    pub(super) fn reader(&self) -> &AnyPool {
        &self.reader
    }

    pub(super) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    pub(super) fn engine(&self) -> Engine {
        self.engine
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

async fn sqlite_pool(url: &str, connections: u32) -> Result<AnyPool> {
    Ok(AnyPoolOptions::new()
        .max_connections(connections)
        .min_connections(1)
        // A connection to a local file cannot go stale; testing it on every
        // acquire would add a round trip to the driver's thread per query.
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(30))
        .after_release(|conn, _meta| Box::pin(close_unless_settled(conn)))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // NORMAL in WAL mode is durable across process crashes (what
                // "a killed server loses nothing" needs); FULL would add an
                // fsync per commit for power-loss durability.
                conn.execute(
                    "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;",
                )
                .await?;
                Ok(())
            })
        })
        .connect(url)
        .await?)
}

/// Decides whether a connection may go back to the pool: only if no
/// transaction is open on it.
///
/// A transaction ends on a connection only through a commit or rollback
/// that succeeded. When a statement or the commit fails (a full disk, say),
/// the transaction is dropped with its rollback merely queued, and that
/// rollback can fail too (SQLite may already have rolled back on its own),
/// leaving the driver's idea of the connection's transaction out of step
/// with the database's. Reused, such a connection turns the next
/// transaction into a savepoint inside one that is never committed: every
/// later write would be acknowledged and lost. So a connection released
/// with a transaction open is closed instead (closing rolls back whatever
/// is open), and the pool opens a fresh one.
async fn close_unless_settled(conn: &mut sqlx::AnyConnection) -> sqlx::Result<bool> {
    use sqlx::Connection as _;
    let settled = !conn.is_in_transaction();
    if !settled {
        tracing::warn!("closing a database connection released inside a transaction");
    }
    Ok(settled)
}

pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn get_u64(row: &AnyRow, column: &str) -> Result<u64> {
    let v: i64 = row.try_get(column)?;
    u64::try_from(v).map_err(|_| MetadataError::Corrupt(format!("negative {column}: {v}")))
}

pub(super) fn parse<T: FromStr>(row: &AnyRow, column: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e: T::Err| MetadataError::Corrupt(format!("{column} {text:?}: {e}")))
}

/// The id of `repo`'s row, if it has one.
pub(super) async fn repository_id(
    conn: &mut sqlx::AnyConnection,
    repo: &RepositoryName,
) -> Result<Option<i64>> {
    let row = sqlx::query("SELECT id FROM repositories WHERE name = $1")
        .bind(repo.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.try_get("id").map_err(MetadataError::from))
        .transpose()
}

/// A row as `T`, its columns read by their field names
/// ([`sqlx::FromRow`]).
pub(super) fn from_row<T: for<'r> sqlx::FromRow<'r, AnyRow>>(row: &AnyRow) -> Result<T> {
    Ok(T::from_row(row)?)
}

/// A boolean as both engines' schemas keep it, an integer (0 or 1): a
/// `FromRow` field reads it with `#[sqlx(try_from = "Flag")]`.
pub struct Flag(bool);

impl sqlx::Type<sqlx::Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<sqlx::Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<sqlx::Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for Flag {
    fn decode(
        value: sqlx::any::AnyValueRef<'r>,
    ) -> std::result::Result<Self, sqlx::error::BoxDynError> {
        Ok(Flag(
            <i64 as sqlx::Decode<'r, sqlx::Any>>::decode(value)? != 0,
        ))
    }
}

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0
    }
}

/// The columns of an [`Upload`].
const UPLOAD_COLUMNS: &str =
    "id, repository, algorithm, created_at, updated_at, size, parts, hash_state";

/// Takes one more row than asked for, to know whether another page follows.
fn into_page(mut items: Vec<String>, limit: u32) -> Page {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    Page {
        items,
        more,
        next_expiry: None,
    }
}

/// `$first, $first+1, …` for `count` values.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The repository's id, making it (and its image stream) if it is new.
pub(super) async fn ensure_repository(
    conn: &mut sqlx::AnyConnection,
    repo: &RepositoryName,
    at: Timestamp,
) -> Result<i64> {
    let inserted = sqlx::query(
        "INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(repo.as_str())
    .bind(at)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    let id = repository_id(conn, repo).await?.ok_or_else(|| {
        MetadataError::Corrupt(format!("repository {repo} not found after insert"))
    })?;
    if inserted {
        // Every repository is an image stream.
        insert_stream_row(conn, id, 0, false, at).await?;
    }
    Ok(id)
}

// By tag, the tag's expiry is read with its row and a tag past it ($3, the
// time now) is not found: expiration costs pulls no query of its own.
const MANIFEST_BY_TAG: &str = "SELECT m.digest, m.media_type, m.size, m.content, t.expires_at FROM tags t \
     JOIN repositories r ON r.id = t.repository_id \
     JOIN manifests m ON m.digest = t.digest \
     WHERE r.name = $1 AND t.name = $2 AND (t.expires_at IS NULL OR t.expires_at > $3)";
const MANIFEST_BY_DIGEST: &str = "SELECT m.digest, m.media_type, m.size, m.content, CAST(NULL AS BIGINT) AS expires_at \
     FROM repository_manifests rm \
     JOIN repositories r ON r.id = rm.repository_id \
     JOIN manifests m ON m.digest = rm.digest \
     WHERE r.name = $1 AND rm.digest = $2";
const MANIFEST_META_BY_TAG: &str = "SELECT m.digest, m.media_type, m.size FROM tags t \
     JOIN repositories r ON r.id = t.repository_id \
     JOIN manifests m ON m.digest = t.digest \
     WHERE r.name = $1 AND t.name = $2 AND (t.expires_at IS NULL OR t.expires_at > $3)";
const MANIFEST_META_BY_DIGEST: &str = "SELECT m.digest, m.media_type, m.size FROM repository_manifests rm \
     JOIN repositories r ON r.id = rm.repository_id \
     JOIN manifests m ON m.digest = rm.digest \
     WHERE r.name = $1 AND rm.digest = $2";

/// A manifest's query by tag (which also takes the time, so that an
/// expired tag finds nothing) or by digest, bound for `repo`.
fn by_reference<'q>(
    by_tag: &'static str,
    by_digest: &'static str,
    repo: &'q RepositoryName,
    reference: &'q Reference,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    match reference {
        Reference::Tag(tag) => sqlx::query(by_tag)
            .bind(repo.as_str())
            .bind(tag.as_str())
            .bind(now()),
        Reference::Digest(digest) => sqlx::query(by_digest)
            .bind(repo.as_str())
            .bind(digest.as_str()),
    }
}

#[async_trait]
impl MetadataStore for SqlMetadataStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").fetch_one(&self.reader).await?;
        Ok(())
    }

    async fn repository_exists(&self, repo: &RepositoryName) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM repositories WHERE name = $1")
            .bind(repo.as_str())
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.is_some())
    }

    async fn list_repositories(&self, after: Option<&str>, limit: u32) -> Result<Page> {
        let rows =
            sqlx::query("SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2")
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit) + 1)
                .fetch_all(&self.reader)
                .await?;
        let names = rows
            .iter()
            .map(|r| r.try_get::<String, _>("name"))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(into_page(names, limit))
    }

    async fn repository_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<u64>> {
        let row = sqlx::query(
            "SELECT b.size FROM repository_blobs rb \
             JOIN repositories r ON r.id = rb.repository_id \
             JOIN blobs b ON b.digest = rb.digest \
             WHERE r.name = $1 AND rb.digest = $2",
        )
        .bind(repo.as_str())
        .bind(digest.as_str())
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| get_u64(&r, "size")).transpose()
    }

    async fn link_blob(&self, repo: &RepositoryName, digest: &Digest, size: u64) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let repo_id = ensure_repository(&mut tx, repo, now()).await?;
        if !sql_garbage::link_live_blob(&mut tx, self.engine, repo_id, digest, Some(size)).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn blob_link(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<BlobLink>> {
        sql_garbage::blob_link(&self.reader, repo, digest).await
    }

    async fn touch_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        older_than: Duration,
    ) -> Result<bool> {
        sql_garbage::touch_blob(&self.writer, self.engine, repo, digest, older_than).await
    }

    async fn claim_blob(&self, digest: &Digest, size: u64) -> Result<BlobClaim> {
        sql_garbage::claim_blob(&self.writer, self.engine, digest, size).await
    }

    async fn mount_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<Option<u64>> {
        let mut tx = self.writer.begin().await?;
        let repo_id = ensure_repository(&mut tx, repo, now()).await?;
        let Some(size) = sql_garbage::touch_live_blob(&mut tx, self.engine, digest).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        sql_garbage::link_live_blob(&mut tx, self.engine, repo_id, digest, None).await?;
        tx.commit().await?;
        Ok(Some(size))
    }

    async fn unlink_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<bool> {
        let result = sqlx::query(
            "DELETE FROM repository_blobs WHERE digest = $2 AND repository_id = \
             (SELECT id FROM repositories WHERE name = $1)",
        )
        .bind(repo.as_str())
        .bind(digest.as_str())
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT size FROM blobs WHERE digest = $1")
            .bind(digest.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| get_u64(&r, "size")).transpose()
    }

    async fn repositories_with_blob(
        &self,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<RepositoryName>> {
        let rows = sqlx::query(
            "SELECT r.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id \
             WHERE rb.digest = $1 ORDER BY r.name LIMIT $2",
        )
        .bind(digest.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|r| parse(r, "name")).collect()
    }

    async fn missing_in_repository(
        &self,
        repo: &RepositoryName,
        blobs: &[Digest],
        manifests: &[Digest],
    ) -> Result<Vec<Digest>> {
        let mut missing = Vec::new();
        for (table, wanted) in [
            ("repository_blobs", blobs),
            ("repository_manifests", manifests),
        ] {
            if wanted.is_empty() {
                continue;
            }
            let sql = format!(
                "SELECT x.digest FROM {table} x JOIN repositories r ON r.id = x.repository_id \
                 WHERE r.name = $1 AND x.digest IN ({})",
                placeholders(2, wanted.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(repo.as_str());
            for d in wanted {
                query = query.bind(d.as_str());
            }
            let rows = query.fetch_all(&self.reader).await?;
            let present = rows
                .iter()
                .map(|r| r.try_get::<String, _>("digest"))
                .collect::<std::result::Result<HashSet<_>, _>>()?;
            missing.extend(
                wanted
                    .iter()
                    .filter(|d| !present.contains(d.as_str()))
                    .cloned(),
            );
        }
        Ok(missing)
    }

    async fn manifests_referencing(
        &self,
        repo: &RepositoryName,
        children: &[Digest],
    ) -> Result<Vec<Digest>> {
        if children.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT DISTINCT mr.manifest_digest FROM manifest_references mr \
             JOIN repository_manifests rm ON rm.digest = mr.manifest_digest \
             JOIN repositories r ON r.id = rm.repository_id \
             WHERE r.name = $1 AND mr.kind <> 'subject' AND mr.child_digest IN ({}) \
             ORDER BY mr.manifest_digest",
            placeholders(2, children.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(repo.as_str());
        for d in children {
            query = query.bind(d.as_str());
        }
        let rows = query.fetch_all(&self.reader).await?;
        rows.iter()
            .map(|r| {
                let text: String = r.try_get("manifest_digest")?;
                text.parse::<Digest>()
                    .map_err(|e| MetadataError::Corrupt(format!("manifest reference {text}: {e}")))
            })
            .collect()
    }

    async fn put_manifest_from(
        &self,
        repo: &RepositoryName,
        manifest: &NewManifest,
        tags: &[Tag],
        origin: &RevisionOrigin,
    ) -> Result<()> {
        let at = now();
        let mut tx = self.writer.begin().await?;
        let repo_id = ensure_repository(&mut tx, repo, at).await?;
        let inserted = sql_garbage::hold_manifest_row(&mut tx, self.engine, manifest, at).await?;
        if inserted {
            for (child, kind) in &manifest.references {
                sqlx::query(
                    "INSERT INTO manifest_references (manifest_digest, child_digest, kind) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(manifest.digest.as_str())
                .bind(child.as_str())
                .bind(kind.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        // What the manifest references is checked (and held against garbage
        // collection) in the transaction that records the references.
        if let Some(missing) =
            sql_garbage::hold_references(&mut tx, self.engine, repo_id, manifest).await?
        {
            tx.rollback().await?;
            return Err(MetadataError::ReferenceUnknown(missing));
        }
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO repository_manifests (repository_id, digest, created_at, touched_at) \
             VALUES ($1, $2, $3, {now}) \
             ON CONFLICT (repository_id, digest) DO UPDATE SET touched_at = excluded.touched_at",
            now = self.engine.clock_ms()
        )))
        .bind(repo_id)
        .bind(manifest.digest.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        crate::crash_points::reached(crate::crash_points::MANIFEST_INSIDE_TRANSACTION);
        let revision = NewRevision {
            digest: &manifest.digest,
            docker_image_reference: None,
            origin,
            at,
            expires_at: manifest.tag_expires_at,
        };
        point_tags(&mut tx, repo_id, repo, tags, &revision).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<Option<StoredManifest>> {
        let query = by_reference(MANIFEST_BY_TAG, MANIFEST_BY_DIGEST, repo, reference);
        let row = query.fetch_optional(&self.reader).await?;
        row.map(|r| from_row(&r)).transpose()
    }

    async fn manifest_meta(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<Option<ManifestMeta>> {
        let query = by_reference(
            MANIFEST_META_BY_TAG,
            MANIFEST_META_BY_DIGEST,
            repo,
            reference,
        );
        let row = query.fetch_optional(&self.reader).await?;
        row.map(|r| from_row(&r)).transpose()
    }

    async fn delete_manifest(&self, repo: &RepositoryName, digest: &Digest) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let Some(repo_id) = repository_id(&mut tx, repo).await? else {
            return Ok(false);
        };
        // The tags that would go with it, checked against the policies
        // inside this transaction.
        let tags = sqlx::query(
            "SELECT name FROM tags WHERE repository_id = $1 AND digest = $2 \
             AND (expires_at IS NULL OR expires_at > $3) ORDER BY name",
        )
        .bind(repo_id)
        .bind(digest.as_str())
        .bind(now())
        .fetch_all(&mut *tx)
        .await?;
        if !tags.is_empty() {
            let policies = sql_tag_policies::applicable(&mut tx, repo).await?;
            for row in &tags {
                let tag: String = row.try_get("name")?;
                if let Some(refusal) = policies.refusal(repo, &tag, TagChange::Delete) {
                    return Err(MetadataError::TagImmutable(Box::new(refusal)));
                }
            }
        }
        forget_tags_pointing_at(&mut tx, repo_id, digest).await?;
        sqlx::query("DELETE FROM tags WHERE repository_id = $1 AND digest = $2")
            .bind(repo_id)
            .bind(digest.as_str())
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query(
            "DELETE FROM repository_manifests WHERE repository_id = $1 AND digest = $2",
        )
        .bind(repo_id)
        .bind(digest.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        let base = "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations \
                    FROM repository_manifests rm \
                    JOIN repositories r ON r.id = rm.repository_id \
                    JOIN manifests m ON m.digest = rm.digest \
                    WHERE r.name = $1 AND m.subject = $2";
        let rows = match artifact_type {
            Some(t) => {
                sqlx::query(AssertSqlSafe(format!(
                    "{base} AND m.artifact_type = $3 ORDER BY m.digest"
                )))
                .bind(repo.as_str())
                .bind(subject.as_str())
                .bind(t)
                .fetch_all(&self.reader)
                .await?
            }
            None => {
                sqlx::query(AssertSqlSafe(format!("{base} ORDER BY m.digest")))
                    .bind(repo.as_str())
                    .bind(subject.as_str())
                    .fetch_all(&self.reader)
                    .await?
            }
        };
        rows.iter().map(from_row).collect()
    }

    async fn list_tags(
        &self,
        repo: &RepositoryName,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Option<Page>> {
        // One row answers both "does the repository exist" and "which tags
        // follow", with the page joined into one string: a row per tag would
        // cost a round trip to the database driver per tag. Tag names cannot
        // contain a comma.
        // Expired tags ($4: now) are left out, and the next expiry among
        // the others comes in the same row, for a cache of the list.
        let row = sqlx::query(
            "SELECT (SELECT id FROM repositories WHERE name = $1) AS repository_id, \
             (SELECT string_agg(name, ',' ORDER BY name) FROM \
               (SELECT t.name AS name FROM tags t \
                JOIN repositories r ON r.id = t.repository_id \
                WHERE r.name = $1 AND t.name > $2 \
                AND (t.expires_at IS NULL OR t.expires_at > $4) \
                ORDER BY t.name LIMIT $3) page) AS names, \
             (SELECT MIN(t.expires_at) FROM tags t JOIN repositories r ON r.id = t.repository_id \
              WHERE r.name = $1 AND t.expires_at > $4) AS next_expiry",
        )
        .bind(repo.as_str())
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit) + 1)
        .bind(now())
        .fetch_one(&self.reader)
        .await?;
        if row.try_get::<Option<i64>, _>("repository_id")?.is_none() {
            return Ok(None);
        }
        let names: Vec<String> = row
            .try_get::<Option<String>, _>("names")?
            .map(|joined| joined.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        let mut page = into_page(names, limit);
        page.next_expiry = row.try_get("next_expiry")?;
        Ok(Some(page))
    }

    async fn delete_tag(&self, repo: &RepositoryName, tag: &Tag) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let Some(repo_id) = repository_id(&mut tx, repo).await? else {
            return Ok(false);
        };
        let (deleted, _) = forget_tag(&mut tx, repo_id, repo, tag.as_str()).await?;
        if !deleted {
            // A tag with a spec and no image is not one `/v2/` knows: a
            // refusal changes nothing.
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn immutable_tag_policies(&self, namespace: &str) -> Result<Vec<ImmutableTagPolicy>> {
        self.list_immutable_tag_policies(namespace).await
    }

    async fn set_immutable_tag_policy(
        &self,
        namespace: &str,
        repository: Option<&str>,
        patterns: &[TagPattern],
        by: Option<&str>,
    ) -> Result<bool> {
        self.store_immutable_tag_policy(namespace, repository, patterns, by)
            .await
    }

    async fn remove_expired_tags(&self, at: Timestamp, limit: u32) -> Result<Vec<ExpiredTag>> {
        self.delete_expired_tags(at, limit).await
    }

    async fn namespace_usage(&self, namespace: &str) -> Result<super::quotas::Usage> {
        self.sum_namespace_usage(namespace).await
    }

    async fn namespace_bytes(&self, namespace: &str) -> Result<u64> {
        self.sum_namespace_bytes(namespace).await
    }

    async fn reserve_quota(
        &self,
        namespace: &str,
        holder: &str,
        bytes: u64,
        limit: u64,
        expires_at: Timestamp,
    ) -> Result<bool> {
        self.reserve_namespace_bytes(namespace, holder, bytes, limit, expires_at)
            .await
    }

    async fn release_quota(&self, holder: &str) -> Result<()> {
        self.release_reservation(holder).await
    }

    async fn namespace_counts(&self, namespace: &str) -> Result<super::quotas::Counts> {
        self.count_namespace(namespace).await
    }

    async fn repository_usages(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<super::quotas::RepositoryUsage>> {
        self.sum_repository_usages(namespace).await
    }

    async fn namespace_holds(&self, namespace: &str, digest: &Digest) -> Result<bool> {
        self.namespace_holds_digest(namespace, digest).await
    }

    async fn create_upload(&self, upload: &Upload) -> Result<()> {
        sqlx::query(
            "INSERT INTO uploads (id, repository, algorithm, created_at, updated_at, size, parts, hash_state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(upload.id.as_str())
        .bind(upload.repository.as_str())
        .bind(upload.algorithm.as_str())
        .bind(upload.created_at)
        .bind(upload.updated_at)
        .bind(to_i64(upload.size))
        .bind(i64::from(upload.parts))
        .bind(upload.hash_state.clone())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn upload(&self, repo: &RepositoryName, id: &str) -> Result<Option<Upload>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1 AND repository = $2"
        )))
        .bind(id)
        .bind(repo.as_str())
        .fetch_optional(&self.reader)
        .await?)
    }

    async fn upload_exists(&self, id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM uploads WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.is_some())
    }

    async fn touch_upload(&self, id: &str) -> Result<bool> {
        let result = sqlx::query("UPDATE uploads SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now())
            .execute(&self.writer)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn record_upload_part(
        &self,
        id: &str,
        part: &UploadPartRecord,
        size: u64,
        hash_state: &[u8],
    ) -> Result<bool> {
        let Some(previous) = part.number.checked_sub(1) else {
            return Ok(false);
        };
        let mut tx = self.writer.begin().await?;
        // The row's part count is the version: of two replicas recording the
        // same part, the second matches no row.
        let updated = sqlx::query(
            "UPDATE uploads SET size = $2, parts = $3, hash_state = $4, updated_at = $5 \
             WHERE id = $1 AND parts = $6",
        )
        .bind(id)
        .bind(to_i64(size))
        .bind(i64::from(part.number))
        .bind(hash_state.to_vec())
        .bind(now())
        .bind(i64::from(previous))
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO upload_parts (upload_id, number, token, size) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(i64::from(part.number))
        .bind(part.token.as_str())
        .bind(to_i64(part.size))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn upload_parts(&self, id: &str) -> Result<Vec<UploadPartRecord>> {
        Ok(sqlx::query_as(
            "SELECT number, token, size FROM upload_parts WHERE upload_id = $1 ORDER BY number",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?)
    }

    async fn delete_upload(&self, id: &str) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM upload_parts WHERE upload_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let result = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(result.rows_affected() > 0)
    }

    async fn stale_uploads(&self, before: Timestamp, limit: u32) -> Result<Vec<Upload>> {
        Ok(sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE updated_at < $1 ORDER BY updated_at LIMIT $2"
        )))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?)
    }
}
