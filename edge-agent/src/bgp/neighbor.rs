//! One neighbour, for as long as the agent wants it: connect (TCP, with a
//! TCP MD5 key if configured), run the session over the connection, and
//! when it goes down let the state machine's idle hold decide when to try
//! again. What the agent announces is kept across sessions and announced
//! again on every new one.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    time::Instant,
};

use tokio::{
    net::{TcpListener, TcpSocket, TcpStream},
    sync::mpsc,
};

use super::{
    io::{self as session_io, Command, Ended, Telemetry},
    md5,
    rib_out::{Origination, RibOut},
    session::{Action, DownReason, Input, Session, SessionConfig, State},
};

/// How to reach one neighbour and what to tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborConfig {
    /// The session settings.
    pub session: SessionConfig,
    /// The neighbour's address and port (179).
    pub peer: SocketAddr,
    /// Our address to connect from, if it matters.
    pub local: Option<IpAddr>,
    /// TCP MD5 key (RFC 2385), if the neighbour requires one.
    pub md5_key: Option<Vec<u8>>,
    /// Who we are on the session (next hops, eBGP or iBGP).
    pub origination: Origination,
}

/// Runs the neighbour until [`Command::Shutdown`] (or the command channel
/// closing) has withdrawn everything and ended the session. Connections the
/// neighbour opens to us arrive on `inbound` (see [`listen`]); a passive
/// neighbour only uses those, an active one also connects, and collisions
/// between the two are resolved as RFC 4271 section 6.8 says.
pub async fn run(
    config: NeighborConfig,
    mut commands: mpsc::Receiver<Command>,
    mut inbound: mpsc::Receiver<TcpStream>,
    telemetry: Telemetry,
) {
    let mut session = Session::new(config.session.clone());
    let mut rib = RibOut::default();
    session.handle(Input::Start, Instant::now());
    // The next connection to run a session on: (stream, initiated by us).
    let mut next: Option<(TcpStream, bool)> = None;
    loop {
        if let Some((stream, ours)) = next.take() {
            let ended = session_io::run(
                stream,
                ours,
                &mut inbound,
                &mut session,
                &mut rib,
                &config.origination,
                &mut commands,
                &telemetry,
            )
            .await;
            rib.reset();
            match ended {
                Ended::Down(DownReason::Stopped) => return,
                Ended::Down(_) => {}
                Ended::Collision(winner) => {
                    // A fresh session on the winner; its Connect is moot.
                    session = Session::new(config.session.clone());
                    session.handle(Input::Start, Instant::now());
                    report_all(&mut session, &telemetry);
                    next = Some((winner, false));
                    continue;
                }
            }
        }
        while let Some(action) = session.poll_action() {
            match action {
                Action::Connect => match connect(&config).await {
                    Ok(stream) => next = Some((stream, true)),
                    Err(_) => session.handle(Input::TransportClosed, Instant::now()),
                },
                other => report(other, &telemetry),
            }
            if next.is_some() {
                break;
            }
        }
        if next.is_some() {
            continue;
        }
        let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            () = sleep_until(deadline) => session.handle_timeout(Instant::now()),
            stream = session_io::next_inbound(&mut inbound) => {
                // Not connected: the neighbour's connection is the one.
                if matches!(session.state(), State::Idle) {
                    session.handle(Input::Start, Instant::now());
                    report_all(&mut session, &telemetry);
                }
                next = Some((stream, false));
            },
            command = commands.recv() => {
                match command {
                    Some(Command::Announce(prefix, attrs)) => rib.announce(prefix, attrs),
                    Some(Command::Withdraw(prefix)) => rib.withdraw(prefix),
                    // Not connected: nothing is announced, so there is nothing to withdraw.
                    Some(Command::Shutdown(_)) | None => return,
                }
                telemetry.announced(&rib);
            },
        }
    }
}

/// Accepts BGP connections on `listener` and hands each to the neighbour
/// whose address it comes from (`neighbors`); others, and connections a
/// neighbour has no room for (it is already deciding between several), are
/// closed at once. TCP MD5 keys must already be set on the listening socket
/// ([`bind`]).
pub async fn listen(listener: TcpListener, neighbors: HashMap<IpAddr, mpsc::Sender<TcpStream>>) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors or memory: back off rather than spin.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(neighbor) = neighbors.get(&from.ip()) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        // One slow neighbour must not hold up the others' connections.
        let _ = neighbor.try_send(stream);
    }
}

/// A listening socket on `addr` (port 179) that accepts the TCP MD5 keys of
/// the neighbours that have one.
pub fn bind(addr: SocketAddr, keys: &[(IpAddr, Vec<u8>)]) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    for (peer, key) in keys {
        md5::set_key(&socket, *peer, key).map_err(io::Error::other)?;
    }
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(64)
}

/// Connects to the neighbour, signing with the MD5 key if there is one.
async fn connect(config: &NeighborConfig) -> io::Result<TcpStream> {
    let socket = if config.peer.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(key) = &config.md5_key {
        md5::set_key(&socket, config.peer.ip(), key).map_err(io::Error::other)?;
    }
    if let Some(local) = config.local {
        socket.bind(SocketAddr::new(local, 0))?;
    }
    // Without it, an UPDATE right after another (a withdrawal after an
    // announcement) waits for the neighbour's delayed ACK: tens of ms.
    socket.set_nodelay(true)?;
    match tokio::time::timeout(config.session.connect_retry, socket.connect(config.peer)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "connecting to the neighbour timed out",
        )),
    }
}

/// Reports what the session did outside a connection: state changes and
/// going down.
fn report(action: Action, telemetry: &Telemetry) {
    match action {
        Action::StateChanged { from, to } => telemetry.state_changed(from, to),
        Action::Down(reason) => telemetry.down(reason),
        _ => {}
    }
}

/// Reports every pending action; a connection is already at hand, so a
/// Connect among them is not acted on.
fn report_all(session: &mut Session, telemetry: &Telemetry) {
    while let Some(action) = session.poll_action() {
        report(action, telemetry);
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
