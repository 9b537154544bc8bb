use std::{net::SocketAddr, time::Instant};

use edge_tests::logs::Capture;

use super::*;
use crate::bfd::endpoint::Datagram;

/// An endpoint that dropped `n` truncated datagrams.
fn dropped(endpoint: &mut Endpoint, n: usize) {
    let from: SocketAddr = "198.51.100.1:49200".parse().unwrap();
    for _ in 0..n {
        let d = Datagram {
            from,
            to: None,
            ttl: 255,
            hop: Hop::Single,
            bytes: &[0x20],
        };
        let _ = endpoint.receive(&d, Instant::now());
    }
}

#[test]
fn drops_are_one_warning_a_minute_with_what_is_new() {
    let capture = Capture::new();
    let mut endpoint = Endpoint::new();
    let mut log = DropLog::default();
    let t0 = Instant::now();
    capture.during(|| {
        log.log(endpoint.drops(), t0);
        dropped(&mut endpoint, 1000);
        log.log(endpoint.drops(), t0);
        dropped(&mut endpoint, 5);
        log.log(endpoint.drops(), t0 + Duration::from_secs(30));
        log.log(endpoint.drops(), t0 + Duration::from_secs(61));
        log.log(endpoint.drops(), t0 + Duration::from_secs(200));
    });
    let text = capture.text();
    assert_eq!(capture.lines("BFD: dropped"), 2, "{text}");
    assert!(
        text.contains("dropped 1000 packet(s) since the last report: truncated 1000"),
        "{text}"
    );
    assert!(
        text.contains("dropped 5 packet(s) since the last report: truncated 5"),
        "{text}"
    );
    assert!(text.contains("WARN"), "{text}");
}
