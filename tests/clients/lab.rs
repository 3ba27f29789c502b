//! The harness of the real-client tests (`tests/clients.rs`,
//! `tests/clients_access.rs`, `tests/readme_tour.rs`, `tests/api_fuzz.rs`;
//! `tests/cli.rs` uses its [`run_piped`]): podman, buildah, skopeo, docker
//! and the `berth` CLI run with private storage, auth file and home
//! directory, so that nothing leaks between runs or from the machine's own
//! configuration, against the real `berth` binary, started as every test
//! starts it, through [`BerthProcess`] (`tests/common/process.rs`). Docker
//! gets a private engine of its own ([`DockerEngine`]).
//!
//! A test crate using it declares `mod common;` too.
//!
//! A missing client fails the test when `BERTH_REQUIRE_CLIENTS=1` (as in
//! CI) and is otherwise reported loudly as skipped ([`clients_present`]).

// Each test crate uses its own part of the harness.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{BerthProcess, ServeCommand, berth_command, kept_temp_dir};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Label given to the built images, checked after the trip through berth.
pub const LABEL_KEY: &str = "org.example.berth-interop";

// ---------------------------------------------------------------------------
// buildah builds an image from scratch.

pub struct BuiltImage {
    /// Name in local containers-storage.
    pub local: String,
    /// Image id (the config digest, hex) as buildah reported it.
    pub id: String,
    pub label: String,
    pub entrypoint: Vec<String>,
    /// Bytes of the files copied in, by path inside the image.
    pub files: Vec<(String, Vec<u8>)>,
}

