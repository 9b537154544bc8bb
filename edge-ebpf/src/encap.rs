//! Encapsulation toward a peer: IP-in-IP (4in4, 6in6, 4in6, 6in4) or GUE,
//! next hop from `bpf_fib_lookup`, then `XDP_TX` or a redirect.
//!
//! Everything that can fail is checked before the packet is touched, so a
//! packet that cannot be forwarded goes to the kernel unchanged (and is
//! counted): no route, an unresolved neighbour (the agent keeps neighbours
//! of peers warm; until then the local stack answers the client), an egress
//! interface not in `edge_egress`, or an outer packet over the underlay MTU.

use aya_ebpf::{
    bindings::{bpf_fib_lookup as FibParams, xdp_action},
    helpers::bpf_fib_lookup,
    programs::XdpContext,
};
use edge_common::{
    maps::{CONFIG_HAS_V4, CONFIG_HAS_V6, ENCAP_GUE, FAMILY_V4, Peer},
    stats::Counter,
};

use crate::{
    maps::{self, Attrs, CONFIG, EGRESS, PEERS, Verdict, count_peer},
    packet::{adjust_head, write_at},
    parse::{
        ETH_LEN, GUE_LEN, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_UDP, IPV4_LEN, IPV6_LEN, L3, UDP_LEN,
        ethertype_of,
    },
};

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const FIB_SUCCESS: i64 = 0;
const FIB_NO_NEIGH: i64 = 7;

/// Encapsulates the packet whose IP header is `inner` toward peer `peer_id`
/// and sends it (counting it for the peer); or, if it cannot, leaves it
/// untouched and says why. A separate BPF function (not inlined), so its
/// stack frame is not added to the decap path's.
#[inline(never)]
pub(crate) fn forward(ctx: &XdpContext, inner: &L3, peer_id: u32, attrs: &mut Attrs) -> Verdict {
    let pass = |outcome| Verdict::new(outcome, xdp_action::XDP_PASS);
    let Some(config) = CONFIG.get(0) else {
        return pass(Counter::FibFailed);
    };
    let peer: &Peer = match PEERS.get(peer_id) {
        Some(peer) if peer.family != 0 => peer,
        _ => return pass(Counter::FibFailed),
    };
    let v4 = peer.family == FAMILY_V4;
    let have = if v4 { CONFIG_HAS_V4 } else { CONFIG_HAS_V6 };
    if config.flags & have == 0 {
        return pass(Counter::FibFailed);
    }
    let gue = peer.encap == ENCAP_GUE;
    let ip_len = if v4 { IPV4_LEN } else { IPV6_LEN };
    let tunnel_len = if gue { UDP_LEN + GUE_LEN } else { 0 };
    let outer_len = inner.len + ip_len + tunnel_len;
    if outer_len > usize::from(config.mtu) {
        // The entry function answers with ICMP (out of this call chain,
        // whose stack is already deep), telling the largest inner packet.
        let Some(scratch) = maps::scratch() else {
            return pass(Counter::MtuExceeded);
        };
        scratch.icmp_mtu = u32::from(config.mtu).saturating_sub((ip_len + tunnel_len) as u32);
        return pass(Counter::MtuIcmp);
    }
    let inner_proto = if inner.family == FAMILY_V4 {
        IPPROTO_IPIP
    } else {
        IPPROTO_IPV6
    };
    let outer_proto = if gue { IPPROTO_UDP } else { inner_proto };

    let Some(scratch) = maps::scratch() else {
        return pass(Counter::FibFailed);
    };
    // The flow hash feeds the GUE source port and the IPv6 flow label; plain
    // IP-in-IP over IPv4 needs none.
    let hash = if gue || !v4 {
        crate::flow::hash(&scratch.flow)
    } else {
        0
    };
    let fib = &mut scratch.fib;
    // SAFETY: bpf_fib_lookup is plain old data; all-zero is a valid start.
    *fib = unsafe { core::mem::zeroed() };
    fib.family = if v4 { AF_INET } else { AF_INET6 };
    fib.l4_protocol = outer_proto;
    fib.__bindgen_anon_1.tot_len = outer_len as u16;
    fib.ifindex = ctx.ingress_ifindex() as u32;
    if v4 {
        fib.__bindgen_anon_3.ipv4_src = u32::from_ne_bytes(config.underlay_v4);
        fib.__bindgen_anon_4.ipv4_dst =
            u32::from_ne_bytes([peer.addr[0], peer.addr[1], peer.addr[2], peer.addr[3]]);
    } else {
        fib.__bindgen_anon_3.ipv6_src = words(&config.underlay_v6);
        fib.__bindgen_anon_4.ipv6_dst = words(&peer.addr);
    }
    // SAFETY: `fib` is a valid, writable bpf_fib_lookup of the size given.
    let rc = unsafe { bpf_fib_lookup(ctx.ctx.cast(), fib, size_of::<FibParams>() as i32, 0) };
    if rc == FIB_NO_NEIGH {
        return pass(Counter::FibNoNeigh);
    }
    if rc != FIB_SUCCESS {
        return pass(Counter::FibFailed);
    }
    let redirect = fib.ifindex != ctx.ingress_ifindex() as u32;
    if redirect && EGRESS.get(fib.ifindex).is_none() {
        return pass(Counter::EgressUnsupported);
    }

    // From here on the packet changes: prepend room for the new Ethernet and
    // outer headers in place of the old Ethernet header and VLAN tags.
    let new_start = ETH_LEN + ip_len + tunnel_len;
    if !adjust_head(ctx, -((new_start - inner.off) as i32)) {
        return pass(Counter::HeadroomFailed);
    }
    let mut eth = [0u8; ETH_LEN];
    eth[..6].copy_from_slice(&fib.dmac);
    eth[6..12].copy_from_slice(&fib.smac);
    eth[12..].copy_from_slice(&ethertype_of(peer.family).to_be_bytes());
    let written = write_at(ctx, 0, eth).and_then(|()| {
        if v4 {
            write_at(
                ctx,
                ETH_LEN,
                ipv4_header(
                    config.underlay_v4,
                    &peer.addr,
                    outer_len,
                    inner.tos,
                    outer_proto,
                ),
            )
        } else {
            write_at(
                ctx,
                ETH_LEN,
                ipv6_header(
                    &config.underlay_v6,
                    &peer.addr,
                    outer_len - IPV6_LEN,
                    inner.tos,
                    hash,
                    outer_proto,
                ),
            )
        }
    });
    let written = written.and_then(|()| {
        if !gue {
            return Some(());
        }
        attrs.set(Counter::Gue);
        let udp_len = (UDP_LEN + GUE_LEN + inner.len) as u16;
        // Source port from the flow hash (receiver RSS), in 49152..=65535.
        let sport = 0xc000 | (hash as u16 & 0x3fff);
        let mut h = [0u8; UDP_LEN + GUE_LEN];
        h[0..2].copy_from_slice(&sport.to_be_bytes());
        h[2..4].copy_from_slice(&config.gue_port.to_be_bytes());
        h[4..6].copy_from_slice(&udp_len.to_be_bytes());
        // UDP checksum 0: allowed for IPv4, and for IPv6 tunnels (RFC 6935).
        // GUE header: version 0, no control, no options, inner protocol.
        h[9] = inner_proto;
        write_at(ctx, ETH_LEN + ip_len, h)
    });
    if written.is_none() {
        // Cannot happen after a successful adjust_head; drop rather than
        // send a half-built frame, and count it as a headroom failure.
        return Verdict::new(Counter::HeadroomFailed, xdp_action::XDP_DROP);
    }
    count_peer(peer_id, true, ETH_LEN + outer_len);
    if redirect {
        let action = EGRESS
            .redirect(fib.ifindex, 0)
            .unwrap_or(xdp_action::XDP_ABORTED);
        Verdict::new(Counter::ForwardedRedirect, action)
    } else {
        Verdict::new(Counter::ForwardedTx, xdp_action::XDP_TX)
    }
}

