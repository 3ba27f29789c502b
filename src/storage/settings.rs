//! The `storage` section of berth's configuration: which backend holds the
//! blobs, with the operator's field names. Exactly one backend: `filesystem`
//! (the default), `s3`, `azure`, `gcs` or `swift`. [`StorageConfig::validate`]
//! checks what the types cannot, with messages that name the field.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Part size of object-store writes when the configuration gives none.
pub const DEFAULT_CHUNK_SIZE_MIB: u64 = 10;
/// S3 refuses multipart parts under 5 MiB (but the last).
pub const MIN_CHUNK_SIZE_MIB: u64 = 5;
/// S3 refuses parts over 5 GiB; memory use grows with the part size.
pub const MAX_CHUNK_SIZE_MIB: u64 = 5 * 1024;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct StorageConfig {
    pub filesystem: FilesystemStorage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Storage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureStorage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcs: Option<GcsStorage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swift: Option<SwiftStorage>,
    /// How long an object store may take to answer (no effect on the
    /// filesystem).
    pub timeouts: StorageTimeouts,
}

/// `storage.timeouts`: a request to an object store that takes longer
/// fails, so that a store that accepts connections and then stops answering
/// cannot hold requests forever. A request that timed out is tried again
/// like any other temporary failure (five more times, after 0.2 s doubling
/// to 3.2 s); only then is the client answered `503`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct StorageTimeouts {
    /// One request: a HEAD, a DELETE, a listing page, opening a read and
    /// each piece read after it, writing one part (up to the part size) and
    /// completing it. A store that stops answering fails a client's request
    /// after about six times this plus 7 s of backoff.
    #[serde(with = "crate::duration_text")]
    pub request: Duration,
    /// What a commit asks of the store: the copies it makes itself
    /// (`CopyObject`, `UploadPartCopy`: up to 5 GiB each, far slower than a
    /// request) and the writes that compose a blob from parts.
    #[serde(with = "crate::duration_text")]
    pub copy: Duration,
}

impl Default for StorageTimeouts {
    fn default() -> Self {
        StorageTimeouts {
            request: DEFAULT_REQUEST_TIMEOUT,
            copy: DEFAULT_COPY_TIMEOUT,
        }
    }
}

/// A part of the default 10 MiB written in 30 s is 350 KiB/s: only a store
/// that is stuck, or a link far slower than any a registry is served on,
/// misses it.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// 5 GiB copied inside the store in 10 minutes is 8.5 MiB/s.
pub const DEFAULT_COPY_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FilesystemStorage {
    /// Root of the blob store; `<dataDir>/storage` when unset.
    pub root_directory: Option<PathBuf>,
}

/// `storage.s3`: Amazon S3 or any S3-compatible store.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct S3Storage {
    pub bucket: String,
    /// Unset: `AWS_REGION`, else `us-east-1` (which S3-compatible stores
    /// accept whatever their own).
    pub region: Option<String>,
    /// The store's URL (`https://s3.example.com`); unset: AWS's endpoint for
    /// the region.
    pub region_endpoint: Option<String>,
    /// Bucket in the path (`https://endpoint/bucket/key`), as S3-compatible
    /// stores want. The default unless `virtualHostedStyle`.
    pub force_path_style: Option<bool>,
    /// Bucket in the host name (`https://bucket.endpoint/key`).
    pub virtual_hosted_style: Option<bool>,
    /// Unset (with `secretKey`): the usual AWS environment variables,
    /// credential and config files, then the instance's role.
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// Size of the parts of multipart writes, in MiB (5 to 5120): what one
    /// write holds in memory.
    #[serde(rename = "chunkSizeMiB")]
    pub chunk_size_mib: u64,
    /// Server-side encryption with S3-managed keys (SSE-S3, AES256).
    pub encrypt: bool,
    /// A prefix inside the bucket for everything berth stores.
    pub root_directory: Option<String>,
}

impl Default for S3Storage {
    fn default() -> Self {
        S3Storage {
            bucket: String::new(),
            region: None,
            region_endpoint: None,
            force_path_style: None,
            virtual_hosted_style: None,
            access_key: None,
            secret_key: None,
            chunk_size_mib: DEFAULT_CHUNK_SIZE_MIB,
            encrypt: false,
            root_directory: None,
        }
    }
}

