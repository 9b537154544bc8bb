//! The tokio layer against a scripted neighbour over in-memory streams:
//! collisions decided at OpenConfirm by the BGP identifiers, a second
//! connection refused once Established, the agent's intent on the wire,
//! and a neighbour that floods UPDATEs held back by the importer's pace.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex},
    sync::{mpsc, watch},
};

use super::*;
use crate::bgp::{
    codec::{self, CodecOptions},
    message::{Attributes, Capability, Family, Message, Notification, Open, Origin, Prefix},
    rib_out::{OriginAttrs, Origination},
    session::SessionConfig,
};

const PEER_ID: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

fn config(bgp_id: Ipv4Addr) -> SessionConfig {
    SessionConfig {
        local_as: 64500,
        peer_as: 64496,
        bgp_id,
        hold_time: 90,
        connect_retry: Duration::from_secs(1),
        passive: false,
        families: vec![Family::IPV4_UNICAST],
        graceful_restart: None,
        max_prefixes: None,
    }
}

fn origination() -> Origination {
    Origination {
        local_as: 64500,
        ebgp: true,
        next_hop_v4: Some(Ipv4Addr::new(198, 51, 100, 2)),
        next_hop_v6: None,
    }
}

/// The scripted neighbour's end of a connection.
struct Peer(DuplexStream);

impl Peer {
    async fn send(&mut self, message: Message) {
        let mut bytes = Vec::new();
        codec::encode(
            &message,
            &CodecOptions {
                four_octet_as: true,
            },
            &mut bytes,
        )
        .unwrap();
        self.0.write_all(&bytes).await.unwrap();
    }

