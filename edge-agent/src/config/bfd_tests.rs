//! BFD: `[bfd]` defaults, `bfd` under `[[upstream]]` and `[overlay]`,
//! every check, and secret files.

use std::time::Duration;

use super::{OVERLAY_DEFAULT, UPSTREAM_DEFAULT};
use crate::{
    bfd::{SessionConfig, Timers, auth::AuthKey},
    config::{
        Checks, ConfigErrors, DaemonConfig, parse_with,
        tests::{MINIMAL, assert_problem, minimal_replacing, minimal_with, ok, problems},
    },
};

/// One neighbour; `bfd` lines can follow.
const ISP: &str = "[[upstream]]\naddress = \"198.51.100.1\"\nasn = 64496\n";

/// The line of MINIMAL's `[overlay]` that overlay keys are added after.
const OVERLAY_LINE: &str = "identity_ranges = [\"192.0.2.0/24\"]";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn timers(min_tx: u64, min_rx: u64, multiplier: u8) -> Timers {
    Timers {
        min_tx: ms(min_tx),
        min_rx: ms(min_rx),
        multiplier,
    }
}

fn key(meticulous: bool, key_id: u8, secret: &str) -> Option<AuthKey> {
    Some(AuthKey {
        meticulous,
        key_id,
        secret: secret.as_bytes().to_vec(),
    })
}

/// MINIMAL with `extra` (e.g. a `[bfd]` table) and one neighbour per
/// entry of `upstream`, each with that entry's lines.
fn with_upstream(extra: &str, upstream: &[&str]) -> String {
    let mut text = minimal_with(extra);
    for (i, lines) in upstream.iter().enumerate() {
        // Each its own address, none the node's (198.51.100.2).
        let address = format!("198.51.100.{}", [1, 3, 4, 5, 6, 7][i]);
        text.push_str(&format!(
            "\n{}{lines}\n",
            ISP.replace("198.51.100.1", &address)
        ));
    }
    text
}

/// The BFD settings of each neighbour of a config that must parse.
fn sessions(extra: &str, upstream: &[&str]) -> Vec<Option<SessionConfig>> {
    ok(&with_upstream(extra, upstream))
        .agent
        .upstream
        .into_iter()
        .map(|n| n.bfd)
        .collect()
}

/// The overlay's BFD timers with `lines` in `[overlay]`.
fn overlay(lines: &str) -> Option<Timers> {
    ok(&minimal_replacing(
        OVERLAY_LINE,
        &format!("{OVERLAY_LINE}\n{lines}"),
    ))
    .agent
    .overlay
    .bfd
}

/// The hint of the problem at `key`.
fn hint(e: &ConfigErrors, key: &str) -> String {
    e.problems
        .iter()
        .find(|p| p.key == key)
        .and_then(|p| p.hint.clone())
        .unwrap_or_else(|| panic!("no problem at `{key}` in:\n{e}"))
}

#[test]
fn the_defaults_are_100ms_100ms_3_and_bfd_alone_turns_nothing_on() {
    assert_eq!(UPSTREAM_DEFAULT, timers(100, 100, 3));
    // Neither `[bfd]` alone nor its absence makes a session.
    assert_eq!(sessions("", &[""]), [None]);
    assert_eq!(
        sessions("[bfd]\nmin_tx = \"50ms\"\n", &["", "bfd = false"]),
        [None, None]
    );
    // `bfd = true` without `[bfd]`: the built-in defaults, no key.
    assert_eq!(
        sessions("", &["bfd = true"]),
        [Some(SessionConfig {
            timers: UPSTREAM_DEFAULT,
            auth: None,
        })]
    );
    // An empty table is the same as `true`.
    assert_eq!(
        sessions("", &["bfd = {}"]),
        [Some(SessionConfig {
            timers: UPSTREAM_DEFAULT,
            auth: None,
        })]
    );
}

#[test]
fn bfd_true_takes_the_bfd_table() {
    let bfd = "[bfd]\nmin_tx = \"50ms\"\nmin_rx = \"200ms\"\nmultiplier = 5\n\
               auth = { type = \"keyed-sha1\", key_id = 7, secret = \"s3cret\" }\n";
    let s = sessions(bfd, &["bfd = true", "", "bfd = true"]);
    let expected = Some(SessionConfig {
        timers: timers(50, 200, 5),
        auth: key(false, 7, "s3cret"),
    });
    assert_eq!(s, [expected.clone(), None, expected]);
}

