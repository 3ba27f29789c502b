//! [`AccessStore`] over SQL (both engines, like `sql.rs`).

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::access::{
    AccessStore, Binding, BindingSubject, FailureCount, Group, LoginFailureKeys, LoginFailures,
    Namespace, ServiceAccount, SigningKey, SubjectKind, Token, TokenSubject, User, UserDeletion,
};
use super::sql::SqlMetadataStore;
use super::{MetadataError, Result, Timestamp};

/// A statement with its values bound.
type Statement<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

const BUMP_POLICY: &str = "UPDATE policy_version SET version = version + 1 WHERE id = 1";

pub(super) async fn bump(conn: &mut AnyConnection) -> Result<()> {
    sqlx::query(BUMP_POLICY).execute(conn).await?;
    Ok(())
}

fn token_from_row(row: &AnyRow) -> Result<Token> {
    let kind: String = row.try_get("subject_kind")?;
    let name: String = row.try_get("subject_name")?;
    let namespace: String = row.try_get("namespace")?;
    let subject = match SubjectKind::parse(&kind) {
        Some(SubjectKind::User) => TokenSubject::User(name),
        Some(SubjectKind::ServiceAccount) => TokenSubject::ServiceAccount { namespace, name },
        _ => {
            return Err(MetadataError::Corrupt(format!(
                "token subject kind {kind:?}"
            )));
        }
    };
    Ok(Token {
        uid: row.try_get("uid")?,
        name: row.try_get("name")?,
        subject,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn binding_from_row(row: &AnyRow) -> Result<Binding> {
    let namespace: String = row.try_get("namespace")?;
    let kind: String = row.try_get("subject_kind")?;
    Ok(Binding {
        namespace: (!namespace.is_empty()).then_some(namespace),
        role: row.try_get("role")?,
        subject: BindingSubject {
            kind: SubjectKind::parse(&kind)
                .ok_or_else(|| MetadataError::Corrupt(format!("binding subject kind {kind:?}")))?,
            name: row.try_get("subject_name")?,
            namespace: row.try_get("subject_namespace")?,
        },
    })
}

/// `(subject_kind, subject_name, namespace)` columns of a token subject.
fn token_subject_columns(subject: &TokenSubject) -> (&'static str, &str, &str) {
    match subject {
        TokenSubject::User(name) => ("User", name, ""),
        TokenSubject::ServiceAccount { namespace, name } => ("ServiceAccount", name, namespace),
    }
}

/// Repositories in the namespace `$1`, given `$2` = `$1` escaped for LIKE
/// followed by `/%`.
const IN_NAMESPACE: &str = "name = $1 OR name LIKE $2 ESCAPE '\\'";

/// `text` matching itself only in a LIKE pattern with `ESCAPE '\'`.
pub(super) fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

const TOKEN_COLUMNS: &str =
    "uid, name, namespace, subject_kind, subject_name, created_at, expires_at";
const USER_COLUMNS: &str =
    "name, uid, password_hash, email, super_user, created_at, credential_epoch";

/// Deletes the user `name` with its tokens and group memberships; returns
/// whether it existed.
async fn delete_user_in(conn: &mut AnyConnection, name: &str) -> Result<bool> {
    sqlx::query("DELETE FROM tokens WHERE subject_kind = 'User' AND subject_name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM group_members WHERE user_name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query("DELETE FROM users WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0)
}

/// Adds the group `name`, with no members, unless it exists; returns
/// whether it did.
async fn insert_group(conn: &mut AnyConnection, name: &str) -> Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO groups (name, uid, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(super::now())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0)
}

/// Adds `users` to the group `name` (those in it already stay).
async fn insert_members(conn: &mut AnyConnection, name: &str, users: &[String]) -> Result<()> {
    for user in users {
        sqlx::query(
            "INSERT INTO group_members (group_name, user_name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(user.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl SqlMetadataStore {
    async fn group_members(&self, name: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT user_name FROM group_members WHERE group_name = $1 ORDER BY user_name",
        )
        .bind(name)
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>("user_name"))
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Runs `statement` in a transaction that bumps the policy version when
    /// a row was affected; returns whether one was.
    async fn policy_write(&self, statement: Statement<'_>) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let changed = statement.execute(&mut *tx).await?.rows_affected() > 0;
        if changed {
            bump(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }
}

#[async_trait]
impl AccessStore for SqlMetadataStore {
    async fn policy_version(&self) -> Result<i64> {
        let row = sqlx::query("SELECT version FROM policy_version WHERE id = 1")
            .fetch_one(self.reader())
            .await?;
        Ok(row.try_get("version")?)
    }

    async fn user(&self, name: &str) -> Result<Option<User>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE name = $1"
        )))
        .bind(name)
        .fetch_optional(self.reader())
        .await?)
    }

    async fn users(&self) -> Result<Vec<User>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY name"
        )))
        .fetch_all(self.reader())
        .await?)
    }

    async fn create_user(&self, user: &User) -> Result<bool> {
        self.policy_write(
            sqlx::query(
                "INSERT INTO users (name, uid, password_hash, email, super_user, created_at, \
                 credential_epoch) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
            )
            .bind(user.name.as_str())
            .bind(user.uid.as_str())
            .bind(user.password_hash.as_deref())
            .bind(user.email.as_deref())
            .bind(i64::from(user.super_user))
            .bind(user.created_at)
            .bind(user.credential_epoch)
        )
        .await
    }

    async fn set_password(&self, name: &str, password_hash: Option<&str>) -> Result<bool> {
        self.policy_write(
            sqlx::query(
                "UPDATE users SET password_hash = $2, credential_epoch = credential_epoch + 1 \
                 WHERE name = $1",
            )
            .bind(name)
            .bind(password_hash),
        )
        .await
    }

    async fn delete_user(&self, name: &str) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let deleted = delete_user_in(&mut tx, name).await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn delete_user_unless_last_super_user(
        &self,
        name: &str,
        configured_super_users: &[String],
    ) -> Result<UserDeletion> {
        let mut tx = self.writer().begin().await?;
        // Bumping first takes the policy version's row lock (PostgreSQL):
        // two such deletions run one after the other, and the second reads
        // the super users the first left. (SQLite has one writer anyway.)
        bump(&mut tx).await?;
        let rows = sqlx::query("SELECT name, super_user FROM users")
            .fetch_all(&mut *tx)
            .await?;
        let mut target_is_super = None;
        let mut other_super_users = 0;
        for row in &rows {
            let user: String = row.try_get("name")?;
            let is_super =
                row.try_get::<i64, _>("super_user")? != 0 || configured_super_users.contains(&user);
            if user == name {
                target_is_super = Some(is_super);
            } else if is_super {
                other_super_users += 1;
            }
        }
        let outcome = match target_is_super {
            None => UserDeletion::NotFound,
            Some(true) if other_super_users == 0 => UserDeletion::LastSuperUser,
            Some(_) => {
                delete_user_in(&mut tx, name).await?;
                UserDeletion::Deleted
            }
        };
        if outcome == UserDeletion::Deleted {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(outcome)
    }

    async fn count_users(&self) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(self.reader())
            .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn group(&self, name: &str) -> Result<Option<Group>> {
        let Some(row) = sqlx::query("SELECT name, uid, created_at FROM groups WHERE name = $1")
            .bind(name)
            .fetch_optional(self.reader())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Group {
            name: row.try_get("name")?,
            uid: row.try_get("uid")?,
            created_at: row.try_get("created_at")?,
            users: self.group_members(name).await?,
        }))
    }

    async fn groups(&self) -> Result<Vec<Group>> {
        let rows = sqlx::query("SELECT name FROM groups ORDER BY name")
            .fetch_all(self.reader())
            .await?;
        let mut groups = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get("name")?;
            if let Some(group) = self.group(&name).await? {
                groups.push(group);
            }
        }
        Ok(groups)
    }

    async fn create_group(&self, name: &str, users: &[String]) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let created = insert_group(&mut tx, name).await?;
        if created {
            insert_members(&mut tx, name, users).await?;
            bump(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn put_group(&self, name: &str, users: &[String]) -> Result<Group> {
        let mut tx = self.writer().begin().await?;
        insert_group(&mut tx, name).await?;
        sqlx::query("DELETE FROM group_members WHERE group_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        insert_members(&mut tx, name, users).await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        self.group(name)
            .await?
            .ok_or_else(|| MetadataError::Corrupt(format!("group {name} vanished")))
    }

    async fn delete_group(&self, name: &str) -> Result<bool> {
        self.policy_write(sqlx::query("DELETE FROM groups WHERE name = $1").bind(name))
            .await
    }

    async fn namespace(&self, name: &str) -> Result<Option<Namespace>> {
        Ok(sqlx::query_as(
            "SELECT name, uid, created_by, created_at FROM namespaces WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.reader())
        .await?)
    }

    async fn namespaces(&self) -> Result<Vec<Namespace>> {
        Ok(
            sqlx::query_as(
                "SELECT name, uid, created_by, created_at FROM namespaces ORDER BY name",
            )
            .fetch_all(self.reader())
            .await?,
        )
    }

    async fn create_namespace(&self, namespace: &Namespace) -> Result<bool> {
        self.policy_write(
            sqlx::query(
                "INSERT INTO namespaces (name, uid, created_by, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(namespace.name.as_str())
            .bind(namespace.uid.as_str())
            .bind(namespace.created_by.as_deref())
            .bind(namespace.created_at)
        )
        .await
    }

    async fn namespace_quotas(&self) -> Result<Vec<super::quotas::NamespaceQuota>> {
        self.list_namespace_quotas().await
    }

    async fn namespace_quota(
        &self,
        namespace: &str,
    ) -> Result<Option<super::quotas::NamespaceQuota>> {
        self.read_namespace_quota(namespace).await
    }

    async fn set_namespace_quota(&self, quota: &super::quotas::NamespaceQuota) -> Result<bool> {
        self.write_namespace_quota(quota).await
    }

    async fn delete_namespace(&self, name: &str) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        for statement in [
            "DELETE FROM tokens WHERE subject_kind = 'ServiceAccount' AND namespace = $1",
            "DELETE FROM service_accounts WHERE namespace = $1",
            "DELETE FROM role_bindings WHERE namespace = $1",
        ] {
            sqlx::query(statement).bind(name).execute(&mut *tx).await?;
        }
        // The repositories `name` and `name/…`. Repository names may hold
        // `_`, a LIKE wildcard, hence the escapes.
        let below = format!("{}/%", escape_like(name));
        for table in ["tags", "repository_manifests", "repository_blobs"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE repository_id IN \
                 (SELECT id FROM repositories WHERE {IN_NAMESPACE})"
            )))
            .bind(name)
            .bind(below.as_str())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM repositories WHERE {IN_NAMESPACE}"
        )))
        .bind(name)
        .bind(below.as_str())
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM namespaces WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn service_account(&self, namespace: &str, name: &str) -> Result<Option<ServiceAccount>> {
        Ok(sqlx::query_as(
            "SELECT namespace, name, uid, created_at FROM service_accounts WHERE namespace = $1 AND name = $2",
        )
        .bind(namespace)
        .bind(name)
        .fetch_optional(self.reader())
        .await?)
    }

    async fn service_accounts(&self, namespace: &str) -> Result<Vec<ServiceAccount>> {
        Ok(sqlx::query_as(
            "SELECT namespace, name, uid, created_at FROM service_accounts WHERE namespace = $1 ORDER BY name",
        )
        .bind(namespace)
        .fetch_all(self.reader())
        .await?)
    }

    async fn create_service_account(&self, account: &ServiceAccount) -> Result<bool> {
        self.policy_write(
            sqlx::query(
                "INSERT INTO service_accounts (namespace, name, uid, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (namespace, name) DO NOTHING",
            )
            .bind(account.namespace.as_str())
            .bind(account.name.as_str())
            .bind(account.uid.as_str())
            .bind(account.created_at)
        )
        .await
    }

    async fn delete_service_account(&self, namespace: &str, name: &str) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "DELETE FROM tokens WHERE subject_kind = 'ServiceAccount' AND namespace = $1 AND subject_name = $2",
        )
        .bind(namespace)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        let deleted =
            sqlx::query("DELETE FROM service_accounts WHERE namespace = $1 AND name = $2")
                .bind(namespace)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn bindings(&self) -> Result<Vec<Binding>> {
        let rows = sqlx::query(
            "SELECT namespace, role, subject_kind, subject_name, subject_namespace FROM role_bindings \
             ORDER BY namespace, role, subject_kind, subject_name, subject_namespace",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(binding_from_row).collect()
    }

    async fn add_binding(&self, binding: &Binding) -> Result<bool> {
        self.policy_write(
            sqlx::query(
                "INSERT INTO role_bindings (namespace, role, subject_kind, subject_name, subject_namespace, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(binding.namespace.as_deref().unwrap_or(""))
            .bind(binding.role.as_str())
            .bind(binding.subject.kind.as_str())
            .bind(binding.subject.name.as_str())
            .bind(binding.subject.namespace.as_str())
            .bind(super::now())
        )
        .await
    }

    async fn remove_binding(&self, binding: &Binding) -> Result<bool> {
        self.policy_write(
            sqlx::query(
                "DELETE FROM role_bindings WHERE namespace = $1 AND role = $2 AND subject_kind = $3 \
                 AND subject_name = $4 AND subject_namespace = $5",
            )
            .bind(binding.namespace.as_deref().unwrap_or(""))
            .bind(binding.role.as_str())
            .bind(binding.subject.kind.as_str())
            .bind(binding.subject.name.as_str())
            .bind(binding.subject.namespace.as_str()),
        )
        .await
    }

    async fn create_token(&self, token: &Token, secret_hash: &str) -> Result<bool> {
        let (kind, name, namespace) = token_subject_columns(&token.subject);
        self.policy_write(
            sqlx::query(
                "INSERT INTO tokens (uid, name, namespace, secret_hash, subject_kind, subject_name, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(token.uid.as_str())
            .bind(token.name.as_str())
            .bind(namespace)
            .bind(secret_hash)
            .bind(kind)
            .bind(name)
            .bind(token.created_at)
            .bind(token.expires_at)
        )
        .await
    }

    async fn token_by_secret_hash(&self, secret_hash: &str) -> Result<Option<Token>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_hash = $1"
        )))
        .bind(secret_hash)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| token_from_row(&r)).transpose()
    }

    async fn token(&self, uid: &str) -> Result<Option<Token>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE uid = $1"
        )))
        .bind(uid)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| token_from_row(&r)).transpose()
    }

    async fn tokens(
        &self,
        namespace: Option<&str>,
        subject: Option<&TokenSubject>,
    ) -> Result<Vec<Token>> {
        let rows = match subject {
            Some(subject) => {
                let (kind, name, ns) = token_subject_columns(subject);
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens WHERE subject_kind = $1 AND subject_name = $2 \
                     AND namespace = $3 ORDER BY name"
                )))
                .bind(kind)
                .bind(name)
                .bind(ns)
                .fetch_all(self.reader())
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens WHERE namespace = $1 ORDER BY name"
                )))
                .bind(namespace.unwrap_or(""))
                .fetch_all(self.reader())
                .await?
            }
        };
        rows.iter().map(token_from_row).collect()
    }

    async fn delete_token(&self, uid: &str) -> Result<bool> {
        self.policy_write(sqlx::query("DELETE FROM tokens WHERE uid = $1").bind(uid))
            .await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKey>> {
        Ok(sqlx::query_as(
            "SELECT kid, private_key, created_at FROM signing_keys ORDER BY created_at DESC",
        )
        .fetch_all(self.reader())
        .await?)
    }

    async fn add_signing_key(&self, key: &SigningKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, private_key, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(key.kid.as_str())
        .bind(key.private_key.as_str())
        .bind(key.created_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn delete_signing_keys_before(&self, before: Timestamp) -> Result<u64> {
        let result = sqlx::query("DELETE FROM signing_keys WHERE created_at < $1")
            .bind(before)
            .execute(self.writer())
            .await?;
        Ok(result.rows_affected())
    }

    async fn count_login_failure(&self, count: FailureCount<'_>) -> Result<LoginFailures> {
        // One statement, so that replicas counting the same key at once
        // neither lose a failure nor both start a new window.
        let row = sqlx::query(
            "INSERT INTO login_failures (key, user_name, count, since, locked_until, updated_at)
             VALUES ($1, $2, 1, $3, NULL, $3)
             ON CONFLICT (key) DO UPDATE SET
               count = CASE WHEN login_failures.since <= $4
                             AND COALESCE(login_failures.locked_until, 0) <= $3
                            THEN 1 ELSE login_failures.count + 1 END,
               locked_until = CASE WHEN login_failures.since <= $4
                             AND COALESCE(login_failures.locked_until, 0) <= $3
                            THEN NULL ELSE login_failures.locked_until END,
               since = CASE WHEN login_failures.since <= $4
                             AND COALESCE(login_failures.locked_until, 0) <= $3
                            THEN $3 ELSE login_failures.since END,
               updated_at = $3
             RETURNING count, since, locked_until",
        )
        .bind(count.key)
        .bind(count.user)
        .bind(count.at)
        .bind(count.at - count.window_ms)
        .fetch_one(self.writer())
        .await?;
        let mut failures = LoginFailures {
            key: count.key.to_owned(),
            count: u32::try_from(row.try_get::<i64, _>("count")?).unwrap_or(u32::MAX),
            since: row.try_get("since")?,
            locked_until: row.try_get("locked_until")?,
        };
        if let Some(limit) = count.limit
            && failures.count >= limit
        {
            let until = count.at + count.lock_ms;
            sqlx::query(
                "UPDATE login_failures SET locked_until = $2, updated_at = $3
                 WHERE key = $1 AND COALESCE(locked_until, 0) < $2",
            )
            .bind(count.key)
            .bind(until)
            .bind(count.at)
            .execute(self.writer())
            .await?;
            failures.locked_until = Some(failures.locked_until.unwrap_or(0).max(until));
        }
        Ok(failures)
    }

    async fn login_failures_changed_since(&self, since: Timestamp) -> Result<Vec<LoginFailures>> {
        let rows = sqlx::query(
            "SELECT key, count, since, locked_until FROM login_failures WHERE updated_at >= $1",
        )
        .bind(since)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LoginFailures {
                    key: r.try_get("key")?,
                    count: u32::try_from(r.try_get::<i64, _>("count")?).unwrap_or(u32::MAX),
                    since: r.try_get("since")?,
                    locked_until: r.try_get("locked_until")?,
                })
            })
            .collect()
    }

    async fn reset_login_failures(
        &self,
        which: LoginFailureKeys<'_>,
        at: Timestamp,
    ) -> Result<bool> {
        let (locked, reset, value) = match which {
            LoginFailureKeys::User(user) => (
                "SELECT COUNT(*) FROM login_failures WHERE user_name = $1 AND locked_until > $2",
                "UPDATE login_failures SET count = 0, since = $2, locked_until = NULL, updated_at = $2
                 WHERE user_name = $1 AND (count > 0 OR locked_until IS NOT NULL)",
                user,
            ),
            LoginFailureKeys::One(key) => (
                "SELECT COUNT(*) FROM login_failures WHERE key = $1 AND locked_until > $2",
                "UPDATE login_failures SET count = 0, since = $2, locked_until = NULL, updated_at = $2
                 WHERE key = $1 AND (count > 0 OR locked_until IS NOT NULL)",
                key,
            ),
        };
        let was_locked: i64 = sqlx::query_scalar(locked)
            .bind(value)
            .bind(at)
            .fetch_one(self.writer())
            .await?;
        sqlx::query(reset)
            .bind(value)
            .bind(at)
            .execute(self.writer())
            .await?;
        Ok(was_locked > 0)
    }

    async fn remove_login_failures_before(&self, before: Timestamp, at: Timestamp) -> Result<u64> {
        let result = sqlx::query(
            "DELETE FROM login_failures WHERE updated_at < $1 AND COALESCE(locked_until, 0) <= $2",
        )
        .bind(before)
        .bind(at)
        .execute(self.writer())
        .await?;
        Ok(result.rows_affected())
    }
}
