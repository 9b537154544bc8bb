//! Two whole nodes (data plane, netlink, overlay, health checks, control;
//! A also with an upstream BGP session to a real BIRD) in namespaces:
//!
//! ```text
//! client 198.18.0.2 ── router (BIRD, AS 64496) ── A 198.51.100.2 (a0)
//!                                               └─ B 198.51.100.6 (b0)
//! ```
//!
//! The router sends the VIPs to A (as Internet BGP would; BIRD is there to
//! see what A announces). Stopping the web service at A makes A's XDP
//! forward it to B, whose server answers the client directly; B keeps
//! everything else it learnt from A, and BIRD sees no change. Restoring
//! the service brings new flows back to A while the flow that was
//! forwarded stays on B.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use edge_agent::{
    bgp::session::State, control::fitness::Announce, dataplane::read_pinned_stats,
    health::Effective, overlay::identity::Identity,
};
use edge_common::stats::Counter;
use edge_tests::{
    agent::NodeAgent,
    command::stdout_of,
    netns::Netns,
    pins::PinDir,
    plan::VIP_WEB_V4,
    pops::{Conn, Topology, Upstream, Web, build, lab, node},
    privilege::require_root,
};

const WAIT: Duration = Duration::from_secs(20);

fn wait<T>(what: &str, rx: &tokio::sync::watch::Receiver<T>, check: impl Fn(&T) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check(&rx.borrow()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn served_by(c: &Netns) -> String {
    let mut conn = Conn::open(c);
    conn.ask("who")
}

/// The topology with the router's BIRD, and nodes A (its upstream session
/// to BIRD passive if `passive`) and B running, each with the web VIP on
/// edge0 (the reconcilers ran; the servers may start). Dropped in reverse:
/// the agents before their pins, the router and the namespaces.
fn two_nodes(passive: bool) -> (Topology, Upstream, (PinDir, PinDir), NodeAgent, NodeAgent) {
    let t = build();
    let upstream = Upstream::start(&t);
    let lab = lab();
    let (pins_a, pins_b) = (PinDir::new(), PinDir::new());
    let mut config = node(&lab, 1, "pop-a", ("pop-b", 2), "a0", true, &pins_a);
    config.upstream[0].session.passive = passive;
    let a = NodeAgent::start(&t.a, config);
    let b = NodeAgent::start(
        &t.b,
        node(&lab, 2, "pop-b", ("pop-a", 1), "b0", false, &pins_b),
    );
    wait("A's VIP", &a.control, |_| {
        stdout_of(t.a.command("ip").args(["addr", "show", "dev", "edge0"])).contains("203.0.113.10")
    });
    wait("B's VIP", &b.control, |_| {
        stdout_of(t.b.command("ip").args(["addr", "show", "dev", "edge0"])).contains("203.0.113.10")
    });
    (t, upstream, (pins_a, pins_b), a, b)
}

#[test]
fn a_failed_service_is_forwarded_to_a_peer_without_touching_internet_bgp() {
    if !require_root("a_failed_service_is_forwarded_to_a_peer_without_touching_internet_bgp") {
        return;
    }
    // Frames A sends back out of a0 (XDP_TX) arrive only where the other
    // end has an XDP program.
    let (t, mut upstream, (pins_a, pins_b), a, b) = two_nodes(false);
    let bird = &mut upstream.bird;
    let web_a = Web::start(&t.a, "pop-a");
    let _web_b = Web::start(&t.b, "pop-b");
    let vip = IpAddr::from(VIP_WEB_V4);
    let pop_a = Identity::from_name("pop-a").unwrap();
    let pop_b = Identity::from_name("pop-b").unwrap();
    wait("A's view of B's web", &a.overlay, |s| {
        s.services.get(&vip).is_some_and(|p| p.contains_key(&pop_b))
    });
    wait("B's view of A's web", &b.overlay, |s| {
        s.services.get(&vip).is_some_and(|p| p.contains_key(&pop_a))
    });
    wait("A announced upstream", &a.upstream[0], |s| {
        s.state == Some(State::Established) && !s.announced.is_empty()
    });
    bird.wait_for(
        "show route 203.0.113.0/24",
        "A's route at BIRD",
        WAIT,
        |out| out.contains("203.0.113.0/24"),
    );
    let updates_before = bird.birdc("show protocols all pop_a");
    let import_line = |out: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with("Import updates:"))
            .map(str::to_owned)
    };
    // Served by A.
    let count = |pins: &PinDir, c: Counter| read_pinned_stats(pins.path()).unwrap().get(c);
    let local_before = count(&pins_a, Counter::Local);
    assert_eq!(served_by(&t.client), "pop-a: who");
    assert!(count(&pins_a, Counter::Local) > local_before);
    // A's web stops: forwarded to B, which answers the client directly.
    web_a.down();
    wait("A's web down", &a.health, |h| {
        h["web"].effective == Effective::Down
    });
    wait("B no longer sees A's web", &b.overlay, |s| {
        s.services.get(&vip).is_none_or(|p| !p.contains_key(&pop_a))
    });
    let (tx, decap) = (
        count(&pins_a, Counter::ForwardedTx),
        count(&pins_b, Counter::Decapsulated),
    );
    let mut forwarded = Conn::open(&t.client);
    assert_eq!(forwarded.ask("first"), "pop-b: first");
    assert_eq!(served_by(&t.client), "pop-b: who");
    // A's XDP encapsulated the client's packets (SYN, data, ACKs of both
    // connections) to B, whose XDP decapsulated them.
    assert!(count(&pins_a, Counter::ForwardedTx) >= tx + 4);
    assert!(count(&pins_b, Counter::Decapsulated) >= decap + 4);
    // B keeps everything else it learnt from A (its identity), and stays up with it.
    {
        let s = b.overlay.borrow();
        assert!(
            s.identities.get(&pop_a).is_some_and(|i| !i.is_empty()),
            "{s:#?}"
        );
        assert_eq!(s.adjacencies[&pop_a].established_count, 1);
    }
    // Internet BGP: nothing changed.
    assert_eq!(
        a.control.borrow().desired.as_ref().unwrap().upstream,
        Announce::Announce
    );
    assert_eq!(
        import_line(&bird.birdc("show protocols all pop_a")),
        import_line(&updates_before)
    );
    // A's web comes back: new flows to A, the forwarded flow stays on B.
    web_a.up();
    wait("A's web up", &a.health, |h| {
        h["web"].effective == Effective::Up
    });
    wait("B sees A's web again", &b.overlay, |s| {
        s.services.get(&vip).is_some_and(|p| p.contains_key(&pop_a))
    });
    let (local, tx) = (
        count(&pins_a, Counter::Local),
        count(&pins_a, Counter::ForwardedTx),
    );
    assert_eq!(served_by(&t.client), "pop-a: who");
    assert!(count(&pins_a, Counter::Local) > local);
    assert_eq!(forwarded.ask("still there?"), "pop-b: still there?");
    assert!(
        count(&pins_a, Counter::ForwardedTx) > tx,
        "the forwarded flow stayed on B"
    );
    assert_eq!(
        import_line(&bird.birdc("show protocols all pop_a")),
        import_line(&updates_before)
    );
    drop(a);
    drop(b);
}

