//! The doors of the XDP program (the agent's own ports), run by the
//! kernel (BPF_PROG_TEST_RUN) on crafted frames. Table-driven: each case
//! is a frame, the action and exactly the counters it must move; then the
//! token bucket over time, prefix masking, and the offenders the agent
//! reads back.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsFd, BorrowedFd},
    time::Duration,
};

use edge_agent::dataplane::{Dataplane, DoorsSpec, LoadOptions};
use edge_common::{PROGRAM_NAME, stats::Counter};
use edge_tests::{
    counters::changed,
    fixture::{Lab, configure, doors},
    packet::*,
    plan::{VIP_WEB_V4, underlay_v4, underlay_v6},
    privilege::require_root,
    testrun::{XdpAction, run_on},
};

const NEIGHBOR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 254);
const CANDIDATE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 3);

fn stranger(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 7, n)
}

fn stranger6(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 0, 0, 0, 0, n)
}

/// A TCP segment with `flags` (no options), checksummed.
fn tcp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut s = tcp_syn(src, dst, sport, dport);
    s[13] = flags;
    s[16..18].copy_from_slice(&[0, 0]);
    let sum = transport_checksum(src, dst, IPPROTO_TCP, &s);
    s[16..18].copy_from_slice(&sum.to_be_bytes());
    s
}

fn tcp4(vlans: &[Vlan], src: Ipv4Addr, dst: Ipv4Addr, dport: u16, flags: u8) -> Vec<u8> {
    let seg = tcp(src.into(), dst.into(), 40000, dport, flags);
    ethernet(vlans, ETH_P_IPV4, &ipv4(src, dst, IPPROTO_TCP, &[], &seg))
}

