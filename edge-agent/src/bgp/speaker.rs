//! One BGP neighbour across its connections, sans I/O: the session state
//! machine ([`Session`]), what we announce ([`RibOut`]) and the wire codec,
//! driven by bytes, connection events, the agent's [`Intent`] and time,
//! and telling its executor what to do through [`SpeakerEvent`]s and the
//! bytes to write ([`Speaker::transmit`]).
//!
//! Everything the protocol decides is here, in one place:
//! - decoding one message at a time, so that what an OPEN exchange agrees
//!   on (four-octet ASNs) applies to the very next message, even in the
//!   same read;
//! - announcing what the agent wants once Established, then End-of-RIB
//!   (RFC 4724) when the neighbour does graceful restart; after that only
//!   changes, withdrawals first; everything again on ROUTE-REFRESH;
//! - stopping: every route withdrawn, then the Cease (RFC 8203), in that
//!   order on the wire;
//! - connection collisions (RFC 4271 section 6.8): a connection the
//!   neighbour opens while we have one waits until the neighbour's BGP
//!   identifier is known, then the connection opened by the speaker with
//!   the higher identifier survives; once Established, a new one loses;
//! - the counters the agent shows ([`Status`]).

use std::{
    collections::{BTreeMap, VecDeque},
    net::Ipv4Addr,
    time::Instant,
};

use super::{
    codec::{self, CodecOptions},
    message::{Attributes, Family, Message, MpUnreach, Notification, Prefix, Update},
    notification::CeaseSubcode,
    rib_out::{Changes, OriginAttrs, Origination, RibOut},
    session::{Action, DownReason, Input, Negotiated, Session, SessionConfig, State},
};

/// What the agent wants of one neighbour: the routes to announce (with
/// their attributes) and whether to stop (with the shutdown message).
/// Executors receive it through a `watch`: only the latest counts, so
/// nothing queues up however often it changes, and nothing is lost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Intent {
    /// Prefixes to announce, with their attributes.
    pub routes: BTreeMap<Prefix, OriginAttrs>,
    /// Withdraw everything, then Cease with this message, and stop.
    pub stop: Option<String>,
}

impl Intent {
    /// Announce `prefix` with `attrs` (replacing earlier attributes).
    pub fn announce(&mut self, prefix: Prefix, attrs: OriginAttrs) {
        self.routes.insert(prefix, attrs);
    }

    /// Withdraw `prefix`.
    pub fn withdraw(&mut self, prefix: Prefix) {
        self.routes.remove(&prefix);
    }

    /// Withdraw everything and Cease with `reason`.
    pub fn stop(&mut self, reason: impl Into<String>) {
        self.stop.get_or_insert_with(|| reason.into());
    }
}

/// What the agent can see of a neighbour.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// The state, `None` before the first transition.
    pub state: Option<State>,
    /// When the session last became Established (`None`: not now).
    pub established_since: Option<Instant>,
    /// How many times the session became Established.
    pub established_count: u64,
    /// Prefixes the neighbour announced to us (counted, never installed).
    pub received_prefixes: usize,
    /// Messages received.
    pub messages_received: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// UPDATE messages sent.
    pub updates_sent: u64,
    /// UPDATE errors handled without a reset (RFC 7606).
    pub revised_errors: u64,
    /// Connection collisions resolved (RFC 4271 section 6.8).
    pub collisions: u64,
    /// What we want announced, with the attributes.
    pub announced: Vec<(Prefix, OriginAttrs)>,
    /// Why the session last went down.
    pub last_down: Option<DownReason>,
}

