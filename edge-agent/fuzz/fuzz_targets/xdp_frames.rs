//! The XDP program's parser and decisions: frames built from the input
//! (see `edge_fuzz::frames`) run through the real object with
//! BPF_PROG_TEST_RUN, in a namespace with the pipeline tests' world
//! (services, peers, trusted sources, doors). Needs root. For every
//! frame: never XDP_ABORTED; exactly one outcome counter moves, by one,
//! and the action is the one that outcome means; a passed frame is
//! unchanged (but a decapsulated one); a transmitted or redirected one
//! starts with a well-formed outer header.

#![no_main]

use std::{
    net::IpAddr,
    os::fd::AsFd,
    sync::{Mutex, OnceLock},
};

use edge_agent::dataplane::{Dataplane, LoadOptions};
use edge_common::{
    PROGRAM_NAME,
    stats::{Counter, FIRST_ATTRIBUTE},
};
use edge_fuzz::frames::frame;
use edge_tests::{
    counters::changed,
    fixture::{Lab, configure, doors},
    packet::{ETH_P_IPV4, ETH_P_IPV6, checksum},
    plan::underlay_v4,
    testrun::{XdpAction, run_on},
};
use libfuzzer_sys::fuzz_target;

struct World {
    dp: Dataplane,
    ifindex: u32,
}

/// The namespace, deleted when the fuzzer exits (libFuzzer ends with
/// `exit`, which runs `atexit` handlers but no destructors).
static LAB: Mutex<Option<Lab>> = Mutex::new(None);

extern "C" fn delete_lab() {
    // Not by dropping the Lab: that kills every process in the namespace,
    // and this one is in it. (A namespace left by a crash is deleted by
    // the next test process's reaper.)
    if let Some(lab) = LAB.lock().ok().and_then(|mut lab| lab.take()) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", lab.ns.name()])
            .status();
        std::mem::forget(lab);
    }
}

fn world() -> &'static Mutex<World> {
    static WORLD: OnceLock<Mutex<World>> = OnceLock::new();
    WORLD.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "xdp_frames runs the XDP program: run as root"
        );
        let lab = Lab::new();
        let ifindex = lab.ns.ifindex("up0");
        // libFuzzer calls the target on this thread: it stays in the lab.
        edge_agent::netns::enter(lab.ns.name()).expect("enter the lab's namespace");
        *LAB.lock().expect("not poisoned") = Some(lab);
        // SAFETY: registers a plain function with no captured state.
        unsafe { libc::atexit(delete_lab) };
        let mut dp = Dataplane::load(&LoadOptions::default()).expect("load the XDP object");
        configure(&mut dp);
        dp.set_doors(&doors()).expect("doors");
        dp.list_source(IpAddr::V4(underlay_v4(2)))
            .expect("list a source");
        Mutex::new(World { dp, ifindex })
    })
}

/// The action an outcome counter means.
fn action_of(outcome: Counter) -> XdpAction {
    use Counter::*;
    match outcome {
        ForwardedTx | MtuIcmp => XdpAction::Tx,
        ForwardedRedirect => XdpAction::Redirect,
        UnavailableDrop | DecapUntrusted | DecapNotService | DecapMalformed | DoorRateLimited
        | DoorUnlisted => XdpAction::Drop,
        _ => XdpAction::Pass,
    }
}

fuzz_target!(|data: &[u8]| {
    let frame = frame(data);
    let mut world = world().lock().expect("not poisoned");
    let World { dp, ifindex } = &mut *world;
    let before = dp.stats().expect("read counters");
    let program = dp.program_fd(PROGRAM_NAME).expect("program");
    let result = run_on(program.as_fd(), &frame, Some(*ifindex)).expect("test run");
    let moved = changed(&before, &dp.stats().expect("read counters"));
    assert_ne!(result.action, XdpAction::Aborted, "{frame:02x?}");
    let outcomes: Vec<&(Counter, u64)> = moved
        .iter()
        .filter(|(c, _)| (*c as u32) < FIRST_ATTRIBUTE)
        .collect();
    assert!(
        matches!(outcomes.as_slice(), [(_, 1)]),
        "outcomes {outcomes:?} for {frame:02x?}"
    );
    let outcome = outcomes[0].0;
    assert_eq!(
        result.action,
        action_of(outcome),
        "{outcome:?} for {frame:02x?}"
    );
    match result.action {
        XdpAction::Pass if outcome != Counter::Decapsulated => {
            assert_eq!(result.data, frame, "{outcome:?} changed a passed frame");
        }
        XdpAction::Tx | XdpAction::Redirect => well_formed(&result.data, outcome),
        _ => {}
    }
});

/// A frame we send: Ethernet, then an IPv4 header with a right checksum
/// and total length, or an IPv6 header with a right payload length.
fn well_formed(out: &[u8], outcome: Counter) {
    let mut at = 12;
    while out.len() >= at + 2
        && matches!(u16::from_be_bytes([out[at], out[at + 1]]), 0x8100 | 0x88a8)
    {
        at += 4;
    }
    assert!(out.len() >= at + 2 + 20, "{outcome:?}: {out:02x?}");
    let ethertype = u16::from_be_bytes([out[at], out[at + 1]]);
    let ip = &out[at + 2..];
    match ethertype {
        ETH_P_IPV4 => {
            assert_eq!(ip[0] >> 4, 4);
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            assert!(ihl >= 20 && ip.len() >= ihl);
            assert_eq!(checksum(&ip[..ihl], 0), 0, "{outcome:?}: IPv4 checksum");
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            assert!(
                total >= ihl && total <= ip.len(),
                "{outcome:?}: IPv4 total length"
            );
        }
        ETH_P_IPV6 => {
            assert!(ip.len() >= 40);
            assert_eq!(ip[0] >> 4, 6);
            let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            assert!(payload <= ip.len() - 40, "{outcome:?}: IPv6 payload length");
        }
        other => panic!("{outcome:?}: we sent EtherType {other:#06x}"),
    }
}
