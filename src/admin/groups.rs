//! Groups of users.

use super::names::*;
use super::*;
use crate::metadata::access::Group;

impl Admin<'_> {
    fn member_names(users: &[String]) -> AdminResult<Vec<String>> {
        let mut names = Vec::with_capacity(users.len());
        for user in users {
            if user.starts_with("system:") || !valid_object_name(user) {
                return Err(AdminError::Invalid(format!(
                    "users: {user:?} is not a valid user name"
                )));
            }
            names.push(user.clone());
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    pub async fn groups(&self) -> AdminResult<Vec<Group>> {
        self.require_cluster_admin("list groups").await?;
        Ok(self.store().groups().await?)
    }

    pub async fn group(&self, name: &str) -> AdminResult<Group> {
        self.require_cluster_admin("get groups").await?;
        self.store()
            .group(name)
            .await?
            .ok_or_else(|| not_found("groups", name))
    }

    /// Creates a group. Members need not exist yet.
    pub async fn create_group(&self, name: Option<&str>, users: &[String]) -> AdminResult<Group> {
        self.require_cluster_admin("create groups").await?;
        let name = require_object_name("group", name)?;
        let users = Self::member_names(users)?;
        if !self.store().create_group(&name, &users).await? {
            return Err(already_exists("groups", &name));
        }
        self.access.policy_changed();
        self.store()
            .group(&name)
            .await?
            .ok_or_else(|| not_found("groups", &name))
    }

    /// Replaces a group's members.
    pub async fn replace_group(&self, name: &str, users: &[String]) -> AdminResult<Group> {
        self.require_cluster_admin("change groups").await?;
        let users = Self::member_names(users)?;
        if self.store().group(name).await?.is_none() {
            return Err(not_found("groups", name));
        }
        let group = self.store().put_group(name, &users).await?;
        self.access.policy_changed();
        Ok(group)
    }

    pub async fn delete_group(&self, name: &str) -> AdminResult<()> {
        self.require_cluster_admin("delete groups").await?;
        if !self.store().delete_group(name).await? {
            return Err(not_found("groups", name));
        }
        self.access.policy_changed();
        Ok(())
    }
}
