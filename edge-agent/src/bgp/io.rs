//! The thin tokio layer: runs one [`Session`] over any byte stream
//! (`AsyncRead + AsyncWrite`: TCP to an upstream router, mutual TLS to an
//! overlay peer), and turns the agent's announce/withdraw commands into
//! UPDATEs through the [`RibOut`]. All protocol decisions stay in the
//! sans-IO core; this file only moves bytes and time.

use std::time::Instant;

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::{broadcast, mpsc, watch},
};

use super::{
    codec::{self, CodecOptions},
    message::{Attributes, Family, Message, MpUnreach, Notification, Prefix, Update, error_code},
    rib_out::{Changes, OriginAttrs, Origination, RibOut},
    session::{Action, DownReason, Input, Keep, Negotiated, Session, State, resolve_collision},
};

/// What the agent asks of a running session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Announce (or re-announce with new attributes) a prefix.
    Announce(Prefix, OriginAttrs),
    /// Withdraw a prefix: sent at once.
    Withdraw(Prefix),
    /// Withdraw everything, then Cease with this shutdown message.
    Shutdown(String),
}

/// What the agent can see of a neighbour (a `watch` value: the latest).
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

/// A state change of a neighbour, as a stream of events (a `broadcast`:
/// every change, in order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The session changed state.
    StateChanged {
        /// From.
        from: State,
        /// To.
        to: State,
    },
    /// The session is Established with these parameters.
    Established(Negotiated),
    /// The session went down.
    Down(DownReason),
}

/// Where a neighbour reports its status and events.
#[derive(Clone, Debug)]
pub struct Telemetry {
    /// The latest status.
    pub status: watch::Sender<Status>,
    /// Every state change.
    pub events: broadcast::Sender<Event>,
    /// Where the session's route feed goes, in order, if anyone imports
    /// routes from this neighbour (`None`: they are counted and dropped).
    pub feed: Option<mpsc::UnboundedSender<Feed>>,
}

/// What an importer of a neighbour's routes needs, in protocol order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feed {
    /// The session is Established: UPDATEs may follow.
    Established(Negotiated),
    /// An UPDATE from the neighbour.
    Update(Update),
}

impl Telemetry {
    /// A telemetry pair and a status receiver (subscribe to events with
    /// `telemetry.events.subscribe()`).
    pub fn new() -> (Self, watch::Receiver<Status>) {
        let (status, receiver) = watch::channel(Status::default());
        let (events, _) = broadcast::channel(256);
        (
            Telemetry {
                status,
                events,
                feed: None,
            },
            receiver,
        )
    }

    fn event(&self, event: Event) {
        // No subscriber is fine: events are for whoever listens.
        let _ = self.events.send(event);
    }

    fn feed(&self, item: Feed) {
        if let Some(feed) = &self.feed {
            // The importer may have gone (shutting down): nothing to do then.
            let _ = feed.send(item);
        }
    }

    /// Reports a state change.
    pub(super) fn state_changed(&self, from: State, to: State) {
        self.status.send_modify(|s| {
            s.state = Some(to);
            if to != State::Established {
                s.established_since = None;
            }
        });
        self.event(Event::StateChanged { from, to });
    }

    /// Publishes what we want announced, after the agent changed it.
    pub(super) fn announced(&self, rib: &RibOut) {
        self.status.send_modify(|s| {
            s.announced = rib.desired().iter().map(|(p, a)| (*p, a.clone())).collect();
        });
    }

    /// Reports the session going down.
    pub(super) fn down(&self, reason: DownReason) {
        self.status
            .send_modify(|s| s.last_down = Some(reason.clone()));
        self.event(Event::Down(reason));
    }
}

/// How a connection's run ended.
#[derive(Debug)]
pub enum Ended<S> {
    /// The session went down.
    Down(DownReason),
    /// A colliding connection from the neighbour won (RFC 4271 section
    /// 6.8): the session restarts on it.
    Collision(S),
}

