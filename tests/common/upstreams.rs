//! Upstream registries for berth to import from and pull through, started
//! per test on loopback:
//!
//! - [`ReferenceRegistry`]: the CNCF reference registry (Debian's
//!   `docker-registry`, installed by `scripts/install-deps.sh`) with
//!   htpasswd Basic authentication, serving TLS with a certificate of a CA
//!   made for the test ([`TestCa`], rcgen). Missing, it is a loud skip, or
//!   a failure with `BERTH_REQUIRE_CLIENTS=1` as in CI.
//! - [`LocalUpstream`]: an axum router a test writes, for answers no real
//!   registry gives on demand (`429`, bytes that do not match their
//!   digest, a body without end); it counts the requests it gets.
//!
//! A second berth (a [`TestRegistry`](super::TestRegistry)) is the third
//! kind of upstream, with Bearer tokens; it needs nothing here.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use reqwest::StatusCode;

use super::client::RegistryClient;
use super::cluster::{
    Daemon, find_tool, free_ports, random_hex, temp_dir, tool_missing, wait_until,
};

/// A CA made for one test and a serving certificate it signed for
/// `127.0.0.1` and `localhost`, written as PEM files.
pub struct TestCa {
    /// The CA certificate, for clients to trust.
    pub ca_path: PathBuf,
    pub ca_pem: Vec<u8>,
    /// The serving certificate followed by the CA's, and its key.
    pub chain_path: PathBuf,
    pub key_path: PathBuf,
}

impl TestCa {
    pub fn create(dir: &Path) -> TestCa {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.distinguished_name = {
            let mut name = DistinguishedName::new();
            name.push(DnType::CommonName, "berth test upstream CA");
            name
        };
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key).expect("CA as issuer");

        let mut params = CertificateParams::new(Vec::<String>::new()).expect("server params");
        params.distinguished_name = {
            let mut name = DistinguishedName::new();
            name.push(DnType::CommonName, "127.0.0.1");
            name
        };
        params.subject_alt_names = vec![
            SanType::IpAddress(Ipv4Addr::LOCALHOST.into()),
            SanType::DnsName("localhost".to_owned().try_into().expect("DNS name")),
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");

        let ca_path = dir.join("ca.crt");
        let chain_path = dir.join("server.crt");
        let key_path = dir.join("server.key");
        std::fs::write(&ca_path, &ca_pem).expect("CA file");
        std::fs::write(&chain_path, format!("{}{ca_pem}", cert.pem())).expect("chain file");
        std::fs::write(&key_path, key.serialize_pem()).expect("key file");
        TestCa {
            ca_path,
            ca_pem: ca_pem.into_bytes(),
            chain_path,
            key_path,
        }
    }
}

/// The reference registry: `$BERTH_DOCKER_REGISTRY`, Debian's
/// `/usr/bin/docker-registry`, or `docker-registry` or `registry` on the
/// PATH.
pub fn find_docker_registry() -> Option<PathBuf> {
    find_tool(
        "BERTH_DOCKER_REGISTRY",
        &[
            PathBuf::from("/usr/bin/docker-registry"),
            PathBuf::from("docker-registry"),
            PathBuf::from("registry"),
        ],
        "--version",
    )
}

fn find_registry_or_skip() -> Option<PathBuf> {
    match find_docker_registry() {
        Some(program) => Some(program),
        None => tool_missing("docker-registry (Debian package docker-registry)"),
    }
}

/// The reference registry with htpasswd authentication (one user) or
/// token authentication, over TLS with [`TestCa`]'s certificate. Stopped
/// and removed when dropped.
pub struct ReferenceRegistry {
    pub daemon: Daemon,
    /// `127.0.0.1:PORT`.
    pub host: String,
    pub ca: TestCa,
    pub user: String,
    pub password: String,
    pub dir: tempfile::TempDir,
}

impl ReferenceRegistry {
    /// Starts it with user `user` and a random password; `None` (after a
    /// loud note) when `docker-registry` is not installed, unless the
    /// environment requires it.
    pub async fn start_with_htpasswd(user: &str) -> Option<ReferenceRegistry> {
        let program = find_registry_or_skip()?;
        let dir = temp_dir("berth-upstream-");
        let password = random_hex(24);
        let hash = bcrypt::hash(&password, 4).expect("bcrypt hash");
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("htpasswd");
        let auth = format!(
            "auth:\n  htpasswd:\n    realm: berth-test-upstream\n    path: {}\n",
            htpasswd.display()
        );
        Some(Self::start(&program, dir, &auth, user, &password).await)
    }

