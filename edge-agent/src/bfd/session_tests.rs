use std::time::{Duration, Instant};

use super::*;
use crate::bfd::{
    auth::AuthKey,
    packet::{Packet, decode},
};

const MS: Duration = Duration::from_millis(1);

fn config(tx_ms: u64, rx_ms: u64, multiplier: u8) -> SessionConfig {
    SessionConfig {
        timers: Timers {
            min_tx: Duration::from_millis(tx_ms),
            min_rx: Duration::from_millis(rx_ms),
            multiplier,
        },
        auth: None,
    }
}

fn sha1(meticulous: bool) -> Option<AuthKey> {
    Some(AuthKey {
        meticulous,
        key_id: 1,
        secret: b"shared-secret".to_vec(),
    })
}

/// Two sessions on a simulated link, stepped a millisecond at a time.
struct Pair {
    a: Session,
    b: Session,
    now: Instant,
    a_to_b: bool,
    b_to_a: bool,
    /// Every packet A sent, with when.
    sent_by_a: Vec<(Instant, Vec<u8>)>,
    transitions: Vec<(char, Instant, Transition)>,
}

impl Pair {
    fn new(a: SessionConfig, b: SessionConfig) -> Pair {
        let now = Instant::now();
        Pair {
            a: Session::new(a, 0xa, 1, now),
            b: Session::new(b, 0xb, 2, now),
            now,
            a_to_b: true,
            b_to_a: true,
            sent_by_a: Vec::new(),
            transitions: Vec::new(),
        }
    }

    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += MS;
            let now = self.now;
            self.a.handle_timeout(now);
            self.b.handle_timeout(now);
            let mut out = Vec::new();
            while self.a.poll_transmit(now, &mut out) {
                self.sent_by_a.push((now, out.clone()));
                if self.a_to_b {
                    let p = decode(&out).unwrap();
                    self.b.receive(&p, &out, now).unwrap();
                }
            }
            while self.b.poll_transmit(now, &mut out) {
                if self.b_to_a {
                    let p = decode(&out).unwrap();
                    self.a.receive(&p, &out, now).unwrap();
                }
            }
            while let Some(t) = self.a.poll_transition() {
                self.transitions.push(('a', now, t));
            }
            while let Some(t) = self.b.poll_transition() {
                self.transitions.push(('b', now, t));
            }
        }
    }

    fn states(&self) -> (State, State) {
        (self.a.state(), self.b.state())
    }

    fn up(a: SessionConfig, b: SessionConfig) -> Pair {
        let mut pair = Pair::new(a, b);
        pair.run(3000 * MS);
        assert_eq!(pair.states(), (State::Up, State::Up));
        pair
    }
}

/// A packet from a peer with discriminator 0x99.
fn from_peer(state: State, your_disc: u32) -> Packet {
    Packet {
        diag: Diag::None,
        state,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        detect_mult: 3,
        my_disc: 0x99,
        your_disc,
        desired_min_tx: 1_000_000,
        required_min_rx: 100_000,
        required_min_echo_rx: 0,
        auth: None,
    }
}

fn lone(now: Instant) -> Session {
    Session::new(config(100, 100, 3), 0xa, 7, now)
}

fn feed(s: &mut Session, p: Packet, now: Instant) {
    let mut bytes = Vec::new();
    crate::bfd::packet::encode(&p, &mut bytes);
    s.receive(&p, &bytes, now).unwrap();
}

fn transitions(s: &mut Session) -> Vec<(State, State)> {
    std::iter::from_fn(|| s.poll_transition())
        .map(|t| (t.from, t.to))
        .collect()
}

