//! [`ProxyStore`] over SQL (both engines, like `sql.rs`).

use async_trait::async_trait;

use super::Result;
use super::proxies::{ProxyStore, StoredProxy};
use super::sql::SqlMetadataStore;

#[async_trait]
impl ProxyStore for SqlMetadataStore {
    async fn put_proxy(&self, proxy: &StoredProxy) -> Result<()> {
        sqlx::query(
            "INSERT INTO proxy_namespaces \
             (namespace, upstream, secret, ttl_seconds, insecure, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (namespace) DO UPDATE SET upstream = EXCLUDED.upstream, \
             secret = EXCLUDED.secret, ttl_seconds = EXCLUDED.ttl_seconds, \
             insecure = EXCLUDED.insecure",
        )
        .bind(proxy.namespace.as_str())
        .bind(proxy.upstream.as_str())
        .bind(proxy.secret.clone())
        .bind(proxy.ttl_seconds)
        .bind(i64::from(proxy.insecure))
        .bind(proxy.created_by.clone())
        .bind(proxy.created_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn proxies(&self) -> Result<Vec<StoredProxy>> {
        Ok(sqlx::query_as(
            "SELECT namespace, upstream, secret, ttl_seconds, insecure, created_by, created_at \
             FROM proxy_namespaces ORDER BY namespace",
        )
        .fetch_all(self.reader())
        .await?)
    }

    async fn delete_proxy(&self, namespace: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM proxy_namespaces WHERE namespace = $1")
            .bind(namespace)
            .execute(self.writer())
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }
}
