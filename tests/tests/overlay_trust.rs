//! Discovery is not trust: every node that cannot prove an allowed
//! identity with a valid certificate from the enterprise CA is refused on
//! the control endpoint, leaves no adjacency, no route and no trusted
//! source anywhere, and gets one clear log line on the refusing side.
//! Garbage on the control port is refused the same way, and routes an
//! authenticated peer may not send are rejected and counted while its
//! good routes are kept.

use std::{
    collections::BTreeSet,
    io::Write,
    net::{IpAddr, SocketAddr},
    process::Stdio,
    time::Duration,
};

use edge_agent::{
    bgp::{message::Prefix, rib_out::OriginAttrs, rib_out::Origination, speaker::Intent},
    overlay::{
        config::DEFAULT_PORT,
        connection::{self, Event},
        discovery::SrvQuery,
        identity::Identity,
        import::Rejection,
        pki::Validity,
        status::OverlayStatus,
        trust::Trust,
    },
};
use edge_tests::{
    dns::{DnsServer, Zone},
    netns::Netns,
    overlay::{Lab, Node, Underlay, config},
    plan::{CDN_ASN, VIP_WEB_V4, node_v4, underlay_v4},
    privilege::require_root,
};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(15);
const ROGUE: u8 = 9;

fn id(name: &str) -> Identity {
    Identity::from_name(name).unwrap()
}

/// pop-a (1) and pop-b (2), allowing `allow` and knowing `extra` besides
/// each other, meshed.
fn pair(
    lab: &Lab,
    underlay: &mut Underlay,
    allow: &[&str],
    extra: &[(&str, u8)],
    crl: bool,
) -> (Vec<Netns>, Vec<Node>) {
    let mut spaces = Vec::new();
    let mut nodes = Vec::new();
    for (n, name, other) in [(1, "pop-a", ("pop-b", 2)), (2, "pop-b", ("pop-a", 1))] {
        if !lab.dir().join(format!("{name}.pem")).exists() {
            lab.issue(name, Validity::days_from_now(10));
        }
        let ns = underlay.attach(n, false);
        let mut peers = vec![other];
        peers.extend_from_slice(extra);
        let mut cfg = config(lab, n, name, allow, &peers);
        if crl {
            cfg.trust.crl = Some(lab.crl_file());
        }
        nodes.push(Node::start(&ns, cfg));
        spaces.push(ns);
    }
    for (node, other) in nodes.iter().zip(["pop-b", "pop-a"]) {
        node.wait_for("the pair", WAIT, |s| s.established() == [id(other)].into());
    }
    (spaces, nodes)
}

/// Nothing from the rogue anywhere: each good node is established with
/// the other one only, holds only its identity routes, trusts only its
/// addresses.
fn nothing_installed(good: &[Node], rogue: Option<&Node>) {
    for (node, other) in good.iter().zip([2u8, 1]) {
        let s: OverlayStatus = node.status.borrow().clone();
        let other_id = id(if other == 2 { "pop-b" } else { "pop-a" });
        assert_eq!(s.established(), [other_id.clone()].into(), "{s:#?}");
        assert_eq!(
            s.identities.keys().cloned().collect::<BTreeSet<_>>(),
            [other_id].into()
        );
        assert_eq!(s.routes, 2, "{s:#?}");
        assert!(s.services.is_empty(), "{s:#?}");
        assert!(
            !s.trusted_sources
                .contains_key(&IpAddr::from(underlay_v4(ROGUE))),
            "{s:#?}"
        );
        assert_eq!(s.trusted_sources.len(), 2, "{s:#?}");
    }
    if let Some(rogue) = rogue {
        let s = rogue.status.borrow();
        assert!(s.established().is_empty(), "{s:#?}");
        assert_eq!(s.routes, 0);
        assert!(s.trusted_sources.is_empty() && s.services.is_empty() && s.identities.is_empty());
    }
}

