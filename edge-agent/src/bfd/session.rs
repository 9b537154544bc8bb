//! One BFD session's state machine (RFC 5880 §6.8), sans-IO: received
//! packets and the time go in; packets to send, state changes and the
//! next deadline come out. Asynchronous mode, active role, no Echo, no
//! Demand mode of our own (the peer's is honoured, §6.8.7).
//!
//! Timers: while not Up, we advertise a transmit interval of at least one
//! second (§6.8.3); once Up, the configured one, changed through a Poll
//! Sequence. While a Poll Sequence is running, the slower of the old and
//! new transmit intervals is not used before the peer's Final, nor is a
//! shorter receive interval used for our detection time.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use super::{
    auth::{AuthError, AuthKey, ReceiveSequence},
    packet::{self, AuthSection, Diag, Packet, State},
};
use crate::net::random::Seeded;

/// The slowest a session transmits while not Up (RFC 5880 §6.8.3).
pub const SLOW_TX: Duration = Duration::from_secs(1);

/// A session's timers, as configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// The interval we would like to transmit at.
    pub min_tx: Duration,
    /// The shortest interval we accept packets at.
    pub min_rx: Duration,
    /// How many intervals without a packet mean the peer is gone.
    pub multiplier: u8,
}

/// A session's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// The timers.
    pub timers: Timers,
    /// The key, if the session is authenticated.
    pub auth: Option<AuthKey>,
}

/// A change of the session's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: State,
    /// The state now.
    pub to: State,
    /// Why.
    pub diag: Diag,
    /// The peer took the session down on purpose (it sent AdminDown):
    /// not a failure of the path (RFC 5882 §3.2).
    pub peer_admin_down: bool,
}

impl Transition {
    /// The path failed: the session was Up and went Down, and not because
    /// the peer said it took the session down on purpose.
    pub fn is_failure(&self) -> bool {
        self.from == State::Up && self.to == State::Down && !self.peer_admin_down
    }
}

/// What a session knows of the peer (bfd.Remote*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Remote {
    disc: u32,
    state: State,
    demand: bool,
    min_rx: u32,
    desired_tx: u32,
    mult: u8,
}

impl Remote {
    /// As RFC 5880 §6.8.1 initialises it: RemoteMinRxInterval 1 µs.
    const UNKNOWN: Remote = Remote {
        disc: 0,
        state: State::Down,
        demand: false,
        min_rx: 1,
        desired_tx: 0,
        mult: 0,
    };
}

/// Our two intervals, microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Intervals {
    tx: u32,
    rx: u32,
}

/// Counters and the latest facts about a session, for status and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// Packets sent.
    pub sent: u64,
    /// Packets accepted.
    pub received: u64,
    /// Times the session came Up.
    pub ups: u64,
    /// Times the session failed (Up → Down, see [`Transition::is_failure`]).
    pub failures: u64,
}

/// A snapshot of a session for status and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStatus {
    /// Our state.
    pub state: State,
    /// The peer's state, as it last said.
    pub remote_state: State,
    /// Our discriminator.
    pub local_disc: u32,
    /// The peer's (0: not known).
    pub remote_disc: u32,
    /// The diagnostic we send (why we last changed state).
    pub diag: Diag,
    /// The diagnostic the peer last sent.
    pub remote_diag: Diag,
    /// Why the session last went down, if it ever did.
    pub last_down: Option<Diag>,
    /// The interval we transmit at, if we transmit periodically.
    pub tx_interval: Option<Duration>,
    /// How long without a packet until the session goes down, once the
    /// peer has been heard.
    pub detection_time: Option<Duration>,
    /// The counters.
    pub counters: SessionCounters,
}

/// One BFD session.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    local_disc: u32,
    state: State,
    diag: Diag,
    remote_diag: Diag,
    last_down: Option<Diag>,
    remote: Remote,
    /// bfd.DesiredMinTxInterval and bfd.RequiredMinRxInterval: what we
    /// send.
    advertised: Intervals,
    /// What we act on: `tx` for transmitting, `rx` for detection.
    in_use: Intervals,
    polling: bool,
    want_final: bool,
    send_now: bool,
    next_tx: Option<Instant>,
    detect_at: Option<Instant>,
    forget_sequence_at: Option<Instant>,
    tx_sequence: u32,
    rx_sequence: ReceiveSequence,
    rng: Seeded,
    transitions: VecDeque<Transition>,
    counters: SessionCounters,
    /// The time of the latest call: a packet wanted "at once" is due then.
    now: Instant,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn duration(us: u32) -> Duration {
    Duration::from_micros(u64::from(us))
}

