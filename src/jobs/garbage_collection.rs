//! Online garbage collection on a schedule (`gc.interval`), once across the
//! replicas; `berth adm gc` makes it due at once. The work is
//! [`GarbageCollector::collect`]: a run stopped midway (its lease lost, the
//! replica killed) leaves only blobs marked for deletion, which the next
//! run, on whichever replica, finishes first.

use std::sync::Arc;

use async_trait::async_trait;

use super::Worker;
use crate::domain::garbage::GarbageCollector;

/// The job's name in the `jobs` table and in `berth adm jobs`.
pub const GARBAGE_COLLECTION: &str = "garbage-collection";

pub struct GarbageCollection {
    collector: Arc<GarbageCollector>,
}

impl GarbageCollection {
    pub fn new(collector: Arc<GarbageCollector>) -> Self {
        GarbageCollection { collector }
    }
}

#[async_trait]
impl Worker for GarbageCollection {
    fn name(&self) -> &'static str {
        GARBAGE_COLLECTION
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        self.collector.collect().await?;
        Ok(())
    }
}
