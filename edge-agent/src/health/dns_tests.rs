//! The DNS probe against the test responder on loopback: response codes,
//! expected answers, the TCP retry on truncation, silence.

use std::{net::Ipv4Addr, time::Duration};

use edge_tests::dns::{DnsServer, Zone};
use hickory_proto::{op::ResponseCode, rr::RecordType};

use super::*;
use crate::health::probe::{ProbeResult, ProbeSpec};

const WEB: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

fn zone() -> Zone {
    Zone::new().a("web.health.example.", WEB)
}

fn probe(server: &DnsServer, f: impl FnOnce(&mut DnsProbe)) -> ProbeResult {
    let mut p = DnsProbe::new(server.addr(), "web.health.example", RecordType::A);
    f(&mut p);
    let prober = ProbeSpec::Dns(p).prepare().unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(prober.run(Duration::from_millis(500), Duration::from_millis(500)))
}

#[test]
fn noerror_passes_and_counts_answers() {
    let server = DnsServer::start_local(zone());
    let r = probe(&server, |_| {});
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "rcode NOERROR, 1 answer");
    assert_eq!(server.queries(), 1);
}

#[test]
fn the_expected_address_must_be_in_the_answer() {
    let server = DnsServer::start_local(zone());
    let r = probe(&server, |p| p.expect_answer = Some("192.0.2.10".into()));
    assert!(r.ok, "{r:?}");
    let r = probe(&server, |p| p.expect_answer = Some("192.0.2.11".into()));
    assert!(!r.ok);
    assert_eq!(r.detail, "no answer 192.0.2.11 (got 192.0.2.10)");
}

#[test]
fn names_match_without_case_and_trailing_dot() {
    let server = DnsServer::start_local(
        Zone::new()
            .cname("www.health.example.", "web.health.example.")
            .a("web.health.example.", WEB),
    );
    let r = probe(&server, |p| {
        // The answer holds the CNAME to web and web's address.
        p.name = "www.health.example".into();
        p.expect_answer = Some("WEB.health.example".into());
    });
    assert!(r.ok, "{r:?}");
}

#[test]
fn a_wrong_rcode_fails_with_its_name() {
    let server = DnsServer::start_local(zone().fail_with(ResponseCode::ServFail));
    let r = probe(&server, |_| {});
    assert!(!r.ok);
    assert_eq!(r.detail, "rcode SERVFAIL");
    let server = DnsServer::start_local(zone());
    let r = probe(&server, |p| p.name = "missing.health.example".into());
    assert_eq!(r.detail, "rcode NXDOMAIN");
}

#[test]
fn an_expected_nxdomain_passes() {
    let server = DnsServer::start_local(zone());
    let r = probe(&server, |p| {
        p.name = "missing.health.example".into();
        p.expect_rcode = ResponseCode::NXDomain;
    });
    assert!(r.ok, "{r:?}");
}

#[test]
fn a_truncated_answer_is_asked_again_over_tcp() {
    let server = DnsServer::start_local(zone().truncate_udp(true));
    let r = probe(&server, |p| p.expect_answer = Some("192.0.2.10".into()));
    assert!(r.ok, "{r:?}");
    assert_eq!(server.queries(), 2, "one over UDP, one over TCP");
}

#[test]
fn forged_datagrams_are_ignored() {
    let server = DnsServer::start_local(zone().forge_udp(true));
    let r = probe(&server, |p| p.expect_answer = Some("192.0.2.10".into()));
    assert!(r.ok, "{r:?}");
}

#[test]
fn a_silent_server_times_out() {
    let server = DnsServer::start_local(zone());
    server.set_silent(true);
    let r = probe(&server, |_| {});
    assert!(!r.ok);
    assert_eq!(r.detail, "timeout after 500 ms");
    server.set_silent(false);
    assert!(probe(&server, |_| {}).ok);
}

#[test]
fn bad_names_and_empty_answers_are_rejected() {
    let addr = (Ipv4Addr::LOCALHOST, 53).into();
    let mut p = DnsProbe::new(addr, "a..b", RecordType::A);
    let e = ProbeSpec::Dns(p.clone()).prepare().unwrap_err();
    assert!(e.to_string().contains("`a..b` is not a DNS name"), "{e}");
    p.name = "web.health.example".into();
    p.expect_answer = Some(" ".into());
    let e = ProbeSpec::Dns(p).prepare().unwrap_err();
    assert!(
        e.to_string().contains("expected DNS answer is empty"),
        "{e}"
    );
}

#[test]
fn rcodes_have_their_usual_names() {
    assert_eq!(rcode_name(ResponseCode::NoError), "NOERROR");
    assert_eq!(rcode_name(ResponseCode::ServFail), "SERVFAIL");
    assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
    assert_eq!(rcode_name(ResponseCode::Refused), "REFUSED");
}