#[test]
fn the_three_way_handshake_brings_both_up() {
    let pair = Pair::up(config(100, 100, 3), config(100, 100, 3));
    let a: Vec<_> = pair
        .transitions
        .iter()
        .filter(|(who, ..)| *who == 'a')
        .map(|(_, _, t)| (t.from, t.to))
        .collect();
    // A heard B's Down first (→ Init), then B's Init (→ Up); or B got
    // there first and A went straight from Down to Up.
    assert!(
        a == [(State::Down, State::Init), (State::Init, State::Up)]
            || a == [(State::Down, State::Up)],
        "{a:?}"
    );
    assert_eq!(pair.a.status().counters.ups, 1);
}

#[test]
fn every_receive_transition_of_rfc_5880_6_8_6() {
    let now = Instant::now();
    // Down: Down → Init, Init → Up, Up ignored, AdminDown ignored.
    let mut s = lone(now);
    feed(&mut s, from_peer(State::Up, 0xa), now);
    feed(&mut s, from_peer(State::AdminDown, 0xa), now);
    assert_eq!(transitions(&mut s), []);
    feed(&mut s, from_peer(State::Down, 0), now);
    assert_eq!(transitions(&mut s), [(State::Down, State::Init)]);
    // Init: Down ignored, Init → Up.
    feed(&mut s, from_peer(State::Down, 0), now);
    assert_eq!(transitions(&mut s), []);
    feed(&mut s, from_peer(State::Init, 0xa), now);
    assert_eq!(transitions(&mut s), [(State::Init, State::Up)]);
    // Up: Init and Up keep it Up, Down takes it down (neighbor signaled).
    feed(&mut s, from_peer(State::Init, 0xa), now);
    feed(&mut s, from_peer(State::Up, 0xa), now);
    assert_eq!(transitions(&mut s), []);
    feed(&mut s, from_peer(State::Down, 0xa), now);
    let t = s.poll_transition().unwrap();
    assert_eq!(
        (t.from, t.to, t.diag),
        (State::Up, State::Down, Diag::NeighborDown)
    );
    assert!(t.is_failure());
    // Down: Init → Up directly.
    let mut s = lone(now);
    feed(&mut s, from_peer(State::Init, 0xa), now);
    assert_eq!(transitions(&mut s), [(State::Down, State::Up)]);
    // Init: Up → Up; AdminDown from Init → Down, no failure.
    let mut s = lone(now);
    feed(&mut s, from_peer(State::Down, 0), now);
    feed(&mut s, from_peer(State::AdminDown, 0xa), now);
    let all: Vec<_> = std::iter::from_fn(|| s.poll_transition()).collect();
    assert_eq!(all[1].to, State::Down);
    assert!(all[1].peer_admin_down && !all[1].is_failure());
}

#[test]
fn the_peer_going_admin_down_is_no_failure() {
    let mut pair = Pair::up(config(100, 100, 3), config(100, 100, 3));
    pair.transitions.clear();
    pair.b.admin_down(pair.now);
    pair.run(50 * MS);
    let (_, _, t) = pair.transitions.iter().find(|(w, ..)| *w == 'a').unwrap();
    assert_eq!(
        (t.from, t.to, t.diag),
        (State::Up, State::Down, Diag::NeighborDown)
    );
    assert!(t.peer_admin_down && !t.is_failure());
    assert_eq!(pair.a.status().counters.failures, 0);
    assert_eq!(pair.b.state(), State::AdminDown);
    // B stays AdminDown whatever A says; A stays Down.
    pair.run(3000 * MS);
    assert_eq!(pair.states(), (State::Down, State::AdminDown));
    pair.b.admin_up(pair.now);
    pair.run(3000 * MS);
    assert_eq!(pair.states(), (State::Up, State::Up));
}

