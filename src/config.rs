//! Configuration: one YAML file, every key also settable from the
//! environment, with defaults that let `berth serve` run with no file.
//!
//! Precedence, lowest first: built-in defaults, the file (`--config`), the
//! environment, command-line flags. A key's environment variable is `BERTH_`
//! followed by its path in upper snake case: `database.url` is
//! `BERTH_DATABASE_URL`, `http.insecureHttp` is `BERTH_HTTP_INSECURE_HTTP`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::duration_text;

pub use crate::auth::AutoCreateNamespaces;
pub use crate::storage::settings::{
    AzureStorage, FilesystemStorage, GcsStorage, S3Storage, StorageConfig, SwiftStorage,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Config {
    /// Where berth keeps its state: the embedded database, blobs on the
    /// filesystem (unless `storage` says otherwise) and the admin password.
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub storage: StorageConfig,
    pub database: DatabaseSettings,
    pub auth: AuthConfig,
    pub uploads: UploadsConfig,
    pub jobs: JobsConfig,
    pub validation: ValidationConfig,
    pub log: LogConfig,
    /// Serve pulls only: every write to `/v2/` is refused (`405
    /// UNSUPPORTED`, saying the registry is read-only).
    pub read_only: bool,
    /// With an object store that signs URLs (S3; Swift with a
    /// `tempURLKey`), blob GETs answer `307` to a short-lived signed URL, so
    /// that pulls do not pass through berth; `true` streams them through
    /// berth instead (clients that cannot reach the store). No effect on
    /// the filesystem.
    pub disable_redirect: bool,
    /// Bounds on the `/v2/` requests served at once.
    pub requests: RequestsConfig,
    /// The keys that encrypt pull secrets.
    pub secrets: SecretsConfig,
    /// Imports from other registries (`berth import-image`, scheduled
    /// re-imports), with the field names of OpenShift's `imagePolicyConfig`.
    pub image_policy: ImagePolicyConfig,
    /// Online garbage collection.
    pub gc: GcConfig,
    /// The image pruner's job (its rules are kept in the database and set
    /// by `berth adm pruner set`).
    pub pruner: PrunerConfig,
    /// When tags expire unless told otherwise.
    pub tag_expiration: TagExpirationConfig,
}

/// `tagExpiration`: tag expiration (README "Tag expiration").
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct TagExpirationConfig {
    /// How long a tag lives after each push to it (`2w`, `36h`), unless
    /// the image's `quay.expires-after` label or an explicit expiry (`berth
    /// tag --expires-after`) says otherwise; absent: tags never expire.
    #[serde(
        with = "duration_text::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub default: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./berth-data"),
            http: HttpConfig::default(),
            storage: StorageConfig::default(),
            database: DatabaseSettings::default(),
            auth: AuthConfig::default(),
            uploads: UploadsConfig::default(),
            jobs: JobsConfig::default(),
            validation: ValidationConfig::default(),
            log: LogConfig::default(),
            read_only: false,
            disable_redirect: false,
            requests: RequestsConfig::default(),
            secrets: SecretsConfig::default(),
            image_policy: ImagePolicyConfig::default(),
            gc: GcConfig::default(),
            pruner: PrunerConfig::default(),
            tag_expiration: TagExpirationConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on. Loopback by default: plain HTTP elsewhere
    /// needs `insecureHttp`.
    pub addr: SocketAddr,
    /// Public URL of the registry (`https://registry.example.com`), used in
    /// `Location` headers and token realms. Unset: relative locations.
    pub host: Option<String>,
    /// Allow plain HTTP on a non-loopback address.
    pub insecure_http: bool,
    /// TLS: `auto` (a CA and serving certificate made by berth), or
    /// `certificate` and `key` files (reloaded when they change).
    pub tls: TlsConfig,
    /// Extra host names (or addresses) the `auto` certificate is valid for,
    /// besides the public URL's host, `localhost` and loopback addresses.
    pub hostnames: Vec<String>,
    pub timeouts: HttpTimeouts,
    /// Connections served at once. Past it, new connections are closed at
    /// once (logged, and counted in `berth_http_connections_refused_total`).
    /// Lowered at start to what the process's open-file limit allows.
    pub max_connections: u32,
    /// On SIGTERM, how long requests in flight may take to finish before
    /// their connections are closed.
    #[serde(with = "duration_text")]
    pub shutdown_grace_period: Duration,
    /// Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For`
    /// header names the client, for the brute-force defence and the logs.
    /// None by default: the header is ignored, since anyone can send it.
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 5000)),
            host: None,
            insecure_http: false,
            tls: TlsConfig::default(),
            hostnames: Vec::new(),
            trusted_proxies: Vec::new(),
            timeouts: HttpTimeouts::default(),
            max_connections: 4096,
            shutdown_grace_period: Duration::from_secs(30),
        }
    }
}

