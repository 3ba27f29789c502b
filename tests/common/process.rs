//! [`BerthProcess`]: the real `berth` binary, run as `berth serve` in a child
//! process, for what only a process can show (being killed, exit codes, the
//! files a first start writes, its log) and for the real clients, which
//! talk to it as they would to any registry.
//!
//! One way to start it: [`BerthProcess::serve`] names the data directory
//! and gives a [`ServeCommand`], configured the way berth itself is (its
//! command-line arguments and `BERTH_*` environment), whose
//! [`start`](ServeCommand::start) spawns berth and waits until it is ready
//! ([`run_to_refusal`](ServeCommand::run_to_refusal) where it must refuse
//! to start).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use super::client::{ADMIN_USER, RegistryClient};
use super::registry::read_admin_password_file;

/// How long a starting berth may take to answer `/readyz`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How many lines of berth's log a failing test shows.
const LOG_TAIL_LINES: usize = 60;

/// `berth <args>` (the server or the CLI), with no `BERTH_*` variable
/// inherited from the test environment (a database URL, a config file), so
/// that only what a test sets applies.
pub fn berth_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("BERTH_") {
            command.env_remove(name);
        }
    }
    command
}

/// A new temporary directory named `prefix…`, left in place after the test
/// when the variable `keep` is `1` (for a look at what it holds).
pub fn kept_temp_dir(prefix: &str, keep: &str) -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temporary directory");
    if std::env::var(keep).is_ok_and(|v| v == "1") {
        dir.disable_cleanup(true);
    }
    dir
}

/// A port nobody listens on right now, and not handed out before in this
/// test binary: its tests run at once, and two berths told the same port
/// would leave one test talking to the other's server.
pub fn free_loopback_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// Serves `app` on a free loopback port, in the background on the test's
/// runtime; returns the address.
pub async fn serve_on_loopback(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// An in-test HTTP server that a test can take away: [`StoppableServer::stop`]
/// closes its listener and every connection at once.
pub struct StoppableServer {
    running: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl StoppableServer {
    pub fn start(listener: tokio::net::TcpListener, app: axum::Router) -> StoppableServer {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        StoppableServer {
            running: Some((stop, serving)),
        }
    }

    pub async fn stop(&mut self) {
        if let Some((stop, serving)) = self.running.take() {
            let _ = stop.send(());
            serving.abort();
            let _ = serving.await;
        }
    }
}

/// `berth serve` as a test wants it, before it starts: made by
/// [`BerthProcess::serve`], started by [`ServeCommand::start`].
#[must_use = "a ServeCommand does nothing until it is started"]
pub struct ServeCommand {
    data_dir: PathBuf,
    listen_ip: Ipv4Addr,
    port: u16,
    admin_password: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    tls: bool,
}

impl ServeCommand {
    /// `BERTH_ADMIN_PASSWORD`: the admin's password on a first start.
    /// Without it berth makes one up and writes it to
    /// `<data dir>/admin-password`.
    pub fn admin_password(mut self, password: &str) -> Self {
        self.admin_password = Some(password.to_owned());
        self
    }

    /// Listens on `ip` (with the same port) instead of `127.0.0.1`; the
    /// harness still reaches it on the loopback address.
    pub fn listen_on(mut self, ip: Ipv4Addr) -> Self {
        self.listen_ip = ip;
        self
    }

    /// More arguments after `serve --data-dir … --addr …`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// A variable of berth's environment (`BERTH_AUTH_LOCKOUT_…`,
    /// `RUST_LOG`, …).
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_owned(), value.into()));
        self
    }

    /// Variables of berth's environment.
    pub fn envs(self, vars: &[(impl AsRef<str>, impl AsRef<str>)]) -> Self {
        vars.iter().fold(self, |command, (name, value)| {
            command.env(name.as_ref(), value.as_ref())
        })
    }

    /// berth serves TLS (as its environment or arguments say): the harness
    /// talks to it over `https://`, without checking its certificate (that
    /// is what the tests of the real clients check).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// The port berth will listen on (chosen when the command was made), for
    /// configuration that names it, such as `BERTH_HTTP_HOST`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts berth and waits until it answers `/readyz`; fails the test
    /// with berth's log if it exits first or is not ready within a minute.
    ///
    /// The returned process's client logs in as the admin: with the
    /// password berth wrote to the data directory if there is one, else
    /// with the one given. berth's stderr goes to `<data_dir>.<port>.log`,
    /// next to the data directory (so make that a subdirectory of a
    /// temporary directory).
    pub async fn start(self) -> BerthProcess {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let log_path = self.data_dir.with_extension(format!("{}.log", self.port));
        let log = std::fs::File::create(&log_path).expect("log file for berth");
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("berth binary starts");
        // Logged in once berth has bootstrapped its admin.
        let mut client = RegistryClient::new(format!("http://{addr}"), ADMIN_USER, "");
        if self.tls {
            client = client.over_tls_unverified();
        }
        let mut process = BerthProcess {
            child,
            client,
            addr,
            log_path,
        };
        process.wait_until_ready().await;
        let password_file = self.data_dir.join(berth::server::ADMIN_PASSWORD_FILE);
        let password = if password_file.exists() {
            read_admin_password_file(&self.data_dir)
        } else {
            self.admin_password
                .expect("berth wrote no admin password and none was given")
        };
        process.client = process.client.with_credentials(ADMIN_USER, &password);
        process
    }

    /// Runs berth where it is to refuse to start: waits up to `limit` for
    /// it to exit, and returns its exit status and output; `None` (once it
    /// is killed) if it is still running then.
    pub fn run_to_refusal(self, limit: Duration) -> Option<Output> {
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("berth binary starts");
        let started = Instant::now();
        while child.try_wait().expect("child status").is_none() {
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(child.wait_with_output().expect("berth's output"))
    }

    /// `berth serve …` with this configuration.
    fn command(&self) -> Command {
        let listen = SocketAddr::from((self.listen_ip, self.port)).to_string();
        let data_dir = self.data_dir.to_str().expect("UTF-8 data dir");
        let mut args = vec!["serve", "--data-dir", data_dir, "--addr", &listen];
        args.extend(self.args.iter().map(String::as_str));
        let mut command = berth_command(&args);
        if let Some(password) = &self.admin_password {
            command.env("BERTH_ADMIN_PASSWORD", password);
        }
        command.envs(self.env.iter().map(|(name, value)| (name, value)));
        command
    }
}

