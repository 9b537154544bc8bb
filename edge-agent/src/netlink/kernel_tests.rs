//! Tests of the rtnetlink layer: message framing and error classification
//! without a kernel, then each operation against the kernel in network
//! namespaces of its own (root needed).

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    net::IpAddr,
    process::Command,
    time::{Duration, Instant},
};

use edge_tests::{
    netns::{Netns, veth},
    privilege::require_root,
};

use super::*;
use crate::netlink::state::{Address, Change, LinkState, Neighbour, Ownership, Route};

const TABLE: u32 = 4179;
const PROTOCOL: u8 = 250;

fn own() -> Ownership {
    Ownership {
        link: "edge0".to_owned(),
        table: TABLE,
        protocol: PROTOCOL,
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn prefix(text: &str) -> Prefix {
    text.parse().expect("test prefix")
}

/// Runs an async test body on a current-thread runtime (in the calling
/// thread, so in its network namespace).
fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

/// `ip -n NS ARGS`, its standard output.
fn ip_show(ns: &Netns, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-n", ns.name()])
        .args(args)
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace with an ifb interface `up0` (up) carrying 198.51.100.1/24
/// and 2001:db8:1::1/64.
fn namespace_with_uplink() -> (Netns, u32) {
    let ns = Netns::new();
    ns.ip(&["link", "add", "up0", "type", "ifb"]);
    ns.ip(&["link", "set", "up0", "up"]);
    ns.add_addr("up0", "198.51.100.1/24");
    ns.add_addr("up0", "2001:db8:1::1/64");
    let index = ns.ifindex("up0");
    (ns, index)
}

// Without a kernel.

#[test]
fn kernel_errors_are_classified_by_errno() {
    let what = || "adding neighbour 198.51.100.2".to_owned();
    let classify = |errno| {
        Nack {
            errno,
            message: errno_text(errno),
        }
        .into_error(what())
    };
    for errno in [libc::ENOBUFS, libc::ENOSPC, libc::ENOMEM] {
        assert!(
            matches!(classify(errno), NetlinkError::TableFull { .. }),
            "{errno}"
        );
    }
    for errno in [libc::EPERM, libc::EACCES] {
        assert!(matches!(
            classify(errno),
            NetlinkError::PermissionDenied { .. }
        ));
    }
    assert!(matches!(
        classify(libc::ENODEV),
        NetlinkError::NoSuchDevice { .. }
    ));
    assert!(matches!(
        classify(libc::EEXIST),
        NetlinkError::Exists { .. }
    ));
    let other = classify(libc::EINVAL);
    assert!(
        matches!(&other, NetlinkError::Kernel { errno, message, .. }
            if *errno == libc::EINVAL && message == "Invalid argument"),
        "{other:?}"
    );
    assert!(
        other
            .to_string()
            .starts_with("adding neighbour 198.51.100.2 failed")
    );
    let full = classify(libc::ENOBUFS).to_string();
    assert!(full.contains("gc_thresh3"), "{full}");
    assert!(classify(libc::ENOBUFS).is_retryable());
    assert!(!classify(libc::EPERM).is_retryable());
    assert!(!NetlinkError::Malformed { what: what() }.is_retryable());
}

#[test]
fn extended_acknowledgements_are_read() {
    // A capped NLMSG_ERROR payload: the echoed header, then
    // NLMSGERR_ATTR_MSG "FIB table does not exist" and an offset.
    let text = b"FIB table does not exist\0";
    let mut payload = vec![0u8; NLMSG_HDRLEN];
    let len = (4 + text.len()) as u16;
    payload.extend_from_slice(&len.to_ne_bytes());
    payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
    payload.extend_from_slice(text);
    payload.resize(align(payload.len()), 0);
    payload.extend_from_slice(&8u16.to_ne_bytes());
    payload.extend_from_slice(&2u16.to_ne_bytes());
    payload.extend_from_slice(&20u32.to_ne_bytes());
    let tlvs = error_tlvs(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload);
    assert_eq!(
        ext_ack_message(tlvs).as_deref(),
        Some("FIB table does not exist")
    );
    assert!(error_tlvs(NLM_F_CAPPED, &payload).is_empty());
    // Not capped: the whole echoed request (its length in its header) is
    // skipped.
    let mut uncapped = vec![0u8; 24];
    uncapped[..4].copy_from_slice(&24u32.to_ne_bytes());
    uncapped.extend_from_slice(&payload[NLMSG_HDRLEN..]);
    assert_eq!(
        ext_ack_message(error_tlvs(NLM_F_ACK_TLVS, &uncapped)).as_deref(),
        Some("FIB table does not exist")
    );
    // Garbage neither panics nor invents a message.
    assert_eq!(ext_ack_message(&[0xff, 0xff, 1, 0, b'x']), None);
    assert_eq!(ext_ack_message(&[2, 0]), None);
    assert_eq!(nack(-3, None).message, "No such process");
}

#[test]
fn datagrams_split_into_messages_or_fail_cleanly() {
    let mut datagram = Vec::new();
    for (seq, len) in [(7u32, 20u32), (8, 16)] {
        let start = datagram.len();
        datagram.extend_from_slice(&len.to_ne_bytes());
        datagram.extend_from_slice(&3u16.to_ne_bytes());
        datagram.extend_from_slice(&2u16.to_ne_bytes());
        datagram.extend_from_slice(&seq.to_ne_bytes());
        datagram.extend_from_slice(&0u32.to_ne_bytes());
        datagram.resize(start + align(len as usize), 0);
    }
    let messages = split_datagram(&datagram).expect("well formed");
    assert_eq!(messages.len(), 2);
    assert_eq!((messages[0].seq, messages[0].bytes.len()), (7, 20));
    assert_eq!(
        (messages[1].seq, messages[1].kind, messages[1].flags),
        (8, 3, 2)
    );
    // A length beyond the datagram, or shorter than a header.
    let mut bad = datagram.clone();
    bad[..4].copy_from_slice(&1000u32.to_ne_bytes());
    assert!(split_datagram(&bad).is_err());
    bad[..4].copy_from_slice(&4u32.to_ne_bytes());
    assert!(split_datagram(&bad).is_err());
    assert!(events_in(&bad) == vec![KernelEvent::Other]);
}

// Against the kernel.

#[test]
fn link_and_addresses_are_created_and_dumped() {
    if !require_root("link_and_addresses_are_created_and_dumped") {
        return;
    }
    let ns = Netns::new();
    let own = own();
    ns.run(|| {
        block_on(async {
            let kernel = Kernel::open().expect("open");
            assert_eq!(kernel.dump(&own).await.expect("dump"), Actual::default());

            let created = kernel
                .apply(&own, &Change::CreateLink)
                .await
                .expect("create");
            let Applied::LinkCreated(kind) = created else {
                panic!("CreateLink gave {created:?}");
            };
            let details = ip_show(&ns, &["-d", "link", "show", "edge0"]);
            assert!(
                details.contains(&format!("\n    {kind} ")),
                "{kind}: {details}"
            );
            let (index, running) = kernel.link("edge0").await.expect("link").expect("edge0");
            assert!(!running);
            let again = kernel.apply(&own, &Change::CreateLink).await;
            assert!(
                matches!(again, Err(NetlinkError::Exists { .. })),
                "{again:?}"
            );

            let up = kernel.apply(&own, &Change::LinkUp).await.expect("up");
            assert_eq!(up, Applied::Done);
            assert_eq!(
                kernel.link("edge0").await.expect("link"),
                Some((index, true))
            );

            let v4 = Address {
                addr: ip("192.0.2.10"),
                prefix_len: 32,
            };
            let v6 = Address {
                addr: ip("2001:db8::10"),
                prefix_len: 128,
            };
            for address in [v4, v6, v4] {
                let done = kernel.apply(&own, &Change::AddAddress(address)).await;
                assert_eq!(done.expect("add address"), Applied::Done);
            }
            let shown = ip_show(&ns, &["-6", "addr", "show", "dev", "edge0"]);
            assert!(shown.contains("2001:db8::10/128 scope global"), "{shown}");
            // Ours is added without DAD; the kernel's own link-local may
            // still be tentative for a moment.
            assert!(
                shown
                    .lines()
                    .filter(|l| l.contains("2001:db8::10/128"))
                    .all(|l| !l.contains("tentative")),
                "{shown}"
            );

            // Addresses on another interface are not the agent's.
            ns.ip(&["link", "add", "other0", "type", "ifb"]);
            ns.ip(&["link", "set", "other0", "up"]);
            ns.add_addr("other0", "192.0.2.20/32");
            ns.add_addr("other0", "2001:db8::20/128");

            let actual = kernel.dump(&own).await.expect("dump");
            assert_eq!(actual.link, Some(LinkState { index, up: true }));
            assert_eq!(actual.addresses, BTreeSet::from([v4, v6]));

            for _ in 0..2 {
                let done = kernel.apply(&own, &Change::DelAddress(v4)).await;
                assert_eq!(done.expect("del address"), Applied::Done);
            }
            let actual = kernel.dump(&own).await.expect("dump");
            assert_eq!(actual.addresses, BTreeSet::from([v6]));
            assert!(ip_show(&ns, &["addr", "show", "dev", "other0"]).contains("192.0.2.20/32"));
        })
    });
}

#[test]
fn routes_are_replaced_and_foreign_ones_survive() {
    if !require_root("routes_are_replaced_and_foreign_ones_survive") {
        return;
    }
    let (ns, up0) = namespace_with_uplink();
    let own = own();
    ns.run(|| {
        block_on(async {
            let kernel = Kernel::open().expect("open");
            let first = Route {
                dst: prefix("192.0.2.2/32"),
                gateway: Some(ip("198.51.100.2")),
                oif: up0,
                src: None,
            };
            let second = Route {
                gateway: Some(ip("198.51.100.3")),
                src: Some(ip("198.51.100.1")),
                ..first
            };
            let on_link = Route {
                dst: prefix("192.0.2.5/32"),
                gateway: None,
                oif: up0,
                src: None,
            };
            let v6 = Route {
                dst: prefix("2001:db8:2::2/128"),
                gateway: Some(ip("2001:db8:1::2")),
                oif: up0,
                src: Some(ip("2001:db8:1::1")),
            };
            // An IPv4 destination behind an IPv6 next hop (RTA_VIA).
            let via_v6 = Route {
                dst: prefix("192.0.2.6/32"),
                gateway: Some(ip("2001:db8:1::2")),
                oif: up0,
                src: None,
            };
            for route in [first, second, on_link, v6, via_v6] {
                let done = kernel.apply(&own, &Change::ReplaceRoute(route)).await;
                assert_eq!(done.expect("replace route"), Applied::Done, "{route:?}");
            }
            let ours = ip_show(&ns, &["route", "show", "table", "4179", "192.0.2.2/32"]);
            assert_eq!(ours.lines().count(), 1, "{ours}");
            assert!(
                ours.contains("via 198.51.100.3") && ours.contains("proto 250"),
                "{ours}"
            );
            let via = ip_show(&ns, &["route", "show", "table", "4179", "192.0.2.6/32"]);
            assert!(via.contains("via inet6 2001:db8:1::2"), "{via}");
            let scoped = ip_show(&ns, &["route", "show", "table", "4179", "192.0.2.5/32"]);
            assert!(scoped.contains("scope link"), "{scoped}");

            // Someone else's routes: same table other protocol (same and
            // other destination), and the main table.
            let t = ["table", "4179", "proto", "static"];
            ns.ip(&[
                &[
                    "route",
                    "add",
                    "192.0.2.2/32",
                    "via",
                    "198.51.100.2",
                    "metric",
                    "100",
                ],
                &t[..],
            ]
            .concat());
            ns.ip(&[
                &["route", "add", "192.0.2.3/32", "via", "198.51.100.2"],
                &t[..],
            ]
            .concat());
            ns.ip(&["route", "add", "192.0.2.2/32", "via", "198.51.100.2"]);
            ns.ip(&[
                "-6",
                "route",
                "add",
                "2001:db8:2::3/128",
                "via",
                "2001:db8:1::2",
                "table",
                "4179",
            ]);

            let actual = kernel.dump(&own).await.expect("dump");
            let expected: BTreeMap<_, _> = [second, on_link, v6, via_v6]
                .into_iter()
                .map(|r| (r.dst, r))
                .collect();
            assert_eq!(actual.routes, expected);

            let foreign = Route {
                dst: prefix("192.0.2.3/32"),
                ..first
            };
            for route in [second, second, foreign] {
                let done = kernel.apply(&own, &Change::DelRoute(route)).await;
                assert_eq!(done.expect("del route"), Applied::Done, "{route:?}");
            }
            let table = ip_show(&ns, &["route", "show", "table", "4179"]);
            assert!(
                table.contains("192.0.2.2 via 198.51.100.2 dev up0 proto static metric 100"),
                "{table}"
            );
            assert!(
                table.contains("192.0.2.3 via 198.51.100.2 dev up0 proto static"),
                "{table}"
            );
            assert!(!table.contains("192.0.2.2 via 198.51.100.3"), "{table}");
            let main = ip_show(&ns, &["route", "show", "192.0.2.2/32"]);
            assert!(main.contains("192.0.2.2 via 198.51.100.2"), "{main}");
            let actual = kernel.dump(&own).await.expect("dump");
            let expected: BTreeMap<_, _> = [on_link, v6, via_v6]
                .into_iter()
                .map(|r| (r.dst, r))
                .collect();
            assert_eq!(actual.routes, expected);
        })
    });
}

#[test]
fn managed_neighbours_resolve_by_themselves_and_foreign_ones_survive() {
    if !require_root("managed_neighbours_resolve_by_themselves_and_foreign_ones_survive") {
        return;
    }
    let (a, b) = (Netns::new(), Netns::new());
    veth(&a, "va", &b, "vb");
    a.add_addr("va", "198.51.100.1/24");
    a.add_addr("va", "2001:db8:1::1/64");
    b.add_addr("vb", "198.51.100.2/24");
    b.add_addr("vb", "2001:db8:1::2/64");
    let va = a.ifindex("va");
    let peer_mac = b
        .mac("vb")
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let own = own();
    a.run(|| {
        block_on(async {
            let kernel = Kernel::open().expect("open");
            let v4 = Neighbour {
                addr: ip("198.51.100.2"),
                ifindex: va,
            };
            let v6 = Neighbour {
                addr: ip("2001:db8:1::2"),
                ifindex: va,
            };
            // An entry the kernel could have learnt itself is taken over.
            // A stale entry is probed after the DELAY state (5 s by
            // default): shorten it so the test does not wait that long.
            a.sysctl("net.ipv6.neigh.va.delay_first_probe_time", "1");
            a.ip(&[
                "-6",
                "neigh",
                "add",
                "2001:db8:1::2",
                "lladdr",
                &peer_mac,
                "dev",
                "va",
                "nud",
                "stale",
            ]);
            for neighbour in [v4, v6] {
                let done = kernel.apply(&own, &Change::AddNeighbour(neighbour)).await;
                assert_eq!(done.expect("add neighbour"), Applied::Done);
            }
            for neighbour in [v4, v6] {
                wait_reachable(&kernel, neighbour).await;
            }
            let shown = ip_show(&a, &["neigh", "show", "dev", "va", "proto", "250"]);
            assert!(shown.contains("managed"), "{shown}");
            // Adding again keeps the entry resolved.
            let done = kernel.apply(&own, &Change::AddNeighbour(v4)).await;
            assert_eq!(done.expect("re-add"), Applied::Done);
            let state = kernel.neighbour_state(v4.addr, va).await.expect("state");
            assert_eq!(state, Some(libc::NUD_REACHABLE));

            // Someone else's entries.
            a.ip(&[
                "neigh",
                "add",
                "198.51.100.9",
                "lladdr",
                "02:00:00:00:00:09",
                "dev",
                "va",
                "nud",
                "permanent",
            ]);
            a.ip(&[
                "neigh",
                "add",
                "198.51.100.8",
                "lladdr",
                "02:00:00:00:00:08",
                "dev",
                "va",
                "proto",
                "99",
            ]);
            let actual = kernel.dump(&own).await.expect("dump");
            assert_eq!(actual.neighbours, BTreeSet::from([v4, v6]));

            let permanent = Neighbour {
                addr: ip("198.51.100.9"),
                ifindex: va,
            };
            let other = Neighbour {
                addr: ip("198.51.100.8"),
                ifindex: va,
            };
            for foreign in [permanent, other] {
                let done = kernel.apply(&own, &Change::DelNeighbour(foreign)).await;
                assert_eq!(done.expect("del foreign"), Applied::Done);
                let taken = kernel.apply(&own, &Change::AddNeighbour(foreign)).await;
                assert!(
                    matches!(taken, Err(NetlinkError::Exists { .. })),
                    "{taken:?}"
                );
            }
            let kept = ip_show(&a, &["neigh", "show", "dev", "va"]);
            assert!(
                kept.contains("198.51.100.9 lladdr 02:00:00:00:00:09 PERMANENT"),
                "{kept}"
            );
            assert!(
                kept.contains("198.51.100.8 lladdr 02:00:00:00:00:08"),
                "{kept}"
            );

            for _ in 0..2 {
                let done = kernel.apply(&own, &Change::DelNeighbour(v4)).await;
                assert_eq!(done.expect("del neighbour"), Applied::Done);
            }
            assert_eq!(
                kernel.neighbour_state(v4.addr, va).await.expect("state"),
                None
            );
            let actual = kernel.dump(&own).await.expect("dump");
            assert_eq!(actual.neighbours, BTreeSet::from([v6]));
        })
    });
}

async fn wait_reachable(kernel: &Kernel, neighbour: Neighbour) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = kernel
            .neighbour_state(neighbour.addr, neighbour.ifindex)
            .await
            .expect("neighbour state");
        if state == Some(libc::NUD_REACHABLE) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} not REACHABLE after 5 s: state {state:?}",
            neighbour.addr
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn route_to_gives_gateway_and_interface() {
    if !require_root("route_to_gives_gateway_and_interface") {
        return;
    }
    let (ns, up0) = namespace_with_uplink();
    ns.ip(&["route", "add", "default", "via", "198.51.100.254"]);
    ns.ip(&["-6", "route", "add", "default", "via", "2001:db8:1::fe"]);
    let bare = Netns::new();
    ns.run(|| {
        block_on(async {
            let kernel = Kernel::open().expect("open");
            let cases = [
                ("203.0.113.7", Some((Some(ip("198.51.100.254")), up0))),
                ("198.51.100.9", Some((None, up0))),
                ("2001:db8:3::7", Some((Some(ip("2001:db8:1::fe")), up0))),
                ("2001:db8:1::9", Some((None, up0))),
            ];
            for (dst, expected) in cases {
                let got = kernel.route_to(ip(dst)).await.expect("route_to");
                assert_eq!(got, expected, "{dst}");
            }
        })
    });
    bare.run(|| {
        block_on(async {
            let kernel = Kernel::open().expect("open");
            for dst in ["203.0.113.7", "2001:db8:3::7"] {
                assert_eq!(
                    kernel.route_to(ip(dst)).await.expect("route_to"),
                    None,
                    "{dst}"
                );
            }
        })
    });
}

#[test]
fn missing_things_are_ok_to_remove_and_typed_errors_to_use() {
    if !require_root("missing_things_are_ok_to_remove_and_typed_errors_to_use") {
        return;
    }
    let (ns, up0) = namespace_with_uplink();
    let own = own();
    ns.run(|| {
        block_on(async {
            let kernel = Kernel::open().expect("open");
            let elsewhere = Ownership {
                table: 4180,
                ..own.clone()
            };
            for dst in ["192.0.2.2/32", "2001:db8:2::2/128"] {
                let route = Route {
                    dst: prefix(dst),
                    gateway: None,
                    oif: up0,
                    src: None,
                };
                let done = kernel.apply(&elsewhere, &Change::DelRoute(route)).await;
                assert_eq!(done.expect("del route, no table"), Applied::Done);
            }

            let nowhere = Route {
                dst: prefix("192.0.2.2/32"),
                gateway: None,
                oif: 9999,
                src: None,
            };
            let error = kernel
                .apply(&own, &Change::AddRoute(nowhere))
                .await
                .expect_err("no interface 9999");
            assert!(
                matches!(error, NetlinkError::NoSuchDevice { .. }),
                "{error:?}"
            );
            let text = error.to_string();
            assert!(
                text.starts_with(
                    "adding route 192.0.2.2/32 dev #9999 in table 4179 (protocol 250) failed"
                ),
                "{text}"
            );

            // The agent's interface is not there yet.
            assert_eq!(kernel.link("edge0").await.expect("link"), None);
            assert_eq!(kernel.dump(&own).await.expect("dump"), Actual::default());
            let up = kernel.apply(&own, &Change::LinkUp).await;
            assert!(
                matches!(up, Err(NetlinkError::NoSuchDevice { .. })),
                "{up:?}"
            );
            let address = Address {
                addr: ip("192.0.2.10"),
                prefix_len: 32,
            };
            let add = kernel.apply(&own, &Change::AddAddress(address)).await;
            assert!(
                matches!(add, Err(NetlinkError::NoSuchDevice { .. })),
                "{add:?}"
            );
            let del = kernel.apply(&own, &Change::DelAddress(address)).await;
            assert_eq!(del.expect("del address, no link"), Applied::Done);
            let state = kernel.neighbour_state(ip("198.51.100.77"), up0).await;
            assert_eq!(state.expect("neighbour state"), None);
            let gone = Neighbour {
                addr: ip("198.51.100.77"),
                ifindex: up0,
            };
            let del = kernel.apply(&own, &Change::DelNeighbour(gone)).await;
            assert_eq!(del.expect("del neighbour, none"), Applied::Done);
        })
    });
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Clears the calling thread's effective capabilities (capabilities are
/// per thread; the others keep theirs).
fn drop_effective_capabilities() {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget(2) with a v3 header and the two data structs it fills.
    let got = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    assert_eq!(got, 0, "capget: {}", io::Error::last_os_error());
    for d in &mut data {
        d.effective = 0;
    }
    // SAFETY: capset(2) with the same header and the two data structs.
    let set = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    assert_eq!(set, 0, "capset: {}", io::Error::last_os_error());
}

#[test]
fn without_capabilities_changes_are_permission_denied() {
    if !require_root("without_capabilities_changes_are_permission_denied") {
        return;
    }
    let (ns, up0) = namespace_with_uplink();
    let own = own();
    ns.run(|| {
        drop_effective_capabilities();
        block_on(async {
            let kernel = Kernel::open().expect("open");
            // Reading needs no privilege.
            assert!(kernel.link("up0").await.expect("link").is_some());
            let route = Route {
                dst: prefix("192.0.2.2/32"),
                gateway: None,
                oif: up0,
                src: None,
            };
            for change in [Change::CreateLink, Change::ReplaceRoute(route)] {
                let denied = kernel.apply(&own, &change).await;
                assert!(
                    matches!(&denied, Err(NetlinkError::PermissionDenied { .. })),
                    "{change:?}: {denied:?}"
                );
                let text = denied.expect_err("denied").to_string();
                assert!(text.contains("CAP_NET_ADMIN"), "{text}");
            }
        })
    });
}

#[test]
fn events_report_addresses_and_link_removal() {
    if !require_root("events_report_addresses_and_link_removal") {
        return;
    }
    let ns = Netns::new();
    ns.run(|| {
        block_on(async {
            let mut events = events().expect("events");
            ns.ip(&["link", "add", "ev0", "type", "ifb"]);
            let created = next_event(
                &mut events,
                |e| matches!(e, KernelEvent::Link { name, removed: false, .. } if name == "ev0"),
            )
            .await;
            let KernelEvent::Link { index, .. } = created else {
                unreachable!()
            };
            ns.ip(&["addr", "add", "192.0.2.30/32", "dev", "ev0"]);
            let added = next_event(&mut events, |e| matches!(e, KernelEvent::Address { .. })).await;
            assert_eq!(
                added,
                KernelEvent::Address {
                    index,
                    addr: ip("192.0.2.30"),
                    removed: false
                }
            );
            ns.ip(&["link", "del", "ev0"]);
            let removed = next_event(&mut events, |e| {
                matches!(e, KernelEvent::Link { removed: true, .. })
            })
            .await;
            assert_eq!(
                removed,
                KernelEvent::Link {
                    index,
                    name: "ev0".to_owned(),
                    up: false,
                    removed: true
                }
            );
        })
    });
}

async fn next_event(
    events: &mut mpsc::Receiver<KernelEvent>,
    wanted: impl Fn(&KernelEvent) -> bool,
) -> KernelEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) if wanted(&event) => return event,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the event channel closed"),
            Err(_) => panic!("no such event within 5 s"),
        }
    }
}
