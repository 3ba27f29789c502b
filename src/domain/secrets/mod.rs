//! Pull secrets: per namespace, the credentials berth uses to read
//! upstream registries (imports), as OpenShift keeps them in
//! `kubernetes.io/dockerconfigjson` secrets.
//!
//! - [`docker_config`]: reading an `auth.json` (podman's or docker's).
//! - [`cipher`]: the keys, and sealing at rest with AES-256-GCM.
//! - [`matching`]: which secret's server applies to an upstream.
//! - [`PullSecrets`]: the service over the store: create, list, read,
//!   delete, the credentials for an upstream, re-encryption after a key
//!   rotation.
//!
//! What is kept in clear, in the row: the type, and each server with its
//! user name and e-mail ([`RegistrySummary`]), so that secrets can be listed
//! and matched to an upstream without opening them. Passwords, `auth`
//! strings and identity tokens are sealed, and leave this module only in
//! [`UpstreamCredentials`], whose `Debug` hides them.

pub mod cipher;
pub mod docker_config;
pub mod matching;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use cipher::{KeyError, KeySettings, LoadedKeys, OpenError, SecretKey, SecretKeys, load_keys};
pub use docker_config::{DockerConfigError, RegistryAuth, docker_config_for, parse_docker_config};
pub use matching::{ReferenceError, UpstreamRepository, best_match};

use crate::metadata::secrets::{SecretStore, StoredSecret};
use crate::metadata::{MetadataError, Timestamp, now};

/// The one type of secret berth keeps.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
/// Its one data key.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";

/// What may be shown of one server of a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrySummary {
    pub server: String,
    #[serde(default)]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl From<&RegistryAuth> for RegistrySummary {
    fn from(auth: &RegistryAuth) -> Self {
        RegistrySummary {
            server: auth.server.clone(),
            username: auth.username.clone(),
            email: auth.email.clone(),
        }
    }
}

/// A secret without its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub secret_type: String,
    pub created_at: Timestamp,
    pub registries: Vec<RegistrySummary>,
}

/// The credentials chosen for an upstream.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamCredentials {
    /// The secret they come from, and its server that matched.
    pub secret: String,
    pub server: String,
    pub username: String,
    pub password: String,
    /// An OAuth2 refresh token, to exchange for a bearer token, when the
    /// login gave one.
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for UpstreamCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamCredentials")
            .field("secret", &self.secret)
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &"…")
            .field("identity_token", &self.identity_token.as_ref().map(|_| "…"))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The docker config given cannot be used (says why, never quoting a
    /// credential).
    #[error(transparent)]
    Invalid(#[from] DockerConfigError),
    /// A stored secret does not open: its key is missing, or its value
    /// was altered.
    #[error(
        "secret \"{namespace}/{name}\" cannot be decrypted: {reason}; see \"Pull secrets\" in \
         berth's README on keys and their rotation"
    )]
    Undecryptable {
        namespace: String,
        name: String,
        reason: OpenError,
    },
    /// The upstream reference cannot name a repository.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("encrypting the secret failed")]
    Seal,
    #[error(transparent)]
    Store(#[from] MetadataError),
}

pub type SecretResult<T> = Result<T, SecretError>;

/// What [`PullSecrets::reencrypt`] did.
#[derive(Debug, Default)]
pub struct Reencryption {
    /// Secrets now under the current key.
    pub resealed: usize,
    /// Secrets left as they were: under a key this server lacks, or
    /// altered (each error names the secret).
    pub failed: Vec<SecretError>,
}

/// Pull secrets, sealed in the store under [`SecretKeys`].
pub struct PullSecrets {
    store: Arc<dyn SecretStore>,
    keys: SecretKeys,
}

/// What a sealed value is bound to: it opens on its own row only.
fn associated_data(namespace: &str, name: &str, uid: &str) -> Vec<u8> {
    format!("berth pull secret v1\0{namespace}\0{name}\0{uid}").into_bytes()
}

