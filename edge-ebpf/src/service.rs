//! Service lookup and the forwarding decision: local, a peer, or nobody.
//!
//! A remembered flow keeps its target while that target stays valid (local
//! still healthy, or the peer still in the service's table); otherwise the
//! target is chosen afresh: local when healthy, else the service's Maglev
//! table at the flow hash, and remembered.

use edge_common::{
    maps::{
        FlowKey, FlowTarget, NO_PEER, SERVICE_LOCAL_HEALTHY, Service, ServiceKey, TARGET_LOCAL,
    },
    stats::Counter,
};

use crate::maps::{Attrs, FLOWS, MAGLEV, SERVICES};

/// Where a service packet goes.
pub(crate) enum Target {
    /// This node serves it.
    Local,
    /// Peer with this id serves it.
    Peer(u32),
    /// Nobody can.
    Unavailable,
}

/// The service `flow` is for: exact port first, then port-agnostic.
/// Fragments (port 0) only match port-agnostic services. `key` is scratch
/// memory for the lookup key.
#[inline(always)]
pub(crate) fn lookup(flow: &FlowKey, key: &mut ServiceKey) -> Option<&'static Service> {
    key.addr = flow.dst;
    key.family = flow.family;
    key.proto = flow.proto;
    if flow.dport != 0 {
        key.port = flow.dport;
        if let Some(service) = SERVICES.get_ptr(*key) {
            // SAFETY: a value returned by a map lookup stays valid for the
            // rest of this program run (RCU), which is all the use it gets.
            return Some(unsafe { &*service });
        }
    }
    key.port = 0;
    // SAFETY: as above.
    SERVICES.get_ptr(*key).map(|service| unsafe { &*service })
}

/// Picks the target of a service packet, remembering it in the flow table.
#[inline(always)]
pub(crate) fn choose(
    service: &Service,
    key: &FlowKey,
    maglev_size: u32,
    attrs: &mut Attrs,
) -> Target {
    let local_healthy = service.flags & SERVICE_LOCAL_HEALTHY != 0;
    if let Some(remembered) = FLOWS.get_ptr(key) {
        // SAFETY: a pointer returned by the map lookup is valid for this program run.
        let target = unsafe { (*remembered).target };
        if (target == TARGET_LOCAL && local_healthy)
            || (target != TARGET_LOCAL && in_table(service, target))
        {
            attrs.set(Counter::FlowHit);
            return if target == TARGET_LOCAL {
                Target::Local
            } else {
                Target::Peer(target)
            };
        }
    }
    attrs.set(Counter::FlowMiss);
    let target = if local_healthy {
        TARGET_LOCAL
    } else {
        // The flow hash is computed only here, on a miss that needs a peer.
        match maglev_pick(service, crate::flow::hash(key), maglev_size) {
            Some(peer) => peer,
            None => return Target::Unavailable,
        }
    };
    // A full LRU evicts the least recently used flow; a failed insert only
    // means the next packet chooses again, so the result is not checked.
    let _ = FLOWS.insert(key, FlowTarget { target }, 0);
    if target == TARGET_LOCAL {
        Target::Local
    } else {
        Target::Peer(target)
    }
}

/// The peer at the flow's slot of the service's active Maglev table.
#[inline(always)]
fn maglev_pick(service: &Service, hash: u32, maglev_size: u32) -> Option<u32> {
    if service.peer_count == 0 || maglev_size == 0 {
        return None;
    }
    let table = (service.id * 2 + (service.table & 1)) * maglev_size;
    let peer = *MAGLEV.get(table + hash % maglev_size)?;
    (peer != NO_PEER && in_table(service, peer)).then_some(peer)
}

/// Whether `peer` is in the service's active table.
#[inline(always)]
fn in_table(service: &Service, peer: u32) -> bool {
    let word = (peer / 64) as usize;
    word < service.peers.len() && service.peers[word] & (1u64 << (peer % 64)) != 0
}