/// Runs `session` over `stream` until it goes down, and says why. The
/// session must have been started and this stream must be its transport
/// (it gets `TransportConnected` here); `ours` says whether we initiated
/// it. Connections the neighbour opens meanwhile arrive on `inbound` and
/// are resolved as collisions. `rib` persists across sessions: everything
/// desired is announced again once Established.
#[allow(
    clippy::too_many_arguments,
    reason = "the pieces of one neighbour, borrowed separately"
)]
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    ours: bool,
    inbound: &mut mpsc::Receiver<S>,
    session: &mut Session,
    rib: &mut RibOut,
    origination: &Origination,
    commands: &mut mpsc::Receiver<Command>,
    telemetry: &Telemetry,
) -> Ended<S> {
    let status = &telemetry.status;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut options = CodecOptions {
        four_octet_as: false,
    };
    let mut inbox: Vec<u8> = Vec::with_capacity(8192);
    let mut outbox: Vec<u8> = Vec::new();
    let mut established = false;
    let mut shutting_down: Option<String> = None;
    // A colliding connection waiting for the neighbour's identifier.
    let mut pending: Option<S> = None;
    session.handle(Input::TransportConnected, Instant::now());
    loop {
        while let Some(action) = session.poll_action() {
            match action {
                Action::Send(message) => {
                    encode(&message, &options, &mut outbox);
                    status.send_modify(|s| s.messages_sent += 1);
                }
                Action::Established(n) => {
                    options.four_octet_as = n.four_octet_as;
                    established = true;
                    status.send_modify(|s| {
                        s.established_since = Some(Instant::now());
                        s.established_count += 1;
                    });
                    telemetry.event(Event::Established(n.clone()));
                    telemetry.feed(Feed::Established(n.clone()));
                    // What the agent asked for before now goes out before
                    // End-of-RIB: a restarting speaker's routes must not be
                    // flushed by an End-of-RIB that came too early.
                    while let Ok(command) = commands.try_recv() {
                        match command {
                            Command::Announce(prefix, attrs) => rib.announce(prefix, attrs),
                            Command::Withdraw(prefix) => rib.withdraw(prefix),
                            Command::Shutdown(reason) => {
                                for prefix in rib.desired().keys().copied().collect::<Vec<_>>() {
                                    rib.withdraw(prefix);
                                }
                                shutting_down = Some(reason);
                                break;
                            }
                        }
                    }
                    telemetry.announced(rib);
                    rib.reset();
                    let changes = rib.take_changes();
                    send_changes(&changes, origination, &options, &mut outbox, status);
                    end_of_rib(&n, &mut outbox, &options);
                }
                Action::ResendRoutes(family) => send_changes(
                    &rib.refresh(family),
                    origination,
                    &options,
                    &mut outbox,
                    status,
                ),
                Action::StateChanged { from, to } => telemetry.state_changed(from, to),
                Action::ReceivedPrefixes(n) => status.send_modify(|s| s.received_prefixes = n),
                Action::Received(update) => telemetry.feed(Feed::Update(*update)),
                Action::Down(reason) => {
                    let _ = writer.write_all(&outbox).await;
                    let _ = writer.shutdown().await;
                    telemetry.down(reason.clone());
                    return match pending {
                        // The waiting connection takes over.
                        Some(next) if shutting_down.is_none() => Ended::Collision(next),
                        _ => Ended::Down(reason),
                    };
                }
                Action::Close | Action::Connect => {}
            }
        }
        // A waiting collision is decided as soon as the neighbour's BGP
        // identifier is known (RFC 4271 section 6.8): the connection
        // initiated by the speaker with the higher identifier survives. The
        // waiting one is always the neighbour's, so it can only win against
        // ours.
        if let (Some(next), Some(peer_id)) =
            (pending.take(), session.negotiated().map(|n| n.peer_bgp_id))
        {
            status.send_modify(|s| s.collisions += 1);
            if ours && resolve_collision(session.local_bgp_id(), peer_id) == Keep::Inbound {
                // The neighbour's connection wins: Cease/7 on ours, and the
                // caller starts a fresh session on the winner.
                let cease = collision_cease();
                encode(&Message::Notification(cease.clone()), &options, &mut outbox);
                let _ = writer.write_all(&outbox).await;
                let _ = writer.shutdown().await;
                telemetry.down(DownReason::NotificationSent(cease));
                return Ended::Collision(next);
            }
            refuse(next).await;
        }
        let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
        let blocked = !outbox.is_empty();
        // A shutdown taken from the queue when the session came up is
        // carried out below, without waiting for anything first.
        if shutting_down.is_none() {
            tokio::select! {
                read = reader.read_buf(&mut inbox) => match read {
                    Ok(0) | Err(_) => session.handle(Input::TransportClosed, Instant::now()),
                    Ok(_) => decode_all(&mut inbox, &options, session, status),
                },
                command = commands.recv(), if shutting_down.is_none() => {
                    match command {
                        Some(Command::Announce(prefix, attrs)) => rib.announce(prefix, attrs),
                        Some(Command::Withdraw(prefix)) => rib.withdraw(prefix),
                        Some(Command::Shutdown(reason)) => {
                            for prefix in rib.desired().keys().copied().collect::<Vec<_>>() {
                                rib.withdraw(prefix);
                            }
                            shutting_down = Some(reason);
                        }
                        None => shutting_down = Some("edge agent stopping".into()),
                    }
                    telemetry.announced(rib);
                },
                next = next_inbound(inbound) => match session.state() {
                    // Established: the new connection loses (RFC 4271 6.8).
                    State::Established => {
                        status.send_modify(|s| s.collisions += 1);
                        refuse(next).await;
                    }
                    // Decided once the identifier is known (above).
                    _ => {
                        if let Some(older) = pending.replace(next) {
                            refuse(older).await;
                        }
                    }
                },
                written = writer.write(&outbox), if blocked => match written {
                    Ok(n) if n > 0 => {
                        outbox.drain(..n);
                        if outbox.is_empty() {
                            session.handle(Input::WriteBlocked(false), Instant::now());
                        }
                    }
                    _ => session.handle(Input::TransportClosed, Instant::now()),
                },
                () = sleep_until(deadline) => session.handle_timeout(Instant::now()),
            }
        }
        if established {
            let changes = rib.take_changes();
            send_changes(&changes, origination, &options, &mut outbox, status);
        }
        if let Some(reason) = shutting_down.take() {
            // Withdrawals are queued first; they reach the wire before the
            // NOTIFICATION because the outbox is written in order.
            let _ = writer.write_all(&outbox).await;
            outbox.clear();
            session.handle(Input::Stop { reason }, Instant::now());
            continue;
        }
        if !blocked && !outbox.is_empty() {
            session.handle(Input::WriteBlocked(true), Instant::now());
        }
    }
}

