//! The overlay's I/O tasks, each thin: the control endpoint (accept, then
//! mutual TLS), dialing a candidate (connect from our underlay address,
//! then mutual TLS), iBGP over one authenticated stream, and probing a
//! peer's private path. They report to the executor as [`Event`]s and
//! decide nothing.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc, watch},
};
use tokio_rustls::TlsStream;

use super::{
    adjacency::ConnId,
    core::OverlayEvent,
    identity::Identity,
    trust::{Authenticated, Refusal, Trust},
};
use crate::{
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

/// Accepts connections on the control endpoint and authenticates them,
/// at most `max_handshakes` at a time (more wait in the kernel's backlog),
/// each bounded by the trust's handshake timeout.
pub async fn listen(
    listener: TcpListener,
    trust: watch::Receiver<Arc<Trust>>,
    max_handshakes: usize,
    events: mpsc::Sender<Event>,
) {
    let slots = Arc::new(Semaphore::new(max_handshakes));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (tcp, remote) = tcp::next_connection(&listener).await;
        let _ = tcp.set_nodelay(true);
        let trust = trust.borrow().clone();
        let events = events.clone();
        tokio::spawn(async move {
            let event = match trust.accept(tcp).await {
                Ok((stream, auth)) => Event::Inbound {
                    stream: Box::new(stream),
                    auth,
                    remote,
                },
                Err(refusal) => Event::Core(OverlayEvent::Refused { remote, refusal }),
            };
            drop(permit);
            let _ = events.send(event).await;
        });
    }
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
    events: mpsc::Sender<Event>,
) {
    let (feed_tx, mut feed_rx) = mpsc::channel(FEED_QUEUE);
    let (mut telemetry, _status) = Telemetry::new();
    telemetry.feed = Some(feed_tx);
    // One connection, one session: the adjacency resolves duplicates
    // before BGP sees them, and owns reconnecting.
    let speaker = Speaker::new(config, origination, Instant::now());
    let mut run = Box::pin(session_io::run_connection(
        stream, ours, speaker, intent, &telemetry,
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
    let reason: DownReason = loop {
        tokio::select! {
            reason = &mut run => break reason,
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
    let _ = events
        .send(Event::Core(OverlayEvent::Ended { peer, conn, reason }))
        .await;
}

/// Probes `addr`:`port` every `interval` until aborted: a TCP connection
/// that opens is a success.
pub async fn probe_private(
    peer: Identity,
    local: Option<IpAddr>,
    addr: IpAddr,
    port: u16,
    interval: Duration,
    events: mpsc::Sender<Event>,
) {
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
}

/// Accepts and closes connections on our private address: the liveness
/// listener peers probe the private path with. Nothing is read or sent.
pub async fn private_liveness(listener: TcpListener) {
    loop {
        drop(tcp::next_connection(&listener).await);
    }
}
