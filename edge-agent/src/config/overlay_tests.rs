//! `[overlay]` and `[overlay.strangers]`, and the trust files checked
//! with a lab CA.

use std::{path::Path, time::Duration};

use crate::{
    config::{
        Checks, ConfigErrors, parse_with,
        tests::{MINIMAL, assert_problem, minimal_replacing, minimal_with, ok, problems},
    },
    overlay::{
        admission::AdmissionConfig,
        identity::Identity,
        pki::{Pem, Validity, make_ca, make_node},
    },
};

/// MINIMAL with more `[overlay]` keys (appended to the table).
fn overlay_with(keys: &str) -> String {
    minimal_replacing(
        "identity_ranges = [\"192.0.2.0/24\"]",
        &format!("identity_ranges = [\"192.0.2.0/24\"]\n{keys}"),
    )
}

#[test]
fn listen_defaults_to_the_first_underlay_address_and_must_be_one() {
    let c = ok(&overlay_with("listen = \"198.51.100.2:5000\""));
    assert_eq!(c.agent.overlay.listen, "198.51.100.2:5000".parse().unwrap());
    let c = ok(&overlay_with("listen = \"198.51.100.2\""));
    assert_eq!(c.agent.overlay.listen.port(), 4179);
    let e = problems(&overlay_with("listen = \"198.51.100.99:4179\""));
    assert_problem(
        &e,
        "overlay.listen",
        "198.51.100.99 is not one of the node's underlay addresses (198.51.100.2)",
    );
    let e = problems(&overlay_with("listen = \"0.0.0.0\""));
    assert_problem(
        &e,
        "overlay.listen",
        "not one of the node's underlay addresses",
    );
}

#[test]
fn identities_and_ranges_are_checked() {
    let e = problems(&minimal_replacing(
        "identity_ranges = [\"192.0.2.0/24\"]",
        "identity_ranges = [\"192.0.3.0/24\", \"192.0.4.1/24\", \"198.51.100.0/24\"]\n\
         allow = [\"edge://pop-b\", \"pop-c\", \"edge://pop b\"]\nprivate_to = [\"edge://\"]\n\
         service_ranges = [\"203.0.113.0/25\"]\nprivate_ranges = [\"10.0.0.0/8\"]\nprivate_address = \"10.1.2.3\"",
    ));
    assert_problem(
        &e,
        "node.identity[0]",
        "192.0.2.1 is outside the identity ranges",
    );
    assert_problem(&e, "overlay.identity_ranges[1]", "host bits set");
    assert_problem(
        &e,
        "overlay.identity_ranges[2]",
        "contains the underlay address 198.51.100.2",
    );
    assert_problem(&e, "overlay.allow[1]", "`pop-c` is not a node identity");
    assert_problem(&e, "overlay.allow[2]", "not a node identity");
    assert_problem(&e, "overlay.private_to[0]", "not a node identity");
    assert_problem(
        &e,
        "overlay.service_ranges",
        "203.0.113.0/24 is not inside the service ranges",
    );
    assert!(
        !e.has("overlay.private_address"),
        "10.1.2.3 is inside 10.0.0.0/8: {e}"
    );
    // A refused range leaves the identity check out (it could not be
    // trusted), and says why.
    let e = problems(&minimal_replacing(
        "identity_ranges = [\"192.0.2.0/24\"]",
        "identity_ranges = [\"0.0.0.0/0\"]",
    ));
    assert_problem(&e, "overlay.identity_ranges[0]", "covers everything");
    assert_eq!(e.problems.len(), 1, "{e}");
    let e = problems(&overlay_with("private_address = \"10.1.2.3\""));
    assert_problem(&e, "overlay.private_address", "outside the private ranges");
}

#[test]
fn static_peers_must_be_allowed_and_not_ourselves() {
    let e = problems(&overlay_with(
        "allow = [\"edge://pop-b\"]\n\
         [[overlay.peers]]\nidentity = \"edge://pop-c\"\naddress = \"198.51.100.9\"\n\
         [[overlay.peers]]\nidentity = \"edge://pop-a\"\naddress = \"198.51.100.2\"\n\
         [[overlay.peers]]\nidentity = \"edge://pop-b\"\naddress = \"198.51.100.10\"\n\
         [[overlay.peers]]\nidentity = \"edge://pop-b\"\naddress = \"198.51.100.10:4179\"\n\
         [[overlay.peers]]\naddress = \"nowhere\"\n",
    ));
    assert_problem(
        &e,
        "overlay.peers[0].identity",
        "edge://pop-c is not on the allow-list",
    );
    assert_problem(&e, "overlay.peers[1].identity", "edge://pop-a is this node");
    assert_problem(
        &e,
        "overlay.peers[1].address",
        "one of this node's own addresses",
    );
    assert_problem(&e, "overlay.peers[3]", "listed twice");
    assert_problem(&e, "overlay.peers[4].identity", "missing");
    assert_problem(&e, "overlay.peers[4].address", "not an address");
    assert!(!e.has("overlay.peers[2].identity"), "{e}");
}

