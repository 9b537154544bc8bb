//! The XDP program's cost per packet, measured by the kernel with
//! BPF_PROG_TEST_RUN, side by side with the empty program (`edge_pass`) in
//! the same run so that the difference is the program's own work.
//!
//! Run with `cargo xtask bench` (root). Prints a Markdown table for
//! docs/performance.md.

use std::os::fd::AsFd;

use edge_agent::dataplane::{Dataplane, LoadOptions};
use edge_common::{PASS_PROGRAM_NAME, PROGRAM_NAME};
use edge_tests::{
    packet::*,
    plan::{VIP_DNS_V6, VIP_WEB_V4, client_v4, underlay_v6},
    testrun::time_against_baseline,
};

/// Interleaved single runs per program and frame.
const RUNS: usize = 20_000;

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "the XDP benchmark runs the program in the kernel: run it as root (`cargo xtask bench`)"
        );
        std::process::exit(1);
    }
    let (c4, v4, c6, v6) = (client_v4(1), VIP_WEB_V4, underlay_v6(1), VIP_DNS_V6);
    let q = Vlan {
        tpid: TPID_8021Q,
        vid: 100,
    };
    let ad = Vlan {
        tpid: TPID_8021AD,
        vid: 200,
    };
    let udp4 = udp(c4.into(), v4.into(), 40000, 80, &[0; 64]);
    let frames: Vec<(&str, Vec<u8>)> = vec![
        ("IPv4/UDP", udp4_frame(&[], c4, v4, 80, &[0; 64])),
        (
            "IPv4/UDP, 40 B options",
            ethernet(&[], ETH_P_IPV4, &ipv4(c4, v4, IPPROTO_UDP, &[1; 40], &udp4)),
        ),
        ("IPv6/UDP", udp6_frame(&[], c6, v6, 53, &[0; 64])),
        (
            "802.1ad+802.1Q IPv4/UDP",
            udp4_frame(&[ad, q], c4, v4, 80, &[0; 64]),
        ),
        (
            "truncated IPv4 header",
            ethernet(&[], ETH_P_IPV4, &[0x45, 0, 0, 20]),
        ),
    ];

    let mut dp = Dataplane::load(&LoadOptions::default()).expect("load the XDP object");
    let program = dp.program_fd(PROGRAM_NAME).expect("edge_xdp");
    let baseline = dp.program_fd(PASS_PROGRAM_NAME).expect("edge_pass");
    println!(
        "{RUNS} interleaved BPF_PROG_TEST_RUN calls (repeat = 1) per program and frame; median ns per run.\n"
    );
    println!("| frame | edge_xdp | edge_pass (empty) | edge_xdp cost |");
    println!("|---|---:|---:|---:|");
    for (name, frame) in &frames {
        let t = time_against_baseline(program.as_fd(), baseline.as_fd(), frame, RUNS)
            .expect("test run");
        println!(
            "| {name} ({} B) | {} | {} | {:+} |",
            frame.len(),
            t.program_ns,
            t.baseline_ns,
            t.cost_ns()
        );
    }
}
