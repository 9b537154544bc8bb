//! The control loop: whenever an input changes (local health, the
//! operator's drain, the overlay's view, the Internet interface) or a
//! fitness timer is due, decide the desired state and apply the difference
//! from the previous one, in an order that never blackholes traffic:
//!
//! 1. new data-plane peers, then trust for their sources (a peer is known
//!    before anything may be sent to or accepted from it), then the
//!    overlay is told which sources are trusted: it advertises our
//!    services to a peer only after that, so no peer can encapsulate
//!    toward us before we accept it;
//! 2. services gaining capacity (the local bit set, backends added):
//!    the data plane can serve before anyone is told it can;
//! 3. overlay advertisements: new ones announced, old ones withdrawn;
//! 4. services losing their local bit: only after the withdrawal above,
//!    so peers stop sending before the node stops serving;
//! 5. trust and peers no longer needed (no service refers to them now);
//! 6. the kernel's state (netlink reconciler);
//! 7. the upstream announcement.
//!
//! Failures are logged and counted; the next decision tries again.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::Arc,
    time::Instant,
};

use edge_common::{
    maps::{MAX_PEERS, PeerStats, ServiceStats},
    stats::Stats,
};
use tokio::sync::{broadcast, watch};

use super::{
    decide::{ControlConfig, Desired, Inputs, PeerKey, decide},
    doors::DoorLog,
    fitness::{Announce, Fitness},
};
use crate::{
    bgp::speaker::Intent,
    dataplane::{Dataplane, PeerSpec, ServiceBackend, ServiceSpec},
    health::Effective,
    net::time::sleep_until,
    netlink::reconciler::Reconciler,
    overlay::{runtime::Overlay, status::OverlayStatus},
};

/// How many counter ticks (seconds) between looks at the doors'
/// offenders.
const DOOR_REPORT_TICKS: u64 = 10;

/// What the loop listens to.
pub struct ControlInputs {
    /// Effective state per service (health checks and admin state).
    pub local: watch::Receiver<BTreeMap<String, Effective>>,
    /// The operator drained the node.
    pub drained: watch::Receiver<bool>,
    /// The overlay's view.
    pub overlay: watch::Receiver<OverlayStatus>,
    /// Whether the Internet interface is up.
    pub internet_up: watch::Receiver<Option<bool>>,
    /// Whether some upstream path is alive as far as BFD can tell (see
    /// `decide::Inputs::upstream_paths`).
    pub upstream_paths: watch::Receiver<bool>,
}

/// What the loop drives.
pub struct ControlOutputs {
    /// The data plane (loaded; its node config set).
    pub dataplane: Dataplane,
    /// The overlay, for advertisements.
    pub overlay: Option<Arc<Overlay>>,
    /// The netlink reconciler.
    pub netlink: Option<Arc<Reconciler>>,
    /// What each upstream BGP neighbour is to announce.
    pub upstream: Vec<watch::Sender<Intent>>,
}

/// One change the loop applied, with when (for logs, tests and the
/// benchmarks' timings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A service's local bit in the data plane.
    LocalBit {
        /// Which service.
        service: u32,
        /// Set or cleared.
        up: bool,
    },
    /// A service's remote backends in the data plane.
    Backends {
        /// Which service.
        service: u32,
        /// How many.
        count: usize,
    },
    /// An overlay advertisement.
    Advertised {
        /// The VIP.
        vip: IpAddr,
        /// Announced or withdrawn.
        on: bool,
    },
    /// The upstream announcement (sent to every upstream neighbour).
    Upstream(Announce),
}

/// The data plane's counters, read by the loop every second.
#[derive(Clone, Debug)]
pub struct Counters {
    /// When they were read.
    pub at: Instant,
    /// Per action and reason.
    pub totals: Stats,
    /// Per service id.
    pub services: BTreeMap<u32, ServiceStats>,
    /// Per data-plane peer.
    pub peers: BTreeMap<u32, (PeerKey, PeerStats)>,
}

/// What the loop shows of itself.
#[derive(Clone, Debug, Default)]
pub struct ControlStatus {
    /// Decisions made.
    pub decisions: u64,
    /// How long the last change took to apply.
    pub last_apply: Option<std::time::Duration>,
    /// The data plane's counters.
    pub counters: Option<Counters>,
    /// The latest desired state.
    pub desired: Option<Desired>,
    /// Failures applying it.
    pub errors: u64,
    /// The last failure.
    pub last_error: Option<String>,
}

/// A running control loop.
pub struct Control {
    /// Its status.
    pub status: watch::Receiver<ControlStatus>,
    /// Every change applied, as it happens.
    pub applied: broadcast::Sender<(Applied, Instant)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Dataplane>>,
}