    async fn open(&mut self) {
        self.send(Message::Open(Open {
            version: 4,
            my_as: 64496,
            hold_time: 90,
            bgp_id: PEER_ID,
            capabilities: vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::FourOctetAs(64496),
            ],
        }))
        .await;
    }

    /// The next message from us, within a second.
    async fn recv(&mut self) -> Message {
        let mut buf = Vec::new();
        loop {
            if let Some(d) = codec::decode(
                &buf,
                &CodecOptions {
                    four_octet_as: true,
                },
            )
            .unwrap()
            {
                return d.message;
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(1), self.0.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "connection closed");
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn cease_7() -> Message {
    Message::Notification(Notification {
        code: 6,
        subcode: 7,
        data: vec![],
    })
}

/// Waits until the published status says Established.
async fn established(status: &mut watch::Receiver<Status>) {
    status
        .wait_for(|s| s.state == Some(State::Established))
        .await
        .unwrap();
}

fn stop(intent: &watch::Sender<Intent>) {
    intent.send_modify(|i| i.stop("done"));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs a neighbour with identifier `local_id` whose first connection is
/// ours, drives the scripted neighbour through `script`, and returns the
/// status once the neighbour has stopped.
fn scenario<F, Fut>(local_id: Ipv4Addr, script: F) -> Status
where
    F: FnOnce(
        Peer,
        mpsc::Sender<DuplexStream>,
        watch::Sender<Intent>,
        watch::Receiver<Status>,
    ) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    runtime().block_on(async move {
        let (ours, theirs) = duplex(65536);
        let (inbound_tx, mut inbound) = mpsc::channel(2);
        let (intent_tx, mut intent) = watch::channel(Intent::default());
        let (telemetry, status) = Telemetry::new();
        let mut speaker = Speaker::new(config(local_id), origination(), Instant::now());
        // The first connection is ours already: no further ones.
        let _ = speaker.poll_event();
        let links = Links {
            liveness: None,
            connect: None,
            inbound: Some(&mut inbound),
        };
        let run = drive(
            &mut speaker,
            Some((ours, true)),
            links,
            &mut intent,
            &telemetry,
            false,
        );
        let script = script(Peer(theirs), inbound_tx, intent_tx.clone(), status.clone());
        let (ended, ()) = tokio::join!(run, script);
        assert_eq!(ended, None, "an upstream neighbour runs until stopped");
        drop(intent_tx);
        status.borrow().clone()
    })
}

#[test]
fn a_higher_neighbour_identifier_wins_the_collision() {
    // We are 192.0.2.1, the neighbour 198.51.100.1: its connection survives.
    let status = scenario(
        Ipv4Addr::new(192, 0, 2, 1),
        |mut a, inbound, intent, mut status| async move {
            assert!(matches!(a.recv().await, Message::Open(_)));
            a.open().await;
            assert_eq!(a.recv().await, Message::Keepalive, "OpenConfirm");
            let (second, theirs) = duplex(65536);
            inbound.send(second).await.unwrap();
            assert_eq!(
                a.recv().await,
                cease_7(),
                "our connection is closed with Cease/7"
            );
            // The session moves to the neighbour's connection.
            let mut b = Peer(theirs);
            assert!(matches!(b.recv().await, Message::Open(_)));
            b.open().await;
            assert_eq!(b.recv().await, Message::Keepalive);
            b.send(Message::Keepalive).await;
            established(&mut status).await;
            stop(&intent);
            assert!(
                matches!(b.recv().await, Message::Notification(n) if (n.code, n.subcode) == (6, 2))
            );
        },
    );
    assert_eq!(status.collisions, 1);
    assert_eq!(status.established_count, 1);
    assert_eq!(status.last_down, Some(DownReason::Stopped));
}

#[test]
fn a_higher_local_identifier_keeps_our_connection() {
    // We are 203.0.113.254, above the neighbour: its new connection is refused.
    let status = scenario(
        Ipv4Addr::new(203, 0, 113, 254),
        |mut a, inbound, intent, mut status| async move {
            assert!(matches!(a.recv().await, Message::Open(_)));
            a.open().await;
            assert_eq!(a.recv().await, Message::Keepalive);
            let (second, theirs) = duplex(65536);
            inbound.send(second).await.unwrap();
            let mut b = Peer(theirs);
            assert_eq!(
                b.recv().await,
                cease_7(),
                "the neighbour's new connection is refused"
            );
            // Ours goes on to Established and then shuts down cleanly.
            a.send(Message::Keepalive).await;
            established(&mut status).await;
            stop(&intent);
            assert!(
                matches!(a.recv().await, Message::Notification(n) if (n.code, n.subcode) == (6, 2))
            );
        },
    );
    assert_eq!(status.last_down, Some(DownReason::Stopped));
}

#[test]
fn an_established_session_refuses_a_second_connection() {
    let status = scenario(
        Ipv4Addr::new(192, 0, 2, 1),
        |mut a, inbound, intent, mut status| async move {
            assert!(matches!(a.recv().await, Message::Open(_)));
            a.open().await;
            assert_eq!(a.recv().await, Message::Keepalive);
            a.send(Message::Keepalive).await;
            // Established now, even though the neighbour's identifier is higher.
            established(&mut status).await;
            let (second, theirs) = duplex(65536);
            inbound.send(second).await.unwrap();
            assert_eq!(Peer(theirs).recv().await, cease_7());
            stop(&intent);
            assert!(matches!(a.recv().await, Message::Notification(n) if n.code == 6));
        },
    );
    assert_eq!(status.last_down, Some(DownReason::Stopped));
}

#[test]
fn the_agents_announcements_are_published_and_sent() {
    let prefix = Prefix::V4 {
        addr: Ipv4Addr::new(203, 0, 113, 0),
        len: 24,
    };
    let attrs = OriginAttrs {
        med: Some(20),
        ..OriginAttrs::default()
    };
    let expected = attrs.clone();
    let status = scenario(
        Ipv4Addr::new(192, 0, 2, 1),
        |mut a, _inbound, intent, status| async move {
            assert!(matches!(a.recv().await, Message::Open(_)));
            a.open().await;
            assert_eq!(a.recv().await, Message::Keepalive);
            a.send(Message::Keepalive).await;
            intent.send_modify(|i| i.announce(prefix, expected.clone()));
            let Message::Update(update) = a.recv().await else {
                panic!("an UPDATE");
            };
            assert_eq!(update.nlri, [prefix]);
            assert_eq!(update.attributes.med, Some(20));
            {
                let now = status.borrow();
                assert_eq!(now.announced, [(prefix, expected.clone())]);
                assert_eq!(now.state, Some(State::Established));
                assert_eq!(now.established_count, 1);
                assert_eq!(now.updates_sent, 1);
            }
            intent.send_modify(|i| i.withdraw(prefix));
            let Message::Update(update) = a.recv().await else {
                panic!("an UPDATE");
            };
            assert_eq!(update.withdrawn, [prefix]);
            assert!(status.borrow().announced.is_empty());
            stop(&intent);
            assert!(matches!(a.recv().await, Message::Notification(n) if n.code == 6));
        },
    );
    assert_eq!(status.last_down, Some(DownReason::Stopped));
}

/// UPDATE `i` of the flood: one /32 out of 10.0.0.0/8, announced.
fn flood_update(i: u32) -> Message {
    Message::Update(Update {
        attributes: Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(vec![]),
            next_hop: Some(PEER_ID),
            local_pref: Some(100),
            ..Attributes::default()
        },
        nlri: vec![Prefix::host(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)))],
        ..Update::default()
    })
}

