//! The BPF maps of the program, BTF-defined so that aya and bpftool see the
//! key and value types, and the helper that bumps the counters.

use aya_ebpf::{btf_maps::PerCpuArray, macros::btf_map};
use edge_common::stats::{Counter, Stats};

/// Global per-CPU counters: a single entry of named `u64` fields.
#[btf_map(name = "edge_stats")]
static STATS: PerCpuArray<Stats, 1> = PerCpuArray::new();

/// Counts one packet: its outcome, and the VLAN attribute if it had a tag.
#[inline(always)]
pub(crate) fn record(outcome: Counter, vlan_tagged: bool) {
    let Some(stats) = STATS.get_ptr_mut(0) else {
        return;
    };
    let words = stats.cast::<u64>();
    // SAFETY: `Stats` is `#[repr(C)]` and made only of `u64`s (asserted in
    // edge-common), so field `i` is the `i`-th word, and every `Counter` is
    // a field index below `Counter::COUNT`. The slot is this CPU's own, so
    // a plain increment cannot race.
    unsafe {
        *words.add(outcome as usize) += 1;
        if vlan_tagged {
            *words.add(Counter::VlanTagged as usize) += 1;
        }
    }
}
