//! The overlay between edge nodes. Discovery is not trust: discovery
//! ([`discovery`]) only yields candidates; the control endpoint
//! authenticates each one with mutual TLS against the enterprise CA and an
//! allow-list ([`trust`], lab certificates from [`pki`]); only an explicit,
//! authenticated adjacency ([`adjacency`]) exchanges routes, over iBGP on
//! the TLS stream; what a peer announces passes a strict import filter
//! ([`import`]) into the overlay RIB ([`rib`]); and only then may a
//! private transport toward that peer be used ([`private`]).
//!
//! The policy that ties these together is [`core`], sans I/O; [`runtime`]
//! carries it out with the I/O tasks of [`connection`].

pub mod adjacency;
pub mod admission;
pub mod config;
pub mod connection;
pub mod core;
pub mod discovery;
pub mod identity;
pub mod import;
pub mod pki;
pub mod private;
pub mod rib;
pub mod runtime;
pub mod status;
#[cfg(test)]
mod test_lab;
pub mod trust;
