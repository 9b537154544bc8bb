//! The TCP probe: a connection to an address and port must be accepted
//! (within the service's timeout); it is closed at once.

use std::{io, net::SocketAddr};

use tokio::net::TcpStream;

use super::probe::Outcome;

/// Connect to `addr`; healthy iff the connection is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpProbe {
    /// The address and port to connect to.
    pub addr: SocketAddr,
}

impl TcpProbe {
    /// A probe of `addr`.
    pub fn new(addr: SocketAddr) -> TcpProbe {
        TcpProbe { addr }
    }

    /// Connects once.
    pub(crate) async fn run(&self) -> Outcome {
        match TcpStream::connect(self.addr).await {
            Ok(_stream) => Ok("connected".into()),
            Err(e) => Err(connect_error(&e)),
        }
    }
}

/// Why a connection failed, short: `connect refused`, `connect: …`.
pub(crate) fn connect_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connect refused".into(),
        io::ErrorKind::HostUnreachable => "connect: host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "connect: network unreachable".into(),
        io::ErrorKind::TimedOut => "connect timed out".into(),
        _ => format!("connect: {e}"),
    }
}
