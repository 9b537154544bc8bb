//! `[[services]]`: traffic, ids, probes and health timing.

use std::time::Duration;

use crate::{
    config::tests::{MINIMAL, assert_problem, minimal_replacing, minimal_with, ok, problems},
    health::ProbeSpec,
};

/// A second service `dns` with `body` after its name.
fn with_dns(body: &str) -> String {
    minimal_with(&format!(
        "[[services]]\nname = \"dns\"\n{body}\n[[services.probes]]\nkind = \"tcp\"\naddress = \"203.0.113.53:53\"\n"
    ))
}

#[test]
fn a_vip_belongs_to_one_service() {
    let e = problems(&with_dns("vips = [\"203.0.113.10\"]\nports = [\"tcp/80\"]"));
    assert_problem(
        &e,
        "services.dns.vips[0]",
        "203.0.113.10 is also a VIP of services.web",
    );
    let e = problems(&with_dns("vips = [\"203.0.113.10\"]\nports = [\"udp/53\"]"));
    assert_problem(&e, "services.dns.vips[0]", "also a VIP of services.web");
}

#[test]
fn vips_and_ports_are_checked() {
    let e = problems(&minimal_replacing(
        "vips = [\"203.0.113.10\"]\nports = [\"tcp/80\"]",
        "vips = [\"203.0.113.10\", \"198.51.100.10\", \"203.0.113.10\", \"x\"]\nports = [\"tcp/80\", \"tcp/80\", \"tcp\", \"udp/0\"]",
    ));
    assert_problem(
        &e,
        "services.web.vips[1]",
        "198.51.100.10 is outside the anycast prefixes (203.0.113.0/24)",
    );
    assert_problem(&e, "services.web.vips[2]", "listed twice");
    assert_problem(&e, "services.web.vips[3]", "not an IP address");
    assert_problem(&e, "services.web.ports[1]", "tcp/80 is listed twice");
    assert_problem(&e, "services.web.ports[2]", "tcp overlaps tcp/80");
    assert_problem(&e, "services.web.ports[3]", "port must be a number");
}

#[test]
fn ids_follow_the_order_unless_given_and_never_collide() {
    let c = ok(&with_dns(
        "vips = [\"203.0.113.53\"]\nports = [\"udp\"]\nid = 7",
    ));
    let ids: Vec<u32> = c.agent.control.services.iter().map(|s| s.id).collect();
    assert_eq!(ids, [0, 7]);
    assert_eq!(c.agent.control.services[1].matches[0].port, None);
    let e = problems(&with_dns(
        "vips = [\"203.0.113.53\"]\nports = [\"udp\"]\nid = 0",
    ));
    assert_problem(
        &e,
        "services.dns.id",
        "data-plane id 0 is also services.web's",
    );
    let e = problems(&with_dns(
        "vips = [\"203.0.113.53\"]\nports = [\"udp\"]\nid = 64",
    ));
    assert_problem(&e, "services.dns.id", "out of range");
}

#[test]
fn more_services_than_the_data_plane_holds() {
    let mut text = MINIMAL.to_owned();
    for i in 1..=64 {
        text.push_str(&format!(
            "[[services]]\nname = \"s{i}\"\nvips = [\"203.0.113.{}\"]\nports = [\"tcp/80\"]\n[[services.probes]]\nkind = \"tcp\"\naddress = \"203.0.113.{}:80\"\n",
            100 + i,
            100 + i
        ));
    }
    let e = problems(&text);
    assert_problem(
        &e,
        "services",
        "65 services: the data plane holds at most 64",
    );
}

