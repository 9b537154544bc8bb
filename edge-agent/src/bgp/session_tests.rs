//! The state machine driven with simulated time: no sockets, no clock.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use super::*;
use crate::bgp::message::{MpReach, RouteRefresh};

const PEER_ID: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

fn config() -> SessionConfig {
    SessionConfig {
        local_as: 64500,
        peer_as: 64496,
        bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        hold_time: 90,
        connect_retry: Duration::from_secs(5),
        passive: false,
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        graceful_restart: None,
        max_prefixes: None,
    }
}

fn peer_open(asn: u32, hold_time: u16) -> Open {
    Open {
        version: 4,
        my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
        hold_time,
        bgp_id: PEER_ID,
        capabilities: vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ],
    }
}

fn drain(s: &mut Session) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

fn sent(actions: &[Action]) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn notification_sent(actions: &[Action]) -> Option<Notification> {
    sent(actions).into_iter().find_map(|m| match m {
        Message::Notification(n) => Some(n),
        _ => None,
    })
}

/// A session driven to Established with a neighbour proposing `hold`.
fn established(config: SessionConfig, hold: u16, t0: Instant) -> Session {
    let mut s = Session::new(config);
    s.handle(Input::Start, t0);
    s.handle(Input::TransportConnected, t0);
    s.handle(Input::Message(Message::Open(peer_open(64496, hold))), t0);
    s.handle(Input::Message(Message::Keepalive), t0);
    assert_eq!(s.state(), State::Established);
    drain(&mut s);
    s
}

#[test]
fn start_connect_open_keepalive_established() {
    let t0 = Instant::now();
    let mut s = Session::new(config());
    s.handle(Input::Start, t0);
    assert_eq!(
        drain(&mut s),
        vec![
            Action::Connect,
            Action::StateChanged {
                from: State::Idle,
                to: State::Connect
            }
        ]
    );
    s.handle(Input::TransportConnected, t0);
    let actions = drain(&mut s);
    let Some(Message::Open(open)) = sent(&actions).into_iter().next() else {
        panic!("no OPEN: {actions:?}")
    };
    assert_eq!(
        (open.version, open.my_as, open.hold_time, open.bgp_id),
        (4, 64500, 90, Ipv4Addr::new(192, 0, 2, 1))
    );
    for cap in [
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::Multiprotocol(Family::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::FourOctetAs(64500),
    ] {
        assert!(
            open.capabilities.contains(&cap),
            "{cap:?} missing from {open:?}"
        );
    }
    assert_eq!(s.state(), State::OpenSent);
    // While waiting for the neighbour's OPEN, the hold timer is the large one.
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(240)));

    s.handle(Input::Message(Message::Open(peer_open(64496, 30))), t0);
    assert_eq!(sent(&drain(&mut s)), vec![Message::Keepalive]);
    assert_eq!(s.state(), State::OpenConfirm);
    s.handle(Input::Message(Message::Keepalive), t0);
    let actions = drain(&mut s);
    let n = actions.iter().find_map(|a| match a {
        Action::Established(n) => Some(n.clone()),
        _ => None,
    });
    let n = n.expect("Established action");
    assert_eq!(n.hold_time, 30, "the smaller hold time wins");
    assert!(n.four_octet_as && n.route_refresh);
    assert_eq!(n.families, vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
}

#[test]
fn keepalives_every_third_of_the_hold_time() {
    let t0 = Instant::now();
    let mut s = established(config(), 30, t0);
    let mut at = t0;
    for i in 1..=5 {
        let due = s.poll_timeout().expect("a deadline");
        assert_eq!(due, t0 + Duration::from_secs(10 * i), "keepalive {i}");
        at = due;
        s.handle_timeout(at);
        assert_eq!(sent(&drain(&mut s)), vec![Message::Keepalive]);
        // The neighbour keeps its side alive too.
        s.handle(Input::Message(Message::Keepalive), at);
    }
    assert_eq!(s.state(), State::Established, "at {at:?}");
}