fn collision_cease() -> Notification {
    Notification {
        code: error_code::CEASE,
        subcode: 7,
        data: Vec::new(),
    }
}

/// Closes a connection that lost a collision, with Cease/7 (Connection
/// Collision Resolution).
async fn refuse<S: AsyncWrite + Unpin>(mut stream: S) {
    let mut bytes = Vec::new();
    encode(
        &Message::Notification(collision_cease()),
        &CodecOptions {
            four_octet_as: false,
        },
        &mut bytes,
    );
    let _ = stream.write_all(&bytes).await;
    let _ = stream.shutdown().await;
}

/// Decodes every complete message in `inbox` into the session.
fn decode_all(
    inbox: &mut Vec<u8>,
    options: &CodecOptions,
    session: &mut Session,
    status: &watch::Sender<Status>,
) {
    loop {
        match codec::decode(inbox, options) {
            Ok(Some(decoded)) => {
                inbox.drain(..decoded.len);
                let revised = decoded.revised.len() as u64;
                status.send_modify(|s| {
                    s.messages_received += 1;
                    s.revised_errors += revised;
                });
                session.handle(Input::Message(decoded.message), Instant::now());
            }
            Ok(None) => return,
            Err(error) => {
                inbox.clear();
                session.handle(Input::DecodeError(error.notification()), Instant::now());
                return;
            }
        }
    }
}

fn encode(message: &Message, options: &CodecOptions, outbox: &mut Vec<u8>) {
    // Every message the core produces is encodable: an error here is a bug,
    // and dropping the message is the least harmful reaction.
    if let Err(e) = codec::encode(message, options, outbox) {
        debug_assert!(false, "encoding {message:?}: {e}");
    }
}

/// Queues `changes`: withdrawals first, then announcements by attributes.
fn send_changes(
    changes: &Changes,
    origination: &Origination,
    options: &CodecOptions,
    outbox: &mut Vec<u8>,
    status: &watch::Sender<Status>,
) {
    let mut updates = Vec::new();
    if !changes.withdraw.is_empty() {
        if let Ok(u) =
            codec::pack_updates(&Attributes::default(), &[], &changes.withdraw, &[], options)
        {
            updates.extend(u);
        }
    }
    for (attrs, prefixes) in &changes.announce {
        let attributes = origination.attributes(attrs);
        let next_hop = origination.ipv6_next_hop();
        if let Ok(u) = codec::pack_updates(&attributes, prefixes, &[], &next_hop, options) {
            updates.extend(u);
        }
    }
    status.send_modify(|s| s.updates_sent += updates.len() as u64);
    for update in updates {
        encode(&Message::Update(update), options, outbox);
    }
}

/// End-of-RIB markers (RFC 4724) for the negotiated families, when the
/// neighbour does graceful restart: an empty UPDATE for IPv4, an empty
/// MP_UNREACH for the others.
fn end_of_rib(negotiated: &Negotiated, outbox: &mut Vec<u8>, options: &CodecOptions) {
    if negotiated.peer_graceful_restart.is_none() {
        return;
    }
    for family in &negotiated.families {
        let mut update = Update::default();
        if *family != Family::IPV4_UNICAST {
            update.attributes.mp_unreach = Some(MpUnreach {
                family: *family,
                withdrawn: Vec::new(),
            });
        }
        encode(&Message::Update(update), options, outbox);
    }
}

/// The next connection the neighbour opens; never, once nobody can hand
/// one over (a neighbour without a listener).
pub(super) async fn next_inbound<S>(inbound: &mut mpsc::Receiver<S>) -> S {
    match inbound.recv().await {
        Some(stream) => stream,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "io_tests.rs"]
mod tests;
