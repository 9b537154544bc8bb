//! The mapping of the example config (many fields spot-checked), the
//! defaults of a minimal config, and how problems are shown.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use super::*;
use crate::{
    bgp::message::{Family, Prefix},
    control::fitness::FitnessPolicy,
    dataplane::{AttachMode, Encap, Protocol, ServiceMatch},
    health::{HealthConfig, ProbeSpec, rise_fall::Measured},
    netlink::desired::VipAddresses,
    overlay::{
        adjacency::Timers, admission::AdmissionConfig, discovery::Source, identity::Identity,
    },
};

/// The example config, as shipped.
pub(super) const EXAMPLE: &str = include_str!("../../../docs/edge.example.toml");

/// The shortest config that is complete.
pub(super) const MINIMAL: &str = r#"
[node]
name = "pop-a"
identity = ["192.0.2.1"]
internet_interface = "eth0"
underlay = ["198.51.100.2"]
anycast = ["203.0.113.0/24"]
asn = 64500

[[services]]
name = "web"
vips = ["203.0.113.10"]
ports = ["tcp/80"]
[[services.probes]]
kind = "tcp"
address = "203.0.113.10:80"

[overlay]
ca = "/etc/edge/ca.pem"
cert = "/etc/edge/pop-a.pem"
key = "/etc/edge/pop-a.key"
identity_ranges = ["192.0.2.0/24"]
"#;

/// `text` parsed without the checks that read the host.
pub(super) fn ok(text: &str) -> DaemonConfig {
    parse_with(text, "test.toml", Checks::NONE).unwrap_or_else(|e| panic!("{e}"))
}

/// The problems of `text`, without the checks that read the host.
pub(super) fn problems(text: &str) -> ConfigErrors {
    match parse_with(text, "test.toml", Checks::NONE) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts that some problem is about `key` and says `what`.
#[track_caller]
pub(super) fn assert_problem(errors: &ConfigErrors, key: &str, what: &str) {
    assert!(
        errors
            .problems
            .iter()
            .any(|p| p.key == key && p.message.contains(what) && p.hint.is_some()),
        "no problem at `{key}` saying `{what}` in:\n{errors}"
    );
}

/// MINIMAL with `extra` appended.
pub(super) fn minimal_with(extra: &str) -> String {
    format!("{MINIMAL}\n{extra}")
}

/// MINIMAL with `from` replaced by `to` (which must occur).
pub(super) fn minimal_replacing(from: &str, to: &str) -> String {
    assert!(MINIMAL.contains(from), "{from}");
    MINIMAL.replacen(from, to, 1)
}

/// MINIMAL with a `dns` service (UDP and TCP 53 on two VIPs) and `dns`
/// (the body of `[dns]` and its subtables).
pub(super) fn with_dns(dns: &str) -> String {
    let text = minimal_with(&format!(
        "[[services]]\nname = \"dns\"\nvips = [\"203.0.113.53\", \"2001:db8:ac::53\"]\nports = [\"udp/53\", \"tcp/53\"]\n\
         [[services.probes]]\nkind = \"dns\"\nserver = \"203.0.113.53\"\nname = \"www.cdn.test\"\n\
         [dns]\nservice = \"dns\"\n{dns}\n"
    ));
    text.replace(
        "anycast = [\"203.0.113.0/24\"]",
        "anycast = [\"203.0.113.0/24\", \"2001:db8:ac::/48\"]",
    )
}

/// `[[dns.zones]]` with one zone, `cdn.test`, of three records.
pub(super) const ZONE_LINES: &str = "[[dns.zones]]\norigin = \"cdn.test\"\nrecords = [\"@ SOA ns1 hostmaster 7 7200 3600 1209600 300\", \"@ NS ns1\", \"www A 203.0.113.10\"]\n";

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn prefix(s: &str) -> Prefix {
    s.parse().unwrap()
}

#[test]
fn the_example_maps_the_node_and_the_data_plane() {
    let c = ok(EXAMPLE);
    let a = &c.agent;
    assert_eq!(a.internet, "eth0");
    assert_eq!(a.attach, AttachMode::Native);
    assert_eq!(a.node.underlay_v4, Some(v4("198.51.100.2")));
    assert_eq!(a.node.underlay_v6, Some(v6("2001:db8:ff::2")));
    assert_eq!(a.node.gue_port, Some(6080));
    assert_eq!(a.node.mtu, 1500);
    assert_eq!(
        a.node.anycast,
        vec![(ip("203.0.113.0"), 24), (ip("2001:db8:ac::"), 48)]
    );
    assert_eq!(a.load.pin_dir, Some(PathBuf::from("/sys/fs/bpf/edge/eth0")));
    assert_eq!((a.load.maglev_size, a.load.flow_entries), (6421, 65536));
    assert_eq!(c.pin_dir, PathBuf::from("/sys/fs/bpf/edge/eth0"));
}

#[test]
fn the_example_maps_the_services_in_order() {
    let c = ok(EXAMPLE);
    let control = &c.agent.control;
    let ids: Vec<(&str, u32)> = control
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.id))
        .collect();
    assert_eq!(ids, [("web", 0), ("dns", 1)]);
    let web = &control.services[0];
    assert_eq!(web.matches.len(), 4, "2 VIPs × 2 ports");
    assert_eq!(
        web.matches[1],
        ServiceMatch {
            vip: ip("203.0.113.10"),
            protocol: Protocol::Tcp,
            port: Some(443),
        }
    );
    assert!(!web.drop_when_unavailable);
    let dns = &control.services[1];
    assert!(dns.drop_when_unavailable);
    assert!(dns.matches.contains(&ServiceMatch {
        vip: ip("2001:db8:ac::53"),
        protocol: Protocol::Udp,
        port: Some(53),
    }));
    assert_eq!(control.required, ["web"]);
    assert_eq!(
        control.anycast,
        [prefix("203.0.113.0/24"), prefix("2001:db8:ac::/48")]
    );
    assert_eq!(control.node_addrs, [ip("192.0.2.1"), ip("2001:db8:1d::1")]);
    assert_eq!(control.encap, Encap::IpIp);
    assert_eq!(control.vip_addresses, VipAddresses::Configured);
    assert_eq!(control.fitness, FitnessPolicy::default());
}