#[test]
fn silence_is_detected_after_multiplier_times_the_interval() {
    let mut pair = Pair::up(config(100, 100, 3), config(100, 100, 3));
    assert_eq!(pair.a.status().tx_interval, Some(100 * MS));
    assert_eq!(pair.a.status().detection_time, Some(300 * MS));
    pair.transitions.clear();
    pair.b_to_a = false;
    let cut = pair.now;
    pair.run(400 * MS);
    let (_, at, t) = pair.transitions.iter().find(|(w, ..)| *w == 'a').unwrap();
    assert_eq!((t.to, t.diag), (State::Down, Diag::DetectionTimeExpired));
    assert!(t.is_failure());
    // The last packet came at most one interval before the cut.
    let after = *at - cut;
    assert!(
        after > 200 * MS && after <= 300 * MS,
        "detected after {after:?}"
    );
    assert_eq!(pair.a.status().counters.failures, 1);
    assert_eq!(pair.a.status().last_down, Some(Diag::DetectionTimeExpired));
    // B hears A's Down and goes down too: neighbor signaled.
    let (_, _, tb) = pair.transitions.iter().find(|(w, ..)| *w == 'b').unwrap();
    assert_eq!(tb.diag, Diag::NeighborDown);
    // Forgetting the peer, A demultiplexes a new incarnation by address.
    assert_eq!(pair.a.remote_disc(), 0);
    // The path back: both come up again.
    pair.b_to_a = true;
    pair.run(4000 * MS);
    assert_eq!(pair.states(), (State::Up, State::Up));
}

#[test]
fn not_up_it_transmits_at_most_once_a_second() {
    let mut pair = Pair::new(config(50, 50, 3), config(50, 50, 3));
    pair.a_to_b = false;
    pair.b_to_a = false;
    pair.run(5000 * MS);
    let sent = &pair.sent_by_a;
    assert!((5..=8).contains(&sent.len()), "{} packets", sent.len());
    for (_, bytes) in sent {
        let p = decode(bytes).unwrap();
        assert_eq!(p.desired_min_tx, 1_000_000);
        assert_eq!(p.required_min_rx, 50_000);
        assert_eq!(p.state, State::Down);
    }
}

#[test]
fn going_up_polls_for_the_fast_timers() {
    let mut pair = Pair::new(config(50, 50, 3), config(50, 50, 3));
    pair.run(3000 * MS);
    assert_eq!(pair.states(), (State::Up, State::Up));
    // The first Up packet asked for the new interval with Poll, B said
    // Final, and the poll ended: no more P bits.
    let polls: Vec<_> = pair
        .sent_by_a
        .iter()
        .map(|(_, b)| decode(b).unwrap())
        .filter(|p| p.poll)
        .collect();
    assert!(!polls.is_empty());
    assert!(
        polls
            .iter()
            .all(|p| p.desired_min_tx == 50_000 && !p.final_)
    );
    let last = decode(&pair.sent_by_a.last().unwrap().1).unwrap();
    assert!(!last.poll);
    assert_eq!(pair.a.status().tx_interval, Some(50 * MS));
}

#[test]
fn a_poll_is_answered_at_once_with_final_alone() {
    let now = Instant::now();
    let mut s = lone(now);
    let mut out = Vec::new();
    assert!(s.poll_transmit(now, &mut out));
    feed(
        &mut s,
        Packet {
            poll: true,
            ..from_peer(State::Down, 0)
        },
        now,
    );
    assert!(s.wants_transmit(now));
    assert!(s.poll_transmit(now, &mut out));
    let p = decode(&out).unwrap();
    assert!(p.final_ && !p.poll);
    assert_eq!(p.your_disc, 0x99);
}

#[test]
fn a_slower_interval_is_used_only_after_the_final() {
    // B's multiplier of 10 keeps A Up while B is not heard.
    let mut pair = Pair::up(config(100, 100, 3), config(100, 100, 10));
    // B stops answering: A's poll for 500 ms cannot end.
    pair.b_to_a = false;
    pair.a.reconfigure(config(500, 100, 3), pair.now);
    pair.sent_by_a.clear();
    pair.run(250 * MS);
    assert_eq!(pair.a.status().tx_interval, Some(100 * MS));
    let polls: Vec<_> = pair
        .sent_by_a
        .iter()
        .map(|(_, b)| decode(b).unwrap())
        .collect();
    assert!(polls.len() >= 2);
    assert!(polls.iter().all(|p| p.poll && p.desired_min_tx == 500_000));
    pair.b_to_a = true;
    pair.run(200 * MS);
    assert_eq!(pair.a.status().tx_interval, Some(500 * MS));
    // B's detection time follows A's new interval; both stay Up.
    assert_eq!(pair.b.status().detection_time, Some(1500 * MS));
    pair.run(3000 * MS);
    assert_eq!(pair.states(), (State::Up, State::Up));
}

