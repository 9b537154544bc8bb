//! The edge agent: the privileged daemon that runs on every edge node.
//!
//! This library holds everything the `edge-agent` binary does, so that tests
//! and tools can drive the same code. So far it owns the data plane (loading
//! the embedded XDP object, attaching and pinning it, reading its counters),
//! the BGP speaker, and the overlay (discovery, mutual TLS, adjacencies, the
//! overlay RIB); health checks, netlink and the control logic join it as
//! their issues land.

pub mod bgp;
pub mod dataplane;
pub mod maglev;
pub mod netns;
pub mod overlay;
