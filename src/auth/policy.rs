//! Who may do what: role bindings evaluated for a principal in a namespace.
//!
//! The whole policy (users' super-user flags, group memberships, bindings,
//! namespaces) is small, so it is held in memory as a [`PolicySnapshot`] and
//! reloaded only when the store's policy version moves. Local changes
//! invalidate it at once; other replicas notice within
//! [`VERSION_CHECK_INTERVAL`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::bearer::PasswordStamp;
use super::roles::{CLUSTER_ADMIN, Verb, Verbs, verbs_of};
use crate::metadata::MetadataError;
use crate::metadata::access::{AccessStore, Binding, BindingSubject, SubjectKind};
use crate::metadata::quotas::NamespaceQuota;

/// How stale a replica's view of another replica's policy change may be.
pub const VERSION_CHECK_INTERVAL: Duration = Duration::from_secs(1);

pub const GROUP_AUTHENTICATED: &str = "system:authenticated";
pub const GROUP_UNAUTHENTICATED: &str = "system:unauthenticated";
pub const GROUP_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    Anonymous,
    User(String),
    ServiceAccount { namespace: String, name: String },
}

impl Principal {
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Principal::Anonymous)
    }

    /// The name OpenShift users know: `alice`,
    /// `system:serviceaccount:ns:builder`, `system:anonymous`.
    pub fn name(&self) -> String {
        match self {
            Principal::Anonymous => "system:anonymous".into(),
            Principal::User(name) => name.clone(),
            Principal::ServiceAccount { namespace, name } => {
                format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")
            }
        }
    }

    /// Parses [`name`](Self::name) back (`""` is anonymous).
    pub fn from_name(name: &str) -> Principal {
        if name.is_empty() || name == "system:anonymous" {
            return Principal::Anonymous;
        }
        match name
            .strip_prefix(SERVICE_ACCOUNT_PREFIX)
            .and_then(|rest| rest.split_once(':'))
        {
            Some((namespace, account)) => Principal::ServiceAccount {
                namespace: namespace.into(),
                name: account.into(),
            },
            None => Principal::User(name.into()),
        }
    }

    /// The built-in groups whose bindings apply to this principal.
    ///
    /// What is granted to `system:unauthenticated` is granted to everyone:
    /// binding it is how a namespace is made public, and a client that
    /// happens to be logged in must not lose what anonymous callers have.
    fn builtin_groups(&self) -> Vec<String> {
        match self {
            Principal::Anonymous => vec![GROUP_UNAUTHENTICATED.into()],
            Principal::User(_) => vec![GROUP_UNAUTHENTICATED.into(), GROUP_AUTHENTICATED.into()],
            Principal::ServiceAccount { namespace, .. } => vec![
                GROUP_UNAUTHENTICATED.into(),
                GROUP_AUTHENTICATED.into(),
                GROUP_SERVICE_ACCOUNTS.into(),
                format!("{GROUP_SERVICE_ACCOUNTS}:{namespace}"),
            ],
        }
    }
}

/// A binding subject as a user types it: `alice`, a group name, or
/// `system:serviceaccount:ns:name` (a service account).
pub fn user_subject(name: &str) -> BindingSubject {
    match Principal::from_name(name) {
        Principal::ServiceAccount { namespace, name } => BindingSubject {
            kind: SubjectKind::ServiceAccount,
            name,
            namespace,
        },
        _ => BindingSubject {
            kind: SubjectKind::User,
            name: name.into(),
            namespace: String::new(),
        },
    }
}

pub fn group_subject(name: &str) -> BindingSubject {
    BindingSubject {
        kind: SubjectKind::Group,
        name: name.into(),
        namespace: String::new(),
    }
}

/// The policy at one version.
#[derive(Debug, Default)]
pub struct PolicySnapshot {
    pub version: i64,
    super_users: HashSet<String>,
    /// Users in the store, with the stamp of their current password.
    users: HashMap<String, PasswordStamp>,
    groups_of_user: HashMap<String, Vec<String>>,
    cluster: HashMap<BindingSubject, Verbs>,
    /// Subjects bound to `cluster-admin` cluster-wide. Kept apart from
    /// `cluster`: `registry-admin` allows the same verbs, yet bound
    /// cluster-wide it makes a project admin everywhere, not a cluster admin.
    cluster_admins: HashSet<BindingSubject>,
    namespaced: HashMap<String, HashMap<BindingSubject, Verbs>>,
    namespaces: HashSet<String>,
    /// Namespaces' quotas: held here so that a push into a namespace
    /// without one pays no query to learn it.
    quotas: HashMap<String, NamespaceQuota>,
}