/// What the executor must do, or may want to know, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpeakerEvent {
    /// Open a connection to the neighbour; report [`Speaker::connected`]
    /// (ours) or [`Speaker::connect_failed`].
    Connect,
    /// Write what [`Speaker::transmit`] holds to the current connection,
    /// then close it.
    Close,
    /// The connection the neighbour just opened (see
    /// [`Speaker::neighbour_connected`]) is the transport now: drop any
    /// connection attempt of ours, and report [`Speaker::connected`].
    UseArrived,
    /// Close the connection the neighbour just opened with a Cease (bytes
    /// from [`collision_cease`]).
    RefuseArrived,
    /// Keep the connection the neighbour just opened, unread, until the
    /// collision is decided.
    HoldArrived,
    /// The held connection lost: close it with a Cease ([`collision_cease`]).
    RefuseHeld,
    /// The held connection won: it is the transport now (the old one was
    /// closed by a [`SpeakerEvent::Close`] just before); report
    /// [`Speaker::connected`].
    UseHeld,
    /// The session changed state.
    StateChanged {
        /// From.
        from: State,
        /// To.
        to: State,
    },
    /// The session is Established with these parameters; UPDATEs may follow.
    Established(Negotiated),
    /// An UPDATE from the neighbour, for whoever imports routes.
    Received(Box<Update>),
    /// The session went down.
    Down(DownReason),
}

/// One neighbour, sans I/O.
pub struct Speaker {
    config: SessionConfig,
    origination: Origination,
    session: Session,
    rib: RibOut,
    options: CodecOptions,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    events: VecDeque<SpeakerEvent>,
    status: Status,
    /// The current connection, and whether we opened it.
    connection: Option<bool>,
    /// A connection the neighbour opened waits for the collision decision.
    held: bool,
    /// The agent asked us to stop.
    stopping: bool,
    /// Bytes have waited to be written since the send hold timer started.
    write_blocked: bool,
}

impl Speaker {
    /// A neighbour with `config`, originating as `origination`; it starts
    /// (connecting, or waiting for the neighbour when passive) at once.
    pub fn new(config: SessionConfig, origination: Origination, now: Instant) -> Speaker {
        let mut speaker = Speaker {
            session: Session::new(config.clone()),
            config,
            origination,
            rib: RibOut::default(),
            options: CodecOptions::default(),
            inbox: Vec::new(),
            outbox: Vec::new(),
            events: VecDeque::new(),
            status: Status::default(),
            connection: None,
            held: false,
            stopping: false,
            write_blocked: false,
        };
        speaker.session.handle(Input::Start, now);
        speaker.drain(now);
        speaker
    }

    /// What the agent can see.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The session's state.
    pub fn state(&self) -> State {
        self.session.state()
    }

    /// Whether the agent asked to stop and the session is closed: the
    /// executor is done once it has written [`Speaker::transmit`].
    pub fn is_stopped(&self) -> bool {
        self.stopping && self.session.state() == State::Idle
    }

    /// The next thing to do or to know.
    pub fn poll_event(&mut self) -> Option<SpeakerEvent> {
        self.events.pop_front()
    }

    /// When [`Speaker::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    /// Bytes to write to the current connection, in order.
    pub fn transmit(&self) -> &[u8] {
        &self.outbox
    }

    /// The first `n` bytes of [`Speaker::transmit`] were written.
    pub fn transmitted(&mut self, n: usize, now: Instant) {
        self.outbox.drain(..n.min(self.outbox.len()));
        if self.outbox.is_empty() && self.write_blocked {
            self.write_blocked = false;
            self.session.handle(Input::WriteBlocked(false), now);
        }
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.session.handle_timeout(now);
        self.settle(now);
    }

    /// A connection to the neighbour is up: ours (`true`, after
    /// [`SpeakerEvent::Connect`]) or the neighbour's (after
    /// [`SpeakerEvent::UseArrived`] or [`SpeakerEvent::UseHeld`]).
    pub fn connected(&mut self, ours: bool, now: Instant) {
        self.connection = Some(ours);
        self.options = CodecOptions::default();
        self.inbox.clear();
        self.outbox.clear();
        self.write_blocked = false;
        self.session.handle(Input::TransportConnected, now);
        self.settle(now);
    }

