//! The overlay runtime: one task that owns every adjacency, the overlay
//! RIB and the trust material, fed by the I/O tasks of [`connection`]
//! and by the agent's commands. It carries out what the adjacency state
//! machines decide, imports routes through the RIB, publishes an
//! [`OverlayStatus`] and a stream of [`RibEvent`]s, reloads the trust
//! material when its files change and re-checks every peer against it.
//!
//! [`connection`]: super::connection

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    net::TcpListener,
    sync::{broadcast, mpsc, oneshot, watch},
    task::{AbortHandle, JoinSet},
};

use super::{
    adjacency::{AdjState, Adjacency, CloseReason, ConnId, Output},
    config::{ConfigError, OverlayConfig},
    connection::{self, Event, Stream},
    discovery::{self, Candidate},
    identity::Identity,
    private::PathMonitor,
    rib::{OverlayRib, RibEvent},
    status::{AdjacencyStatus, OverlayStatus},
    trust::{Authenticated, Refusal, Trust, TrustConfig, TrustError},
};
use crate::bgp::{
    io::{Command, Feed},
    message::{Family, Prefix},
    rib_out::{OriginAttrs, Origination},
    session::SessionConfig,
};

/// Probe interval of private paths; 2 successes raise, 3 failures drop.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// How long a closed connection may take to send its Cease.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Refusals from one source are logged at most this often.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// Why the overlay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The trust material could not be loaded.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The control endpoint could not listen.
    #[error(
        "overlay: cannot listen on {addr}: {source} (is it the node's underlay address, and is the port free?)"
    )]
    Listen {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A service VIP we cannot advertise.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("overlay: {0} is outside the configured service ranges; only service VIPs are advertised")]
pub struct NotAService(pub IpAddr);

enum Request {
    Advertise(IpAddr),
    Withdraw(IpAddr),
    Reload(Option<TrustConfig>),
    Trusted(BTreeSet<IpAddr>),
    Shutdown(oneshot::Sender<()>),
}

/// A running overlay.
pub struct Overlay {
    requests: mpsc::Sender<Request>,
    status: watch::Receiver<OverlayStatus>,
    events: broadcast::Sender<RibEvent>,
    service_ranges: Vec<Prefix>,
}

impl Overlay {
    /// Validates `config`, loads the trust material, binds the control
    /// endpoint and starts. Nothing is dialed before this returns.
    pub async fn start(config: OverlayConfig) -> Result<Overlay, StartError> {
        config.validate()?;
        let trust = Arc::new(Trust::load(&config.trust)?);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let private_listener = match config.private_addr {
            Some(addr) => {
                let at = SocketAddr::new(addr, config.listen.port());
                Some(
                    TcpListener::bind(at)
                        .await
                        .map_err(|source| StartError::Listen { addr: at, source })?,
                )
            }
            None => None,
        };
        let (requests, requests_rx) = mpsc::channel(64);
        let (status_tx, status) = watch::channel(OverlayStatus::default());
        let (events, _) = broadcast::channel(4096);
        let service_ranges = config.import.service_ranges.clone();
        let core = Core::new(config, trust, status_tx, events.clone());
        tokio::spawn(core.run(listener, private_listener, requests_rx));
        Ok(Overlay {
            requests,
            status,
            events,
            service_ranges,
        })
    }

    /// The latest status.
    pub fn status(&self) -> watch::Receiver<OverlayStatus> {
        self.status.clone()
    }