/// `storage.azure`: Azure Blob Storage (or Azurite).
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AzureStorage {
    pub account_name: String,
    /// Unset: the environment's credentials (`AZURE_STORAGE_ACCOUNT_KEY`,
    /// a managed identity, …).
    pub account_key: Option<String>,
    pub container: String,
    /// The storage domain: `core.windows.net` (the default),
    /// `core.chinacloudapi.cn`, …; the endpoint is then
    /// `https://<accountName>.blob.<realm>`.
    pub realm: Option<String>,
    /// The blob service's URL, in place of `realm` (an emulator:
    /// `http://127.0.0.1:10000/devstoreaccount1`).
    pub endpoint: Option<String>,
    pub root_directory: Option<String>,
}

/// `storage.gcs`: Google Cloud Storage. Built and its configuration
/// checked; not run against the live service.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GcsStorage {
    pub bucket: String,
    /// A service account's JSON key file; unset: the environment's
    /// credentials (`GOOGLE_APPLICATION_CREDENTIALS`, the VM's account).
    pub keyfile: Option<PathBuf>,
    pub root_directory: Option<String>,
}

/// `storage.swift`: OpenStack Swift, reached with a storage URL and a
/// token. Built and its configuration checked; not run against a live
/// service.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SwiftStorage {
    /// The account's storage URL (`https://swift.example.com/v1/AUTH_account`).
    #[serde(rename = "storageURL")]
    pub storage_url: String,
    /// A token Swift accepts (`X-Auth-Token`).
    pub auth_token: String,
    pub container: String,
    /// The account's or container's `Temp-URL-Key`, for redirect URLs.
    #[serde(rename = "tempURLKey")]
    pub temp_url_key: Option<String>,
    pub root_directory: Option<String>,
}

/// Secrets are not printed.
fn redacted(secret: &Option<String>) -> &'static str {
    if secret.is_some() { "<set>" } else { "<unset>" }
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("region_endpoint", &self.region_endpoint)
            .field("force_path_style", &self.force_path_style)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("access_key", &self.access_key)
            .field("secret_key", &redacted(&self.secret_key))
            .field("chunk_size_mib", &self.chunk_size_mib)
            .field("encrypt", &self.encrypt)
            .field("root_directory", &self.root_directory)
            .finish()
    }
}

impl std::fmt::Debug for AzureStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureStorage")
            .field("account_name", &self.account_name)
            .field("account_key", &redacted(&self.account_key))
            .field("container", &self.container)
            .field("realm", &self.realm)
            .field("endpoint", &self.endpoint)
            .field("root_directory", &self.root_directory)
            .finish()
    }
}

impl std::fmt::Debug for GcsStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsStorage")
            .field("bucket", &self.bucket)
            .field("keyfile", &self.keyfile)
            .field("root_directory", &self.root_directory)
            .finish()
    }
}

impl std::fmt::Debug for SwiftStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwiftStorage")
            .field("storage_url", &self.storage_url)
            .field("auth_token", &redacted(&Some(self.auth_token.clone())))
            .field("container", &self.container)
            .field("temp_url_key", &redacted(&self.temp_url_key))
            .field("root_directory", &self.root_directory)
            .finish()
    }
}

/// Which backend a configuration chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Filesystem,
    S3,
    Azure,
    Gcs,
    Swift,
}

impl StorageConfig {
    /// The backend chosen: the one object store section present, else the
    /// filesystem. [`StorageConfig::validate`] refuses more than one.
    pub fn backend(&self) -> Backend {
        if self.s3.is_some() {
            Backend::S3
        } else if self.azure.is_some() {
            Backend::Azure
        } else if self.gcs.is_some() {
            Backend::Gcs
        } else if self.swift.is_some() {
            Backend::Swift
        } else {
            Backend::Filesystem
        }
    }

    /// Checks the chosen backend's fields; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let chosen: Vec<&str> = [
            ("s3", self.s3.is_some()),
            ("azure", self.azure.is_some()),
            ("gcs", self.gcs.is_some()),
            ("swift", self.swift.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if chosen.len() > 1 {
            return Err(format!(
                "storage: exactly one backend may be configured, not {}",
                chosen.join(" and ")
            ));
        }
        if let Some(first) = chosen.first()
            && self.filesystem.root_directory.is_some()
        {
            return Err(format!(
                "storage: filesystem.rootDirectory and {first} are both set; blobs are kept in \
                 one backend (use {first}.rootDirectory for a prefix in the store)"
            ));
        }
        if let Some(s3) = &self.s3 {
            s3.validate()?;
        }
        if let Some(azure) = &self.azure {
            azure.validate()?;
        }
        if let Some(gcs) = &self.gcs {
            gcs.validate()?;
        }
        if let Some(swift) = &self.swift {
            swift.validate()?;
        }
        self.timeouts.validate()
    }
}

