//! Bidirectional Forwarding Detection (RFC 5880): sub-second detection
//! of a dead path to an upstream router (single-hop, RFC 5881) or to an
//! overlay peer (multihop, RFC 5883), so that routing stops using it long
//! before a BGP hold timer would.
//!
//! - [`packet`]: the Control packet and its codec, the protocol's named
//!   constants;
//! - [`auth`]: Keyed SHA1 and Meticulous Keyed SHA1;
//! - [`session`]: one session's state machine and timers, sans-IO;
//! - [`endpoint`]: all sessions behind the ports: demultiplexing, and
//!   drops counted by reason, sans-IO;
//! - [`io`]: the tokio executor with the UDP sockets.
//!
//! BFD only tells whether a path is alive; what follows (closing a BGP
//! session, tearing down an adjacency) is its clients' business.

pub mod auth;
pub mod endpoint;
pub mod io;
pub mod packet;
pub mod session;

pub use endpoint::{DropReason, Hop, SessionKey};
pub use io::{Bfd, BfdError, BfdSession, BfdStatus};
pub use session::{SessionConfig, Timers};

/// A client's view of a session for other modules' tests: `name`, with
/// `key`, in `state`, having failed `failures` times.
#[cfg(test)]
pub(crate) fn test_status(
    name: &str,
    key: SessionKey,
    state: packet::State,
    failures: u64,
) -> BfdStatus {
    let config = SessionConfig {
        timers: Timers {
            min_tx: std::time::Duration::from_millis(100),
            min_rx: std::time::Duration::from_millis(100),
            multiplier: 3,
        },
        auth: None,
    };
    let mut session = session::Session::new(config, 1, 1, std::time::Instant::now()).status();
    session.state = state;
    session.counters.failures = failures;
    BfdStatus {
        name: name.into(),
        key,
        session,
        drops: Default::default(),
        send_errors: 0,
    }
}
