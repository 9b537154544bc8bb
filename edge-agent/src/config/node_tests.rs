//! `[node]`, `[netlink]` and `[daemon]`.

use std::time::Duration;

use crate::config::{
    Checks, LogFormat, parse_with,
    tests::{MINIMAL, assert_problem, minimal_replacing, minimal_with, ok, problems},
};

#[test]
fn anycast_prefixes_are_checked_and_counted() {
    let e = problems(&minimal_replacing(
        "anycast = [\"203.0.113.0/24\"]",
        "anycast = [\"203.0.113.1/24\", \"0.0.0.0/0\", \"203.0.113.128/25\", \"nope\"]",
    ));
    assert_problem(&e, "node.anycast[0]", "host bits set");
    assert_problem(&e, "node.anycast[1]", "default route");
    assert_problem(&e, "node.anycast[2]", "overlaps 203.0.113.0/24");
    assert_problem(&e, "node.anycast[3]", "not a prefix");
    // The masked prefix is used, so the VIP is not reported as outside.
    assert!(!e.has("services.web.vips[0]"), "{e}");
    let nine: Vec<String> = (0..9).map(|i| format!("\"198.18.{i}.0/24\"")).collect();
    let e = problems(&minimal_replacing(
        "anycast = [\"203.0.113.0/24\"]",
        &format!("anycast = [\"203.0.113.0/24\", {}]", nine.join(", ")),
    ));
    assert_problem(
        &e,
        "node.anycast",
        "10 IPv4 prefixes: the data plane holds at most 8",
    );
}

#[test]
fn node_values_are_checked() {
    let text = MINIMAL
        .replace("name = \"pop-a\"", "name = \"Pop A\"")
        .replace("identity = [\"192.0.2.1\"]", "identity = [\"2001:db8:1d::1\", \"2001:db8:1d::1\"]")
        .replace("internet_interface = \"eth0\"", "internet_interface = \"eth0/1\"\nxdp_mode = \"offload\"\nencap = \"gue\"\nmtu = 1000\nmaglev_size = 6420")
        .replace("underlay = [\"198.51.100.2\"]", "underlay = [\"198.51.100.2\", \"198.51.100.3\", \"2001:db8:ff::2\"]");
    let e = problems(&text);
    assert_problem(&e, "node.name", "not a node name");
    assert_problem(&e, "node.identity[1]", "listed twice");
    assert_problem(&e, "node.identity", "no IPv4 identity address");
    assert_problem(&e, "node.internet_interface", "not an interface name");
    assert_problem(&e, "node.xdp_mode", "unknown XDP mode");
    assert_problem(&e, "node.gue_port", "missing");
    assert_problem(&e, "node.mtu", "below the 1280 bytes IPv6 requires");
    assert_problem(
        &e,
        "node.maglev_size",
        "not a prime (the next prime is 6421)",
    );
    assert_problem(&e, "node.underlay[1]", "a second IPv4 address");
}

#[test]
fn gue_and_data_plane_sizes_map() {
    let c = ok(&minimal_replacing(
        "asn = 64500",
        "asn = 64500\nencap = \"gue\"\ngue_port = 6080\nmtu = 9000\nxdp_mode = \"generic\"\nmaglev_size = 25601\nflow_entries = 1024",
    ));
    assert_eq!(c.agent.control.encap, crate::dataplane::Encap::Gue);
    assert_eq!(c.agent.node.gue_port, Some(6080));
    assert_eq!(c.agent.node.mtu, 9000);
    assert_eq!(c.agent.attach, crate::dataplane::AttachMode::Generic);
    assert_eq!(
        (c.agent.load.maglev_size, c.agent.load.flow_entries),
        (25601, 1024)
    );
}

#[test]
fn an_unknown_interface_is_reported_unless_the_check_is_off() {
    let text = minimal_replacing(
        "internet_interface = \"eth0\"",
        "internet_interface = \"edge-no-such\"",
    );
    let checks = Checks {
        interfaces: true,
        files: false,
    };
    let e = parse_with(&text, "t", checks).unwrap_err();
    assert_problem(&e, "node.internet_interface", "no interface `edge-no-such`");
    assert!(parse_with(&text, "t", Checks::NONE).is_ok());
    let lo = minimal_replacing(
        "internet_interface = \"eth0\"",
        "internet_interface = \"lo\"",
    );
    assert!(parse_with(&lo, "t", checks).is_ok());
}

#[test]
fn netlink_refuses_tables_and_protocols_that_are_not_its_own() {
    let e = problems(&minimal_with(
        "[netlink]\ninterface = \"eth0\"\ntable = 254\nprotocol = 12\nperiod = \"0s\"\nvips = \"some\"\n",
    ));
    assert_problem(&e, "netlink.interface", "is the Internet interface");
    assert_problem(&e, "netlink.table", "main table");
    assert_problem(&e, "netlink.protocol", "`bird`'s");
    assert_problem(&e, "netlink.period", "longer than zero");
    assert_problem(&e, "netlink.vips", "unknown choice `some`");
    let c = ok(&minimal_with(
        "[netlink]\ninterface = \"edge9\"\ntable = 100\nprotocol = 200\nperiod = \"3s\"\nvips = \"healthy-only\"\nkeep_state = true\n",
    ));
    let n = &c.agent.netlink;
    assert_eq!(
        (
            n.ownership.link.as_str(),
            n.ownership.table,
            n.ownership.protocol
        ),
        ("edge9", 100, 200)
    );
    assert_eq!(n.period, Duration::from_secs(3));
    assert!(n.keep_state);
    assert_eq!(
        c.agent.control.vip_addresses,
        crate::netlink::desired::VipAddresses::HealthyOnly
    );
}

#[test]
fn daemon_settings() {
    let c = ok(&minimal_with(
        "[daemon]\napi_socket = \"/run/x.sock\"\nmetrics = \"[::1]\"\nlog_format = \"json\"\nlog_level = \"warn,edge_agent::overlay=debug\"\npin_dir = \"/sys/fs/bpf/mine\"\n",
    ));
    assert_eq!(c.api_socket, std::path::PathBuf::from("/run/x.sock"));
    assert_eq!(c.metrics, Some("[::1]:9179".parse().unwrap()));
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.log_level, "warn,edge_agent::overlay=debug");
    assert_eq!(c.pin_dir, std::path::PathBuf::from("/sys/fs/bpf/mine"));
    assert_eq!(c.agent.load.pin_dir, Some(c.pin_dir.clone()));
    let e = problems(&minimal_with(
        "[daemon]\napi_socket = \"api.sock\"\nmetrics = \"localhost:9179\"\nlog_format = \"xml\"\nlog_level = \"verbose\"\npin_dir = \"bpf\"\n",
    ));
    assert_problem(&e, "daemon.api_socket", "not an absolute path");
    assert_problem(&e, "daemon.metrics", "not an address");
    assert_problem(&e, "daemon.log_format", "unknown log format `xml`");
    assert_problem(&e, "daemon.log_level", "not a log level");
    assert_problem(&e, "daemon.pin_dir", "not an absolute path");
    let e = problems(&minimal_with("[daemon]\nlog_level = \"edge_agent=loud\"\n"));
    assert_problem(&e, "daemon.log_level", "`loud`");
}
