//! The overlay's policy, sans I/O: every adjacency, the overlay RIB, what
//! we advertise to whom, the trust material in use and what follows when
//! it changes. Events and time come in ([`OverlayCore::handle_event`],
//! [`OverlayCore::handle_timeout`]); what to do goes out as
//! [`OverlayEffect`]s ([`OverlayCore::poll`]) that the executor
//! (`runtime.rs`) carries out with sockets and tasks; the published view
//! is [`OverlayCore::status`].
//!
//! The policy, in the order of the design ("discovery is not trust"):
//! - candidates from discovery become adjacencies only if they are on the
//!   allow-list and not ourselves; they are dialed from our underlay
//!   address, with the adjacency's backoff and tie-break;
//! - only an authenticated connection runs iBGP; only an Established one
//!   puts routes into the RIB, through the import filter;
//! - our node identity (and private underlay address) go to every session;
//!   our services only once the data plane trusts the peer's address
//!   (`advertise_after_trust`), so that no peer can encapsulate toward us
//!   before we would decapsulate;
//! - a reload of the trust material, and the periodic check of every
//!   authenticated peer against it, close exactly the adjacencies that are
//!   no longer valid (revoked, expired, CA gone, off the allow-list);
//! - a peer's private underlay address is probed, and used, only after its
//!   adjacency is established and only toward peers in `private_to`.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use super::{
    adjacency::{AdjState, Adjacency, CloseReason, ConnId, Output},
    config::OverlayConfig,
    discovery::{self, Candidate},
    identity::Identity,
    import::PRIVATE_UNDERLAY,
    private::PathMonitor,
    rib::OverlayRib,
    status::{AdjacencyStatus, OverlayStatus},
    trust::{Authenticated, Refusal, Trust, TrustConfig, TrustError},
};
use crate::{
    bfd::BfdStatus,
    bgp::{message::Prefix, message::Update, rib_out::OriginAttrs, session::DownReason},
    net::random::Seeded,
};

/// Refusals from one source are logged at most this often.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);
/// Most sources whose last refusal log line is remembered.
const REFUSAL_LOG_SOURCES: usize = 4096;
/// A private path is up after this many successful probes in a row…
const PROBE_RISE: u32 = 2;
/// …and down after this many failed ones.
const PROBE_FALL: u32 = 3;

/// The executor's handle on an authenticated stream it holds for the core.
pub type StreamId = u64;

/// What a session announces: prefixes with their attributes.
pub type Routes = BTreeMap<Prefix, OriginAttrs>;

/// What happened, for the core to decide on.
#[derive(Debug)]
pub enum OverlayEvent {
    /// A peer connected to the control endpoint and proved its identity;
    /// the executor holds the stream as `stream`.
    Inbound {
        /// The stream.
        stream: StreamId,
        /// Who it is.
        auth: Authenticated,
        /// From where.
        remote: SocketAddr,
    },
    /// A connection to the control endpoint was refused.
    Refused {
        /// From where.
        remote: SocketAddr,
        /// Why.
        refusal: Refusal,
    },
    /// A dial ([`OverlayEffect::Dial`]) ended: authenticated, the stream
    /// held as the given id, or refused.
    Dialed {
        /// Toward whom.
        peer: Identity,
        /// Which connection.
        conn: ConnId,
        /// The stream, what the peer proved and where it was, or why not.
        result: Result<(StreamId, Authenticated, SocketAddr), Refusal>,
    },
    /// iBGP on a connection is Established.
    Established {
        /// With whom.
        peer: Identity,
        /// Which connection.
        conn: ConnId,
    },
    /// An UPDATE from a peer.
    Update {
        /// From whom.
        peer: Identity,
        /// Which connection.
        conn: ConnId,
        /// What.
        update: Update,
    },
    /// iBGP on a connection ended.
    Ended {
        /// With whom.
        peer: Identity,
        /// Which connection.
        conn: ConnId,
        /// Why.
        reason: DownReason,
    },
    /// The BFD session of a connection changed (state, timers,
    /// counters): shown in the adjacency's status, decides nothing (a
    /// failure ends the session, reported as [`OverlayEvent::Ended`]).
    Liveness {
        /// With whom.
        peer: Identity,
        /// Which connection.
        conn: ConnId,
        /// The BFD session's status.
        status: Box<BfdStatus>,
    },
    /// BFD on a peer's private path found it down.
    PrivatePathDown {
        /// Which peer.
        peer: Identity,
        /// Its private address.
        addr: IpAddr,
    },
    /// A probe of a peer's private path ended.
    Probed {
        /// Which peer.
        peer: Identity,
        /// Which address.
        addr: IpAddr,
        /// Whether it answered.
        success: bool,
    },
    /// DNS SRV discovery's current candidates.
    Discovered(Vec<Candidate>),
    /// A local service with this VIP is healthy (a VIP inside the service
    /// ranges, checked by the caller).
    Advertise(IpAddr),
    /// A local service with this VIP is not healthy.
    Withdraw(IpAddr),
    /// The data plane now decapsulates from exactly these outer sources.
    Trusted(BTreeSet<IpAddr>),
    /// The trust material was loaded again, from `config` (a reload
    /// request, or its files changed), at wall-clock time `wall`.
    TrustLoaded {
        /// The settings it was loaded with.
        config: TrustConfig,
        /// The material, or why it could not be loaded.
        result: Result<Arc<Trust>, TrustError>,
        /// Now, for certificate validity.
        wall: SystemTime,
    },
    /// The periodic check found the trust files unchanged: check every
    /// peer against the material in use at `wall`.
    TrustUnchanged {
        /// Now, for certificate validity.
        wall: SystemTime,
    },
    /// Withdraw everything and close every adjacency.
    Shutdown,
}

