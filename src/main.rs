use clap::Parser;

fn main() -> std::process::ExitCode {
    return_large_allocations_to_the_os();
    let cli = berth::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("berth: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(berth::cli::run(cli));
    // Work still running on blocking threads (a write a dropped request
    // left) gets a moment to finish; the exit does not wait on it longer.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if let Some(message) = berth::cli::error_message(&e) {
                eprintln!("{message}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc raises its mmap threshold after large blocks are freed, after which
/// such blocks stay in the heap for good. Password hashing (19 MiB for
/// argon2) and I/O buffers (MiBs) are large and rare, so a fixed threshold
/// sends them back to the OS when freed and keeps an idle registry small.
fn return_large_allocations_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}
