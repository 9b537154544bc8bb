//! The netlink reconciler in namespaces: it converges from any state of
//! its own to the desired one and then has nothing left to do; it never
//! touches what is not its own; it recreates its interface when someone
//! deletes it; its neighbour warm-up makes `bpf_fib_lookup` succeed on the
//! first packet; and kernel errors are reported, retried, and survived.
//!
//! ```text
//! node (up0 198.51.100.1/25, 2001:db8:ff::1/64; default via .126)
//!   └── veth ── peers (up1: 198.51.100.2, .3, .126 and 2001:db8:ff::2)
//! ```

use std::{
    net::IpAddr,
    os::fd::AsFd,
    time::{Duration, Instant},
};

use edge_agent::{
    dataplane::{
        Dataplane, Encap, LoadOptions, NodeConfig, PeerSpec, Protocol, ServiceBackend,
        ServiceMatch, ServiceSpec,
    },
    netlink::{
        desired::{Inputs, PeerPaths, VipAddresses},
        kernel::Kernel,
        reconciler::{NetlinkConfig, ReconcileStatus, Reconciler, reconcile_once, remove_owned},
        state::{Change, Ownership},
    },
};
use edge_common::stats::Counter;
use edge_tests::{
    command::stdout_of,
    counters::changed,
    netns::{Netns, veth},
    packet::{ipv4, tcp_syn},
    plan::{VIP_WEB_V4, anycast, underlay_v4, underlay_v6},
    privilege::require_root,
    testrun::XdpAction,
};
use tokio::sync::watch;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn own() -> Ownership {
    Ownership {
        link: "edge0".into(),
        table: 4179,
        protocol: 242,
    }
}

/// The node namespace and the peers' namespace.
fn world() -> (Netns, Netns) {
    let node = Netns::new();
    let peers = Netns::new();
    veth(&node, "up0", &peers, "up1");
    node.add_addr("up0", "198.51.100.1/25");
    node.add_addr("up0", "2001:db8:ff::1/64");
    for cidr in [
        "198.51.100.2/25",
        "198.51.100.3/25",
        "198.51.100.126/25",
        "2001:db8:ff::2/64",
    ] {
        peers.add_addr("up1", cidr);
    }
    node.ip(&["route", "add", "default", "via", "198.51.100.126"]);
    node.sysctl("net.ipv4.conf.all.forwarding", "1");
    (node, peers)
}

/// Our identities and VIPs, one peer on the segment (v4 and v6) and one
/// behind the default gateway.
fn inputs() -> Inputs {
    Inputs {
        node_addrs: vec![ip("192.0.2.1"), ip("2001:db8:1d::1")],
        vips: vec![
            ip("203.0.113.10"),
            ip("203.0.113.53"),
            ip("2001:db8:ac::10"),
        ],
        healthy_vips: Default::default(),
        vip_addresses: VipAddresses::Configured,
        peers: vec![
            PeerPaths {
                identities: vec![ip("192.0.2.2"), ip("2001:db8:1d::2")],
                next_hops: vec![ip("198.51.100.2"), ip("2001:db8:ff::2")],
                private: None,
            },
            PeerPaths {
                identities: vec![ip("192.0.2.3")],
                next_hops: vec![ip("198.51.100.200")],
                private: None,
            },
        ],
    }
}

/// Runs `body` with a kernel handle inside `ns`, on a current-thread runtime.
fn in_ns<T: Send>(ns: &Netns, body: impl AsyncFnOnce(Kernel) -> T + Send) -> T {
    ns.run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async { body(Kernel::open().unwrap()).await })
    })
}

/// Runs `ip -n NS <words>`, panicking on failure.
fn run_ip(ns: &Netns, words: &str) {
    ns.ip(&words.split_whitespace().collect::<Vec<_>>());
}

fn show(ns: &Netns, args: &[&str]) -> String {
    let mut all = vec!["-n", ns.name()];
    all.extend_from_slice(args);
    stdout_of(std::process::Command::new("ip").args(&all))
}

fn owned_routes(ns: &Netns) -> String {
    show(ns, &["-4", "route", "show", "table", "4179"])
        + &show(ns, &["-6", "route", "show", "table", "4179"])
}