#[test]
fn discovery_needs_resolvers_and_domains() {
    let c = ok(&overlay_with(
        "[overlay.discovery]\nsrv = [\"cdn.example.\", \"_edge-overlay._tcp.other.example\"]\nresolvers = [\"[2001:db8::53]\"]\nrefresh = \"1m\"\n",
    ));
    let o = &c.agent.overlay;
    assert_eq!(o.srv[0].name, "_edge-overlay._tcp.cdn.example.");
    assert_eq!(o.srv[1].name, "_edge-overlay._tcp.other.example.");
    assert_eq!(o.srv[1].resolvers, ["[2001:db8::53]:53".parse().unwrap()]);
    assert_eq!(o.srv_refresh, std::time::Duration::from_secs(60));
    let e = problems(&overlay_with(
        "[overlay.discovery]\nsrv = [\"cdn example\", \"a.example\", \"a.example\"]\nrefresh = \"0s\"\n",
    ));
    assert_problem(&e, "overlay.discovery.srv[0]", "not a domain name");
    assert_problem(&e, "overlay.discovery.srv[2]", "listed twice");
    assert_problem(&e, "overlay.discovery.resolvers", "no resolver");
    assert_problem(&e, "overlay.discovery.refresh", "longer than zero");
}

#[test]
fn timers_and_limits() {
    let c = ok(&overlay_with(
        "hold_time = 0\nmax_routes = 10\nmax_handshakes = 8\ntrust_check = \"1m\"\nhandshake_timeout = \"3s\"\nbackoff_min = \"200ms\"\nbackoff_max = \"2s\"",
    ));
    let o = &c.agent.overlay;
    assert_eq!(
        (
            o.hold_time,
            o.import.max_routes,
            o.admission.candidate_handshakes
        ),
        (0, 10, 8)
    );
    assert_eq!(o.trust_check, std::time::Duration::from_secs(60));
    assert_eq!(o.trust.handshake_timeout, std::time::Duration::from_secs(3));
    assert_eq!(o.timers.backoff_min, std::time::Duration::from_millis(200));
    let e = problems(&overlay_with(
        "hold_time = 2\nmax_routes = 0\nmax_handshakes = 0\nbackoff_min = \"5s\"\nbackoff_max = \"1s\"",
    ));
    assert_problem(&e, "overlay.hold_time", "hold time of 2 s");
    assert_problem(&e, "overlay.max_routes", "out of range");
    assert_problem(&e, "overlay.max_handshakes", "out of range");
    assert_problem(&e, "overlay.backoff_max", "shorter than backoff_min");
    let e = problems(&MINIMAL.replace("/etc/edge/ca.pem", "ca.pem"));
    assert_problem(&e, "overlay.ca", "not an absolute path");
}

/// Writes a lab CA and a certificate for `name` into `dir`.
fn lab(dir: &Path, name: &str) {
    let ca = make_ca("edge test CA", Validity::days_from_now(2)).unwrap();
    std::fs::write(dir.join("ca.pem"), &ca.cert).unwrap();
    let node = make_node(
        &ca,
        &Identity::from_name(name).unwrap(),
        Validity::days_from_now(2),
    )
    .unwrap();
    let other = make_node(
        &ca,
        &Identity::from_name("pop-z").unwrap(),
        Validity::days_from_now(2),
    )
    .unwrap();
    Pem {
        cert: node.cert,
        key: node.key,
    }
    .write(&dir.join("node.pem"), &dir.join("node.key"), true)
    .unwrap();
    std::fs::write(dir.join("other.key"), other.key).unwrap();
}