/// What the executor must do.
#[derive(Debug)]
pub enum OverlayEffect {
    /// Connect from `from` to `to`, authenticate the peer there as `peer`
    /// within `timeout`, report [`OverlayEvent::Dialed`].
    Dial {
        /// Whom we mean to reach.
        peer: Identity,
        /// This connection's number.
        conn: ConnId,
        /// Our underlay address.
        from: IpAddr,
        /// Its control endpoint.
        to: SocketAddr,
        /// For TCP and TLS together.
        timeout: Duration,
    },
    /// Give up a dial in flight.
    AbortDial {
        /// Toward whom.
        peer: Identity,
        /// Which connection.
        conn: ConnId,
    },
    /// Drop an authenticated stream that will not be used.
    Discard {
        /// Which.
        stream: StreamId,
    },
    /// Run iBGP on `stream`, announcing `routes`; report
    /// [`OverlayEvent::Established`], [`OverlayEvent::Update`] and
    /// [`OverlayEvent::Ended`].
    Run {
        /// With whom.
        peer: Identity,
        /// Which connection.
        conn: ConnId,
        /// The stream.
        stream: StreamId,
        /// Whether we dialed it.
        ours: bool,
        /// What to announce.
        routes: Routes,
    },
    /// A running session announces `routes` from now on.
    Routes {
        /// With whom.
        peer: Identity,
        /// Which connection.
        conn: ConnId,
        /// What to announce.
        routes: Routes,
    },
    /// Withdraw everything on a running session and Cease with `reason`.
    Close {
        /// With whom.
        peer: Identity,
        /// Which connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
    /// Probe `addr` (a peer's private underlay address) from `from`,
    /// replacing any probe of that peer; report [`OverlayEvent::Probed`].
    Probe {
        /// Whose.
        peer: Identity,
        /// Our private address of that family, if we have one.
        from: Option<IpAddr>,
        /// Its private address.
        addr: IpAddr,
    },
    /// Stop probing this peer's private path.
    StopProbe {
        /// Whose.
        peer: Identity,
    },
    /// Authenticate with this material from now on.
    UseTrust(Arc<Trust>),
    /// Check whether the trust files of `config` changed from the material
    /// in use: report [`OverlayEvent::TrustLoaded`] if they did (after
    /// loading them), [`OverlayEvent::TrustUnchanged`] otherwise.
    CheckTrust {
        /// The settings in use.
        config: TrustConfig,
    },
}

/// Where one connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Our dial is in flight.
    Dialing,
    /// Authenticated; the executor holds the stream.
    Ready(StreamId),
    /// iBGP runs on it.
    Running,
}

