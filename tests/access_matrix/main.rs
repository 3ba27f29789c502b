//! The access matrix: every `/v2/` and `/api/v1/` route × every kind of
//! caller (anonymous, a user per role in a namespace, a user per role bound
//! cluster-wide, a super user, a user without a role, service accounts with
//! and without a role, opaque tokens, bearer JWTs from `/auth/token`, an
//! expired token, a revoked token and its JWT, a wrong password), each cell
//! stating the exact status and error code.
//!
//! Each route is run against an existing target and an absent one (same
//! namespace), so that the "no leaks" rule is checked cell by cell: a caller
//! who may not do something gets the same answer whether or not the thing
//! exists. After every write that is to be refused, every row of berth's
//! database and every upload and blob file is compared with what it was
//! before: a refusal writes nothing. Every wrong cell is collected, and the
//! test fails once listing them all.
//!
//! Brute force: failed logins lock out the address they came from, for the
//! user name guessed (429 with `Retry-After`, on every login path, until the
//! lockout passes or an admin unlocks the user) and, past a higher limit, for
//! every name; the user is let in from elsewhere, slowed down while under
//! attack, and tokens are never refused for the name that comes with them.

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use berth::auth::roles::{ROLES, Verb, Verbs, verbs_of};
use berth::config::LockoutConfig;
use common::*;
use reqwest::Response;
use serde_json::{Value, json};

/// The namespace the callers hold their roles in.
const NS: &str = "ns";
/// A namespace that does not exist.
const ABSENT_NS: &str = "ghostns";
/// The repository with a pushed image.
const REPO: &str = "ns/app";
/// A repository that does not exist, in the same namespace.
const GHOST: &str = "ns/ghost";
/// A repository in a namespace only cluster admins may read.
const FOREIGN: &str = "other/secret";

/// The role table, as docs/rest-api.md and `src/auth/roles.rs` state it:
/// what each role allows in its namespace. The test checks berth's table
/// agrees, then derives every expectation from this one.
const ROLE_VERBS: [(&str, &[Verb]); 7] = {
    use Verb::*;
    [
        ("system:image-puller", &[Pull]),
        ("system:image-pusher", &[Pull, Push]),
        ("system:image-builder", &[Pull, Push]),
        ("registry-viewer", &[Pull, View]),
        ("registry-editor", &[Pull, Push, Delete, View]),
        ("registry-admin", &[Pull, Push, Delete, View, Admin]),
        ("cluster-admin", &[Pull, Push, Delete, View, Admin]),
    ]
};

fn role_verbs(role: &str) -> BTreeSet<Verb> {
    ROLE_VERBS
        .iter()
        .find(|(r, _)| *r == role)
        .unwrap_or_else(|| panic!("role {role} is not in the test's table"))
        .1
        .iter()
        .copied()
        .collect()
}

// ---------------------------------------------------------------------------
// Expectations and what was seen

/// An expected answer: status, and the OCI error code (`/v2/`) or `Status`
/// reason (`/api/v1`) of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exp {
    status: u16,
    code: Option<&'static str>,
}

const fn ok(status: u16) -> Exp {
    Exp { status, code: None }
}

const fn err(status: u16, code: &'static str) -> Exp {
    Exp {
        status,
        code: Some(code),
    }
}

impl std::fmt::Display for Exp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "{} {code}", self.status),
            None => write!(f, "{}", self.status),
        }
    }
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    status: u16,
    code: Option<String>,
    /// A `WWW-Authenticate` challenge with a realm.
    challenge: bool,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if self.status == 401 && !self.challenge {
            write!(f, " (no challenge)")?;
        }
        Ok(())
    }
}

/// Reads a response: the OCI error code of a `/v2/` failure, or the reason
/// of an `/api/v1` `Status` failure (checked to carry the same code as the
/// HTTP status).
async fn seen(response: Response) -> Seen {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| {
            (c.starts_with("Bearer ") || c.starts_with("Basic ")) && c.contains("realm=\"")
        });
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = if let Some(errors) = body["errors"].as_array() {
        Some(
            errors
                .first()
                .and_then(|e| e["code"].as_str())
                .unwrap_or("<errors without a code>")
                .to_owned(),
        )
    } else if body["kind"] == "Status" && body["status"] == "Failure" {
        let reason = body["reason"].as_str().unwrap_or("<no reason>");
        if body["code"] == json!(status) && body["apiVersion"] == "v1" {
            Some(reason.to_owned())
        } else {
            Some(format!("{reason} (malformed Status {body})"))
        }
    } else {
        None
    };
    Seen {
        status,
        code,
        challenge,
    }
}

/// The wrong cells of a table.
#[derive(Default)]
struct Mismatches(Vec<String>);

impl Mismatches {
    /// Compares one cell. `HEAD` answers have no body, so only the status
    /// (and the challenge of a 401) is compared.
    fn check(&mut self, cell: &str, expected: Exp, seen: &Seen, head: bool) {
        let code_ok = head || expected.code.map(str::to_owned) == seen.code;
        let challenge_ok = seen.status != 401 || seen.challenge;
        if expected.status != seen.status || !code_ok || !challenge_ok {
            self.0
                .push(format!("{cell}: expected {expected}, got {seen}"));
        }
    }

    fn push(&mut self, message: String) {
        self.0.push(message);
    }

