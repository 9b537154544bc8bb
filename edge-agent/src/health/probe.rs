//! What one probe is and what one run of it says. A [`ProbeSpec`] names a
//! kind ([`TcpProbe`], [`HttpProbe`], [`DnsProbe`], [`ExecProbe`]) and its
//! target; [`ProbeSpec::prepare`] checks it and builds what running it
//! needs (an HTTP client, a parsed DNS name) into a [`Prober`]; each run
//! gives a [`ProbeResult`]. A success slower than the service's slow
//! threshold is a failure ([`classify`]), and a probe that takes longer
//! than the timeout is cut off and fails.

use std::{
    fmt,
    hash::{BuildHasher, RandomState},
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

pub use super::{dns::DnsProbe, exec::ExecProbe, http::HttpProbe, tcp::TcpProbe};
use super::{dns::PreparedDns, http::PreparedHttp};

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

/// Why a [`ProbeSpec`] cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The URL does not parse.
    #[error("`{url}` is not a URL: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Not an `http` or `https` URL.
    #[error("`{0}` is not an http:// or https:// URL")]
    Scheme(String),
    /// The expected status range is empty or outside 100–599.
    #[error(
        "the expected HTTP status range {lo}..={hi} is empty or outside 100..=599; give, say, 200..=399"
    )]
    StatusRange {
        /// Its start.
        lo: u16,
        /// Its end.
        hi: u16,
    },
    /// The Host header value has characters a header cannot carry.
    #[error("`{0}` cannot be sent as a Host header")]
    HostHeader(String),
    /// The body substring to look for is empty.
    #[error("the expected body substring is empty; leave it out to accept any body")]
    EmptyBodyMatch,
    /// The extra CA file cannot be read or holds no certificate.
    #[error("cannot use the CA file {}: {reason}", path.display())]
    CaFile {
        /// The file given.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// TLS cannot be set up (no root certificates, a bad one).
    #[error("cannot set up TLS for `{url}`: {reason}")]
    Tls {
        /// The URL of the probe.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The HTTP client cannot be built.
    #[error("cannot build the HTTP client for `{url}`: {reason}")]
    Client {
        /// The URL of the probe.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The DNS name to ask for is not a DNS name.
    #[error("`{name}` is not a DNS name: {reason}")]
    DnsName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The expected DNS answer is empty.
    #[error("the expected DNS answer is empty; leave it out to accept any answer")]
    EmptyDnsAnswer,
    /// The command is empty.
    #[error("the command to run is empty: give the program and its arguments")]
    EmptyCommand,
    /// The program name is empty or has a NUL byte.
    #[error("`{0}` cannot be run: a program name must be non-empty and without NUL bytes")]
    BadProgram(String),
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

/// What a probe saw: `Ok` with a note when it passed, `Err` with the
/// reason when it failed (before the slow threshold is applied).
pub type Outcome = Result<String, String>;

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
            Kind::Tcp(p) => limit(timeout, p.run()).await,
            Kind::Http(p) => limit(timeout, p.run()).await,
            Kind::Dns(p) => limit(timeout, p.run()).await,
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

/// The detail of a probe cut off after `timeout`.
pub(crate) fn timed_out(timeout: Duration) -> String {
    format!("timeout after {}", human(timeout))
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

/// A duration for people: `1 s`, `1.5 s`, `250 ms`, `80 µs`.
pub fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        let s = format!("{:.3}", d.as_secs_f64());
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{s} s")
    } else if d >= Duration::from_millis(1) {
        let s = format!("{:.1}", d.as_secs_f64() * 1000.0);
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{s} ms")
    } else {
        format!("{} µs", d.as_micros())
    }
}

/// A random number: SipHash, keyed from the OS's randomness once per
/// thread by the standard library, of a process-wide counter. Good enough
/// for jitter and DNS query IDs; not for secrets.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A random number in `[0, 1)`.
pub(crate) fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
