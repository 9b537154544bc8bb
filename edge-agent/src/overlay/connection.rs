//! The overlay's I/O tasks, each thin: the control endpoint (accept, then
//! mutual TLS), dialing a candidate (connect from our underlay address,
//! then mutual TLS), iBGP over one authenticated stream, and probing a
//! peer's private path. They report to the runtime as [`Event`]s and
//! decide nothing themselves.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    net::{TcpListener, TcpSocket, TcpStream},
    sync::{Semaphore, mpsc, watch},
};
use tokio_rustls::TlsStream;

use super::{
    adjacency::ConnId,
    identity::Identity,
    trust::{Authenticated, Refusal, Trust},
};
use crate::bgp::{
    io::{self as session_io, Command, Ended, Feed, Telemetry},
    rib_out::{Origination, RibOut},
    session::{DownReason, Input, Session, SessionConfig},
};

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
    /// A connection to the control endpoint was refused.
    Refused {
        /// From where.
        remote: SocketAddr,
        /// Why.
        refusal: Refusal,
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
    /// iBGP on a connection produced routes or became Established.
    Feed {
        /// With whom.
        peer: Identity,
        /// Which connection.
        conn: ConnId,
        /// What.
        feed: Feed,
    },
    /// iBGP on a connection ended.
    Ended {
        /// With whom.
        peer: Identity,
        /// Which connection.
        conn: ConnId,
        /// Why.
        reason: DownReason,
    },
    /// A probe of a peer's private path ended.
    Probed {
        /// Which peer.
        peer: Identity,
        /// Which address was probed.
        addr: IpAddr,
        /// Whether it answered.
        success: bool,
    },
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
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of descriptors or memory: back off rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
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
                Err(refusal) => Event::Refused { remote, refusal },
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
        let tcp = connect(local, addr, timeout)
            .await
            .map_err(|e| Refusal::Handshake(format!("connecting to {addr}: {e}")))?;
        let (stream, auth) = trust.connect(tcp, &peer).await?;
        Ok((Box::new(stream), auth, addr))
    }
    .await;
    let _ = events.send(Event::Dialed { peer, conn, result }).await;
}

async fn connect(local: IpAddr, addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if local.is_ipv4() == addr.is_ipv4() {
        socket.bind(SocketAddr::new(local, 0))?;
    }
    socket.set_nodelay(true)?;
    match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        )),
    }
}

/// Runs iBGP over one authenticated stream until it ends, forwarding the
/// route feed to the runtime in order, then reports the end.
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
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
) {
    let (feed_tx, mut feed_rx) = mpsc::unbounded_channel();
    let (mut telemetry, _status) = Telemetry::new();
    telemetry.feed = Some(feed_tx);
    let mut session = Session::new(config);
    session.handle(Input::Start, Instant::now());
    while session.poll_action().is_some() {}
    let mut rib = RibOut::default();
    // One connection, one session: the adjacency resolves duplicates
    // before BGP sees them, so nothing ever arrives here.
    let (_no_inbound_tx, mut no_inbound) = mpsc::channel::<Stream>(1);
    let run = session_io::run(
        stream,
        ours,
        &mut no_inbound,
        &mut session,
        &mut rib,
        &origination,
        &mut commands,
        &telemetry,
    );
    tokio::pin!(run);
    let ended = loop {
        tokio::select! {
            ended = &mut run => break ended,
            Some(feed) = feed_rx.recv() => {
                let event = Event::Feed { peer: peer.clone(), conn, feed };
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
    };
    while let Ok(feed) = feed_rx.try_recv() {
        let _ = events
            .send(Event::Feed {
                peer: peer.clone(),
                conn,
                feed,
            })
            .await;
    }
    let reason = match ended {
        Ended::Down(reason) => reason,
        Ended::Collision(_) => DownReason::TransportClosed,
    };
    let _ = events.send(Event::Ended { peer, conn, reason }).await;
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
        let local = local.unwrap_or(if addr.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from([0u16; 8])
        });
        let success = connect(local, target, interval).await.is_ok();
        let event = Event::Probed {
            peer: peer.clone(),
            addr,
            success,
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}

/// Accepts and closes connections on our private address: the liveness
/// listener peers probe the private path with. Nothing is read or sent.
pub async fn private_liveness(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => drop(tcp),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
