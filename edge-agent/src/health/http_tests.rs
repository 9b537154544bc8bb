//! The HTTP(S) probe against the test server on loopback: statuses, body
//! matches, the Host header, refusals, slowness, and TLS verification
//! (extra CA file, unknown issuer, lab mode without verification).

use std::{
    net::{Ipv4Addr, TcpListener},
    time::Duration,
};

use edge_tests::http::{HttpServer, Reply, tls_config};

use super::*;
use crate::{
    health::probe::{ProbeResult, ProbeSpec},
    overlay::{
        identity::Identity,
        pki::{Pem, Validity, make_ca, make_node},
    },
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn run(probe: HttpProbe, timeout: Duration, slow: Duration) -> ProbeResult {
    let prober = ProbeSpec::Http(probe).prepare().unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(prober.run(timeout, slow))
}

fn url(server: &HttpServer) -> String {
    format!("http://{}/health", server.addr())
}

#[test]
fn statuses_in_range_pass_others_fail() {
    let server = HttpServer::start_local();
    let r = run(HttpProbe::new(url(&server)), ms(1000), ms(1000));
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "HTTP 200");
    server.set_status(503);
    let r = run(HttpProbe::new(url(&server)), ms(1000), ms(1000));
    assert!(!r.ok);
    assert_eq!(r.detail, "HTTP 503");
    server.set_status(302);
    assert!(
        run(HttpProbe::new(url(&server)), ms(1000), ms(1000)).ok,
        "3xx is healthy, not followed"
    );
    let mut strict = HttpProbe::new(url(&server));
    strict.expect_status = 200..=200;
    assert_eq!(run(strict, ms(1000), ms(1000)).detail, "HTTP 302");
    assert_eq!(server.requests(), 4, "one request per probe, no retries");
}

#[test]
fn the_body_must_contain_the_text() {
    let server = HttpServer::start_local();
    server.set_reply(Reply {
        body: "status: serving\n".into(),
        ..Reply::default()
    });
    let mut p = HttpProbe::new(url(&server));
    p.body_contains = Some("serving".into());
    let r = run(p.clone(), ms(1000), ms(1000));
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "HTTP 200, body matches");
    p.body_contains = Some("draining".into());
    let r = run(p, ms(1000), ms(1000));
    assert!(!r.ok);
    assert_eq!(r.detail, "HTTP 200, body lacks `draining` (read 16 bytes)");
}

#[test]
fn the_host_header_is_sent() {
    let server = HttpServer::start_local();
    let mut p = HttpProbe::new(url(&server));
    p.host = Some("www.health.example".into());
    assert!(run(p, ms(1000), ms(1000)).ok);
    assert!(run(HttpProbe::new(url(&server)), ms(1000), ms(1000)).ok);
    assert_eq!(
        server.hosts(),
        vec!["www.health.example".to_string(), server.addr().to_string()]
    );
}

#[test]
fn a_closed_port_is_refused() {
    let port = {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let r = run(
        HttpProbe::new(format!("http://127.0.0.1:{port}/")),
        ms(1000),
        ms(1000),
    );
    assert!(!r.ok);
    assert_eq!(r.detail, "connect refused");
}

#[test]
fn slow_answers_fail_and_late_ones_time_out() {
    let server = HttpServer::start_local();
    server.set_delay(ms(300));
    let r = run(HttpProbe::new(url(&server)), ms(1000), ms(200));
    assert!(!r.ok);
    assert!(r.detail.starts_with("slow: 3"), "{}", r.detail);
    assert!(r.detail.ends_with(" > 200 ms (HTTP 200)"), "{}", r.detail);
    let r = run(HttpProbe::new(url(&server)), ms(100), ms(100));
    assert_eq!(r.detail, "timeout after 100 ms");
    assert!(r.latency >= ms(100), "{:?}", r.latency);
}

/// An HTTPS server for `web.health.example` on loopback with a certificate
/// from a fresh CA; the CA's PEM file; the directory holding it.
fn https_server() -> (HttpServer, tempfile::TempDir, std::path::PathBuf) {
    let ca = make_ca("health test CA", Validity::days_from_now(1)).unwrap();
    let leaf: Pem = make_node(
        &ca,
        &Identity::from_name("web.health.example").unwrap(),
        Validity::days_from_now(1),
    )
    .unwrap();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let server = HttpServer::start(listener, Some(tls_config(&leaf.cert, &leaf.key)));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.cert).unwrap();
    (server, dir, ca_file)
}

fn https_probe(server: &HttpServer) -> HttpProbe {
    let mut p = HttpProbe::new(format!(
        "https://web.health.example:{}/health",
        server.addr().port()
    ));
    p.resolve_to = Some(Ipv4Addr::LOCALHOST.into());
    p
}

#[test]
fn https_with_an_extra_ca_file_verifies_the_server() {
    let (server, _dir, ca_file) = https_server();
    let mut p = https_probe(&server);
    p.tls.ca_file = Some(ca_file);
    let r = run(p, ms(2000), ms(2000));
    assert!(r.ok, "{r:?}");
    assert_eq!(server.requests(), 1);
}

#[test]
fn https_from_an_unknown_ca_fails_unless_verification_is_skipped() {
    let (server, _dir, _ca_file) = https_server();
    let r = run(https_probe(&server), ms(2000), ms(2000));
    assert!(!r.ok);
    assert!(r.detail.starts_with("TLS: "), "{}", r.detail);
    assert!(r.detail.contains("UnknownIssuer"), "{}", r.detail);
    assert_eq!(server.requests(), 0, "no request without a trusted server");

    let mut lab = https_probe(&server);
    lab.tls.insecure_skip_verify = true;
    let r = run(lab, ms(2000), ms(2000));
    assert!(r.ok, "{r:?}");
}

#[test]
fn https_for_another_name_fails() {
    let (server, _dir, ca_file) = https_server();
    let mut p = HttpProbe::new(format!(
        "https://api.health.example:{}/health",
        server.addr().port()
    ));
    p.resolve_to = Some(Ipv4Addr::LOCALHOST.into());
    p.tls.ca_file = Some(ca_file);
    let r = run(p, ms(2000), ms(2000));
    assert!(!r.ok);
    assert!(r.detail.starts_with("TLS: "), "{}", r.detail);
    assert!(
        r.detail
            .contains("not valid for name \"api.health.example\""),
        "{}",
        r.detail
    );
}
