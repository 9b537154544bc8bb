//! The config file as the daemon reads it: the shipped example
//! (`docs/edge.example.toml`) is valid, and each broken config in
//! `tests/configs/` (one per case) is refused with a problem that names
//! the key and says what is wrong.
//!
//! Each broken config says what it expects in its header comments:
//!
//! ```toml
//! # checks: interfaces          (optional: files, interfaces, or both)
//! # expect: KEY => SUBSTRING    (one line per problem; KEY empty for syntax)
//! ```
//!
//! A config with one case must give exactly the problems it expects, so
//! that each case shows one problem and nothing else;
//! `several_problems.toml` must give at least all of its.

use std::path::{Path, PathBuf};

use edge_agent::config::{Checks, ConfigErrors, DaemonConfig, load, load_with, parse_with};

fn path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// What a broken config's header asks for.
struct Expect {
    checks: Checks,
    problems: Vec<(String, String)>,
}

fn expectations(text: &str) -> Expect {
    let mut checks = Checks::NONE;
    let mut problems = Vec::new();
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(list) = line.strip_prefix("# checks:") {
            for check in list.split(',').map(str::trim) {
                match check {
                    "interfaces" => checks.interfaces = true,
                    "files" => checks.files = true,
                    other => panic!("unknown check `{other}`"),
                }
            }
        } else if let Some(rest) = line.strip_prefix("# expect:") {
            let (key, what) = rest.split_once("=>").expect("# expect: KEY => SUBSTRING");
            problems.push((key.trim().to_owned(), what.trim().to_owned()));
        }
    }
    assert!(!problems.is_empty(), "no `# expect:` line");
    Expect { checks, problems }
}

/// Loads `tests/configs/<name>.toml`, which must fail as its header says.
fn broken(name: &str) -> ConfigErrors {
    let file = path(&format!("tests/configs/{name}.toml"));
    let text = std::fs::read_to_string(&file).unwrap();
    let expect = expectations(&text);
    let errors = match load_with(&file, expect.checks) {
        Ok(_) => panic!("{name}: accepted"),
        Err(e) => e,
    };
    assert_eq!(errors.origin, file.display().to_string());
    for (key, what) in &expect.problems {
        let found = errors
            .problems
            .iter()
            .any(|p| p.key == *key && p.message.contains(what.as_str()) && p.hint.is_some());
        assert!(
            found,
            "{name}: no problem at `{key}` saying `{what}` in:\n{errors}"
        );
        // And the one-line-per-problem rendering shows both.
        let shown = errors.to_string();
        assert!(
            shown
                .lines()
                .any(|l| l.contains(key.as_str()) && l.contains(what.as_str())),
            "{name}: `{key}` / `{what}` not shown together in:\n{shown}"
        );
    }
    if name != "several_problems" {
        assert_eq!(
            errors.problems.len(),
            expect.problems.len(),
            "{name}: other problems than the expected ones:\n{errors}"
        );
    }
    errors
}

#[test]
fn the_example_is_valid() {
    let example = path("../docs/edge.example.toml");
    let config: DaemonConfig = load_with(&example, Checks::NONE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.agent.internet, "eth0");
    assert_eq!(config.agent.control.services.len(), 2);
    assert_eq!(config.agent.upstream.len(), 2);
    assert_eq!(config.agent.overlay.static_peers.len(), 2);
    let dns = config.agent.dns.as_ref().expect("the example has [dns]");
    assert_eq!(dns.listen.len(), 2, "{:?}", dns.listen);
    assert_eq!(dns.zones.zones()[0].serial(), 2026112201);
    assert_eq!(dns.settings.nsid.as_deref(), Some(&b"pop-fra1"[..]));
    // It names files under /etc/edge that this host does not have.
    if !Path::new("/etc/edge/ca.pem").exists() {
        let e = load(&example).unwrap_err();
        assert!(e.has("overlay.ca"), "{e}");
    }
}

