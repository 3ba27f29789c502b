//! The containers `auth.json` that podman, skopeo and buildah read
//! (containers-auth.json(5)), so that `podman push` works right after
//! `berth login`:
//!
//! ```json
//! {"auths": {"registry.example.com:5000": {"auth": "base64(user:token)"}}}
//! ```
//!
//! Everything else in the file (other registries, `credHelpers`, unknown
//! keys) is kept as it was.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a containers auth file ({message}); fix or remove it", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot tell where the containers auth file lives: set REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR or HOME"
    )]
    NoLocation,
}

/// Where podman looks: `$REGISTRY_AUTH_FILE`, else
/// `$XDG_RUNTIME_DIR/containers/auth.json`, else
/// `$HOME/.config/containers/auth.json`.
pub fn auth_file_path(env: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, AuthFileError> {
    let non_empty = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) = non_empty("REGISTRY_AUTH_FILE") {
        return Ok(path);
    }
    if let Some(runtime) = non_empty("XDG_RUNTIME_DIR") {
        return Ok(runtime.join("containers").join("auth.json"));
    }
    non_empty("HOME")
        .map(|home| home.join(".config").join("containers").join("auth.json"))
        .ok_or(AuthFileError::NoLocation)
}

/// An auth file in memory.
#[derive(Debug)]
pub struct AuthFile {
    path: PathBuf,
    document: Map<String, Value>,
}

impl AuthFile {
    /// Reads `path`; a missing or empty file is an empty one.
    pub fn load(path: &Path) -> Result<AuthFile, AuthFileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(AuthFileError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let invalid = |message: String| AuthFileError::Invalid {
            path: path.to_owned(),
            message,
        };
        let document = if text.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(&text).map_err(|e| invalid(e.to_string()))? {
                Value::Object(map) => map,
                _ => return Err(invalid("not a JSON object".into())),
            }
        };
        if document.get("auths").is_some_and(|a| !a.is_object()) {
            return Err(invalid("\"auths\" is not an object".into()));
        }
        Ok(AuthFile {
            path: path.to_owned(),
            document,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The user and secret stored for `host`, if any.
    pub fn get(&self, host: &str) -> Option<(String, String)> {
        let encoded = self.auths()?.get(host)?.get("auth")?.as_str()?;
        let decoded = STANDARD.decode(encoded).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, secret) = decoded.split_once(':')?;
        Some((user.to_owned(), secret.to_owned()))
    }

    /// Stores `user:secret` for `host`, replacing what was there.
    pub fn set(&mut self, host: &str, user: &str, secret: &str) {
        let auths = self
            .document
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(auths) = auths {
            let encoded = STANDARD.encode(format!("{user}:{secret}"));
            auths.insert(host.to_owned(), serde_json::json!({ "auth": encoded }));
        }
    }

    /// Removes the entry for `host` if `holds` says it is the one to remove.
    /// Returns whether something was removed.
    pub fn remove_if(&mut self, host: &str, holds: impl Fn(&str, &str) -> bool) -> bool {
        let matches = self
            .get(host)
            .is_some_and(|(user, secret)| holds(&user, &secret));
        if !matches {
            return false;
        }
        match self.document.get_mut("auths") {
            Some(Value::Object(auths)) => auths.remove(host).is_some(),
            _ => false,
        }
    }

    /// Writes the file back with mode 0600.
    pub fn save(&self) -> Result<(), AuthFileError> {
        let mut text =
            serde_json::to_string_pretty(&self.document).map_err(|e| AuthFileError::Write {
                path: self.path.clone(),
                source: std::io::Error::other(e),
            })?;
        text.push('\n');
        super::config::write_private(&self.path, text.as_bytes()).map_err(|source| {
            AuthFileError::Write {
                path: self.path.clone(),
                source,
            }
        })
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.document.get("auths")?.as_object()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cli::fake_env as env;

    #[test]
    fn path_precedence() {
        let all = [
            ("REGISTRY_AUTH_FILE", "/a/auth.json"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("HOME", "/home/a"),
        ];
        assert_eq!(
            auth_file_path(env(&all)).unwrap(),
            Path::new("/a/auth.json")
        );
        assert_eq!(
            auth_file_path(env(&all[1..])).unwrap(),
            Path::new("/run/user/1000/containers/auth.json")
        );
        assert_eq!(
            auth_file_path(env(&all[2..])).unwrap(),
            Path::new("/home/a/.config/containers/auth.json")
        );
        assert_eq!(
            auth_file_path(env(&[("REGISTRY_AUTH_FILE", ""), ("HOME", "/h")])).unwrap(),
            Path::new("/h/.config/containers/auth.json")
        );
        assert!(auth_file_path(env(&[])).is_err());
    }

    #[test]
    fn set_keeps_other_entries_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(
            &path,
            r#"{"auths":{"quay.io":{"auth":"eDp5"}},"credHelpers":{"gcr.io":"gcloud"}}"#,
        )
        .unwrap();
        let mut file = AuthFile::load(&path).unwrap();
        file.set("127.0.0.1:5000", "alice", "berth_abc:def");
        file.save().unwrap();

        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(written["auths"]["quay.io"]["auth"], "eDp5");
        assert_eq!(written["credHelpers"]["gcr.io"], "gcloud");
        assert_eq!(
            written["auths"]["127.0.0.1:5000"]["auth"],
            STANDARD.encode("alice:berth_abc:def")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let mut file = AuthFile::load(&path).unwrap();
        assert_eq!(
            file.get("127.0.0.1:5000"),
            Some(("alice".into(), "berth_abc:def".into()))
        );
        assert!(!file.remove_if("127.0.0.1:5000", |_, secret| secret == "other"));
        assert!(file.remove_if("127.0.0.1:5000", |_, secret| secret == "berth_abc:def"));
        assert!(!file.remove_if("127.0.0.1:5000", |_, _| true));
        file.save().unwrap();
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(written["auths"].get("127.0.0.1:5000").is_none());
        assert_eq!(written["auths"]["quay.io"]["auth"], "eDp5");
    }

    #[test]
    fn missing_file_is_created_with_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("containers/auth.json");
        let mut file = AuthFile::load(&path).unwrap();
        assert_eq!(file.get("r.example.com"), None);
        file.set("r.example.com", "u", "t");
        file.save().unwrap();
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            written,
            serde_json::json!({"auths": {"r.example.com": {"auth": "dTp0"}}})
        );
    }

    #[test]
    fn refuses_to_clobber_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        for broken in ["{not json", "[1]", r#"{"auths": []}"#] {
            std::fs::write(&path, broken).unwrap();
            assert!(
                matches!(AuthFile::load(&path), Err(AuthFileError::Invalid { .. })),
                "{broken}"
            );
        }
    }
}
