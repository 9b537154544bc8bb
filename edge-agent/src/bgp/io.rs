//! The thin tokio layer: runs one [`Session`] over any byte stream
//! (`AsyncRead + AsyncWrite`: TCP to an upstream router, mutual TLS to an
//! overlay peer), and turns the agent's announce/withdraw commands into
//! UPDATEs through the [`RibOut`]. All protocol decisions stay in the
//! sans-IO core; this file only moves bytes and time.

use std::time::Instant;

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::{mpsc, watch},
};

use super::{
    codec::{self, CodecOptions},
    message::{Attributes, Family, Message, MpUnreach, Prefix, Update},
    rib_out::{Changes, OriginAttrs, Origination, RibOut},
    session::{Action, DownReason, Input, Negotiated, Session, State},
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

/// What the agent can see of a session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// The state, `None` before the first transition.
    pub state: Option<State>,
    /// Prefixes the neighbour announced to us (counted, never installed).
    pub received_prefixes: usize,
    /// UPDATE messages sent.
    pub updates_sent: u64,
    /// Why the session last went down.
    pub last_down: Option<DownReason>,
}

/// Runs `session` over `stream` until it goes down, and says why. The
/// session must have been started and this stream must be its transport
/// (it gets `TransportConnected` here). `rib` persists across sessions:
/// everything desired is announced again once Established.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    session: &mut Session,
    rib: &mut RibOut,
    origination: &Origination,
    commands: &mut mpsc::Receiver<Command>,
    status: &watch::Sender<Status>,
) -> DownReason {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut options = CodecOptions {
        four_octet_as: false,
    };
    let mut inbox: Vec<u8> = Vec::with_capacity(8192);
    let mut outbox: Vec<u8> = Vec::new();
    let mut established = false;
    let mut shutting_down: Option<String> = None;
    session.handle(Input::TransportConnected, Instant::now());
    loop {
        while let Some(action) = session.poll_action() {
            match action {
                Action::Send(message) => encode(&message, &options, &mut outbox),
                Action::Established(n) => {
                    options.four_octet_as = n.four_octet_as;
                    established = true;
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
                Action::StateChanged { to, .. } => status.send_modify(|s| s.state = Some(to)),
                Action::ReceivedPrefixes(n) => status.send_modify(|s| s.received_prefixes = n),
                Action::Down(reason) => {
                    let _ = writer.write_all(&outbox).await;
                    let _ = writer.shutdown().await;
                    status.send_modify(|s| s.last_down = Some(reason.clone()));
                    return reason;
                }
                Action::Close | Action::Connect => {}
            }
        }
        let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
        let blocked = !outbox.is_empty();
        tokio::select! {
            read = reader.read_buf(&mut inbox) => match read {
                Ok(0) | Err(_) => session.handle(Input::TransportClosed, Instant::now()),
                Ok(_) => decode_all(&mut inbox, &options, session),
            },
            command = commands.recv(), if shutting_down.is_none() => match command {
                Some(Command::Announce(prefix, attrs)) => rib.announce(prefix, attrs),
                Some(Command::Withdraw(prefix)) => rib.withdraw(prefix),
                Some(Command::Shutdown(reason)) => {
                    for prefix in rib.desired().keys().copied().collect::<Vec<_>>() {
                        rib.withdraw(prefix);
                    }
                    shutting_down = Some(reason);
                }
                None => shutting_down = Some("edge agent stopping".into()),
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

/// Decodes every complete message in `inbox` into the session.
fn decode_all(inbox: &mut Vec<u8>, options: &CodecOptions, session: &mut Session) {
    loop {
        match codec::decode(inbox, options) {
            Ok(Some(decoded)) => {
                inbox.drain(..decoded.len);
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
    for update in &updates {
        encode(&Message::Update(update.clone()), options, outbox);
    }
    status.send_modify(|s| s.updates_sent += updates.len() as u64);
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

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
