//! The XDP program run by the kernel on crafted frames (BPF_PROG_TEST_RUN):
//! every frame passes untouched and moves exactly the counters it should.

use std::os::fd::AsFd;

use edge_agent::dataplane::{Dataplane, LoadOptions};
use edge_common::{PROGRAM_NAME, stats::Counter};
use edge_tests::{
    counters::changed,
    packet::*,
    plan::{VIP_DNS_V6, VIP_WEB_V4, client_v4, underlay_v6},
    privilege::require_root,
    testrun::{MIN_FRAME, XdpAction, run},
};

/// Counters a frame moved, and by how much.
type Moved = Vec<(Counter, u64)>;

const Q: Vlan = Vlan {
    tpid: TPID_8021Q,
    vid: 100,
};
const AD: Vlan = Vlan {
    tpid: TPID_8021AD,
    vid: 200,
};

fn load() -> Dataplane {
    Dataplane::load(&LoadOptions::default()).expect("load the embedded XDP object")
}

/// Runs `frame` through `edge_xdp`, checks it passed unchanged, and returns
/// the counters it moved.
fn counters_moved(dp: &mut Dataplane, frame: &[u8]) -> Moved {
    let before = dp.stats().expect("read counters");
    let result = run(
        dp.program_fd(PROGRAM_NAME).expect("program fd").as_fd(),
        frame,
    )
    .expect("test run");
    assert_eq!(result.action, XdpAction::Pass, "frame {frame:02x?}");
    assert_eq!(result.data, frame, "the program must not touch the frame");
    changed(&before, &dp.stats().expect("read counters"))
}

