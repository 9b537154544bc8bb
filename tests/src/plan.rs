//! The address plan from the design brief. Tests only ever use these
//! documentation, benchmarking and test ranges, and only inside network
//! namespaces they created.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Web service VIP (TCP 80).
pub const VIP_WEB_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// DNS service VIP (UDP/TCP 53).
pub const VIP_DNS_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 53);
/// Web service VIP, IPv6.
pub const VIP_WEB_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xac, 0, 0, 0, 0, 0x10);
/// DNS service VIP, IPv6.
pub const VIP_DNS_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xac, 0, 0, 0, 0, 0x53);

/// The anycast prefixes every PoP announces, as (address, length).
pub fn anycast() -> Vec<(std::net::IpAddr, u8)> {
    vec![
        (Ipv4Addr::new(203, 0, 113, 0).into(), 24),
        (Ipv6Addr::new(0x2001, 0xdb8, 0xac, 0, 0, 0, 0, 0).into(), 48),
    ]
}

/// ASN of the CDN (every edge node).
pub const CDN_ASN: u32 = 64500;
/// ASNs of the "ISP" routers.
pub const ISP_ASNS: [u32; 4] = [64496, 64497, 64498, 64499];

/// Node identity `n` (192.0.2.n).
pub const fn node_v4(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, n)
}

/// Node identity `n`, IPv6 (2001:db8:1d::n).
pub const fn node_v6(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0x1d, 0, 0, 0, 0, n)
}

/// Underlay ("Internet") host `n` (198.51.100.n).
pub const fn underlay_v4(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, n)
}

/// Underlay host `n`, IPv6 (2001:db8:ff::n).
pub const fn underlay_v6(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, n)
}

/// Client `n` (198.18.0.n).
pub const fn client_v4(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, n)
}
