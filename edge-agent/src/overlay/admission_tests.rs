use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn small() -> AdmissionConfig {
    AdmissionConfig {
        candidate_handshakes: 3,
        stranger_handshakes: 4,
        per_source: 2,
        rate: 10,
        burst: 10,
        ..AdmissionConfig::default()
    }
}

#[test]
fn strangers_never_take_a_candidates_slot() {
    let now = Instant::now();
    let mut a = Admission::new(small(), now);
    a.set_candidates([ip("198.51.100.2")]);
    // Strangers from many sources fill their own budget…
    let mut held = Vec::new();
    for i in 0..50 {
        if let Ok(t) = a.admit(ip(&format!("198.18.0.{i}")), now) {
            held.push(t);
        }
    }
    assert_eq!(held.len(), 4);
    assert!(held.iter().all(|t| t.class == Class::Stranger));
    assert_eq!(a.status().denied["stranger_budget"], 46);
    // …and the candidate still gets all of its own.
    let c: Vec<Ticket> = (0..3)
        .map(|_| a.admit(ip("198.51.100.2"), now).unwrap())
        .collect();
    assert!(c.iter().all(|t| t.class == Class::Candidate));
    assert_eq!(
        a.admit(ip("198.51.100.2"), now),
        Err(Denial::CandidateBudget)
    );
    for t in c {
        a.release(t);
    }
    assert!(a.admit(ip("198.51.100.2"), now).is_ok());
}

#[test]
fn one_source_prefix_gets_per_source_slots() {
    let now = Instant::now();
    let mut a = Admission::new(small(), now);
    let t1 = a.admit(ip("198.18.0.1"), now).unwrap();
    let _t2 = a.admit(ip("198.18.0.1"), now).unwrap();
    assert_eq!(a.admit(ip("198.18.0.1"), now), Err(Denial::SourceLimit));
    // Another /32 is another source.
    assert!(a.admit(ip("198.18.0.2"), now).is_ok());
    a.release(t1);
    assert!(a.admit(ip("198.18.0.1"), now).is_ok());
}

#[test]
fn ipv6_sources_are_grouped_by_their_64() {
    let now = Instant::now();
    let mut a = Admission::new(small(), now);
    let _t1 = a.admit(ip("2001:db8:ff::1"), now).unwrap();
    let _t2 = a.admit(ip("2001:db8:ff::2:3"), now).unwrap();
    assert_eq!(
        a.admit(ip("2001:db8:ff:0:ffff::9"), now),
        Err(Denial::SourceLimit)
    );
    assert!(a.admit(ip("2001:db8:ff:1::1"), now).is_ok());
    assert_eq!(
        a.prefix(ip("2001:db8:ff::2:3")).to_string(),
        "2001:db8:ff::/64"
    );
}

#[test]
fn mapped_ipv4_is_the_same_source_and_candidate() {
    let now = Instant::now();
    let mut a = Admission::new(small(), now);
    a.set_candidates([ip("198.51.100.2")]);
    assert!(a.is_candidate(ip("::ffff:198.51.100.2")));
    let t = a.admit(ip("::ffff:198.18.0.1"), now).unwrap();
    assert_eq!(t.prefix.to_string(), "198.18.0.1/32");
}

#[test]
fn the_strangers_rate_bounds_handshakes_per_second() {
    let start = Instant::now();
    let config = AdmissionConfig {
        stranger_handshakes: 1000,
        per_source: 1000,
        rate: 10,
        burst: 5,
        ..AdmissionConfig::default()
    };
    let mut a = Admission::new(config, start);
    // Each admitted handshake ends at once: only the rate holds them back.
    let mut admitted = 0;
    for ms in 0..2000u64 {
        let now = start + Duration::from_millis(ms);
        if let Ok(t) = a.admit(ip("198.18.0.1"), now) {
            admitted += 1;
            a.release(t);
        }
    }
    // The burst, then 10 a second for 2 s.
    assert!((24..=26).contains(&admitted), "{admitted}");
    // Candidates are not rate limited.
    a.set_candidates([ip("198.51.100.2")]);
    let now = start + Duration::from_millis(2000);
    for _ in 0..20 {
        let t = a.admit(ip("198.51.100.2"), now).unwrap();
        a.release(t);
    }
}

#[test]
fn deadlines_are_the_strangers_only() {
    let now = Instant::now();
    let config = small();
    let mut a = Admission::new(config.clone(), now);
    a.set_candidates([ip("198.51.100.2")]);
    let c = a.admit(ip("198.51.100.2"), now).unwrap();
    let s = a.admit(ip("198.18.0.1"), now).unwrap();
    assert_eq!(c.deadlines(&config), None);
    assert_eq!(
        s.deadlines(&config),
        Some((config.first_flight, config.timeout))
    );
}

#[test]
fn each_offending_prefix_is_named_once_a_minute() {
    let start = Instant::now();
    let mut a = Admission::new(small(), start);
    let _held: Vec<Ticket> = (0..2)
        .map(|_| a.admit(ip("198.18.0.1"), start).unwrap())
        .collect();
    for _ in 0..100 {
        let _ = a.admit(ip("198.18.0.1"), start);
    }
    let lines = a.offenders(start);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("closed 100 connection(s) from 198.18.0.1/32 (a stranger)"));
    assert!(lines[0].contains("overlay.strangers.per_source"));
    // More within the minute: counted, not logged yet.
    let _ = a.admit(ip("198.18.0.1"), start + Duration::from_secs(1));
    assert!(a.offenders(start + Duration::from_secs(1)).is_empty());
    let lines = a.offenders(start + Duration::from_secs(61));
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("closed 1 connection(s)"), "{lines:?}");
}

#[test]
fn many_offenders_make_a_bounded_number_of_lines() {
    let now = Instant::now();
    let config = AdmissionConfig {
        stranger_handshakes: 1,
        ..small()
    };
    let mut a = Admission::new(config, now);
    let _held = a.admit(ip("198.18.1.1"), now).unwrap();
    for i in 0..10_000u32 {
        let addr = IpAddr::V4((0xc612_0000 + i + 2).into());
        let _ = a.admit(addr, now);
    }
    let lines = a.offenders(now);
    assert_eq!(lines.len(), OFFENDER_LINES + 1, "{lines:?}");
    let last = lines.last().unwrap();
    assert!(
        last.contains("closed 9992 more connection(s)")
            && last.contains(&format!(
                "{} more source prefix",
                OFFENDER_TABLE - OFFENDER_LINES
            )),
        "{last}"
    );
    assert_eq!(a.status().denied["stranger_budget"], 10_000);
}
