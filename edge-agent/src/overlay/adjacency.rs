//! The adjacency with one overlay peer, as an explicit state machine:
//! candidate → connecting → authenticated → established → down (and, after
//! a backoff, connecting again). Pure: time comes in as arguments,
//! decisions go out as [`Output`]s that the runtime carries out.
//!
//! Exactly one adjacency per peer pair. A connection (ours or the peer's)
//! that is authenticated while there is none becomes the adjacency. When a
//! second authenticated connection with the same peer turns up, both ends
//! decide alike, without talking: a new connection from the same side as
//! the current one replaces it (that side lost the old one, e.g. it
//! restarted); otherwise the connection opened by the node with the lower
//! identity survives and the other is closed. To make that rare, the node
//! with the higher identity waits a little longer before its first dial
//! ([`Timers::defer`]), so that at start-up the lower one usually connects
//! first and nothing needs resolving.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use super::identity::Identity;
use crate::net::random::Seeded;

/// One connection to the peer, numbered by the adjacency.
pub type ConnId = u64;

/// Adjacency states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdjState {
    /// Known (discovered or configured), not tried yet.
    Candidate,
    /// We are connecting and authenticating; no connection is
    /// authenticated yet.
    Connecting,
    /// A connection is authenticated (mutual TLS, identity proven);
    /// iBGP is being set up on it.
    Authenticated,
    /// iBGP is Established: routes are exchanged.
    Established,
    /// The last connection ended or failed; waiting for the backoff.
    Down,
}

impl AdjState {
    /// A short name for status output.
    pub fn name(self) -> &'static str {
        match self {
            AdjState::Candidate => "candidate",
            AdjState::Connecting => "connecting",
            AdjState::Authenticated => "authenticated",
            AdjState::Established => "established",
            AdjState::Down => "down",
        }
    }
}

/// Why the adjacency closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Another connection with the same peer is the adjacency.
    Duplicate,
    /// A newer connection from the same side replaced it.
    Superseded,
    /// The peer is no longer trusted (certificate revoked or expired,
    /// removed from the allow-list, CA changed).
    Untrusted,
    /// The adjacency is being removed (shutdown, or the peer is gone from
    /// config).
    Removed,
}

impl CloseReason {
    /// The shutdown communication sent with the Cease (RFC 8203).
    pub fn text(self) -> &'static str {
        match self {
            CloseReason::Duplicate => "duplicate overlay connection",
            CloseReason::Superseded => "replaced by a newer connection",
            CloseReason::Untrusted => "peer certificate no longer valid",
            CloseReason::Removed => "adjacency removed (agent stopping, or peer no longer allowed)",
        }
    }
}

/// What the runtime must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Connect to `addr` and authenticate the peer there; report with
    /// [`Adjacency::dial_succeeded`] or [`Adjacency::dial_failed`].
    Dial {
        /// This connection's number.
        conn: ConnId,
        /// Where.
        addr: SocketAddr,
    },
    /// Run iBGP on this authenticated connection; report Established with
    /// [`Adjacency::established`] and its end with [`Adjacency::closed`].
    Run {
        /// Which connection.
        conn: ConnId,
    },
    /// Close (or abandon) this connection.
    Close {
        /// Which connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
    /// The state changed.
    StateChanged {
        /// From.
        from: AdjState,
        /// To.
        to: AdjState,
    },
    /// iBGP on `conn` is Established: the peer's routes may enter the RIB.
    Up {
        /// Which connection.
        conn: ConnId,
    },
    /// The established adjacency ended: every route from the peer leaves
    /// the RIB now.
    Down,
}

/// Timers of an adjacency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// The first retry after a failure.
    pub backoff_min: Duration,
    /// The longest wait between attempts.
    pub backoff_max: Duration,
    /// The first attempt waits a random time up to this (so that nodes
    /// started together do not all dial each other at the same instant).
    pub initial_spread: Duration,
    /// The node with the higher identity waits this much longer before its
    /// first dial, leaving the first move to the lower one.
    pub defer: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            initial_spread: Duration::from_millis(500),
            defer: Duration::from_secs(2),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Conn {
    id: ConnId,
    ours: bool,
}

