//! The authoritative DNS service: the CDN's own zones answered on the DNS
//! service's anycast VIPs, identically at every node, so that BGP (not
//! geo-DNS) picks the PoP that answers.
//!
//! `zone` (zones checked and indexed; `zone_text` reads zone-file text), `answer` (the
//! request path, sans I/O: query bytes in, response bytes out), `rrl`
//! (response-rate limiting per client prefix, time passed in) and
//! `server` (the UDP and TCP sockets around them). The service is a local
//! service like any other: a `[[services]]` entry with its VIPs, ports
//! and a DNS probe decides whether this node serves DNS or forwards it to
//! a peer.

pub mod answer;
pub mod rrl;
pub mod server;
pub mod zone;
mod zone_text;

pub use answer::{Outcome, Reply, Settings, Transport, respond};
pub use rrl::{RateLimit, RateLimiter, Verdict};
pub use server::{DnsConfig, DnsServer, DnsStats, ListenError};
pub use zone::{Zone, ZoneError, ZoneSet};
