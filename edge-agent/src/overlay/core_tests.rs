//! The overlay's policy end to end, with simulated time and real trust
//! material (certificates from the lab CA, identities proven by real TLS
//! handshakes over in-memory streams), without sockets or root.

use std::{
    collections::BTreeSet,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use edge_tests::logs::Capture;

use super::*;
use crate::overlay::{
    adjacency::Timers,
    admission::AdmissionConfig,
    discovery::Source,
    import::test_policy,
    pki::Validity,
    test_lab::{Lab, announce, handshake, id, private_route},
};

const A: &str = "pop-a";
const B: &str = "pop-b";
const C: &str = "pop-c";
const D: &str = "pop-d";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

/// Where each peer's control endpoint is (the address plan's underlay).
fn underlay(name: &str) -> SocketAddr {
    match name {
        A => sa("198.51.100.1:4179"),
        B => sa("198.51.100.2:4179"),
        C => sa("198.51.100.3:4179"),
        D => sa("198.51.100.4:4179"),
        _ => sa("198.51.100.9:4179"),
    }
}

fn candidate(name: &str) -> Candidate {
    Candidate {
        identity: id(name),
        addr: underlay(name),
        source: Source::Static,
    }
}

/// A node with a core under test, its lab, and a simulated clock.
struct Node {
    lab: Lab,
    name: &'static str,
    trust: Arc<Trust>,
    core: OverlayCore,
    now: Instant,
    next_stream: StreamId,
    /// Dials seen while waiting for another peer's, by peer.
    dials: Vec<(Identity, ConnId)>,
}

struct Setup {
    name: &'static str,
    allow: Vec<&'static str>,
    candidates: Vec<&'static str>,
    private_to: Vec<&'static str>,
    advertise_after_trust: bool,
    max_routes: usize,
    /// Certificate validity of the peers' certificates, by name.
    short_lived: Vec<&'static str>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            name: A,
            allow: vec![B, C],
            candidates: vec![B, C],
            private_to: Vec::new(),
            advertise_after_trust: true,
            max_routes: 8,
            short_lived: Vec::new(),
        }
    }
}

