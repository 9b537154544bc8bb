//! The overlay's import filter: what a peer may tell us. Only host routes
//! (/32, /128) inside the configured node-identity and service ranges
//! (and, marked as such, inside the private-transport ranges), with a
//! next hop that is a plausible underlay address of that peer, and at most
//! a configured number per peer. Everything else is rejected with a
//! reason that is counted per peer. Pure: no I/O.

use std::net::IpAddr;

use crate::bgp::message::{Attributes, LargeCommunity, Prefix};

/// The large community's second field that marks a peer's private
/// underlay address: `(our ASN, 1, 0)`.
pub const PRIVATE_UNDERLAY: u32 = 1;

/// What a peer may announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportPolicy {
    /// The overlay's ASN (both ends of every iBGP session).
    pub asn: u32,
    /// Ranges node identities come from (e.g. 192.0.2.0/24).
    pub identity_ranges: Vec<Prefix>,
    /// Ranges service VIPs come from (the anycast prefixes).
    pub service_ranges: Vec<Prefix>,
    /// Ranges private underlay addresses may come from.
    pub private_ranges: Vec<Prefix>,
    /// Most routes accepted from one peer; more are rejected.
    pub max_routes: usize,
}

/// What an accepted route is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    /// The peer's node identity.
    Identity,
    /// A service VIP the peer serves.
    Service,
    /// The peer's private underlay address (a route marked with
    /// [`PRIVATE_UNDERLAY`]).
    Private,
}

/// Why a route was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, thiserror::Error)]
pub enum Rejection {
    /// 0.0.0.0/0 or ::/0.
    #[error("a default route")]
    Default,
    /// Shorter than a host route.
    #[error("not a host route (only /32 and /128 are accepted)")]
    NotHostRoute,
    /// A host route outside every configured range.
    #[error("outside the configured identity and service ranges")]
    OutsideRanges,
    /// No usable next hop for the route's family.
    #[error("no next hop")]
    NoNextHop,
    /// The next hop is not a unicast underlay address (loopback,
    /// multicast, unspecified, link-local) or lies inside the overlay's
    /// own ranges.
    #[error("the next hop is not an underlay address")]
    BadNextHop,
    /// The next hop differs from the peer's address on the session for
    /// the same family.
    #[error("the next hop is not the peer's own underlay address")]
    ForeignNextHop,
    /// Accepting it would exceed the per-peer limit.
    #[error("over the per-peer route limit")]
    OverLimit,
}

impl Rejection {
    /// Every reason, for counters.
    pub const ALL: [Rejection; 7] = [
        Rejection::Default,
        Rejection::NotHostRoute,
        Rejection::OutsideRanges,
        Rejection::NoNextHop,
        Rejection::BadNextHop,
        Rejection::ForeignNextHop,
        Rejection::OverLimit,
    ];

    /// A short name for counters and status output.
    pub fn name(self) -> &'static str {
        match self {
            Rejection::Default => "default_route",
            Rejection::NotHostRoute => "not_host_route",
            Rejection::OutsideRanges => "outside_ranges",
            Rejection::NoNextHop => "no_next_hop",
            Rejection::BadNextHop => "bad_next_hop",
            Rejection::ForeignNextHop => "foreign_next_hop",
            Rejection::OverLimit => "over_limit",
        }
    }
}

impl ImportPolicy {
    /// Decides one announced prefix from a peer whose session runs from
    /// `transport` (its underlay address): the kind and next hop, or why
    /// not. The per-peer limit is the caller's (it knows the count).
    pub fn check(
        &self,
        prefix: &Prefix,
        attributes: &Attributes,
        transport: IpAddr,
    ) -> Result<(RouteKind, IpAddr), Rejection> {
        let Some(addr) = prefix.host_addr() else {
            return Err(if prefix.length() == 0 {
                Rejection::Default
            } else {
                Rejection::NotHostRoute
            });
        };
        let inside = |ranges: &[Prefix]| ranges.iter().any(|r| r.contains(addr));
        let private = attributes.large_communities.contains(&LargeCommunity {
            global: self.asn,
            local1: PRIVATE_UNDERLAY,
            local2: 0,
        });
        let kind = if private {
            if !inside(&self.private_ranges) {
                return Err(Rejection::OutsideRanges);
            }
            RouteKind::Private
        } else if inside(&self.identity_ranges) {
            RouteKind::Identity
        } else if inside(&self.service_ranges) {
            RouteKind::Service
        } else {
            return Err(Rejection::OutsideRanges);
        };
        let next_hop = next_hop(prefix, attributes).ok_or(Rejection::NoNextHop)?;
        if !is_underlay(next_hop) || self.is_overlay_address(next_hop) {
            return Err(Rejection::BadNextHop);
        }
        // On the session's own family the next hop must be the peer
        // itself: an authenticated peer may only point traffic at itself.
        if next_hop.is_ipv4() == transport.is_ipv4() && next_hop != transport {
            return Err(Rejection::ForeignNextHop);
        }
        Ok((kind, next_hop))
    }

    fn is_overlay_address(&self, addr: IpAddr) -> bool {
        self.identity_ranges
            .iter()
            .chain(&self.service_ranges)
            .chain(&self.private_ranges)
            .any(|r| r.contains(addr))
    }
}

