//! The authoritative DNS service's sockets (tokio, thin): UDP and TCP on
//! each listen address, every query handed to [`super::answer`], UDP
//! responses passed through [`super::rrl`]. Sockets are bound with
//! `IP_FREEBIND`, so the service can start before the netlink reconciler
//! has put the VIPs on the agent's interface.
//!
//! The operator can stop and start the listeners (`edge-agent dns
//! stop|start`) without touching anything else: the health probe then
//! sees the service down and the node forwards DNS to a peer, like any
//! local service that fails. Zones and limits are replaced in place on
//! reload; queries in flight finish with what they started with.

use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
    sync::Semaphore,
    task::JoinHandle,
};

use super::{
    answer::{self, Outcome, Settings, Transport},
    rrl::{RateLimit, RateLimiter, Verdict},
    zone::ZoneSet,
};

/// Everything the service runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Where to listen, UDP and TCP each (the DNS service's VIPs, port 53).
    pub listen: Vec<SocketAddr>,
    /// The zones.
    pub zones: Arc<ZoneSet>,
    /// EDNS size and NSID.
    pub settings: Settings,
    /// Response-rate limiting of UDP; `None`: off.
    pub rate_limit: Option<RateLimit>,
    /// How long a TCP connection may stay idle between queries.
    pub tcp_idle: Duration,
    /// The most TCP connections at once; more are closed at once.
    pub tcp_max_connections: usize,
}

/// Why the service could not listen.
#[derive(Debug, thiserror::Error)]
#[error("DNS service: cannot listen on {protocol} {address}: {source}")]
pub struct ListenError {
    /// "udp" or "tcp".
    pub protocol: &'static str,
    /// The address.
    pub address: SocketAddr,
    /// The system's error.
    pub source: io::Error,
}

/// The service's counters, since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsStats {
    /// Whether the listeners are up.
    pub listening: bool,
    /// Queries received over UDP.
    pub udp_queries: u64,
    /// Queries received over TCP.
    pub tcp_queries: u64,
    /// Responses by outcome ([`Outcome::ALL`] order).
    pub outcomes: Vec<(Outcome, u64)>,
    /// Responses sent truncated (TC=1) because they did not fit.
    pub truncated: u64,
    /// Messages that got no response (too short, or not a query).
    pub ignored: u64,
    /// UDP responses dropped by rate limiting.
    pub rate_limited_dropped: u64,
    /// UDP responses sent empty with TC=1 by rate limiting.
    pub rate_limited_slipped: u64,
    /// TCP connections accepted.
    pub tcp_connections: u64,
    /// TCP connections closed at once because too many were open.
    pub tcp_refused: u64,
    /// Responses that could not be sent.
    pub send_errors: u64,
}

#[derive(Default)]
struct Counters {
    udp_queries: AtomicU64,
    tcp_queries: AtomicU64,
    outcomes: [AtomicU64; Outcome::ALL.len()],
    truncated: AtomicU64,
    ignored: AtomicU64,
    rate_limited_dropped: AtomicU64,
    rate_limited_slipped: AtomicU64,
    tcp_connections: AtomicU64,
    tcp_refused: AtomicU64,
    send_errors: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What one query is answered from: swapped whole on reload.
struct Served {
    zones: Arc<ZoneSet>,
    settings: Settings,
}

struct Shared {
    served: RwLock<Arc<Served>>,
    limiter: Mutex<Option<RateLimiter>>,
    counters: Counters,
    tcp_slots: Arc<Semaphore>,
    tcp_idle: Duration,
}

impl Shared {
    fn served(&self) -> Arc<Served> {
        self.served
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn count(&self, reply: &answer::Reply) {
        let index = Outcome::ALL
            .iter()
            .position(|o| *o == reply.outcome)
            .unwrap_or(0);
        bump(&self.counters.outcomes[index]);
        if reply.truncated {
            bump(&self.counters.truncated);
        }
    }

    /// The response to a UDP query from `client`, after rate limiting.
    fn udp(&self, query: &[u8], client: SocketAddr) -> Option<Vec<u8>> {
        bump(&self.counters.udp_queries);
        let served = self.served();
        let verdict = match &mut *self.limiter.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(limiter) => limiter.check(client.ip(), Instant::now()),
            None => Verdict::Send,
        };
        let reply = match verdict {
            Verdict::Send => {
                answer::respond(&served.zones, &served.settings, query, Transport::Udp)
            }
            Verdict::Slip => {
                // Counted as a slip only, not as an answer or a truncation.
                bump(&self.counters.rate_limited_slipped);
                return answer::respond_truncated(&served.zones, &served.settings, query)
                    .map(|reply| reply.bytes);
            }
            Verdict::Drop => {
                bump(&self.counters.rate_limited_dropped);
                return None;
            }
        };
        self.finish(reply)
    }

