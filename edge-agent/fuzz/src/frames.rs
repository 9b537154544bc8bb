//! Frames for the XDP target, built from fuzz input: each byte of a
//! short header picks one thing (VLAN tags, family, source, destination,
//! protocol, port, TCP flags, fragment bits, an inner packet for
//! tunnels), then a cut and a byte flip, so that a few bytes reach every
//! path of the program, and the rest are the payload. libFuzzer cannot
//! see coverage inside the kernel: the choices carry the search.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use edge_tests::{
    fixture::{GUE_PORT, VIP_ANY4, VIP_ANY6, VIP_DOWN_DROP, VIP_DOWN_PASS, VIP_NO_NEIGH},
    packet::*,
    plan::{VIP_DNS_V4, VIP_DNS_V6, VIP_WEB_V4, VIP_WEB_V6, client_v4, underlay_v4, underlay_v6},
};

/// Reads choices off the front of the input; zeros when it runs out.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn pick<T: Copy>(&mut self, of: &[T]) -> T {
        of[usize::from(self.byte()) % of.len()]
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
}

fn v4_addresses() -> [Ipv4Addr; 11] {
    [
        client_v4(7),
        underlay_v4(1),
        underlay_v4(2),
        underlay_v4(3),
        underlay_v4(9),
        VIP_WEB_V4,
        VIP_DNS_V4,
        VIP_ANY4,
        VIP_DOWN_DROP,
        VIP_DOWN_PASS,
        VIP_NO_NEIGH,
    ]
}

fn v6_addresses() -> [Ipv6Addr; 7] {
    [
        Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 0, 0, 0, 0, 7),
        underlay_v6(1),
        underlay_v6(2),
        underlay_v6(3),
        VIP_WEB_V6,
        VIP_DNS_V6,
        VIP_ANY6,
    ]
}

const PORTS: [u16; 9] = [80, 443, 53, 179, 4179, 3784, 4784, GUE_PORT, 0];
const PROTOCOLS: [u8; 8] = [
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPPROTO_ICMP,
    IPPROTO_IPIP,
    IPPROTO_IPV6,
    IPPROTO_ICMPV6,
    IPPROTO_UDP, // GUE
    0,
];

/// An IP packet (no Ethernet header): its EtherType and bytes.
fn ip_packet(c: &mut Choices<'_>, depth: u8) -> (u16, Vec<u8>) {
    let v6 = c.byte() & 1 == 1;
    let src_i = c.byte();
    let dst_i = c.byte();
    let mut protocol = c.pick(&PROTOCOLS);
    let tunnel = protocol == IPPROTO_UDP && c.byte() & 1 == 1;
    if protocol == 0 {
        protocol = c.byte();
    }
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        let a = v6_addresses();
        (
            a[usize::from(src_i) % a.len()].into(),
            a[usize::from(dst_i) % a.len()].into(),
        )
    } else {
        let a = v4_addresses();
        (
            a[usize::from(src_i) % a.len()].into(),
            a[usize::from(dst_i) % a.len()].into(),
        )
    };
    let sport = c.u16();
    let mut dport = c.pick(&PORTS);
    if dport == 0 {
        dport = c.u16();
    }
    let flags = c.byte();
    let payload_len = usize::from(c.byte() % 64);
    let payload: Vec<u8> = (0..payload_len).map(|_| c.byte()).collect();
    let l4 = match protocol {
        IPPROTO_TCP => {
            let mut s = tcp_syn(src, dst, sport, dport);
            s[13] = flags;
            s.extend_from_slice(&payload);
            s
        }
        IPPROTO_UDP if tunnel && depth == 0 => {
            let (inner_type, inner) = ip_packet(c, 1);
            let inner_proto = if inner_type == ETH_P_IPV6 { 41 } else { 4 };
            let mut s = gue(sport, GUE_PORT, inner_proto, inner.len());
            s.extend_from_slice(&inner);
            s
        }
        IPPROTO_UDP => udp(src, dst, sport, dport, &payload),
        IPPROTO_IPIP | IPPROTO_IPV6 if depth == 0 => ip_packet(c, 1).1,
        IPPROTO_ICMP | IPPROTO_ICMPV6 if depth == 0 && flags & 1 == 1 => {
            // An ICMP error quoting a packet.
            let mut s = vec![if v6 { 1 } else { 3 }, flags >> 4, 0, 0, 0, 0, 0, 0];
            s.extend_from_slice(&ip_packet(c, 1).1);
            s
        }
        _ => {
            let mut s = vec![flags, c.byte(), 0, 0, 0, 0, 0, 0];
            s.extend_from_slice(&payload);
            s
        }
    };
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = ipv4(s, d, protocol, &[], &l4);
            let frag = c.byte();
            // DF, MF and a fragment offset now and then.
            p[6] = frag & 0x60;
            p[7] = if frag & 0x80 != 0 { frag & 0x1f } else { 0 };
            p[10..12].copy_from_slice(&[0, 0]);
            let sum = checksum(&p[..IPV4_LEN], 0);
            p[10..12].copy_from_slice(&sum.to_be_bytes());
            (ETH_P_IPV4, p)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => (ETH_P_IPV6, ipv6(s, d, protocol, &l4)),
        _ => unreachable!("one family"),
    }
}

/// A whole frame from `data`.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let mut c = Choices(data);
    let tags = c.byte();
    let vlans: Vec<Vlan> = (0..tags % 4)
        .map(|i| Vlan {
            tpid: if i == 0 && tags & 0x10 != 0 {
                TPID_8021AD
            } else {
                TPID_8021Q
            },
            vid: u16::from(i) + 100,
        })
        .collect();
    let kind = c.byte();
    let (ethertype, payload) = match kind % 8 {
        0 => (ETH_P_ARP, vec![0; 28]),
        1 => (c.u16(), (0..32).map(|_| c.byte()).collect()),
        _ => ip_packet(&mut c, 0),
    };
    let mut frame = ethernet(&vlans, ethertype, &payload);
    // Then a cut, and a byte flipped, from the input.
    let cut = usize::from(c.byte());
    if cut < 32 {
        frame.truncate(frame.len().saturating_sub(cut).max(MIN_LEN));
    }
    let (at, xor) = (usize::from(c.u16()), c.byte());
    if xor != 0 && !frame.is_empty() {
        let at = at % frame.len();
        frame[at] ^= xor;
    }
    frame
}

/// The kernel's smallest test-run frame.
const MIN_LEN: usize = 14;