fn config(lab: &Lab, setup: &Setup) -> OverlayConfig {
    OverlayConfig {
        listen: underlay(setup.name),
        underlay_other: None,
        trust: lab.config(setup.name, "ca.pem", &setup.allow),
        asn: 64500,
        node_addrs: vec![ip("192.0.2.1")],
        private_addr: Some(ip("198.51.100.129")),
        private_to: setup.private_to.iter().map(|n| id(n)).collect(),
        import: test_policy(setup.max_routes),
        static_peers: setup.candidates.iter().map(|n| candidate(n)).collect(),
        srv: Vec::new(),
        srv_refresh: Duration::from_secs(60),
        hold_time: 9,
        timers: Timers::default(),
        bfd: None,
        trust_check: Duration::from_secs(30),
        admission: AdmissionConfig {
            candidate_handshakes: 8,
            ..AdmissionConfig::default()
        },
        advertise_after_trust: setup.advertise_after_trust,
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

impl Node {
    fn new(setup: Setup) -> Node {
        let lab = Lab::new("core");
        let trust = Arc::new(lab.trust(setup.name, &setup.allow));
        for peer in [A, B, C, D] {
            if peer == setup.name {
                continue;
            }
            let days = if setup.short_lived.contains(&peer) {
                1
            } else {
                10
            };
            lab.node(peer, Validity::days_from_now(days));
        }
        let now = Instant::now();
        let core = OverlayCore::new(config(&lab, &setup), trust.clone(), 7, now);
        Node {
            lab,
            name: setup.name,
            trust,
            core,
            now,
            next_stream: 1,
            dials: Vec::new(),
        }
    }

    /// The material of `peer` (its files were written by [`Node::new`]).
    fn peer_trust(&self, peer: &str) -> Trust {
        Trust::load(&self.lab.config(peer, "ca.pem", &[self.name])).unwrap()
    }

    /// What `peer` proves to us in a real handshake (it connects to us).
    fn proven(&self, peer: &str) -> Authenticated {
        let theirs = self.peer_trust(peer);
        let (ours, _) = block_on(handshake(&self.trust, &theirs, self.name));
        ours.expect("the peer authenticates").1
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.core.handle_timeout(self.now);
    }

    /// Runs the clock up to the core's next deadline, if it is within
    /// `limit`.
    fn run_to_next(&mut self, limit: Duration) -> bool {
        match self.core.poll_timeout() {
            Some(at) if at <= self.now + limit => {
                self.now = self.now.max(at);
                self.core.handle_timeout(self.now);
                true
            }
            _ => false,
        }
    }

    fn event(&mut self, event: OverlayEvent) {
        self.core.handle_event(event, self.now);
    }

    fn effects(&mut self) -> Vec<OverlayEffect> {
        std::iter::from_fn(|| self.core.poll()).collect()
    }

    /// Lets time pass until the core dials `peer`; returns the connection.
    /// Other peers' dials seen meanwhile are kept for their turn.
    fn until_dial(&mut self, peer: &str, limit: Duration) -> ConnId {
        let deadline = self.now + limit;
        loop {
            if let Some(at) = self.dials.iter().position(|(p, _)| *p == id(peer)) {
                return self.dials.remove(at).1;
            }
            for effect in self.effects() {
                if let OverlayEffect::Dial { peer, conn, .. } = effect {
                    self.dials.push((peer, conn));
                }
            }
            if self.dials.iter().any(|(p, _)| *p == id(peer)) {
                continue;
            }
            let left = deadline.saturating_duration_since(self.now);
            assert!(self.run_to_next(left), "no dial to {peer} within {limit:?}");
        }
    }

    /// Our dial of `peer` authenticates it; returns the Run effect's
    /// connection and routes.
    fn dial_succeeds(&mut self, peer: &str, conn: ConnId) -> (ConnId, Routes) {
        let stream = self.stream();
        let auth = self.proven(peer);
        self.event(OverlayEvent::Dialed {
            peer: id(peer),
            conn,
            result: Ok((stream, auth, underlay(peer))),
        });
        let effects = self.effects();
        run_of(&effects, peer, stream).unwrap_or_else(|| panic!("no Run: {effects:?}"))
    }

    fn stream(&mut self) -> StreamId {
        self.next_stream += 1;
        self.next_stream
    }

    /// `peer` is dialed, authenticated, and its iBGP session Established.
    fn establish(&mut self, peer: &str) -> ConnId {
        let conn = self.until_dial(peer, Duration::from_secs(5));
        let (conn, _) = self.dial_succeeds(peer, conn);
        self.event(OverlayEvent::Established {
            peer: id(peer),
            conn,
        });
        conn
    }

    fn adjacency(&self, peer: &str) -> Option<AdjacencyStatus> {
        self.core.status().adjacencies.get(&id(peer)).cloned()
    }

    fn state(&self, peer: &str) -> Option<AdjState> {
        self.adjacency(peer).map(|a| a.state)
    }

    fn update(&mut self, peer: &str, conn: ConnId, update: Update) {
        self.event(OverlayEvent::Update {
            peer: id(peer),
            conn,
            update,
        });
    }
}

fn run_of(effects: &[OverlayEffect], peer: &str, stream: StreamId) -> Option<(ConnId, Routes)> {
    effects.iter().find_map(|e| match e {
        OverlayEffect::Run {
            peer: p,
            conn,
            stream: s,
            routes,
            ..
        } if *p == id(peer) && *s == stream => Some((*conn, routes.clone())),
        _ => None,
    })
}

fn closes(effects: &[OverlayEffect]) -> Vec<(Identity, CloseReason)> {
    effects
        .iter()
        .filter_map(|e| match e {
            OverlayEffect::Close { peer, reason, .. } => Some((peer.clone(), *reason)),
            _ => None,
        })
        .collect()
}

fn dials(effects: &[OverlayEffect]) -> Vec<Identity> {
    effects
        .iter()
        .filter_map(|e| match e {
            OverlayEffect::Dial { peer, .. } => Some(peer.clone()),
            _ => None,
        })
        .collect()
}

fn keys(routes: &Routes) -> BTreeSet<Prefix> {
    routes.keys().copied().collect()
}

#[test]
fn allowed_candidates_are_dialed_from_the_underlay_and_others_never() {
    let mut node = Node::new(Setup {
        // pop-d is a candidate but not allowed; pop-a is ourselves.
        candidates: vec![A, B, C, D],
        ..Setup::default()
    });
    // Nothing before the initial spread is over.
    assert!(node.effects().is_empty());
    node.advance(Duration::from_millis(500));
    let effects = node.effects();
    let mut dialed = dials(&effects);
    dialed.sort();
    assert_eq!(dialed, vec![id(B), id(C)]);
    for effect in &effects {
        if let OverlayEffect::Dial {
            from, to, timeout, ..
        } = effect
        {
            assert_eq!(*from, ip("198.51.100.1"), "dials leave from the underlay");
            assert!([underlay(B), underlay(C)].contains(to));
            assert_eq!(*timeout, Duration::from_secs(5));
        }
    }
    assert!(
        node.state(D).is_none(),
        "no adjacency for a peer off the allow-list"
    );
    assert!(node.state(A).is_none(), "no adjacency with ourselves");
    // Much later: still never pop-d.
    for _ in 0..20 {
        node.advance(Duration::from_secs(60));
        assert!(!dials(&node.effects()).contains(&id(D)));
    }
}

#[test]
fn the_higher_identity_leaves_the_first_dial_to_the_lower_one() {
    let mut node = Node::new(Setup {
        name: C,
        allow: vec![A, D],
        candidates: vec![A, D],
        ..Setup::default()
    });
    node.advance(Duration::from_millis(500));
    // pop-d is above us: we go first; pop-a is below: we defer to it.
    assert_eq!(dials(&node.effects()), vec![id(D)]);
    node.advance(Duration::from_millis(1400));
    assert!(dials(&node.effects()).is_empty(), "deferred for 2 s");
    node.advance(Duration::from_millis(600));
    assert_eq!(dials(&node.effects()), vec![id(A)]);
}

#[test]
fn failed_dials_back_off_exponentially_and_unreachable_peers_are_not_refusals() {
    let mut node = Node::new(Setup {
        allow: vec![B],
        candidates: vec![B],
        ..Setup::default()
    });
    let conn = node.until_dial(B, Duration::from_secs(1));
    let mut failed_at = node.now;
    node.event(OverlayEvent::Dialed {
        peer: id(B),
        conn,
        result: Err(Refusal::Timeout),
    });
    assert_eq!(node.state(B), Some(AdjState::Down));
    let status = node.core.status();
    assert!(status.refused.is_empty(), "a silent peer refused nothing");
    assert_eq!(
        status.adjacencies[&id(B)].last_failure.as_deref(),
        Some("the TLS handshake did not complete within the handshake timeout")
    );
    // Backoff doubles from 1 s (±20 %) up to the 60 s cap.
    let mut expected = Duration::from_secs(1);
    for _ in 0..9 {
        let conn = node.until_dial(B, Duration::from_secs(120));
        let waited = node.now - failed_at;
        assert!(
            waited >= expected.mul_f64(0.8) && waited <= expected.mul_f64(1.2),
            "waited {waited:?}, expected about {expected:?}"
        );
        failed_at = node.now;
        node.event(OverlayEvent::Dialed {
            peer: id(B),
            conn,
            result: Err(Refusal::Handshake("connection refused".into())),
        });
        expected = (expected * 2).min(Duration::from_secs(60));
    }
    assert!(node.core.status().refused.is_empty());
    // A certificate refusal is a refusal, and counted.
    let conn = node.until_dial(B, Duration::from_secs(120));
    node.event(OverlayEvent::Dialed {
        peer: id(B),
        conn,
        result: Err(Refusal::UnknownIssuer),
    });
    assert_eq!(node.core.status().refused.get("unknown_issuer"), Some(&1));
}

#[test]
fn a_session_announces_identities_at_once_and_services_only_once_the_data_plane_trusts_the_peer() {
    let mut node = Node::new(Setup::default());
    node.event(OverlayEvent::Advertise(ip("203.0.113.10")));
    let conn = node.until_dial(B, Duration::from_secs(1));
    let (conn, routes) = node.dial_succeeds(B, conn);
    assert_eq!(
        keys(&routes),
        [p("192.0.2.1/32"), p("198.51.100.129/32")].into(),
        "identity and private address, no service yet"
    );
    assert_eq!(
        routes[&p("198.51.100.129/32")].large_communities,
        vec![(64500, PRIVATE_UNDERLAY, 0)],
        "the private address carries the marker"
    );
    assert!(routes[&p("192.0.2.1/32")].large_communities.is_empty());
    node.event(OverlayEvent::Established { peer: id(B), conn });
    assert_eq!(node.state(B), Some(AdjState::Established));
    // Another service while untrusted: still nothing for this session.
    node.event(OverlayEvent::Advertise(ip("203.0.113.11")));
    assert!(
        !node
            .effects()
            .iter()
            .any(|e| matches!(e, OverlayEffect::Routes { .. })),
        "no services before trust"
    );
    // The data plane trusts someone else: still nothing.
    node.event(OverlayEvent::Trusted([ip("198.51.100.3")].into()));
    assert!(node.effects().is_empty());
    node.event(OverlayEvent::Trusted(
        [ip("198.51.100.2"), ip("198.51.100.3")].into(),
    ));
    let effects = node.effects();
    let [OverlayEffect::Routes { peer, routes, .. }] = &effects[..] else {
        panic!("one Routes effect: {effects:?}");
    };
    assert_eq!(*peer, id(B));
    assert_eq!(
        keys(routes),
        [
            p("192.0.2.1/32"),
            p("198.51.100.129/32"),
            p("203.0.113.10/32"),
            p("203.0.113.11/32")
        ]
        .into()
    );
    // A withdrawn service goes from the session.
    node.event(OverlayEvent::Withdraw(ip("203.0.113.10")));
    let effects = node.effects();
    let [OverlayEffect::Routes { routes, .. }] = &effects[..] else {
        panic!("one Routes effect: {effects:?}");
    };
    assert!(!routes.contains_key(&p("203.0.113.10/32")));
    // Withdrawing again changes nothing.
    node.event(OverlayEvent::Withdraw(ip("203.0.113.10")));
    assert!(node.effects().is_empty());
}

#[test]
fn without_a_data_plane_to_wait_for_services_go_with_the_first_announcement() {
    let mut node = Node::new(Setup {
        advertise_after_trust: false,
        ..Setup::default()
    });
    node.event(OverlayEvent::Advertise(ip("203.0.113.10")));
    let conn = node.until_dial(B, Duration::from_secs(1));
    let (_, routes) = node.dial_succeeds(B, conn);
    assert!(routes.contains_key(&p("203.0.113.10/32")));
}

#[test]
fn routes_count_only_from_established_sessions_and_leave_with_them() {
    let mut node = Node::new(Setup::default());
    let conn = node.until_dial(B, Duration::from_secs(1));
    let (conn, _) = node.dial_succeeds(B, conn);
    let update = announce(&["192.0.2.2/32", "203.0.113.20/32"], "198.51.100.2");
    node.update(B, conn, update.clone());
    assert_eq!(node.core.status().routes, 0, "not Established yet");
    node.event(OverlayEvent::Established { peer: id(B), conn });
    node.update(B, conn, update.clone());
    // An UPDATE on a connection that is not the adjacency's is ignored.
    node.update(
        B,
        conn + 100,
        announce(&["203.0.113.21/32"], "198.51.100.2"),
    );
    let status = node.core.status();
    assert_eq!(status.routes, 2);
    assert_eq!(
        status.services[&ip("203.0.113.20")],
        [(id(B), ip("198.51.100.2"))].into()
    );
    assert_eq!(status.trusted_sources[&ip("198.51.100.2")], id(B));
    let adjacency = &status.adjacencies[&id(B)];
    assert_eq!(adjacency.transport, Some(ip("198.51.100.2")));
    assert_eq!(adjacency.established_count, 1);
    assert_eq!(adjacency.established_since, Some(node.now));
    node.event(OverlayEvent::Ended {
        peer: id(B),
        conn,
        reason: DownReason::TransportClosed,
    });
    let status = node.core.status();
    assert_eq!(status.routes, 0);
    assert!(status.services.is_empty());
    assert!(status.trusted_sources.is_empty());
    assert_eq!(status.adjacencies[&id(B)].state, AdjState::Down);
    assert_eq!(status.adjacencies[&id(B)].transport, None);
    // And it is dialed again.
    node.until_dial(B, Duration::from_secs(2));
}

#[test]
fn routes_beyond_max_routes_and_outside_the_ranges_are_rejected_and_counted() {
    let mut node = Node::new(Setup {
        max_routes: 3,
        ..Setup::default()
    });
    let conn = node.establish(B);
    node.update(
        B,
        conn,
        announce(
            &[
                "192.0.2.2/32",
                "203.0.113.1/32",
                "203.0.113.2/32",
                "203.0.113.3/32",
                "203.0.113.4/32",
                "10.0.0.1/32",
            ],
            "198.51.100.2",
        ),
    );
    let status = node.core.status();
    assert_eq!(status.routes, 3);
    let rejected: u64 = status.adjacencies[&id(B)].rejected.values().sum();
    assert_eq!(rejected, 3, "{:?}", status.adjacencies[&id(B)].rejected);
}

#[test]
fn the_dial_tie_break_keeps_the_connection_opened_by_the_lower_identity() {
    // We are the lower identity: our dial survives pop-b's inbound.
    let mut node = Node::new(Setup::default());
    let conn = node.until_dial(B, Duration::from_secs(1));
    let (ours, _) = node.dial_succeeds(B, conn);
    let stream = node.stream();
    let auth = node.proven(B);
    node.event(OverlayEvent::Inbound {
        stream,
        auth,
        remote: sa("198.51.100.2:40000"),
    });
    let effects = node.effects();
    assert!(
        matches!(&effects[..], [OverlayEffect::Discard { stream: s }] if *s == stream),
        "{effects:?}"
    );
    node.event(OverlayEvent::Established {
        peer: id(B),
        conn: ours,
    });
    assert_eq!(node.state(B), Some(AdjState::Established));

    // We are the higher one: pop-a's inbound replaces our dialed one.
    let mut node = Node::new(Setup {
        name: C,
        allow: vec![A, D],
        candidates: vec![A, D],
        ..Setup::default()
    });
    let conn = node.until_dial(A, Duration::from_secs(3));
    let (ours, _) = node.dial_succeeds(A, conn);
    let stream = node.stream();
    let auth = node.proven(A);
    node.event(OverlayEvent::Inbound {
        stream,
        auth,
        remote: sa("198.51.100.1:40000"),
    });
    let effects = node.effects();
    assert_eq!(closes(&effects), vec![(id(A), CloseReason::Duplicate)]);
    assert!(effects.iter().any(|e| matches!(
        e,
        OverlayEffect::Close { conn, .. } if *conn == ours
    )));
    let (theirs, _) = run_of(&effects, A, stream).expect("the inbound one runs");
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, OverlayEffect::Run { ours: false, .. }))
    );
    // The closed session ending later does not take the adjacency down.
    node.event(OverlayEvent::Ended {
        peer: id(A),
        conn: ours,
        reason: DownReason::TransportClosed,
    });
    node.event(OverlayEvent::Established {
        peer: id(A),
        conn: theirs,
    });
    assert_eq!(node.state(A), Some(AdjState::Established));
}

