//! The upstream link of the BGP tests and benchmarks: an ISP namespace and
//! an edge namespace joined by a veth (`isp0` at the ISP, `up0` at the
//! edge) carrying the plan's underlay addresses, and the edge's eBGP
//! neighbour settings toward the ISP.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use edge_agent::bgp::{
    message::Family, neighbor::NeighborConfig, rib_out::Origination, session::SessionConfig,
};

use crate::{
    netns::{Netns, veth},
    plan::{CDN_ASN, underlay_v4, underlay_v6},
};

/// The ISP and edge namespaces, linked: `underlay_v4(1)`/30 and
/// `underlay_v6(1)`/64 at the ISP, `…(2)` at the edge.
pub fn link() -> (Netns, Netns) {
    let (isp, edge) = (Netns::new(), Netns::new());
    veth(&isp, "isp0", &edge, "up0");
    isp.add_addr("isp0", &format!("{}/30", underlay_v4(1)));
    isp.add_addr("isp0", &format!("{}/64", underlay_v6(1)));
    edge.add_addr("up0", &format!("{}/30", underlay_v4(2)));
    edge.add_addr("up0", &format!("{}/64", underlay_v6(2)));
    (isp, edge)
}

/// The edge (AS [`CDN_ASN`], identifier 192.0.2.1) toward the ISP router
/// at `peer` in `peer_as`: active, hold time 90 s, a 1 s connect retry so
/// tests do not wait, no MD5, no graceful restart, no prefix limit; next
/// hop self on both families.
pub fn neighbor(peer: IpAddr, peer_as: u32, families: Vec<Family>) -> NeighborConfig {
    NeighborConfig {
        session: SessionConfig {
            local_as: CDN_ASN,
            peer_as,
            bgp_id: Ipv4Addr::new(192, 0, 2, 1),
            hold_time: 90,
            connect_retry: Duration::from_secs(1),
            passive: false,
            families,
            graceful_restart: None,
            max_prefixes: None,
        },
        peer: SocketAddr::new(peer, 179),
        local: None,
        md5_key: None,
        origination: Origination {
            local_as: CDN_ASN,
            ebgp: true,
            next_hop_v4: Some(underlay_v4(2)),
            next_hop_v6: Some((underlay_v6(2), None)),
        },
        bfd: None,
    }
}
