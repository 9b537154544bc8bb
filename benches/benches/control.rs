//! Control-loop figures with two whole nodes (the topology of
//! `edge_tests::pops`): from the failing probe's result at A (the health
//! event's timestamp) to
//!
//! (a) A's data-plane service entry losing its local bit,
//! (b) B's data-plane entry for the service losing A as a backend (A's
//!     overlay withdrawal, over iBGP on TLS, through B's RIB and control
//!     loop),
//! (c) for a node-level event (A's last service fails while B cannot take
//!     it: A is no longer fit), the upstream UPDATE (the drain) leaving A's
//!     Internet interface, seen by a packet socket.
//!
//! Run with `cargo xtask bench control` (root, for the namespaces).

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use edge_agent::{
    bgp::session::State,
    control::{fitness::FitnessPolicy, runtime::Applied},
    health::{Effective, HealthEvent},
    overlay::identity::Identity,
};
use edge_benches::{capture, next_update};
use edge_tests::{
    agent::NodeAgent,
    pins::PinDir,
    plan::VIP_WEB_V4,
    pops::{Upstream, Web, build, lab, node},
};
use tokio::sync::{broadcast, mpsc};

const WAIT: Duration = Duration::from_secs(20);

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "the control benchmark needs network namespaces: run as root (`cargo xtask bench control`)"
        );
        std::process::exit(1);
    }
    let t = build();
    let _upstream = Upstream::start(&t);
    let lab = lab();
    let (pins_a, pins_b) = (PinDir::new(), PinDir::new());
    let mut config_a = node(&lab, 1, "pop-a", ("pop-b", 2), "a0", true, &pins_a);
    // Short drain and hold-down, so that the node-level event can repeat.
    config_a.control.fitness = FitnessPolicy {
        drain_period: Duration::from_millis(500),
        hold_down_base: Duration::from_millis(50),
        hold_down_max: Duration::from_millis(200),
        ..FitnessPolicy::default()
    };
    let mut a = NodeAgent::start(&t.a, config_a);
    let b = NodeAgent::start(
        &t.b,
        node(&lab, 2, "pop-b", ("pop-a", 1), "b0", false, &pins_b),
    );
    let vip = IpAddr::from(VIP_WEB_V4);
    let (pop_a, pop_b) = (
        Identity::from_name("pop-a").unwrap(),
        Identity::from_name("pop-b").unwrap(),
    );
    until("the VIPs", || {
        [&t.a, &t.b].iter().all(|ns| {
            edge_tests::command::stdout_of(ns.command("ip").args(["addr", "show", "dev", "edge0"]))
                .contains("203.0.113.10")
        })
    });
    let web_a = Web::start(&t.a, "pop-a");
    let web_b = Web::start(&t.b, "pop-b");
    until("both services everywhere", || {
        a.overlay
            .borrow()
            .services
            .get(&vip)
            .is_some_and(|p| p.contains_key(&pop_b))
            && b.overlay
                .borrow()
                .services
                .get(&vip)
                .is_some_and(|p| p.contains_key(&pop_a))
    });
    until("A announced upstream", || {
        let s = a.upstream[0].borrow();
        s.state == Some(State::Established) && !s.announced.is_empty()
    });
    let mut a_applied = a.applied.resubscribe();
    let mut b_applied = b.applied.resubscribe();
    let (mut local, mut remote) = (Vec::new(), Vec::new());
    for _ in 0..30 {
        web_a.down();
        let at = health_event(&mut a.health_events, Effective::Down);
        let ta = applied(&mut a_applied, |c| {
            *c == Applied::LocalBit {
                service: 0,
                up: false,
            }
        });
        let tb = applied(&mut b_applied, |c| {
            *c == Applied::Backends {
                service: 0,
                count: 0,
            }
        });
        local.push(ta - at);
        remote.push(tb - at);
        web_a.up();
        health_event(&mut a.health_events, Effective::Up);
        applied(&mut b_applied, |c| {
            *c == Applied::Backends {
                service: 0,
                count: 1,
            }
        });
        std::thread::sleep(Duration::from_millis(20));
    }
    // Node-level: B's web down for good, so A's failure leaves it unfit.
    web_b.down();
    until("B's web gone at A", || {
        a.overlay
            .borrow()
            .services
            .get(&vip)
            .is_none_or(|p| !p.contains_key(&pop_b))
    });
    let (wire_tx, wire_rx) = std::sync::mpsc::channel();
    let fd = t.a.run(|| capture("a0"));
    std::thread::spawn(move || {
        loop {
            if wire_tx.send(next_update(&fd)).is_err() {
                return;
            }
        }
    });
    let mut upstream = Vec::new();
    for _ in 0..10 {
        while wire_rx.try_recv().is_ok() {}
        web_a.down();
        let at = health_event(&mut a.health_events, Effective::Down);
        let wire = wire_rx.recv_timeout(WAIT).expect("the drain UPDATE");
        upstream.push(wire - at);
        web_a.up();
        health_event(&mut a.health_events, Effective::Up);
        applied(&mut a_applied, |c| {
            *c == Applied::Upstream(edge_agent::control::fitness::Announce::Announce)
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("From the failing probe's result at A (health event) to:\n");
    println!("| | runs | median | p90 | max | aim |\n|---|---:|---:|---:|---:|---:|");
    for (what, samples, aim) in [
        (
            "(a) A's local bit cleared in its data plane",
            &mut local,
            "1 ms",
        ),
        (
            "(b) A gone from B's data-plane backends",
            &mut remote,
            "50 ms",
        ),
        (
            "(c) the drain UPDATE on A's wire (node unfit)",
            &mut upstream,
            "10 ms",
        ),
    ] {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
        println!(
            "| {what} | {} | {:?} | {:?} | {:?} | {aim} |",
            samples.len(),
            at(0.5),
            at(0.9),
            samples[samples.len() - 1]
        );
    }
    drop((a, b));
}

fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The time of the next web transition to `to`.
fn health_event(events: &mut mpsc::Receiver<HealthEvent>, to: Effective) -> Instant {
    loop {
        let event = events.blocking_recv().expect("health events");
        if event.service == "web" && event.to == to {
            return event.at;
        }
    }
}

/// The time of the next applied change matching `want`.
fn applied(
    rx: &mut broadcast::Receiver<(Applied, Instant)>,
    want: impl Fn(&Applied) -> bool,
) -> Instant {
    loop {
        match rx.blocking_recv() {
            Ok((change, at)) if want(&change) => return at,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => panic!("the control loop ended"),
        }
    }
}
