//! `[dns]`: listen addresses from the service, defaults, limits, zones
//! from lines and from files.

use std::time::Duration;

use crate::{
    authdns::RateLimit,
    config::{
        Checks, parse_with,
        tests::{ZONE_LINES, assert_problem, minimal_with, ok, problems, with_dns},
    },
};

#[test]
fn no_dns_section_no_dns_service() {
    assert!(ok(&minimal_with("")).agent.dns.is_none());
}

#[test]
fn defaults_listen_on_every_vip_of_the_service() {
    let c = ok(&with_dns(ZONE_LINES));
    let dns = c.agent.dns.expect("[dns]");
    let listen: Vec<String> = dns.listen.iter().map(ToString::to_string).collect();
    assert_eq!(listen, ["203.0.113.53:53", "[2001:db8:ac::53]:53"]);
    assert_eq!(dns.settings.udp_payload, 1232);
    assert_eq!(dns.settings.nsid.as_deref(), Some(&b"pop-a"[..]));
    assert_eq!(dns.rate_limit, Some(RateLimit::default()));
    assert_eq!(dns.tcp_idle, Duration::from_secs(10));
    assert_eq!(dns.tcp_max_connections, 256);
    let zone = &dns.zones.zones()[0];
    assert_eq!(
        (zone.origin().to_string(), zone.serial(), zone.len()),
        ("cdn.test.".into(), 7, 3)
    );
}

#[test]
fn every_setting_maps() {
    let c = ok(&with_dns(&format!(
        "udp_payload = 4096\nnsid = \"\"\ntcp_idle_timeout = \"3s\"\ntcp_max_connections = 9\n\
         [dns.rate_limit]\nresponses_per_second = 50\nslip = 0\nipv4_prefix = 32\nipv6_prefix = 64\nmax_prefixes = 10\n{ZONE_LINES}"
    )));
    let dns = c.agent.dns.unwrap();
    assert_eq!(dns.settings.udp_payload, 4096);
    assert_eq!(dns.settings.nsid, None);
    assert_eq!(dns.tcp_idle, Duration::from_secs(3));
    assert_eq!(dns.tcp_max_connections, 9);
    assert_eq!(
        dns.rate_limit,
        Some(RateLimit {
            responses_per_second: 50,
            burst: 50,
            slip: 0,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            max_prefixes: 10,
        })
    );
    let off = ok(&with_dns(&format!(
        "[dns.rate_limit]\nresponses_per_second = 0\n{ZONE_LINES}"
    )));
    assert_eq!(off.agent.dns.unwrap().rate_limit, None);
}

#[test]
fn the_service_must_exist_and_carry_the_port() {
    let e = problems(&with_dns(&format!("port = 5353\n{ZONE_LINES}")));
    assert_problem(&e, "dns.service", "does not carry udp/5353 to 203.0.113.53");
    assert_problem(
        &e,
        "dns.service",
        "does not carry tcp/5353 to 2001:db8:ac::53",
    );
    let e = problems(&with_dns(ZONE_LINES).replace("service = \"dns\"\n", "service = \"dsn\"\n"));
    assert_problem(&e, "dns.service", "no service is named `dsn`");
    let e = problems(&with_dns(ZONE_LINES).replace("service = \"dns\"\n", ""));
    assert_problem(&e, "dns.service", "missing");
    let e = problems(&with_dns(""));
    assert_problem(&e, "dns.zones", "missing");
    let e = problems(&with_dns(&format!(
        "nsid = \"{}\"\n{ZONE_LINES}",
        "x".repeat(65)
    )));
    assert_problem(&e, "dns.nsid", "at most 64 ASCII characters");
    // A protocol without a port carries every port.
    let any = with_dns(&format!("port = 5353\n{ZONE_LINES}")).replace(
        "ports = [\"udp/53\", \"tcp/53\"]",
        "ports = [\"udp\", \"tcp\"]",
    );
    assert_eq!(ok(&any).agent.dns.unwrap().listen[0].port(), 5353);
}

#[test]
fn zone_files_are_read_with_the_files_check_only() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("cdn.test.zone");
    std::fs::write(
        &good,
        "$TTL 60\n@ SOA ns1 hostmaster ( 9 7200 3600\n  1209600 300 )\n@ NS ns1\nwww A 203.0.113.10\n",
    )
    .unwrap();
    let bad = dir.path().join("other.test.zone");
    std::fs::write(&bad, "@ SOA ns1 hostmaster 1 2 3 4 5\nwww A 203.0.113.10\n").unwrap();
    let text = with_dns(&format!(
        "[[dns.zones]]\norigin = \"cdn.test\"\nfile = \"{}\"\n[[dns.zones]]\norigin = \"other.test\"\nfile = \"{}\"\n",
        good.display(),
        bad.display()
    ));
    let files = Checks {
        interfaces: false,
        files: true,
    };
    // The overlay's files do not exist here; the zone problems are ours.
    let e = parse_with(&text, "t", files).unwrap_err();
    assert!(!e.has("dns.zones[0]") && !e.has("dns.zones[0].file"), "{e}");
    assert_problem(&e, "dns.zones[1]", "no NS record at the apex");
    assert_problem(&e, "dns.zones[1]", &bad.display().to_string());
    // The good file alone is read and parsed.
    let good_only = with_dns(&format!(
        "[[dns.zones]]\norigin = \"cdn.test\"\nfile = \"{}\"\n",
        good.display()
    ));
    let e = parse_with(&good_only, "t", files).unwrap_err();
    assert!(e.problems.iter().all(|p| !p.key.starts_with("dns")), "{e}");
    // Without the check nothing is read: the zone is left out.
    let c = ok(&text);
    assert!(c.agent.dns.unwrap().zones.zones().is_empty());
}

#[test]
fn zones_must_not_repeat_or_nest() {
    let twice = with_dns(&format!("{ZONE_LINES}{ZONE_LINES}"));
    assert_problem(&problems(&twice), "dns.zones", "is configured twice");
    let nested = with_dns(&format!(
        "{ZONE_LINES}{}",
        ZONE_LINES.replace("origin = \"cdn.test\"", "origin = \"sub.cdn.test\"")
    ));
    assert_problem(
        &problems(&nested),
        "dns.zones",
        "nested zones are not served",
    );
}

#[test]
fn zone_records_the_answerer_cannot_serve_are_problems_not_panics() {
    // Issue 18: this line panicked `check-config` (and a SIGHUP) inside
    // hickory-proto's SVCB parser; \u0011 is the control character.
    for (line, what) in [
        ("h HTTPS 1 . alpn=\\u0011", "type HTTPS is not served"),
        ("x A 192.0.2.1 junk", "`junk` after the record's data"),
        ("@ CAA 0 a.b c", "CAA record of cdn.test."),
    ] {
        let zone = ZONE_LINES.replace("\"www A 203.0.113.10\"", &format!("\"{line}\""));
        let e = problems(&with_dns(&zone));
        assert_problem(&e, "dns.zones[0]", what);
    }
}
