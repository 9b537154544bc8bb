//! The overlay's control endpoint under unauthenticated floods: for each
//! flood (idle connections from one and from a hundred sources, a slow
//! drip of ClientHello bytes, valid ClientHellos without and with a
//! client certificate from another CA, and all of them at once), pop-a's
//! CPU (its overlay runtime's thread) and the process's peak RSS during
//! the flood, a candidate's handshake time (pop-c, three tries) and the
//! time to its adjacency, side by side with the same figures without a
//! flood, in one run; each without and with the XDP program's doors on
//! pop-a's interface (as the agent sets them).
//!
//! Run with `cargo xtask bench endpoint` (root, for the namespaces; it
//! builds `edge-flood` first).

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use edge_agent::overlay::identity::Identity;
use edge_tests::{
    flood::{Flood, World, candidate_handshake, world},
    overlay::{Node, config},
};

const SECONDS: u64 = 9;

/// A flood: `edge-flood`'s mode and its arguments.
type FloodArgs<'a> = (&'a str, &'a [&'a str]);
/// A row: its name, the rogue's source addresses, the floods at once.
type Case<'a> = (&'a str, usize, &'a [FloodArgs<'a>]);

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "the endpoint benchmark needs network namespaces: run as root (`cargo xtask bench endpoint`)"
        );
        std::process::exit(1);
    }
    let bin = flood_binary();
    println!(
        "| flood | sources | XDP doors | pop-a CPU (share of a core) | peak RSS (MiB) | candidate handshake (ms, 3 tries) | candidate adjacency (ms) | closed at once | stranger handshakes |"
    );
    println!("|---|---:|---|---:|---:|---|---:|---:|---:|");
    let cases: [Case; 7] = [
        ("none", 1, &[]),
        (
            "10,000 idle connections",
            1,
            &[("idle", &["--count", "10000"])],
        ),
        (
            "10,000 idle connections",
            100,
            &[("idle", &["--count", "10000"])],
        ),
        (
            "slow drip (200 connections, a byte every 300 ms)",
            100,
            &[("drip", &["--count", "200", "--interval-ms", "300"])],
        ),
        (
            "valid ClientHellos, no certificate (64 in flight)",
            100,
            &[("hello", &["--concurrency", "64"])],
        ),
        (
            "valid ClientHellos, another CA's certificate (64 in flight)",
            100,
            &[(
                "hello",
                &["--concurrency", "64", "--cert", "CERT", "--key", "KEY"],
            )],
        ),
        (
            "all of the above at once",
            100,
            &[
                ("idle", &["--count", "10000"]),
                ("drip", &["--count", "200", "--interval-ms", "300"]),
                ("hello", &["--concurrency", "64"]),
                (
                    "hello",
                    &["--concurrency", "64", "--cert", "CERT", "--key", "KEY"],
                ),
            ],
        ),
    ];
    for (name, sources, floods) in cases {
        for doors in [false, true] {
            run(&bin, name, sources, floods, doors);
        }
    }
}

fn run(bin: &str, name: &str, sources: usize, floods: &[FloodArgs<'_>], doors: bool) {
    let w = world(sources);
    let _guard = doors.then(|| w.guard());
    let cert = w.lab.dir().join("rogue-other-ca.pem");
    let key = w.lab.dir().join("rogue-other-ca.key");
    let running: Vec<Flood> = floods
        .iter()
        .map(|(mode, args)| {
            let args: Vec<&str> = args
                .iter()
                .map(|a| match *a {
                    "CERT" => cert.to_str().unwrap(),
                    "KEY" => key.to_str().unwrap(),
                    other => other,
                })
                .collect();
            Flood::start(&w, bin, mode, SECONDS, &args)
        })
        .collect();
    // Settle, then measure over the middle of the flood.
    std::thread::sleep(Duration::from_secs(2));
    let (cpu0, t0) = (w.a.cpu_time(), Instant::now());
    let mut peak_rss = rss_kib();
    let mut handshakes = Vec::new();
    for _ in 0..3 {
        handshakes.push(candidate_handshake(&w).as_secs_f64() * 1000.0);
        peak_rss = peak_rss.max(rss_kib());
        std::thread::sleep(Duration::from_millis(500));
    }
    let started = Instant::now();
    let c = Node::start(
        &w.c_ns,
        config(
            &w.lab,
            3,
            "pop-c",
            &["pop-a", "pop-b", "pop-c"],
            &[("pop-a", 1)],
        ),
    );
    c.wait_for("pop-a", Duration::from_secs(15), |s| {
        s.established().contains(&id("pop-a"))
    });
    let adjacency = started.elapsed().as_secs_f64() * 1000.0;
    while t0.elapsed() < Duration::from_secs(SECONDS - 4) {
        peak_rss = peak_rss.max(rss_kib());
        std::thread::sleep(Duration::from_millis(250));
    }
    let share = (w.a.cpu_time() - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64();
    for f in running {
        let _ = f.finish();
    }
    let s = w.a.status.borrow().clone();
    let closed: u64 = s.admission.denied.values().sum();
    let strangers = s
        .admission
        .admitted
        .get(&edge_agent::overlay::admission::Class::Stranger)
        .copied()
        .unwrap_or(0);
    drop(c);
    println!(
        "| {name} | {sources} | {} | {share:.3} | {:.0} | {} | {adjacency:.0} | {closed} | {strangers} |",
        if doors { "yes" } else { "no" },
        peak_rss as f64 / 1024.0,
        handshakes
            .iter()
            .map(|h| format!("{h:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    assert_world_untouched(&w);
}

/// The established adjacency survived the flood.
fn assert_world_untouched(w: &World) {
    assert!(
        w.a.status.borrow().established().contains(&id("pop-b")),
        "pop-a lost pop-b"
    );
}

fn id(name: &str) -> Identity {
    Identity::from_name(name).unwrap()
}

/// This process's resident set, KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `edge-flood`, next to this benchmark's executable (`cargo xtask bench`
/// builds it).
fn flood_binary() -> String {
    let exe = std::env::current_exe().expect("our executable");
    let mut dir: PathBuf = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("edge-flood");
    assert!(
        bin.exists(),
        "{} is missing: `cargo xtask bench endpoint` builds it (or `cargo build --release -p edge-tests --bin edge-flood`)",
        bin.display()
    );
    bin.to_string_lossy().into_owned()
}
