//! All of a node's BFD sessions behind its UDP ports, sans-IO: received
//! datagrams are checked, demultiplexed to their session (RFC 5880
//! §6.8.6; single-hop RFC 5881, multihop RFC 5883) or dropped and counted
//! by reason; the sessions' packets and state changes come out, with the
//! next deadline. The executor (`bfd::io`) owns the sockets.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    net::{IpAddr, SocketAddr},
    time::Instant,
};

use super::{
    auth::AuthError,
    packet::{self, Malformed, State},
    session::{Session, SessionConfig, SessionStatus, Transition},
};

/// The UDP port of single-hop Control packets (RFC 5881 §4).
pub const SINGLE_HOP_PORT: u16 = 3784;
/// The UDP port of multihop Control packets (RFC 5883 §5).
pub const MULTI_HOP_PORT: u16 = 4784;
/// The TTL (hop limit) single-hop packets are sent with and must arrive
/// with (RFC 5881 §5, the GTSM of RFC 5082).
pub const SINGLE_HOP_TTL: u8 = 255;

/// Single-hop (a directly connected router) or multihop (an overlay peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hop {
    /// RFC 5881: port 3784, TTL 255 checked.
    Single,
    /// RFC 5883: port 4784, authenticated instead.
    Multi,
}

impl Hop {
    /// The port the session's packets are sent to.
    pub fn port(self) -> u16 {
        match self {
            Hop::Single => SINGLE_HOP_PORT,
            Hop::Multi => MULTI_HOP_PORT,
        }
    }
}

/// Who a session is with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// The peer's address.
    pub peer: IpAddr,
    /// Our address the peer sends to (`None`: any of ours).
    pub local: Option<IpAddr>,
    /// Single-hop or multihop.
    pub hop: Hop,
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hop = match self.hop {
            Hop::Single => "single-hop",
            Hop::Multi => "multihop",
        };
        match self.local {
            Some(local) => write!(f, "{hop} {local} -> {}", self.peer),
            None => write!(f, "{hop} to {}", self.peer),
        }
    }
}

/// A session's handle in the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// Why a received datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Shorter than a Control packet or than its length field.
    Truncated,
    /// Not version 1.
    Version,
    /// A length field below the minimum.
    Length,
    /// Detect multiplier 0.
    DetectMult,
    /// The Multipoint bit.
    Multipoint,
    /// My Discriminator 0.
    ZeroDiscriminator,
    /// A malformed authentication section.
    AuthSection,
    /// Your Discriminator names no session of ours.
    UnknownDiscriminator,
    /// Your Discriminator 0, and no session with the sender.
    NoSession,
    /// Your Discriminator 0 while the sender says Init or Up.
    NotDown,
    /// The session's discriminator, from another address than its peer's
    /// or on the other port.
    WrongPeer,
    /// A single-hop packet that arrived with a TTL below 255: it was sent
    /// from further away than the link.
    Ttl,
    /// Not authenticated, and the session is.
    AuthMissing,
    /// Authenticated, and the session is not.
    AuthUnexpected,
    /// Another authentication type or key ID.
    AuthKey,
    /// A digest that does not match: the wrong key, or forged.
    AuthDigest,
    /// A sequence number out of the window: replayed or stale.
    AuthReplay,
}

impl DropReason {
    /// Every reason, in the order status and metrics list them.
    pub const ALL: [DropReason; 17] = [
        DropReason::Truncated,
        DropReason::Version,
        DropReason::Length,
        DropReason::DetectMult,
        DropReason::Multipoint,
        DropReason::ZeroDiscriminator,
        DropReason::AuthSection,
        DropReason::UnknownDiscriminator,
        DropReason::NoSession,
        DropReason::NotDown,
        DropReason::WrongPeer,
        DropReason::Ttl,
        DropReason::AuthMissing,
        DropReason::AuthUnexpected,
        DropReason::AuthKey,
        DropReason::AuthDigest,
        DropReason::AuthReplay,
    ];

