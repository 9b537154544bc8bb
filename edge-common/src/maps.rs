//! Keys and values of the data-plane maps, shared byte for byte by the XDP
//! program and the agent.
//!
//! Conventions: every struct is `#[repr(C)]` with explicit padding fields
//! and no implicit padding (asserted below), so its BTF, its size in the
//! kernel and its Rust layout agree. Addresses are stored as 16 bytes in
//! network order with a family tag: IPv6 as is, IPv4 in the first four
//! bytes and zeros after. Ports and other integers are in host order: the
//! program converts when it reads the packet.

/// Address family tag of an IPv4 address.
pub const FAMILY_V4: u8 = 4;
/// Address family tag of an IPv6 address.
pub const FAMILY_V6: u8 = 6;

/// Most services the data plane holds (per-service stats and Maglev slots).
pub const MAX_SERVICES: u32 = 64;
/// Most overlay peers; peer ids are `0..MAX_PEERS`.
pub const MAX_PEERS: u32 = 256;
/// Words of the per-service peer bitmap.
pub const PEER_WORDS: usize = (MAX_PEERS / 64) as usize;
/// Default Maglev table size: the smallest prime ≥ 100 × 64 peers.
pub const DEFAULT_MAGLEV_SIZE: u32 = 6421;
/// Default number of flows the flow table remembers (LRU).
pub const DEFAULT_FLOW_ENTRIES: u32 = 65536;
/// Most egress interfaces the program may redirect to.
pub const MAX_EGRESS: u32 = 64;

/// Flow target meaning "served by this node".
pub const TARGET_LOCAL: u32 = u32::MAX;
/// Maglev slot value meaning "no peer" (an empty table).
pub const NO_PEER: u32 = u32::MAX;

/// An address and its family, as the key of the trusted-source map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AddrKey {
    /// The address (IPv4 in the first 4 bytes).
    pub addr: [u8; 16],
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    /// Zero.
    pub _pad: [u8; 3],
}

/// Key of the service map: destination address, protocol and port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    /// The VIP (IPv4 in the first 4 bytes).
    pub addr: [u8; 16],
    /// Destination port, or 0 for a port-agnostic service.
    pub port: u16,
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    /// IP protocol (6 TCP, 17 UDP).
    pub proto: u8,
}

/// Service flag: the local instance is healthy; new flows are served here.
pub const SERVICE_LOCAL_HEALTHY: u32 = 1 << 0;
/// Service flag: with neither local nor remote capacity, drop instead of
/// passing to the kernel (which would answer with a RST or an ICMP error).
pub const SERVICE_DROP_WHEN_UNAVAILABLE: u32 = 1 << 1;

/// Value of the service map.
///
/// The agent replaces the whole value in one update (hash-map updates are
/// atomic for readers), so the program never sees a table half switched.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// Index of the service (`< MAX_SERVICES`): per-service stats and Maglev slots.
    pub id: u32,
    /// `SERVICE_*` flags.
    pub flags: u32,
    /// Which of the service's two Maglev slots is active (0 or 1).
    pub table: u32,
    /// Peers in the active table; 0 means no remote capacity.
    pub peer_count: u32,
    /// Bitmap of the peers in the active table: a remembered flow keeps its
    /// peer only while the peer's bit is set.
    pub peers: [u64; PEER_WORDS],
}

/// Encapsulation: IP-in-IP (protocol 4 or 41 by inner family).
pub const ENCAP_IPIP: u8 = 0;
/// Encapsulation: GUE (UDP to the configured port, 4-byte GUE header).
pub const ENCAP_GUE: u8 = 1;

/// Value of the peer array (index = peer id).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    /// The peer's underlay address: the outer destination.
    pub addr: [u8; 16],
    /// [`FAMILY_V4`] or [`FAMILY_V6`]; 0 for an unused slot.
    pub family: u8,
    /// [`ENCAP_IPIP`] or [`ENCAP_GUE`].
    pub encap: u8,
    /// Zero.
    pub _pad: [u8; 2],
}

/// Value of the trusted-source map: which peer an outer source belongs to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trusted {
    /// The peer id (for per-peer counters).
    pub peer: u32,
}

/// Config flag: `underlay_v4` is set (IPv4 decapsulation and IPv4 outer headers).
pub const CONFIG_HAS_V4: u32 = 1 << 0;
/// Config flag: `underlay_v6` is set.
pub const CONFIG_HAS_V6: u32 = 1 << 1;

/// Anycast prefixes per family the config holds.
pub const MAX_PREFIXES: usize = 8;

/// The node-wide settings (a one-entry array).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// This node's IPv4 underlay address: outer source, and the outer
    /// destination that is decapsulated.
    pub underlay_v4: [u8; 4],
    /// This node's IPv6 underlay address.
    pub underlay_v6: [u8; 16],
    /// UDP port of GUE; 0 disables GUE decapsulation.
    pub gue_port: u16,
    /// Largest outer packet (IP total length) the underlay carries.
    pub mtu: u16,
    /// `CONFIG_*` flags.
    pub flags: u32,
    /// Entries of one Maglev table (a prime).
    pub maglev_size: u32,
    /// IPv4 anycast prefixes in use (the rest of the arrays is unused).
    pub prefix_count_v4: u32,
    /// IPv6 anycast prefixes in use.
    pub prefix_count_v6: u32,
    /// IPv4 anycast prefixes (network bytes, host bits zero). Only packets to
    /// these prefixes are looked up as services: everything else, such as
    /// BGP or SSH to the node's own addresses, passes without a lookup.
    pub prefixes_v4: [[u8; 4]; MAX_PREFIXES],
    /// Masks of `prefixes_v4`.
    pub masks_v4: [[u8; 4]; MAX_PREFIXES],
    /// IPv6 anycast prefixes.
    pub prefixes_v6: [[u8; 16]; MAX_PREFIXES],
    /// Masks of `prefixes_v6`.
    pub masks_v6: [[u8; 16]; MAX_PREFIXES],
}

