use super::*;

fn id(name: &str) -> Identity {
    Identity::from_name(name).unwrap()
}

fn addr() -> SocketAddr {
    "198.51.100.2:4179".parse().unwrap()
}

fn drain(adj: &mut Adjacency) -> Vec<Output> {
    std::iter::from_fn(|| adj.poll()).collect()
}

fn states(outputs: &[Output]) -> Vec<AdjState> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::StateChanged { to, .. } => Some(*to),
            _ => None,
        })
        .collect()
}

fn adj(local: &str, peer: &str, now: Instant) -> Adjacency {
    Adjacency::new(id(local), id(peer), vec![addr()], Timers::default(), 7, now)
}

#[test]
fn the_normal_path_and_a_peer_going_away() {
    let t0 = Instant::now();
    let mut a = adj("a", "b", t0);
    assert_eq!(a.state(), AdjState::Candidate);
    let first = a.poll_timeout().unwrap();
    assert!(first <= t0 + Timers::default().initial_spread);
    a.handle_timeout(first);
    let out = drain(&mut a);
    assert_eq!(
        out[0],
        Output::Dial {
            conn: 1,
            addr: addr()
        }
    );
    assert_eq!(states(&out), vec![AdjState::Connecting]);
    a.dial_succeeded(1, first);
    let out = drain(&mut a);
    assert!(out.contains(&Output::Run { conn: 1 }));
    assert_eq!(states(&out), vec![AdjState::Authenticated]);
    a.established(1);
    let out = drain(&mut a);
    assert!(out.contains(&Output::Up { conn: 1 }));
    assert_eq!(a.state(), AdjState::Established);
    let t1 = first + Duration::from_secs(30);
    a.closed(1, t1);
    let out = drain(&mut a);
    assert_eq!(out[0], Output::Down);
    assert_eq!(states(&out), vec![AdjState::Down]);
    // The backoff starts at its minimum after a success, with ±20% spread.
    let retry = a.poll_timeout().unwrap() - t1;
    assert!(
        retry >= Duration::from_millis(800) && retry <= Duration::from_millis(1200),
        "{retry:?}"
    );
}

#[test]
fn the_higher_identity_defers_its_first_dial() {
    let t0 = Instant::now();
    let timers = Timers::default();
    for seed in 1..50 {
        let lower = Adjacency::new(id("a"), id("b"), vec![addr()], timers, seed, t0);
        let higher = Adjacency::new(id("b"), id("a"), vec![addr()], timers, seed, t0);
        assert!(lower.poll_timeout().unwrap() <= t0 + timers.initial_spread);
        assert!(higher.poll_timeout().unwrap() >= t0 + timers.defer);
        assert!(higher.poll_timeout().unwrap() > lower.poll_timeout().unwrap());
    }
}

#[test]
fn failures_back_off_exponentially_up_to_the_cap() {
    let mut now = Instant::now();
    let mut a = adj("a", "b", now);
    let mut waits = Vec::new();
    for _ in 0..10 {
        now = a.poll_timeout().unwrap();
        a.handle_timeout(now);
        let Some(Output::Dial { conn, .. }) = drain(&mut a).into_iter().next() else {
            panic!("no dial");
        };
        a.dial_failed(conn, now);
        assert_eq!(a.state(), AdjState::Down);
        drain(&mut a);
        waits.push((a.poll_timeout().unwrap() - now).as_secs_f64());
    }
    for pair in waits.windows(2).take(4) {
        assert!(pair[1] > pair[0] * 1.3, "{waits:?}");
    }
    assert!(waits.iter().all(|w| *w <= 60.0 * 1.2), "{waits:?}");
    assert!(waits[9] >= 60.0 * 0.8, "{waits:?}");
}

#[test]
fn nothing_happens_before_the_wait_and_no_dial_without_addresses() {
    let t0 = Instant::now();
    let mut a = Adjacency::new(id("a"), id("b"), Vec::new(), Timers::default(), 1, t0);
    a.handle_timeout(t0 + Duration::from_secs(1));
    assert!(drain(&mut a).is_empty());
    assert_eq!(a.state(), AdjState::Candidate);
    // Still accepts the peer's connection.
    assert_eq!(a.inbound(t0), Some(1));
    assert!(drain(&mut a).contains(&Output::Run { conn: 1 }));
}

