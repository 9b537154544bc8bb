use std::time::{Duration, Instant};

use super::*;

fn offender(prefix: &str, len: u8, dropped: u64) -> DoorOffender {
    DoorOffender {
        prefix: prefix.parse().unwrap(),
        len,
        admitted: 0,
        dropped,
    }
}

#[test]
fn a_prefix_is_named_once_a_minute_with_what_it_dropped_since() {
    let start = Instant::now();
    let mut log = DoorLog::default();
    let lines = log.report(&[offender("198.18.0.1", 32, 500)], start);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains("dropped 500 packet(s)") && lines[0].contains("198.18.0.1/32"),
        "{lines:?}"
    );
    // More drops within the minute wait.
    let at = start + Duration::from_secs(10);
    assert!(
        log.report(&[offender("198.18.0.1", 32, 800)], at)
            .is_empty()
    );
    let at = start + Duration::from_secs(60);
    let lines = log.report(&[offender("198.18.0.1", 32, 900)], at);
    assert!(lines[0].contains("dropped 400 packet(s)"), "{lines:?}");
    // Nothing new: nothing said.
    let at = start + Duration::from_secs(200);
    assert!(
        log.report(&[offender("198.18.0.1", 32, 900)], at)
            .is_empty()
    );
}

#[test]
fn a_bucket_made_again_counts_from_zero() {
    let start = Instant::now();
    let mut log = DoorLog::default();
    log.report(&[offender("2001:db8:ff::", 64, 100)], start);
    let lines = log.report(
        &[offender("2001:db8:ff::", 64, 7)],
        start + Duration::from_secs(61),
    );
    assert!(lines[0].contains("dropped 7 packet(s)"), "{lines:?}");
}

#[test]
fn many_prefixes_make_a_bounded_number_of_lines() {
    let now = Instant::now();
    let mut log = DoorLog::default();
    let offenders: Vec<DoorOffender> = (0..100u32)
        .map(|i| DoorOffender {
            prefix: std::net::IpAddr::V4((0xc612_0000 + i).into()),
            len: 32,
            admitted: 0,
            dropped: u64::from(i) + 1,
        })
        .collect();
    let lines = log.report(&offenders, now);
    assert_eq!(lines.len(), LINES + 1);
    // The worst first.
    assert!(lines[0].contains("dropped 100 packet(s)"), "{lines:?}");
    let rest: u64 = (1..=92).sum();
    assert!(
        lines[LINES].contains(&format!("dropped {rest} more packet(s)"))
            && lines[LINES].contains("from 92 more source prefix(es)"),
        "{}",
        lines[LINES]
    );
}