    #[track_caller]
    fn assert_none(self, what: &str, cells: usize) {
        assert!(
            self.0.is_empty(),
            "{} of {cells} cells of the {what} are wrong:\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

// ---------------------------------------------------------------------------
// Callers

/// How a caller authenticates.
#[derive(Debug, Clone)]
enum Cred {
    None,
    Basic(String, String),
    Bearer(String),
    /// A JWT from `/auth/token`, fetched for each request's repositories
    /// with these Basic credentials (`None`: anonymously), as clients do.
    Jwt(Option<(String, String)>),
}

/// What berth should make of a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    /// A bearer token issued to an anonymous client: anonymous, except that
    /// the catalog takes it (and lists what anonymous callers may pull).
    AnonymousToken,
    /// Credentials that must be refused everywhere (401).
    Refused,
    User,
    ServiceAccount,
}

struct Caller {
    label: String,
    cred: Cred,
    who: Who,
    /// What it may do in [`NS`].
    verbs: BTreeSet<Verb>,
    /// Super users and subjects of a cluster-wide `cluster-admin` binding.
    cluster_admin: bool,
    /// Its verbs hold in every namespace (a cluster-wide binding), not only
    /// in [`NS`].
    everywhere: bool,
    /// Its role and binding subject in [`NS`], to bind it the same way in
    /// namespaces a row makes for it.
    binding: Option<(&'static str, Value)>,
}

impl Caller {
    fn new(label: impl Into<String>, cred: Cred, who: Who) -> Caller {
        Caller {
            label: label.into(),
            cred,
            who,
            verbs: BTreeSet::new(),
            cluster_admin: false,
            everywhere: false,
            binding: None,
        }
    }

    fn bound(mut self, role: &'static str, subject: Value) -> Caller {
        self.verbs = role_verbs(role);
        self.binding = Some((role, subject));
        self
    }

    /// Bound to `role` cluster-wide.
    fn bound_everywhere(mut self, role: &'static str) -> Caller {
        self.verbs = role_verbs(role);
        self.everywhere = true;
        self
    }

    fn cluster_admin(mut self) -> Caller {
        self.verbs = Verb::ALL.into_iter().collect();
        self.cluster_admin = true;
        self.everywhere = true;
        self
    }

    /// May it do `verb` in namespaces other than [`NS`]?
    fn may_everywhere(&self, verb: Verb) -> bool {
        self.everywhere && self.verbs.contains(&verb)
    }

    fn authenticated(&self) -> bool {
        matches!(self.who, Who::User | Who::ServiceAccount)
    }

    /// The administration API takes passwords and opaque tokens, not JWTs.
    fn admin_api(&self) -> bool {
        self.authenticated() && !matches!(self.cred, Cred::Jwt(_))
    }
}

fn user_subject(name: &str) -> Value {
    json!({"kind": "User", "name": name})
}

fn password_of(user: &str) -> String {
    format!("{user}-secret-pw")
}

/// Every role's user name.
fn role_user(role: &str) -> String {
    format!("u-{}", role.trim_start_matches("system:"))
}

/// The user bound to `role` cluster-wide.
fn cluster_role_user(role: &str) -> String {
    format!("c-{}", role.trim_start_matches("system:"))
}

const EDITOR: &str = "registry-editor";
const PULLER: &str = "system:image-puller";
const SA_ROLE: &str = "system:image-builder";

/// The registry, its content and its callers.
struct Fixture {
    registry: TestRegistry,
    image: PushedImage,
    /// A blob only [`FOREIGN`] holds.
    foreign_layer: String,
    callers: Vec<Caller>,
    /// Unique suffixes for per-cell targets.
    counter: std::cell::Cell<usize>,
    /// berth's embedded database, read-only: what was written.
    db: sqlx::SqlitePool,
}

impl Fixture {
    async fn new() -> Fixture {
        // The matrix makes hundreds of deliberate failed logins; lockout is
        // the subject of its own test.
        let registry = TestRegistry::start_with(|config| {
            config.auth.lockout = LockoutConfig {
                max_failures_per_user: u32::MAX,
                max_failures_per_address: u32::MAX,
                ..LockoutConfig::default()
            };
        })
        .await;
        let admin = registry.client().clone();
        admin.create_project(NS).await;
        admin.create_project("other").await;
        let image = admin.push_image(REPO, "latest").await;
        let foreign = admin.push_image(FOREIGN, "latest").await;

        let mut callers = vec![
            Caller::new("anonymous", Cred::None, Who::Anonymous),
            Caller::new(
                "anonymous bearer token",
                Cred::Jwt(None),
                Who::AnonymousToken,
            ),
        ];
        for role in ROLES {
            let user = role_user(role);
            admin
                .create_user(&user, Some(&password_of(&user)), false)
                .await;
            admin.bind(Some(NS), role, &user_subject(&user)).await;
            callers.push(
                Caller::new(
                    format!("user with {role} in {NS}"),
                    Cred::Basic(user.clone(), password_of(&user)),
                    Who::User,
                )
                .bound(role, user_subject(&user)),
            );
        }
        // Every role bound cluster-wide: its verbs in every namespace, and
        // only `cluster-admin` administers the registry.
        for role in ROLES {
            let user = cluster_role_user(role);
            admin
                .create_user(&user, Some(&password_of(&user)), false)
                .await;
            admin.bind(None, role, &user_subject(&user)).await;
            let caller = Caller::new(
                format!("user bound to {role} cluster-wide"),
                Cred::Basic(user.clone(), password_of(&user)),
                Who::User,
            );
            callers.push(if role == "cluster-admin" {
                caller.cluster_admin()
            } else {
                caller.bound_everywhere(role)
            });
        }
        admin
            .create_user("u-super", Some(&password_of("u-super")), true)
            .await;
        callers.push(
            Caller::new(
                "super user",
                Cred::Basic("u-super".into(), password_of("u-super")),
                Who::User,
            )
            .cluster_admin(),
        );
        admin
            .create_user("u-norole", Some(&password_of("u-norole")), false)
            .await;
        callers.push(Caller::new(
            "user without a role",
            Cred::Basic("u-norole".into(), password_of("u-norole")),
            Who::User,
        ));

        // Tokens and JWTs of the editor and the puller.
        let editor = role_user(EDITOR);
        let editor_client = admin.with_credentials(&editor, &password_of(&editor));
        let editor_token = editor_client.create_token("/api/v1/tokens", None).await;
        callers.push(
            Caller::new(
                format!("token of the {EDITOR} user (Bearer)"),
                Cred::Bearer(editor_token.secret.clone()),
                Who::User,
            )
            .bound(EDITOR, user_subject(&editor)),
        );
        for role in [EDITOR, PULLER] {
            let user = role_user(role);
            callers.push(
                Caller::new(
                    format!("JWT of the {role} user"),
                    Cred::Jwt(Some((user.clone(), password_of(&user)))),
                    Who::User,
                )
                .bound(role, user_subject(&user)),
            );
        }

        // Service accounts: one bound, one not; `spare` is for rows that
        // make and revoke tokens.
        for account in ["robot", "idle", "spare"] {
            admin.create_service_account(NS, account).await;
        }
        let robot_subject = json!({"kind": "ServiceAccount", "name": "robot", "namespace": NS});
        admin.bind(Some(NS), SA_ROLE, &robot_subject).await;
        let robot = admin
            .create_token(
                &format!("/api/v1/namespaces/{NS}/serviceaccounts/robot/tokens"),
                None,
            )
            .await;
        let idle = admin
            .create_token(
                &format!("/api/v1/namespaces/{NS}/serviceaccounts/idle/tokens"),
                None,
            )
            .await;
        callers.push(
            Caller::new(
                format!("service account with {SA_ROLE} (token, Bearer)"),
                Cred::Bearer(robot.secret.clone()),
                Who::ServiceAccount,
            )
            .bound(SA_ROLE, robot_subject.clone()),
        );
        callers.push(
            Caller::new(
                format!("JWT of the service account with {SA_ROLE}"),
                Cred::Jwt(Some(("robot".into(), robot.secret.clone()))),
                Who::ServiceAccount,
            )
            .bound(SA_ROLE, robot_subject),
        );
        callers.push(Caller::new(
            "service account without a role (token as Basic password)",
            Cred::Basic("idle".into(), idle.secret.clone()),
            Who::ServiceAccount,
        ));

        // Objects the user and group rows act on.
        admin
            .create_user("victim", Some(&password_of("victim")), false)
            .await;
        admin
            .api_expect(
                Method::POST,
                "/api/v1/groups",
                Some(&json!({"metadata": {"name": "crew"}, "users": ["victim"]})),
                StatusCode::CREATED,
            )
            .await;

        // A revoked token, and a JWT issued for it before it was revoked:
        // both work until the revocation, and neither after it.
        let doomed = editor_client.create_token("/api/v1/tokens", None).await;
        let doomed_client = admin.with_credentials("anyone", &doomed.secret);
        let scopes = vec![format!("repository:{REPO}:pull,push,delete")];
        let doomed_jwt = doomed_client
            .bearer_token(&scopes)
            .await
            .expect("a JWT for a live token");
        for client in [&doomed_client, &admin.with_bearer(&doomed_jwt)] {
            expect_status(client.list_tags(REPO, "").await, StatusCode::OK).await;
        }
        editor_client
            .api_expect(
                Method::DELETE,
                &format!("/api/v1/tokens/{}", doomed.name),
                None,
                StatusCode::OK,
            )
            .await;
        callers.push(Caller::new(
            "revoked token (Basic)",
            Cred::Basic(editor.clone(), doomed.secret),
            Who::Refused,
        ));
        callers.push(Caller::new(
            "JWT issued for a token since revoked",
            Cred::Bearer(doomed_jwt),
            Who::Refused,
        ));
        callers.push(Caller::new(
            "wrong password of an existing user",
            Cred::Basic(editor.clone(), "not-the-password".into()),
            Who::Refused,
        ));

        // Last, so that no policy change follows it: a token that expires
        // in 2 s, used (and so remembered by berth) while it is alive. The
        // wait is the only way to make a real expired token.
        let expiring = editor_client
            .create_token("/api/v1/tokens", Some("2s"))
            .await;
        let made = Instant::now();
        let expiring_client = admin.with_bearer(&expiring.secret);
        expect_status(expiring_client.list_tags(REPO, "").await, StatusCode::OK).await;
        expect_status(expiring_client.get("/v2/").await, StatusCode::OK).await;
        tokio::time::sleep(Duration::from_millis(2_300).saturating_sub(made.elapsed())).await;
        callers.push(Caller::new(
            "expired token (Bearer), used before it expired",
            Cred::Bearer(expiring.secret),
            Who::Refused,
        ));

        let db = sqlx::SqlitePool::connect(&format!(
            "sqlite://{}?mode=ro",
            registry.data_dir().join("berth.db").display()
        ))
        .await
        .expect("berth's database opens read-only");
        Fixture {
            registry,
            image,
            foreign_layer: foreign.layers[0].digest.clone(),
            callers,
            counter: std::cell::Cell::new(0),
            db,
        }
    }

    /// Everything a request can write: every metadata row (but the keys
    /// signing bearer tokens, which issuing a token may add), and the
    /// files of uploads and blobs with their sizes.
    async fn written(&self) -> Written {
        let mut state = std::collections::BTreeMap::new();
        for (table, row) in WRITTEN_ROWS {
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST({row} AS TEXT) AS r FROM {table} ORDER BY r"
            )))
            .fetch_all(&self.db)
            .await
            .unwrap_or_else(|e| panic!("reading {table}: {e}"));
            state.insert(table.to_string(), rows);
        }
        let storage = self.registry.data_dir().join("storage");
        for area in ["uploads", "blobs"] {
            let mut files = Vec::new();
            let mut stack = vec![storage.join(area)];
            while let Some(dir) = stack.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    match entry.metadata() {
                        Ok(m) if m.is_dir() => stack.push(path),
                        Ok(m) => files.push(format!("{} {}", path.display(), m.len())),
                        Err(_) => {}
                    }
                }
            }
            files.sort();
            state.insert(format!("files of {area}"), files);
        }
        Written(state)
    }

    fn admin(&self) -> &RegistryClient {
        self.registry.client()
    }

    fn next(&self) -> usize {
        let k = self.counter.get() + 1;
        self.counter.set(k);
        k
    }

    /// A client presenting `caller`'s credentials; for JWT callers, a
    /// token asked for all actions on `repos` (and the catalog).
    async fn client_for(
        &self,
        caller: &Caller,
        repos: &[String],
    ) -> Result<RegistryClient, String> {
        let base = self.admin();
        Ok(match &caller.cred {
            Cred::None => base.anonymous(),
            Cred::Basic(user, secret) => base.with_credentials(user, secret),
            Cred::Bearer(token) => base.with_bearer(token),
            Cred::Jwt(basic) => {
                let asker = match basic {
                    Some((user, secret)) => base.with_credentials(user, secret),
                    None => base.anonymous(),
                };
                let mut scopes: Vec<String> = repos
                    .iter()
                    .map(|r| format!("repository:{r}:pull,push,delete"))
                    .collect();
                scopes.push("registry:catalog:*".into());
                let jwt = asker
                    .bearer_token(&scopes)
                    .await
                    .map_err(|status| format!("/auth/token answered {status}"))?;
                base.with_bearer(&jwt)
            }
        })
    }

    /// A manifest of the fixture's image no other cell uses.
    fn unique_manifest(&self, k: usize) -> Manifest {
        let mut value = image_manifest(OCI_MANIFEST, &self.image.config, &self.image.layers);
        value["annotations"] = json!({"cell": k.to_string()});
        Manifest::from_json(OCI_MANIFEST, &value)
    }
}