    /// The name in status and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::Version => "version",
            DropReason::Length => "length",
            DropReason::DetectMult => "detect_mult_zero",
            DropReason::Multipoint => "multipoint",
            DropReason::ZeroDiscriminator => "my_discriminator_zero",
            DropReason::AuthSection => "auth_section",
            DropReason::UnknownDiscriminator => "unknown_discriminator",
            DropReason::NoSession => "no_session",
            DropReason::NotDown => "your_discriminator_zero_not_down",
            DropReason::WrongPeer => "wrong_peer",
            DropReason::Ttl => "ttl_below_255",
            DropReason::AuthMissing => "auth_missing",
            DropReason::AuthUnexpected => "auth_unexpected",
            DropReason::AuthKey => "auth_key",
            DropReason::AuthDigest => "auth_digest",
            DropReason::AuthReplay => "auth_replay",
        }
    }
}

impl From<Malformed> for DropReason {
    fn from(m: Malformed) -> DropReason {
        match m {
            Malformed::Truncated => DropReason::Truncated,
            Malformed::Version(_) => DropReason::Version,
            Malformed::Length(_) => DropReason::Length,
            Malformed::ZeroDetectMult => DropReason::DetectMult,
            Malformed::Multipoint => DropReason::Multipoint,
            Malformed::ZeroMyDisc => DropReason::ZeroDiscriminator,
            Malformed::AuthLength => DropReason::AuthSection,
        }
    }
}

impl From<AuthError> for DropReason {
    fn from(e: AuthError) -> DropReason {
        match e {
            AuthError::Missing => DropReason::AuthMissing,
            AuthError::Unexpected => DropReason::AuthUnexpected,
            AuthError::WrongKey => DropReason::AuthKey,
            AuthError::Digest => DropReason::AuthDigest,
            AuthError::Replay => DropReason::AuthReplay,
        }
    }
}

/// Dropped datagrams by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drops(BTreeMap<DropReason, u64>);

impl Drops {
    fn add(&mut self, reason: DropReason) {
        *self.0.entry(reason).or_default() += 1;
    }

    /// How many were dropped for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0.get(&reason).copied().unwrap_or(0)
    }

    /// All of them.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// The reasons with drops, and how many.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        self.0.iter().map(|(r, n)| (*r, *n))
    }
}

/// A datagram as it arrived.
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    /// Who sent it.
    pub from: SocketAddr,
    /// Our address it was sent to, if known.
    pub to: Option<IpAddr>,
    /// Its TTL (hop limit) on arrival.
    pub ttl: u8,
    /// The port it arrived on: single-hop or multihop.
    pub hop: Hop,
    /// The UDP payload.
    pub bytes: &'a [u8],
}

struct Entry {
    key: SessionKey,
    session: Session,
    drops: Drops,
}

/// A node's BFD sessions.
#[derive(Default)]
pub struct Endpoint {
    sessions: BTreeMap<SessionId, Entry>,
    by_disc: HashMap<u32, SessionId>,
    next_id: u64,
    drops: Drops,
}

impl Endpoint {
    /// An endpoint without sessions.
    pub fn new() -> Endpoint {
        Endpoint::default()
    }

    /// Adds a session with `key`; its discriminator is the first non-zero
    /// one from `draw` that no other session has. `seed` seeds its jitter.
    pub fn add(
        &mut self,
        key: SessionKey,
        config: SessionConfig,
        mut draw: impl FnMut() -> u32,
        seed: u64,
        now: Instant,
    ) -> SessionId {
        let disc = loop {
            let d = draw();
            if d != 0 && !self.by_disc.contains_key(&d) {
                break d;
            }
        };
        self.next_id += 1;
        let id = SessionId(self.next_id);
        self.by_disc.insert(disc, id);
        self.sessions.insert(
            id,
            Entry {
                key,
                session: Session::new(config, disc, seed, now),
                drops: Drops::default(),
            },
        );
        id
    }