/// An IPv4 header (no options, DF, TTL 64) with its checksum.
#[inline(always)]
fn ipv4_header(
    src: [u8; 4],
    dst: &[u8; 16],
    total_len: usize,
    tos: u8,
    proto: u8,
) -> [u8; IPV4_LEN] {
    let mut h = [0u8; IPV4_LEN];
    h[0] = 0x45;
    h[1] = tos;
    h[2..4].copy_from_slice(&(total_len as u16).to_be_bytes());
    h[6] = 0x40; // DF: the agent's MTU check replaces fragmentation
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst[..4]);
    let mut sum: u32 = 0;
    let mut i = 0;
    while i < IPV4_LEN {
        sum += u32::from(u16::from_be_bytes([h[i], h[i + 1]]));
        i += 2;
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    h
}

/// An IPv6 header (hop limit 64) with a flow label from the flow hash, so
/// ECMP in the underlay keeps a flow on one path.
#[inline(always)]
fn ipv6_header(
    src: &[u8; 16],
    dst: &[u8; 16],
    payload_len: usize,
    tc: u8,
    hash: u32,
    proto: u8,
) -> [u8; IPV6_LEN] {
    let mut h = [0u8; IPV6_LEN];
    let label = hash & 0x000f_ffff;
    h[0] = 0x60 | (tc >> 4);
    h[1] = (tc << 4) | (label >> 16) as u8;
    h[2..4].copy_from_slice(&(label as u16).to_be_bytes());
    h[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
    h[6] = proto;
    h[7] = 64;
    h[8..24].copy_from_slice(src);
    h[24..40].copy_from_slice(dst);
    h
}

/// An IPv6 address as the four `u32` words `bpf_fib_lookup` takes.
#[inline(always)]
fn words(a: &[u8; 16]) -> [u32; 4] {
    [
        u32::from_ne_bytes([a[0], a[1], a[2], a[3]]),
        u32::from_ne_bytes([a[4], a[5], a[6], a[7]]),
        u32::from_ne_bytes([a[8], a[9], a[10], a[11]]),
        u32::from_ne_bytes([a[12], a[13], a[14], a[15]]),
    ]
}
