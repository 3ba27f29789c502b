//! Gives the memory the allocator holds free back to the system.
//!
//! glibc's malloc returns freed memory to the system only from the top of
//! each heap; what is freed below a block still in use stays resident, free
//! but counted against berth. A server that has answered many different
//! requests ends up with megabytes of it: after 100,000 mixed requests the
//! heaps held 20 MiB for 10 MiB in use, and `malloc_trim(0)` brought the
//! resident size from 34.5 down to 29.5 MiB (after 400,000: 42.8 to 39.5).
//! `malloc_trim` returns every whole free page, wherever it is; run every
//! 10 seconds it costs a pass over the heaps' free lists.

use async_trait::async_trait;

use super::Worker;

pub struct MemoryTrim;

#[async_trait]
impl Worker for MemoryTrim {
    fn name(&self) -> &'static str {
        "memory-trim"
    }

    async fn run_once(&self) -> anyhow::Result<()> {
        tokio::task::spawn_blocking(trim).await?;
        Ok(())
    }
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands the allocator's whole free pages back
    // to the system; it takes each heap's lock itself and may be called from
    // any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