pub fn build_image(
    lab: &Lab,
    context: &Path,
    name: &str,
    format: &str,
    files: Vec<(String, Vec<u8>)>,
) -> BuiltImage {
    let step = format!("1 buildah ({name})");
    let out = lab.ok(&step, "buildah", &["from", "scratch"]);
    let container = last_line(&out).to_owned();
    assert!(
        !container.is_empty(),
        "{step}: `buildah from scratch` printed no container name"
    );
    for (path, bytes) in &files {
        let source = context.join(format!("{name}-{}", path.replace('/', "_")));
        std::fs::write(&source, bytes).unwrap();
        lab.ok(
            &step,
            "buildah",
            &["copy", &container, source.to_str().unwrap(), path],
        );
    }
    let label = format!("{name}-{}", lab.nonce);
    let entrypoint = vec![format!("/bin/{name}"), "--serve".to_owned()];
    lab.ok(
        &step,
        "buildah",
        &[
            "config",
            "--entrypoint",
            &serde_json::to_string(&entrypoint).unwrap(),
            "--label",
            &format!("{LABEL_KEY}={label}"),
            "--env",
            &format!("IMAGE_NAME={name}"),
            &container,
        ],
    );
    let local = format!("localhost/berth-interop/{name}:v1");
    let out = lab.ok(
        &step,
        "buildah",
        &["commit", "--format", format, "--rm", &container, &local],
    );
    let id = last_line(&out).to_owned();
    assert!(
        is_hex64(&id),
        "{step}: `buildah commit` should print the image id, got {id:?}\n{}",
        out.describe()
    );

    // What buildah stored is what was asked for.
    let out = lab.ok(&step, "buildah", &["inspect", "--type", "image", &local]);
    let inspect = out.json(&step);
    assert_eq!(
        inspect["FromImageID"].as_str(),
        Some(id.as_str()),
        "{step}: buildah inspect FromImageID"
    );
    let config = &inspect["OCIv1"]["config"];
    assert_eq!(
        config["Labels"][LABEL_KEY].as_str(),
        Some(label.as_str()),
        "{step}: label in buildah inspect: {config}"
    );
    assert_eq!(
        config["Entrypoint"],
        json!(entrypoint),
        "{step}: entrypoint in buildah inspect"
    );
    let manifest: Value = serde_json::from_str(inspect["Manifest"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{step}: buildah inspect Manifest is not JSON: {e}"));
    let expected_config = if format == "oci" {
        OCI_CONFIG
    } else {
        DOCKER_CONFIG
    };
    // The image id is the config's digest.
    let config_digest = format!("sha256:{id}");
    let step = format!("{step} (--format {format})");
    assert_config(&manifest, expected_config, &config_digest, &step);
    BuiltImage {
        local,
        id,
        label,
        entrypoint,
        files,
    }
}

// ---------------------------------------------------------------------------
// Harness: tools, berth, running commands.

/// The tools among `tools` that do not answer `TOOL --version`.
/// The `manifest`'s config is of `media_type`, with `digest`.
pub fn assert_config(manifest: &Value, media_type: &str, digest: &str, step: &str) {
    assert_eq!(
        manifest["config"]["mediaType"].as_str(),
        Some(media_type),
        "{step}: config mediaType in {manifest}"
    );
    assert_eq!(
        manifest["config"]["digest"].as_str(),
        Some(digest),
        "{step}: config digest"
    );
}

pub fn missing_tools(tools: &[&str]) -> Vec<String> {
    tools
        .iter()
        .filter(|tool| {
            !Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(|tool| tool.to_string())
        .collect()
}

/// `true` when nothing is `missing`. Otherwise a failure when
/// `BERTH_REQUIRE_CLIENTS=1`, else a loud note that `test` was skipped and
/// `false`.
pub fn clients_present(test: &str, missing: &[String]) -> bool {
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{test}: missing {} (scripts/install-deps.sh installs them)",
        missing.join(", ")
    );
    if std::env::var("BERTH_REQUIRE_CLIENTS").is_ok_and(|v| v == "1") {
        panic!("{message}; BERTH_REQUIRE_CLIENTS=1, so this is a failure");
    }
    // Written to the real stderr, not through `eprintln!`, so that the test
    // harness does not swallow it when the (skipped) test passes.
    let mut note = String::from("\n");
    for tool in missing {
        note.push_str(&format!("!!!!!!!! SKIPPED: {tool} missing !!!!!!!!\n"));
    }
    note.push_str(&format!(
        "!!!!!!!! {message}: TEST SKIPPED, NOTHING WAS CHECKED \
         (set BERTH_REQUIRE_CLIENTS=1 to make this a failure) !!!!!!!!\n\n"
    ));
    let _ = std::io::stderr().write_all(note.as_bytes());
    false
}

/// Everything one run needs: a temporary directory, berth, and the client
/// environment.
pub struct Lab {
    // Drop order: the server is stopped before the directory is removed.
    pub berth: BerthProcess,
    /// `127.0.0.1:PORT`, as clients name the registry.
    pub host: String,
    /// `http://HOST` or `https://HOST`.
    pub url: String,
    /// The admin's password.
    pub password: String,
    /// Random text put into images and artifacts so that nothing from an
    /// earlier run can pass for this run's content.
    pub nonce: String,
    pub python: String,
    /// The containers auth file podman, buildah and skopeo use.
    pub auth_file: PathBuf,
    env: Vec<(String, OsString)>,
    /// Drives [`BerthProcess`] and the harness's own requests
    /// ([`Lab::http`]) from these synchronous tests.
    runtime: tokio::runtime::Runtime,
    tmp: tempfile::TempDir,
}

impl Lab {
    pub fn new(python: String) -> Lab {
        Lab::start(python, |serve| serve)
    }

    /// A lab whose berth is configured by `configure` (its environment and
    /// arguments, and [`ServeCommand::tls`] when it serves TLS).
    pub fn start(python: String, configure: impl FnOnce(ServeCommand) -> ServeCommand) -> Lab {
        Lab::start_inner(python, configure, false)
    }

    /// A lab whose berth trusts `upstream`'s certificate authority (to
    /// import or pull through from it), configured further by `configure`.
    pub fn trusting(
        upstream: &crate::common::ReferenceRegistry,
        configure: impl FnOnce(ServeCommand) -> ServeCommand,
    ) -> Lab {
        let ca = upstream.ca.ca_path.display().to_string();
        Lab::start("python3".into(), |serve| {
            configure(serve.env("BERTH_IMAGE_POLICY_ADDITIONAL_TRUSTED_CA", ca))
        })
    }

    /// berth as a newcomer starts it: no `BERTH_ADMIN_PASSWORD`, so berth
    /// makes up the admin's password and keeps it in
    /// `berth-data/admin-password` (read into [`Lab::password`]).
    pub fn with_generated_password(python: String) -> Lab {
        Lab::start_inner(python, |serve| serve, true)
    }

    fn start_inner(
        python: String,
        configure: impl FnOnce(ServeCommand) -> ServeCommand,
        generated_admin_password: bool,
    ) -> Lab {
        // BERTH_KEEP_CLIENTS_DIR=1 keeps the directory (berth's data and log,
        // the clients' storage) for a look afterwards.
        let tmp = kept_temp_dir("berth-clients-", "BERTH_KEEP_CLIENTS_DIR");
        let root = tmp.path().to_owned();
        for dir in [
            "home",
            "runtime",
            "storage/graph",
            "storage/run",
            "tmp",
            "berth-data",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root.join("runtime"), std::fs::Permissions::from_mode(0o700))
                .unwrap();
        }
        let storage_conf = root.join("storage.conf");
        std::fs::write(
            &storage_conf,
            format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
                root.join("storage/run").display(),
                root.join("storage/graph").display()
            ),
        )
        .unwrap();
        let containers_conf = root.join("containers.conf");
        std::fs::write(
            &containers_conf,
            format!(
                "[engine]\nevents_logger = \"file\"\nevents_logfile_path = \"{}\"\n\
                 cgroup_manager = \"cgroupfs\"\n",
                root.join("events.log").display()
            ),
        )
        .unwrap();
        let auth_file = root.join("auth.json");
        std::fs::write(&auth_file, "{}").unwrap();

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut serve = BerthProcess::serve(&root.join("berth-data"))
            .env("RUST_LOG", "info,berth=debug")
            .env("NO_COLOR", "1");
        if !generated_admin_password {
            serve = serve.admin_password(&format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ));
        }
        let berth = runtime.block_on(configure(serve).start());
        let host = berth.addr.to_string();
        let url = berth.url().to_owned();
        // The one berth chose, or wrote to `berth-data/admin-password`.
        let password = berth.password().expect("the admin's password").to_owned();

        let env: Vec<(String, OsString)> = vec![
            ("CONTAINERS_STORAGE_CONF".into(), storage_conf.into()),
            ("CONTAINERS_CONF".into(), containers_conf.into()),
            ("REGISTRY_AUTH_FILE".into(), auth_file.clone().into()),
            ("HOME".into(), root.join("home").into()),
            ("XDG_RUNTIME_DIR".into(), root.join("runtime").into()),
            ("XDG_CONFIG_HOME".into(), root.join("home/.config").into()),
            (
                "XDG_DATA_HOME".into(),
                root.join("home/.local/share").into(),
            ),
            ("XDG_CACHE_HOME".into(), root.join("home/.cache").into()),
            ("TMPDIR".into(), root.join("tmp").into()),
            ("DOCKER_CONFIG".into(), root.join("home/.docker").into()),
            // oras-py tries a Docker daemon for `login` first; there is none.
            (
                "DOCKER_HOST".into(),
                format!("unix://{}", root.join("no-docker.sock").display()).into(),
            ),
            ("BUILDAH_ISOLATION".into(), "chroot".into()),
            ("LC_ALL".into(), "C".into()),
        ];
        Lab {
            berth,
            host,
            url,
            password,
            nonce: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            python,
            auth_file,
            env,
            runtime,
            tmp,
        }
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn mkdir(&self, name: &str) -> PathBuf {
        let path = self.dir().join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Waits until berth answers `/readyz`; fails with its log if it has
    /// exited or does not answer within a minute.
    pub fn wait_ready(&mut self) {
        self.runtime.block_on(self.berth.wait_until_ready());
    }

    /// `program` (`berth` is the binary under test) with the lab's
    /// environment, then `extra_env` over it.
    pub fn command(&self, program: &str, args: &[&str], extra_env: &[(&str, &OsStr)]) -> Command {
        let mut command = if program == "berth" {
            berth_command(args)
        } else {
            let mut command = Command::new(program);
            command.args(args);
            command
        };
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command.envs(extra_env.iter().copied());
        command.current_dir(self.dir());
        command
    }

    pub fn run(&self, program: &str, args: &[&str]) -> Ran {
        self.run_inner(program, args, None, &[])
    }

    pub fn run_with_stdin(&self, program: &str, args: &[&str], stdin: &str) -> Ran {
        self.run_inner(program, args, Some(stdin), &[])
    }

    /// Runs with `extra_env` over the lab's environment.
    pub fn run_env(&self, program: &str, args: &[&str], extra_env: &[(&str, &OsStr)]) -> Ran {
        self.run_inner(program, args, None, extra_env)
    }

    pub fn run_inner(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&str>,
        extra_env: &[(&str, &OsStr)],
    ) -> Ran {
        let started = Instant::now();
        let output = run_piped(self.command(program, args, extra_env), stdin);
        let shown: Vec<String> = std::iter::once(program.to_owned())
            .chain(args.iter().map(|a| a.replace(&self.password, "<password>")))
            .collect();
        Ran {
            command: shown.join(" "),
            output,
            elapsed: started.elapsed(),
        }
    }

    /// Runs and asserts success.
    pub fn ok(&self, step: &str, program: &str, args: &[&str]) -> Ran {
        let ran = self.run(program, args);
        ran.expect_success(step);
        ran
    }

    /// Runs `tests/clients/oras_client.py` as the admin on `jobs` (its
    /// `artifact`, `attach`, `token_flow`… entries; the connection and the
    /// work directory `oras/` are filled in) and returns what it printed.
    pub fn run_oras(&self, step: &str, jobs: Value) -> Value {
        let work = self.mkdir("oras");
        let Value::Object(jobs) = jobs else {
            panic!("{step}: the oras jobs must be a JSON object");
        };
        let mut job = serde_json::json!({
            "host": self.host,
            "username": "admin",
            "password": self.password,
            "config_path": work.join("docker-config.json"),
            "workdir": work,
        });
        if let Some(job) = job.as_object_mut() {
            job.extend(jobs);
        }
        let job_file = self.write("oras/job.json", job.to_string().as_bytes());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/oras_client.py");
        let script = script.to_str().unwrap();
        let job_file = job_file.to_str().unwrap();
        self.ok(step, &self.python, &[script, job_file]).json(step)
    }

    /// `admin:PASSWORD`, for a client's `--creds`.
    pub fn admin_creds(&self) -> String {
        format!("admin:{}", self.password)
    }

    /// `berth login` to the lab's berth as the admin.
    pub fn berth_login_as_admin(&self) {
        self.run_with_stdin(
            "berth",
            &["login", &self.host, "-u", "admin", "--password-stdin"],
            &format!("{}\n", self.password),
        )
        .expect_success("berth login");
    }

    /// `berth ARGS` with `env` over the lab's environment; must succeed.
    pub fn berth_env(&self, args: &[&str], env: &[(&str, &OsStr)]) -> Ran {
        let ran = self.run_env("berth", args, env);
        ran.expect_success(&format!("berth {}", args.join(" ")));
        ran
    }

    /// A service account `ns/name` and a fresh token for it (made with
    /// `berth` run with `env`), as podman's `user:token` credentials (any
    /// user name goes with a token).
    pub fn service_account_creds(&self, ns: &str, name: &str, env: &[(&str, &OsStr)]) -> String {
        let created = self.berth_env(&["create", "sa", name, "-n", ns], env);
        assert!(
            created
                .stdout()
                .contains(&format!("serviceaccount/{name} created")),
            "{}",
            created.describe()
        );
        let made = self.berth_env(&["create", "token", &format!("sa/{name}"), "-n", ns], env);
        let token = last_line(&made).to_owned();
        assert!(token.starts_with("berth_"), "token {token:?}");
        format!("{name}:{token}")
    }

    /// `podman push` of the local image `local` to `reference`
    /// (`HOST/NAME:TAG`) as the admin; the manifest digest podman reports.
    pub fn podman_push_as_admin(&self, step: &str, local: &str, reference: &str) -> String {
        let digest_file = self
            .dir()
            .join(format!("{}.digest", uuid::Uuid::new_v4().simple()));
        self.ok(
            step,
            "podman",
            &[
                "push",
                "--tls-verify=false",
                "--creds",
                &self.admin_creds(),
                "--digestfile",
                digest_file.to_str().expect("a UTF-8 path"),
                local,
                &format!("docker://{reference}"),
            ],
        );
        read_digest_file(step, &digest_file)
    }

    /// One HTTP request to berth, with or without admin credentials.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        auth: bool,
        headers: &[(&str, &str)],
    ) -> HttpReply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let client = if auth {
            self.berth.client().clone()
        } else {
            self.berth.anonymous()
        };
        let mut request = client.request(method, path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.runtime.block_on(async {
            let response = request
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            let body = response.bytes().await.unwrap().to_vec();
            HttpReply {
                status,
                headers,
                body,
            }
        })
    }
}

pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The OCI error codes of the body (`{"errors":[{"code":…}]}`); empty
    /// if it is not such a body.
    pub fn error_codes(&self) -> Vec<String> {
        let body: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["code"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The reply is `status` with an OCI error body whose code is `code`.
    #[track_caller]
    pub fn assert_error(&self, step: &str, status: u16, code: &str) {
        assert_eq!(self.status, status, "{step}: {self:?}");
        assert_eq!(self.error_codes(), [code], "{step}: {self:?}");
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Debug for HttpReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HTTP {} {:?} {}",
            self.status,
            self.headers,
            String::from_utf8_lossy(&self.body[..self.body.len().min(2000)])
        )
    }
}

/// A finished client command.
pub struct Ran {
    pub command: String,
    pub output: Output,
    elapsed: Duration,
}

impl std::ops::Deref for Ran {
    type Target = Output;
    fn deref(&self) -> &Output {
        &self.output
    }
}

impl Ran {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn describe(&self) -> String {
        format!(
            "$ {}\n  ({}, {:.1}s)\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.output.status,
            self.elapsed.as_secs_f64(),
            truncate(&self.stdout(), 6000),
            truncate(&self.stderr(), 6000)
        )
    }

    pub fn expect_success(&self, step: &str) {
        if !self.output.status.success() {
            panic!("{step}: command failed\n{}", self.describe());
        }
    }

    pub fn expect_failure(&self, step: &str) {
        if self.output.status.success() {
            panic!(
                "{step}: command should have failed but succeeded\n{}",
                self.describe()
            );
        }
    }

    /// The command's stderr names one of `needles` (case-insensitive).
    pub fn expect_stderr_any(&self, step: &str, needles: &[&str]) {
        let stderr = self.stderr().to_lowercase();
        if !needles.iter().any(|n| stderr.contains(&n.to_lowercase())) {
            panic!(
                "{step}: expected stderr to mention one of {needles:?}\n{}",
                self.describe()
            );
        }
    }

    pub fn json(&self, step: &str) -> Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("{step}: output is not JSON ({e})\n{}", self.describe()))
    }
}