/// `http.timeouts`: how long a client may keep a connection without making
/// progress.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct HttpTimeouts {
    /// From accepting a connection (after the TLS handshake) to the end of
    /// its first request's headers.
    #[serde(with = "duration_text")]
    pub request_headers: Duration,
    /// How long a kept-alive HTTP/1 connection may wait for its next
    /// request, headers included.
    #[serde(with = "duration_text")]
    pub idle: Duration,
    /// A request body (an upload chunk, say) that sends nothing for this
    /// long fails, and its connection is closed.
    #[serde(with = "duration_text")]
    pub body_stall: Duration,
    /// A response the client reads nothing of for this long (a blob it
    /// asked for and then left unread) is dropped with its connection, so
    /// that it gives back its place among `requests.read`.
    #[serde(with = "duration_text")]
    pub send_stall: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            request_headers: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            body_stall: Duration::from_secs(60),
            send_stall: Duration::from_secs(60),
        }
    }
}

impl HttpConfig {
    /// `trustedProxies`, parsed.
    pub fn trusted_proxy_networks(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|n| {
                crate::auth::address::parse_network(n)
                    .map_err(|e| ConfigError::Invalid(format!("http.trustedProxies: {e}")))
            })
            .collect()
    }
}

/// `http.tls`: the word `auto` (or `off`), or certificate and key files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum TlsConfig {
    Keyword(TlsKeyword),
    #[serde(rename_all = "camelCase")]
    Files {
        certificate: Option<PathBuf>,
        key: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsKeyword {
    Auto,
    Off,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig::Files {
            certificate: None,
            key: None,
        }
    }
}

/// What `http.tls` asks for, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum TlsMode {
    Off,
    Auto,
    Files { certificate: PathBuf, key: PathBuf },
}

impl TlsConfig {
    pub fn mode(&self) -> Result<TlsMode, ConfigError> {
        match self {
            TlsConfig::Keyword(TlsKeyword::Auto) => Ok(TlsMode::Auto),
            TlsConfig::Keyword(TlsKeyword::Off)
            | TlsConfig::Files {
                certificate: None,
                key: None,
            } => Ok(TlsMode::Off),
            TlsConfig::Files {
                certificate: Some(certificate),
                key: Some(key),
            } => Ok(TlsMode::Files {
                certificate: certificate.clone(),
                key: key.clone(),
            }),
            TlsConfig::Files { .. } => Err(ConfigError::Invalid(
                "http.tls needs both certificate and key (or the word auto)".into(),
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// A `postgres://` URL for shared metadata (several replicas). Unset:
    /// the embedded database `<dataDir>/berth.db`.
    pub url: Option<String>,
    /// Connections to PostgreSQL per replica.
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: None,
            max_connections: 16,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Name of the token service: `service=` in challenges, audience of tokens.
    pub service: String,
    /// Lifetime of bearer tokens from the token service (keep it short:
    /// they carry their grants).
    #[serde(with = "duration_text")]
    pub token_lifetime: Duration,
    /// How often the key signing bearer tokens is replaced. Old keys keep
    /// verifying until their tokens have expired.
    #[serde(with = "duration_text")]
    pub signing_key_rotation: Duration,
    /// Users who are super users (cluster-admin), besides `admin`.
    pub super_users: Vec<String>,
    /// Who may create a namespace by pushing to it: `superusers`,
    /// `authenticated` or `never`. The creator becomes its registry-admin.
    pub auto_create_namespaces: AutoCreateNamespaces,
    /// How the first super user comes to be: `admin-password` (user `admin`,
    /// password printed and kept in `<dataDir>/admin-password`) or
    /// `initialize` (`POST /api/v1/user/initialize` while no user exists).
    pub bootstrap: Bootstrap,
    pub lockout: LockoutConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            service: "berth".into(),
            token_lifetime: Duration::from_secs(300),
            signing_key_rotation: Duration::from_secs(24 * 3600),
            super_users: Vec::new(),
            auto_create_namespaces: AutoCreateNamespaces::Superusers,
            bootstrap: Bootstrap::AdminPassword,
            lockout: LockoutConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Bootstrap {
    AdminPassword,
    Initialize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LockoutConfig {
    /// Failed password logins allowed per user name from one client address
    /// within `window`; that address is then refused for that name. From
    /// all addresses together, the point past which the name's logins are
    /// slowed down by `slowdown` (never refused).
    pub max_failures_per_user: u32,
    /// Failed logins allowed per client address within `window`, whatever
    /// the names; the address is then refused.
    pub max_failures_per_address: u32,
    #[serde(with = "duration_text")]
    pub window: Duration,
    /// How long a locked-out address is refused (429 with Retry-After).
    #[serde(with = "duration_text")]
    pub duration: Duration,
    /// The delay before each password check of a user name under attack.
    #[serde(with = "duration_text")]
    pub slowdown: Duration,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            max_failures_per_user: 10,
            max_failures_per_address: 50,
            window: Duration::from_secs(300),
            duration: Duration::from_secs(300),
            slowdown: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct UploadsConfig {
    /// An upload untouched this long is abandoned and removed.
    #[serde(with = "duration_text")]
    pub stale_after: Duration,
    /// How often abandoned uploads are looked for.
    #[serde(with = "duration_text")]
    pub cleanup_interval: Duration,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        UploadsConfig {
            stale_after: Duration::from_secs(24 * 3600),
            cleanup_interval: Duration::from_secs(3600),
        }
    }
}

/// `requests.read` bounds `GET` and `HEAD`, `requests.write` every other
/// method, as the operator's `Config` does.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RequestsConfig {
    pub read: RequestLimit,
    pub write: RequestLimit,
}

/// Past `maxRunning` requests at once, up to `maxInQueue` more wait, each
/// at most `maxWaitInQueue`; the rest are answered `429` with
/// `Retry-After`. `maxRunning: 0` (the default) sets no bound.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RequestLimit {
    pub max_running: u32,
    pub max_in_queue: u32,
    #[serde(with = "duration_text")]
    pub max_wait_in_queue: Duration,
}

impl Default for RequestLimit {
    fn default() -> Self {
        RequestLimit {
            max_running: 0,
            max_in_queue: 0,
            max_wait_in_queue: Duration::from_secs(0),
        }
    }
}

/// Background jobs that run once across the replicas (`src/jobs/`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct JobsConfig {
    /// How long a replica running a job holds it without renewing its
    /// lease (renewed every third of it). A replica that dies mid-run keeps
    /// its job this long; then another takes it over.
    #[serde(with = "duration_text")]
    pub lease: Duration,
    /// How often each replica looks at a job that is not due by its
    /// schedule: for a lease running out, or a job made due by hand.
    #[serde(with = "duration_text")]
    pub poll_interval: Duration,
    /// The wait before running a failed job again; doubled after each
    /// further failure in a row.
    #[serde(with = "duration_text")]
    pub retry_backoff: Duration,
    /// The longest wait after failures.
    #[serde(with = "duration_text")]
    pub max_retry_backoff: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(5),
            retry_backoff: Duration::from_secs(30),
            max_retry_backoff: Duration::from_secs(3600),
        }
    }
}

/// `pruner`: how the image pruner's job runs. Its schedule and rules are
/// settings of the registry, in the database (`berth adm pruner set`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PrunerConfig {
    /// How often the job looks whether its schedule has come round: the
    /// latest a scheduled run starts after its time.
    #[serde(with = "duration_text")]
    pub check_interval: Duration,
}

