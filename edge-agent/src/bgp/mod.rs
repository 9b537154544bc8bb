//! The BGP speaker. Sans I/O at its core: messages as values
//! ([`message`]), their wire format ([`codec`]) and NOTIFICATION codes
//! ([`notification`]), the session state machine of one connection with
//! time passed in ([`session`]), what we announce ([`rib_out`]), and one
//! neighbour across its connections ([`speaker`]: announcing, End-of-RIB,
//! stopping, collisions). Thin tokio layers around it: the executor that
//! moves a speaker's bytes over any byte stream ([`io`]: TCP to upstream
//! routers, mutual TLS to overlay peers), and the upstream neighbour over
//! TCP ([`neighbor`]: connecting with TCP MD5 ([`md5`]), listening).

pub mod codec;
pub mod io;
pub mod md5;
pub mod message;
pub mod neighbor;
pub mod notification;
pub mod prefix;
pub mod rib_out;
pub mod session;
pub mod speaker;
