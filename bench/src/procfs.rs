//! Memory and CPU readings of a local process from /proc.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

/// Resident set size in KiB (`VmRSS` in /proc/PID/status).
pub fn rss_kib(pid: u32) -> Result<u64> {
    status_field_kib(pid, "VmRSS:")
}

/// Anonymous resident memory (`RssAnon`: heap and stacks, not mapped files
/// or code), in KiB.
pub fn rss_anon_kib(pid: u32) -> Result<u64> {
    status_field_kib(pid, "RssAnon:")
}

/// Peak resident set size since the process started (`VmHWM`), in KiB.
pub fn hwm_kib(pid: u32) -> Result<u64> {
    status_field_kib(pid, "VmHWM:")
}

fn status_field_kib(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or_else(|| anyhow!("{path} has no {field}"))
}

/// User + system CPU time consumed so far by a process, in seconds
/// (fields 14 and 15 of /proc/PID/stat, in clock ticks).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may contain spaces; fields are counted after it.
    let after_comm = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| anyhow!("malformed {path}"))?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("malformed {path}"))
    };
    // After the comm field, utime and stime are the 12th and 13th entries.
    let total = ticks(11)? + ticks(12)?;
    Ok(total as f64 / clock_ticks_per_second())
}

pub fn self_cpu_seconds() -> Result<f64> {
    cpu_seconds(std::process::id())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for unknown names.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Samples VmRSS of a process every 10 ms on its own thread (so that a busy
/// async runtime cannot delay the samples) and keeps the maximum.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<u64>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = rss_kib(pid)?;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                peak = peak.max(rss_kib(pid)?);
            }
            Ok(peak)
        });
        RssSampler { stop, handle }
    }

    /// Stops sampling and returns the peak RSS in KiB.
    pub fn finish(self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| anyhow!("RSS sampler thread panicked"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() -> Result<()> {
        let pid = std::process::id();
        assert!(rss_kib(pid)? > 0);
        assert!(rss_anon_kib(pid)? <= rss_kib(pid)?);
        assert!(hwm_kib(pid)? >= rss_kib(pid)? / 2);
        assert!(cpu_seconds(pid)? >= 0.0);
        let sampler = RssSampler::start(pid);
        std::thread::sleep(Duration::from_millis(30));
        assert!(sampler.finish()? > 0);
        Ok(())
    }
}
