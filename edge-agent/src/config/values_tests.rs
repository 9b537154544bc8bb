//! The value parsers, alone.

use std::time::Duration;

use super::*;

#[test]
fn durations_take_units_and_sums() {
    for (text, ms) in [
        ("500ms", 500),
        ("2s", 2000),
        ("10m", 600_000),
        ("1h", 3_600_000),
        ("1m30s", 90_000),
        ("1.5s", 1500),
        ("0s", 0),
        (" 3s ", 3000),
    ] {
        assert_eq!(duration(text), Ok(Duration::from_millis(ms)), "{text}");
    }
    for bad in ["", "5", "s", "2 s", "2sec", "1d", "-1s", "1..5s", "25h"] {
        let e = duration(bad).unwrap_err();
        assert!(!e.hint.is_empty(), "{bad}");
    }
    assert!(
        duration("5")
            .unwrap_err()
            .message
            .contains("unit is missing")
    );
}

#[test]
fn durations_are_shown_as_written() {
    for (ms, text) in [
        (0, "0s"),
        (500, "500ms"),
        (2000, "2s"),
        (90_000, "1m30s"),
        (3_600_000, "1h"),
    ] {
        assert_eq!(show_duration(Duration::from_millis(ms)), text);
    }
}

#[test]
fn prefixes_with_host_bits_are_reported_with_the_network() {
    assert_eq!(
        prefix("203.0.113.0/24").unwrap().to_string(),
        "203.0.113.0/24"
    );
    match prefix("203.0.113.7/24") {
        Err(PrefixBad::HostBits(b, masked)) => {
            assert!(b.message.contains("host bits"), "{}", b.message);
            assert!(b.hint.contains("203.0.113.0/24"), "{}", b.hint);
            assert_eq!(masked.to_string(), "203.0.113.0/24");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        prefix("2001:db8:ac::1/48"),
        Err(PrefixBad::HostBits(..))
    ));
    for bad in [
        "203.0.113.0",
        "203.0.113.0/33",
        "x/8",
        "2001:db8::/129",
        "/24",
    ] {
        assert!(matches!(prefix(bad), Err(PrefixBad::Malformed(_))), "{bad}");
    }
}

#[test]
fn asns_refuse_zero_as_trans_reserved_and_too_large() {
    for good in [
        1,
        64496,
        64500,
        64512,
        65534,
        65536,
        4_200_000_000,
        4_294_967_294,
    ] {
        assert_eq!(asn(good), Ok(u32::try_from(good).unwrap()), "{good}");
    }
    for (bad, why) in [
        (0, "reserved"),
        (23456, "AS_TRANS"),
        (65535, "reserved"),
        (70000, "IANA"),
        (4_294_967_295, "reserved"),
        (4_294_967_296, "1 to 4294967294"),
        (-1, "1 to 4294967294"),
    ] {
        let e = asn(bad).unwrap_err();
        assert!(e.message.contains(why), "{bad}: {}", e.message);
    }
}

#[test]
fn hold_times_are_zero_or_at_least_three() {
    assert_eq!(hold_time(0), Ok(0));
    assert_eq!(hold_time(3), Ok(3));
    assert_eq!(hold_time(65535), Ok(65535));
    for bad in [1, 2, -1, 65536] {
        assert!(hold_time(bad).is_err(), "{bad}");
    }
    assert!(hold_time(2).unwrap_err().message.contains("not allowed"));
}

#[test]
fn addresses_with_and_without_ports() {
    assert_eq!(
        socket("192.0.2.1", 4179).unwrap().to_string(),
        "192.0.2.1:4179"
    );
    assert_eq!(socket("192.0.2.1:80", 4179).unwrap().port(), 80);
    assert_eq!(
        socket("2001:db8::1", 53).unwrap().to_string(),
        "[2001:db8::1]:53"
    );
    assert_eq!(
        socket("[2001:db8::1]", 53).unwrap().to_string(),
        "[2001:db8::1]:53"
    );
    assert_eq!(socket("[2001:db8::1]:54", 53).unwrap().port(), 54);
    assert!(socket("host.example:53", 53).is_err());
    assert!(socket_with_port("192.0.2.1:0", 53).is_err());
    assert!(unicast("0.0.0.0").is_err());
    assert!(unicast("127.0.0.1").is_err());
    assert!(unicast("ff02::1").is_err());
    assert!(unicast("192.0.2.1/32").is_err());
}

#[test]
fn interface_names_paths_identities() {
    assert!(ifname("eth0").is_ok());
    assert!(ifname("enp0s31f6.100").is_ok());
    for bad in ["", "a/b", "eth 0", "eth0:1", "sixteen-chars-xx", ".", ".."] {
        assert!(ifname(bad).is_err(), "{bad}");
    }
    assert!(abs_path("/etc/edge/ca.pem").is_ok());
    assert!(abs_path("ca.pem").is_err());
    assert!(abs_path("").is_err());
    assert_eq!(
        identity("edge://POP-ams1").unwrap().as_str(),
        "edge://pop-ams1"
    );
    assert!(identity("pop-ams1").is_err());
}

#[test]
fn service_ports() {
    assert_eq!(port_spec("tcp/443"), Ok((Protocol::Tcp, Some(443))));
    assert_eq!(port_spec("UDP/53"), Ok((Protocol::Udp, Some(53))));
    assert_eq!(port_spec("udp"), Ok((Protocol::Udp, None)));
    for bad in ["sctp/80", "tcp/0", "tcp/65536", "tcp/", "80", "tcp/80-90"] {
        assert!(port_spec(bad).is_err(), "{bad}");
    }
    assert_eq!(show_port(Protocol::Tcp, Some(443)), "tcp/443");
    assert_eq!(show_port(Protocol::Udp, None), "udp");
    assert_eq!(choices(&["a", "b", "c"]), "a, b or c");
}