/// MINIMAL with its trust files in `dir` (`key` names the key file).
fn with_files(dir: &Path, key: &str) -> String {
    MINIMAL
        .replace(
            "/etc/edge/ca.pem",
            &dir.join("ca.pem").display().to_string(),
        )
        .replace(
            "/etc/edge/pop-a.pem",
            &dir.join("node.pem").display().to_string(),
        )
        .replace("/etc/edge/pop-a.key", &dir.join(key).display().to_string())
}

const FILES: Checks = Checks {
    interfaces: false,
    files: true,
};

#[test]
fn trust_files_are_loaded_and_must_prove_the_node_name() {
    let dir = tempfile::tempdir().unwrap();
    lab(dir.path(), "pop-a");
    parse_with(&with_files(dir.path(), "node.key"), "t", FILES).unwrap();
    let e = parse_with(&with_files(dir.path(), "other.key"), "t", FILES).unwrap_err();
    assert_problem(&e, "overlay.key", "does not belong to the certificate");
    let e = parse_with(&with_files(dir.path(), "missing.key"), "t", FILES).unwrap_err();
    assert_problem(&e, "overlay.key", "cannot read");
    let named = with_files(dir.path(), "node.key").replace("name = \"pop-a\"", "name = \"pop-b\"");
    let e = parse_with(&named, "t", FILES).unwrap_err();
    assert_problem(&e, "node.name", "proves edge://pop-a, not edge://pop-b");
    // Without the files check, nothing is read.
    parse_with(&with_files(dir.path(), "missing.key"), "t", Checks::NONE).unwrap();
    let e = parse_with(MINIMAL, "t", FILES).unwrap_err();
    for key in ["overlay.ca", "overlay.cert", "overlay.key"] {
        assert_problem(&e, key, "cannot read /etc/edge/");
    }
    assert!(!minimal_with("").is_empty());
}

/// The admission limits with `[overlay.strangers]` holding `lines` and
/// `overlay` lines in `[overlay]`.
fn admission(overlay: &str, lines: &str) -> AdmissionConfig {
    ok(&overlay_with(&format!(
        "{overlay}\n[overlay.strangers]\n{lines}\n"
    )))
    .agent
    .overlay
    .admission
}

/// The problems with `[overlay.strangers]` holding `lines`.
fn strangers_problems(lines: &str) -> ConfigErrors {
    problems(&overlay_with(&format!("[overlay.strangers]\n{lines}\n")))
}

#[test]
fn strangers_get_the_defaults_and_candidates_max_handshakes() {
    let d = AdmissionConfig::default();
    assert_eq!(ok(MINIMAL).agent.overlay.admission, d);
    assert_eq!(admission("", ""), d);
    assert_eq!(d.candidate_handshakes, 64);
    // The candidates' budget is `[overlay] max_handshakes`.
    let a = admission("max_handshakes = 100", "");
    assert_eq!(
        a,
        AdmissionConfig {
            candidate_handshakes: 100,
            ..d
        }
    );
}

#[test]
fn every_strangers_key_maps() {
    let a = admission(
        "max_handshakes = 32",
        "handshakes = 16\nper_source = 4\nrate = 50\nburst = 80\nfirst_flight = \"500ms\"\n\
         timeout = \"5s\"\nipv4_prefix = 24\nipv6_prefix = 48",
    );
    assert_eq!(
        a,
        AdmissionConfig {
            candidate_handshakes: 32,
            stranger_handshakes: 16,
            per_source: 4,
            rate: 50,
            burst: 80,
            first_flight: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
            ipv4_prefix: 24,
            ipv6_prefix: 48,
        }
    );
    // The extremes are accepted.
    let a = admission(
        "",
        "handshakes = 1024\nper_source = 1024\nrate = 100000\nburst = 1\n\
         first_flight = \"10s\"\ntimeout = \"60s\"\nipv4_prefix = 8\nipv6_prefix = 16",
    );
    assert_eq!((a.stranger_handshakes, a.per_source), (1024, 1024));
    assert_eq!((a.rate, a.burst), (100_000, 1));
    assert_eq!(
        (a.first_flight, a.timeout),
        (Duration::from_secs(10), Duration::from_secs(60))
    );
    assert_eq!((a.ipv4_prefix, a.ipv6_prefix), (8, 16));
    let a = admission(
        "",
        "handshakes = 1\nper_source = 1\nrate = 1\nburst = 100000\n\
         first_flight = \"1ms\"\ntimeout = \"1ms\"\nipv4_prefix = 32\nipv6_prefix = 128",
    );
    assert_eq!((a.stranger_handshakes, a.per_source), (1, 1));
    assert_eq!((a.rate, a.burst), (1, 100_000));
    assert_eq!(a.first_flight, a.timeout);
    assert_eq!((a.ipv4_prefix, a.ipv6_prefix), (32, 128));
}

