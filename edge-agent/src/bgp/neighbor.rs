//! One upstream neighbour, for as long as the agent wants it: a
//! [`Speaker`] driven by [`io::drive`](super::io::drive) over TCP
//! connections it opens (with a TCP MD5 key if configured) and the ones
//! the neighbour opens to us ([`listen`]). The speaker decides when to
//! connect, which of two colliding connections survives, and when to try
//! again; what the agent wants announced is its [`Intent`], kept across
//! sessions and announced again on every new one.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
};

use super::{
    io::{self as session_io, Connecting, Links, Telemetry},
    md5,
    rib_out::Origination,
    session::SessionConfig,
    speaker::{Intent, Speaker},
};
use crate::{bfd::BfdSession, net::tcp};

/// How to reach one neighbour and what to tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborConfig {
    /// The session settings.
    pub session: SessionConfig,
    /// The neighbour's address and port (179).
    pub peer: SocketAddr,
    /// Our address to connect from, if it matters.
    pub local: Option<IpAddr>,
    /// TCP MD5 key (RFC 2385), if the neighbour requires one.
    pub md5_key: Option<Vec<u8>>,
    /// Who we are on the session (next hops, eBGP or iBGP).
    pub origination: Origination,
    /// A single-hop BFD session to the neighbour (RFC 5881), if wanted:
    /// when it fails, the BGP session is closed at once.
    pub bfd: Option<crate::bfd::SessionConfig>,
}

impl NeighborConfig {
    /// Where we accept the neighbour's connections: our address toward it
    /// (`local`, else our next hop of its family, which is our underlay
    /// address) on the session's port. `None`: we have no address of the
    /// neighbour's family, and can only connect out.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        let ours = self.local.or(match self.peer {
            SocketAddr::V4(_) => self.origination.next_hop_v4.map(IpAddr::V4),
            SocketAddr::V6(_) => self.origination.next_hop_v6.map(|(a, _)| IpAddr::V6(a)),
        })?;
        Some(SocketAddr::new(ours, self.peer.port()))
    }
}

/// Runs the neighbour until its [`Intent`] says stop (or the intent's
/// sender is dropped): everything withdrawn, the session ended with a
/// Cease. Connections the neighbour opens to us arrive on `inbound` (see
/// [`listen`]); a passive neighbour only uses those, an active one also
/// connects. With a BFD session to the neighbour (`bfd`, for
/// `config.bfd`), the BGP session is closed as soon as BFD finds the path
/// down; the BFD session ends with this function.
pub async fn run(
    config: NeighborConfig,
    mut intent: watch::Receiver<Intent>,
    mut inbound: mpsc::Receiver<TcpStream>,
    telemetry: Telemetry,
    bfd: Option<BfdSession>,
) {
    let mut speaker = Speaker::new(config.session.clone(), config.origination, Instant::now());
    let connect = move || -> Connecting<TcpStream> { Box::pin(connect(config.clone())) };
    let mut liveness = bfd.map(|b| b.status);
    let links = Links {
        connect: Some(&connect),
        inbound: Some(&mut inbound),
        liveness: liveness.as_mut(),
    };
    session_io::drive(&mut speaker, None, links, &mut intent, &telemetry, false).await;
}

/// Accepts BGP connections on `listener` and hands each to the neighbour
/// whose address it comes from (`neighbors`); others, and connections a
/// neighbour has no room for (it is already deciding between several), are
/// closed at once. Connections from addresses that are not neighbours are
/// logged at most once every [`REFUSAL_LOG_EVERY`], with how many there
/// were. TCP MD5 keys must already be set on the listening socket
/// ([`bind`]).
pub async fn listen(listener: TcpListener, neighbors: HashMap<IpAddr, mpsc::Sender<TcpStream>>) {
    let mut logged: Option<Instant> = None;
    let mut unlogged = 0u64;
    loop {
        let (stream, from) = tcp::next_connection(&listener).await;
        let Some(neighbor) = neighbors.get(&from.ip()) else {
            // A reset, not a FIN: nothing of it stays on our side.
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            drop(stream);
            unlogged += 1;
            let now = Instant::now();
            if logged.is_none_or(|at| now.duration_since(at) >= REFUSAL_LOG_EVERY) {
                let local = listener.local_addr().ok();
                tracing::warn!(
                    %from,
                    "upstream BGP: refused {unlogged} connection(s) to {} from addresses that are not configured neighbours, the latest from {from}",
                    local.map_or_else(|| "?".to_owned(), |l| l.to_string()),
                );
                logged = Some(now);
                unlogged = 0;
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        // One slow neighbour must not hold up the others' connections.
        let _ = neighbor.try_send(stream);
    }
}

/// Connections from strangers are logged at most this often.
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// A socket bound on `addr` that accepts the TCP MD5 keys of the
/// neighbours that have one, not listening yet ([`Bound::listen`]): until
/// then the kernel refuses connections instead of completing them into a
/// backlog nobody reads, where a neighbour would wait and time out. It
/// binds even before `addr` is configured on an interface (IP_FREEBIND),
/// as the agent may start before the network.
pub fn bind(addr: SocketAddr, keys: &[(IpAddr, Vec<u8>)]) -> io::Result<Bound> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    for (peer, key) in keys {
        md5::set_key(&socket, *peer, key).map_err(io::Error::other)?;
    }
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
        socket.set_freebind_v6(true)?;
    } else {
        socket.set_freebind_v4(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(Bound(socket))
}

/// A bound socket for neighbours' connections, see [`bind`].
#[derive(Debug)]
pub struct Bound(socket2::Socket);

impl Bound {
    /// Starts accepting connections (inside a tokio runtime).
    pub fn listen(self) -> io::Result<TcpListener> {
        self.0.listen(64)?;
        TcpListener::from_std(self.0.into())
    }
}

/// Connects to the neighbour, signing with the MD5 key if there is one,
/// from `local` if set.
async fn connect(config: NeighborConfig) -> io::Result<TcpStream> {
    let socket = tcp::socket_for(config.peer)?;
    if let Some(key) = &config.md5_key {
        md5::set_key(&socket, config.peer.ip(), key).map_err(io::Error::other)?;
    }
    tcp::connect(
        socket,
        config.local,
        config.peer,
        config.session.connect_retry,
    )
    .await
}
