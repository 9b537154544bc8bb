//! Syntax errors, type errors and unknown keys, with their places.

use super::*;
use crate::config::{
    Checks, parse_with,
    tests::{MINIMAL, assert_problem, minimal_with, problems},
};

#[test]
fn every_syntax_error_has_its_line_and_column() {
    let text = "[node]\nname = \"pop-a\nasn = 64500\n";
    let e = problems(text);
    assert!(!e.problems.is_empty());
    let p = &e.problems[0];
    assert_eq!(p.key, "");
    assert!(p.message.starts_with("line 2, column "), "{}", p.message);
    assert!(p.hint.is_some());
}

#[test]
fn a_value_of_the_wrong_type_names_its_key_and_line() {
    let text = MINIMAL.replace("asn = 64500", "asn = \"64500\"");
    let e = problems(&text);
    assert_eq!(e.problems.len(), 1, "{e}");
    let p = &e.problems[0];
    assert_eq!(p.key, "node.asn");
    assert!(p.message.starts_with("line 8, column 7: "), "{}", p.message);
    assert!(p.hint.as_deref().unwrap().contains("without quotes"));
    let text = MINIMAL.replace("vips = [\"203.0.113.10\"]", "vips = \"203.0.113.10\"");
    let e = problems(&text);
    assert_eq!(e.problems[0].key, "services[0].vips", "{e}");
}

#[test]
fn every_unknown_key_is_reported_with_its_line_and_a_suggestion() {
    let text = minimal_with(
        "[netlink]\ninterfce = \"edge1\"\n[daemon]\nlog_levle = \"debug\"\nbogus = 1\n",
    )
    .replace("ports = [\"tcp/80\"]", "ports = [\"tcp/80\"]\nvip = \"x\"")
    .replace("kind = \"tcp\"", "kind = \"tcp\"\ntimeout = \"1s\"");
    let e = problems(&text);
    assert_problem(&e, "netlink.interfce", "unknown key `interfce`");
    assert_problem(&e, "daemon.log_levle", "unknown key");
    assert_problem(&e, "daemon.bogus", "unknown key");
    assert_problem(&e, "services.web.vip", "unknown key `vip` (line ");
    assert_problem(&e, "services.web.probes[0].timeout", "unknown key");
    let hint = |key: &str| {
        e.problems
            .iter()
            .find(|p| p.key == key)
            .and_then(|p| p.hint.clone())
            .unwrap()
    };
    assert_eq!(hint("netlink.interfce"), "did you mean `interface`?");
    assert_eq!(hint("daemon.log_levle"), "did you mean `log_level`?");
    assert_eq!(hint("services.web.vip"), "did you mean `vips`?");
    assert!(
        hint("daemon.bogus").contains("api_socket"),
        "{}",
        hint("daemon.bogus")
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("interfce"))
        .unwrap()
        + 1;
    assert!(
        e.problems
            .iter()
            .any(|p| p.message == format!("unknown key `interfce` (line {line})")),
        "{e}"
    );
}

#[test]
fn an_unknown_table_is_an_unknown_key() {
    let e = problems(&minimal_with("[nodes]\nname = \"x\"\n"));
    assert_problem(&e, "nodes", "unknown key `nodes`");
    assert_eq!(
        e.problems
            .iter()
            .find(|p| p.key == "nodes")
            .unwrap()
            .hint
            .as_deref(),
        Some("did you mean `node`?")
    );
}

#[test]
fn unknown_keys_do_not_hide_other_problems() {
    let e = problems(&minimal_with(
        "[policy]\nrequired = [\"web\"]\ndrain_prepend = 99\n",
    ));
    assert_problem(&e, "policy.required", "unknown key");
    assert_problem(&e, "policy.drain_prepend", "out of range");
}

#[test]
fn services_are_keyed_by_name_when_they_can_be() {
    let raw = |names: &[Option<&str>]| -> Vec<raw::Service> {
        names
            .iter()
            .map(|n| raw::Service {
                name: n.map(str::to_owned),
                ..raw::Service::default()
            })
            .collect()
    };
    assert_eq!(
        service_keys(&raw(&[
            Some("web"),
            None,
            Some("a b"),
            Some("x"),
            Some("x")
        ])),
        [
            "services.web",
            "services[1]",
            "services[2]",
            "services[3]",
            "services[4]"
        ]
    );
}

#[test]
fn field_names_come_from_serde() {
    assert!(fields_of::<raw::Probe>().contains(&"type"));
    assert!(fields_of::<raw::File>().contains(&"upstream"));
    assert_eq!(
        closest("adress", fields_of::<raw::Upstream>()),
        Some("address")
    );
    assert_eq!(closest("zzzzzz", fields_of::<raw::Upstream>()), None);
    assert_eq!(distance("kitten", "sitting"), 3);
    let _ = parse_with(MINIMAL, "t", Checks::NONE).unwrap();
}