/// Who opened A's upstream session: the local and remote ends of A's
/// established TCP connections to the router, from `ss`.
fn bgp_connections(a: &Netns) -> Vec<(String, String)> {
    stdout_of(a.command("ss").args(["-Htn", "state", "established"]))
        .lines()
        .filter_map(|l| {
            let mut cols = l.split_whitespace().skip(2);
            Some((cols.next()?.to_owned(), cols.next()?.to_owned()))
        })
        .filter(|(_, remote)| remote.starts_with("198.51.100.1:"))
        .collect()
}

#[test]
fn a_passive_agent_accepts_the_routers_connection_and_announces_over_it() {
    if !require_root("a_passive_agent_accepts_the_routers_connection_and_announces_over_it") {
        return;
    }
    let (t, mut upstream, _pins, a, _b) = two_nodes(true);
    let bird = &mut upstream.bird;
    let _web = Web::start(&t.a, "pop-a");
    wait("A announced upstream", &a.upstream[0], |s| {
        s.state == Some(State::Established) && !s.announced.is_empty()
    });
    bird.wait_for(
        "show route 203.0.113.0/24",
        "A's route at BIRD",
        WAIT,
        |out| out.contains("203.0.113.0/24"),
    );
    // The one session is the router's connection to A's port 179: A
    // never connected out.
    let connections = bgp_connections(&t.a);
    let [(local, remote)] = &connections[..] else {
        panic!("one upstream connection expected: {connections:?}");
    };
    assert_eq!(local, "198.51.100.2:179", "the router connected to A");
    assert!(
        !remote.ends_with(":179"),
        "the router's end is an ephemeral port, not its listener: {remote}"
    );
    assert_eq!(a.upstream[0].borrow().collisions, 0);
}