/// Waits until `node` refused the rogue `times` times for `kind`, then
/// checks it logged exactly one line about it.
fn refused_with_one_line(node: &Node, kind: &str, times: u64, needle: &str) {
    node.wait_for(kind, WAIT, |s| {
        s.refused.get(kind).copied().unwrap_or(0) >= times
    });
    let lines = node.log_lines(&["overlay: refused", needle]);
    assert_eq!(
        lines.len(),
        1,
        "want one log line about {needle}, got:\n{}",
        lines.join("\n")
    );
    eprintln!("{}", lines[0]);
}

/// A rogue node at underlay host 9 with its own config.
fn rogue(
    underlay: &mut Underlay,
    lab: &Lab,
    name: &str,
    allow: &[&str],
    peers: &[(&str, u8)],
) -> (Netns, Node) {
    let ns = underlay.attach(ROGUE, false);
    let node = Node::start(&ns, config(lab, ROGUE, name, allow, peers));
    node.advertise(VIP_WEB_V4);
    (ns, node)
}

const GOOD: [&str; 2] = ["pop-a", "pop-b"];
const ALL: [&str; 3] = ["pop-a", "pop-b", "pop-r"];

/// How the good pair is set up for a refusal scene.
struct Good<'a> {
    /// Their allow-list.
    allow: &'a [&'a str],
    /// Whether they list the rogue as a candidate (and so dial it too).
    dial_rogue: bool,
    /// Whether they load the lab CRL.
    crl: bool,
}

/// pop-a and pop-b from `lab`, meshed; then pop-r with its certificate
/// from `rogue_lab`, knowing both; each good node refuses it for `kind`
/// with one log line naming `needle`, and nothing is installed anywhere.
fn rogue_is_refused(lab: &Lab, good: Good, rogue_lab: &Lab, kind: &str, needle: &str) {
    let mut underlay = Underlay::new();
    let extra: &[(&str, u8)] = if good.dial_rogue {
        &[("pop-r", ROGUE)]
    } else {
        &[]
    };
    let (_spaces, nodes) = pair(lab, &mut underlay, good.allow, extra, good.crl);
    let (_ns, rogue) = rogue(
        &mut underlay,
        rogue_lab,
        "pop-r",
        &ALL,
        &[("pop-a", 1), ("pop-b", 2)],
    );
    for node in &nodes {
        refused_with_one_line(node, kind, 3, needle);
    }
    nothing_installed(&nodes, Some(&rogue));
}

#[test]
fn a_node_with_a_certificate_from_another_ca_is_refused() {
    if !require_root("a_node_with_a_certificate_from_another_ca_is_refused") {
        return;
    }
    // Another CA, and another CA that has the same name as ours. The good
    // nodes even list the rogue as a candidate: discovery is not trust.
    for (ca_name, kind) in [
        ("rogue CA", "unknown_issuer"),
        ("edge test CA", "bad_certificate"),
    ] {
        let other = Lab::named(ca_name);
        other.issue("pop-r", Validity::days_from_now(10));
        let good = Good {
            allow: &ALL,
            dial_rogue: true,
            crl: false,
        };
        rogue_is_refused(
            &Lab::new(),
            good,
            &other,
            kind,
            &underlay_v4(ROGUE).to_string(),
        );
    }
}

#[test]
fn a_node_not_on_the_allow_list_is_refused() {
    if !require_root("a_node_not_on_the_allow_list_is_refused") {
        return;
    }
    let lab = Lab::new();
    lab.issue("pop-r", Validity::days_from_now(10));
    let good = Good {
        allow: &GOOD,
        dial_rogue: false,
        crl: false,
    };
    rogue_is_refused(&lab, good, &lab, "not_allowed", "edge://pop-r");
}

#[test]
fn a_revoked_node_is_refused() {
    if !require_root("a_revoked_node_is_refused") {
        return;
    }
    let lab = Lab::new();
    lab.issue("pop-r", Validity::days_from_now(10));
    lab.revoke("pop-r");
    let good = Good {
        allow: &ALL,
        dial_rogue: true,
        crl: true,
    };
    rogue_is_refused(&lab, good, &lab, "revoked", &underlay_v4(ROGUE).to_string());
}

