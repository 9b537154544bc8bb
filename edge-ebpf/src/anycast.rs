//! The anycast prefixes: only traffic to them can be service traffic, so
//! everything else (BGP, SSH, the overlay control endpoint on the node's own
//! addresses) passes without a single map lookup.

use aya_ebpf::programs::XdpContext;
use edge_common::maps::{Config, FAMILY_V4, MAX_PREFIXES};

use crate::{packet::bytes_at, parse::L3};

/// Whether the destination of `l3` is inside one of the configured prefixes.
#[inline(always)]
pub(crate) fn contains(ctx: &XdpContext, l3: &L3, config: &Config) -> bool {
    if l3.family == FAMILY_V4 {
        let Some(dst) = bytes_at::<4>(ctx, l3.off + 16) else {
            return false;
        };
        let dst = u32::from_ne_bytes(dst);
        for i in 0..MAX_PREFIXES {
            if i as u32 >= config.prefix_count_v4 {
                break;
            }
            if dst & u32::from_ne_bytes(config.masks_v4[i])
                == u32::from_ne_bytes(config.prefixes_v4[i])
            {
                return true;
            }
        }
    } else {
        let Some(dst) = bytes_at::<16>(ctx, l3.off + 24) else {
            return false;
        };
        let (hi, lo) = halves(&dst);
        for i in 0..MAX_PREFIXES {
            if i as u32 >= config.prefix_count_v6 {
                break;
            }
            let (mask_hi, mask_lo) = halves(&config.masks_v6[i]);
            let (prefix_hi, prefix_lo) = halves(&config.prefixes_v6[i]);
            if hi & mask_hi == prefix_hi && lo & mask_lo == prefix_lo {
                return true;
            }
        }
    }
    false
}

/// An IPv6 address as two 64-bit words (native order: only compared).
#[inline(always)]
fn halves(a: &[u8; 16]) -> (u64, u64) {
    (
        u64::from_ne_bytes([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]]),
        u64::from_ne_bytes([a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]]),
    )
}
