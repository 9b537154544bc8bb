//! The health-check runtime: one tokio task per service runs rounds of
//! probes (all of a service's probes at once, all must pass; a round starts
//! only after the previous one finished), feeds the round results to the
//! service's [`RiseFall`], and publishes every service's health in a
//! `watch` map and every change as a [`HealthEvent`]. The administrative
//! state is set from outside ([`HealthMonitor::set_admin`]); probes keep
//! running whatever it is.
//!
//! Waits: the service's interval, or its fast interval while a change is
//! suspected, each spread by the jitter; the first round waits a random
//! fraction of the interval (unless `stagger` is off).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use futures_util::future::join_all;
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tracing::{info, warn};

use super::{
    config::{ConfigError, HealthConfig},
    outcome::ProbeError,
    probe::{ProbeResult, ProbeSpec, Prober},
    rise_fall::{AdminState, Effective, Measured, RiseFall, effective},
};
use crate::net::random;

/// How many events wait for the consumer before new ones are dropped (and,
/// once someone took [`HealthMonitor::events`], counted in
/// [`Counters::events_dropped`]; the map stays exact).
pub const EVENT_QUEUE: usize = 1024;

/// The longest service name accepted.
pub const MAX_NAME: usize = 128;

/// A service to check: its name, its probes (all must pass), its timing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceCheck {
    /// The service's name, unique within a monitor.
    pub name: String,
    /// The probes of each round; at least one.
    pub probes: Vec<ProbeSpec>,
    /// Timing and rise/fall counts.
    pub config: HealthConfig,
}

/// Running totals of one service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Rounds run.
    pub rounds: u64,
    /// Rounds in which a probe failed.
    pub failed_rounds: u64,
    /// Probe runs.
    pub probes: u64,
    /// Probe runs that failed (slow ones included).
    pub failed_probes: u64,
    /// Changes of the measured or effective state.
    pub transitions: u64,
    /// Events not delivered because the event queue was full.
    pub events_dropped: u64,
}

/// What is known about one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceHealth {
    /// What the probes say.
    pub measured: Measured,
    /// What the operator says.
    pub admin: AdminState,
    /// What the node acts on: [`effective`]`(measured, admin)`.
    pub effective: Effective,
    /// Whether a change of the measured state is suspected (a streak
    /// toward one is running; probes run at the fast interval).
    pub suspected: bool,
    /// The length of that streak.
    pub streak: u32,
    /// What each probe checks, in order.
    pub probes: Vec<String>,
    /// The results of the last round, in the order of `probes` (empty
    /// before the first round).
    pub last_results: Vec<ProbeResult>,
    /// When the last round's results were all in.
    pub last_round: Option<Instant>,
    /// When the measured or effective state last changed.
    pub last_transition: Option<Instant>,
    /// Running totals.
    pub counters: Counters,
}

/// Every service's health, by name.
pub type HealthMap = BTreeMap<String, ServiceHealth>;

/// What caused a [`HealthEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// A round of probes completed a rise or fall streak.
    Probes,
    /// The administrative state was set.
    Admin,
}

/// A change of a service's measured or effective state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthEvent {
    /// The service.
    pub service: String,
    /// The effective state before.
    pub from: Effective,
    /// The effective state after (equal to `from` when only the measured
    /// state changed, e.g. while administratively down).
    pub to: Effective,
    /// The measured state after.
    pub measured: Measured,
    /// The administrative state after.
    pub admin: AdminState,
    /// What caused the change.
    pub cause: Cause,
    /// When the deciding probe result came in (for [`Cause::Probes`]), or
    /// when the administrative state was set.
    pub at: Instant,
    /// Why: the deciding round's probe results, or the admin change.
    pub detail: String,
}

/// Why a [`HealthMonitor`] cannot start, or cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// Not called within a tokio runtime.
    #[error("the health monitor must be started from within a tokio runtime")]
    NoRuntime,
    /// A service name is empty, too long or has control characters.
    #[error(
        "`{0}` is not a usable service name: give 1 to {MAX_NAME} characters without control characters"
    )]
    BadName(String),
    /// Two services have one name.
    #[error("service `{0}` is listed twice; service names must be unique")]
    Duplicate(String),
    /// A service has no probe.
    #[error("service `{0}` has no probe; give it at least one, or it could never be seen healthy")]
    NoProbes(String),
    /// A service's timing cannot work.
    #[error("service `{service}`: {source}")]
    Config {
        /// The service.
        service: String,
        /// What is wrong.
        #[source]
        source: ConfigError,
    },
    /// A service's probe cannot be used.
    #[error("service `{service}`, probe {probe}: {source}")]
    Probe {
        /// The service.
        service: String,
        /// The probe, as given.
        probe: String,
        /// What is wrong.
        #[source]
        source: ProbeError,
    },
    /// No service has this name.
    #[error("no service is called `{0}`")]
    UnknownService(String),
}

