//! The overlay's executor: one task that carries out what the pure
//! [`OverlayCore`] decides. It owns the sockets and tasks — the control
//! endpoint's listener, dials, one iBGP session task per connection,
//! private-path probes, SRV discovery — holds the authenticated streams
//! the core refers to by [`StreamId`], reads the trust files when the core
//! asks, feeds every result back to the core with the time, and publishes
//! the core's [`OverlayStatus`]. It decides nothing.
//!
//! [`StreamId`]: super::core::StreamId

use std::{
    collections::{BTreeSet, HashMap},
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use tokio::{
    net::TcpListener,
    sync::{mpsc, oneshot, watch},
    task::{AbortHandle, JoinSet},
};

use super::{
    adjacency::ConnId,
    admission::{Admission, AdmissionStatus},
    config::{ConfigError, OverlayConfig},
    connection::{self, Event, Stream, lock},
    core::{OverlayCore, OverlayEffect, OverlayEvent, StreamId},
    discovery::{self, Candidate},
    identity::Identity,
    status::OverlayStatus,
    trust::{Trust, TrustConfig, TrustError},
};
use crate::{
    bfd::Bfd,
    bgp::{
        message::{Family, Prefix},
        rib_out::Origination,
        session::SessionConfig,
        speaker::Intent,
    },
    net::{random, time::sleep_until},
};

/// Probe interval of private paths.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// How long a closed connection may take to send its Cease.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long a shutdown waits for the sessions' Ceases.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
/// Events from the I/O tasks waiting for the core. The tasks wait when it
/// is full: a handshake or a session is slowed down, nothing is dropped.
const EVENT_QUEUE: usize = 1024;
/// Requests from the agent waiting for the core.
const REQUEST_QUEUE: usize = 64;

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

/// The control endpoint's listen backlog: connections the kernel holds
/// completed for us. The accept loop never stops taking them (admission
/// closes those without room at once), so this only absorbs bursts; the
/// kernel caps it at `net.core.somaxconn`, and SYN cookies take over
/// when the SYN queue overflows.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// How often admission's counters are published and offending source
/// prefixes are logged.
const ADMISSION_REPORT: Duration = Duration::from_secs(1);

/// A service VIP we cannot advertise.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("overlay: {0} is outside the configured service ranges; only service VIPs are advertised")]
pub struct NotAService(pub IpAddr);

enum Request {
    Event(OverlayEvent),
    Reload(Option<TrustConfig>),
    Shutdown(oneshot::Sender<()>),
}

/// A running overlay.
pub struct Overlay {
    requests: mpsc::Sender<Request>,
    status: watch::Receiver<OverlayStatus>,
    service_ranges: Vec<Prefix>,
    bfd: Option<Bfd>,
}

impl Overlay {
    /// Validates `config`, loads the trust material, binds the control
    /// endpoint and starts. Nothing is dialed before this returns.
    pub async fn start(config: OverlayConfig) -> Result<Overlay, StartError> {
        config.validate()?;
        let trust = Arc::new(Trust::load(&config.trust)?);
        let listener = listen(config.listen).map_err(|source| StartError::Listen {
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
        let (requests, requests_rx) = mpsc::channel(REQUEST_QUEUE);
        let service_ranges = config.import.service_ranges.clone();
        let core = OverlayCore::new(config.clone(), trust.clone(), random::u64(), Instant::now());
        let (status_tx, status) = watch::channel(core.status());
        let bfd = config.bfd.map(|timers| (Bfd::spawn(), timers));
        let handle = bfd.as_ref().map(|(bfd, _)| bfd.clone());
        let executor = Executor::new(config, core, trust, status_tx, bfd);
        tokio::spawn(executor.run(listener, private_listener, requests_rx));
        Ok(Overlay {
            requests,
            status,
            service_ranges,
            bfd: handle,
        })
    }

    /// The latest status.
    pub fn status(&self) -> watch::Receiver<OverlayStatus> {
        self.status.clone()
    }

    /// Every BFD packet the overlay's BFD dropped, by reason, including
    /// those for no session (`None`: no BFD).
    pub fn bfd_drops(&self) -> Option<crate::bfd::endpoint::Drops> {
        self.bfd.as_ref().map(Bfd::drops)
    }

    /// A local service with this VIP is healthy: advertise it to every peer.
    pub async fn advertise(&self, vip: IpAddr) -> Result<(), NotAService> {
        if !self.service_ranges.iter().any(|r| r.contains(vip)) {
            return Err(NotAService(vip));
        }
        self.send(Request::Event(OverlayEvent::Advertise(vip)))
            .await;
        Ok(())
    }

    /// The local service with this VIP is not healthy: withdraw it.
    pub async fn withdraw(&self, vip: IpAddr) {
        self.send(Request::Event(OverlayEvent::Withdraw(vip))).await;
    }

    /// Reload the trust material now (SIGHUP), optionally with new
    /// settings (a new allow-list). Peers that are no longer valid are
    /// disconnected; the others stay up.
    pub async fn reload(&self, trust: Option<TrustConfig>) {
        self.send(Request::Reload(trust)).await;
    }

    /// The data plane now trusts (decapsulates from) these outer sources.
    /// With [`OverlayConfig::advertise_after_trust`], a peer is told about
    /// our services only once its session address is among them, so it
    /// can never send us traffic we would drop.
    pub async fn confirm_trusted(&self, sources: BTreeSet<IpAddr>) {
        self.send(Request::Event(OverlayEvent::Trusted(sources)))
            .await;
    }

    /// Withdraws everything, closes every adjacency with a Cease, and stops.
    pub async fn shutdown(self) {
        let (done, wait) = oneshot::channel();
        if self.requests.send(Request::Shutdown(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    async fn send(&self, request: Request) {
        // Gone only after a shutdown: nothing left to tell.
        let _ = self.requests.send(request).await;
    }
}

/// A running iBGP session, as the executor holds it.
struct Session {
    intent: watch::Sender<Intent>,
    task: AbortHandle,
}

struct Executor {
    core: OverlayCore,
    trust: Arc<Trust>,
    trust_tx: watch::Sender<Arc<Trust>>,
    /// Who may start a handshake on the control endpoint (shared with
    /// the accept loop).
    admission: Arc<Mutex<Admission>>,
    /// Admission's counters as last published.
    admission_status: AdmissionStatus,
    probe_port: u16,
    session: SessionConfig,
    origination: Origination,
    /// BFD for every adjacency, with its timers.
    bfd: Option<(Bfd, crate::bfd::Timers)>,
    srv: Vec<discovery::SrvQuery>,
    srv_refresh: Duration,
    status_tx: watch::Sender<OverlayStatus>,
    events_tx: mpsc::Sender<Event>,
    events_rx: mpsc::Receiver<Event>,
    streams: HashMap<StreamId, Box<Stream>>,
    next_stream: StreamId,
    dials: HashMap<(Identity, ConnId), AbortHandle>,
    sessions: HashMap<(Identity, ConnId), Session>,
    session_tasks: JoinSet<()>,
    probes: HashMap<Identity, AbortHandle>,
    /// What each probe probes (our private address, the peer's).
    probe_targets: HashMap<Identity, (Option<IpAddr>, IpAddr)>,
    /// Each peer's private-path BFD key, from its latest TLS session.
    private_keys: HashMap<Identity, [u8; crate::bfd::auth::MAX_KEY_LEN]>,
    tasks: JoinSet<()>,
}

impl Executor {
    fn new(
        config: OverlayConfig,
        core: OverlayCore,
        trust: Arc<Trust>,
        status_tx: watch::Sender<OverlayStatus>,
        bfd: Option<(Bfd, crate::bfd::Timers)>,
    ) -> Self {
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (trust_tx, _) = watch::channel(trust.clone());
        Executor {
            bfd,
            session: session_config(&config),
            origination: origination(&config),
            admission: Arc::new(Mutex::new(Admission::new(
                config.admission.clone(),
                Instant::now(),
            ))),
            admission_status: AdmissionStatus::default(),
            probe_port: config.listen.port(),
            srv: config.srv,
            srv_refresh: config.srv_refresh,
            core,
            trust,
            trust_tx,
            status_tx,
            events_tx,
            events_rx,
            streams: HashMap::new(),
            next_stream: 0,
            dials: HashMap::new(),
            sessions: HashMap::new(),
            session_tasks: JoinSet::new(),
            probes: HashMap::new(),
            probe_targets: HashMap::new(),
            private_keys: HashMap::new(),
            tasks: JoinSet::new(),
        }
    }

    async fn run(
        mut self,
        listener: TcpListener,
        private_listener: Option<TcpListener>,
        mut requests: mpsc::Receiver<Request>,
    ) {
        let listen = listener.local_addr().ok();
        tracing::info!(identity = %self.core.identity(), listen = ?listen, "overlay control endpoint up");
        self.tasks.spawn(connection::listen(
            listener,
            self.trust_tx.subscribe(),
            self.admission.clone(),
            self.events_tx.clone(),
        ));
        if let Some(listener) = private_listener {
            self.tasks.spawn(connection::private_liveness(listener));
        }
        let (srv_tx, mut srv_rx) = mpsc::channel(4);
        if !self.srv.is_empty() {
            self.tasks
                .spawn(discover(self.srv.clone(), self.srv_refresh, srv_tx));
        }
        let mut report = tokio::time::interval(ADMISSION_REPORT);
        report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.carry_out();
            self.status_tx.send_if_modified(|old| {
                let mut status = self.core.status();
                lock(&self.admission).set_candidates(status.candidates.iter().copied());
                status.admission = self.admission_status.clone();
                let changed = *old != status;
                *old = status;
                changed
            });
            tokio::select! {
                _ = report.tick() => self.report_admission(),
                Some(event) = self.events_rx.recv() => self.io_event(event),
                request = requests.recv() => match request {
                    Some(Request::Event(event)) => self.core.handle_event(event, Instant::now()),
                    Some(Request::Reload(trust)) => {
                        let config = trust.unwrap_or_else(|| self.core.trust_config().clone());
                        self.load_trust(config);
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
                    self.core.handle_event(OverlayEvent::Discovered(found), Instant::now());
                }
                Some(_) = self.session_tasks.join_next(), if !self.session_tasks.is_empty() => {}
                () = sleep_until(self.core.poll_timeout()) => self.core.handle_timeout(Instant::now()),
            }
        }
    }

    /// Publishes admission's counters (with the next status) and names
    /// the source prefixes it closed connections from.
    fn report_admission(&mut self) {
        let lines = {
            let mut admission = lock(&self.admission);
            self.admission_status = admission.status();
            admission.offenders(Instant::now())
        };
        for line in lines {
            tracing::warn!("{line}");
        }
    }

    /// Hands an I/O task's report to the core, holding any stream it
    /// carries.
    fn io_event(&mut self, event: Event) {
        let now = Instant::now();
        let event = match event {
            Event::Inbound {
                stream,
                auth,
                remote,
            } => OverlayEvent::Inbound {
                stream: self.hold(stream),
                auth,
                remote,
            },
            Event::Dialed { peer, conn, result } => {
                self.dials.remove(&(peer.clone(), conn));
                let result = result.map(|(stream, auth, remote)| (self.hold(stream), auth, remote));
                OverlayEvent::Dialed { peer, conn, result }
            }
            Event::Core(event) => {
                if let OverlayEvent::Ended { peer, conn, .. } = &event {
                    self.sessions.remove(&(peer.clone(), *conn));
                }
                event
            }
        };
        self.core.handle_event(event, now);
    }

    fn hold(&mut self, stream: Box<Stream>) -> StreamId {
        self.next_stream += 1;
        self.streams.insert(self.next_stream, stream);
        self.next_stream
    }

    /// Carries out what the core decided, in order.
    fn carry_out(&mut self) {
        while let Some(effect) = self.core.poll() {
            match effect {
                OverlayEffect::Dial {
                    peer,
                    conn,
                    from,
                    to,
                    timeout,
                } => {
                    let task = self.tasks.spawn(connection::dial(
                        self.trust.clone(),
                        peer.clone(),
                        conn,
                        from,
                        to,
                        timeout,
                        self.events_tx.clone(),
                    ));
                    self.dials.insert((peer, conn), task);
                }
                OverlayEffect::AbortDial { peer, conn } => {
                    if let Some(task) = self.dials.remove(&(peer, conn)) {
                        task.abort();
                    }
                }
                OverlayEffect::Discard { stream } => {
                    self.streams.remove(&stream);
                }
                OverlayEffect::Run {
                    peer,
                    conn,
                    stream,
                    ours,
                    routes,
                } => {
                    let Some(stream) = self.streams.remove(&stream) else {
                        continue;
                    };
                    // The private path's BFD key belongs to this TLS
                    // session: a probe running with an older one starts
                    // again with it.
                    if self.bfd.is_some() {
                        if let Some((_, private)) = connection::bfd_keys(&stream) {
                            self.private_keys.insert(peer.clone(), private);
                            if let Some((from, addr)) = self.probe_targets.get(&peer).copied() {
                                self.start_probe(peer.clone(), from, addr);
                            }
                        }
                    }
                    let (intent, intent_rx) = watch::channel(Intent { routes, stop: None });
                    let task = self.session_tasks.spawn(connection::run_bgp(
                        *stream,
                        ours,
                        peer.clone(),
                        conn,
                        self.session.clone(),
                        self.origination,
                        intent_rx,
                        self.bfd.clone(),
                        self.events_tx.clone(),
                    ));
                    self.sessions.insert((peer, conn), Session { intent, task });
                }
                OverlayEffect::Routes { peer, conn, routes } => {
                    if let Some(session) = self.sessions.get(&(peer, conn)) {
                        session.intent.send_modify(|i| i.routes = routes);
                    }
                }
                OverlayEffect::Close { peer, conn, reason } => {
                    if let Some(session) = self.sessions.remove(&(peer, conn)) {
                        session.intent.send_modify(|i| i.stop(reason.text()));
                        let task = session.task;
                        tokio::spawn(async move {
                            tokio::time::sleep(CLOSE_GRACE).await;
                            task.abort();
                        });
                    }
                }
                OverlayEffect::Probe { peer, from, addr } => {
                    self.probe_targets.insert(peer.clone(), (from, addr));
                    self.start_probe(peer, from, addr);
                }
                OverlayEffect::StopProbe { peer } => {
                    self.probe_targets.remove(&peer);
                    if let Some(task) = self.probes.remove(&peer) {
                        task.abort();
                    }
                }
                OverlayEffect::UseTrust(trust) => {
                    self.trust = trust.clone();
                    self.trust_tx.send_replace(trust);
                }
                OverlayEffect::CheckTrust { config } => {
                    let changed = match config.stamp() {
                        Ok(stamp) => stamp != *self.trust.stamp(),
                        // A file that cannot be read now is reported by
                        // the reload it would need; keep what works.
                        Err(_) => false,
                    };
                    if changed {
                        self.load_trust(config);
                    } else {
                        self.core.handle_event(
                            OverlayEvent::TrustUnchanged {
                                wall: SystemTime::now(),
                            },
                            Instant::now(),
                        );
                    }
                }
            }
        }
    }

    /// Starts probing `addr` (a peer's private address) from `from`,
    /// replacing any probe of that peer; with BFD on and the peer's key
    /// known, a BFD session runs on the private path too.
    fn start_probe(&mut self, peer: Identity, from: Option<IpAddr>, addr: IpAddr) {
        let bfd = self
            .bfd
            .clone()
            .and_then(|(bfd, timers)| self.private_keys.get(&peer).map(|key| (bfd, timers, *key)));
        let task = self.tasks.spawn(connection::probe_private(
            peer.clone(),
            from,
            addr,
            self.probe_port,
            PROBE_INTERVAL,
            bfd,
            self.events_tx.clone(),
        ));
        if let Some(old) = self.probes.insert(peer, task) {
            old.abort();
        }
    }

    fn load_trust(&mut self, config: TrustConfig) {
        let result = Trust::load(&config).map(Arc::new);
        let event = OverlayEvent::TrustLoaded {
            config,
            result,
            wall: SystemTime::now(),
        };
        self.core.handle_event(event, Instant::now());
    }

    async fn shutdown(&mut self) {
        self.core
            .handle_event(OverlayEvent::Shutdown, Instant::now());
        self.carry_out();
        self.status_tx.send_replace(self.core.status());
        // Give the sessions a moment to send their Cease.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while self.session_tasks.join_next().await.is_some() {}
        })
        .await;
        self.session_tasks.abort_all();
        self.tasks.abort_all();
    }
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