#[test]
fn reconciles_from_empty_partial_and_stale_state_and_then_has_nothing_to_do() {
    if !require_root("reconciles_from_empty_partial_and_stale_state_and_then_has_nothing_to_do") {
        return;
    }
    let (node, _peers) = world();
    // From empty.
    let first = in_ns(&node, async |k| {
        reconcile_once(&k, &own(), &inputs()).await.unwrap()
    });
    assert_eq!(first[..2], [Change::CreateLink, Change::LinkUp]);
    let again = in_ns(&node, async |k| {
        reconcile_once(&k, &own(), &inputs()).await.unwrap()
    });
    assert!(again.is_empty(), "{again:?}");
    let addrs = show(&node, &["addr", "show", "dev", "edge0"]);
    for a in [
        "192.0.2.1/32",
        "203.0.113.10/32",
        "203.0.113.53/32",
        "2001:db8:1d::1/128",
        "2001:db8:ac::10/128",
    ] {
        assert!(addrs.contains(a), "{a} missing:\n{addrs}");
    }
    assert!(!addrs.contains("tentative"), "{addrs}");
    let routes = owned_routes(&node);
    for r in [
        "192.0.2.2 via 198.51.100.2 dev up0 proto 242 src 192.0.2.1",
        "192.0.2.3 via 198.51.100.126 dev up0 proto 242 src 192.0.2.1",
        "198.51.100.2 dev up0 proto 242 scope link",
        "198.51.100.200 via 198.51.100.126 dev up0 proto 242",
        "2001:db8:1d::2 via 2001:db8:ff::2 dev up0 proto 242 src 2001:db8:1d::1",
        "2001:db8:ff::2 dev up0 proto 242",
    ] {
        assert!(routes.contains(r), "{r} missing:\n{routes}");
    }
    // Partially matching: an address and a route gone, a route changed.
    node.ip(&["addr", "del", "203.0.113.53/32", "dev", "edge0"]);
    run_ip(&node, "route del 192.0.2.3/32 table 4179 proto 242");
    run_ip(
        &node,
        "route replace 192.0.2.2/32 via 198.51.100.3 dev up0 table 4179 proto 242",
    );
    let fixed = in_ns(&node, async |k| {
        reconcile_once(&k, &own(), &inputs()).await.unwrap()
    });
    assert_eq!(fixed.len(), 3, "{fixed:?}");
    // Stale entries of its own: an address, a route, a neighbour.
    node.ip(&["addr", "add", "203.0.113.99/32", "dev", "edge0"]);
    run_ip(
        &node,
        "route add 192.0.2.99/32 via 198.51.100.3 dev up0 table 4179 proto 242",
    );
    run_ip(
        &node,
        "neigh add 198.51.100.9 lladdr 02:00:00:00:00:09 dev up0 proto 242",
    );
    let cleaned = in_ns(&node, async |k| {
        reconcile_once(&k, &own(), &inputs()).await.unwrap()
    });
    assert_eq!(cleaned.len(), 3, "{cleaned:?}");
    assert!(cleaned.iter().all(|c| matches!(
        c,
        Change::DelAddress(_) | Change::DelRoute(_) | Change::DelNeighbour(_)
    )));
    let again = in_ns(&node, async |k| {
        reconcile_once(&k, &own(), &inputs()).await.unwrap()
    });
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(owned_routes(&node), routes, "back to the same table");
}

#[test]
fn foreign_routes_addresses_neighbours_and_the_main_table_are_left_alone() {
    if !require_root("foreign_routes_addresses_neighbours_and_the_main_table_are_left_alone") {
        return;
    }
    let (node, _peers) = world();
    // Same table, another protocol; our protocol in the main table; an
    // address on another interface; a neighbour of someone else.
    run_ip(
        &node,
        "route add 192.0.2.50/32 via 198.51.100.2 table 4179 proto static",
    );
    run_ip(
        &node,
        "route add 192.0.2.2/32 via 198.51.100.3 table 4179 proto static metric 5",
    );
    run_ip(&node, "route add 192.0.2.51/32 via 198.51.100.2 proto 242");
    node.ip(&["addr", "add", "203.0.113.77/32", "dev", "up0"]);
    run_ip(
        &node,
        "neigh add 198.51.100.4 lladdr 02:00:00:00:00:04 dev up0 nud permanent",
    );
    let foreign = || {
        (
            show(
                &node,
                &["route", "show", "table", "4179", "proto", "static"],
            ),
            show(&node, &["route", "show", "table", "main"]),
            show(&node, &["addr", "show", "dev", "up0"]),
            show(&node, &["neigh", "show", "198.51.100.4"]),
        )
    };
    let before = foreign();
    in_ns(&node, async |k| {
        reconcile_once(&k, &own(), &inputs()).await.unwrap();
        let mut empty = inputs();
        empty.peers.clear();
        empty.vips.clear();
        reconcile_once(&k, &own(), &empty).await.unwrap();
        reconcile_once(&k, &own(), &inputs()).await.unwrap();
        remove_owned(&k, &own()).await.unwrap();
    });
    assert_eq!(foreign(), before);
    assert!(
        show(&node, &["link", "show"]).find("edge0").is_none(),
        "the agent's interface is gone"
    );
    assert_eq!(
        show(&node, &["route", "show", "table", "4179", "proto", "242"]),
        ""
    );
}

