//! [`BerthProcess`]: the real `berth` binary, run as `berth serve` in a child
//! process, for what only a process can show (being killed, exit codes, the
//! files a first start writes).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;

use super::client::{ADMIN_USER, RegistryClient};
use super::registry::read_admin_password_file;

/// How long a starting berth may take to answer `/healthz`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// `berth <args>`, with no `BERTH_*` variable inherited from the test
/// environment, so that only what a test sets applies.
pub fn berth_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("BERTH_") {
            command.env_remove(name);
        }
    }
    command
}

/// A port nobody listens on right now.
pub fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A `berth serve` child process. Derefs to a [`RegistryClient`] logged in
/// as the admin. Killed when dropped.
pub struct BerthProcess {
    child: Child,
    client: RegistryClient,
    pub addr: SocketAddr,
    log_path: PathBuf,
}

impl BerthProcess {
    /// Starts `berth serve --data-dir <data_dir> --addr 127.0.0.1:<free port>`
    /// and waits until it answers; see [`BerthProcess::serve_with`].
    pub async fn serve(data_dir: &Path, env_password: Option<&str>) -> Self {
        Self::serve_with(data_dir, env_password, Ipv4Addr::LOCALHOST, &[]).await
    }

    /// Starts `berth serve --data-dir <data_dir> --addr <ip>:<free port>
    /// <extra_args>` and waits until it answers on the loopback address.
    ///
    /// `env_password` is passed as `BERTH_ADMIN_PASSWORD`; the client logs in
    /// with the password berth wrote to the data directory if there is one,
    /// else with that one. berth's stderr goes to `<data_dir>.<port>.log`,
    /// next to the data directory (so make that a subdirectory of a
    /// temporary directory).
    pub async fn serve_with(
        data_dir: &Path,
        env_password: Option<&str>,
        ip: Ipv4Addr,
        extra_args: &[&str],
    ) -> Self {
        Self::serve_with_env(data_dir, env_password, ip, extra_args, &[]).await
    }

    /// Like [`BerthProcess::serve_with`], with `BERTH_*` variables (or any
    /// others) set in berth's environment, e.g. lockout limits.
    pub async fn serve_with_env(
        data_dir: &Path,
        env_password: Option<&str>,
        ip: Ipv4Addr,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let port = free_loopback_port();
        let listen = SocketAddr::from((ip, port));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let log_path = data_dir.with_extension(format!("{port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file for berth");
        let listen = listen.to_string();
        let mut args = vec![
            "serve",
            "--data-dir",
            data_dir.to_str().expect("UTF-8 data dir"),
            "--addr",
            &listen,
        ];
        args.extend_from_slice(extra_args);
        let mut command = berth_command(&args);
        if let Some(password) = env_password {
            command.env("BERTH_ADMIN_PASSWORD", password);
        }
        command.envs(env.iter().copied());
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("berth binary starts");
        let mut process = BerthProcess {
            child,
            // Replaced once berth has bootstrapped its admin.
            client: RegistryClient::new(format!("http://{addr}"), ADMIN_USER, ""),
            addr,
            log_path,
        };
        process.wait_until_healthy().await;
        let password_file = data_dir.join(berth::server::ADMIN_PASSWORD_FILE);
        let password = if password_file.exists() {
            read_admin_password_file(data_dir)
        } else {
            env_password
                .expect("berth wrote no admin password and none was given")
                .to_owned()
        };
        process.client = process.client.with_credentials(ADMIN_USER, &password);
        process
    }

    async fn wait_until_healthy(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!("berth exited with {status} while starting:\n{}", self.log());
            }
            let probe = self.client.anonymous().request(Method::GET, "/healthz");
            if let Ok(response) = probe.send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                started.elapsed() < STARTUP_TIMEOUT,
                "berth did not answer on {} within {STARTUP_TIMEOUT:?}:\n{}",
                self.addr,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn client(&self) -> &RegistryClient {
        &self.client
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

    /// What berth wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
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
    }
}
