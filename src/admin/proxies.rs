//! Proxy namespaces (`berth create proxy`): who may make, see and remove
//! them. Making one makes its project, as `berth new-project` does (the
//! caller becomes its `registry-admin`); seeing one takes a role in it;
//! removing one (the namespace stays, with what it cached) takes admin.

use super::*;
use crate::auth::roles::Verb;
use crate::domain::proxies::{NewProxy, Proxies, ProxyError, ProxyNamespace, parse_upstream};

impl From<ProxyError> for AdminError {
    fn from(error: ProxyError) -> AdminError {
        match error {
            ProxyError::Invalid(message) => AdminError::Invalid(message),
            ProxyError::Store(e) => AdminError::Store(e),
        }
    }
}

impl Admin<'_> {
    /// The proxy namespaces where the caller has a role.
    pub async fn proxies(&self, proxies: &Proxies) -> AdminResult<Vec<ProxyNamespace>> {
        let policy = self.policy().await?;
        let mut all = proxies.all();
        all.retain(|p| {
            !policy
                .verbs(&self.caller.principal, &p.namespace)
                .is_empty()
        });
        Ok(all)
    }

    pub async fn proxy(&self, proxies: &Proxies, name: &str) -> AdminResult<ProxyNamespace> {
        self.visible_namespace(name).await?;
        proxies.get(name).ok_or_else(|| not_found("proxies", name))
    }

    /// Makes the project `name` and makes it a proxy of `new.upstream`.
    pub async fn create_proxy(
        &self,
        proxies: &Proxies,
        name: Option<&str>,
        new: &NewProxy,
    ) -> AdminResult<ProxyNamespace> {
        // Refused before the project is made.
        parse_upstream(&new.upstream)?;
        let project = self.create_project(name).await?;
        let by = self.caller.principal.name();
        let made = proxies.set(&project.name, new, Some(&by)).await;
        if made.is_err()
            && let Err(e) = self.delete_project(&project.name).await
        {
            // Leave no project behind that the caller did not get.
            tracing::warn!(namespace = %project.name, error = %e, "removing the project of a proxy that could not be set");
        }
        let proxy = made?;
        tracing::info!(namespace = %proxy.namespace, upstream = %proxy.upstream, by = %by, "proxy namespace created");
        Ok(proxy)
    }

    /// Makes a proxy namespace an ordinary one again.
    pub async fn delete_proxy(&self, proxies: &Proxies, name: &str) -> AdminResult<()> {
        self.namespace_for(name, Verb::Admin, "remove the proxy")
            .await?;
        if !proxies.remove(name).await? {
            return Err(not_found("proxies", name));
        }
        Ok(())
    }
}