fn summaries(row: &StoredSecret) -> SecretResult<Vec<RegistrySummary>> {
    serde_json::from_str(&row.registries).map_err(|e| {
        SecretError::Store(MetadataError::Corrupt(format!(
            "the servers of secret {}/{}: {e}",
            row.namespace, row.name
        )))
    })
}

fn info(row: &StoredSecret) -> SecretResult<SecretInfo> {
    Ok(SecretInfo {
        namespace: row.namespace.clone(),
        name: row.name.clone(),
        uid: row.uid.clone(),
        secret_type: row.secret_type.clone(),
        created_at: row.created_at,
        registries: summaries(row)?,
    })
}

impl PullSecrets {
    pub fn new(store: Arc<dyn SecretStore>, keys: SecretKeys) -> PullSecrets {
        PullSecrets { store, keys }
    }

    pub fn keys(&self) -> &SecretKeys {
        &self.keys
    }

    /// Stores `docker_config` (an `auth.json`) as the secret `name` of
    /// `namespace`, which must exist. `None` if the namespace has a secret
    /// of that name (nothing is written). A config that cannot be used is
    /// refused before anything is written.
    pub async fn create(
        &self,
        namespace: &str,
        name: &str,
        docker_config: &[u8],
    ) -> SecretResult<Option<SecretInfo>> {
        let registries = parse_docker_config(docker_config)?;
        let summary: Vec<RegistrySummary> = registries.iter().map(RegistrySummary::from).collect();
        let uid = uuid::Uuid::new_v4().to_string();
        let plaintext = docker_config::to_docker_config(&registries);
        let (key_id, sealed) = self
            .keys
            .seal(&associated_data(namespace, name, &uid), &plaintext)
            .map_err(|_| SecretError::Seal)?;
        let row = StoredSecret {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid,
            secret_type: DOCKER_CONFIG_JSON_TYPE.to_owned(),
            registries: serde_json::to_string(&summary).unwrap_or_else(|_| "[]".into()),
            key_id,
            sealed,
            created_at: now(),
        };
        if !self.store.create_secret(&row).await? {
            return Ok(None);
        }
        Ok(Some(info(&row)?))
    }

    /// A namespace's secrets, by name, without opening them.
    pub async fn list(&self, namespace: &str) -> SecretResult<Vec<SecretInfo>> {
        self.store
            .secrets(namespace)
            .await?
            .iter()
            .map(info)
            .collect()
    }

    /// One secret, without opening it.
    pub async fn get(&self, namespace: &str, name: &str) -> SecretResult<Option<SecretInfo>> {
        self.store
            .secret(namespace, name)
            .await?
            .as_ref()
            .map(info)
            .transpose()
    }

    /// One secret, opened: what it says, and its credentials.
    pub async fn open(
        &self,
        namespace: &str,
        name: &str,
    ) -> SecretResult<Option<(SecretInfo, Vec<RegistryAuth>)>> {
        let Some(row) = self.store.secret(namespace, name).await? else {
            return Ok(None);
        };
        let registries = self.open_row(&row)?;
        let mut info = info(&row)?;
        info.registries = registries.iter().map(RegistrySummary::from).collect();
        Ok(Some((info, registries)))
    }

    fn open_row(&self, row: &StoredSecret) -> SecretResult<Vec<RegistryAuth>> {
        let undecryptable = |reason| SecretError::Undecryptable {
            namespace: row.namespace.clone(),
            name: row.name.clone(),
            reason,
        };
        let plaintext = self
            .keys
            .open(
                &row.key_id,
                &associated_data(&row.namespace, &row.name, &row.uid),
                &row.sealed,
            )
            .map_err(undecryptable)?;
        // Sealed by berth itself, so it parses; if not, it is damaged.
        parse_docker_config(&plaintext)
            .map_err(|_| undecryptable(OpenError::Damaged(row.key_id.clone())))
    }

    pub async fn delete(&self, namespace: &str, name: &str) -> SecretResult<bool> {
        Ok(self.store.delete_secret(namespace, name).await?)
    }

