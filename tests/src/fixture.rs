//! A data plane in a namespace with a configured world around it: an
//! Internet-facing `up0` with routes and static neighbours for the peers,
//! forwarding on (bpf_fib_lookup needs it), services, peers and trusted
//! sources. Shared by the pipeline tests and the benchmarks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use edge_agent::dataplane::{
    Dataplane, DoorPolicy, DoorSpec, DoorsSpec, Encap, NodeConfig, PeerSpec, Protocol,
    ServiceBackend, ServiceMatch, ServiceSpec,
};

use crate::{
    netns::Netns,
    plan::{VIP_DNS_V4, VIP_DNS_V6, VIP_WEB_V4, VIP_WEB_V6, anycast, underlay_v4, underlay_v6},
};

/// The GUE port of the lab node.
pub const GUE_PORT: u16 = 6080;
/// The underlay MTU of the lab node.
pub const MTU: u16 = 1500;

// Peers: id, underlay, encapsulation; neighbour MACs are 02:00:00:00:01:<n>.
/// Peer at 198.51.100.2, IP-in-IP.
pub const PEER_V4: u32 = 1;
/// Peer at 2001:db8:ff::2, IP-in-IP.
pub const PEER_V6: u32 = 2;
/// Peer at 198.51.100.3, GUE.
pub const PEER_GUE4: u32 = 3;
/// Peer at 198.51.100.4, whose neighbour entry is missing.
pub const PEER_NO_NEIGH: u32 = 4;
/// Peer at 192.0.2.200, with no route to it.
pub const PEER_NO_ROUTE: u32 = 5;
/// Peer at 2001:db8:ff::3, GUE.
pub const PEER_GUE6: u32 = 6;

/// VIP of a port-agnostic UDP service served by the GUE peer.
pub const VIP_ANY4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 20);
/// VIP of a service with no capacity and the default (pass) policy.
pub const VIP_DOWN_PASS: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 30);
/// VIP of a service with no capacity and the drop policy.
pub const VIP_DOWN_DROP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 31);
/// VIP of a service whose only peer has no resolved neighbour.
pub const VIP_NO_NEIGH: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 40);
/// VIP of a service whose only peer has no route.
pub const VIP_NO_ROUTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 41);
/// VIP of an IPv4 service served over the IPv6 underlay (4in6).
pub const VIP_4IN6: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 50);
/// VIP of a port-agnostic IPv6 UDP service served over GUE on IPv6.
pub const VIP_ANY6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xac, 0, 0, 0, 0, 0x60);

/// The neighbour MAC address of peer host `n` (02:00:00:00:01:n).
pub fn peer_mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x01, n]
}

