//! `[overlay]`, and the trust files checked with a lab CA.

use std::path::Path;

use crate::{
    config::{
        Checks, parse_with,
        tests::{MINIMAL, assert_problem, minimal_replacing, minimal_with, ok, problems},
    },
    overlay::{
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
        (o.hold_time, o.import.max_routes, o.max_handshakes),
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
