//! Types shared by the XDP program (`edge-ebpf`) and the agent (`edge-agent`).
//!
//! This crate owns the binary contract between the two halves of edge: the
//! names of the BPF maps and of the program, and the `#[repr(C)]` layout of
//! every map value. It is `#![no_std]` so that the eBPF object can use it;
//! the `user` feature adds `aya::Pod` implementations for the agent.
//! Nothing else lives here.
#![no_std]

pub mod hash;
pub mod maps;
pub mod stats;

/// Name of the XDP program function inside the object.
pub const PROGRAM_NAME: &str = "edge_xdp";

/// Default bpffs directory under which the agent and `cargo xtask load` pin
/// each interface's program, link and maps (in `<root>/<ifname>/`), so that
/// `bpftool map dump pinned /sys/fs/bpf/edge/<ifname>/<map>` works and the
/// data plane outlives the agent.
pub const DEFAULT_PIN_ROOT: &str = "/sys/fs/bpf/edge";

/// Name of the per-CPU statistics map (and of its pin file).
pub const STATS_MAP: &str = "edge_stats";
/// Name of the node config map (one entry).
pub const CONFIG_MAP: &str = "edge_config";
/// Name of the service map.
pub const SERVICES_MAP: &str = "edge_services";
/// Name of the Maglev tables array (two slots per service).
pub const MAGLEV_MAP: &str = "edge_maglev";
/// Name of the peer array.
pub const PEERS_MAP: &str = "edge_peers";
/// Name of the trusted-source map.
pub const TRUSTED_MAP: &str = "edge_trusted";
/// Name of the flow table (LRU).
pub const FLOWS_MAP: &str = "edge_flows";
/// Name of the egress interfaces the program may redirect to (devmap).
pub const EGRESS_MAP: &str = "edge_egress";
/// Name of the per-service counters.
pub const SERVICE_STATS_MAP: &str = "edge_svc_stats";
/// Name of the per-peer counters.
pub const PEER_STATS_MAP: &str = "edge_peer_stats";

/// Name of the doors map (the agent's own ports; one entry).
pub const DOORS_MAP: &str = "edge_doors";
/// Name of the listed door sources.
pub const DOOR_SOURCES_MAP: &str = "edge_door_sources";
/// Name of the per-source-prefix buckets of the doors (LRU, per CPU).
pub const DOOR_BUCKETS_MAP: &str = "edge_door_buckets";

/// Name of the pass-through XDP program in the same object. It returns
/// `XDP_PASS` and does nothing else: the baseline for timing the real
/// program, and the program the receiving end of a veth needs so that
/// frames sent with `XDP_TX` or redirect arrive in native mode.
pub const PASS_PROGRAM_NAME: &str = "edge_pass";

/// Every map the agent pins (all but the per-CPU scratch memory), by the
/// name it has in the object and in the pin directory.
pub const PINNED_MAPS: &[&str] = &[
    CONFIG_MAP,
    SERVICES_MAP,
    MAGLEV_MAP,
    PEERS_MAP,
    TRUSTED_MAP,
    FLOWS_MAP,
    EGRESS_MAP,
    STATS_MAP,
    SERVICE_STATS_MAP,
    PEER_STATS_MAP,
    DOORS_MAP,
    DOOR_SOURCES_MAP,
    // Pinned too: a restarted agent keeps the prefixes' credit, so a
    // restart is no moment to flood.
    DOOR_BUCKETS_MAP,
];