/// The running health checks of a set of services. Dropping it stops
/// them (abandoned commands are killed).
#[derive(Debug)]
pub struct HealthMonitor {
    shared: Arc<Shared>,
    status: watch::Receiver<HealthMap>,
    events: Option<mpsc::Receiver<HealthEvent>>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the monitor and its tasks share.
#[derive(Debug)]
struct Shared {
    /// The rise/fall state and admin state of each service; held while
    /// the map is updated and the event queued, so both agree in order.
    cores: Mutex<BTreeMap<String, Core>>,
    status: watch::Sender<HealthMap>,
    events: mpsc::Sender<HealthEvent>,
    /// Someone took the events' receiver: a full queue is then a
    /// consumer falling behind, worth a warning. Until then (the daemon
    /// never takes it; the map is what it reads) the queue only keeps the
    /// first events for a late subscriber, and dropping later ones is not
    /// news.
    subscribed: AtomicBool,
}

#[derive(Debug)]
struct Core {
    rise_fall: RiseFall,
    admin: AdminState,
}

impl HealthMonitor {
    /// Checks every service and starts probing them, each on its own task
    /// of the current tokio runtime.
    pub fn spawn(services: Vec<ServiceCheck>) -> Result<HealthMonitor, HealthError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| HealthError::NoRuntime)?;
        let mut names = BTreeSet::new();
        let mut prepared = Vec::with_capacity(services.len());
        for service in services {
            let name = service.name.clone();
            if name.trim().is_empty()
                || name.chars().count() > MAX_NAME
                || name.chars().any(char::is_control)
            {
                return Err(HealthError::BadName(name));
            }
            if !names.insert(name.clone()) {
                return Err(HealthError::Duplicate(name));
            }
            if service.probes.is_empty() {
                return Err(HealthError::NoProbes(name));
            }
            service
                .config
                .validate()
                .map_err(|source| HealthError::Config {
                    service: name.clone(),
                    source,
                })?;
            let probers = service
                .probes
                .iter()
                .map(|spec| {
                    spec.prepare().map_err(|source| HealthError::Probe {
                        service: name.clone(),
                        probe: spec.to_string(),
                        source,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            prepared.push((service, probers));
        }

        let mut cores = BTreeMap::new();
        let mut map = HealthMap::new();
        for (service, probers) in &prepared {
            let config = &service.config;
            let rise_fall = RiseFall::new(config.rise, config.fall, config.initial);
            map.insert(
                service.name.clone(),
                ServiceHealth {
                    measured: config.initial,
                    admin: AdminState::Auto,
                    effective: effective(config.initial, AdminState::Auto),
                    suspected: false,
                    streak: 0,
                    probes: probers.iter().map(|p| p.description().to_owned()).collect(),
                    last_results: Vec::new(),
                    last_round: None,
                    last_transition: None,
                    counters: Counters::default(),
                },
            );
            cores.insert(
                service.name.clone(),
                Core {
                    rise_fall,
                    admin: AdminState::Auto,
                },
            );
        }
        let (status_tx, status) = watch::channel(map);
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let shared = Arc::new(Shared {
            cores: Mutex::new(cores),
            status: status_tx,
            events: events_tx,
            subscribed: AtomicBool::new(false),
        });
        let tasks = prepared
            .into_iter()
            .map(|(service, probers)| {
                runtime.spawn(run_service(
                    Arc::clone(&shared),
                    service.name,
                    probers,
                    service.config,
                ))
            })
            .collect();
        Ok(HealthMonitor {
            shared,
            status,
            events: Some(events),
            tasks,
        })
    }

    /// A receiver of the health map, updated after every round and every
    /// admin change.
    pub fn status(&self) -> watch::Receiver<HealthMap> {
        self.status.clone()
    }

    /// The health map now.
    pub fn snapshot(&self) -> HealthMap {
        self.status.borrow().clone()
    }

    /// The stream of events, from the start; `None` after the first call
    /// (there is one consumer). Events are queued up to [`EVENT_QUEUE`];
    /// past that they are dropped and counted, the map stays exact. An
    /// observer's hook (tests, tools): the agent itself reads the map.
    pub fn events(&mut self) -> Option<mpsc::Receiver<HealthEvent>> {
        let events = self.events.take()?;
        self.shared.subscribed.store(true, Ordering::Relaxed);
        Some(events)
    }

    /// Sets the administrative state of service `name`; the map is
    /// updated, and an event sent if the effective state changes, before
    /// this returns. (As with any `watch` sender, do not call it while
    /// holding a `borrow()` of the status on the same thread.)
    pub fn set_admin(&self, name: &str, admin: AdminState) -> Result<(), HealthError> {
        let mut cores = self.shared.lock();
        let core = cores
            .get_mut(name)
            .ok_or_else(|| HealthError::UnknownService(name.to_owned()))?;
        let previous = core.admin;
        let before = effective(core.rise_fall.state(), previous);
        core.admin = admin;
        let measured = core.rise_fall.state();
        let after = effective(measured, admin);
        let at = Instant::now();
        let changed = before != after;
        self.shared.status.send_modify(|map| {
            if let Some(health) = map.get_mut(name) {
                health.admin = admin;
                health.effective = after;
                if changed {
                    health.last_transition = Some(at);
                    health.counters.transitions += 1;
                }
            }
        });
        if previous != admin {
            info!(service = name, %admin, effective = %after, "health: admin state set");
        }
        if changed {
            self.shared.emit(HealthEvent {
                service: name.to_owned(),
                from: before,
                to: after,
                measured,
                admin,
                cause: Cause::Admin,
                at,
                detail: format!("admin {previous} -> {admin}"),
            });
        }
        Ok(())
    }

    /// Stops every service's probes and waits until they have stopped
    /// (commands killed and reaped, or handed to a reaper thread).
    pub async fn stop(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Core>> {
        self.cores.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a round of `service` whose results were all in at `at`;
    /// returns whether a change is now suspected.
    fn record_round(
        &self,
        service: &str,
        probes: &[Prober],
        results: Vec<ProbeResult>,
        at: Instant,
    ) -> bool {
        let ok = results.iter().all(|r| r.ok);
        let mut cores = self.lock();
        let Some(core) = cores.get_mut(service) else {
            return false;
        };
        let before = effective(core.rise_fall.state(), core.admin);
        let transition = core.rise_fall.record(ok, at);
        let measured = core.rise_fall.state();
        let after = effective(measured, core.admin);
        let suspected = core.rise_fall.suspected();
        let streak = core.rise_fall.streak();
        let admin = core.admin;
        let failed = results.iter().filter(|r| !r.ok).count() as u64;
        let detail = transition.map(|t| {
            let shown: Vec<String> = probes
                .iter()
                .zip(&results)
                .filter(|(_, r)| r.ok == ok)
                .map(|(p, r)| format!("{}: {}", p.description(), r.detail))
                .collect();
            format!("{} -> {}: {}", t.from, t.to, shown.join("; "))
        });
        let changed = transition.is_some() || before != after;
        self.status.send_modify(|map| {
            if let Some(health) = map.get_mut(service) {
                health.measured = measured;
                health.effective = after;
                health.suspected = suspected;
                health.streak = streak;
                health.last_round = Some(at);
                health.counters.rounds += 1;
                health.counters.failed_rounds += u64::from(!ok);
                health.counters.probes += results.len() as u64;
                health.counters.failed_probes += failed;
                if changed {
                    health.last_transition = Some(at);
                    health.counters.transitions += 1;
                }
                health.last_results = results;
            }
        });
        if let Some(detail) = detail {
            info!(service, measured = %measured, effective = %after, "health: {detail}");
            self.emit(HealthEvent {
                service: service.to_owned(),
                from: before,
                to: after,
                measured,
                admin,
                cause: Cause::Probes,
                at,
                detail,
            });
        }
        suspected
    }

    /// Queues `event`; counts it if the queue is full and someone reads it.
    fn emit(&self, event: HealthEvent) {
        match self.events.try_send(event) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) if !self.subscribed.load(Ordering::Relaxed) => {
            }
            Err(mpsc::error::TrySendError::Full(event)) => {
                warn!(service = %event.service, "health: event queue full, event dropped");
                self.status.send_modify(|map| {
                    if let Some(health) = map.get_mut(&event.service) {
                        health.counters.events_dropped += 1;
                    }
                });
            }
        }
    }
}

/// Probes one service until aborted.
async fn run_service(shared: Arc<Shared>, name: String, probes: Vec<Prober>, config: HealthConfig) {
    if config.stagger {
        tokio::time::sleep(config.interval.mul_f64(random::unit())).await;
    }
    loop {
        let results = join_all(
            probes
                .iter()
                .map(|p| p.run(config.timeout, config.slow_threshold)),
        )
        .await;
        let at = Instant::now();
        let suspected = shared.record_round(&name, &probes, results, at);
        let wait = if suspected {
            config.fast_interval
        } else {
            config.interval
        };
        tokio::time::sleep(config.jittered(wait, random::unit())).await;
    }
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;