impl PolicySnapshot {
    async fn load(
        store: &dyn AccessStore,
        configured_super_users: &[String],
    ) -> Result<Self, MetadataError> {
        // Read the version first: a change racing the reads below then shows
        // up as a newer version at the next check.
        let version = store.policy_version().await?;
        let users = store.users().await?;
        let groups = store.groups().await?;
        let bindings = store.bindings().await?;
        let namespaces = store.namespaces().await?;
        let quotas = store.namespace_quotas().await?;

        let mut snapshot = PolicySnapshot {
            version,
            ..Default::default()
        };
        for user in &users {
            snapshot.users.insert(
                user.name.clone(),
                PasswordStamp {
                    uid: user.uid.clone(),
                    epoch: user.credential_epoch,
                },
            );
            if user.super_user {
                snapshot.super_users.insert(user.name.clone());
            }
        }
        snapshot
            .super_users
            .extend(configured_super_users.iter().cloned());
        for group in groups {
            for user in group.users {
                snapshot
                    .groups_of_user
                    .entry(user)
                    .or_default()
                    .push(group.name.clone());
            }
        }
        for binding in bindings {
            let Some(verbs) = verbs_of(&binding.role) else {
                continue;
            };
            snapshot.grant(binding, verbs);
        }
        snapshot.namespaces = namespaces.into_iter().map(|n| n.name).collect();
        snapshot.quotas = quotas
            .into_iter()
            .map(|q| (q.namespace.clone(), q))
            .collect();
        Ok(snapshot)
    }

    /// Gives `binding`'s subject the `verbs` of its role, in its namespace
    /// or cluster-wide.
    fn grant(&mut self, binding: Binding, verbs: Verbs) {
        if binding.namespace.is_none() && binding.role == CLUSTER_ADMIN {
            self.cluster_admins.insert(binding.subject.clone());
        }
        let table = match &binding.namespace {
            None => &mut self.cluster,
            Some(ns) => self.namespaced.entry(ns.clone()).or_default(),
        };
        let entry = table.entry(binding.subject).or_default();
        *entry = entry.union(verbs);
    }

    /// The binding subjects `principal` matches: itself and its groups.
    fn subjects(&self, principal: &Principal) -> Vec<BindingSubject> {
        let mut subjects: Vec<BindingSubject> = principal
            .builtin_groups()
            .iter()
            .map(|g| group_subject(g))
            .collect();
        match principal {
            Principal::Anonymous => {}
            Principal::User(name) => {
                subjects.push(user_subject(name));
                for group in self.groups_of_user.get(name).into_iter().flatten() {
                    subjects.push(group_subject(group));
                }
            }
            Principal::ServiceAccount { namespace, name } => subjects.push(BindingSubject {
                kind: SubjectKind::ServiceAccount,
                name: name.clone(),
                namespace: namespace.clone(),
            }),
        }
        subjects
    }

    /// Super users, and whoever is bound to `cluster-admin` cluster-wide.
    pub fn is_cluster_admin(&self, principal: &Principal) -> bool {
        if let Principal::User(name) = principal
            && self.super_users.contains(name)
        {
            return true;
        }
        self.subjects(principal)
            .iter()
            .any(|s| self.cluster_admins.contains(s))
    }

    /// Whether `name` is a super user: flagged so in the store or named in
    /// the configuration (`admin`, `auth.superUsers`).
    pub fn is_super_user(&self, name: &str) -> bool {
        self.super_users.contains(name)
    }

