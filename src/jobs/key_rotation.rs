//! Replaces the key signing bearer tokens when it is due, and picks up keys
//! other replicas made.

use std::sync::Arc;

use async_trait::async_trait;

use super::Worker;
use crate::auth::AccessControl;

pub struct KeyRotation {
    access: Arc<AccessControl>,
}

impl KeyRotation {
    pub fn new(access: Arc<AccessControl>) -> Self {
        KeyRotation { access }
    }
}

#[async_trait]
impl Worker for KeyRotation {
    fn name(&self) -> &'static str {
        "signing-key-rotation"
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        self.access.bearer().refresh_keys().await?;
        Ok(())
    }
}
