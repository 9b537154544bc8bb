//! BGP messages as values: what the codec decodes into and encodes from,
//! and what the session state machine consumes and produces. No wire
//! format here (see `codec`), no I/O.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Address family identifier (RFC 4760).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Afi {
    /// IPv4 (AFI 1).
    Ipv4,
    /// IPv6 (AFI 2).
    Ipv6,
}

/// An (AFI, SAFI) pair; only unicast (SAFI 1) is used by edge, others are
/// kept as numbers so that capabilities naming them round-trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    /// Address family identifier number (1 IPv4, 2 IPv6, ...).
    pub afi: u16,
    /// Subsequent address family identifier number (1 unicast, ...).
    pub safi: u8,
}

impl Family {
    /// IPv4 unicast.
    pub const IPV4_UNICAST: Family = Family { afi: 1, safi: 1 };
    /// IPv6 unicast.
    pub const IPV6_UNICAST: Family = Family { afi: 2, safi: 1 };

    /// IPv4 or IPv6 unicast: the only families whose prefixes are routes
    /// for edge.
    pub fn is_unicast(self) -> bool {
        self == Family::IPV4_UNICAST || self == Family::IPV6_UNICAST
    }
}

/// An IPv4 or IPv6 prefix (NLRI). Host bits beyond `len` are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    /// An IPv4 prefix, `len` ≤ 32.
    V4 {
        /// Network address.
        addr: Ipv4Addr,
        /// Prefix length.
        len: u8,
    },
    /// An IPv6 prefix, `len` ≤ 128.
    V6 {
        /// Network address.
        addr: Ipv6Addr,
        /// Prefix length.
        len: u8,
    },
}

/// A capability advertised in OPEN (RFC 5492).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Multiprotocol extensions (code 1, RFC 4760).
    Multiprotocol(Family),
    /// Route refresh (code 2, RFC 2918).
    RouteRefresh,
    /// Graceful restart (code 64, RFC 4724).
    GracefulRestart {
        /// R bit: the sender has restarted.
        restarted: bool,
        /// Restart time in seconds (12 bits).
        restart_time: u16,
        /// Families whose forwarding state is preserved, with their F bit.
        families: Vec<(Family, bool)>,
    },
    /// Four-octet AS numbers (code 65, RFC 6793), with the real ASN.
    FourOctetAs(u32),
    /// Any other capability, kept as code and value.
    Unknown {
        /// Capability code.
        code: u8,
        /// Capability value.
        value: Vec<u8>,
    },
}

/// OPEN (RFC 4271 section 4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// Version; 4.
    pub version: u8,
    /// "My Autonomous System": the ASN, or AS_TRANS (23456) with the real
    /// one in the four-octet AS capability.
    pub my_as: u16,
    /// Proposed hold time in seconds (0, or at least 3).
    pub hold_time: u16,
    /// BGP identifier.
    pub bgp_id: Ipv4Addr,
    /// Capabilities, in the order they were received or are to be sent.
    pub capabilities: Vec<Capability>,
}

/// ORIGIN attribute values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// IGP (0).
    Igp,
    /// EGP (1).
    Egp,
    /// INCOMPLETE (2).
    Incomplete,
}

/// One AS_PATH segment (four-octet ASNs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsSegment {
    /// AS_SET (1).
    Set(Vec<u32>),
    /// AS_SEQUENCE (2).
    Sequence(Vec<u32>),
}

/// A large community (RFC 8092).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LargeCommunity {
    /// Global administrator.
    pub global: u32,
    /// First local data part.
    pub local1: u32,
    /// Second local data part.
    pub local2: u32,
}

/// The GRACEFUL_SHUTDOWN community 65535:0 (RFC 8326).
pub const GRACEFUL_SHUTDOWN: u32 = 0xffff_0000;

/// AS_TRANS (RFC 6793): the two-octet stand-in for a four-octet ASN, in
/// OPEN's My Autonomous System and in two-octet AS_PATHs.
pub const AS_TRANS: u16 = 23456;

