//! The BGP speaker, sans I/O at its core: messages as values
//! ([`message`]), the session state machine with time passed in
//! ([`session`]), and what we announce and when ([`rib_out`]). The codec
//! and the tokio layer that runs a session over any byte stream (TCP to
//! upstream routers, mutual TLS to overlay peers) join them as issue 4
//! proceeds.

pub mod codec;
pub mod io;
pub mod md5;
pub mod message;
pub mod rib_out;
pub mod session;