impl Default for PrunerConfig {
    fn default() -> Self {
        PrunerConfig {
            check_interval: Duration::from_secs(60),
        }
    }
}

/// `gc`: online garbage collection (ARCHITECTURE.md, "Garbage
/// collection"), a job run once across the replicas.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GcConfig {
    /// How often a run is due (`berth adm gc` runs one at once).
    #[serde(with = "duration_text")]
    pub interval: Duration,
    /// Nothing made or touched more recently than this is collected. An
    /// upload completing, a mount, a manifest put and a HEAD of a blob
    /// touch it. Must be longer than the slowest upload takes to complete
    /// (its final `PUT`) and than the replicas' clocks disagree.
    #[serde(with = "duration_text")]
    pub blob_grace_period: Duration,
    /// Remove manifests that no tag, tag history, kept index or kept
    /// subject (for referrers) keeps; `false` collects only blobs no
    /// manifest references.
    pub delete_untagged_manifests: bool,
    /// Rows decided and removed per transaction.
    pub batch_size: u32,
    /// Storage deletes in flight at once.
    pub concurrency: u32,
    /// The share of its time a run spends working, in percent: after each
    /// batch it rests for the rest, so that pushes and pulls keep the CPU,
    /// the disk and the database (100: no rest).
    pub busy_percent: u32,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            interval: Duration::from_secs(3600),
            blob_grace_period: Duration::from_secs(3600),
            delete_untagged_manifests: true,
            batch_size: 500,
            concurrency: 16,
            busy_percent: 4,
        }
    }
}

/// `imagePolicy`: how berth imports from other registries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ImagePolicyConfig {
    /// A tag imported with `--scheduled` is checked again this often, at
    /// least (checks are spread over the interval). Seconds.
    pub scheduled_image_import_minimum_interval_seconds: u64,
    /// `berth import-image --all` imports at most this many tags, the
    /// newest first; the answer says how many were left out.
    pub max_images_bulk_imported_per_repository: usize,
    /// Scheduled checks in flight at once against one upstream host.
    pub max_scheduled_image_imports_per_host: usize,
    /// PEM files of CA certificates trusted for upstream registries,
    /// besides the system's roots.
    #[serde(rename = "additionalTrustedCA")]
    pub additional_trusted_ca: Vec<PathBuf>,
}