/// MP_REACH_NLRI (RFC 4760): next hop(s) and prefixes of one family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpReach {
    /// The family.
    pub family: Family,
    /// Next hop: 4 bytes (IPv4), 16 (IPv6 global) or 32 (global +
    /// link-local) as on the wire.
    pub next_hop: Vec<u8>,
    /// Announced prefixes.
    pub nlri: Vec<Prefix>,
}

/// MP_UNREACH_NLRI (RFC 4760): withdrawn prefixes of one family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpUnreach {
    /// The family.
    pub family: Family,
    /// Withdrawn prefixes.
    pub withdrawn: Vec<Prefix>,
}

/// Path attributes of an UPDATE, decoded. Attributes edge does not
/// understand are kept raw (optional transitive ones must be passed on by
/// a router; edge never re-advertises, but keeps them for visibility).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    /// ORIGIN.
    pub origin: Option<Origin>,
    /// AS_PATH (four-octet ASNs, as negotiated with every edge peer).
    pub as_path: Option<Vec<AsSegment>>,
    /// NEXT_HOP (IPv4 unicast NLRI in the UPDATE body).
    pub next_hop: Option<Ipv4Addr>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF (iBGP).
    pub local_pref: Option<u32>,
    /// COMMUNITIES (RFC 1997), each as `asn << 16 | value`.
    pub communities: Vec<u32>,
    /// LARGE_COMMUNITY (RFC 8092).
    pub large_communities: Vec<LargeCommunity>,
    /// MP_REACH_NLRI.
    pub mp_reach: Option<MpReach>,
    /// MP_UNREACH_NLRI.
    pub mp_unreach: Option<MpUnreach>,
    /// Attributes not decoded above: (flags, type code, value).
    pub other: Vec<(u8, u8, Vec<u8>)>,
}

/// UPDATE (RFC 4271 section 4.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// Withdrawn IPv4 unicast prefixes (in the UPDATE body).
    pub withdrawn: Vec<Prefix>,
    /// Path attributes.
    pub attributes: Attributes,
    /// Announced IPv4 unicast prefixes (in the UPDATE body).
    pub nlri: Vec<Prefix>,
}

impl Update {
    /// Every withdrawn unicast prefix: the body's (IPv4) and MP_UNREACH's
    /// when it is IPv4 or IPv6 unicast. Other SAFIs (multicast, ...) are
    /// not edge's: their prefixes are not unicast routes and are left out.
    pub fn withdrawn_prefixes(&self) -> impl Iterator<Item = &Prefix> {
        let unreach = self.attributes.mp_unreach.iter();
        self.withdrawn.iter().chain(
            unreach
                .filter(|u| u.family.is_unicast())
                .flat_map(|u| &u.withdrawn),
        )
    }

    /// Every announced unicast prefix: the body's NLRI (IPv4) and
    /// MP_REACH's when it is IPv4 or IPv6 unicast.
    pub fn announced_prefixes(&self) -> impl Iterator<Item = &Prefix> {
        let reach = self.attributes.mp_reach.iter();
        self.nlri.iter().chain(
            reach
                .filter(|r| r.family.is_unicast())
                .flat_map(|r| &r.nlri),
        )
    }
}

/// NOTIFICATION (RFC 4271 section 4.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Error code.
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// Data (for Cease/Administrative Shutdown: a length-prefixed UTF-8
    /// message, RFC 8203).
    pub data: Vec<u8>,
}

/// ROUTE-REFRESH (RFC 2918).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteRefresh {
    /// The family to refresh.
    pub family: Family,
}

/// A BGP message.
///
/// UPDATE, by far the most common message, is the large variant; messages
/// are transient (decoded, handled, dropped), so it is not boxed.
#[allow(
    clippy::large_enum_variant,
    reason = "see above: boxing would allocate per UPDATE for nothing"
)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// OPEN (type 1).
    Open(Open),
    /// UPDATE (type 2).
    Update(Update),
    /// NOTIFICATION (type 3).
    Notification(Notification),
    /// KEEPALIVE (type 4).
    Keepalive,
    /// ROUTE-REFRESH (type 5).
    RouteRefresh(RouteRefresh),
}
