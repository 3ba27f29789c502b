//! Service accounts of a project.

use super::names::*;
use super::*;
use crate::auth::roles::Verb;
use crate::metadata::access::ServiceAccount;
use crate::metadata::now;

impl Admin<'_> {
    pub async fn service_accounts(&self, namespace: &str) -> AdminResult<Vec<ServiceAccount>> {
        self.namespace_for(namespace, Verb::View, "list serviceaccounts")
            .await?;
        Ok(self.store().service_accounts(namespace).await?)
    }

    pub async fn service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> AdminResult<ServiceAccount> {
        self.namespace_for(namespace, Verb::View, "get serviceaccounts")
            .await?;
        self.store()
            .service_account(namespace, name)
            .await?
            .ok_or_else(|| not_found("serviceaccounts", name))
    }

    pub async fn create_service_account(
        &self,
        namespace: &str,
        name: Option<&str>,
    ) -> AdminResult<ServiceAccount> {
        self.namespace_for(namespace, Verb::Admin, "create serviceaccounts")
            .await?;
        let name = require_object_name("service account", name)?;
        let account = ServiceAccount {
            namespace: namespace.to_owned(),
            name: name.clone(),
            uid: uuid::Uuid::new_v4().to_string(),
            created_at: now(),
        };
        if !self.store().create_service_account(&account).await? {
            return Err(already_exists("serviceaccounts", &name));
        }
        self.access.policy_changed();
        Ok(account)
    }

    /// Deletes the account and revokes its tokens.
    pub async fn delete_service_account(&self, namespace: &str, name: &str) -> AdminResult<()> {
        self.namespace_for(namespace, Verb::Admin, "delete serviceaccounts")
            .await?;
        if !self.store().delete_service_account(namespace, name).await? {
            return Err(not_found("serviceaccounts", name));
        }
        self.access.policy_changed();
        Ok(())
    }
}
