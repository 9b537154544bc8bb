//! The layout of the pin directories, and what can be done with the pins
//! alone, without loading the object: read counters, detach.
//!
//! Each interface has its own directory, with its own maps:
//!
//! ```text
//! /sys/fs/bpf/edge/<ifname>/edge_stats   per-CPU counters (and every other map, by name)
//! /sys/fs/bpf/edge/<ifname>/edge_xdp     the program
//! /sys/fs/bpf/edge/<ifname>/link         the XDP attachment (bpf_link)
//! ```
//!
//! The link pin keeps the program attached after the process that attached
//! it exits; removing it detaches.

use std::path::{Path, PathBuf};

use aya::maps::{Map, MapData, PerCpuArray};
use edge_common::{PROGRAM_NAME, STATS_MAP, stats::Stats};

use super::DataplaneError;

/// Name of the link pin in an interface's directory.
const LINK_PIN: &str = "link";

/// The pin directory of interface `ifname` under `root` (`/sys/fs/bpf/edge`).
pub fn interface_pin_dir(root: &Path, ifname: &str) -> PathBuf {
    root.join(ifname)
}

/// Path of the pin that holds the XDP attachment of the directory's interface.
pub fn link_pin_path(pin_dir: &Path) -> PathBuf {
    pin_dir.join(LINK_PIN)
}

/// Sums the per-CPU counters of the pinned stats map.
pub fn read_pinned_stats(pin_dir: &Path) -> Result<Stats, DataplaneError> {
    let path = pin_dir.join(STATS_MAP);
    let data = MapData::from_pin(&path).map_err(DataplaneError::map(STATS_MAP))?;
    let map = PerCpuArray::<_, Stats>::try_from(Map::PerCpuArray(data))
        .map_err(DataplaneError::map(STATS_MAP))?;
    sum_stats(&map)
}

/// Sums entry 0 of a stats map over all CPUs.
pub(crate) fn sum_stats<T: std::borrow::Borrow<MapData>>(
    map: &PerCpuArray<T, Stats>,
) -> Result<Stats, DataplaneError> {
    let per_cpu = map.get(&0, 0).map_err(DataplaneError::map(STATS_MAP))?;
    let mut total = Stats::default();
    for cpu in per_cpu.iter() {
        total.accumulate(cpu);
    }
    Ok(total)
}

/// Detaches edge from the interface of `pin_dir` by removing its link pin,
/// then removes the program and map pins and the directory, so nothing of
/// edge remains in bpffs for it. Files that are not edge's stay.
pub fn detach_pinned(pin_dir: &Path) -> Result<(), DataplaneError> {
    let link = link_pin_path(pin_dir);
    if !link.exists() {
        return Err(DataplaneError::NotAttached { path: link });
    }
    remove(&link)?;
    for name in edge_common::PINNED_MAPS.iter().chain([&PROGRAM_NAME]) {
        let path = pin_dir.join(name);
        if path.exists() {
            remove(&path)?;
        }
    }
    // Only succeeds if empty: pins that are not edge's stay, and so does the dir.
    let _ = std::fs::remove_dir(pin_dir);
    Ok(())
}

/// Whether an attachment is pinned in `pin_dir`.
pub(crate) fn is_attached(pin_dir: &Path) -> bool {
    link_pin_path(pin_dir).exists()
}

fn remove(path: &Path) -> Result<(), DataplaneError> {
    std::fs::remove_file(path).map_err(|source| DataplaneError::Io {
        what: "cannot remove",
        path: path.to_owned(),
        source,
    })
}