#[test]
fn every_broken_config_has_a_test() {
    let mut files: Vec<String> = std::fs::read_dir(path("tests/configs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let tested = [
        "anycast_host_bits",
        "asn_out_of_range",
        "bad_allow_identity",
        "bad_probe_url",
        "bfd_settings",
        "dns_service_ports",
        "dns_zones",
        "duplicate_upstream",
        "duplicate_vip",
        "hold_time",
        "identity_outside_ranges",
        "listen_not_underlay",
        "md5_key_too_long",
        "service_id_collision",
        "several_problems",
        "syntax_error",
        "timeout_below_slow_threshold",
        "too_many_anycast_prefixes",
        "unknown_interface",
        "unknown_key",
        "unknown_required_service",
        "unreadable_files",
        "vip_outside_anycast",
    ];
    let expected: Vec<String> = tested.iter().map(|n| format!("{n}.toml")).collect();
    assert_eq!(files, expected);
}

#[test]
fn syntax_error() {
    broken("syntax_error");
}

#[test]
fn unknown_key() {
    let e = broken("unknown_key");
    let hints: Vec<_> = e
        .problems
        .iter()
        .filter_map(|p| p.hint.as_deref())
        .collect();
    assert!(hints.contains(&"did you mean `vips`?"), "{e}");
    assert!(hints.contains(&"did you mean `table`?"), "{e}");
}

#[test]
fn dns_service_ports() {
    broken("dns_service_ports");
}

#[test]
fn dns_zones() {
    broken("dns_zones");
}

#[test]
fn duplicate_vip() {
    broken("duplicate_vip");
}

#[test]
fn vip_outside_anycast() {
    broken("vip_outside_anycast");
}

#[test]
fn anycast_host_bits() {
    broken("anycast_host_bits");
}

#[test]
fn unknown_interface() {
    broken("unknown_interface");
}

#[test]
fn unknown_interface_is_not_checked_when_told_not_to() {
    let file = path("tests/configs/unknown_interface.toml");
    load_with(&file, Checks::NONE).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn unreadable_files() {
    broken("unreadable_files");
}

#[test]
fn duplicate_upstream() {
    broken("duplicate_upstream");
}

#[test]
fn asn_out_of_range() {
    broken("asn_out_of_range");
}

#[test]
fn hold_time() {
    broken("hold_time");
}

#[test]
fn identity_outside_ranges() {
    broken("identity_outside_ranges");
}

#[test]
fn unknown_required_service() {
    broken("unknown_required_service");
}

#[test]
fn timeout_below_slow_threshold() {
    broken("timeout_below_slow_threshold");
}

#[test]
fn bad_allow_identity() {
    broken("bad_allow_identity");
}

#[test]
fn listen_not_underlay() {
    broken("listen_not_underlay");
}

#[test]
fn service_id_collision() {
    broken("service_id_collision");
}

#[test]
fn bad_probe_url() {
    broken("bad_probe_url");
}

#[test]
fn bfd_settings() {
    broken("bfd_settings");
}

#[test]
fn md5_key_too_long() {
    broken("md5_key_too_long");
}

#[test]
fn too_many_anycast_prefixes() {
    broken("too_many_anycast_prefixes");
}

#[test]
fn several_problems_are_all_reported() {
    let e = broken("several_problems");
    assert!(e.problems.len() >= 15, "{e}");
    assert_eq!(e.to_string().lines().count(), e.problems.len());
}

#[test]
fn more_services_than_the_data_plane_holds() {
    // 65 services do not make a readable file: built here instead.
    let mut text = std::fs::read_to_string(path("tests/configs/duplicate_upstream.toml"))
        .unwrap()
        .split("[[upstream]]")
        .next()
        .unwrap()
        .to_owned();
    for i in 1..=64 {
        text.push_str(&format!(
            "\n[[services]]\nname = \"s{i}\"\nvips = [\"203.0.113.{n}\"]\nports = [\"tcp/80\"]\n\
             [[services.probes]]\nkind = \"tcp\"\naddress = \"203.0.113.{n}:80\"\n",
            n = 100 + i
        ));
    }
    let e = parse_with(&text, "many.toml", Checks::NONE).unwrap_err();
    assert!(
        e.problems.iter().any(|p| p.key == "services"
            && p.message
                .contains("65 services: the data plane holds at most 64")),
        "{e}"
    );
}
