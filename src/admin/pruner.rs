//! The image pruner: its settings, its runs, and runs by hand. Cluster
//! admins only: it acts on the whole registry.

use super::*;

impl Admin<'_> {
    /// Whether the caller may read or change the pruner, or run it.
    pub async fn authorize_pruner(&self, what: &str) -> AdminResult<()> {
        self.require_cluster_admin(what).await?;
        Ok(())
    }
}
