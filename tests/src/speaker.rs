//! The BGP speaker's neighbour runner on its own thread and tokio runtime,
//! inside a test namespace, driven from the test through channels; it can
//! be "crashed" (everything dropped, no NOTIFICATION) to play an agent
//! restart.

use std::{
    thread::JoinHandle,
    time::{Duration, Instant},
};

use edge_agent::{
    bfd::{Bfd, BfdStatus, Hop, SessionKey},
    bgp::{
        io::{Event, Telemetry},
        message::Prefix,
        neighbor::{self, NeighborConfig},
        rib_out::OriginAttrs,
        speaker::{Intent, Status},
    },
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::netns::Netns;

/// A neighbour runner on its own thread and runtime, inside a namespace.
pub struct Speaker {
    /// What the running neighbour is to announce.
    pub intent: watch::Sender<Intent>,
    /// The neighbour's status.
    pub status: watch::Receiver<Status>,
    /// The neighbour's events, from the start.
    pub events: broadcast::Receiver<Event>,
    /// The BFD session to the neighbour, if `config.bfd` asked for one.
    pub bfd: Option<watch::Receiver<BfdStatus>>,
    crash: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Speaker {
    /// Runs a neighbour with `config` inside `ns`, connecting out only.
    pub fn spawn(ns: &Netns, config: NeighborConfig) -> Self {
        Self::spawn_listening(ns, config, None)
    }

    /// Runs a neighbour with `config` inside `ns`; with `listen`, it also
    /// accepts the neighbour's connections on that address (with the MD5
    /// key, if any).
    pub fn spawn_listening(
        ns: &Netns,
        config: NeighborConfig,
        listen: Option<std::net::SocketAddr>,
    ) -> Self {
        let (intent, intent_rx) = watch::channel(Intent::default());
        let (telemetry, status) = Telemetry::new();
        let events = telemetry.events.subscribe();
        let (crash, crash_rx) = oneshot::channel::<()>();
        let name = ns.name().to_owned();
        let (bfd_tx, bfd_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = crate::netns::runtime_in(&name);
            runtime.block_on(async move {
                let bfd = match &config.bfd {
                    Some(bfd) => {
                        let key = SessionKey {
                            peer: config.peer.ip(),
                            local: config.local,
                            hop: Hop::Single,
                        };
                        let session = Bfd::spawn()
                            .add(format!("upstream {}", config.peer.ip()), key, bfd.clone())
                            .await
                            .expect("start the BFD session");
                        let _ = bfd_tx.send(Some(session.status.clone()));
                        Some(session)
                    }
                    None => {
                        let _ = bfd_tx.send(None);
                        None
                    }
                };
                let (inbound, inbound_rx) = mpsc::channel(4);
                if let Some(addr) = listen {
                    let keys: Vec<_> = config
                        .md5_key
                        .iter()
                        .map(|k| (config.peer.ip(), k.clone()))
                        .collect();
                    let listener = neighbor::bind(addr, &keys)
                        .and_then(neighbor::Bound::listen)
                        .expect("listen for the neighbour");
                    let routes = [(config.peer.ip(), inbound)].into_iter().collect();
                    tokio::spawn(neighbor::listen(listener, routes));
                }
                tokio::select! {
                    () = neighbor::run(config, intent_rx, inbound_rx, telemetry, bfd) => {}
                    // A crash: everything is dropped, no NOTIFICATION, the socket just closes.
                    _ = crash_rx => {}
                }
            });
        });
        let bfd = bfd_rx.recv().expect("the speaker's thread started");
        Speaker {
            intent,
            status,
            events,
            bfd,
            crash: Some(crash),
            thread: Some(thread),
        }
    }

    /// Announces `prefix` with `attrs`.
    pub fn announce(&self, prefix: Prefix, attrs: OriginAttrs) {
        self.intent.send_modify(|i| i.announce(prefix, attrs));
    }

    /// Withdraws `prefix`.
    pub fn withdraw(&self, prefix: Prefix) {
        self.intent.send_modify(|i| i.withdraw(prefix));
    }

    /// Withdraws everything and Ceases with `reason`.
    pub fn shutdown(&self, reason: &str) {
        self.intent.send_modify(|i| i.stop(reason));
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