#[test]
fn the_strangers_burst_follows_a_given_rate() {
    assert_eq!(admission("", "rate = 7").burst, 7);
    assert_eq!(admission("", "rate = 7\nburst = 9").burst, 9);
    let a = admission("", "burst = 9");
    assert_eq!((a.rate, a.burst), (20, 9));
}

#[test]
fn each_out_of_range_strangers_value_is_reported_with_its_key() {
    for (line, key, what) in [
        ("handshakes = 0", "handshakes", "out of range"),
        ("handshakes = 1025", "handshakes", "out of range"),
        ("per_source = 0", "per_source", "out of range"),
        ("per_source = 1025", "per_source", "out of range"),
        ("rate = 0", "rate", "out of range"),
        ("rate = 100001", "rate", "out of range"),
        ("burst = 0", "burst", "out of range"),
        ("burst = 100001", "burst", "out of range"),
        ("first_flight = \"0s\"", "first_flight", "longer than zero"),
        ("first_flight = \"10001ms\"", "first_flight", "at most 10s"),
        ("first_flight = \"soon\"", "first_flight", "not a duration"),
        ("timeout = \"0s\"", "timeout", "longer than zero"),
        ("timeout = \"61s\"", "timeout", "at most 1m"),
        ("ipv4_prefix = 7", "ipv4_prefix", "out of range"),
        ("ipv4_prefix = 33", "ipv4_prefix", "out of range"),
        ("ipv6_prefix = 15", "ipv6_prefix", "out of range"),
        ("ipv6_prefix = 129", "ipv6_prefix", "out of range"),
    ] {
        let e = strangers_problems(line);
        assert_problem(&e, &format!("overlay.strangers.{key}"), what);
        assert_eq!(e.problems.len(), 1, "{line}: {e}");
    }
    let e = strangers_problems("rate = 0");
    assert_eq!(
        e.problems[0].hint.as_deref(),
        Some("give a number from 1 to 100000, or leave it out for the default, 20")
    );
}

#[test]
fn per_source_is_at_most_handshakes_and_timeout_at_least_first_flight() {
    let e = strangers_problems("handshakes = 4\nper_source = 5");
    assert_problem(
        &e,
        "overlay.strangers.per_source",
        "5 is more than the 4 handshakes all strangers together may have",
    );
    assert_eq!(e.problems.len(), 1, "{e}");
    // Against the default budget (8) too.
    let e = strangers_problems("per_source = 9");
    assert_problem(&e, "overlay.strangers.per_source", "more than the 8");
    let e = strangers_problems("first_flight = \"2s\"\ntimeout = \"1s\"");
    assert_problem(
        &e,
        "overlay.strangers.timeout",
        "1s is shorter than first_flight (2s)",
    );
    assert_eq!(e.problems.len(), 1, "{e}");
    // Against the default timeout (3s): said to be the default.
    let e = strangers_problems("first_flight = \"5s\"");
    assert_problem(
        &e,
        "overlay.strangers.timeout",
        "3s (the default) is shorter than first_flight (5s)",
    );
    // Equal is fine.
    let a = admission("", "handshakes = 4\nper_source = 4\nfirst_flight = \"3s\"");
    assert_eq!((a.per_source, a.first_flight), (4, a.timeout));
}

#[test]
fn unknown_strangers_keys_are_reported() {
    let e = strangers_problems("per_sauce = 2\ncandidate_handshakes = 10");
    assert_problem(&e, "overlay.strangers.per_sauce", "unknown key `per_sauce`");
    let hint = |key: &str| {
        e.problems
            .iter()
            .find(|p| p.key == key)
            .and_then(|p| p.hint.clone())
            .unwrap()
    };
    assert_eq!(
        hint("overlay.strangers.per_sauce"),
        "did you mean `per_source`?"
    );
    // The candidates' budget is `[overlay] max_handshakes`, not a key here.
    assert_problem(
        &e,
        "overlay.strangers.candidate_handshakes",
        "unknown key `candidate_handshakes`",
    );
    assert!(
        hint("overlay.strangers.candidate_handshakes").contains("first_flight"),
        "{e}"
    );
    let e = strangers_problems("rate = \"20\"");
    assert_problem(&e, "overlay.strangers.rate", "");
}
