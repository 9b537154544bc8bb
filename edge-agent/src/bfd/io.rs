//! The BFD executor: one tokio task that owns the UDP sockets and runs an
//! [`Endpoint`]. Control packets are received on ports 3784 (single-hop)
//! and 4784 (multihop), with their TTL and destination address, and each
//! session sends from its own source port in 49152–65535 with TTL 255
//! and the network-control class (RFC 5881 §4–5, RFC 5883 §5). Sockets
//! are bound when the first session needing them is added.
//!
//! Clients hold a [`BfdSession`]: a watch of the session's status, whose
//! `failures` counter grows each time the path fails. Dropping it takes
//! the session administratively down and removes it within a second.

use std::{
    collections::HashMap,
    io,
    mem::{self, MaybeUninit},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use tokio::{
    io::{
        Interest,
        unix::{AsyncFd, AsyncFdReadyGuard},
    },
    sync::{mpsc, oneshot, watch},
};

use super::{
    endpoint::{Datagram, Drops, Endpoint, Hop, SessionId, SessionKey},
    packet::{MAX_LEN, State},
    session::{SessionConfig, SessionStatus, Transition},
};
use crate::net::random;

/// The source ports our sessions send from, one each (RFC 5881 §4).
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// IP precedence 6, network control: BFD must not queue behind traffic.
const NETWORK_CONTROL: u32 = 0xc0;
/// How often statuses and counters are published and sessions whose
/// handles are gone are removed.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Commands waiting for the executor.
const COMMANDS: usize = 64;

/// A session's status, as its client and the status page see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdStatus {
    /// What the session is for, in log lines ("upstream 198.51.100.1").
    pub name: String,
    /// Who it is with.
    pub key: SessionKey,
    /// The session.
    pub session: SessionStatus,
    /// Packets dropped that were for this session.
    pub drops: Drops,
    /// Packets the kernel would not send (no route to the peer, a full
    /// socket buffer).
    pub send_errors: u64,
}

/// A running session; dropping it ends the session.
#[derive(Debug)]
pub struct BfdSession {
    /// The session's status, published on every state change and every
    /// second.
    pub status: watch::Receiver<BfdStatus>,
}

/// Waits until the session behind `status` counts more failures than
/// `seen`, and returns the count: what a client closes its session on.
/// Never returns without a session, or once BFD has stopped (its last
/// word stands).
pub async fn next_failure(status: Option<&mut watch::Receiver<BfdStatus>>, seen: u64) -> u64 {
    let Some(status) = status else {
        return std::future::pending().await;
    };
    let failures = status
        .wait_for(|s| s.session.counters.failures > seen)
        .await
        .map(|s| s.session.counters.failures);
    match failures {
        Ok(n) => n,
        Err(_) => std::future::pending().await,
    }
}

impl BfdSession {
    /// Whether the session is Up now.
    pub fn is_up(&self) -> bool {
        self.status.borrow().session.state == State::Up
    }
}

/// Why a session could not be started.
#[derive(Debug, thiserror::Error)]
pub enum BfdError {
    /// A receive port could not be bound.
    #[error(
        "BFD: cannot receive on UDP port {port} ({family}): {source} (is another BFD daemon, e.g. bfdd or BIRD, running on this node?)"
    )]
    Bind {
        /// The port.
        port: u16,
        /// IPv4 or IPv6.
        family: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The session's own sending socket.
    #[error("BFD: cannot open a socket to send to {peer}: {source}")]
    Send {
        /// The peer.
        peer: IpAddr,
        /// Why.
        source: io::Error,
    },
    /// The executor is gone (the agent is stopping).
    #[error("BFD is stopped")]
    Stopped,
}

enum Command {
    Add {
        name: String,
        key: SessionKey,
        config: SessionConfig,
        reply: oneshot::Sender<Result<BfdSession, BfdError>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// The node's BFD: a handle to the executor task.
#[derive(Clone, Debug)]
pub struct Bfd {
    commands: mpsc::Sender<Command>,
    drops: watch::Receiver<Drops>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Add { name, .. } => write!(f, "Add({name})"),
            Command::Shutdown { .. } => f.write_str("Shutdown"),
        }
    }
}

impl Bfd {
    /// Starts the executor (inside a tokio runtime). It runs until every
    /// handle is dropped.
    pub fn spawn() -> Bfd {
        let (commands, rx) = mpsc::channel(COMMANDS);
        let (drops_tx, drops) = watch::channel(Drops::default());
        tokio::spawn(run(rx, drops_tx));
        Bfd { commands, drops }
    }

