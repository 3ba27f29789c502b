//! Immutable-tag policies and expired tags over SQL (both engines, like
//! `sql.rs`). The checks run inside the caller's transaction.

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::sql::SqlMetadataStore;
use super::sql_image_streams::stream_name;
use super::tag_policies::{ApplicablePolicies, ExpiredTag, ImmutableTagPolicy};
use super::{MetadataError, Result, Timestamp, now};
use crate::oci::names::RepositoryName;
use crate::oci::tag_pattern::TagPattern;

fn policy_from_row(row: &sqlx::any::AnyRow) -> Result<ImmutableTagPolicy> {
    let repository: String = row.try_get("repository")?;
    let patterns: String = row.try_get("patterns")?;
    Ok(ImmutableTagPolicy {
        namespace: row.try_get("namespace")?,
        repository: (!repository.is_empty()).then_some(repository),
        patterns: patterns
            .lines()
            .map(|p| {
                p.parse::<TagPattern>()
                    .map_err(|e| MetadataError::Corrupt(e.to_string()))
            })
            .collect::<Result<_>>()?,
        updated_by: row.try_get("updated_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The policies of `repo` and of its namespace (the repository's first),
/// read inside the caller's transaction.
pub(super) async fn applicable(
    conn: &mut AnyConnection,
    repo: &RepositoryName,
) -> Result<ApplicablePolicies> {
    let rows = sqlx::query(
        "SELECT namespace, repository, patterns, updated_by, updated_at \
         FROM immutable_tag_policies WHERE namespace = $1 AND (repository = '' OR repository = $2) \
         ORDER BY repository DESC",
    )
    .bind(repo.namespace())
    .bind(stream_name(repo).unwrap_or(""))
    .fetch_all(&mut *conn)
    .await?;
    Ok(ApplicablePolicies(
        rows.iter().map(policy_from_row).collect::<Result<_>>()?,
    ))
}

/// `expires_at` of a tag still current at `at`: none, or later.
pub(super) fn live(expires_at: Option<Timestamp>, at: Timestamp) -> bool {
    expires_at.is_none_or(|e| e > at)
}

impl SqlMetadataStore {
    pub(super) async fn list_immutable_tag_policies(
        &self,
        namespace: &str,
    ) -> Result<Vec<ImmutableTagPolicy>> {
        let rows = sqlx::query(
            "SELECT namespace, repository, patterns, updated_by, updated_at \
             FROM immutable_tag_policies WHERE namespace = $1 ORDER BY repository",
        )
        .bind(namespace)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(policy_from_row).collect()
    }

    /// Replaces the policy of `namespace` (or of its `repository`); no
    /// patterns removes it. The tags it now covers lose their expiry in the
    /// same transaction: an immutable tag must not vanish by expiring.
    pub(super) async fn store_immutable_tag_policy(
        &self,
        namespace: &str,
        repository: Option<&str>,
        patterns: &[TagPattern],
        by: Option<&str>,
    ) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let scope = repository.unwrap_or("");
        if patterns.is_empty() {
            let removed = sqlx::query(
                "DELETE FROM immutable_tag_policies WHERE namespace = $1 AND repository = $2",
            )
            .bind(namespace)
            .bind(scope)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            tx.commit().await?;
            return Ok(removed);
        }
        let text = patterns
            .iter()
            .map(TagPattern::as_str)
            .collect::<Vec<_>>()
            .join("\n");
        sqlx::query(
            "INSERT INTO immutable_tag_policies (namespace, repository, patterns, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (namespace, repository) DO UPDATE SET \
             patterns = excluded.patterns, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(namespace)
        .bind(scope)
        .bind(text)
        .bind(by)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        // The tags with an expiry under the policy's repositories: few (only
        // tags given an expiry), matched here rather than in SQL so that
        // the one glob implementation decides.
        let below = match repository {
            Some(repo) => format!("{namespace}/{repo}"),
            None => format!("{}/%", super::sql_access::escape_like(namespace)),
        };
        let operator = if repository.is_some() { "=" } else { "LIKE" };
        let escape = if repository.is_some() {
            ""
        } else {
            " ESCAPE '\\'"
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT t.repository_id, t.name FROM tags t JOIN repositories r ON r.id = t.repository_id \
             WHERE r.name {operator} $1{escape} AND t.expires_at > $2"
        )))
        .bind(below)
        // An expired tag stays gone: the policy does not bring it back.
        .bind(now())
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let name: String = row.try_get("name")?;
            if patterns.iter().any(|p| p.matches(&name)) {
                sqlx::query(
                    "UPDATE tags SET expires_at = NULL WHERE repository_id = $1 AND name = $2",
                )
                .bind(row.try_get::<i64, _>("repository_id")?)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes the rows of tags whose expiry is at or before `at`, at most
    /// `limit` of them, and returns them. Their history stays: the tag's
    /// revisions keep their images for the pruner to decide on. A tag
    /// pushed again since is no longer expired and is left.
    pub(super) async fn delete_expired_tags(
        &self,
        at: Timestamp,
        limit: u32,
    ) -> Result<Vec<ExpiredTag>> {
        let mut tx = self.writer().begin().await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT t.repository_id, r.name AS repository, t.name, t.expires_at FROM tags t \
             JOIN repositories r ON r.id = t.repository_id \
             WHERE t.expires_at IS NOT NULL AND t.expires_at <= $1 \
             ORDER BY t.expires_at LIMIT $2 {}",
            self.engine().locking("FOR UPDATE OF t SKIP LOCKED")
        )))
        .bind(at)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut expired = Vec::with_capacity(rows.len());
        for row in &rows {
            let repo_id: i64 = row.try_get("repository_id")?;
            let name: String = row.try_get("name")?;
            // Re-checked by the delete itself: a push between the read and
            // here (SQLite has no row lock) moved the expiry on.
            let deleted = sqlx::query(
                "DELETE FROM tags WHERE repository_id = $1 AND name = $2 \
                 AND expires_at IS NOT NULL AND expires_at <= $3",
            )
            .bind(repo_id)
            .bind(name.as_str())
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if deleted {
                expired.push(ExpiredTag {
                    repository: super::sql::parse(row, "repository")?,
                    tag: name,
                    expired_at: row.try_get("expires_at")?,
                });
            }
        }
        tx.commit().await?;
        Ok(expired)
    }
}