impl Session {
    /// A session in state Down with discriminator `local_disc` (non-zero,
    /// unique on this node), its jitter and first sequence number drawn
    /// from `seed`. It transmits its first packet at once.
    pub fn new(config: SessionConfig, local_disc: u32, seed: u64, now: Instant) -> Session {
        let mut rng = Seeded::new(seed);
        let tx_sequence = rng.next_u64() as u32;
        let advertised = Intervals {
            tx: micros(config.timers.min_tx.max(SLOW_TX)),
            rx: micros(config.timers.min_rx),
        };
        Session {
            config,
            local_disc,
            state: State::Down,
            diag: Diag::None,
            remote_diag: Diag::None,
            last_down: None,
            remote: Remote::UNKNOWN,
            advertised,
            in_use: advertised,
            polling: false,
            want_final: false,
            send_now: false,
            next_tx: Some(now),
            detect_at: None,
            forget_sequence_at: None,
            tx_sequence,
            rx_sequence: ReceiveSequence::default(),
            rng,
            transitions: VecDeque::new(),
            counters: SessionCounters::default(),
            now,
        }
    }

    /// Our discriminator.
    pub fn local_disc(&self) -> u32 {
        self.local_disc
    }

    /// The peer's discriminator (0: not known).
    pub fn remote_disc(&self) -> u32 {
        self.remote.disc
    }

    /// Our state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The session's settings.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The next state change, oldest first.
    pub fn poll_transition(&mut self) -> Option<Transition> {
        self.transitions.pop_front()
    }

