//! `[doors]`: the defaults, every key, the burst that follows the rate,
//! each range and unknown keys.

use super::DoorsConfig;
use crate::config::tests::{MINIMAL, assert_problem, minimal_with, ok, problems};

/// The doors of MINIMAL with `[doors]` holding `lines`.
fn doors(lines: &str) -> DoorsConfig {
    ok(&minimal_with(&format!("[doors]\n{lines}\n"))).doors
}

#[test]
fn without_doors_the_defaults_filter_with_20_syns_a_second() {
    let d = DoorsConfig::default();
    assert_eq!(
        d,
        DoorsConfig {
            enabled: true,
            syn_rate: 20,
            syn_burst: 40,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
        }
    );
    assert_eq!(ok(MINIMAL).doors, d);
    assert_eq!(doors(""), d);
}

#[test]
fn every_key_maps() {
    assert_eq!(
        doors("enabled = false\nsyn_rate = 5\nsyn_burst = 7\nipv4_prefix = 24\nipv6_prefix = 48"),
        DoorsConfig {
            enabled: false,
            syn_rate: 5,
            syn_burst: 7,
            ipv4_prefix: 24,
            ipv6_prefix: 48,
        }
    );
    // The extremes are accepted.
    let d = doors("syn_rate = 1\nsyn_burst = 1000000\nipv4_prefix = 8\nipv6_prefix = 16");
    assert_eq!((d.syn_rate, d.syn_burst), (1, 1_000_000));
    assert_eq!((d.ipv4_prefix, d.ipv6_prefix), (8, 16));
    let d = doors("syn_rate = 1000000\nsyn_burst = 1\nipv4_prefix = 32\nipv6_prefix = 128");
    assert_eq!((d.syn_rate, d.syn_burst), (1_000_000, 1));
    assert_eq!((d.ipv4_prefix, d.ipv6_prefix), (32, 128));
}

#[test]
fn the_burst_is_twice_a_given_rate() {
    assert_eq!(doors("syn_rate = 100").syn_burst, 200);
    assert_eq!(doors("syn_rate = 100\nsyn_burst = 150").syn_burst, 150);
    assert_eq!(doors("syn_burst = 3").syn_rate, 20);
    // Never past what syn_burst itself takes.
    assert_eq!(doors("syn_rate = 900000").syn_burst, 1_000_000);
}

#[test]
fn each_out_of_range_value_is_reported_with_its_key() {
    for (line, key, hint) in [
        ("syn_rate = 0", "doors.syn_rate", "from 1 to 1000000"),
        ("syn_rate = 1000001", "doors.syn_rate", "from 1 to 1000000"),
        ("syn_burst = 0", "doors.syn_burst", "from 1 to 1000000"),
        (
            "syn_burst = 1000001",
            "doors.syn_burst",
            "from 1 to 1000000",
        ),
        ("ipv4_prefix = 7", "doors.ipv4_prefix", "from 8 to 32"),
        ("ipv4_prefix = 33", "doors.ipv4_prefix", "from 8 to 32"),
        ("ipv6_prefix = 15", "doors.ipv6_prefix", "from 16 to 128"),
        ("ipv6_prefix = 129", "doors.ipv6_prefix", "from 16 to 128"),
    ] {
        let e = problems(&minimal_with(&format!("[doors]\n{line}\n")));
        assert_problem(&e, key, "is out of range");
        let problem = e.problems.iter().find(|p| p.key == key).unwrap();
        let shown = problem.hint.as_deref().unwrap();
        assert!(shown.contains(hint), "{line}: {shown}");
        assert!(shown.contains("leave it out for the default"), "{shown}");
        assert_eq!(e.problems.len(), 1, "{line}: {e}");
    }
    // Every problem at once.
    let e = problems(&minimal_with(
        "[doors]\nsyn_rate = -1\nsyn_burst = 0\nipv4_prefix = 0\nipv6_prefix = 0\n",
    ));
    for key in [
        "doors.syn_rate",
        "doors.syn_burst",
        "doors.ipv4_prefix",
        "doors.ipv6_prefix",
    ] {
        assert_problem(&e, key, "is out of range");
    }
}

#[test]
fn unknown_keys_and_wrong_types_are_reported() {
    let e = problems(&minimal_with("[doors]\nsyn_rte = 5\nports = [179]\n"));
    assert_problem(&e, "doors.syn_rte", "unknown key `syn_rte`");
    let hint = |key: &str| {
        e.problems
            .iter()
            .find(|p| p.key == key)
            .and_then(|p| p.hint.clone())
            .unwrap()
    };
    assert_eq!(hint("doors.syn_rte"), "did you mean `syn_rate`?");
    assert_problem(&e, "doors.ports", "unknown key `ports`");
    assert!(hint("doors.ports").contains("syn_burst"), "{e}");
    let e = problems(&minimal_with("[doors]\nenabled = \"yes\"\n"));
    assert_problem(&e, "doors.enabled", "");
}