/// The metadata rows a refused write must leave alone, as one text per row:
/// `(table, expression)`.
const WRITTEN_ROWS: [(&str, &str); 15] = [
    ("repositories", "name"),
    ("tags", "repository_id || ' ' || name || ' ' || digest"),
    ("repository_manifests", "repository_id || ' ' || digest"),
    ("repository_blobs", "repository_id || ' ' || digest"),
    ("manifests", "digest"),
    ("blobs", "digest"),
    ("uploads", "id || ' ' || repository || ' ' || updated_at"),
    ("namespaces", "name || ' ' || uid"),
    (
        "role_bindings",
        "namespace || ' ' || role || ' ' || subject_kind || ' ' || subject_name || ' ' || \
         subject_namespace",
    ),
    (
        "users",
        "name || ' ' || uid || ' ' || coalesce(password_hash, '') || ' ' || super_user || ' ' || \
         credential_epoch",
    ),
    ("groups", "name || ' ' || uid"),
    ("group_members", "group_name || ' ' || user_name"),
    ("service_accounts", "namespace || ' ' || name || ' ' || uid"),
    (
        "tokens",
        "uid || ' ' || name || ' ' || coalesce(expires_at, '')",
    ),
    ("policy_version", "version"),
];

/// A snapshot of [`WRITTEN_ROWS`] and of the storage's files.
#[derive(Debug, PartialEq, Eq)]
struct Written(std::collections::BTreeMap<String, Vec<String>>);

impl Written {
    /// What `after` has that this has not, and the other way round.
    fn changes(&self, after: &Written) -> String {
        let mut changes = Vec::new();
        for (what, rows) in &self.0 {
            let now = after.0.get(what).cloned().unwrap_or_default();
            let added: Vec<&String> = now.iter().filter(|r| !rows.contains(r)).collect();
            let removed: Vec<&String> = rows.iter().filter(|r| !now.contains(r)).collect();
            if !added.is_empty() || !removed.is_empty() {
                changes.push(format!("{what}: +{added:?} -{removed:?}"));
            }
        }
        changes.join("; ")
    }
}

/// One route of a table: what it needs (a [`Need`] or a [`Rule`]), and what
/// a caller allowed to use it gets on the existing target and on the absent
/// one (`None`: the route has no target).
struct Row<R, N> {
    route: R,
    need: N,
    existing: Exp,
    absent: Option<Exp>,
}

fn row<R, N>(route: R, need: N, existing: Exp, absent: Option<Exp>) -> Row<R, N> {
    Row {
        route,
        need,
        existing,
        absent,
    }
}

impl<R, N> Row<R, N> {
    fn targets(&self) -> &'static [Target] {
        match self.absent {
            Some(_) => &[Target::Existing, Target::Absent],
            None => &[Target::Existing],
        }
    }

    /// What an allowed caller gets on `target`.
    fn answer(&self, target: Target) -> Exp {
        match (target, self.absent) {
            (Target::Absent, Some(absent)) => absent,
            _ => self.existing,
        }
    }
}

/// Runs every cell of `table` (each row × each caller × each target):
/// `request` builds the cell's request, `expect` says what it must get,
/// `after` may report something else wrong once it is answered. Every
/// wrong cell is listed; so is a caller refused alike on both targets who
/// could still tell them apart.
async fn run_matrix<R: std::fmt::Debug + Copy, N>(
    fx: &Fixture,
    what: &str,
    table: Vec<Row<R, N>>,
    expect: impl Fn(&Row<R, N>, &Caller, Target) -> Exp,
    mut request: impl AsyncFnMut(R, &Caller, Target) -> Req,
    mut after: impl AsyncFnMut(R, &Req, Exp) -> Option<String>,
) {
    let mut wrong = Mismatches::default();
    let mut cells = 0;
    for row in &table {
        for caller in &fx.callers {
            let mut answers = Vec::new();
            for &target in row.targets() {
                cells += 1;
                let req = request(row.route, caller, target).await;
                let cell = format!(
                    "{:?} ({} {}) [{target:?}] as {}",
                    row.route, req.method, req.path, caller.label
                );
                let client = match fx.client_for(caller, &req.repos).await {
                    Ok(client) => client,
                    Err(why) => {
                        wrong.push(format!("{cell}: no credentials: {why}"));
                        continue;
                    }
                };
                let expected = expect(row, caller, target);
                // A write that is to be refused must leave everything as it was.
                let refused_write = expected.code.is_some() && req.writes();
                let before = match refused_write {
                    true => Some(fx.written().await),
                    false => None,
                };
                let seen = req.send(&client).await;
                wrong.check(&cell, expected, &seen, req.method == Method::HEAD);
                if let Some(before) = before {
                    let changed = before.changes(&fx.written().await);
                    if !changed.is_empty() {
                        wrong.push(format!("{cell}: refused, yet written: {changed}"));
                    }
                }
                if let Some(problem) = after(row.route, &req, expected).await {
                    wrong.push(format!("{cell}: {problem}"));
                }
                answers.push((expected, seen));
            }
            // No leaks: told the same, a caller sees the same.
            if let [(e1, s1), (e2, s2)] = answers.as_slice()
                && e1 == e2
                && s1 != s2
            {
                wrong.push(format!(
                    "{:?} as {}: existing and absent told apart: {s1} vs {s2}",
                    row.route, caller.label
                ));
            }
        }
    }
    wrong.assert_none(what, cells);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Existing,
    Absent,
}

/// One request of a cell.
struct Req {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
    /// Repositories a JWT for it must cover.
    repos: Vec<String>,
}

impl Req {
    fn new(method: Method, path: impl Into<String>) -> Req {
        Req {
            method,
            path: path.into(),
            body: None,
            headers: Vec::new(),
            repos: Vec::new(),
        }
    }

    fn repos(mut self, repos: &[&str]) -> Req {
        self.repos = repos.iter().map(|r| (*r).to_owned()).collect();
        self
    }

