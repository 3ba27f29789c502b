//! Garbage collection: running it, a dry run, and its recorded runs.
//! Cluster admins only: it acts on the whole registry.

use super::*;

impl Admin<'_> {
    /// Whether the caller may run garbage collection (or a dry run) and
    /// read its runs.
    pub async fn authorize_garbage_collection(&self, what: &str) -> AdminResult<()> {
        self.require_cluster_admin(what).await?;
        Ok(())
    }
}
