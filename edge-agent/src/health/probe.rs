//! What one probe is and what one run of it says. A [`ProbeSpec`] names a
//! kind ([`TcpProbe`], [`HttpProbe`], [`DnsProbe`], [`ExecProbe`]) and its
//! target; [`ProbeSpec::prepare`] checks it and builds what running it
//! needs (an HTTP client, a parsed DNS name) into a [`Prober`]; each run
//! gives a [`ProbeResult`]. A success slower than the service's slow
//! threshold is a failure ([`classify`]), and a probe that takes longer
//! than the timeout is cut off and fails.

use std::{
    fmt,
    time::{Duration, Instant},
};

pub use super::{dns::DnsProbe, exec::ExecProbe, http::HttpProbe, tcp::TcpProbe};
use super::{
    dns::PreparedDns,
    http::PreparedHttp,
    outcome::{Outcome, ProbeError, human, timed_out},
};

/// One probe of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeSpec {
    /// A TCP connection that must be accepted.
    Tcp(TcpProbe),
    /// An HTTP or HTTPS request whose answer must match.
    Http(HttpProbe),
    /// A DNS query whose answer must match.
    Dns(DnsProbe),
    /// A command that must exit with status 0.
    Exec(ExecProbe),
}

impl fmt::Display for ProbeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeSpec::Tcp(p) => write!(f, "tcp {}", p.addr),
            ProbeSpec::Http(p) => write!(f, "http {}", p.url),
            ProbeSpec::Dns(p) => write!(f, "dns {} {} @{}", p.name, p.record_type, p.server),
            ProbeSpec::Exec(p) => write!(f, "exec `{}`", p.argv.join(" ")),
        }
    }
}

/// What one run of a probe said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    /// Whether it passed: answered as expected, within the timeout, and
    /// not slower than the slow threshold.
    pub ok: bool,
    /// How long it took (up to the timeout, when it timed out).
    pub latency: Duration,
    /// What it saw, or why it failed (`HTTP 503`, `connect refused`,
    /// `timeout after 1 s`, `slow: 1.3 s > 1 s`, `rcode SERVFAIL`,
    /// `exit status 2`).
    pub detail: String,
}

/// A checked probe, ready to run again and again.
#[derive(Debug)]
pub struct Prober {
    description: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Tcp(TcpProbe),
    Http(Box<PreparedHttp>),
    Dns(PreparedDns),
    Exec(ExecProbe),
}

impl ProbeSpec {
    /// Checks this probe and builds what running it needs.
    pub fn prepare(&self) -> Result<Prober, ProbeError> {
        let kind = match self {
            ProbeSpec::Tcp(p) => Kind::Tcp(p.clone()),
            ProbeSpec::Http(p) => Kind::Http(Box::new(p.prepare()?)),
            ProbeSpec::Dns(p) => Kind::Dns(p.prepare()?),
            ProbeSpec::Exec(p) => {
                p.validate()?;
                Kind::Exec(p.clone())
            }
        };
        Ok(Prober {
            description: self.to_string(),
            kind,
        })
    }
}

impl Prober {
    /// What this probe checks (`http http://192.0.2.10/health`).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Runs the probe once, cut off after `timeout`, judging a success
    /// slower than `slow` a failure.
    pub async fn run(&self, timeout: Duration, slow: Duration) -> ProbeResult {
        let start = Instant::now();
        let outcome = match &self.kind {
            // The command kills and reaps its process group itself, and
            // times itself without the clean-up.
            Kind::Exec(p) => {
                let (outcome, ran) = p.run(timeout).await;
                return classify(outcome, ran, slow);
            }
            Kind::Tcp(p) => limit(timeout, p.run(timeout)).await,
            Kind::Http(p) => limit(timeout, p.run()).await,
            Kind::Dns(p) => limit(timeout, p.run(timeout)).await,
        };
        classify(outcome, start.elapsed(), slow)
    }
}

/// `probe`, or a timeout failure after `timeout`.
async fn limit(timeout: Duration, probe: impl Future<Output = Outcome>) -> Outcome {
    tokio::time::timeout(timeout, probe)
        .await
        .unwrap_or_else(|_| Err(timed_out(timeout)))
}

/// The result of a probe that saw `outcome` after `latency`: a failure
/// stays one; a success slower than `slow` becomes a failure.
pub fn classify(outcome: Outcome, latency: Duration, slow: Duration) -> ProbeResult {
    match outcome {
        Err(detail) => ProbeResult {
            ok: false,
            latency,
            detail,
        },
        Ok(note) if latency > slow => ProbeResult {
            ok: false,
            latency,
            detail: format!("slow: {} > {} ({note})", human(latency), human(slow)),
        },
        Ok(note) => ProbeResult {
            ok: true,
            latency,
            detail: note,
        },
    }
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
