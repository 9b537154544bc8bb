//! Crafted frames for BPF test runs: Ethernet with VLAN tags, IPv4 (with
//! options), IPv6, UDP and TCP, with correct lengths and checksums unless a
//! test breaks them on purpose.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// EtherType IPv4.
pub const ETH_P_IPV4: u16 = 0x0800;
/// EtherType IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// EtherType ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// TPID of an 802.1Q (customer) VLAN tag.
pub const TPID_8021Q: u16 = 0x8100;
/// TPID of an 802.1ad (service) VLAN tag.
pub const TPID_8021AD: u16 = 0x88a8;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of IPv4-in-IP.
pub const IPPROTO_IPIP: u8 = 4;
/// IP protocol number of IPv6-in-IP.
pub const IPPROTO_IPV6: u8 = 41;
/// IP protocol number of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// Ethernet header length.
pub const ETH_LEN: usize = 14;
/// VLAN tag length.
pub const VLAN_LEN: usize = 4;
/// IPv4 header length without options.
pub const IPV4_LEN: usize = 20;
/// IPv6 header length.
pub const IPV6_LEN: usize = 40;
/// UDP header length.
pub const UDP_LEN: usize = 8;

/// Destination MAC of crafted frames.
pub const MAC_DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Source MAC of crafted frames.
pub const MAC_SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// One VLAN tag.
#[derive(Clone, Copy, Debug)]
pub struct Vlan {
    /// Tag protocol identifier ([`TPID_8021Q`] or [`TPID_8021AD`]).
    pub tpid: u16,
    /// VLAN id (12 bits).
    pub vid: u16,
}

/// An Ethernet frame: MACs, the VLAN tags in order, EtherType, payload.
pub fn ethernet(vlans: &[Vlan], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(ETH_LEN + VLAN_LEN * vlans.len() + payload.len());
    frame.extend_from_slice(&MAC_DST);
    frame.extend_from_slice(&MAC_SRC);
    for vlan in vlans {
        frame.extend_from_slice(&vlan.tpid.to_be_bytes());
        frame.extend_from_slice(&(vlan.vid & 0x0fff).to_be_bytes());
    }
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An IPv4 header without options as an encapsulating node writes it: ID 0,
/// DF, TTL 64, the given TOS, a correct checksum; `payload_len` bytes follow.
pub fn outer_ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    tos: u8,
    payload_len: usize,
) -> Vec<u8> {
    let total = u16::try_from(IPV4_LEN + payload_len).expect("fits");
    let mut h = vec![0x45, tos];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0, 64, protocol, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let sum = checksum(&h, 0);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h
}

/// An IPv6 header as an encapsulating node writes it: hop limit 64, the
/// given traffic class and flow label; `payload_len` bytes follow.
pub fn outer_ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    tc: u8,
    flow_label: u32,
    payload_len: usize,
) -> Vec<u8> {
    let mut h = vec![
        0x60 | (tc >> 4),
        (tc << 4) | ((flow_label >> 16) & 0x0f) as u8,
    ];
    h.extend_from_slice(&(flow_label as u16).to_be_bytes());
    h.extend_from_slice(&u16::try_from(payload_len).expect("fits").to_be_bytes());
    h.extend_from_slice(&[next_header, 64]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h
}

/// A UDP header with checksum 0 and a GUE version-0 header (no options)
/// announcing `inner_proto` (4 or 41), for `inner_len` bytes of inner packet.
pub fn gue(sport: u16, dport: u16, inner_proto: u8, inner_len: usize) -> Vec<u8> {
    let len = u16::try_from(UDP_LEN + 4 + inner_len).expect("fits");
    let mut h = Vec::with_capacity(12);
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, inner_proto, 0, 0]);
    h
}

/// An IPv4 packet with `options` (padded to a multiple of 4 bytes) and a
/// correct header checksum.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut opts = options.to_vec();
    opts.resize(options.len().div_ceil(4) * 4, 0);
    let header_len = IPV4_LEN + opts.len();
    assert!(header_len <= 60, "IPv4 options longer than 40 bytes");
    let total = u16::try_from(header_len + payload.len()).expect("IPv4 packet fits 64 KiB");
    let mut p = Vec::with_capacity(total.into());
    p.push(0x40 | (header_len / 4) as u8);
    p.push(0); // DSCP/ECN
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0]); // id 1, DF
    p.push(64);
    p.push(protocol);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&opts);
    let sum = checksum(&p[..header_len], 0);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).expect("IPv6 payload fits 64 KiB");
    let mut p = Vec::with_capacity(IPV6_LEN + payload.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&len.to_be_bytes());
    p.push(next_header);
    p.push(64);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// A UDP datagram with its checksum over the pseudo-header of `src`/`dst`.
pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(UDP_LEN + payload.len()).expect("UDP datagram fits 64 KiB");
    let mut d = Vec::with_capacity(len.into());
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let sum = match checksum(&d, pseudo_header_sum(src, dst, IPPROTO_UDP, d.len())) {
        0 => 0xffff, // 0 means "no checksum" in UDP
        s => s,
    };
    d[6..8].copy_from_slice(&sum.to_be_bytes());
    d
}

/// A TCP SYN segment (no options) with its checksum.
pub fn tcp_syn(src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Vec<u8> {
    let mut s = Vec::with_capacity(20);
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&1u32.to_be_bytes()); // sequence
    s.extend_from_slice(&0u32.to_be_bytes()); // ack
    s.push(5 << 4); // data offset 5 words
    s.push(0x02); // SYN
    s.extend_from_slice(&64240u16.to_be_bytes()); // window
    s.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    let sum = checksum(&s, pseudo_header_sum(src, dst, IPPROTO_TCP, s.len()));
    s[16..18].copy_from_slice(&sum.to_be_bytes());
    s
}

/// A complete IPv4/UDP frame, optionally VLAN-tagged.
pub fn udp4_frame(
    vlans: &[Vlan],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let l4 = udp(src.into(), dst.into(), 40000, dport, payload);
    ethernet(vlans, ETH_P_IPV4, &ipv4(src, dst, IPPROTO_UDP, &[], &l4))
}

/// A complete IPv6/UDP frame, optionally VLAN-tagged.
pub fn udp6_frame(
    vlans: &[Vlan],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let l4 = udp(src.into(), dst.into(), 40000, dport, payload);
    ethernet(vlans, ETH_P_IPV6, &ipv6(src, dst, IPPROTO_UDP, &l4))
}

/// The one's-complement sum (RFC 1071) of `bytes` added to `initial`, folded
/// and inverted.
pub fn checksum(bytes: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    for chunk in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
        ]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The checksum of a transport `segment` (TCP, UDP, ICMPv6) of `protocol`
/// between `src` and `dst`, pseudo-header included, the checksum field
/// being zero in `segment`.
pub fn transport_checksum(src: IpAddr, dst: IpAddr, protocol: u8, segment: &[u8]) -> u16 {
    checksum(
        segment,
        pseudo_header_sum(src, dst, protocol, segment.len()),
    )
}

/// Unfolded sum of the TCP/UDP pseudo-header.
fn pseudo_header_sum(src: IpAddr, dst: IpAddr, protocol: u8, len: usize) -> u32 {
    let mut bytes = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            bytes.extend_from_slice(&s.octets());
            bytes.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            bytes.extend_from_slice(&s.octets());
            bytes.extend_from_slice(&d.octets());
        }
        _ => panic!("pseudo-header with mixed address families"),
    }
    bytes.extend_from_slice(&u32::try_from(len).expect("length fits").to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, protocol]);
    bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{VIP_WEB_V4, client_v4, underlay_v6};

    #[test]
    fn ipv4_header_checksum_verifies() {
        let p = ipv4(client_v4(1), VIP_WEB_V4, IPPROTO_UDP, &[1, 1, 1], b"x");
        assert_eq!(p[0], 0x46, "options padded to one word");
        assert_eq!(checksum(&p[..24], 0), 0);
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 25);
    }

    #[test]
    fn udp_checksums_verify_over_the_pseudo_header() {
        for (src, dst) in [
            (IpAddr::from(client_v4(1)), IpAddr::from(VIP_WEB_V4)),
            (IpAddr::from(underlay_v6(1)), IpAddr::from(underlay_v6(2))),
        ] {
            let d = udp(src, dst, 1234, 53, b"odd");
            assert_eq!(
                checksum(&d, pseudo_header_sum(src, dst, IPPROTO_UDP, d.len())),
                0
            );
            let s = tcp_syn(src, dst, 1234, 80);
            assert_eq!(
                checksum(&s, pseudo_header_sum(src, dst, IPPROTO_TCP, s.len())),
                0
            );
        }
    }

    #[test]
    fn vlan_tags_come_in_order_before_the_ethertype() {
        let f = ethernet(
            &[
                Vlan {
                    tpid: TPID_8021AD,
                    vid: 10,
                },
                Vlan {
                    tpid: TPID_8021Q,
                    vid: 0x1fff,
                },
            ],
            ETH_P_IPV4,
            &[],
        );
        assert_eq!(
            &f[12..],
            &[0x88, 0xa8, 0, 10, 0x81, 0x00, 0x0f, 0xff, 0x08, 0x00]
        );
    }
}
