//! The BGP speaker against a real GoBGP in network namespaces: one session
//! over IPv4 carrying IPv4 unicast, one over IPv6 carrying IPv6 unicast;
//! announced prefixes appear in GoBGP's RIB with the expected AS path,
//! communities and next hop, and a withdraw disappears there.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use edge_agent::bgp::{
    message::{Family, Prefix},
    neighbor::NeighborConfig,
    rib_out::OriginAttrs,
    session::State,
};
use edge_tests::{
    gobgp::{Gobgp, GobgpNeighbor, gobgp_config},
    plan::{CDN_ASN, ISP_ASNS, underlay_v4, underlay_v6},
    privilege::require_root,
    speaker::Speaker,
    upstream,
};

const V4: Prefix = Prefix::V4 {
    addr: Ipv4Addr::new(203, 0, 113, 0),
    len: 24,
};
const V6: Prefix = Prefix::V6 {
    addr: Ipv6Addr::new(0x2001, 0xdb8, 0xac, 0, 0, 0, 0, 0),
    len: 48,
};

fn neighbor(peer: IpAddr, family: Family) -> NeighborConfig {
    let mut config = upstream::neighbor(peer, ISP_ASNS[1], vec![family]);
    config.session.max_prefixes = Some(100);
    config
}

/// How long GoBGP gets to show a change.
const WAIT: Duration = Duration::from_secs(15);

#[test]
fn sessions_over_ipv4_and_ipv6_announce_and_withdraw_at_gobgp() {
    if !require_root("sessions_over_ipv4_and_ipv6_announce_and_withdraw_at_gobgp") {
        return;
    }
    let (isp, edge) = upstream::link();
    let config = gobgp_config(
        underlay_v4(1),
        ISP_ASNS[1],
        &[
            GobgpNeighbor {
                address: underlay_v4(2).into(),
                asn: CDN_ASN,
                families: vec!["ipv4-unicast"],
            },
            GobgpNeighbor {
                address: underlay_v6(2).into(),
                asn: CDN_ASN,
                families: vec!["ipv6-unicast"],
            },
        ],
    );
    let mut gobgp = Gobgp::start(&isp, &config);

    let over_v4 = Speaker::spawn(&edge, neighbor(underlay_v4(1).into(), Family::IPV4_UNICAST));
    let over_v6 = Speaker::spawn(&edge, neighbor(underlay_v6(1).into(), Family::IPV6_UNICAST));
    for speaker in [&over_v4, &over_v6] {
        speaker.wait_for("Established", Duration::from_secs(15), |s| {
            s.state == Some(State::Established)
        });
    }
    let attrs = OriginAttrs {
        med: Some(20),
        communities: vec![CDN_ASN << 16 | 7],
        large_communities: vec![(CDN_ASN, 1, 2)],
        ..OriginAttrs::default()
    };
    over_v4.announce(V4, attrs.clone());
    over_v6.announce(V6, attrs);

    let rib4 = gobgp.wait_for(
        &["global", "rib", "-a", "ipv4"],
        "the IPv4 route",
        WAIT,
        |o| o.contains("203.0.113.0/24"),
    );
    for expected in ["198.51.100.2", "64500", "64500:7", "64500:1:2", "Med: 20"] {
        assert!(
            rib4.contains(expected),
            "{expected} missing from GoBGP's IPv4 RIB:\n{rib4}"
        );
    }
    let rib6 = gobgp.wait_for(
        &["global", "rib", "-a", "ipv6"],
        "the IPv6 route",
        WAIT,
        |o| o.contains("2001:db8:ac::/48"),
    );
    for expected in ["2001:db8:ff::2", "64500", "64500:7"] {
        assert!(
            rib6.contains(expected),
            "{expected} missing from GoBGP's IPv6 RIB:\n{rib6}"
        );
    }

    over_v4.withdraw(V4);
    gobgp.wait_for(
        &["global", "rib", "-a", "ipv4"],
        "the IPv4 withdrawal",
        WAIT,
        |o| !o.contains("203.0.113.0/24"),
    );
    over_v6.withdraw(V6);
    gobgp.wait_for(
        &["global", "rib", "-a", "ipv6"],
        "the IPv6 withdrawal",
        WAIT,
        |o| !o.contains("2001:db8:ac::/48"),
    );
    let neighbors = gobgp.cli(&["neighbor"]);
    assert_eq!(
        neighbors.matches("Establ").count(),
        2,
        "both sessions stay up:\n{neighbors}"
    );
}
