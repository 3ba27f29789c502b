//! Removes uploads that clients abandoned: neither finished nor cancelled,
//! and untouched for longer than `uploads.staleAfter`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::Worker;
use crate::domain::registry::Registry;
use crate::metadata::now;

pub struct StaleUploads {
    registry: Arc<Registry>,
    stale_after: Duration,
}

impl StaleUploads {
    pub fn new(registry: Arc<Registry>, stale_after: Duration) -> Self {
        StaleUploads {
            registry,
            stale_after,
        }
    }
}

#[async_trait]
impl Worker for StaleUploads {
    fn name(&self) -> &'static str {
        "stale-uploads"
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        let cutoff = now() - i64::try_from(self.stale_after.as_millis()).unwrap_or(i64::MAX);
        let removed = self.registry.remove_stale_uploads(cutoff).await?;
        if removed > 0 {
            tracing::info!(removed, "removed abandoned uploads");
        }
        Ok(())
    }
}
