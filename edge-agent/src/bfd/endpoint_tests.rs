use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use super::*;
use crate::bfd::{
    auth::AuthKey,
    packet::{Diag, Packet, encode},
    session::Timers,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn config(auth: bool) -> SessionConfig {
    SessionConfig {
        timers: Timers {
            min_tx: Duration::from_millis(100),
            min_rx: Duration::from_millis(100),
            multiplier: 3,
        },
        auth: auth.then(|| AuthKey {
            meticulous: true,
            key_id: 1,
            secret: b"k".to_vec(),
        }),
    }
}

fn packet(state: State, my: u32, your: u32) -> Vec<u8> {
    let p = Packet {
        diag: Diag::None,
        state,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        detect_mult: 3,
        my_disc: my,
        your_disc: your,
        desired_min_tx: 1_000_000,
        required_min_rx: 100_000,
        required_min_echo_rx: 0,
        auth: None,
    };
    let mut out = Vec::new();
    encode(&p, &mut out);
    out
}

/// An endpoint with a single-hop session to 198.51.100.1 (discriminator
/// 11), an authenticated multihop one to 198.51.100.3 (12).
fn endpoint(now: Instant) -> (Endpoint, SessionId, SessionId) {
    let mut e = Endpoint::new();
    let mut discs = [11u32, 12].into_iter();
    let single = e.add(
        SessionKey {
            peer: ip("198.51.100.1"),
            local: Some(ip("198.51.100.2")),
            hop: Hop::Single,
        },
        config(false),
        || discs.next().unwrap(),
        1,
        now,
    );
    let multi = e.add(
        SessionKey {
            peer: ip("198.51.100.3"),
            local: None,
            hop: Hop::Multi,
        },
        config(true),
        || discs.next().unwrap(),
        2,
        now,
    );
    (e, single, multi)
}

fn datagram<'a>(from: &str, ttl: u8, hop: Hop, bytes: &'a [u8]) -> Datagram<'a> {
    Datagram {
        from: SocketAddr::new(ip(from), 49200),
        to: Some(ip("198.51.100.2")),
        ttl,
        hop,
        bytes,
    }
}

#[test]
fn packets_reach_their_session_by_discriminator_or_by_sender() {
    let now = Instant::now();
    let (mut e, single, _) = endpoint(now);
    let first = packet(State::Down, 0x99, 0);
    assert_eq!(
        e.receive(&datagram("198.51.100.1", 255, Hop::Single, &first), now),
        Ok(single)
    );
    let next = packet(State::Init, 0x99, 11);
    assert_eq!(
        e.receive(&datagram("198.51.100.1", 255, Hop::Single, &next), now),
        Ok(single)
    );
    assert_eq!(e.session_mut(single).unwrap().state(), State::Up);
    assert_eq!(e.drops().total(), 0);
}