    fn body(mut self, content_type: &str, body: Vec<u8>) -> Req {
        self.headers.push(("content-type", content_type.to_owned()));
        self.body = Some(body);
        self
    }

    fn json(self, value: Value) -> Req {
        self.body("application/json", value.to_string().into_bytes())
    }

    /// Whether the request asks for a change (anything but GET and HEAD).
    fn writes(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD)
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Req {
        self.headers.push((name, value.into()));
        self
    }

    async fn send(&self, client: &RegistryClient) -> Seen {
        let mut builder = client.request(self.method.clone(), &self.path);
        for (name, value) in &self.headers {
            builder = builder.header(*name, value);
        }
        if let Some(body) = &self.body {
            builder = builder.body(body.clone());
        }
        let response = builder
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {}: {e}", self.method, self.path));
        seen(response).await
    }
}

// ---------------------------------------------------------------------------
// /v2/

/// What a `/v2/` route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Any authenticated caller.
    Authenticated,
    /// Credentials of any kind, even an anonymous bearer token.
    Catalog,
    Verb(Verb),
    /// Making a namespace by pushing into it: cluster admins (the fixture
    /// keeps `autoCreateNamespaces: superusers`), whatever else they may do.
    CreateNamespace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V2 {
    Base,
    BaseHead,
    Catalog,
    Tags,
    GetManifestByTag,
    HeadManifestByTag,
    GetManifestByDigest,
    HeadManifestByDigest,
    PutManifestByTag,
    PutManifestByDigest,
    DeleteManifestByTag,
    DeleteManifestByDigest,
    GetBlob,
    HeadBlob,
    DeleteBlob,
    StartUpload,
    StartUploadInNewNamespace,
    MonolithicUpload,
    Mount,
    MountFromUnreadable,
    UploadStatus,
    UploadChunk,
    FinishUpload,
    CancelUpload,
    Referrers,
}

/// Every `/v2/` route. Absent targets: [`GHOST`] for reads, deletes and
/// uploads (an upload id nobody made), a new repository for pushes that
/// create one.
fn v2_table() -> Vec<Row<V2, Need>> {
    use V2::*;
    use Verb::{Delete, Pull, Push};
    let v = Need::Verb;
    vec![
        row(Base, Need::Authenticated, ok(200), None),
        row(BaseHead, Need::Authenticated, ok(200), None),
        row(Catalog, Need::Catalog, ok(200), None),
        row(Tags, v(Pull), ok(200), Some(err(404, "NAME_UNKNOWN"))),
        row(
            GetManifestByTag,
            v(Pull),
            ok(200),
            Some(err(404, "MANIFEST_UNKNOWN")),
        ),
        row(
            HeadManifestByTag,
            v(Pull),
            ok(200),
            Some(err(404, "MANIFEST_UNKNOWN")),
        ),
        row(
            GetManifestByDigest,
            v(Pull),
            ok(200),
            Some(err(404, "MANIFEST_UNKNOWN")),
        ),
        row(
            HeadManifestByDigest,
            v(Pull),
            ok(200),
            Some(err(404, "MANIFEST_UNKNOWN")),
        ),
        // Into the absent repository: its blobs are not there.
        row(
            PutManifestByTag,
            v(Push),
            ok(201),
            Some(err(400, "MANIFEST_BLOB_UNKNOWN")),
        ),
        row(
            PutManifestByDigest,
            v(Push),
            ok(201),
            Some(err(400, "MANIFEST_BLOB_UNKNOWN")),
        ),
        row(
            DeleteManifestByTag,
            v(Delete),
            ok(202),
            Some(err(404, "MANIFEST_UNKNOWN")),
        ),
        row(
            DeleteManifestByDigest,
            v(Delete),
            ok(202),
            Some(err(404, "MANIFEST_UNKNOWN")),
        ),
        row(GetBlob, v(Pull), ok(200), Some(err(404, "BLOB_UNKNOWN"))),
        row(HeadBlob, v(Pull), ok(200), Some(err(404, "BLOB_UNKNOWN"))),
        row(
            DeleteBlob,
            v(Delete),
            ok(202),
            Some(err(404, "BLOB_UNKNOWN")),
        ),
        // Pushes into a new repository make it.
        row(StartUpload, v(Push), ok(202), Some(ok(202))),
        // Into a namespace nobody made: only those who may make it.
        row(
            StartUploadInNewNamespace,
            Need::CreateNamespace,
            ok(202),
            None,
        ),
        row(MonolithicUpload, v(Push), ok(201), Some(ok(201))),
        row(Mount, v(Push), ok(201), Some(ok(201))),
        // Refused (a plain upload, 202) unless the caller may pull the
        // source: cluster admins get 201 (see `v2_expect`).
        row(MountFromUnreadable, v(Push), ok(202), Some(ok(202))),
        row(
            UploadStatus,
            v(Push),
            ok(204),
            Some(err(404, "BLOB_UPLOAD_UNKNOWN")),
        ),
        row(
            UploadChunk,
            v(Push),
            ok(202),
            Some(err(404, "BLOB_UPLOAD_UNKNOWN")),
        ),
        row(
            FinishUpload,
            v(Push),
            ok(201),
            Some(err(404, "BLOB_UPLOAD_UNKNOWN")),
        ),
        row(
            CancelUpload,
            v(Push),
            ok(204),
            Some(err(404, "BLOB_UPLOAD_UNKNOWN")),
        ),
        // Referrers of a digest nobody pushed are an empty list.
        row(Referrers, v(Pull), ok(200), Some(ok(200))),
    ]
}

/// The cell's expectation, from the row and the caller's class.
fn v2_expect(row: &Row<V2, Need>, caller: &Caller, target: Target) -> Exp {
    let unauthorized = err(401, "UNAUTHORIZED");
    if caller.who == Who::Refused {
        return unauthorized;
    }
    let allowed = match row.need {
        Need::Authenticated => caller.authenticated(),
        Need::Catalog => caller.who != Who::Anonymous,
        Need::Verb(verb) => caller.verbs.contains(&verb),
        Need::CreateNamespace => caller.cluster_admin,
    };
    if !allowed {
        return if caller.authenticated() {
            err(403, "DENIED")
        } else {
            unauthorized
        };
    }
    // The source is readable to whoever may pull everywhere.
    if row.route == V2::MountFromUnreadable && caller.may_everywhere(Verb::Pull) {
        return ok(201);
    }
    row.answer(target)
}