#[test]
fn an_allowed_peer_that_was_not_discovered_may_connect_but_is_never_dialed() {
    let mut node = Node::new(Setup {
        allow: vec![B, D],
        candidates: vec![B],
        ..Setup::default()
    });
    let stream = node.stream();
    let auth = node.proven(D);
    node.event(OverlayEvent::Inbound {
        stream,
        auth,
        remote: sa("198.51.100.4:40000"),
    });
    let effects = node.effects();
    let (conn, _) = run_of(&effects, D, stream).expect("it runs");
    node.event(OverlayEvent::Established { peer: id(D), conn });
    node.event(OverlayEvent::Ended {
        peer: id(D),
        conn,
        reason: DownReason::TransportClosed,
    });
    for _ in 0..10 {
        node.advance(Duration::from_secs(60));
        assert!(!dials(&node.effects()).contains(&id(D)));
    }
}

#[test]
fn a_connection_claiming_to_be_ourselves_is_refused() {
    let mut node = Node::new(Setup::default());
    let stream = node.stream();
    // Someone proving our own identity (a copy of our key, or a node
    // that allows itself).
    let auth = Authenticated {
        identity: id(A),
        chain: Vec::new(),
        not_after: SystemTime::now() + Duration::from_secs(86_400),
    };
    node.event(OverlayEvent::Inbound {
        stream,
        auth,
        remote: sa("198.51.100.9:40000"),
    });
    let effects = node.effects();
    assert!(matches!(&effects[..], [OverlayEffect::Discard { stream: s }] if *s == stream));
    assert_eq!(node.core.status().refused.get("not_allowed"), Some(&1));
    assert!(node.state(A).is_none());
}

