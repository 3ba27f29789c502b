//! The CLI's own configuration file: which server is current and, per
//! server, who is logged in with which token, the current namespace and the
//! TLS options. Like a kubeconfig, it holds a secret (the token, never a
//! password), so it is written with mode 0600.
//!
//! ```yaml
//! currentServer: https://registry.example.com
//! servers:
//!   https://registry.example.com:
//!     user: alice
//!     token: berth_…
//!     tokenName: alice-token-x7k2p
//!     currentNamespace: myproj
//!     certificateAuthority: /home/alice/ca.pem
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

/// The server used when none was ever given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:5000";

/// Environment variable naming the CLI configuration file.
pub const CONFIG_ENV: &str = "BERTH_CLI_CONFIG";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a valid berth CLI configuration: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot tell where the CLI configuration lives: set HOME, XDG_CONFIG_HOME or {CONFIG_ENV}, or pass --cli-config"
    )]
    NoLocation,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CliConfig {
    /// Normalised server URL (`scheme://host[:port]`), a key of `servers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_server: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub servers: BTreeMap<String, ServerEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The token's name on the server, used to revoke it at logout. Absent
    /// for a token given to `login --token`, which logout only forgets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_tls_verify: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<PathBuf>,
}

impl CliConfig {
    /// Reads `path`; a missing (or empty) file is an empty configuration.
    pub fn load(path: &Path) -> Result<CliConfig, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CliConfig::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if text.trim().is_empty() {
            return Ok(CliConfig::default());
        }
        serde_saphyr::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Writes the file (mode 0600), creating its directory if needed.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let mut text = serde_saphyr::to_string(self).map_err(|e| ConfigError::Write {
            path: path.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        write_private(path, text.as_bytes()).map_err(|source| ConfigError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// The current server, else [`DEFAULT_SERVER`].
    pub fn server(&self) -> &str {
        self.current_server.as_deref().unwrap_or(DEFAULT_SERVER)
    }

    pub fn entry(&self, server: &str) -> Option<&ServerEntry> {
        self.servers.get(server)
    }

    pub fn entry_mut(&mut self, server: &str) -> &mut ServerEntry {
        self.servers.entry(server.to_owned()).or_default()
    }
}

/// Where the configuration lives: `--cli-config`/`BERTH_CLI_CONFIG` (the
/// caller passes it as `explicit`), else
/// `${XDG_CONFIG_HOME:-$HOME/.config}/berth/config.yaml`.
pub fn config_path(
    explicit: Option<&Path>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    let non_empty = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = non_empty("XDG_CONFIG_HOME")
        .or_else(|| non_empty("HOME").map(|home| home.join(".config")))
        .ok_or(ConfigError::NoLocation)?;
    Ok(base.join("berth").join("config.yaml"))
}

/// Normalises what the user typed as a server to `scheme://host[:port]`.
///
/// `http://…` and `https://…` are taken as given. A bare `host[:port]` means
/// HTTPS, except for loopback hosts (`localhost`, `127.0.0.0/8`, `::1`),
/// which mean plain HTTP: that is how `berth serve` listens by default, and
/// how podman treats `localhost` registries.
pub fn parse_server(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the server address is empty".into());
    }
    let explicit_scheme = text.contains("://");
    let candidate = if explicit_scheme {
        text.to_owned()
    } else {
        format!("http://{text}")
    };
    let mut url =
        Url::parse(&candidate).map_err(|e| format!("invalid server address {text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "invalid server address {text:?}: the scheme must be http or https"
        ));
    }
    if url.host().is_none() {
        return Err(format!("invalid server address {text:?}: no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "invalid server address {text:?}: give credentials with -u and -p, not in the address"
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "invalid server address {text:?}: give only scheme, host and port (the API is always at /api/v1)"
        ));
    }
    if !explicit_scheme && !is_loopback(&url) {
        url.set_scheme("https")
            .map_err(|()| format!("invalid server address {text:?}"))?;
    }
    Ok(url.origin().ascii_serialization())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    }
}

