//! The XDP object, built by `build.rs` and embedded in the agent.

/// The eBPF object (ELF with BTF) holding the `edge_xdp` and `edge_pass`
/// programs and their maps, embedded at build time by `build.rs`.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(env!("EDGE_EBPF_OBJECT"));
