//! [`ProxyReload`]: each replica re-reads which namespaces are proxies, so
//! that one made or removed on another replica is seen within
//! [`crate::domain::proxies::RELOAD_INTERVAL`].

use std::sync::Arc;

use async_trait::async_trait;

use super::Worker;
use crate::domain::proxies::Proxies;

pub struct ProxyReload {
    pub proxies: Arc<Proxies>,
}

#[async_trait]
impl Worker for ProxyReload {
    fn name(&self) -> &'static str {
        "proxy-namespaces-reload"
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        self.proxies.reload().await?;
        Ok(())
    }
}
