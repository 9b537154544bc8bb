//! The overlay between three nodes in their own namespaces on one
//! underlay segment: a full mesh forms from certificates of one CA; routes
//! carry exactly identities and healthy services; a node that dies takes
//! its routes with it and brings them back when it returns; certificate
//! rotation keeps every adjacency up; with BFD, a node that goes silent
//! leaves every RIB in well under a second, and BFD packets forged with
//! the right discriminators but without the adjacency's key change
//! nothing.

use std::{
    collections::BTreeSet,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use edge_agent::{
    bfd::{
        DropReason, Timers,
        packet::{Diag, State as BfdState},
    },
    overlay::{
        adjacency::AdjState, config::DEFAULT_PORT, config::OverlayConfig, identity::Identity,
        pki::Validity, status::OverlayStatus, trust::Trust,
    },
};
use edge_tests::{
    bfd::forged_down,
    overlay::{Lab, Node, Underlay, config, private_v4},
    plan::{VIP_DNS_V4, VIP_WEB_V4, VIP_WEB_V6, node_v4, node_v6, underlay_v4, underlay_v6},
    privilege::require_root,
};

const NAMES: [&str; 3] = ["pop-a", "pop-b", "pop-c"];
const WAIT: Duration = Duration::from_secs(15);

fn id(name: &str) -> Identity {
    Identity::from_name(name).unwrap()
}

/// Three nodes, 1..=3, each knowing the other two statically.
fn mesh(lab: &Lab, underlay: &mut Underlay) -> (Vec<edge_tests::netns::Netns>, Vec<Node>) {
    mesh_with(lab, underlay, false, |_, _| {})
}

/// Three nodes, 1..=3, each knowing the other two statically (with a
/// private link each if `private`), their configs adjusted by `tweak`
/// (node index, config) before they start.
fn mesh_with(
    lab: &Lab,
    underlay: &mut Underlay,
    private: bool,
    tweak: impl Fn(usize, &mut OverlayConfig),
) -> (Vec<edge_tests::netns::Netns>, Vec<Node>) {
    let mut spaces = Vec::new();
    let mut nodes = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        lab.issue(name, Validity::days_from_now(10));
        spaces.push(underlay.attach(i as u8 + 1, private));
    }
    for (i, name) in NAMES.iter().enumerate() {
        let peers: Vec<(&str, u8)> = NAMES
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, n)| (*n, j as u8 + 1))
            .collect();
        let mut cfg = config(lab, i as u8 + 1, name, &NAMES, &peers);
        tweak(i, &mut cfg);
        nodes.push(Node::start(&spaces[i], cfg));
    }
    (spaces, nodes)
}

fn others(i: usize) -> BTreeSet<Identity> {
    NAMES
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, n)| id(n))
        .collect()
}

fn full_mesh(node: &Node, i: usize) {
    node.wait_for("a full mesh", WAIT, |s| s.established() == others(i));
}

/// A full mesh in which pop-c serves the web VIP, seen by every node.
fn mesh_with_c_serving(
    lab: &Lab,
    underlay: &mut Underlay,
) -> (Vec<edge_tests::netns::Netns>, Vec<Node>) {
    let (spaces, nodes) = mesh(lab, underlay);
    nodes[2].advertise(VIP_WEB_V4);
    c_serving_everywhere(&nodes);
    (spaces, nodes)
}

/// Waits for a full mesh with pop-c's web VIP in every other RIB.
fn c_serving_everywhere(nodes: &[Node]) {
    let web: &[IpAddr] = &[VIP_WEB_V4.into()];
    for (i, node) in nodes.iter().enumerate() {
        full_mesh(node, i);
        node.wait_for("c's service", WAIT, |s| expect_routes(s, i, &[(2, web)]));
    }
}

