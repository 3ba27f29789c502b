//! TLS for the registry's listener: certificate and key files (reloaded when
//! they change), or `auto`, where berth makes its own CA on first start and
//! a serving certificate for the configured host names signed by it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use axum_server::tls_rustls::RustlsConfig;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;

/// Where `auto` keeps its files, under the data directory.
pub const AUTO_DIR: &str = "tls";
const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";

/// How often certificate files are checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(10);

/// The two files TLS is served from.
#[derive(Debug, Clone)]
pub struct CertificateFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// A rustls configuration (HTTP/2 and HTTP/1.1 by ALPN) from PEM files.
pub fn server_config(files: &CertificateFiles) -> anyhow::Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.certificate)
        .with_context(|| format!("reading {}", files.certificate.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", files.certificate.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", files.certificate.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading the private key {}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn modified(files: &CertificateFiles) -> Option<(SystemTime, SystemTime)> {
    let at = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((at(&files.certificate)?, at(&files.key)?))
}

/// Loads `files` and reloads them whenever they change (checked every
/// [`RELOAD_CHECK`]) until `stop` turns true. A broken new pair is logged
/// and the previous one kept.
pub fn load_and_watch(
    files: CertificateFiles,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(RustlsConfig, tokio::task::JoinHandle<()>)> {
    let config = RustlsConfig::from_config(server_config(&files)?);
    let reloading = config.clone();
    let watcher = tokio::spawn(async move {
        let mut seen = modified(&files);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RELOAD_CHECK) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            let now = modified(&files);
            if now.is_none() || now == seen {
                continue;
            }
            match server_config(&files) {
                Ok(fresh) => {
                    reloading.reload_from_config(fresh);
                    seen = now;
                    tracing::info!(certificate = %files.certificate.display(), "TLS certificate reloaded");
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "TLS certificate changed but cannot be loaded; keeping the previous one")
                }
            }
        }
    });
    Ok((config, watcher))
}

/// What `auto` produced.
pub struct AutoTls {
    pub files: CertificateFiles,
    pub ca_certificate: PathBuf,
    /// True when the CA was made by this start.
    pub ca_created: bool,
}

fn write_file(path: &Path, contents: &str, private: bool) -> anyhow::Result<()> {
    crate::files::write_synced(path, contents.as_bytes(), private)
        .with_context(|| format!("writing {}", path.display()))
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "berth");
    name.push(
        DnType::CommonName,
        format!("berth registry CA {}", uuid::Uuid::new_v4().simple()),
    );
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    Ok(params)
}

