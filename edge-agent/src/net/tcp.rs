//! TCP for the executors: a socket of the peer's family, connecting from
//! a chosen local address with a timeout, the words for why a connect
//! failed, and the accept loop's next connection (backing off instead of spinning when the process is out of
//! descriptors or memory).

use std::{
    io,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use tokio::net::{TcpListener, TcpSocket, TcpStream, UnixListener, UnixStream};

/// How long the accept loop waits after a failed accept (EMFILE, ENOMEM).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A socket of `peer`'s family with `TCP_NODELAY` (BGP and the overlay
/// send small messages that must not wait for the peer's delayed ACK).
/// Options such as a TCP MD5 key go on it before [`connect`].
pub fn socket_for(peer: SocketAddr) -> io::Result<TcpSocket> {
    let socket = if peer.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_nodelay(true)?;
    Ok(socket)
}

/// Connects `socket` to `peer`, from `local` when it is of `peer`'s family
/// (port chosen by the kernel), giving up after `timeout`.
pub async fn connect(
    socket: TcpSocket,
    local: Option<IpAddr>,
    peer: SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    if let Some(local) = local.filter(|l| l.is_ipv4() == peer.is_ipv4()) {
        socket.bind(SocketAddr::new(local, 0))?;
    }
    match tokio::time::timeout(timeout, socket.connect(peer)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connecting to {peer} timed out after {timeout:?}"),
        )),
    }
}

/// Why a connection failed, in a few words for a probe's detail or a log
/// line: `connect refused`, `connect: host unreachable`, `connect: …`.
pub fn connect_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connect refused".into(),
        io::ErrorKind::HostUnreachable => "connect: host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "connect: network unreachable".into(),
        io::ErrorKind::TimedOut => "connect timed out".into(),
        _ => format!("connect: {e}"),
    }
}

/// A listener the accept loop can take connections from.
pub trait Listener {
    /// The connection.
    type Stream;
    /// Where it comes from.
    type Addr;
    /// One accept.
    fn accept_once(
        &self,
    ) -> impl std::future::Future<Output = io::Result<(Self::Stream, Self::Addr)>> + Send;
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    type Addr = SocketAddr;
    fn accept_once(
        &self,
    ) -> impl std::future::Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        self.accept()
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    type Addr = tokio::net::unix::SocketAddr;
    fn accept_once(
        &self,
    ) -> impl std::future::Future<Output = io::Result<(UnixStream, Self::Addr)>> + Send {
        self.accept()
    }
}

/// The next connection on `listener`. Accept errors are the process's
/// (out of descriptors or memory), not the peer's: wait a little and try
/// again rather than spin.
pub async fn next_connection<L: Listener>(listener: &L) -> (L::Stream, L::Addr) {
    loop {
        match listener.accept_once().await {
            Ok(accepted) => return accepted,
            Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
        }
    }
}
