//! Frame classification: Ethernet, up to two VLAN tags, IPv4 or IPv6.
//!
//! The result names exactly one outcome counter. Malformed frames are not
//! dropped here: they are counted and passed, so the kernel applies its own
//! checks and answers as it always would.

use aya_ebpf::programs::XdpContext;
use edge_common::stats::Counter;
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
    vlan::VlanHdr,
};

use crate::packet::{be16_at, len_from, ptr_at};

const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
/// VLAN tags parsed before giving up (802.1ad outer + 802.1Q inner).
const MAX_VLAN_TAGS: usize = 2;
/// Offset of the EtherType within an Ethernet header or a VLAN tag's end.
const ETHERTYPE_FROM_END: usize = 2;

/// What the parser found out about one frame.
pub(crate) struct Frame {
    /// The outcome counter this frame moves.
    pub(crate) outcome: Counter,
    /// Whether it carried at least one VLAN tag.
    pub(crate) vlan_tagged: bool,
}

/// Parses the frame in `ctx` far enough to name its outcome.
#[inline(always)]
pub(crate) fn classify(ctx: &XdpContext) -> Frame {
    let Some(mut ethertype) = be16_at(ctx, EthHdr::LEN - ETHERTYPE_FROM_END) else {
        return Frame {
            outcome: Counter::TruncEth,
            vlan_tagged: false,
        };
    };
    let mut l3 = EthHdr::LEN;
    let mut vlan_tagged = false;
    for _ in 0..MAX_VLAN_TAGS {
        if !is_vlan(ethertype) {
            break;
        }
        vlan_tagged = true;
        let Some(inner) = be16_at(ctx, l3 + VlanHdr::LEN - ETHERTYPE_FROM_END) else {
            return Frame {
                outcome: Counter::TruncVlan,
                vlan_tagged,
            };
        };
        ethertype = inner;
        l3 += VlanHdr::LEN;
    }
    let outcome = match ethertype {
        ETH_P_IPV4 => ipv4(ctx, l3),
        ETH_P_IPV6 => ipv6(ctx, l3),
        t if is_vlan(t) => Counter::VlanTooDeep,
        _ => Counter::NonIp,
    };
    Frame {
        outcome,
        vlan_tagged,
    }
}

#[inline(always)]
fn is_vlan(ethertype: u16) -> bool {
    ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD
}

/// Checks an IPv4 header at `l3`: version, IHL, options inside the frame,
/// total length consistent with the header and the frame.
#[inline(always)]
fn ipv4(ctx: &XdpContext, l3: usize) -> Counter {
    let Some(ip) = ptr_at::<Ipv4Hdr>(ctx, l3) else {
        return Counter::TruncIpv4;
    };
    // SAFETY: `ptr_at` checked the 20-byte header is inside the packet, and
    // `Ipv4Hdr` is all bytes (alignment 1).
    let ip = unsafe { &*ip };
    if ip.version() != 4 {
        return Counter::BadIpVersion;
    }
    let header_len = usize::from(ip.ihl());
    if header_len < Ipv4Hdr::LEN {
        return Counter::BadIpv4Ihl;
    }
    let available = len_from(ctx, l3);
    if header_len > available {
        return Counter::TruncIpv4Options;
    }
    let total_len = usize::from(ip.tot_len());
    if total_len < header_len || total_len > available {
        return Counter::BadIpv4Len;
    }
    Counter::Ipv4
}

/// Checks an IPv6 header at `l3`: version, payload inside the frame.
#[inline(always)]
fn ipv6(ctx: &XdpContext, l3: usize) -> Counter {
    let Some(ip) = ptr_at::<Ipv6Hdr>(ctx, l3) else {
        return Counter::TruncIpv6;
    };
    // SAFETY: `ptr_at` checked the 40-byte header is inside the packet, and
    // `Ipv6Hdr` is all bytes (alignment 1).
    let ip = unsafe { &*ip };
    if ip.version() != 6 {
        return Counter::BadIpVersion;
    }
    if Ipv6Hdr::LEN + usize::from(ip.payload_len()) > len_from(ctx, l3) {
        return Counter::BadIpv6Len;
    }
    Counter::Ipv6
}
