//! The overlay's I/O tasks, each thin: the control endpoint (accept, then
//! mutual TLS), dialing a candidate (connect from our underlay address,
//! then mutual TLS), iBGP over one authenticated stream, and probing a
//! peer's private path. They report to the executor as [`Event`]s and
//! decide nothing.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
};
use tokio_rustls::TlsStream;

use super::{
    adjacency::ConnId,
    admission::{Admission, Ticket},
    core::OverlayEvent,
    identity::Identity,
    trust::{Authenticated, Refusal, Trust},
};
use crate::{
    bfd::{
        Bfd, BfdSession, BfdStatus, Hop, SessionConfig as BfdSessionConfig, SessionKey, Timers,
        auth::{AuthKey, MAX_KEY_LEN},
        io::next_failure,
    },
    bgp::{
        io::{self as session_io, Feed, Telemetry},
        rib_out::Origination,
        session::{DownReason, SessionConfig},
        speaker::{Intent, Speaker},
    },
    net::tcp,
};

/// UPDATEs of one session waiting to be passed on to the executor. When
/// full, the session stops reading from the peer (see `bgp::io`).
const FEED_QUEUE: usize = 64;

/// An authenticated TLS stream over TCP.
pub type Stream = TlsStream<TcpStream>;

/// What the I/O tasks report to the runtime.
pub enum Event {
    /// A peer connected to the control endpoint and proved its identity.
    Inbound {
        /// The stream.
        stream: Box<Stream>,
        /// Who it is.
        auth: Authenticated,
        /// From where.
        remote: SocketAddr,
    },
    /// A dial ended.
    Dialed {
        /// Toward whom.
        peer: Identity,
        /// Which connection.
        conn: ConnId,
        /// The stream and what the peer proved, or why not.
        result: Result<(Box<Stream>, Authenticated, SocketAddr), Refusal>,
    },
    /// What carries no stream goes to the core as it is (refusals,
    /// sessions' progress, probe results).
    Core(OverlayEvent),
}

/// Accepts connections on the control endpoint and authenticates those
/// that [`Admission`] lets try, each in its own task; the others are
/// closed at once with a reset, so that nothing waits in a queue a flood
/// could fill (see [`super::admission`]).
pub async fn listen(
    listener: TcpListener,
    trust: watch::Receiver<Arc<Trust>>,
    admission: Arc<Mutex<Admission>>,
    events: mpsc::Sender<Event>,
) {
    loop {
        let (tcp, remote) = tcp::next_connection(&listener).await;
        let (admitted, config) = {
            let mut admission = lock(&admission);
            let admitted = admission.admit(remote.ip(), Instant::now());
            (admitted, admission.config().clone())
        };
        let ticket = match admitted {
            Ok(ticket) => ticket,
            Err(_) => {
                // A reset, not a FIN: nothing of it stays on our side.
                let _ = socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let deadlines = ticket.deadlines(&config);
        let slot = Slot {
            admission: admission.clone(),
            ticket: Some(ticket),
        };
        let trust = trust.borrow().clone();
        let events = events.clone();
        tokio::spawn(async move {
            let event = match trust.accept_within(tcp, deadlines).await {
                Ok((stream, auth)) => Event::Inbound {
                    stream: Box::new(stream),
                    auth,
                    remote,
                },
                Err(refusal) => Event::Core(OverlayEvent::Refused { remote, refusal }),
            };
            drop(slot);
            let _ = events.send(event).await;
        });
    }
}

/// A handshake slot, given back when the handshake's task ends, however
/// it ends.
struct Slot {
    admission: Arc<Mutex<Admission>>,
    ticket: Option<Ticket>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            lock(&self.admission).release(ticket);
        }
    }
}

