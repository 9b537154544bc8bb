//! The overlay RIB: per established peer, the routes that passed the
//! import filter (its node identity, the VIPs of its healthy services, a
//! private underlay address), and from them, per service, the set of
//! peers that serve it with the address to encapsulate toward. Every
//! change is returned as [`RibEvent`]s for the control logic. When a peer
//! goes down all its routes leave at once. Pure: no I/O, no clock.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use super::{
    identity::Identity,
    import::{ImportPolicy, Rejection, RouteKind},
};
use crate::bgp::message::{Prefix, Update};

/// One accepted route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// What it is.
    pub kind: RouteKind,
    /// The peer's underlay address it was announced with.
    pub next_hop: IpAddr,
}

/// A change of the overlay RIB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RibEvent {
    /// An adjacency became established: the peer may announce routes.
    PeerUp {
        /// The peer.
        peer: Identity,
        /// Its underlay address on the session.
        transport: IpAddr,
    },
    /// An adjacency went down; its routes were removed (each with its own
    /// `Removed` event, before this one).
    PeerDown {
        /// The peer.
        peer: Identity,
    },
    /// A route was accepted (or replaced with a new next hop).
    Added {
        /// From whom.
        peer: Identity,
        /// The host route.
        prefix: Prefix,
        /// Kind and next hop.
        route: Route,
    },
    /// A route was withdrawn, or left with its peer.
    Removed {
        /// From whom.
        peer: Identity,
        /// The host route.
        prefix: Prefix,
        /// Kind and next hop it had.
        route: Route,
    },
    /// Traffic toward a peer now uses this address: its private underlay
    /// address while that path is allowed and works, else `None` (the
    /// Internet underlay, each route's next hop).
    Transport {
        /// The peer.
        peer: Identity,
        /// The private address in use, if any.
        private: Option<IpAddr>,
    },
}

/// What one UPDATE did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Changes to the RIB.
    pub events: Vec<RibEvent>,
    /// Rejected prefixes, each with its reason and whether it is the first
    /// rejection for that reason from this peer since the adjacency came up
    /// (log those; count all).
    pub rejected: Vec<(Prefix, Rejection, bool)>,
}

#[derive(Clone, Debug)]
struct Peer {
    transport: IpAddr,
    private_allowed: bool,
    private_path_up: bool,
    routes: BTreeMap<Prefix, Route>,
    rejected: BTreeMap<Rejection, u64>,
}

impl Peer {
    fn private_address(&self) -> Option<IpAddr> {
        self.routes
            .iter()
            .find(|(_, r)| r.kind == RouteKind::Private)
            .and_then(|(p, _)| p.host_addr())
    }

    /// The private address traffic uses now, if any.
    fn private_in_use(&self) -> Option<IpAddr> {
        if self.private_allowed && self.private_path_up {
            self.private_address()
        } else {
            None
        }
    }
}

/// The overlay RIB.
#[derive(Clone, Debug)]
pub struct OverlayRib {
    policy: ImportPolicy,
    peers: BTreeMap<Identity, Peer>,
}

/// One peer as the RIB sees it, for status output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerView {
    /// Its underlay address on the session.
    pub transport: IpAddr,
    /// Accepted routes.
    pub routes: BTreeMap<Prefix, Route>,
    /// Rejections per reason since the adjacency came up.
    pub rejected: BTreeMap<Rejection, u64>,
    /// The private address traffic uses now, if any.
    pub private_in_use: Option<IpAddr>,
}

impl OverlayRib {
    /// An empty RIB that imports with `policy`.
    pub fn new(policy: ImportPolicy) -> Self {
        OverlayRib {
            policy,
            peers: BTreeMap::new(),
        }
    }

    /// The import policy.
    pub fn policy(&self) -> &ImportPolicy {
        &self.policy
    }

    /// An adjacency with `peer` is established over `transport`; it may
    /// use a private transport if `private_allowed`. A peer already up is
    /// first taken down (its routes leave).
    pub fn peer_up(
        &mut self,
        peer: &Identity,
        transport: IpAddr,
        private_allowed: bool,
    ) -> Vec<RibEvent> {
        let mut events = self.peer_down(peer);
        self.peers.insert(
            peer.clone(),
            Peer {
                transport,
                private_allowed,
                private_path_up: false,
                routes: BTreeMap::new(),
                rejected: BTreeMap::new(),
            },
        );
        events.push(RibEvent::PeerUp {
            peer: peer.clone(),
            transport,
        });
        events
    }

    /// The adjacency with `peer` went down: every route from it leaves now.
    pub fn peer_down(&mut self, peer: &Identity) -> Vec<RibEvent> {
        let Some(state) = self.peers.remove(peer) else {
            return Vec::new();
        };
        let mut events: Vec<RibEvent> = state
            .routes
            .into_iter()
            .map(|(prefix, route)| RibEvent::Removed {
                peer: peer.clone(),
                prefix,
                route,
            })
            .collect();
        events.push(RibEvent::PeerDown { peer: peer.clone() });
        events
    }

