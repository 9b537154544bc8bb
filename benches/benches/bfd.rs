//! BFD figures: how long after a path goes silent BFD declares it down,
//! over 30 failures each, for an upstream session (the agent's neighbour
//! runner against BIRD 2, single-hop, 100 ms × 3, Meticulous Keyed SHA1)
//! and an overlay adjacency (two overlay nodes, multihop, 100 ms × 3,
//! keyed by the TLS exporter); and the CPU the agent's BFD executor uses
//! for 100 sessions at 50 ms × 3 (authenticated), against 100 sessions of
//! our own on the other end of a veth.
//!
//! Run with `cargo xtask bench bfd` (root, for the namespaces); `cargo
//! bench -p edge-benches --bench bfd -- cpu` (or `-- detection`) runs one
//! part.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use edge_agent::{
    bfd::{
        Bfd, BfdStatus, Hop, SessionConfig, SessionKey, Timers, auth::AuthKey,
        packet::State as BfdState,
    },
    bgp::message::Family,
    overlay::{identity::Identity, pki::Validity},
};
use edge_tests::{
    bird::{BgpNeighbor, Bird, bgp_config},
    netns::{Netns, veth},
    overlay::{Lab, Node, Underlay, config},
    plan::{CDN_ASN, ISP_ASNS, underlay_v4},
    speaker::Speaker,
    upstream,
};
use tokio::sync::watch;

const ROUNDS: usize = 30;
const SECRET: &str = "bench-bfd-key";

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "the BFD benchmark needs network namespaces: run as root (`cargo xtask bench bfd`)"
        );
        std::process::exit(1);
    }
    // `-- cpu` or `-- detection` runs one part only.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    if wanted("detection") {
        println!(
            "BFD detection time: from the moment the peer's packets stop to the session going down"
        );
        println!(
            "| session | interval × multiplier | aim (3 × interval + 50 ms) | median | p99 | max | failures |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|");
        upstream_detection();
        overlay_detection();
        println!();
    }
    if wanted("cpu") {
        cpu(100, Duration::from_millis(50));
    }
}

fn timers(ms: u64) -> Timers {
    Timers {
        min_tx: Duration::from_millis(ms),
        min_rx: Duration::from_millis(ms),
        multiplier: 3,
    }
}

fn key() -> AuthKey {
    AuthKey {
        meticulous: true,
        key_id: 1,
        secret: SECRET.as_bytes().to_vec(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn row(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "| {name} | 100 ms × 3 | 350 ms | {} | {} | {} | {} |",
        ms(p(0.5)),
        ms(p(0.99)),
        ms(*samples.last().unwrap()),
        samples.len()
    );
}

fn cut_bfd(ns: &Netns, port: u16) {
    ns.nft(&format!(
        "table inet bfd_cut {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n    udp dport {port} drop\n  }}\n}}\n"
    ));
}

fn restore(ns: &Netns) {
    ns.nft("delete table inet bfd_cut\n");
}

fn wait(what: &str, timeout: Duration, check: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_micros(500));
    }
    start.elapsed()
}

fn up_and_fast(s: &watch::Receiver<BfdStatus>) -> bool {
    let s = s.borrow();
    s.session.state == BfdState::Up && s.session.detection_time == Some(Duration::from_millis(300))
}

/// BIRD's frames to the agent stop (nftables in BIRD's namespace): the
/// agent's detection, 30 times.
fn upstream_detection() {
    let (isp, edge) = upstream::link();
    let neighbor = BgpNeighbor {
        options: "  bfd on;\n  error wait time 1, 2;".into(),
        ..BgpNeighbor::new("edge", underlay_v4(2).into(), CDN_ASN)
    };
    let bfd = edge_tests::bfd::bird_protocol("*", SECRET);
    let _bird = Bird::start(
        &isp,
        &(bgp_config(underlay_v4(1), ISP_ASNS[0], &[neighbor]) + &bfd),
    );
    let mut config = upstream::neighbor(
        underlay_v4(1).into(),
        ISP_ASNS[0],
        vec![Family::IPV4_UNICAST],
    );
    config.local = Some(underlay_v4(2).into());
    config.bfd = Some(SessionConfig {
        timers: timers(100),
        auth: Some(key()),
    });
    let speaker = Speaker::spawn(&edge, config);
    let status = speaker.bfd.clone().unwrap();
    let mut samples = Vec::new();
    for _ in 0..ROUNDS {
        wait("BFD up at 100 ms", Duration::from_secs(30), || {
            up_and_fast(&status)
        });
        // Let a few packets flow at the fast rate.
        std::thread::sleep(Duration::from_millis(300));
        let failures = status.borrow().session.counters.failures;
        cut_bfd(&isp, 3784);
        samples.push(wait("BFD down", Duration::from_secs(5), || {
            status.borrow().session.counters.failures > failures
        }));
        restore(&isp);
    }
    row("upstream (agent ← BIRD, single-hop)", samples);
}