#[test]
fn a_node_with_an_expired_certificate_is_refused_and_cannot_start() {
    if !require_root("a_node_with_an_expired_certificate_is_refused_and_cannot_start") {
        return;
    }
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    let (_spaces, good) = pair(&lab, &mut underlay, &ALL, &[], false);
    let (cert, key) = lab.issue("pop-r", Validity::expired());
    let ns = underlay.attach(ROGUE, false);
    // Our own agent will not even start with it...
    let error = Node::try_start(&ns, config(&lab, ROGUE, "pop-r", &ALL, &[("pop-a", 1)]))
        .err()
        .expect("an agent with an expired certificate must not start");
    assert!(error.contains("expired"), "{error}");
    // ...and another TLS client presenting it is refused.
    for _ in 0..3 {
        openssl(&ns, 1, Some((&cert, &key)), &lab);
    }
    refused_with_one_line(&good[0], "expired", 3, &underlay_v4(ROGUE).to_string());
    nothing_installed(&good, None);
}

#[test]
fn a_node_whose_certificate_does_not_match_its_discovery_record_is_refused() {
    if !require_root("a_node_whose_certificate_does_not_match_its_discovery_record_is_refused") {
        return;
    }
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    let allow = ["pop-a", "pop-b", "pop-c", "pop-x"];
    let (spaces, good) = pair(&lab, &mut underlay, &allow, &[], false);
    // pop-x is allowed, but it answers where DNS says pop-c is.
    lab.issue("pop-x", Validity::days_from_now(10));
    let (_ns, rogue) = rogue(&mut underlay, &lab, "pop-x", &allow, &[]);
    // pop-a learns its candidates from DNS SRV records only.
    let zone = Zone::new()
        .srv(
            "_edge-overlay._tcp.cdn.test.",
            10,
            10,
            DEFAULT_PORT,
            "pop-b.cdn.test.",
        )
        .srv(
            "_edge-overlay._tcp.cdn.test.",
            10,
            10,
            DEFAULT_PORT,
            "pop-c.cdn.test.",
        )
        .a("pop-b.cdn.test.", underlay_v4(2))
        .a("pop-c.cdn.test.", underlay_v4(ROGUE));
    let dns = spaces[0].run(|| DnsServer::start_local(zone));
    good[0].reload(None);
    let mut cfg = config(&lab, 1, "pop-a", &allow, &[]);
    cfg.srv = vec![SrvQuery::for_domain("cdn.test.", vec![dns.addr()])];
    cfg.srv_refresh = Duration::from_millis(500);
    // Restart pop-a with discovery by DNS.
    let mut good = good;
    good.remove(0).shutdown();
    good.insert(0, Node::start(&spaces[0], cfg));
    good[0].wait_for("the pair again", WAIT, |s| {
        s.established() == [id("pop-b")].into()
    });
    good[0].wait_for("pop-c tried", WAIT, |s| {
        s.adjacencies.contains_key(&id("pop-c"))
    });
    refused_with_one_line(&good[0], "identity_mismatch", 3, "edge://pop-c");
    let line = &good[0].log_lines(&["overlay: refused", "edge://pop-c"])[0];
    assert!(line.contains("edge://pop-x"), "{line}");
    assert!(dns.queries() >= 2);
    nothing_installed(&good, Some(&rogue));
}