    /// Our connection attempt failed.
    pub fn connect_failed(&mut self, now: Instant) {
        if self.connection.is_none() {
            self.session.handle(Input::TransportClosed, now);
            self.settle(now);
        }
    }

    /// The current connection failed or was closed by the neighbour.
    pub fn connection_lost(&mut self, now: Instant) {
        if self.connection.is_some() {
            self.session.handle(Input::TransportClosed, now);
            self.settle(now);
        }
    }

    /// BFD found the path to the neighbour down: the session is closed
    /// at once and started again after the connect-retry time.
    pub fn path_down(&mut self, now: Instant) {
        if self.connection.is_some() {
            self.session.handle(Input::PathDown, now);
            self.settle(now);
        }
    }

    /// Bytes read from the current connection.
    pub fn received(&mut self, bytes: &[u8], now: Instant) {
        if self.connection.is_none() {
            return;
        }
        self.inbox.extend_from_slice(bytes);
        let mut used = 0;
        // One message at a time: an Established in between changes how
        // the next one decodes.
        while self.connection.is_some() {
            match codec::decode(&self.inbox[used..], &self.options) {
                Ok(Some(decoded)) => {
                    used += decoded.len;
                    self.status.messages_received += 1;
                    self.status.revised_errors += decoded.revised.len() as u64;
                    self.session.handle(Input::Message(decoded.message), now);
                    self.drain(now);
                }
                Ok(None) => break,
                Err(error) => {
                    used = self.inbox.len();
                    self.session
                        .handle(Input::DecodeError(error.notification()), now);
                    self.drain(now);
                }
            }
        }
        if self.connection.is_some() {
            self.inbox.drain(..used);
        } else {
            self.inbox.clear();
        }
        self.settle(now);
    }

    /// The neighbour opened a connection to us. The answer is one of
    /// [`SpeakerEvent::UseArrived`], [`SpeakerEvent::RefuseArrived`] or
    /// [`SpeakerEvent::HoldArrived`].
    pub fn neighbour_connected(&mut self, now: Instant) {
        if self.stopping {
            self.events.push_back(SpeakerEvent::RefuseArrived);
            return;
        }
        if self.connection.is_none() {
            if self.session.state() == State::Idle {
                // Waiting out the idle hold after a failure: the
                // neighbour's connection is as good a restart as ours.
                self.session.handle(Input::Start, now);
                self.drain(now);
            }
            // Our own attempt in flight, if any, is abandoned.
            self.events.retain(|e| *e != SpeakerEvent::Connect);
            self.events.push_back(SpeakerEvent::UseArrived);
            return;
        }
        if self.session.state() == State::Established {
            self.status.collisions += 1;
            self.events.push_back(SpeakerEvent::RefuseArrived);
            return;
        }
        if self.held {
            // Of two waiting, the newer one counts.
            self.events.push_back(SpeakerEvent::RefuseHeld);
        }
        self.held = true;
        self.events.push_back(SpeakerEvent::HoldArrived);
        self.settle(now);
    }

    /// What the agent wants now.
    pub fn set_intent(&mut self, intent: &Intent, now: Instant) {
        if self.stopping {
            return;
        }
        if self.rib.desired() != &intent.routes {
            self.rib.set_desired(intent.routes.clone());
            self.publish_announced();
            if self.session.state() == State::Established {
                let changes = self.rib.take_changes();
                self.send_changes(&changes);
            }
        }
        if let Some(reason) = &intent.stop {
            self.stop(reason, now);
        }
        self.settle(now);
    }

    /// Withdraws everything and Ceases with `reason`; the session stays
    /// down.
    fn stop(&mut self, reason: &str, now: Instant) {
        self.stopping = true;
        self.rib.set_desired(BTreeMap::new());
        self.publish_announced();
        if self.session.state() == State::Established {
            // Withdrawals are queued first, so they reach the wire before
            // the NOTIFICATION.
            let changes = self.rib.take_changes();
            self.send_changes(&changes);
        }
        self.session.handle(
            Input::Stop {
                reason: reason.to_owned(),
            },
            now,
        );
        self.drain(now);
        if self.held {
            self.held = false;
            self.events.push_back(SpeakerEvent::RefuseHeld);
        }
    }

