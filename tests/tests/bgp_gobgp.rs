//! The BGP speaker against a real GoBGP in network namespaces: one session
//! over IPv4 carrying IPv4 unicast, one over IPv6 carrying IPv6 unicast;
//! announced prefixes appear in GoBGP's RIB with the expected AS path,
//! communities and next hop, and a withdraw disappears there.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::{Duration, Instant},
};

use edge_agent::bgp::{
    io::Command,
    message::{Family, Prefix},
    neighbor::NeighborConfig,
    rib_out::{OriginAttrs, Origination},
    session::{SessionConfig, State},
};
use edge_tests::{
    gobgp::{Gobgp, GobgpNeighbor, gobgp_config},
    netns::{Netns, veth},
    plan::{CDN_ASN, ISP_ASNS, underlay_v4, underlay_v6},
    privilege::require_root,
    speaker::Speaker,
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
    NeighborConfig {
        session: SessionConfig {
            local_as: CDN_ASN,
            peer_as: ISP_ASNS[1],
            bgp_id: Ipv4Addr::new(192, 0, 2, 1),
            hold_time: 90,
            connect_retry: Duration::from_secs(1),
            passive: false,
            families: vec![family],
            graceful_restart: None,
            max_prefixes: Some(100),
        },
        peer: SocketAddr::new(peer, 179),
        local: None,
        md5_key: None,
        origination: Origination {
            local_as: CDN_ASN,
            ebgp: true,
            next_hop_v4: Some(underlay_v4(2)),
            next_hop_v6: Some((underlay_v6(2), None)),
        },
    }
}

fn until(gobgp: &mut Gobgp<'_>, args: &[&str], what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = gobgp.cli(args);
        if check(&out) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; `gobgp {}`:\n{out}",
            args.join(" ")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sessions_over_ipv4_and_ipv6_announce_and_withdraw_at_gobgp() {
    if !require_root("sessions_over_ipv4_and_ipv6_announce_and_withdraw_at_gobgp") {
        return;
    }
    let (isp, edge) = (Netns::new(), Netns::new());
    veth(&isp, "isp0", &edge, "up0");
    isp.add_addr("isp0", &format!("{}/30", underlay_v4(1)));
    isp.add_addr("isp0", &format!("{}/64", underlay_v6(1)));
    edge.add_addr("up0", &format!("{}/30", underlay_v4(2)));
    edge.add_addr("up0", &format!("{}/64", underlay_v6(2)));
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
    over_v4
        .commands
        .blocking_send(Command::Announce(V4, attrs.clone()))
        .unwrap();
    over_v6
        .commands
        .blocking_send(Command::Announce(V6, attrs))
        .unwrap();

    let rib4 = until(
        &mut gobgp,
        &["global", "rib", "-a", "ipv4"],
        "the IPv4 route",
        |o| o.contains("203.0.113.0/24"),
    );
    for expected in ["198.51.100.2", "64500", "64500:7", "64500:1:2", "Med: 20"] {
        assert!(
            rib4.contains(expected),
            "{expected} missing from GoBGP's IPv4 RIB:\n{rib4}"
        );
    }
    let rib6 = until(
        &mut gobgp,
        &["global", "rib", "-a", "ipv6"],
        "the IPv6 route",
        |o| o.contains("2001:db8:ac::/48"),
    );
    for expected in ["2001:db8:ff::2", "64500", "64500:7"] {
        assert!(
            rib6.contains(expected),
            "{expected} missing from GoBGP's IPv6 RIB:\n{rib6}"
        );
    }

    over_v4
        .commands
        .blocking_send(Command::Withdraw(V4))
        .unwrap();
    until(
        &mut gobgp,
        &["global", "rib", "-a", "ipv4"],
        "the IPv4 withdrawal",
        |o| !o.contains("203.0.113.0/24"),
    );
    over_v6
        .commands
        .blocking_send(Command::Withdraw(V6))
        .unwrap();
    until(
        &mut gobgp,
        &["global", "rib", "-a", "ipv6"],
        "the IPv6 withdrawal",
        |o| !o.contains("2001:db8:ac::/48"),
    );
    let neighbors = gobgp.cli(&["neighbor"]);
    assert_eq!(
        neighbors.matches("Establ").count(),
        2,
        "both sessions stay up:\n{neighbors}"
    );
}