#[test]
fn a_neighbour_flooding_updates_is_held_back_by_the_importer_and_nothing_is_lost() {
    const FEED: usize = 8;
    const WIRE: usize = 16 * 1024;
    runtime().block_on(async {
        let (ours, theirs) = duplex(WIRE);
        let (intent_tx, intent) = watch::channel(Intent::default());
        let (feed_tx, mut feed) = mpsc::channel(FEED);
        let (mut telemetry, status) = Telemetry::new();
        telemetry.feed = Some(feed_tx);
        let mut session = config(Ipv4Addr::new(192, 0, 2, 1));
        session.passive = true;
        session.peer_as = 64500;
        let speaker = Speaker::new(session, origination(), Instant::now());
        let run = tokio::spawn(async move {
            run_connection(ours, false, speaker, intent, &telemetry, None).await
        });
        let mut peer = Peer(theirs);
        assert!(matches!(peer.recv().await, Message::Open(_)));
        peer.send(Message::Open(Open {
            version: 4,
            my_as: 64500,
            hold_time: 90,
            bgp_id: PEER_ID,
            capabilities: vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::FourOctetAs(64500),
            ],
        }))
        .await;
        assert_eq!(peer.recv().await, Message::Keepalive);
        peer.send(Message::Keepalive).await;
        // Nobody imports yet. The neighbour sends as fast as it can until
        // its writes stop going through.
        // A write cut short by the timeout leaves part of an UPDATE on the
        // wire: `off` remembers how much, so the stream stays whole.
        let mut bytes = Vec::new();
        let mut off = 0;
        let mut sent = 0u32;
        let mut written = 0usize;
        loop {
            if off == 0 {
                bytes.clear();
                codec::encode(
                    &flood_update(sent),
                    &CodecOptions {
                        four_octet_as: true,
                    },
                    &mut bytes,
                )
                .unwrap();
            }
            match tokio::time::timeout(Duration::from_millis(300), peer.0.write(&bytes[off..]))
                .await
            {
                Ok(result) => {
                    let n = result.unwrap();
                    off += n;
                    written += n;
                    if off == bytes.len() {
                        off = 0;
                        sent += 1;
                    }
                }
                Err(_) => break,
            }
            assert!(
                sent < 1_000_000,
                "the agent took everything: no backpressure"
            );
        }
        // What the agent holds is bounded by what it reads at once and
        // what the importer's queue takes, not by what the neighbour sends.
        let per_update = bytes.len();
        let bound = WIRE + READ_SIZE + (FEED + 1) * per_update + per_update;
        assert!(
            written <= bound,
            "the neighbour got {written} bytes ({sent} UPDATEs) through; at most {bound} expected"
        );
        assert_eq!(status.borrow().state, Some(State::Established));
        // The importer catches up: every UPDATE arrives, in order, the one
        // cut short included once the neighbour finishes writing it.
        let rest = bytes[off..].to_vec();
        let total = sent + u32::from(off > 0);
        let finish = async {
            if off > 0 {
                peer.0.write_all(&rest).await.unwrap();
            }
        };
        let import = async {
            assert!(matches!(feed.recv().await, Some(Feed::Established(_))));
            for i in 0..total {
                let Some(Feed::Update(update)) = feed.recv().await else {
                    panic!("update {i} of {total}");
                };
                let Message::Update(expected) = flood_update(i) else {
                    unreachable!()
                };
                assert_eq!(update, expected, "update {i}");
            }
        };
        tokio::join!(finish, import);
        let sent = total;
        // The session goes on: a KEEPALIVE still gets through both ways.
        peer.send(Message::Keepalive).await;
        stop(&intent_tx);
        loop {
            if let Message::Notification(n) = peer.recv().await {
                assert_eq!((n.code, n.subcode), (6, 2));
                break;
            }
        }
        assert_eq!(run.await.unwrap(), DownReason::Stopped);
        assert_eq!(status.borrow().received_prefixes, sent as usize);
    });
}