impl StorageTimeouts {
    fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("storage.timeouts.request", self.request),
            ("storage.timeouts.copy", self.copy),
        ] {
            if value.is_zero() {
                return Err(format!("{key} must be longer than zero"));
            }
        }
        if self.copy < self.request {
            return Err(format!(
                "storage.timeouts.copy ({}) is shorter than storage.timeouts.request ({}): a \
                 copy made by the store takes at least as long as a request",
                humantime::format_duration(self.copy),
                humantime::format_duration(self.request)
            ));
        }
        Ok(())
    }
}

fn required(section: &str, field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err(format!("storage.{section}.{field} is required"))
    } else {
        Ok(())
    }
}

/// An `http://` or `https://` URL with a host.
fn check_url(key: &str, text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| {
        format!("{key} {text:?} is not a URL ({e}); it must be http(s)://HOST[:PORT]")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "{key} {text:?} must be an http:// or https:// URL with a host"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{key} {text:?} must not have a query or fragment"));
    }
    Ok(())
}

/// A bucket name S3 accepts: 3 to 63 lower-case letters, digits, dots and
/// hyphens, starting and ending with a letter or digit.
fn check_bucket(key: &str, bucket: &str) -> Result<(), String> {
    let well_formed = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "{key} {bucket:?} is not a bucket name (3-63 lower-case letters, digits, dots and \
             hyphens, starting and ending with a letter or digit)"
        ))
    }
}

fn check_root(key: &str, root: &Option<String>) -> Result<(), String> {
    if let Some(root) = root
        && root.split('/').any(|segment| segment == "..")
    {
        return Err(format!("{key} {root:?} must not contain `..`"));
    }
    Ok(())
}

impl S3Storage {
    /// Path style (the bucket in the URL's path) unless virtual-hosted style
    /// is asked for.
    pub fn path_style(&self) -> bool {
        match (self.force_path_style, self.virtual_hosted_style) {
            (Some(path), _) => path,
            (None, Some(virtual_hosted)) => !virtual_hosted,
            (None, None) => true,
        }
    }

    pub fn chunk_size(&self) -> usize {
        usize::try_from(self.chunk_size_mib << 20).unwrap_or(usize::MAX)
    }

    fn validate(&self) -> Result<(), String> {
        required("s3", "bucket", &self.bucket)?;
        check_bucket("storage.s3.bucket", &self.bucket)?;
        if let Some(endpoint) = &self.region_endpoint {
            check_url("storage.s3.regionEndpoint", endpoint)?;
        }
        if let Some(region) = &self.region
            && region.trim().is_empty()
        {
            return Err(
                "storage.s3.region is empty; leave it out to use AWS_REGION or us-east-1".into(),
            );
        }
        if let (Some(path), Some(virtual_hosted)) =
            (self.force_path_style, self.virtual_hosted_style)
            && path == virtual_hosted
        {
            return Err(format!(
                "storage.s3.forcePathStyle ({path}) and storage.s3.virtualHostedStyle \
                 ({virtual_hosted}) contradict each other; set one of them"
            ));
        }
        match (&self.access_key, &self.secret_key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(
                    "storage.s3.accessKey and storage.s3.secretKey go together: set both, \
                            or neither to use the AWS environment variables and credential files"
                        .into(),
                );
            }
            _ => {}
        }
        if !(MIN_CHUNK_SIZE_MIB..=MAX_CHUNK_SIZE_MIB).contains(&self.chunk_size_mib) {
            return Err(format!(
                "storage.s3.chunkSizeMiB is {}; it must be between {MIN_CHUNK_SIZE_MIB} (S3's \
                 smallest part) and {MAX_CHUNK_SIZE_MIB} (its largest)",
                self.chunk_size_mib
            ));
        }
        check_root("storage.s3.rootDirectory", &self.root_directory)
    }
}

