//! The keys that encrypt pull secrets at rest, and sealing and opening with
//! them: AES-256-GCM (aws-lc-rs, already berth's crypto library) with a
//! random 96-bit nonce per seal, the nonce stored in front of the
//! ciphertext and its tag. The associated data names the secret (namespace,
//! name, uid), so a sealed value copied onto another row does not open.
//!
//! A key is known by an id derived from it (the first 8 bytes of a SHA-256
//! of it, in hex), stored with each secret: the id of a missing key can be
//! named in errors without revealing anything of the key, and a wrong key
//! is told from a damaged value.

use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// The key file's name in the data directory, unless `secrets.keyFile`.
pub const KEY_FILE: &str = "secrets.key";

/// One key, ready to seal and open.
pub struct SecretKey {
    id: String,
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

impl SecretKey {
    /// A key of exactly [`KEY_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<SecretKey> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes).ok()?;
        Some(SecretKey {
            id: key_id(bytes),
            key,
        })
    }

    /// The base64 (padded or not) of [`KEY_LEN`] bytes, with white space
    /// around it ignored.
    pub fn parse(text: &str) -> Option<SecretKey> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .ok()?;
        SecretKey::from_bytes(&bytes)
    }

    /// A new random key, and its base64 text.
    pub fn generate() -> Option<(SecretKey, String)> {
        let mut bytes = [0u8; KEY_LEN];
        aws_lc_rs::rand::fill(&mut bytes).ok()?;
        let text = STANDARD.encode(bytes);
        Some((SecretKey::from_bytes(&bytes)?, text))
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

fn key_id(bytes: &[u8]) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(b"berth pull-secret key id\0");
    context.update(bytes);
    hex::encode(&context.finish().as_ref()[..8])
}

/// Why a sealed value does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Sealed under a key this server was not given.
    #[error("the key it was encrypted with ({0}) is not one of this server's keys")]
    UnknownKey(String),
    /// The key is known, and the value does not authenticate under it: it
    /// was altered, or belongs to another secret.
    #[error("it does not decrypt with key {0}: the stored value was altered")]
    Damaged(String),
}

/// Sealing failed (the system's random source failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("encrypting a secret failed")]
pub struct SealError;

/// The key new secrets are sealed under, and the older ones that still
/// open what was sealed before a rotation.
#[derive(Debug)]
pub struct SecretKeys {
    current: SecretKey,
    previous: Vec<SecretKey>,
}

impl SecretKeys {
    /// `current`, then the `previous` keys that differ from it and from
    /// each other.
    pub fn new(current: SecretKey, previous: Vec<SecretKey>) -> SecretKeys {
        let mut kept: Vec<SecretKey> = Vec::new();
        for key in previous {
            if key.id != current.id && kept.iter().all(|k| k.id != key.id) {
                kept.push(key);
            }
        }
        SecretKeys {
            current,
            previous: kept,
        }
    }

    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// The ids of the keys that only decrypt.
    pub fn previous_ids(&self) -> Vec<&str> {
        self.previous.iter().map(|k| k.id.as_str()).collect()
    }

    /// `plaintext` sealed under the current key: its id and the sealed
    /// bytes (nonce, ciphertext, tag).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<(String, Vec<u8>), SealError> {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .current
            .key
            .seal_in_place_append_tag(Aad::from(aad), &mut in_out)
            .map_err(|_| SealError)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        Ok((self.current.id.clone(), sealed))
    }

    /// What `seal` sealed under `key_id` with the same `aad`.
    pub fn open(&self, key_id: &str, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == key_id)
            .ok_or_else(|| OpenError::UnknownKey(key_id.to_owned()))?;
        let damaged = || OpenError::Damaged(key_id.to_owned());
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(damaged());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| damaged())?;
        let mut in_out = ciphertext.to_vec();
        let length = key
            .key
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| damaged())?
            .len();
        in_out.truncate(length);
        Ok(in_out)
    }
}

/// Why the keys could not be had. No variant holds a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{0} is not a key: it must be the base64 of {KEY_LEN} random bytes \
         (make one with `openssl rand -base64 32`)"
    )]
    Malformed(String),
    #[error("reading the pull-secret key file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("writing the pull-secret key file {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the system's random source failed while making a key")]
    Random,
}