#[test]
fn failures_before_established_are_logged_once_a_minute_and_every_session_down() {
    let capture = edge_tests::logs::Capture::new();
    capture.during(|| {
        let mut log = FailureLog::default();
        let t0 = Instant::now();
        let refused = DownReason::NotificationReceived(Notification {
            code: 2,
            subcode: 2,
            data: vec![],
        });
        // A neighbour refusing our OPEN at every retry, for two minutes.
        for i in 0..24 {
            log.log(
                "198.51.100.1",
                &refused,
                false,
                t0 + Duration::from_secs(5 * i),
            );
        }
        // An Established session going down is always news.
        log.log(
            "198.51.100.1",
            &DownReason::TransportClosed,
            true,
            t0 + Duration::from_secs(121),
        );
    });
    assert_eq!(
        capture.lines("failed before Established"),
        2,
        "{}",
        capture.text()
    );
    assert_eq!(capture.lines("(11 more failures since the last line)"), 1);
    assert_eq!(
        capture.lines("down: the connection failed or was closed"),
        1
    );
}

/// A BFD session's status as a client sees it, with `failures` failures.
fn liveness(failures: u64) -> crate::bfd::BfdStatus {
    let key = crate::bfd::SessionKey {
        peer: IpAddr::V4(PEER_ID),
        local: None,
        hop: crate::bfd::Hop::Single,
    };
    crate::bfd::test_status(
        "upstream 198.51.100.1",
        key,
        crate::bfd::packet::State::Up,
        failures,
    )
}

#[test]
fn a_bfd_failure_ends_the_session_at_once_and_earlier_ones_do_not() {
    runtime().block_on(async {
        let (ours, theirs) = duplex(65536);
        let (_intent_tx, intent) = watch::channel(Intent::default());
        let (telemetry, mut status) = Telemetry::new();
        // A failure before the session started is not this session's.
        let (bfd_tx, mut bfd) = watch::channel(liveness(1));
        let mut session = config(Ipv4Addr::new(192, 0, 2, 1));
        session.passive = true;
        let speaker = Speaker::new(session, origination(), Instant::now());
        let run = tokio::spawn(async move {
            run_connection(ours, true, speaker, intent, &telemetry, Some(&mut bfd)).await
        });
        let mut peer = Peer(theirs);
        assert!(matches!(peer.recv().await, Message::Open(_)));
        peer.open().await;
        assert_eq!(peer.recv().await, Message::Keepalive);
        peer.send(Message::Keepalive).await;
        established(&mut status).await;
        // A status change that is no failure changes nothing.
        bfd_tx.send_modify(|s| s.session.counters.ups += 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!run.is_finished());
        bfd_tx.send_modify(|s| s.session.counters.failures += 1);
        let reason = tokio::time::timeout(Duration::from_secs(2), run)
            .await
            .expect("the session ends at once")
            .unwrap();
        assert_eq!(reason, DownReason::PathDown);
        // The connection was closed with no NOTIFICATION.
        let mut rest = Vec::new();
        let _ = peer.0.read_to_end(&mut rest).await;
        assert!(rest.is_empty(), "{rest:?}");
    });
}