/// Key of the flow table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Client address.
    pub src: [u8; 16],
    /// Service address.
    pub dst: [u8; 16],
    /// Client port (0 for fragments).
    pub sport: u16,
    /// Service port (0 for fragments).
    pub dport: u16,
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    /// IP protocol.
    pub proto: u8,
    /// Zero.
    pub _pad: [u8; 2],
}

/// Value of the flow table: where the flow goes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowTarget {
    /// [`TARGET_LOCAL`] or a peer id.
    pub target: u32,
}

/// Per-service packet and byte counters (per CPU, index = service id).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Packets served locally.
    pub local_packets: u64,
    /// Bytes served locally.
    pub local_bytes: u64,
    /// Packets forwarded to a peer.
    pub forwarded_packets: u64,
    /// Bytes forwarded to a peer (before encapsulation).
    pub forwarded_bytes: u64,
    /// Packets received from a peer (decapsulated) for this service.
    pub decap_packets: u64,
    /// Bytes received from a peer (after decapsulation).
    pub decap_bytes: u64,
    /// Packets with neither local nor remote capacity.
    pub unavailable_packets: u64,
}

/// Per-peer packet and byte counters (per CPU, index = peer id).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Packets encapsulated toward the peer.
    pub tx_packets: u64,
    /// Bytes sent to the peer (with the outer headers).
    pub tx_bytes: u64,
    /// Packets from the peer, decapsulated.
    pub rx_packets: u64,
    /// Bytes from the peer (with the outer headers).
    pub rx_bytes: u64,
}

/// Most doors (the agent's own ports the program guards).
pub const MAX_DOORS: usize = 8;
/// Door policy: packets from sources that are not listed are dropped.
pub const DOOR_LISTED_ONLY: u8 = 1;
/// Door policy: from sources that are not listed, TCP SYNs (UDP: every
/// datagram) take a token from the source prefix's bucket, dropped when
/// there is none; other TCP segments pass.
pub const DOOR_RATE_LIMITED: u8 = 2;
/// Most listed door sources.
pub const MAX_DOOR_SOURCES: u32 = 1024;
/// Source prefixes with a bucket at once (least recently used forgotten).
pub const DOOR_BUCKETS: u32 = 16384;

/// One of the agent's own ports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Door {
    /// Destination port (host order).
    pub port: u16,
    /// IP protocol (6 TCP, 17 UDP).
    pub proto: u8,
    /// [`DOOR_LISTED_ONLY`] or [`DOOR_RATE_LIMITED`].
    pub policy: u8,
}

/// The doors (a one-entry array). Only traffic that is not to an anycast
/// prefix meets them; with `count` 0 there are none.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Doors {
    /// Doors in use (the rest of `doors` is unused).
    pub count: u32,
    /// The IPv4 prefix length buckets are kept by.
    pub v4_prefix: u8,
    /// The IPv6 prefix length buckets are kept by.
    pub v6_prefix: u8,
    /// Zero.
    pub _pad: [u8; 2],
    /// Nanoseconds of credit one token costs (10^9 / rate per second).
    pub token_ns: u64,
    /// The most credit a bucket holds (burst × `token_ns`).
    pub burst_ns: u64,
    /// The doors.
    pub doors: [Door; MAX_DOORS],
}

/// Key of the bucket map: a source prefix.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BucketKey {
    /// The source address masked to `len` bits (IPv4 in the first 4 bytes).
    pub addr: [u8; 16],
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    /// The prefix length.
    pub len: u8,
    /// Zero.
    pub _pad: [u8; 2],
}

/// Value of the bucket map (per CPU): the source prefix's credit and what
/// its packets met.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Credit in nanoseconds (see [`Doors::token_ns`]).
    pub credit_ns: u64,
    /// When the credit was last brought up to date (`bpf_ktime_get_ns`).
    pub at_ns: u64,
    /// Packets let through while rate-limited.
    pub admitted: u64,
    /// Packets dropped (over the rate, or to a listed-only door).
    pub dropped: u64,
}

const _: () = {
    use core::mem::size_of;
    assert!(size_of::<Door>() == 4);
    assert!(size_of::<Doors>() == 24 + 4 * MAX_DOORS);
    assert!(size_of::<BucketKey>() == 20);
    assert!(size_of::<Bucket>() == 32);
    assert!(size_of::<AddrKey>() == 20);
    assert!(size_of::<ServiceKey>() == 20);
    assert!(size_of::<Service>() == 16 + 8 * PEER_WORDS);
    assert!(size_of::<Peer>() == 20);
    assert!(size_of::<Config>() == 40 + 2 * MAX_PREFIXES * (4 + 16));
    assert!(size_of::<FlowKey>() == 40);
    assert!(size_of::<ServiceStats>() == 56);
    assert!(size_of::<PeerStats>() == 32);
};

#[cfg(feature = "user")]
mod pod {
    use super::*;

    // SAFETY: every type here is `#[repr(C)]`, made of integers and byte
    // arrays with explicit padding fields (sizes asserted above), so it has
    // no uninitialised bytes and every bit pattern is valid.
    unsafe impl aya::Pod for AddrKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for ServiceKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Service {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Peer {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Trusted {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Config {}
    // SAFETY: as above.
    unsafe impl aya::Pod for FlowKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for FlowTarget {}
    // SAFETY: as above.
    unsafe impl aya::Pod for ServiceStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for PeerStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Door {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Doors {}
    // SAFETY: as above.
    unsafe impl aya::Pod for BucketKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Bucket {}
}
