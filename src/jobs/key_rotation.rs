//! The keys signing bearer tokens: [`KeyRotation`] replaces the key when it
//! is due (once across the replicas); [`KeyReload`] has each replica pick up
//! the keys another made.

use std::sync::Arc;

use async_trait::async_trait;

use super::Worker;
use crate::auth::AccessControl;

pub struct KeyRotation {
    pub access: Arc<AccessControl>,
}

#[async_trait]
impl Worker for KeyRotation {
    fn name(&self) -> &'static str {
        "signing-key-rotation"
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        if self.access.bearer().rotate_keys().await? {
            tracing::info!("made a new key to sign bearer tokens");
        }
        Ok(())
    }
}

/// Loads the signing keys into this process: the newest (made by whichever
/// replica rotated) signs from then on.
pub struct KeyReload {
    pub access: Arc<AccessControl>,
}

#[async_trait]
impl Worker for KeyReload {
    fn name(&self) -> &'static str {
        "signing-key-reload"
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        self.access.bearer().load_keys().await?;
        Ok(())
    }
}
