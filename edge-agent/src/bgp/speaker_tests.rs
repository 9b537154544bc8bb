//! The speaker driven with bytes and simulated time: what goes on the wire
//! and in which order, collisions, the agent's intent.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use super::*;
use crate::bgp::{
    message::{AsSegment, Capability, Open, Origin, RouteRefresh},
    session::GracefulRestart,
};

const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const V4: Prefix = Prefix::V4 {
    addr: Ipv4Addr::new(203, 0, 113, 0),
    len: 24,
};
const V6: Prefix = Prefix::V6 {
    addr: Ipv6Addr::new(0x2001, 0xdb8, 0xac, 0, 0, 0, 0, 0),
    len: 48,
};
/// A four-octet neighbour ASN (outside 16 bits): only decodes right with
/// four-octet AS_PATHs.
const BIG_AS: u32 = 4_200_000_000;

fn config(passive: bool) -> SessionConfig {
    SessionConfig {
        local_as: 64500,
        peer_as: 64496,
        bgp_id: LOCAL_ID,
        hold_time: 90,
        connect_retry: Duration::from_secs(5),
        passive,
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        graceful_restart: None,
        max_prefixes: None,
    }
}

fn origination() -> Origination {
    Origination {
        local_as: 64500,
        ebgp: true,
        next_hop_v4: Some(Ipv4Addr::new(198, 51, 100, 2)),
        next_hop_v6: Some((Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 2), None)),
    }
}

fn open(asn: u32, id: Ipv4Addr, graceful_restart: bool) -> Message {
    let mut capabilities = vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::Multiprotocol(Family::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::FourOctetAs(asn),
    ];
    if graceful_restart {
        capabilities.push(Capability::GracefulRestart {
            restarted: false,
            restart_time: 120,
            families: vec![],
        });
    }
    Message::Open(Open {
        version: 4,
        my_as: u16::try_from(asn).unwrap_or(crate::bgp::message::AS_TRANS),
        hold_time: 90,
        bgp_id: id,
        capabilities,
    })
}

/// `messages` on the wire, as the neighbour sends them (four-octet ASNs
/// once both said so).
fn wire(messages: &[Message], four_octet_as: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    for m in messages {
        codec::encode(m, &CodecOptions { four_octet_as }, &mut bytes).unwrap();
    }
    bytes
}

/// Everything the speaker has queued, decoded; marks it written.
fn sent(s: &mut Speaker, now: Instant) -> Vec<Message> {
    let mut out = Vec::new();
    let bytes = s.transmit().to_vec();
    let mut at = 0;
    while let Some(d) = codec::decode(
        &bytes[at..],
        &CodecOptions {
            four_octet_as: true,
        },
    )
    .unwrap()
    {
        at += d.len;
        out.push(d.message);
    }
    assert_eq!(at, bytes.len(), "whole messages only");
    s.transmitted(bytes.len(), now);
    out
}

fn events(s: &mut Speaker) -> Vec<SpeakerEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn intent(routes: &[(Prefix, OriginAttrs)]) -> Intent {
    Intent {
        routes: routes.iter().cloned().collect(),
        stop: None,
    }
}

/// An active speaker brought to Established on our own connection with a
/// neighbour of identifier `peer_id`.
fn established(peer_id: Ipv4Addr, graceful_restart: bool, now: Instant) -> Speaker {
    let mut s = Speaker::new(config(false), origination(), now);
    assert!(events(&mut s).contains(&SpeakerEvent::Connect));
    s.connected(true, now);
    assert!(matches!(sent(&mut s, now)[..], [Message::Open(_)]));
    s.received(&wire(&[open(64496, peer_id, graceful_restart)], false), now);
    assert_eq!(sent(&mut s, now), [Message::Keepalive]);
    s.received(&wire(&[Message::Keepalive], true), now);
    assert_eq!(s.state(), State::Established);
    s
}

