//! Projects: who sees them, who makes and deletes them.

use super::names::*;
use super::*;
use crate::auth::roles::Verb;
use crate::metadata::access::Namespace;

impl Admin<'_> {
    /// Projects where the caller has any role (cluster admins: all).
    pub async fn projects(&self) -> AdminResult<Vec<Namespace>> {
        let policy = self.policy().await?;
        let mut all = self.store().namespaces().await?;
        all.retain(|ns| !policy.verbs(&self.caller.principal, &ns.name).is_empty());
        Ok(all)
    }

    /// Creates a project; the caller becomes its `registry-admin`.
    pub async fn create_project(&self, name: Option<&str>) -> AdminResult<Namespace> {
        let policy = self.policy().await?;
        if !policy.is_cluster_admin(&self.caller.principal)
            && !self.access.may_create_namespace(self.caller, &policy)
        {
            return Err(self.forbidden("create projects"));
        }
        let name = name.ok_or_else(|| AdminError::Invalid("metadata.name: required".into()))?;
        if !valid_project_name(name) {
            return Err(AdminError::Invalid(format!(
                "project name {name:?} is invalid: lowercase letters and digits separated by \
                 single '.', '_' or '-', at most {MAX_PROJECT_NAME} characters"
            )));
        }
        if !self
            .access
            .create_namespace(name, &self.caller.principal)
            .await?
        {
            return Err(already_exists("projects", name));
        }
        self.access.policy_changed();
        self.store()
            .namespace(name)
            .await?
            .ok_or_else(|| not_found("projects", name))
    }

    pub async fn project(&self, name: &str) -> AdminResult<Namespace> {
        self.visible_namespace(name)
            .await
            .map(|(ns, _)| ns)
            .map_err(|e| project_not_found(e, name))
    }

    /// Deletes a project with its service accounts, their tokens, its role
    /// bindings and its repositories (see [`AccessStore::delete_namespace`]).
    pub async fn delete_project(&self, name: &str) -> AdminResult<()> {
        let (_, verbs) = self
            .visible_namespace(name)
            .await
            .map_err(|e| project_not_found(e, name))?;
        if !verbs.contains(Verb::Admin) {
            return Err(self.forbidden(&format!("delete project \"{name}\"")));
        }
        if !self.store().delete_namespace(name).await? {
            return Err(not_found("projects", name));
        }
        self.access.policy_changed();
        tracing::info!(namespace = name, by = %self.caller.principal.name(), "project deleted");
        Ok(())
    }
}

/// Says "projects" rather than "namespaces" in a not-found message.
fn project_not_found(error: AdminError, name: &str) -> AdminError {
    match error {
        AdminError::NotFound(_) => not_found("projects", name),
        other => other,
    }
}
