//! Single-hop BFD (RFC 5880/5881) between the upstream neighbour runner
//! and real BIRD 2 (`protocol bfd`, `bfd on` on its BGP session), with
//! Meticulous Keyed SHA1: both come up; when our frames stop, BIRD closes
//! its session; when BIRD's stop, we close ours; both recover when the
//! path returns; packets with the wrong key or from beyond the link are
//! dropped, counted, and change nothing.

use std::{
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use edge_agent::{
    bfd::{
        BfdStatus, DropReason, SessionConfig, Timers,
        auth::AuthKey,
        packet::{Diag, State as BfdState},
    },
    bgp::{message::Family, session::DownReason, session::State, speaker::Status},
};
use edge_tests::{
    bfd::forged_down,
    bird::{BgpNeighbor, Bird, bgp_config},
    netns::Netns,
    plan::{CDN_ASN, ISP_ASNS, underlay_v4},
    privilege::require_root,
    speaker::Speaker,
    upstream,
};
use tokio::sync::watch;

const SECRET: &str = "bfd-upstream-key";

fn bfd_config() -> SessionConfig {
    SessionConfig {
        timers: Timers {
            min_tx: Duration::from_millis(100),
            min_rx: Duration::from_millis(100),
            multiplier: 3,
        },
        auth: Some(AuthKey {
            meticulous: true,
            key_id: 1,
            secret: SECRET.as_bytes().to_vec(),
        }),
    }
}

/// BIRD at the ISP end of the link with BFD on its session to the edge.
fn world() -> (Netns, Netns, Bird) {
    let (isp, edge) = upstream::link();
    let neighbor = BgpNeighbor {
        // BIRD waits 60 s after an error before it takes a session
        // again unless told otherwise.
        options: "  bfd on;\n  error wait time 1, 2;".into(),
        ..BgpNeighbor::new("edge", underlay_v4(2).into(), CDN_ASN)
    };
    let bfd = edge_tests::bfd::bird_protocol("*", SECRET);
    let bird = Bird::start(
        &isp,
        &(bgp_config(underlay_v4(1), ISP_ASNS[0], &[neighbor]) + &bfd),
    );
    (isp, edge, bird)
}

fn speaker(edge: &Netns) -> Speaker {
    let mut config = upstream::neighbor(
        underlay_v4(1).into(),
        ISP_ASNS[0],
        vec![Family::IPV4_UNICAST],
    );
    config.local = Some(underlay_v4(2).into());
    config.bfd = Some(bfd_config());
    Speaker::spawn(edge, config)
}

fn established(s: &Status) -> bool {
    s.state == Some(State::Established)
}

fn wait_bfd(
    bfd: &watch::Receiver<BfdStatus>,
    what: &str,
    timeout: Duration,
    check: impl Fn(&BfdStatus) -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !check(&bfd.borrow()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            *bfd.borrow()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Drops every BFD Control packet `ns` sends (BGP's TCP still flows).
fn drop_bfd_out(ns: &Netns) {
    ns.nft(
        "table inet bfd_cut {\n  chain out {\n    type filter hook output priority 0; policy accept;\n    \
         udp dport 3784 drop\n  }\n}\n",
    );
}

fn restore(ns: &Netns) {
    ns.nft("delete table inet bfd_cut\n");
}

const TEN_S: Duration = Duration::from_secs(10);

#[test]
fn bfd_with_bird_detects_a_silent_path_both_ways_and_recovers() {
    if !require_root("bfd_with_bird_detects_a_silent_path_both_ways_and_recovers") {
        return;
    }
    let (isp, edge, mut bird) = world();
    let speaker = speaker(&edge);
    let bfd = speaker.bfd.clone().expect("a BFD session");
    speaker.wait_for("Established", TEN_S, established);
    wait_bfd(&bfd, "BFD Up", TEN_S, |s| s.session.state == BfdState::Up);
    bird.wait_for("show bfd sessions", "BIRD's BFD session Up", TEN_S, |o| {
        o.contains("198.51.100.2") && o.contains("Up")
    });
    // The timers both sides poll for once Up: 100 ms both ways,
    // detection after 300 ms.
    wait_bfd(&bfd, "the negotiated timers", Duration::from_secs(5), |s| {
        s.session.detection_time == Some(Duration::from_millis(300))
    });
    let status = bfd.borrow().clone();
    assert_eq!(status.session.tx_interval, Some(Duration::from_millis(100)));
    assert_eq!(status.drops.total(), 0, "{:?}", status.drops);

    // Our frames stop: BIRD's BFD goes down and it closes BGP at once
    // (the hold time is 90 s).
    let cut = Instant::now();
    drop_bfd_out(&edge);
    bird.wait_for(
        "show protocols all edge",
        "BIRD to close BGP on BFD down",
        Duration::from_secs(5),
        |o| !o.contains("Established"),
    );
    let bird_closed = cut.elapsed();
    restore(&edge);
    speaker.wait_for("Established again", Duration::from_secs(20), established);
    wait_bfd(&bfd, "BFD Up again", TEN_S, |s| {
        s.session.state == BfdState::Up
    });

    // BIRD's frames stop: we detect it and close BGP ourselves. (The
    // first cut counted a failure too: BIRD told us it went down.)
    let failures = bfd.borrow().session.counters.failures;
    let sessions = speaker.status.borrow().established_count;
    let cut = Instant::now();
    drop_bfd_out(&isp);
    wait_bfd(
        &bfd,
        "our BFD to find the path down",
        Duration::from_secs(5),
        |s| s.session.counters.failures > failures,
    );
    let we_detected = cut.elapsed();
    speaker.wait_for(
        "the session closed on BFD down",
        Duration::from_secs(5),
        |s| !established(s) && s.last_down == Some(DownReason::PathDown),
    );
    let we_closed = cut.elapsed();
    let status = bfd.borrow().clone();
    assert_eq!(status.session.counters.failures, failures + 1);
    assert_eq!(status.session.last_down, Some(Diag::DetectionTimeExpired));
    assert_eq!(speaker.status.borrow().established_count, sessions);
    restore(&isp);
    speaker.wait_for(
        "Established after BIRD's BFD returns",
        Duration::from_secs(20),
        established,
    );
    wait_bfd(&bfd, "BFD Up after BIRD's return", TEN_S, |s| {
        s.session.state == BfdState::Up
    });
    eprintln!(
        "BIRD closed BGP {bird_closed:?} after our BFD stopped; we detected BIRD's silence after {we_detected:?} and closed BGP after {we_closed:?}"
    );
}

#[test]
fn forged_and_off_link_bfd_packets_change_nothing_and_are_counted() {
    if !require_root("forged_and_off_link_bfd_packets_change_nothing_and_are_counted") {
        return;
    }
    let (isp, edge, _bird) = world();
    let speaker = speaker(&edge);
    let bfd = speaker.bfd.clone().expect("a BFD session");
    speaker.wait_for("Established", TEN_S, established);
    wait_bfd(&bfd, "BFD Up", TEN_S, |s| s.session.state == BfdState::Up);
    let status = bfd.borrow().clone();
    // What BIRD would send to take us down, with the right discriminators.
    let down = |secret: &[u8], sequence: u32| {
        forged_down(
            status.session.remote_disc,
            status.session.local_disc,
            secret,
            sequence,
        )
    };
    let to = SocketAddr::new(underlay_v4(2).into(), 3784);
    isp.run(|| {
        let socket = UdpSocket::bind(SocketAddr::new(underlay_v4(1).into(), 0)).unwrap();
        socket.set_ttl(255).unwrap();
        for sequence in 0..50u32 {
            socket
                .send_to(&down(b"a-guessed-key", sequence), to)
                .unwrap();
        }
        // Sent from beyond the link (TTL below 255), with the right key
        // but an old sequence number: refused for the TTL first.
        socket.set_ttl(254).unwrap();
        for sequence in 0..5u32 {
            socket
                .send_to(&down(SECRET.as_bytes(), sequence), to)
                .unwrap();
        }
    });
    wait_bfd(&bfd, "the drops counted", Duration::from_secs(5), |s| {
        s.drops.get(DropReason::AuthDigest) == 50 && s.drops.get(DropReason::Ttl) == 5
    });
    std::thread::sleep(Duration::from_millis(500));
    let after = bfd.borrow().clone();
    assert_eq!(after.session.state, BfdState::Up);
    assert_eq!(after.session.counters.failures, 0);
    assert!(established(&speaker.status.borrow()));
}