#[test]
fn a_table_overrides_the_defaults_field_by_field() {
    let bfd = "[bfd]\nmin_tx = \"50ms\"\nmin_rx = \"200ms\"\nmultiplier = 4\n\
               [bfd.auth]\ntype = \"keyed-sha1\"\nkey_id = 1\nsecret = \"default\"\n";
    let s = sessions(
        bfd,
        &[
            "bfd = { min_rx = \"1s\" }",
            "bfd = { multiplier = 10, auth = { type = \"meticulous-keyed-sha1\", key_id = 200, secret = \"mine\" } }",
            "[upstream.bfd]\nmin_tx = \"12.5ms\"\nmin_rx = \"60s\"\nmultiplier = 255",
        ],
    );
    assert_eq!(
        s[0],
        Some(SessionConfig {
            timers: timers(50, 1000, 4),
            auth: key(false, 1, "default"),
        }),
        "the default key is kept"
    );
    assert_eq!(
        s[1],
        Some(SessionConfig {
            timers: timers(50, 200, 10),
            auth: key(true, 200, "mine"),
        }),
        "a key given replaces the default one"
    );
    assert_eq!(
        s[2],
        Some(SessionConfig {
            timers: Timers {
                min_tx: Duration::from_micros(12_500),
                min_rx: Duration::from_secs(60),
                multiplier: 255,
            },
            auth: key(false, 1, "default"),
        })
    );
}

#[test]
fn the_overlay_runs_bfd_at_300ms_unless_told_otherwise() {
    assert_eq!(OVERLAY_DEFAULT, timers(300, 300, 3));
    assert_eq!(ok(MINIMAL).agent.overlay.bfd, Some(OVERLAY_DEFAULT));
    assert_eq!(overlay("bfd = true"), Some(OVERLAY_DEFAULT));
    assert_eq!(overlay("bfd = false"), None);
    assert_eq!(
        overlay("bfd = { min_tx = \"1s\", multiplier = 5 }"),
        Some(timers(1000, 300, 5))
    );
    assert_eq!(
        overlay("bfd = { min_rx = \"10ms\" }"),
        Some(timers(300, 10, 3))
    );
    // `[bfd]` is only for upstream sessions.
    let text = minimal_with("[bfd]\nmin_tx = \"10ms\"\n");
    assert_eq!(ok(&text).agent.overlay.bfd, Some(OVERLAY_DEFAULT));
}

#[test]
fn intervals_are_10ms_to_60s_in_whole_microseconds() {
    let e = problems(&with_upstream(
        "[bfd]\nmin_tx = \"9ms\"\nmin_rx = \"61s\"\n",
        &[
            "bfd = { min_tx = \"10.0005ms\", min_rx = \"fast\" }",
            "bfd = { min_tx = \"0s\" }",
        ],
    ));
    assert_problem(&e, "bfd.min_tx", "`9ms` is out of range for a BFD interval");
    assert!(hint(&e, "bfd.min_tx").contains("10ms to 1m"), "{e}");
    assert_problem(&e, "bfd.min_rx", "`61s` is out of range");
    assert_problem(
        &e,
        "upstream[0].bfd.min_tx",
        "not a whole number of microseconds",
    );
    assert!(hint(&e, "upstream[0].bfd.min_tx").contains("microseconds"));
    assert_problem(&e, "upstream[0].bfd.min_rx", "not a duration");
    assert_problem(&e, "upstream[1].bfd.min_tx", "out of range");
    let e = problems(&minimal_replacing(
        OVERLAY_LINE,
        &format!("{OVERLAY_LINE}\nbfd = {{ min_tx = \"5ms\", min_rx = \"2m\" }}"),
    ));
    assert_problem(&e, "overlay.bfd.min_tx", "out of range for a BFD interval");
    assert_problem(&e, "overlay.bfd.min_rx", "out of range for a BFD interval");
    // The bounds themselves are fine.
    assert_eq!(
        overlay("bfd = { min_tx = \"10ms\", min_rx = \"60s\" }"),
        Some(Timers {
            min_tx: ms(10),
            min_rx: Duration::from_secs(60),
            multiplier: 3,
        })
    );
}