    /// The named groups `user` is a member of, sorted.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        let mut groups = self.groups_of_user.get(user).cloned().unwrap_or_default();
        groups.sort();
        groups
    }

    pub fn user_exists(&self, name: &str) -> bool {
        self.users.contains_key(name)
    }

    /// Whether `stamp` is that of `name`'s current password: the same user
    /// (not one deleted and made again) and no password change since.
    pub fn password_current(&self, name: &str, stamp: &PasswordStamp) -> bool {
        self.users.get(name) == Some(stamp)
    }

    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.namespaces.contains(namespace)
    }

    /// The namespace's quota, if it has one.
    pub fn quota(&self, namespace: &str) -> Option<&NamespaceQuota> {
        self.quotas.get(namespace)
    }

    /// Everything `principal` may do in `namespace`.
    pub fn verbs(&self, principal: &Principal, namespace: &str) -> Verbs {
        if self.is_cluster_admin(principal) {
            return Verbs::all();
        }
        let local = self.namespaced.get(namespace);
        self.subjects(principal)
            .iter()
            .fold(Verbs::NONE, |acc, subject| {
                let cluster = self.cluster.get(subject).copied().unwrap_or_default();
                let here = local
                    .and_then(|l| l.get(subject))
                    .copied()
                    .unwrap_or_default();
                acc.union(cluster).union(here)
            })
    }

    pub fn allows(&self, principal: &Principal, namespace: &str, verb: Verb) -> bool {
        self.verbs(principal, namespace).contains(verb)
    }

    /// Subjects bound (in `namespace` or cluster-wide) to a role allowing
    /// `verb`, plus super users: the answer to `who-can`.
    pub fn who_can(&self, namespace: &str, verb: Verb) -> Vec<BindingSubject> {
        let mut who: Vec<BindingSubject> = self
            .cluster
            .iter()
            .chain(self.namespaced.get(namespace).into_iter().flatten())
            .filter(|(_, verbs)| verbs.contains(verb))
            .map(|(s, _)| s.clone())
            .chain(self.super_users.iter().map(|u| user_subject(u)))
            .collect();
        who.sort();
        who.dedup();
        who
    }
}

/// The current [`PolicySnapshot`], reloaded when the store says it changed.
pub struct PolicyCache {
    store: Arc<dyn AccessStore>,
    configured_super_users: Vec<String>,
    state: RwLock<(Arc<PolicySnapshot>, Option<Instant>)>,
    reload: tokio::sync::Mutex<()>,
}

