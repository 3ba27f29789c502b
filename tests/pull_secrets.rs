//! Pull secrets end to end, on the real `berth` binary over a socket, on
//! the embedded database and on PostgreSQL: the CLI creates them from a
//! user name and password and from an auth.json (both its forms, several
//! servers), lists and deletes them, and `secrets link` is accepted; the
//! API answers each role as the rules say; bad auth.json files are refused
//! with a clear message and store nothing; a wrong key gives a clear error,
//! and a rotation re-encrypts. Throughout, every answer, every line the
//! CLI prints and every line berth logs (at debug level) is searched for
//! the passwords, and the database (its rows and, for SQLite, its files)
//! is shown not to hold them.
//!
//! Run alone: `cargo test --test pull_secrets -- --nocapture`.

mod common;
#[path = "clients/lab.rs"]
mod lab;

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use berth::domain::secrets::SecretKey;
use common::{BerthProcess, PgDatabase, RegistryClient, berth_command};

/// The upstream passwords: none may appear anywhere but in the requests
/// that carry them.
const PASSWORD: &str = "Upstream-Pw-7f3a9c-d0n0tl0g";
const FILE_PASSWORD: &str = "File-Pw-91be44-d0n0tl0g";
const TOKEN_PASSWORD: &str = "Auth-Pw-5c0ffee-d0n0tl0g";
const ADMIN_PASSWORD: &str = "admin-pw-for-the-secrets-test";

/// Everything a test saw, to be searched for the passwords at the end.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn add(&mut self, what: &str, text: impl Into<String>) {
        self.0.push((what.to_owned(), text.into()));
    }

    /// No password, nor an `auth` string holding one, in anything seen.
    #[track_caller]
    fn holds_no_credential(&self) {
        let forbidden = forbidden_strings();
        // The search finds what it looks for: both forms are in the file.
        let file = auth_json();
        assert!(file.contains(&forbidden[1]) && file.contains(&forbidden[5]));
        // berth logged at debug level, so there was much to search.
        assert!(
            self.0
                .iter()
                .any(|(what, text)| what.contains("log") && text.contains(" DEBUG ")),
            "no debug lines in berth's log"
        );
        for (what, text) in &self.0 {
            for needle in &forbidden {
                assert!(
                    !text.contains(needle.as_str()),
                    "{what} holds a credential ({needle}):\n{text}"
                );
            }
        }
    }
}

fn forbidden_strings() -> Vec<String> {
    let mut out = vec![
        PASSWORD.to_owned(),
        FILE_PASSWORD.to_owned(),
        TOKEN_PASSWORD.to_owned(),
    ];
    for (user, password) in [
        ("youruser", PASSWORD),
        ("fileuser", FILE_PASSWORD),
        ("tokenuser", TOKEN_PASSWORD),
    ] {
        let auth = STANDARD.encode(format!("{user}:{password}"));
        out.push(auth.trim_end_matches('=').to_owned());
    }
    out
}

/// An auth.json with both forms of entry and several servers.
fn auth_json() -> String {
    json!({
        "auths": {
            "registry.example.com/team": {"username": "fileuser", "password": FILE_PASSWORD},
            "quay.io": {"auth": STANDARD.encode(format!("tokenuser:{TOKEN_PASSWORD}")), "email": "t@example.org"},
        }
    })
    .to_string()
}

/// The CLI, with a private home, configuration and auth file.
struct Cli {
    home: PathBuf,
}

impl Cli {
    fn new(root: &Path) -> Cli {
        let home = root.join("home");
        std::fs::create_dir_all(&home).unwrap();
        Cli { home }
    }

    fn run(&self, seen: &mut Seen, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = berth_command(args);
        command
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("REGISTRY_AUTH_FILE", self.home.join("auth.json"))
            .env_remove("XDG_RUNTIME_DIR")
            .current_dir(&self.home);
        let output = lab::run_piped(command, stdin);
        let line = format!("berth {}", args.join(" "));
        seen.add(
            &format!("stdout of {line}"),
            String::from_utf8_lossy(&output.stdout),
        );
        seen.add(
            &format!("stderr of {line}"),
            String::from_utf8_lossy(&output.stderr),
        );
        output
    }

