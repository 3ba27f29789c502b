//! Re-imports the image stream tags that track an upstream image: those
//! imported with `--scheduled`, every
//! `imagePolicy.scheduledImageImportMinimumIntervalSeconds` (spread over the
//! interval per tag), and those tagged from an upstream image and not
//! imported yet (`berth tag --source=docker`). A changed upstream digest
//! adds a revision; a failed check sets the tag's `ImportSuccess`
//! condition and keeps its history, and the tag is checked again after a
//! backoff (`Retry-After` honoured). At most
//! `imagePolicy.maxScheduledImageImportsPerHost` checks are in flight per
//! upstream host; a host that rate-limits is left alone for the rest of
//! the pass, and its tags wait as long as it asked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use super::Worker;
use crate::domain::image_streams::Tagged;
use crate::domain::imports::{ImportSettings, Importer};
use crate::metadata::image_streams::DueImport;
use crate::upstream::UpstreamReference;

/// Due tags taken in one pass; the rest wait for the next.
const BATCH: u32 = 500;

pub struct ScheduledImports {
    importer: Arc<Importer>,
    per_host: usize,
}

impl ScheduledImports {
    pub fn new(importer: Arc<Importer>, per_host: usize) -> Self {
        ScheduledImports {
            importer,
            per_host: per_host.max(1),
        }
    }

    /// How often the job looks for due tags: a tenth of the interval,
    /// between 1 s and 30 s.
    pub fn poll_interval(settings: &ImportSettings) -> Duration {
        (settings.scheduled_interval / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
    }

    /// One host's due tags, `per_host` at a time, stopping when the host
    /// rate-limits: the rest are put off as long as it asked.
    async fn check_host(&self, host: &str, due: Vec<DueImport>) -> anyhow::Result<()> {
        // Owned items and importer: the job's future must not hold
        // borrows of its own locals across awaits (async_trait).
        let importer = self.importer.clone();
        let mut checks = futures::stream::iter(due.clone().into_iter().enumerate())
            .map(move |(n, item)| {
                let importer = importer.clone();
                async move {
                    let outcome = importer
                        .reimport(&item.repository, &item.spec, item.failures)
                        .await;
                    (n, outcome)
                }
            })
            .buffer_unordered(self.per_host);
        let mut checked = vec![false; due.len()];
        let mut retry_after = None;
        while let Some((n, outcome)) = checks.next().await {
            checked[n] = true;
            let imported = outcome?;
            let label = match &imported.result {
                Ok(image) if matches!(image.tagged, Some(Tagged::Moved { .. })) => {
                    tracing::info!(stream = %due[n].repository, tag = %imported.tag, from = %imported.from, digest = %image.digest, "scheduled import: new image");
                    "imported"
                }
                Ok(_) => "unchanged",
                Err(failure) => {
                    if failure.reason == "RateLimited" {
                        retry_after = Some(failure.retry_after.unwrap_or_default());
                    }
                    "failed"
                }
            };
            metrics::counter!("berth_scheduled_imports_total", "outcome" => label).increment(1);
            if retry_after.is_some() {
                break;
            }
        }
        drop(checks);
        if let Some(after) = retry_after {
            let wait = after.max(self.importer.settings.scheduled_interval);
            let left: Vec<&DueImport> = due
                .iter()
                .zip(&checked)
                .filter(|(_, done)| !**done)
                .map(|(item, _)| item)
                .collect();
            tracing::warn!(
                host,
                put_off = left.len(),
                wait_seconds = wait.as_secs(),
                "upstream rate-limits scheduled imports; its other tags wait"
            );
            for item in left {
                self.importer
                    .put_off(&item.repository, &item.spec.name, wait, item.failures)
                    .await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Worker for ScheduledImports {
    fn name(&self) -> &'static str {
        "scheduled-imports"
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        let due = self.importer.due(BATCH).await?;
        if due.is_empty() {
            return Ok(());
        }
        let mut by_host: BTreeMap<String, Vec<DueImport>> = BTreeMap::new();
        for item in due {
            let host = item
                .spec
                .from
                .as_ref()
                .and_then(|from| from.name.parse::<UpstreamReference>().ok())
                .map(|r| r.registry.api_host().to_owned())
                .unwrap_or_default();
            by_host.entry(host).or_default().push(item);
        }
        let passes = by_host
            .into_iter()
            .map(|(host, due)| async move { self.check_host(&host, due).await });
        for result in futures::future::join_all(passes).await {
            result?;
        }
        Ok(())
    }
}
