//! The DNS probe: one query sent to a server by the agent's stub client
//! ([`crate::net::dns`]: UDP, asked again over TCP when the answer comes
//! back truncated, forged and stray datagrams ignored); healthy iff the
//! answer has the expected response code (default NOERROR) and, if asked,
//! an answer record with a given value (an address for A and AAAA, the
//! record's text form otherwise, compared without case and trailing dot).

use std::{
    net::{IpAddr, SocketAddr},
    str::FromStr,
    time::Duration,
};

use hickory_proto::{
    op::{Message, Query, ResponseCode},
    rr::{Name, RData, RecordType},
};

use super::outcome::{Outcome, ProbeError, timed_out};
use crate::net::dns::{self, DnsError, Limits};

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
    /// Asks once (UDP, then TCP if truncated, within `timeout`) and judges
    /// the answer.
    pub(crate) async fn run(&self, timeout: Duration) -> Outcome {
        let message = dns::exchange(self.server, &self.question, Limits::new(timeout))
            .await
            .map_err(|e| match e {
                // The same words as a probe cut off by the caller's timeout.
                DnsError::Timeout { .. } => timed_out(timeout),
                e => e.to_string(),
            })?;
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
