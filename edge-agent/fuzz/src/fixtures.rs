//! Fixtures: the same small worlds the unit tests use, built through the
//! public API.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use edge_agent::{
    authdns::{Zone, ZoneSet},
    bgp::{
        codec::{self, CodecOptions},
        message::{Capability, Family, Message, Open, Prefix},
        rib_out::{OriginAttrs, Origination},
        session::SessionConfig,
        speaker::{Intent, Speaker, SpeakerEvent},
    },
    overlay::import::ImportPolicy,
};

/// Our BGP identifier.
pub const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The neighbour's.
pub const PEER_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The neighbour's ASN: four-octet, so it only decodes right with
/// four-octet AS_PATHs.
pub const PEER_AS: u32 = 4_200_000_000;

/// The neighbour's OPEN (both unicast families, four-octet ASNs, route
/// refresh, graceful restart) and KEEPALIVE, as bytes.
pub fn peer_open_and_keepalive() -> Vec<u8> {
    let open = Message::Open(Open {
        version: 4,
        my_as: 23456,
        hold_time: 90,
        bgp_id: PEER_ID,
        capabilities: vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(PEER_AS),
            Capability::GracefulRestart {
                restarted: false,
                restart_time: 120,
                families: vec![],
            },
        ],
    });
    let mut bytes = Vec::new();
    let options = CodecOptions::default();
    codec::encode(&open, &options, &mut bytes).expect("encodes");
    codec::encode(&Message::Keepalive, &options, &mut bytes).expect("encodes");
    bytes
}

/// A speaker connected to the neighbour (its own OPEN sent and written),
/// announcing an IPv4 and an IPv6 prefix, not yet Established: the
/// neighbour's OPEN and KEEPALIVE come next.
pub fn connected_speaker(now: Instant) -> Speaker {
    let config = SessionConfig {
        local_as: 64500,
        peer_as: PEER_AS,
        bgp_id: LOCAL_ID,
        hold_time: 9,
        connect_retry: Duration::from_secs(5),
        passive: false,
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        graceful_restart: None,
        max_prefixes: Some(1000),
    };
    let origination = Origination {
        local_as: 64500,
        ebgp: true,
        next_hop_v4: Some(Ipv4Addr::new(198, 51, 100, 1)),
        next_hop_v6: Some((Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1), None)),
    };
    let mut speaker = Speaker::new(config, origination, now);
    while let Some(event) = speaker.poll_event() {
        if event == SpeakerEvent::Connect {
            speaker.connected(true, now);
        }
    }
    let mut intent = Intent::default();
    for prefix in [
        Prefix::V4 {
            addr: Ipv4Addr::new(203, 0, 113, 0),
            len: 24,
        },
        Prefix::V6 {
            addr: Ipv6Addr::new(0x2001, 0xdb8, 0xac, 0, 0, 0, 0, 0),
            len: 48,
        },
    ] {
        intent.announce(prefix, OriginAttrs::default());
    }
    speaker.set_intent(&intent, now);
    speaker
}

/// The import policy of the address plan: identities 192.0.2.0/24 and
/// 2001:db8:1d::/48, services 203.0.113.0/24 and 2001:db8:ac::/48,
/// private 198.51.100.128/25; at most `max_routes` per peer.
pub fn import_policy(max_routes: usize) -> ImportPolicy {
    let p = |s: &str| s.parse::<Prefix>().expect("a prefix");
    ImportPolicy {
        asn: 64500,
        identity_ranges: vec![p("192.0.2.0/24"), p("2001:db8:1d::/48")],
        service_ranges: vec![p("203.0.113.0/24"), p("2001:db8:ac::/48")],
        private_ranges: vec![p("198.51.100.128/25")],
        max_routes,
    }
}

/// An overlay peer's underlay address on the session.
pub const PEER_TRANSPORT: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));

/// The zone the DNS targets answer from: every served type, names of
/// several depths, a CNAME chain, an empty non-terminal.
pub const ZONE: &str = "\
$TTL 300
@ IN SOA ns1 hostmaster 2026120301 7200 3600 1209600 60
@ NS ns1
@ NS ns2.other.test.
@ MX 10 mail
@ TXT \"v=spf1 -all\"
@ CAA 0 issue \"ca.example.net\"
ns1 A 192.0.2.53
ns1 AAAA 2001:db8:1d::53
mail A 192.0.2.25
www A 203.0.113.10
www AAAA 2001:db8:ac::10
alias CNAME www
chain CNAME alias
out CNAME www.other.test.
_https._tcp.www SRV 10 5 443 www
a.b.deep TXT \"below an empty non-terminal\"
big TXT \"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\" \"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"
";

/// The zone set of [`ZONE`] at `cdn.test.`.
pub fn zones() -> ZoneSet {
    let zone = Zone::parse("cdn.test.", ZONE, 300, None).expect("the fixture zone loads");
    ZoneSet::new(vec![zone]).expect("one zone")
}
