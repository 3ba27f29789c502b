//! Files berth writes for people to read: secrets (owner only) and
//! certificates, made durable before berth says where they are; the CA
//! files its clients (the CLI, the upstream client) trust; and what every
//! writer of files (storage, the embedded database) needs to know of their
//! errors.

use std::io::Write;
use std::path::Path;

/// `ENOSPC` or `EDQUOT`: the same write may succeed once space is freed.
pub fn is_out_of_space(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Creates or truncates `path` and writes `contents`, readable by the owner
/// only when `private`, and `fsync`s it.
pub fn write_synced(path: &Path, contents: &[u8], private: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// The PEM certificates of a CA file that a client trusts besides the
/// system's; the error says why there are none, for the caller to name the
/// file.
pub fn read_ca_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())?;
    if certificates.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certificates)
}