/// A `berth serve` child process. Derefs to a [`RegistryClient`] logged in
/// as the admin. Killed when dropped; a failing test shows the end of its
/// log.
pub struct BerthProcess {
    child: Child,
    client: RegistryClient,
    /// `127.0.0.1:PORT`, where it is reached.
    pub addr: SocketAddr,
    log_path: PathBuf,
}

impl BerthProcess {
    /// `berth serve --data-dir <data_dir> --addr 127.0.0.1:<free port>`, to
    /// be configured and then [started](ServeCommand::start).
    pub fn serve(data_dir: &Path) -> ServeCommand {
        ServeCommand {
            data_dir: data_dir.to_owned(),
            listen_ip: Ipv4Addr::LOCALHOST,
            port: free_loopback_port(),
            admin_password: None,
            args: Vec::new(),
            env: Vec::new(),
            tls: false,
        }
    }

    /// Waits until berth answers `/readyz` (its database and storage
    /// answer); fails the test with its log if it exits first or is not
    /// ready within a minute.
    pub async fn wait_until_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!("berth exited with {status} while starting:\n{}", self.log());
            }
            let probe = self
                .client
                .anonymous()
                .request(Method::GET, "/readyz")
                .timeout(PROBE_TIMEOUT);
            // Ready, and this process is the one answering: it logged that
            // it serves (a berth that could not bind its port would have
            // exited instead).
            if let Ok(response) = probe.send().await
                && response.status() == StatusCode::OK
                && self.log().contains("berth is serving")
            {
                return;
            }
            assert!(
                started.elapsed() < STARTUP_TIMEOUT,
                "berth was not ready on {} within {STARTUP_TIMEOUT:?}:\n{}",
                self.addr,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// `http://127.0.0.1:PORT`, or `https://…` when it serves TLS.
    pub fn url(&self) -> &str {
        self.client.base_url()
    }

    /// SIGKILL: no shutdown, no flushing, no cleanup.
    pub fn kill(&mut self) -> ExitStatus {
        self.child.kill().expect("berth is killed");
        self.child.wait().expect("killed berth is reaped")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM: berth's graceful shutdown.
    pub fn terminate(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill only sends a signal to our own child process.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM sent to berth");
    }

    /// Waits up to `limit` for berth to exit; `None` if it is still running.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return Some(status);
            }
            if started.elapsed() >= limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POSTs `body` to `path` on a berth started with a crash point armed,
    /// and checks that it died there (SIGABRT) without answering.
    pub async fn post_to_crash_point(&mut self, path: &str, body: &serde_json::Value) {
        use std::os::unix::process::ExitStatusExt;
        let asked = self
            .client()
            .request(Method::POST, path)
            .json(body)
            .send()
            .await;
        assert!(asked.is_err(), "the run answered: {asked:?}");
        let status = self
            .wait_exit(Duration::from_secs(30))
            .await
            .expect("berth died");
        assert_eq!(status.signal(), Some(6), "berth aborted at the crash point");
    }

    /// Resident memory (`VmRSS`), in bytes.
    pub fn resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("berth's /proc status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc status");
        kib * 1024
    }

    /// Where berth's stderr goes.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// What berth wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last lines of [`log`](Self::log).
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Deref for BerthProcess {
    type Target = RegistryClient;

    fn deref(&self) -> &RegistryClient {
        &self.client
    }
}