/// Runs `command` to its end, with `stdin` (else nothing) as its input,
/// collecting its output.
pub fn run_piped(mut command: Command, stdin: Option<&str>) -> Output {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("starting {:?}: {e}", command.get_program()));
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// The digest podman wrote with `--digestfile PATH`.
pub fn read_digest_file(step: &str, path: &Path) -> String {
    let digest = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{step}: reading --digestfile: {e}"))
        .trim()
        .to_owned();
    assert!(
        digest.starts_with("sha256:") && is_hex64(&digest[7..]),
        "{step}: pushed digest {digest:?}"
    );
    digest
}

pub fn last_line(ran: &Ran) -> &str {
    out_lines(ran).last().copied().unwrap_or_default()
}

pub fn out_lines(ran: &Ran) -> Vec<&str> {
    std::str::from_utf8(&ran.output.stdout)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

pub fn is_hex64(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    format!("sha256:{}", hex::encode(digest.as_ref()))
}

pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = text.len() - max;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    format!("[… {cut} bytes cut …]{}", &text[cut..])
}

// ---------------------------------------------------------------------------
// A private Docker engine.

/// How long a starting `dockerd` may take to answer.
const DOCKER_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping `dockerd` may take before it is killed.
const DOCKER_STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// `dockerd` (Debian's `docker.io`) run for one test: its own data, exec
/// root, pid file and socket under the lab directory, no networking
/// (`--bridge=none`, no iptables), the `vfs` storage driver, and berth's
/// plain-HTTP loopback address as an insecure registry. Stopped (SIGTERM,
/// then SIGKILL) when dropped, so drop it before its directory goes.
pub struct DockerEngine {
    child: Child,
    /// `unix:///…/docker.sock`, for `DOCKER_HOST`.
    pub host: String,
    pub log: PathBuf,
}