/// Runs a reconciler inside `ns` on its own thread until the returned
/// sender is dropped; its status is mirrored to the caller.
fn spawn(
    ns: &Netns,
    config: NetlinkConfig,
    inputs: Inputs,
) -> (
    std::sync::mpsc::Sender<Inputs>,
    watch::Receiver<ReconcileStatus>,
    std::thread::JoinHandle<()>,
) {
    let (inputs_tx, inputs_rx) = std::sync::mpsc::channel::<Inputs>();
    let (status_tx, status_rx) = std::sync::mpsc::channel();
    let name = ns.name().to_owned();
    let thread = std::thread::spawn(move || {
        let runtime = edge_tests::netns::runtime_in(&name);
        runtime.block_on(async move {
            let reconciler = Reconciler::spawn(config, inputs).unwrap();
            status_tx.send(reconciler.status()).unwrap();
            let inputs_rx = std::sync::Arc::new(std::sync::Mutex::new(inputs_rx));
            loop {
                let rx = inputs_rx.clone();
                let next = tokio::task::spawn_blocking(move || rx.lock().unwrap().recv())
                    .await
                    .unwrap();
                match next {
                    Ok(inputs) => reconciler.set_inputs(inputs),
                    Err(_) => break,
                }
            }
            reconciler.stop().await;
        });
    });
    (inputs_tx, status_rx.recv().unwrap(), thread)
}

