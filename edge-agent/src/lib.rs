//! The edge agent: the privileged daemon that runs on every edge node.
//!
//! This library holds everything the `edge-agent` binary does, so that
//! tests and tools can drive the same code. It owns:
//!
//! - the data plane ([`dataplane`]): loading the embedded XDP object,
//!   attaching and pinning it, filling its maps (with the [`maglev`]
//!   tables) and reading its counters;
//! - BFD ([`bfd`]): sub-second detection of dead paths to upstream
//!   routers and overlay peers;
//! - the BGP speaker ([`bgp`]): the upstream sessions, and the iBGP the
//!   overlay speaks;
//! - the overlay between edge nodes ([`overlay`]): discovery, mutual TLS,
//!   adjacencies and the overlay RIB;
//! - the netlink reconciler ([`netlink`]): the kernel's addresses, routes
//!   and neighbours;
//! - the health checks ([`health`]) and the control logic that decides
//!   from them what the node serves and announces ([`control`]);
//! - the authoritative DNS service ([`authdns`]);
//! - the network helpers the protocols share ([`net`]) and entering a
//!   network namespace ([`netns`]);
//! - [`agent`], which assembles one node from these;
//! - the daemon around it: its config file ([`config`]), and its admin
//!   API, status, metrics and life ([`daemon`]).

pub mod agent;
pub mod authdns;
pub mod bfd;
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
