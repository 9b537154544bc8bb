//! A whole edge node ([`edge_agent::agent::Agent`]) on its own thread and
//! runtime inside a namespace, with its status channels handed to the
//! test, and stopped (in the agent's safe order) on drop.

use std::{thread::JoinHandle, time::Instant};

use edge_agent::{
    agent::{Agent, AgentConfig},
    bgp::speaker::Status,
    control::runtime::{Applied, ControlStatus},
    health::{AdminState, HealthEvent, HealthMap},
    overlay::status::OverlayStatus,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::netns::{Netns, runtime_in};

enum Request {
    Drain(bool),
    Admin(String, AdminState),
}

/// A running node.
pub struct NodeAgent {
    /// The overlay's status.
    pub overlay: watch::Receiver<OverlayStatus>,
    /// The control loop's status.
    pub control: watch::Receiver<ControlStatus>,
    /// The health checks.
    pub health: watch::Receiver<HealthMap>,
    /// Upstream neighbours.
    pub upstream: Vec<watch::Receiver<Status>>,
    /// Changes the control loop applies, from the start.
    pub applied: broadcast::Receiver<(Applied, Instant)>,
    /// Health transitions, from the start.
    pub health_events: mpsc::Receiver<HealthEvent>,
    requests: mpsc::UnboundedSender<Request>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl NodeAgent {
    /// Starts a node with `config` inside `ns`; panics if it cannot.
    pub fn start(ns: &Netns, config: AgentConfig) -> NodeAgent {
        let name = ns.name().to_owned();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let (requests, mut requests_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = runtime_in(&name);
            runtime.block_on(async move {
                let mut agent = match Agent::start(config).await {
                    Ok(agent) => agent,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let events = agent.health.events().expect("health events, once");
                let _ = ready_tx.send(Ok((
                    agent.overlay.status(),
                    agent.control.status.clone(),
                    agent.health.status(),
                    agent.upstream.clone(),
                    agent.control.applied.subscribe(),
                    events,
                )));
                let mut stop_rx = stop_rx;
                loop {
                    tokio::select! {
                        request = requests_rx.recv() => match request {
                            Some(Request::Drain(on)) => agent.drain(on),
                            Some(Request::Admin(service, admin)) => {
                                agent.set_admin(&service, admin).expect("a known service");
                            }
                            None => break,
                        },
                        _ = &mut stop_rx => break,
                    }
                }
                agent.stop().await;
            });
        });
        let (overlay, control, health, upstream, applied, health_events) = ready
            .recv()
            .expect("the node's thread")
            .unwrap_or_else(|e| panic!("the node did not start: {e}"));
        NodeAgent {
            overlay,
            control,
            health,
            upstream,
            applied,
            health_events,
            requests,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Drains the node, or ends the drain.
    pub fn drain(&self, on: bool) {
        let _ = self.requests.send(Request::Drain(on));
    }

    /// Sets a service's admin state.
    pub fn set_admin(&self, service: &str, admin: AdminState) {
        let _ = self.requests.send(Request::Admin(service.into(), admin));
    }

    /// Stops the node (withdraw upstream, leave the overlay, clean up).
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for NodeAgent {
    fn drop(&mut self) {
        self.end();
    }
}
