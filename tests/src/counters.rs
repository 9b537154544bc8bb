//! Which data-plane counters moved between two readings.

use edge_common::stats::{Counter, Stats};

/// The counters that differ between `before` and `after`, with how much
/// they grew, in field order. Comparing with an expected list makes a test
/// fail on any counter it did not expect to move.
pub fn changed(before: &Stats, after: &Stats) -> Vec<(Counter, u64)> {
    Counter::ALL
        .iter()
        .filter_map(|&c| {
            let delta = after.get(c).wrapping_sub(before.get(c));
            (delta != 0).then_some((c, delta))
        })
        .collect()
}
