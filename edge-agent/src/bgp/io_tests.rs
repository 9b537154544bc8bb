//! The tokio layer against a scripted neighbour over in-memory streams:
//! collisions decided at OpenConfirm by the BGP identifiers, a second
//! connection refused once Established.

use std::{net::Ipv4Addr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex},
    sync::{mpsc, watch},
};

use super::*;
use crate::bgp::{
    message::{Capability, Family, Open},
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

/// Runs one outbound connection of a session with identifier `local_id`,
/// drives the scripted neighbour through `script`, and returns how the
/// run ended.
fn scenario<F, Fut>(local_id: Ipv4Addr, script: F) -> Ended<DuplexStream>
where
    F: FnOnce(
        Peer,
        mpsc::Sender<DuplexStream>,
        mpsc::Sender<Command>,
        watch::Receiver<Status>,
    ) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (ours, theirs) = duplex(65536);
        let (inbound_tx, mut inbound) = mpsc::channel(2);
        let (commands_tx, mut commands) = mpsc::channel(2);
        let (telemetry, status) = Telemetry::new();
        let mut session = Session::new(config(local_id));
        session.handle(Input::Start, std::time::Instant::now());
        while session.poll_action().is_some() {}
        let mut rib = RibOut::default();
        let origination = origination();
        let run = run(
            ours,
            true,
            &mut inbound,
            &mut session,
            &mut rib,
            &origination,
            &mut commands,
            &telemetry,
        );
        // The agent stays: the command channel is open until the run ends.
        let script = script(Peer(theirs), inbound_tx, commands_tx.clone(), status);
        let (ended, ()) = tokio::join!(run, script);
        drop(commands_tx);
        ended
    })
}

#[test]
fn a_higher_neighbour_identifier_wins_the_collision() {
    // We are 192.0.2.1, the neighbour 198.51.100.1: its connection survives.
    let ended = scenario(
        Ipv4Addr::new(192, 0, 2, 1),
        |mut a, inbound, _commands, _status| async move {
            assert!(matches!(a.recv().await, Message::Open(_)));
            a.open().await;
            assert_eq!(a.recv().await, Message::Keepalive, "OpenConfirm");
            let (second, _keep) = duplex(65536);
            inbound.send(second).await.unwrap();
            assert_eq!(
                a.recv().await,
                cease_7(),
                "our connection is closed with Cease/7"
            );
        },
    );
    assert!(
        matches!(ended, Ended::Collision(_)),
        "the session moves to the neighbour's connection"
    );
}

#[test]
fn a_higher_local_identifier_keeps_our_connection() {
    // We are 203.0.113.254, above the neighbour: its new connection is refused.
    let ended = scenario(
        Ipv4Addr::new(203, 0, 113, 254),
        |mut a, inbound, commands, _status| async move {
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
            commands
                .send(Command::Shutdown("done".into()))
                .await
                .unwrap();
            assert!(
                matches!(a.recv().await, Message::Notification(n) if (n.code, n.subcode) == (6, 2))
            );
        },
    );
    assert!(matches!(ended, Ended::Down(DownReason::Stopped)));
}

#[test]
fn an_established_session_refuses_a_second_connection() {
    let ended = scenario(
        Ipv4Addr::new(192, 0, 2, 1),
        |mut a, inbound, commands, _status| async move {
            assert!(matches!(a.recv().await, Message::Open(_)));
            a.open().await;
            assert_eq!(a.recv().await, Message::Keepalive);
            a.send(Message::Keepalive).await;
            // Established now, even though the neighbour's identifier is higher.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let (second, theirs) = duplex(65536);
            inbound.send(second).await.unwrap();
            assert_eq!(Peer(theirs).recv().await, cease_7());
            commands
                .send(Command::Shutdown("done".into()))
                .await
                .unwrap();
            assert!(matches!(a.recv().await, Message::Notification(n) if n.code == 6));
        },
    );
    assert!(matches!(ended, Ended::Down(DownReason::Stopped)));
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
    let ended = scenario(
        Ipv4Addr::new(192, 0, 2, 1),
        |mut a, _inbound, commands, status| async move {
            assert!(matches!(a.recv().await, Message::Open(_)));
            a.open().await;
            assert_eq!(a.recv().await, Message::Keepalive);
            a.send(Message::Keepalive).await;
            commands
                .send(Command::Announce(prefix, expected.clone()))
                .await
                .unwrap();
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
            commands.send(Command::Withdraw(prefix)).await.unwrap();
            let Message::Update(update) = a.recv().await else {
                panic!("an UPDATE");
            };
            assert_eq!(update.withdrawn, [prefix]);
            assert!(status.borrow().announced.is_empty());
            commands
                .send(Command::Shutdown("done".into()))
                .await
                .unwrap();
            assert!(matches!(a.recv().await, Message::Notification(n) if n.code == 6));
        },
    );
    assert!(matches!(ended, Ended::Down(DownReason::Stopped)));
}