impl AzureStorage {
    /// The blob service's URL.
    pub fn endpoint(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
            None => format!(
                "https://{}.blob.{}",
                self.account_name,
                self.realm.as_deref().unwrap_or("core.windows.net")
            ),
        }
    }

    fn validate(&self) -> Result<(), String> {
        required("azure", "accountName", &self.account_name)?;
        required("azure", "container", &self.container)?;
        if !self
            .account_name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(format!(
                "storage.azure.accountName {:?} must be lower-case letters and digits",
                self.account_name
            ));
        }
        if self.realm.is_some() && self.endpoint.is_some() {
            return Err(
                "storage.azure.realm and storage.azure.endpoint are both set; the \
                        endpoint is made from the realm, so set one"
                    .into(),
            );
        }
        if let Some(endpoint) = &self.endpoint {
            check_url("storage.azure.endpoint", endpoint)?;
        }
        if let Some(key) = &self.account_key {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(key.trim())
                .map_err(|_| {
                    "storage.azure.accountKey is not base64 (copy it as the portal shows it)"
                        .to_owned()
                })?;
        }
        check_root("storage.azure.rootDirectory", &self.root_directory)
    }
}

impl GcsStorage {
    fn validate(&self) -> Result<(), String> {
        required("gcs", "bucket", &self.bucket)?;
        check_bucket("storage.gcs.bucket", &self.bucket)?;
        if let Some(keyfile) = &self.keyfile {
            let text = std::fs::read_to_string(keyfile)
                .map_err(|e| format!("storage.gcs.keyfile {}: {e}", keyfile.display()))?;
            let key: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                format!("storage.gcs.keyfile {} is not JSON: {e}", keyfile.display())
            })?;
            if key.get("type").and_then(|t| t.as_str()) != Some("service_account")
                || key.get("private_key").is_none()
                || key.get("client_email").is_none()
            {
                return Err(format!(
                    "storage.gcs.keyfile {} is not a service account key (a JSON file with \
                     \"type\": \"service_account\", private_key and client_email)",
                    keyfile.display()
                ));
            }
        }
        check_root("storage.gcs.rootDirectory", &self.root_directory)
    }
}

