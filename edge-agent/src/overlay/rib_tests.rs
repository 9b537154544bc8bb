use std::net::{IpAddr, Ipv6Addr};

use super::*;
use crate::{
    bgp::message::{Attributes, Family, MpReach, MpUnreach},
    overlay::test_lab::{announce, private_route},
};

fn policy(max: usize) -> ImportPolicy {
    crate::overlay::import::test_policy(max)
}

fn id(name: &str) -> Identity {
    Identity::from_name(name).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn announce_v6(prefixes: &[&str], nh: &str) -> Update {
    let nh: Ipv6Addr = nh.parse().unwrap();
    Update {
        attributes: Attributes {
            mp_reach: Some(MpReach {
                family: Family::IPV6_UNICAST,
                next_hop: nh.octets().to_vec(),
                nlri: prefixes.iter().map(|s| p(s)).collect(),
            }),
            ..Attributes::default()
        },
        ..Update::default()
    }
}

fn withdraw(prefixes: &[&str]) -> Update {
    Update {
        withdrawn: prefixes.iter().map(|s| p(s)).collect(),
        ..Update::default()
    }
}

#[test]
fn routes_from_a_peer_that_is_not_up_are_ignored() {
    let mut rib = OverlayRib::new(policy(10));
    let out = rib.update(&id("b"), &announce(&["192.0.2.2/32"], "198.51.100.2"));
    assert_eq!(out, Imported::default());
    assert_eq!(rib.route_count(), 0);
}

#[test]
fn services_identities_and_trusted_sources() {
    let mut rib = OverlayRib::new(policy(10));
    rib.peer_up(&id("b"), ip("198.51.100.2"), false);
    rib.peer_up(&id("c"), ip("198.51.100.3"), false);
    rib.update(
        &id("b"),
        &announce(&["192.0.2.2/32", "203.0.113.10/32"], "198.51.100.2"),
    );
    rib.update(
        &id("b"),
        &announce_v6(&["2001:db8:ac::10/128"], "2001:db8:ff::2"),
    );
    rib.update(
        &id("c"),
        &announce(
            &["192.0.2.3/32", "203.0.113.10/32", "203.0.113.53/32"],
            "198.51.100.3",
        ),
    );
    let services = rib.services();
    assert_eq!(services.len(), 3);
    let web: Vec<_> = services[&ip("203.0.113.10")]
        .iter()
        .map(|(k, v)| (k.name().to_string(), *v))
        .collect();
    assert_eq!(
        web,
        vec![
            ("b".into(), ip("198.51.100.2")),
            ("c".into(), ip("198.51.100.3"))
        ]
    );
    assert_eq!(
        services[&ip("2001:db8:ac::10")][&id("b")],
        ip("2001:db8:ff::2")
    );
    assert_eq!(rib.identities()[&id("c")], [ip("192.0.2.3")].into());
    let trusted: Vec<IpAddr> = rib.trusted_sources().into_keys().collect();
    assert_eq!(
        trusted,
        vec![ip("198.51.100.2"), ip("198.51.100.3"), ip("2001:db8:ff::2")]
    );
}

#[test]
fn withdrawals_and_peer_down_remove_routes_at_once() {
    let mut rib = OverlayRib::new(policy(10));
    rib.peer_up(&id("b"), ip("198.51.100.2"), false);
    rib.update(
        &id("b"),
        &announce(
            &["192.0.2.2/32", "203.0.113.10/32", "203.0.113.53/32"],
            "198.51.100.2",
        ),
    );
    let out = rib.update(&id("b"), &withdraw(&["203.0.113.53/32"]));
    assert!(
        matches!(&out.events[..], [RibEvent::Removed { prefix, .. }] if *prefix == p("203.0.113.53/32"))
    );
    let mut v6 = announce_v6(&["2001:db8:ac::10/128"], "2001:db8:ff::2");
    rib.update(&id("b"), &v6);
    v6.attributes.mp_reach = None;
    v6.attributes.mp_unreach = Some(MpUnreach {
        family: Family::IPV6_UNICAST,
        withdrawn: vec![p("2001:db8:ac::10/128")],
    });
    rib.update(&id("b"), &v6);
    assert_eq!(rib.route_count(), 2);
    let events = rib.peer_down(&id("b"));
    assert_eq!(events.len(), 3);
    assert_eq!(events.last(), Some(&RibEvent::PeerDown { peer: id("b") }));
    assert_eq!(rib.route_count(), 0);
    assert!(rib.services().is_empty());
    assert!(rib.trusted_sources().is_empty());
}

#[test]
fn rejections_are_counted_logged_once_and_good_routes_kept() {
    let mut rib = OverlayRib::new(policy(10));
    rib.peer_up(&id("b"), ip("198.51.100.2"), false);
    let out = rib.update(
        &id("b"),
        &announce(
            &[
                "0.0.0.0/0",
                "203.0.113.0/24",
                "198.18.0.1/32",
                "203.0.113.10/32",
                "198.18.0.2/32",
            ],
            "198.51.100.2",
        ),
    );
    assert_eq!(out.events.len(), 1);
    let rejected: Vec<_> = out
        .rejected
        .iter()
        .map(|(p, r, first)| (p.to_string(), *r, *first))
        .collect();
    assert_eq!(
        rejected,
        vec![
            ("0.0.0.0/0".into(), Rejection::Default, true),
            ("203.0.113.0/24".into(), Rejection::NotHostRoute, true),
            ("198.18.0.1/32".into(), Rejection::OutsideRanges, true),
            ("198.18.0.2/32".into(), Rejection::OutsideRanges, false),
        ]
    );
    let view = rib.peer(&id("b")).unwrap();
    assert_eq!(view.rejected[&Rejection::OutsideRanges], 2);
    assert_eq!(view.routes.len(), 1);
    // A new adjacency starts the counts (and the log-once) afresh.
    rib.peer_up(&id("b"), ip("198.51.100.2"), false);
    let out = rib.update(&id("b"), &announce(&["0.0.0.0/0"], "198.51.100.2"));
    assert_eq!(
        out.rejected,
        vec![(p("0.0.0.0/0"), Rejection::Default, true)]
    );
}

#[test]
fn a_rejected_reannouncement_removes_the_old_route() {
    let mut rib = OverlayRib::new(policy(10));
    rib.peer_up(&id("b"), ip("198.51.100.2"), false);
    rib.update(&id("b"), &announce(&["203.0.113.10/32"], "198.51.100.2"));
    let out = rib.update(&id("b"), &announce(&["203.0.113.10/32"], "198.51.100.99"));
    assert_eq!(
        out.rejected,
        vec![(p("203.0.113.10/32"), Rejection::ForeignNextHop, true)]
    );
    assert!(matches!(&out.events[..], [RibEvent::Removed { .. }]));
    assert!(rib.services().is_empty());
}

#[test]
fn the_limit_counts_accepted_routes_only() {
    let mut rib = OverlayRib::new(policy(2));
    rib.peer_up(&id("b"), ip("198.51.100.2"), false);
    let out = rib.update(
        &id("b"),
        &announce(
            &[
                "0.0.0.0/0",
                "192.0.2.2/32",
                "203.0.113.10/32",
                "203.0.113.53/32",
            ],
            "198.51.100.2",
        ),
    );
    assert_eq!(out.events.len(), 2);
    assert_eq!(
        out.rejected.last(),
        Some(&(p("203.0.113.53/32"), Rejection::OverLimit, true))
    );
    // Re-announcing an accepted route is not a new one.
    let out = rib.update(&id("b"), &announce(&["203.0.113.10/32"], "198.51.100.2"));
    assert!(out.rejected.is_empty() && out.events.is_empty());
    // After a withdrawal there is room again.
    rib.update(&id("b"), &withdraw(&["203.0.113.10/32"]));
    let out = rib.update(&id("b"), &announce(&["203.0.113.53/32"], "198.51.100.2"));
    assert_eq!(out.events.len(), 1);
}

#[test]
fn private_transport_only_when_allowed_and_working() {
    let mut rib = OverlayRib::new(policy(10));
    rib.peer_up(&id("b"), ip("198.51.100.2"), true);
    rib.peer_up(&id("c"), ip("198.51.100.3"), false);
    rib.update(&id("b"), &announce(&["203.0.113.10/32"], "198.51.100.2"));
    rib.update(&id("c"), &announce(&["203.0.113.10/32"], "198.51.100.3"));
    rib.update(
        &id("b"),
        &private_route("198.51.100.130/32", "198.51.100.2"),
    );
    rib.update(
        &id("c"),
        &private_route("198.51.100.131/32", "198.51.100.3"),
    );
    assert_eq!(rib.private_candidate(&id("b")), Some(ip("198.51.100.130")));
    assert_eq!(rib.private_candidate(&id("c")), None);
    // Announced but not yet probed: the Internet underlay.
    assert_eq!(
        rib.services()[&ip("203.0.113.10")][&id("b")],
        ip("198.51.100.2")
    );
    let events = rib.set_private_path(&id("b"), true);
    assert_eq!(
        events,
        vec![RibEvent::Transport {
            peer: id("b"),
            private: Some(ip("198.51.100.130"))
        }]
    );
    assert_eq!(
        rib.services()[&ip("203.0.113.10")][&id("b")],
        ip("198.51.100.130")
    );
    // Not allowed toward c: probing success changes nothing.
    assert!(rib.set_private_path(&id("c"), true).is_empty());
    assert_eq!(
        rib.services()[&ip("203.0.113.10")][&id("c")],
        ip("198.51.100.3")
    );
    // The private path fails: back to the Internet underlay.
    rib.set_private_path(&id("b"), false);
    assert_eq!(
        rib.services()[&ip("203.0.113.10")][&id("b")],
        ip("198.51.100.2")
    );
    // Withdrawn private address: transport event, and it is not trusted anymore.
    rib.set_private_path(&id("b"), true);
    let out = rib.update(&id("b"), &withdraw(&["198.51.100.130/32"]));
    assert!(out.events.contains(&RibEvent::Transport {
        peer: id("b"),
        private: None
    }));
    assert!(!rib.trusted_sources().contains_key(&ip("198.51.100.130")));
    assert!(!rib.trusted_sources().contains_key(&ip("198.51.100.131")));
}
