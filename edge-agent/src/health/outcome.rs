//! What the probe kinds ([`tcp`](super::tcp), [`http`](super::http),
//! [`dns`](super::dns), [`exec`](super::exec)) share with
//! [`probe`](super::probe), which dispatches to them: what one run saw
//! ([`Outcome`]), why a probe cannot be used ([`ProbeError`]), and how
//! durations and timeouts read. A leaf: it depends on no probe kind, so the
//! kinds depend on it and not on the dispatcher.

use std::{path::PathBuf, time::Duration};

/// What a probe saw: `Ok` with a note when it passed, `Err` with the
/// reason when it failed (before the slow threshold is applied).
pub type Outcome = Result<String, String>;

/// Why a [`ProbeSpec`](super::probe::ProbeSpec) cannot be used.
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

/// The detail of a probe cut off after `timeout`.
pub(crate) fn timed_out(timeout: Duration) -> String {
    format!("timeout after {}", human(timeout))
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
