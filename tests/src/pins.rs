//! A bpffs pin directory owned by one test, so tests that pin do not share
//! (or delete) each other's pins. Removed on drop, pins and all.

use std::path::{Path, PathBuf};

/// Where test pin directories are made.
pub const PIN_ROOT: &str = "/sys/fs/bpf";

/// A test's own pin directory under [`PIN_ROOT`] (not created until the
/// data plane pins into it).
#[derive(Debug)]
pub struct PinDir {
    path: PathBuf,
}

impl PinDir {
    /// A fresh, unique path.
    pub fn new() -> Self {
        PinDir {
            path: Path::new(PIN_ROOT).join(crate::netns::unique_name()),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Default for PinDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
