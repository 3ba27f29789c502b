//! [`TestRegistry`]: berth started in-process on `127.0.0.1:0`, with a
//! temporary data directory of its own: the fast way, for every test that
//! needs no process of its own. One way to start it,
//! [`TestRegistry::start_with`], configured by changing berth's [`Config`]
//! ([`TestRegistry::start`] for the defaults).

use std::net::SocketAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use berth::config::{Bootstrap, Config, HttpConfig};
use berth::server::RunningServer;
use tempfile::TempDir;

use super::client::{ADMIN_USER, RegistryClient};

/// The admin password berth bootstrapped in `data_dir`: the one from
/// `BERTH_ADMIN_PASSWORD` if the environment sets it (berth then writes no
/// file), else the generated one berth wrote to `<data_dir>/admin-password`.
pub fn admin_password(data_dir: &Path) -> String {
    match std::env::var("BERTH_ADMIN_PASSWORD") {
        Ok(password) if !password.is_empty() => password,
        _ => read_admin_password_file(data_dir),
    }
}

pub fn read_admin_password_file(data_dir: &Path) -> String {
    let path = data_dir.join(berth::server::ADMIN_PASSWORD_FILE);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// Where berth keeps the bytes of upload `uuid` in progress, in the default
/// filesystem storage under `data_dir`.
pub fn upload_file(data_dir: &Path, uuid: &str) -> PathBuf {
    data_dir.join("storage").join("uploads").join(uuid)
}

/// The configuration of a test registry: defaults, the data directory, and
/// any free loopback port.
pub fn test_config(data_dir: &Path) -> Config {
    Config {
        data_dir: data_dir.to_owned(),
        http: HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..HttpConfig::default()
        },
        ..Config::default()
    }
}

/// A running berth and a client logged in as its admin (anonymous with
/// `auth.bootstrap: initialize`, which makes no admin). Derefs to the
/// [`RegistryClient`], so a test reads `registry.push_blob(…)`.
pub struct TestRegistry {
    client: RegistryClient,
    server: Option<RunningServer>,
    config: Config,
    data_dir: TempDir,
    pub addr: SocketAddr,
}

impl TestRegistry {
    /// berth with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// berth with the default configuration changed by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        let mut config = test_config(data_dir.path());
        configure(&mut config);
        Self::start_in(data_dir, config).await
    }

    async fn start_in(data_dir: TempDir, config: Config) -> Self {
        let server = berth::server::start(config.clone())
            .await
            .expect("berth starts in-process");
        let addr = server.local_addr;
        let url = format!("http://{addr}");
        let client = match config.auth.bootstrap {
            Bootstrap::AdminPassword => {
                RegistryClient::new(url, ADMIN_USER, &admin_password(data_dir.path()))
            }
            // No admin until a client initializes the registry.
            Bootstrap::Initialize => RegistryClient::new(url, ADMIN_USER, "").anonymous(),
        };
        TestRegistry {
            client,
            server: Some(server),
            config,
            data_dir,
            addr,
        }
    }

    /// A new berth on the same data directory and configuration (on a new
    /// port), after shutting this one down if that was not done yet.
    pub async fn restart(mut self) -> Self {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("berth shuts down cleanly");
        }
        Self::start_in(self.data_dir, self.config).await
    }

    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The server handle, to shut it down while requests are in flight.
    pub fn take_server(&mut self) -> RunningServer {
        self.server.take().expect("the server was not taken yet")
    }

    /// Where berth keeps the bytes of upload `uuid` while it is in progress
    /// (its filesystem storage layout: `<data>/storage/uploads/<uuid>`).
    pub fn upload_file(&self, uuid: &str) -> PathBuf {
        upload_file(self.data_dir(), uuid)
    }

    /// Graceful shutdown.
    pub async fn shutdown(mut self) {
        self.take_server()
            .shutdown()
            .await
            .expect("berth shuts down cleanly");
    }
}

impl Deref for TestRegistry {
    type Target = RegistryClient;

    fn deref(&self) -> &RegistryClient {
        &self.client
    }
}