    /// Removes a session; returns it (to send it off administratively
    /// down, if wanted).
    pub fn remove(&mut self, id: SessionId) -> Option<Session> {
        let entry = self.sessions.remove(&id)?;
        self.by_disc.remove(&entry.session.local_disc());
        Some(entry.session)
    }

    /// The session `id`.
    pub fn session_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        self.sessions.get_mut(&id).map(|e| &mut e.session)
    }

    /// Who session `id` is with.
    pub fn key(&self, id: SessionId) -> Option<&SessionKey> {
        self.sessions.get(&id).map(|e| &e.key)
    }

    /// Session `id`'s status and its drops.
    pub fn status(&self, id: SessionId) -> Option<(SessionStatus, Drops)> {
        let e = self.sessions.get(&id)?;
        Some((e.session.status(), e.drops.clone()))
    }

    /// Every drop, whether or not it could be told to a session.
    pub fn drops(&self) -> &Drops {
        &self.drops
    }

    /// Handles one datagram: its session's id, or why it was dropped
    /// (and counted). A dropped datagram changes no session.
    pub fn receive(
        &mut self,
        datagram: &Datagram<'_>,
        now: Instant,
    ) -> Result<SessionId, DropReason> {
        let result = self.deliver(datagram, now);
        if let Err(reason) = result {
            self.drops.add(reason);
        }
        result
    }

    fn deliver(&mut self, d: &Datagram<'_>, now: Instant) -> Result<SessionId, DropReason> {
        let packet = packet::decode(d.bytes)?;
        let id = if packet.your_disc != 0 {
            let id = *self
                .by_disc
                .get(&packet.your_disc)
                .ok_or(DropReason::UnknownDiscriminator)?;
            let key = &self.sessions[&id].key;
            if key.peer != d.from.ip() || key.hop != d.hop {
                return Err(DropReason::WrongPeer);
            }
            id
        } else {
            if !matches!(packet.state, State::Down | State::AdminDown) {
                return Err(DropReason::NotDown);
            }
            self.sessions
                .iter()
                .find(|(_, e)| {
                    e.key.peer == d.from.ip()
                        && e.key.hop == d.hop
                        && e.key.local.is_none_or(|l| d.to.is_none_or(|to| to == l))
                })
                .map(|(id, _)| *id)
                .ok_or(DropReason::NoSession)?
        };
        let entry = self.sessions.get_mut(&id).ok_or(DropReason::NoSession)?;
        let checked = if entry.key.hop == Hop::Single && d.ttl != SINGLE_HOP_TTL {
            Err(DropReason::Ttl)
        } else {
            entry
                .session
                .receive(&packet, d.bytes, now)
                .map_err(DropReason::from)
        };
        if let Err(reason) = checked {
            entry.drops.add(reason);
            return Err(reason);
        }
        Ok(id)
    }

    /// The sessions' timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        for entry in self.sessions.values_mut() {
            entry.session.handle_timeout(now);
        }
    }

    /// The earliest deadline of any session.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(|e| e.session.poll_timeout())
            .min()
    }

    /// The next packet due at `now`, encoded into `out`: which session
    /// sends it (the executor knows the socket).
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<SessionId> {
        self.sessions
            .iter_mut()
            .find_map(|(id, e)| e.session.poll_transmit(now, out).then_some(*id))
    }

    /// Every packet due at `now`, in one pass over the sessions: `send`
    /// gets each with the session sending it.
    pub fn transmit_due(
        &mut self,
        now: Instant,
        out: &mut Vec<u8>,
        mut send: impl FnMut(SessionId, &[u8]),
    ) {
        for (id, e) in &mut self.sessions {
            while e.session.wants_transmit(now) && e.session.poll_transmit(now, out) {
                send(*id, out);
            }
        }
    }

    /// The next state change of any session.
    pub fn poll_transition(&mut self) -> Option<(SessionId, Transition)> {
        self.sessions
            .iter_mut()
            .find_map(|(id, e)| e.session.poll_transition().map(|t| (*id, t)))
    }
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