    /// Starts a session named `name` (for log lines) with `key`.
    pub async fn add(
        &self,
        name: impl Into<String>,
        key: SessionKey,
        config: SessionConfig,
    ) -> Result<BfdSession, BfdError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Add {
                name: name.into(),
                key,
                config,
                reply,
            })
            .await
            .map_err(|_| BfdError::Stopped)?;
        answer.await.map_err(|_| BfdError::Stopped)?
    }

    /// Takes every session administratively down, tells each peer, and
    /// stops. Peers see no failure (RFC 5882 §3.2): a restarting agent's
    /// routers keep its BGP sessions' routes through graceful restart
    /// instead of dropping them when its BFD falls silent.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = done.await;
        }
    }

    /// Every datagram dropped, by reason (published every second).
    pub fn drops(&self) -> Drops {
        self.drops.borrow().clone()
    }
}

/// A session as the executor keeps it.
struct Running {
    name: String,
    socket: socket2::Socket,
    to: SocketAddr,
    status: watch::Sender<BfdStatus>,
    send_errors: u64,
}

/// One receive socket.
struct Receiver {
    fd: AsyncFd<socket2::Socket>,
    hop: Hop,
}

async fn run(mut commands: mpsc::Receiver<Command>, drops: watch::Sender<Drops>) {
    let mut endpoint = Endpoint::new();
    let mut running: HashMap<SessionId, Running> = HashMap::new();
    let mut receivers: HashMap<(Hop, bool), Receiver> = HashMap::new();
    let mut out = Vec::with_capacity(MAX_LEN);
    let mut buf = [0u8; 2048];
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut drop_log = DropLog::default();
    loop {
        endpoint.transmit_due(Instant::now(), &mut out, |id, packet| {
            if let Some(r) = running.get_mut(&id) {
                if r.socket.send_to(packet, &r.to.into()).is_err() {
                    r.send_errors += 1;
                }
            }
        });
        while let Some((id, transition)) = endpoint.poll_transition() {
            if let Some(r) = running.get(&id) {
                log_transition(&r.name, &transition, &endpoint, id);
                publish(&endpoint, id, r);
            }
        }
        if !open && running.is_empty() {
            return;
        }
        // One timer, moved rather than made anew at every turn.
        let deadline = endpoint.poll_timeout();
        let armed = deadline.is_some();
        if let Some(at) = deadline {
            let at = tokio::time::Instant::from_std(at);
            if timer.deadline() != at {
                timer.as_mut().reset(at);
            }
        }
        let mut ready = receivers.values();
        let (a, b, c, d) = (ready.next(), ready.next(), ready.next(), ready.next());
        tokio::select! {
            command = commands.recv(), if open => match command {
                Some(Command::Add { name, key, config, reply }) => {
                    let added = add(&mut endpoint, &mut receivers, name, key, config);
                    let _ = reply.send(added.map(|(id, r, session)| {
                        running.insert(id, r);
                        session
                    }));
                }
                Some(Command::Shutdown { reply }) => {
                    let now = Instant::now();
                    for (id, r) in &running {
                        if let Some(session) = endpoint.session_mut(*id) {
                            session.admin_down(now);
                            let mut last = Vec::new();
                            if session.poll_transmit(now, &mut last) {
                                let _ = r.socket.send_to(&last, &r.to.into());
                            }
                        }
                    }
                    tracing::info!("BFD: every session administratively down, stopping");
                    let _ = reply.send(());
                    return;
                }
                None => open = false,
            },
            ready = readable(a) => drain(ready, &mut endpoint, &mut buf),
            ready = readable(b) => drain(ready, &mut endpoint, &mut buf),
            ready = readable(c) => drain(ready, &mut endpoint, &mut buf),
            ready = readable(d) => drain(ready, &mut endpoint, &mut buf),
            () = &mut timer, if armed => endpoint.handle_timeout(Instant::now()),
            _ = sweep.tick() => {
                let now = Instant::now();
                running.retain(|id, r| {
                    if r.status.is_closed() {
                        // Tell the peer it is on purpose (RFC 5882 §3.2).
                        if let Some(mut session) = endpoint.remove(*id) {
                            session.admin_down(now);
                            let mut last = Vec::new();
                            if session.poll_transmit(now, &mut last) {
                                let _ = r.socket.send_to(&last, &r.to.into());
                            }
                        }
                        tracing::info!(session = %r.name, "BFD {}: removed", r.name);
                        false
                    } else {
                        publish(&endpoint, *id, r);
                        true
                    }
                });
                drops.send_if_modified(|d| {
                    let changed = d != endpoint.drops();
                    d.clone_from(endpoint.drops());
                    changed
                });
                drop_log.log(endpoint.drops(), now);
            }
        }
    }
}

