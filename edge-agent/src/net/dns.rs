//! The agent's one DNS stub client, used by overlay discovery and the DNS
//! health probe: one question to one server, over UDP from a fresh port of
//! the kernel's choosing with a query ID from the CSPRNG
//! ([`random::u16`]), RD=1 and EDNS ([`EDNS_PAYLOAD`] bytes), asked again
//! over TCP (RFC 1035 section 4.2.2 framing) when the answer is truncated
//! (TC=1). [`exchange`] does the I/O; [`encode`], [`decode`], [`answers`]
//! and [`accept`] are pure.
//!
//! # What counts as the reply
//!
//! A datagram is the reply only if it comes from the server's address and
//! port, carries the query's ID and QR=1, has opcode QUERY, and asks
//! exactly the question asked (the name without regard to case, the type
//! and the class). Anything else — a forgery by an off-path attacker, who
//! must guess the ID and the port, a late answer to an earlier query, a
//! malformed datagram — is ignored and the wait goes on until the timeout,
//! whose error says what was ignored last. Over TCP the connection is the
//! server's, and a reply that is not the answer is an error.
//!
//! # Bounds
//!
//! The header's counts are checked against the bytes before hickory
//! allocates for them; at most [`Limits::max_records`] records are
//! accepted; hickory refuses names over 255 bytes, labels over 63 and
//! compression-pointer loops; [`Limits::timeout`] bounds UDP and TCP
//! together. Nothing from the wire panics.
//!
//! The response code is the caller's to judge: NXDOMAIN is "no candidates"
//! to discovery and may be what a health probe expects.

use std::{
    fmt,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UdpSocket,
    time::{Instant, timeout_at},
};
use tracing::debug;

use super::{random, tcp};

/// The most resource records (answer, authority and additional sections
/// together) accepted in one response by default.
pub const MAX_RECORDS: usize = 1024;

/// The UDP payload size announced with EDNS (the DNS flag day 2020 value,
/// which avoids IP fragmentation).
pub const EDNS_PAYLOAD: u16 = 1232;

/// The length of a DNS header.
const HEADER: usize = 12;

/// How long and how much an [`exchange`] may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The whole exchange: UDP, and TCP after a truncated answer.
    pub timeout: Duration,
    /// The most records accepted in a response ([`MAX_RECORDS`]).
    pub max_records: usize,
}

impl Limits {
    /// An exchange bounded by `timeout`, accepting [`MAX_RECORDS`] records.
    pub fn new(timeout: Duration) -> Limits {
        Limits {
            timeout,
            max_records: MAX_RECORDS,
        }
    }
}

/// The transport of one step of an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A datagram.
    Udp,
    /// A TCP connection.
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        })
    }
}

/// Why bytes are not a DNS message the client can use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not a well-formed DNS message.
    #[error("{0}")]
    Malformed(String),
    /// More records than [`Limits::max_records`].
    #[error("the response has {count} records, more than the {max} accepted")]
    TooManyRecords {
        /// How many the header announces.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Why a message is not the reply to the query sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// It came from another address or port than the server's.
    #[error("a datagram from {0}, not from the server")]
    Source(SocketAddr),
    /// Shorter than a DNS header.
    #[error("a {0}-byte message, shorter than a DNS header")]
    Short(usize),
    /// It carries another ID.
    #[error("an answer with ID {got}, not {want}")]
    Id {
        /// The ID it carries.
        got: u16,
        /// The query's ID.
        want: u16,
    },
    /// It is a query (QR=0).
    #[error("a query (QR=0), not an answer")]
    NotAResponse,
    /// It does not decode.
    #[error("a malformed message: {0}")]
    Malformed(DecodeError),
    /// Its opcode is not QUERY.
    #[error("an unrelated answer: its opcode is {0}, not QUERY")]
    OpCode(String),
    /// It asks another question.
    #[error("an unrelated answer: it answers {0}")]
    Question(String),
    /// It has no question, or several.
    #[error("an unrelated answer: it has {0} questions, not 1")]
    Questions(usize),
}