impl PolicyCache {
    pub fn new(store: Arc<dyn AccessStore>, configured_super_users: Vec<String>) -> Self {
        PolicyCache {
            store,
            configured_super_users,
            state: RwLock::new((Arc::new(PolicySnapshot::default()), None)),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    pub fn configured_super_users(&self) -> &[String] {
        &self.configured_super_users
    }

    fn cached(&self) -> (Arc<PolicySnapshot>, Option<Instant>) {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        (state.0.clone(), state.1)
    }

    /// Forgets the snapshot; the next [`current`](Self::current) reloads.
    pub fn invalidate(&self) {
        self.state.write().unwrap_or_else(|e| e.into_inner()).1 = None;
    }

    pub async fn current(&self) -> Result<Arc<PolicySnapshot>, MetadataError> {
        let (snapshot, checked) = self.cached();
        if checked.is_some_and(|at| at.elapsed() < VERSION_CHECK_INTERVAL) {
            return Ok(snapshot);
        }
        // A snapshot that is merely due for its version check keeps serving
        // while one request checks: making every request queue behind that
        // check would stall the whole registry once a second. Only a snapshot
        // invalidated by a change made here must not be served again.
        let _reloading = match (checked, self.reload.try_lock()) {
            (_, Ok(guard)) => guard,
            (Some(_), Err(_)) => return Ok(snapshot),
            (None, Err(_)) => self.reload.lock().await,
        };
        // Another request may have reloaded while this one waited.
        let (snapshot, checked) = self.cached();
        if checked.is_some_and(|at| at.elapsed() < VERSION_CHECK_INTERVAL) {
            return Ok(snapshot);
        }
        let version = self.store.policy_version().await?;
        let fresh = if checked.is_some() && version == snapshot.version {
            snapshot
        } else {
            Arc::new(PolicySnapshot::load(self.store.as_ref(), &self.configured_super_users).await?)
        };
        *self.state.write().unwrap_or_else(|e| e.into_inner()) =
            (fresh.clone(), Some(Instant::now()));
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(
        bindings: &[(Option<&str>, &str, BindingSubject)],
        groups: &[(&str, &str)],
    ) -> PolicySnapshot {
        let mut s = PolicySnapshot::default();
        for (user, group) in groups {
            s.groups_of_user
                .entry(user.to_string())
                .or_default()
                .push(group.to_string());
        }
        for (ns, role, subject) in bindings {
            let b = Binding {
                namespace: ns.map(str::to_owned),
                role: role.to_string(),
                subject: subject.clone(),
            };
            let verbs = verbs_of(&b.role).unwrap();
            s.grant(b, verbs);
        }
        s
    }

    fn user(n: &str) -> Principal {
        Principal::User(n.into())
    }

    fn sa(ns: &str, n: &str) -> Principal {
        Principal::ServiceAccount {
            namespace: ns.into(),
            name: n.into(),
        }
    }

    #[test]
    fn principal_names_round_trip() {
        for p in [Principal::Anonymous, user("alice"), sa("myapp", "default")] {
            assert_eq!(Principal::from_name(&p.name()), p);
        }
        assert_eq!(sa("ns", "b").name(), "system:serviceaccount:ns:b");
        assert_eq!(
            user_subject("system:serviceaccount:ns:b").kind,
            SubjectKind::ServiceAccount
        );
    }

    #[test]
    fn bindings_apply_in_their_namespace_only() {
        let s = snapshot(
            &[(Some("proj"), "system:image-puller", user_subject("alice"))],
            &[],
        );
        assert!(s.allows(&user("alice"), "proj", Verb::Pull));
        assert!(!s.allows(&user("alice"), "proj", Verb::Push));
        assert!(!s.allows(&user("alice"), "other", Verb::Pull));
        assert!(!s.allows(&user("bob"), "proj", Verb::Pull));
    }

    #[test]
    fn groups_builtin_and_named() {
        let s = snapshot(
            &[
                (
                    Some("shared"),
                    "system:image-puller",
                    group_subject("system:serviceaccounts:myapp"),
                ),
                (
                    Some("public"),
                    "system:image-puller",
                    group_subject(GROUP_UNAUTHENTICATED),
                ),
                (Some("team"), "registry-editor", group_subject("devs")),
                (
                    Some("all"),
                    "registry-viewer",
                    group_subject(GROUP_AUTHENTICATED),
                ),
            ],
            &[("carol", "devs")],
        );
        // The shared-project flow.
        assert!(s.allows(&sa("myapp", "default"), "shared", Verb::Pull));
        assert!(!s.allows(&sa("other", "default"), "shared", Verb::Pull));
        // Public namespace.
        assert!(s.allows(&Principal::Anonymous, "public", Verb::Pull));
        assert!(!s.allows(&Principal::Anonymous, "public", Verb::Push));
        // What anonymous callers may do, signed-in ones may too.
        assert!(s.allows(&user("alice"), "public", Verb::Pull));
        assert!(s.allows(&sa("x", "y"), "public", Verb::Pull));
        assert!(s.allows(&user("carol"), "team", Verb::Delete));
        assert!(!s.allows(&user("alice"), "team", Verb::Pull));
        assert!(s.allows(&user("alice"), "all", Verb::View));
        assert!(s.allows(&sa("x", "y"), "all", Verb::Pull));
        assert!(!s.allows(&Principal::Anonymous, "all", Verb::Pull));
    }

    #[test]
    fn cluster_bindings_and_super_users() {
        let mut s = snapshot(
            &[
                (None, "cluster-admin", user_subject("root")),
                (None, "system:image-puller", user_subject("reader")),
                (None, "registry-admin", user_subject("delegate")),
                (None, "cluster-admin", group_subject("ops")),
            ],
            &[("olga", "ops")],
        );
        s.super_users.insert("admin".into());
        assert!(s.is_cluster_admin(&user("root")));
        assert!(s.is_cluster_admin(&user("admin")));
        assert!(s.is_cluster_admin(&user("olga")), "through a group");
        assert!(!s.is_cluster_admin(&user("reader")));
        // registry-admin cluster-wide: every verb in every project, yet no
        // cluster administration.
        assert!(!s.is_cluster_admin(&user("delegate")));
        assert_eq!(s.verbs(&user("delegate"), "anything"), Verbs::all());
        assert_eq!(s.verbs(&user("root"), "anything"), Verbs::all());
        assert!(s.allows(&user("reader"), "anything", Verb::Pull));
        assert!(!s.allows(&user("reader"), "anything", Verb::Push));
        let who = s.who_can("anything", Verb::Pull);
        assert!(who.contains(&user_subject("reader")) && who.contains(&user_subject("admin")));
        assert!(
            !s.who_can("anything", Verb::Push)
                .contains(&user_subject("reader"))
        );
    }
}
