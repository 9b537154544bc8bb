//! Header parsing: Ethernet with up to two VLAN tags, IPv4 with options,
//! IPv6 with a bounded walk over extension headers.
//!
//! Errors are outcome counters: a malformed frame is never dropped here, the
//! caller counts it and passes it to the kernel, which applies its own checks.

use aya_ebpf::programs::XdpContext;
use edge_common::{
    maps::{FAMILY_V4, FAMILY_V6},
    stats::Counter,
};

use crate::{
    maps::Attrs,
    packet::{MAX_OFFSET, be16_at, bytes_at, len_from, ptr_at},
};

pub(crate) const ETH_LEN: usize = 14;
const VLAN_LEN: usize = 4;
pub(crate) const ETH_P_IPV4: u16 = 0x0800;
pub(crate) const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
/// VLAN tags parsed (802.1ad outer + 802.1Q inner).
const MAX_VLAN_TAGS: usize = 2;
/// IPv6 extension headers walked before giving up.
const MAX_IPV6_EXT: usize = 4;
pub(crate) const IPV4_LEN: usize = 20;
pub(crate) const IPV6_LEN: usize = 40;
/// A UDP header.
pub(crate) const UDP_LEN: usize = 8;
/// The GUE header without optional fields (variant 0, draft-ietf-intarea-gue).
pub(crate) const GUE_LEN: usize = 4;

pub(crate) const IPPROTO_ICMP: u8 = 1;
pub(crate) const IPPROTO_IPIP: u8 = 4;
pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_UDP: u8 = 17;
pub(crate) const IPPROTO_IPV6: u8 = 41;
pub(crate) const IPPROTO_ICMPV6: u8 = 58;

/// The link layer: where the IP header starts.
pub(crate) struct Eth {
    /// EtherType of the IP header (after the tags).
    pub(crate) ethertype: u16,
    /// Offset of the IP header: 14 + 4 per tag.
    pub(crate) l3: usize,
    /// Number of VLAN tags.
    pub(crate) tags: usize,
}

/// An IP header, parsed and checked.
pub(crate) struct L3 {
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub(crate) family: u8,
    /// Offset of the IP header.
    pub(crate) off: usize,
    /// Offset of the transport header (after options / extension headers).
    pub(crate) l4: usize,
    /// Transport protocol (after IPv6 extension headers).
    pub(crate) proto: u8,
    /// Length of the IP packet (header + payload) from its header.
    pub(crate) len: usize,
    /// DSCP and ECN (IPv4 TOS / IPv6 traffic class).
    pub(crate) tos: u8,
    /// Part of a fragmented datagram (first or later).
    pub(crate) fragment: bool,
}

/// Parses Ethernet and up to two VLAN tags.
#[inline(always)]
pub(crate) fn ethernet(ctx: &XdpContext, attrs: &mut Attrs) -> Result<Eth, Counter> {
    let mut ethertype = be16_at(ctx, ETH_LEN - 2).ok_or(Counter::TruncEth)?;
    let mut l3 = ETH_LEN;
    let mut tags = 0;
    for _ in 0..MAX_VLAN_TAGS {
        if !is_vlan(ethertype) {
            break;
        }
        attrs.set(Counter::VlanTagged);
        ethertype = be16_at(ctx, l3 + VLAN_LEN - 2).ok_or(Counter::TruncVlan)?;
        l3 += VLAN_LEN;
        tags += 1;
    }
    if is_vlan(ethertype) {
        return Err(Counter::VlanTooDeep);
    }
    Ok(Eth {
        ethertype,
        l3,
        tags,
    })
}

#[inline(always)]
fn is_vlan(ethertype: u16) -> bool {
    ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD
}

/// Parses the IP header of family `family` at `off`.
#[inline(always)]
pub(crate) fn ip(ctx: &XdpContext, family: u8, off: usize) -> Result<L3, Counter> {
    if family == FAMILY_V4 {
        ipv4(ctx, off)
    } else {
        ipv6(ctx, off)
    }
}

/// Checks an IPv4 header at `off`: version, IHL, options inside the frame,
/// total length consistent with the header and the frame.
#[inline(always)]
pub(crate) fn ipv4(ctx: &XdpContext, off: usize) -> Result<L3, Counter> {
    let h: [u8; IPV4_LEN] = bytes_at(ctx, off).ok_or(Counter::TruncIpv4)?;
    if h[0] >> 4 != 4 {
        return Err(Counter::BadIpVersion);
    }
    let header_len = usize::from(h[0] & 0x0f) * 4;
    if header_len < IPV4_LEN {
        return Err(Counter::BadIpv4Ihl);
    }
    let available = len_from(ctx, off);
    if header_len > available {
        return Err(Counter::TruncIpv4Options);
    }
    let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if len < header_len || len > available {
        return Err(Counter::BadIpv4Len);
    }
    let frag = u16::from_be_bytes([h[6], h[7]]);
    Ok(L3 {
        family: FAMILY_V4,
        off,
        l4: off + header_len,
        proto: h[9],
        len,
        tos: h[1],
        // MF set, or a non-zero fragment offset.
        fragment: frag & 0x3fff != 0,
    })
}