/// Why an [`exchange`] gave no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The query cannot be put on the wire (a name hickory cannot encode).
    #[error("cannot encode the query: {0}")]
    Encode(String),
    /// No socket can be opened (out of descriptors, no such family).
    #[error("cannot open a {transport} socket: {reason}")]
    Socket {
        /// Which socket.
        transport: Transport,
        /// The system's error.
        reason: String,
    },
    /// The server's address cannot be reached (no route, wrong family).
    #[error("cannot reach it over UDP: {0}; check the server address and the routes")]
    Unreachable(String),
    /// Sending the query failed.
    #[error("cannot send over {transport}: {reason}")]
    Send {
        /// Over what.
        transport: Transport,
        /// The system's error.
        reason: String,
    },
    /// An ICMP port unreachable came back: nothing listens on the port.
    #[error("UDP port unreachable: no DNS server listens on that address and port")]
    PortUnreachable,
    /// Receiving the answer failed.
    #[error("{transport} receive: {reason}")]
    Receive {
        /// Over what.
        transport: Transport,
        /// The system's error.
        reason: String,
    },
    /// The TCP connection was not accepted (after a truncated answer).
    #[error("TCP {0}")]
    Connect(String),
    /// No answer in time.
    #[error("{}", timeout_text(*.transport, *.timeout, .ignored.as_ref()))]
    Timeout {
        /// What was being waited for.
        transport: Transport,
        /// The exchange's timeout.
        timeout: Duration,
        /// The last message ignored while waiting, if any.
        ignored: Option<Mismatch>,
    },
    /// The message that came back over TCP is not the answer.
    #[error("TCP: {0}")]
    NotTheReply(Mismatch),
    /// The answer is truncated over TCP too.
    #[error("truncated answer even over TCP")]
    TruncatedOverTcp,
}

fn timeout_text(transport: Transport, timeout: Duration, ignored: Option<&Mismatch>) -> String {
    let over = match transport {
        Transport::Udp => "",
        Transport::Tcp => " over TCP",
    };
    match ignored {
        Some(why) => format!("no answer{over} within {timeout:?} (ignored {why})"),
        None => format!("no answer{over} within {timeout:?}"),
    }
}

/// The wire form of a query for `question` with `id`: RD=1, EDNS with
/// [`EDNS_PAYLOAD`].
pub fn encode(id: u16, question: &Query) -> Result<Vec<u8>, DnsError> {
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    let mut message = Message::new();
    message
        .set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(question.clone())
        .set_edns(edns);
    message
        .to_vec()
        .map_err(|e| DnsError::Encode(e.to_string()))
}