    /// The credentials `namespace` holds for `upstream`: of its secrets'
    /// servers, the one naming the upstream's host (port included) with
    /// the longest path prefix of the repository; on a tie, the secret
    /// first by name, and within it the server first by name. Only
    /// that secret is opened. `None` when no server applies (the upstream
    /// is then read anonymously).
    pub async fn credentials_for(
        &self,
        namespace: &str,
        upstream: &UpstreamRepository,
    ) -> SecretResult<Option<UpstreamCredentials>> {
        self.credentials_among(namespace, None, upstream).await
    }

    /// [`credentials_for`](Self::credentials_for), looking only in the
    /// secret named `only` when there is one.
    async fn credentials_among(
        &self,
        namespace: &str,
        only: Option<&str>,
        upstream: &UpstreamRepository,
    ) -> SecretResult<Option<UpstreamCredentials>> {
        let mut rows = self.store.secrets(namespace).await?;
        if let Some(name) = only {
            rows.retain(|row| row.name == name);
        }
        let mut servers: Vec<(usize, RegistrySummary)> = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            servers.extend(summaries(row)?.into_iter().map(|s| (index, s)));
        }
        let Some((index, server)) = best_match(
            servers
                .iter()
                .map(|(i, s)| (s.server.as_str(), (*i, s.server.as_str()))),
            upstream,
        ) else {
            return Ok(None);
        };
        let row = &rows[index];
        let opened = self.open_row(row)?;
        let Some(auth) = opened.into_iter().find(|a| a.server == server) else {
            return Err(SecretError::Undecryptable {
                namespace: row.namespace.clone(),
                name: row.name.clone(),
                reason: OpenError::Damaged(row.key_id.clone()),
            });
        };
        Ok(Some(UpstreamCredentials {
            secret: row.name.clone(),
            server: auth.server,
            username: auth.username,
            password: auth.password,
            identity_token: auth.identity_token,
        }))
    }

    /// [`credentials_for`](Self::credentials_for) a reference as written
    /// (`host[:port]/path[:tag|@digest]`).
    pub async fn credentials_for_reference(
        &self,
        namespace: &str,
        reference: &str,
    ) -> SecretResult<Option<UpstreamCredentials>> {
        let upstream: UpstreamRepository = reference.parse()?;
        self.credentials_for(namespace, &upstream).await
    }

    /// How `namespace` reaches the upstream repository `repository_path`
    /// (`host[:port]/path`): with the credentials of its pull secret for it
    /// (of the secret named `secret`, when one is named), if it has one,
    /// else anonymously; `insecure` as the tag asks.
    pub async fn upstream_access(
        &self,
        namespace: &str,
        secret: Option<&str>,
        repository_path: &str,
        insecure: bool,
    ) -> SecretResult<crate::upstream::UpstreamAccess> {
        use crate::upstream::{UpstreamAccess, UpstreamCredentials as Login};
        let upstream: UpstreamRepository = repository_path.parse()?;
        let access = match self.credentials_among(namespace, secret, &upstream).await? {
            Some(c) => UpstreamAccess::with_credentials(Login::new(c.username, c.password)),
            None => UpstreamAccess::anonymous(),
        };
        Ok(access.insecure(insecure))
    }

    /// Seals every secret not under the current key under it (after a key
    /// rotation). Safe to run on several replicas at once: a secret is
    /// rewritten only if it is still as it was read.
    pub async fn reencrypt(&self) -> SecretResult<Reencryption> {
        let mut done = Reencryption::default();
        for row in self
            .store
            .secrets_not_under_key(self.keys.current_id())
            .await?
        {
            let plaintext = match self.open_row(&row) {
                Ok(registries) => docker_config::to_docker_config(&registries),
                Err(e) => {
                    done.failed.push(e);
                    continue;
                }
            };
            let (key_id, sealed) = self
                .keys
                .seal(
                    &associated_data(&row.namespace, &row.name, &row.uid),
                    &plaintext,
                )
                .map_err(|_| SecretError::Seal)?;
            if self
                .store
                .reseal_secret(&row, &row.key_id, &key_id, &sealed)
                .await?
            {
                done.resealed += 1;
            }
        }
        Ok(done)
    }
}
