//! Removes uploads that clients abandoned: neither finished nor cancelled,
//! and untouched for longer than `uploads.staleAfter`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::Worker;
use crate::domain::uploads::Uploads;
use crate::metadata::now;

pub struct StaleUploads {
    uploads: Arc<Uploads>,
    stale_after: Duration,
}

impl StaleUploads {
    pub fn new(uploads: Arc<Uploads>, stale_after: Duration) -> Self {
        StaleUploads {
            uploads,
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
        let removed = self.uploads.remove_stale(cutoff).await?;
        if removed > 0 {
            tracing::info!(removed, "removed abandoned uploads");
        }
        Ok(())
    }
}