/// Waits until pop-c's routes are gone from pop-a and pop-b; how long it took.
fn c_gone(nodes: &[Node], within: Duration) -> Duration {
    let start = std::time::Instant::now();
    for node in &nodes[..2] {
        node.wait_for("c gone", within, |s| {
            !s.identities.contains_key(&id("pop-c")) && s.services.is_empty()
        });
    }
    start.elapsed()
}

/// What node `i` must hold when node `j` advertises `services`.
fn expect_routes(s: &OverlayStatus, i: usize, services: &[(usize, &[IpAddr])]) -> bool {
    let identities_ok = others(i).iter().all(|peer| {
        let j = NAMES.iter().position(|n| id(n) == *peer).unwrap() as u8 + 1;
        s.identities.get(peer)
            == Some(
                &[
                    IpAddr::from(node_v4(j)),
                    IpAddr::from(node_v6(u16::from(j))),
                ]
                .into(),
            )
    });
    let mut want: std::collections::BTreeMap<IpAddr, BTreeSet<Identity>> = Default::default();
    for (j, vips) in services {
        if *j == i {
            continue;
        }
        for vip in *vips {
            want.entry(*vip).or_default().insert(id(NAMES[*j]));
        }
    }
    let got: std::collections::BTreeMap<IpAddr, BTreeSet<Identity>> = s
        .services
        .iter()
        .map(|(vip, peers)| (*vip, peers.keys().cloned().collect()))
        .collect();
    identities_ok && got == want
}

#[test]
fn three_nodes_form_a_full_mesh_and_exchange_exactly_identities_and_healthy_services() {
    if !require_root(
        "three_nodes_form_a_full_mesh_and_exchange_exactly_identities_and_healthy_services",
    ) {
        return;
    }
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    let (_spaces, nodes) = mesh(&lab, &mut underlay);
    for (i, node) in nodes.iter().enumerate() {
        full_mesh(node, i);
    }
    let web: &[IpAddr] = &[VIP_WEB_V4.into(), VIP_WEB_V6.into()];
    let dns: &[IpAddr] = &[VIP_DNS_V4.into()];
    nodes[0].advertise(VIP_WEB_V4);
    nodes[0].advertise(VIP_WEB_V6);
    nodes[1].advertise(VIP_DNS_V4);
    let services = [(0, web), (1, dns)];
    for (i, node) in nodes.iter().enumerate() {
        node.wait_for("identities and services", WAIT, |s| {
            expect_routes(s, i, &services)
        });
    }
    // Next hops: each peer's own underlay address of the route's family.
    let s = nodes[2].status.borrow().clone();
    assert_eq!(
        s.services[&IpAddr::from(VIP_WEB_V4)][&id("pop-a")],
        IpAddr::from(underlay_v4(1))
    );
    assert_eq!(
        s.services[&IpAddr::from(VIP_WEB_V6)][&id("pop-a")],
        IpAddr::from(underlay_v6(1))
    );
    // Trusted sources: exactly the two peers' underlay addresses.
    let trusted: BTreeSet<IpAddr> = s.trusted_sources.keys().copied().collect();
    let want: BTreeSet<IpAddr> = [
        underlay_v4(1).into(),
        underlay_v6(1).into(),
        underlay_v4(2).into(),
        underlay_v6(2).into(),
    ]
    .into();
    assert_eq!(trusted, want);
    // Nothing rejected, nothing refused.
    for node in &nodes {
        let s = node.status.borrow();
        assert!(s.refused.is_empty(), "{:?}", s.refused);
        assert!(s.adjacencies.values().all(|a| a.rejected.is_empty()));
    }
    // A service going unhealthy leaves every other RIB.
    nodes[0].withdraw(VIP_WEB_V6);
    let services = [(0, &web[..1]), (1, dns)];
    for (i, node) in nodes.iter().enumerate() {
        node.wait_for("the withdrawal", WAIT, |s| expect_routes(s, i, &services));
    }
}

