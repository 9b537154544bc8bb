//! The TCP probe: a connection to an address and port must be accepted
//! (within the service's timeout); it is closed at once.

use std::{io, net::SocketAddr, time::Duration};

use super::outcome::{Outcome, timed_out};
use crate::net::tcp::{self, connect_error};

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

    /// Connects once, giving up after `timeout`.
    pub(crate) async fn run(&self, timeout: Duration) -> Outcome {
        let socket =
            tcp::socket_for(self.addr).map_err(|e| format!("cannot open a TCP socket: {e}"))?;
        match tcp::connect(socket, None, self.addr, timeout).await {
            Ok(_stream) => Ok("connected".into()),
            // The same words as a probe cut off by the caller's timeout.
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(timed_out(timeout)),
            Err(e) => Err(connect_error(&e)),
        }
    }
}