#[test]
fn hold_timer_expiry_sends_notification_then_restarts() {
    let t0 = Instant::now();
    let mut s = established(config(), 30, t0);
    // Our keepalives go out, but the neighbour says nothing for 30 s.
    let mut now = t0;
    while s.state() == State::Established {
        now = s.poll_timeout().unwrap();
        s.handle_timeout(now);
    }
    assert_eq!(now, t0 + Duration::from_secs(30));
    let actions = drain(&mut s);
    assert_eq!(
        notification_sent(&actions),
        Some(Notification {
            code: 4,
            subcode: 0,
            data: vec![]
        })
    );
    assert!(actions.contains(&Action::Close));
    assert_eq!(s.state(), State::Idle);
    // Automatic restart after the idle hold (ConnectRetry).
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(5)));
    s.handle_timeout(now + Duration::from_secs(5));
    assert_eq!(s.state(), State::Connect);
    assert!(drain(&mut s).contains(&Action::Connect));
}

#[test]
fn hold_time_zero_means_no_keepalives_and_no_hold_timer() {
    let t0 = Instant::now();
    let s = established(config(), 0, t0);
    assert_eq!(s.poll_timeout(), None);
}

/// One OPEN error case.
type OpenCase = (SessionConfig, Open, (u8, u8), Vec<u8>);

#[test]
fn open_errors_get_their_notifications() {
    let t0 = Instant::now();
    // (our config, the neighbour's OPEN, expected code/subcode, expected data)
    let cases: Vec<OpenCase> = vec![
        (config(), peer_open(64497, 90), (2, 2), vec![]),
        (
            config(),
            Open {
                bgp_id: Ipv4Addr::new(192, 0, 2, 1),
                ..peer_open(64496, 90)
            },
            (2, 3),
            vec![],
        ),
        (
            SessionConfig {
                local_as: 4_200_000_000,
                ..config()
            },
            Open {
                capabilities: vec![Capability::Multiprotocol(Family::IPV4_UNICAST)],
                ..peer_open(64496, 90)
            },
            (2, 7),
            [vec![65, 4], 4_200_000_000u32.to_be_bytes().to_vec()].concat(),
        ),
        (
            SessionConfig {
                families: vec![Family::IPV6_UNICAST],
                ..config()
            },
            Open {
                capabilities: vec![Capability::FourOctetAs(64496)],
                ..peer_open(64496, 90)
            },
            (2, 7),
            vec![1, 4, 0, 2, 0, 1],
        ),
    ];
    for (config, open, (code, subcode), data) in cases {
        let mut s = Session::new(config);
        s.handle(Input::Start, t0);
        s.handle(Input::TransportConnected, t0);
        drain(&mut s);
        s.handle(Input::Message(Message::Open(open.clone())), t0);
        let actions = drain(&mut s);
        assert_eq!(
            notification_sent(&actions),
            Some(Notification {
                code,
                subcode,
                data
            }),
            "{open:?}"
        );
        assert_eq!(s.state(), State::Idle);
    }
}

#[test]
fn four_octet_asns_use_as_trans_in_the_open() {
    let t0 = Instant::now();
    let mut s = Session::new(SessionConfig {
        local_as: 4_200_000_000,
        ..config()
    });
    s.handle(Input::Start, t0);
    s.handle(Input::TransportConnected, t0);
    let Some(Message::Open(open)) = sent(&drain(&mut s)).into_iter().next() else {
        panic!()
    };
    assert_eq!(open.my_as, AS_TRANS);
    assert!(
        open.capabilities
            .contains(&Capability::FourOctetAs(4_200_000_000))
    );
    // A neighbour with a four-octet ASN is recognised through its capability.
    let mut s = Session::new(SessionConfig {
        peer_as: 4_200_000_001,
        ..config()
    });
    s.handle(Input::Start, t0);
    s.handle(Input::TransportConnected, t0);
    s.handle(
        Input::Message(Message::Open(peer_open(4_200_000_001, 90))),
        t0,
    );
    assert_eq!(s.state(), State::OpenConfirm);
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let t0 = Instant::now();
    let mut s = Session::new(config());
    s.handle(Input::Start, t0);
    s.handle(Input::TransportConnected, t0);
    drain(&mut s);
    s.handle(Input::Message(Message::Keepalive), t0);
    assert_eq!(
        notification_sent(&drain(&mut s)).map(|n| (n.code, n.subcode)),
        Some((5, 1))
    );

    let mut s = Session::new(config());
    s.handle(Input::Start, t0);
    s.handle(Input::TransportConnected, t0);
    s.handle(Input::Message(Message::Open(peer_open(64496, 90))), t0);
    drain(&mut s);
    s.handle(Input::Message(Message::Update(Update::default())), t0);
    assert_eq!(
        notification_sent(&drain(&mut s)).map(|n| (n.code, n.subcode)),
        Some((5, 2))
    );

    let mut s = established(config(), 90, t0);
    s.handle(Input::Message(Message::Open(peer_open(64496, 90))), t0);
    assert_eq!(
        notification_sent(&drain(&mut s)).map(|n| (n.code, n.subcode)),
        Some((5, 3))
    );
}