#[test]
fn a_killed_node_leaves_every_rib_and_comes_back_when_restarted() {
    if !require_root("a_killed_node_leaves_every_rib_and_comes_back_when_restarted") {
        return;
    }
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    let (spaces, mut nodes) = mesh_with_c_serving(&lab, &mut underlay);
    nodes.pop().unwrap().kill();
    // Within the hold time (9 s): here at once, the kernel closes the dead
    // node's connections.
    let gone = c_gone(&nodes, Duration::from_secs(9));
    eprintln!("routes gone after {gone:?}");
    let peers = [("pop-a", 1), ("pop-b", 2)];
    let c = Node::start(&spaces[2], config(&lab, 3, "pop-c", &NAMES, &peers));
    c.advertise(VIP_WEB_V4);
    nodes.push(c);
    c_serving_everywhere(&nodes);
}

#[test]
fn certificate_rotation_keeps_every_adjacency_up() {
    if !require_root("certificate_rotation_keeps_every_adjacency_up") {
        return;
    }
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    let (spaces, nodes) = mesh(&lab, &mut underlay);
    for (i, node) in nodes.iter().enumerate() {
        full_mesh(node, i);
    }
    let counts = |n: &Node| -> Vec<u64> {
        n.status
            .borrow()
            .adjacencies
            .values()
            .map(|a| a.established_count)
            .collect()
    };
    let before: Vec<Vec<u64>> = nodes.iter().map(counts).collect();
    // New key and certificate for pop-b, same identity and CA: picked up
    // from the files without a signal.
    lab.issue("pop-b", Validity::days_from_now(20));
    nodes[1].wait_for("the reload", WAIT, |s| s.reloads >= 1);
    // And an explicit reload (SIGHUP) on another node.
    nodes[0].reload(None);
    nodes[0].wait_for("the reload", WAIT, |s| s.reloads >= 1);
    std::thread::sleep(Duration::from_secs(1));
    for (i, node) in nodes.iter().enumerate() {
        full_mesh(node, i);
        assert_eq!(
            counts(node),
            before[i],
            "an adjacency was re-established:\n{}",
            node.logs()
        );
        assert_eq!(node.status.borrow().reload_error, None);
    }
    // New connections get the new certificate (valid 20 days, the old one
    // 10): connect to pop-b as pop-c would.
    let trust = Trust::load(&config(&lab, 3, "pop-c", &NAMES, &[]).trust).unwrap();
    let auth = spaces[2].run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let tcp = tokio::net::TcpStream::connect((underlay_v4(2), DEFAULT_PORT))
                .await
                .unwrap();
            trust.connect(tcp, &id("pop-b")).await.unwrap().1
        })
    });
    let left = auth
        .not_after
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(
        left > Duration::from_secs(15 * 86400),
        "pop-b still serves the old certificate"
    );
}