/// The next hop an UPDATE gives a prefix: NEXT_HOP for IPv4 NLRI in the
/// body, MP_REACH's (global) next hop otherwise, which may be of either
/// family (4 bytes: IPv4; 16 or 32: IPv6 global first).
pub fn next_hop(prefix: &Prefix, attributes: &Attributes) -> Option<IpAddr> {
    if let Some(reach) = &attributes.mp_reach {
        if reach.nlri.contains(prefix) {
            return match reach.next_hop.len() {
                4 => <[u8; 4]>::try_from(&reach.next_hop[..])
                    .ok()
                    .map(IpAddr::from),
                16 | 32 => <[u8; 16]>::try_from(&reach.next_hop[..16])
                    .ok()
                    .map(IpAddr::from),
                _ => None,
            };
        }
    }
    attributes.next_hop.map(IpAddr::V4)
}

/// Whether `addr` can be an underlay (tunnel endpoint) address.
fn is_underlay(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_link_local())
        }
        IpAddr::V6(a) => {
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || a.is_unicast_link_local())
        }
    }
}

/// The address plan's ranges, for unit tests: identities 192.0.2.0/24 and
/// 2001:db8:1d::/48, services 203.0.113.0/24 and 2001:db8:ac::/48, private
/// 198.51.100.128/25.
#[cfg(test)]
pub(crate) fn test_policy(max_routes: usize) -> ImportPolicy {
    let p = |s: &str| s.parse().unwrap();
    ImportPolicy {
        asn: 64500,
        identity_ranges: vec![p("192.0.2.0/24"), p("2001:db8:1d::/48")],
        service_ranges: vec![p("203.0.113.0/24"), p("2001:db8:ac::/48")],
        private_ranges: vec![p("198.51.100.128/25")],
        max_routes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::message::{Family, MpReach};

    fn policy() -> ImportPolicy {
        test_policy(8)
    }

    fn v4(nh: &str) -> Attributes {
        Attributes {
            next_hop: Some(nh.parse().unwrap()),
            ..Attributes::default()
        }
    }

    fn v6(prefix: &str, nh: &str) -> Attributes {
        let ip: std::net::Ipv6Addr = nh.parse().unwrap();
        Attributes {
            mp_reach: Some(MpReach {
                family: Family::IPV6_UNICAST,
                next_hop: ip.octets().to_vec(),
                nlri: vec![prefix.parse().unwrap()],
            }),
            ..Attributes::default()
        }
    }

    #[test]
    fn table() {
        let peer: IpAddr = "198.51.100.2".parse().unwrap();
        let private = Attributes {
            large_communities: vec![LargeCommunity {
                global: 64500,
                local1: PRIVATE_UNDERLAY,
                local2: 0,
            }],
            ..v4("198.51.100.2")
        };
        let cases: Vec<(&str, Attributes, Result<RouteKind, Rejection>)> = vec![
            ("192.0.2.2/32", v4("198.51.100.2"), Ok(RouteKind::Identity)),
            (
                "203.0.113.10/32",
                v4("198.51.100.2"),
                Ok(RouteKind::Service),
            ),
            (
                "2001:db8:ac::10/128",
                v6("2001:db8:ac::10/128", "2001:db8:ff::2"),
                Ok(RouteKind::Service),
            ),
            (
                "2001:db8:1d::2/128",
                v6("2001:db8:1d::2/128", "2001:db8:ff::2"),
                Ok(RouteKind::Identity),
            ),
            ("198.51.100.130/32", private.clone(), Ok(RouteKind::Private)),
            (
                "198.51.100.128/26",
                private.clone(),
                Err(Rejection::NotHostRoute),
            ),
            ("198.51.100.77/32", private, Err(Rejection::OutsideRanges)),
            ("0.0.0.0/0", v4("198.51.100.2"), Err(Rejection::Default)),
            (
                "::/0",
                v6("::/0", "2001:db8:ff::2"),
                Err(Rejection::Default),
            ),
            (
                "203.0.113.0/24",
                v4("198.51.100.2"),
                Err(Rejection::NotHostRoute),
            ),
            (
                "198.51.100.7/32",
                v4("198.51.100.2"),
                Err(Rejection::OutsideRanges),
            ),
            (
                "198.51.100.130/32",
                v4("198.51.100.2"),
                Err(Rejection::OutsideRanges),
            ),
            (
                "203.0.113.10/32",
                Attributes::default(),
                Err(Rejection::NoNextHop),
            ),
            (
                "203.0.113.10/32",
                v4("127.0.0.1"),
                Err(Rejection::BadNextHop),
            ),
            (
                "203.0.113.10/32",
                v4("203.0.113.53"),
                Err(Rejection::BadNextHop),
            ),
            (
                "203.0.113.10/32",
                v4("198.51.100.9"),
                Err(Rejection::ForeignNextHop),
            ),
            (
                "2001:db8:ac::10/128",
                v6("2001:db8:ac::10/128", "fe80::1"),
                Err(Rejection::BadNextHop),
            ),
        ];
        for (prefix, attrs, want) in cases {
            let prefix: Prefix = prefix.parse().unwrap();
            let got = policy().check(&prefix, &attrs, peer).map(|(kind, _)| kind);
            assert_eq!(got, want, "{prefix}");
        }
    }

    #[test]
    fn v4_route_with_v6_next_hop() {
        let prefix: Prefix = "203.0.113.10/32".parse().unwrap();
        let mut attrs = v6("2001:db8:ac::10/128", "2001:db8:ff::2");
        attrs.mp_reach.as_mut().unwrap().nlri = vec![prefix];
        let (_, nh) = policy()
            .check(&prefix, &attrs, "198.51.100.2".parse().unwrap())
            .unwrap();
        assert_eq!(nh, "2001:db8:ff::2".parse::<IpAddr>().unwrap());
    }
}