impl Default for ImagePolicyConfig {
    fn default() -> Self {
        ImagePolicyConfig {
            scheduled_image_import_minimum_interval_seconds: 900,
            max_images_bulk_imported_per_repository: 50,
            max_scheduled_image_imports_per_host: 2,
            additional_trusted_ca: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ValidationConfig {
    pub manifests: ManifestValidation,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ManifestValidation {
    /// Accept manifests whose layers or child manifests are not in the
    /// repository (sparse images and indexes). Off: such pushes get
    /// `MANIFEST_BLOB_UNKNOWN`.
    pub allow_missing_references: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter: `info`, `berth=debug`, …
    pub level: String,
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `secrets`: the keys that encrypt pull secrets at rest (AES-256-GCM), each
/// the base64 of 32 random bytes (`openssl rand -base64 32`). Every replica
/// needs the same keys: give `encryptionKey` to each (from the environment,
/// `BERTH_SECRETS_ENCRYPTION_KEY`), or point `keyFile` at one shared file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SecretsConfig {
    /// Encrypts new secrets and decrypts those written under it. Unset: the
    /// key in `keyFile`.
    pub encryption_key: Option<KeyText>,
    /// Keys that decrypt secrets written before a rotation; each start
    /// re-encrypts those under the current key. A list, or one text of
    /// keys separated by commas.
    #[serde(deserialize_with = "keys_text")]
    pub previous_keys: Vec<KeyText>,
    /// A file holding the key (base64), made (mode 0600) on the first start
    /// when neither it nor `encryptionKey` exists. Default
    /// `<dataDir>/secrets.key`. With `encryptionKey` set, a key found here
    /// still decrypts.
    pub key_file: Option<PathBuf>,
}

/// A key as configured: never shown by `Debug`, so that no log line or
/// error can hold it.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct KeyText(pub String);

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyText(…)")
    }
}

/// A list of keys, or one text of them separated by commas. Either shape is
/// accepted so that no type error quotes a key back.
fn keys_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<KeyText>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Keys {
        One(String),
        Many(Vec<String>),
    }
    let keys = match Keys::deserialize(d)
        .map_err(|_| serde::de::Error::custom("secrets.previousKeys: a list of keys"))?
    {
        Keys::One(text) => text.split(',').map(str::to_owned).collect(),
        Keys::Many(list) => list,
    };
    Ok(keys
        .into_iter()
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .map(KeyText)
        .collect())
}

impl Config {
    /// Defaults, then `file`, then `BERTH_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut value = serde_json::to_value(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let from_file: Value = if text.trim().is_empty() {
                Value::Object(Default::default())
            } else {
                serde_saphyr::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?
            };
            merge(&mut value, from_file);
        }
        let env: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("BERTH_"))
            .collect();
        let template = serde_json::to_value(Config::env_template())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        apply_env(&mut value, &template, "BERTH", &env);
        let config: Config =
            serde_json::from_value(value).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types alone cannot: `http.host` is a bare
    /// `http(s)://host[:port]`. [`Config::load`] calls it, and so does
    /// [`crate::server::start`] for configurations built in code.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(host) = &self.http.host {
            check_public_url(host)?;
        }
        self.http.trusted_proxy_networks()?;
        let timeouts = &self.http.timeouts;
        for (key, value) in [
            ("http.timeouts.requestHeaders", timeouts.request_headers),
            ("http.timeouts.idle", timeouts.idle),
            ("http.timeouts.bodyStall", timeouts.body_stall),
            ("http.timeouts.sendStall", timeouts.send_stall),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be longer than zero"
                )));
            }
        }
        let policy = &self.image_policy;
        for (key, value) in [
            (
                "imagePolicy.scheduledImageImportMinimumIntervalSeconds",
                policy.scheduled_image_import_minimum_interval_seconds as usize,
            ),
            (
                "imagePolicy.maxImagesBulkImportedPerRepository",
                policy.max_images_bulk_imported_per_repository,
            ),
            (
                "imagePolicy.maxScheduledImageImportsPerHost",
                policy.max_scheduled_image_imports_per_host,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{key} must be at least 1")));
            }
        }
        let gc = &self.gc;
        if gc.blob_grace_period < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "gc.blobGracePeriod must be at least 1s".into(),
            ));
        }
        if gc.busy_percent > 100 {
            return Err(ConfigError::Invalid(
                "gc.busyPercent must be at most 100".into(),
            ));
        }
        if self.pruner.check_interval.is_zero() {
            return Err(ConfigError::Invalid(
                "pruner.checkInterval must be longer than zero".into(),
            ));
        }
        if gc.interval.is_zero() {
            return Err(ConfigError::Invalid(
                "gc.interval must be longer than zero".into(),
            ));
        }
        for (key, value) in [
            ("gc.batchSize", gc.batch_size),
            ("gc.concurrency", gc.concurrency),
            ("gc.busyPercent", gc.busy_percent),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{key} must be at least 1")));
            }
        }
        let jobs = &self.jobs;
        if jobs.lease < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "jobs.lease must be at least 1s".into(),
            ));
        }
        for (key, value) in [
            ("jobs.pollInterval", jobs.poll_interval),
            ("jobs.retryBackoff", jobs.retry_backoff),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be longer than zero"
                )));
            }
        }
        if jobs.max_retry_backoff < jobs.retry_backoff {
            return Err(ConfigError::Invalid(
                "jobs.maxRetryBackoff must be at least jobs.retryBackoff".into(),
            ));
        }
        if self.http.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "http.maxConnections must be at least 1".into(),
            ));
        }
        for (lane, limit) in [
            ("read", &self.requests.read),
            ("write", &self.requests.write),
        ] {
            if limit.max_in_queue > 0 && limit.max_running == 0 {
                return Err(ConfigError::Invalid(format!(
                    "requests.{lane}.maxInQueue needs requests.{lane}.maxRunning: \
                     with no bound on running requests nothing ever waits"
                )));
            }
            if limit.max_in_queue > 0 && limit.max_wait_in_queue.is_zero() {
                return Err(ConfigError::Invalid(format!(
                    "requests.{lane}.maxInQueue needs requests.{lane}.maxWaitInQueue \
                     longer than zero"
                )));
            }
        }
        self.storage.validate().map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// Where blobs live when they live on the filesystem.
    pub fn storage_root(&self) -> PathBuf {
        self.storage
            .filesystem
            .root_directory
            .clone()
            .unwrap_or_else(|| self.data_dir.join("storage"))
    }
}