fn set_u16(frame: &mut [u8], at: usize, value: u16) {
    frame[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

#[test]
fn crafted_frames_pass_and_move_the_right_counter() {
    if !require_root("crafted_frames_pass_and_move_the_right_counter") {
        return;
    }
    let (c4, v4, c6, v6) = (client_v4(7), VIP_WEB_V4, underlay_v6(7), VIP_DNS_V6);
    let udp4 = udp4_frame(&[], c4, v4, 80, b"hello");
    let udp6 = udp6_frame(&[], c6, v6, 53, b"hello");
    let with_options = ethernet(
        &[],
        ETH_P_IPV4,
        &ipv4(
            c4,
            v4,
            IPPROTO_UDP,
            &[7; 40],
            &udp(c4.into(), v4.into(), 1, 80, b""),
        ),
    );
    let syn4 = ethernet(
        &[],
        ETH_P_IPV4,
        &ipv4(
            c4,
            v4,
            IPPROTO_TCP,
            &[],
            &tcp_syn(c4.into(), v4.into(), 40000, 80),
        ),
    );
    let mut padded = udp4.clone();
    padded.resize(60, 0); // minimum Ethernet frame: padding after the IP packet
    let mut ihl4 = udp4.clone();
    ihl4[ETH_LEN] = 0x44;
    let mut short_total = udp4.clone();
    set_u16(&mut short_total, ETH_LEN + 2, 19);
    let mut long_total = udp4.clone();
    set_u16(
        &mut long_total,
        ETH_LEN + 2,
        (udp4.len() - ETH_LEN + 1) as u16,
    );
    let mut v6_in_v4 = udp4.clone();
    v6_in_v4[ETH_LEN] = 0x65;
    let mut v4_in_v6 = udp6.clone();
    v4_in_v6[ETH_LEN] = 0x40;
    let mut long_payload6 = udp6.clone();
    set_u16(
        &mut long_payload6,
        ETH_LEN + 4,
        (udp6.len() - ETH_LEN - IPV6_LEN + 1) as u16,
    );

    let cases: Vec<(&str, Vec<u8>, Moved)> = vec![
        (
            "ipv4 udp",
            udp4.clone(),
            vec![(Counter::NonService, 1), (Counter::Ipv4, 1)],
        ),
        (
            "ipv4 with 40 bytes of options",
            with_options,
            vec![(Counter::NonService, 1), (Counter::Ipv4, 1)],
        ),
        (
            "ipv4 tcp syn",
            syn4,
            vec![(Counter::NonService, 1), (Counter::Ipv4, 1)],
        ),
        (
            "ipv4 with ethernet padding",
            padded,
            vec![(Counter::NonService, 1), (Counter::Ipv4, 1)],
        ),
        (
            "ipv6 udp",
            udp6.clone(),
            vec![(Counter::NonService, 1), (Counter::Ipv6, 1)],
        ),
        (
            "802.1Q ipv4",
            udp4_frame(&[Q], c4, v4, 80, b"x"),
            vec![
                (Counter::NonService, 1),
                (Counter::Ipv4, 1),
                (Counter::VlanTagged, 1),
            ],
        ),
        (
            "802.1ad+802.1Q ipv6",
            udp6_frame(&[AD, Q], c6, v6, 53, b"x"),
            vec![
                (Counter::NonService, 1),
                (Counter::Ipv6, 1),
                (Counter::VlanTagged, 1),
            ],
        ),
        (
            "802.1Q+802.1Q ipv4",
            udp4_frame(&[Q, Q], c4, v4, 80, b"x"),
            vec![
                (Counter::NonService, 1),
                (Counter::Ipv4, 1),
                (Counter::VlanTagged, 1),
            ],
        ),
        (
            "three tags",
            udp4_frame(&[AD, Q, Q], c4, v4, 80, b"x"),
            vec![(Counter::VlanTooDeep, 1), (Counter::VlanTagged, 1)],
        ),
        (
            "arp",
            ethernet(&[], ETH_P_ARP, &[0; 28]),
            vec![(Counter::NonIp, 1)],
        ),
        (
            "arp in a vlan",
            ethernet(&[Q], ETH_P_ARP, &[0; 28]),
            vec![(Counter::NonIp, 1), (Counter::VlanTagged, 1)],
        ),
        ("ipv4 ihl 4", ihl4, vec![(Counter::BadIpv4Ihl, 1)]),
        (
            "ipv4 total length below header",
            short_total,
            vec![(Counter::BadIpv4Len, 1)],
        ),
        (
            "ipv4 total length past frame",
            long_total,
            vec![(Counter::BadIpv4Len, 1)],
        ),
        (
            "version 6 behind ipv4 ethertype",
            v6_in_v4,
            vec![(Counter::BadIpVersion, 1)],
        ),
        (
            "version 4 behind ipv6 ethertype",
            v4_in_v6,
            vec![(Counter::BadIpVersion, 1)],
        ),
        (
            "ipv6 payload past frame",
            long_payload6,
            vec![(Counter::BadIpv6Len, 1)],
        ),
    ];
    let mut dp = load();
    for (name, frame, expected) in cases {
        assert_eq!(counters_moved(&mut dp, &frame), expected, "case: {name}");
    }
}

/// What the program must count for `frame` cut to `len` bytes, worked out
/// from the frame's layout independently of the program.
fn expected_for_cut(
    tags: usize,
    ipv6: bool,
    l3_header: usize,
    l3_total: usize,
    len: usize,
) -> Moved {
    let l3 = ETH_LEN + VLAN_LEN * tags;
    let tagged = |c: Counter| {
        let mut v = vec![(c, 1)];
        if tags > 0 {
            v.push((Counter::VlanTagged, 1));
        }
        v
    };
    let tagged_family = |family: Counter| {
        let mut v = vec![(Counter::NonService, 1), (family, 1)];
        if tags > 0 {
            v.push((Counter::VlanTagged, 1));
        }
        v
    };
    assert!(
        len >= ETH_LEN,
        "test runs take no frame shorter than an Ethernet header"
    );
    if len < l3 {
        return tagged(Counter::TruncVlan);
    }
    let outcome = match (ipv6, len - l3) {
        (false, n) if n < IPV4_LEN => Counter::TruncIpv4,
        (false, n) if n < l3_header => Counter::TruncIpv4Options,
        (false, n) if n < l3_total => Counter::BadIpv4Len,
        (true, n) if n < IPV6_LEN => Counter::TruncIpv6,
        (true, n) if n < l3_total => Counter::BadIpv6Len,
        // Well-formed: no service is configured, so it passes as non-service
        // and its family is counted.
        (false, _) => return tagged_family(Counter::Ipv4),
        (true, _) => return tagged_family(Counter::Ipv6),
    };
    tagged(outcome)
}

/// Every cut from an Ethernet header alone to the whole frame (the kernel
/// takes no shorter test frame; see `edge_tests::testrun`).
#[test]
fn frames_cut_at_every_length_are_counted_never_crash() {
    if !require_root("frames_cut_at_every_length_are_counted_never_crash") {
        return;
    }
    let (c4, v4, c6, v6) = (client_v4(9), VIP_WEB_V4, underlay_v6(9), VIP_DNS_V6);
    let l4 = udp(c4.into(), v4.into(), 1, 80, b"payload");
    let options = ipv4(c4, v4, IPPROTO_UDP, &[1; 12], &l4);
    let plain6 = ipv6(
        c6,
        v6,
        IPPROTO_UDP,
        &udp(c6.into(), v6.into(), 1, 53, b"payload"),
    );
    // (tags, frame, is_ipv6, l3 header length, l3 total length)
    let frames = [
        (
            0,
            ethernet(&[], ETH_P_IPV4, &options),
            false,
            32,
            options.len(),
        ),
        (
            1,
            ethernet(&[Q], ETH_P_IPV4, &options),
            false,
            32,
            options.len(),
        ),
        (
            2,
            ethernet(&[AD, Q], ETH_P_IPV4, &options),
            false,
            32,
            options.len(),
        ),
        (
            0,
            ethernet(&[], ETH_P_IPV6, &plain6),
            true,
            IPV6_LEN,
            plain6.len(),
        ),
        (
            2,
            ethernet(&[AD, Q], ETH_P_IPV6, &plain6),
            true,
            IPV6_LEN,
            plain6.len(),
        ),
    ];
    let mut dp = load();
    for (tags, frame, is_v6, header, total) in frames {
        for len in MIN_FRAME..=frame.len() {
            let moved = counters_moved(&mut dp, &frame[..len]);
            assert_eq!(
                moved,
                expected_for_cut(tags, is_v6, header, total, len),
                "{tags}-tag {} frame cut to {len} of {} bytes",
                if is_v6 { "ipv6" } else { "ipv4" },
                frame.len()
            );
        }
    }
}

#[test]
fn random_bytes_always_pass_and_count_one_outcome() {
    if !require_root("random_bytes_always_pass_and_count_one_outcome") {
        return;
    }
    // xorshift64*: deterministic, so a failure names a reproducible case.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut dp = load();
    for case in 0..2000 {
        let len = MIN_FRAME + (next() % 150) as usize;
        let mut frame: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Steer half of the cases into the IP and VLAN parsers.
        if case % 2 == 0 {
            let ethertype =
                [ETH_P_IPV4, ETH_P_IPV6, TPID_8021Q, TPID_8021AD][(next() % 4) as usize];
            frame[12..14].copy_from_slice(&ethertype.to_be_bytes());
        }
        let moved = counters_moved(&mut dp, &frame);
        let outcomes: u64 = moved
            .iter()
            .filter(|(c, _)| c.is_outcome())
            .map(|(_, n)| n)
            .sum();
        assert_eq!(
            outcomes, 1,
            "case {case}: exactly one outcome for {frame:02x?}, got {moved:?}"
        );
    }
}