fn wait(
    status: &watch::Receiver<ReconcileStatus>,
    what: &str,
    timeout: Duration,
    check: impl Fn(&ReconcileStatus) -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !check(&status.borrow()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:#?}",
            status.borrow()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn config(period: Duration) -> NetlinkConfig {
    NetlinkConfig {
        ownership: own(),
        internet: "up0".into(),
        period,
        keep_state: false,
    }
}

#[test]
fn the_interface_deleted_by_hand_comes_back_within_one_period() {
    if !require_root("the_interface_deleted_by_hand_comes_back_within_one_period") {
        return;
    }
    let (node, _peers) = world();
    // Off, so that seeing it on shows the agent turned it on.
    stdout_of(
        node.command("sysctl")
            .args(["-qw", "net.ipv4.tcp_syncookies=0"]),
    );
    let period = Duration::from_secs(3);
    let (inputs_tx, status, thread) = spawn(&node, config(period), inputs());
    wait(&status, "a clean pass", Duration::from_secs(5), |s| {
        s.clean_passes >= 1
    });
    assert_eq!(status.borrow().internet_up, Some(true));
    // The sysctls of the design, and no others.
    assert_eq!(node_sysctl(&node, "net.ipv4.conf.up0.rp_filter"), "2");
    assert_eq!(node_sysctl(&node, "net.ipv4.conf.up0.arp_ignore"), "1");
    assert_eq!(node_sysctl(&node, "net.ipv4.tcp_syncookies"), "1");
    let deleted = Instant::now();
    node.ip(&["link", "del", "edge0"]);
    wait(&status, "the interface again", period, |s| {
        s.links_created == 2 && s.last_error.is_none()
    });
    let back = deleted.elapsed();
    eprintln!("recreated and repopulated after {back:?}");
    let addrs = show(&node, &["addr", "show", "dev", "edge0"]);
    assert!(
        addrs.contains("203.0.113.10/32") && addrs.contains("2001:db8:ac::10/128"),
        "{addrs}"
    );
    // Shutdown removes what it owns.
    drop(inputs_tx);
    thread.join().unwrap();
    assert!(show(&node, &["link", "show"]).find("edge0").is_none());
    assert_eq!(owned_routes(&node), "");
    assert_eq!(show(&node, &["neigh", "show", "proto", "242"]), "");
}

fn node_sysctl(ns: &Netns, key: &str) -> String {
    stdout_of(ns.command("sysctl").args(["-n", key]))
        .trim()
        .to_string()
}

#[test]
fn keep_state_leaves_everything_for_the_next_agent() {
    if !require_root("keep_state_leaves_everything_for_the_next_agent") {
        return;
    }
    let (node, _peers) = world();
    let mut cfg = config(Duration::from_secs(3));
    cfg.keep_state = true;
    let (inputs_tx, status, thread) = spawn(&node, cfg, inputs());
    wait(&status, "a clean pass", Duration::from_secs(5), |s| {
        s.clean_passes >= 1
    });
    let routes = owned_routes(&node);
    drop(inputs_tx);
    thread.join().unwrap();
    assert_eq!(owned_routes(&node), routes);
    // The next agent finds it all in place: nothing to change.
    let changes = in_ns(&node, async |k| {
        reconcile_once(&k, &own(), &inputs()).await.unwrap()
    });
    assert!(changes.is_empty(), "{changes:?}");
}

#[test]
fn errors_are_reported_retried_with_backoff_and_survived() {
    if !require_root("errors_are_reported_retried_with_backoff_and_survived") {
        return;
    }
    let (node, _peers) = world();
    // Someone else's route to a destination the agent wants, in the
    // agent's table: the agent must not take it over.
    run_ip(
        &node,
        "route add 192.0.2.2/32 via 198.51.100.3 dev up0 table 4179 proto static",
    );
    let (inputs_tx, status, thread) = spawn(&node, config(Duration::from_secs(5)), inputs());
    wait(&status, "failures", Duration::from_secs(5), |s| {
        s.errors >= 3
    });
    {
        let s = status.borrow();
        let error = s.last_error.clone().unwrap();
        assert!(
            error.contains("192.0.2.2/32") && error.contains("not the agent's"),
            "{error}"
        );
        // Everything else was applied meanwhile, and the foreign route kept.
        assert!(show(&node, &["addr", "show", "dev", "edge0"]).contains("203.0.113.10/32"));
        assert!(owned_routes(&node).contains("198.51.100.2 dev up0 proto 242"));
        assert!(owned_routes(&node).contains("192.0.2.2 via 198.51.100.3 dev up0 proto static"));
    }
    // Backoff: failures get further apart.
    let errors = status.borrow().errors;
    std::thread::sleep(Duration::from_millis(1500));
    let more = status.borrow().errors - errors;
    assert!(more <= 4, "{more} retries in 1.5 s: no backoff");
    // The operator removes it: the next retry succeeds.
    let fixed = Instant::now();
    let passes_at_fix = status.borrow().passes;
    run_ip(&node, "route del 192.0.2.2/32 table 4179 proto static");
    // Within the longest backoff (the period, 5 s), with room to spare.
    wait(&status, "recovery", Duration::from_secs(8), |s| {
        s.last_error.is_none() && s.passes > passes_at_fix
    });
    eprintln!("recovered {:?} after the fix", fixed.elapsed());
    assert!(owned_routes(&node).contains("192.0.2.2 via 198.51.100.2 dev up0 proto 242"));
    // The Internet interface disappears: its routes and neighbours go, the
    // loop goes on, and all comes back with it.
    node.ip(&["link", "del", "up0"]);
    wait(&status, "up0 gone", Duration::from_secs(6), |s| {
        s.internet_up.is_none() && s.last_error.is_none()
    });
    assert_eq!(show(&node, &["route", "show", "table", "4179"]), "");
    let (peers2, _) = (Netns::new(), ());
    veth(&node, "up0", &peers2, "up1");
    node.add_addr("up0", "198.51.100.1/25");
    node.add_addr("up0", "2001:db8:ff::1/64");
    for cidr in ["198.51.100.2/25", "198.51.100.126/25", "2001:db8:ff::2/64"] {
        peers2.add_addr("up1", cidr);
    }
    node.ip(&["route", "add", "default", "via", "198.51.100.126"]);
    wait(&status, "up0 back", Duration::from_secs(8), |s| {
        s.internet_up == Some(true) && s.last_error.is_none()
    });
    wait(&status, "routes back", Duration::from_secs(8), |_| {
        owned_routes(&node).contains("192.0.2.2 via 198.51.100.2")
    });
    drop(inputs_tx);
    thread.join().unwrap();
}

#[test]
fn without_net_admin_the_loop_reports_permission_denied_and_keeps_going() {
    if !require_root("without_net_admin_the_loop_reports_permission_denied_and_keeps_going") {
        return;
    }
    let (node, _peers) = world();
    let name = node.name().to_owned();
    let (status_tx, status_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        // Capabilities are per thread: drop them before the runtime opens anything.
        let runtime = edge_tests::netns::runtime_in(&name);
        drop_net_admin();
        runtime.block_on(async move {
            let reconciler = Reconciler::spawn(config(Duration::from_secs(2)), inputs()).unwrap();
            let status = reconciler.status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while status.borrow().errors < 3 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = status_tx.send(status.borrow().clone());
        });
    });
    let s: ReconcileStatus = status_rx.recv().unwrap();
    thread.join().unwrap();
    assert!(s.errors >= 3, "{s:#?}");
    let error = s.last_error.unwrap();
    assert!(error.to_lowercase().contains("permission"), "{error}");
    assert!(
        error.contains("edge0"),
        "the error names what it tried: {error}"
    );
}

/// Drops CAP_NET_ADMIN from the calling thread's effective set
/// (capabilities are per thread).
fn drop_net_admin() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data words.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0
        );
        data[0].effective &= !(1 << CAP_NET_ADMIN);
        data[0].permitted &= !(1 << CAP_NET_ADMIN);
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
            0
        );
    }
}