/// Makes (first start) or reuses the CA in `<data_dir>/tls`, and issues a
/// fresh serving certificate for `hostnames` on every start, so that a
/// change of names needs only a restart and clients keep trusting the CA.
pub fn auto(data_dir: &Path, hostnames: &[String]) -> anyhow::Result<AutoTls> {
    let dir = data_dir.join(AUTO_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (ca_cert_path, ca_key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let ca_created = !(ca_cert_path.exists() && ca_key_path.exists());
    if ca_created {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        write_file(&ca_key_path, &key.serialize_pem(), true)?;
        write_file(&ca_cert_path, &cert.pem(), false)?;
    }
    let ca_key = KeyPair::from_pem(&std::fs::read_to_string(&ca_key_path)?)
        .with_context(|| format!("reading {}", ca_key_path.display()))?;
    let ca_pem = std::fs::read_to_string(&ca_cert_path)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key)
        .with_context(|| format!("reading {}", ca_cert_path.display()))?;

    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = {
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "berth");
        name.push(
            DnType::CommonName,
            hostnames
                .first()
                .cloned()
                .unwrap_or_else(|| "localhost".into()),
        );
        name
    };
    params.subject_alt_names = hostnames
        .iter()
        .map(|h| match h.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(h.clone().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    let (cert_path, key_path) = (dir.join(SERVER_CERT), dir.join(SERVER_KEY));
    write_file(&key_path, &key.serialize_pem(), true)?;
    // The chain: serving certificate, then the CA.
    write_file(&cert_path, &format!("{}{}", cert.pem(), ca_pem), false)?;
    Ok(AutoTls {
        files: CertificateFiles {
            certificate: cert_path,
            key: key_path,
        },
        ca_certificate: ca_cert_path,
        ca_created,
    })
}

/// The message printed when `auto` made a CA: where it is and how to make
/// podman, skopeo, buildah and docker trust it. The commands start with
/// `sudo` unless berth runs as root, who would not need it (and may be in a
/// container without `sudo`).
pub fn trust_instructions(ca: &Path, registry_hosts: &[String]) -> String {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    trust_instructions_as(ca, registry_hosts, root)
}

fn trust_instructions_as(ca: &Path, registry_hosts: &[String], root: bool) -> String {
    let sudo = if root { "" } else { "sudo " };
    let mut text = format!(
        "\nberth: created a certificate authority for TLS: {}\n\
         Clients must trust it. For podman, skopeo and buildah, and for docker:\n\n",
        ca.display()
    );
    for host in registry_hosts {
        for dir in ["/etc/containers/certs.d", "/etc/docker/certs.d"] {
            text.push_str(&format!(
                "    {sudo}mkdir -p {dir}/{host} && {sudo}cp {} {dir}/{host}/ca.crt\n",
                ca.display()
            ));
        }
    }
    text.push_str(&format!(
        "\n(or pass --cert-dir DIR to podman/skopeo with DIR/ca.crt a copy of {})\n",
        ca.display()
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install_provider() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }

    #[test]
    fn auto_makes_a_ca_once_and_a_serving_certificate_each_time() {
        install_provider();
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["registry.example.com".to_owned(), "127.0.0.1".to_owned()];
        let first = auto(dir.path(), &names).unwrap();
        assert!(first.ca_created);
        let ca_before = std::fs::read(&first.ca_certificate).unwrap();
        let config = server_config(&first.files).unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );

        let second = auto(dir.path(), &names).unwrap();
        assert!(!second.ca_created);
        assert_eq!(std::fs::read(&second.ca_certificate).unwrap(), ca_before);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(AUTO_DIR).join(CA_KEY))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn mismatched_or_missing_files_are_errors() {
        install_provider();
        let dir = tempfile::tempdir().unwrap();
        let a = auto(&dir.path().join("a"), &["a.example".to_owned()]).unwrap();
        let b = auto(&dir.path().join("b"), &["b.example".to_owned()]).unwrap();
        let mixed = CertificateFiles {
            certificate: a.files.certificate.clone(),
            key: b.files.key.clone(),
        };
        assert!(server_config(&mixed).is_err());
        let missing = CertificateFiles {
            certificate: dir.path().join("nope.crt"),
            key: a.files.key,
        };
        assert!(server_config(&missing).is_err());
    }

    #[test]
    fn instructions_name_both_certificate_directories() {
        let text = trust_instructions(Path::new("/d/tls/ca.crt"), &["reg.example:5000".to_owned()]);
        assert!(text.contains("/etc/containers/certs.d/reg.example:5000/ca.crt"));
        assert!(text.contains("/etc/docker/certs.d/reg.example:5000/ca.crt"));
    }

    #[test]
    fn instructions_use_sudo_only_when_not_root() {
        let ca = Path::new("/d/tls/ca.crt");
        let hosts = ["reg.example:5000".to_owned()];
        let as_root = trust_instructions_as(ca, &hosts, true);
        assert!(!as_root.contains("sudo"), "{as_root}");
        assert!(
            as_root.contains(
                "    mkdir -p /etc/containers/certs.d/reg.example:5000 && cp /d/tls/ca.crt \
                 /etc/containers/certs.d/reg.example:5000/ca.crt\n"
            ),
            "{as_root}"
        );
        let as_user = trust_instructions_as(ca, &hosts, false);
        assert!(
            as_user.contains("    sudo mkdir -p /etc/docker/certs.d/reg.example:5000 && sudo cp "),
            "{as_user}"
        );
        // What berth prints is what its own user needs.
        let printed = trust_instructions(ca, &hosts);
        // SAFETY: geteuid takes no argument, touches no memory and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        assert_eq!(printed.contains("sudo"), !root, "{printed}");
    }
}