#[test]
fn garbage_on_the_control_port_is_refused_without_state() {
    if !require_root("garbage_on_the_control_port_is_refused_without_state") {
        return;
    }
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    let (_spaces, good) = pair(&lab, &mut underlay, &GOOD, &[], false);
    let ns = underlay.attach(ROGUE, false);
    let target = SocketAddr::new(underlay_v4(1).into(), DEFAULT_PORT);
    // A plain TCP client that says nothing, one that sends random bytes,
    // and one that speaks plain BGP (an OPEN) as if it were a router.
    ns.run(|| {
        let silent = std::net::TcpStream::connect(target).unwrap();
        let mut random = std::net::TcpStream::connect(target).unwrap();
        let bytes: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let _ = random.write_all(&bytes);
        let mut bgp = std::net::TcpStream::connect(target).unwrap();
        let mut open = vec![0xff; 16];
        open.extend_from_slice(&[0, 29, 1, 4, 0xfc, 0x14, 0, 90, 192, 0, 2, 9, 0]);
        let _ = bgp.write_all(&open);
        std::thread::sleep(Duration::from_millis(2500));
        drop((silent, random, bgp));
    });
    // A TLS client without a certificate (openssl may close before it reads
    // the server's alert: the server's count below is what tells).
    let out = openssl(&ns, 1, None, &lab);
    assert!(out.contains("CONNECTED"), "{out}");
    let s = good[0].status.borrow().clone();
    // The rogue is a stranger: the silent client had a second to start,
    // the random bytes failed the handshake, and the third connection at
    // once from one source was closed without a handshake.
    assert_eq!(
        s.refused.get("no_client_hello"),
        Some(&1),
        "{:?}",
        s.refused
    );
    assert_eq!(s.refused.get("handshake"), Some(&1), "{:?}", s.refused);
    assert_eq!(
        s.admission.denied.get("source_limit"),
        Some(&1),
        "{:?}",
        s.admission
    );
    good[0].wait_for("the certless client", WAIT, |s| {
        s.refused.get("no_certificate") == Some(&1)
    });
    assert_eq!(
        good[0]
            .log_lines(&["overlay: refused", &underlay_v4(ROGUE).to_string()])
            .len(),
        3
    );
    nothing_installed(&good, None);
    assert_eq!(good[0].status.borrow().adjacencies.len(), 1);
    // Still serving: a new node joins fine.
    lab.issue("pop-c", Validity::days_from_now(10));
    let ns_c = underlay.attach(3, false);
    let c = Node::start(
        &ns_c,
        config(&lab, 3, "pop-c", &["pop-a", "pop-c"], &[("pop-a", 1)]),
    );
    good[0].reload(Some(
        config(&lab, 1, "pop-a", &["pop-a", "pop-b", "pop-c"], &[]).trust,
    ));
    c.wait_for("pop-a", WAIT, |s| s.established() == [id("pop-a")].into());
}

