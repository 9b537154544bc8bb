//! The BPF maps of the program, BTF-defined so that aya and bpftool see the
//! key and value types, and the helpers that bump the counters.
//!
//! Sizes here are the defaults compiled into the object; the agent may
//! resize the Maglev array and the flow table at load time.

use aya_ebpf::{
    bindings::bpf_fib_lookup,
    btf_maps::{Array, DevMapHash, HashMap, LruHashMap, LruPerCpuHashMap, PerCpuArray},
    macros::btf_map,
};
use edge_common::{
    maps::{
        AddrKey, Bucket, BucketKey, Config, DEFAULT_FLOW_ENTRIES, DEFAULT_MAGLEV_SIZE,
        DOOR_BUCKETS as DOOR_BUCKET_ENTRIES, Doors, FlowKey, FlowTarget, MAX_DOOR_SOURCES,
        MAX_EGRESS, MAX_PEERS, MAX_SERVICES, Peer, PeerStats, Service, ServiceKey, ServiceStats,
        Trusted,
    },
    stats::{Counter, FIRST_ATTRIBUTE, Stats},
};

/// Node-wide settings: one entry.
#[btf_map(name = "edge_config")]
pub(crate) static CONFIG: Array<Config, 1> = Array::new();

/// Services by (VIP, port, family, protocol).
#[btf_map(name = "edge_services")]
pub(crate) static SERVICES: HashMap<ServiceKey, Service, { MAX_SERVICES as usize * 4 }> =
    HashMap::new();

/// Maglev tables: two slots per service, `maglev_size` peer ids each.
#[btf_map(name = "edge_maglev")]
pub(crate) static MAGLEV: Array<u32, { (MAX_SERVICES * 2 * DEFAULT_MAGLEV_SIZE) as usize }> =
    Array::new();

/// Overlay peers by id.
#[btf_map(name = "edge_peers")]
pub(crate) static PEERS: Array<Peer, { MAX_PEERS as usize }> = Array::new();

/// Outer source addresses allowed to send encapsulated traffic to this node.
#[btf_map(name = "edge_trusted")]
pub(crate) static TRUSTED: HashMap<AddrKey, Trusted, { MAX_PEERS as usize * 2 }> = HashMap::new();

/// Remembered flow targets (least recently used flows are forgotten first).
#[btf_map(name = "edge_flows")]
pub(crate) static FLOWS: LruHashMap<FlowKey, FlowTarget, { DEFAULT_FLOW_ENTRIES as usize }> =
    LruHashMap::new();

/// Interfaces other than the ingress one that encapsulated packets may be
/// redirected to (by ifindex).
#[btf_map(name = "edge_egress")]
pub(crate) static EGRESS: DevMapHash<{ MAX_EGRESS as usize }> = DevMapHash::new();

/// The agent's own ports the program guards: one entry.
#[btf_map(name = "edge_doors")]
pub(crate) static DOORS: Array<Doors, 1> = Array::new();

/// Sources let through the doors (upstream neighbours, overlay candidates,
/// trusted peers); the value is unused.
#[btf_map(name = "edge_door_sources")]
pub(crate) static DOOR_SOURCES: HashMap<AddrKey, u32, { MAX_DOOR_SOURCES as usize }> =
    HashMap::new();

/// Per source prefix, per CPU: the doors' token bucket and what its
/// packets met (least recently used prefixes are forgotten first).
#[btf_map(name = "edge_door_buckets")]
pub(crate) static DOOR_BUCKETS: LruPerCpuHashMap<
    BucketKey,
    Bucket,
    { DOOR_BUCKET_ENTRIES as usize },
> = LruPerCpuHashMap::new();

/// Global counters: a single entry of named `u64` fields.
#[btf_map(name = "edge_stats")]
static STATS: PerCpuArray<Stats, 1> = PerCpuArray::new();

/// Per-service counters by service id.
#[btf_map(name = "edge_svc_stats")]
static SERVICE_STATS: PerCpuArray<ServiceStats, { MAX_SERVICES as usize }> = PerCpuArray::new();

/// Per-peer counters by peer id.
#[btf_map(name = "edge_peer_stats")]
static PEER_STATS: PerCpuArray<PeerStats, { MAX_PEERS as usize }> = PerCpuArray::new();

