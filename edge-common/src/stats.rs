//! The global per-CPU statistics of the XDP program.
//!
//! One map entry holds a [`Stats`] struct of named `u64` counters, so that
//! `bpftool map dump` prints every counter by name from BTF. The program
//! increments a counter by its [`Counter`] index (the field's position);
//! the agent reads the per-CPU structs and sums them.
//!
//! Every packet moves exactly one *outcome* counter (what the program did
//! with it and why), and possibly *attribute* counters (such as
//! `vlan_tagged`) that describe it without deciding anything.

/// Defines [`Stats`], [`Counter`] and their name table from one list, so the
/// three can never disagree.
macro_rules! counters {
    ($( $(#[$doc:meta])* $field:ident => $variant:ident, )+) => {
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
}

counters! {
    /// Well-formed IPv4 packets passed to the kernel.
    ipv4 => Ipv4,
    /// Well-formed IPv6 packets passed to the kernel.
    ipv6 => Ipv6,
    /// Frames whose EtherType is neither IPv4 nor IPv6 (ARP, LLDP, ...), passed.
    non_ip => NonIp,
    /// Frames with more VLAN tags than the program parses (two), passed unparsed.
    vlan_too_deep => VlanTooDeep,
    /// Frames shorter than an Ethernet header, passed.
    trunc_eth => TruncEth,
    /// Frames cut inside a VLAN tag, passed.
    trunc_vlan => TruncVlan,
    /// IPv4 packets cut inside the fixed 20-byte header, passed.
    trunc_ipv4 => TruncIpv4,
    /// IPv4 packets whose header length (IHL) reaches past the frame, passed.
    trunc_ipv4_options => TruncIpv4Options,
    /// IPv4 packets with IHL < 5, passed.
    bad_ipv4_ihl => BadIpv4Ihl,
    /// IPv4 packets whose total length is shorter than the header or longer than the frame, passed.
    bad_ipv4_len => BadIpv4Len,
    /// IPv6 packets cut inside the fixed 40-byte header, passed.
    trunc_ipv6 => TruncIpv6,
    /// IPv6 packets whose payload length is longer than the frame, passed.
    bad_ipv6_len => BadIpv6Len,
    /// Packets whose IP version nibble disagrees with the EtherType, passed.
    bad_ip_version => BadIpVersion,
    /// Attribute: frames that carried at least one 802.1Q/802.1ad tag.
    vlan_tagged => VlanTagged,
}

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
