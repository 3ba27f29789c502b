//! Replaces the key signing bearer tokens when it is due, and picks up keys
//! other replicas made.

use async_trait::async_trait;

use super::Worker;
use crate::api::AppState;

pub struct KeyRotation {
    app: AppState,
}

impl KeyRotation {
    pub fn new(app: AppState) -> Self {
        KeyRotation { app }
    }
}

#[async_trait]
impl Worker for KeyRotation {
    fn name(&self) -> &'static str {
        "signing-key-rotation"
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        self.app.access.bearer().refresh_keys().await?;
        Ok(())
    }
}