impl DockerEngine {
    /// Starts `dockerd` under `root` (created) trusting `registry` over
    /// plain HTTP, and waits until it answers `docker version`. `Err` with
    /// its log if it exits or does not answer in time.
    pub fn start(lab: &Lab, root: &Path, registry: &str) -> Result<DockerEngine, String> {
        for dir in ["data", "exec"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let socket = root.join("docker.sock");
        let host = format!("unix://{}", socket.display());
        let log = root.join("dockerd.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .args(["-H", &host])
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .args(["--storage-driver=vfs", "--insecure-registry", registry])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("starting dockerd: {e}"))?;
        let mut engine = DockerEngine { child, host, log };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = engine.child.try_wait() {
                return Err(format!(
                    "dockerd exited during start-up ({status}):\n{}",
                    engine.log_tail()
                ));
            }
            let ran = lab.run_env("docker", &["version"], &engine.env());
            if ran.status.success() {
                return Ok(engine);
            }
            if started.elapsed() > DOCKER_START_TIMEOUT {
                return Err(format!(
                    "dockerd did not answer within {DOCKER_START_TIMEOUT:?}:\n{}\n{}",
                    ran.describe(),
                    engine.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The environment that points the `docker` client at this engine.
    pub fn env(&self) -> Vec<(&'static str, &OsStr)> {
        vec![
            ("DOCKER_HOST", OsStr::new(&self.host)),
            // The classic builder: it needs nothing beyond the engine (no
            // buildx plugin, no network), whichever client is installed.
            ("DOCKER_BUILDKIT", OsStr::new("0")),
        ]
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGTERM, so that dockerd stops its containerd too; SIGKILL if it
    /// takes longer than [`DOCKER_STOP_TIMEOUT`]. Returns how it ended.
    pub fn stop(&mut self) -> String {
        if let Ok(Some(status)) = self.child.try_wait() {
            return format!("had exited ({status})");
        }
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: signalling our own child process, which is not reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + DOCKER_STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!("stopped ({status})");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        format!("killed after {DOCKER_STOP_TIMEOUT:?}")
    }
}

impl Drop for DockerEngine {
    fn drop(&mut self) {
        let ended = self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- dockerd {ended}; its log ({}), last lines ---\n{}",
                self.log.display(),
                self.log_tail()
            );
        }
    }
}
