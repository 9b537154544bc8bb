//! The BGP speaker (session state machine, codec, what we announce),
//! sans I/O, fed arbitrary bytes after a valid OPEN and KEEPALIVE, in
//! arbitrary read splits and with time passing between reads. Whatever
//! the neighbour sends: no panic, and everything we put on the wire is
//! whole, valid BGP messages; once we close, the last message is the
//! NOTIFICATION we close with, unless the neighbour sent one.

#![no_main]

use std::time::{Duration, Instant};

use edge_agent::bgp::{
    codec::{self, CodecOptions},
    message::Message,
    session::{DownReason, State},
    speaker::SpeakerEvent,
};
use edge_fuzz::fixtures::{connected_speaker, peer_open_and_keepalive};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut now = t0;
    let mut s = connected_speaker(now);
    let mut wire = Vec::new();
    s.received(&peer_open_and_keepalive(), now);
    assert_eq!(s.state(), State::Established);
    // Each read: one byte of length (1..=256), one of milliseconds passed
    // before it, then that many bytes.
    let mut rest = data;
    let mut closed = false;
    while let [len, ms, tail @ ..] = rest {
        let len = (usize::from(*len) + 1).min(tail.len());
        now += Duration::from_millis(u64::from(*ms) * 20);
        s.handle_timeout(now);
        s.received(&tail[..len], now);
        rest = &tail[len..];
        wire.extend_from_slice(s.transmit());
        let n = s.transmit().len();
        s.transmitted(n, now);
        while let Some(event) = s.poll_event() {
            if event == SpeakerEvent::Close {
                closed = true;
            }
        }
        if closed {
            break;
        }
    }
    // What we sent: whole, valid messages (four-octet ASNs from the
    // first UPDATE on: both sides said so).
    let mut at = 0;
    let mut last = None;
    let mut options = CodecOptions::default();
    while at < wire.len() {
        let decoded = codec::decode(&wire[at..], &options)
            .unwrap_or_else(|e| panic!("we sent an invalid message: {e:?}"))
            .expect("we sent a cut message");
        assert!(decoded.revised.is_empty(), "we sent {:?}", decoded.revised);
        at += decoded.len;
        options.four_octet_as = true;
        last = Some(decoded.message);
    }
    // We close with a NOTIFICATION of ours, and that is the last thing
    // we send; unless the neighbour sent one first (RFC 4271 section 6.4:
    // the connection is closed, nothing is sent back).
    if closed {
        match &s.status().last_down {
            Some(DownReason::NotificationReceived(_)) => {}
            Some(DownReason::NotificationSent(sent)) => assert_eq!(
                last,
                Some(Message::Notification(sent.clone())),
                "not the last message sent"
            ),
            other => panic!("closed for {other:?}"),
        }
    }
});