    /// After every input: decide a waiting collision if it can be, and
    /// start the send hold timer if bytes wait.
    fn settle(&mut self, now: Instant) {
        self.drain(now);
        self.decide_collision(now);
        if !self.outbox.is_empty() && !self.write_blocked && self.connection.is_some() {
            self.write_blocked = true;
            self.session.handle(Input::WriteBlocked(true), now);
        }
    }

    /// A held connection is decided as soon as the neighbour's BGP
    /// identifier is known: the connection opened by the speaker with the
    /// higher identifier survives. The held one is always the neighbour's,
    /// so it can only win against ours.
    fn decide_collision(&mut self, now: Instant) {
        if !self.held || self.connection.is_none() {
            return;
        }
        let ours = self.connection == Some(true);
        if self.session.state() == State::Established {
            self.held = false;
            self.status.collisions += 1;
            self.events.push_back(SpeakerEvent::RefuseHeld);
            return;
        }
        let Some(peer_id) = self.session.negotiated().map(|n| n.peer_bgp_id) else {
            return;
        };
        self.held = false;
        self.status.collisions += 1;
        if !(ours && resolve_collision(self.config.bgp_id, peer_id) == Keep::Inbound) {
            self.events.push_back(SpeakerEvent::RefuseHeld);
            return;
        }
        // The neighbour's connection wins: Cease on ours, and a fresh
        // session on the winner.
        let cease = Notification::new(CeaseSubcode::ConnectionCollisionResolution);
        self.encode(&Message::Notification(cease.clone()));
        let from = self.session.state();
        self.events.push_back(SpeakerEvent::StateChanged {
            from,
            to: State::Idle,
        });
        self.down(DownReason::NotificationSent(cease));
        self.close();
        self.session = Session::new(self.config.clone());
        self.session.handle(Input::Start, now);
        self.drain(now);
        self.events.retain(|e| *e != SpeakerEvent::Connect);
        self.events.push_back(SpeakerEvent::UseHeld);
    }

    /// Carries out the session's actions.
    fn drain(&mut self, now: Instant) {
        while let Some(action) = self.session.poll_action() {
            match action {
                Action::Send(message) => self.encode(&message),
                Action::Established(negotiated) => self.established(negotiated, now),
                Action::ResendRoutes(family) => {
                    let changes = self.rib.refresh(family);
                    self.send_changes(&changes);
                }
                Action::StateChanged { from, to } => {
                    self.status.state = Some(to);
                    if to != State::Established {
                        self.status.established_since = None;
                    }
                    self.events
                        .push_back(SpeakerEvent::StateChanged { from, to });
                }
                Action::ReceivedPrefixes(n) => self.status.received_prefixes = n,
                Action::Received(update) => self.events.push_back(SpeakerEvent::Received(update)),
                Action::Close => self.close(),
                Action::Connect => self.events.push_back(SpeakerEvent::Connect),
                Action::Down(reason) => {
                    self.down(reason);
                    if self.held && !self.stopping {
                        // The waiting connection takes over.
                        self.held = false;
                        self.session.handle(Input::Start, now);
                        self.drain(now);
                        self.events.retain(|e| *e != SpeakerEvent::Connect);
                        self.events.push_back(SpeakerEvent::UseHeld);
                    }
                }
            }
        }
    }

    fn established(&mut self, negotiated: Negotiated, now: Instant) {
        self.options.four_octet_as = negotiated.four_octet_as;
        self.status.established_since = Some(now);
        self.status.established_count += 1;
        self.events
            .push_back(SpeakerEvent::Established(negotiated.clone()));
        // Everything wanted goes out before End-of-RIB: a restarting
        // speaker's routes must not be flushed by an End-of-RIB that came
        // too early.
        self.rib.reset();
        let changes = self.rib.take_changes();
        self.send_changes(&changes);
        if negotiated.peer_graceful_restart.is_some() {
            for family in &negotiated.families {
                let message = Message::Update(end_of_rib(*family));
                self.encode(&message);
            }
        }
    }

