//! Pull secrets as stored ([`SecretStore`]): one row per secret of a
//! namespace, holding what may be shown in clear (its type, and the servers
//! and user names it has credentials for) and, sealed, what may not. This
//! layer never sees a credential in clear: sealing and opening are the
//! domain's (`domain::secrets`).

use async_trait::async_trait;

use super::{Result, Timestamp};

/// A secret's row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredSecret {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `kubernetes.io/dockerconfigjson`.
    pub secret_type: String,
    /// The servers and user names, as JSON (never a credential).
    pub registries: String,
    /// Which key sealed [`sealed`](Self::sealed).
    pub key_id: String,
    /// Nonce, ciphertext and tag.
    pub sealed: Vec<u8>,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
    /// Stores the secret; false (nothing written) if its namespace has one
    /// of that name. The namespace must exist.
    async fn create_secret(&self, secret: &StoredSecret) -> Result<bool>;
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<StoredSecret>>;
    /// A namespace's secrets, by name.
    async fn secrets(&self, namespace: &str) -> Result<Vec<StoredSecret>>;
    async fn delete_secret(&self, namespace: &str, name: &str) -> Result<bool>;
    /// Secrets sealed under any key but `key_id`
    /// (for re-encryption after a key rotation).
    async fn secrets_not_under_key(&self, key_id: &str) -> Result<Vec<StoredSecret>>;
    /// Replaces the sealed part of a secret if it is still sealed under
    /// `old_key_id` and has not been replaced by another of the same name
    /// (`uid`); false if not (another replica re-encrypted it first, or
    /// it is gone).
    async fn reseal_secret(
        &self,
        secret: &StoredSecret,
        old_key_id: &str,
        new_key_id: &str,
        sealed: &[u8],
    ) -> Result<bool>;
}