#[test]
fn private_transport_is_used_only_toward_allowed_peers_and_falls_back_when_it_fails() {
    if !require_root(
        "private_transport_is_used_only_toward_allowed_peers_and_falls_back_when_it_fails",
    ) {
        return;
    }
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    let (_spaces, nodes) = mesh_with(&lab, &mut underlay, true, |i, cfg| {
        cfg.private_addr = Some(private_v4(i as u8 + 1).into());
        // a uses private transport toward b only; b toward a.
        cfg.private_to = match i {
            0 => [id("pop-b")].into(),
            1 => [id("pop-a")].into(),
            _ => Default::default(),
        };
    });
    for (i, node) in nodes.iter().enumerate() {
        full_mesh(node, i);
    }
    nodes[1].advertise(VIP_WEB_V4);
    nodes[2].advertise(VIP_WEB_V4);
    let web = IpAddr::from(VIP_WEB_V4);
    nodes[0].wait_for("b over the private path", WAIT, |s| {
        s.services.get(&web).and_then(|p| p.get(&id("pop-b"))) == Some(&IpAddr::from(private_v4(2)))
    });
    let s = nodes[0].status.borrow().clone();
    // c announced a private address too, but a may not use it toward c.
    assert_eq!(s.services[&web][&id("pop-c")], IpAddr::from(underlay_v4(3)));
    assert!(s.trusted_sources.contains_key(&IpAddr::from(private_v4(2))));
    assert!(!s.trusted_sources.contains_key(&IpAddr::from(private_v4(3))));
    assert_eq!(
        s.adjacencies[&id("pop-b")].private_in_use,
        Some(private_v4(2).into())
    );
    // c uses no private path at all.
    let c = nodes[2].status.borrow().clone();
    assert!(
        c.adjacencies.values().all(|a| a.private_in_use.is_none()),
        "{c:#?}"
    );
    // b's private link fails: a falls back to the Internet underlay, and
    // the adjacency (over the Internet) stays up.
    let count = s.adjacencies[&id("pop-b")].established_count;
    underlay.cut_private(2);
    let cut = std::time::Instant::now();
    nodes[0].wait_for("the fallback", WAIT, |s| {
        s.services.get(&web).and_then(|p| p.get(&id("pop-b")))
            == Some(&IpAddr::from(underlay_v4(2)))
    });
    eprintln!("fell back after {:?}", cut.elapsed());
    assert_eq!(
        nodes[0].status.borrow().adjacencies[&id("pop-b")].established_count,
        count
    );
}

#[test]
fn a_silent_node_leaves_every_rib_within_the_hold_time() {
    if !require_root("a_silent_node_leaves_every_rib_within_the_hold_time") {
        return;
    }
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    let (_spaces, nodes) = mesh_with_c_serving(&lab, &mut underlay);
    // c's link goes dark: no FIN, no RST, just silence. The hold time is 9 s.
    underlay.set_internet(3, false);
    let gone = c_gone(&nodes, Duration::from_secs(10));
    eprintln!("routes gone after {gone:?}");
    assert!(
        gone >= Duration::from_secs(5),
        "gone before the hold time could expire: {gone:?}"
    );
    // The a-b adjacency never noticed.
    assert_eq!(
        nodes[0].status.borrow().adjacencies[&id("pop-b")].established_count,
        1
    );
    underlay.set_internet(3, true);
    c_serving_everywhere(&nodes);
}

#[test]
fn with_bfd_a_failed_private_path_falls_back_on_bfd_and_the_adjacency_stays() {
    if !require_root("with_bfd_a_failed_private_path_falls_back_on_bfd_and_the_adjacency_stays") {
        return;
    }
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    let (_spaces, nodes) = mesh_with(&lab, &mut underlay, true, |i, cfg| {
        cfg.private_addr = Some(private_v4(i as u8 + 1).into());
        cfg.private_to = match i {
            0 => [id("pop-b")].into(),
            1 => [id("pop-a")].into(),
            _ => Default::default(),
        };
        cfg.bfd = Some(Timers {
            min_tx: Duration::from_millis(100),
            min_rx: Duration::from_millis(100),
            multiplier: 3,
        });
    });
    for (i, node) in nodes.iter().enumerate() {
        full_mesh(node, i);
    }
    nodes[1].advertise(VIP_WEB_V4);
    let web = IpAddr::from(VIP_WEB_V4);
    nodes[0].wait_for("b over the private path", WAIT, |s| {
        s.services.get(&web).and_then(|p| p.get(&id("pop-b"))) == Some(&IpAddr::from(private_v4(2)))
    });
    let private_up = || {
        !nodes[0]
            .log_lines(&["BFD overlay edge://pop-b private: up"])
            .is_empty()
    };
    nodes[0].wait_for("BFD up on the private path", WAIT, |_| private_up());
    let count = nodes[0].status.borrow().adjacencies[&id("pop-b")].established_count;
    underlay.cut_private(2);
    let cut = std::time::Instant::now();
    nodes[0].wait_for("the fallback", WAIT, |s| {
        s.services.get(&web).and_then(|p| p.get(&id("pop-b")))
            == Some(&IpAddr::from(underlay_v4(2)))
    });
    eprintln!(
        "with BFD 100 ms x 3 on the private path, fell back after {:?}",
        cut.elapsed()
    );
    // BFD said so (the TCP probes would have taken three failed rounds).
    assert_eq!(
        nodes[0]
            .log_lines(&["private path to edge://pop-b is down (BFD)"])
            .len(),
        1,
        "{}",
        nodes[0].logs()
    );
    // The adjacency over the Internet underlay, and its own BFD, stay up.
    let s = nodes[0].status.borrow().clone();
    assert_eq!(s.adjacencies[&id("pop-b")].established_count, count);
    assert_eq!(
        s.adjacencies[&id("pop-b")]
            .bfd
            .as_ref()
            .map(|b| b.session.counters.failures),
        Some(0)
    );
}