    /// When [`Session::handle_timeout`] or [`Session::poll_transmit`] next
    /// has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let soon = (self.want_final || self.send_now).then_some(self.now);
        [soon, self.next_tx, self.detect_at, self.forget_sequence_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether a packet is due at `now`.
    pub fn wants_transmit(&self, now: Instant) -> bool {
        self.want_final || self.send_now || self.next_tx.is_some_and(|at| at <= now)
    }

    /// The detection time expires, the sequence number is forgotten.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.detect_at.is_some_and(|at| at <= now) {
            self.detect_at = None;
            if matches!(self.state, State::Init | State::Up) {
                self.set_state(State::Down, Diag::DetectionTimeExpired, false, now);
            }
            // Whoever speaks next may be a new incarnation of the peer.
            self.remote = Remote::UNKNOWN;
            self.retime(now);
        }
        if self.forget_sequence_at.is_some_and(|at| at <= now) {
            self.forget_sequence_at = None;
            self.rx_sequence.forget();
        }
    }

    /// The packet due at `now`, if one is, encoded and signed into `out`.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        self.now = now;
        let final_ = std::mem::take(&mut self.want_final);
        if !final_ {
            let due = self.send_now || self.next_tx.is_some_and(|at| at <= now);
            if !due {
                return false;
            }
            self.send_now = false;
            self.schedule_tx(now);
        }
        let auth = self.config.auth.as_ref().map(|key| AuthSection {
            kind: key.kind(),
            key_id: key.key_id,
            sequence: self.tx_sequence,
        });
        let packet = Packet {
            diag: self.diag,
            state: self.state,
            // Never both (§6.8.7): a Final goes out on its own.
            poll: self.polling && !final_,
            final_,
            cpi: false,
            demand: false,
            detect_mult: self.config.timers.multiplier,
            my_disc: self.local_disc,
            your_disc: self.remote.disc,
            desired_min_tx: self.advertised.tx,
            required_min_rx: self.advertised.rx,
            required_min_echo_rx: 0,
            auth,
        };
        packet::encode(&packet, out);
        if let Some(key) = &self.config.auth {
            key.sign(out);
            // Every packet gets the next number: what Meticulous requires
            // and Keyed SHA1 allows.
            self.tx_sequence = self.tx_sequence.wrapping_add(1);
        }
        self.counters.sent += 1;
        true
    }

    /// Handles a packet addressed to this session (the endpoint checked
    /// its form and demultiplexed it). A packet refused here changes
    /// nothing.
    pub fn receive(
        &mut self,
        packet: &Packet,
        bytes: &[u8],
        now: Instant,
    ) -> Result<(), AuthError> {
        self.now = now;
        match (&packet.auth, &self.config.auth) {
            (None, None) => {}
            (None, Some(_)) => return Err(AuthError::Missing),
            (Some(_), None) => return Err(AuthError::Unexpected),
            (Some(section), Some(key)) => {
                self.rx_sequence
                    .check(key, section, bytes, packet.detect_mult)?;
                self.rx_sequence.accept(section.sequence);
            }
        }
        self.counters.received += 1;
        self.remote = Remote {
            disc: packet.my_disc,
            state: packet.state,
            demand: packet.demand,
            min_rx: packet.required_min_rx,
            desired_tx: packet.desired_min_tx,
            mult: packet.detect_mult,
        };
        self.remote_diag = packet.diag;
        if packet.final_ && self.polling {
            self.polling = false;
            self.in_use = self.advertised;
            self.retime(now);
        }
        // The peer may want packets sooner than the next one is due.
        match self.tx_interval() {
            Some(interval) => {
                if self.next_tx.is_none_or(|at| at > now + interval) {
                    self.schedule_tx(now);
                }
            }
            None => self.next_tx = None,
        }
        let detection = self.detection_time();
        self.detect_at = Some(now + detection);
        self.forget_sequence_at = Some(now + 2 * detection);
        if self.state == State::AdminDown {
            return Ok(());
        }
        match (self.state, packet.state) {
            (State::Down, State::AdminDown) => {}
            (_, State::AdminDown) => self.set_state(State::Down, Diag::NeighborDown, true, now),
            (State::Down, State::Down) => self.set_state(State::Init, Diag::None, false, now),
            (State::Down, State::Init) => self.set_state(State::Up, Diag::None, false, now),
            (State::Init, State::Init | State::Up) => {
                self.set_state(State::Up, Diag::None, false, now)
            }
            (State::Up, State::Down) => self.set_state(State::Down, Diag::NeighborDown, false, now),
            _ => {}
        }
        if packet.poll {
            self.want_final = true;
        }
        // The peer's Demand mode: no periodic packets while both are Up.
        if self.remote.demand && self.state == State::Up && self.remote.state == State::Up {
            self.next_tx = None;
        }
        Ok(())
    }

    /// Takes the session administratively down (RFC 5880 §6.8.16): the
    /// peer is told, and treats it as no failure.
    pub fn admin_down(&mut self, now: Instant) {
        self.now = now;
        if self.state != State::AdminDown {
            self.set_state(State::AdminDown, Diag::AdminDown, false, now);
            self.detect_at = None;
        }
    }

    /// Ends [`Session::admin_down`]: the session starts again from Down.
    pub fn admin_up(&mut self, now: Instant) {
        self.now = now;
        if self.state == State::AdminDown {
            self.set_state(State::Down, Diag::None, false, now);
        }
    }

    /// Changes the timers (and key) of a running session; interval changes
    /// of an Up session go through a Poll Sequence.
    pub fn reconfigure(&mut self, config: SessionConfig, now: Instant) {
        self.now = now;
        if config.auth != self.config.auth {
            self.rx_sequence.forget();
        }
        self.config = config;
        self.retime(now);
    }

    /// A snapshot for status and metrics.
    pub fn status(&self) -> SessionStatus {
        let heard = self.remote.mult != 0;
        SessionStatus {
            state: self.state,
            remote_state: self.remote.state,
            local_disc: self.local_disc,
            remote_disc: self.remote.disc,
            diag: self.diag,
            remote_diag: self.remote_diag,
            last_down: self.last_down,
            tx_interval: self.tx_interval(),
            detection_time: heard.then(|| self.detection_time()),
            counters: self.counters.clone(),
        }
    }

    /// How often we transmit (§6.8.7): the slower of what we want and
    /// what the peer accepts; `None` if the peer wants no packets.
    fn tx_interval(&self) -> Option<Duration> {
        if self.remote.min_rx == 0 {
            return None;
        }
        Some(duration(self.in_use.tx.max(self.remote.min_rx)))
    }

    /// How long without a packet until the peer is declared gone (§6.8.4).
    fn detection_time(&self) -> Duration {
        let interval = self.in_use.rx.max(self.remote.desired_tx);
        duration(interval).saturating_mul(u32::from(self.remote.mult.max(1)))
    }

    /// The next periodic packet, jittered to 75–100% of the interval
    /// (75–90% with a multiplier of 1, §6.8.7).
    fn schedule_tx(&mut self, now: Instant) {
        self.next_tx = self.tx_interval().map(|interval| {
            let (high, spread) = if self.config.timers.multiplier == 1 {
                (0.90, 0.15)
            } else {
                (1.0, 0.25)
            };
            now + interval.mul_f64(high - spread * self.rng.unit())
        });
    }

    /// Brings the advertised intervals to what the state and the config
    /// want: at once while not Up, through a Poll Sequence while Up.
    fn retime(&mut self, _now: Instant) {
        let target = Intervals {
            tx: if self.state == State::Up {
                micros(self.config.timers.min_tx)
            } else {
                micros(self.config.timers.min_tx.max(SLOW_TX))
            },
            rx: micros(self.config.timers.min_rx),
        };
        if target == self.advertised {
            return;
        }
        if self.state != State::Up {
            self.polling = false;
            self.advertised = target;
            self.in_use = target;
            return;
        }
        if self.polling {
            // One Poll Sequence at a time: this one follows.
            return;
        }
        self.polling = true;
        self.in_use = Intervals {
            tx: self.in_use.tx.min(target.tx),
            rx: self.in_use.rx.max(target.rx),
        };
        self.advertised = target;
        self.send_now = true;
    }

    fn set_state(&mut self, to: State, diag: Diag, peer_admin_down: bool, now: Instant) {
        let from = self.state;
        self.state = to;
        self.diag = diag;
        let transition = Transition {
            from,
            to,
            diag,
            peer_admin_down,
        };
        if to == State::Up {
            self.counters.ups += 1;
        }
        if to == State::Down && from != State::AdminDown {
            self.last_down = Some(diag);
        }
        if transition.is_failure() {
            self.counters.failures += 1;
        }
        self.transitions.push_back(transition);
        // Tell the peer at once: the three-way handshake and a failure
        // both travel in the next packet.
        self.send_now = true;
        self.retime(now);
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