/// The adjacency with one peer.
#[derive(Debug)]
pub struct Adjacency {
    local: Identity,
    peer: Identity,
    timers: Timers,
    state: AdjState,
    addrs: Vec<SocketAddr>,
    next_addr: usize,
    next_conn: ConnId,
    /// Our dial in flight, if any.
    dialing: Option<ConnId>,
    /// The authenticated connection (Authenticated/Established).
    current: Option<Conn>,
    retry_at: Option<Instant>,
    backoff: Duration,
    rng: Seeded,
    outputs: Vec<Output>,
}

impl Adjacency {
    /// A candidate adjacency between `local` and `peer`, reachable at
    /// `addrs` (empty: it can only connect to us). `seed` drives the
    /// random spread of retries.
    pub fn new(
        local: Identity,
        peer: Identity,
        addrs: Vec<SocketAddr>,
        timers: Timers,
        seed: u64,
        now: Instant,
    ) -> Self {
        let mut adj = Adjacency {
            local,
            peer,
            timers,
            state: AdjState::Candidate,
            addrs,
            next_addr: 0,
            next_conn: 1,
            dialing: None,
            current: None,
            retry_at: None,
            backoff: timers.backoff_min,
            rng: Seeded::new(seed),
            outputs: Vec::new(),
        };
        let mut wait = timers.initial_spread.mul_f64(adj.rng.unit());
        if adj.local > adj.peer {
            wait += timers.defer;
        }
        adj.retry_at = Some(now + wait);
        adj
    }

    /// The peer.
    pub fn peer(&self) -> &Identity {
        &self.peer
    }

    /// The state.
    pub fn state(&self) -> AdjState {
        self.state
    }

    /// The authenticated connection, if any.
    pub fn current(&self) -> Option<ConnId> {
        self.current.map(|c| c.id)
    }

    /// Where we dial the peer.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The next thing to do, in order.
    pub fn poll(&mut self) -> Option<Output> {
        if self.outputs.is_empty() {
            None
        } else {
            Some(self.outputs.remove(0))
        }
    }

    /// When [`Adjacency::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Discovery's current addresses for the peer (empty: no longer
    /// discovered; it may still connect to us).
    pub fn set_addresses(&mut self, addrs: Vec<SocketAddr>) {
        if self.addrs != addrs {
            self.addrs = addrs;
            self.next_addr = 0;
        }
    }