#[test]
fn taking_a_peer_off_the_allow_list_closes_exactly_its_adjacency() {
    let mut node = Node::new(Setup::default());
    let b = node.establish(B);
    node.establish(C);
    node.update(B, b, announce(&["203.0.113.20/32"], "198.51.100.2"));
    let config = node.lab.config(A, "ca.pem", &[B]);
    let trust = Arc::new(Trust::load(&config).unwrap());
    node.event(OverlayEvent::TrustLoaded {
        config,
        result: Ok(trust),
        wall: SystemTime::now(),
    });
    let effects = node.effects();
    assert_eq!(closes(&effects), vec![(id(C), CloseReason::Removed)]);
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, OverlayEffect::UseTrust(_)))
    );
    let status = node.core.status();
    assert!(!status.adjacencies.contains_key(&id(C)));
    assert_eq!(status.adjacencies[&id(B)].state, AdjState::Established);
    assert_eq!(status.routes, 1, "pop-b's routes stay");
    assert_eq!(status.reloads, 1);
    // pop-c is not dialed again.
    for _ in 0..5 {
        node.advance(Duration::from_secs(60));
        assert!(!dials(&node.effects()).contains(&id(C)));
    }
}

#[test]
fn a_revocation_closes_exactly_the_revoked_peer_and_counts_it() {
    let mut node = Node::new(Setup::default());
    node.establish(B);
    node.establish(C);
    let c_cert = crate::overlay::pki::Pem::read(
        &node.lab.path(&format!("{C}.pem")),
        &node.lab.path(&format!("{C}.key")),
    )
    .unwrap();
    let crl = node.lab.revoke("crl.pem", &[&c_cert]);
    let mut config = node.lab.config(A, "ca.pem", &[B, C]);
    config.crl = Some(crl);
    let trust = Arc::new(Trust::load(&config).unwrap());
    node.event(OverlayEvent::TrustLoaded {
        config,
        result: Ok(trust),
        wall: SystemTime::now(),
    });
    assert_eq!(
        closes(&node.effects()),
        vec![(id(C), CloseReason::Untrusted)]
    );
    let status = node.core.status();
    assert_eq!(status.refused.get("revoked"), Some(&1));
    assert_eq!(status.adjacencies[&id(B)].state, AdjState::Established);
    assert_eq!(status.adjacencies[&id(C)].state, AdjState::Down);
}