#[test]
fn everything_wanted_goes_out_once_established_then_end_of_rib_then_only_changes() {
    let t0 = Instant::now();
    let mut s = Speaker::new(config(false), origination(), t0);
    // Wanted before the session is up: nothing on the wire yet.
    s.set_intent(
        &intent(&[(V4, OriginAttrs::default()), (V6, OriginAttrs::default())]),
        t0,
    );
    s.connected(true, t0);
    s.received(
        &wire(&[open(64496, Ipv4Addr::new(198, 51, 100, 1), true)], false),
        t0,
    );
    let _ = sent(&mut s, t0);
    s.received(&wire(&[Message::Keepalive], true), t0);
    let out = sent(&mut s, t0);
    assert_eq!(out.len(), 4, "{out:?}");
    let Message::Update(v4) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(v4.nlri, [V4]);
    assert_eq!(
        v4.attributes.as_path,
        Some(vec![AsSegment::Sequence(vec![64500])])
    );
    assert_eq!(v4.attributes.origin, Some(Origin::Igp));
    let Message::Update(v6) = &out[1] else {
        panic!("{out:?}")
    };
    assert_eq!(v6.attributes.mp_reach.as_ref().unwrap().nlri, [V6]);
    // End-of-RIB per family, after the routes.
    assert_eq!(out[2], Message::Update(Update::default()));
    let Message::Update(eor6) = &out[3] else {
        panic!("{out:?}")
    };
    assert!(
        eor6.attributes
            .mp_unreach
            .as_ref()
            .unwrap()
            .withdrawn
            .is_empty()
    );
    assert_eq!(s.status().established_count, 1);
    assert_eq!(s.status().updates_sent, 2);
    // The same intent again sends nothing; a change sends only the change.
    s.set_intent(
        &intent(&[(V4, OriginAttrs::default()), (V6, OriginAttrs::default())]),
        t0,
    );
    assert!(sent(&mut s, t0).is_empty());
    let med = OriginAttrs {
        med: Some(5),
        ..OriginAttrs::default()
    };
    s.set_intent(&intent(&[(V4, med.clone())]), t0);
    let out = sent(&mut s, t0);
    assert_eq!(out.len(), 2, "withdrawal, then the new attributes: {out:?}");
    let Message::Update(w) = &out[0] else {
        panic!()
    };
    assert_eq!(w.attributes.mp_unreach.as_ref().unwrap().withdrawn, [V6]);
    let Message::Update(a) = &out[1] else {
        panic!()
    };
    assert_eq!((a.nlri.as_slice(), a.attributes.med), (&[V4][..], Some(5)));
    assert_eq!(s.status().announced, [(V4, med)]);
}

