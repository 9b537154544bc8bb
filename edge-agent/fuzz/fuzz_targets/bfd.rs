//! BFD (RFC 5880/5881/5883): Control packets decoded and re-encoded, and
//! a node's endpoint with two sessions (one plain, one with Meticulous
//! Keyed SHA1) fed a sequence of datagrams from the peers and elsewhere,
//! with time passing. Never a panic; whatever decodes re-encodes (if it
//! is of a kind we send) to a packet that decodes the same; every packet we send is valid; sessions
//! only make the transitions RFC 5880 section 6.2 allows.

#![no_main]

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use edge_agent::bfd::{
    Hop, SessionConfig, SessionKey, Timers,
    auth::AuthKey,
    endpoint::{Datagram, Endpoint},
    packet::{self, State, auth_type},
};
use libfuzzer_sys::fuzz_target;

const PLAIN: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));
const KEYED: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 3));

fn allowed(from: State, to: State) -> bool {
    use State::*;
    matches!(
        (from, to),
        (Down, Init | Up | AdminDown)
            | (Init, Up | Down | AdminDown)
            | (Up, Down | AdminDown)
            | (AdminDown, Down)
    )
}

fuzz_target!(|data: &[u8]| {
    // Every datagram, alone, through the codec. We only ever send
    // packets without authentication or with (Meticulous) Keyed SHA1, so
    // those are the ones `encode` writes (found by this target: a Simple
    // Password packet came back with a SHA1-sized section).
    let sent_by_us = |p: &packet::Packet| {
        p.auth.is_none_or(|a| {
            matches!(
                a.kind,
                auth_type::KEYED_SHA1 | auth_type::METICULOUS_KEYED_SHA1
            )
        })
    };
    if let Ok(p) = packet::decode(data)
        && sent_by_us(&p)
    {
        let mut out = Vec::new();
        packet::encode(&p, &mut out);
        let again = packet::decode(&out).expect("what we encode decodes");
        assert_eq!(again, p, "the round trip changed the packet");
    }
    let t0 = Instant::now();
    let mut now = t0;
    let timers = Timers {
        min_tx: Duration::from_millis(50),
        min_rx: Duration::from_millis(50),
        multiplier: 3,
    };
    let mut endpoint = Endpoint::new();
    let mut next = 0x1000u32;
    let mut draw = || {
        next += 1;
        next
    };
    for (peer, auth) in [
        (PLAIN, None),
        (
            KEYED,
            Some(AuthKey {
                meticulous: true,
                key_id: 1,
                secret: b"fuzz-secret".to_vec(),
            }),
        ),
    ] {
        let key = SessionKey {
            peer,
            local: None,
            hop: Hop::Single,
        };
        let config = SessionConfig { timers, auth };
        endpoint.add(key, config, &mut draw, 7, now);
    }
    // Each datagram: a byte of flags (which sender, TTL 255 or not), one
    // of milliseconds passed before it, one of length, then the bytes.
    let mut rest = data;
    let mut out = Vec::new();
    while let [flags, ms, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        now += Duration::from_millis(u64::from(*ms) * 4);
        endpoint.handle_timeout(now);
        let from = match flags & 3 {
            0 | 1 => PLAIN,
            2 => KEYED,
            _ => IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)),
        };
        let datagram = Datagram {
            from: SocketAddr::new(from, 49152),
            to: None,
            ttl: if flags & 4 == 0 { 255 } else { 254 },
            hop: Hop::Single,
            bytes: &tail[..len],
        };
        let _ = endpoint.receive(&datagram, now);
        rest = &tail[len..];
        endpoint.transmit_due(now, &mut out, |_, bytes| {
            packet::decode(bytes).expect("we send valid packets");
        });
        while let Some((_, t)) = endpoint.poll_transition() {
            assert!(allowed(t.from, t.to), "{:?} -> {:?}", t.from, t.to);
        }
    }
});
