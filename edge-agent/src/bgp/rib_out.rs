//! What we announce (Adj-RIB-Out), sans I/O: the prefixes the agent wants
//! announced with their attributes, what the neighbour has been sent, and
//! the smallest set of changes between the two.
//!
//! Updates go out only on change. Withdrawals come first and on their own,
//! so the caller can send them at once (no MRAI delay); announcements are
//! grouped by identical attributes, so they pack into few UPDATEs.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, Ipv6Addr},
};

use super::message::{
    AsSegment, Attributes, Family, GRACEFUL_SHUTDOWN, LargeCommunity, Origin, Prefix,
};

/// The attributes of one originated prefix, as the agent states them.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OriginAttrs {
    /// Extra copies of our ASN in the AS_PATH (eBGP only): 0 for none.
    pub prepend: u8,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// Communities (RFC 1997), `asn << 16 | value`.
    pub communities: Vec<u32>,
    /// Large communities (RFC 8092), as (global, local1, local2).
    pub large_communities: Vec<(u32, u32, u32)>,
    /// Draining: add GRACEFUL_SHUTDOWN (65535:0, RFC 8326).
    pub graceful_shutdown: bool,
}

/// Changes to send, in order: withdrawals, then announcements by attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Prefixes to withdraw.
    pub withdraw: Vec<Prefix>,
    /// Prefixes to announce, grouped by their attributes.
    pub announce: Vec<(OriginAttrs, Vec<Prefix>)>,
}

impl Changes {
    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.withdraw.is_empty() && self.announce.is_empty()
    }
}

/// Desired and advertised routes toward one neighbour.
#[derive(Clone, Debug, Default)]
pub struct RibOut {
    desired: BTreeMap<Prefix, OriginAttrs>,
    advertised: BTreeMap<Prefix, OriginAttrs>,
}

impl RibOut {
    /// Wants `prefix` announced with `attrs` (replacing earlier attributes).
    pub fn announce(&mut self, prefix: Prefix, attrs: OriginAttrs) {
        self.desired.insert(prefix, attrs);
    }

    /// Wants exactly `routes` announced.
    pub fn set_desired(&mut self, routes: BTreeMap<Prefix, OriginAttrs>) {
        self.desired = routes;
    }

    /// Wants `prefix` withdrawn.
    pub fn withdraw(&mut self, prefix: Prefix) {
        self.desired.remove(&prefix);
    }

    /// The prefixes wanted announced, with their attributes.
    pub fn desired(&self) -> &BTreeMap<Prefix, OriginAttrs> {
        &self.desired
    }

    /// What changed since the last call (or since [`RibOut::reset`]), now
    /// counted as sent.
    pub fn take_changes(&mut self) -> Changes {
        let withdraw: Vec<Prefix> = self
            .advertised
            .keys()
            .filter(|p| !self.desired.contains_key(p))
            .copied()
            .collect();
        let mut groups: BTreeMap<OriginAttrs, Vec<Prefix>> = BTreeMap::new();
        for (prefix, attrs) in &self.desired {
            if self.advertised.get(prefix) != Some(attrs) {
                groups.entry(attrs.clone()).or_default().push(*prefix);
            }
        }
        self.advertised = self.desired.clone();
        Changes {
            withdraw,
            announce: groups.into_iter().collect(),
        }
    }

    /// Every desired prefix, for a ROUTE-REFRESH of `family` (nothing is
    /// withdrawn: the neighbour forgot nothing we withdrew).
    pub fn refresh(&self, family: Family) -> Changes {
        let mut groups: BTreeMap<OriginAttrs, Vec<Prefix>> = BTreeMap::new();
        for (prefix, attrs) in self.desired.iter().filter(|(p, _)| family_of(p) == family) {
            groups.entry(attrs.clone()).or_default().push(*prefix);
        }
        Changes {
            withdraw: Vec::new(),
            announce: groups.into_iter().collect(),
        }
    }

