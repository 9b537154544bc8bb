//! The neighbour runner against real BIRD 2: TCP MD5 with the right and the
//! wrong key, Cease when BIRD sends more prefixes than allowed, and
//! graceful restart keeping our routes at BIRD through an abrupt restart,
//! a frozen speaker, passive mode and collisions, and an IPv6 transport.

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    time::{Duration, Instant},
};

use edge_agent::bgp::{
    io::Event,
    message::{Family, Prefix},
    neighbor::NeighborConfig,
    rib_out::OriginAttrs,
    session::{DownReason, GracefulRestart, State},
    speaker::Status,
};
use edge_tests::{
    bird::{BgpNeighbor, Bird, bgp_config, static_routes},
    netns::Netns,
    plan::{CDN_ASN, ISP_ASNS, underlay_v4, underlay_v6},
    privilege::require_root,
    speaker::Speaker,
    upstream,
};

const V4: Prefix = Prefix::V4 {
    addr: Ipv4Addr::new(203, 0, 113, 0),
    len: 24,
};

fn config(
    md5_key: Option<&[u8]>,
    max_prefixes: Option<u32>,
    graceful_restart: Option<GracefulRestart>,
) -> NeighborConfig {
    let mut config = upstream::neighbor(
        underlay_v4(1).into(),
        ISP_ASNS[0],
        vec![Family::IPV4_UNICAST],
    );
    config.session.max_prefixes = max_prefixes;
    config.session.graceful_restart = graceful_restart;
    config.local = Some(underlay_v4(2).into());
    config.md5_key = md5_key.map(<[u8]>::to_vec);
    config
}

/// An ISP namespace with BIRD and an edge namespace, joined by a veth.
fn world(options: &str, export_all: bool, extra: &str) -> (Netns, Netns, Bird) {
    let (isp, edge) = upstream::link();
    let neighbor = BgpNeighbor {
        options: options.into(),
        export_all,
        ..BgpNeighbor::new("edge", underlay_v4(2).into(), CDN_ASN)
    };
    let bird = Bird::start(
        &isp,
        &(bgp_config(underlay_v4(1), ISP_ASNS[0], &[neighbor]) + extra),
    );
    (isp, edge, bird)
}

fn established(s: &Status) -> bool {
    s.state == Some(State::Established)
}

/// How long BIRD usually gets to show a change.
const TEN_S: Duration = Duration::from_secs(10);

/// Our IPv4 prefix as BIRD prints it.
const V4_TEXT: &str = "203.0.113.0/24";

/// An IPv6 /48 of ours as BIRD prints it.
const V6_TEXT: &str = "2001:db8:ac::/48";

/// Whether BIRD has `prefix` now.
fn has_route(bird: &mut Bird, prefix: &str) -> bool {
    bird.query(&format!("show route {prefix}")).contains(prefix)
}

/// Waits until BIRD has (`want`) or no longer has `prefix`; returns what
/// `show route all` said of it.
fn wait_route(bird: &mut Bird, prefix: &str, want: bool, what: &str, timeout: Duration) -> String {
    bird.wait_for(&format!("show route all {prefix}"), what, timeout, |o| {
        o.contains(prefix) == want
    })
}

#[test]
fn tcp_md5_right_key_establishes_wrong_key_never_does() {
    if !require_root("tcp_md5_right_key_establishes_wrong_key_never_does") {
        return;
    }
    let (_isp, edge, _bird) = world("  password \"upstream-secret\";", false, "");
    let wrong = Speaker::spawn(&edge, config(Some(b"not-the-secret"), None, None));
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !established(&wrong.status.borrow()),
        "a wrong key must never establish"
    );
    wrong.crash();
    let none = Speaker::spawn(&edge, config(None, None, None));
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !established(&none.status.borrow()),
        "no key must never establish"
    );
    none.crash();
    let right = Speaker::spawn(&edge, config(Some(b"upstream-secret"), None, None));
    right.wait_for(
        "Established with the right key",
        Duration::from_secs(10),
        established,
    );
}