#[derive(Debug)]
struct Conn {
    ours: bool,
    phase: Phase,
    auth: Option<Authenticated>,
    remote: Option<SocketAddr>,
    /// Our service routes are announced on this connection.
    services_sent: bool,
}

#[derive(Debug)]
struct Peer {
    adj: Adjacency,
    conns: BTreeMap<ConnId, Conn>,
    transport: Option<IpAddr>,
    established_since: Option<Instant>,
    established_count: u64,
    last_failure: Option<String>,
    probe: Option<(IpAddr, PathMonitor)>,
    /// The current connection's BFD session, as last reported (kept
    /// after it ends, for its last diagnostic).
    bfd: Option<BfdStatus>,
}

/// The overlay's policy.
pub struct OverlayCore {
    config: OverlayConfig,
    trust: Arc<Trust>,
    local: Identity,
    peers: BTreeMap<Identity, Peer>,
    rib: OverlayRib,
    advertised: BTreeSet<Prefix>,
    /// Outer sources the data plane trusts ([`OverlayEvent::Trusted`]).
    confirmed: BTreeSet<IpAddr>,
    static_candidates: Vec<Candidate>,
    srv_candidates: Vec<Candidate>,
    refused: BTreeMap<&'static str, u64>,
    refusal_logged: HashMap<(IpAddr, &'static str), Instant>,
    reloads: u64,
    reload_error: Option<String>,
    next_trust_check: Instant,
    rng: Seeded,
    effects: VecDeque<OverlayEffect>,
}

impl OverlayCore {
    /// The core of a node with `config` (validated) and `trust` (loaded
    /// from `config.trust`); `seed` drives the adjacencies' jitter.
    pub fn new(config: OverlayConfig, trust: Arc<Trust>, seed: u64, now: Instant) -> Self {
        let mut advertised: BTreeSet<Prefix> =
            config.node_addrs.iter().map(|a| Prefix::host(*a)).collect();
        if let Some(private) = config.private_addr {
            advertised.insert(Prefix::host(private));
        }
        let mut core = OverlayCore {
            local: trust.identity().clone(),
            rib: OverlayRib::new(config.import.clone()),
            static_candidates: config.static_peers.clone(),
            next_trust_check: now + config.trust_check,
            config,
            trust,
            peers: BTreeMap::new(),
            advertised,
            confirmed: BTreeSet::new(),
            srv_candidates: Vec::new(),
            refused: BTreeMap::new(),
            refusal_logged: HashMap::new(),
            reloads: 0,
            reload_error: None,
            rng: Seeded::new(seed),
            effects: VecDeque::new(),
        };
        core.sync_candidates(now);
        core
    }

    /// Our identity.
    pub fn identity(&self) -> &Identity {
        &self.local
    }

    /// The trust settings in use (a reload without new settings loads
    /// these again).
    pub fn trust_config(&self) -> &TrustConfig {
        &self.config.trust
    }

    /// The next thing to do.
    pub fn poll(&mut self) -> Option<OverlayEffect> {
        self.effects.pop_front()
    }

    /// When [`OverlayCore::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|p| p.adj.poll_timeout())
            .chain([self.next_trust_check])
            .min()
    }

