//! The edge agent: the privileged daemon that runs on every edge node.
//!
//! This library holds everything the `edge-agent` binary does, so that tests
//! and tools can drive the same code. So far it owns the data plane (loading
//! the embedded XDP object, attaching and pinning it, reading its counters),
//! the BGP speaker, the overlay (discovery, mutual TLS, adjacencies, the
//! overlay RIB), the netlink reconciler (kernel addresses, routes and
//! neighbours), the health checks, the control logic, the authoritative
//! DNS service, and [`agent`], which assembles one node from them.

pub mod agent;
pub mod authdns;
pub mod bgp;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod health;
pub mod maglev;
pub mod net;
pub mod netlink;
pub mod netns;
pub mod overlay;
