//! The overlay's import filter and RIB: a sequence of UPDATEs from one
//! authenticated peer (whole BGP messages, back to back). Whatever it
//! sends, what the RIB holds obeys the policy: host routes inside the
//! configured ranges, of the kind the range says, next hops that are
//! underlay addresses outside the overlay's ranges and, on the session's
//! own family, the peer itself; never more than the per-peer limit; and
//! a prefix withdrawn (and not announced again) in an UPDATE is gone.

#![no_main]

use std::net::IpAddr;

use edge_agent::{
    bgp::{
        codec::{self, CodecOptions},
        message::{Message, Prefix},
    },
    overlay::{identity::Identity, import::RouteKind, rib::OverlayRib},
};
use edge_fuzz::fixtures::{PEER_TRANSPORT, import_policy};
use libfuzzer_sys::fuzz_target;

const MAX_ROUTES: usize = 8;

fuzz_target!(|data: &[u8]| {
    let policy = import_policy(MAX_ROUTES);
    let mut rib = OverlayRib::new(policy.clone());
    let peer: Identity = "edge://pop-b.cdn.test".parse().expect("an identity");
    rib.peer_up(&peer, PEER_TRANSPORT, true);
    let options = CodecOptions {
        four_octet_as: true,
    };
    let mut rest = data;
    while let Ok(Some(decoded)) = codec::decode(rest, &options) {
        rest = &rest[decoded.len..];
        let Message::Update(update) = decoded.message else {
            continue;
        };
        rib.update(&peer, &update);
        let view = rib.peer(&peer).expect("the peer is up");
        assert!(view.routes.len() <= MAX_ROUTES);
        let announced: Vec<&Prefix> = update.announced_prefixes().collect();
        for prefix in update.withdrawn_prefixes() {
            if !announced.contains(&prefix) {
                assert!(!view.routes.contains_key(prefix), "{prefix:?} withdrawn");
            }
        }
        for (prefix, route) in &view.routes {
            let addr = prefix.host_addr().expect("only host routes");
            let in_ranges = |ranges: &[Prefix]| ranges.iter().any(|r| r.contains(addr));
            let range_ok = match route.kind {
                RouteKind::Identity => in_ranges(&policy.identity_ranges),
                RouteKind::Service => in_ranges(&policy.service_ranges),
                RouteKind::Private => in_ranges(&policy.private_ranges),
            };
            assert!(range_ok, "{prefix:?} as {:?}", route.kind);
            let hop = route.next_hop;
            assert!(!hop.is_unspecified() && !hop.is_loopback() && !hop.is_multicast());
            let overlay = policy
                .identity_ranges
                .iter()
                .chain(&policy.service_ranges)
                .chain(&policy.private_ranges)
                .any(|r| r.contains(hop));
            assert!(!overlay, "next hop {hop} inside the overlay's ranges");
            if hop.is_ipv4() == PEER_TRANSPORT.is_ipv4() {
                assert_eq!(hop, PEER_TRANSPORT, "a foreign next hop for {prefix:?}");
            }
            if let IpAddr::V6(v6) = hop {
                assert!(!v6.is_unicast_link_local());
            }
        }
    }
});