/// The admission state; a panic elsewhere while it was held leaves it
/// consistent (every change is a counter step), so it is used anyway.
pub fn lock(admission: &Mutex<Admission>) -> std::sync::MutexGuard<'_, Admission> {
    admission
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Connects to `addr` from `local` (our underlay address, port chosen by
/// the kernel) and authenticates the peer as `peer`.
pub async fn dial(
    trust: Arc<Trust>,
    peer: Identity,
    conn: ConnId,
    local: IpAddr,
    addr: SocketAddr,
    timeout: Duration,
    events: mpsc::Sender<Event>,
) {
    let result = async {
        let socket = tcp::socket_for(addr)
            .map_err(|e| Refusal::Handshake(format!("connecting to {addr}: {e}")))?;
        let tcp = tcp::connect(socket, Some(local), addr, timeout)
            .await
            .map_err(|e| Refusal::Handshake(format!("connecting to {addr}: {e}")))?;
        let (stream, auth) = trust.connect(tcp, &peer).await?;
        Ok((Box::new(stream), auth, addr))
    }
    .await;
    let _ = events.send(Event::Dialed { peer, conn, result }).await;
}

/// Runs iBGP over one authenticated stream until it ends, announcing
/// what `intent` says, passing the peer's routes on to the executor in
/// order, then reports the end.
#[allow(
    clippy::too_many_arguments,
    reason = "one connection's pieces, moved into its task"
)]
pub async fn run_bgp(
    stream: Stream,
    ours: bool,
    peer: Identity,
    conn: ConnId,
    config: SessionConfig,
    origination: Origination,
    intent: watch::Receiver<Intent>,
    bfd: Option<(Bfd, Timers)>,
    events: mpsc::Sender<Event>,
) {
    let (feed_tx, mut feed_rx) = mpsc::channel(FEED_QUEUE);
    let (mut telemetry, _status) = Telemetry::new();
    telemetry.feed = Some(feed_tx);
    // One connection, one session: the adjacency resolves duplicates
    // before BGP sees them, and owns reconnecting.
    let speaker = Speaker::new(config, origination, Instant::now());
    let mut liveness = match bfd {
        Some((bfd, timers)) => liveness(&stream, &peer, &bfd, timers).await,
        None => None,
    };
    // A second receiver, for the status: the session holds the first.
    let liveness_observer = liveness.as_ref().map(|s| s.status.clone());
    let mut run = Box::pin(session_io::run_connection(
        stream,
        ours,
        speaker,
        intent,
        &telemetry,
        liveness.as_mut().map(|s| &mut s.status),
    ));
    let as_event = |feed| {
        Event::Core(match feed {
            Feed::Established(_) => OverlayEvent::Established {
                peer: peer.clone(),
                conn,
            },
            Feed::Update(update) => OverlayEvent::Update {
                peer: peer.clone(),
                conn,
                update,
            },
        })
    };
    let mut observer = liveness_observer;
    let reason: DownReason = loop {
        tokio::select! {
            reason = &mut run => break reason,
            Some(status) = changed(observer.as_mut()) => {
                let event = OverlayEvent::Liveness { peer: peer.clone(), conn, status: Box::new(status) };
                if events.send(Event::Core(event)).await.is_err() {
                    return;
                }
            }
            Some(feed) = feed_rx.recv() => {
                if events.send(as_event(feed)).await.is_err() {
                    return;
                }
            }
        }
    };
    // The session is over: once its sender is gone, the feed ends.
    drop(run);
    drop(telemetry);
    while let Some(feed) = feed_rx.recv().await {
        if events.send(as_event(feed)).await.is_err() {
            return;
        }
    }
    // BFD's last word (a failure's diagnostic) before the end.
    if let Some(observer) = &observer {
        let status = Box::new(observer.borrow().clone());
        let event = OverlayEvent::Liveness {
            peer: peer.clone(),
            conn,
            status,
        };
        if events.send(Event::Core(event)).await.is_err() {
            return;
        }
    }
    let _ = events
        .send(Event::Core(OverlayEvent::Ended { peer, conn, reason }))
        .await;
}

/// The next status of a BFD session; `None` once it is gone (and then
/// never again: the arm is disabled).
async fn changed(observer: Option<&mut watch::Receiver<BfdStatus>>) -> Option<BfdStatus> {
    let observer = observer?;
    match observer.changed().await {
        Ok(()) => Some(observer.borrow_and_update().clone()),
        Err(_) => std::future::pending().await,
    }
}

/// The label of the TLS exporter (RFC 5705, RFC 8446 §7.5) that keys an
/// adjacency's BFD session.
pub const BFD_EXPORTER_LABEL: &[u8] = b"EXPORTER-edge-overlay-bfd";

/// Starts the multihop BFD session of the adjacency on `stream`, between
/// the two ends of its TCP connection, with Meticulous Keyed SHA1 keyed
/// by the TLS session's exporter: only the authenticated peer can keep
/// the adjacency alive or take it down. `None` (logged) if it cannot
/// start: the adjacency then runs on its hold time alone.
async fn liveness(
    stream: &Stream,
    peer: &Identity,
    bfd: &Bfd,
    timers: Timers,
) -> Option<BfdSession> {
    let (tcp, _) = stream.get_ref();
    let (local, remote) = (tcp.local_addr().ok()?, tcp.peer_addr().ok()?);
    let Some((secret, _)) = bfd_keys(stream) else {
        tracing::warn!(%peer, "overlay BFD with {peer}: no key from the TLS session; the adjacency runs without BFD");
        return None;
    };
    let name = format!("overlay {peer}");
    let session = keyed(bfd, name, remote.ip(), local.ip(), timers, secret).await;
    if let Err(e) = &session {
        tracing::warn!(%peer, "overlay BFD with {peer}: {e}; the adjacency runs without BFD");
    }
    session.ok()
}

