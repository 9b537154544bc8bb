//! The XDP program's cost per packet on each path, measured by the kernel
//! with BPF_PROG_TEST_RUN, side by side with the empty program (`edge_pass`)
//! in the same run so that the difference is the program's own work; then
//! what the verifier and the kernel say about the program and its maps.
//!
//! Run with `cargo xtask bench` (root). Prints Markdown for docs/performance.md.

use std::{net::Ipv4Addr, os::fd::AsFd};

use edge_agent::dataplane::{Dataplane, LoadOptions};
use edge_common::{PASS_PROGRAM_NAME, PROGRAM_NAME};
use edge_tests::{
    fixture::{Lab, VIP_ANY4, configure, doors},
    packet::*,
    plan::{VIP_DNS_V4, VIP_WEB_V4, VIP_WEB_V6, client_v4, underlay_v4},
    testrun::time_against_baseline,
};

/// Interleaved single runs per program and path.
const RUNS: usize = 20_000;

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "the XDP benchmark runs the program in the kernel: run it as root (`cargo xtask bench`)"
        );
        std::process::exit(1);
    }
    let lab = Lab::new();
    let ifindex = lab.ns.ifindex("up0");
    let c4 = client_v4(1);
    let c6: std::net::Ipv6Addr = "2001:db8:c1::1".parse().unwrap();
    let udp4_to = |dst: Ipv4Addr, sport: u16, dport: u16| {
        ethernet(
            &[],
            ETH_P_IPV4,
            &ipv4(
                c4,
                dst,
                IPPROTO_UDP,
                &[],
                &udp(c4.into(), dst.into(), sport, dport, &[0; 64]),
            ),
        )
    };
    let web_syn = ethernet(
        &[],
        ETH_P_IPV4,
        &ipv4(
            c4,
            VIP_WEB_V4,
            IPPROTO_TCP,
            &[],
            &tcp_syn(c4.into(), VIP_WEB_V4.into(), 40000, 80),
        ),
    );
    let web6 = ethernet(
        &[],
        ETH_P_IPV6,
        &ipv6(
            c6,
            VIP_WEB_V6,
            IPPROTO_TCP,
            &tcp_syn(c6.into(), VIP_WEB_V6.into(), 40000, 80),
        ),
    );
    let inner = ipv4(
        c4,
        VIP_WEB_V4,
        IPPROTO_TCP,
        &[],
        &tcp_syn(c4.into(), VIP_WEB_V4.into(), 40001, 80),
    );
    let decap = ethernet(
        &[],
        ETH_P_IPV4,
        &[
            outer_ipv4(underlay_v4(2), underlay_v4(1), IPPROTO_IPIP, 0, inner.len()),
            inner,
        ]
        .concat(),
    );
    let new_flows: Vec<Vec<u8>> = (0..RUNS as u16)
        .map(|p| udp4_to(VIP_DNS_V4, 1024 + p, 53))
        .collect();
    let paths: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "non-service (IPv4/UDP)",
            vec![udp4_to(Ipv4Addr::new(198, 18, 9, 9), 40000, 9)],
        ),
        ("local service (IPv4/TCP, flow-table hit)", vec![web_syn]),
        (
            "encap 4in4 (IPv4/UDP, flow-table hit)",
            vec![udp4_to(VIP_DNS_V4, 40000, 53)],
        ),
        (
            "encap 4in4, flow-table miss (new flow each packet)",
            new_flows,
        ),
        ("encap 6in6 (IPv6/TCP, flow-table hit)", vec![web6]),
        (
            "encap GUE over IPv4 (flow-table hit)",
            vec![udp4_to(VIP_ANY4, 40000, 9999)],
        ),
        ("decap 4in4 from a trusted peer", vec![decap]),
    ];

    let me = underlay_v4(1);
    let syn_to = |src: Ipv4Addr, dport: u16| {
        ethernet(
            &[],
            ETH_P_IPV4,
            &ipv4(
                src,
                me,
                IPPROTO_TCP,
                &[],
                &tcp_syn(src.into(), me.into(), 40000, dport),
            ),
        )
    };
    let door_paths: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "non-service (IPv4/UDP), doors set",
            vec![udp4_to(Ipv4Addr::new(198, 18, 9, 9), 40000, 9)],
        ),
        (
            "to a port without a door (IPv4/TCP SYN to 22)",
            vec![syn_to(c4, 22)],
        ),
        (
            "listed source to 179 (pass)",
            vec![syn_to(Ipv4Addr::new(198, 51, 100, 254), 179)],
        ),
        ("stranger to 179 (drop)", vec![syn_to(c4, 179)]),
        (
            "stranger's SYN to 4179, over its rate (drop)",
            vec![syn_to(c4, 4179)],
        ),
    ];
    lab.ns.run(|| {
        let mut dp = Dataplane::load(&LoadOptions::default()).expect("load the XDP object");
        configure(&mut dp);
        let program = dp.program_fd(PROGRAM_NAME).expect("edge_xdp");
        let baseline = dp.program_fd(PASS_PROGRAM_NAME).expect("edge_pass");
        println!("{RUNS} interleaved BPF_PROG_TEST_RUN calls (repeat = 1) per program and path; median ns per call.\n");
        println!("| path | edge_xdp | edge_pass (empty) | edge_xdp cost |");
        println!("|---|---:|---:|---:|");
        for (name, frames) in &paths {
            let t = time_against_baseline(program.as_fd(), baseline.as_fd(), frames, Some(ifindex), RUNS).expect("test run");
            println!("| {name} | {} | {} | {:+} |", t.program_ns, t.baseline_ns, t.cost_ns());
        }
        // The same non-service path with the doors set, side by side with
        // the door paths, in the same run.
        for addr in [Ipv4Addr::new(198, 51, 100, 254), underlay_v4(2)] {
            dp.list_source(addr.into()).expect("list a source");
        }
        dp.set_doors(&doors()).expect("doors");
        println!("\nWith the doors set (4179 rate-limited, 179, 3784, 4784 listed-only; 2 listed sources):\n");
        println!("| path | edge_xdp | edge_pass (empty) | edge_xdp cost |");
        println!("|---|---:|---:|---:|");
        for (name, frames) in &door_paths {
            let t = time_against_baseline(program.as_fd(), baseline.as_fd(), frames, Some(ifindex), RUNS).expect("test run");
            println!("| {name} | {} | {} | {:+} |", t.program_ns, t.baseline_ns, t.cost_ns());
        }
        let facts = dp.program_facts().expect("program info");
        println!(
            "\nedge_xdp: {} instructions processed by the verifier, {} bytes translated, {} bytes JIT-compiled.\n",
            facts.verified_instructions.map_or("?".into(), |n| n.to_string()),
            facts.translated_bytes.map_or("?".into(), |n| n.to_string()),
            facts.jited_bytes
        );
        println!("| map (default sizes) | kernel memory (memlock) |\n|---|---:|");
        let mut total = 0;
        for (name, bytes) in dp.map_memory() {
            total += bytes;
            println!("| {name} | {:.1} KiB |", bytes as f64 / 1024.0);
        }
        println!("| total | {:.1} MiB |", total as f64 / (1024.0 * 1024.0));
    });
}