#[test]
fn a_multiplier_is_1_to_255() {
    let e = problems(&with_upstream(
        "[bfd]\nmultiplier = 0\n",
        &["bfd = { multiplier = 256 }", "bfd = { multiplier = -1 }"],
    ));
    assert_problem(
        &e,
        "bfd.multiplier",
        "a detect multiplier of 0 would never detect anything",
    );
    assert!(hint(&e, "bfd.multiplier").contains("1 to 255"));
    assert_problem(&e, "upstream[0].bfd.multiplier", "256 is out of range");
    assert_problem(&e, "upstream[1].bfd.multiplier", "-1 is out of range");
    let e = problems(&minimal_replacing(
        OVERLAY_LINE,
        &format!("{OVERLAY_LINE}\nbfd = {{ multiplier = 0 }}"),
    ));
    assert_problem(&e, "overlay.bfd.multiplier", "would never detect anything");
    assert_eq!(
        sessions("", &["bfd = { multiplier = 1 }"])[0]
            .as_ref()
            .unwrap()
            .timers
            .multiplier,
        1
    );
}

#[test]
fn auth_needs_a_type_a_key_id_and_one_secret_of_1_to_20_bytes() {
    let e = problems(&with_upstream(
        "[bfd.auth]\ntype = \"md5\"\nkey_id = 256\nsecret = \"s\"\nsecret_file = \"/etc/edge/bfd.key\"\n",
        &[
            &format!(
                "bfd = {{ auth = {{ type = \"keyed-sha1\", key_id = 1, secret = \"{}\" }} }}",
                "k".repeat(25)
            ),
            "bfd = { auth = { key_id = -1, secret = \"\" } }",
            "bfd = { auth = { type = \"keyed-sha1\" } }",
            "bfd = { auth = { type = \"keyed-sha1\", key_id = 1, secret_file = \"bfd.key\" } }",
        ],
    ));
    assert_problem(&e, "bfd.auth.type", "unknown authentication type `md5`");
    assert_eq!(
        hint(&e, "bfd.auth.type"),
        "give keyed-sha1 or meticulous-keyed-sha1"
    );
    assert_problem(
        &e,
        "bfd.auth.key_id",
        "256 is out of range for a BFD key ID",
    );
    assert_problem(
        &e,
        "bfd.auth.secret",
        "both secret and secret_file are given",
    );
    assert_problem(
        &e,
        "upstream[0].bfd.auth.secret",
        "the BFD secret is 25 bytes long; Keyed SHA1 carries at most 20",
    );
    assert_problem(&e, "upstream[1].bfd.auth.type", "missing");
    assert!(hint(&e, "upstream[1].bfd.auth.type").contains("meticulous-keyed-sha1"));
    assert_problem(&e, "upstream[1].bfd.auth.key_id", "-1 is out of range");
    assert_problem(&e, "upstream[1].bfd.auth.secret", "the BFD secret is empty");
    assert_problem(&e, "upstream[2].bfd.auth.key_id", "missing");
    assert_problem(&e, "upstream[2].bfd.auth.secret", "missing");
    assert!(hint(&e, "upstream[2].bfd.auth.secret").contains("secret_file"));
    assert_problem(
        &e,
        "upstream[3].bfd.auth.secret_file",
        "not an absolute path",
    );
    // 1 and 20 bytes, key IDs 0 and 255: fine.
    let s = sessions(
        "",
        &[
            "bfd = { auth = { type = \"keyed-sha1\", key_id = 0, secret = \"x\" } }",
            &format!(
                "bfd = {{ auth = {{ type = \"meticulous-keyed-sha1\", key_id = 255, secret = \"{}\" }} }}",
                "y".repeat(20)
            ),
        ],
    );
    assert_eq!(s[0].as_ref().unwrap().auth, key(false, 0, "x"));
    assert_eq!(s[1].as_ref().unwrap().auth, key(true, 255, &"y".repeat(20)));
}

#[test]
fn the_overlay_refuses_a_key() {
    let e = problems(&minimal_replacing(
        OVERLAY_LINE,
        &format!(
            "{OVERLAY_LINE}\nbfd = {{ auth = {{ type = \"keyed-sha1\", key_id = 1, secret = \"s\" }} }}"
        ),
    ));
    assert_eq!(e.problems.len(), 1, "{e}");
    assert_problem(
        &e,
        "overlay.bfd.auth",
        "the overlay's BFD key is derived from each adjacency's TLS session, so there is nothing to configure",
    );
}

