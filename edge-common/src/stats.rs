//! The global per-CPU statistics of the XDP program.
//!
//! One map entry holds a [`Stats`] struct of named `u64` counters, so that
//! `bpftool map dump` prints every counter by name from BTF. The program
//! increments a counter by its [`Counter`] index (the field's position);
//! the agent reads the per-CPU structs and sums them.
//!
//! Every packet moves exactly one *outcome* counter (what the program did
//! with it and why), and possibly *attribute* counters (such as
//! `vlan_tagged`) that describe it without deciding anything. Outcomes come
//! first in the struct, attributes after [`FIRST_ATTRIBUTE`].

/// Defines [`Stats`], [`Counter`] and their name table from one list, so the
/// three can never disagree. Each counter is an `outcome` (exactly one per
/// packet) or an `attribute` (any number per packet).
macro_rules! counters {
    ($( $(#[$doc:meta])* $kind:ident $field:ident => $variant:ident, )+) => {
        /// Named per-CPU packet counters: one map value of `edge_stats`.
        ///
        /// All fields are `u64` and the struct is `#[repr(C)]`, so its layout
        /// is the same as `[u64; Counter::COUNT]` and has no padding.
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct Stats {
            $( $(#[$doc])* pub $field: u64, )+
        }

        /// Index of one counter in [`Stats`] (its field position).
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Counter {
            $( $(#[$doc])* $variant, )+
        }

        impl Counter {
            /// Every counter, in field order.
            pub const ALL: &'static [Counter] = &[$(Counter::$variant),+];
            /// Number of counters in [`Stats`].
            pub const COUNT: usize = Self::ALL.len();

            /// The field name, as `bpftool` prints it.
            pub const fn name(self) -> &'static str {
                match self { $( Counter::$variant => stringify!($field), )+ }
            }

            /// Whether this counter is an outcome (exactly one per packet)
            /// rather than an attribute.
            pub const fn is_outcome(self) -> bool {
                match self { $( Counter::$variant => counters!(@outcome $kind), )+ }
            }
        }

        impl Stats {
            /// Value of one counter.
            pub const fn get(&self, counter: Counter) -> u64 {
                match counter { $( Counter::$variant => self.$field, )+ }
            }

            /// Adds `other` to `self`, counter by counter (for summing CPUs).
            pub fn accumulate(&mut self, other: &Stats) {
                $( self.$field = self.$field.wrapping_add(other.$field); )+
            }
        }
    };
    (@outcome outcome) => { true };
    (@outcome attribute) => { false };
}

counters! {
    // What happened to the packet: exactly one of these per packet.
    /// Not IP (ARP, LLDP, ...): passed.
    outcome non_ip => NonIp,
    /// IP, but neither a service nor a tunnel to this node: passed untouched.
    outcome non_service => NonService,
    /// Service traffic served by this node: passed to the local stack.
    outcome local => Local,
    /// Service traffic encapsulated to a peer and sent back out (XDP_TX).
    outcome forwarded_tx => ForwardedTx,
    /// Service traffic encapsulated to a peer and redirected to another interface.
    outcome forwarded_redirect => ForwardedRedirect,
    /// Service with neither local nor remote capacity, passed (the kernel answers).
    outcome unavailable_pass => UnavailablePass,
    /// Service with neither local nor remote capacity, dropped by its policy.
    outcome unavailable_drop => UnavailableDrop,
    /// The next hop toward the peer has no resolved neighbour: passed.
    outcome fib_no_neigh => FibNoNeigh,
    /// No route toward the peer (or no underlay address of its family): passed.
    outcome fib_failed => FibFailed,
    /// The route toward the peer leaves through an interface not allowed for redirects: passed.
    outcome egress_unsupported => EgressUnsupported,
    /// Encapsulated, the packet would exceed the underlay MTU, and it may
    /// be fragmented (IPv4 without DF): passed.
    outcome mtu_exceeded => MtuExceeded,
    /// Encapsulated, the packet would exceed the underlay MTU: answered with
    /// ICMP fragmentation-needed / ICMPv6 packet-too-big (XDP_TX).
    outcome mtu_icmp => MtuIcmp,
    /// No headroom to prepend the outer headers: passed.
    outcome headroom_failed => HeadroomFailed,
    /// Decapsulated from a trusted peer and delivered locally.
    outcome decapsulated => Decapsulated,
    /// Encapsulated to this node from a source that is not a trusted peer: dropped.
    outcome decap_untrusted => DecapUntrusted,
    /// Decapsulated packet not for a service of this node: dropped (never re-forwarded).
    outcome decap_not_service => DecapNotService,
    /// Encapsulated packet with a bad GUE header or a malformed inner packet: dropped.
    outcome decap_malformed => DecapMalformed,
    /// More VLAN tags than the program parses (two): passed.
    outcome vlan_too_deep => VlanTooDeep,
    /// More IPv6 extension headers than the program walks: passed.
    outcome ipv6_ext_too_deep => Ipv6ExtTooDeep,
    /// Frame shorter than an Ethernet header: passed.
    outcome trunc_eth => TruncEth,
    /// Frame cut inside a VLAN tag: passed.
    outcome trunc_vlan => TruncVlan,
    /// IPv4 packet cut inside the fixed 20-byte header: passed.
    outcome trunc_ipv4 => TruncIpv4,
    /// IPv4 header length (IHL) reaching past the frame: passed.
    outcome trunc_ipv4_options => TruncIpv4Options,
    /// IPv4 IHL < 5: passed.
    outcome bad_ipv4_ihl => BadIpv4Ihl,
    /// IPv4 total length shorter than the header or longer than the frame: passed.
    outcome bad_ipv4_len => BadIpv4Len,
    /// IPv6 packet cut inside the fixed 40-byte header: passed.
    outcome trunc_ipv6 => TruncIpv6,
    /// IPv6 payload length longer than the frame: passed.
    outcome bad_ipv6_len => BadIpv6Len,
    /// IP version nibble disagreeing with the EtherType: passed.
    outcome bad_ip_version => BadIpVersion,
    /// IPv6 packet cut inside an extension header: passed.
    outcome trunc_ipv6_ext => TruncIpv6Ext,
    /// TCP/UDP header (ports) or ICMP header cut off: passed.
    outcome trunc_l4 => TruncL4,
    /// To one of the agent's own ports from a listed source: passed.
    outcome door_listed => DoorListed,
    /// To a rate-limited door from a source that is not listed, within the
    /// rate of its prefix (or not a SYN): passed.
    outcome door_admitted => DoorAdmitted,
    /// To a rate-limited door from a source that is not listed, over the
    /// rate of its prefix: dropped.
    outcome door_rate_limited => DoorRateLimited,
    /// To a listed-only door (BGP, BFD) from a source that is not listed: dropped.
    outcome door_unlisted => DoorUnlisted,
    // What the packet was: any number of these per packet.
    /// Attribute: a well-formed IPv4 header was parsed (outer, if encapsulated).
    attribute ipv4 => Ipv4,
    /// Attribute: a well-formed IPv6 header was parsed (outer, if encapsulated).
    attribute ipv6 => Ipv6,
    /// Attribute: the frame carried at least one 802.1Q/802.1ad tag.
    attribute vlan_tagged => VlanTagged,
    /// Attribute: an IP fragment (steered by addresses and protocol only).
    attribute fragment => Fragment,
    /// Attribute: an ICMP error steered like the service flow it quotes.
    attribute icmp_error => IcmpError,
    /// Attribute: service traffic whose flow was remembered with a valid target.
    attribute flow_hit => FlowHit,
    /// Attribute: service traffic whose target was (re)chosen.
    attribute flow_miss => FlowMiss,
    /// Attribute: encapsulated with GUE (received or sent).
    attribute gue => Gue,
}

/// Position of the first attribute counter; all outcomes come before it.
pub const FIRST_ATTRIBUTE: u32 = Counter::Ipv4 as u32;

const _: () = assert!(core::mem::size_of::<Stats>() == Counter::COUNT * 8);

// SAFETY: `Stats` is `#[repr(C)]`, made only of `u64`s (no padding), and every
// bit pattern is a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Stats {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_index_is_field_position() {
        let mut s = Stats::default();
        // Write through the array view the XDP program uses and read back by name.
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
            // SAFETY: Stats has the layout of [u64; COUNT] (asserted above).
            let words = unsafe { &mut *(&mut s as *mut Stats).cast::<[u64; Counter::COUNT]>() };
            words[i] = i as u64 + 100;
        }
        for c in Counter::ALL {
            assert_eq!(s.get(*c), *c as u64 + 100, "{}", c.name());
        }
    }

    #[test]
    fn outcomes_come_before_attributes() {
        for c in Counter::ALL {
            assert_eq!(
                c.is_outcome(),
                (*c as u32) < FIRST_ATTRIBUTE,
                "{}",
                c.name()
            );
        }
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in Counter::ALL.iter().enumerate() {
            for b in &Counter::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }

    #[test]
    fn accumulate_sums_every_counter() {
        let mut a = Stats {
            ipv4: 1,
            vlan_tagged: 2,
            ..Stats::default()
        };
        let b = Stats {
            ipv4: 10,
            trunc_eth: 3,
            ..Stats::default()
        };
        a.accumulate(&b);
        assert_eq!((a.ipv4, a.trunc_eth, a.vlan_tagged), (11, 3, 2));
    }
}
