//! Folds the latency samples recorded since the last pass into the
//! Prometheus histograms.
//!
//! The exporter buffers every histogram sample until this runs (or until
//! `/metrics` is scraped): without it, a registry nobody scrapes grows by
//! every request it serves (measured: 64 MiB more after three 10-second
//! manifest loads).

use async_trait::async_trait;
use metrics_exporter_prometheus::PrometheusHandle;

use super::Worker;

pub struct MetricsUpkeep {
    pub handle: PrometheusHandle,
}

#[async_trait]
impl Worker for MetricsUpkeep {
    fn name(&self) -> &'static str {
        "metrics-upkeep"
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        self.handle.run_upkeep();
        Ok(())
    }
}