#[test]
fn the_example_maps_the_health_checks() {
    let c = ok(EXAMPLE);
    let health = &c.agent.health;
    assert_eq!(health.len(), 2);
    assert_eq!(health[0].name, "web");
    assert_eq!(health[0].config, HealthConfig::default());
    let ProbeSpec::Http(http) = &health[0].probes[0] else {
        panic!("{:?}", health[0].probes[0]);
    };
    assert_eq!(http.url, "http://203.0.113.10/healthz");
    assert_eq!(http.expect_status, 200..=399);
    assert_eq!(http.body_contains.as_deref(), Some("ok"));
    assert_eq!(http.host.as_deref(), Some("www.example.com"));
    let ProbeSpec::Tcp(tcp) = &health[0].probes[1] else {
        panic!("{:?}", health[0].probes[1]);
    };
    assert_eq!(
        tcp.addr,
        "[2001:db8:ac::10]:443".parse::<SocketAddr>().unwrap()
    );
    let dns = &health[1];
    assert_eq!(
        (
            dns.config.interval,
            dns.config.timeout,
            dns.config.slow_threshold
        ),
        (
            Duration::from_secs(1),
            Duration::from_millis(500),
            Duration::from_millis(300)
        )
    );
    assert_eq!(dns.config.rise, 2, "defaults for the rest");
    let ProbeSpec::Dns(probe) = &dns.probes[0] else {
        panic!("{:?}", dns.probes[0]);
    };
    assert_eq!(
        probe.server,
        "203.0.113.53:53".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(probe.name, "www.cdn.example");
    let ProbeSpec::Exec(exec) = &dns.probes[1] else {
        panic!("{:?}", dns.probes[1]);
    };
    assert_eq!(exec.argv, ["/usr/local/bin/check-dns", "--quick"]);
}

#[test]
fn the_example_maps_the_upstream_sessions() {
    let c = ok(EXAMPLE);
    let up = &c.agent.upstream;
    assert_eq!(up.len(), 2);
    let isp1 = &up[0];
    assert_eq!(isp1.peer, "198.51.100.1:179".parse::<SocketAddr>().unwrap());
    assert_eq!(isp1.local, Some(ip("198.51.100.2")));
    assert_eq!(
        isp1.md5_key, None,
        "md5_key_file is not read without the files check"
    );
    let s = &isp1.session;
    assert_eq!((s.local_as, s.peer_as), (64500, 64496));
    assert_eq!(s.bgp_id, v4("192.0.2.1"));
    assert_eq!(s.hold_time, 90);
    assert_eq!(s.connect_retry, Duration::from_secs(5));
    assert!(!s.passive);
    assert_eq!(s.families, [Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
    let gr = s.graceful_restart.unwrap();
    assert_eq!((gr.restart_time, gr.restarted), (120, false));
    assert_eq!(s.max_prefixes, None);
    let o = &isp1.origination;
    assert_eq!((o.local_as, o.ebgp), (64500, true));
    assert_eq!(o.next_hop_v4, Some(v4("198.51.100.2")));
    assert_eq!(o.next_hop_v6, Some((v6("2001:db8:ff::2"), None)));
    let isp2 = &up[1];
    assert_eq!(
        isp2.peer,
        "[2001:db8:ff::1]:179".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(isp2.md5_key.as_deref(), Some(&b"not-a-real-key"[..]));
    assert_eq!(isp2.session.families, [Family::IPV6_UNICAST]);
    assert_eq!(isp2.session.graceful_restart, None);
}

#[test]
fn the_example_maps_the_overlay() {
    let c = ok(EXAMPLE);
    let o = &c.agent.overlay;
    assert_eq!(o.listen, "198.51.100.2:4179".parse::<SocketAddr>().unwrap());
    assert_eq!(o.underlay_other, Some(ip("2001:db8:ff::2")));
    assert_eq!(o.trust.ca_bundle, PathBuf::from("/etc/edge/ca.pem"));
    assert_eq!(o.trust.cert, PathBuf::from("/etc/edge/pop-fra1.pem"));
    assert_eq!(o.trust.key, PathBuf::from("/etc/edge/pop-fra1.key"));
    assert_eq!(o.trust.crl, Some(PathBuf::from("/etc/edge/crl.pem")));
    let allow: Vec<&str> = o.trust.allow.iter().map(Identity::as_str).collect();
    assert_eq!(allow, ["edge://pop-ams1", "edge://pop-lhr1"]);
    assert_eq!(o.trust.handshake_timeout, Duration::from_secs(10));
    assert_eq!(o.asn, 64500);
    assert_eq!(o.node_addrs, [ip("192.0.2.1"), ip("2001:db8:1d::1")]);
    assert_eq!(o.private_addr, Some(ip("10.99.0.1")));
    assert!(o.private_to.contains(&"edge://pop-ams1".parse().unwrap()));
    assert_eq!(o.import.asn, 64500);
    assert_eq!(
        o.import.identity_ranges,
        [prefix("192.0.2.0/24"), prefix("2001:db8:1d::/48")]
    );
    assert_eq!(o.import.private_ranges, [prefix("10.99.0.0/16")]);
    assert_eq!(o.import.max_routes, 64);
    assert_eq!(o.static_peers.len(), 2);
    assert_eq!(o.static_peers[1].identity.as_str(), "edge://pop-lhr1");
    assert_eq!(
        o.static_peers[1].addr,
        "[2001:db8:ff::9]:4179".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(o.static_peers[0].source, Source::Static);
    assert_eq!(o.srv.len(), 1);
    assert_eq!(o.srv[0].name, "_edge-overlay._tcp.cdn.example.");
    assert_eq!(
        o.srv[0].resolvers,
        [
            "198.51.100.53:53".parse::<SocketAddr>().unwrap(),
            "198.51.100.54:53".parse().unwrap()
        ]
    );
    assert_eq!(o.srv_refresh, Duration::from_secs(30));
    assert_eq!(o.hold_time, 9);
    assert_eq!(o.timers, Timers::default());
    assert_eq!(o.trust_check, Duration::from_secs(5));
    assert_eq!(o.admission.candidate_handshakes, 64);
    assert_eq!(o.admission, AdmissionConfig::default());
    assert!(o.advertise_after_trust);
    assert_eq!(o.validate(), Ok(()));
}

#[test]
fn the_example_maps_netlink_and_the_daemon() {
    let c = ok(EXAMPLE);
    let n = &c.agent.netlink;
    assert_eq!(n.ownership.link, "edge0");
    assert_eq!((n.ownership.table, n.ownership.protocol), (4179, 242));
    assert_eq!(n.internet, "eth0");
    assert_eq!(n.period, Duration::from_secs(10));
    assert!(!n.keep_state);
    assert_eq!(c.api_socket, PathBuf::from("/run/edge-agent/api.sock"));
    assert_eq!(c.metrics, Some("127.0.0.1:9179".parse().unwrap()));
    assert_eq!(c.log_format, LogFormat::Human);
    assert_eq!(c.log_level, "info");
    assert_eq!(c.doors, DoorsConfig::default());
}

#[test]
fn a_minimal_config_gets_the_defaults() {
    let c = ok(MINIMAL);
    let a = &c.agent;
    assert_eq!(a.attach, AttachMode::Auto);
    assert_eq!(a.node.mtu, 1500);
    assert_eq!(a.node.gue_port, None);
    assert_eq!(a.node.underlay_v6, None);
    assert_eq!(a.load.pin_dir, Some(PathBuf::from("/sys/fs/bpf/edge/eth0")));
    assert_eq!(a.control.encap, Encap::IpIp);
    assert!(a.control.required.is_empty());
    assert!(!a.control.services[0].drop_when_unavailable);
    assert_eq!(a.health[0].config, HealthConfig::default());
    assert_eq!(a.health[0].config.initial, Measured::Down);
    assert!(a.upstream.is_empty());
    let o = &a.overlay;
    assert_eq!(o.listen, "198.51.100.2:4179".parse::<SocketAddr>().unwrap());
    assert_eq!(o.underlay_other, None);
    assert_eq!(o.import.service_ranges, [prefix("203.0.113.0/24")]);
    assert!(o.import.private_ranges.is_empty());
    assert!(o.trust.allow.is_empty());
    assert_eq!(o.trust.crl, None);
    assert!(o.static_peers.is_empty() && o.srv.is_empty());
    assert_eq!(o.private_addr, None);
    assert_eq!(o.hold_time, 9);
    assert_eq!(o.admission, AdmissionConfig::default());
    let n = &a.netlink;
    assert_eq!(
        (
            n.ownership.link.as_str(),
            n.ownership.table,
            n.ownership.protocol
        ),
        ("edge0", 4179, 242)
    );
    assert_eq!(n.period, Duration::from_secs(10));
    assert_eq!(c.api_socket, PathBuf::from(DEFAULT_API_SOCKET));
    assert_eq!(c.metrics, None);
    assert_eq!(c.log_format, LogFormat::Human);
    assert_eq!(c.log_level, DEFAULT_LOG_LEVEL);
    assert_eq!(c.doors, DoorsConfig::default());
}

#[test]
fn an_empty_file_names_every_required_key() {
    let e = problems("");
    for key in [
        "node.name",
        "node.identity",
        "node.internet_interface",
        "node.underlay",
        "node.anycast",
        "node.asn",
        "overlay.ca",
        "overlay.cert",
        "overlay.key",
        "overlay.identity_ranges",
    ] {
        assert_problem(&e, key, "missing");
    }
}

#[test]
fn problems_are_shown_one_per_line_with_origin_key_and_hint() {
    let e = problems(&minimal_replacing("asn = 64500", "asn = 0"));
    let shown = e.to_string();
    assert_eq!(shown.lines().count(), e.problems.len());
    let line = shown
        .lines()
        .find(|l| l.contains("node.asn"))
        .expect("node.asn");
    assert!(line.starts_with("test.toml: node.asn: "), "{line}");
    assert!(line.contains("(hint: "), "{line}");
    assert!(e.has("node.asn"));
}

#[test]
fn load_reads_a_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    let c = load_with(&path, Checks::NONE).unwrap();
    assert_eq!(c.agent.control.services[0].name, "web");
    let missing = dir.path().join("nope.toml");
    let e = load_with(&missing, Checks::NONE).unwrap_err();
    assert_eq!(e.origin, missing.display().to_string());
    assert!(e.problems[0].message.contains("cannot read"), "{e}");
}
