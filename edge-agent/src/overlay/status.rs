//! What the overlay shows of itself: adjacencies, the RIB's view, what we
//! advertise, refusals. Published as a `watch` value after every change.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr},
    time::Instant,
};

use super::{adjacency::AdjState, identity::Identity, import::Rejection};
use crate::bgp::message::Prefix;

/// One adjacency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdjacencyStatus {
    /// Its state.
    pub state: AdjState,
    /// Where discovery says it is (empty: it connects to us).
    pub addrs: Vec<SocketAddr>,
    /// The peer's underlay address on the current connection.
    pub transport: Option<IpAddr>,
    /// Since when it is Established.
    pub established_since: Option<Instant>,
    /// How many times it became Established.
    pub established_count: u64,
    /// Accepted routes from the peer.
    pub routes: usize,
    /// Rejected routes from the peer, per reason, this adjacency.
    pub rejected: BTreeMap<Rejection, u64>,
    /// The private underlay address in use toward the peer, if any.
    pub private_in_use: Option<IpAddr>,
    /// Why the last connection attempt toward the peer failed.
    pub last_failure: Option<String>,
    /// The BFD session of the current (or last) connection, if BFD runs.
    pub bfd: Option<crate::bfd::BfdStatus>,
}

/// The overlay as a whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverlayStatus {
    /// Our identity (from our certificate).
    pub identity: Option<Identity>,
    /// Adjacencies by peer.
    pub adjacencies: BTreeMap<Identity, AdjacencyStatus>,
    /// Per service VIP, the peers that serve it and where to encapsulate.
    pub services: BTreeMap<IpAddr, BTreeMap<Identity, IpAddr>>,
    /// Per established peer, its node identity addresses.
    pub identities: BTreeMap<Identity, BTreeSet<IpAddr>>,
    /// Outer sources the data plane may decapsulate from.
    pub trusted_sources: BTreeMap<IpAddr, Identity>,
    /// What we originate.
    pub advertised: BTreeSet<Prefix>,
    /// Accepted routes over all peers.
    pub routes: usize,
    /// Connections refused on the control endpoint or when dialing, per
    /// reason.
    pub refused: BTreeMap<&'static str, u64>,
    /// Trust material reloads that succeeded.
    pub reloads: u64,
    /// The last reload that failed, and why (the old material stays).
    pub reload_error: Option<String>,
    /// Addresses that count as candidates on the control endpoint (and
    /// that the data plane lets knock): discovered and configured peers'
    /// addresses, and the transports of current adjacencies.
    pub candidates: BTreeSet<IpAddr>,
    /// Who was let start a handshake on the control endpoint, and who
    /// was closed at once (published every second).
    pub admission: super::admission::AdmissionStatus,
}

impl OverlayStatus {
    /// Peers whose adjacency is Established.
    pub fn established(&self) -> BTreeSet<Identity> {
        self.adjacencies
            .iter()
            .filter(|(_, a)| a.state == AdjState::Established)
            .map(|(p, _)| p.clone())
            .collect()
    }
}
