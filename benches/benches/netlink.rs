//! Netlink reconciler figures, in a namespace: the time to apply 1 000 and
//! 10 000 route changes (host routes into the agent's table, through a
//! full reconcile pass from empty: route lookups, dump, plan, apply), and
//! the cost of a pass that finds nothing to do with 10 000 owned routes,
//! split into its parts (route lookups; dump and plan).
//!
//! Run with `cargo xtask bench netlink` (root, for the namespace).

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use edge_agent::netlink::{
    desired::{Inputs, PeerPaths},
    kernel::Kernel,
    plan::plan,
    reconciler::{reconcile_once, remove_owned},
    state::{Desired, Ownership},
};
use edge_tests::netns::{Netns, veth};

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "the netlink benchmark needs a network namespace: run as root (`cargo xtask bench netlink`)"
        );
        std::process::exit(1);
    }
    let node = Netns::new();
    let peers = Netns::new();
    veth(&node, "up0", &peers, "up1");
    node.add_addr("up0", "198.51.100.1/25");
    peers.add_addr("up1", "198.51.100.126/25");
    node.ip(&["route", "add", "default", "via", "198.51.100.126"]);
    let own = Ownership {
        link: "edge0".into(),
        table: 4179,
        protocol: 242,
    };
    node.run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let kernel = Kernel::open().unwrap();
            for n in [1_000, 10_000] {
                let inputs = peers_behind_the_gateway(n);
                let start = Instant::now();
                let applied = reconcile_once(&kernel, &own, &inputs).await.unwrap();
                let apply = start.elapsed();
                assert!(applied.len() >= n, "{} changes", applied.len());
                println!(
                    "{n:>6} route changes (from empty, one pass): {apply:>10.2?}, {:>6.1} µs per route",
                    apply.as_secs_f64() * 1e6 / n as f64
                );
                // Nothing to do: the whole pass, then its parts.
                let mut passes = Vec::new();
                for _ in 0..5 {
                    let start = Instant::now();
                    let changes = reconcile_once(&kernel, &own, &inputs).await.unwrap();
                    passes.push(start.elapsed());
                    assert!(changes.is_empty());
                }
                let mut lookups = Vec::new();
                let mut dumps = Vec::new();
                for _ in 0..5 {
                    let start = Instant::now();
                    for dst in inputs.destinations() {
                        kernel.route_to(dst).await.unwrap();
                    }
                    lookups.push(start.elapsed());
                    let start = Instant::now();
                    let actual = kernel.dump(&own).await.unwrap();
                    let desired = Desired {
                        addresses: actual.addresses.clone(),
                        routes: actual.routes.clone(),
                        neighbours: actual.neighbours.clone(),
                    };
                    assert!(plan(&desired, &actual).is_empty());
                    dumps.push(start.elapsed());
                }
                println!(
                    "{n:>6} owned routes, no-op pass: {:>10.2?} (median of 5): route lookups {:>10.2?}, dump + plan {:>10.2?}",
                    median(passes),
                    median(lookups),
                    median(dumps)
                );
                remove_owned(&kernel, &own).await.unwrap();
            }
        });
    });
}

/// `n` peers with one next hop each, off-link (behind the default
/// gateway), from the benchmarking range 198.18.0.0/15.
fn peers_behind_the_gateway(n: usize) -> Inputs {
    Inputs {
        node_addrs: vec![IpAddr::from(Ipv4Addr::new(192, 0, 2, 1))],
        peers: (0..n)
            .map(|i| PeerPaths {
                identities: Vec::new(),
                next_hops: vec![IpAddr::from(Ipv4Addr::from(
                    u32::from(Ipv4Addr::new(198, 18, 0, 1)) + i as u32,
                ))],
                private: None,
            })
            .collect(),
        ..Inputs::default()
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