fn tcp6(src: Ipv6Addr, dst: Ipv6Addr, dport: u16, flags: u8) -> Vec<u8> {
    let seg = tcp(src.into(), dst.into(), 40000, dport, flags);
    ethernet(&[], ETH_P_IPV6, &ipv6(src, dst, IPPROTO_TCP, &seg))
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

struct Case {
    name: &'static str,
    frame: Vec<u8>,
    action: XdpAction,
    moved: &'static [Counter],
}

fn cases() -> Vec<Case> {
    use Counter::*;
    use XdpAction::*;
    let me4 = underlay_v4(1);
    let me6 = underlay_v6(1);
    let q = Vlan {
        tpid: TPID_8021Q,
        vid: 100,
    };
    vec![
        Case {
            name: "a listed neighbour's SYN to 179",
            frame: tcp4(&[], NEIGHBOR, me4, 179, SYN),
            action: Pass,
            moved: &[DoorListed, Ipv4],
        },
        Case {
            name: "a stranger's SYN to 179",
            frame: tcp4(&[], stranger(1), me4, 179, SYN),
            action: Drop,
            moved: &[DoorUnlisted, Ipv4],
        },
        Case {
            name: "a stranger's ACK to 179, VLAN-tagged",
            frame: tcp4(&[q], stranger(1), me4, 179, ACK),
            action: Drop,
            moved: &[DoorUnlisted, Ipv4, VlanTagged],
        },
        Case {
            name: "a stranger's single-hop BFD",
            frame: udp4_frame(&[], stranger(2), me4, 3784, &[0; 24]),
            action: Drop,
            moved: &[DoorUnlisted, Ipv4],
        },
        Case {
            name: "a stranger's multihop BFD over IPv6",
            frame: udp6_frame(&[], stranger6(1), me6, 4784, &[0; 24]),
            action: Drop,
            moved: &[DoorUnlisted, Ipv6],
        },
        Case {
            name: "a listed candidate's multihop BFD over IPv6",
            frame: udp6_frame(&[], CANDIDATE6, me6, 4784, &[0; 24]),
            action: Pass,
            moved: &[DoorListed, Ipv6],
        },
        Case {
            name: "a stranger's SYN to the control port, within the burst",
            frame: tcp4(&[], stranger(3), me4, 4179, SYN),
            action: Pass,
            moved: &[DoorAdmitted, Ipv4],
        },
        Case {
            name: "a stranger's ACK to the control port (a connection let in)",
            frame: tcp4(&[], stranger(3), me4, 4179, ACK),
            action: Pass,
            moved: &[DoorAdmitted, Ipv4],
        },
        Case {
            name: "a stranger's SYN to the control port over IPv6",
            frame: tcp6(stranger6(3), me6, 4179, SYN),
            action: Pass,
            moved: &[DoorAdmitted, Ipv6],
        },
        Case {
            name: "the router's SYN-ACK to our own connection (port 179 is its source)",
            // From a stranger's address even: only the destination port counts.
            frame: {
                let seg = tcp(stranger(4).into(), me4.into(), 179, 40000, SYN | ACK);
                ethernet(
                    &[],
                    ETH_P_IPV4,
                    &ipv4(stranger(4), me4, IPPROTO_TCP, &[], &seg),
                )
            },
            action: Pass,
            moved: &[NonService, Ipv4],
        },
        Case {
            name: "a stranger to a port without a door",
            frame: tcp4(&[], stranger(5), me4, 22, SYN),
            action: Pass,
            moved: &[NonService, Ipv4],
        },
        Case {
            name: "a stranger to 179 on the anycast VIP: not the agent's port",
            frame: tcp4(&[], stranger(6), VIP_WEB_V4, 179, SYN),
            action: Pass,
            moved: &[NonService, Ipv4],
        },
    ]
}

fn run(program: BorrowedFd<'_>, ifindex: u32, frame: &[u8]) -> XdpAction {
    run_on(program, frame, Some(ifindex)).unwrap().action
}

#[test]
fn each_door_decides_and_counts() {
    if !require_root("each_door_decides_and_counts") {
        return;
    }
    let lab = Lab::new();
    let ifindex = lab.ns.ifindex("up0");
    lab.ns.run(|| {
        let mut dp = Dataplane::load(&LoadOptions::default()).expect("load");
        configure(&mut dp);
        let program = dp.program_fd(PROGRAM_NAME).expect("program");
        // Without doors, the agent's ports are like any other.
        let before = dp.stats().unwrap();
        let action = run(
            program.as_fd(),
            ifindex,
            &tcp4(&[], stranger(1), underlay_v4(1), 179, SYN),
        );
        assert_eq!(action, XdpAction::Pass);
        assert_eq!(
            changed(&before, &dp.stats().unwrap()),
            [(Counter::NonService, 1), (Counter::Ipv4, 1)]
        );
        dp.list_source(NEIGHBOR.into()).unwrap();
        dp.list_source(CANDIDATE6.into()).unwrap();
        dp.set_doors(&doors()).unwrap();
        let mut listed = dp.listed_sources().unwrap();
        listed.sort();
        assert_eq!(listed, [IpAddr::from(NEIGHBOR), CANDIDATE6.into()]);
        for c in cases() {
            let before = dp.stats().unwrap();
            let result = run_on(program.as_fd(), &c.frame, Some(ifindex))
                .unwrap_or_else(|e| panic!("{}: {e}", c.name));
            let moved = changed(&before, &dp.stats().unwrap());
            assert_eq!(result.action, c.action, "{}: action", c.name);
            let expected: Vec<(Counter, u64)> = c.moved.iter().map(|c| (*c, 1)).collect();
            assert_eq!(moved, expected, "{}: counters", c.name);
            assert_eq!(result.data, c.frame, "{}: the frame is untouched", c.name);
        }
        // Unlisted, the neighbour is a stranger like any other.
        dp.unlist_source(NEIGHBOR.into()).unwrap();
        let frame = tcp4(&[], NEIGHBOR, underlay_v4(1), 179, SYN);
        assert_eq!(run(program.as_fd(), ifindex, &frame), XdpAction::Drop);
        // The offenders, worst first, named by prefix.
        let offenders = dp.door_offenders(1).unwrap();
        let names: Vec<String> = offenders
            .iter()
            .map(|o| format!("{}/{} {}", o.prefix, o.len, o.dropped))
            .collect();
        assert!(names.contains(&"198.18.7.1/32 2".to_string()), "{names:?}");
        assert!(
            names.contains(&"2001:db8:bad::/64 1".to_string()),
            "{names:?}"
        );
        assert_eq!(offenders[0].dropped, 2, "{names:?}");
    });
}

#[test]
fn the_control_port_takes_a_burst_then_the_rate_per_source_prefix() {
    if !require_root("the_control_port_takes_a_burst_then_the_rate_per_source_prefix") {
        return;
    }
    let lab = Lab::new();
    let ifindex = lab.ns.ifindex("up0");
    lab.ns.run(|| {
        let mut dp = Dataplane::load(&LoadOptions::default()).expect("load");
        configure(&mut dp);
        let program = dp.program_fd(PROGRAM_NAME).expect("program");
        // 10 SYNs a second, 3 at once, by /24 and /48. BPF_PROG_TEST_RUN
        // runs on the calling CPU: pin this thread so the per-CPU bucket
        // is one.
        pin_to_cpu(0);
        dp.set_doors(&DoorsSpec {
            syn_rate: 10,
            syn_burst: 3,
            v4_prefix: 24,
            v6_prefix: 48,
            ..doors()
        })
        .unwrap();
        let me = underlay_v4(1);
        let syn = |src| tcp4(&[], src, me, 4179, SYN);
        let actions: Vec<XdpAction> = (1..=5)
            .map(|n| run(program.as_fd(), ifindex, &syn(Ipv4Addr::new(198, 18, 9, n))))
            .collect();
        use XdpAction::*;
        // One /24: three in the burst, then none.
        assert_eq!(actions, [Pass, Pass, Pass, Drop, Drop]);
        // Another /24 has its own bucket.
        assert_eq!(
            run(
                program.as_fd(),
                ifindex,
                &syn(Ipv4Addr::new(198, 18, 10, 1))
            ),
            Pass
        );
        // A tenth of a second later, one token more.
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(
            run(
                program.as_fd(),
                ifindex,
                &syn(Ipv4Addr::new(198, 18, 9, 77))
            ),
            Pass
        );
        assert_eq!(
            run(
                program.as_fd(),
                ifindex,
                &syn(Ipv4Addr::new(198, 18, 9, 78))
            ),
            Drop
        );
        // IPv6 by /48: two addresses in two /64s of one /48 share it.
        let syn6 = |src| tcp6(src, underlay_v6(1), 4179, SYN);
        let a = Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 1, 0, 0, 0, 1);
        let b = Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 2, 0, 0, 0, 1);
        let v6: Vec<XdpAction> = [a, b, a, b]
            .into_iter()
            .map(|src| run(program.as_fd(), ifindex, &syn6(src)))
            .collect();
        assert_eq!(v6, [Pass, Pass, Pass, Drop]);
        let offenders = dp.door_offenders(1).unwrap();
        let found: Vec<(String, u8, u64, u64)> = offenders
            .iter()
            .map(|o| (o.prefix.to_string(), o.len, o.admitted, o.dropped))
            .collect();
        assert!(
            found.contains(&("198.18.9.0".into(), 24, 4, 3)),
            "{found:?}"
        );
        assert!(
            found.contains(&("2001:db8:bad::".into(), 48, 3, 1)),
            "{found:?}"
        );
    });
}

fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}
