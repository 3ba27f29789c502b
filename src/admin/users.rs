//! Users, their passwords, and unlocking them.

use super::names::*;
use super::*;
use crate::auth::policy::{GROUP_AUTHENTICATED, GROUP_SERVICE_ACCOUNTS, Principal};
use crate::metadata::access::{User, UserDeletion};
use crate::metadata::now;

impl Admin<'_> {
    pub async fn users(&self) -> AdminResult<Vec<UserInfo>> {
        let policy = self.require_cluster_admin("list users").await?;
        let users = self.store().users().await?;
        Ok(users.iter().map(|u| user_info(&policy, u)).collect())
    }

    pub async fn create_user(&self, new: &NewUser) -> AdminResult<UserInfo> {
        self.require_cluster_admin("create users").await?;
        let name = require_object_name("user", new.name.as_deref())?;
        let email = require_email(new.email.as_deref())?;
        let password_hash = match new.password.as_deref() {
            Some(secret) => {
                require_password(secret)?;
                Some(hash_password(secret).await?)
            }
            None => None,
        };
        let user = User {
            name: name.clone(),
            uid: uuid::Uuid::new_v4().to_string(),
            password_hash,
            email,
            super_user: new.super_user,
            created_at: now(),
            credential_epoch: 0,
        };
        if !self.store().create_user(&user).await? {
            return Err(already_exists("users", &name));
        }
        self.access.policy_changed();
        tracing::info!(user = %name, super_user = new.super_user, by = %self.caller.principal.name(), "user created");
        let policy = self.access.policy().await?;
        Ok(user_info(&policy, &user))
    }

    /// Whether the caller is the user `name`.
    fn is_self(&self, name: &str) -> bool {
        matches!(&self.caller.principal, Principal::User(me) if me == name)
    }

    /// `~` (however the client encoded it) names the caller.
    fn resolve<'n>(&'n self, name: &'n str) -> &'n str {
        match (&self.caller.principal, name) {
            (Principal::User(me), "~") => me,
            _ => name,
        }
    }

    /// A user: cluster admins see anyone, users themselves.
    pub async fn user(&self, name: &str) -> AdminResult<UserInfo> {
        if name == "~" {
            return self.me().await;
        }
        let policy = self.policy().await?;
        if !self.is_self(name) && !policy.is_cluster_admin(&self.caller.principal) {
            return Err(self.forbidden("get users"));
        }
        self.user_record(&policy, name).await
    }

    async fn user_record(&self, policy: &PolicySnapshot, name: &str) -> AdminResult<UserInfo> {
        let user = self
            .store()
            .user(name)
            .await?
            .ok_or_else(|| not_found("users", name))?;
        Ok(user_info(policy, &user))
    }

    /// The caller: a user, or a service account shown as a user named
    /// `system:serviceaccount:NS:NAME`.
    pub async fn me(&self) -> AdminResult<UserInfo> {
        let policy = self.policy().await?;
        match self.principal()? {
            Principal::User(name) => self.user_record(&policy, name).await,
            Principal::ServiceAccount { namespace, name } => {
                let account = self.store().service_account(namespace, name).await?;
                Ok(UserInfo {
                    name: self.caller.principal.name(),
                    uid: account.as_ref().map(|a| a.uid.clone()),
                    created_at: account.as_ref().map(|a| a.created_at),
                    email: None,
                    groups: vec![
                        GROUP_AUTHENTICATED.to_owned(),
                        GROUP_SERVICE_ACCOUNTS.to_owned(),
                        format!("{GROUP_SERVICE_ACCOUNTS}:{namespace}"),
                    ],
                    super_user: false,
                })
            }
            Principal::Anonymous => Err(AdminError::Unauthorized { challenge: None }),
        }
    }

    /// Deletes a user and revokes its tokens. Its bindings stay. The last
    /// super user is not deleted: nobody could administer the registry
    /// after it.
    pub async fn delete_user(&self, name: &str) -> AdminResult<()> {
        self.require_cluster_admin("delete users").await?;
        match self
            .store()
            .delete_user_unless_last_super_user(name, self.access.configured_super_users())
            .await?
        {
            UserDeletion::Deleted => {}
            UserDeletion::NotFound => return Err(not_found("users", name)),
            UserDeletion::LastSuperUser => {
                return Err(AdminError::Conflict(format!(
                    "user \"{name}\" is the last super user; make another super user \
                     (berth create user NAME --super-user) before deleting it"
                )));
            }
        }
        self.access.policy_changed();
        tracing::info!(user = name, by = %self.caller.principal.name(), "user deleted");
        Ok(())
    }

    /// Forgets the failed logins counted against `name` (cluster admins):
    /// whatever addresses guessed at it may try again, and its logins are no
    /// longer slowed down. Addresses locked out as a whole stay so. Returns
    /// whether the user was locked out anywhere or slowed down.
    pub async fn unlock_user(&self, name: &str) -> AdminResult<bool> {
        self.require_cluster_admin("unlock users").await?;
        if self.store().user(name).await?.is_none() {
            return Err(not_found("users", name));
        }
        let was_locked = self.access.unlock(name).await?;
        tracing::info!(user = name, was_locked, by = %self.caller.principal.name(), "user unlocked");
        Ok(was_locked)
    }

    /// Sets a password: the user itself or a cluster admin.
    pub async fn set_password(&self, name: &str, secret: Option<&str>) -> AdminResult<()> {
        let name = self.resolve(name);
        let policy = self.policy().await?;
        if !self.is_self(name) && !policy.is_cluster_admin(&self.caller.principal) {
            return Err(self.forbidden(&format!("change the password of user \"{name}\"")));
        }
        let secret = secret.ok_or_else(|| AdminError::Invalid("password: required".into()))?;
        require_password(secret)?;
        if self.store().user(name).await?.is_none() {
            return Err(not_found("users", name));
        }
        let hash = hash_password(secret).await?;
        if !self.store().set_password(name, Some(&hash)).await? {
            return Err(not_found("users", name));
        }
        self.access.policy_changed();
        tracing::info!(user = name, by = %self.caller.principal.name(), "password changed");
        Ok(())
    }
}