impl Config {
    /// Every key the environment may set: the defaults, with the sections
    /// that are absent by default (the object-store backends) present, so
    /// that `BERTH_STORAGE_S3_BUCKET` has a key to set.
    fn env_template() -> Config {
        let mut config = Config::default();
        config.storage.s3 = Some(S3Storage {
            // Booleans, though unset by default.
            force_path_style: Some(false),
            virtual_hosted_style: Some(false),
            ..S3Storage::default()
        });
        config.storage.azure = Some(AzureStorage::default());
        config.storage.gcs = Some(GcsStorage::default());
        config.storage.swift = Some(SwiftStorage::default());
        // Unset by default, so absent from the defaults' keys.
        config.tag_expiration.default = Some(Duration::from_secs(1));
        config
    }
}

/// `http.host` must be `http://` or `https://` and a host, with an optional
/// port and nothing else: berth puts paths after it (`<host>/v2/…`,
/// `<host>/auth/token`), so a path, query or user would make every
/// `Location` and token realm wrong.
fn check_public_url(text: &str) -> Result<(), ConfigError> {
    let invalid = |why: &str| {
        ConfigError::Invalid(format!(
            "http.host {text:?} {why}; it must be http://HOST[:PORT] or https://HOST[:PORT], \
             the URL clients reach berth at (e.g. https://registry.example.com)"
        ))
    };
    let url = url::Url::parse(text).map_err(|e| invalid(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(&format!("has the scheme {:?}", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("holds user information"));
    }
    if url.path() != "/" {
        return Err(invalid(&format!("has a path ({})", url.path())));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("has a query or fragment"));
    }
    Ok(())
}

/// Overlays `overlay` on `base`, object by object.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        // Unknown keys are kept so that deserialization names them.
                        base.insert(key, value);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

/// `dataDir` → `DATA_DIR`, `authURL` → `AUTH_URL`: a word starts at a
/// capital after a small letter or digit, or at the last capital of a run
/// followed by a small letter (`tempURLKey` → `TEMP_URL_KEY`).
fn env_segment(key: &str) -> String {
    // A unit is one word: `chunkSizeMiB` → `CHUNK_SIZE_MIB`.
    if let Some(stem) = key.strip_suffix("MiB") {
        return format!("{}_MIB", env_segment(stem));
    }
    let chars: Vec<char> = key.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let previous = chars[i - 1];
            let next_is_small = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if previous.is_ascii_lowercase()
                || previous.is_ascii_digit()
                || (previous.is_ascii_uppercase() && next_is_small)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Sets each leaf of `value` whose variable is in `env`. `template` has
/// every key the environment may set (sections absent from `value` are
/// made when one of their variables is set); booleans and numbers are
/// parsed as its leaves say, everything else is taken as text.
fn apply_env(
    value: &mut Value,
    template: &Value,
    prefix: &str,
    env: &std::collections::HashMap<String, String>,
) {
    let (Value::Object(map), Value::Object(keys)) = (value, template) else {
        return;
    };
    for (key, shape) in keys {
        let name = format!("{prefix}_{}", env_segment(key));
        if shape.is_object() {
            // A section may also be given whole as a word (`BERTH_HTTP_TLS=auto`).
            if let Some(text) = env.get(&name) {
                map.insert(key.clone(), Value::String(text.clone()));
                continue;
            }
            let inside = format!("{name}_");
            if !env.keys().any(|k| k.starts_with(&inside)) {
                continue;
            }
            let child = map
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Default::default()));
            if !child.is_object() {
                *child = Value::Object(Default::default());
            }
            apply_env(child, shape, &name, env);
        } else if let Some(text) = env.get(&name) {
            let parsed = match shape {
                Value::Bool(_) => text
                    .parse::<bool>()
                    .map(Value::Bool)
                    .unwrap_or_else(|_| Value::String(text.clone())),
                Value::Number(_) => text
                    .parse::<u64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::String(text.clone())),
                // Lists are comma-separated: `BERTH_AUTH_SUPER_USERS=alice,bob`.
                Value::Array(_) => Value::Array(
                    text.split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(|item| Value::String(item.to_owned()))
                        .collect(),
                ),
                _ => Value::String(text.clone()),
            };
            map.insert(key.clone(), parsed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A configuration file holding `yaml`, in a new temporary directory.
    fn config_file(yaml: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.yaml");
        std::fs::write(&path, yaml).unwrap();
        (dir, path)
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, Vec::new()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.http.addr.to_string(), "127.0.0.1:5000");
        assert_eq!(c.storage_root(), PathBuf::from("./berth-data/storage"));
    }

    /// The example in README.md's "Configuration" is a configuration
    /// berth takes: every key it shows exists, spelled as shown.
    #[test]
    fn readme_example_parses() {
        let readme = include_str!("../README.md");
        let section = &readme[readme.find("## Configuration").expect("the section")..];
        let start = section.find("```yaml\n").expect("the example") + "```yaml\n".len();
        let example = &section[start..start + section[start..].find("```").expect("its end")];
        let config: Config = serde_saphyr::from_str(example).expect("README's example parses");
        assert_eq!(
            config
                .image_policy
                .scheduled_image_import_minimum_interval_seconds,
            900
        );
        assert_eq!(
            config.image_policy.additional_trusted_ca,
            vec![PathBuf::from("/etc/berth/upstream-ca.pem")]
        );
    }

    #[test]
    fn garbage_collection_settings_come_from_the_environment_and_are_checked() {
        let c = Config::load(
            None,
            env(&[
                ("BERTH_GC_BLOB_GRACE_PERIOD", "2h"),
                ("BERTH_GC_DELETE_UNTAGGED_MANIFESTS", "false"),
                ("BERTH_GC_CONCURRENCY", "4"),
            ]),
        )
        .unwrap();
        assert_eq!(c.gc.blob_grace_period, Duration::from_secs(7200));
        assert!(!c.gc.delete_untagged_manifests);
        assert_eq!(c.gc.concurrency, 4);
        assert_eq!(c.gc.interval, Duration::from_secs(3600));
        for (key, value, named) in [
            ("BERTH_GC_BLOB_GRACE_PERIOD", "500ms", "gc.blobGracePeriod"),
            ("BERTH_GC_INTERVAL", "0s", "gc.interval"),
            ("BERTH_GC_BATCH_SIZE", "0", "gc.batchSize"),
            ("BERTH_GC_CONCURRENCY", "0", "gc.concurrency"),
        ] {
            let refused = Config::load(None, env(&[(key, value)])).unwrap_err();
            assert!(
                refused.to_string().contains(named),
                "{key}={value}: {refused}"
            );
        }
    }

    #[test]
    fn tag_expiration_is_off_unless_set_and_takes_weeks() {
        assert_eq!(Config::default().tag_expiration.default, None);
        let (_dir, path) = config_file("tagExpiration:\n  default: 2w\n");
        let c = Config::load(Some(&path), Vec::new()).unwrap();
        assert_eq!(
            c.tag_expiration.default,
            Some(Duration::from_secs(14 * 86400))
        );
        let c = Config::load(None, env(&[("BERTH_TAG_EXPIRATION_DEFAULT", "36h")])).unwrap();
        assert_eq!(
            c.tag_expiration.default,
            Some(Duration::from_secs(36 * 3600))
        );
        for bad in ["soon", "0s", "2"] {
            let refused =
                Config::load(None, env(&[("BERTH_TAG_EXPIRATION_DEFAULT", bad)])).unwrap_err();
            let text = refused.to_string();
            assert!(
                text.contains(&format!("{bad:?}")) && text.contains("duration"),
                "{bad}: {refused}"
            );
        }
    }

    #[test]
    fn file_then_environment() {
        let (_dir, path) = config_file(
            "dataDir: /srv/berth\nhttp:\n  addr: 0.0.0.0:5001\n  insecureHttp: true\nuploads:\n  staleAfter: 2h\n",
        );
        let c = Config::load(
            Some(&path),
            env(&[
                ("BERTH_HTTP_ADDR", "127.0.0.1:6000"),
                ("BERTH_DATABASE_URL", "postgres://db/berth"),
                (
                    "BERTH_VALIDATION_MANIFESTS_ALLOW_MISSING_REFERENCES",
                    "true",
                ),
                ("BERTH_DATABASE_MAX_CONNECTIONS", "4"),
                ("BERTH_AUTH_SUPER_USERS", "alice, bob"),
                ("BERTH_AUTH_AUTO_CREATE_NAMESPACES", "authenticated"),
                ("BERTH_HTTP_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1"),
                ("BERTH_AUTH_LOCKOUT_SLOWDOWN", "2s"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/berth"));
        assert_eq!(c.http.addr.to_string(), "127.0.0.1:6000");
        assert!(c.http.insecure_http);
        assert_eq!(c.uploads.stale_after, Duration::from_secs(7200));
        assert_eq!(c.database.url.as_deref(), Some("postgres://db/berth"));
        assert_eq!(c.database.max_connections, 4);
        assert!(c.validation.manifests.allow_missing_references);
        assert_eq!(c.auth.super_users, vec!["alice", "bob"]);
        assert_eq!(c.http.trusted_proxies, vec!["10.0.0.0/8", "192.168.1.1"]);
        assert_eq!(c.http.trusted_proxy_networks().unwrap().len(), 2);
        assert_eq!(c.auth.lockout.slowdown, Duration::from_secs(2));
        assert_eq!(c.http.tls.mode().unwrap(), TlsMode::Off);
        assert_eq!(
            c.auth.auto_create_namespaces,
            AutoCreateNamespaces::Authenticated
        );
    }

    #[test]
    fn job_timing() {
        let c = Config::load(None, Vec::new()).unwrap();
        assert_eq!(c.jobs.lease, Duration::from_secs(30));
        assert_eq!(c.jobs.poll_interval, Duration::from_secs(5));
        let c = Config::load(
            None,
            env(&[
                ("BERTH_JOBS_LEASE", "3s"),
                ("BERTH_JOBS_POLL_INTERVAL", "200ms"),
                ("BERTH_JOBS_RETRY_BACKOFF", "1s"),
                ("BERTH_JOBS_MAX_RETRY_BACKOFF", "10s"),
            ]),
        )
        .unwrap();
        assert_eq!(c.jobs.lease, Duration::from_secs(3));
        assert_eq!(c.jobs.poll_interval, Duration::from_millis(200));
        assert_eq!(c.jobs.retry_backoff, Duration::from_secs(1));
        assert_eq!(c.jobs.max_retry_backoff, Duration::from_secs(10));
        for (name, value, complaint) in [
            ("BERTH_JOBS_LEASE", "500ms", "jobs.lease"),
            ("BERTH_JOBS_POLL_INTERVAL", "0s", "jobs.pollInterval"),
            ("BERTH_JOBS_MAX_RETRY_BACKOFF", "1s", "jobs.maxRetryBackoff"),
        ] {
            let error = Config::load(None, env(&[(name, value)])).unwrap_err();
            assert!(error.to_string().contains(complaint), "{error}");
        }
    }

    #[test]
    fn connection_limits_and_timeouts() {
        let c = Config::load(
            None,
            env(&[
                ("BERTH_HTTP_TIMEOUTS_REQUEST_HEADERS", "5s"),
                ("BERTH_HTTP_TIMEOUTS_IDLE", "2m"),
                ("BERTH_HTTP_TIMEOUTS_BODY_STALL", "90s"),
                ("BERTH_HTTP_TIMEOUTS_SEND_STALL", "45s"),
                ("BERTH_HTTP_MAX_CONNECTIONS", "100"),
                ("BERTH_HTTP_SHUTDOWN_GRACE_PERIOD", "1m"),
            ]),
        )
        .unwrap();
        assert_eq!(c.http.timeouts.request_headers, Duration::from_secs(5));
        assert_eq!(c.http.timeouts.idle, Duration::from_secs(120));
        assert_eq!(c.http.timeouts.body_stall, Duration::from_secs(90));
        assert_eq!(c.http.timeouts.send_stall, Duration::from_secs(45));
        assert_eq!(c.http.max_connections, 100);
        assert_eq!(c.http.shutdown_grace_period, Duration::from_secs(60));
        for (key, value, why) in [
            ("BERTH_HTTP_TIMEOUTS_IDLE", "0s", "http.timeouts.idle"),
            ("BERTH_HTTP_MAX_CONNECTIONS", "0", "http.maxConnections"),
            ("BERTH_HTTP_TIMEOUTS_BODY_STALL", "soon", "bodyStall"),
            (
                "BERTH_HTTP_TIMEOUTS_SEND_STALL",
                "0s",
                "http.timeouts.sendStall",
            ),
        ] {
            let err = Config::load(None, env(&[(key, value)]))
                .expect_err(key)
                .to_string();
            assert!(
                err.contains(why) || err.contains("duration"),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let (_dir, path) = config_file("htp:\n  addr: 1.2.3.4:5\n");
        let err = Config::load(Some(&path), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("htp"), "{err}");
        let err = Config::load(None, env(&[("BERTH_HTTP_INSECURE_HTTP", "maybe")])).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(_)));
        let err = Config::load(None, env(&[("BERTH_UPLOADS_STALE_AFTER", "soon")])).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(_)));
        let err = Config::load(None, env(&[("BERTH_HTTP_TRUSTED_PROXIES", "10.0.0.0/40")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("http.trustedProxies"), "{err}");
    }

    #[test]
    fn tls_forms() {
        let (_dir, path) = config_file("http:\n  tls: auto\n");
        let c = Config::load(Some(&path), Vec::new()).unwrap();
        assert_eq!(c.http.tls.mode().unwrap(), TlsMode::Auto);
        std::fs::write(
            &path,
            "http:\n  tls:\n    certificate: /c.pem\n    key: /k.pem\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), Vec::new()).unwrap();
        assert_eq!(
            c.http.tls.mode().unwrap(),
            TlsMode::Files {
                certificate: "/c.pem".into(),
                key: "/k.pem".into()
            }
        );
        let c = Config::load(None, env(&[("BERTH_HTTP_TLS", "auto")])).unwrap();
        assert_eq!(c.http.tls.mode().unwrap(), TlsMode::Auto);
        let c = Config::load(
            None,
            env(&[
                ("BERTH_HTTP_TLS_CERTIFICATE", "/c"),
                ("BERTH_HTTP_TLS_KEY", "/k"),
            ]),
        )
        .unwrap();
        assert!(matches!(c.http.tls.mode().unwrap(), TlsMode::Files { .. }));
        let c = Config::load(None, env(&[("BERTH_HTTP_TLS_CERTIFICATE", "/c")])).unwrap();
        assert!(c.http.tls.mode().is_err());
    }

    #[test]
    fn public_url_is_scheme_host_and_port_only() {
        for good in [
            "https://registry.example.com",
            "https://registry.example.com/",
            "http://127.0.0.1:5000",
            "https://[::1]:8443",
        ] {
            let c = Config::load(None, env(&[("BERTH_HTTP_HOST", good)]))
                .unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(c.http.host.as_deref(), Some(good));
        }
        for (bad, why) in [
            ("registry.example.com", "is not a URL"),
            ("registry.example.com:5000", "has the scheme"),
            ("ftp://registry.example.com", "has the scheme \"ftp\""),
            ("https://registry.example.com/v2", "has a path (/v2)"),
            ("https://registry.example.com/?x=1", "has a query"),
            (
                "https://registry.example.com/#top",
                "has a query or fragment",
            ),
            (
                "https://user:pw@registry.example.com",
                "holds user information",
            ),
            ("https://", "is not a URL"),
        ] {
            let err = Config::load(None, env(&[("BERTH_HTTP_HOST", bad)]))
                .expect_err(bad)
                .to_string();
            assert!(err.contains("http.host"), "{bad}: {err}");
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn storage_backends_from_file_and_environment() {
        let c = Config::load(
            None,
            env(&[
                ("BERTH_STORAGE_S3_BUCKET", "images"),
                ("BERTH_STORAGE_S3_REGION_ENDPOINT", "http://127.0.0.1:8333"),
                ("BERTH_STORAGE_S3_FORCE_PATH_STYLE", "true"),
                ("BERTH_STORAGE_S3_CHUNK_SIZE_MIB", "16"),
                ("BERTH_STORAGE_S3_ACCESS_KEY", "AKIA"),
                ("BERTH_STORAGE_S3_SECRET_KEY", "secret"),
                ("BERTH_STORAGE_TIMEOUTS_REQUEST", "5s"),
            ]),
        )
        .unwrap();
        assert_eq!(c.storage.timeouts.request, Duration::from_secs(5));
        assert_eq!(c.storage.timeouts.copy, Duration::from_secs(600));
        let s3 = c.storage.s3.as_ref().expect("an s3 section");
        assert_eq!(s3.bucket, "images");
        assert_eq!(s3.region_endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert_eq!(s3.force_path_style, Some(true));
        assert_eq!(s3.chunk_size_mib, 16);
        assert_eq!(s3.secret_key.as_deref(), Some("secret"));
        assert!(c.storage.azure.is_none());
        assert_eq!(c.storage.backend(), crate::storage::settings::Backend::S3);

        let (_dir, path) = config_file(
            "storage:\n  azure:\n    accountName: devstoreaccount1\n    container: images\n    \
             endpoint: http://127.0.0.1:10000/devstoreaccount1\n",
        );
        let c = Config::load(
            Some(&path),
            env(&[("BERTH_STORAGE_AZURE_ACCOUNT_KEY", "a2V5")]),
        )
        .unwrap();
        let azure = c.storage.azure.as_ref().expect("an azure section");
        assert_eq!(azure.account_key.as_deref(), Some("a2V5"));
        assert_eq!(azure.container, "images");

        // Checked at load, naming the field.
        let err = Config::load(None, env(&[("BERTH_STORAGE_S3_CHUNK_SIZE_MIB", "16")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("storage.s3.bucket is required"), "{err}");
        let err = Config::load(Some(&path), env(&[("BERTH_STORAGE_S3_BUCKET", "images")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("exactly one backend"), "{err}");
        // The filesystem's root stays where it was.
        let c = Config::load(
            None,
            env(&[("BERTH_STORAGE_FILESYSTEM_ROOT_DIRECTORY", "/srv/blobs")]),
        )
        .unwrap();
        assert_eq!(c.storage_root(), PathBuf::from("/srv/blobs"));
    }

    // --- pull secrets' keys

    #[test]
    fn secret_keys_from_the_environment_and_files_are_never_shown() {
        let c = Config::load(
            None,
            env(&[
                ("BERTH_SECRETS_ENCRYPTION_KEY", "Y3VycmVudC1zM2NyM3Q="),
                ("BERTH_SECRETS_PREVIOUS_KEYS", "b2xkLXMzY3IzdA==, b2xkZXI="),
                ("BERTH_SECRETS_KEY_FILE", "/etc/berth/secrets.key"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.secrets.encryption_key,
            Some(KeyText("Y3VycmVudC1zM2NyM3Q=".into()))
        );
        assert_eq!(
            c.secrets.previous_keys,
            vec![
                KeyText("b2xkLXMzY3IzdA==".into()),
                KeyText("b2xkZXI=".into())
            ]
        );
        assert_eq!(
            c.secrets.key_file,
            Some(PathBuf::from("/etc/berth/secrets.key"))
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("Y3VycmVudC1") && !shown.contains("b2xk"),
            "{shown}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.yaml");
        std::fs::write(&path, "secrets:\n  previousKeys: b2xkLXMzY3IzdA==\n").unwrap();
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(
            c.secrets.previous_keys,
            vec![KeyText("b2xkLXMzY3IzdA==".into())]
        );
        // A wrong shape is refused without the key being quoted back.
        std::fs::write(&path, "secrets:\n  previousKeys: {k: b2xkLXMzY3IzdA==}\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(
            err.contains("previousKeys") && !err.contains("b2xk"),
            "{err}"
        );
    }

    #[test]
    fn env_names() {
        assert_eq!(env_segment("dataDir"), "DATA_DIR");
        assert_eq!(
            env_segment("allowMissingReferences"),
            "ALLOW_MISSING_REFERENCES"
        );
        assert_eq!(env_segment("url"), "URL");
        assert_eq!(env_segment("authURL"), "AUTH_URL");
        assert_eq!(env_segment("tempURLKey"), "TEMP_URL_KEY");
        assert_eq!(env_segment("storageURL"), "STORAGE_URL");
        assert_eq!(env_segment("chunkSizeMiB"), "CHUNK_SIZE_MIB");
        assert_eq!(env_segment("regionEndpoint"), "REGION_ENDPOINT");
    }
}
