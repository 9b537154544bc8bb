//! The test harness itself: namespaces are unique and go away even when the
//! test panics; BIRD starts from generated config and peers across a veth;
//! BPF test runs return the action and bytes, and name the kernel's limit
//! on runt frames.

use std::{os::fd::AsFd, panic, process::Command, time::Duration};

use edge_agent::dataplane::{Dataplane, LoadOptions};
use edge_common::PASS_PROGRAM_NAME;
use edge_tests::{
    bird::{BgpNeighbor, Bird, bgp_config},
    netns::{Netns, veth},
    plan::{ISP_ASNS, underlay_v4},
    privilege::require_root,
    testrun::{MIN_FRAME, XdpAction, run},
};

fn namespaces() -> String {
    String::from_utf8(
        Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip")
            .stdout,
    )
    .unwrap()
}

#[test]
fn namespaces_are_unique_and_removed_even_on_panic() {
    if !require_root("namespaces_are_unique_and_removed_even_on_panic") {
        return;
    }
    let (a, b) = (Netns::new(), Netns::new());
    assert_ne!(a.name(), b.name());
    let name = a.name().to_owned();
    let result = panic::catch_unwind(move || {
        let _owned = a;
        panic!("a failing test");
    });
    assert!(result.is_err());
    assert!(!namespaces().contains(&name), "{name} survived the panic");
    assert!(namespaces().contains(b.name()));
}

#[test]
fn bird_peers_with_bird_across_a_veth() {
    if !require_root("bird_peers_with_bird_across_a_veth") {
        return;
    }
    let (left, right) = (Netns::new(), Netns::new());
    veth(&left, "isp0", &right, "isp1");
    left.add_addr("isp0", &format!("{}/30", underlay_v4(1)));
    right.add_addr("isp1", &format!("{}/30", underlay_v4(2)));
    let peer = |asn: u32, addr| BgpNeighbor::new("peer", addr, asn);
    let mut a = Bird::start(
        &left,
        &bgp_config(
            underlay_v4(1),
            ISP_ASNS[0],
            &[peer(ISP_ASNS[1], underlay_v4(2).into())],
        ),
    );
    let mut b = Bird::start(
        &right,
        &bgp_config(
            underlay_v4(2),
            ISP_ASNS[1],
            &[peer(ISP_ASNS[0], underlay_v4(1).into())],
        ),
    );
    a.wait_established("peer", Duration::from_secs(30));
    b.wait_established("peer", Duration::from_secs(30));
    assert!(
        a.birdc("show protocols all peer")
            .contains(&format!("Neighbor AS:      {}", ISP_ASNS[1]))
    );
}

#[test]
fn test_run_returns_action_and_bytes_and_names_the_runt_limit() {
    if !require_root("test_run_returns_action_and_bytes_and_names_the_runt_limit") {
        return;
    }
    let mut dp = Dataplane::load(&LoadOptions::default()).expect("load");
    let pass = dp.program_fd(PASS_PROGRAM_NAME).expect("pass program");
    for len in [MIN_FRAME, 60, 1514] {
        let frame: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let result = run(pass.as_fd(), &frame).unwrap_or_else(|e| panic!("len {len}: {e}"));
        assert_eq!(result.action, XdpAction::Pass);
        assert_eq!(result.data, frame, "length {len}");
    }
    let error = run(pass.as_fd(), &[0; MIN_FRAME - 1]).expect_err("runt");
    assert!(
        error.to_string().contains("shorter than 14 bytes"),
        "{error}"
    );
}