/// A namespace with `up0` (the Internet-facing interface), routes and
/// static neighbours for the peers, forwarding on (bpf_fib_lookup needs it),
/// and a data plane with services, peers and trusted sources.
pub struct Lab {
    /// The namespace.
    pub ns: Netns,
    /// MAC address of `up0`.
    pub mac: [u8; 6],
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Lab {
    /// Builds the namespace.
    pub fn new() -> Self {
        let ns = Netns::new();
        ns.ip(&["link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
        ns.ip(&["link", "set", "up0", "up"]);
        ns.ip(&["link", "set", "up1", "up"]);
        ns.add_addr("up0", &format!("{}/24", underlay_v4(1)));
        ns.add_addr("up0", &format!("{}/64", underlay_v6(1)));
        // The fixed peers, and a pool 198.51.100.10-15 for the stickiness test.
        let fixed = [
            ("198.51.100.2", 2),
            ("198.51.100.3", 3),
            ("2001:db8:ff::2", 0x12),
            ("2001:db8:ff::3", 0x13),
        ]
        .map(|(a, n)| (a.to_owned(), n));
        let pool = (10..=15).map(|n| (format!("198.51.100.{n}"), n));
        for (addr, n) in fixed.into_iter().chain(pool) {
            let mac = peer_mac(n).map(|b| format!("{b:02x}")).join(":");
            ns.ip(&[
                "neigh",
                "replace",
                &addr,
                "lladdr",
                &mac,
                "dev",
                "up0",
                "nud",
                "permanent",
            ]);
        }
        ns.sysctl("net.ipv4.conf.all.forwarding", "1");
        ns.sysctl("net.ipv6.conf.all.forwarding", "1");
        let mac = ns.mac("up0");
        Lab { ns, mac }
    }
}

/// Writes the config, peers, trusted sources and services of the lab.
pub fn configure(dp: &mut Dataplane) {
    dp.set_config(&NodeConfig {
        underlay_v4: Some(underlay_v4(1)),
        underlay_v6: Some(underlay_v6(1)),
        gue_port: Some(GUE_PORT),
        mtu: MTU,
        anycast: anycast(),
    })
    .unwrap();
    let peers: [(u32, IpAddr, Encap); 6] = [
        (PEER_V4, underlay_v4(2).into(), Encap::IpIp),
        (PEER_V6, underlay_v6(2).into(), Encap::IpIp),
        (PEER_GUE4, underlay_v4(3).into(), Encap::Gue),
        (PEER_NO_NEIGH, underlay_v4(4).into(), Encap::IpIp),
        (
            PEER_NO_ROUTE,
            Ipv4Addr::new(192, 0, 2, 200).into(),
            Encap::IpIp,
        ),
        (PEER_GUE6, underlay_v6(3).into(), Encap::Gue),
    ];
    for (id, underlay, encap) in peers {
        dp.set_peer(id, PeerSpec { underlay, encap }).unwrap();
    }
    for (addr, peer) in [
        (IpAddr::from(underlay_v4(2)), PEER_V4),
        (underlay_v6(2).into(), PEER_V6),
        (underlay_v4(3).into(), PEER_GUE4),
    ] {
        dp.trust(addr, peer).unwrap();
    }
    let m = |vip: IpAddr, protocol, port| ServiceMatch {
        vip,
        protocol,
        port,
    };
    let via = |peer: u32| {
        vec![ServiceBackend {
            peer,
            identity: format!("edge://peer-{peer}"),
            weight: 1,
        }]
    };
    let svc = |id, matches, local_healthy, drop_when_unavailable, backends| ServiceSpec {
        id,
        matches,
        local_healthy,
        drop_when_unavailable,
        backends,
    };
    let services = vec![
        svc(
            0,
            vec![m(VIP_WEB_V4.into(), Protocol::Tcp, Some(80))],
            true,
            false,
            vec![],
        ),
        svc(
            1,
            vec![m(VIP_WEB_V6.into(), Protocol::Tcp, Some(80))],
            false,
            false,
            via(PEER_V6),
        ),
        svc(
            2,
            vec![
                m(VIP_DNS_V4.into(), Protocol::Udp, Some(53)),
                m(VIP_DNS_V4.into(), Protocol::Tcp, Some(53)),
            ],
            false,
            false,
            via(PEER_V4),
        ),
        svc(
            3,
            vec![m(VIP_DNS_V6.into(), Protocol::Udp, Some(53))],
            false,
            false,
            via(PEER_V4),
        ),
        svc(
            4,
            vec![m(VIP_ANY4.into(), Protocol::Udp, None)],
            false,
            false,
            via(PEER_GUE4),
        ),
        svc(
            5,
            vec![m(VIP_DOWN_PASS.into(), Protocol::Tcp, Some(443))],
            false,
            false,
            vec![],
        ),
        svc(
            6,
            vec![m(VIP_DOWN_DROP.into(), Protocol::Tcp, Some(443))],
            false,
            true,
            vec![],
        ),
        svc(
            7,
            vec![m(VIP_NO_NEIGH.into(), Protocol::Tcp, Some(80))],
            false,
            false,
            via(PEER_NO_NEIGH),
        ),
        svc(
            8,
            vec![m(VIP_NO_ROUTE.into(), Protocol::Tcp, Some(80))],
            false,
            false,
            via(PEER_NO_ROUTE),
        ),
        svc(
            9,
            vec![m(VIP_4IN6.into(), Protocol::Tcp, Some(80))],
            false,
            false,
            via(PEER_V6),
        ),
        svc(
            10,
            vec![m(VIP_ANY6.into(), Protocol::Udp, None)],
            false,
            false,
            via(PEER_GUE6),
        ),
    ];
    for spec in services {
        dp.set_service(&spec).unwrap();
    }
}

/// The doors the agent sets with its default config: the control port
/// rate-limited (20 SYN/s, burst 40, per /32 and /64), BGP and BFD (single
/// and multihop) for listed sources only.
pub fn doors() -> DoorsSpec {
    let door = |protocol, port, policy| DoorSpec {
        protocol,
        port,
        policy,
    };
    DoorsSpec {
        doors: vec![
            door(Protocol::Tcp, 4179, DoorPolicy::RateLimited),
            door(Protocol::Tcp, 179, DoorPolicy::ListedOnly),
            door(Protocol::Udp, 3784, DoorPolicy::ListedOnly),
            door(Protocol::Udp, 4784, DoorPolicy::ListedOnly),
        ],
        syn_rate: 20,
        syn_burst: 40,
        v4_prefix: 32,
        v6_prefix: 64,
    }
}