fn publish(endpoint: &Endpoint, id: SessionId, r: &Running) {
    if let Some((session, drops)) = endpoint.status(id) {
        r.status.send_if_modified(|s| {
            let changed =
                s.session != session || s.drops != drops || s.send_errors != r.send_errors;
            s.session = session;
            s.drops = drops;
            s.send_errors = r.send_errors;
            changed
        });
    }
}

/// Dropped packets are logged at most this often, with how many and why.
const DROP_LOG_EVERY: Duration = Duration::from_secs(60);

/// The warning for packets dropped since the last one, at most once every
/// [`DROP_LOG_EVERY`]: a peer (or anyone) can send them as fast as it likes.
#[derive(Default)]
struct DropLog {
    logged: Option<Instant>,
    seen: Drops,
}

impl DropLog {
    fn log(&mut self, now: &Drops, at: Instant) {
        if now.total() == self.seen.total()
            || self
                .logged
                .is_some_and(|t| at.duration_since(t) < DROP_LOG_EVERY)
        {
            return;
        }
        let reasons: Vec<String> = now
            .iter()
            .filter_map(|(reason, n)| {
                let new = n - self.seen.get(reason);
                (new > 0).then(|| format!("{} {new}", reason.name()))
            })
            .collect();
        tracing::warn!(
            "BFD: dropped {} packet(s) since the last report: {}",
            now.total() - self.seen.total(),
            reasons.join(", ")
        );
        self.logged = Some(at);
        self.seen = now.clone();
    }
}

fn log_transition(name: &str, t: &Transition, endpoint: &Endpoint, id: SessionId) {
    let status = endpoint.status(id).map(|(s, _)| s);
    let ms =
        |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), |d| format!("{} ms", d.as_millis()));
    match t.to {
        State::Up => tracing::info!(
            session = %name,
            "BFD {name}: up, sending every {}, detection time {}",
            ms(status.as_ref().and_then(|s| s.tx_interval)),
            ms(status.as_ref().and_then(|s| s.detection_time)),
        ),
        State::Down if t.from == State::Up || t.from == State::Init => {
            let why = if t.peer_admin_down {
                "the peer took the session administratively down".to_owned()
            } else {
                t.diag.to_string()
            };
            tracing::info!(session = %name, "BFD {name}: down ({why}), was {}", t.from)
        }
        State::AdminDown => tracing::info!(session = %name, "BFD {name}: administratively down"),
        _ => tracing::debug!(session = %name, "BFD {name}: {} -> {}", t.from, t.to),
    }
}

