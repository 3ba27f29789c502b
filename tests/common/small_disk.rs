//! A small disk that fills up: a tmpfs mounted as a test's data directory
//! (`tests/disk_full.rs`, and the pull-through fill in
//! `tests/pull_through.rs`). Mounting needs root: without it [`SmallDisk::mount`]
//! says the test is skipped, or fails it when `BERTH_REQUIRE_ROOT=1` (as in CI).

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

/// A tmpfs mounted for the test's lifetime.
pub struct SmallDisk {
    pub mount_point: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (after saying why) when mounting is not possible here.
    pub fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("temporary directory");
        // The data directory itself is the mount point, so that berth's log
        // (written next to it) does not fill up with it.
        let mount_point = dir.path().join("data");
        std::fs::create_dir(&mount_point).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount_point)
            .status();
        match status {
            Ok(s) if s.success() => Some(SmallDisk {
                mount_point,
                _dir: dir,
            }),
            other => {
                let why = format!("cannot mount a tmpfs ({other:?}); this test needs root");
                if std::env::var("BERTH_REQUIRE_ROOT").is_ok_and(|v| v == "1") {
                    panic!("{why}");
                }
                eprintln!("SKIPPED: {why} (set BERTH_REQUIRE_ROOT=1 to fail instead)");
                None
            }
        }
    }

    /// Writes a file until the filesystem has no byte left.
    pub fn fill(&self) -> PathBuf {
        let path = self.mount_point.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler file");
        let mut piece = vec![0u8; 1 << 20];
        while !piece.is_empty() {
            match file.write(&piece) {
                Ok(0) => piece.truncate(piece.len() / 2),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                    piece.truncate(piece.len() / 2)
                }
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}
