//! Who may read and change image streams, as in OpenShift: reading them
//! takes `view` (registry-viewer and up; system:image-puller only pulls),
//! tagging and making streams takes `view` and `push` (registry-editor and
//! up; system:image-pusher only pushes), deleting tags and streams `view`
//! and `delete`. The streams themselves are the domain's
//! (`domain::image_streams`); the API asks here first.

use super::*;
use crate::auth::roles::Verb;

impl Admin<'_> {
    /// Fails unless the caller may read the streams of `namespace`.
    pub async fn may_view_streams(&self, namespace: &str) -> AdminResult<()> {
        self.namespace_for(namespace, Verb::View, "get imagestreams")
            .await
            .map(drop)
    }

    /// Fails unless the caller may tag, and make streams, in `namespace`.
    pub async fn may_tag(&self, namespace: &str, what: &str) -> AdminResult<()> {
        let (_, verbs) = self.visible_namespace(namespace).await?;
        if !(verbs.contains(Verb::View) && verbs.contains(Verb::Push)) {
            return Err(self.forbidden(&format!("{what} in project \"{namespace}\"")));
        }
        Ok(())
    }

    /// Fails unless the caller may delete tags and streams in `namespace`.
    pub async fn may_delete_streams(&self, namespace: &str, what: &str) -> AdminResult<()> {
        let (_, verbs) = self.visible_namespace(namespace).await?;
        if !(verbs.contains(Verb::View) && verbs.contains(Verb::Delete)) {
            return Err(self.forbidden(&format!("{what} in project \"{namespace}\"")));
        }
        Ok(())
    }

    /// Fails unless the caller may pull the images of `namespace`: what
    /// tagging from another project's stream takes there.
    pub async fn may_pull_from(&self, namespace: &str) -> AdminResult<()> {
        self.namespace_for(namespace, Verb::Pull, "pull images")
            .await
            .map(drop)
    }

    /// The namespaces whose streams the caller may read (`get is -A`).
    pub async fn namespaces_with_streams_visible(&self) -> AdminResult<Vec<String>> {
        let policy = self.policy().await?;
        let mut names: Vec<String> = self
            .store()
            .namespaces()
            .await?
            .into_iter()
            .map(|ns| ns.name)
            .filter(|ns| {
                policy
                    .verbs(&self.caller.principal, ns)
                    .contains(Verb::View)
            })
            .collect();
        names.sort();
        Ok(names)
    }
}