/// The adjacency's BFD session, as `node` shows it.
fn bfd_of(node: &Node, peer: &str) -> Option<edge_agent::bfd::BfdStatus> {
    node.status.borrow().adjacencies.get(&id(peer))?.bfd.clone()
}

fn bfd_up(node: &Node, peer: &str) -> bool {
    bfd_of(node, peer).is_some_and(|b| b.session.state == BfdState::Up)
}

#[test]
fn with_bfd_a_silent_node_leaves_every_rib_at_once_and_forgeries_change_nothing() {
    if !require_root("with_bfd_a_silent_node_leaves_every_rib_at_once_and_forgeries_change_nothing")
    {
        return;
    }
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    let (spaces, nodes) = mesh_with(&lab, &mut underlay, false, |_, cfg| {
        cfg.bfd = Some(Timers {
            min_tx: Duration::from_millis(100),
            min_rx: Duration::from_millis(100),
            multiplier: 3,
        });
    });
    nodes[2].advertise(VIP_WEB_V4);
    c_serving_everywhere(&nodes);
    for (i, node) in nodes.iter().enumerate() {
        for (j, peer) in NAMES.iter().enumerate() {
            if i != j {
                node.wait_for("BFD up on every adjacency", WAIT, |_| bfd_up(node, peer));
            }
        }
    }
    // A third host on the segment sends pop-a what would take its
    // adjacency with pop-b down, from pop-b's address, with the right
    // discriminators, signed with a guessed key.
    let at_a = bfd_of(&nodes[0], "pop-b").unwrap();
    let rogue = underlay.attach(9, false);
    rogue.run(|| {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        socket.set_ip_transparent_v4(true).unwrap();
        let from = SocketAddr::new(underlay_v4(2).into(), 50_000);
        socket.bind(&from.into()).unwrap();
        for sequence in 0..20u32 {
            let out = forged_down(
                at_a.session.remote_disc,
                at_a.session.local_disc,
                b"not-the-tls-exporter",
                sequence,
            );
            let to = SocketAddr::new(underlay_v4(1).into(), 4784);
            socket.send_to(&out, &to.into()).unwrap();
        }
    });
    nodes[0].wait_for("the forgeries counted", WAIT, |_| {
        bfd_of(&nodes[0], "pop-b").is_some_and(|b| b.drops.get(DropReason::AuthDigest) == 20)
    });
    let after = bfd_of(&nodes[0], "pop-b").unwrap();
    assert_eq!(after.session.state, BfdState::Up);
    assert_eq!(after.session.counters.failures, 0);

    // pop-c hangs: every frame in and out of it is dropped.
    spaces[2].nft(
        "table inet hang {\n  chain in { type filter hook input priority 0; policy drop; }\n  \
         chain out { type filter hook output priority 0; policy drop; }\n}\n",
    );
    let gone = c_gone(&nodes, Duration::from_secs(5));
    eprintln!("with BFD 100 ms x 3, pop-c's routes gone after {gone:?} (hold time 9 s)");
    for node in &nodes[..2] {
        let bfd = bfd_of(node, "pop-c").unwrap();
        assert_eq!(bfd.session.last_down, Some(Diag::DetectionTimeExpired));
        assert_eq!(bfd.session.counters.failures, 1);
    }
    // The a-b adjacency never noticed.
    assert_eq!(
        nodes[0].status.borrow().adjacencies[&id("pop-b")].established_count,
        1
    );
    spaces[2].nft("delete table inet hang\n");
    c_serving_everywhere(&nodes);
}

