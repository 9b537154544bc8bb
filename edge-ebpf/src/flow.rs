//! The flow a packet belongs to, as the service sees it: client address and
//! port, service address and port, protocol, as a [`FlowKey`].
//!
//! - TCP/UDP: the packet's own addresses and ports.
//! - Fragments (first or later): ports are 0, so every fragment of a
//!   datagram hashes alike; only port-agnostic services match them.
//! - ICMP errors (destination unreachable, packet too big, time exceeded,
//!   parameter problem) quoting a packet a service sent: the quoted flow,
//!   reversed, so the error follows the flow to wherever it is served (with
//!   DSR a peer may be sending the replies; PMTU discovery needs its errors).
//! - Anything else: addresses and protocol, ports 0.

use aya_ebpf::programs::XdpContext;
use edge_common::{
    maps::{FAMILY_V4, FlowKey},
    stats::Counter,
};

use crate::{
    maps::Attrs,
    packet::{MAX_OFFSET, bytes_at},
    parse::{
        IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, IPV6_LEN, L3, addr_len, read_addr,
    },
};

/// ICMP header length (type, code, checksum, 4 bytes of rest).
const ICMP_LEN: usize = 8;

/// The flow hash (Maglev slot, GUE source port, IPv6 flow label). Out of
/// line: it is needed on a few paths only, and inlined it would add its
/// temporaries to the frames of both callers.
#[inline(never)]
pub(crate) fn hash(flow: &FlowKey) -> u32 {
    edge_common::hash::flow_hash(&flow.src, &flow.dst, flow.sport, flow.dport, flow.proto)
}

/// Fills `flow` with the flow of the IP packet `l3`.
#[inline(always)]
pub(crate) fn extract(
    ctx: &XdpContext,
    l3: &L3,
    flow: &mut FlowKey,
    attrs: &mut Attrs,
) -> Result<(), Counter> {
    l3.addr(ctx, 0, &mut flow.src).ok_or(Counter::TruncL4)?;
    l3.addr(ctx, 1, &mut flow.dst).ok_or(Counter::TruncL4)?;
    flow.sport = 0;
    flow.dport = 0;
    flow.family = l3.family;
    flow.proto = l3.proto;
    flow._pad = [0; 2];
    if l3.fragment {
        attrs.set(Counter::Fragment);
        return Ok(());
    }
    match l3.proto {
        IPPROTO_TCP | IPPROTO_UDP => {
            let ports: [u8; 4] = bytes_at(ctx, l3.l4).ok_or(Counter::TruncL4)?;
            flow.sport = u16::from_be_bytes([ports[0], ports[1]]);
            flow.dport = u16::from_be_bytes([ports[2], ports[3]]);
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            let icmp: [u8; 4] = bytes_at(ctx, l3.l4).ok_or(Counter::TruncL4)?;
            if is_error(l3.family, icmp[0]) && quote(ctx, l3, flow).is_some() {
                attrs.set(Counter::IcmpError);
            }
        }
        _ => {}
    }
    Ok(())
}

/// ICMP error types that quote the offending packet.
#[inline(always)]
fn is_error(family: u8, icmp_type: u8) -> bool {
    if family == FAMILY_V4 {
        // destination unreachable, time exceeded, parameter problem
        matches!(icmp_type, 3 | 11 | 12)
    } else {
        // destination unreachable, packet too big, time exceeded, parameter problem
        matches!(icmp_type, 1..=4)
    }
}

/// Replaces `flow` with the flow quoted by an ICMP error, reversed into the
/// service direction; `None`, with `flow` untouched, if the quote is cut
/// short or is not TCP/UDP of the same family.
#[inline(always)]
fn quote(ctx: &XdpContext, l3: &L3, flow: &mut FlowKey) -> Option<()> {
    let q = l3.l4 + ICMP_LEN;
    if q > MAX_OFFSET {
        return None;
    }
    // The first 10 bytes hold version, IHL and protocol (IPv4) or version
    // and next header (IPv6).
    let h: [u8; 10] = bytes_at(ctx, q)?;
    let (proto, addrs, ports_at) = if l3.family == FAMILY_V4 {
        if h[0] >> 4 != 4 || h[0] & 0x0f < 5 {
            return None;
        }
        (h[9], q + 12, q + usize::from(h[0] & 0x0f) * 4)
    } else {
        if h[0] >> 4 != 6 {
            return None;
        }
        (h[6], q + 8, q + IPV6_LEN)
    };
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return None;
    }
    // The ports lie after both addresses: once they are inside the packet,
    // so are the addresses, and nothing below can fail half way.
    let ports: [u8; 4] = bytes_at(ctx, ports_at)?;
    // The quoted packet went service → client; the flow runs client → service.
    read_addr(ctx, l3.family, addrs + addr_len(l3.family), &mut flow.src)?;
    read_addr(ctx, l3.family, addrs, &mut flow.dst)?;
    flow.sport = u16::from_be_bytes([ports[2], ports[3]]);
    flow.dport = u16::from_be_bytes([ports[0], ports[1]]);
    flow.proto = proto;
    Some(())
}