impl Control {
    /// Starts the loop on the current runtime.
    pub fn spawn(config: ControlConfig, inputs: ControlInputs, outputs: ControlOutputs) -> Control {
        let (status_tx, status) = watch::channel(ControlStatus::default());
        let (applied, _) = broadcast::channel(1024);
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let mut core = Core {
            config,
            outputs,
            fitness: Fitness::new(),
            previous: None,
            ids: BTreeMap::new(),
            listed: None,
            doors_set: false,
            door_log: DoorLog::default(),
            ticks: 0,
            status: status_tx,
            applied: applied.clone(),
        };
        let task = tokio::spawn(async move {
            core.run(inputs, stop_rx).await;
            core.outputs.dataplane
        });
        Control {
            status,
            applied,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the loop and hands the data plane back (for an orderly
    /// shutdown by the caller).
    pub async fn stop(mut self) -> Option<Dataplane> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take()?.await.ok()
    }
}

struct Core {
    config: ControlConfig,
    outputs: ControlOutputs,
    fitness: Fitness,
    previous: Option<Desired>,
    ids: BTreeMap<PeerKey, u32>,
    /// The door sources the data plane holds (`None`: not read yet).
    listed: Option<BTreeSet<IpAddr>>,
    /// Whether the doors are set in the data plane.
    doors_set: bool,
    /// Which offending prefixes were named in the log, and when.
    door_log: DoorLog,
    /// Counter ticks so far.
    ticks: u64,
    status: watch::Sender<ControlStatus>,
    applied: broadcast::Sender<(Applied, Instant)>,
}

impl Core {
    async fn run(
        &mut self,
        mut inputs: ControlInputs,
        mut stop: tokio::sync::oneshot::Receiver<()>,
    ) {
        let mut counters = tokio::time::interval(std::time::Duration::from_secs(1));
        counters.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let local = inputs.local.borrow_and_update().clone();
            let overlay = inputs.overlay.borrow_and_update().clone();
            let drained = *inputs.drained.borrow_and_update();
            let internet_up = *inputs.internet_up.borrow_and_update();
            let upstream_paths = *inputs.upstream_paths.borrow_and_update();
            let now = Instant::now();
            let desired = decide(
                &self.config,
                &Inputs {
                    local: &local,
                    drained,
                    overlay: &overlay,
                    internet_up,
                    upstream_paths,
                    now,
                },
                &mut self.fitness,
            );
            if self.previous.as_ref() != Some(&desired) {
                let started = Instant::now();
                self.apply(&desired).await;
                self.previous = Some(desired.clone());
                let took = started.elapsed();
                self.status.send_modify(|s| s.last_apply = Some(took));
            }
            self.status.send_modify(|s| {
                s.decisions += 1;
                s.desired = Some(desired);
            });
            let deadline = self
                .fitness
                .next_deadline(&self.config.fitness)
                .filter(|t| *t > now);
            // Counters are read every second without deciding again.
            loop {
                tokio::select! {
                    _ = &mut stop => return,
                    _ = counters.tick() => {
                        self.read_counters();
                        self.ticks += 1;
                        if self.ticks.is_multiple_of(DOOR_REPORT_TICKS) {
                            self.report_doors();
                        }
                        continue;
                    }
                    r = inputs.local.changed() => if r.is_err() { return },
                    r = inputs.overlay.changed() => if r.is_err() { return },
                    r = inputs.drained.changed() => if r.is_err() { return },
                    r = inputs.internet_up.changed() => if r.is_err() { return },
                    r = inputs.upstream_paths.changed() => if r.is_err() { return },
                    () = sleep_until(deadline) => {}
                }
                break;
            }
        }
    }

    fn read_counters(&self) {
        let dp = &self.outputs.dataplane;
        let Ok(totals) = dp.stats() else {
            return;
        };
        let services = self
            .config
            .services
            .iter()
            .filter_map(|s| dp.service_stats(s.id).ok().map(|st| (s.id, st)))
            .collect();
        let peers = self
            .ids
            .iter()
            .filter_map(|(key, id)| dp.peer_stats(*id).ok().map(|st| (*id, (key.clone(), st))))
            .collect();
        self.status.send_modify(|s| {
            s.counters = Some(Counters {
                at: Instant::now(),
                totals,
                services,
                peers,
            })
        });
    }

    /// Lists the door sources in `next` the data plane does not have
    /// yet, or (`unlist`) unlists those it has and `next` does not. The
    /// first call reads what the map holds (a restarted agent finds its
    /// predecessor's list in the pinned map) and sets the doors.
    fn list_sources(&mut self, next: &BTreeSet<IpAddr>, unlist: bool) {
        let Some(doors) = self.config.doors.clone() else {
            return;
        };
        if self.listed.is_none() {
            let dp = &mut self.outputs.dataplane;
            match dp.listed_sources() {
                Ok(found) => self.listed = Some(found.into_iter().collect()),
                Err(e) => {
                    self.error(format!("reading the listed door sources: {e}"));
                    return;
                }
            }
        }
        let listed = self.listed.take().unwrap_or_default();
        let mut now_listed = listed.clone();
        if unlist {
            for addr in listed.difference(next) {
                match self.outputs.dataplane.unlist_source(*addr) {
                    Ok(()) => {
                        now_listed.remove(addr);
                    }
                    Err(e) => self.error(format!("unlisting door source {addr}: {e}")),
                }
            }
        } else {
            for addr in next.difference(&listed) {
                match self.outputs.dataplane.list_source(*addr) {
                    Ok(()) => {
                        now_listed.insert(*addr);
                    }
                    Err(e) => self.error(format!("listing door source {addr}: {e}")),
                }
            }
        }
        self.listed = Some(now_listed);
        // The doors close only once the sources they must let in are
        // listed.
        if !unlist && !self.doors_set {
            match self.outputs.dataplane.set_doors(&doors) {
                Ok(()) => {
                    self.doors_set = true;
                    tracing::info!(
                        doors = doors.doors.len(),
                        sources = next.len(),
                        "control: the data plane guards the agent's ports ({} door(s), {} listed source(s))",
                        doors.doors.len(),
                        next.len()
                    );
                }
                Err(e) => self.error(format!("setting the doors of the agent's ports: {e}")),
            }
        }
    }

    /// Names the source prefixes the doors dropped packets from since
    /// the last look.
    fn report_doors(&mut self) {
        if self.config.doors.is_none() {
            return;
        }
        match self.outputs.dataplane.door_offenders(1) {
            Ok(offenders) => {
                for line in self.door_log.report(&offenders, Instant::now()) {
                    tracing::warn!("{line}");
                }
            }
            Err(e) => tracing::debug!("reading the doors' offenders: {e}"),
        }
    }

    fn note(&self, change: Applied) {
        let _ = self.applied.send((change, Instant::now()));
    }

    fn error(&self, what: String) {
        tracing::warn!("control: {what}");
        self.status.send_modify(|s| {
            s.errors += 1;
            s.last_error = Some(what);
        });
    }

    async fn apply(&mut self, next: &Desired) {
        let empty = Desired {
            services: BTreeMap::new(),
            peers: BTreeSet::new(),
            trusted: BTreeMap::new(),
            advertise: BTreeSet::new(),
            netlink: Default::default(),
            fit: Ok(()),
            upstream: Announce::Withdraw,
            upstream_attrs: Default::default(),
            door_sources: BTreeSet::new(),
        };
        let prev = self.previous.take().unwrap_or(empty);
        // 0. Sources let through the doors: before anything else, so that
        // a new peer's connections and BFD are never dropped.
        self.list_sources(&next.door_sources, false);
        // 1. New peers, then trust.
        for key in next.peers.difference(&prev.peers) {
            let Some(id) = self.allocate(key) else {
                self.error(format!(
                    "no data-plane peer id left for {} at {} (at most {MAX_PEERS} peers)",
                    key.0, key.1
                ));
                continue;
            };
            let spec = PeerSpec {
                underlay: key.1,
                encap: self.config.encap,
            };
            if let Err(e) = self.outputs.dataplane.set_peer(id, spec) {
                self.error(format!("adding peer {} at {}: {e}", key.0, key.1));
            }
        }
        for (addr, key) in &next.trusted {
            if prev.trusted.get(addr) == Some(key) {
                continue;
            }
            if let Some(id) = self.ids.get(key).copied() {
                if let Err(e) = self.outputs.dataplane.trust(*addr, id) {
                    self.error(format!("trusting {addr} ({}): {e}", key.0));
                }
            }
        }
        // Only now may the overlay tell those peers about our services.
        if prev.trusted.keys().ne(next.trusted.keys()) {
            if let Some(overlay) = &self.outputs.overlay {
                overlay
                    .confirm_trusted(next.trusted.keys().copied().collect())
                    .await;
            }
        }
        // 2. Services that gain or keep their local bit.
        let losing: BTreeSet<u32> = next
            .services
            .iter()
            .filter(|(id, s)| !s.local && prev.services.get(id).is_some_and(|p| p.local))
            .map(|(id, _)| *id)
            .collect();
        for (id, state) in &next.services {
            if losing.contains(id) || prev.services.get(id) == Some(state) {
                continue;
            }
            self.set_service(*id, state, prev.services.get(id));
        }
        // 3. Overlay advertisements.
        if let Some(overlay) = self.outputs.overlay.clone() {
            for vip in next.advertise.difference(&prev.advertise) {
                if let Err(e) = overlay.advertise(*vip).await {
                    self.error(e.to_string());
                } else {
                    self.note(Applied::Advertised {
                        vip: *vip,
                        on: true,
                    });
                }
            }
            for vip in prev.advertise.difference(&next.advertise) {
                overlay.withdraw(*vip).await;
                self.note(Applied::Advertised {
                    vip: *vip,
                    on: false,
                });
            }
        }
        // 4. Services losing their local bit, now that peers were told.
        for id in &losing {
            let state = &next.services[id];
            self.set_service(*id, state, prev.services.get(id));
        }
        // 5. Trust and peers no longer needed.
        for addr in prev.trusted.keys() {
            if !next.trusted.contains_key(addr) {
                if let Err(e) = self.outputs.dataplane.untrust(*addr) {
                    self.error(format!("untrusting {addr}: {e}"));
                }
            }
        }
        for key in prev.peers.difference(&next.peers) {
            if let Some(id) = self.ids.remove(key) {
                if let Err(e) = self.outputs.dataplane.remove_peer(id) {
                    self.error(format!("removing peer {} at {}: {e}", key.0, key.1));
                }
            }
        }
        self.list_sources(&next.door_sources, true);
        // 6. The kernel.
        if prev.netlink != next.netlink {
            if let Some(netlink) = &self.outputs.netlink {
                netlink.set_inputs(next.netlink.clone());
            }
        }
        // 7. Upstream.
        if (prev.upstream, &prev.upstream_attrs) != (next.upstream, &next.upstream_attrs) {
            match &next.fit {
                Ok(()) => tracing::info!(state = ?next.upstream, "control: upstream announcement"),
                Err(why) => {
                    tracing::warn!(state = ?next.upstream, "control: upstream announcement: node not fit: {why}")
                }
            }
            for upstream in &self.outputs.upstream {
                upstream.send_modify(|intent| {
                    for prefix in &self.config.anycast {
                        match next.upstream {
                            Announce::Announce | Announce::Drain => {
                                intent.announce(*prefix, next.upstream_attrs.clone())
                            }
                            Announce::Withdraw => intent.withdraw(*prefix),
                        }
                    }
                });
            }
            self.note(Applied::Upstream(next.upstream));
        }
    }

    fn set_service(
        &mut self,
        id: u32,
        state: &super::decide::ServiceState,
        prev: Option<&super::decide::ServiceState>,
    ) {
        let Some(service) = self.config.services.iter().find(|s| s.id == id) else {
            return;
        };
        // Only the local bit changed: flip the flag, leave the Maglev
        // table alone (rewriting it costs milliseconds).
        if let Some(prev) = prev.filter(|p| p.backends == state.backends) {
            if prev.local != state.local {
                match self
                    .outputs
                    .dataplane
                    .set_local_health(&service.matches, state.local)
                {
                    Ok(()) => {
                        self.note(Applied::LocalBit {
                            service: id,
                            up: state.local,
                        });
                        tracing::info!(service = %service.name, up = state.local, "control: local bit");
                    }
                    Err(e) => self.error(format!("service {}: {e}", service.name)),
                }
            }
            return;
        }
        let backends = state
            .backends
            .iter()
            .filter_map(|key| {
                self.ids.get(key).map(|peer| ServiceBackend {
                    peer: *peer,
                    identity: format!("{}@{}", key.0, key.1),
                    weight: 1,
                })
            })
            .collect();
        let spec = ServiceSpec {
            id,
            matches: service.matches.clone(),
            local_healthy: state.local,
            drop_when_unavailable: service.drop_when_unavailable,
            backends,
        };
        match self.outputs.dataplane.set_service(&spec) {
            Ok(()) => {
                if prev.is_none_or(|p| p.local != state.local) {
                    self.note(Applied::LocalBit {
                        service: id,
                        up: state.local,
                    });
                    tracing::info!(service = %service.name, up = state.local, "control: local bit");
                }
                if prev.is_none_or(|p| p.backends != state.backends) {
                    self.note(Applied::Backends {
                        service: id,
                        count: state.backends.len(),
                    });
                }
            }
            Err(e) => self.error(format!("service {}: {e}", service.name)),
        }
    }

    /// A stable data-plane id for `key`: the one it has, or the lowest
    /// free one.
    fn allocate(&mut self, key: &PeerKey) -> Option<u32> {
        if let Some(id) = self.ids.get(key) {
            return Some(*id);
        }
        let used: BTreeSet<u32> = self.ids.values().copied().collect();
        let id = (0..MAX_PEERS).find(|i| !used.contains(i))?;
        self.ids.insert(key.clone(), id);
        Some(id)
    }
}