    /// Starts it with the token authentication of the Docker token
    /// protocol, trusting the tokens `issuer` signs; its clients get tokens
    /// from `issuer`'s realm with `issuer`'s user and password.
    pub async fn start_with_tokens(issuer: &TokenIssuer) -> Option<ReferenceRegistry> {
        let program = find_registry_or_skip()?;
        let dir = temp_dir("berth-upstream-");
        let auth = format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {name}\n    \
               rootcertbundle: {bundle}\n",
            realm = issuer.realm(),
            service = TOKEN_SERVICE,
            name = TOKEN_ISSUER,
            bundle = issuer.certificate_path.display(),
        );
        Some(Self::start(&program, dir, &auth, &issuer.user, &issuer.password).await)
    }

    async fn start(
        program: &Path,
        dir: tempfile::TempDir,
        auth: &str,
        user: &str,
        password: &str,
    ) -> ReferenceRegistry {
        let root = dir.path().to_owned();
        let ca = TestCa::create(&root);
        let port = free_ports(1)[0];
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n  \
               maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: {host}\n  secret: {secret}\n  tls:\n    certificate: {chain}\n    key: {key}\n\
             {auth}",
            data = root.join("data").display(),
            secret = random_hex(32),
            chain = ca.chain_path.display(),
            key = ca.key_path.display(),
        );
        let config_path = root.join("config.yml");
        std::fs::write(&config_path, config).expect("registry config");
        let mut daemon = Daemon::spawn(
            "docker-registry",
            program,
            vec!["serve".into(), config_path.into_os_string()],
            &root,
            &root,
        );
        let probe = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca.ca_pem).expect("CA PEM")])
            .build()
            .expect("probe client");
        let url = format!("https://{host}/v2/");
        wait_until("docker-registry", &mut [&mut daemon], || {
            let probe = probe.clone();
            let url = url.clone();
            async move {
                match probe.get(&url).send().await {
                    Ok(r) if r.status() == StatusCode::UNAUTHORIZED => Ok(()),
                    Ok(r) => Err(format!("/v2/ answered {}", r.status())),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await;
        ReferenceRegistry {
            daemon,
            host,
            ca,
            user: user.to_owned(),
            password: password.to_owned(),
            dir,
        }
    }

    /// A client of the distribution API logged in as its user, trusting its
    /// CA: for pushing what the tests then import.
    pub fn client(&self) -> RegistryClient {
        RegistryClient::new(format!("http://{}", self.host), &self.user, &self.password)
            .over_tls(&self.ca.ca_pem, false)
    }

    /// Lines of its access log so far that mention `needle`.
    pub fn access_log_lines(&self, needle: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("docker-registry.log"))
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }
}

/// A small HTTP server a test scripts with an axum router, on a free
/// loopback port; it counts every request. Stopped when dropped.
pub struct LocalUpstream {
    pub addr: SocketAddr,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl LocalUpstream {
    /// Serves `router` over plain HTTP.
    pub async fn start(router: axum::Router) -> LocalUpstream {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let (router, requests) = counting(router);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        LocalUpstream {
            addr,
            requests,
            task,
        }
    }

    /// Serves `router` over TLS with `ca`'s serving certificate.
    pub async fn start_tls(router: axum::Router, ca: &TestCa) -> LocalUpstream {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("bound address");
        let config =
            axum_server::tls_rustls::RustlsConfig::from_pem_file(&ca.chain_path, &ca.key_path)
                .await
                .expect("TLS configuration");
        let (router, requests) = counting(router);
        let server =
            axum_server::tls_rustls::from_tcp_rustls(listener, config).expect("TLS server");
        let task = tokio::spawn(async move {
            let _ = server.serve(router.into_make_service()).await;
        });
        LocalUpstream {
            addr,
            requests,
            task,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

/// `router`, counting the requests it gets.
fn counting(router: axum::Router) -> (axum::Router, Arc<AtomicU64>) {
    let requests = Arc::new(AtomicU64::new(0));
    let counted = requests.clone();
    let router = router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                next.run(request).await
            }
        },
    ));
    (router, requests)
}

impl Drop for LocalUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `service` the token-authenticated reference registry names.
pub const TOKEN_SERVICE: &str = "berth-test-upstream";
/// The `iss` of the tokens [`TokenIssuer`] signs.
pub const TOKEN_ISSUER: &str = "berth-test-token-issuer";

/// A token service of the Docker token protocol for the reference
/// registry: checks one user's password (Basic), grants what a token
/// request's `scope` asks for to that user (nothing to anyone else), and
/// signs ES256 JWTs with a key whose certificate rides in the `x5c` header,
/// which is how `docker-registry` 2.8 finds the key it trusts. Served over
/// TLS with [`TestCa`]'s certificate.
pub struct TokenIssuer {
    pub server: LocalUpstream,
    pub user: String,
    pub password: String,
    /// The certificate of the signing key, the registry's `rootcertbundle`.
    pub certificate_path: PathBuf,
    pub ca: TestCa,
    signer: Arc<TokenSigner>,
    pub dir: tempfile::TempDir,
}

struct TokenSigner {
    key: jsonwebtoken::EncodingKey,
    certificate_der: Vec<u8>,
}

impl TokenSigner {
    fn sign(&self, subject: &str, access: serde_json::Value) -> String {
        use base64::Engine as _;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.x5c = Some(vec![
            base64::engine::general_purpose::STANDARD.encode(&self.certificate_der),
        ]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": random_hex(16),
            "access": access,
        });
        jsonwebtoken::encode(&header, &claims, &self.key).expect("token signs")
    }
}