#[test]
fn peers_no_longer_valid_are_torn_down_and_the_others_stay() {
    if !require_root("peers_no_longer_valid_are_torn_down_and_the_others_stay") {
        return;
    }
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    let (_spaces, nodes) = mesh_with_c_serving(&lab, &mut underlay);
    // pop-a takes pop-c off its allow-list (a reload with new settings).
    let mut trust = config(&lab, 1, "pop-a", &["pop-a", "pop-b"], &[]).trust;
    nodes[0].reload(Some(trust.clone()));
    nodes[0].wait_for("c removed", WAIT, |s| {
        !s.adjacencies.contains_key(&id("pop-c")) && s.services.is_empty() && s.routes == 2
    });
    assert_eq!(nodes[0].log_lines(&["removed peer edge://pop-c"]).len(), 1);
    // pop-b learns from a new CRL that pop-c's certificate is revoked.
    let crl = lab.revoke("pop-c");
    trust = config(&lab, 2, "pop-b", &NAMES, &[]).trust;
    trust.crl = Some(crl);
    nodes[1].reload(Some(trust));
    nodes[1].wait_for("c dropped", WAIT, |s| {
        s.adjacencies
            .get(&id("pop-c"))
            .is_some_and(|a| a.state != AdjState::Established)
            && s.services.is_empty()
            && !s.trusted_sources.values().any(|p| *p == id("pop-c"))
    });
    assert!(nodes[1].status.borrow().refused.contains_key("revoked"));
    // And the a-b adjacency was never touched.
    for (node, peer) in [(&nodes[0], "pop-b"), (&nodes[1], "pop-a")] {
        let s = node.status.borrow();
        assert_eq!(s.adjacencies[&id(peer)].established_count, 1, "{s:#?}");
    }
    // c, cut off from both, holds nothing.
    nodes[2].wait_for("c alone", WAIT, |s| {
        s.established().is_empty() && s.routes == 0
    });
}

#[test]
fn services_reach_a_peer_only_after_the_data_plane_trusts_it() {
    if !require_root("services_reach_a_peer_only_after_the_data_plane_trusts_it") {
        return;
    }
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    // pop-a waits for its data plane's trust before telling anyone.
    let (_spaces, nodes) = mesh_with(&lab, &mut underlay, false, |i, cfg| {
        cfg.advertise_after_trust = i == 0;
    });
    for (i, node) in nodes.iter().enumerate() {
        full_mesh(node, i);
    }
    nodes[0].advertise(VIP_WEB_V4);
    let web = IpAddr::from(VIP_WEB_V4);
    // Identities flow at once; the service does not.
    for node in &nodes[1..] {
        node.wait_for("a's identity", WAIT, |s| {
            s.identities.contains_key(&id("pop-a"))
        });
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(nodes[1].status.borrow().services.is_empty());
    // pop-b's address is trusted: pop-b hears of the service, pop-c not yet.
    nodes[0].confirm_trusted([IpAddr::from(underlay_v4(2))]);
    nodes[1].wait_for("a's web", WAIT, |s| s.services.contains_key(&web));
    std::thread::sleep(Duration::from_millis(300));
    assert!(nodes[2].status.borrow().services.is_empty());
    nodes[0].confirm_trusted([IpAddr::from(underlay_v4(2)), underlay_v4(3).into()]);
    nodes[2].wait_for("a's web", WAIT, |s| s.services.contains_key(&web));
}
