//! Overlay figures: how long a withdrawn service takes to leave the other
//! nodes' RIBs (three nodes in their own namespaces on one underlay
//! segment), and what a full-mesh establishment costs for 3, 10 and 30
//! nodes (overlay runtimes on their own threads in one namespace, each on
//! its own underlay address on `lo`): wall time to the full mesh, and CPU time
//! per adjacency (TLS handshakes both ways, duplicates resolved, iBGP).
//!
//! Run with `cargo xtask bench overlay` (root, for the namespaces).

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use edge_agent::overlay::{identity::Identity, pki::Validity};
use edge_tests::{
    netns::Netns,
    overlay::{Lab, Node, Underlay, config},
    plan::{VIP_WEB_V4, underlay_v4},
};

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "the overlay benchmark needs network namespaces: run as root (`cargo xtask bench overlay`)"
        );
        std::process::exit(1);
    }
    withdrawal();
    for n in [3, 10, 30] {
        full_mesh(n);
    }
}

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("pop-{i}")).collect()
}

/// Everyone but node `i`, as (name, underlay host number).
fn peers_of(all: &[String], i: usize) -> Vec<(&str, u8)> {
    all.iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(j, m)| (m.as_str(), j as u8 + 1))
        .collect()
}

fn id(name: &str) -> Identity {
    Identity::from_name(name).unwrap()
}

/// Time from `withdraw` at node 1 to the VIP being gone from nodes 2 and 3.
fn withdrawal() {
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    let all = names(3);
    let allow: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut spaces = Vec::new();
    let mut nodes = Vec::new();
    for name in &all {
        lab.issue(name, Validity::days_from_now(10));
    }
    for (i, name) in all.iter().enumerate() {
        spaces.push(underlay.attach(i as u8 + 1, false));
        let peers = peers_of(&all, i);
        nodes.push(Node::start(
            &spaces[i],
            config(&lab, i as u8 + 1, name, &allow, &peers),
        ));
    }
    for node in &nodes {
        node.wait_for("the mesh", Duration::from_secs(30), |s| {
            s.established().len() == 2
        });
    }
    let web = IpAddr::from(VIP_WEB_V4);
    let has = |node: &Node| node.status.borrow().services.contains_key(&web);
    let mut samples = Vec::new();
    for _ in 0..100 {
        nodes[0].advertise(VIP_WEB_V4);
        while !(has(&nodes[1]) && has(&nodes[2])) {
            std::thread::sleep(Duration::from_micros(100));
        }
        let start = Instant::now();
        nodes[0].withdraw(VIP_WEB_V4);
        while has(&nodes[1]) || has(&nodes[2]) {
            std::hint::spin_loop();
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!(
        "withdrawal → gone from both other RIBs (100 runs): median {:?}, p90 {:?}, p99 {:?}, max {:?}",
        pct(50),
        pct(90),
        pct(99),
        samples[samples.len() - 1]
    );
}

/// `n` nodes in one namespace, on 198.51.100.1..=n: time and CPU to a full mesh.
fn full_mesh(n: usize) {
    let lab = Lab::new();
    let all = names(n);
    let allow: Vec<&str> = all.iter().map(String::as_str).collect();
    for name in &all {
        lab.issue(name, Validity::days_from_now(10));
    }
    let ns = Netns::new();
    for i in 1..=n {
        ns.add_addr("lo", &format!("{}/32", underlay_v4(i as u8)));
    }
    let cpu_before = cpu_time();
    let start = Instant::now();
    let nodes: Vec<Node> = all
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let peers = peers_of(&all, i);
            Node::start(&ns, config(&lab, i as u8 + 1, name, &allow, &peers))
        })
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        let want: std::collections::BTreeSet<Identity> = all
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, m)| id(m))
            .collect();
        node.wait_for("the full mesh", Duration::from_secs(120), |s| {
            s.established() == want
        });
    }
    let wall = start.elapsed();
    let cpu = cpu_time() - cpu_before;
    let adjacencies = n * (n - 1) / 2;
    let duplicates: u64 = nodes
        .iter()
        .map(|node| {
            node.status
                .borrow()
                .adjacencies
                .values()
                .map(|a| a.established_count)
                .sum::<u64>()
        })
        .sum::<u64>()
        - 2 * adjacencies as u64;
    println!(
        "full mesh of {n:>2} nodes ({adjacencies:>3} adjacencies): {wall:>10.2?} wall (first dials are spread over 200 ms), {cpu:>10.2?} CPU, {:>8.2?} CPU per adjacency, {duplicates} re-establishments",
        cpu / adjacencies as u32
    );
    drop(nodes);
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct we pass.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