#[test]
fn a_shorter_receive_interval_counts_only_after_the_final() {
    let mut pair = Pair::up(config(100, 300, 3), config(100, 100, 3));
    assert_eq!(pair.a.status().detection_time, Some(900 * MS));
    pair.b_to_a = false;
    pair.a.reconfigure(config(100, 100, 3), pair.now);
    pair.run(10 * MS);
    // Until B's Final, B may still send every 300 ms.
    assert_eq!(pair.a.status().detection_time, Some(900 * MS));
    pair.b_to_a = true;
    pair.run(400 * MS);
    assert_eq!(pair.a.status().detection_time, Some(300 * MS));
}

#[test]
fn the_slower_side_sets_the_pace() {
    let pair = Pair::up(config(20, 20, 3), config(200, 300, 5));
    // A may send no faster than B accepts; B no faster than it wants.
    assert_eq!(pair.a.status().tx_interval, Some(300 * MS));
    assert_eq!(pair.b.status().tx_interval, Some(200 * MS));
    // A's detection time: B's multiplier × max(A's rx, B's tx).
    assert_eq!(pair.a.status().detection_time, Some(1000 * MS));
    assert_eq!(pair.b.status().detection_time, Some(3 * 300 * MS));
}

#[test]
fn jitter_keeps_intervals_within_75_to_100_percent() {
    for (multiplier, high) in [(3u8, 100u128), (1, 90)] {
        let mut pair = Pair::up(config(100, 100, multiplier), config(100, 100, 3));
        pair.run(1000 * MS);
        pair.sent_by_a.clear();
        pair.run(10_000 * MS);
        let gaps: Vec<u128> = pair
            .sent_by_a
            .windows(2)
            .map(|w| (w[1].0 - w[0].0).as_millis())
            .collect();
        assert!(gaps.len() > 80);
        assert!(
            gaps.iter().all(|g| (74..=high).contains(g)),
            "multiplier {multiplier}: {gaps:?}"
        );
        // And they do vary.
        assert!(gaps.iter().min() != gaps.iter().max());
    }
}

#[test]
fn a_peer_that_wants_no_packets_gets_none() {
    let now = Instant::now();
    let mut s = lone(now);
    let mut out = Vec::new();
    assert!(s.poll_transmit(now, &mut out));
    feed(
        &mut s,
        Packet {
            required_min_rx: 0,
            ..from_peer(State::Down, 0)
        },
        now,
    );
    // The Init it owes the peer still goes out; nothing periodic after.
    while s.poll_transmit(now, &mut out) {}
    assert_eq!(s.status().tx_interval, None);
    assert!(!s.poll_transmit(now + 10 * SLOW_TX, &mut out));
}

#[test]
fn the_peers_demand_mode_stops_periodic_packets_while_both_are_up() {
    let now = Instant::now();
    let mut s = lone(now);
    let mut out = Vec::new();
    feed(&mut s, from_peer(State::Init, 0xa), now);
    assert_eq!(s.state(), State::Up);
    while s.poll_transmit(now, &mut out) {}
    feed(
        &mut s,
        Packet {
            demand: true,
            final_: true,
            ..from_peer(State::Up, 0xa)
        },
        now,
    );
    assert!(!s.poll_transmit(now + 5 * SLOW_TX, &mut out));
}