/// Where the keys come from: the `secrets` section of the configuration.
#[derive(Clone, Default)]
pub struct KeySettings {
    /// The current key (base64); unset: the key file's.
    pub encryption_key: Option<String>,
    /// Keys (base64) that only decrypt.
    pub previous_keys: Vec<String>,
    /// Default `<dataDir>/secrets.key`.
    pub key_file: Option<PathBuf>,
}

/// Shows where keys come from, never a key.
impl std::fmt::Debug for KeySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySettings")
            .field("encryption_key", &self.encryption_key.as_ref().map(|_| "…"))
            .field("previous_keys", &self.previous_keys.len())
            .field("key_file", &self.key_file)
            .finish()
    }
}

/// The keys as configured, and whether a key file was made now.
#[derive(Debug)]
pub struct LoadedKeys {
    pub keys: SecretKeys,
    /// The key file made on this start, if one was.
    pub created_file: Option<PathBuf>,
}

/// The keys `config` names. The current key is `encryptionKey`, else the
/// key file's (made, mode 0600, when there is none); the previous keys are
/// `previousKeys`, and the key file's when `encryptionKey` replaces it.
pub fn load_keys(config: &KeySettings, data_dir: &Path) -> Result<LoadedKeys, KeyError> {
    let file = config
        .key_file
        .clone()
        .unwrap_or_else(|| data_dir.join(KEY_FILE));
    let mut previous = Vec::new();
    for (i, text) in config.previous_keys.iter().enumerate() {
        previous.push(
            SecretKey::parse(text)
                .ok_or_else(|| KeyError::Malformed(format!("secrets.previousKeys[{i}]")))?,
        );
    }
    let mut created_file = None;
    let current = match &config.encryption_key {
        Some(text) => {
            let key = SecretKey::parse(text)
                .ok_or_else(|| KeyError::Malformed("secrets.encryptionKey".into()))?;
            if file.exists() {
                previous.push(read_key_file(&file)?);
            }
            key
        }
        None if file.exists() => read_key_file(&file)?,
        None => {
            if make_key_file(&file)? {
                created_file = Some(file.clone());
            }
            read_key_file(&file)?
        }
    };
    Ok(LoadedKeys {
        keys: SecretKeys::new(current, previous),
        created_file,
    })
}

fn read_key_file(path: &Path) -> Result<SecretKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|error| KeyError::Read {
        path: path.to_owned(),
        error,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                file = %path.display(),
                mode = %format!("{:o}", meta.permissions().mode() & 0o777),
                "the pull-secret key file can be read by others than its owner; make it 0600"
            );
        }
    }
    SecretKey::parse(&text).ok_or_else(|| KeyError::Malformed(path.display().to_string()))
}

