//! The layout of the pin directory, and what can be done with the pins
//! alone, without loading the object: read counters, detach.
//!
//! ```text
//! <pin dir>/edge_stats        per-CPU counters (map)
//! <pin dir>/edge_xdp          the program
//! <pin dir>/link_<ifname>     the XDP attachment to <ifname> (bpf_link)
//! ```
//!
//! The link pin keeps the program attached after the process that attached
//! it exits; removing it detaches.

use std::path::{Path, PathBuf};

use aya::maps::{Map, MapData, PerCpuArray};
use edge_common::{PROGRAM_NAME, STATS_MAP, stats::Stats};

use super::DataplaneError;

/// Prefix of link pin files.
const LINK_PREFIX: &str = "link_";

/// Path of the pin that holds the XDP attachment to `ifname`.
pub fn link_pin_path(pin_dir: &Path, ifname: &str) -> PathBuf {
    pin_dir.join(format!("{LINK_PREFIX}{ifname}"))
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

/// Detaches edge from `ifname` by removing its link pin. When no attachment
/// is left, also removes the program and map pins (and the directory if it
/// is then empty), so nothing of edge remains in bpffs.
pub fn detach_pinned(pin_dir: &Path, ifname: &str) -> Result<(), DataplaneError> {
    let link = link_pin_path(pin_dir, ifname);
    if !link.exists() {
        return Err(DataplaneError::NotAttached {
            ifname: ifname.to_owned(),
            path: link,
        });
    }
    remove(&link)?;
    if remaining_links(pin_dir)?.is_empty() {
        for name in [PROGRAM_NAME, STATS_MAP] {
            let path = pin_dir.join(name);
            if path.exists() {
                remove(&path)?;
            }
        }
        // Only succeeds if empty: pins that are not edge's stay, and so does the dir.
        let _ = std::fs::remove_dir(pin_dir);
    }
    Ok(())
}

/// Interfaces that still have a link pin in `pin_dir`.
pub(crate) fn remaining_links(pin_dir: &Path) -> Result<Vec<String>, DataplaneError> {
    let entries = std::fs::read_dir(pin_dir).map_err(|source| DataplaneError::Io {
        what: "cannot list",
        path: pin_dir.to_owned(),
        source,
    })?;
    Ok(entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix(LINK_PREFIX)
                .map(str::to_owned)
        })
        .collect())
}

fn remove(path: &Path) -> Result<(), DataplaneError> {
    std::fs::remove_file(path).map_err(|source| DataplaneError::Io {
        what: "cannot remove",
        path: path.to_owned(),
        source,
    })
}