#[test]
fn the_periodic_check_closes_a_peer_whose_certificate_expired() {
    let mut node = Node::new(Setup {
        short_lived: vec![C],
        ..Setup::default()
    });
    node.establish(B);
    node.establish(C);
    // The check comes round every trust_check (30 s).
    let due = node.core.poll_timeout().unwrap();
    assert!(due <= node.now + Duration::from_secs(30));
    node.advance(Duration::from_secs(30));
    let effects = node.effects();
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, OverlayEffect::CheckTrust { .. })),
        "{effects:?}"
    );
    // Unchanged files, today: everyone stays.
    node.event(OverlayEvent::TrustUnchanged {
        wall: SystemTime::now(),
    });
    assert!(closes(&node.effects()).is_empty());
    // Two days on, pop-c's one-day certificate has expired.
    node.event(OverlayEvent::TrustUnchanged {
        wall: SystemTime::now() + Duration::from_secs(2 * 86_400),
    });
    assert_eq!(
        closes(&node.effects()),
        vec![(id(C), CloseReason::Untrusted)]
    );
    let status = node.core.status();
    assert_eq!(status.refused.get("expired"), Some(&1));
    assert_eq!(status.adjacencies[&id(B)].state, AdjState::Established);
}

#[test]
fn a_reload_that_would_change_our_identity_or_cannot_load_keeps_everything() {
    let mut node = Node::new(Setup::default());
    node.establish(B);
    // Material for another identity.
    let other = node.peer_trust(D);
    let config = node.lab.config(D, "ca.pem", &[B]);
    node.event(OverlayEvent::TrustLoaded {
        config,
        result: Ok(Arc::new(other)),
        wall: SystemTime::now(),
    });
    assert!(node.effects().is_empty());
    let status = node.core.status();
    assert_eq!(status.reloads, 0);
    assert!(
        status
            .reload_error
            .as_deref()
            .is_some_and(|e| e.contains("restart the agent to change identity")),
        "{:?}",
        status.reload_error
    );
    assert_eq!(node.core.identity(), &id(A));
    // Material that does not load.
    let mut config = node.lab.config(A, "ca.pem", &[B]);
    config.ca_bundle = node.lab.path("missing.pem");
    let error = Trust::load(&config).err().unwrap();
    node.event(OverlayEvent::TrustLoaded {
        config,
        result: Err(error),
        wall: SystemTime::now(),
    });
    assert!(node.effects().is_empty());
    let status = node.core.status();
    assert!(status.reload_error.unwrap().contains("missing.pem"));
    assert_eq!(status.adjacencies[&id(B)].state, AdjState::Established);
    assert_eq!(
        node.core.trust_config().ca_bundle,
        node.lab.path("ca.pem"),
        "the settings in use stay"
    );
}