    /// Imports one UPDATE from `peer` (ignored unless the peer is up):
    /// withdrawals first, then announcements through the import filter.
    pub fn update(&mut self, peer: &Identity, update: &Update) -> Imported {
        let mut out = Imported::default();
        let policy = &self.policy;
        let Some(state) = self.peers.get_mut(peer) else {
            return out;
        };
        let before = state.private_in_use();
        let attrs = &update.attributes;
        for prefix in update.withdrawn_prefixes() {
            if let Some(route) = state.routes.remove(prefix) {
                out.events.push(RibEvent::Removed {
                    peer: peer.clone(),
                    prefix: *prefix,
                    route,
                });
            }
        }
        for prefix in update.announced_prefixes() {
            let checked =
                policy
                    .check(prefix, attrs, state.transport)
                    .and_then(|(kind, next_hop)| {
                        let known = state.routes.contains_key(prefix);
                        if !known && state.routes.len() >= policy.max_routes {
                            Err(Rejection::OverLimit)
                        } else {
                            Ok(Route { kind, next_hop })
                        }
                    });
            match checked {
                Ok(route) => {
                    if state.routes.insert(*prefix, route) != Some(route) {
                        out.events.push(RibEvent::Added {
                            peer: peer.clone(),
                            prefix: *prefix,
                            route,
                        });
                    }
                }
                Err(reason) => {
                    // A rejected re-announcement replaces what it had
                    // announced before: the old route is withdrawn.
                    if let Some(route) = state.routes.remove(prefix) {
                        out.events.push(RibEvent::Removed {
                            peer: peer.clone(),
                            prefix: *prefix,
                            route,
                        });
                    }
                    let count = state.rejected.entry(reason).or_insert(0);
                    *count += 1;
                    out.rejected.push((*prefix, reason, *count == 1));
                }
            }
        }
        let after = state.private_in_use();
        if state.private_address().is_none() {
            state.private_path_up = false;
        }
        if before != after {
            out.events.push(RibEvent::Transport {
                peer: peer.clone(),
                private: after,
            });
        }
        out
    }

    /// The private path toward `peer` works (`true`) or failed (`false`),
    /// as probed by the runtime.
    pub fn set_private_path(&mut self, peer: &Identity, up: bool) -> Vec<RibEvent> {
        let Some(state) = self.peers.get_mut(peer) else {
            return Vec::new();
        };
        let before = state.private_in_use();
        state.private_path_up = up;
        let after = state.private_in_use();
        if before == after {
            return Vec::new();
        }
        vec![RibEvent::Transport {
            peer: peer.clone(),
            private: after,
        }]
    }

    /// The private underlay address `peer` announced, if private transport
    /// toward it is allowed (what the runtime should probe).
    pub fn private_candidate(&self, peer: &Identity) -> Option<IpAddr> {
        let state = self.peers.get(peer)?;
        state
            .private_allowed
            .then(|| state.private_address())
            .flatten()
    }

    /// Per service VIP, the peers that serve it and the address to
    /// encapsulate toward (the private one when in use, else the route's
    /// next hop).
    pub fn services(&self) -> BTreeMap<IpAddr, BTreeMap<Identity, IpAddr>> {
        let mut out: BTreeMap<IpAddr, BTreeMap<Identity, IpAddr>> = BTreeMap::new();
        for (peer, state) in &self.peers {
            let private = state.private_in_use();
            for (prefix, route) in &state.routes {
                if route.kind != RouteKind::Service {
                    continue;
                }
                if let Some(vip) = prefix.host_addr() {
                    // Private transport is per family of the tunnel endpoint.
                    let target = match private {
                        Some(p) if p.is_ipv4() == route.next_hop.is_ipv4() => p,
                        _ => route.next_hop,
                    };
                    out.entry(vip).or_default().insert(peer.clone(), target);
                }
            }
        }
        out
    }

    /// Per established peer, its node identity addresses.
    pub fn identities(&self) -> BTreeMap<Identity, BTreeSet<IpAddr>> {
        self.peers
            .iter()
            .map(|(peer, state)| {
                let addrs = state
                    .routes
                    .iter()
                    .filter(|(_, r)| r.kind == RouteKind::Identity)
                    .filter_map(|(p, _)| p.host_addr())
                    .collect();
                (peer.clone(), addrs)
            })
            .collect()
    }

    /// Outer source addresses the data plane may decapsulate from: each
    /// established peer's session address, its routes' next hops and its
    /// private address when private transport toward it is allowed.
    pub fn trusted_sources(&self) -> BTreeMap<IpAddr, Identity> {
        let mut out = BTreeMap::new();
        for (peer, state) in &self.peers {
            out.insert(state.transport, peer.clone());
            for route in state.routes.values() {
                if route.kind != RouteKind::Private {
                    out.insert(route.next_hop, peer.clone());
                }
            }
            if state.private_allowed {
                if let Some(p) = state.private_address() {
                    out.insert(p, peer.clone());
                }
            }
        }
        out
    }

    /// The established peers.
    pub fn peers(&self) -> impl Iterator<Item = &Identity> {
        self.peers.keys()
    }

    /// One peer, for status output.
    pub fn peer(&self, peer: &Identity) -> Option<PeerView> {
        let state = self.peers.get(peer)?;
        Some(PeerView {
            transport: state.transport,
            routes: state.routes.clone(),
            rejected: state.rejected.clone(),
            private_in_use: state.private_in_use(),
        })
    }

    /// Accepted routes over all peers.
    pub fn route_count(&self) -> usize {
        self.peers.values().map(|p| p.routes.len()).sum()
    }
}

#[cfg(test)]
#[path = "rib_tests.rs"]
mod tests;