/// Starts a multihop session from `local` to `peer`, with Meticulous
/// Keyed SHA1 under `secret` (key ID 1): the overlay's sessions, keyed by
/// an adjacency's TLS session.
async fn keyed(
    bfd: &Bfd,
    name: String,
    peer: IpAddr,
    local: IpAddr,
    timers: Timers,
    secret: [u8; MAX_KEY_LEN],
) -> Result<BfdSession, crate::bfd::BfdError> {
    let key = SessionKey {
        peer,
        local: Some(local),
        hop: Hop::Multi,
    };
    let config = BfdSessionConfig {
        timers,
        auth: Some(AuthKey {
            meticulous: true,
            key_id: 1,
            secret: secret.to_vec(),
        }),
    };
    bfd.add(name, key, config).await
}

/// The label of the TLS exporter that keys the BFD session on a peer's
/// private path.
pub const PRIVATE_BFD_EXPORTER_LABEL: &[u8] = b"EXPORTER-edge-overlay-bfd-private";

/// The two BFD keys of the adjacency on `stream`: its own path, and the
/// private path (each end derives the same from the TLS session).
pub fn bfd_keys(stream: &Stream) -> Option<([u8; MAX_KEY_LEN], [u8; MAX_KEY_LEN])> {
    let export = |label: &[u8]| {
        let out = [0u8; MAX_KEY_LEN];
        match stream {
            TlsStream::Client(s) => s.get_ref().1.export_keying_material(out, label, None),
            TlsStream::Server(s) => s.get_ref().1.export_keying_material(out, label, None),
        }
        .ok()
    };
    Some((
        export(BFD_EXPORTER_LABEL)?,
        export(PRIVATE_BFD_EXPORTER_LABEL)?,
    ))
}

/// BFD on a private path: the executor, the timers, and the key exported
/// from the adjacency's TLS session.
pub type PrivateBfd = (Bfd, Timers, [u8; MAX_KEY_LEN]);

/// Probes `addr`:`port` every `interval` until aborted: a TCP connection
/// that opens is a success. With `bfd` (and our private address `local`),
/// a multihop BFD session runs between the two private addresses too; its
/// failure reports the path down at once.
pub async fn probe_private(
    peer: Identity,
    local: Option<IpAddr>,
    addr: IpAddr,
    port: u16,
    interval: Duration,
    bfd: Option<PrivateBfd>,
    events: mpsc::Sender<Event>,
) {
    let mut session = None;
    if let (Some((bfd, timers, secret)), Some(local)) = (bfd, local) {
        let name = format!("overlay {peer} private");
        match keyed(&bfd, name, addr, local, timers, secret).await {
            Ok(s) => session = Some(s),
            Err(e) => {
                tracing::warn!(%peer, "overlay BFD on the private path to {peer}: {e}; TCP probes alone watch it")
            }
        }
    }
    let mut liveness = session.map(|s| s.status);
    // BFD is watched beside the probes, not between them: a probe of a
    // dead path takes its whole timeout.
    let watching = async {
        let mut failures = liveness
            .as_ref()
            .map_or(0, |s| s.borrow().session.counters.failures);
        loop {
            failures = next_failure(liveness.as_mut(), failures).await;
            let event = Event::Core(OverlayEvent::PrivatePathDown {
                peer: peer.clone(),
                addr,
            });
            if events.send(event).await.is_err() {
                return;
            }
        }
    };
    let probing = async {
        let mut ticks = tokio::time::interval(interval);
        loop {
            ticks.tick().await;
            let target = SocketAddr::new(addr, port);
            let success = match tcp::socket_for(target) {
                Ok(socket) => tcp::connect(socket, local, target, interval).await.is_ok(),
                Err(_) => false,
            };
            let event = Event::Core(OverlayEvent::Probed {
                peer: peer.clone(),
                addr,
                success,
            });
            if events.send(event).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = watching => {}
        () = probing => {}
    }
}

/// Accepts and closes connections on our private address: the liveness
/// listener peers probe the private path with. Nothing is read or sent.
pub async fn private_liveness(listener: TcpListener) {
    loop {
        drop(tcp::next_connection(&listener).await);
    }
}
