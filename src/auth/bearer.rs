//! Bearer tokens of the Docker token protocol: short-lived JWTs (ES256)
//! whose `access` claim lists what the holder may do.
//!
//! Signing keys live in the access store so that every replica verifies
//! what any replica signed. A new key is made when the newest is older than
//! the rotation interval; older keys keep verifying until every token they
//! signed has expired, so a rotation invalidates nothing.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::metadata::access::{AccessStore, SigningKey};
use crate::metadata::{MetadataError, now};
use crate::oci::digest::DigestAlgorithm;

/// One entry of the `access` claim (and of a token request's scopes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The principal's name; empty for anonymous callers.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<AccessEntry>,
    /// The opaque token this bearer token was issued for, if any: revoking
    /// that token revokes this one too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// For a user who signed in with a password: the user's uid and
    /// credential epoch then. A password change moves the epoch on, and a
    /// user deleted and made again has another uid: either ends the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
}

impl Claims {
    /// The password stamp the token carries, if any.
    pub fn stamp(&self) -> Option<PasswordStamp> {
        Some(PasswordStamp {
            uid: self.uid.clone()?,
            epoch: self.epoch?,
        })
    }
}

/// Which password of which user a caller proved: the user's uid and its
/// credential epoch at the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordStamp {
    pub uid: String,
    pub epoch: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    #[error("bearer token is invalid: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] MetadataError),
    #[error("signing key: {0}")]
    Key(String),
}

struct KeyRing {
    /// The newest key: (kid, key, created_at).
    signing: Option<(String, EncodingKey, i64)>,
    verifying: HashMap<String, DecodingKey>,
}

pub struct BearerTokens {
    store: Arc<dyn AccessStore>,
    issuer: String,
    service: String,
    lifetime: Duration,
    rotation: Duration,
    keys: RwLock<KeyRing>,
}

/// Key id: the first 16 bytes of the SHA-256 of the public key, in hex.
fn key_id(public_key: &[u8]) -> String {
    DigestAlgorithm::Sha256.digest_of(public_key).hex()[..32].to_owned()
}

fn decode_key(key: &SigningKey) -> Result<(EncodingKey, DecodingKey), BearerError> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(&key.private_key)
        .map_err(|e| BearerError::Key(format!("{}: {e}", key.kid)))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
        .map_err(|e| BearerError::Key(format!("{}: {e}", key.kid)))?;
    Ok((
        EncodingKey::from_ec_der(&der),
        DecodingKey::from_ec_der(pair.public_key().as_ref()),
    ))
}

fn generate_key() -> Result<SigningKey, BearerError> {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|e| BearerError::Key(e.to_string()))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|e| BearerError::Key(e.to_string()))?;
    Ok(SigningKey {
        kid: key_id(pair.public_key().as_ref()),
        private_key: base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref()),
        created_at: now(),
    })
}

