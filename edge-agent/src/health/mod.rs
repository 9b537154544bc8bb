//! Health checks: every local service advertises its own availability,
//! from explicit, measured signals only; nothing is inferred.
//!
//! - [`probe`]: what one probe is ([`ProbeSpec`]: TCP connect, HTTP(S)
//!   request, DNS query, a command) and what one run of it says
//!   ([`ProbeResult`]), including the rule that a slow success is a
//!   failure; the kinds live in [`tcp`], [`http`], [`dns`] and [`exec`],
//!   and what they share with it (the [`Outcome`](outcome::Outcome) of a
//!   run, [`ProbeError`]) in the leaf [`outcome`], so that they do not
//!   depend on the dispatcher.
//! - [`config`]: the timing of a service's checks ([`HealthConfig`]) and its
//!   validation.
//! - [`rise_fall`]: the pure state machine: `rise` consecutive successful
//!   rounds bring a service up, `fall` consecutive failed ones take it
//!   down; the administrative state ([`AdminState`]) and the effective
//!   health that follows from both ([`Effective`]). Time is passed in.
//! - [`monitor`]: the tokio runtime ([`HealthMonitor`]): one task per
//!   service running rounds of probes, publishing a map of every service's
//!   health and a stream of [`HealthEvent`]s.

pub mod config;
pub mod dns;
pub mod exec;
pub mod http;
pub mod monitor;
pub mod outcome;
pub mod probe;
pub mod rise_fall;
pub mod tcp;

pub use config::{ConfigError, HealthConfig};
pub use http::TlsOptions;
pub use monitor::{
    Cause, Counters, HealthError, HealthEvent, HealthMap, HealthMonitor, ServiceCheck,
    ServiceHealth,
};
pub use outcome::ProbeError;
pub use probe::{DnsProbe, ExecProbe, HttpProbe, ProbeResult, ProbeSpec, Prober, TcpProbe};
pub use rise_fall::{AdminState, Effective, Measured, RiseFall, Transition, effective};
