//! Answering a packet that would be too big once encapsulated: ICMP
//! "fragmentation needed" (IPv4 with DF) or ICMPv6 "packet too big", sent
//! back out of the interface it came in on, so the client's path MTU
//! discovery lowers its packet size. The packet is rewritten in place: the
//! new IP and ICMP headers go in front of the first bytes of the original
//! packet, which become the quote, and the rest is cut off.

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_csum_diff, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use edge_common::{maps::FAMILY_V4, stats::Counter};

use crate::{
    maps::Verdict,
    packet::{adjust_head, bytes_at, frame_len, ptr_at_mut, write_at},
    parse::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPV4_LEN, IPV6_LEN, L3},
};

/// Bytes of the original packet quoted in the error (the original is
/// larger than the MTU, so always at least this long).
pub(crate) const QUOTE: usize = 128;
const ICMP_LEN: usize = 8;

/// Answers `inner` (too big for the tunnel) with the ICMP error of its
/// family telling `mtu` (the largest inner packet that fits). IPv4 packets
/// without DF may be fragmented instead: those are passed to the kernel.
#[inline(never)]
pub(crate) fn too_big(ctx: &XdpContext, inner: &L3, mtu: u32) -> Verdict {
    let pass = Verdict::new(Counter::MtuExceeded, xdp_action::XDP_PASS);
    let failed = Verdict::new(Counter::HeadroomFailed, xdp_action::XDP_DROP);
    let v4 = inner.family == FAMILY_V4;
    let l3 = inner.off;
    let Some(head) = bytes_at::<8>(ctx, l3) else {
        return pass;
    };
    if v4 && head[6] & 0x40 == 0 {
        return pass;
    }
    let ip_len = if v4 { IPV4_LEN } else { IPV6_LEN };
    let room = ip_len + ICMP_LEN;
    if frame_len(ctx) < l3 + QUOTE || !adjust_head(ctx, -(room as i32)) {
        return pass;
    }
    let new_len = l3 + room + QUOTE;
    // SAFETY: `ctx.ctx` is this program's context; the kernel checks the delta.
    if unsafe { bpf_xdp_adjust_tail(ctx.ctx, new_len as i32 - frame_len(ctx) as i32) } != 0 {
        return failed;
    }
    if rewrite(ctx, l3, v4, mtu).is_none() {
        return failed;
    }
    Verdict::new(Counter::MtuIcmp, xdp_action::XDP_TX)
}

/// Writes the link, IP and ICMP headers in front of the quote (the packet
/// already has its new length and room for them in front).
///
/// Fields move packet to packet, in an order in which no source is
/// overwritten before it is read: the old link header now starts at `room`
/// (at least 28, past the new one), the old addresses lie past the new IP
/// and ICMP headers, and the quote (the old IP header onward) starts right
/// after the new ICMP header.
#[inline(always)]
fn rewrite(ctx: &XdpContext, l3: usize, v4: bool, mtu: u32) -> Option<()> {
    let ip_len = if v4 { IPV4_LEN } else { IPV6_LEN };
    let room = ip_len + ICMP_LEN;
    // Link header: MACs swapped, VLAN tags and EtherType kept.
    copy::<6>(ctx, room + 6, 0)?;
    copy::<6>(ctx, room, 6)?;
    let mut at = 12;
    while at + 2 < l3 {
        copy::<4>(ctx, room + at, at)?;
        at += 4;
    }
    copy::<2>(ctx, room + l3 - 2, l3 - 2)?;
    // IP header from the VIP (the old destination) to the client (the old source).
    let old = room + l3;
    if v4 {
        let total = ((IPV4_LEN + ICMP_LEN + QUOTE) as u16).to_be_bytes();
        write_at(
            ctx,
            l3,
            [
                0x45,
                0,
                total[0],
                total[1],
                0,
                0,
                0,
                0,
                64,
                IPPROTO_ICMP,
                0,
                0,
            ],
        )?;
        copy::<4>(ctx, old + 16, l3 + 12)?;
        copy::<4>(ctx, old + 12, l3 + 16)?;
        let header = ptr_at_mut::<[u8; IPV4_LEN]>(ctx, l3)?;
        // SAFETY: the 20 header bytes are inside the packet; the helper only reads them.
        let sum =
            unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, header.cast(), IPV4_LEN as u32, 0) }
                as u32;
        write_at(ctx, l3 + 10, fold(sum).to_ne_bytes())?;
    } else {
        let len = ((ICMP_LEN + QUOTE) as u16).to_be_bytes();
        write_at(ctx, l3, [0x60, 0, 0, 0, len[0], len[1], IPPROTO_ICMPV6, 64])?;
        copy::<8>(ctx, old + 24, l3 + 8)?;
        copy::<8>(ctx, old + 32, l3 + 16)?;
        copy::<8>(ctx, old + 8, l3 + 24)?;
        copy::<8>(ctx, old + 16, l3 + 32)?;
    }
    // ICMP header: "fragmentation needed" with the next-hop MTU, or "packet
    // too big" with the MTU; then the checksum over the message (and the
    // ICMPv6 pseudo-header: addresses, length, next header).
    let icmp_at = l3 + ip_len;
    if v4 {
        let m = (mtu.min(0xffff) as u16).to_be_bytes();
        write_at(ctx, icmp_at, [3, 4, 0, 0, 0, 0, m[0], m[1]])?;
    } else {
        let m = mtu.to_be_bytes();
        write_at(ctx, icmp_at, [2, 0, 0, 0, m[0], m[1], m[2], m[3]])?;
    }
    let mut seed: u32 = 0;
    if !v4 {
        let pseudo = ptr_at_mut::<[u8; 32]>(ctx, l3 + 8)?;
        // SAFETY: 32 bytes of the packet, checked above; the helper only reads them.
        seed = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, pseudo.cast(), 32, 0) } as u32;
        seed = add(seed, ((ICMP_LEN + QUOTE) as u32).to_be());
        seed = add(seed, u32::from(IPPROTO_ICMPV6).to_be());
    }
    let message = ptr_at_mut::<[u8; ICMP_LEN + QUOTE]>(ctx, icmp_at)?;
    // SAFETY: the whole ICMP message lies inside the packet (checked above).
    let sum = unsafe {
        bpf_csum_diff(
            core::ptr::null_mut(),
            0,
            message.cast(),
            (ICMP_LEN + QUOTE) as u32,
            seed,
        )
    } as u32;
    write_at(ctx, icmp_at + 2, fold(sum).to_ne_bytes())
}

/// Copies `N` packet bytes from offset `from` to offset `to`.
#[inline(always)]
fn copy<const N: usize>(ctx: &XdpContext, from: usize, to: usize) -> Option<()> {
    let bytes = bytes_at::<N>(ctx, from)?;
    write_at(ctx, to, bytes)
}

/// One's-complement addition of 32-bit partial sums.
#[inline(always)]
fn add(a: u32, b: u32) -> u32 {
    let (sum, carry) = a.overflowing_add(b);
    sum + u32::from(carry)
}

/// Folds a 32-bit partial sum (as `bpf_csum_diff` returns it, in network
/// byte order) into the 16-bit Internet checksum, ready to store.
#[inline(always)]
fn fold(sum: u32) -> u16 {
    let mut s = (sum & 0xffff) + (sum >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}