impl BearerTokens {
    pub fn new(
        store: Arc<dyn AccessStore>,
        issuer: impl Into<String>,
        service: impl Into<String>,
        lifetime: Duration,
        rotation: Duration,
    ) -> Self {
        BearerTokens {
            store,
            issuer: issuer.into(),
            service: service.into(),
            lifetime,
            rotation,
            keys: RwLock::new(KeyRing {
                signing: None,
                verifying: HashMap::new(),
            }),
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Makes a new signing key if the newest is due for rotation (or there
    /// is none), forgets keys no live token can have used, and loads the
    /// keys. Run by one replica at a time (the `signing-key-rotation` job);
    /// the others pick the new key up with [`load_keys`](Self::load_keys).
    pub async fn rotate_keys(&self) -> Result<bool, BearerError> {
        let rotation_ms = i64::try_from(self.rotation.as_millis()).unwrap_or(i64::MAX);
        let lifetime_ms = i64::try_from(self.lifetime.as_millis()).unwrap_or(i64::MAX);
        let keys = self.store.signing_keys().await?;
        let due = keys
            .first()
            .is_none_or(|newest| now().saturating_sub(newest.created_at) >= rotation_ms);
        if due {
            self.store.add_signing_key(&generate_key()?).await?;
            // A key signs for one rotation interval; its tokens live one
            // lifetime longer. Keep a margin of one more interval.
            let horizon =
                now().saturating_sub(rotation_ms.saturating_mul(2).saturating_add(lifetime_ms));
            self.store.delete_signing_keys_before(horizon).await?;
        }
        self.load_keys().await?;
        Ok(due)
    }

    /// Loads the keys from the store: the newest signs, all verify. When
    /// there is none yet (a registry's first start), makes the first; two
    /// replicas starting together may each make one, and both verify.
    pub async fn load_keys(&self) -> Result<(), BearerError> {
        let mut keys = self.store.signing_keys().await?;
        if keys.is_empty() {
            self.store.add_signing_key(&generate_key()?).await?;
            keys = self.store.signing_keys().await?;
        }
        let mut ring = KeyRing {
            signing: None,
            verifying: HashMap::new(),
        };
        for key in &keys {
            let (encoding, decoding) = decode_key(key)?;
            if ring.signing.is_none() {
                ring.signing = Some((key.kid.clone(), encoding, key.created_at));
            }
            ring.verifying.insert(key.kid.clone(), decoding);
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = ring;
        Ok(())
    }

    /// Signs a token for `subject` (empty for anonymous) granting `access`,
    /// issued for the opaque token `token_uid` or the password `stamp`.
    pub async fn issue(
        &self,
        subject: &str,
        access: Vec<AccessEntry>,
        token_uid: Option<String>,
        stamp: Option<PasswordStamp>,
    ) -> Result<String, BearerError> {
        if self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .signing
            .is_none()
        {
            self.load_keys().await?;
        }
        let issued = now() / 1000;
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_owned(),
            aud: self.service.clone(),
            exp: issued + i64::try_from(self.lifetime.as_secs()).unwrap_or(300),
            nbf: issued - 1,
            iat: issued,
            jti: uuid::Uuid::new_v4().to_string(),
            access,
            tid: token_uid,
            uid: stamp.as_ref().map(|s| s.uid.clone()),
            epoch: stamp.map(|s| s.epoch),
        };
        self.sign(&claims)
    }

    fn sign(&self, claims: &Claims) -> Result<String, BearerError> {
        let ring = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let Some((kid, key, _)) = &ring.signing else {
            return Err(BearerError::Key("no signing key".into()));
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, key).map_err(|e| BearerError::Key(e.to_string()))
    }

    /// Checks signature, issuer, audience and lifetime, and returns the claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, BearerError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| BearerError::Invalid(e.to_string()))?;
        let kid = header
            .kid
            .ok_or_else(|| BearerError::Invalid("no key id".into()))?;
        let known = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .verifying
            .contains_key(&kid);
        if !known {
            // Perhaps another replica rotated: look again, once.
            self.load_keys().await?;
        }
        let ring = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let key = ring
            .verifying
            .get(&kid)
            .ok_or_else(|| BearerError::Invalid(format!("unknown key id {kid}")))?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[&self.service]);
        validation.set_issuer(&[&self.issuer]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| BearerError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{DatabaseConfig, SqlMetadataStore};

    async fn tokens(
        lifetime: Duration,
        rotation: Duration,
    ) -> (BearerTokens, Arc<SqlMetadataStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SqlMetadataStore::connect(&DatabaseConfig::Sqlite {
                path: dir.path().join("b.db"),
            })
            .await
            .unwrap(),
        );
        (
            BearerTokens::new(store.clone(), "berth", "berth-test", lifetime, rotation),
            store,
            dir,
        )
    }

    fn pull(name: &str) -> Vec<AccessEntry> {
        vec![AccessEntry {
            kind: "repository".into(),
            name: name.into(),
            actions: vec!["pull".into()],
        }]
    }

    #[tokio::test]
    async fn issued_tokens_verify_with_their_claims() {
        let (t, _, _dir) = tokens(Duration::from_secs(300), Duration::from_secs(3600)).await;
        let jwt = t
            .issue("alice", pull("ns/app"), Some("tok-1".into()), None)
            .await
            .unwrap();
        let claims = t.verify(&jwt).await.unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.aud, "berth-test");
        assert_eq!(claims.access, pull("ns/app"));
        assert_eq!(claims.tid.as_deref(), Some("tok-1"));
        assert!(claims.exp - claims.iat == 300);
    }

    #[tokio::test]
    async fn tampered_foreign_and_expired_tokens_fail() {
        let (t, _, _dir) = tokens(Duration::from_secs(300), Duration::from_secs(3600)).await;
        let jwt = t.issue("alice", pull("ns/app"), None, None).await.unwrap();
        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&serde_json::json!({"sub":"root"})).unwrap());
        parts[1] = forged;
        assert!(t.verify(&parts.join(".")).await.is_err());
        assert!(t.verify("not.a.jwt").await.is_err());

        // A different registry's key is unknown here.
        let (other, _, _dir2) = tokens(Duration::from_secs(300), Duration::from_secs(3600)).await;
        let foreign = other
            .issue("alice", pull("ns/app"), None, None)
            .await
            .unwrap();
        assert!(t.verify(&foreign).await.is_err());

        let jwt = t.issue("alice", pull("ns/app"), None, None).await.unwrap();
        let mut claims = t.verify(&jwt).await.unwrap();
        claims.exp = now() / 1000 - 60;
        let expired = t.sign(&claims).unwrap();
        let err = t.verify(&expired).await.unwrap_err();
        assert!(err.to_string().contains("Expired"), "{err}");
        claims.exp = now() / 1000 + 60;
        claims.aud = "another-registry".into();
        assert!(t.verify(&t.sign(&claims).unwrap()).await.is_err());
    }

    #[tokio::test]
    async fn rotation_keeps_old_tokens_valid() {
        let (t, store, _dir) = tokens(Duration::from_secs(300), Duration::from_millis(1)).await;
        let before = t.issue("alice", pull("ns/app"), None, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(t.rotate_keys().await.unwrap(), "due");
        assert_eq!(store.signing_keys().await.unwrap().len(), 2);
        let after = t.issue("alice", pull("ns/app"), None, None).await.unwrap();
        let kid = |jwt: &str| jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap();
        assert_ne!(kid(&before), kid(&after), "a new key signs after rotation");
        assert!(t.verify(&before).await.is_ok());
        assert!(t.verify(&after).await.is_ok());

        // Another replica (same store) verifies both.
        let replica = BearerTokens::new(
            store.clone(),
            "berth",
            "berth-test",
            Duration::from_secs(300),
            Duration::from_secs(3600),
        );
        assert!(replica.verify(&before).await.is_ok());
        assert!(replica.verify(&after).await.is_ok());
    }
}
