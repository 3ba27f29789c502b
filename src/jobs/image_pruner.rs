//! The image pruner on its cron schedule, once across the replicas. The
//! job looks every `pruner.checkInterval` (a minute by default); a pass
//! runs the pruner only when a scheduled time has come since the last one
//! ([`Pruner::run_if_scheduled`]), so a change of schedule or a suspend
//! made by `berth adm pruner set` on any replica holds from the next look.

use std::sync::Arc;

use async_trait::async_trait;

use super::Worker;
use crate::domain::pruner::Pruner;

/// The job's name in the `jobs` table and in `berth adm jobs`.
pub const IMAGE_PRUNER: &str = "image-pruner";

pub struct ImagePruner {
    pub pruner: Arc<Pruner>,
}

#[async_trait]
impl Worker for ImagePruner {
    fn name(&self) -> &'static str {
        IMAGE_PRUNER
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        self.pruner.run_if_scheduled().await?;
        Ok(())
    }
}