    /// Every RIB change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RibEvent> {
        self.events.subscribe()
    }

    /// A local service with this VIP is healthy: advertise it to every peer.
    pub async fn advertise(&self, vip: IpAddr) -> Result<(), NotAService> {
        if !self.service_ranges.iter().any(|r| r.contains(vip)) {
            return Err(NotAService(vip));
        }
        let _ = self.requests.send(Request::Advertise(vip)).await;
        Ok(())
    }

    /// The local service with this VIP is not healthy: withdraw it.
    pub async fn withdraw(&self, vip: IpAddr) {
        let _ = self.requests.send(Request::Withdraw(vip)).await;
    }

    /// Reload the trust material now (SIGHUP), optionally with new
    /// settings (a new allow-list). Peers that are no longer valid are
    /// disconnected; the others stay up.
    pub async fn reload(&self, trust: Option<TrustConfig>) {
        let _ = self.requests.send(Request::Reload(trust)).await;
    }

    /// The data plane now trusts (decapsulates from) these outer sources.
    /// With [`OverlayConfig::advertise_after_trust`], a peer is told about
    /// our services only once its session address is among them, so it
    /// can never send us traffic we would drop.
    pub async fn confirm_trusted(&self, sources: BTreeSet<IpAddr>) {
        let _ = self.requests.send(Request::Trusted(sources)).await;
    }

    /// Withdraws everything, closes every adjacency with a Cease, and stops.
    pub async fn shutdown(self) {
        let (done, wait) = oneshot::channel();
        if self.requests.send(Request::Shutdown(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

struct ConnState {
    ours: bool,
    commands: Option<mpsc::Sender<Command>>,
    task: Option<AbortHandle>,
    auth: Option<Authenticated>,
    remote: Option<SocketAddr>,
    pending: Option<Box<Stream>>,
    /// Our service routes were sent on this connection.
    services_sent: bool,
}

struct Peer {
    adj: Adjacency,
    conns: HashMap<ConnId, ConnState>,
    transport: Option<IpAddr>,
    established_since: Option<Instant>,
    established_count: u64,
    last_failure: Option<String>,
    probe: Option<(IpAddr, AbortHandle, PathMonitor)>,
}

struct Core {
    config: OverlayConfig,
    trust: Arc<Trust>,
    trust_tx: watch::Sender<Arc<Trust>>,
    local: Identity,
    peers: BTreeMap<Identity, Peer>,
    rib: OverlayRib,
    advertised: BTreeSet<Prefix>,
    /// Outer sources the data plane trusts (see `Overlay::confirm_trusted`).
    confirmed: BTreeSet<IpAddr>,
    static_candidates: Vec<Candidate>,
    srv_candidates: Vec<Candidate>,
    status_tx: watch::Sender<OverlayStatus>,
    rib_events: broadcast::Sender<RibEvent>,
    refused: BTreeMap<&'static str, u64>,
    refusal_logged: HashMap<(IpAddr, &'static str), Instant>,
    reloads: u64,
    reload_error: Option<String>,
    events_tx: mpsc::Sender<Event>,
    events_rx: mpsc::Receiver<Event>,
    seed: u64,
    tasks: JoinSet<()>,
}

impl Core {
    fn new(
        config: OverlayConfig,
        trust: Arc<Trust>,
        status_tx: watch::Sender<OverlayStatus>,
        rib_events: broadcast::Sender<RibEvent>,
    ) -> Self {
        let (events_tx, events_rx) = mpsc::channel(1024);
        let (trust_tx, _) = watch::channel(trust.clone());
        let mut advertised = BTreeSet::new();
        advertised.extend(config.node_addrs.iter().map(|a| Prefix::host(*a)));
        if let Some(private) = config.private_addr {
            advertised.insert(Prefix::host(private));
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Core {
            local: trust.identity().clone(),
            rib: OverlayRib::new(config.import.clone()),
            static_candidates: config.static_peers.clone(),
            config,
            trust,
            trust_tx,
            peers: BTreeMap::new(),
            advertised,
            srv_candidates: Vec::new(),
            status_tx,
            rib_events,
            refused: BTreeMap::new(),
            refusal_logged: HashMap::new(),
            confirmed: BTreeSet::new(),
            reloads: 0,
            reload_error: None,
            events_tx,
            events_rx,
            seed,
            tasks: JoinSet::new(),
        }
    }

    async fn run(
        mut self,
        listener: TcpListener,
        private_listener: Option<TcpListener>,
        mut requests: mpsc::Receiver<Request>,
    ) {
        tracing::info!(identity = %self.local, listen = %self.config.listen, "overlay control endpoint up");
        self.tasks.spawn(connection::listen(
            listener,
            self.trust_tx.subscribe(),
            self.config.max_handshakes,
            self.events_tx.clone(),
        ));
        if let Some(listener) = private_listener {
            self.tasks.spawn(connection::private_liveness(listener));
        }
        let (srv_tx, mut srv_rx) = mpsc::channel(4);
        if !self.config.srv.is_empty() {
            self.tasks.spawn(discover(
                self.config.srv.clone(),
                self.config.srv_refresh,
                srv_tx,
            ));
        }
        self.sync_candidates(Instant::now());
        let mut trust_check = tokio::time::interval(self.config.trust_check);
        trust_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.publish();
            let deadline = self
                .peers
                .values()
                .filter_map(|p| p.adj.poll_timeout())
                .min()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                Some(event) = self.events_rx.recv() => self.event(event),
                request = requests.recv() => match request {
                    Some(Request::Advertise(vip)) => self.originate(Prefix::host(vip), true),
                    Some(Request::Withdraw(vip)) => self.originate(Prefix::host(vip), false),
                    Some(Request::Reload(trust)) => self.reload(trust),
                    Some(Request::Trusted(sources)) => {
                        self.confirmed = sources;
                        self.release_services();
                    }
                    Some(Request::Shutdown(done)) => {
                        self.shutdown().await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                Some(found) = srv_rx.recv() => {
                    self.srv_candidates = found;
                    self.sync_candidates(Instant::now());
                }
                _ = trust_check.tick() => self.check_trust(),
                () = sleep_until(deadline) => {
                    let now = Instant::now();
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
                        self.apply(&id);
                    }
                }
            }
        }
    }

    /// Creates adjacencies for new candidates and updates addresses.
    /// Candidates claiming our own identity, or one not on the
    /// allow-list, are not dialed (the latter could never authenticate).
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
                None => {
                    self.add_peer(identity.clone(), addrs, now);
                }
            }
        }
        for (identity, peer) in &mut self.peers {
            if !merged.contains_key(identity) {
                peer.adj.set_addresses(Vec::new());
            }
        }
        // Peers taken off the allow-list go at once, adjacency and routes.
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
            self.apply(&id);
            if let Some(peer) = self.peers.remove(&id) {
                if let Some((_, probe, _)) = peer.probe {
                    probe.abort();
                }
                for state in peer.conns.into_values() {
                    close(state, CloseReason::Removed);
                }
            }
            tracing::warn!(peer = %id, "overlay: removed peer {id}: it is no longer on the allow-list");
        }
    }

    fn add_peer(&mut self, identity: Identity, addrs: Vec<SocketAddr>, now: Instant) {
        self.seed = self
            .seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let adj = Adjacency::new(
            self.local.clone(),
            identity.clone(),
            addrs,
            self.config.timers,
            self.seed,
            now,
        );
        self.peers.insert(
            identity,
            Peer {
                adj,
                conns: HashMap::new(),
                transport: None,
                established_since: None,
                established_count: 0,
                last_failure: None,
                probe: None,
            },
        );
    }

    fn event(&mut self, event: Event) {
        let now = Instant::now();
        match event {
            Event::Refused { remote, refusal } => self.refused(remote.ip(), None, &refusal),
            Event::Inbound {
                stream,
                auth,
                remote,
            } => {
                let identity = auth.identity.clone();
                if identity == self.local {
                    self.refused(
                        remote.ip(),
                        Some(&identity),
                        &Refusal::NotAllowed(identity.clone()),
                    );
                    return;
                }
                if !self.peers.contains_key(&identity) {
                    // Allowed and authenticated, but not discovered: it
                    // connects to us, we never dial it.
                    self.add_peer(identity.clone(), Vec::new(), now);
                }
                let Some(peer) = self.peers.get_mut(&identity) else {
                    return;
                };
                if let Some(conn) = peer.adj.inbound(now) {
                    peer.conns.insert(
                        conn,
                        ConnState {
                            ours: false,
                            commands: None,
                            task: None,
                            auth: Some(auth),
                            remote: Some(remote),
                            pending: Some(stream),
                            services_sent: false,
                        },
                    );
                }
                self.apply(&identity);
            }
            Event::Dialed {
                peer: id,
                conn,
                result,
            } => {
                let Some(peer) = self.peers.get_mut(&id) else {
                    return;
                };
                if let Some(state) = peer.conns.get_mut(&conn) {
                    state.task = None;
                }
                match result {
                    Ok((stream, auth, remote)) => {
                        if let Some(state) = peer.conns.get_mut(&conn) {
                            state.auth = Some(auth);
                            state.remote = Some(remote);
                            state.pending = Some(stream);
                        }
                        peer.last_failure = None;
                        peer.adj.dial_succeeded(conn, now);
                    }
                    Err(refusal) => {
                        let dialed = peer.conns.remove(&conn).and_then(|c| c.remote);
                        peer.last_failure = Some(refusal.to_string());
                        peer.adj.dial_failed(conn, now);
                        // Unreachable or silent peers are only counted in
                        // `last_failure`: nothing was refused.
                        if let Some(addr) = dialed {
                            if !matches!(refusal, Refusal::Handshake(_) | Refusal::Timeout) {
                                self.refused(addr.ip(), Some(&id), &refusal);
                            }
                        }
                    }
                }
                self.apply(&id);
            }
            Event::Feed {
                peer: id,
                conn,
                feed,
            } => self.feed(&id, conn, feed),
            Event::Ended {
                peer: id,
                conn,
                reason,
            } => {
                let Some(peer) = self.peers.get_mut(&id) else {
                    return;
                };
                if peer.conns.remove(&conn).is_some() && peer.adj.current() == Some(conn) {
                    tracing::info!(peer = %id, ?reason, "overlay session ended");
                }
                peer.adj.closed(conn, now);
                self.apply(&id);
            }
            Event::Probed {
                peer: id,
                addr,
                success,
            } => {
                let Some(peer) = self.peers.get_mut(&id) else {
                    return;
                };
                let Some((probed, _, monitor)) = &mut peer.probe else {
                    return;
                };
                if *probed != addr {
                    return;
                }
                if let Some(up) = monitor.record(success) {
                    tracing::info!(peer = %id, private = %addr, up, "overlay private path changed");
                    let events = self.rib.set_private_path(&id, up);
                    self.emit(events);
                }
            }
        }
    }

    fn feed(&mut self, id: &Identity, conn: ConnId, feed: Feed) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        if peer.adj.current() != Some(conn) {
            return;
        }
        match feed {
            Feed::Established(_) => {
                peer.adj.established(conn);
                self.apply(id);
            }
            Feed::Update(update) => {
                let imported = self.rib.update(id, &update);
                for (prefix, reason, first) in &imported.rejected {
                    if *first {
                        tracing::warn!(
                            peer = %id,
                            %prefix,
                            "overlay route rejected: {reason} (counted; further rejections for this reason from this peer are counted, not logged)"
                        );
                    }
                }
                self.emit(imported.events);
                self.update_probe(id);
            }
        }
    }

    /// Carries out what peer `id`'s adjacency decided.
    fn apply(&mut self, id: &Identity) {
        let now = Instant::now();
        while let Some(output) = self.peers.get_mut(id).and_then(|p| p.adj.poll()) {
            let Some(peer) = self.peers.get_mut(id) else {
                return;
            };
            match output {
                Output::Dial { conn, addr } => {
                    let task = self.tasks.spawn(connection::dial(
                        self.trust.clone(),
                        id.clone(),
                        conn,
                        self.config.listen.ip(),
                        addr,
                        self.config.trust.handshake_timeout,
                        self.events_tx.clone(),
                    ));
                    peer.conns.insert(
                        conn,
                        ConnState {
                            ours: true,
                            commands: None,
                            task: Some(task),
                            auth: None,
                            remote: Some(addr),
                            pending: None,
                            services_sent: false,
                        },
                    );
                }
                Output::Run { conn } => {
                    let Some(state) = peer.conns.get_mut(&conn) else {
                        continue;
                    };
                    let Some(stream) = state.pending.take() else {
                        continue;
                    };
                    let (commands, commands_rx) = mpsc::channel(1024);
                    let trusted = state
                        .remote
                        .is_some_and(|r| self.confirmed.contains(&r.ip()));
                    state.services_sent = !self.config.advertise_after_trust || trusted;
                    for prefix in &self.advertised {
                        if state.services_sent || !is_service(&self.config, prefix) {
                            let _ = commands
                                .try_send(Command::Announce(*prefix, attrs(&self.config, prefix)));
                        }
                    }
                    let task = self.tasks.spawn(connection::run_bgp(
                        *stream,
                        state.ours,
                        id.clone(),
                        conn,
                        session_config(&self.config),
                        origination(&self.config),
                        commands_rx,
                        self.events_tx.clone(),
                    ));
                    state.commands = Some(commands);
                    state.task = Some(task);
                }
                Output::Close { conn, reason } => {
                    if let Some(state) = peer.conns.remove(&conn) {
                        close(state, reason);
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
                    let transport = peer.conns.get(&conn).and_then(|c| c.remote).map(|r| r.ip());
                    let Some(transport) = transport else {
                        continue;
                    };
                    peer.transport = Some(transport);
                    peer.established_since = Some(now);
                    peer.established_count += 1;
                    let private = self.config.private_to.contains(id);
                    let events = self.rib.peer_up(id, transport, private);
                    self.emit(events);
                }
                Output::Down => {
                    peer.transport = None;
                    peer.established_since = None;
                    if let Some((_, probe, _)) = peer.probe.take() {
                        probe.abort();
                    }
                    let events = self.rib.peer_down(id);
                    self.emit(events);
                }
            }
        }
    }

    /// Starts or stops probing peer `id`'s private path as its routes say.
    fn update_probe(&mut self, id: &Identity) {
        let candidate = self.rib.private_candidate(id);
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        if peer.probe.as_ref().map(|(a, _, _)| *a) == candidate {
            return;
        }
        if let Some((_, probe, _)) = peer.probe.take() {
            probe.abort();
        }
        if let Some(addr) = candidate {
            let local = self
                .config
                .private_addr
                .filter(|p| p.is_ipv4() == addr.is_ipv4());
            let task = self.tasks.spawn(connection::probe_private(
                id.clone(),
                local,
                addr,
                self.config.listen.port(),
                PROBE_INTERVAL,
                self.events_tx.clone(),
            ));
            peer.probe = Some((addr, task, PathMonitor::new(2, 3)));
        }
    }

    fn refused(&mut self, source: IpAddr, peer: Option<&Identity>, refusal: &Refusal) {
        let kind = refusal_kind(refusal);
        *self.refused.entry(kind).or_insert(0) += 1;
        let now = Instant::now();
        let key = (source, kind);
        let due = self
            .refusal_logged
            .get(&key)
            .is_none_or(|at| now.duration_since(*at) >= REFUSAL_LOG_EVERY);
        if due {
            if self.refusal_logged.len() > 4096 {
                self.refusal_logged.clear();
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
        let command = if on {
            Command::Announce(prefix, attrs(&self.config, &prefix))
        } else {
            Command::Withdraw(prefix)
        };
        let service = is_service(&self.config, &prefix);
        for peer in self.peers.values() {
            for state in peer.conns.values() {
                if service && !state.services_sent {
                    continue;
                }
                if let Some(commands) = &state.commands {
                    // A full queue means a stuck session: its hold timer
                    // ends it, and a new one announces everything afresh.
                    let _ = commands.try_send(command.clone());
                }
            }
        }
    }

    /// Sends our service routes on every session whose peer the data plane
    /// now trusts and that has not had them yet.
    fn release_services(&mut self) {
        let services: Vec<Prefix> = self
            .advertised
            .iter()
            .filter(|p| is_service(&self.config, p))
            .copied()
            .collect();
        for peer in self.peers.values_mut() {
            for state in peer.conns.values_mut() {
                let trusted = state
                    .remote
                    .is_some_and(|r| self.confirmed.contains(&r.ip()));
                let Some(commands) = &state.commands else {
                    continue;
                };
                if state.services_sent || !trusted {
                    continue;
                }
                for prefix in &services {
                    let _ =
                        commands.try_send(Command::Announce(*prefix, attrs(&self.config, prefix)));
                }
                state.services_sent = true;
            }
        }
    }

    /// Reloads the trust material if asked, or if its files changed, and
    /// checks every authenticated peer against it.
    fn reload(&mut self, trust: Option<TrustConfig>) {
        let config = trust.unwrap_or_else(|| self.config.trust.clone());
        match Trust::load(&config) {
            Ok(new) => {
                if new.identity() != self.trust.identity() {
                    // Our identity cannot change under running adjacencies.
                    let error = format!(
                        "the new certificate is for {}, not {}: restart the agent to change identity",
                        new.identity(),
                        self.local
                    );
                    tracing::error!("overlay trust reload refused: {error}");
                    self.reload_error = Some(error);
                    return;
                }
                self.trust = Arc::new(new);
                self.config.trust = config;
                self.trust_tx.send_replace(self.trust.clone());
                self.reloads += 1;
                self.reload_error = None;
                tracing::info!("overlay trust material reloaded");
                self.sync_candidates(Instant::now());
                self.revalidate();
            }
            Err(error) => {
                tracing::error!("overlay trust reload failed, keeping the old material: {error}");
                self.reload_error = Some(error.to_string());
            }
        }
    }

    fn check_trust(&mut self) {
        let changed = match self.config.trust.stamp() {
            Ok(stamp) => stamp != *self.trust.stamp(),
            Err(_) => false,
        };
        if changed {
            self.reload(None);
        } else {
            self.revalidate();
        }
    }

    /// Disconnects every peer whose certificate no longer passes (expired,
    /// revoked, CA gone, off the allow-list).
    fn revalidate(&mut self) {
        let now = Instant::now();
        let wall = std::time::SystemTime::now();
        let mut untrusted = Vec::new();
        for (id, peer) in &self.peers {
            let Some(conn) = peer.adj.current() else {
                continue;
            };
            let Some(auth) = peer.conns.get(&conn).and_then(|c| c.auth.as_ref()) else {
                continue;
            };
            if let Err(refusal) = self.trust.revalidate(auth, wall) {
                untrusted.push((id.clone(), refusal));
            }
        }
        for (id, refusal) in untrusted {
            let source = self.peers[&id].transport;
            if let Some(source) = source {
                self.refused(source, Some(&id), &refusal);
            }
            if let Some(peer) = self.peers.get_mut(&id) {
                peer.adj.close(CloseReason::Untrusted, now);
            }
            self.apply(&id);
        }
    }

    async fn shutdown(&mut self) {
        let now = Instant::now();
        let ids: Vec<Identity> = self.peers.keys().cloned().collect();
        for id in &ids {
            if let Some(peer) = self.peers.get_mut(id) {
                peer.adj.close(CloseReason::Removed, now);
            }
            self.apply(id);
        }
        self.publish();
        // Give the sessions a moment to send their Cease.
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while self.tasks.len() > 2 {
                if self.tasks.join_next().await.is_none() {
                    break;
                }
            }
        })
        .await;
        self.tasks.abort_all();
    }

    fn emit(&self, events: Vec<RibEvent>) {
        for event in events {
            let _ = self.rib_events.send(event);
        }
    }

    fn publish(&self) {
        let status = OverlayStatus {
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
        };
        self.status_tx.send_if_modified(|old| {
            if *old == status {
                false
            } else {
                *old = status;
                true
            }
        });
    }
}

