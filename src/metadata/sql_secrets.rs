//! [`SecretStore`] over SQL (both engines, like `sql.rs`).

use async_trait::async_trait;

use super::Result;
use super::secrets::{SecretStore, StoredSecret};
use super::sql::SqlMetadataStore;

const COLUMNS: &str = "namespace, name, uid, secret_type, registries, key_id, sealed, created_at";

#[async_trait]
impl SecretStore for SqlMetadataStore {
    async fn create_secret(&self, secret: &StoredSecret) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO pull_secrets \
             (namespace, name, uid, secret_type, registries, key_id, sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (namespace, name) DO NOTHING",
        )
        .bind(secret.namespace.as_str())
        .bind(secret.name.as_str())
        .bind(secret.uid.as_str())
        .bind(secret.secret_type.as_str())
        .bind(secret.registries.as_str())
        .bind(secret.key_id.as_str())
        .bind(secret.sealed.clone())
        .bind(secret.created_at)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(inserted > 0)
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<StoredSecret>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM pull_secrets WHERE namespace = $1 AND name = $2"
        )))
        .bind(namespace)
        .bind(name)
        .fetch_optional(self.reader())
        .await?)
    }

    async fn secrets(&self, namespace: &str) -> Result<Vec<StoredSecret>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM pull_secrets WHERE namespace = $1 ORDER BY name"
        )))
        .bind(namespace)
        .fetch_all(self.reader())
        .await?)
    }

    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM pull_secrets WHERE namespace = $1 AND name = $2")
            .bind(namespace)
            .bind(name)
            .execute(self.writer())
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn secrets_not_under_key(&self, key_id: &str) -> Result<Vec<StoredSecret>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM pull_secrets WHERE key_id <> $1 ORDER BY namespace, name"
        )))
        .bind(key_id)
        .fetch_all(self.reader())
        .await?)
    }

    async fn reseal_secret(
        &self,
        secret: &StoredSecret,
        old_key_id: &str,
        new_key_id: &str,
        sealed: &[u8],
    ) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE pull_secrets SET key_id = $1, sealed = $2 \
             WHERE namespace = $3 AND name = $4 AND uid = $5 AND key_id = $6",
        )
        .bind(new_key_id)
        .bind(sealed.to_vec())
        .bind(secret.namespace.as_str())
        .bind(secret.name.as_str())
        .bind(secret.uid.as_str())
        .bind(old_key_id)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(updated > 0)
    }
}
