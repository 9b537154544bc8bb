//! The thin tokio layer around a [`Speaker`]: it moves bytes between the
//! speaker and a byte stream (`AsyncRead + AsyncWrite`: TCP to an upstream
//! router, mutual TLS to an overlay peer), opens a connection when the
//! speaker asks for one, hands it the neighbour's connections, the agent's
//! [`Intent`] and the time, publishes its [`Status`] and forwards what the
//! neighbour announces to an importer. It decides nothing.
//!
//! Everything it holds is bounded: one read buffer, the UPDATEs decoded
//! from one read while the importer's channel is full (reading stops until
//! the importer catches up, so a neighbour that sends faster than the
//! agent imports is slowed down by TCP, not buffered), at most one held
//! and one arriving connection.

use std::{collections::VecDeque, future::Future, io, pin::Pin, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf},
    sync::{broadcast, mpsc, watch},
};

use super::{
    session::{DownReason, Negotiated, State},
    speaker::{Intent, Speaker, SpeakerEvent, Status, collision_cease},
};
use crate::{
    bfd::{BfdStatus, io::next_failure},
    bgp::message::Update,
    net::time::sleep_until,
};

/// How much one read takes at most (a few full-size UPDATEs).
const READ_SIZE: usize = 64 * 1024;
/// How long the last bytes to a closing connection may take.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

/// A state change of a neighbour, as a stream of events (a `broadcast`:
/// every change, in order, for whoever subscribes; nothing is kept when
/// nobody does).
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

/// What an importer of a neighbour's routes gets, in protocol order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feed {
    /// The session is Established: UPDATEs may follow.
    Established(Negotiated),
    /// An UPDATE from the neighbour.
    Update(Update),
}

/// Where a neighbour reports its status and events.
#[derive(Clone, Debug)]
pub struct Telemetry {
    /// The latest status.
    pub status: watch::Sender<Status>,
    /// Every state change.
    pub events: broadcast::Sender<Event>,
    /// Where the neighbour's routes go, in order, if anyone imports them
    /// (`None`: they are counted and dropped). A full channel stops
    /// reading from the neighbour until it has room.
    pub feed: Option<mpsc::Sender<Feed>>,
    /// The neighbour's name in log lines (an upstream neighbour's
    /// address), if the executor is to log the session going up and down.
    /// `None` where the caller logs it (the overlay's adjacencies).
    pub log_as: Option<String>,
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
                log_as: None,
            },
            receiver,
        )
    }

    fn event(&self, event: Event) {
        // No subscriber is fine: events are for whoever listens.
        let _ = self.events.send(event);
    }

    fn publish(&self, now: &Status) {
        self.status.send_if_modified(|s| {
            if s == now {
                false
            } else {
                s.clone_from(now);
                true
            }
        });
    }
}

/// A future that opens a connection to the neighbour.
pub type Connecting<S> = Pin<Box<dyn Future<Output = io::Result<S>> + Send>>;

/// Where the executor gets connections from, besides the first one.
pub struct Links<'a, S> {
    /// Opens a connection to the neighbour when the speaker asks (`None`:
    /// it never does, the session being passive).
    pub connect: Option<&'a (dyn Fn() -> Connecting<S> + Sync)>,
    /// Connections the neighbour opened to us (`None`: nobody listens).
    pub inbound: Option<&'a mut mpsc::Receiver<S>>,
    /// The BFD session to the neighbour, if there is one: each failure
    /// it counts closes the BGP session at once.
    pub liveness: Option<&'a mut watch::Receiver<BfdStatus>>,
}

/// Runs `speaker` over one connection, `stream` (opened by us if `ours`),
/// until its session goes down, and says why: the overlay's sessions,
/// where the adjacency owns reconnecting. `speaker` must be passive. A
/// failure `liveness` (BFD) counts ends the session at once.
pub async fn run_connection<S>(
    stream: S,
    ours: bool,
    mut speaker: Speaker,
    mut intent: watch::Receiver<Intent>,
    telemetry: &Telemetry,
    liveness: Option<&mut watch::Receiver<BfdStatus>>,
) -> DownReason
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let links = Links {
        connect: None,
        inbound: None,
        liveness,
    };
    drive(
        &mut speaker,
        Some((stream, ours)),
        links,
        &mut intent,
        telemetry,
        true,
    )
    .await
    .unwrap_or(DownReason::Stopped)
}

