//! The data plane's doors on whole nodes: a SYN flood against BGP (179)
//! and the control port (4179) from spoofed sources is dropped or
//! rate-limited by the XDP program before the stack sees it, every
//! decision counted and the offending prefixes named; meanwhile the
//! upstream router's session (a listed source) comes back within a
//! second of its first attempt, and the overlay adjacency between the
//! PoPs (listed candidates) is untouched.

use std::{
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use edge_agent::bgp::session::State;
use edge_common::stats::Counter;
use edge_tests::{
    agent::NodeAgent,
    command::stdout_of,
    netns::Netns,
    pins::PinDir,
    pops::{Upstream, build, lab, node},
    privilege::require_root,
};

const WAIT: Duration = Duration::from_secs(20);

fn wait<T>(what: &str, rx: &tokio::sync::watch::Receiver<T>, check: impl Fn(&T) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check(&rx.borrow()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn syn_flood(client: &Netns, target: &str, spoof: &str, seconds: u64) -> Child {
    client
        .command(env!("CARGO_BIN_EXE_edge-flood"))
        .args(["syn", "--target", target, "--spoof", spoof])
        .args(["--seconds", &seconds.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("edge-flood")
}

fn figures(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().expect("edge-flood ran");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "edge-flood: {text}");
    serde_json::from_str(text.lines().last().unwrap_or_default()).expect("its figures")
}

fn counter(a: &NodeAgent, c: Counter) -> u64 {
    a.control
        .borrow()
        .counters
        .as_ref()
        .map_or(0, |k| k.totals.get(c))
}

#[test]
fn a_syn_flood_on_the_agents_ports_is_stopped_in_xdp_and_the_upstream_session_comes_back() {
    if !require_root(
        "a_syn_flood_on_the_agents_ports_is_stopped_in_xdp_and_the_upstream_session_comes_back",
    ) {
        return;
    }
    let t = build();
    // Spoofed sources have no route back through the client's link.
    t.router.sysctl("net.ipv4.conf.all.rp_filter", "0");
    t.router.sysctl("net.ipv4.conf.r-cl.rp_filter", "0");
    // The router tries to connect a second after its protocol starts.
    let mut upstream = Upstream::start_with(&t, "  connect delay time 1;");
    let lab = lab();
    let (pins_a, pins_b) = (PinDir::new(), PinDir::new());
    let mut config = node(&lab, 1, "pop-a", ("pop-b", 2), "a0", true, &pins_a);
    // The router connects to A: its SYNs must pass A's door on 179.
    config.upstream[0].session.passive = true;
    let a = NodeAgent::start(&t.a, config);
    let b = NodeAgent::start(
        &t.b,
        node(&lab, 2, "pop-b", ("pop-a", 1), "b0", false, &pins_b),
    );
    wait("A's upstream session", &a.upstream[0], |s| {
        s.state == Some(State::Established)
    });
    wait("the adjacency", &a.overlay, |s| s.established().len() == 1);
    let adjacency_before = a
        .overlay
        .borrow()
        .adjacencies
        .values()
        .next()
        .unwrap()
        .established_count;

    let floods = [
        syn_flood(&t.client, "198.51.100.2:179", "198.18.0.0/16", 10),
        syn_flood(&t.client, "198.51.100.2:4179", "198.18.0.0/24", 10),
    ];
    std::thread::sleep(Duration::from_secs(2));
    // The router's session restarts during the flood.
    let count = a.upstream[0].borrow().established_count;
    upstream.bird.birdc("disable pop_a");
    wait("A's session down", &a.upstream[0], |s| {
        s.state != Some(State::Established)
    });
    let enabled = Instant::now();
    upstream.bird.birdc("enable pop_a");
    wait("A's session back", &a.upstream[0], |s| {
        s.state == Some(State::Established) && s.established_count > count
    });
    // Its first attempt comes up to a second (the connect delay) after it
    // was enabled; the session is up within a second of that.
    let took = enabled.elapsed();
    eprintln!("the router's session came back {took:?} after it was enabled, during the flood");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let sent: Vec<serde_json::Value> = floods.into_iter().map(figures).collect();
    eprintln!("floods: {sent:?}");
    // Wait for the counters of the last second.
    std::thread::sleep(Duration::from_millis(1500));

    // Every SYN to 179 from a stranger died in XDP.
    let unlisted = counter(&a, Counter::DoorUnlisted);
    let limited = counter(&a, Counter::DoorRateLimited);
    let to_bgp = sent[0]["sent"].as_u64().unwrap();
    let to_control = sent[1]["sent"].as_u64().unwrap();
    assert!(to_bgp > 10_000 && to_control > 10_000, "{sent:?}");
    // (The router's forwarding may lose a few of them on the way.)
    assert!(
        unlisted >= to_bgp * 95 / 100,
        "{unlisted} dropped of {to_bgp} sent to 179"
    );
    // To the control port, only a burst and the rate per prefix passed
    // (256 prefixes, 20/s and a burst of 40 each, per CPU).
    let admitted = counter(&a, Counter::DoorAdmitted);
    assert!(limited > to_control / 2, "{limited} of {to_control}");
    assert!(admitted < to_control / 2, "{admitted} of {to_control}");
    assert!(counter(&a, Counter::DoorListed) > 0);
    // Nothing of the flood reached A's stack: no half-open connection.
    let half_open = stdout_of(
        t.a.command("ss")
            .args(["-Htn", "state", "syn-recv", "sport", "=", ":179"]),
    );
    assert!(half_open.trim().is_empty(), "{half_open}");
    // The adjacency between the PoPs was never touched.
    let adj = a
        .overlay
        .borrow()
        .adjacencies
        .values()
        .next()
        .unwrap()
        .clone();
    assert_eq!(adj.established_count, adjacency_before, "{adj:?}");
    assert_eq!(b.overlay.borrow().established().len(), 1);
}