#[test]
fn private_transport_is_probed_only_once_established_and_only_toward_private_to() {
    let mut node = Node::new(Setup {
        private_to: vec![B],
        ..Setup::default()
    });
    let b = node.establish(B);
    let c = node.establish(C);
    node.effects();
    node.update(B, b, private_route("198.51.100.130/32", "198.51.100.2"));
    node.update(B, b, announce(&["203.0.113.20/32"], "198.51.100.2"));
    node.update(C, c, private_route("198.51.100.131/32", "198.51.100.3"));
    let effects = node.effects();
    let probes: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            OverlayEffect::Probe { peer, from, addr } => Some((peer.clone(), *from, *addr)),
            _ => None,
        })
        .collect();
    assert_eq!(
        probes,
        vec![(id(B), Some(ip("198.51.100.129")), ip("198.51.100.130"))],
        "only toward pop-b"
    );
    let target = |node: &Node| node.core.status().services[&ip("203.0.113.20")][&id(B)];
    assert_eq!(
        target(&node),
        ip("198.51.100.2"),
        "underlay until the path is up"
    );
    // Rise after 2 answers; a probe result for another address is ignored.
    node.event(OverlayEvent::Probed {
        peer: id(B),
        addr: ip("198.51.100.130"),
        success: true,
    });
    node.event(OverlayEvent::Probed {
        peer: id(B),
        addr: ip("198.51.100.99"),
        success: true,
    });
    assert_eq!(target(&node), ip("198.51.100.2"));
    node.event(OverlayEvent::Probed {
        peer: id(B),
        addr: ip("198.51.100.130"),
        success: true,
    });
    assert_eq!(target(&node), ip("198.51.100.130"));
    assert_eq!(
        node.adjacency(B).unwrap().private_in_use,
        Some(ip("198.51.100.130"))
    );
    // Fall after 3 losses.
    for expected in ["198.51.100.130", "198.51.100.130", "198.51.100.2"] {
        node.event(OverlayEvent::Probed {
            peer: id(B),
            addr: ip("198.51.100.130"),
            success: false,
        });
        assert_eq!(target(&node), ip(expected));
    }
    // The adjacency going down stops the probe.
    node.event(OverlayEvent::Ended {
        peer: id(B),
        conn: b,
        reason: DownReason::TransportClosed,
    });
    let effects = node.effects();
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, OverlayEffect::StopProbe { peer } if *peer == id(B))),
        "{effects:?}"
    );
}