#[test]
fn names_are_required_usable_and_unique() {
    let e = problems(&minimal_with(
        "[[services]]\nvips = [\"203.0.113.20\"]\nports = [\"tcp/80\"]\n[[services.probes]]\nkind = \"tcp\"\naddress = \"203.0.113.20:80\"\n\
         [[services]]\nname = \"web\"\nvips = [\"203.0.113.21\"]\nports = [\"tcp/80\"]\n[[services.probes]]\nkind = \"tcp\"\naddress = \"203.0.113.21:80\"\n\
         [[services]]\nname = \"a b\"\nvips = [\"203.0.113.22\"]\nports = [\"tcp/80\"]\n",
    ));
    assert_problem(&e, "services[1].name", "missing");
    // Two services named web: keyed by position.
    assert_problem(&e, "services[2].name", "already a service named `web`");
    assert_problem(&e, "services[3].name", "not a usable service name");
    assert_problem(&e, "services[3].probes", "no probe");
}

#[test]
fn probes_of_every_kind_map() {
    let c = ok(&minimal_with(
        "[[services.probes]]\nkind = \"http\"\nurl = \"https://203.0.113.10/h\"\nexpect_status = 204\nresolve_to = \"203.0.113.10\"\ninsecure_skip_verify = true\n\
         [[services.probes]]\nkind = \"dns\"\nserver = \"203.0.113.10:5353\"\nname = \"example.com\"\ntype = \"aaaa\"\nexpect_rcode = \"nxdomain\"\nexpect_answer = \"2001:db8::1\"\n\
         [[services.probes]]\nkind = \"exec\"\ncommand = [\"true\"]\n",
    ));
    let probes = &c.agent.health[0].probes;
    assert_eq!(probes.len(), 4);
    let ProbeSpec::Http(h) = &probes[1] else {
        panic!()
    };
    assert_eq!(h.expect_status, 204..=204);
    assert_eq!(h.resolve_to, Some("203.0.113.10".parse().unwrap()));
    assert!(h.tls.insecure_skip_verify);
    let ProbeSpec::Dns(d) = &probes[2] else {
        panic!()
    };
    assert_eq!(d.server.port(), 5353);
    assert_eq!(d.record_type, hickory_proto::rr::RecordType::AAAA);
    assert_eq!(d.expect_rcode, hickory_proto::op::ResponseCode::NXDomain);
    assert_eq!(d.expect_answer.as_deref(), Some("2001:db8::1"));
    let ProbeSpec::Exec(x) = &probes[3] else {
        panic!()
    };
    assert_eq!(x.argv, ["true"]);
}

#[test]
fn probe_problems_name_their_keys() {
    let e = problems(&minimal_with(
        "[[services.probes]]\nkind = \"http\"\nurl = \"not a url\"\n\
         [[services.probes]]\nkind = \"http\"\nurl = \"ftp://203.0.113.10/\"\nexpect_status = \"399-200\"\naddress = \"203.0.113.10:80\"\n\
         [[services.probes]]\nkind = \"dns\"\nname = \"bad..name\"\ntype = \"BOGUS\"\nexpect_rcode = \"MAYBE\"\n\
         [[services.probes]]\nkind = \"exec\"\ncommand = []\n\
         [[services.probes]]\nkind = \"icmp\"\n\
         [[services.probes]]\nkind = \"tcp\"\naddress = \"203.0.113.10\"\n\
         [[services.probes]]\nurl = \"http://x/\"\n",
    ));
    assert_problem(&e, "services.web.probes[1].url", "`not a url` is not a URL");
    assert_problem(
        &e,
        "services.web.probes[2].expect_status",
        "399-200 is not a range",
    );
    assert_problem(
        &e,
        "services.web.probes[2].address",
        "does not apply to a http probe",
    );
    assert_problem(&e, "services.web.probes[3].server", "missing");
    assert_problem(&e, "services.web.probes[3].type", "not a DNS record type");
    assert_problem(
        &e,
        "services.web.probes[3].expect_rcode",
        "not a response code",
    );
    assert_problem(
        &e,
        "services.web.probes[4].command",
        "command to run is empty",
    );
    assert_problem(
        &e,
        "services.web.probes[5].kind",
        "unknown probe kind `icmp`",
    );
    assert_problem(
        &e,
        "services.web.probes[6].address",
        "not an address and port",
    );
    assert_problem(&e, "services.web.probes[7].kind", "missing");
    let e = problems(&minimal_with(
        "[[services.probes]]\nkind = \"http\"\nurl = \"ftp://203.0.113.10/\"\n",
    ));
    assert_problem(
        &e,
        "services.web.probes[1].url",
        "not an http:// or https:// URL",
    );
}