/// Runs `speaker` until it is stopped through `intent` (or `intent`'s
/// sender is dropped), over the connections it asks for and the ones the
/// neighbour opens: an upstream neighbour, whose session restarts after
/// every failure. With `until_down`, returns at the first time the session
/// goes down instead, with the reason.
pub async fn drive<S>(
    speaker: &mut Speaker,
    first: Option<(S, bool)>,
    mut links: Links<'_, S>,
    intent: &mut watch::Receiver<Intent>,
    telemetry: &Telemetry,
    until_down: bool,
) -> Option<DownReason>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut current: Option<(ReadHalf<S>, WriteHalf<S>)> = None;
    let mut arrived: Option<S> = None;
    let mut held: Option<S> = None;
    let mut connecting: Option<Connecting<S>> = None;
    let mut imports: VecDeque<Feed> = VecDeque::new();
    let mut buf = vec![0u8; READ_SIZE];
    let mut was_up = false;
    let mut agent_gone = false;
    let mut failures = FailureLog::default();
    let mut path_failures = links
        .liveness
        .as_deref()
        .map_or(0, |l| l.borrow().session.counters.failures);
    let now = std::time::Instant::now();
    speaker.set_intent(&intent.borrow_and_update(), now);
    if let Some((stream, ours)) = first {
        current = Some(tokio::io::split(stream));
        speaker.connected(ours, now);
    }
    loop {
        let mut down = None;
        while let Some(event) = speaker.poll_event() {
            let now = std::time::Instant::now();
            match event {
                SpeakerEvent::Connect => connecting = links.connect.map(|connect| connect()),
                SpeakerEvent::Close => {
                    if let Some((_, writer)) = current.take() {
                        close(writer, speaker, now).await;
                    }
                }
                SpeakerEvent::UseArrived => {
                    connecting = None;
                    if let Some(stream) = arrived.take() {
                        current = Some(tokio::io::split(stream));
                        speaker.connected(false, now);
                    }
                }
                SpeakerEvent::RefuseArrived => refuse(arrived.take()),
                SpeakerEvent::HoldArrived => held = arrived.take(),
                SpeakerEvent::RefuseHeld => refuse(held.take()),
                SpeakerEvent::UseHeld => {
                    if let Some(stream) = held.take() {
                        current = Some(tokio::io::split(stream));
                        speaker.connected(false, now);
                    }
                }
                SpeakerEvent::StateChanged { from, to } => {
                    telemetry.event(Event::StateChanged { from, to })
                }
                SpeakerEvent::Established(negotiated) => {
                    was_up = true;
                    if let Some(name) = &telemetry.log_as {
                        tracing::info!(
                            neighbor = %name,
                            "upstream BGP session with {name} established: identifier {}, hold time {} s, families {:?}",
                            negotiated.peer_bgp_id,
                            negotiated.hold_time,
                            negotiated.families,
                        );
                    }
                    telemetry.event(Event::Established(negotiated.clone()));
                    if telemetry.feed.is_some() {
                        imports.push_back(Feed::Established(negotiated));
                    }
                }
                SpeakerEvent::Received(update) => {
                    if telemetry.feed.is_some() {
                        imports.push_back(Feed::Update(*update));
                    }
                }
                SpeakerEvent::Down(reason) => {
                    if let Some(name) = &telemetry.log_as {
                        failures.log(name, &reason, was_up, now);
                    }
                    was_up = false;
                    telemetry.event(Event::Down(reason.clone()));
                    down = Some(reason);
                }
            }
        }
        telemetry.publish(speaker.status());
        if let Some(reason) = down.filter(|_| until_down) {
            deliver_all(imports, telemetry).await;
            return Some(reason);
        }
        if speaker.is_stopped() {
            if let Some((_, writer)) = current.take() {
                close(writer, speaker, std::time::Instant::now()).await;
            }
            refuse(held.take());
            return None;
        }
        let deadline = speaker.poll_timeout();
        let (reader, writer) = match current.as_mut() {
            Some((r, w)) => (Some(r), Some(w)),
            None => (None, None),
        };
        // Backpressure: nothing more is read while decoded UPDATEs wait.
        let reader = reader.filter(|_| imports.is_empty());
        let pending = speaker.transmit();
        let writer = writer.filter(|_| !pending.is_empty());
        let feed = telemetry.feed.as_ref().filter(|_| !imports.is_empty());
        tokio::select! {
            read = read_some(reader, &mut buf) => {
                let now = std::time::Instant::now();
                match read {
                    Ok(0) | Err(_) => speaker.connection_lost(now),
                    Ok(n) => {
                        // What the agent wants, if it changed meanwhile,
                        // first: these bytes may complete Established,
                        // and what goes out before End-of-RIB must be the
                        // latest.
                        if intent.has_changed().unwrap_or(false) {
                            speaker.set_intent(&intent.borrow_and_update(), now);
                        }
                        speaker.received(&buf[..n], now)
                    }
                }
            }
            written = write_some(writer, pending) => {
                let now = std::time::Instant::now();
                match written {
                    Ok(n) if n > 0 => speaker.transmitted(n, now),
                    _ => speaker.connection_lost(now),
                }
            }
            result = opened(connecting.as_mut()) => {
                connecting = None;
                let now = std::time::Instant::now();
                match result {
                    Ok(stream) if current.is_none() => {
                        current = Some(tokio::io::split(stream));
                        speaker.connected(true, now);
                    }
                    // The neighbour's connection came first.
                    Ok(_) => {}
                    Err(_) => speaker.connect_failed(now),
                }
            }
            stream = accepted(links.inbound.as_deref_mut()) => {
                arrived = Some(stream);
                speaker.neighbour_connected(std::time::Instant::now());
            }
            changed = intent.changed(), if !agent_gone => {
                let now = std::time::Instant::now();
                match changed {
                    Ok(()) => speaker.set_intent(&intent.borrow_and_update(), now),
                    // The agent is gone: leave as it would have (once; a
                    // closed channel is ready at every poll).
                    Err(_) => {
                        agent_gone = true;
                        let mut last = intent.borrow().clone();
                        last.stop("edge agent stopping");
                        speaker.set_intent(&last, now);
                    }
                }
            }
            sent = reserve(feed) => match sent {
                Some(permit) => {
                    if let Some(item) = imports.pop_front() {
                        permit.send(item);
                    }
                }
                // The importer is gone (shutting down): nothing to do.
                None => imports.clear(),
            },
            failed = next_failure(links.liveness.as_deref_mut(), path_failures) => {
                path_failures = failed;
                speaker.path_down(std::time::Instant::now());
            }
            () = sleep_until(deadline) => speaker.handle_timeout(std::time::Instant::now()),
        }
    }
}

