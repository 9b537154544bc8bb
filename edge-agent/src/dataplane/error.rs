//! Errors of the data-plane layer, worded for the operator who must fix them.

use std::{io, path::PathBuf};

/// Everything that can go wrong while loading, attaching, pinning or reading
/// the XDP data plane.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// The embedded object could not be parsed or its maps created.
    #[error("loading the embedded XDP object failed: {0}")]
    Load(#[source] Box<aya::EbpfError>),
    /// The object lacks a program or map this agent expects (a build mismatch).
    #[error(
        "the embedded XDP object has no {kind} named `{name}`: rebuild with `cargo xtask build`"
    )]
    MissingInObject {
        /// "program" or "map".
        kind: &'static str,
        /// The missing name.
        name: &'static str,
    },
    /// The kernel refused the program (the verifier log is in the source).
    #[error("the kernel refused to load XDP program `{name}`: {source}")]
    Verifier {
        /// The program name.
        name: &'static str,
        /// aya's error, carrying the verifier log.
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    /// No interface with that name exists (in this network namespace).
    #[error("no network interface named `{0}` (check `ip link`)")]
    NoSuchInterface(String),
    /// Attaching failed in every mode that was tried.
    #[error("attaching XDP to `{ifname}` ({how}) failed: {source}{hint}")]
    Attach {
        /// The interface.
        ifname: String,
        /// What was tried: the mode(s), or replacing the pinned program.
        how: String,
        /// The last error.
        #[source]
        source: Box<aya::programs::ProgramError>,
        /// What the operator can do about it.
        hint: &'static str,
    },
    /// The kernel attached the program without a bpf_link, which cannot be pinned.
    #[error(
        "the kernel attached XDP to `{0}` without a bpf_link, so it cannot outlive the agent; edge needs Linux >= 5.15"
    )]
    NoBpfLink(String),
    /// The pin directory is not usable.
    #[error("pin directory {path}: {reason}")]
    PinDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it and what to do.
        reason: String,
    },
    /// A map pinned by an earlier, different build has another layout.
    #[error(
        "pinned map {path} was made by a build with another layout ({found}; this build needs {expected}); \
         detach the data plane with `edge-agent xdp detach` (or remove the pin) and load again"
    )]
    PinnedMapIncompatible {
        /// The pin file.
        path: PathBuf,
        /// The layout found.
        found: String,
        /// The layout this build needs.
        expected: String,
    },
    /// A request the data plane cannot represent (an id out of range, a bad
    /// table size, an unknown map).
    #[error("{0}")]
    InvalidSpec(String),
    /// An egress interface could not be added to the redirect map.
    #[error("allowing redirects to ifindex {ifindex}: {reason}")]
    Egress {
        /// The interface index.
        ifindex: u32,
        /// aya's error.
        reason: String,
    },
    /// A pinned attachment was asked of a data plane loaded without a pin directory.
    #[error("a pinned attachment needs a pin directory: load the data plane with one")]
    NoPinDir,
    /// Pinning or unpinning an object failed.
    #[error("pinning {path} failed: {reason}")]
    Pin {
        /// The pin file.
        path: PathBuf,
        /// The underlying error.
        reason: String,
    },
    /// Nothing is attached (by edge) to that interface.
    #[error("edge has no pinned XDP attachment there (no {path})")]
    NotAttached {
        /// The link pin that is missing.
        path: PathBuf,
    },
    /// Reading or writing a map failed.
    #[error("map `{map}`: {source}")]
    Map {
        /// The map name.
        map: &'static str,
        /// aya's error.
        #[source]
        source: Box<aya::maps::MapError>,
    },
    /// A filesystem operation on bpffs failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl DataplaneError {
    /// Wraps a map error of map `map` (for `map_err`).
    pub(crate) fn map(map: &'static str) -> impl Fn(aya::maps::MapError) -> Self {
        move |source| DataplaneError::Map {
            map,
            source: Box::new(source),
        }
    }
}
