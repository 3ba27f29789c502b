//! The fixture of the access matrix (a registry, its content and every
//! kind of caller), the role table every expectation derives from, what a
//! cell expects and what it saw, the runner of a table, and the snapshot of
//! everything a request can write.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

// The berth internals the matrix uses, all here.
pub use berth::auth::roles::Verb;
use berth::auth::roles::{ROLES, Verbs, verbs_of};
use berth::config::LockoutConfig;
use reqwest::Response;
use serde_json::{Value, json};

use crate::common::*;

/// The namespace the callers hold their roles in.
pub const NS: &str = "ns";
/// A namespace that does not exist.
pub const ABSENT_NS: &str = "ghostns";
/// The repository with a pushed image.
pub const REPO: &str = "ns/app";
/// A repository that does not exist, in the same namespace.
pub const GHOST: &str = "ns/ghost";
/// A repository in a namespace only cluster admins may read.
pub const FOREIGN: &str = "other/secret";

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

// ---------------------------------------------------------------------------
// Expectations and what was seen

/// An expected answer: status, and the OCI error code (`/v2/`) or `Status`
/// reason (`/api/v1`) of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exp {
    pub status: u16,
    pub code: Option<&'static str>,
}

pub const fn ok(status: u16) -> Exp {
    Exp { status, code: None }
}

pub const fn err(status: u16, code: &'static str) -> Exp {
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
pub struct Seen {
    pub status: u16,
    pub code: Option<String>,
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
pub async fn seen(response: Response) -> Seen {
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
pub struct Mismatches(Vec<String>);

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

    pub fn push(&mut self, message: String) {
        self.0.push(message);
    }

    #[track_caller]
    pub fn assert_none(self, what: &str, cells: usize) {
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
pub enum Who {
    Anonymous,
    /// A bearer token issued to an anonymous client: anonymous, except that
    /// the catalog takes it (and lists what anonymous callers may pull).
    AnonymousToken,
    /// Credentials that must be refused everywhere (401).
    Refused,
    User,
    ServiceAccount,
}

pub struct Caller {
    pub label: String,
    cred: Cred,
    pub who: Who,
    /// What it may do in [`NS`].
    pub verbs: BTreeSet<Verb>,
    /// Super users and subjects of a cluster-wide `cluster-admin` binding.
    pub cluster_admin: bool,
    /// Its verbs hold in every namespace (a cluster-wide binding), not only
    /// in [`NS`].
    pub everywhere: bool,
    /// Its role and binding subject in [`NS`], to bind it the same way in
    /// namespaces a row makes for it.
    pub binding: Option<(&'static str, Value)>,
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
    pub fn may_everywhere(&self, verb: Verb) -> bool {
        self.everywhere && self.verbs.contains(&verb)
    }

    pub fn authenticated(&self) -> bool {
        matches!(self.who, Who::User | Who::ServiceAccount)
    }

    /// The administration API takes passwords and opaque tokens, not JWTs.
    pub fn admin_api(&self) -> bool {
        self.authenticated() && !matches!(self.cred, Cred::Jwt(_))
    }
}

pub fn user_subject(name: &str) -> Value {
    json!({"kind": "User", "name": name})
}

pub fn password_of(user: &str) -> String {
    format!("{user}-secret-pw")
}

/// Every role's user name.
pub fn role_user(role: &str) -> String {
    format!("u-{}", role.trim_start_matches("system:"))
}

/// The user bound to `role` cluster-wide.
pub fn cluster_role_user(role: &str) -> String {
    format!("c-{}", role.trim_start_matches("system:"))
}

const EDITOR: &str = "registry-editor";
pub const PULLER: &str = "system:image-puller";
const SA_ROLE: &str = "system:image-builder";

/// The registry, its content and its callers.
pub struct Fixture {
    pub registry: TestRegistry,
    pub image: PushedImage,
    /// A blob only [`FOREIGN`] holds.
    pub foreign_layer: String,
    pub callers: Vec<Caller>,
    /// Unique suffixes for per-cell targets.
    counter: std::cell::Cell<usize>,
    /// berth's embedded database, read-only: what was written.
    db: sqlx::SqlitePool,
}

impl Fixture {
    pub async fn new() -> Fixture {
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

    pub fn admin(&self) -> &RegistryClient {
        self.registry.client()
    }

    pub fn next(&self) -> usize {
        let k = self.counter.get() + 1;
        self.counter.set(k);
        k
    }

    /// A client presenting `caller`'s credentials; for JWT callers, a
    /// token asked for all actions on `repos` (and the catalog).
    pub async fn client_for(
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
    pub fn unique_manifest(&self, k: usize) -> Manifest {
        let mut value = image_manifest(OCI_MANIFEST, &self.image.config, &self.image.layers);
        value["annotations"] = json!({"cell": k.to_string()});
        Manifest::from_json(OCI_MANIFEST, &value)
    }
}

/// The metadata rows a refused write must leave alone, as one text per row:
/// `(table, expression)`.
const WRITTEN_ROWS: [(&str, &str); 20] = [
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
    (
        "pull_secrets",
        "namespace || ' ' || name || ' ' || uid || ' ' || key_id",
    ),
    (
        "image_streams",
        "repository_id || ' ' || generation || ' ' || lookup_local",
    ),
    (
        "image_stream_spec_tags",
        "repository_id || ' ' || name || ' ' || generation",
    ),
    (
        "tag_revisions",
        "repository_id || ' ' || tag || ' ' || generation || ' ' || digest",
    ),
    (
        "tag_conditions",
        "repository_id || ' ' || tag || ' ' || condition_type || ' ' || status",
    ),
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
pub struct Row<R, N> {
    pub route: R,
    pub need: N,
    pub existing: Exp,
    pub absent: Option<Exp>,
}

pub fn row<R, N>(route: R, need: N, existing: Exp, absent: Option<Exp>) -> Row<R, N> {
    Row {
        route,
        need,
        existing,
        absent,
    }
}

impl<R, N> Row<R, N> {
    pub fn targets(&self) -> &'static [Target] {
        match self.absent {
            Some(_) => &[Target::Existing, Target::Absent],
            None => &[Target::Existing],
        }
    }

    /// What an allowed caller gets on `target`.
    pub fn answer(&self, target: Target) -> Exp {
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
pub async fn run_matrix<R: std::fmt::Debug + Copy, N>(
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
pub enum Target {
    Existing,
    Absent,
}

/// One request of a cell.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
    /// Repositories a JWT for it must cover.
    pub repos: Vec<String>,
}

impl Req {
    pub fn new(method: Method, path: impl Into<String>) -> Req {
        Req {
            method,
            path: path.into(),
            body: None,
            headers: Vec::new(),
            repos: Vec::new(),
        }
    }

    pub fn repos(mut self, repos: &[&str]) -> Req {
        self.repos = repos.iter().map(|r| (*r).to_owned()).collect();
        self
    }

    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Req {
        self.headers.push(("content-type", content_type.to_owned()));
        self.body = Some(body);
        self
    }

    pub fn json(self, value: Value) -> Req {
        self.body("application/json", value.to_string().into_bytes())
    }

    /// Whether the request asks for a change (anything but GET and HEAD).
    fn writes(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD)
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Req {
        self.headers.push((name, value.into()));
        self
    }

    pub async fn send(&self, client: &RegistryClient) -> Seen {
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