/// The other node's frames stop (nftables drops everything in its
/// namespace): the first node's detection on the adjacency, 30 times.
fn overlay_detection() {
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    let names = ["pop-1", "pop-2"];
    let mut spaces = Vec::new();
    let mut nodes = Vec::new();
    for (i, name) in names.iter().enumerate() {
        lab.issue(name, Validity::days_from_now(10));
        spaces.push(underlay.attach(i as u8 + 1, false));
    }
    for (i, name) in names.iter().enumerate() {
        let other = names[1 - i];
        let mut cfg = config(&lab, i as u8 + 1, name, &names, &[(other, (2 - i) as u8)]);
        cfg.bfd = Some(timers(100));
        nodes.push(Node::start(&spaces[i], cfg));
    }
    let peer = Identity::from_name("pop-2").unwrap();
    let bfd_of = |node: &Node| -> Option<BfdStatus> {
        node.status.borrow().adjacencies.get(&peer)?.bfd.clone()
    };
    let mut samples = Vec::new();
    for _ in 0..ROUNDS {
        wait(
            "the adjacency's BFD up at 100 ms",
            Duration::from_secs(30),
            || {
                bfd_of(&nodes[0]).is_some_and(|b| {
                    b.session.state == BfdState::Up
                        && b.session.detection_time == Some(Duration::from_millis(300))
                })
            },
        );
        std::thread::sleep(Duration::from_millis(300));
        let before = bfd_of(&nodes[0]).unwrap();
        cut_bfd(&spaces[1], 4784);
        samples.push(wait("BFD down", Duration::from_secs(5), || {
            bfd_of(&nodes[0]).is_some_and(|b| {
                b.session.local_disc != before.session.local_disc || b.session.counters.failures > 0
            })
        }));
        restore(&spaces[1]);
    }
    row("overlay adjacency (multihop, TLS-exported key)", samples);
}

/// CPU of one BFD executor running `n` authenticated sessions at
/// `interval` × 3, sampled over 10 s once all are up at that rate.
fn cpu(n: u8, interval: Duration) {
    let (a, b) = (Netns::new(), Netns::new());
    veth(&a, "a0", &b, "b0");
    a.add_addr("a0", &format!("{}/24", underlay_v4(1)));
    for i in 0..n {
        b.add_addr("b0", &format!("{}/24", underlay_v4(100 + i)));
    }
    let session = move |peer: Ipv4Addr, local: Ipv4Addr| {
        (
            SessionKey {
                peer: IpAddr::V4(peer),
                local: Some(IpAddr::V4(local)),
                hop: Hop::Single,
            },
            SessionConfig {
                timers: Timers {
                    min_tx: interval,
                    min_rx: interval,
                    multiplier: 3,
                },
                auth: Some(key()),
            },
        )
    };
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    // The far end: n sessions of our own, on their own thread.
    let far = {
        let name = b.name().to_owned();
        std::thread::spawn(move || {
            let runtime = edge_tests::netns::runtime_in(&name);
            runtime.block_on(async move {
                let bfd = Bfd::spawn();
                let mut held = Vec::new();
                for i in 0..n {
                    let (key, cfg) = session(underlay_v4(1), underlay_v4(100 + i));
                    held.push(bfd.add(format!("far {i}"), key, cfg).await.unwrap());
                }
                while stop_rx.try_recv().is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        })
    };
    let name = a.name().to_owned();
    let (cpu, wall, up) = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        edge_agent::netns::enter(&name).unwrap();
        runtime.block_on(async move {
            let bfd = Bfd::spawn();
            let mut held = Vec::new();
            for i in 0..n {
                let (key, cfg) = session(underlay_v4(100 + i), underlay_v4(1));
                held.push(bfd.add(format!("near {i}"), key, cfg).await.unwrap());
            }
            let all_fast = |held: &[edge_agent::bfd::BfdSession]| {
                held.iter().all(|s| {
                    let s = s.status.borrow();
                    s.session.state == BfdState::Up && s.session.tx_interval == Some(interval)
                })
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            while !all_fast(&held) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let (t0, c0) = (Instant::now(), thread_cpu());
            tokio::time::sleep(Duration::from_secs(10)).await;
            let c1 = thread_cpu();
            let (wall, cpu) = (t0.elapsed(), (c1.0 - c0.0, c1.1 - c0.1));
            let up = held.iter().filter(|s| s.is_up()).count();
            (cpu, wall, up)
        })
    })
    .join()
    .unwrap();
    let _ = stop_tx.send(());
    let _ = far.join();
    let rate = f64::from(n) / interval.as_secs_f64();
    println!(
        "BFD executor CPU, {n} authenticated sessions at {} ms × 3 (one thread, {rate:.0} packets/s each way):",
        interval.as_millis()
    );
    println!(
        "| sessions up | CPU over {:.1} s: user + system | share of one core | per packet sent and received |",
        wall.as_secs_f64()
    );
    println!("|---:|---:|---:|---:|");
    let total = cpu.0 + cpu.1;
    println!(
        "| {up} of {n} | {:.0} ms + {:.0} ms | {:.2} % ({:.2} % in user space) | {:.1} µs |",
        cpu.0.as_secs_f64() * 1000.0,
        cpu.1.as_secs_f64() * 1000.0,
        100.0 * total.as_secs_f64() / wall.as_secs_f64(),
        100.0 * cpu.0.as_secs_f64() / wall.as_secs_f64(),
        total.as_secs_f64() * 1e6 / (2.0 * rate * wall.as_secs_f64()),
    );
    println!(
        "(system time includes the kernel delivering each sent packet through the veth into the far end's socket)"
    );
}

/// This thread's CPU time: (user, system).
fn thread_cpu() -> (Duration, Duration) {
    // SAFETY: an all-zero rusage is valid, and getrusage writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let d = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (d(usage.ru_utime), d(usage.ru_stime))
}