impl SwiftStorage {
    fn validate(&self) -> Result<(), String> {
        required("swift", "storageURL", &self.storage_url)?;
        check_url("storage.swift.storageURL", &self.storage_url)?;
        required("swift", "authToken", &self.auth_token)?;
        required("swift", "container", &self.container)?;
        if self.container.contains('/') {
            return Err(format!(
                "storage.swift.container {:?} must not contain `/`",
                self.container
            ));
        }
        check_root("storage.swift.rootDirectory", &self.root_directory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str) -> S3Storage {
        S3Storage {
            bucket: bucket.into(),
            ..S3Storage::default()
        }
    }

    fn with(mutate: impl FnOnce(&mut StorageConfig)) -> Result<(), String> {
        let mut config = StorageConfig::default();
        mutate(&mut config);
        config.validate()
    }

    #[test]
    fn the_default_is_the_filesystem() {
        assert_eq!(StorageConfig::default().backend(), Backend::Filesystem);
        assert!(StorageConfig::default().validate().is_ok());
    }

    #[test]
    fn one_backend_only() {
        let err = with(|c| {
            c.s3 = Some(s3("images"));
            c.azure = Some(AzureStorage::default());
        })
        .unwrap_err();
        assert!(err.contains("s3 and azure"), "{err}");
        let err = with(|c| {
            c.s3 = Some(s3("images"));
            c.filesystem.root_directory = Some("/srv".into());
        })
        .unwrap_err();
        assert!(err.contains("filesystem.rootDirectory"), "{err}");
    }

    #[test]
    fn s3_fields_are_checked() {
        assert!(with(|c| c.s3 = Some(s3("images"))).is_ok());
        for (change, expected) in [
            (
                Box::new(|s: &mut S3Storage| s.bucket = String::new())
                    as Box<dyn Fn(&mut S3Storage)>,
                "storage.s3.bucket is required",
            ),
            (
                Box::new(|s| s.bucket = "Images".into()),
                "not a bucket name",
            ),
            (
                Box::new(|s| s.region_endpoint = Some("s3.example.com".into())),
                "regionEndpoint",
            ),
            (
                Box::new(|s| s.region_endpoint = Some("ftp://s3".into())),
                "http:// or https://",
            ),
            (
                Box::new(|s| s.access_key = Some("AKIA".into())),
                "go together",
            ),
            (Box::new(|s| s.chunk_size_mib = 1), "chunkSizeMiB is 1"),
            (Box::new(|s| s.chunk_size_mib = 6000), "between 5"),
            (
                Box::new(|s| {
                    s.force_path_style = Some(true);
                    s.virtual_hosted_style = Some(true);
                }),
                "contradict",
            ),
            (
                Box::new(|s| s.root_directory = Some("a/../b".into())),
                "`..`",
            ),
        ] {
            let mut bad = s3("images");
            change(&mut bad);
            let err = with(|c| c.s3 = Some(bad)).unwrap_err();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let mut virtual_hosted = s3("images");
        virtual_hosted.virtual_hosted_style = Some(true);
        assert!(!virtual_hosted.path_style());
        assert!(s3("images").path_style());
    }

    #[test]
    fn azure_gcs_and_swift_fields_are_checked() {
        let azure = AzureStorage {
            account_name: "devstoreaccount1".into(),
            container: "images".into(),
            ..AzureStorage::default()
        };
        assert!(with(|c| c.azure = Some(azure.clone())).is_ok());
        assert_eq!(
            azure.endpoint(),
            "https://devstoreaccount1.blob.core.windows.net"
        );
        let err = with(|c| {
            c.azure = Some(AzureStorage {
                account_key: Some("not base64!".into()),
                ..azure.clone()
            })
        })
        .unwrap_err();
        assert!(err.contains("accountKey"), "{err}");
        let err = with(|c| {
            c.azure = Some(AzureStorage {
                realm: Some("core.windows.net".into()),
                endpoint: Some("http://127.0.0.1:10000/devstoreaccount1".into()),
                ..azure.clone()
            })
        })
        .unwrap_err();
        assert!(err.contains("realm"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let keyfile = dir.path().join("key.json");
        std::fs::write(&keyfile, r#"{"type": "authorized_user"}"#).unwrap();
        let gcs = GcsStorage {
            bucket: "images".into(),
            keyfile: Some(keyfile.clone()),
            root_directory: None,
        };
        let err = with(|c| c.gcs = Some(gcs.clone())).unwrap_err();
        assert!(err.contains("not a service account key"), "{err}");
        std::fs::write(
            &keyfile,
            r#"{"type": "service_account", "private_key": "k", "client_email": "a@b"}"#,
        )
        .unwrap();
        assert!(with(|c| c.gcs = Some(gcs.clone())).is_ok());
        let err = with(|c| {
            c.gcs = Some(GcsStorage {
                keyfile: Some(dir.path().join("missing.json")),
                ..gcs.clone()
            })
        })
        .unwrap_err();
        assert!(err.contains("missing.json"), "{err}");

        let swift = SwiftStorage {
            storage_url: "https://swift.example.com/v1/AUTH_a".into(),
            auth_token: "t".into(),
            container: "images".into(),
            ..SwiftStorage::default()
        };
        assert!(with(|c| c.swift = Some(swift.clone())).is_ok());
        let err = with(|c| {
            c.swift = Some(SwiftStorage {
                auth_token: String::new(),
                ..swift.clone()
            })
        })
        .unwrap_err();
        assert!(err.contains("authToken is required"), "{err}");
    }

    #[test]
    fn timeouts_have_defaults_and_are_checked() {
        let timeouts = StorageConfig::default().timeouts;
        assert_eq!(timeouts.request, Duration::from_secs(30));
        assert_eq!(timeouts.copy, Duration::from_secs(600));
        let err = with(|c| c.timeouts.request = Duration::ZERO).unwrap_err();
        assert!(err.contains("storage.timeouts.request"), "{err}");
        let err = with(|c| c.timeouts.copy = Duration::ZERO).unwrap_err();
        assert!(err.contains("storage.timeouts.copy"), "{err}");
        let err = with(|c| {
            c.timeouts.request = Duration::from_secs(60);
            c.timeouts.copy = Duration::from_secs(30);
        })
        .unwrap_err();
        assert!(
            err.contains("shorter than storage.timeouts.request"),
            "{err}"
        );
        assert!(
            with(|c| {
                c.s3 = Some(s3("images"));
                c.timeouts.request = Duration::from_millis(500);
            })
            .is_ok()
        );
    }

    #[test]
    fn secrets_are_not_printed() {
        let s3 = S3Storage {
            secret_key: Some("very-secret".into()),
            ..s3("images")
        };
        assert!(!format!("{s3:?}").contains("very-secret"));
    }
}