impl Drop for BerthProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- berth log ({}), last lines ---\n{}",
                self.log_path.display(),
                self.log_tail()
            );
        }
    }
}

/// A berth of its own on the embedded default and a CLI logged in to it as
/// `admin`: where the CLI tests of each feature start.
pub struct CliLab {
    pub berth: BerthProcess,
    pub cli: CliHome,
    /// Dropped last: the data directory outlives the process.
    _dir: tempfile::TempDir,
}

impl CliLab {
    pub async fn start(admin_password: &str) -> CliLab {
        let dir = tempfile::tempdir().expect("a data directory");
        let berth = BerthProcess::serve(&dir.path().join("data"))
            .admin_password(admin_password)
            .start()
            .await;
        let cli = CliHome::new();
        cli.login(&berth.addr.to_string(), ADMIN_USER, admin_password);
        CliLab {
            berth,
            cli,
            _dir: dir,
        }
    }
}

/// The CLI run with a home (config and auth file) of its own, for tests
/// that drive `berth` as a user would.
pub struct CliHome {
    home: tempfile::TempDir,
}

impl Default for CliHome {
    fn default() -> Self {
        Self::new()
    }
}

impl CliHome {
    pub fn new() -> CliHome {
        CliHome {
            home: tempfile::tempdir().expect("a home for the CLI"),
        }
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.run_with(args, None)
    }

    pub fn run_with(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        use std::io::Write;
        let mut command = berth_command(args);
        command
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("REGISTRY_AUTH_FILE", self.home.path().join("auth.json"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("berth runs");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("berth finishes")
    }

    /// `berth login HOST -u USER --password-stdin`, which must succeed.
    #[track_caller]
    pub fn login(&self, host: &str, user: &str, password: &str) {
        let login = self.run_with(
            &["login", host, "-u", user, "--password-stdin"],
            Some(password),
        );
        assert!(
            login.status.success(),
            "berth login: {}",
            String::from_utf8_lossy(&login.stderr)
        );
    }

    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "berth {}: {}\n{stdout}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    #[track_caller]
    pub fn fails(&self, args: &[&str], message: &str) {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "berth {} succeeded",
            args.join(" ")
        );
        assert!(
            stderr.contains(message),
            "berth {}: stderr lacks {message:?}:\n{stderr}",
            args.join(" ")
        );
    }
}
