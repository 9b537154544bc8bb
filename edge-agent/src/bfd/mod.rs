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