impl TokenIssuer {
    pub async fn start(user: &str) -> TokenIssuer {
        let dir = temp_dir("berth-token-issuer-");
        let ca = TestCa::create(dir.path());
        let key = KeyPair::generate().expect("signing key");
        let mut params =
            CertificateParams::new(vec![TOKEN_ISSUER.to_owned()]).expect("signer params");
        params.distinguished_name = {
            let mut name = DistinguishedName::new();
            name.push(DnType::CommonName, TOKEN_ISSUER);
            name
        };
        let certificate = params.self_signed(&key).expect("signer certificate");
        let certificate_path = dir.path().join("token-signer.crt");
        std::fs::write(&certificate_path, certificate.pem()).expect("signer certificate file");
        let signer = Arc::new(TokenSigner {
            key: jsonwebtoken::EncodingKey::from_ec_der(&key.serialize_der()),
            certificate_der: certificate.der().to_vec(),
        });
        let password = random_hex(24);
        let expected = format!("{user}:{password}");
        let router = {
            let signer = signer.clone();
            axum::Router::new().route(
                "/token",
                axum::routing::get(
                    move |headers: axum::http::HeaderMap,
                          axum::extract::Query(query): axum::extract::Query<
                        std::collections::HashMap<String, String>,
                    >| {
                        let signer = signer.clone();
                        let expected = expected.clone();
                        async move { token_answer(&signer, &expected, &headers, &query) }
                    },
                ),
            )
        };
        let server = LocalUpstream::start_tls(router, &ca).await;
        TokenIssuer {
            server,
            user: user.to_owned(),
            password,
            certificate_path,
            ca,
            signer,
            dir,
        }
    }

    /// `https://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("https://{}/token", self.server.host())
    }

    /// A token for `actions` on `repository`, as the service would give
    /// its user (for pushing what the tests then import).
    pub fn mint(&self, repository: &str, actions: &[&str]) -> String {
        self.signer.sign(
            &self.user,
            serde_json::json!([{"type": "repository", "name": repository, "actions": actions}]),
        )
    }

    /// Token requests answered so far.
    pub fn requests(&self) -> u64 {
        self.server.requests()
    }
}

fn token_answer(
    signer: &TokenSigner,
    expected_credentials: &str,
    headers: &axum::http::HeaderMap,
    query: &std::collections::HashMap<String, String>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    use base64::Engine as _;
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let subject = expected_credentials.split(':').next().unwrap_or_default();
    let (subject, access) = match presented {
        Some(credentials) if credentials == expected_credentials => (
            subject,
            query
                .get("scope")
                .map(|scope| {
                    scope
                        .split_whitespace()
                        .filter_map(|one| {
                            let (kind, rest) = one.split_once(':')?;
                            let (name, actions) = rest.rsplit_once(':')?;
                            Some(serde_json::json!({
                                "type": kind,
                                "name": name,
                                "actions": actions.split(',').collect::<Vec<_>>(),
                            }))
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        ),
        Some(_) => {
            return (
                StatusCode::UNAUTHORIZED,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"wrong user name or password"}]}"#,
            )
                .into_response();
        }
        // Anonymous callers get a token that grants nothing.
        None => ("", Vec::new()),
    };
    let token = signer.sign(subject, serde_json::Value::Array(access));
    axum::Json(serde_json::json!({"token": token, "expires_in": 300})).into_response()
}