    /// The session went down: the neighbour has nothing from us, so the
    /// next [`RibOut::take_changes`] announces everything desired.
    pub fn reset(&mut self) {
        self.advertised.clear();
    }
}

/// The family of a prefix.
pub fn family_of(prefix: &Prefix) -> Family {
    match prefix {
        Prefix::V4 { .. } => Family::IPV4_UNICAST,
        Prefix::V6 { .. } => Family::IPV6_UNICAST,
    }
}

/// Who we are on a session, for the attributes we originate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origination {
    /// Our ASN.
    pub local_as: u32,
    /// External session (AS_PATH starts with our ASN) or internal (empty
    /// AS_PATH, LOCAL_PREF 100).
    pub ebgp: bool,
    /// NEXT_HOP for IPv4 prefixes: our address on the session.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// Next hop for IPv6 prefixes: our global address, and the link-local
    /// one when the neighbour is on the same link.
    pub next_hop_v6: Option<(Ipv6Addr, Option<Ipv6Addr>)>,
}

impl Origination {
    /// The path attributes for prefixes originated with `attrs`
    /// (MP_REACH is added by the packing, per family).
    pub fn attributes(&self, attrs: &OriginAttrs) -> Attributes {
        let as_path = if self.ebgp {
            vec![AsSegment::Sequence(vec![
                self.local_as;
                1 + usize::from(attrs.prepend)
            ])]
        } else {
            Vec::new()
        };
        let mut communities = attrs.communities.clone();
        if attrs.graceful_shutdown && !communities.contains(&GRACEFUL_SHUTDOWN) {
            communities.push(GRACEFUL_SHUTDOWN);
        }
        communities.sort_unstable();
        communities.dedup();
        Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(as_path),
            next_hop: self.next_hop_v4,
            med: attrs.med,
            local_pref: (!self.ebgp).then_some(100),
            communities,
            large_communities: attrs
                .large_communities
                .iter()
                .map(|&(global, local1, local2)| LargeCommunity {
                    global,
                    local1,
                    local2,
                })
                .collect(),
            ..Attributes::default()
        }
    }

    /// The IPv6 next hop as MP_REACH carries it: 16 bytes, or 32 with a
    /// link-local address (RFC 2545).
    pub fn ipv6_next_hop(&self) -> Vec<u8> {
        match self.next_hop_v6 {
            Some((global, link_local)) => {
                let mut hop = global.octets().to_vec();
                if let Some(ll) = link_local {
                    hop.extend_from_slice(&ll.octets());
                }
                hop
            }
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(c: u8) -> Prefix {
        Prefix::V4 {
            addr: Ipv4Addr::new(203, 0, c, 0),
            len: 24,
        }
    }

    fn v6(c: u16) -> Prefix {
        Prefix::V6 {
            addr: Ipv6Addr::new(0x2001, 0xdb8, c, 0, 0, 0, 0, 0),
            len: 48,
        }
    }

    #[test]
    fn only_changes_are_sent_and_withdrawals_come_first() {
        let mut rib = RibOut::default();
        rib.announce(v4(113), OriginAttrs::default());
        rib.announce(v6(0xac), OriginAttrs::default());
        let first = rib.take_changes();
        assert_eq!(
            first.announce,
            vec![(OriginAttrs::default(), vec![v4(113), v6(0xac)])]
        );
        assert!(first.withdraw.is_empty());
        // Announcing again with the same attributes sends nothing.
        rib.announce(v4(113), OriginAttrs::default());
        assert!(rib.take_changes().is_empty());
        // A withdrawal, and a change of attributes.
        rib.withdraw(v6(0xac));
        let drain = OriginAttrs {
            prepend: 3,
            graceful_shutdown: true,
            ..OriginAttrs::default()
        };
        rib.announce(v4(113), drain.clone());
        let changes = rib.take_changes();
        assert_eq!(changes.withdraw, vec![v6(0xac)]);
        assert_eq!(changes.announce, vec![(drain, vec![v4(113)])]);
    }

    #[test]
    fn a_withdrawal_undone_before_sending_sends_nothing() {
        let mut rib = RibOut::default();
        rib.announce(v4(1), OriginAttrs::default());
        rib.take_changes();
        rib.withdraw(v4(1));
        rib.announce(v4(1), OriginAttrs::default());
        assert!(rib.take_changes().is_empty());
    }

    #[test]
    fn announcements_group_by_attributes() {
        let mut rib = RibOut::default();
        let a = OriginAttrs {
            med: Some(10),
            ..OriginAttrs::default()
        };
        let b = OriginAttrs {
            communities: vec![64500 << 16 | 1],
            ..OriginAttrs::default()
        };
        for c in 1..=3 {
            rib.announce(v4(c), a.clone());
            rib.announce(v4(c + 10), b.clone());
        }
        let changes = rib.take_changes();
        assert_eq!(changes.announce.len(), 2);
        assert!(
            changes
                .announce
                .iter()
                .all(|(_, prefixes)| prefixes.len() == 3)
        );
    }

    #[test]
    fn reset_and_refresh_resend_what_is_desired() {
        let mut rib = RibOut::default();
        rib.announce(v4(1), OriginAttrs::default());
        rib.announce(v6(2), OriginAttrs::default());
        rib.take_changes();
        assert_eq!(
            rib.refresh(Family::IPV6_UNICAST).announce,
            vec![(OriginAttrs::default(), vec![v6(2)])]
        );
        rib.reset();
        assert_eq!(
            rib.take_changes().announce,
            vec![(OriginAttrs::default(), vec![v4(1), v6(2)])]
        );
    }

    #[test]
    fn ebgp_attributes_prepend_and_drain() {
        let o = Origination {
            local_as: 64500,
            ebgp: true,
            next_hop_v4: Some(Ipv4Addr::new(198, 51, 100, 2)),
            next_hop_v6: Some((
                "2001:db8:ff::2".parse().unwrap(),
                Some("fe80::2".parse().unwrap()),
            )),
        };
        let drain = OriginAttrs {
            prepend: 2,
            med: Some(50),
            communities: vec![GRACEFUL_SHUTDOWN, 64500 << 16 | 7],
            large_communities: vec![(64500, 1, 2)],
            graceful_shutdown: true,
        };
        let a = o.attributes(&drain);
        assert_eq!(a.origin, Some(Origin::Igp));
        assert_eq!(
            a.as_path,
            Some(vec![AsSegment::Sequence(vec![64500, 64500, 64500])])
        );
        assert_eq!(a.next_hop, Some(Ipv4Addr::new(198, 51, 100, 2)));
        assert_eq!(a.med, Some(50));
        assert_eq!(a.local_pref, None, "no LOCAL_PREF on eBGP");
        assert_eq!(
            a.communities,
            vec![64500 << 16 | 7, GRACEFUL_SHUTDOWN],
            "sorted, GRACEFUL_SHUTDOWN once"
        );
        assert_eq!(
            a.large_communities,
            vec![LargeCommunity {
                global: 64500,
                local1: 1,
                local2: 2
            }]
        );
        assert_eq!(o.ipv6_next_hop().len(), 32, "global + link-local");
    }

    #[test]
    fn ibgp_attributes_have_an_empty_path_and_local_pref() {
        let o = Origination {
            local_as: 64500,
            ebgp: false,
            next_hop_v4: None,
            next_hop_v6: None,
        };
        let a = o.attributes(&OriginAttrs {
            prepend: 4,
            ..OriginAttrs::default()
        });
        assert_eq!(a.as_path, Some(vec![]), "iBGP: no prepending, no own ASN");
        assert_eq!(a.local_pref, Some(100));
        assert!(o.ipv6_next_hop().is_empty());
    }
}
