//! Role bindings in a project and cluster-wide, and who-can.

use std::collections::BTreeMap;

use super::names::*;
use super::subjects::*;
use super::*;
use crate::auth::roles::{ROLES, Verb};
use crate::metadata::access::{Binding, BindingSubject, SubjectKind};

impl Admin<'_> {
    /// Checks the caller may read (or change) bindings in `namespace`
    /// (`None`: cluster-wide).
    async fn binding_scope(&self, namespace: Option<&str>, write: bool) -> AdminResult<()> {
        let what = if write {
            "change rolebindings"
        } else {
            "list rolebindings"
        };
        match namespace {
            None => self
                .require_cluster_admin(if write {
                    "change clusterrolebindings"
                } else {
                    "list clusterrolebindings"
                })
                .await
                .map(|_| ()),
            Some(ns) => self
                .namespace_for(ns, if write { Verb::Admin } else { Verb::View }, what)
                .await
                .map(|_| ()),
        }
    }

    /// Bindings in `namespace` (`None`: cluster-wide), one per role with
    /// subjects, in the order of [`ROLES`].
    async fn load_bindings(&self, namespace: Option<&str>) -> AdminResult<Vec<RoleBinding>> {
        let mut by_role: BTreeMap<(usize, String), Vec<BindingSubject>> = BTreeMap::new();
        for binding in self.store().bindings().await? {
            if binding.namespace.as_deref() != namespace {
                continue;
            }
            let rank = ROLES
                .iter()
                .position(|r| *r == binding.role)
                .unwrap_or(ROLES.len());
            by_role
                .entry((rank, binding.role))
                .or_default()
                .push(binding.subject);
        }
        Ok(by_role
            .into_iter()
            .map(|((_, role), mut subjects)| {
                subjects.sort();
                RoleBinding {
                    namespace: namespace.map(str::to_owned),
                    role,
                    subjects,
                }
            })
            .collect())
    }

    async fn load_binding(&self, namespace: Option<&str>, role: &str) -> AdminResult<RoleBinding> {
        Ok(self
            .load_bindings(namespace)
            .await?
            .into_iter()
            .find(|b| b.role == role)
            .unwrap_or(RoleBinding {
                namespace: namespace.map(str::to_owned),
                role: role.to_owned(),
                subjects: Vec::new(),
            }))
    }

    pub async fn role_bindings(&self, namespace: Option<&str>) -> AdminResult<Vec<RoleBinding>> {
        self.binding_scope(namespace, false).await?;
        self.load_bindings(namespace).await
    }

    /// Checks the caller may read (or change) the binding of `role` in
    /// `namespace`, and that `role` is a role.
    async fn role_scope(
        &self,
        namespace: Option<&str>,
        role: &str,
        write: bool,
    ) -> AdminResult<()> {
        self.binding_scope(namespace, write).await?;
        require_role(role)
    }

    /// The binding of `role`; not found when nobody is bound to it.
    async fn bound(&self, namespace: Option<&str>, role: &str) -> AdminResult<RoleBinding> {
        let binding = self.load_binding(namespace, role).await?;
        if binding.subjects.is_empty() {
            return Err(not_found(binding_resource(namespace), role));
        }
        Ok(binding)
    }

    /// One role's binding; not found when nobody is bound to it.
    pub async fn role_binding(
        &self,
        namespace: Option<&str>,
        role: &str,
    ) -> AdminResult<RoleBinding> {
        self.role_scope(namespace, role, false).await?;
        self.bound(namespace, role).await
    }

    fn parse_subjects(
        &self,
        namespace: Option<&str>,
        subjects: &[SubjectRef],
    ) -> AdminResult<Vec<BindingSubject>> {
        if subjects.is_empty() {
            return Err(AdminError::Invalid(
                "subjects: at least one is required".into(),
            ));
        }
        subjects
            .iter()
            .map(|s| parse_subject(s, namespace))
            .collect()
    }

    pub async fn add_subjects(
        &self,
        namespace: Option<&str>,
        role: &str,
        subjects: &[SubjectRef],
    ) -> AdminResult<RoleBinding> {
        self.change_subjects(namespace, role, subjects, Change::Bind)
            .await
    }

    /// Unbinds `subjects` (those not bound are ignored); answers what is
    /// left, possibly no subject at all.
    pub async fn remove_subjects(
        &self,
        namespace: Option<&str>,
        role: &str,
        subjects: &[SubjectRef],
    ) -> AdminResult<RoleBinding> {
        self.change_subjects(namespace, role, subjects, Change::Unbind)
            .await
    }

    /// Binds or unbinds `subjects`; unbinding from a binding that has no
    /// subject is not found.
    async fn change_subjects(
        &self,
        namespace: Option<&str>,
        role: &str,
        subjects: &[SubjectRef],
        change: Change,
    ) -> AdminResult<RoleBinding> {
        self.role_scope(namespace, role, true).await?;
        let subjects = self.parse_subjects(namespace, subjects)?;
        let done = match change {
            Change::Bind => "subjects bound",
            Change::Unbind => {
                self.bound(namespace, role).await?;
                "subjects unbound"
            }
        };
        self.change_bindings(namespace, role, subjects, change)
            .await?;
        tracing::info!(namespace = ?namespace, role, by = %self.caller.principal.name(), "{done}");
        self.load_binding(namespace, role).await
    }

    pub async fn delete_role_binding(
        &self,
        namespace: Option<&str>,
        role: &str,
    ) -> AdminResult<()> {
        self.role_scope(namespace, role, true).await?;
        let binding = self.bound(namespace, role).await?;
        self.change_bindings(namespace, role, binding.subjects, Change::Unbind)
            .await?;
        tracing::info!(namespace = ?namespace, role, by = %self.caller.principal.name(), "binding deleted");
        Ok(())
    }

    /// Binds or unbinds each of `subjects` to `role`, then makes the change
    /// apply to the next request.
    async fn change_bindings(
        &self,
        namespace: Option<&str>,
        role: &str,
        subjects: Vec<BindingSubject>,
        change: Change,
    ) -> AdminResult<()> {
        for subject in subjects {
            let binding = Binding {
                namespace: namespace.map(str::to_owned),
                role: role.to_owned(),
                subject,
            };
            match change {
                Change::Bind => self.store().add_binding(&binding).await?,
                Change::Unbind => self.store().remove_binding(&binding).await?,
            };
        }
        self.access.policy_changed();
        Ok(())
    }

    /// Who may `verb` (pull, push or delete) in `namespace`: bound users,
    /// service accounts and groups, and super users.
    pub async fn who_can(&self, namespace: &str, verb: Option<&str>) -> AdminResult<WhoCan> {
        self.namespace_for(namespace, Verb::View, "list rolebindings")
            .await?;
        let verb = verb.ok_or_else(|| {
            AdminError::BadRequest(
                "the verb query parameter is required (pull, push or delete)".into(),
            )
        })?;
        let verb = Verb::parse_repository_action(verb).ok_or_else(|| {
            AdminError::Invalid(format!("verb {verb:?} is invalid: pull, push or delete"))
        })?;
        let mut users = Vec::new();
        let mut groups = Vec::new();
        for subject in self.access.who_can(namespace, verb).await? {
            match subject.kind {
                SubjectKind::Group => groups.push(subject.name),
                _ => users.push(subject_display(&subject)),
            }
        }
        users.sort();
        users.dedup();
        groups.sort();
        groups.dedup();
        Ok(WhoCan {
            namespace: namespace.to_owned(),
            verb,
            users,
            groups,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Change {
    Bind,
    Unbind,
}

fn binding_resource(namespace: Option<&str>) -> &'static str {
    match namespace {
        Some(_) => "rolebindings",
        None => "clusterrolebindings",
    }
}