/// Decodes a DNS message, refusing headers that claim more than the bytes
/// can hold (before hickory allocates for them) or more than
/// `max_records` records.
pub fn decode(bytes: &[u8], max_records: usize) -> Result<Message, DecodeError> {
    let Some(counts) = bytes.get(4..HEADER) else {
        return Err(DecodeError::Malformed(format!(
            "{} bytes, shorter than a DNS header ({HEADER} bytes)",
            bytes.len()
        )));
    };
    let count = |i: usize| usize::from(u16::from_be_bytes([counts[i], counts[i + 1]]));
    let questions = count(0);
    let records = count(2) + count(4) + count(6);
    // A question is at least 5 bytes (root name, type, class), a record 11.
    let body = bytes.len() - HEADER;
    if questions * 5 + records * 11 > body {
        return Err(DecodeError::Malformed(format!(
            "the header announces {questions} questions and {records} records, \
             which cannot fit in the {body} bytes that follow"
        )));
    }
    if records > max_records {
        return Err(DecodeError::TooManyRecords {
            count: records,
            max: max_records,
        });
    }
    Message::from_vec(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// Whether `message` is a response to exactly `question` (the ID aside,
/// which only the sender of the query can check).
pub fn answers(message: &Message, question: &Query) -> Result<(), Mismatch> {
    if message.message_type() != MessageType::Response {
        return Err(Mismatch::NotAResponse);
    }
    if message.op_code() != OpCode::Query {
        return Err(Mismatch::OpCode(format!("{:?}", message.op_code())));
    }
    match message.queries() {
        // hickory compares names without regard to case.
        [q] if q.name() == question.name()
            && q.query_type() == question.query_type()
            && q.query_class() == question.query_class() =>
        {
            Ok(())
        }
        [q] => Err(Mismatch::Question(format!(
            "{} {} {}",
            q.name(),
            q.query_class(),
            q.query_type()
        ))),
        qs => Err(Mismatch::Questions(qs.len())),
    }
}

/// `bytes` as the reply to our query `id` for `question`; why not. Cheap
/// checks first, so unrelated datagrams cost little.
pub fn accept(
    bytes: &[u8],
    id: u16,
    question: &Query,
    max_records: usize,
) -> Result<Message, Mismatch> {
    let Some(header) = bytes.get(..HEADER) else {
        return Err(Mismatch::Short(bytes.len()));
    };
    let got = u16::from_be_bytes([header[0], header[1]]);
    if got != id {
        return Err(Mismatch::Id { got, want: id });
    }
    if header[2] & 0x80 == 0 {
        return Err(Mismatch::NotAResponse);
    }
    let message = decode(bytes, max_records).map_err(Mismatch::Malformed)?;
    answers(&message, question)?;
    Ok(message)
}

/// [`accept`] for a datagram that came from `from`, the query having gone
/// to `server`.
pub fn accept_datagram(
    server: SocketAddr,
    from: SocketAddr,
    bytes: &[u8],
    id: u16,
    question: &Query,
    max_records: usize,
) -> Result<Message, Mismatch> {
    // Address and port only: the kernel may report a scope or flow label
    // the configured address does not have.
    if from.ip() != server.ip() || from.port() != server.port() {
        return Err(Mismatch::Source(from));
    }
    accept(bytes, id, question, max_records)
}

/// Asks `server` `question`: over UDP, then over TCP if the answer is
/// truncated, all within `limits.timeout`. The answer is returned whatever
/// its response code.
pub async fn exchange(
    server: SocketAddr,
    question: &Query,
    limits: Limits,
) -> Result<Message, DnsError> {
    let deadline = Instant::now() + limits.timeout;
    let message = exchange_udp(server, question, limits, deadline).await?;
    if !message.truncated() {
        return Ok(message);
    }
    debug!(%server, name = %question.name(), "truncated answer over UDP, asking over TCP");
    timeout_at(deadline, exchange_tcp(server, question, limits, deadline))
        .await
        .unwrap_or(Err(DnsError::Timeout {
            transport: Transport::Tcp,
            timeout: limits.timeout,
            ignored: None,
        }))
}

async fn exchange_udp(
    server: SocketAddr,
    question: &Query,
    limits: Limits,
    deadline: Instant,
) -> Result<Message, DnsError> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| DnsError::Socket {
        transport: Transport::Udp,
        reason: e.to_string(),
    })?;
    // Connected: the kernel drops datagrams from elsewhere and reports an
    // ICMP port unreachable as a refused receive.
    socket
        .connect(server)
        .await
        .map_err(|e| DnsError::Unreachable(e.to_string()))?;
    let id = random::u16();
    socket
        .send(&encode(id, question)?)
        .await
        .map_err(|e| DnsError::Send {
            transport: Transport::Udp,
            reason: e.to_string(),
        })?;
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    let mut ignored = None;
    loop {
        let (len, from) = match timeout_at(deadline, socket.recv_from(&mut buf)).await {
            Ok(Ok(received)) => received,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(DnsError::PortUnreachable);
            }
            Ok(Err(e)) => {
                return Err(DnsError::Receive {
                    transport: Transport::Udp,
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                return Err(DnsError::Timeout {
                    transport: Transport::Udp,
                    timeout: limits.timeout,
                    ignored,
                });
            }
        };
        match accept_datagram(server, from, &buf[..len], id, question, limits.max_records) {
            Ok(message) => return Ok(message),
            Err(why) => {
                debug!(%server, "ignored a UDP datagram: {why}");
                ignored = Some(why);
            }
        }
    }
}

async fn exchange_tcp(
    server: SocketAddr,
    question: &Query,
    limits: Limits,
    deadline: Instant,
) -> Result<Message, DnsError> {
    let id = random::u16();
    let query = encode(id, question)?;
    let len = u16::try_from(query.len()).map_err(|_| {
        DnsError::Encode(format!(
            "{} bytes, more than a DNS message over TCP can hold",
            query.len()
        ))
    })?;
    let socket = tcp::socket_for(server).map_err(|e| DnsError::Socket {
        transport: Transport::Tcp,
        reason: e.to_string(),
    })?;
    let left = deadline.saturating_duration_since(Instant::now());
    let mut stream = tcp::connect(socket, None, server, left)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => DnsError::Timeout {
                transport: Transport::Tcp,
                timeout: limits.timeout,
                ignored: None,
            },
            _ => DnsError::Connect(tcp::connect_error(&e)),
        })?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(&query);
    stream
        .write_all(&framed)
        .await
        .map_err(|e| DnsError::Send {
            transport: Transport::Tcp,
            reason: e.to_string(),
        })?;
    let receive = |e: std::io::Error| DnsError::Receive {
        transport: Transport::Tcp,
        reason: e.to_string(),
    };
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(receive)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).await.map_err(receive)?;
    let message =
        accept(&answer, id, question, limits.max_records).map_err(DnsError::NotTheReply)?;
    if message.truncated() {
        return Err(DnsError::TruncatedOverTcp);
    }
    Ok(message)
}

#[cfg(test)]
#[path = "dns_tests.rs"]
mod tests;
