//! Test support shared by every edge test and benchmark.
//!
//! - [`privilege`]: tests that need root fail loudly without it (and always
//!   under `CI=true`); they never skip silently.
//! - [`netns`]: uniquely named network namespaces (tests run in parallel),
//!   veth links between them, running a closure or a command inside one;
//!   removed on drop, so also when a test panics, and reaped when a test
//!   process died without dropping them.
//! - [`pins`]: a private bpffs pin directory per test, removed on drop.
//! - [`bfd`]: BIRD's BFD block and forged BFD packets;
//! - [`daemon`], [`bird`] and [`gobgp`]: real peers started from generated config,
//!   killed on drop.
//! - [`fixture`]: a configured data plane in a namespace (pipeline tests, benchmarks).
//! - [`flood`]: a control endpoint under attack from a rogue namespace
//!   running `edge-flood` (admission tests and benchmarks).
//! - [`packet`]: crafted Ethernet/VLAN/IPv4/IPv6/UDP/TCP frames.
//! - [`speaker`]: the BGP neighbour runner on its own thread, in a namespace.
//! - [`raw`]: hand-made frames out of an interface (packet socket).
//! - [`testrun`]: `BPF_PROG_TEST_RUN` on a program fd: action and output
//!   bytes, and timing against the empty program in the same run.
//! - [`command`]: run a helper command, fail the test with its stderr.
//! - [`counters`]: which data-plane counters a test moved.
//! - [`upstream`]: the ISP–edge link and the edge's eBGP neighbour settings.
//! - [`plan`]: the address plan of the design brief.
//! - [`rng`]: a seeded random source for property tests and workloads.
//! - [`logs`]: log lines captured in memory, for assertions on them.

pub mod agent;
pub mod bfd;
pub mod bird;
pub mod command;
pub mod counters;
pub mod daemon;
pub mod dns;
pub mod fixture;
pub mod flood;
pub mod gobgp;
pub mod http;
pub mod lab;
pub mod logs;
pub mod netns;
pub mod overlay;
pub mod packet;
pub mod pins;
pub mod plan;
pub mod pops;
pub mod privilege;
pub mod raw;
pub mod rng;
pub mod speaker;
pub mod testrun;
pub mod upstream;