    #[track_caller]
    fn ok(&self, seen: &mut Seen, args: &[&str]) -> String {
        let output = self.run(seen, args, None);
        assert!(
            output.status.success(),
            "berth {}: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Fails; returns its stderr.
    #[track_caller]
    fn fails(&self, seen: &mut Seen, args: &[&str]) -> String {
        let output = self.run(seen, args, None);
        assert!(
            !output.status.success(),
            "berth {} succeeded: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

async fn api(
    seen: &mut Seen,
    client: &RegistryClient,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> common::Answer {
    let answer = client.api_call(method.clone(), path, body).await;
    seen.add(
        &format!("answer to {method} {path}"),
        answer.body.to_string(),
    );
    answer
}

/// The secrets of the project `team`, and the one made from an auth.json.
const TEAM_SECRETS: &str = "/api/v1/namespaces/team/secrets";
const REGTOKEN: &str = "/api/v1/namespaces/team/secrets/regtoken";

/// [`api`] `GET path`.
async fn seen_get(seen: &mut Seen, client: &RegistryClient, path: &str) -> common::Answer {
    api(seen, client, reqwest::Method::GET, path, None).await
}

fn engine_env(database: Option<&PgDatabase>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("RUST_LOG", "debug".to_owned()),
        ("NO_COLOR", "1".to_owned()),
    ];
    if let Some(db) = database {
        env.push(("BERTH_DATABASE_URL", db.url.clone()));
    }
    env
}

async fn start(data_dir: &Path, env: &[(&str, String)]) -> BerthProcess {
    let mut serve = BerthProcess::serve(data_dir).admin_password(ADMIN_PASSWORD);
    for (name, value) in env {
        serve = serve.env(name, value.clone());
    }
    serve.start().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_secrets_on_the_embedded_database() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("berth-data");
    let env = engine_env(None);
    let mut seen = Seen::default();
    let mut berth = start(&data_dir, &env).await;
    exercise(&berth, tmp.path(), &mut seen).await;

    // The key was made on the first start, readable by berth's user only.
    let key_file = data_dir.join("secrets.key");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let first_key = std::fs::read_to_string(&key_file).unwrap();
    let first_id = SecretKey::parse(&first_key).unwrap().id().to_owned();

    // At rest: the rows, and every byte of the database's files.
    berth.terminate();
    berth
        .wait_exit(std::time::Duration::from_secs(30))
        .await
        .expect("berth stops");
    let rows = sqlite_rows(&data_dir).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, first_id);
    for file in ["berth.db", "berth.db-wal"] {
        let path = data_dir.join(file);
        if let Ok(bytes) = std::fs::read(&path) {
            for needle in forbidden_strings() {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{} holds {needle}",
                    path.display()
                );
            }
        }
    }

    // A wrong key (the key file replaced): a clear error, not garbage.
    let (_, wrong_key) = SecretKey::generate().unwrap();
    std::fs::write(&key_file, format!("{wrong_key}\n")).unwrap();
    let berth = start(&data_dir, &env).await;
    let answer = seen_get(&mut seen, &berth, REGTOKEN).await;
    answer.failure(409, "Conflict");
    let message = answer.body["message"].as_str().unwrap();
    assert!(
        message.contains("secret \"team/regtoken\" cannot be decrypted")
            && message.contains(&first_id)
            && message.contains("not one of this server's keys"),
        "{message}"
    );
    // Listing needs no key.
    let list = seen_get(&mut seen, &berth, TEAM_SECRETS).await;
    assert_eq!(list.ok(200)["items"][0]["metadata"]["name"], "regtoken");
    let log = berth.log();
    assert!(
        log.contains("a pull secret cannot be re-encrypted") && log.contains("team/regtoken"),
        "{log}"
    );
    seen.add("berth's log with a wrong key", log);
    drop(berth);

    // The rotation: the new key current, the old one previous. The start
    // re-encrypts; then the old key is no longer needed.
    let (_, new_key) = SecretKey::generate().unwrap();
    let new_id = SecretKey::parse(&new_key).unwrap().id().to_owned();
    std::fs::remove_file(&key_file).unwrap();
    let mut rotated_env = env.clone();
    rotated_env.push(("BERTH_SECRETS_ENCRYPTION_KEY", new_key.clone()));
    rotated_env.push(("BERTH_SECRETS_PREVIOUS_KEYS", first_key.trim().to_owned()));
    let berth = start(&data_dir, &rotated_env).await;
    let answer = seen_get(&mut seen, &berth, REGTOKEN).await;
    assert_eq!(answer.ok(200)["registries"][0]["server"], "quay.io");
    let log = berth.log();
    assert!(
        log.contains("re-encrypted pull secrets under the current key"),
        "{log}"
    );
    seen.add("berth's log of the rotation", log);
    drop(berth);
    let rows = sqlite_rows(&data_dir).await;
    assert_eq!(rows[0].1, new_id);
    let mut new_only = env.clone();
    new_only.push(("BERTH_SECRETS_ENCRYPTION_KEY", new_key));
    let berth = start(&data_dir, &new_only).await;
    let answer = seen_get(&mut seen, &berth, REGTOKEN).await;
    answer.ok(200);
    seen.add("berth's last log", berth.log());
    drop(berth);

    seen.holds_no_credential();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_secrets_on_postgres_with_two_replicas() {
    let Some(database) = PgDatabase::create().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (_, key) = SecretKey::generate().unwrap();
    let mut env = engine_env(Some(&database));
    env.push(("BERTH_SECRETS_ENCRYPTION_KEY", key.clone()));
    let mut seen = Seen::default();
    let first = start(&tmp.path().join("replica-1"), &env).await;
    exercise(&first, tmp.path(), &mut seen).await;

    // Another replica with the same key reads what the first wrote.
    let second = start(&tmp.path().join("replica-2"), &env).await;
    let answer = seen_get(&mut seen, &second, REGTOKEN).await;
    let servers: Vec<&str> = answer.ok(200)["registries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["server"].as_str().unwrap())
        .collect();
    assert_eq!(servers, ["quay.io", "registry.example.com/team"]);

    // A replica given another key says so, naming the key it lacks.
    let mut stranger_env = engine_env(Some(&database));
    let (_, other) = SecretKey::generate().unwrap();
    stranger_env.push(("BERTH_SECRETS_ENCRYPTION_KEY", other));
    let stranger = start(&tmp.path().join("replica-3"), &stranger_env).await;
    let answer = seen_get(&mut seen, &stranger, REGTOKEN).await;
    answer.failure(409, "Conflict");
    let id = SecretKey::parse(&key).unwrap().id().to_owned();
    assert!(
        answer.body["message"].as_str().unwrap().contains(&id),
        "{}",
        answer.body
    );

    // At rest: the row holds no credential.
    use sqlx::{Connection as _, Row as _};
    let mut connection = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let rows =
        sqlx::query("SELECT name, secret_type, registries, key_id, sealed FROM pull_secrets")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    for row in &rows {
        let sealed: Vec<u8> = row.try_get("sealed").unwrap();
        let registries: String = row.try_get("registries").unwrap();
        assert_eq!(row.try_get::<String, _>("key_id").unwrap(), id);
        seen.add("the row's registries", registries);
        seen.add("the row's sealed bytes", String::from_utf8_lossy(&sealed));
    }
    let _ = connection.close().await;
    for (name, process) in [("first", &first), ("second", &second), ("third", &stranger)] {
        seen.add(&format!("the {name} replica's log"), process.log());
    }
    seen.holds_no_credential();
}

/// `(name, key_id)` of every pull secret in a stopped berth's database.
async fn sqlite_rows(data_dir: &Path) -> Vec<(String, String)> {
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=ro",
        data_dir.join("berth.db").display()
    ))
    .await
    .unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, key_id FROM pull_secrets ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows
}

/// The story on one berth: leaves one secret, `team/regtoken`, made from
/// an auth.json with two servers.
async fn exercise(berth: &BerthProcess, root: &Path, seen: &mut Seen) {
    use reqwest::Method;
    let admin = berth.client();
    admin.create_project("team").await;
    admin.create_project("other").await;
    admin.create_service_account("team", "default").await;
    admin.create_service_account("team", "builder").await;
    for (user, role) in [
        ("viewer", "registry-viewer"),
        ("editor", "registry-editor"),
        ("puller", "system:image-puller"),
        ("projadmin", "registry-admin"),
    ] {
        admin
            .create_user(user, Some(&format!("{user}-pw")), false)
            .await;
        admin
            .bind(Some("team"), role, &json!({"kind": "User", "name": user}))
            .await;
    }

    let cli = Cli::new(root);
    let login = cli.run(
        seen,
        &[
            "login",
            &berth.addr.to_string(),
            "-u",
            "admin",
            "--password-stdin",
        ],
        Some(&format!("{ADMIN_PASSWORD}\n")),
    );
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );

    // docker-registry, as in the seeds.
    let out = cli.ok(
        seen,
        &[
            "create",
            "secret",
            "docker-registry",
            "regcreds",
            "--docker-server",
            "registry.example.com",
            "--docker-username",
            "youruser",
            "--docker-password",
            PASSWORD,
            "--docker-email",
            "you@example.org",
            "-n",
            "team",
        ],
    );
    assert_eq!(out.trim(), "secret/regcreds created");
    // From an auth.json with two servers, in both forms of entry.
    let auth_file = root.join("auth.json");
    std::fs::write(&auth_file, auth_json()).unwrap();
    let from_file = format!(".dockerconfigjson={}", auth_file.display());
    let out = cli.ok(
        seen,
        &[
            "create",
            "secret",
            "generic",
            "regtoken",
            "--from-file",
            &from_file,
            "--type",
            "kubernetes.io/dockerconfigjson",
            "-n",
            "team",
        ],
    );
    assert_eq!(out.trim(), "secret/regtoken created");
    let taken = cli.fails(
        seen,
        &[
            "create",
            "secret",
            "generic",
            "regtoken",
            "--from-file",
            &from_file,
            "-n",
            "team",
        ],
    );
    assert!(taken.contains("AlreadyExists"), "{taken}");

    // Bad auth.json files: a clear error, nothing stored.
    let bad_cases = [
        (
            "not-json.json",
            format!("{{\"auths\": {{\"quay.io\": {{\"password\": \"{PASSWORD}"),
        ),
        ("empty.json", "{\"auths\": {}}".to_owned()),
        (
            "no-auths.json",
            format!(
                "{{\"quay.io\": {{\"auth\": \"{}\"}}}}",
                STANDARD.encode(format!("youruser:{PASSWORD}"))
            ),
        ),
        (
            "half.json",
            format!("{{\"auths\": {{\"quay.io\": {{\"password\": \"{PASSWORD}\"}}}}}}"),
        ),
        (
            "bad-auth.json",
            format!("{{\"auths\": {{\"quay.io\": {{\"auth\": \"{PASSWORD}\"}}}}}}"),
        ),
        (
            "bad-server.json",
            format!(
                "{{\"auths\": {{\"not a server\": {{\"username\": \"u\", \"password\": \"{PASSWORD}\"}}}}}}"
            ),
        ),
    ];
    for (file, text) in &bad_cases {
        let path = root.join(file);
        std::fs::write(&path, text).unwrap();
        let error = cli.fails(
            seen,
            &[
                "create",
                "secret",
                "generic",
                "bad",
                "--from-file",
                &format!(".dockerconfigjson={}", path.display()),
                "--type",
                "kubernetes.io/dockerconfigjson",
                "-n",
                "team",
            ],
        );
        assert!(
            error.contains("Error from server (Invalid)"),
            "{file}: {error}"
        );
    }
    let wrong_type = cli.fails(
        seen,
        &[
            "create",
            "secret",
            "generic",
            "bad",
            "--from-file",
            &from_file,
            "--type",
            "Opaque",
            "-n",
            "team",
        ],
    );
    assert!(wrong_type.contains("pull secrets only"), "{wrong_type}");
    let wrong_key = cli.fails(
        seen,
        &[
            "create",
            "secret",
            "generic",
            "bad",
            "--from-file",
            &format!("config.json={}", auth_file.display()),
            "-n",
            "team",
        ],
    );
    assert!(wrong_key.contains(".dockerconfigjson"), "{wrong_key}");
    let missing = cli.fails(seen, &["get", "secret", "bad", "-n", "team"]);
    assert!(missing.contains("NotFound"), "{missing}");

    // Listing, as oc shows it, and -o json with the servers and users.
    let table = cli.ok(seen, &["get", "secrets", "-n", "team"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "TYPE", "DATA", "AGE"], "{table}");
    assert_eq!(
        &rows[1][..3],
        ["regcreds", "kubernetes.io/dockerconfigjson", "1"],
        "{table}"
    );
    assert_eq!(rows[2][0], "regtoken", "{table}");
    let names = cli.ok(seen, &["get", "secrets", "-n", "team", "-o", "name"]);
    assert_eq!(names, "secret/regcreds\nsecret/regtoken\n");
    let wide = cli.ok(seen, &["get", "secrets", "-n", "team", "-o", "wide"]);
    assert!(wide.contains("registry.example.com (youruser)"), "{wide}");
    assert!(
        wide.contains("quay.io (tokenuser), registry.example.com/team (fileuser)"),
        "{wide}"
    );
    let listed: Value =
        serde_json::from_str(&cli.ok(seen, &["get", "secrets", "-n", "team", "-o", "json"]))
            .unwrap();
    assert_eq!(listed["kind"], "SecretList");
    assert_eq!(
        listed["items"][0]["registries"],
        json!([{"server": "registry.example.com", "username": "youruser", "email": "you@example.org"}])
    );
    let one = cli.ok(
        seen,
        &["get", "secret", "regtoken", "-n", "team", "-o", "yaml"],
    );
    assert!(
        one.contains("type: kubernetes.io/dockerconfigjson") && one.contains("server: quay.io"),
        "{one}"
    );
    assert!(!one.contains("password") && !one.contains("auth:"), "{one}");

    // secrets link is accepted, and checks what it names.
    cli.ok(
        seen,
        &[
            "secrets",
            "link",
            "default",
            "regcreds",
            "--for=pull",
            "-n",
            "team",
        ],
    );
    cli.ok(
        seen,
        &["secrets", "link", "builder", "regcreds", "-n", "team"],
    );
    // OpenShift's own service accounts need not exist here.
    cli.ok(
        seen,
        &[
            "secrets", "link", "deployer", "regcreds", "regtoken", "-n", "team",
        ],
    );
    let error = cli.fails(
        seen,
        &["secrets", "link", "default", "nosuch", "-n", "team"],
    );
    assert!(error.contains("NotFound"), "{error}");
    let error = cli.fails(
        seen,
        &["secrets", "link", "nobody", "regcreds", "-n", "team"],
    );
    assert!(error.contains("NotFound"), "{error}");
    let error = cli.fails(
        seen,
        &[
            "secrets",
            "link",
            "default",
            "regcreds",
            "--for=push",
            "-n",
            "team",
        ],
    );
    assert!(error.contains("--for"), "{error}");

    // The API, as each role sees it.
    let base = TEAM_SECRETS;
    let as_user = |user: &str| berth.with_credentials(user, &format!("{user}-pw"));
    for viewer in ["viewer", "editor"] {
        let client = as_user(viewer);
        let list = api(seen, &client, Method::GET, base, None).await;
        let items = list.ok(200)["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 2);
        assert!(
            items.iter().all(|i| i.get("registries").is_none()),
            "{items:?}"
        );
        let one = api(
            seen,
            &client,
            Method::GET,
            &format!("{base}/regcreds"),
            None,
        )
        .await;
        assert!(one.ok(200).get("registries").is_none(), "{}", one.body);
        api(seen, &client, Method::POST, base, Some(secret_body("mine")))
            .await
            .failure(403, "Forbidden");
        api(
            seen,
            &client,
            Method::DELETE,
            &format!("{base}/regcreds"),
            None,
        )
        .await
        .failure(403, "Forbidden");
    }
    let puller = as_user("puller");
    api(seen, &puller, Method::GET, base, None)
        .await
        .failure(403, "Forbidden");
    api(
        seen,
        &puller,
        Method::GET,
        &format!("{base}/regcreds"),
        None,
    )
    .await
    .failure(403, "Forbidden");
    // No role in the project: it does not exist for them.
    api(
        seen,
        &puller,
        Method::GET,
        "/api/v1/namespaces/other/secrets",
        None,
    )
    .await
    .failure(404, "NotFound");
    let projadmin = as_user("projadmin");
    let one = api(
        seen,
        &projadmin,
        Method::GET,
        &format!("{base}/regcreds"),
        None,
    )
    .await;
    assert_eq!(one.ok(200)["registries"][0]["username"], "youruser");
    let made = api(
        seen,
        &projadmin,
        Method::POST,
        base,
        Some(secret_body("byadmin")),
    )
    .await;
    assert_eq!(made.ok(201)["metadata"]["name"], "byadmin");
    assert_eq!(made.body["registries"][0]["server"], "registry.example.com");
    api(
        seen,
        &projadmin,
        Method::DELETE,
        &format!("{base}/byadmin"),
        None,
    )
    .await
    .success();

    // Bad bodies over the API: clear 4xx, nothing stored, nothing quoted.
    let bad_bodies = [
        (json!({"metadata": {"name": "x"}}), 422, "Invalid"),
        (
            json!({"metadata": {"name": "x"}, "data": PASSWORD}),
            422,
            "Invalid",
        ),
        (
            json!({"metadata": {"name": "x"}, "data": {".dockerconfigjson": PASSWORD}}),
            422,
            "Invalid",
        ),
        (
            json!({"metadata": {"name": "x"}, "data": {"other": PASSWORD}}),
            422,
            "Invalid",
        ),
        (
            json!({"metadata": {"name": "x"}, "stringData": {".dockerconfigjson": PASSWORD}}),
            422,
            "Invalid",
        ),
        (
            json!({"metadata": {"name": "x"}, "stringData": {".dockerconfigjson": 5}}),
            422,
            "Invalid",
        ),
        (
            json!({"metadata": {"name": "x"}, "type": "Opaque", "stringData": {".dockerconfigjson": auth_json()}}),
            422,
            "Invalid",
        ),
        (
            json!({"metadata": {"name": "Bad Name"}, "stringData": {".dockerconfigjson": auth_json()}}),
            422,
            "Invalid",
        ),
        (
            json!({"metadata": {"name": "x"}, "data": {".dockerconfigjson": STANDARD.encode(auth_json())}, "stringData": {".dockerconfigjson": auth_json()}}),
            422,
            "Invalid",
        ),
    ];
    for (body, code, reason) in bad_bodies {
        api(seen, admin, Method::POST, base, Some(body))
            .await
            .failure(code, reason);
    }
    let not_json = admin
        .request(Method::POST, base)
        .body(format!(
            "{{\"metadata\": {{\"name\": \"x\"}}, \"data\": \"{PASSWORD}"
        ))
        .send()
        .await
        .unwrap();
    let not_json = common::Answer::read(not_json).await;
    seen.add(
        "answer to a body that is not JSON",
        not_json.body.to_string(),
    );
    not_json.failure(400, "BadRequest");
    let list = api(seen, admin, Method::GET, base, None).await;
    assert_eq!(list.ok(200)["items"].as_array().unwrap().len(), 2);

    // stringData, as the API also takes the auth.json's text.
    let by_text =
        json!({"metadata": {"name": "bytext"}, "stringData": {".dockerconfigjson": auth_json()}});
    api(seen, admin, Method::POST, base, Some(by_text))
        .await
        .ok(201);
    api(seen, admin, Method::DELETE, &format!("{base}/bytext"), None)
        .await
        .success();

    // Deleting, as the CLI does it.
    let out = cli.ok(seen, &["delete", "secret", "regcreds", "-n", "team"]);
    assert_eq!(out.trim(), "secret \"regcreds\" deleted");
    let error = cli.fails(seen, &["delete", "secret", "regcreds", "-n", "team"]);
    assert!(error.contains("NotFound"), "{error}");
    seen.add("berth's log", berth.log());
}

fn secret_body(name: &str) -> Value {
    let config =
        json!({"auths": {"registry.example.com": {"username": "youruser", "password": PASSWORD}}});
    json!({
        "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": STANDARD.encode(config.to_string())},
    })
}