#[test]
fn a_received_notification_ends_the_session_without_answering() {
    let t0 = Instant::now();
    let mut s = established(config(), 90, t0);
    let n = Notification {
        code: 6,
        subcode: 4,
        data: vec![],
    };
    s.handle(Input::Message(Message::Notification(n.clone())), t0);
    let actions = drain(&mut s);
    assert!(
        sent(&actions).is_empty(),
        "never answer a NOTIFICATION: {actions:?}"
    );
    assert!(actions.contains(&Action::Down(DownReason::NotificationReceived(n))));
    assert_eq!(s.state(), State::Idle);
    assert!(s.poll_timeout().is_some(), "restarts later");
}

#[test]
fn stop_sends_cease_with_the_shutdown_message_and_stays_down() {
    let t0 = Instant::now();
    let mut s = established(config(), 90, t0);
    s.handle(
        Input::Stop {
            reason: "maintenance: pop-fra1 draining".into(),
        },
        t0,
    );
    let actions = drain(&mut s);
    let n = notification_sent(&actions).expect("Cease");
    assert_eq!((n.code, n.subcode), (6, 2));
    assert_eq!(n.data[0] as usize, n.data.len() - 1);
    assert_eq!(&n.data[1..], b"maintenance: pop-fra1 draining");
    assert_eq!(actions.last(), Some(&Action::Down(DownReason::Stopped)));
    assert_eq!(s.poll_timeout(), None, "a stopped session does not restart");
    // RFC 8203 caps the message at 255 bytes, cut on a character boundary.
    let long = "é".repeat(200);
    let n = shutdown_notification(&long);
    assert_eq!(n.data[0], 254);
    assert!(std::str::from_utf8(&n.data[1..]).is_ok());
}