/// Whether `prefix` is one of our service VIPs (not an identity or the
/// private address).
fn is_service(config: &OverlayConfig, prefix: &Prefix) -> bool {
    config
        .import
        .service_ranges
        .iter()
        .any(|r| r.covers(prefix))
}

/// The attributes we originate `prefix` with: our private underlay
/// address carries the marker community.
fn attrs(config: &OverlayConfig, prefix: &Prefix) -> OriginAttrs {
    let mut attrs = OriginAttrs::default();
    if Some(prefix.addr()) == config.private_addr {
        attrs.large_communities = vec![(config.asn, super::import::PRIVATE_UNDERLAY, 0)];
    }
    attrs
}

/// iBGP settings of every overlay session.
fn session_config(config: &OverlayConfig) -> SessionConfig {
    let policy = &config.import;
    SessionConfig {
        local_as: config.asn,
        peer_as: config.asn,
        bgp_id: config.bgp_id().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
        hold_time: config.hold_time,
        connect_retry: Duration::from_secs(5),
        passive: true,
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        graceful_restart: None,
        // A hard cap on what one session may hold, rejected routes
        // included: the import filter's limit applies to accepted
        // routes, this one protects memory.
        max_prefixes: Some(
            (policy.max_routes as u32)
                .saturating_mul(4)
                .saturating_add(64),
        ),
    }
}

