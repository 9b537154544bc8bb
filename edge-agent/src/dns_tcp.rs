//! DNS over TCP, the transport part only (RFC 1035 section 4.2.2: each
//! message preceded by its two-byte length), shared by overlay discovery
//! and the DNS health probe, which build and check the messages
//! themselves.

use std::{fmt, io, net::SocketAddr};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Which step of a TCP exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Connecting.
    Connect,
    /// Sending the query.
    Send,
    /// Receiving the answer.
    Receive,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Connect => "connect",
            Step::Send => "send",
            Step::Receive => "receive",
        })
    }
}

/// Sends `query` (one DNS message) to `server` over a new TCP connection
/// and returns the one message that comes back.
pub async fn exchange(server: SocketAddr, query: &[u8]) -> Result<Vec<u8>, (Step, io::Error)> {
    let len = u16::try_from(query.len()).map_err(|_| {
        (
            Step::Send,
            io::Error::new(io::ErrorKind::InvalidInput, "the query is too long"),
        )
    })?;
    let mut stream = TcpStream::connect(server)
        .await
        .map_err(|e| (Step::Connect, e))?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream
        .write_all(&framed)
        .await
        .map_err(|e| (Step::Send, e))?;
    let mut len = [0u8; 2];
    stream
        .read_exact(&mut len)
        .await
        .map_err(|e| (Step::Receive, e))?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream
        .read_exact(&mut answer)
        .await
        .map_err(|e| (Step::Receive, e))?;
    Ok(answer)
}