/// Checks an IPv6 header at `off` and walks up to four extension headers
/// (hop-by-hop, routing, fragment, destination options, AH) to the
/// transport header.
#[inline(always)]
pub(crate) fn ipv6(ctx: &XdpContext, off: usize) -> Result<L3, Counter> {
    let h: [u8; 8] = bytes_at(ctx, off).ok_or(Counter::TruncIpv6)?;
    if bytes_at::<32>(ctx, off + 8).is_none() {
        return Err(Counter::TruncIpv6);
    }
    if h[0] >> 4 != 6 {
        return Err(Counter::BadIpVersion);
    }
    let len = IPV6_LEN + usize::from(u16::from_be_bytes([h[4], h[5]]));
    if len > len_from(ctx, off) {
        return Err(Counter::BadIpv6Len);
    }
    let mut next = h[6];
    let mut l4 = off + IPV6_LEN;
    let mut fragment = false;
    for _ in 0..MAX_IPV6_EXT {
        if !matches!(next, 0 | 43 | 44 | 51 | 60) {
            break;
        }
        // Every extension header starts with next-header and length bytes.
        let ext: [u8; 2] = bytes_at(ctx, l4).ok_or(Counter::TruncIpv6Ext)?;
        let step = match next {
            // Fragment header: fixed 8 bytes.
            44 => {
                fragment = true;
                8
            }
            // AH: length in 4-byte units, not counting the first 8.
            51 => (usize::from(ext[1]) + 2) * 4,
            // Hop-by-hop, routing, destination options: 8-byte units, not counting the first 8.
            _ => (usize::from(ext[1]) + 1) * 8,
        };
        next = ext[0];
        l4 += step;
        if l4 > MAX_OFFSET {
            return Err(Counter::Ipv6ExtTooDeep);
        }
    }
    if matches!(next, 0 | 43 | 44 | 60 | 51) {
        return Err(Counter::Ipv6ExtTooDeep);
    }
    if l4 > off + len {
        return Err(Counter::TruncIpv6Ext);
    }
    Ok(L3 {
        family: FAMILY_V6,
        off,
        l4,
        proto: next,
        len,
        tos: (h[0] << 4) | (h[1] >> 4),
        fragment,
    })
}

impl L3 {
    /// Offset of the source address (the destination follows it).
    #[inline(always)]
    pub(crate) fn addrs_at(&self) -> usize {
        self.off + if self.family == FAMILY_V4 { 12 } else { 8 }
    }

    /// Copies the source (`0`) or destination (`1`) address into `out`.
    #[inline(always)]
    pub(crate) fn addr(&self, ctx: &XdpContext, which: usize, out: &mut [u8; 16]) -> Option<()> {
        read_addr(
            ctx,
            self.family,
            self.addrs_at() + which * addr_len(self.family),
            out,
        )
    }
}

/// Bytes of an address of `family`.
#[inline(always)]
pub(crate) fn addr_len(family: u8) -> usize {
    if family == FAMILY_V4 { 4 } else { 16 }
}

/// Copies an address of `family` at `offset` into `out` (IPv4 in the first
/// four bytes, zeros after).
#[inline(always)]
pub(crate) fn read_addr(
    ctx: &XdpContext,
    family: u8,
    offset: usize,
    out: &mut [u8; 16],
) -> Option<()> {
    if family == FAMILY_V4 {
        let p = ptr_at::<[u8; 4]>(ctx, offset)?;
        *out = [0; 16];
        // SAFETY: `ptr_at` checked the 4 bytes are inside the packet.
        out[..4].copy_from_slice(unsafe { &*p });
    } else {
        let p = ptr_at::<[u64; 2]>(ctx, offset)?.cast::<u64>();
        let o = out.as_mut_ptr().cast::<u64>();
        // SAFETY: `ptr_at` checked the 16 bytes are inside the packet, and
        // `out` is 16 bytes; both accesses are unaligned-safe. Two words
        // rather than a `[u8; 16]` copy, which LLVM may turn into a memcpy
        // loop whose index the verifier cannot bound.
        unsafe {
            o.write_unaligned(p.read_unaligned());
            o.add(1).write_unaligned(p.add(1).read_unaligned());
        }
    }
    Some(())
}

/// The EtherType of an IP family.
#[inline(always)]
pub(crate) fn ethertype_of(family: u8) -> u16 {
    if family == FAMILY_V4 {
        ETH_P_IPV4
    } else {
        ETH_P_IPV6
    }
}

/// The IP family of an EtherType, if it is IP.
#[inline(always)]
pub(crate) fn family_of(ethertype: u16) -> Option<u8> {
    match ethertype {
        ETH_P_IPV4 => Some(FAMILY_V4),
        ETH_P_IPV6 => Some(FAMILY_V6),
        _ => None,
    }
}