#[test]
fn secret_files_are_read_with_the_files_check_only() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("bfd.key");
    std::fs::write(&secret, "s3cret\r\n").unwrap();
    let long = dir.path().join("long.key");
    std::fs::write(&long, "x".repeat(21)).unwrap();
    let checks = Checks {
        interfaces: false,
        files: true,
    };
    let text = |path: &std::path::Path| {
        with_upstream(
            &format!(
                "[bfd.auth]\ntype = \"keyed-sha1\"\nkey_id = 3\nsecret_file = \"{}\"\n",
                path.display()
            ),
            &["bfd = true"],
        )
    };
    // With the files check, the overlay's files (not here) are refused
    // too: only the BFD keys are looked at.
    let run = |path: &std::path::Path| parse_with(&text(path), "t", checks);
    let e = run(&long).unwrap_err();
    assert_problem(
        &e,
        "bfd.auth.secret_file",
        "21 bytes long; Keyed SHA1 carries at most 20",
    );
    let e = run(&dir.path().join("missing")).unwrap_err();
    assert_problem(&e, "bfd.auth.secret_file", "cannot read");
    let e = run(&secret).unwrap_err();
    assert!(!e.has("bfd.auth.secret_file"), "{e}");
    assert!(e.has("overlay.ca"), "{e}");
    // The trailing newline is trimmed: read through the daemon's own
    // parse with the overlay's files out of the way.
    let mut config: DaemonConfig =
        parse_with(&text(&secret), "t", Checks::NONE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.agent.upstream[0].bfd.as_ref().unwrap().auth,
        None,
        "not read without the check"
    );
    let d = super::defaults(
        &crate::config::raw::Bfd {
            auth: Some(crate::config::raw::BfdAuth {
                kind: Some("keyed-sha1".into()),
                key_id: Some(3),
                secret_file: Some(secret.display().to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        checks,
        &mut crate::config::Report::default(),
    );
    assert_eq!(d.auth, Some(key(false, 3, "s3cret")));
    // A missing file is not looked for without the check.
    config = parse_with(&text(&dir.path().join("missing")), "t", Checks::NONE)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.agent.upstream[0].bfd.as_ref().unwrap().auth, None);
}

#[test]
fn unknown_keys_inside_bfd_tables_are_reported() {
    let e = problems(
        &with_upstream(
            "[bfd]\nmin_txx = \"50ms\"\n[bfd.auth]\ntype = \"keyed-sha1\"\nkey_id = 1\nsecret = \"s\"\nkeyid = 2\n",
            &[
                "bfd = { multiplyer = 3 }",
                "bfd = { auth = { type = \"keyed-sha1\", key_id = 1, secret = \"s\", secrets = \"t\" } }",
            ],
        )
        .replace(
            OVERLAY_LINE,
            &format!("{OVERLAY_LINE}\nbfd = {{ interval = \"1s\" }}"),
        ),
    );
    assert_problem(&e, "bfd.min_txx", "unknown key `min_txx` (line ");
    assert_eq!(hint(&e, "bfd.min_txx"), "did you mean `min_tx`?");
    assert_problem(&e, "bfd.auth.keyid", "unknown key");
    assert_eq!(hint(&e, "bfd.auth.keyid"), "did you mean `key_id`?");
    assert_problem(
        &e,
        "upstream[0].bfd.multiplyer",
        "unknown key `multiplyer` (line ",
    );
    assert_eq!(
        hint(&e, "upstream[0].bfd.multiplyer"),
        "did you mean `multiplier`?"
    );
    assert_problem(&e, "upstream[1].bfd.auth.secrets", "unknown key");
    assert_problem(&e, "overlay.bfd.interval", "unknown key");
    assert!(hint(&e, "overlay.bfd.interval").contains("min_tx"), "{e}");
}

#[test]
fn bfd_takes_true_false_or_a_table() {
    let e = problems(&with_upstream("", &["bfd = \"yes\""]));
    assert_eq!(e.problems.len(), 1, "{e}");
    let p = &e.problems[0];
    assert_eq!(p.key, "upstream[0].bfd", "{e}");
    assert!(
        p.message
            .contains("expected true, false or a table of BFD settings"),
        "{e}"
    );
    assert!(hint(&e, "upstream[0].bfd").contains("true, false or a table"));
}

#[test]
fn the_example_runs_bfd_to_both_upstreams_and_on_the_overlay() {
    let c = ok(crate::config::tests::EXAMPLE);
    // [bfd] spells out the defaults; its key is in a file, which is not
    // read without the files check.
    let defaults = Some(SessionConfig {
        timers: UPSTREAM_DEFAULT,
        auth: None,
    });
    for (i, up) in c.agent.upstream.iter().enumerate() {
        assert_eq!(up.bfd, defaults, "upstream[{i}] has bfd = true");
    }
    assert_eq!(c.agent.overlay.bfd, Some(OVERLAY_DEFAULT));
}
