//! Entering a named network namespace (one made by `ip netns add`).

use std::{fs::File, os::fd::AsRawFd, path::PathBuf};

/// Where `ip netns add` keeps its namespace handles.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Failure to enter a network namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The namespace handle could not be opened.
    #[error(
        "network namespace `{name}` not found at {path}: {source} (list them with `ip netns list`)"
    )]
    Open {
        /// The namespace name.
        name: String,
        /// The handle path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `setns(2)` failed.
    #[error("entering network namespace `{name}` failed: {source} (needs CAP_SYS_ADMIN)")]
    Setns {
        /// The namespace name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Moves the calling thread into network namespace `name`. Threads spawned
/// afterwards inherit it; other existing threads stay where they are, so
/// call this before starting any (or from a dedicated thread).
pub fn enter(name: &str) -> Result<(), NetnsError> {
    let path = PathBuf::from(NETNS_RUN_DIR).join(name);
    let file = File::open(&path).map_err(|source| NetnsError::Open {
        name: name.to_owned(),
        path: path.clone(),
        source,
    })?;
    // SAFETY: `file` is an open namespace handle for the duration of the call.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(NetnsError::Setns {
            name: name.to_owned(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}