#[test]
fn no_end_of_rib_without_graceful_restart_and_route_refresh_resends() {
    let t0 = Instant::now();
    let mut s = established(Ipv4Addr::new(198, 51, 100, 1), false, t0);
    assert!(sent(&mut s, t0).is_empty(), "nothing wanted, no End-of-RIB");
    s.set_intent(
        &intent(&[(V4, OriginAttrs::default()), (V6, OriginAttrs::default())]),
        t0,
    );
    assert_eq!(sent(&mut s, t0).len(), 2);
    s.received(
        &wire(
            &[Message::RouteRefresh(RouteRefresh {
                family: Family::IPV6_UNICAST,
            })],
            true,
        ),
        t0,
    );
    let out = sent(&mut s, t0);
    let [Message::Update(u)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(u.attributes.mp_reach.as_ref().unwrap().nlri, [V6]);
}

#[test]
fn stopping_withdraws_everything_before_the_cease_and_stays_down() {
    let t0 = Instant::now();
    let mut s = established(Ipv4Addr::new(198, 51, 100, 1), false, t0);
    s.set_intent(&intent(&[(V4, OriginAttrs::default())]), t0);
    let _ = sent(&mut s, t0);
    let _ = events(&mut s);
    let mut stop = intent(&[(V4, OriginAttrs::default())]);
    stop.stop("maintenance");
    s.set_intent(&stop, t0);
    let out = sent(&mut s, t0);
    let [Message::Update(w), Message::Notification(n)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(w.withdrawn, [V4]);
    assert!(n.is(CeaseSubcode::AdministrativeShutdown));
    assert_eq!(n.shutdown_message(), Some("maintenance"));
    assert!(s.is_stopped());
    let ev = events(&mut s);
    assert!(ev.contains(&SpeakerEvent::Close), "{ev:?}");
    assert!(
        ev.contains(&SpeakerEvent::Down(DownReason::Stopped)),
        "{ev:?}"
    );
    assert!(s.status().announced.is_empty());
    // Nothing restarts it.
    s.handle_timeout(t0 + Duration::from_secs(600));
    assert!(!events(&mut s).contains(&SpeakerEvent::Connect));
    s.set_intent(&intent(&[(V4, OriginAttrs::default())]), t0);
    assert!(s.transmit().is_empty());
}

#[test]
fn a_stop_before_established_ceases_at_once() {
    let t0 = Instant::now();
    let mut s = Speaker::new(config(false), origination(), t0);
    s.connected(true, t0);
    s.received(
        &wire(&[open(64496, Ipv4Addr::new(198, 51, 100, 1), false)], false),
        t0,
    );
    let _ = sent(&mut s, t0);
    assert_eq!(s.state(), State::OpenConfirm);
    let mut stop = intent(&[(V4, OriginAttrs::default())]);
    stop.stop("bye");
    s.set_intent(&stop, t0);
    let out = sent(&mut s, t0);
    assert!(
        matches!(&out[..], [Message::Notification(n)] if n.is(CeaseSubcode::AdministrativeShutdown)),
        "{out:?}"
    );
    assert!(s.is_stopped());
    // Not connected at all: nothing to send, stopped all the same.
    let mut idle = Speaker::new(config(true), origination(), t0);
    idle.set_intent(&stop, t0);
    assert!(idle.is_stopped() && idle.transmit().is_empty());
}

#[test]
fn updates_in_the_same_read_as_the_keepalive_decode_with_four_octet_asns() {
    let t0 = Instant::now();
    let mut s = Speaker::new(config(false), origination(), t0);
    s.connected(true, t0);
    s.received(
        &wire(&[open(64496, Ipv4Addr::new(198, 51, 100, 1), false)], false),
        t0,
    );
    let _ = sent(&mut s, t0);
    let _ = events(&mut s);
    let update = Update {
        attributes: Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(vec![AsSegment::Sequence(vec![64496, BIG_AS])]),
            next_hop: Some(Ipv4Addr::new(198, 51, 100, 1)),
            ..Attributes::default()
        },
        nlri: vec![Prefix::V4 {
            addr: Ipv4Addr::new(198, 18, 0, 0),
            len: 15,
        }],
        ..Update::default()
    };
    // KEEPALIVE (→ Established) and the first UPDATE arrive in one read.
    let mut bytes = wire(&[Message::Keepalive], false);
    bytes.extend(wire(&[Message::Update(update.clone())], true));
    s.received(&bytes, t0);
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.status().revised_errors, 0);
    assert_eq!(s.status().received_prefixes, 1);
    let received: Vec<Update> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            SpeakerEvent::Received(u) => Some(*u),
            _ => None,
        })
        .collect();
    assert_eq!(received, [update]);
}

#[test]
fn messages_cut_across_reads_are_put_together() {
    let t0 = Instant::now();
    let mut s = established(Ipv4Addr::new(198, 51, 100, 1), false, t0);
    let bytes = wire(&[Message::Keepalive, Message::Keepalive], true);
    for chunk in bytes.chunks(5) {
        s.received(chunk, t0);
    }
    assert_eq!(s.status().messages_received, 4, "OPEN, 3 KEEPALIVEs");
    assert_eq!(s.state(), State::Established);
}

#[test]
fn garbage_gets_a_notification_and_the_connection_closed() {
    let t0 = Instant::now();
    let mut s = established(Ipv4Addr::new(198, 51, 100, 1), false, t0);
    let _ = events(&mut s);
    let mut junk = vec![0u8; 19];
    junk[18] = 4;
    // And whatever follows in the same read is ignored.
    junk.extend(wire(&[Message::Keepalive], true));
    s.received(&junk, t0);
    let out = sent(&mut s, t0);
    assert!(
        matches!(&out[..], [Message::Notification(n)] if n.is(crate::bgp::notification::MessageHeaderError::ConnectionNotSynchronized)),
        "{out:?}"
    );
    let ev = events(&mut s);
    assert!(ev.contains(&SpeakerEvent::Close), "{ev:?}");
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.status().messages_received, 2, "OPEN, KEEPALIVE");
    // After the idle hold it tries again.
    s.handle_timeout(t0 + Duration::from_secs(5));
    assert!(events(&mut s).contains(&SpeakerEvent::Connect));
}

