//! The DNS probe: one query (built with hickory-proto) sent over UDP to a
//! server, asked again over TCP when the answer comes back truncated
//! (TC=1); healthy iff the answer has the expected response code (default
//! NOERROR) and, if asked, an answer record with a given value (an
//! address for A and AAAA, the record's text form otherwise, compared
//! without case and trailing dot).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    str::FromStr,
};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RData, RecordType},
};
use tokio::net::UdpSocket;

use super::outcome::{Outcome, ProbeError};
use crate::net::{random, tcp::connect_error};

/// The EDNS payload size advertised.
const EDNS_PAYLOAD: u16 = 1232;

/// Ask `server` for `name` `record_type`; healthy iff the answer matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsProbe {
    /// The DNS server (UDP and TCP).
    pub server: SocketAddr,
    /// The name to ask for.
    pub name: String,
    /// The record type to ask for.
    pub record_type: RecordType,
    /// The response code that counts as healthy (default NOERROR).
    pub expect_rcode: ResponseCode,
    /// A value an answer record must have (`192.0.2.10`, or a name).
    pub expect_answer: Option<String>,
}

impl DnsProbe {
    /// A probe asking `server` for `name` `record_type`, expecting NOERROR.
    pub fn new(server: SocketAddr, name: impl Into<String>, record_type: RecordType) -> DnsProbe {
        DnsProbe {
            server,
            name: name.into(),
            record_type,
            expect_rcode: ResponseCode::NoError,
            expect_answer: None,
        }
    }

    /// Checks the probe and parses its name and expected answer.
    pub(crate) fn prepare(&self) -> Result<PreparedDns, ProbeError> {
        let mut name = Name::from_str(&self.name).map_err(|e| ProbeError::DnsName {
            name: self.name.clone(),
            reason: e.to_string(),
        })?;
        name.set_fqdn(true);
        let expect = match self.expect_answer.as_deref().map(str::trim) {
            None => None,
            Some("") => return Err(ProbeError::EmptyDnsAnswer),
            Some(value) => Some(match value.parse::<IpAddr>() {
                Ok(ip) => Expected::Ip(ip),
                Err(_) => Expected::Text(normalise(value)),
            }),
        };
        Ok(PreparedDns {
            server: self.server,
            question: Query::query(name, self.record_type),
            rcode: self.expect_rcode,
            expect,
        })
    }
}

/// An expected answer value.
#[derive(Clone, Debug)]
enum Expected {
    Ip(IpAddr),
    Text(String),
}

/// A [`DnsProbe`] with its question built.
#[derive(Clone, Debug)]
pub(crate) struct PreparedDns {
    server: SocketAddr,
    question: Query,
    rcode: ResponseCode,
    expect: Option<Expected>,
}

impl PreparedDns {
    /// Asks once (UDP, then TCP if truncated) and judges the answer.
    pub(crate) async fn run(&self) -> Outcome {
        let mut message = self.exchange_udp().await?;
        if message.truncated() {
            message = self.exchange_tcp().await?;
            if message.truncated() {
                return Err("truncated answer even over TCP".into());
            }
        }
        self.judge(&message)
    }

    /// Whether `message` is the answer wanted.
    fn judge(&self, message: &Message) -> Outcome {
        let rcode = message.response_code();
        if rcode != self.rcode {
            return Err(format!("rcode {}", rcode_name(rcode)));
        }
        let answers = message.answers();
        let Some(expected) = &self.expect else {
            return Ok(format!(
                "rcode {}, {} answer{}",
                rcode_name(rcode),
                answers.len(),
                if answers.len() == 1 { "" } else { "s" }
            ));
        };
        let found = answers.iter().any(|r| matches(r.data(), expected));
        if found {
            return Ok(format!("rcode {}, answer found", rcode_name(rcode)));
        }
        let got: Vec<String> = answers.iter().map(|r| r.data().to_string()).collect();
        let want = match expected {
            Expected::Ip(ip) => ip.to_string(),
            Expected::Text(t) => t.clone(),
        };
        Err(if got.is_empty() {
            format!("no answer {want} (no answer records)")
        } else {
            format!("no answer {want} (got {})", got.join(", "))
        })
    }

    async fn exchange_udp(&self) -> Result<Message, String> {
        let local: SocketAddr = match self.server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local)
            .await
            .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
        socket
            .connect(self.server)
            .await
            .map_err(|e| format!("cannot reach it over UDP: {e}"))?;
        let id = random::u16();
        socket
            .send(&self.query(id)?)
            .await
            .map_err(|e| format!("UDP send: {e}"))?;
        let mut buf = vec![0u8; usize::from(u16::MAX)];
        loop {
            // The caller's timeout bounds this loop; a port unreachable
            // from a closed server shows as a refused receive.
            let len = socket.recv(&mut buf).await.map_err(|e| match e.kind() {
                std::io::ErrorKind::ConnectionRefused => "UDP port unreachable".to_string(),
                _ => format!("UDP receive: {e}"),
            })?;
            if let Some(message) = self.reply(&buf[..len], id) {
                return Ok(message);
            }
        }
    }

    async fn exchange_tcp(&self) -> Result<Message, String> {
        let id = random::u16();
        let query = self.query(id)?;
        let buf = crate::dns_tcp::exchange(self.server, &query)
            .await
            .map_err(|(step, e)| match step {
                crate::dns_tcp::Step::Connect => format!("TCP {}", connect_error(&e)),
                step => format!("TCP {step}: {e}"),
            })?;
        self.reply(&buf, id)
            .ok_or_else(|| "TCP: not an answer to the query".to_string())
    }

    /// The wire form of the query with `id`.
    fn query(&self, id: u16) -> Result<Vec<u8>, String> {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        let mut message = Message::new();
        message
            .set_id(id)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .add_query(self.question.clone())
            .set_edns(edns);
        message
            .to_vec()
            .map_err(|e| format!("cannot encode the query: {e}"))
    }

    /// `bytes` as the answer to our query `id`, or `None` for anything
    /// else (a stray or forged datagram, which is ignored).
    fn reply(&self, bytes: &[u8], id: u16) -> Option<Message> {
        let message = Message::from_vec(bytes).ok()?;
        let [question] = message.queries() else {
            return None;
        };
        let ours = message.id() == id
            && message.message_type() == MessageType::Response
            && question.query_type() == self.question.query_type()
            && question.name().to_lowercase() == self.question.name().to_lowercase();
        ours.then_some(message)
    }
}

/// Whether `rdata` has the expected value.
fn matches(rdata: &RData, expected: &Expected) -> bool {
    match (rdata, expected) {
        (RData::A(a), Expected::Ip(ip)) => IpAddr::V4(a.0) == *ip,
        (RData::AAAA(a), Expected::Ip(ip)) => IpAddr::V6(a.0) == *ip,
        (_, Expected::Ip(_)) => false,
        (other, Expected::Text(text)) => normalise(&other.to_string()) == *text,
    }
}

/// Lower case, without surrounding blanks or a trailing dot.
fn normalise(value: &str) -> String {
    value.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `NOERROR`, `SERVFAIL`, `NXDOMAIN`…
pub fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("{other:?}").to_ascii_uppercase(),
    }
}

#[cfg(test)]
#[path = "dns_tests.rs"]
mod tests;
