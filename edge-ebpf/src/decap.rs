//! Decapsulation of traffic a peer forwarded to this node.
//!
//! A packet is a tunnel packet for this node when its outer destination is
//! this node's underlay address and it is IP-in-IP (protocol 4 or 41) or
//! UDP to the GUE port. It is decapsulated only if its outer source is in
//! `edge_trusted` (filled by the agent while the adjacency is up) and the
//! inner packet is for one of this node's services; it is then delivered to
//! the local stack, never forwarded again. Any other tunnel packet for this
//! node is dropped and counted.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use edge_common::{
    maps::{AddrKey, CONFIG_HAS_V4, CONFIG_HAS_V6, Config, FAMILY_V4, FAMILY_V6},
    stats::Counter,
};

use crate::{
    flow,
    maps::{self, Attrs, ServiceCount, TRUSTED, Verdict, count_peer, count_service},
    packet::{adjust_head, bytes_at, frame_len, write_at},
    parse::{
        self, Eth, GUE_LEN, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_UDP, L3, UDP_LEN, ethertype_of,
    },
    service,
};

/// Whether `outer` is a tunnel packet addressed to this node.
#[inline(always)]
pub(crate) fn is_for_us(ctx: &XdpContext, outer: &L3, config: &Config) -> bool {
    let dst_at = outer.addrs_at() + if outer.family == FAMILY_V4 { 4 } else { 16 };
    let ours = if outer.family == FAMILY_V4 {
        config.flags & CONFIG_HAS_V4 != 0 && bytes_at::<4>(ctx, dst_at) == Some(config.underlay_v4)
    } else {
        config.flags & CONFIG_HAS_V6 != 0 && bytes_at::<16>(ctx, dst_at) == Some(config.underlay_v6)
    };
    if !ours || outer.fragment {
        return false;
    }
    match outer.proto {
        IPPROTO_IPIP | IPPROTO_IPV6 => true,
        IPPROTO_UDP => {
            config.gue_port != 0
                && bytes_at::<2>(ctx, outer.l4 + 2)
                    .is_some_and(|p| u16::from_be_bytes(p) == config.gue_port)
        }
        _ => false,
    }
}

/// Decapsulates a tunnel packet for this node; returns the outcome and action.
/// A separate BPF function (not inlined): its stack frame is not added to
/// the forwarding path's.
#[inline(never)]
pub(crate) fn handle(ctx: &XdpContext, eth: &Eth, outer: &L3, attrs: &mut Attrs) -> Verdict {
    let drop = |c| Verdict::new(c, xdp_action::XDP_DROP);
    let Some(scratch) = maps::scratch() else {
        return drop(Counter::DecapMalformed);
    };
    let mut key = AddrKey {
        addr: [0; 16],
        family: outer.family,
        _pad: [0; 3],
    };
    if outer.addr(ctx, 0, &mut key.addr).is_none() {
        return drop(Counter::DecapMalformed);
    }
    let Some(trusted) = TRUSTED.get_ptr(key) else {
        return drop(Counter::DecapUntrusted);
    };
    // SAFETY: a pointer returned by the map lookup is valid for this program run.
    let peer = unsafe { (*trusted).peer };

    let Some((inner_family, inner_off)) = inner_start(ctx, outer, attrs) else {
        return drop(Counter::DecapMalformed);
    };
    let Ok(inner) = parse::ip(ctx, inner_family, inner_off) else {
        return drop(Counter::DecapMalformed);
    };
    if flow::extract(ctx, &inner, &mut scratch.flow, attrs).is_err() {
        return drop(Counter::DecapMalformed);
    }
    let Some(svc) = service::lookup(&scratch.flow, &mut scratch.service) else {
        return drop(Counter::DecapNotService);
    };

    let received = frame_len(ctx);
    // Keep the Ethernet header and VLAN tags, drop the outer headers: copy
    // the link header, move the packet start to just before the inner IP
    // header, and write the link header back with the inner EtherType.
    let Some(link) = bytes_at::<22>(ctx, 0) else {
        return drop(Counter::DecapMalformed);
    };
    if !adjust_head(ctx, (inner_off - eth.l3) as i32) {
        return drop(Counter::DecapMalformed);
    }
    let mut restored = write_at(
        ctx,
        0,
        [
            link[0], link[1], link[2], link[3], link[4], link[5], link[6], link[7], link[8],
            link[9], link[10], link[11],
        ],
    );
    let mut at = 12;
    for tag in 0..2 {
        if tag < eth.tags {
            let t = 12 + tag * 4;
            restored = restored
                .and_then(|()| write_at(ctx, at, [link[t], link[t + 1], link[t + 2], link[t + 3]]));
            at += 4;
        }
    }
    let restored =
        restored.and_then(|()| write_at(ctx, at, ethertype_of(inner_family).to_be_bytes()));
    if restored.is_none() {
        return drop(Counter::DecapMalformed);
    }
    count_peer(peer, false, received);
    count_service(svc.id, ServiceCount::Decap, frame_len(ctx));
    Verdict::new(Counter::Decapsulated, xdp_action::XDP_PASS)
}

/// Family and offset of the inner IP header: right after the outer header
/// for IP-in-IP; after UDP and the GUE header (version 0, with its
/// options) or directly after UDP (GUE version 1) for GUE.
#[inline(always)]
fn inner_start(ctx: &XdpContext, outer: &L3, attrs: &mut Attrs) -> Option<(u8, usize)> {
    match outer.proto {
        IPPROTO_IPIP => Some((FAMILY_V4, outer.l4)),
        IPPROTO_IPV6 => Some((FAMILY_V6, outer.l4)),
        _ => {
            attrs.set(Counter::Gue);
            let gue = outer.l4 + UDP_LEN;
            // A GUE header (version 0) or an IP header (version 1): 4 bytes at least.
            let head: [u8; 4] = bytes_at(ctx, gue)?;
            let first = head[0];
            match first >> 6 {
                0 => {
                    // Version 0: control messages (C bit) are not data; options per hlen.
                    if first & 0x20 != 0 {
                        return None;
                    }
                    let family = match head[1] {
                        IPPROTO_IPIP => FAMILY_V4,
                        IPPROTO_IPV6 => FAMILY_V6,
                        _ => return None,
                    };
                    Some((family, gue + GUE_LEN + usize::from(first & 0x1f) * 4))
                }
                // Version 1: the IP header itself follows UDP.
                1 => match first >> 4 {
                    4 => Some((FAMILY_V4, gue)),
                    6 => Some((FAMILY_V6, gue)),
                    _ => None,
                },
                _ => None,
            }
        }
    }
}