#[test]
fn health_timing_maps_and_every_validation_problem_is_reported() {
    let c = ok(&minimal_with(
        "[services.health]\ninterval = \"5s\"\nfast_interval = \"1s\"\ntimeout = \"2s\"\nslow_threshold = \"1500ms\"\nrise = 4\nfall = 5\njitter_percent = 0\nstagger = false\ninitial = \"up\"\n",
    ));
    let h = &c.agent.health[0].config;
    assert_eq!(h.interval, Duration::from_secs(5));
    assert_eq!(h.fast_interval, Duration::from_secs(1));
    assert_eq!(h.timeout, Duration::from_secs(2));
    assert_eq!(h.slow_threshold, Duration::from_millis(1500));
    assert_eq!(
        (h.rise, h.fall, h.jitter_percent, h.stagger),
        (4, 5, 0, false)
    );
    assert_eq!(h.initial, crate::health::rise_fall::Measured::Up);
    let e = problems(&minimal_with(
        "[services.health]\ninterval = \"1s\"\nfast_interval = \"2s\"\ntimeout = \"500ms\"\nslow_threshold = \"1s\"\nrise = 0\nfall = 0\njitter_percent = 60\ninitial = \"sideways\"\n",
    ));
    assert_problem(
        &e,
        "services.web.health.fast_interval",
        "longer than the interval",
    );
    assert_problem(
        &e,
        "services.web.health.timeout",
        "shorter than the slow-response threshold",
    );
    assert_problem(&e, "services.web.health.rise", "rise must be at least 1");
    assert_problem(&e, "services.web.health.fall", "fall must be at least 1");
    assert_problem(&e, "services.web.health.jitter_percent", "60%");
    assert_problem(&e, "services.web.health.initial", "unknown state");
}

#[test]
fn probe_files_are_checked_with_the_files_check() {
    use std::os::unix::fs::PermissionsExt;

    use crate::config::{Checks, parse_with};

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("check");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = minimal_with(&format!(
        "[[services.probes]]\nkind = \"exec\"\ncommand = [\"{}\"]\n\
         [[services.probes]]\nkind = \"exec\"\ncommand = [\"{}\", \"-x\"]\n\
         [[services.probes]]\nkind = \"exec\"\ncommand = [\"{}\"]\n\
         [[services.probes]]\nkind = \"http\"\nurl = \"https://203.0.113.10/\"\nca_file = \"{}\"\n",
        script.display(),
        plain.display(),
        dir.path().join("missing").display(),
        dir.path().join("missing-ca.pem").display(),
    ));
    let files = Checks {
        interfaces: false,
        files: true,
    };
    let e = parse_with(&text, "t", files).unwrap_err();
    assert!(!e.has("services.web.probes[1].command[0]"), "{e}");
    assert_problem(
        &e,
        "services.web.probes[2].command[0]",
        "not an executable file",
    );
    assert_problem(&e, "services.web.probes[3].command[0]", "cannot use");
    assert_problem(
        &e,
        "services.web.probes[4].ca_file",
        "cannot use the CA file",
    );
    // Without the check, nothing is read, and the CA file is kept.
    let c = ok(&text);
    let ProbeSpec::Http(h) = &c.agent.health[0].probes[4] else {
        panic!()
    };
    assert_eq!(h.tls.ca_file, Some(dir.path().join("missing-ca.pem")));
}