#[test]
fn stalled_writes_end_the_session_after_the_send_hold_time() {
    let t0 = Instant::now();
    let mut s = established(Ipv4Addr::new(198, 51, 100, 1), false, t0);
    s.set_intent(&intent(&[(V4, OriginAttrs::default())]), t0);
    // Nothing is written from now on.
    let deadline = s.poll_timeout().unwrap();
    assert!(deadline <= t0 + Duration::from_secs(30), "keepalive first");
    s.handle_timeout(t0 + Duration::from_secs(8 * 60));
    assert_eq!(s.state(), State::Idle, "RFC 9687: 8 minutes");
    assert!(
        matches!(s.status().last_down, Some(DownReason::NotificationSent(ref n)) if n.code == 8)
    );
    // Once the bytes move, the timer is off: the hold timer is what ends
    // a silent session then.
    let mut s = established(Ipv4Addr::new(198, 51, 100, 1), false, t0);
    s.set_intent(&intent(&[(V4, OriginAttrs::default())]), t0);
    let len = s.transmit().len();
    s.transmitted(len, t0);
    s.handle_timeout(t0 + Duration::from_secs(8 * 60));
    assert!(
        matches!(s.status().last_down, Some(DownReason::NotificationSent(ref n)) if n.code == 4)
    );
}

#[test]
fn a_higher_neighbour_identifier_wins_the_collision() {
    let t0 = Instant::now();
    // We are 192.0.2.1, the neighbour 198.51.100.1: its connection survives.
    let mut s = Speaker::new(config(false), origination(), t0);
    s.connected(true, t0);
    s.neighbour_connected(t0);
    assert_eq!(events(&mut s).last(), Some(&SpeakerEvent::HoldArrived));
    let _ = sent(&mut s, t0);
    s.received(
        &wire(&[open(64496, Ipv4Addr::new(198, 51, 100, 1), false)], false),
        t0,
    );
    let out = sent(&mut s, t0);
    // The KEEPALIVE of OpenConfirm, then the Cease that ends ours.
    assert!(
        matches!(&out[..], [Message::Keepalive, Message::Notification(n)] if n.is(CeaseSubcode::ConnectionCollisionResolution)),
        "{out:?}"
    );
    let ev = events(&mut s);
    let close = ev.iter().position(|e| *e == SpeakerEvent::Close).unwrap();
    let use_held = ev.iter().position(|e| *e == SpeakerEvent::UseHeld).unwrap();
    assert!(close < use_held, "{ev:?}");
    assert!(!ev.contains(&SpeakerEvent::Connect), "{ev:?}");
    assert_eq!(s.status().collisions, 1);
    // The session starts afresh on the neighbour's connection.
    s.connected(false, t0);
    assert!(matches!(sent(&mut s, t0)[..], [Message::Open(_)]));
    assert_eq!(s.state(), State::OpenSent);
}

#[test]
fn a_higher_local_identifier_keeps_our_connection() {
    let t0 = Instant::now();
    let mut s = Speaker::new(config(false), origination(), t0);
    s.connected(true, t0);
    s.neighbour_connected(t0);
    s.received(
        &wire(&[open(64496, Ipv4Addr::new(10, 0, 0, 1), false)], false),
        t0,
    );
    let ev = events(&mut s);
    assert_eq!(ev.last(), Some(&SpeakerEvent::RefuseHeld), "{ev:?}");
    assert!(!ev.contains(&SpeakerEvent::Close));
    s.received(&wire(&[Message::Keepalive], true), t0);
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.status().collisions, 1);
    assert_eq!(
        collision_cease(),
        wire(
            &[Message::Notification(Notification::new(
                CeaseSubcode::ConnectionCollisionResolution
            ))],
            false
        )
    );
}

#[test]
fn an_established_session_refuses_a_second_connection_and_a_newer_waiting_one_counts() {
    let t0 = Instant::now();
    let mut s = established(Ipv4Addr::new(198, 51, 100, 1), false, t0);
    let _ = events(&mut s);
    s.neighbour_connected(t0);
    assert_eq!(events(&mut s), [SpeakerEvent::RefuseArrived]);
    assert_eq!(s.status().collisions, 1);

    // Two waiting before the identifier is known: the older one goes.
    let mut s = Speaker::new(config(false), origination(), t0);
    s.connected(true, t0);
    let _ = events(&mut s);
    s.neighbour_connected(t0);
    s.neighbour_connected(t0);
    assert_eq!(
        events(&mut s),
        [
            SpeakerEvent::HoldArrived,
            SpeakerEvent::RefuseHeld,
            SpeakerEvent::HoldArrived
        ]
    );
    // Our connection dies before the decision: the waiting one takes over.
    s.connection_lost(t0);
    let ev = events(&mut s);
    assert!(ev.ends_with(&[SpeakerEvent::UseHeld]), "{ev:?}");
    assert!(!ev.contains(&SpeakerEvent::Connect), "{ev:?}");
}

