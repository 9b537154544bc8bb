//! What the kernel should hold, as a pure function of the agent's view:
//!
//! - on the agent's interface: the node identity and the service VIPs as
//!   host addresses. VIPs of services that are configured but not healthy
//!   here stay too (by default): a peer may still decapsulate-and-deliver
//!   to us a flow it chose while we were healthy, and the stack must
//!   accept it rather than answer with an ICMP error; whether we *attract*
//!   traffic for a VIP is decided by the overlay and BGP, not by the
//!   address. [`VipAddresses::HealthyOnly`] changes that.
//! - in the agent's table: a host route to each peer's encapsulation next
//!   hops (its underlay addresses, and its private underlay address while
//!   the adjacency is established and private transport is in use), along
//!   the path the kernel's own routing gives; and a host route to each
//!   peer's node identity along the path to that peer (the private one
//!   when in use), with our identity as the source.
//! - a managed neighbour entry for the first hop of each of those paths,
//!   so that `bpf_fib_lookup` finds a resolved neighbour on the first
//!   packet.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use super::state::{Address, Desired, Neighbour, Route};
use crate::bgp::message::Prefix;

/// Which VIPs live on the agent's interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VipAddresses {
    /// Every configured VIP (the default; see the module comment).
    #[default]
    Configured,
    /// Only the VIPs of services healthy here.
    HealthyOnly,
}

/// One established overlay peer, as far as the kernel is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerPaths {
    /// Its node identity addresses.
    pub identities: Vec<IpAddr>,
    /// Addresses traffic is encapsulated toward (its underlay next hops).
    pub next_hops: Vec<IpAddr>,
    /// Its private underlay address, while in use.
    pub private: Option<IpAddr>,
}

/// Everything the desired state depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inputs {
    /// Our node identity addresses.
    pub node_addrs: Vec<IpAddr>,
    /// Every configured service VIP.
    pub vips: Vec<IpAddr>,
    /// VIPs of services healthy here.
    pub healthy_vips: BTreeSet<IpAddr>,
    /// Which VIPs go on the interface.
    pub vip_addresses: VipAddresses,
    /// Established overlay peers.
    pub peers: Vec<PeerPaths>,
}

/// How the kernel reaches an address: its gateway (none when on-link)
/// and output interface, from a route lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Path {
    /// The gateway, if not on-link.
    pub gateway: Option<IpAddr>,
    /// The output interface.
    pub oif: u32,
}

impl Inputs {
    /// Every address whose path the kernel must be asked for.
    pub fn destinations(&self) -> BTreeSet<IpAddr> {
        self.peers
            .iter()
            .flat_map(|p| p.next_hops.iter().chain(&p.private))
            .copied()
            .collect()
    }
}

/// The desired state, given the paths the kernel gave for
/// [`Inputs::destinations`] (a destination without a path gets no route
/// and no neighbour: nothing is installed toward what is unreachable).
pub fn desired(inputs: &Inputs, paths: &BTreeMap<IpAddr, Path>) -> Desired {
    let host = |addr: IpAddr| Address {
        addr,
        prefix_len: if addr.is_ipv4() { 32 } else { 128 },
    };
    let vips = inputs.vips.iter().filter(|v| match inputs.vip_addresses {
        VipAddresses::Configured => true,
        VipAddresses::HealthyOnly => inputs.healthy_vips.contains(v),
    });
    let addresses = inputs
        .node_addrs
        .iter()
        .chain(vips)
        .map(|a| host(*a))
        .collect();
    let source = |family_v4: bool| {
        inputs
            .node_addrs
            .iter()
            .find(|a| a.is_ipv4() == family_v4)
            .copied()
    };
    let mut routes = BTreeMap::new();
    let mut neighbours = BTreeSet::new();
    let mut route_to = |dst: IpAddr, toward: IpAddr, src: Option<IpAddr>| {
        let Some(path) = paths.get(&toward) else {
            return;
        };
        // On-link: the destination itself (or the peer it is reached
        // through) is the first hop.
        let first_hop = path.gateway.unwrap_or(toward);
        let gateway = (first_hop != dst).then_some(first_hop);
        // A gateway of the other family than the destination would need
        // RTA_VIA; such routes are left out.
        if gateway.is_some_and(|g| g.is_ipv4() != dst.is_ipv4()) {
            return;
        }
        let route = Route {
            dst: Prefix::host(dst),
            gateway,
            oif: path.oif,
            src,
        };
        routes.insert(route.dst, route);
        neighbours.insert(Neighbour {
            addr: first_hop,
            ifindex: path.oif,
        });
    };
    for peer in &inputs.peers {
        for hop in peer.next_hops.iter().chain(&peer.private) {
            route_to(*hop, *hop, None);
        }
        for id in &peer.identities {
            // Toward the peer along its path of the identity's family,
            // the private one first.
            let toward = peer
                .private
                .iter()
                .chain(&peer.next_hops)
                .find(|h| h.is_ipv4() == id.is_ipv4() && paths.contains_key(h));
            if let Some(toward) = toward {
                route_to(*id, *toward, source(id.is_ipv4()));
            }
        }
    }
    Desired {
        addresses,
        routes,
        neighbours,
    }
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
