//! The BGP speaker's neighbour runner on its own thread and tokio runtime,
//! inside a test namespace, driven from the test through channels; it can
//! be "crashed" (everything dropped, no NOTIFICATION) to play an agent
//! restart.

use std::{
    thread::JoinHandle,
    time::{Duration, Instant},
};

use edge_agent::bgp::{
    io::{Command, Status},
    neighbor::{self, NeighborConfig},
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::netns::Netns;

/// A neighbour runner on its own thread and runtime, inside a namespace.
pub struct Speaker {
    /// Commands to the running neighbour.
    pub commands: mpsc::Sender<Command>,
    /// The neighbour's status.
    pub status: watch::Receiver<Status>,
    crash: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Speaker {
    /// Runs a neighbour with `config` inside `ns`.
    pub fn spawn(ns: &Netns, config: NeighborConfig) -> Self {
        let (commands, command_rx) = mpsc::channel(16);
        let (status_tx, status) = watch::channel(Status::default());
        let (crash, crash_rx) = oneshot::channel::<()>();
        let name = ns.name().to_owned();
        let thread = std::thread::spawn(move || {
            edge_agent::netns::enter(&name).unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                tokio::select! {
                    () = neighbor::run(config, command_rx, status_tx) => {}
                    // A crash: everything is dropped, no NOTIFICATION, the socket just closes.
                    _ = crash_rx => {}
                }
            });
        });
        Speaker {
            commands,
            status,
            crash: Some(crash),
            thread: Some(thread),
        }
    }

    /// Waits until `check` holds for the status; panics after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, check: impl Fn(&Status) -> bool) {
        let deadline = Instant::now() + timeout;
        while !check(&self.status.borrow()) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:?}",
                self.status.borrow()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ends the runner abruptly: the connection closes without NOTIFICATION.
    pub fn crash(mut self) {
        let _ = self.crash.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap();
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        if let Some(crash) = self.crash.take() {
            let _ = crash.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
