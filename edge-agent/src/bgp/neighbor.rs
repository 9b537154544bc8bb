//! One neighbour, for as long as the agent wants it: connect (TCP, with a
//! TCP MD5 key if configured), run the session over the connection, and
//! when it goes down let the state machine's idle hold decide when to try
//! again. What the agent announces is kept across sessions and announced
//! again on every new one.

use std::{
    io,
    net::{IpAddr, SocketAddr},
    time::Instant,
};

use tokio::{
    net::{TcpSocket, TcpStream},
    sync::{mpsc, watch},
};

use super::{
    io::{self as session_io, Command, Status},
    md5,
    rib_out::{Origination, RibOut},
    session::{Action, DownReason, Input, Session, SessionConfig},
};

/// How to reach one neighbour and what to tell it.
#[derive(Clone, Debug)]
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
/// closing) has withdrawn everything and ended the session.
pub async fn run(
    config: NeighborConfig,
    mut commands: mpsc::Receiver<Command>,
    status: watch::Sender<Status>,
) {
    let mut session = Session::new(config.session.clone());
    let mut rib = RibOut::default();
    session.handle(Input::Start, Instant::now());
    loop {
        while let Some(action) = session.poll_action() {
            match action {
                Action::Connect => match connect(&config).await {
                    Ok(stream) => {
                        let reason = session_io::run(
                            stream,
                            &mut session,
                            &mut rib,
                            &config.origination,
                            &mut commands,
                            &status,
                        )
                        .await;
                        rib.reset();
                        if reason == DownReason::Stopped {
                            return;
                        }
                    }
                    Err(_) => session.handle(Input::TransportClosed, Instant::now()),
                },
                Action::StateChanged { to, .. } => status.send_modify(|s| s.state = Some(to)),
                Action::Down(reason) => status.send_modify(|s| s.last_down = Some(reason)),
                _ => {}
            }
        }
        let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            () = sleep_until(deadline) => session.handle_timeout(Instant::now()),
            command = commands.recv() => match command {
                Some(Command::Announce(prefix, attrs)) => rib.announce(prefix, attrs),
                Some(Command::Withdraw(prefix)) => rib.withdraw(prefix),
                // Not connected: nothing is announced, so there is nothing to withdraw.
                Some(Command::Shutdown(_)) | None => return,
            },
        }
    }
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

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