#[test]
fn bad_routes_from_an_authenticated_peer_are_rejected_and_counted_good_ones_kept() {
    if !require_root(
        "bad_routes_from_an_authenticated_peer_are_rejected_and_counted_good_ones_kept",
    ) {
        return;
    }
    let lab = Lab::new();
    let mut underlay = Underlay::new();
    let (_spaces, good) = pair(&lab, &mut underlay, &ALL, &[], false);
    lab.issue("pop-r", Validity::days_from_now(10));
    let ns = underlay.attach(ROGUE, false);
    let trust = Trust::load(&config(&lab, ROGUE, "pop-r", &ALL, &[]).trust).unwrap();
    let p = |s: &str| s.parse::<Prefix>().unwrap();
    let announce = [
        p("0.0.0.0/0"),
        p("203.0.113.0/24"),
        p("198.18.0.1/32"),
        p("198.18.0.2/32"),
        Prefix::host(node_v4(ROGUE).into()),
        Prefix::host(VIP_WEB_V4.into()),
    ];
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let speaker = std::thread::spawn({
        let name = ns.name().to_owned();
        move || {
            let runtime = edge_tests::netns::runtime_in(&name);
            runtime.block_on(async move {
                let tcp = tokio::net::TcpSocket::new_v4().unwrap();
                tcp.bind(SocketAddr::new(underlay_v4(ROGUE).into(), 0))
                    .unwrap();
                let tcp = tcp
                    .connect(SocketAddr::new(underlay_v4(1).into(), DEFAULT_PORT))
                    .await
                    .unwrap();
                let (stream, _) = trust.connect(tcp, &id("pop-a")).await.unwrap();
                let mut wanted = Intent::default();
                for prefix in announce {
                    wanted.announce(prefix, OriginAttrs::default());
                }
                let (commands, commands_rx) = tokio::sync::watch::channel(wanted);
                let (events, mut events_rx) = mpsc::channel::<Event>(64);
                let config = edge_agent::bgp::session::SessionConfig {
                    local_as: CDN_ASN,
                    peer_as: CDN_ASN,
                    bgp_id: node_v4(ROGUE),
                    hold_time: 9,
                    connect_retry: Duration::from_secs(1),
                    passive: true,
                    families: vec![edge_agent::bgp::message::Family::IPV4_UNICAST],
                    graceful_restart: None,
                    max_prefixes: None,
                };
                let origination = Origination {
                    local_as: CDN_ASN,
                    ebgp: false,
                    next_hop_v4: Some(underlay_v4(ROGUE)),
                    next_hop_v6: None,
                };
                tokio::spawn(connection::run_bgp(
                    stream,
                    true,
                    id("pop-a"),
                    1,
                    config,
                    origination,
                    commands_rx,
                    None,
                    events,
                ));
                tokio::spawn(async move { while events_rx.recv().await.is_some() {} });
                let _ = tokio::task::spawn_blocking(move || stopped.recv()).await;
                drop(commands);
            });
        }
    });
    good[0].wait_for("pop-r's routes", WAIT, |s| {
        s.adjacencies
            .get(&id("pop-r"))
            .is_some_and(|a| a.rejected.values().sum::<u64>() == 4 && a.routes == 2)
    });
    let s = good[0].status.borrow().clone();
    let r = &s.adjacencies[&id("pop-r")];
    assert_eq!(r.rejected[&Rejection::Default], 1);
    assert_eq!(r.rejected[&Rejection::NotHostRoute], 1);
    assert_eq!(r.rejected[&Rejection::OutsideRanges], 2);
    assert_eq!(
        s.services[&IpAddr::from(VIP_WEB_V4)][&id("pop-r")],
        IpAddr::from(underlay_v4(ROGUE))
    );
    assert_eq!(
        s.identities[&id("pop-r")],
        [IpAddr::from(node_v4(ROGUE))].into()
    );
    // One line per reason, not per route.
    for (needle, n) in [
        ("0.0.0.0/0", 1),
        ("203.0.113.0/24", 1),
        ("198.18.0.1/32", 1),
        ("198.18.0.2/32", 0),
    ] {
        assert_eq!(
            good[0].log_lines(&["rejected", needle]).len(),
            n,
            "{needle}:\n{}",
            good[0].logs()
        );
    }
    // Nothing learned from pop-r reaches pop-b: no transitive reachability.
    std::thread::sleep(Duration::from_millis(500));
    let b = good[1].status.borrow().clone();
    assert!(
        b.services.is_empty() && !b.identities.contains_key(&id("pop-r")),
        "{b:#?}"
    );
    let _ = stop.send(());
    speaker.join().unwrap();
    good[0].wait_for("pop-r gone", WAIT, |s| {
        !s.identities.contains_key(&id("pop-r")) && s.services.is_empty()
    });
}

/// `openssl s_client` from `ns` to node `n`'s control endpoint, with a
/// client certificate or without; its combined output.
fn openssl(
    ns: &Netns,
    n: u8,
    cert: Option<(&std::path::Path, &std::path::Path)>,
    lab: &Lab,
) -> String {
    let mut cmd = ns.command("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("{}:{DEFAULT_PORT}", underlay_v4(n)),
        "-tls1_3",
        "-alpn",
        "edge-overlay/1",
    ]);
    cmd.arg("-CAfile").arg(lab.ca_file());
    if let Some((cert, key)) = cert {
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("openssl (run `cargo xtask setup`)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