#[test]
fn too_many_prefixes_from_the_peer_cease() {
    if !require_root("too_many_prefixes_from_the_peer_cease") {
        return;
    }
    let routes = static_routes(&["198.18.1.0/24", "198.18.2.0/24", "198.18.3.0/24"]);
    let (_isp, edge, mut bird) = world("", true, &routes);
    let speaker = Speaker::spawn(&edge, config(None, Some(2), None));
    speaker.wait_for("the max-prefix Cease", Duration::from_secs(10), |s| {
        matches!(&s.last_down, Some(DownReason::NotificationSent(n)) if (n.code, n.subcode) == (6, 1))
    });
    bird.wait_for(
        "show protocols all edge",
        "BIRD to see the Cease",
        Duration::from_secs(5),
        |o| o.contains("Maximum number of prefixes reached"),
    );
}

#[test]
fn graceful_restart_keeps_our_routes_at_bird_through_a_restart() {
    if !require_root("graceful_restart_keeps_our_routes_at_bird_through_a_restart") {
        return;
    }
    let (_isp, edge, mut bird) = world("  graceful restart on;", false, "");
    let gr = GracefulRestart {
        restart_time: 60,
        restarted: false,
    };
    let first = Speaker::spawn(&edge, config(None, None, Some(gr)));
    first.wait_for("Established", Duration::from_secs(10), established);
    first.announce(V4, OriginAttrs::default());
    wait_route(&mut bird, V4_TEXT, true, "the route", TEN_S);

    // The agent dies: no NOTIFICATION, the connection just closes.
    first.crash();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            has_route(&mut bird, V4_TEXT),
            "BIRD dropped our route during the restart:\n{}",
            bird.query("show protocols all edge")
        );
    }

    // The agent is back, with the restart bit set; the route never left.
    let second = Speaker::spawn(
        &edge,
        config(
            None,
            None,
            Some(GracefulRestart {
                restarted: true,
                ..gr
            }),
        ),
    );
    second.announce(V4, OriginAttrs::default());
    second.wait_for("Established again", Duration::from_secs(10), established);
    for _ in 0..10 {
        assert!(
            has_route(&mut bird, V4_TEXT),
            "route lost after the restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // BIRD keeps stale routes only until End-of-RIB: ours is fresh now.
    let route = bird.query("show route all 203.0.113.0/24");
    assert!(!route.to_lowercase().contains("stale"), "{route}");

    // Without graceful restart, the same crash loses the route: the control.
    let (_isp2, edge2, mut bird2) = world("", false, "");
    let plain = Speaker::spawn(&edge2, config(None, None, None));
    plain.wait_for("Established", Duration::from_secs(10), established);
    plain.announce(V4, OriginAttrs::default());
    wait_route(&mut bird2, V4_TEXT, true, "the route (control)", TEN_S);
    plain.crash();
    wait_route(
        &mut bird2,
        V4_TEXT,
        false,
        "the route to go without graceful restart",
        Duration::from_secs(5),
    );
}

#[test]
fn a_frozen_speaker_loses_its_session_to_the_hold_timer_and_comes_back() {
    if !require_root("a_frozen_speaker_loses_its_session_to_the_hold_timer_and_comes_back") {
        return;
    }
    // BIRD waits 60 s after an error before talking again by default; 1 s here.
    let (_isp, edge, mut bird) = world(
        "  hold time 3;\n  keepalive time 1;\n  error wait time 1, 5;",
        false,
        "",
    );
    let mut speaker = edge
        .command(env!("CARGO_BIN_EXE_edge-bgp-speaker"))
        .args([
            "198.51.100.1",
            "64496",
            "64500",
            "90",
            "198.51.100.2",
            "203.0.113.0/24",
        ])
        .spawn()
        .expect("start the speaker process");
    let wait = |bird: &mut Bird, what: &str, want: bool| {
        wait_route(bird, V4_TEXT, want, what, Duration::from_secs(15));
    };
    wait(&mut bird, "the route", true);
    let pid = speaker.id() as i32;
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let frozen = Instant::now();
    wait(&mut bird, "the hold timer to expire", false);
    let after = frozen.elapsed();
    assert!(
        after >= Duration::from_secs(2),
        "the route went after {after:?}, before the 3 s hold time"
    );
    assert!(
        bird.query("show protocols all edge")
            .contains("Hold timer expired")
    );
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    wait(&mut bird, "the route after the speaker thawed", true);
    let _ = speaker.kill();
    let _ = speaker.wait();
}

#[test]
fn a_passive_speaker_accepts_birds_connection_only() {
    if !require_root("a_passive_speaker_accepts_birds_connection_only") {
        return;
    }
    let (_isp, edge, mut bird) = world("", false, "");
    let mut passive = config(None, None, None);
    passive.session.passive = true;
    let listen = SocketAddr::new(underlay_v4(2).into(), 179);
    let mut speaker = Speaker::spawn_listening(&edge, passive, Some(listen));
    speaker.wait_for(
        "BIRD's connection to reach Established",
        Duration::from_secs(10),
        established,
    );
    speaker.announce(V4, OriginAttrs::default());
    wait_route(
        &mut bird,
        V4_TEXT,
        true,
        "the route over the accepted session",
        TEN_S,
    );
    // Passive: we never connected, so there was nothing to collide with.
    assert_eq!(speaker.status.borrow().collisions, 0);
    // The events tell the story in order: Active (waiting), then the
    // accepted connection through OpenSent and OpenConfirm to Established.
    let mut states = Vec::new();
    while let Ok(event) = speaker.events.try_recv() {
        if let Event::StateChanged { to, .. } = event {
            states.push(to);
        }
    }
    assert_eq!(
        states,
        [
            State::Active,
            State::OpenSent,
            State::OpenConfirm,
            State::Established
        ]
    );
    speaker.shutdown("maintenance");
    wait_route(&mut bird, V4_TEXT, false, "the withdrawal", TEN_S);
    speaker.wait_for("the Cease", Duration::from_secs(5), |s| {
        s.last_down == Some(DownReason::Stopped)
    });
}

#[test]
fn both_sides_connecting_settle_on_one_stable_session() {
    if !require_root("both_sides_connecting_settle_on_one_stable_session") {
        return;
    }
    let (_isp, edge, mut bird) = world("", false, "");
    let listen = SocketAddr::new(underlay_v4(2).into(), 179);
    let speaker = Speaker::spawn_listening(&edge, config(None, None, None), Some(listen));
    speaker.wait_for("Established", Duration::from_secs(10), established);
    speaker.announce(V4, OriginAttrs::default());
    wait_route(&mut bird, V4_TEXT, true, "the route", TEN_S);
    // Whichever connection won, exactly one session stays up: no flapping
    // between the two connections.
    std::thread::sleep(Duration::from_secs(3));
    let status = speaker.status.borrow().clone();
    assert!(established(&status), "{status:?}");
    assert_eq!(status.established_count, 1, "{status:?}");
    assert!(
        bird.query("show protocols edge").contains("Established"),
        "{}",
        bird.query("show protocols all edge")
    );
}

#[test]
fn a_session_over_ipv6_transport_announces_a_48_at_bird() {
    if !require_root("a_session_over_ipv6_transport_announces_a_48_at_bird") {
        return;
    }
    let (isp, edge) = upstream::link();
    let neighbor = BgpNeighbor::new("edge", underlay_v6(2).into(), CDN_ASN);
    let mut bird = Bird::start(&isp, &bgp_config(underlay_v4(1), ISP_ASNS[0], &[neighbor]));
    let mut over_v6 = upstream::neighbor(
        underlay_v6(1).into(),
        ISP_ASNS[0],
        vec![Family::IPV6_UNICAST],
    );
    over_v6.local = Some(underlay_v6(2).into());
    let speaker = Speaker::spawn(&edge, over_v6);
    speaker.wait_for(
        "Established over IPv6",
        Duration::from_secs(15),
        established,
    );
    let v6 = Prefix::V6 {
        addr: Ipv6Addr::new(0x2001, 0xdb8, 0xac, 0, 0, 0, 0, 0),
        len: 48,
    };
    speaker.announce(v6, OriginAttrs::default());
    let route = wait_route(&mut bird, V6_TEXT, true, "the /48", TEN_S);
    let next_hop = underlay_v6(2).to_string();
    assert!(route.contains(&next_hop), "next hop: {route}");
    assert!(
        route.contains(&format!("BGP.as_path: {CDN_ASN}")),
        "{route}"
    );
    speaker.withdraw(v6);
    wait_route(&mut bird, V6_TEXT, false, "the withdrawal", TEN_S);
}