/// Who we are on overlay sessions: iBGP, our underlay addresses as next hops.
fn origination(config: &OverlayConfig) -> Origination {
    let (v4, v6) = config.underlay();
    Origination {
        local_as: config.asn,
        ebgp: false,
        next_hop_v4: v4,
        next_hop_v6: v6.map(|a| (a, None)),
    }
}

/// Closes a connection: a Cease on a running session (then the task is
/// aborted if it lingers), or abandons a dial.
fn close(state: ConnState, reason: CloseReason) {
    match (state.commands, state.task) {
        (Some(commands), Some(task)) => {
            let text = match reason {
                CloseReason::Duplicate => "duplicate overlay connection",
                CloseReason::Superseded => "replaced by a newer connection",
                CloseReason::Untrusted => "peer certificate no longer valid",
                CloseReason::Removed => {
                    "adjacency removed (agent stopping, or peer no longer allowed)"
                }
            };
            let _ = commands.try_send(Command::Shutdown(text.into()));
            tokio::spawn(async move {
                tokio::time::sleep(CLOSE_GRACE).await;
                task.abort();
            });
        }
        (_, Some(task)) => task.abort(),
        _ => {}
    }
}

/// Queries the SRV names now and every `refresh`, and reports the union.
/// A failing query keeps that name's previous answer (DNS trouble must not
/// tear anything down: established adjacencies never depend on discovery).
async fn discover(
    queries: Vec<discovery::SrvQuery>,
    refresh: Duration,
    found: mpsc::Sender<Vec<Candidate>>,
) {
    let mut last: Vec<Vec<Candidate>> = vec![Vec::new(); queries.len()];
    let mut ticks = tokio::time::interval(refresh);
    loop {
        ticks.tick().await;
        for (i, query) in queries.iter().enumerate() {
            match discovery::query_srv(query, Duration::from_secs(2)).await {
                Ok(candidates) => last[i] = candidates,
                Err(error) => tracing::warn!(name = %query.name, "overlay discovery: {error}"),
            }
        }
        if found.send(last.concat()).await.is_err() {
            return;
        }
    }
}

/// A short name per refusal reason, for counters.
fn refusal_kind(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::UnknownIssuer => "unknown_issuer",
        Refusal::Expired => "expired",
        Refusal::NotYetValid => "not_yet_valid",
        Refusal::Revoked => "revoked",
        Refusal::NoCertificate => "no_certificate",
        Refusal::NoIdentity => "no_identity",
        Refusal::NotAllowed(_) => "not_allowed",
        Refusal::Mismatch { .. } => "identity_mismatch",
        Refusal::BadCertificate(_) => "bad_certificate",
        Refusal::PeerRefused(_) => "refused_by_peer",
        Refusal::Handshake(_) => "handshake",
        Refusal::Timeout => "timeout",
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