/// Both nodes dial each other at once: each sees its own dial and the
/// peer's inbound connection authenticated, in either order. Both must
/// keep the same connection: the one the lower identity opened.
#[test]
fn simultaneous_connections_leave_exactly_one() {
    for inbound_first in [false, true] {
        let t0 = Instant::now();
        let mut a = adj("a", "b", t0);
        let mut b = adj("b", "a", t0);
        for node in [&mut a, &mut b] {
            let at = node.poll_timeout().unwrap();
            node.handle_timeout(at);
            drain(node);
        }
        // a's dial is b's inbound and the other way round.
        let (a_in, b_in);
        if inbound_first {
            a_in = a.inbound(t0);
            b_in = b.inbound(t0);
            a.dial_succeeded(1, t0);
            b.dial_succeeded(1, t0);
        } else {
            a.dial_succeeded(1, t0);
            b.dial_succeeded(1, t0);
            a_in = a.inbound(t0);
            b_in = b.inbound(t0);
        }
        let a_out = drain(&mut a);
        let b_out = drain(&mut b);
        // "a" < "b": a's own dial (a:1 = b's inbound) survives on both ends.
        assert_eq!(a.current(), Some(1), "{inbound_first}: {a_out:?}");
        assert_eq!(b.current(), b_in, "{inbound_first}: {b_out:?}");
        let _ = a_in;
        assert!(a_out.iter().any(|o| matches!(
            o,
            Output::Close {
                reason: CloseReason::Duplicate,
                ..
            }
        )));
        assert!(b_out.iter().any(|o| matches!(
            o,
            Output::Close {
                conn: 1,
                reason: CloseReason::Duplicate
            }
        )));
    }
}

#[test]
fn a_new_connection_from_the_same_side_replaces_an_established_one() {
    let t0 = Instant::now();
    let mut a = Adjacency::new(id("a"), id("b"), Vec::new(), Timers::default(), 1, t0);
    let first = a.inbound(t0).unwrap();
    a.established(first);
    drain(&mut a);
    // b restarted and connects again before a noticed the old one died.
    let second = a.inbound(t0).unwrap();
    let out = drain(&mut a);
    assert_eq!(
        out[..3],
        [
            Output::Close {
                conn: first,
                reason: CloseReason::Superseded
            },
            Output::Down,
            Output::Run { conn: second },
        ]
    );
    assert_eq!(a.state(), AdjState::Authenticated);
    // The old connection's end is no news.
    a.closed(first, t0);
    assert!(drain(&mut a).is_empty());
    a.established(second);
    assert_eq!(a.state(), AdjState::Established);
}

#[test]
fn an_established_adjacency_abandons_its_dial() {
    let t0 = Instant::now();
    let mut b = adj("b", "a", t0);
    let at = b.poll_timeout().unwrap();
    assert!(at >= t0 + Timers::default().defer);
    b.handle_timeout(at);
    drain(&mut b);
    let inbound = b.inbound(at).unwrap();
    b.established(inbound);
    let out = drain(&mut b);
    assert!(out.contains(&Output::Close {
        conn: 1,
        reason: CloseReason::Duplicate
    }));
    // The abandoned dial completing later is closed, and changes nothing.
    b.dial_succeeded(1, at);
    assert_eq!(
        drain(&mut b),
        vec![Output::Close {
            conn: 1,
            reason: CloseReason::Duplicate
        }]
    );
    assert_eq!(b.current(), Some(inbound));
    assert_eq!(b.state(), AdjState::Established);
}

#[test]
fn untrusted_closes_and_retries_removed_never_does() {
    let t0 = Instant::now();
    let mut a = adj("a", "b", t0);
    let conn = a.inbound(t0).unwrap();
    a.established(conn);
    drain(&mut a);
    a.close(CloseReason::Untrusted, t0);
    let out = drain(&mut a);
    assert_eq!(
        out[..2],
        [
            Output::Close {
                conn,
                reason: CloseReason::Untrusted
            },
            Output::Down
        ]
    );
    assert_eq!(a.state(), AdjState::Down);
    assert!(a.poll_timeout().is_some());
    a.close(CloseReason::Removed, t0);
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn events_for_unknown_connections_are_ignored() {
    let t0 = Instant::now();
    let mut a = adj("a", "b", t0);
    a.established(9);
    a.closed(9, t0);
    a.dial_failed(9, t0);
    assert!(drain(&mut a).is_empty());
    assert_eq!(a.state(), AdjState::Candidate);
}