/// Builds the cell's request, first making (as the admin) what the cell
/// consumes, so that no cell depends on another's leftovers.
async fn v2_request(fx: &Fixture, route: V2, target: Target) -> Req {
    use V2::*;
    let admin = fx.admin();
    let k = fx.next();
    let existing = target == Target::Existing;
    let read_repo = if existing { REPO } else { GHOST };
    let new_repo = format!("{NS}/new-{k}");
    let push_repo = if existing { REPO } else { new_repo.as_str() };
    let image = &fx.image;
    let layer = &image.layers[0].digest;
    match route {
        Base => Req::new(Method::GET, "/v2/"),
        BaseHead => Req::new(Method::HEAD, "/v2/"),
        Catalog => Req::new(Method::GET, "/v2/_catalog"),
        Tags => Req::new(Method::GET, format!("/v2/{read_repo}/tags/list")).repos(&[read_repo]),
        GetManifestByTag | HeadManifestByTag => {
            let method = if route == GetManifestByTag {
                Method::GET
            } else {
                Method::HEAD
            };
            Req::new(method, format!("/v2/{read_repo}/manifests/latest")).repos(&[read_repo])
        }
        GetManifestByDigest | HeadManifestByDigest => {
            let method = if route == GetManifestByDigest {
                Method::GET
            } else {
                Method::HEAD
            };
            Req::new(
                method,
                format!("/v2/{read_repo}/manifests/{}", image.digest),
            )
            .repos(&[read_repo])
        }
        PutManifestByTag => Req::new(Method::PUT, format!("/v2/{read_repo}/manifests/put-{k}"))
            .body(OCI_MANIFEST, image.manifest.bytes.clone())
            .repos(&[read_repo]),
        PutManifestByDigest => {
            let manifest = fx.unique_manifest(k);
            Req::new(
                Method::PUT,
                format!("/v2/{read_repo}/manifests/{}", manifest.digest()),
            )
            .body(OCI_MANIFEST, manifest.bytes)
            .repos(&[read_repo])
        }
        DeleteManifestByTag => {
            if existing {
                admin
                    .push_manifest(REPO, &format!("del-{k}"), &image.manifest)
                    .await;
            }
            Req::new(Method::DELETE, format!("/v2/{read_repo}/manifests/del-{k}"))
                .repos(&[read_repo])
        }
        DeleteManifestByDigest => {
            let digest = if existing {
                let manifest = fx.unique_manifest(k);
                admin
                    .push_manifest(REPO, &manifest.digest(), &manifest)
                    .await
            } else {
                image.digest.clone()
            };
            Req::new(
                Method::DELETE,
                format!("/v2/{read_repo}/manifests/{digest}"),
            )
            .repos(&[read_repo])
        }
        GetBlob | HeadBlob => {
            let method = if route == GetBlob {
                Method::GET
            } else {
                Method::HEAD
            };
            Req::new(method, format!("/v2/{read_repo}/blobs/{layer}")).repos(&[read_repo])
        }
        DeleteBlob => {
            let digest = if existing {
                admin
                    .push_blob(REPO, &blob_content(&format!("doomed-{k}"), 64))
                    .await
            } else {
                layer.clone()
            };
            Req::new(Method::DELETE, format!("/v2/{read_repo}/blobs/{digest}")).repos(&[read_repo])
        }
        StartUpload => {
            Req::new(Method::POST, format!("/v2/{push_repo}/blobs/uploads/")).repos(&[push_repo])
        }
        StartUploadInNewNamespace => {
            let repo = format!("fresh-{k}/app");
            Req::new(Method::POST, format!("/v2/{repo}/blobs/uploads/")).repos(&[&repo])
        }
        MonolithicUpload => {
            let content = blob_content(&format!("monolithic-{k}"), 64);
            Req::new(
                Method::POST,
                format!("/v2/{push_repo}/blobs/uploads/?digest={}", sha256(&content)),
            )
            .body("application/octet-stream", content)
            .repos(&[push_repo])
        }
        Mount => Req::new(
            Method::POST,
            format!("/v2/{push_repo}/blobs/uploads/?mount={layer}&from={REPO}"),
        )
        .repos(&[push_repo, REPO]),
        MountFromUnreadable => Req::new(
            Method::POST,
            format!(
                "/v2/{push_repo}/blobs/uploads/?mount={}&from={FOREIGN}",
                fx.foreign_layer
            ),
        )
        .repos(&[push_repo, FOREIGN]),
        UploadStatus | UploadChunk | FinishUpload | CancelUpload => {
            let location = if existing {
                admin.start_upload(REPO).await.location
            } else {
                format!("/v2/{GHOST}/blobs/uploads/00000000-0000-4000-8000-{k:012}")
            };
            let content = blob_content(&format!("uploaded-{k}"), 64);
            let req = match route {
                UploadStatus => Req::new(Method::GET, location),
                UploadChunk => Req::new(Method::PATCH, location)
                    .header("content-range", format!("0-{}", content.len() - 1))
                    .body("application/octet-stream", content),
                FinishUpload => Req::new(
                    Method::PUT,
                    with_query(&location, &format!("digest={}", sha256(&content))),
                )
                .body("application/octet-stream", content),
                _ => Req::new(Method::DELETE, location),
            };
            req.repos(&[read_repo])
        }
        Referrers => Req::new(
            Method::GET,
            format!("/v2/{read_repo}/referrers/{}", image.digest),
        )
        .repos(&[read_repo]),
    }
}