#[test]
fn bfd_on_the_private_path_falls_back_at_once_and_probes_bring_it_back() {
    let mut node = Node::new(Setup {
        private_to: vec![B],
        ..Setup::default()
    });
    let b = node.establish(B);
    node.update(B, b, private_route("198.51.100.130/32", "198.51.100.2"));
    node.update(B, b, announce(&["203.0.113.20/32"], "198.51.100.2"));
    let target = |node: &Node| node.core.status().services[&ip("203.0.113.20")][&id(B)];
    let probed = |node: &mut Node, success| {
        node.event(OverlayEvent::Probed {
            peer: id(B),
            addr: ip("198.51.100.130"),
            success,
        })
    };
    probed(&mut node, true);
    probed(&mut node, true);
    assert_eq!(target(&node), ip("198.51.100.130"));
    // A report for another address changes nothing; the right one at once.
    node.event(OverlayEvent::PrivatePathDown {
        peer: id(B),
        addr: ip("198.51.100.99"),
    });
    assert_eq!(target(&node), ip("198.51.100.130"));
    let logs = Capture::new();
    logs.during(|| {
        node.event(OverlayEvent::PrivatePathDown {
            peer: id(B),
            addr: ip("198.51.100.130"),
        })
    });
    assert_eq!(target(&node), ip("198.51.100.2"));
    assert_eq!(
        logs.lines("private path to edge://pop-b is down (BFD)"),
        1,
        "{}",
        logs.text()
    );
    // Back only through the probes' rise.
    probed(&mut node, true);
    assert_eq!(target(&node), ip("198.51.100.2"));
    probed(&mut node, true);
    assert_eq!(target(&node), ip("198.51.100.130"));
}

#[test]
fn shutdown_closes_every_session_and_abandons_every_dial() {
    let mut node = Node::new(Setup::default());
    node.establish(B);
    let dial = node.until_dial(C, Duration::from_secs(1));
    node.event(OverlayEvent::Shutdown);
    let effects = node.effects();
    assert_eq!(closes(&effects), vec![(id(B), CloseReason::Removed)]);
    assert!(effects.iter().any(|e| matches!(
        e,
        OverlayEffect::AbortDial { peer, conn } if *peer == id(C) && *conn == dial
    )));
    // The abandoned dial completing later is discarded.
    let stream = node.stream();
    let auth = node.proven(C);
    node.event(OverlayEvent::Dialed {
        peer: id(C),
        conn: dial,
        result: Ok((stream, auth, underlay(C))),
    });
    let effects = node.effects();
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, OverlayEffect::Discard { stream: s } if *s == stream)),
        "{effects:?}"
    );
    assert!(run_of(&effects, C, stream).is_none());
}