#[test]
fn warm_up_lets_bpf_fib_lookup_resolve_the_next_hop_on_the_first_packet() {
    if !require_root("warm_up_lets_bpf_fib_lookup_resolve_the_next_hop_on_the_first_packet") {
        return;
    }
    let (node, _peers) = world();
    let ifindex = node.ifindex("up0");
    let mac = node.mac("up0");
    // Two peers on the segment, never contacted: .2 is warmed up, .3 not.
    let mut warm = inputs();
    warm.peers = vec![PeerPaths {
        identities: vec![],
        next_hops: vec![ip("198.51.100.2")],
        private: None,
    }];
    let (inputs_tx, status, thread) = spawn(&node, config(Duration::from_secs(3)), warm);
    wait(&status, "a clean pass", Duration::from_secs(5), |s| {
        s.clean_passes >= 1
    });
    // The managed entry resolves without any traffic.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !show(&node, &["neigh", "show", "198.51.100.2", "dev", "up0"]).contains("REACHABLE") {
        assert!(
            Instant::now() < deadline,
            "{}",
            show(&node, &["neigh", "show"])
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!show(&node, &["neigh", "show", "198.51.100.3"]).contains("lladdr"));
    let moved = node.run(|| {
        let mut dp = Dataplane::load(&LoadOptions::default()).unwrap();
        dp.set_config(&NodeConfig {
            underlay_v4: Some(underlay_v4(1)),
            underlay_v6: Some(underlay_v6(1)),
            gue_port: None,
            mtu: 1500,
            anycast: anycast(),
        })
        .unwrap();
        let mut results = Vec::new();
        for (service, peer, port) in [
            (0u32, ip("198.51.100.2"), 80u16),
            (1, ip("198.51.100.3"), 81),
        ] {
            dp.set_peer(
                service + 1,
                PeerSpec {
                    underlay: peer,
                    encap: Encap::IpIp,
                },
            )
            .unwrap();
            dp.set_service(&ServiceSpec {
                id: service,
                matches: vec![ServiceMatch {
                    vip: VIP_WEB_V4.into(),
                    protocol: Protocol::Tcp,
                    port: Some(port),
                }],
                local_healthy: false,
                drop_when_unavailable: false,
                backends: vec![ServiceBackend {
                    peer: service + 1,
                    identity: format!("edge://p{service}"),
                    weight: 1,
                }],
            })
            .unwrap();
            let segment = tcp_syn(ip("198.18.0.7"), VIP_WEB_V4.into(), 40000, port);
            let packet = ipv4("198.18.0.7".parse().unwrap(), VIP_WEB_V4, 6, &[], &segment);
            let mut frame = Vec::new();
            frame.extend_from_slice(&mac);
            frame.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
            frame.extend_from_slice(&0x0800u16.to_be_bytes());
            frame.extend_from_slice(&packet);
            let program = dp.program_fd("edge_xdp").unwrap();
            let before = dp.stats().unwrap();
            let result =
                edge_tests::testrun::run_on(program.as_fd(), &frame, Some(ifindex)).unwrap();
            results.push((result.action, changed(&before, &dp.stats().unwrap())));
        }
        results
    });
    // Warmed up: the very first packet is encapsulated and sent.
    let (action, counters) = &moved[0];
    assert_eq!(*action, XdpAction::Tx, "{counters:?}");
    assert!(
        counters.iter().all(|(c, _)| *c != Counter::FibNoNeigh),
        "{counters:?}"
    );
    // Not warmed up: the first packet finds no neighbour and is passed.
    let (action, counters) = &moved[1];
    assert_eq!(*action, XdpAction::Pass, "{counters:?}");
    assert!(counters.contains(&(Counter::FibNoNeigh, 1)), "{counters:?}");
    drop(inputs_tx);
    thread.join().unwrap();
}