/// A receive socket that has datagrams waiting, with the readiness guard
/// that the reads clear (only when one would block, so that none is left
/// unread without a wake-up).
async fn readable(receiver: Option<&Receiver>) -> (Hop, AsyncFdReadyGuard<'_, socket2::Socket>) {
    match receiver {
        Some(r) => match r.fd.readable().await {
            Ok(guard) => (r.hop, guard),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Reads the datagrams waiting behind `guard`: until the socket would
/// block (which clears its readiness), or 256 of them, so that a flood
/// cannot starve the timers (the socket is then still ready, and read
/// again at the next turn).
fn drain(
    (hop, mut guard): (Hop, AsyncFdReadyGuard<'_, socket2::Socket>),
    endpoint: &mut Endpoint,
    buf: &mut [u8],
) {
    for _ in 0..256 {
        match guard.try_io(|fd| recv_datagram(fd.get_ref(), buf)) {
            Ok(Ok((n, from, to, ttl))) => {
                let datagram = Datagram {
                    from,
                    to,
                    ttl: ttl.unwrap_or(0),
                    hop,
                    bytes: &buf[..n],
                };
                let _ = endpoint.receive(&datagram, Instant::now());
            }
            // An error of one datagram (ICMP reported on the socket, a
            // source that is no IP address): the next one is read.
            Ok(Err(_)) => {}
            // Would block: readiness cleared, nothing left.
            Err(_) => return,
        }
    }
}

fn add(
    endpoint: &mut Endpoint,
    receivers: &mut HashMap<(Hop, bool), Receiver>,
    name: String,
    key: SessionKey,
    config: SessionConfig,
) -> Result<(SessionId, Running, BfdSession), BfdError> {
    let v6 = key.peer.is_ipv6();
    if let std::collections::hash_map::Entry::Vacant(slot) = receivers.entry((key.hop, v6)) {
        let socket = bind_receiver(key.hop.port(), v6).map_err(|source| BfdError::Bind {
            port: key.hop.port(),
            family: if v6 { "IPv6" } else { "IPv4" },
            source,
        })?;
        // SAFETY: the `AsyncFd` owns the socket, so the descriptor stays
        // open and the same until it is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
            .map_err(|source| BfdError::Bind {
                port: key.hop.port(),
                family: if v6 { "IPv6" } else { "IPv4" },
                source,
            })?;
        slot.insert(Receiver { fd, hop: key.hop });
    }
    let socket = bind_sender(&key).map_err(|source| BfdError::Send {
        peer: key.peer,
        source,
    })?;
    let id = endpoint.add(
        key.clone(),
        config,
        || random::u64() as u32,
        random::u64(),
        Instant::now(),
    );
    let (session, drops) = endpoint.status(id).expect("just added");
    let (status, rx) = watch::channel(BfdStatus {
        name: name.clone(),
        key: key.clone(),
        session,
        drops,
        send_errors: 0,
    });
    tracing::info!(session = %name, "BFD {name}: started, {key}");
    Ok((
        id,
        Running {
            name,
            socket,
            to: SocketAddr::new(key.peer, key.hop.port()),
            status,
            send_errors: 0,
        },
        BfdSession { status: rx },
    ))
}

fn bind_receiver(port: u16, v6: bool) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        if v6 { Domain::IPV6 } else { Domain::IPV4 },
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_reuse_address(true)?;
    if v6 {
        socket.set_only_v6(true)?;
        set_int(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
        set_int(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
    } else {
        set_int(&socket, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)?;
        set_int(&socket, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?;
    }
    socket.set_nonblocking(true)?;
    let any: IpAddr = if v6 {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    };
    socket.bind(&SocketAddr::new(any, port).into())?;
    Ok(socket)
}

/// The session's sending socket: TTL 255, network control, a source port
/// of its own from [`SOURCE_PORTS`], our address toward the peer if set.
fn bind_sender(key: &SessionKey) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let v6 = key.peer.is_ipv6();
    let socket = Socket::new(
        if v6 { Domain::IPV6 } else { Domain::IPV4 },
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if v6 {
        socket.set_only_v6(true)?;
        socket.set_unicast_hops_v6(u32::from(super::endpoint::SINGLE_HOP_TTL))?;
        socket.set_tclass_v6(NETWORK_CONTROL)?;
        socket.set_freebind_v6(true)?;
    } else {
        socket.set_ttl_v4(u32::from(super::endpoint::SINGLE_HOP_TTL))?;
        socket.set_tos_v4(NETWORK_CONTROL)?;
        socket.set_freebind_v4(true)?;
    }
    socket.set_nonblocking(true)?;
    let local = key.local.unwrap_or(if v6 {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    });
    let span = u64::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let mut last = io::Error::from(io::ErrorKind::AddrInUse);
    for _ in 0..64 {
        let port = SOURCE_PORTS.start() + (random::u64() % span) as u16;
        match socket.bind(&SocketAddr::new(local, port).into()) {
            Ok(()) => return Ok(socket),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn set_int(
    socket: &socket2::Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` outlives the call and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One datagram with where it came from, the address it was sent to and
/// its TTL (hop limit), from the control messages asked for in
/// [`bind_receiver`].
fn recv_datagram(
    socket: &socket2::Socket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<IpAddr>, Option<u8>)> {
    let mut name = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64s: aligned as cmsghdr needs.
    let mut control = [0u64; 16];
    // SAFETY: an all-zero msghdr is valid; every pointer set below points
    // into a buffer that lives across the call, with its length.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = name.as_mut_ptr().cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&control);
    // SAFETY: `msg` describes valid buffers (above).
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ttl = None;
    let mut to = None;
    // SAFETY: the kernel filled `control` up to msg_controllen; the CMSG_*
    // macros stay within it, and each payload is read unaligned at the
    // size its type has on Linux.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    let value = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                    ttl = u8::try_from(value).ok();
                }
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                    to = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        info.ipi_addr.s_addr,
                    ))));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    to = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    // SAFETY: zero-initialised, and the kernel wrote the sender's address.
    let name = unsafe { name.assume_init() };
    let from = source(&name).ok_or_else(|| io::Error::other("a datagram without an IP source"))?;
    Ok((n as usize, from, to, ttl))
}

/// The IP address and port in a `sockaddr_storage` the kernel filled.
fn source(name: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(name.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in,
            // which is smaller than sockaddr_storage.
            let sin =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into(),
                u16::from_be(sin.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr).into(),
                u16::from_be(sin6.sin6_port),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "io_tests.rs"]
mod tests;