#[test]
fn discovery_adds_allowed_peers_and_ignores_the_rest() {
    let mut node = Node::new(Setup {
        allow: vec![B, D],
        candidates: vec![B],
        ..Setup::default()
    });
    node.event(OverlayEvent::Discovered(vec![
        Candidate {
            identity: id(D),
            addr: underlay(D),
            source: Source::Srv("_edge-overlay._tcp.cdn.example.".into()),
        },
        Candidate {
            identity: id(C),
            addr: underlay(C),
            source: Source::Srv("_edge-overlay._tcp.cdn.example.".into()),
        },
    ]));
    let mut seen = BTreeSet::new();
    for _ in 0..10 {
        node.advance(Duration::from_millis(100));
        seen.extend(dials(&node.effects()));
    }
    assert_eq!(seen, [id(B), id(D)].into());
    assert!(node.state(C).is_none());
    assert_eq!(node.adjacency(D).unwrap().addrs, vec![underlay(D)]);
    // No longer discovered: no address to dial, the adjacency stays.
    node.event(OverlayEvent::Discovered(Vec::new()));
    assert!(node.adjacency(D).unwrap().addrs.is_empty());
}

#[test]
fn refusals_are_all_counted_but_logged_once_a_minute_per_source_and_reason() {
    let capture = Capture::default();
    capture.during(|| {
        let mut node = Node::new(Setup::default());
        let refuse = |node: &mut Node, source: &str, refusal: Refusal| {
            node.event(OverlayEvent::Refused {
                remote: sa(source),
                refusal,
            })
        };
        for _ in 0..100 {
            refuse(&mut node, "198.51.100.66:40000", Refusal::UnknownIssuer);
            node.now += Duration::from_millis(100);
        }
        // Another reason from the same source, and another source.
        refuse(&mut node, "198.51.100.66:40001", Refusal::NoCertificate);
        refuse(&mut node, "198.51.100.67:40000", Refusal::UnknownIssuer);
        // A minute after the first line, one more.
        node.now += Duration::from_secs(51);
        refuse(&mut node, "198.51.100.66:40002", Refusal::UnknownIssuer);
        let status = node.core.status();
        assert_eq!(status.refused.get("unknown_issuer"), Some(&102));
        assert_eq!(status.refused.get("no_certificate"), Some(&1));
    });
    assert_eq!(
        capture.lines("refused connection from 198.51.100.66: the certificate was not issued"),
        2
    );
    assert_eq!(
        capture.lines("refused connection from 198.51.100.66: the peer presented no client"),
        1
    );
    assert_eq!(capture.lines("refused connection from 198.51.100.67"), 1);
}

/// A BFD session's status as the connection task reports it.
fn liveness(state: crate::bfd::packet::State, failures: u64) -> Box<crate::bfd::BfdStatus> {
    let key = crate::bfd::SessionKey {
        peer: ip("198.51.100.2"),
        local: Some(ip("198.51.100.1")),
        hop: crate::bfd::Hop::Multi,
    };
    let name = format!("overlay {}", id(B));
    Box::new(crate::bfd::test_status(&name, key, state, failures))
}

#[test]
fn bfd_reports_show_in_the_adjacency_and_a_path_down_takes_its_routes_at_once() {
    use crate::bfd::packet::State as BfdState;
    let mut node = Node::new(Setup::default());
    let conn = node.until_dial(B, Duration::from_secs(1));
    let (conn, _) = node.dial_succeeds(B, conn);
    node.event(OverlayEvent::Established { peer: id(B), conn });
    node.update(
        B,
        conn,
        announce(&["192.0.2.2/32", "203.0.113.20/32"], "198.51.100.2"),
    );
    node.event(OverlayEvent::Liveness {
        peer: id(B),
        conn,
        status: liveness(BfdState::Up, 0),
    });
    // A report for another connection is not the adjacency's.
    node.event(OverlayEvent::Liveness {
        peer: id(B),
        conn: conn + 100,
        status: liveness(BfdState::Down, 5),
    });
    let status = node.core.status();
    let bfd = status.adjacencies[&id(B)].bfd.as_ref().expect("BFD shown");
    assert_eq!(
        (bfd.session.state, bfd.session.counters.failures),
        (BfdState::Up, 0)
    );
    assert_eq!(status.routes, 2);
    // BFD finds the path down: the session ends with that reason, and
    // the routes go with it; the last BFD word stays to be seen.
    node.event(OverlayEvent::Liveness {
        peer: id(B),
        conn,
        status: liveness(BfdState::Down, 1),
    });
    node.event(OverlayEvent::Ended {
        peer: id(B),
        conn,
        reason: DownReason::PathDown,
    });
    let status = node.core.status();
    assert_eq!(status.routes, 0);
    assert!(status.services.is_empty());
    assert_eq!(status.adjacencies[&id(B)].state, AdjState::Down);
    let bfd = status.adjacencies[&id(B)].bfd.as_ref().unwrap();
    assert_eq!(bfd.session.counters.failures, 1);
    // Redialed with the usual backoff.
    node.until_dial(B, Duration::from_secs(2));
}