#[test]
fn the_neighbours_connection_is_used_when_we_have_none() {
    let t0 = Instant::now();
    // Passive: waits in Active for the neighbour.
    let mut s = Speaker::new(config(true), origination(), t0);
    assert!(!events(&mut s).contains(&SpeakerEvent::Connect));
    s.neighbour_connected(t0);
    assert_eq!(events(&mut s), [SpeakerEvent::UseArrived]);
    s.connected(false, t0);
    assert!(matches!(sent(&mut s, t0)[..], [Message::Open(_)]));
    // Idle after a failure (the idle hold running): it starts at once.
    let mut s = established(Ipv4Addr::new(198, 51, 100, 1), false, t0);
    s.connection_lost(t0);
    assert_eq!(s.state(), State::Idle);
    let _ = events(&mut s);
    s.neighbour_connected(t0);
    let ev = events(&mut s);
    assert_eq!(ev.last(), Some(&SpeakerEvent::UseArrived), "{ev:?}");
    assert!(!ev.contains(&SpeakerEvent::Connect), "{ev:?}");
    // While stopping, nothing is accepted.
    let mut stop = Intent::default();
    stop.stop("done");
    s.set_intent(&stop, t0);
    let _ = events(&mut s);
    s.neighbour_connected(t0);
    assert_eq!(events(&mut s), [SpeakerEvent::RefuseArrived]);
}

#[test]
fn graceful_restart_is_offered_as_configured() {
    let t0 = Instant::now();
    let mut c = config(false);
    c.graceful_restart = Some(GracefulRestart {
        restart_time: 120,
        restarted: true,
    });
    let mut s = Speaker::new(c, origination(), t0);
    s.connected(true, t0);
    let out = sent(&mut s, t0);
    let [Message::Open(o)] = &out[..] else {
        panic!()
    };
    assert!(o.capabilities.iter().any(|c| matches!(
        c,
        Capability::GracefulRestart {
            restarted: true,
            ..
        }
    )));
}

#[test]
fn collisions_keep_the_connection_of_the_higher_identifier() {
    let low = Ipv4Addr::new(192, 0, 2, 1);
    let high = Ipv4Addr::new(192, 0, 2, 200);
    assert_eq!(resolve_collision(high, low), Keep::Outbound);
    assert_eq!(resolve_collision(low, high), Keep::Inbound);
    // Compared as integers, not as text.
    assert_eq!(
        resolve_collision(Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::new(9, 255, 255, 255)),
        Keep::Outbound
    );
}

#[test]
fn a_path_down_closes_the_session_at_once_without_a_notification_and_retries() {
    let t0 = Instant::now();
    let mut s = established(Ipv4Addr::new(198, 51, 100, 1), false, t0);
    s.set_intent(&intent(&[(V4, OriginAttrs::default())]), t0);
    let _ = sent(&mut s, t0);
    let _ = events(&mut s);
    s.path_down(t0);
    // Nothing to send: the neighbour could not hear it.
    assert!(s.transmit().is_empty());
    let ev = events(&mut s);
    assert!(ev.contains(&SpeakerEvent::Close), "{ev:?}");
    assert!(
        ev.contains(&SpeakerEvent::Down(DownReason::PathDown)),
        "{ev:?}"
    );
    assert_eq!(s.status().last_down, Some(DownReason::PathDown));
    // Once the connection is gone, a second report changes nothing.
    s.connection_lost(t0);
    s.path_down(t0);
    assert!(
        !events(&mut s)
            .iter()
            .any(|e| matches!(e, SpeakerEvent::Down(_)))
    );
    // It connects again after the connect-retry time, announcing again.
    s.handle_timeout(t0 + Duration::from_secs(6));
    assert!(events(&mut s).contains(&SpeakerEvent::Connect));
}

#[test]
fn a_path_down_before_established_changes_nothing() {
    let t0 = Instant::now();
    let mut s = Speaker::new(config(false), origination(), t0);
    let _ = events(&mut s);
    s.path_down(t0);
    assert!(events(&mut s).is_empty());
}