/// Makes the key file with a new key, unless it appears meanwhile (another
/// replica sharing the file made it first): the key is written whole to a
/// file of its own, then linked to the name, which fails if the name is
/// taken. True if this call made it.
fn make_key_file(path: &Path) -> Result<bool, KeyError> {
    let write_error = |error| KeyError::Write {
        path: path.to_owned(),
        error,
    };
    let (_, text) = SecretKey::generate().ok_or(KeyError::Random)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    let staged = path.with_extension(format!("new-{}", uuid::Uuid::new_v4().simple()));
    write_private(&staged, format!("{text}\n").as_bytes()).map_err(write_error)?;
    let linked = std::fs::hard_link(&staged, path);
    let _ = std::fs::remove_file(&staged);
    match linked {
        Ok(()) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                && let Ok(dir) = std::fs::File::open(dir)
            {
                let _ = dir.sync_all();
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(write_error(e)),
    }
}

/// Creates `path` (which must not exist), readable by its owner only, and
/// makes its contents durable.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (SecretKey, String) {
        SecretKey::generate().unwrap()
    }

    #[test]
    fn sealed_values_open_with_their_key_and_aad_only() {
        let (current, _) = key();
        let keys = SecretKeys::new(current, vec![]);
        let (id, sealed) = keys.seal(b"ns\0a", b"hunter2").unwrap();
        assert_eq!(id, keys.current_id());
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(keys.open(&id, b"ns\0a", &sealed).unwrap(), b"hunter2");
        // Another row's associated data, a flipped bit, a cut value.
        assert_eq!(
            keys.open(&id, b"ns\0b", &sealed),
            Err(OpenError::Damaged(id.clone()))
        );
        let mut flipped = sealed.clone();
        flipped[NONCE_LEN] ^= 1;
        assert_eq!(
            keys.open(&id, b"ns\0a", &flipped),
            Err(OpenError::Damaged(id.clone()))
        );
        assert!(keys.open(&id, b"ns\0a", &sealed[..10]).is_err());
        assert!(keys.open(&id, b"ns\0a", &[]).is_err());
        assert_eq!(
            keys.open("0000000000000000", b"ns\0a", &sealed),
            Err(OpenError::UnknownKey("0000000000000000".into()))
        );
        // Two seals of the same text differ (fresh nonces).
        let (_, again) = keys.seal(b"ns\0a", b"hunter2").unwrap();
        assert_ne!(sealed, again);
    }

    #[test]
    fn previous_keys_open_and_the_current_one_seals() {
        let (old, old_text) = key();
        let old_id = old.id().to_owned();
        let before = SecretKeys::new(old, vec![]);
        let (_, sealed) = before.seal(b"x", b"secret").unwrap();
        let (new, _) = key();
        let after = SecretKeys::new(new, vec![SecretKey::parse(&old_text).unwrap()]);
        assert_eq!(after.open(&old_id, b"x", &sealed).unwrap(), b"secret");
        let (id, _) = after.seal(b"x", b"secret").unwrap();
        assert_ne!(id, old_id);
        assert_eq!(after.previous_ids(), vec![old_id.as_str()]);
    }

    #[test]
    fn keys_parse_from_base64_of_32_bytes_only() {
        let (k, text) = key();
        assert_eq!(SecretKey::parse(&text).unwrap().id(), k.id());
        assert_eq!(
            SecretKey::parse(&format!("  {}\n", text.trim_end_matches('=')))
                .unwrap()
                .id(),
            k.id()
        );
        let short = STANDARD.encode([0u8; 31]);
        let long = STANDARD.encode([0u8; 33]);
        for bad in ["", "not base64!", "AAAA", short.as_str(), long.as_str()] {
            assert!(SecretKey::parse(bad).is_none(), "{bad:?}");
        }
        // The id is the key's, and says nothing of another.
        assert_eq!(k.id().len(), 16);
        assert_ne!(key().0.id(), k.id());
    }

    #[test]
    fn the_key_file_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let config = KeySettings::default();
        let first = load_keys(&config, dir.path()).unwrap();
        let file = dir.path().join(KEY_FILE);
        assert_eq!(first.created_file.as_deref(), Some(file.as_path()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = load_keys(&config, dir.path()).unwrap();
        assert!(second.created_file.is_none());
        assert_eq!(second.keys.current_id(), first.keys.current_id());
        // No staged file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        // A configured key takes over; the file's key still opens.
        let (_, text) = key();
        let configured = KeySettings {
            encryption_key: Some(text),
            ..KeySettings::default()
        };
        let third = load_keys(&configured, dir.path()).unwrap();
        assert_ne!(third.keys.current_id(), first.keys.current_id());
        assert_eq!(third.keys.previous_ids(), vec![first.keys.current_id()]);
    }

    #[test]
    fn bad_keys_are_refused_without_being_shown() {
        let dir = tempfile::tempdir().unwrap();
        let config = KeySettings {
            encryption_key: Some("s3cr3t-but-too-short".into()),
            ..KeySettings::default()
        };
        let error = load_keys(&config, dir.path()).unwrap_err().to_string();
        assert!(error.contains("secrets.encryptionKey"), "{error}");
        assert!(!error.contains("s3cr3t"), "{error}");
        let config = KeySettings {
            previous_keys: vec!["other-s3cr3t".into()],
            ..KeySettings::default()
        };
        let error = load_keys(&config, dir.path()).unwrap_err().to_string();
        assert!(error.contains("secrets.previousKeys[0]"), "{error}");
        assert!(!error.contains("s3cr3t"), "{error}");
        std::fs::write(dir.path().join(KEY_FILE), "garbage-s3cr3t\n").unwrap();
        let error = load_keys(&KeySettings::default(), dir.path())
            .unwrap_err()
            .to_string();
        assert!(error.contains(KEY_FILE), "{error}");
        assert!(!error.contains("s3cr3t"), "{error}");
        // Debug of the settings hides keys too.
        assert!(!format!("{config:?}").contains("s3cr3t"));
        let config = KeySettings {
            encryption_key: Some("s3cr3t".into()),
            ..KeySettings::default()
        };
        assert!(!format!("{config:?}").contains("s3cr3t"));
    }
}
