//! `[[upstream]]`.

use crate::{
    bgp::message::Family,
    config::{
        Checks, parse_with,
        tests::{MINIMAL, assert_problem, minimal_with, ok, problems},
    },
};

const ISP: &str = "[[upstream]]\naddress = \"198.51.100.1\"\nasn = 64496\n";

#[test]
fn defaults_follow_the_node() {
    let c = ok(&minimal_with(ISP));
    let n = &c.agent.upstream[0];
    assert_eq!(n.peer, "198.51.100.1:179".parse().unwrap());
    assert_eq!(n.local, None);
    assert_eq!(n.md5_key, None);
    assert_eq!(n.session.hold_time, 90);
    assert_eq!(n.session.connect_retry, std::time::Duration::from_secs(5));
    assert_eq!(
        n.session.families,
        [Family::IPV4_UNICAST],
        "the anycast families"
    );
    assert_eq!(n.session.graceful_restart, None);
    assert_eq!(
        n.origination.next_hop_v4,
        Some("198.51.100.2".parse().unwrap())
    );
    assert_eq!(n.origination.next_hop_v6, None);
}

#[test]
fn neighbour_problems_name_their_keys() {
    let e = problems(&minimal_with(&format!(
        "{ISP}\
         [[upstream]]\naddress = \"198.51.100.1\"\nasn = 23456\nhold_time = 2\nmd5_key = \"{}\"\n\
         [[upstream]]\naddress = \"198.51.100.5\"\nasn = 4294967296\nhold_time = 1\nfamilies = [\"ipv6\", \"ipx\"]\ngraceful_restart = \"2h\"\nconnect_retry = \"0s\"\n\
         [[upstream]]\naddress = \"198.51.100.6\"\nasn = 64500\nlocal_address = \"2001:db8:ff::2\"\nmd5_key = \"k\"\nmd5_key_file = \"/etc/k\"\n\
         [[upstream]]\nasn = 0\n",
        "k".repeat(81)
    )));
    assert_problem(
        &e,
        "upstream[1].address",
        "198.51.100.1 is also the address of upstream[0]",
    );
    assert_problem(&e, "upstream[1].asn", "AS_TRANS");
    assert_problem(
        &e,
        "upstream[1].hold_time",
        "hold time of 2 s is not allowed",
    );
    assert_problem(
        &e,
        "upstream[1].md5_key",
        "81 bytes long; the kernel accepts at most 80",
    );
    assert_problem(&e, "upstream[2].asn", "not an ASN");
    assert_problem(&e, "upstream[2].hold_time", "hold time of 1 s");
    assert_problem(&e, "upstream[2].families", "no IPv6 underlay address");
    assert_problem(
        &e,
        "upstream[2].families[1]",
        "unknown address family `ipx`",
    );
    assert_problem(
        &e,
        "upstream[2].graceful_restart",
        "not a usable restart time",
    );
    assert_problem(&e, "upstream[2].connect_retry", "longer than zero");
    assert_problem(&e, "upstream[3].asn", "our own ASN");
    assert_problem(&e, "upstream[3].local_address", "different families");
    assert_problem(&e, "upstream[3].md5_key", "both md5_key and md5_key_file");
    assert_problem(&e, "upstream[4].address", "missing");
    assert_problem(&e, "upstream[4].asn", "AS 0 is reserved");
}

#[test]
fn md5_key_files_are_read_with_the_files_check() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("isp.md5");
    std::fs::write(&key, "s3cret\n").unwrap();
    let long = dir.path().join("long.md5");
    std::fs::write(&long, "x".repeat(100)).unwrap();
    let checks = Checks {
        interfaces: false,
        files: true,
    };
    // Only the upstream's files: the overlay's are checked in their tests.
    let run = |path: &std::path::Path| {
        parse_with(
            &minimal_with(&format!("{ISP}md5_key_file = \"{}\"\n", path.display())),
            "t",
            checks,
        )
    };
    let e = run(&long).unwrap_err();
    assert_problem(&e, "upstream[0].md5_key_file", "100 bytes long");
    let e = run(&dir.path().join("missing")).unwrap_err();
    assert_problem(&e, "upstream[0].md5_key_file", "cannot read");
    let e = run(&key).unwrap_err();
    assert!(!e.has("upstream[0].md5_key_file"), "{e}");
    let c = parse_with(
        &minimal_with(&format!("{ISP}md5_key_file = \"{}\"\n", key.display())),
        "t",
        Checks::NONE,
    )
    .unwrap();
    assert_eq!(
        c.agent.upstream[0].md5_key, None,
        "not read without the check"
    );
    assert!(MINIMAL.contains("[overlay]"));
}

#[test]
fn a_local_address_is_the_next_hop_of_its_family() {
    let c = ok(&minimal_with(&format!(
        "{ISP}local_address = \"198.51.100.7\"\npassive = true\nport = 1179\nmax_prefixes = 10\ngraceful_restart = \"90s\"\nhold_time = 0\n"
    )));
    let n = &c.agent.upstream[0];
    assert_eq!(
        n.origination.next_hop_v4,
        Some("198.51.100.7".parse().unwrap())
    );
    assert_eq!(n.peer.port(), 1179);
    assert!(n.session.passive);
    assert_eq!(n.session.max_prefixes, Some(10));
    assert_eq!(n.session.graceful_restart.unwrap().restart_time, 90);
    assert_eq!(n.session.hold_time, 0);
}

#[test]
fn default_families_leave_out_those_without_a_next_hop() {
    let text = minimal_with(ISP).replace(
        "anycast = [\"203.0.113.0/24\"]",
        "anycast = [\"203.0.113.0/24\", \"2001:db8:ac::/48\"]",
    );
    let c = ok(&text);
    assert_eq!(c.agent.upstream[0].session.families, [Family::IPV4_UNICAST]);
    let e = problems(&format!("{text}families = [\"ipv4\", \"ipv6\"]\n"));
    assert_problem(&e, "upstream[0].families", "no IPv6 underlay address");
    let c = ok(&text.replace(
        "underlay = [\"198.51.100.2\"]",
        "underlay = [\"198.51.100.2\", \"2001:db8:ff::2\"]",
    ));
    assert_eq!(
        c.agent.upstream[0].session.families,
        [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
}

#[test]
fn a_passive_neighbour_needs_an_address_of_its_family_to_listen_on() {
    // The node has only an IPv4 underlay address: nowhere to accept an
    // IPv6 neighbour's connection.
    let v6 = "[[upstream]]\naddress = \"2001:db8:ff::1\"\nasn = 64496\nfamilies = [\"ipv4\"]\n";
    let e = problems(&minimal_with(&format!("{v6}passive = true\n")));
    assert_problem(
        &e,
        "upstream[0].passive",
        "no address of 2001:db8:ff::1's family to listen on",
    );
    // With our address of that family, it listens there.
    let c = ok(&minimal_with(&format!(
        "{v6}passive = true\nlocal_address = \"2001:db8:ff::2\"\n"
    )));
    assert_eq!(
        c.agent.upstream[0].listen_addr(),
        Some("[2001:db8:ff::2]:179".parse().unwrap())
    );
    // An IPv4 one listens on the underlay address, at the session's port.
    let c = ok(&minimal_with(&format!(
        "{ISP}passive = true\nport = 1179\n"
    )));
    assert_eq!(
        c.agent.upstream[0].listen_addr(),
        Some("198.51.100.2:1179".parse().unwrap())
    );
}