/// After a refused delete, what it named must still be there.
async fn still_there(fx: &Fixture, route: V2, req: &Req, expected: Exp) -> Option<String> {
    let refused = expected.code.is_some() && !req.path.contains(GHOST);
    match route {
        V2::DeleteManifestByTag | V2::DeleteManifestByDigest | V2::DeleteBlob
            if refused
                && fx.admin().send(Method::HEAD, &req.path).await.status() != StatusCode::OK =>
        {
            Some("refused, yet it was deleted".into())
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v2_route_answers_every_caller_as_the_role_table_says() {
    let fx = Fixture::new().await;
    run_matrix(
        &fx,
        "/v2/ access matrix",
        v2_table(),
        v2_expect,
        async |route, _, target| v2_request(&fx, route, target).await,
        async |route, req, expected| still_there(&fx, route, req, expected).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_lists_only_what_each_caller_may_pull() {
    let fx = Fixture::new().await;
    let mut wrong = Mismatches::default();
    for caller in fx
        .callers
        .iter()
        .filter(|c| c.authenticated() || c.who == Who::AnonymousToken)
    {
        let client = fx
            .client_for(caller, &[])
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", caller.label));
        let response = expect_status(client.catalog("").await, StatusCode::OK).await;
        let body: Value = response.json().await.expect("catalog is JSON");
        let listed: BTreeSet<String> = string_list(&body["repositories"]).into_iter().collect();
        let mut expected = BTreeSet::new();
        if caller.verbs.contains(&Verb::Pull) {
            expected.insert(REPO.to_owned());
        }
        if caller.may_everywhere(Verb::Pull) {
            expected.insert(FOREIGN.to_owned());
        }
        if listed != expected {
            wrong.push(format!(
                "catalog as {}: expected {expected:?}, got {listed:?}",
                caller.label
            ));
        }
    }
    wrong.assert_none("catalog listings", fx.callers.len());
}

// ---------------------------------------------------------------------------
// /api/v1

/// Who may use an `/api/v1` route (docs/rest-api.md, "Who may do what").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// No credentials read: everyone gets the row's answer.
    Open,
    /// Any authenticated user or service account.
    Authenticated,
    /// Users; service accounts are forbidden (403).
    UsersOnly,
    /// Cluster admins; others are forbidden (403).
    ClusterAdmin,
    /// A role in the namespace with this verb (`None`: any role). A role
    /// without it: 403; no role, or no such namespace: 404.
    Namespace(Option<Verb>),
    /// Cluster admins; for anyone else the object does not exist (404).
    HiddenUnlessClusterAdmin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    ListProjects,
    CreateProject,
    GetProject,
    DeleteProject,
    ListServiceAccounts,
    CreateServiceAccount,
    GetServiceAccount,
    DeleteServiceAccount,
    CreateOwnToken,
    ListOwnTokens,
    DeleteOwnToken,
    CreateServiceAccountToken,
    ListNamespaceTokens,
    DeleteNamespaceToken,
    ListRoleBindings,
    GetRoleBinding,
    DeleteRoleBinding,
    AddSubjects,
    RemoveSubjects,
    ListClusterRoleBindings,
    GetClusterRoleBinding,
    DeleteClusterRoleBinding,
    AddClusterSubjects,
    RemoveClusterSubjects,
    WhoCan,
    ListUsers,
    CreateUser,
    Me,
    Version,
    GetUser,
    DeleteUser,
    SetPassword,
    UnlockUser,
    CreateUserToken,
    ListGroups,
    CreateGroup,
    GetGroup,
    ReplaceGroup,
    DeleteGroup,
    Initialize,
    Discovery,
}

/// Every `/api/v1` route. Targets: for namespaced routes [`NS`] and
/// [`ABSENT_NS`]; for users, groups and bindings an existing object and a
/// missing one; for creations a taken name (409) and a free one (201).
fn api_table() -> Vec<Row<Api, Rule>> {
    use Api::*;
    use Rule::*;
    use Verb::{Admin, View};
    let missing = Some(err(404, "NotFound"));
    let taken = err(409, "AlreadyExists");
    vec![
        row(ListProjects, Authenticated, ok(200), None),
        row(CreateProject, ClusterAdmin, taken, Some(ok(201))),
        row(GetProject, Namespace(None), ok(200), missing),
        row(DeleteProject, Namespace(Some(Admin)), ok(200), missing),
        row(ListServiceAccounts, Namespace(Some(View)), ok(200), missing),
        row(
            CreateServiceAccount,
            Namespace(Some(Admin)),
            ok(201),
            missing,
        ),
        row(GetServiceAccount, Namespace(Some(View)), ok(200), missing),
        row(
            DeleteServiceAccount,
            Namespace(Some(Admin)),
            ok(200),
            missing,
        ),
        row(CreateOwnToken, UsersOnly, ok(201), None),
        row(ListOwnTokens, Authenticated, ok(200), None),
        row(DeleteOwnToken, HiddenUnlessClusterAdmin, ok(200), missing),
        row(
            CreateServiceAccountToken,
            Namespace(Some(Admin)),
            ok(201),
            missing,
        ),
        row(ListNamespaceTokens, Namespace(Some(View)), ok(200), missing),
        row(
            DeleteNamespaceToken,
            Namespace(Some(Admin)),
            ok(200),
            missing,
        ),
        row(ListRoleBindings, Namespace(Some(View)), ok(200), missing),
        row(GetRoleBinding, Namespace(Some(View)), ok(200), missing),
        row(DeleteRoleBinding, Namespace(Some(Admin)), ok(200), missing),
        row(AddSubjects, Namespace(Some(Admin)), ok(200), missing),
        row(RemoveSubjects, Namespace(Some(Admin)), ok(200), missing),
        row(ListClusterRoleBindings, ClusterAdmin, ok(200), None),
        row(GetClusterRoleBinding, ClusterAdmin, ok(200), missing),
        row(DeleteClusterRoleBinding, ClusterAdmin, ok(200), missing),
        row(AddClusterSubjects, ClusterAdmin, ok(200), None),
        row(RemoveClusterSubjects, ClusterAdmin, ok(200), missing),
        row(WhoCan, Namespace(Some(View)), ok(200), missing),
        row(ListUsers, ClusterAdmin, ok(200), None),
        row(CreateUser, ClusterAdmin, taken, Some(ok(201))),
        row(Me, Authenticated, ok(200), None),
        row(Version, Authenticated, ok(200), None),
        row(GetUser, ClusterAdmin, ok(200), missing),
        row(DeleteUser, ClusterAdmin, ok(200), missing),
        row(SetPassword, ClusterAdmin, ok(200), missing),
        row(UnlockUser, ClusterAdmin, ok(200), missing),
        row(CreateUserToken, ClusterAdmin, ok(201), missing),
        row(ListGroups, ClusterAdmin, ok(200), None),
        row(CreateGroup, ClusterAdmin, taken, Some(ok(201))),
        row(GetGroup, ClusterAdmin, ok(200), missing),
        row(ReplaceGroup, ClusterAdmin, ok(200), missing),
        row(DeleteGroup, ClusterAdmin, ok(200), missing),
        // Open, and refused: this registry made its admin at start.
        row(Initialize, Open, err(400, "BadRequest"), None),
        row(Discovery, Open, ok(200), None),
    ]
}

fn api_expect(row: &Row<Api, Rule>, caller: &Caller, target: Target) -> Exp {
    let allowed_answer = row.answer(target);
    if row.need == Rule::Open {
        return allowed_answer;
    }
    if !caller.admin_api() {
        return err(401, "Unauthorized");
    }
    let forbidden = err(403, "Forbidden");
    let not_found = err(404, "NotFound");
    match row.need {
        Rule::Open | Rule::Authenticated => allowed_answer,
        Rule::UsersOnly if caller.who == Who::User => allowed_answer,
        Rule::UsersOnly => forbidden,
        Rule::ClusterAdmin if caller.cluster_admin => allowed_answer,
        Rule::ClusterAdmin => forbidden,
        Rule::HiddenUnlessClusterAdmin if caller.cluster_admin => allowed_answer,
        Rule::HiddenUnlessClusterAdmin => not_found,
        Rule::Namespace(_) if target == Target::Absent || caller.verbs.is_empty() => not_found,
        Rule::Namespace(Some(verb)) if !caller.verbs.contains(&verb) => forbidden,
        Rule::Namespace(_) => allowed_answer,
    }
}

const BYSTANDER: &str = "bystander";

/// Builds the cell's request, first making (as the admin) what it consumes.
async fn api_request(fx: &Fixture, route: Api, caller: &Caller, target: Target) -> Req {
    use Api::*;
    let admin = fx.admin();
    let k = fx.next();
    let existing = target == Target::Existing;
    let ns = if existing { NS } else { ABSENT_NS };
    let user = if existing { "victim" } else { "nobody" };
    let group = if existing { "crew" } else { "nogroup" };
    // A cluster role binding with subjects, and one without: every role has
    // a user bound cluster-wide, so the absent one is emptied for the cell
    // and given back by `restore`.
    let cluster_role = if existing {
        "registry-viewer"
    } else {
        "registry-editor"
    };
    if !existing
        && matches!(
            route,
            GetClusterRoleBinding | DeleteClusterRoleBinding | RemoveClusterSubjects
        )
    {
        admin
            .unbind(
                None,
                cluster_role,
                &user_subject(&cluster_role_user(cluster_role)),
            )
            .await;
    }
    let bystander = json!({"subjects": [user_subject(BYSTANDER)]});
    let api = |path: String| format!("/api/v1{path}");
    match route {
        ListProjects => Req::new(Method::GET, api("/projects".into())),
        CreateProject => {
            let name = if existing {
                NS.to_owned()
            } else {
                format!("made-{k}")
            };
            Req::new(Method::POST, api("/projects".into()))
                .json(json!({"metadata": {"name": name}}))
        }
        GetProject => Req::new(Method::GET, api(format!("/projects/{ns}"))),
        DeleteProject => {
            // A project of its own, where the caller has its role in NS.
            let name = if existing {
                let name = format!("gone-{k}");
                admin.create_project(&name).await;
                if let Some((role, subject)) = &caller.binding {
                    admin.bind(Some(&name), role, subject).await;
                }
                name
            } else {
                ABSENT_NS.to_owned()
            };
            Req::new(Method::DELETE, api(format!("/projects/{name}")))
        }
        ListServiceAccounts => Req::new(
            Method::GET,
            api(format!("/namespaces/{ns}/serviceaccounts")),
        ),
        CreateServiceAccount => Req::new(
            Method::POST,
            api(format!("/namespaces/{ns}/serviceaccounts")),
        )
        .json(json!({"metadata": {"name": format!("sa-{k}")}})),
        GetServiceAccount => Req::new(
            Method::GET,
            api(format!("/namespaces/{ns}/serviceaccounts/robot")),
        ),
        DeleteServiceAccount => {
            let name = format!("sa-doomed-{k}");
            if existing {
                admin.create_service_account(NS, &name).await;
            }
            Req::new(
                Method::DELETE,
                api(format!("/namespaces/{ns}/serviceaccounts/{name}")),
            )
        }
        CreateOwnToken => Req::new(Method::POST, api("/tokens".into())).json(json!({})),
        ListOwnTokens => Req::new(Method::GET, api("/tokens".into())),
        DeleteOwnToken => {
            // Another user's token: only cluster admins may see it.
            let name = if existing {
                admin
                    .create_token("/api/v1/users/victim/tokens", None)
                    .await
                    .name
            } else {
                "no-such-token".to_owned()
            };
            Req::new(Method::DELETE, api(format!("/tokens/{name}")))
        }
        CreateServiceAccountToken => Req::new(
            Method::POST,
            api(format!("/namespaces/{ns}/serviceaccounts/spare/tokens")),
        )
        .json(json!({})),
        ListNamespaceTokens => Req::new(Method::GET, api(format!("/namespaces/{ns}/tokens"))),
        DeleteNamespaceToken => {
            let name = if existing {
                admin
                    .create_token(
                        &format!("/api/v1/namespaces/{NS}/serviceaccounts/spare/tokens"),
                        None,
                    )
                    .await
                    .name
            } else {
                "no-such-token".to_owned()
            };
            Req::new(
                Method::DELETE,
                api(format!("/namespaces/{ns}/tokens/{name}")),
            )
        }
        ListRoleBindings => Req::new(Method::GET, api(format!("/namespaces/{ns}/rolebindings"))),
        GetRoleBinding => Req::new(
            Method::GET,
            api(format!("/namespaces/{ns}/rolebindings/{PULLER}")),
        ),
        // Restored after the cell (see `restore`).
        DeleteRoleBinding => Req::new(
            Method::DELETE,
            api(format!("/namespaces/{ns}/rolebindings/registry-viewer")),
        ),
        AddSubjects | RemoveSubjects => {
            let verb = if route == AddSubjects {
                "add-subjects"
            } else {
                "remove-subjects"
            };
            Req::new(
                Method::POST,
                api(format!("/namespaces/{ns}/rolebindings/{PULLER}/{verb}")),
            )
            .json(bystander)
        }
        ListClusterRoleBindings => Req::new(Method::GET, api("/clusterrolebindings".into())),
        GetClusterRoleBinding => {
            let role = if existing {
                "cluster-admin"
            } else {
                cluster_role
            };
            Req::new(Method::GET, api(format!("/clusterrolebindings/{role}")))
        }
        DeleteClusterRoleBinding | RemoveClusterSubjects => {
            if existing {
                admin
                    .bind(None, cluster_role, &user_subject(BYSTANDER))
                    .await;
            }
            if route == DeleteClusterRoleBinding {
                Req::new(
                    Method::DELETE,
                    api(format!("/clusterrolebindings/{cluster_role}")),
                )
            } else {
                Req::new(
                    Method::POST,
                    api(format!(
                        "/clusterrolebindings/{cluster_role}/remove-subjects"
                    )),
                )
                .json(bystander)
            }
        }
        AddClusterSubjects => Req::new(
            Method::POST,
            api(format!("/clusterrolebindings/{PULLER}/add-subjects")),
        )
        .json(bystander),
        WhoCan => Req::new(
            Method::GET,
            api(format!("/namespaces/{ns}/whocan?verb=pull")),
        ),
        ListUsers => Req::new(Method::GET, api("/users".into())),
        CreateUser => {
            let name = if existing {
                "victim".to_owned()
            } else {
                format!("made-{k}")
            };
            Req::new(Method::POST, api("/users".into()))
                .json(json!({"metadata": {"name": name}, "password": "pw-of-a-new-user"}))
        }
        Me => Req::new(Method::GET, api("/users/~".into())),
        Version => Req::new(Method::GET, api("/version".into())),
        GetUser => Req::new(Method::GET, api(format!("/users/{user}"))),
        DeleteUser => {
            let name = if existing {
                let name = format!("doomed-{k}");
                admin.create_user(&name, None, false).await;
                name
            } else {
                "nobody".to_owned()
            };
            Req::new(Method::DELETE, api(format!("/users/{name}")))
        }
        SetPassword => Req::new(Method::PUT, api(format!("/users/{user}/password")))
            .json(json!({"password": format!("changed-{k}")})),
        UnlockUser => Req::new(Method::POST, api(format!("/users/{user}/unlock"))),
        CreateUserToken => {
            Req::new(Method::POST, api(format!("/users/{user}/tokens"))).json(json!({}))
        }
        ListGroups => Req::new(Method::GET, api("/groups".into())),
        CreateGroup => {
            let name = if existing {
                "crew".to_owned()
            } else {
                format!("made-{k}")
            };
            Req::new(Method::POST, api("/groups".into()))
                .json(json!({"metadata": {"name": name}, "users": []}))
        }
        GetGroup => Req::new(Method::GET, api(format!("/groups/{group}"))),
        ReplaceGroup => Req::new(Method::PUT, api(format!("/groups/{group}")))
            .json(json!({"users": ["victim"]})),
        DeleteGroup => {
            let name = if existing {
                let name = format!("doomed-{k}");
                admin
                    .api_expect(
                        Method::POST,
                        "/api/v1/groups",
                        Some(&json!({"metadata": {"name": name}, "users": []})),
                        StatusCode::CREATED,
                    )
                    .await;
                name
            } else {
                "nogroup".to_owned()
            };
            Req::new(Method::DELETE, api(format!("/groups/{name}")))
        }
        Initialize => Req::new(Method::POST, api("/user/initialize".into()))
            .json(json!({"username": "intruder", "password": "intruder-pw"})),
        Discovery => Req::new(Method::GET, api("/discovery".into())),
    }
}

/// Puts back what a cell may have removed from the shared fixture.
async fn restore(fx: &Fixture, route: Api) {
    use Api::*;
    if route == DeleteRoleBinding {
        let viewer = role_user("registry-viewer");
        fx.admin()
            .bind(Some(NS), "registry-viewer", &user_subject(&viewer))
            .await;
    }
    if matches!(
        route,
        GetClusterRoleBinding | DeleteClusterRoleBinding | RemoveClusterSubjects
    ) {
        for role in ["registry-viewer", "registry-editor"] {
            fx.admin()
                .bind(None, role, &user_subject(&cluster_role_user(role)))
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_answers_every_caller_as_the_rules_say() {
    let fx = Fixture::new().await;
    let documented = documented_api_routes(fx.admin()).await;
    let mut covered = BTreeSet::new();
    run_matrix(
        &fx,
        "/api/v1 access matrix",
        api_table(),
        api_expect,
        async |route, caller, target| api_request(&fx, route, caller, target).await,
        async |route, req, _| {
            restore(&fx, route).await;
            match route_of(&documented, req) {
                Some(documented_route) => {
                    covered.insert(documented_route);
                    None
                }
                None => Some("not a documented route".into()),
            }
        },
    )
    .await;
    let untested: Vec<_> = documented.difference(&covered).collect();
    assert!(
        untested.is_empty(),
        "documented routes without a row: {untested:?}"
    );
}

#[test]
fn the_tests_role_table_agrees_with_berths() {
    for role in ROLES {
        let listed: Vec<Verb> = role_verbs(role).into_iter().collect();
        assert_eq!(
            verbs_of(role),
            Some(Verbs::of(&listed)),
            "verbs of {role}: the test's table and berth's differ"
        );
    }
    assert_eq!(ROLE_VERBS.len(), ROLES.len());
}

/// `(METHOD, template)` of every route the OpenAPI document served at
/// `/api/v1/discovery` lists (berth checks its router against it).
async fn documented_api_routes(client: &RegistryClient) -> BTreeSet<(String, String)> {
    let doc = client
        .api_expect(Method::GET, "/api/v1/discovery", None, StatusCode::OK)
        .await;
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if method != "parameters" {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// The documented route a request is for: the template of its method whose
/// segments match, literal segments preferred to parameters.
fn route_of(documented: &BTreeSet<(String, String)>, req: &Req) -> Option<(String, String)> {
    let path = req.path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    documented
        .iter()
        .filter(|(method, _)| *method == req.method.as_str())
        .filter_map(|route| {
            let template: Vec<&str> = route.1.split('/').collect();
            let literal = template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || t.starts_with('{'));
            literal.then(|| {
                let literals = template.iter().filter(|t| !t.starts_with('{')).count();
                (literals, route.clone())
            })
        })
        .max()
        .map(|(_, route)| route)
}

// ---------------------------------------------------------------------------
// Brute force

/// `Retry-After` in whole seconds, within the lockout.
#[track_caller]
fn assert_retry_after(response: &Response, lockout: Duration) {
    let text = header(response, "retry-after");
    let seconds: u64 = text
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {text:?} is not a number of seconds"));
    assert!(
        (1..=lockout.as_secs()).contains(&seconds),
        "Retry-After {seconds} for a {lockout:?} lockout"
    );
}

/// Every login path of a locked-out client: `/v2/` Basic, `/auth/token`
/// (GET and the OAuth2 POST) and the administration API all say 429 with
/// `Retry-After`.
async fn assert_locked_out(client: &RegistryClient, user: &str, password: &str, lockout: Duration) {
    let v2 = client.get("/v2/").await;
    assert_retry_after(&v2, lockout);
    assert_error(v2, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;

    let token = client
        .get(&format!(
            "/auth/token?service=berth&scope=repository:{REPO}:pull"
        ))
        .await;
    assert_retry_after(&token, lockout);
    assert_error(token, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;

    let oauth = client
        .anonymous()
        .request(Method::POST, "/auth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "password")
                .append_pair("username", user)
                .append_pair("password", password)
                .append_pair("service", "berth")
                .finish(),
        )
        .send()
        .await
        .expect("OAuth2 token request is sent");
    assert_retry_after(&oauth, lockout);
    assert_error(oauth, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;

    let api = client.get("/api/v1/users/~").await;
    assert_retry_after(&api, lockout);
    let status = seen(api).await;
    assert_eq!(
        (status.status, status.code.as_deref()),
        (429, Some("TooManyRequests"))
    );
}

/// A `GET /v2/` from `client`, saying `X-Forwarded-For: forwarded`.
async fn v2_forwarded(client: &RegistryClient, forwarded: &str) -> Response {
    client
        .request(Method::GET, "/v2/")
        .header("x-forwarded-for", forwarded)
        .send()
        .await
        .expect("GET /v2/ is sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_lock_out_their_address_never_the_user_elsewhere() {
    const PER_USER: usize = 3;
    const PER_ADDRESS: usize = 6;
    let lockout = Duration::from_secs(3);
    let slowdown = Duration::from_secs(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let proxy_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5));
    let berth = BerthProcess::serve(&data)
        .envs(&[
            ("BERTH_AUTH_LOCKOUT_MAX_FAILURES_PER_USER", "3"),
            ("BERTH_AUTH_LOCKOUT_MAX_FAILURES_PER_ADDRESS", "6"),
            ("BERTH_AUTH_LOCKOUT_WINDOW", "10m"),
            ("BERTH_AUTH_LOCKOUT_DURATION", "3s"),
            ("BERTH_AUTH_LOCKOUT_SLOWDOWN", "1s"),
            ("BERTH_HTTP_TRUSTED_PROXIES", "127.0.0.5/32"),
        ])
        .start()
        .await;
    let admin = berth.client();
    for user in ["carol", "dave", "erin"] {
        admin
            .create_user(user, Some(&password_of(user)), false)
            .await;
    }
    let from = |octet: u8| IpAddr::V4(Ipv4Addr::new(127, 0, 0, octet));
    let carol = admin.with_credentials("carol", &password_of("carol"));
    let dave = admin.with_credentials("dave", &password_of("dave"));
    // carol logs in: berth now remembers her credentials.
    expect_status(carol.get("/v2/").await, StatusCode::OK).await;

    // Someone at carol's address guesses her password.
    let guesser = admin.with_credentials("carol", "guess-1-wrong");
    for _ in 0..PER_USER {
        let response = guesser.get("/v2/").await;
        assert_challenge(&response);
        assert_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    // From that address carol is refused, even with her password,
    // everywhere, and even with the credentials berth remembers.
    assert_locked_out(&carol, "carol", &password_of("carol"), lockout).await;
    // From another address she is let in, not even slowed down (berth knows
    // these credentials to be right).
    let elsewhere = carol.connecting_from(from(3));
    expect_status(elsewhere.get("/v2/").await, StatusCode::OK).await;
    let token = elsewhere
        .bearer_token(&[format!("repository:{REPO}:pull")])
        .await;
    assert!(token.is_ok(), "token from elsewhere: {token:?}");
    // dave, at the guesser's address, is not refused either.
    expect_status(dave.get("/v2/").await, StatusCode::OK).await;

    // A user guessed at from many addresses is slowed down, not refused:
    // the right password from an address that has not been failing gets in
    // after the delay.
    for octet in [6, 7] {
        for _ in 0..PER_USER - 1 {
            let response = admin
                .with_credentials("erin", "guess-3-wrong")
                .connecting_from(from(octet))
                .get("/v2/")
                .await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
    }
    let started = Instant::now();
    let erin = admin
        .with_credentials("erin", &password_of("erin"))
        .connecting_from(from(3));
    expect_status(erin.get("/v2/").await, StatusCode::OK).await;
    assert!(
        started.elapsed() >= slowdown,
        "a login of a user under attack is slowed down: {:?}",
        started.elapsed()
    );

    // Guessing at a name stops no token that logs in with that name
    // (`podman login -u bot -p TOKEN`), remembered or not.
    admin.create_project("ci").await;
    admin.create_service_account("ci", "bot").await;
    let bot_token = admin
        .create_token("/api/v1/namespaces/ci/serviceaccounts/bot/tokens", None)
        .await;
    let bot_address = from(4);
    let bot = admin
        .with_credentials("bot", &bot_token.secret)
        .connecting_from(bot_address);
    expect_status(bot.get("/v2/").await, StatusCode::OK).await;
    for _ in 0..PER_USER {
        let response = admin
            .with_credentials("bot", "guess-4-wrong")
            .connecting_from(bot_address)
            .get("/v2/")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let guessed_bot = admin
        .with_credentials("bot", "guess-4-wrong")
        .connecting_from(bot_address)
        .get("/v2/")
        .await;
    assert_eq!(guessed_bot.status(), StatusCode::TOO_MANY_REQUESTS);
    for client in [
        bot.clone(),
        bot.with_bearer(&bot_token.secret),
        bot.with_credentials("someone-else", &bot_token.secret),
    ] {
        expect_status(client.get("/v2/").await, StatusCode::OK).await;
    }
    let token = bot
        .bearer_token(&["repository:ci/app:pull".to_owned()])
        .await;
    assert!(token.is_ok(), "the token's bearer token: {token:?}");

    // An address spraying guesses at many users is locked out as a whole,
    // token logins included; other addresses are not.
    let sprayer_ip = from(2);
    for i in 0..PER_ADDRESS {
        let response = admin
            .with_credentials(&format!("spray-{i}"), "guess-2-wrong")
            .connecting_from(sprayer_ip)
            .get("/v2/")
            .await;
        assert_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }
    let address_locked_at = Instant::now();
    let dave_from_sprayer = dave.connecting_from(sprayer_ip);
    assert_locked_out(&dave_from_sprayer, "dave", &password_of("dave"), lockout).await;
    let bot_from_sprayer = bot.connecting_from(sprayer_ip);
    assert_eq!(
        bot_from_sprayer.get("/v2/").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    expect_status(dave.get("/v2/").await, StatusCode::OK).await;

    // X-Forwarded-For is believed from the trusted proxy only. Through it,
    // guesses count against the client it names...
    let proxy = admin.connecting_from(proxy_ip);
    for _ in 0..PER_USER {
        let response =
            v2_forwarded(&proxy.with_credentials("dave", "guess-5-wrong"), "10.1.1.1").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let dave_via_proxy = dave.connecting_from(proxy_ip);
    assert_eq!(
        v2_forwarded(&dave_via_proxy, "10.1.1.1").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...not against the proxy, nor anyone else behind it.
    assert_eq!(
        v2_forwarded(&dave_via_proxy, "10.2.2.2").await.status(),
        StatusCode::OK
    );
    // From anyone else it is ignored: a sprayer cannot hide behind it.
    let liar = from(8);
    for i in 0..PER_ADDRESS {
        let response = v2_forwarded(
            &admin
                .with_credentials(&format!("liar-{i}"), "guess-6-wrong")
                .connecting_from(liar),
            &format!("10.9.9.{i}"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        v2_forwarded(&dave.connecting_from(liar), "10.9.9.99")
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // An admin unlocks carol: her address may try again at once.
    let unlocked = admin
        .api_expect(
            Method::POST,
            "/api/v1/users/carol/unlock",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(unlocked["message"], "user \"carol\" unlocked");
    expect_status(carol.get("/v2/").await, StatusCode::OK).await;

    // Once the lockouts have passed (the sprayer's began last but one),
    // everything works again.
    tokio::time::sleep(
        (lockout + Duration::from_millis(300)).saturating_sub(address_locked_at.elapsed()),
    )
    .await;
    expect_status(dave_from_sprayer.get("/v2/").await, StatusCode::OK).await;
    expect_status(bot_from_sprayer.get("/v2/").await, StatusCode::OK).await;
    expect_status(carol.get("/api/v1/users/~").await, StatusCode::OK).await;

    // The log tells who tried, from where, and how it went, never the
    // secrets tried.
    let log = berth.log();
    let lines = |words: &[&str]| {
        log.lines()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .count()
    };
    for (words, at_least) in [
        (&["login", "carol", "127.0.0.1", "failure"][..], PER_USER),
        (&["login", "spray-0", "127.0.0.2", "failure"], 1),
        (&["login", "carol", "127.0.0.1", "locked"], 1),
        (&["login", "erin", "127.0.0.3", "slowed"], 1),
        (&["login", "dave", "10.1.1.1", "failure"], PER_USER),
        (&["login", "dave", "10.1.1.1", "locked"], 1),
        (&["login", "liar-0", "127.0.0.8", "failure"], 1),
        (&["user unlocked", "carol"], 1),
        (&["token request", "carol", "127.0.0.3", "issued"], 1),
        (&["token request", "127.0.0.1", "refused"], 1),
    ] {
        assert!(lines(words) >= at_least, "{words:?} in\n{log}");
    }
    for secret in [
        password_of("carol"),
        password_of("dave"),
        password_of("erin"),
        bot_token.secret.clone(),
        "guess-1-wrong".into(),
        "guess-2-wrong".into(),
    ] {
        assert!(!log.contains(&secret), "the log shows a secret: {secret}");
    }
}