/// Sessions that fail before Established are logged at most this often.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// Log lines for a session going down: every time it was Established, at
/// most once every [`FAILURE_LOG_EVERY`] (with how many were not logged)
/// when it never got there, as a neighbour refusing our OPEN would repeat
/// it at every retry.
#[derive(Default)]
struct FailureLog {
    logged: Option<std::time::Instant>,
    unlogged: u64,
}

impl FailureLog {
    fn log(&mut self, name: &str, reason: &DownReason, was_up: bool, now: std::time::Instant) {
        if was_up {
            tracing::info!(neighbor = %name, "upstream BGP session with {name} down: {reason}");
            return;
        }
        if self
            .logged
            .is_some_and(|at| now.duration_since(at) < FAILURE_LOG_EVERY)
        {
            self.unlogged += 1;
            return;
        }
        let more = match self.unlogged {
            0 => String::new(),
            n => format!(" ({n} more failures since the last line)"),
        };
        tracing::warn!(neighbor = %name, "upstream BGP session with {name} failed before Established: {reason}{more}");
        self.logged = Some(now);
        self.unlogged = 0;
    }
}

/// Writes what the speaker has queued (bounded in time), then closes.
async fn close<S: AsyncWrite>(
    mut writer: WriteHalf<S>,
    speaker: &mut Speaker,
    now: std::time::Instant,
) {
    let bytes = speaker.transmit().len();
    let _ = tokio::time::timeout(CLOSE_FLUSH, async {
        let _ = writer.write_all(speaker.transmit()).await;
        let _ = writer.shutdown().await;
    })
    .await;
    speaker.transmitted(bytes, now);
}

/// Closes a connection that lost a collision with a Cease, in its own task.
fn refuse<S: AsyncWrite + Unpin + Send + 'static>(stream: Option<S>) {
    if let Some(mut stream) = stream {
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CLOSE_FLUSH, async {
                let _ = stream.write_all(&collision_cease()).await;
                let _ = stream.shutdown().await;
            })
            .await;
        });
    }
}

/// Delivers what is left to the importer after the session went down.
async fn deliver_all(imports: VecDeque<Feed>, telemetry: &Telemetry) {
    if let Some(feed) = &telemetry.feed {
        for item in imports {
            if feed.send(item).await.is_err() {
                return;
            }
        }
    }
}

async fn read_some<R: AsyncRead + Unpin>(
    reader: Option<&mut R>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match reader {
        Some(reader) => reader.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn write_some<W: AsyncWrite + Unpin>(
    writer: Option<&mut W>,
    bytes: &[u8],
) -> io::Result<usize> {
    match writer {
        Some(writer) => writer.write(bytes).await,
        None => std::future::pending().await,
    }
}

async fn opened<S>(connecting: Option<&mut Connecting<S>>) -> io::Result<S> {
    match connecting {
        Some(connecting) => connecting.await,
        None => std::future::pending().await,
    }
}

/// The next connection the neighbour opens; never, when nobody listens.
async fn accepted<S>(inbound: Option<&mut mpsc::Receiver<S>>) -> S {
    match inbound {
        Some(inbound) => match inbound.recv().await {
            Some(stream) => stream,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

async fn reserve(feed: Option<&mpsc::Sender<Feed>>) -> Option<mpsc::Permit<'_, Feed>> {
    match feed {
        Some(feed) => feed.reserve().await.ok(),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "io_tests.rs"]
mod tests;