#[test]
fn local_admin_down_ignores_the_peer() {
    let now = Instant::now();
    let mut s = lone(now);
    s.admin_down(now);
    assert_eq!(transitions(&mut s), [(State::Down, State::AdminDown)]);
    feed(&mut s, from_peer(State::Down, 0), now);
    feed(&mut s, from_peer(State::Init, 0xa), now);
    assert_eq!(s.state(), State::AdminDown);
    let mut out = Vec::new();
    assert!(s.poll_transmit(now, &mut out));
    let p = decode(&out).unwrap();
    assert_eq!((p.state, p.diag), (State::AdminDown, Diag::AdminDown));
}

#[test]
fn authenticated_sessions_come_up_with_either_type() {
    for meticulous in [false, true] {
        let mut a = config(100, 100, 3);
        a.auth = sha1(meticulous);
        let pair = Pair::up(a.clone(), a.clone());
        let p = decode(&pair.sent_by_a.last().unwrap().1).unwrap();
        let auth = p.auth.unwrap();
        assert_eq!(auth.kind, if meticulous { 5 } else { 4 });
        // Sequence numbers grow with every packet.
        let seqs: Vec<u32> = pair
            .sent_by_a
            .iter()
            .map(|(_, b)| decode(b).unwrap().auth.unwrap().sequence)
            .collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    }
}

#[test]
fn a_replayed_or_forged_packet_changes_nothing() {
    let mut a = config(100, 100, 3);
    a.auth = sha1(true);
    let mut pair = Pair::up(a.clone(), a.clone());
    pair.run(200 * MS);
    // Replaying one of A's recorded packets to B.
    let (_, old) = pair.sent_by_a[pair.sent_by_a.len() - 2].clone();
    let p = decode(&old).unwrap();
    let before = pair.b.status();
    assert_eq!(pair.b.receive(&p, &old, pair.now), Err(AuthError::Replay));
    // A packet signed with another key.
    let mut forged = Session::new(
        SessionConfig {
            auth: Some(AuthKey {
                meticulous: true,
                key_id: 1,
                secret: b"guessed".to_vec(),
            }),
            ..config(100, 100, 3)
        },
        0xa,
        3,
        pair.now,
    );
    let mut out = Vec::new();
    forged.poll_transmit(pair.now, &mut out);
    let p = decode(&out).unwrap();
    assert_eq!(pair.b.receive(&p, &out, pair.now), Err(AuthError::Digest));
    // An unauthenticated one.
    let plain = from_peer(State::Down, 0xb);
    let mut bytes = Vec::new();
    crate::bfd::packet::encode(&plain, &mut bytes);
    assert_eq!(
        pair.b.receive(&plain, &bytes, pair.now),
        Err(AuthError::Missing)
    );
    assert_eq!(pair.b.status(), before);
    assert_eq!(pair.b.poll_transition(), None);
}

#[test]
fn the_sequence_is_forgotten_after_twice_the_detection_time() {
    let mut a = config(100, 100, 3);
    a.auth = sha1(true);
    let mut pair = Pair::up(a.clone(), a.clone());
    let (_, old) = pair.sent_by_a.last().unwrap().clone();
    pair.a_to_b = false;
    pair.b_to_a = false;
    pair.run(3000 * MS);
    // After 2 × the detection time without a packet, any number is new.
    let p = decode(&old).unwrap();
    assert_eq!(pair.b.receive(&p, &old, pair.now), Ok(()));
}

#[test]
fn an_authenticated_packet_to_a_plain_session_is_refused() {
    let now = Instant::now();
    let mut keyed = Session::new(
        SessionConfig {
            auth: sha1(false),
            ..config(100, 100, 3)
        },
        0x99,
        1,
        now,
    );
    let mut out = Vec::new();
    keyed.poll_transmit(now, &mut out);
    let mut plain = lone(now);
    let p = decode(&out).unwrap();
    assert_eq!(plain.receive(&p, &out, now), Err(AuthError::Unexpected));
    assert_eq!(plain.state(), State::Down);
}