    /// Time passed: dial when the wait is over.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.retry_at.is_some_and(|at| at <= now) {
            self.retry_at = None;
            self.try_dial(now);
        }
    }

    fn try_dial(&mut self, now: Instant) {
        if self.current.is_some() || self.dialing.is_some() {
            return;
        }
        if self.addrs.is_empty() {
            // Nothing to dial: wait for the peer, and look again later in
            // case discovery finds it.
            self.retry_at = Some(now + self.timers.backoff_max);
            return;
        }
        let addr = self.addrs[self.next_addr % self.addrs.len()];
        self.next_addr = self.next_addr.wrapping_add(1);
        let conn = self.new_conn();
        self.dialing = Some(conn);
        self.outputs.push(Output::Dial { conn, addr });
        self.set_state(AdjState::Connecting);
    }

    /// Our dial `conn` reached the peer and authenticated it.
    pub fn dial_succeeded(&mut self, conn: ConnId, now: Instant) {
        if self.dialing != Some(conn) {
            // Abandoned meanwhile.
            self.outputs.push(Output::Close {
                conn,
                reason: CloseReason::Duplicate,
            });
            return;
        }
        self.dialing = None;
        self.authenticated(
            Conn {
                id: conn,
                ours: true,
            },
            now,
        );
    }

    /// Our dial `conn` failed (unreachable, refused, authentication
    /// failed): try again after the backoff.
    pub fn dial_failed(&mut self, conn: ConnId, now: Instant) {
        if self.dialing != Some(conn) {
            return;
        }
        self.dialing = None;
        if self.current.is_none() {
            self.go_down(now);
        }
    }

    /// The peer connected to us and authenticated. Returns the number the
    /// connection gets if it is to be used (an [`Output::Run`] follows), or
    /// `None` if it must be closed as a duplicate.
    pub fn inbound(&mut self, now: Instant) -> Option<ConnId> {
        let id = self.new_conn();
        let conn = Conn { id, ours: false };
        self.authenticated(conn, now);
        (self.current == Some(conn)).then_some(id)
    }

    fn authenticated(&mut self, conn: Conn, now: Instant) {
        let keep_new = match self.current {
            None => true,
            // The same side opened another one: it lost the old one.
            Some(old) if old.ours == conn.ours => true,
            // One each: the one opened by the lower identity survives.
            Some(_) => {
                let we_are_lower = self.local < self.peer;
                conn.ours == we_are_lower
            }
        };
        if !keep_new {
            self.outputs.push(Output::Close {
                conn: conn.id,
                reason: CloseReason::Duplicate,
            });
            return;
        }
        if let Some(old) = self.current.take() {
            let reason = if old.ours == conn.ours {
                CloseReason::Superseded
            } else {
                CloseReason::Duplicate
            };
            self.outputs.push(Output::Close {
                conn: old.id,
                reason,
            });
            if self.state == AdjState::Established {
                self.outputs.push(Output::Down);
            }
        }
        self.current = Some(conn);
        self.retry_at = None;
        let _ = now;
        self.outputs.push(Output::Run { conn: conn.id });
        self.set_state(AdjState::Authenticated);
    }

    /// iBGP on `conn` became Established.
    pub fn established(&mut self, conn: ConnId) {
        if self.current.map(|c| c.id) != Some(conn) || self.state != AdjState::Authenticated {
            return;
        }
        self.backoff = self.timers.backoff_min;
        // A dial still in flight is no longer needed.
        if let Some(dial) = self.dialing.take() {
            self.outputs.push(Output::Close {
                conn: dial,
                reason: CloseReason::Duplicate,
            });
        }
        self.set_state(AdjState::Established);
        self.outputs.push(Output::Up { conn });
    }

    /// Connection `conn` ended (iBGP down, transport closed).
    pub fn closed(&mut self, conn: ConnId, now: Instant) {
        if self.current.map(|c| c.id) != Some(conn) {
            return;
        }
        self.current = None;
        if self.state == AdjState::Established {
            self.outputs.push(Output::Down);
        }
        if self.dialing.is_some() {
            self.set_state(AdjState::Connecting);
        } else {
            self.go_down(now);
        }
    }

    /// The peer is no longer trusted, or the adjacency is being removed:
    /// close everything. An untrusted peer is tried again after the
    /// backoff (its certificate may be renewed); a removed one never.
    pub fn close(&mut self, reason: CloseReason, now: Instant) {
        if let Some(dial) = self.dialing.take() {
            self.outputs.push(Output::Close { conn: dial, reason });
        }
        if let Some(old) = self.current.take() {
            self.outputs.push(Output::Close {
                conn: old.id,
                reason,
            });
            if self.state == AdjState::Established {
                self.outputs.push(Output::Down);
            }
        }
        if reason == CloseReason::Removed {
            self.retry_at = None;
            self.set_state(AdjState::Down);
        } else if self.state != AdjState::Down {
            self.go_down(now);
        }
    }

    fn go_down(&mut self, now: Instant) {
        let wait = self.backoff.mul_f64(0.8 + 0.4 * self.rng.unit());
        self.retry_at = Some(now + wait);
        self.backoff = (self.backoff * 2).min(self.timers.backoff_max);
        self.set_state(AdjState::Down);
    }

    fn new_conn(&mut self) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        id
    }

    fn set_state(&mut self, to: AdjState) {
        if self.state != to {
            self.outputs.push(Output::StateChanged {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }
}

#[cfg(test)]
#[path = "adjacency_tests.rs"]
mod tests;
