//! The doors: the agent's own ports on the node's own addresses (BGP,
//! BFD, the overlay's control endpoint). Only traffic that is not to an
//! anycast prefix meets them, and only TCP/UDP to a port the agent set a
//! door on costs more than one array lookup. From a listed source
//! (upstream neighbours, overlay candidates, trusted peers) everything
//! passes. From any other source, a listed-only door drops; a
//! rate-limited door lets TCP SYNs (UDP: every datagram) through while
//! the source prefix's per-CPU bucket has credit, and other TCP
//! segments through always, so that connections once let in work.

use aya_ebpf::{bindings::xdp_action, helpers::bpf_ktime_get_ns, programs::XdpContext};
use edge_common::{
    maps::{
        AddrKey, Bucket, BucketKey, DOOR_LISTED_ONLY, DOOR_RATE_LIMITED, Doors, FAMILY_V4,
        MAX_DOORS,
    },
    stats::Counter,
};

use crate::{
    maps::{DOOR_BUCKETS, DOOR_SOURCES, DOORS, Verdict},
    packet::bytes_at,
    parse::{IPPROTO_TCP, IPPROTO_UDP, L3},
};

/// TCP flags: SYN and ACK.
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;

/// The verdict for `l3` (not to an anycast prefix): a door's, or pass as
/// non-service traffic when it meets no door. Out of line, so the common
/// path's frame stays small.
#[inline(never)]
pub(crate) fn check(ctx: &XdpContext, l3: &L3) -> Verdict {
    let none = Verdict::new(Counter::NonService, xdp_action::XDP_PASS);
    if (l3.proto != IPPROTO_TCP && l3.proto != IPPROTO_UDP) || l3.fragment {
        return none;
    }
    let Some(doors) = DOORS.get(0) else {
        return none;
    };
    if doors.count == 0 {
        return none;
    }
    let Some(ports) = bytes_at::<4>(ctx, l3.l4) else {
        return none;
    };
    let port = u16::from_be_bytes([ports[2], ports[3]]);
    let policy = policy_of(doors, port, l3.proto);
    if policy == 0 {
        return none;
    }
    let Some(source) = source(ctx, l3) else {
        return none;
    };
    // SAFETY: `AddrKey` is `#[repr(C)]`, 20 bytes of integers (asserted in
    // edge-common); the last word is the family byte, then zero padding.
    let listed: AddrKey = unsafe { core::mem::transmute(source) };
    if DOOR_SOURCES.get_ptr(listed).is_some() {
        return Verdict::new(Counter::DoorListed, xdp_action::XDP_PASS);
    }
    let key = prefix_key(source, doors);
    if policy == DOOR_LISTED_ONLY {
        count_drop(&key);
        return Verdict::new(Counter::DoorUnlisted, xdp_action::XDP_DROP);
    }
    if policy != DOOR_RATE_LIMITED {
        return none;
    }
    if l3.proto == IPPROTO_TCP {
        // The flags are the 14th byte of the TCP header.
        let Some(tcp) = bytes_at::<14>(ctx, l3.l4) else {
            return none;
        };
        if tcp[13] & (TCP_SYN | TCP_ACK) != TCP_SYN {
            return Verdict::new(Counter::DoorAdmitted, xdp_action::XDP_PASS);
        }
    }
    if take_token(&key, doors) {
        Verdict::new(Counter::DoorAdmitted, xdp_action::XDP_PASS)
    } else {
        Verdict::new(Counter::DoorRateLimited, xdp_action::XDP_DROP)
    }
}

/// The policy of the door on `port`/`proto`; 0 for none.
#[inline(always)]
fn policy_of(doors: &Doors, port: u16, proto: u8) -> u8 {
    let mut i = 0;
    while i < MAX_DOORS {
        if i as u32 >= doors.count {
            break;
        }
        let door = &doors.doors[i];
        if door.port == port && door.proto == proto {
            return door.policy;
        }
        i += 1;
    }
    0
}

/// The source address as the five words of an [`AddrKey`]: the address
/// (IPv4 in the first word, the rest zero), then the family.
#[inline(always)]
fn source(ctx: &XdpContext, l3: &L3) -> Option<[u32; 5]> {
    if l3.family == FAMILY_V4 {
        let a = bytes_at::<4>(ctx, l3.off + 12)?;
        Some([u32::from_ne_bytes(a), 0, 0, 0, u32::from(l3.family)])
    } else {
        let a = bytes_at::<16>(ctx, l3.off + 8)?;
        // SAFETY: 16 bytes as four words, by value.
        let w: [u32; 4] = unsafe { core::mem::transmute(a) };
        Some([w[0], w[1], w[2], w[3], u32::from(l3.family)])
    }
}

/// The bucket key of `source`: its prefix of the configured length.
#[inline(always)]
fn prefix_key(source: [u32; 5], doors: &Doors) -> BucketKey {
    let v4 = source[4] == u32::from(FAMILY_V4);
    let len = u32::from(if v4 { doors.v4_prefix } else { doors.v6_prefix });
    let words = [
        source[0] & mask(len, 0),
        if v4 { 0 } else { source[1] & mask(len, 1) },
        if v4 { 0 } else { source[2] & mask(len, 2) },
        if v4 { 0 } else { source[3] & mask(len, 3) },
        // Family, then the length, then zero padding (little-endian).
        source[4] | (len << 8),
    ];
    // SAFETY: `BucketKey` is `#[repr(C)]`, 20 bytes of integers (asserted
    // in edge-common), in this order.
    unsafe { core::mem::transmute(words) }
}

/// The mask of word `i` (bits 32i..32i+32) of a `len`-bit prefix, in
/// network order.
#[inline(always)]
fn mask(len: u32, i: u32) -> u32 {
    let bits = len.saturating_sub(32 * i);
    let host = if bits >= 32 {
        u32::MAX
    } else if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    host.to_be()
}

/// Takes a token from the prefix's bucket (made full on first sight).
#[inline(always)]
fn take_token(key: &BucketKey, doors: &Doors) -> bool {
    // SAFETY: no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(bucket) = DOOR_BUCKETS.get_ptr_mut(key) else {
        let fresh = Bucket {
            credit_ns: doors.burst_ns.saturating_sub(doors.token_ns),
            at_ns: now,
            admitted: 1,
            dropped: 0,
        };
        // A full table forgets its least recently used prefix; a failed
        // insert only means the next SYN starts afresh.
        let _ = DOOR_BUCKETS.insert(key, fresh, 0);
        return true;
    };
    // SAFETY: a map pointer valid for this run, this CPU's own slot.
    let b = unsafe { &mut *bucket };
    let credit = b
        .credit_ns
        .saturating_add(now.saturating_sub(b.at_ns))
        .min(doors.burst_ns);
    b.at_ns = now;
    if credit >= doors.token_ns {
        b.credit_ns = credit - doors.token_ns;
        b.admitted += 1;
        true
    } else {
        b.credit_ns = credit;
        b.dropped += 1;
        false
    }
}

/// Counts a dropped packet for the prefix, so the agent can name it.
#[inline(always)]
fn count_drop(key: &BucketKey) {
    match DOOR_BUCKETS.get_ptr_mut(key) {
        // SAFETY: a map pointer valid for this run, this CPU's own slot.
        Some(b) => unsafe { (*b).dropped += 1 },
        None => {
            let fresh = Bucket {
                dropped: 1,
                ..Bucket::default()
            };
            let _ = DOOR_BUCKETS.insert(key, fresh, 0);
        }
    }
}
