//! Background jobs. Each is a [`Worker`]: a named unit of work run on an
//! interval until shutdown. Pruning, imports and webhooks take this shape too.

mod key_rotation;
mod memory_trim;
mod metrics_upkeep;
mod stale_uploads;

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use key_rotation::KeyRotation;
pub use memory_trim::MemoryTrim;
pub use metrics_upkeep::MetricsUpkeep;
pub use stale_uploads::StaleUploads;

#[async_trait]
pub trait Worker: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// One pass of the job. Errors are logged; the next pass runs as planned.
    async fn run_once(&self) -> anyhow::Result<()>;
}

/// Runs `worker` every `interval` (first pass right away) until `stop` turns true.
pub fn spawn<W: Worker>(
    worker: W,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.wait_for(|stopped| *stopped) => break,
            }
            if let Err(e) = worker.run_once().await {
                tracing::warn!(job = worker.name(), error = %e, "background job failed");
            }
        }
    })
}