#[test]
fn too_many_prefixes_cease_with_the_limit() {
    let t0 = Instant::now();
    let mut s = established(
        SessionConfig {
            max_prefixes: Some(2),
            ..config()
        },
        90,
        t0,
    );
    let p = |i: u8| Prefix::V4 {
        addr: Ipv4Addr::new(198, 18, i, 0),
        len: 24,
    };
    let announce = |prefixes: Vec<Prefix>| {
        Message::Update(Update {
            nlri: prefixes,
            ..Update::default()
        })
    };
    s.handle(Input::Message(announce(vec![p(1), p(2)])), t0);
    assert!(drain(&mut s).contains(&Action::ReceivedPrefixes(2)));
    // The same prefixes again are not more prefixes.
    s.handle(Input::Message(announce(vec![p(1), p(2)])), t0);
    assert!(drain(&mut s).contains(&Action::ReceivedPrefixes(2)));
    s.handle(Input::Message(announce(vec![p(3)])), t0);
    let n = notification_sent(&drain(&mut s)).expect("Cease");
    assert_eq!(
        (n.code, n.subcode, n.data),
        (6, 1, vec![0, 1, 1, 0, 0, 0, 2])
    );
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn withdrawals_and_mp_nlri_count_too() {
    let t0 = Instant::now();
    let mut s = established(config(), 90, t0);
    let v6 = Prefix::V6 {
        addr: "2001:db8:c1::".parse().unwrap(),
        len: 48,
    };
    let mut update = Update::default();
    update.attributes.mp_reach = Some(MpReach {
        family: Family::IPV6_UNICAST,
        next_hop: vec![0; 16],
        nlri: vec![v6],
    });
    s.handle(Input::Message(Message::Update(update)), t0);
    assert!(drain(&mut s).contains(&Action::ReceivedPrefixes(1)));
    let mut update = Update::default();
    update.attributes.mp_unreach = Some(crate::bgp::message::MpUnreach {
        family: Family::IPV6_UNICAST,
        withdrawn: vec![v6],
    });
    s.handle(Input::Message(Message::Update(update)), t0);
    assert!(drain(&mut s).contains(&Action::ReceivedPrefixes(0)));
}

#[test]
fn stalled_writes_trip_the_send_hold_timer() {
    let t0 = Instant::now();
    let mut s = established(config(), 90, t0);
    s.handle(Input::WriteBlocked(true), t0);
    // RFC 9687: at least 8 minutes (and twice the hold time).
    let mut now = t0;
    while s.state() == State::Established {
        now = s.poll_timeout().unwrap();
        s.handle_timeout(now);
        // The neighbour still talks to us; only our writes are stuck.
        s.handle(Input::Message(Message::Keepalive), now);
    }
    assert_eq!(now, t0 + Duration::from_secs(480));
    assert_eq!(notification_sent(&drain(&mut s)).map(|n| n.code), Some(8));
    // Writes that move again disarm it.
    let mut s = established(config(), 90, t0);
    s.handle(Input::WriteBlocked(true), t0);
    s.handle(Input::WriteBlocked(false), t0 + Duration::from_secs(1));
    assert!(s.poll_timeout().unwrap() < t0 + Duration::from_secs(480));
}

#[test]
fn connect_retry_and_passive_mode() {
    let t0 = Instant::now();
    let mut s = Session::new(config());
    s.handle(Input::Start, t0);
    drain(&mut s);
    s.handle(Input::TransportClosed, t0);
    assert_eq!(s.state(), State::Active);
    s.handle_timeout(t0 + Duration::from_secs(5));
    assert_eq!(s.state(), State::Connect);
    assert!(drain(&mut s).contains(&Action::Connect));

    let mut passive = Session::new(SessionConfig {
        passive: true,
        ..config()
    });
    passive.handle(Input::Start, t0);
    assert_eq!(passive.state(), State::Active);
    passive.handle_timeout(t0 + Duration::from_secs(60));
    assert!(
        !drain(&mut passive).contains(&Action::Connect),
        "a passive session never connects"
    );
    passive.handle(Input::TransportConnected, t0);
    assert_eq!(passive.state(), State::OpenSent);
}

#[test]
fn route_refresh_asks_for_our_routes_again() {
    let t0 = Instant::now();
    let mut s = established(config(), 90, t0);
    s.handle(
        Input::Message(Message::RouteRefresh(RouteRefresh {
            family: Family::IPV6_UNICAST,
        })),
        t0,
    );
    assert_eq!(
        drain(&mut s),
        vec![Action::ResendRoutes(Family::IPV6_UNICAST)]
    );
}

#[test]
fn graceful_restart_flags_follow_our_restart() {
    let t0 = Instant::now();
    for restarted in [false, true] {
        let gr = GracefulRestart {
            restart_time: 120,
            restarted,
        };
        let mut s = Session::new(SessionConfig {
            graceful_restart: Some(gr),
            ..config()
        });
        s.handle(Input::Start, t0);
        s.handle(Input::TransportConnected, t0);
        let Some(Message::Open(open)) = sent(&drain(&mut s)).into_iter().next() else {
            panic!()
        };
        let expected = Capability::GracefulRestart {
            restarted,
            restart_time: 120,
            families: vec![
                (Family::IPV4_UNICAST, restarted),
                (Family::IPV6_UNICAST, restarted),
            ],
        };
        assert!(open.capabilities.contains(&expected), "{open:?}");
    }
}
