//! One edge node, assembled: the data plane on the Internet interface, the
//! netlink reconciler, the overlay, the health checks, the upstream BGP
//! sessions, the optional authoritative DNS service, and the control loop
//! that ties them together. Everything here is wiring; each piece's logic
//! lives in its own module. The daemon
//! (`edge-agent run`) builds an [`AgentConfig`] from its config file and
//! runs an [`Agent`]; tests run several in network namespaces.

use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use tokio::sync::{mpsc, watch};

use crate::{
    authdns::{DnsConfig, DnsServer, ListenError},
    bfd::{Bfd, BfdError, BfdStatus, Hop, SessionKey},
    bgp::{
        io::Telemetry,
        neighbor::{self, NeighborConfig},
        speaker::{Intent, Status},
    },
    control::{
        decide::ControlConfig,
        runtime::{Control, ControlInputs, ControlOutputs},
    },
    dataplane::{
        AttachMode, Attachment, Dataplane, DataplaneError, LoadOptions, NodeConfig, detach_pinned,
        link_pin_path,
    },
    health::{AdminState, Effective, HealthError, HealthMonitor, ServiceCheck},
    netlink::{
        desired::Inputs as NetlinkInputs,
        kernel::NetlinkError,
        reconciler::{NetlinkConfig, Reconciler},
    },
    overlay::{
        config::OverlayConfig,
        runtime::{Overlay, StartError},
    },
};