/// Per-packet working memory too large for the 512-byte BPF stack.
#[repr(C)]
pub(crate) struct Scratch {
    /// The packet's flow, filled in place from the packet.
    pub(crate) flow: FlowKey,
    /// The service key being looked up.
    pub(crate) service: ServiceKey,
    /// `bpf_fib_lookup` parameters and results.
    pub(crate) fib: bpf_fib_lookup,
    /// When forwarding returns `MtuIcmp` (too big to encapsulate), the
    /// largest inner packet that fits, for the ICMP error.
    pub(crate) icmp_mtu: u32,
}

/// One [`Scratch`] per CPU (a program run never migrates between CPUs).
#[btf_map(name = "edge_scratch")]
static SCRATCH: PerCpuArray<Scratch, 1> = PerCpuArray::new();

/// This CPU's scratch memory.
#[inline(always)]
pub(crate) fn scratch() -> Option<&'static mut Scratch> {
    // SAFETY: the slot is this CPU's own and a program run is not
    // preempted by another run on the same CPU, so nothing else aliases it.
    SCRATCH.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

/// Attribute counters to bump with the outcome: one bit per attribute.
#[derive(Clone, Copy, Default)]
pub(crate) struct Attrs(u32);

impl Attrs {
    /// Marks attribute counter `c`.
    #[inline(always)]
    pub(crate) fn set(&mut self, c: Counter) {
        self.0 |= 1 << (c as u32 - FIRST_ATTRIBUTE);
    }
}

/// Counts one packet: its outcome (a `Counter` index) and its attributes.
#[inline(always)]
pub(crate) fn record(outcome: u32, attrs: Attrs) {
    let Some(stats) = STATS.get_ptr_mut(0) else {
        return;
    };
    let words = stats.cast::<u64>();
    // SAFETY: `Stats` is `#[repr(C)]` and made only of `u64`s (asserted in
    // edge-common), so field `i` is the `i`-th word; every index below is a
    // `Counter` (< Counter::COUNT). The slot is this CPU's own.
    unsafe {
        if (outcome as usize) < Counter::COUNT {
            *words.add(outcome as usize) += 1;
        }
        let mut i = 0;
        while i < Counter::COUNT - FIRST_ATTRIBUTE as usize {
            if attrs.0 & (1 << i) != 0 {
                *words.add(FIRST_ATTRIBUTE as usize + i) += 1;
            }
            i += 1;
        }
    }
}

/// An outcome and an XDP action packed in one register, so that functions
/// kept out of line can return both (BPF returns a single 64-bit value).
#[derive(Clone, Copy)]
pub(crate) struct Verdict(u64);

impl Verdict {
    /// `outcome`, then `action`.
    #[inline(always)]
    pub(crate) fn new(outcome: Counter, action: u32) -> Self {
        Verdict((u64::from(outcome as u32) << 32) | u64::from(action))
    }

    /// The outcome counter.
    #[inline(always)]
    pub(crate) fn outcome(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The XDP action.
    #[inline(always)]
    pub(crate) fn action(self) -> u32 {
        self.0 as u32
    }
}

/// Which per-service counter pair to bump.
pub(crate) enum ServiceCount {
    Local,
    Forwarded,
    Decap,
    Unavailable,
}

/// Counts a packet of `bytes` for service `id`.
#[inline(always)]
pub(crate) fn count_service(id: u32, what: ServiceCount, bytes: usize) {
    let Some(s) = SERVICE_STATS.get_ptr_mut(id) else {
        return;
    };
    let bytes = bytes as u64;
    // SAFETY: a map pointer valid for this run; this CPU's own slot.
    unsafe {
        match what {
            ServiceCount::Local => {
                (*s).local_packets += 1;
                (*s).local_bytes += bytes;
            }
            ServiceCount::Forwarded => {
                (*s).forwarded_packets += 1;
                (*s).forwarded_bytes += bytes;
            }
            ServiceCount::Decap => {
                (*s).decap_packets += 1;
                (*s).decap_bytes += bytes;
            }
            ServiceCount::Unavailable => (*s).unavailable_packets += 1,
        }
    }
}

/// Counts a packet of `bytes` sent to (`tx`) or received from peer `id`.
#[inline(always)]
pub(crate) fn count_peer(id: u32, tx: bool, bytes: usize) {
    let Some(p) = PEER_STATS.get_ptr_mut(id) else {
        return;
    };
    let bytes = bytes as u64;
    // SAFETY: a map pointer valid for this run; this CPU's own slot.
    unsafe {
        if tx {
            (*p).tx_packets += 1;
            (*p).tx_bytes += bytes;
        } else {
            (*p).rx_packets += 1;
            (*p).rx_bytes += bytes;
        }
    }
}
