//! Kernel state the agent owns, as plain values: the desired state the
//! control logic asks for, the actual state dumped from the kernel
//! (filtered to what the agent owns), and the changes between them.
//! Pure: no I/O.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use crate::bgp::message::Prefix;

/// What marks kernel state as the agent's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ownership {
    /// The agent's own interface (a dummy; `ifb` where the kernel has no
    /// dummy driver). Addresses are only ever changed on it.
    pub link: String,
    /// The agent's routing table.
    pub table: u32,
    /// The agent's route (and neighbour) protocol number.
    pub protocol: u8,
}

/// An address on the agent's interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length (32 or 128 for the host addresses the agent uses).
    pub prefix_len: u8,
}

/// A route in the agent's table, with the agent's protocol number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    /// Destination (host routes).
    pub dst: Prefix,
    /// Gateway, or `None` for a directly connected destination.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: u32,
    /// Preferred source address, if any.
    pub src: Option<IpAddr>,
}

/// A neighbour entry the agent created (marked with its protocol number,
/// managed: the kernel keeps it resolved).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Neighbour {
    /// The next hop's address.
    pub addr: IpAddr,
    /// The interface it is on.
    pub ifindex: u32,
}

/// The agent's interface as the kernel has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkState {
    /// Its index.
    pub index: u32,
    /// Administratively up.
    pub up: bool,
}

/// What the kernel has of what the agent owns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actual {
    /// The agent's interface, if it exists.
    pub link: Option<LinkState>,
    /// Addresses on it.
    pub addresses: BTreeSet<Address>,
    /// Routes in the agent's table with the agent's protocol, by
    /// destination.
    pub routes: BTreeMap<Prefix, Route>,
    /// Neighbour entries with the agent's protocol.
    pub neighbours: BTreeSet<Neighbour>,
}

/// What the agent wants the kernel to have.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// Addresses on the agent's interface (which always exists and is up).
    pub addresses: BTreeSet<Address>,
    /// Routes in the agent's table, by destination.
    pub routes: BTreeMap<Prefix, Route>,
    /// Neighbour entries to keep resolved.
    pub neighbours: BTreeSet<Neighbour>,
}

/// One change to the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Create the agent's interface (it is brought up by a [`Change::LinkUp`]).
    CreateLink,
    /// Bring the agent's interface up.
    LinkUp,
    /// Add an address to the agent's interface.
    AddAddress(Address),
    /// Remove an address from the agent's interface.
    DelAddress(Address),
    /// Add a route to a destination the agent has no route to (never
    /// replacing anyone else's).
    AddRoute(Route),
    /// Replace the agent's route to the same destination.
    ReplaceRoute(Route),
    /// Remove a route.
    DelRoute(Route),
    /// Create (or refresh) a managed neighbour entry.
    AddNeighbour(Neighbour),
    /// Remove a neighbour entry.
    DelNeighbour(Neighbour),
}
