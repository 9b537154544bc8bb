//! The BGP speaker. Sans I/O at its core: messages as values
//! ([`message`]) and their wire format ([`codec`]), the session state
//! machine with time passed in ([`session`]), what we announce and when
//! ([`rib_out`]). Thin tokio layers around it: one session over any byte
//! stream ([`io`]: TCP to upstream routers, mutual TLS to overlay peers),
//! and one neighbour across sessions ([`neighbor`]: connecting, TCP MD5
//! ([`md5`]), reconnecting).

pub mod codec;
pub mod io;
pub mod md5;
pub mod message;
pub mod neighbor;
pub mod prefix;
pub mod rib_out;
pub mod session;
