//! The BGP speaker against a real BIRD 2 in network namespaces: the
//! session comes up over IPv4 carrying IPv4 and IPv6 unicast; announced
//! prefixes appear at BIRD with the expected AS path, communities and next
//! hop; drain (GRACEFUL_SHUTDOWN + prepend) shows there; a withdraw
//! disappears there; shutdown arrives as Cease with our message.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use edge_agent::bgp::{
    io::{self, Telemetry},
    message::{Family, Prefix},
    rib_out::OriginAttrs,
    session::{SessionConfig, State},
    speaker::{Intent, Speaker},
};
use edge_tests::{
    bird::{BgpNeighbor, Bird, bgp_config},
    plan::{CDN_ASN, ISP_ASNS, underlay_v4},
    privilege::require_root,
    upstream,
};
use tokio::sync::watch;

const V4: Prefix = Prefix::V4 {
    addr: Ipv4Addr::new(203, 0, 113, 0),
    len: 24,
};
/// How long BIRD gets to show a change.
const WAIT: Duration = Duration::from_secs(10);

const V6: Prefix = Prefix::V6 {
    addr: Ipv6Addr::new(0x2001, 0xdb8, 0xac, 0, 0, 0, 0, 0),
    len: 48,
};

#[test]
fn announce_drain_withdraw_and_shutdown_at_bird() {
    if !require_root("announce_drain_withdraw_and_shutdown_at_bird") {
        return;
    }
    let (isp, edge) = upstream::link();
    let neighbor = BgpNeighbor::new("edge", underlay_v4(2).into(), CDN_ASN);
    let mut bird = Bird::start(&isp, &bgp_config(underlay_v4(1), ISP_ASNS[0], &[neighbor]));

    let (commands, intent) = watch::channel(Intent::default());
    let (telemetry, status) = Telemetry::new();
    let edge_name = edge.name().to_owned();
    let speaker = std::thread::spawn(move || {
        let runtime = edge_tests::netns::runtime_in(&edge_name);
        runtime.block_on(async move {
            let neighbor = upstream::neighbor(
                underlay_v4(1).into(),
                ISP_ASNS[0],
                vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            );
            let speaker = Speaker::new(
                SessionConfig {
                    max_prefixes: Some(100),
                    // This test drives one connection directly.
                    passive: true,
                    ..neighbor.session
                },
                neighbor.origination,
                Instant::now(),
            );
            let stream = tokio::net::TcpStream::connect(neighbor.peer)
                .await
                .expect("connect to BIRD");
            io::run_connection(stream, true, speaker, intent, &telemetry, None).await
        })
    });
    let established = Instant::now() + Duration::from_secs(15);
    while status.borrow().state != Some(State::Established) {
        assert!(
            Instant::now() < established,
            "no session: {:?}\n{}",
            status.borrow(),
            bird.query("show protocols all edge")
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let attrs = OriginAttrs {
        communities: vec![CDN_ASN << 16 | 7],
        large_communities: vec![(CDN_ASN, 1, 2)],
        ..OriginAttrs::default()
    };
    commands.send_modify(|i| i.announce(V4, attrs.clone()));
    commands.send_modify(|i| i.announce(V6, attrs.clone()));
    let route = bird.wait_for(
        "show route all 203.0.113.0/24",
        "the IPv4 route",
        WAIT,
        |o| o.contains("BGP.as_path: 64500"),
    );
    assert!(
        route.contains("via 198.51.100.2"),
        "next hop self:\n{route}"
    );
    assert!(route.contains("(64500,7)"), "community:\n{route}");
    assert!(route.contains("(64500, 1, 2)"), "large community:\n{route}");
    let route6 = bird.wait_for(
        "show route all 2001:db8:ac::/48",
        "the IPv6 route",
        WAIT,
        |o| o.contains("BGP.as_path: 64500"),
    );
    assert!(
        route6.contains("2001:db8:ff::2"),
        "IPv6 next hop:\n{route6}"
    );

    // Drain: GRACEFUL_SHUTDOWN and two extra copies of our ASN.
    let drain = OriginAttrs {
        prepend: 2,
        graceful_shutdown: true,
        ..attrs
    };
    commands.send_modify(|i| i.announce(V4, drain));
    let drained = bird.wait_for(
        "show route all 203.0.113.0/24",
        "the drained route",
        WAIT,
        |o| o.contains("BGP.as_path: 64500 64500 64500"),
    );
    assert!(
        drained.contains("(65535,0)"),
        "GRACEFUL_SHUTDOWN:\n{drained}"
    );

    commands.send_modify(|i| i.withdraw(V4));
    bird.wait_for("show route 203.0.113.0/24", "the withdrawal", WAIT, |o| {
        !o.contains("203.0.113.0/24")
    });
    assert!(
        bird.query("show route 2001:db8:ac::/48")
            .contains("2001:db8:ac::/48"),
        "the other route stays"
    );

    commands.send_modify(|i| i.stop("edge maintenance"));
    let reason = speaker.join().expect("speaker thread");
    assert_eq!(reason, edge_agent::bgp::session::DownReason::Stopped);
    let protocol = bird.wait_for("show protocols all edge", "the shutdown", WAIT, |o| {
        o.contains("Administrative shutdown")
    });
    assert!(
        protocol.contains("edge maintenance"),
        "RFC 8203 message at BIRD:\n{protocol}"
    );
    bird.wait_for(
        "show route 2001:db8:ac::/48",
        "routes gone after shutdown",
        WAIT,
        |o| !o.contains("2001:db8:ac::/48"),
    );
    assert!(status.borrow().updates_sent >= 4);
}