/// Everything one node runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// The Internet-facing interface (XDP attaches here).
    pub internet: String,
    /// How to attach.
    pub attach: AttachMode,
    /// Where the data plane's maps and program are pinned, if anywhere.
    pub load: LoadOptions,
    /// The data plane's node settings.
    pub node: NodeConfig,
    /// The overlay.
    pub overlay: OverlayConfig,
    /// The kernel's side.
    pub netlink: NetlinkConfig,
    /// Health checks per service (names as in `control.services`).
    pub health: Vec<ServiceCheck>,
    /// The control logic.
    pub control: ControlConfig,
    /// Upstream BGP neighbours.
    pub upstream: Vec<NeighborConfig>,
    /// The authoritative DNS service, if this node runs one.
    pub dns: Option<DnsConfig>,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The data plane.
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
    /// The netlink reconciler.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// The overlay.
    #[error(transparent)]
    Overlay(#[from] StartError),
    /// The health checks.
    #[error(transparent)]
    Health(#[from] HealthError),
    /// The DNS service.
    #[error(transparent)]
    Dns(#[from] ListenError),
    /// BFD.
    #[error(transparent)]
    Bfd(#[from] BfdError),
    /// BGP cannot listen for the upstream neighbours' connections.
    #[error(
        "upstream BGP: cannot listen on {addr} for {neighbors}: {source} (is another BGP daemon using the port?)"
    )]
    UpstreamListen {
        /// Where.
        addr: SocketAddr,
        /// The neighbours it is for.
        neighbors: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A running node.
pub struct Agent {
    /// The overlay.
    pub overlay: Arc<Overlay>,
    /// The netlink reconciler.
    pub netlink: Arc<Reconciler>,
    /// The health checks.
    pub health: HealthMonitor,
    /// The control loop.
    pub control: Control,
    /// Each upstream neighbour's status.
    pub upstream: Vec<watch::Receiver<Status>>,
    /// Each upstream neighbour's BFD session, if it has one (in the order
    /// of `upstream`).
    pub upstream_bfd: Vec<Option<watch::Receiver<BfdStatus>>>,
    /// BFD of the upstream sessions, if any has it.
    pub bfd: Option<Bfd>,
    /// The authoritative DNS service, if configured.
    pub dns: Option<DnsServer>,
    upstream_intents: Vec<watch::Sender<Intent>>,
    upstream_tasks: Vec<tokio::task::JoinHandle<()>>,
    upstream_listeners: Vec<tokio::task::JoinHandle<()>>,
    drained: watch::Sender<bool>,
    pin_dir: Option<std::path::PathBuf>,
    _attachment: Attachment,
}

impl Agent {
    /// Loads and attaches the data plane, then starts the reconciler, the
    /// overlay, the health checks, the upstream sessions and the control
    /// loop, on the current runtime (in the current network namespace).
    /// Nothing is announced upstream before the control loop finds the
    /// node fit.
    pub async fn start(config: AgentConfig) -> Result<Agent, AgentError> {
        // Before anything touches the kernel: a port we cannot have fails
        // the start cleanly.
        let listeners = bind_upstream(&config.upstream)?;
        // BFD runs from the start, independent of the BGP sessions it
        // guards, so that a dead path is known before a session starts.
        // (The overlay runs its own, for its adjacencies.)
        let bfd = config
            .upstream
            .iter()
            .any(|n| n.bfd.is_some())
            .then(Bfd::spawn);
        let mut upstream_bfd = Vec::new();
        for neighbor in &config.upstream {
            let session = match (&bfd, &neighbor.bfd) {
                (Some(bfd), Some(settings)) => Some(
                    bfd.add(
                        format!("upstream {}", neighbor.peer.ip()),
                        SessionKey {
                            peer: neighbor.peer.ip(),
                            local: neighbor.local,
                            hop: Hop::Single,
                        },
                        settings.clone(),
                    )
                    .await?,
                ),
                _ => None,
            };
            upstream_bfd.push(session);
        }
        let mut dataplane = Dataplane::load(&config.load)?;
        dataplane.set_config(&config.node)?;
        // With pins, a running data plane is re-adopted: its maps are
        // reused and the new program replaces the old one inside the
        // existing link, so no packet sees no program.
        let restarted = config
            .load
            .pin_dir
            .as_deref()
            .is_some_and(|dir| link_pin_path(dir).exists());
        let attachment = match &config.load.pin_dir {
            Some(_) => dataplane.attach_pinned(&config.internet, config.attach)?,
            None => dataplane.attach(&config.internet, config.attach)?,
        };
        // Until the control loop decides, the kernel keeps what it has
        // (a restart over kept state must not lose its routes): only the
        // interface and its addresses are made.
        let netlink = Arc::new(Reconciler::spawn_partial(
            config.netlink.clone(),
            NetlinkInputs {
                node_addrs: config.control.node_addrs.clone(),
                vips: config
                    .control
                    .services
                    .iter()
                    .flat_map(|s| s.vips())
                    .collect(),
                vip_addresses: config.control.vip_addresses,
                ..NetlinkInputs::default()
            },
        )?);
        // The control loop confirms trust to the overlay before peers may
        // hear of our services.
        let mut overlay_config = config.overlay.clone();
        overlay_config.advertise_after_trust = true;
        let overlay = Arc::new(Overlay::start(overlay_config).await?);
        // Before the health checks, so its first probes find it; its
        // sockets bind with IP_FREEBIND, before the VIPs are on edge0.
        let dns = config.dns.clone().map(DnsServer::start).transpose()?;
        let health = HealthMonitor::spawn(config.health.clone())?;
        // Health (effective, with admin state) as the control loop sees it.
        let (local_tx, local) = watch::channel(BTreeMap::new());
        let mut health_rx = health.status();
        tokio::spawn(async move {
            loop {
                let map: BTreeMap<String, Effective> = health_rx
                    .borrow_and_update()
                    .iter()
                    .map(|(name, h)| (name.clone(), h.effective))
                    .collect();
                local_tx.send_if_modified(|old| {
                    let changed = *old != map;
                    *old = map;
                    changed
                });
                if health_rx.changed().await.is_err() {
                    return;
                }
            }
        });
        // The Internet interface's state, from the reconciler.
        let (internet_tx, internet_up) = watch::channel(None);
        let mut reconcile = netlink.status();
        tokio::spawn(async move {
            loop {
                let up = reconcile.borrow_and_update().internet_up;
                internet_tx.send_if_modified(|old| {
                    let changed = *old != up;
                    *old = up;
                    changed
                });
                if reconcile.changed().await.is_err() {
                    return;
                }
            }
        });
        // Warm up before deciding anything: the kernel reconciled once,
        // every service probed `rise` times, the overlay's candidates
        // connected (bounded). A restarted node's data plane keeps
        // forwarding with its old state meanwhile.
        warm_up(&config, &netlink, &health, &overlay).await;
        // The upstream intents exist before the control loop, so its
        // first decision is in place before any session can come up; the
        // sessions start only once that decision is made.
        let upstream_intents: Vec<watch::Sender<Intent>> = config
            .upstream
            .iter()
            .map(|_| watch::channel(Intent::default()).0)
            .collect();
        let (drained, drained_rx) = watch::channel(false);
        let control = Control::spawn(
            config.control.clone(),
            ControlInputs {
                local,
                drained: drained_rx,
                overlay: overlay.status(),
                internet_up,
                upstream_paths: upstream_paths(&config.upstream, &upstream_bfd),
            },
            ControlOutputs {
                dataplane,
                overlay: Some(overlay.clone()),
                netlink: Some(netlink.clone()),
                upstream: upstream_intents.clone(),
            },
        );
        let mut decided = control.status.clone();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            decided.wait_for(|s| s.decisions > 0),
        )
        .await;
        let mut upstream = Vec::new();
        let mut upstream_tasks = Vec::new();
        let mut upstream_listeners = Vec::new();
        let mut inbound_routes: HashMap<SocketAddr, HashMap<IpAddr, mpsc::Sender<_>>> =
            HashMap::new();
        let mut upstream_liveness = Vec::new();
        for ((mut neighbor_config, intent), bfd) in config
            .upstream
            .clone()
            .into_iter()
            .zip(&upstream_intents)
            .zip(upstream_bfd)
        {
            upstream_liveness.push(bfd.as_ref().map(|b| b.status.clone()));
            if let Some(gr) = &mut neighbor_config.session.graceful_restart {
                // Forwarding state was preserved across the restart.
                gr.restarted = restarted;
            }
            let (mut telemetry, status) = Telemetry::new();
            telemetry.log_as = Some(neighbor_config.peer.ip().to_string());
            let (inbound_tx, inbound) = mpsc::channel(4);
            if let Some(addr) = neighbor_config
                .listen_addr()
                .filter(|_| neighbor_config.session.passive)
            {
                inbound_routes
                    .entry(addr)
                    .or_default()
                    .insert(neighbor_config.peer.ip(), inbound_tx);
            }
            let intent = intent.subscribe();
            upstream_tasks.push(tokio::spawn(neighbor::run(
                neighbor_config,
                intent,
                inbound,
                telemetry,
                bfd,
            )));
            upstream.push(status);
        }
        // Listening only now: connections that came before were refused by
        // the kernel, not left waiting in a backlog through the warm-up.
        for (addr, bound) in listeners {
            let routes = inbound_routes.remove(&addr).unwrap_or_default();
            match bound.listen() {
                Ok(listener) => {
                    upstream_listeners.push(tokio::spawn(neighbor::listen(listener, routes)))
                }
                Err(error) => tracing::error!(
                    %addr,
                    "upstream BGP: cannot listen on {addr}: {error}; the passive neighbours there cannot connect"
                ),
            }
        }
        Ok(Agent {
            overlay,
            netlink,
            health,
            control,
            upstream,
            upstream_bfd: upstream_liveness,
            bfd,
            dns,
            upstream_intents,
            upstream_tasks,
            upstream_listeners,
            drained,
            pin_dir: config.load.pin_dir.clone(),
            _attachment: attachment,
        })
    }

    /// Drains the node (`true`) or ends the drain.
    pub fn drain(&self, on: bool) {
        self.drained.send_replace(on);
    }

    /// Puts a service administratively down, into drain, or back to its
    /// probes.
    pub fn set_admin(&self, service: &str, admin: AdminState) -> Result<(), HealthError> {
        self.health.set_admin(service, admin)
    }

    /// Stops in a safe order: withdraw upstream (Cease), take the upstream
    /// BFD sessions administratively down, stop the control loop, leave
    /// the overlay, stop the DNS service, remove the kernel
    /// state (unless the netlink config keeps it), then detach and unpin
    /// the data plane.
    pub async fn stop(self) {
        for intent in &self.upstream_intents {
            intent.send_modify(|i| i.stop("edge agent stopping"));
        }
        for listener in &self.upstream_listeners {
            listener.abort();
        }
        for task in self.upstream_tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
        }
        // After the Ceases: a router that takes AdminDown for a failure
        // would otherwise close the session before our withdrawals.
        if let Some(bfd) = &self.bfd {
            bfd.shutdown().await;
        }
        let dataplane = self.control.stop().await;
        if let Ok(overlay) = Arc::try_unwrap(self.overlay) {
            overlay.shutdown().await;
        }
        if let Some(dns) = &self.dns {
            dns.stop_listening().await;
        }
        if let Ok(netlink) = Arc::try_unwrap(self.netlink) {
            netlink.stop().await;
        }
        drop(dataplane);
        if let Some(dir) = &self.pin_dir {
            if let Err(e) = detach_pinned(dir) {
                tracing::warn!("removing the pinned data plane: {e}");
            }
        }
    }

    /// Stops for a restart: upstream sessions are dropped without a Cease
    /// (graceful restart keeps the routes), nothing is withdrawn, the
    /// kernel state stays (when the netlink config keeps it) and the
    /// pinned data plane keeps forwarding. BFD sessions are taken
    /// administratively down first, so routers do not take the silence
    /// that follows for a failure.
    pub async fn abandon(self) {
        // First, so that no router mistakes the silence for a failure.
        if let Some(bfd) = &self.bfd {
            bfd.shutdown().await;
        }
        for task in self.upstream_tasks.iter().chain(&self.upstream_listeners) {
            task.abort();
        }
        let _ = self.control.stop().await;
        if let Ok(netlink) = Arc::try_unwrap(self.netlink) {
            netlink.stop().await;
        }
    }
}

/// Binds a socket for the passive upstream neighbours' connections on each
/// of our addresses toward them (with every TCP MD5 key of the neighbours
/// reached there); it listens once the sessions start. Active neighbours
/// are only connected to: their routers' own attempts are refused by the
/// kernel, so that a session never starts with a collision: closing a
/// connection a router had opened to us made it (BIRD, doing graceful
/// restart for us) flush the routes it was keeping.
fn bind_upstream(
    upstream: &[NeighborConfig],
) -> Result<Vec<(SocketAddr, neighbor::Bound)>, AgentError> {
    let mut groups: BTreeMap<SocketAddr, Vec<&NeighborConfig>> = BTreeMap::new();
    for neighbor in upstream.iter().filter(|n| n.session.passive) {
        if let Some(addr) = neighbor.listen_addr() {
            groups.entry(addr).or_default().push(neighbor);
        }
    }
    groups
        .into_iter()
        .map(|(addr, neighbors)| {
            let keys: Vec<(IpAddr, Vec<u8>)> = neighbors
                .iter()
                .filter_map(|n| n.md5_key.clone().map(|k| (n.peer.ip(), k)))
                .collect();
            neighbor::bind(addr, &keys)
                .map(|bound| (addr, bound))
                .map_err(|source| AgentError::UpstreamListen {
                    addr,
                    neighbors: neighbors
                        .iter()
                        .map(|n| n.peer.ip().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    source,
                })
        })
        .collect()
}

/// Whether some upstream path is alive as far as BFD can tell, kept up to
/// date from the upstream BFD sessions: false only while every upstream
/// neighbour runs BFD and each session has failed since the start and is
/// not back up. (Down before the first Up is no failure: a starting or
/// restarting node must not withdraw on that.)
fn upstream_paths(
    upstream: &[NeighborConfig],
    sessions: &[Option<crate::bfd::BfdSession>],
) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(true);
    let mut watched: Vec<watch::Receiver<BfdStatus>> = sessions
        .iter()
        .flatten()
        .map(|s| s.status.clone())
        .collect();
    if watched.is_empty() || upstream.iter().any(|n| n.bfd.is_none()) {
        // A neighbour without BFD: nothing tells its path is down. The
        // sender stays for as long as the control loop listens: a closed
        // channel would end it.
        tokio::spawn(async move { tx.closed().await });
        return rx;
    }
    tokio::spawn(async move {
        loop {
            let alive = watched.iter_mut().any(|w| {
                let s = w.borrow_and_update();
                s.session.counters.failures == 0 || s.session.state == crate::bfd::packet::State::Up
            });
            tx.send_if_modified(|old| std::mem::replace(old, alive) != alive);
            let changes = watched.iter_mut().map(|w| Box::pin(w.changed()));
            let (changed, _, _) = futures_util::future::select_all(changes).await;
            if changed.is_err() {
                // BFD stopped (the agent is stopping): the last word
                // stands, and the control loop must not see a closed
                // channel.
                tx.closed().await;
                return;
            }
        }
    });
    rx
}

/// Waits, at most [`WARM_UP`], until the kernel has been reconciled once,
/// every service has been probed `rise` times, and every configured overlay
/// candidate is established.
async fn warm_up(
    config: &AgentConfig,
    netlink: &Reconciler,
    health: &HealthMonitor,
    overlay: &Overlay,
) {
    let deadline = tokio::time::Instant::now() + WARM_UP;
    let rise: BTreeMap<&str, u32> = config
        .health
        .iter()
        .map(|c| (c.name.as_str(), c.config.rise))
        .collect();
    let peers: Vec<_> = config
        .overlay
        .static_peers
        .iter()
        .map(|c| c.identity.clone())
        .collect();
    loop {
        let reconciled = netlink.status().borrow().passes > 0;
        let probed = health.snapshot().iter().all(|(name, h)| {
            h.counters.rounds >= u64::from(rise.get(name.as_str()).copied().unwrap_or(1))
        });
        let established = overlay.status().borrow().established();
        let connected = peers.iter().all(|p| established.contains(p));
        if (reconciled && probed && connected) || tokio::time::Instant::now() >= deadline {
            if !(reconciled && probed && connected) {
                tracing::warn!(
                    reconciled,
                    probed,
                    connected,
                    "warm-up incomplete after {WARM_UP:?}: deciding with what is known"
                );
            }
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The longest warm-up before the first decision.
const WARM_UP: std::time::Duration = std::time::Duration::from_secs(15);