    fn tcp(&self, query: &[u8]) -> Option<Vec<u8>> {
        bump(&self.counters.tcp_queries);
        let served = self.served();
        self.finish(answer::respond(
            &served.zones,
            &served.settings,
            query,
            Transport::Tcp,
        ))
    }

    fn finish(&self, reply: Option<answer::Reply>) -> Option<Vec<u8>> {
        match reply {
            Some(reply) => {
                self.count(&reply);
                Some(reply.bytes)
            }
            None => {
                bump(&self.counters.ignored);
                None
            }
        }
    }
}

/// The running service.
pub struct DnsServer {
    shared: Arc<Shared>,
    listen: Vec<SocketAddr>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl DnsServer {
    /// Binds every listen address (UDP and TCP) and starts serving, on
    /// the current runtime and network namespace.
    pub fn start(config: DnsConfig) -> Result<DnsServer, ListenError> {
        for zone in config.zones.zones() {
            tracing::info!("DNS zone {zone}");
        }
        let server = DnsServer {
            shared: Arc::new(Shared {
                served: RwLock::new(Arc::new(Served {
                    zones: config.zones,
                    settings: config.settings,
                })),
                limiter: Mutex::new(config.rate_limit.map(RateLimiter::new)),
                counters: Counters::default(),
                tcp_slots: Arc::new(Semaphore::new(config.tcp_max_connections.max(1))),
                tcp_idle: config.tcp_idle,
            }),
            listen: config.listen,
            tasks: Mutex::new(Vec::new()),
        };
        server.listen()?;
        Ok(server)
    }

    /// Starts the listeners again after [`DnsServer::stop_listening`]
    /// (nothing happens if they are up).
    pub fn listen(&self) -> Result<(), ListenError> {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if !tasks.is_empty() {
            return Ok(());
        }
        let mut started = Vec::new();
        for &address in &self.listen {
            let udp = bind_udp(address).map_err(|source| ListenError {
                protocol: "udp",
                address,
                source,
            });
            let tcp = bind_tcp(address).map_err(|source| ListenError {
                protocol: "tcp",
                address,
                source,
            });
            let (udp, tcp) = match (udp, tcp) {
                (Ok(udp), Ok(tcp)) => (udp, tcp),
                (Err(e), _) | (_, Err(e)) => {
                    started.iter().for_each(JoinHandle::abort);
                    return Err(e);
                }
            };
            started.push(tokio::spawn(serve_udp(udp, self.shared.clone())));
            started.push(tokio::spawn(serve_tcp(tcp, self.shared.clone())));
        }
        tracing::info!(listen = ?self.listen, "DNS service listening");
        *tasks = started;
        Ok(())
    }

    /// Closes every listener and TCP connection (the operator's `dns
    /// stop`). It returns once the listening sockets are closed (open TCP
    /// connections follow at once); [`DnsServer::listen`] starts them
    /// again.
    pub async fn stop_listening(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        if tasks.is_empty() {
            return;
        }
        for task in &tasks {
            task.abort();
        }
        // A task aborted is dropped, with its sockets, before its handle
        // resolves.
        for task in tasks {
            let _ = task.await;
        }
        tracing::info!(listen = ?self.listen, "DNS service stopped listening");
    }

    /// Serves `zones` with `settings` and `rate_limit` from now on. The
    /// rate limiter keeps its history unless its limits changed.
    pub fn reload(&self, zones: Arc<ZoneSet>, settings: Settings, rate_limit: Option<RateLimit>) {
        *self
            .shared
            .served
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(Served { zones, settings });
        let mut limiter = self
            .shared
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if limiter.as_ref().map(|l| *l.limit()) != rate_limit {
            *limiter = rate_limit.map(RateLimiter::new);
        }
    }

    /// The zones being served.
    pub fn zones(&self) -> Arc<ZoneSet> {
        self.shared.served().zones.clone()
    }

    /// The addresses it listens on.
    pub fn listen_addresses(&self) -> &[SocketAddr] {
        &self.listen
    }

    /// The counters.
    pub fn stats(&self) -> DnsStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DnsStats {
            listening: !self
                .tasks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty(),
            udp_queries: get(&c.udp_queries),
            tcp_queries: get(&c.tcp_queries),
            outcomes: Outcome::ALL
                .iter()
                .zip(&c.outcomes)
                .map(|(o, a)| (*o, get(a)))
                .collect(),
            truncated: get(&c.truncated),
            ignored: get(&c.ignored),
            rate_limited_dropped: get(&c.rate_limited_dropped),
            rate_limited_slipped: get(&c.rate_limited_slipped),
            tcp_connections: get(&c.tcp_connections),
            tcp_refused: get(&c.tcp_refused),
            send_errors: get(&c.send_errors),
        }
    }
}

impl Drop for DnsServer {
    /// The tasks are aborted; their sockets close when the runtime drops
    /// them (use [`DnsServer::stop_listening`] to wait for that).
    fn drop(&mut self) {
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

fn socket(address: SocketAddr, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(address), kind, Some(protocol))?;
    socket.set_reuse_address(true)?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
        socket.set_freebind_v6(true)?;
    } else {
        socket.set_freebind_v4(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    Ok(socket)
}

fn bind_udp(address: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket(address, Type::DGRAM, Protocol::UDP)?;
    UdpSocket::from_std(socket.into())
}

fn bind_tcp(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket(address, Type::STREAM, Protocol::TCP)?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

async fn serve_udp(socket: UdpSocket, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (len, client) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            // ICMP errors from earlier sends surface here: not fatal.
            Err(_) => continue,
        };
        if let Some(response) = shared.udp(&buf[..len], client)
            && socket.send_to(&response, client).await.is_err()
        {
            bump(&shared.counters.send_errors);
        }
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            (stream, _) = crate::net::tcp::next_connection(&listener) => {
                let Ok(slot) = shared.tcp_slots.clone().try_acquire_owned() else {
                    bump(&shared.counters.tcp_refused);
                    continue;
                };
                bump(&shared.counters.tcp_connections);
                let shared = shared.clone();
                connections.spawn(async move {
                    serve_connection(stream, &shared).await;
                    drop(slot);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Answers queries on one connection, in order, until the client closes
/// it, stays idle too long, or sends what gets no response.
async fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let mut query = Vec::new();
    loop {
        let mut len = [0u8; 2];
        let read = async {
            stream.read_exact(&mut len).await?;
            query.resize(usize::from(u16::from_be_bytes(len)), 0);
            stream.read_exact(&mut query).await
        };
        match tokio::time::timeout(shared.tcp_idle, read).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let Some(response) = shared.tcp(&query) else {
            return;
        };
        let Ok(len) = u16::try_from(response.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(2 + response.len());
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&response);
        if stream.write_all(&framed).await.is_err() {
            bump(&shared.counters.send_errors);
            return;
        }
    }
}