/// The registry host as podman, skopeo and image references write it:
/// `host[:port]`, the port only when not the scheme's default.
pub fn registry_host(server: &str) -> Result<String, String> {
    let url = Url::parse(server).map_err(|e| format!("invalid server address {server:?}: {e}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("invalid server address {server:?}: no host"))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// Replaces `path` with `contents`, readable and writable by the owner
/// only: written to a temporary file beside it, then renamed over it, so
/// that a crash leaves the old or the new file, never half of one. A
/// symbolic link is followed, and its target replaced.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let path = match std::fs::canonicalize(path) {
        Ok(resolved) => resolved,
        Err(_) => path.to_owned(),
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let tmp = dir.join(tmp_name);

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Creates `dir` and its missing parents; those created are private (0700).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cli::fake_env as env;

    #[test]
    fn config_path_precedence() {
        let explicit = Path::new("/etc/berth-cli.yaml");
        assert_eq!(
            config_path(Some(explicit), env(&[("HOME", "/home/a")])).unwrap(),
            explicit
        );
        assert_eq!(
            config_path(
                None,
                env(&[("HOME", "/home/a"), ("XDG_CONFIG_HOME", "/xdg")])
            )
            .unwrap(),
            Path::new("/xdg/berth/config.yaml")
        );
        assert_eq!(
            config_path(None, env(&[("HOME", "/home/a"), ("XDG_CONFIG_HOME", "")])).unwrap(),
            Path::new("/home/a/.config/berth/config.yaml")
        );
        assert!(matches!(
            config_path(None, env(&[])),
            Err(ConfigError::NoLocation)
        ));
    }

    #[test]
    fn server_addresses() {
        let ok = |s: &str| parse_server(s).unwrap();
        assert_eq!(ok("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(ok("localhost:5000"), "http://localhost:5000");
        assert_eq!(ok("[::1]:5000"), "http://[::1]:5000");
        assert_eq!(ok("registry.example.com"), "https://registry.example.com");
        assert_eq!(
            ok("registry.example.com:5000"),
            "https://registry.example.com:5000"
        );
        assert_eq!(ok("10.0.0.7:443"), "https://10.0.0.7");
        assert_eq!(
            ok("http://registry.example.com/"),
            "http://registry.example.com"
        );
        assert_eq!(ok("https://127.0.0.1:5000"), "https://127.0.0.1:5000");
        assert_eq!(
            ok("HTTPS://Registry.Example.COM:443"),
            "https://registry.example.com"
        );
        assert_eq!(ok(" 127.0.0.1:5000 "), "http://127.0.0.1:5000");
        for bad in [
            "",
            "ftp://example.com",
            "https://example.com/api/v1",
            "https://alice:secret@example.com",
            "example.com:notaport",
            "https://example.com?x=1",
        ] {
            assert!(parse_server(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn registry_hosts() {
        assert_eq!(
            registry_host("http://127.0.0.1:5000").unwrap(),
            "127.0.0.1:5000"
        );
        assert_eq!(
            registry_host("https://registry.example.com").unwrap(),
            "registry.example.com"
        );
        assert_eq!(registry_host("http://[::1]:5000").unwrap(), "[::1]:5000");
        assert_eq!(
            registry_host("https://r.example.com:8443").unwrap(),
            "r.example.com:8443"
        );
    }

    #[test]
    fn round_trip_and_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/berth/config.yaml");
        assert_eq!(CliConfig::load(&path).unwrap(), CliConfig::default());

        let mut config = CliConfig {
            current_server: Some("http://127.0.0.1:5000".into()),
            ..CliConfig::default()
        };
        *config.entry_mut("http://127.0.0.1:5000") = ServerEntry {
            user: Some("alice".into()),
            token: Some("berth_secret".into()),
            token_name: Some("alice-token-abcde".into()),
            current_namespace: Some("myproj".into()),
            insecure_skip_tls_verify: true,
            certificate_authority: Some("/tmp/ca.pem".into()),
        };
        config.entry_mut("https://other.example.com").user = Some("bob".into());
        config.save(&path).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("currentServer:"), "{text}");
        assert!(text.ends_with('\n'), "{text:?}");
        assert!(text.contains("tokenName: alice-token-abcde"), "{text}");
        assert!(text.contains("insecureSkipTlsVerify: true"), "{text}");
        assert_eq!(CliConfig::load(&path).unwrap(), config);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Saving again replaces the file and leaves no temporary behind.
        config.current_server = None;
        config.save(&path).unwrap();
        assert_eq!(CliConfig::load(&path).unwrap(), config);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("config.yaml")]);
    }

    #[test]
    fn garbage_is_an_error_not_an_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "servers: [1, 2\n").unwrap();
        assert!(matches!(
            CliConfig::load(&path),
            Err(ConfigError::Parse { .. })
        ));
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(CliConfig::load(&path).unwrap(), CliConfig::default());
    }

    #[test]
    fn server_falls_back_to_default() {
        let mut config = CliConfig::default();
        assert_eq!(config.server(), DEFAULT_SERVER);
        config.current_server = Some("https://r.example.com".into());
        assert_eq!(config.server(), "https://r.example.com");
    }
}