    /// Time passed: adjacencies retry, the trust check comes round.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<Identity> = self
            .peers
            .iter()
            .filter(|(_, p)| p.adj.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            if let Some(peer) = self.peers.get_mut(&id) {
                peer.adj.handle_timeout(now);
            }
            self.apply(&id, now);
        }
        if self.next_trust_check <= now {
            self.next_trust_check = now + self.config.trust_check;
            self.effects.push_back(OverlayEffect::CheckTrust {
                config: self.config.trust.clone(),
            });
        }
    }

    /// Something happened.
    pub fn handle_event(&mut self, event: OverlayEvent, now: Instant) {
        match event {
            OverlayEvent::Inbound {
                stream,
                auth,
                remote,
            } => self.inbound(stream, auth, remote, now),
            OverlayEvent::Refused { remote, refusal } => {
                self.refused(remote.ip(), None, &refusal, now)
            }
            OverlayEvent::Dialed { peer, conn, result } => self.dialed(&peer, conn, result, now),
            OverlayEvent::Established { peer: id, conn } => {
                let Some(peer) = self.peers.get_mut(&id) else {
                    return;
                };
                if peer.adj.current() == Some(conn) {
                    peer.adj.established(conn);
                    self.apply(&id, now);
                }
            }
            OverlayEvent::Update { peer, conn, update } => self.update(&peer, conn, &update),
            OverlayEvent::Ended {
                peer: id,
                conn,
                reason,
            } => {
                let Some(peer) = self.peers.get_mut(&id) else {
                    return;
                };
                if peer.conns.remove(&conn).is_some() && peer.adj.current() == Some(conn) {
                    tracing::info!(peer = %id, ?reason, "overlay session with {id} ended");
                }
                peer.adj.closed(conn, now);
                self.apply(&id, now);
            }
            OverlayEvent::Liveness { peer, conn, status } => {
                if let Some(peer) = self.peers.get_mut(&peer) {
                    if peer.adj.current() == Some(conn) {
                        peer.bfd = Some(*status);
                    }
                }
            }
            OverlayEvent::PrivatePathDown { peer: id, addr } => {
                let Some((probed, monitor)) =
                    self.peers.get_mut(&id).and_then(|p| p.probe.as_mut())
                else {
                    return;
                };
                if *probed == addr && monitor.lost() == Some(false) {
                    tracing::info!(peer = %id, private = %addr, "overlay: private path to {id} is down (BFD)");
                    self.rib.set_private_path(&id, false);
                }
            }
            OverlayEvent::Probed {
                peer: id,
                addr,
                success,
            } => {
                let Some((probed, monitor)) =
                    self.peers.get_mut(&id).and_then(|p| p.probe.as_mut())
                else {
                    return;
                };
                if *probed != addr {
                    return;
                }
                if let Some(up) = monitor.record(success) {
                    tracing::info!(peer = %id, private = %addr, up, "overlay: private path to {id} is {}", if up { "up" } else { "down" });
                    self.rib.set_private_path(&id, up);
                }
            }
            OverlayEvent::Discovered(found) => {
                self.srv_candidates = found;
                self.sync_candidates(now);
            }
            OverlayEvent::Advertise(vip) => self.originate(Prefix::host(vip), true),
            OverlayEvent::Withdraw(vip) => self.originate(Prefix::host(vip), false),
            OverlayEvent::Trusted(sources) => {
                self.confirmed = sources;
                self.release_services();
            }
            OverlayEvent::TrustLoaded {
                config,
                result,
                wall,
            } => self.trust_loaded(config, result, wall, now),
            OverlayEvent::TrustUnchanged { wall } => self.revalidate(wall, now),
            OverlayEvent::Shutdown => {
                let ids: Vec<Identity> = self.peers.keys().cloned().collect();
                for id in &ids {
                    if let Some(peer) = self.peers.get_mut(id) {
                        peer.adj.close(CloseReason::Removed, now);
                    }
                    self.apply(id, now);
                }
            }
        }
    }

    /// What the overlay shows of itself.
    pub fn status(&self) -> OverlayStatus {
        OverlayStatus {
            identity: Some(self.local.clone()),
            adjacencies: self
                .peers
                .iter()
                .map(|(id, peer)| {
                    let view = self.rib.peer(id);
                    (
                        id.clone(),
                        AdjacencyStatus {
                            state: peer.adj.state(),
                            addrs: peer.adj.addrs().to_vec(),
                            transport: peer.transport,
                            established_since: peer.established_since,
                            established_count: peer.established_count,
                            routes: view.as_ref().map_or(0, |v| v.routes.len()),
                            rejected: view
                                .as_ref()
                                .map(|v| v.rejected.clone())
                                .unwrap_or_default(),
                            private_in_use: view.and_then(|v| v.private_in_use),
                            last_failure: peer.last_failure.clone(),
                            bfd: peer.bfd.clone(),
                        },
                    )
                })
                .collect(),
            services: self.rib.services(),
            identities: self.rib.identities(),
            trusted_sources: self.rib.trusted_sources(),
            advertised: self.advertised.clone(),
            routes: self.rib.route_count(),
            refused: self.refused.clone(),
            reloads: self.reloads,
            reload_error: self.reload_error.clone(),
            candidates: self.candidate_addrs(),
            admission: Default::default(),
        }
    }

    /// The addresses that count as candidates: where discovery and the
    /// config say allowed peers are, and where current adjacencies'
    /// connections come from (a peer that connected to us keeps its
    /// BFD and its redials working from there). Only ever more than a
    /// stranger: authentication still decides.
    fn candidate_addrs(&self) -> BTreeSet<IpAddr> {
        let mut addrs: BTreeSet<IpAddr> = BTreeSet::new();
        for peer in self.peers.values() {
            addrs.extend(peer.adj.addrs().iter().map(SocketAddr::ip));
            addrs.extend(peer.transport);
        }
        addrs
    }

    /// Creates adjacencies for new candidates and updates addresses.
    /// Candidates claiming our own identity, or one not on the
    /// allow-list, are not dialed (the latter could never authenticate).
    /// Peers taken off the allow-list go at once, adjacency and routes.
    fn sync_candidates(&mut self, now: Instant) {
        let merged = discovery::merge(
            self.static_candidates
                .iter()
                .chain(&self.srv_candidates)
                .cloned(),
        );
        for (identity, addrs) in &merged {
            if *identity == self.local || !self.config.trust.allow.contains(identity) {
                continue;
            }
            let addrs: Vec<SocketAddr> = addrs.iter().copied().collect();
            match self.peers.get_mut(identity) {
                Some(peer) => peer.adj.set_addresses(addrs),
                None => self.add_peer(identity.clone(), addrs, now),
            }
        }
        for (identity, peer) in &mut self.peers {
            if !merged.contains_key(identity) {
                peer.adj.set_addresses(Vec::new());
            }
        }
        let removed: Vec<Identity> = self
            .peers
            .keys()
            .filter(|id| !self.config.trust.allow.contains(*id))
            .cloned()
            .collect();
        for id in removed {
            if let Some(peer) = self.peers.get_mut(&id) {
                peer.adj.close(CloseReason::Removed, now);
            }
            self.apply(&id, now);
            if let Some(peer) = self.peers.remove(&id) {
                if peer.probe.is_some() {
                    self.effects
                        .push_back(OverlayEffect::StopProbe { peer: id.clone() });
                }
                for (conn, state) in peer.conns {
                    self.close_conn(&id, conn, state, CloseReason::Removed);
                }
            }
            tracing::warn!(peer = %id, "overlay: removed peer {id}: it is no longer on the allow-list");
        }
    }

    fn add_peer(&mut self, identity: Identity, addrs: Vec<SocketAddr>, now: Instant) {
        let adj = Adjacency::new(
            self.local.clone(),
            identity.clone(),
            addrs,
            self.config.timers,
            self.rng.next_u64(),
            now,
        );
        self.peers.insert(
            identity,
            Peer {
                adj,
                conns: BTreeMap::new(),
                transport: None,
                established_since: None,
                established_count: 0,
                last_failure: None,
                bfd: None,
                probe: None,
            },
        );
    }

    fn inbound(&mut self, stream: StreamId, auth: Authenticated, remote: SocketAddr, now: Instant) {
        let identity = auth.identity.clone();
        if identity == self.local {
            self.effects.push_back(OverlayEffect::Discard { stream });
            self.refused(
                remote.ip(),
                Some(&identity),
                &Refusal::NotAllowed(identity.clone()),
                now,
            );
            return;
        }
        if !self.peers.contains_key(&identity) {
            // Allowed and authenticated, but not discovered: it connects
            // to us, we never dial it.
            self.add_peer(identity.clone(), Vec::new(), now);
        }
        let Some(peer) = self.peers.get_mut(&identity) else {
            return;
        };
        match peer.adj.inbound(now) {
            Some(conn) => {
                peer.conns.insert(
                    conn,
                    Conn {
                        ours: false,
                        phase: Phase::Ready(stream),
                        auth: Some(auth),
                        remote: Some(remote),
                        services_sent: false,
                    },
                );
            }
            None => self.effects.push_back(OverlayEffect::Discard { stream }),
        }
        self.apply(&identity, now);
    }

    fn dialed(
        &mut self,
        id: &Identity,
        conn: ConnId,
        result: Result<(StreamId, Authenticated, SocketAddr), Refusal>,
        now: Instant,
    ) {
        let Some(peer) = self.peers.get_mut(id) else {
            if let Ok((stream, _, _)) = result {
                self.effects.push_back(OverlayEffect::Discard { stream });
            }
            return;
        };
        match result {
            Ok((stream, auth, remote)) => {
                match peer.conns.get_mut(&conn) {
                    Some(state) if state.phase == Phase::Dialing => {
                        state.auth = Some(auth);
                        state.remote = Some(remote);
                        state.phase = Phase::Ready(stream);
                    }
                    // Abandoned meanwhile.
                    _ => self.effects.push_back(OverlayEffect::Discard { stream }),
                }
                peer.last_failure = None;
                peer.adj.dial_succeeded(conn, now);
            }
            Err(refusal) => {
                let dialed = peer.conns.remove(&conn).and_then(|c| c.remote);
                peer.last_failure = Some(refusal.to_string());
                peer.adj.dial_failed(conn, now);
                // Unreachable or silent peers are only shown in
                // `last_failure`: nothing was refused.
                if let Some(addr) = dialed.filter(|_| !refusal.is_transport()) {
                    self.refused(addr.ip(), Some(id), &refusal, now);
                }
            }
        }
        self.apply(id, now);
    }

    fn update(&mut self, id: &Identity, conn: ConnId, update: &Update) {
        if self.peers.get(id).and_then(|p| p.adj.current()) != Some(conn) {
            return;
        }
        let imported = self.rib.update(id, update);
        for (prefix, reason, first) in &imported.rejected {
            if *first {
                tracing::warn!(
                    peer = %id,
                    %prefix,
                    "overlay route rejected: {reason} (counted; further rejections for this reason from this peer are counted, not logged)"
                );
            }
        }
        self.update_probe(id);
    }

    /// Carries out what peer `id`'s adjacency decided.
    fn apply(&mut self, id: &Identity, now: Instant) {
        while let Some(output) = self.peers.get_mut(id).and_then(|p| p.adj.poll()) {
            match output {
                Output::Dial { conn, addr } => {
                    let Some(peer) = self.peers.get_mut(id) else {
                        return;
                    };
                    peer.conns.insert(
                        conn,
                        Conn {
                            ours: true,
                            phase: Phase::Dialing,
                            auth: None,
                            remote: Some(addr),
                            services_sent: false,
                        },
                    );
                    self.effects.push_back(OverlayEffect::Dial {
                        peer: id.clone(),
                        conn,
                        from: self.config.listen.ip(),
                        to: addr,
                        timeout: self.config.trust.handshake_timeout,
                    });
                }
                Output::Run { conn } => self.run(id, conn),
                Output::Close { conn, reason } => {
                    if let Some(state) = self.peers.get_mut(id).and_then(|p| p.conns.remove(&conn))
                    {
                        self.close_conn(id, conn, state, reason);
                    }
                }
                Output::StateChanged { from, to } => {
                    // Retries of a peer that is not there are not news: the
                    // failure itself is logged (rate-limited) where it is seen.
                    let quiet = |s: AdjState| {
                        matches!(
                            s,
                            AdjState::Candidate | AdjState::Connecting | AdjState::Down
                        )
                    };
                    if quiet(from) && quiet(to) {
                        tracing::debug!(peer = %id, "overlay adjacency {} → {}", from.name(), to.name());
                    } else {
                        tracing::info!(peer = %id, "overlay adjacency {} → {}", from.name(), to.name());
                    }
                }
                Output::Up { conn } => {
                    let Some(peer) = self.peers.get_mut(id) else {
                        return;
                    };
                    let Some(transport) = peer.conns.get(&conn).and_then(|c| c.remote) else {
                        continue;
                    };
                    peer.transport = Some(transport.ip());
                    peer.established_since = Some(now);
                    peer.established_count += 1;
                    let private = self.config.private_to.contains(id);
                    self.rib.peer_up(id, transport.ip(), private);
                }
                Output::Down => {
                    let Some(peer) = self.peers.get_mut(id) else {
                        return;
                    };
                    peer.transport = None;
                    peer.established_since = None;
                    if peer.probe.take().is_some() {
                        self.effects
                            .push_back(OverlayEffect::StopProbe { peer: id.clone() });
                    }
                    self.rib.peer_down(id);
                }
            }
        }
    }

    /// Starts iBGP on an authenticated connection, announcing what it may
    /// hear now.
    fn run(&mut self, id: &Identity, conn: ConnId) {
        let trusted_needed = self.config.advertise_after_trust;
        let Some(state) = self.peers.get_mut(id).and_then(|p| p.conns.get_mut(&conn)) else {
            return;
        };
        let Phase::Ready(stream) = state.phase else {
            return;
        };
        let trusted = state
            .remote
            .is_some_and(|r| self.confirmed.contains(&r.ip()));
        state.services_sent = !trusted_needed || trusted;
        state.phase = Phase::Running;
        let (ours, services_sent) = (state.ours, state.services_sent);
        let routes = self.routes(services_sent);
        self.effects.push_back(OverlayEffect::Run {
            peer: id.clone(),
            conn,
            stream,
            ours,
            routes,
        });
    }

    /// Undoes connection `conn` in whatever phase it is.
    fn close_conn(&mut self, id: &Identity, conn: ConnId, state: Conn, reason: CloseReason) {
        let effect = match state.phase {
            Phase::Dialing => OverlayEffect::AbortDial {
                peer: id.clone(),
                conn,
            },
            Phase::Ready(stream) => OverlayEffect::Discard { stream },
            Phase::Running => OverlayEffect::Close {
                peer: id.clone(),
                conn,
                reason,
            },
        };
        self.effects.push_back(effect);
    }

    /// Starts or stops probing peer `id`'s private path as its routes say.
    fn update_probe(&mut self, id: &Identity) {
        let candidate = self.rib.private_candidate(id);
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        if peer.probe.as_ref().map(|(a, _)| *a) == candidate {
            return;
        }
        if peer.probe.take().is_some() {
            self.effects
                .push_back(OverlayEffect::StopProbe { peer: id.clone() });
        }
        if let Some(addr) = candidate {
            peer.probe = Some((addr, PathMonitor::new(PROBE_RISE, PROBE_FALL)));
            let from = self
                .config
                .private_addr
                .filter(|p| p.is_ipv4() == addr.is_ipv4());
            self.effects.push_back(OverlayEffect::Probe {
                peer: id.clone(),
                from,
                addr,
            });
        }
    }

    /// Counts a refusal, and logs it unless this source was logged for the
    /// same reason within [`REFUSAL_LOG_EVERY`].
    fn refused(
        &mut self,
        source: IpAddr,
        peer: Option<&Identity>,
        refusal: &Refusal,
        now: Instant,
    ) {
        let kind = refusal.kind();
        *self.refused.entry(kind).or_insert(0) += 1;
        let key = (source, kind);
        let due = self
            .refusal_logged
            .get(&key)
            .is_none_or(|at| now.duration_since(*at) >= REFUSAL_LOG_EVERY);
        if !due {
            return;
        }
        if self.refusal_logged.len() >= REFUSAL_LOG_SOURCES {
            self.refusal_logged
                .retain(|_, at| now.duration_since(*at) < REFUSAL_LOG_EVERY);
            if self.refusal_logged.len() >= REFUSAL_LOG_SOURCES {
                self.refusal_logged.clear();
            }
        }
        self.refusal_logged.insert(key, now);
        match (refusal, peer) {
            // Not our decision: the other side would not have us.
            (Refusal::PeerRefused(_), _) => {
                tracing::warn!(%source, "overlay: {source} did not accept us: {refusal}")
            }
            (_, Some(peer)) => {
                tracing::warn!(%source, %peer, "overlay: refused peer {peer} at {source}: {refusal}")
            }
            (_, None) => {
                tracing::warn!(%source, "overlay: refused connection from {source}: {refusal}")
            }
        }
    }

    /// What a session announces: identities and the private address
    /// always, services once it may hear of them.
    fn routes(&self, services: bool) -> Routes {
        self.advertised
            .iter()
            .filter(|p| services || !self.is_service(p))
            .map(|p| (*p, self.attrs(p)))
            .collect()
    }

    fn originate(&mut self, prefix: Prefix, on: bool) {
        let changed = if on {
            self.advertised.insert(prefix)
        } else {
            self.advertised.remove(&prefix)
        };
        if !changed {
            return;
        }
        let service = self.is_service(&prefix);
        let mut effects = Vec::new();
        for (id, peer) in &self.peers {
            for (conn, state) in &peer.conns {
                if state.phase != Phase::Running || (service && !state.services_sent) {
                    continue;
                }
                effects.push(OverlayEffect::Routes {
                    peer: id.clone(),
                    conn: *conn,
                    routes: self.routes(state.services_sent),
                });
            }
        }
        self.effects.extend(effects);
    }

    /// Announces our services on every session whose peer the data plane
    /// now trusts and that has not had them yet.
    fn release_services(&mut self) {
        let mut released = Vec::new();
        for (id, peer) in &mut self.peers {
            for (conn, state) in &mut peer.conns {
                let trusted = state
                    .remote
                    .is_some_and(|r| self.confirmed.contains(&r.ip()));
                if state.phase == Phase::Running && !state.services_sent && trusted {
                    state.services_sent = true;
                    released.push((id.clone(), *conn));
                }
            }
        }
        for (peer, conn) in released {
            let routes = self.routes(true);
            self.effects
                .push_back(OverlayEffect::Routes { peer, conn, routes });
        }
    }

    fn trust_loaded(
        &mut self,
        config: TrustConfig,
        result: Result<Arc<Trust>, TrustError>,
        wall: SystemTime,
        now: Instant,
    ) {
        match result {
            Ok(new) if new.identity() != &self.local => {
                // Our identity cannot change under running adjacencies.
                let error = format!(
                    "the new certificate is for {}, not {}: restart the agent to change identity",
                    new.identity(),
                    self.local
                );
                tracing::error!("overlay trust reload refused: {error}");
                self.reload_error = Some(error);
            }
            Ok(new) => {
                self.trust = new.clone();
                self.config.trust = config;
                self.reloads += 1;
                self.reload_error = None;
                self.effects.push_back(OverlayEffect::UseTrust(new));
                tracing::info!("overlay trust material reloaded");
                self.sync_candidates(now);
                self.revalidate(wall, now);
            }
            Err(error) => {
                tracing::error!("overlay trust reload failed, keeping the old material: {error}");
                self.reload_error = Some(error.to_string());
            }
        }
    }

    /// Closes every adjacency whose peer's certificate no longer passes at
    /// `wall` (expired, revoked, CA gone, off the allow-list).
    fn revalidate(&mut self, wall: SystemTime, now: Instant) {
        let mut untrusted = Vec::new();
        for (id, peer) in &self.peers {
            let Some(conn) = peer.adj.current() else {
                continue;
            };
            let Some(auth) = peer.conns.get(&conn).and_then(|c| c.auth.as_ref()) else {
                continue;
            };
            if let Err(refusal) = self.trust.revalidate(auth, wall) {
                let source = peer.conns.get(&conn).and_then(|c| c.remote).map(|r| r.ip());
                untrusted.push((id.clone(), refusal, source));
            }
        }
        for (id, refusal, source) in untrusted {
            if let Some(source) = source {
                self.refused(source, Some(&id), &refusal, now);
            }
            if let Some(peer) = self.peers.get_mut(&id) {
                peer.adj.close(CloseReason::Untrusted, now);
            }
            self.apply(&id, now);
        }
    }

    /// Whether `prefix` is one of our service VIPs (not an identity or the
    /// private address).
    fn is_service(&self, prefix: &Prefix) -> bool {
        self.config
            .import
            .service_ranges
            .iter()
            .any(|r| r.covers(prefix))
    }

    /// The attributes we originate `prefix` with: our private underlay
    /// address carries the marker community.
    fn attrs(&self, prefix: &Prefix) -> OriginAttrs {
        let mut attrs = OriginAttrs::default();
        if Some(prefix.addr()) == self.config.private_addr {
            attrs.large_communities = vec![(self.config.asn, PRIVATE_UNDERLAY, 0)];
        }
        attrs
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
