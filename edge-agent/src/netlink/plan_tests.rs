use std::net::IpAddr;

use super::*;
use crate::netlink::state::{Address, LinkState, Neighbour, Route};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addr(s: &str) -> Address {
    let ip = ip(s);
    Address {
        addr: ip,
        prefix_len: if ip.is_ipv4() { 32 } else { 128 },
    }
}

fn route(dst: &str, gw: Option<&str>, oif: u32) -> Route {
    Route {
        dst: crate::bgp::message::Prefix::host(ip(dst)),
        gateway: gw.map(ip),
        oif,
        src: None,
    }
}

fn desired() -> Desired {
    let routes = [
        route("198.51.100.2", None, 2),
        route("192.0.2.2", Some("198.51.100.2"), 2),
    ];
    Desired {
        addresses: [
            addr("192.0.2.1"),
            addr("203.0.113.10"),
            addr("2001:db8:ac::10"),
        ]
        .into(),
        routes: routes.iter().map(|r| (r.dst, *r)).collect(),
        neighbours: [Neighbour {
            addr: ip("198.51.100.2"),
            ifindex: 2,
        }]
        .into(),
    }
}

fn up(index: u32) -> Option<LinkState> {
    Some(LinkState { index, up: true })
}

#[test]
fn from_empty_everything_is_added_in_order() {
    let changes = plan(&desired(), &Actual::default());
    assert_eq!(changes[..2], [Change::CreateLink, Change::LinkUp]);
    let kinds: Vec<&str> = changes[2..]
        .iter()
        .map(|c| match c {
            Change::AddAddress(_) => "addr",
            Change::AddNeighbour(_) => "neigh",
            Change::AddRoute(_) => "route",
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["addr", "addr", "addr", "neigh", "route", "route"]);
}

#[test]
fn agreement_is_no_change() {
    let d = desired();
    let actual = Actual {
        link: up(7),
        addresses: d.addresses.clone(),
        routes: d.routes.clone(),
        neighbours: d.neighbours.clone(),
    };
    assert!(plan(&d, &actual).is_empty());
}

#[test]
fn partial_and_stale_state_give_the_smallest_difference() {
    let d = desired();
    let mut actual = Actual {
        link: Some(LinkState {
            index: 7,
            up: false,
        }),
        addresses: [addr("192.0.2.1"), addr("203.0.113.53")].into(),
        ..Actual::default()
    };
    // One route right, one with a stale gateway, one that should not be there.
    let right = route("198.51.100.2", None, 2);
    let stale_gw = route("192.0.2.2", Some("198.51.100.9"), 2);
    let extra = route("192.0.2.3", Some("198.51.100.3"), 2);
    for r in [right, stale_gw, extra] {
        actual.routes.insert(r.dst, r);
    }
    actual.neighbours.insert(Neighbour {
        addr: ip("198.51.100.3"),
        ifindex: 2,
    });
    let changes = plan(&d, &actual);
    assert_eq!(
        changes,
        vec![
            Change::LinkUp,
            Change::AddAddress(addr("203.0.113.10")),
            Change::AddAddress(addr("2001:db8:ac::10")),
            Change::AddNeighbour(Neighbour {
                addr: ip("198.51.100.2"),
                ifindex: 2
            }),
            Change::ReplaceRoute(route("192.0.2.2", Some("198.51.100.2"), 2)),
            Change::DelRoute(extra),
            Change::DelAddress(addr("203.0.113.53")),
            Change::DelNeighbour(Neighbour {
                addr: ip("198.51.100.3"),
                ifindex: 2
            }),
        ]
    );
}

#[test]
fn teardown_removes_all_that_is_owned_and_creates_nothing() {
    let d = desired();
    let actual = Actual {
        link: Some(LinkState {
            index: 7,
            up: false,
        }),
        addresses: d.addresses.clone(),
        routes: d.routes.clone(),
        neighbours: d.neighbours.clone(),
    };
    let changes = teardown(&actual);
    assert_eq!(changes.len(), 6);
    assert!(changes.iter().all(|c| matches!(
        c,
        Change::DelAddress(_) | Change::DelRoute(_) | Change::DelNeighbour(_)
    )));
    assert!(teardown(&Actual::default()).is_empty());
}
