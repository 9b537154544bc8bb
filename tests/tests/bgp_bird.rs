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
    io::{self, Command, Ended, Telemetry},
    message::{Family, Prefix},
    rib_out::{OriginAttrs, Origination, RibOut},
    session::{Input, Session, SessionConfig, State},
};
use edge_tests::{
    bird::{BgpNeighbor, Bird, bgp_config},
    netns::{Netns, veth},
    plan::{CDN_ASN, ISP_ASNS, underlay_v4, underlay_v6},
    privilege::require_root,
};
use tokio::sync::mpsc;

const V4: Prefix = Prefix::V4 {
    addr: Ipv4Addr::new(203, 0, 113, 0),
    len: 24,
};
const V6: Prefix = Prefix::V6 {
    addr: Ipv6Addr::new(0x2001, 0xdb8, 0xac, 0, 0, 0, 0, 0),
    len: 48,
};

/// Polls `birdc` until `check` holds for its output, for at most 10 s.
fn until(bird: &mut Bird, command: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = bird.query(command);
        if check(&out) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; `birdc {command}`:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn announce_drain_withdraw_and_shutdown_at_bird() {
    if !require_root("announce_drain_withdraw_and_shutdown_at_bird") {
        return;
    }
    let (isp, edge) = (Netns::new(), Netns::new());
    veth(&isp, "isp0", &edge, "up0");
    isp.add_addr("isp0", &format!("{}/30", underlay_v4(1)));
    isp.add_addr("isp0", &format!("{}/64", underlay_v6(1)));
    edge.add_addr("up0", &format!("{}/30", underlay_v4(2)));
    edge.add_addr("up0", &format!("{}/64", underlay_v6(2)));
    let neighbor = BgpNeighbor::new("edge", underlay_v4(2).into(), CDN_ASN);
    let mut bird = Bird::start(&isp, &bgp_config(underlay_v4(1), ISP_ASNS[0], &[neighbor]));

    let (commands, mut command_rx) = mpsc::channel(16);
    let (telemetry, status) = Telemetry::new();
    let edge_name = edge.name().to_owned();
    let speaker = std::thread::spawn(move || {
        edge_agent::netns::enter(&edge_name).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut session = Session::new(SessionConfig {
                local_as: CDN_ASN,
                peer_as: ISP_ASNS[0],
                bgp_id: Ipv4Addr::new(192, 0, 2, 1),
                hold_time: 90,
                connect_retry: Duration::from_secs(1),
                passive: false,
                families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
                graceful_restart: None,
                max_prefixes: Some(100),
            });
            session.handle(Input::Start, Instant::now());
            while session.poll_action().is_some() {}
            let stream = tokio::net::TcpStream::connect((underlay_v4(1), 179))
                .await
                .expect("connect to BIRD");
            let origination = Origination {
                local_as: CDN_ASN,
                ebgp: true,
                next_hop_v4: Some(underlay_v4(2)),
                next_hop_v6: Some((underlay_v6(2), None)),
            };
            let mut rib = RibOut::default();
            // This test drives one connection directly: no inbound ones.
            let (_inbound, mut inbound_rx) = mpsc::channel(1);
            let ended = io::run(
                stream,
                true,
                &mut inbound_rx,
                &mut session,
                &mut rib,
                &origination,
                &mut command_rx,
                &telemetry,
            )
            .await;
            match ended {
                Ended::Down(reason) => reason,
                Ended::Collision(_) => panic!("no collision was possible"),
            }
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
    commands
        .blocking_send(Command::Announce(V4, attrs.clone()))
        .unwrap();
    commands
        .blocking_send(Command::Announce(V6, attrs.clone()))
        .unwrap();
    let route = until(
        &mut bird,
        "show route all 203.0.113.0/24",
        "the IPv4 route",
        |o| o.contains("BGP.as_path: 64500"),
    );
    assert!(
        route.contains("via 198.51.100.2"),
        "next hop self:\n{route}"
    );
    assert!(route.contains("(64500,7)"), "community:\n{route}");
    assert!(route.contains("(64500, 1, 2)"), "large community:\n{route}");
    let route6 = until(
        &mut bird,
        "show route all 2001:db8:ac::/48",
        "the IPv6 route",
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
    commands
        .blocking_send(Command::Announce(V4, drain))
        .unwrap();
    let drained = until(
        &mut bird,
        "show route all 203.0.113.0/24",
        "the drained route",
        |o| o.contains("BGP.as_path: 64500 64500 64500"),
    );
    assert!(
        drained.contains("(65535,0)"),
        "GRACEFUL_SHUTDOWN:\n{drained}"
    );

    commands.blocking_send(Command::Withdraw(V4)).unwrap();
    until(
        &mut bird,
        "show route 203.0.113.0/24",
        "the withdrawal",
        |o| !o.contains("203.0.113.0/24"),
    );
    assert!(
        bird.query("show route 2001:db8:ac::/48")
            .contains("2001:db8:ac::/48"),
        "the other route stays"
    );

    commands
        .blocking_send(Command::Shutdown("edge maintenance".into()))
        .unwrap();
    let reason = speaker.join().expect("speaker thread");
    assert_eq!(reason, edge_agent::bgp::session::DownReason::Stopped);
    let protocol = until(&mut bird, "show protocols all edge", "the shutdown", |o| {
        o.contains("Administrative shutdown")
    });
    assert!(
        protocol.contains("edge maintenance"),
        "RFC 8203 message at BIRD:\n{protocol}"
    );
    until(
        &mut bird,
        "show route 2001:db8:ac::/48",
        "routes gone after shutdown",
        |o| !o.contains("2001:db8:ac::/48"),
    );
    assert!(status.borrow().updates_sent >= 4);
}