#[test]
fn every_drop_reason_is_counted_and_changes_nothing() {
    let now = Instant::now();
    let (mut e, single, multi) = endpoint(now);
    let good = packet(State::Down, 0x99, 0);
    let mut bad_version = good.clone();
    bad_version[0] = 0x40;
    let mut short_length = good.clone();
    short_length[3] = 20;
    let mut zero_mult = good.clone();
    zero_mult[2] = 0;
    let mut multipoint = good.clone();
    multipoint[1] |= 1;
    let mut auth_section = good.clone();
    auth_section[1] |= 0x04;
    auth_section[3] = 26;
    auth_section.extend_from_slice(&[4, 9]);
    let zero_disc = packet(State::Down, 0, 0);
    let unknown = packet(State::Up, 0x99, 77);
    let up_no_disc = packet(State::Up, 0x99, 0);
    let known = packet(State::Up, 0x99, 11);
    let cases: Vec<(Datagram<'_>, DropReason)> = vec![
        (
            datagram("198.51.100.1", 255, Hop::Single, &good[..20]),
            DropReason::Truncated,
        ),
        (
            datagram("198.51.100.1", 255, Hop::Single, &bad_version),
            DropReason::Version,
        ),
        (
            datagram("198.51.100.1", 255, Hop::Single, &short_length),
            DropReason::Length,
        ),
        (
            datagram("198.51.100.1", 255, Hop::Single, &zero_mult),
            DropReason::DetectMult,
        ),
        (
            datagram("198.51.100.1", 255, Hop::Single, &multipoint),
            DropReason::Multipoint,
        ),
        (
            datagram("198.51.100.1", 255, Hop::Single, &zero_disc),
            DropReason::ZeroDiscriminator,
        ),
        (
            datagram("198.51.100.1", 255, Hop::Single, &auth_section),
            DropReason::AuthSection,
        ),
        (
            datagram("198.51.100.1", 255, Hop::Single, &unknown),
            DropReason::UnknownDiscriminator,
        ),
        (
            datagram("198.51.100.9", 255, Hop::Single, &good),
            DropReason::NoSession,
        ),
        (
            datagram("198.51.100.1", 255, Hop::Single, &up_no_disc),
            DropReason::NotDown,
        ),
        (
            datagram("198.51.100.9", 255, Hop::Single, &known),
            DropReason::WrongPeer,
        ),
        (
            datagram("198.51.100.1", 255, Hop::Multi, &known),
            DropReason::WrongPeer,
        ),
        (
            datagram("198.51.100.1", 254, Hop::Single, &good),
            DropReason::Ttl,
        ),
        (
            datagram("198.51.100.3", 64, Hop::Multi, &good),
            DropReason::AuthMissing,
        ),
    ];
    for (d, reason) in &cases {
        assert_eq!(e.receive(d, now), Err(*reason), "{reason:?}");
    }
    for (_, reason) in &cases {
        let expected = cases.iter().filter(|(_, r)| r == reason).count() as u64;
        assert_eq!(e.drops().get(*reason), expected, "{reason:?}");
    }
    // The two that reached a session are its drops too.
    assert_eq!(e.status(single).unwrap().1.get(DropReason::Ttl), 1);
    assert_eq!(e.status(multi).unwrap().1.get(DropReason::AuthMissing), 1);
    for id in [single, multi] {
        let s = e.session_mut(id).unwrap();
        assert_eq!((s.state(), s.remote_disc()), (State::Down, 0));
        assert_eq!(s.poll_transition(), None);
    }
    // Every reason has a distinct name.
    let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), DropReason::ALL.len());
}

#[test]
fn multihop_packets_may_arrive_with_any_ttl() {
    let now = Instant::now();
    let (mut e, _, multi) = endpoint(now);
    // A's packets, signed with the right key by a session like ours.
    let mut peer = crate::bfd::session::Session::new(config(true), 0x99, 5, now);
    let mut out = Vec::new();
    assert!(peer.poll_transmit(now, &mut out));
    assert_eq!(
        e.receive(&datagram("198.51.100.3", 61, Hop::Multi, &out), now),
        Ok(multi)
    );
    assert_eq!(e.session_mut(multi).unwrap().state(), State::Init);
}

#[test]
fn discriminators_are_unique_and_never_zero() {
    let now = Instant::now();
    let mut e = Endpoint::new();
    let mut draws = [0u32, 5, 5, 5, 6].into_iter();
    let key = SessionKey {
        peer: ip("198.51.100.1"),
        local: None,
        hop: Hop::Single,
    };
    let a = e.add(key.clone(), config(false), || draws.next().unwrap(), 1, now);
    let b = e.add(key, config(false), || draws.next().unwrap(), 2, now);
    assert_eq!(e.session_mut(a).unwrap().local_disc(), 5);
    assert_eq!(e.session_mut(b).unwrap().local_disc(), 6);
    e.remove(a);
    let bytes = packet(State::Up, 0x99, 5);
    assert_eq!(
        e.receive(&datagram("198.51.100.1", 255, Hop::Single, &bytes), now),
        Err(DropReason::UnknownDiscriminator)
    );
}