    fn down(&mut self, reason: DownReason) {
        self.status.last_down = Some(reason.clone());
        self.status.established_since = None;
        self.events.push_back(SpeakerEvent::Down(reason));
    }

    fn close(&mut self) {
        if self.connection.take().is_some() {
            self.rib.reset();
            self.events.push_back(SpeakerEvent::Close);
        }
    }

    fn publish_announced(&mut self) {
        self.status.announced = self
            .rib
            .desired()
            .iter()
            .map(|(p, a)| (*p, a.clone()))
            .collect();
    }

    fn encode(&mut self, message: &Message) {
        // Every message we produce is encodable: an error here is a bug,
        // and dropping the message is the least harmful reaction.
        match codec::encode(message, &self.options, &mut self.outbox) {
            Ok(()) => self.status.messages_sent += 1,
            Err(e) => debug_assert!(false, "encoding {message:?}: {e}"),
        }
    }

    /// Queues `changes`: withdrawals first, then announcements grouped by
    /// attributes.
    fn send_changes(&mut self, changes: &Changes) {
        let mut updates = Vec::new();
        if !changes.withdraw.is_empty() {
            match codec::pack_updates(
                &Attributes::default(),
                &[],
                &changes.withdraw,
                &[],
                &self.options,
            ) {
                Ok(u) => updates.extend(u),
                Err(e) => debug_assert!(false, "packing withdrawals: {e}"),
            }
        }
        let next_hop = self.origination.ipv6_next_hop();
        for (attrs, prefixes) in &changes.announce {
            let attributes = self.origination.attributes(attrs);
            match codec::pack_updates(&attributes, prefixes, &[], &next_hop, &self.options) {
                Ok(u) => updates.extend(u),
                Err(e) => debug_assert!(false, "packing announcements: {e}"),
            }
        }
        for update in updates {
            self.status.updates_sent += 1;
            self.encode(&Message::Update(update));
        }
    }
}

/// The End-of-RIB marker of `family` (RFC 4724): an empty UPDATE for IPv4
/// unicast, an empty MP_UNREACH for the others.
fn end_of_rib(family: Family) -> Update {
    let mut update = Update::default();
    if family != Family::IPV4_UNICAST {
        update.attributes.mp_unreach = Some(MpUnreach {
            family,
            withdrawn: Vec::new(),
        });
    }
    update
}

/// Which of two colliding connections to keep (RFC 4271 section 6.8): the
/// one initiated by the speaker with the higher BGP identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Keep the connection we initiated.
    Outbound,
    /// Keep the connection the neighbour initiated.
    Inbound,
}

/// Resolves a connection collision from both BGP identifiers (compared as
/// unsigned 32-bit integers).
pub fn resolve_collision(local_id: Ipv4Addr, peer_id: Ipv4Addr) -> Keep {
    if u32::from(local_id) > u32::from(peer_id) {
        Keep::Outbound
    } else {
        Keep::Inbound
    }
}

/// The bytes that close a connection which lost a collision: Cease/
/// Connection Collision Resolution, sent before the OPEN exchange (so in
/// the two-octet-AS encoding, which a NOTIFICATION does not depend on).
pub fn collision_cease() -> Vec<u8> {
    let mut bytes = Vec::new();
    let message = Message::Notification(Notification::new(
        CeaseSubcode::ConnectionCollisionResolution,
    ));
    if let Err(e) = codec::encode(&message, &CodecOptions::default(), &mut bytes) {
        debug_assert!(false, "encoding {message:?}: {e}");
    }
    bytes
}

#[cfg(test)]
#[path = "speaker_tests.rs"]
mod tests;
