//! `edge-flood`: a test tool that floods a TCP endpoint (the overlay's
//! control endpoint on 4179, BGP on 179) for the admission tests and the
//! endpoint benchmark. It is only ever run inside network namespaces the
//! tests create, against addresses of the test plan.
//!
//! ```text
//! edge-flood idle  --target IP:PORT [--sources IP,..] [--count N]
//!     N connections (10000) that never send a byte, reopened when closed
//! edge-flood drip  --target IP:PORT [--sources IP,..] [--count N] [--interval-ms MS]
//!     N connections (200) sending a real ClientHello a byte per MS (500)
//! edge-flood hello --target IP:PORT [--sources IP,..] [--concurrency N] [--cert PEM --key PEM]
//!     full TLS 1.3 handshakes (ALPN edge-overlay/1), N (64) in flight
//! edge-flood syn   --target IP:PORT (--sources IP,.. | --spoof CIDR) [--rate PPS]
//!     raw IPv4 SYNs (0 = as fast as possible), random ports and sequence numbers
//! ```
//!
//! Every mode runs for `--seconds` (10), prints one JSON line of figures
//! and exits 0. Network errors are counted, never fatal: it fails (exit 1)
//! only when it cannot do anything at all (no source address binds, no raw
//! socket, unreadable certificate), and on bad arguments (exit 2).
//! Connections bind their local address to the `--sources` in turn.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4},
    os::fd::AsRawFd,
    path::PathBuf,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use edge_agent::overlay::trust::{ACCEPTED, ALPN};
use edge_tests::{packet, rng::Rng};
use rustls::{
    ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::{
        Resumption,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    sync::Semaphore,
    time::{sleep, sleep_until, timeout},
};
use tokio_rustls::TlsConnector;

const USAGE: &str = "usage: edge-flood idle|drip|hello|syn --target IP:PORT [--sources IP,..] \
[--seconds S] [--count N] [--interval-ms MS] [--concurrency N] [--cert PEM --key PEM] \
[--spoof CIDR] [--rate PPS]";

/// How many of `idle`'s connects are in flight at once.
const CONNECTS_IN_FLIGHT: usize = 1000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `hello` waits for the confirmation byte after its handshake.
const CONFIRMATION_TIMEOUT: Duration = Duration::from_secs(2);
/// The pause after a failed connect, so a refusing target is not spun on.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// The server name rustls wants; never sent (SNI off), never checked.
const SERVER_NAME: &str = "edge-overlay.invalid";
/// RLIMIT_NOFILE asked for (the kernel's default `fs.nr_open`).
const NOFILE: libc::rlim_t = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Idle,
    Drip,
    Hello,
    Syn,
}

#[derive(Debug)]
struct Args {
    mode: Mode,
    target: SocketAddr,
    sources: Vec<IpAddr>,
    spoof: Option<Spoof>,
    count: Option<usize>,
    concurrency: usize,
    interval: Duration,
    seconds: u64,
    rate: u64,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

/// Random IPv4 source addresses from a prefix.
#[derive(Clone, Copy, Debug)]
struct Spoof {
    network: u32,
    host_mask: u32,
}

impl Spoof {
    fn parse(cidr: &str) -> Result<Spoof, String> {
        let (addr, len) = cidr.split_once('/').ok_or("not ADDR/LEN")?;
        let addr: Ipv4Addr = addr.parse().map_err(|e| format!("{e}"))?;
        let len: u32 = len
            .parse()
            .ok()
            .filter(|len| *len <= 32)
            .ok_or("a prefix length of 0 to 32")?;
        let host_mask = u32::MAX.checked_shr(len).unwrap_or(0);
        Ok(Spoof {
            network: u32::from(addr) & !host_mask,
            host_mask,
        })
    }

    fn pick(&self, rng: &mut Rng) -> Ipv4Addr {
        Ipv4Addr::from(self.network | (rng.next_u64() as u32 & self.host_mask))
    }
}

fn parse(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let mode = match raw.next().as_deref() {
        Some("idle") => Mode::Idle,
        Some("drip") => Mode::Drip,
        Some("hello") => Mode::Hello,
        Some("syn") => Mode::Syn,
        Some(other) => return Err(format!("unknown mode {other}")),
        None => return Err("a mode is required".into()),
    };
    let mut target = None;
    let mut args = Args {
        mode,
        target: SocketAddr::from(([0, 0, 0, 0], 0)),
        sources: Vec::new(),
        spoof: None,
        count: None,
        concurrency: 64,
        interval: Duration::from_millis(500),
        seconds: 10,
        rate: 0,
        cert: None,
        key: None,
    };
    while let Some(flag) = raw.next() {
        let value = raw.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        let number = || value.parse::<u64>().map_err(|e| bad(&e));
        match flag.as_str() {
            "--target" => target = Some(value.parse().map_err(|e| bad(&e))?),
            "--sources" => {
                args.sources = value
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad(&e))?;
            }
            "--spoof" => args.spoof = Some(Spoof::parse(&value).map_err(|e| bad(&e))?),
            "--count" => args.count = Some(number()? as usize),
            "--concurrency" => args.concurrency = (number()? as usize).max(1),
            "--interval-ms" => args.interval = Duration::from_millis(number()?),
            "--seconds" => args.seconds = number()?,
            "--rate" => args.rate = number()?,
            "--cert" => args.cert = Some(value.into()),
            "--key" => args.key = Some(value.into()),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    args.target = target.ok_or("--target IP:PORT is required")?;
    if args.cert.is_some() != args.key.is_some() {
        return Err("--cert and --key go together".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("edge-flood: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    raise_fd_limit();
    let figures = match args.mode {
        Mode::Idle => on_runtime(idle(&args)),
        Mode::Drip => on_runtime(drip(&args)),
        Mode::Hello => on_runtime(hello(&args)),
        Mode::Syn => syn(&args),
    };
    match figures {
        Ok(figures) => {
            println!("{figures}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edge-flood: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a TCP flood on a current-thread runtime.
fn on_runtime(flood: impl Future<Output = Result<Value, String>>) -> Result<Value, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("a tokio runtime: {e}"))?
        .block_on(flood)
}

/// Raises RLIMIT_NOFILE to [`NOFILE`] (or the hard limit if that is
/// higher); without privilege, the soft limit to the hard one.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        let hard = limit.rlim_max;
        limit.rlim_max = hard.max(NOFILE);
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            limit.rlim_cur = hard;
            limit.rlim_max = hard;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A figure shared by a flood's tasks.
#[derive(Default)]
struct Counter(AtomicU64);

impl Counter {
    fn inc(&self) -> u64 {
        self.0.fetch_add(1, Relaxed)
    }

    fn raise_to(&self, value: u64) {
        self.0.fetch_max(value, Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Connections open now, and the most at once.
#[derive(Default)]
struct Open {
    now: AtomicU64,
    max: Counter,
}

impl Open {
    fn opened(&self) {
        self.max.raise_to(self.now.fetch_add(1, Relaxed) + 1);
    }

    fn closed(&self) {
        self.now.fetch_sub(1, Relaxed);
    }
}

/// Opens connections to the target, binding each to the next source in
/// turn (or leaving the choice to the kernel without sources).
struct Dialer {
    target: SocketAddr,
    sources: Vec<IpAddr>,
    next: AtomicUsize,
}

impl Dialer {
    /// Keeps the sources that bind, warning about the others; an error if
    /// sources were given and none binds.
    fn new(args: &Args) -> Result<Arc<Dialer>, String> {
        let sources = &args.sources;
        let mut dialer = Dialer {
            target: args.target,
            sources: Vec::new(),
            next: AtomicUsize::new(0),
        };
        for &source in sources {
            match dialer.bound_to(source) {
                Ok(_) => dialer.sources.push(source),
                Err(e) => eprintln!("edge-flood: source {source} left out: {e}"),
            }
        }
        if !sources.is_empty() && dialer.sources.is_empty() {
            return Err("no source address could be bound".into());
        }
        Ok(Arc::new(dialer))
    }

    fn bound_to(&self, source: IpAddr) -> io::Result<TcpSocket> {
        let socket = if self.target.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // The port is then chosen at connect time, per destination, not
        // from the address's whole ephemeral range at bind time.
        let one: libc::c_int = 1;
        // SAFETY: setsockopt on our socket with an int option.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&raw const one).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        socket.bind(SocketAddr::new(source, 0))?;
        Ok(socket)
    }

    async fn connect(&self) -> io::Result<TcpStream> {
        let socket = if self.sources.is_empty() {
            match self.target {
                SocketAddr::V4(_) => TcpSocket::new_v4()?,
                SocketAddr::V6(_) => TcpSocket::new_v6()?,
            }
        } else {
            let i = self.next.fetch_add(1, Relaxed) % self.sources.len();
            self.bound_to(self.sources[i])?
        };
        timeout(CONNECT_TIMEOUT, socket.connect(self.target))
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }
}

/// Counts a connect error, naming the first one on stderr.
fn connect_error(errors: &Counter, e: &io::Error) {
    if errors.inc() == 0 {
        eprintln!("edge-flood: first connect error: {e}");
    }
}

#[derive(Default)]
struct IdleCounts {
    opened: Counter,
    closed_by_peer: Counter,
    connect_errors: Counter,
    open: Open,
}

async fn idle(args: &Args) -> Result<Value, String> {
    let dialer = Dialer::new(args)?;
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let counts = Arc::new(IdleCounts::default());
    let connects = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    for _ in 0..args.count.unwrap_or(10_000) {
        let (dialer, counts, connects) = (dialer.clone(), counts.clone(), connects.clone());
        tokio::spawn(async move {
            loop {
                let connected = {
                    let Ok(_turn) = connects.acquire().await else {
                        return;
                    };
                    dialer.connect().await
                };
                match connected {
                    Ok(mut tcp) => {
                        counts.opened.inc();
                        counts.open.opened();
                        // Never send; wait for the peer to close or reset.
                        let mut buf = [0u8; 256];
                        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
                        counts.open.closed();
                        counts.closed_by_peer.inc();
                    }
                    // Accepted and reset before the connect was reported.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                        counts.opened.inc();
                        counts.closed_by_peer.inc();
                    }
                    Err(e) => {
                        connect_error(&counts.connect_errors, &e);
                        sleep(RETRY_PAUSE).await;
                    }
                }
            }
        });
    }
    sleep_until(end.into()).await;
    Ok(json!({
        "mode": "idle",
        "opened": counts.opened.get(),
        "closed_by_peer": counts.closed_by_peer.get(),
        "connect_errors": counts.connect_errors.get(),
        "open_at_end": counts.open.now.load(Relaxed),
        "max_open": counts.open.max.get(),
    }))
}

#[derive(Default)]
struct DripCounts {
    opened: Counter,
    closed_by_peer: Counter,
    answered: Counter,
    connect_errors: Counter,
    bytes_sent: Counter,
    longest_open_ms: Counter,
    open: Open,
}

/// How a dripping connection ended.
enum DripEnd {
    /// The peer closed or reset it.
    Closed,
    /// The peer sent something (a ServerHello or an alert); we close.
    Answered,
}

async fn drip(args: &Args) -> Result<Value, String> {
    let hello: Arc<[u8]> = client_hello()?.into();
    let dialer = Dialer::new(args)?;
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let counts = Arc::new(DripCounts::default());
    let interval = args.interval;
    for _ in 0..args.count.unwrap_or(200) {
        let (dialer, counts, hello) = (dialer.clone(), counts.clone(), hello.clone());
        tokio::spawn(async move {
            loop {
                let mut tcp = match dialer.connect().await {
                    Ok(tcp) => tcp,
                    Err(e) => {
                        connect_error(&counts.connect_errors, &e);
                        sleep(RETRY_PAUSE).await;
                        continue;
                    }
                };
                counts.opened.inc();
                counts.open.opened();
                let since = Instant::now();
                let ended = drip_one(&mut tcp, &hello, interval, &counts.bytes_sent).await;
                counts.open.closed();
                match ended {
                    DripEnd::Closed => {
                        counts.closed_by_peer.inc();
                        counts
                            .longest_open_ms
                            .raise_to(since.elapsed().as_millis() as u64);
                    }
                    DripEnd::Answered => {
                        counts.answered.inc();
                    }
                }
            }
        });
    }
    sleep_until(end.into()).await;
    Ok(json!({
        "mode": "drip",
        "opened": counts.opened.get(),
        "closed_by_peer": counts.closed_by_peer.get(),
        "answered": counts.answered.get(),
        "connect_errors": counts.connect_errors.get(),
        "bytes_sent": counts.bytes_sent.get(),
        "longest_open_ms": counts.longest_open_ms.get(),
        "open_at_end": counts.open.now.load(Relaxed),
    }))
}

/// Sends `hello` one byte per `interval`, then waits, until the peer
/// closes or answers.
async fn drip_one(
    tcp: &mut TcpStream,
    hello: &[u8],
    interval: Duration,
    sent: &Counter,
) -> DripEnd {
    let mut buf = [0u8; 512];
    let mut bytes = hello.iter();
    loop {
        if let Some(&byte) = bytes.next() {
            if tcp.write_all(&[byte]).await.is_err() {
                return DripEnd::Closed;
            }
            sent.inc();
        }
        match timeout(interval, tcp.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(0) | Err(_)) => return DripEnd::Closed,
            Ok(Ok(_)) => return DripEnd::Answered,
        }
    }
}

#[derive(Default)]
struct HelloCounts {
    attempts: Counter,
    tcp_connected: Counter,
    handshake_failed: Counter,
    client_handshake_complete: Counter,
    accepted: Counter,
    refused: Counter,
    connect_errors: Counter,
}

async fn hello(args: &Args) -> Result<Value, String> {
    let client_cert = args.cert.as_ref().zip(args.key.as_ref());
    let connector = TlsConnector::from(Arc::new(client_config(client_cert)?));
    let name = ServerName::try_from(SERVER_NAME).map_err(|e| e.to_string())?;
    let counts = Arc::new(HelloCounts::default());
    let dialer = Dialer::new(args)?;
    let end = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    for _ in 0..args.concurrency {
        let (dialer, counts) = (dialer.clone(), counts.clone());
        let (connector, name) = (connector.clone(), name.clone());
        tokio::spawn(async move {
            loop {
                counts.attempts.inc();
                match dialer.connect().await {
                    Ok(tcp) => {
                        counts.tcp_connected.inc();
                        handshake(&connector, name.clone(), tcp, &counts).await;
                    }
                    Err(e) => {
                        connect_error(&counts.connect_errors, &e);
                        sleep(RETRY_PAUSE).await;
                    }
                }
            }
        });
    }
    sleep_until(end.into()).await;
    let seconds = started.elapsed().as_secs_f64().max(0.001);
    Ok(json!({
        "mode": "hello",
        "attempts": counts.attempts.get(),
        "tcp_connected": counts.tcp_connected.get(),
        "handshake_failed": counts.handshake_failed.get(),
        "client_handshake_complete": counts.client_handshake_complete.get(),
        "accepted": counts.accepted.get(),
        "refused": counts.refused.get(),
        "connect_errors": counts.connect_errors.get(),
        "per_second": (counts.attempts.get() as f64 / seconds).round(),
    }))
}

/// One handshake and the wait for the confirmation byte. In TLS 1.3 the
/// client finishes before the server has checked the client's
/// certificate: only the byte says it was accepted.
async fn handshake(
    connector: &TlsConnector,
    name: ServerName<'static>,
    tcp: TcpStream,
    counts: &HelloCounts,
) {
    let Ok(Ok(mut tls)) = timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp)).await else {
        counts.handshake_failed.inc();
        return;
    };
    counts.client_handshake_complete.inc();
    let mut byte = [0u8; 1];
    match timeout(CONFIRMATION_TIMEOUT, tls.read_exact(&mut byte)).await {
        Ok(Ok(_)) if byte[0] == ACCEPTED => counts.accepted.inc(),
        _ => counts.refused.inc(),
    };
}

/// The bytes of a real ClientHello with the overlay's ALPN.
fn client_hello() -> Result<Vec<u8>, String> {
    let name = ServerName::try_from(SERVER_NAME).map_err(|e| e.to_string())?;
    let mut tls = rustls::ClientConnection::new(Arc::new(client_config(None)?), name)
        .map_err(|e| format!("a TLS client: {e}"))?;
    let mut hello = Vec::new();
    tls.write_tls(&mut hello)
        .map_err(|e| format!("a ClientHello: {e}"))?;
    Ok(hello)
}

/// A TLS 1.3 client with the overlay's ALPN, no SNI and no resumption
/// (every handshake is a full one) that believes any server (we are the
/// attacker); with the client certificate `(cert, key)` if given.
fn client_config(client_cert: Option<(&PathBuf, &PathBuf)>) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)));
    let mut config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let unreadable =
                |path: &PathBuf, e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| unreadable(cert, &e))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| unreadable(key, &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate: {e}"))?
        }
    };
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.enable_sni = false;
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// Accepts any server certificate and signature.
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Raw IPv4 SYNs from `--sources` in turn or from random `--spoof`
/// addresses, as fast as possible or at `--rate` per second.
fn syn(args: &Args) -> Result<Value, String> {
    let SocketAddr::V4(target) = args.target else {
        return Err("syn floods IPv4 targets only".into());
    };
    let sources = args
        .sources
        .iter()
        .map(|source| match source {
            IpAddr::V4(v4) => Ok(*v4),
            IpAddr::V6(_) => Err("syn sends from IPv4 sources only"),
        })
        .collect::<Result<Vec<Ipv4Addr>, _>>()?;
    if sources.is_empty() && args.spoof.is_none() {
        return Err("syn needs --sources or --spoof CIDR".into());
    }
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW,
        Some(socket2::Protocol::from(libc::IPPROTO_RAW)),
    )
    .and_then(|socket| socket.set_header_included_v4(true).map(|()| socket))
    .map_err(|e| format!("a raw IPv4 socket (needs CAP_NET_RAW): {e}"))?;
    let to = socket2::SockAddr::from(SocketAddrV4::new(*target.ip(), 0));
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos() as u64);
    let mut rng = Rng::new(seed ^ u64::from(std::process::id()));
    let (mut sent, mut send_errors) = (0u64, 0u64);
    let started = Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    while Instant::now() < end {
        let src = match args.spoof {
            Some(spoof) => spoof.pick(&mut rng),
            None => sources[(sent + send_errors) as usize % sources.len()],
        };
        let sport = 1024 + rng.below(65536 - 1024) as u16;
        let seq = rng.next_u64() as u32;
        let segment = syn_packet(src, *target.ip(), sport, target.port(), seq);
        match socket.send_to(&segment, &to) {
            Ok(_) => sent += 1,
            Err(e) => {
                if send_errors == 0 {
                    eprintln!("edge-flood: first send error: {e}");
                }
                send_errors += 1;
            }
        }
        if args.rate > 0 {
            let due =
                started + Duration::from_secs_f64((sent + send_errors) as f64 / args.rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
    if sent == 0 && send_errors > 0 {
        return Err(format!("no SYN could be sent ({send_errors} errors)"));
    }
    let seconds = started.elapsed().as_secs_f64().max(0.001);
    Ok(json!({
        "mode": "syn",
        "sent": sent,
        "send_errors": send_errors,
        "per_second": (sent as f64 / seconds).round(),
    }))
}

/// An IPv4 packet carrying a TCP SYN without options, both checksums set.
fn syn_packet(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[12] = 5 << 4; // data offset: 5 words
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes()); // window
    let sum = packet::transport_checksum(src.into(), dst.into(), packet::IPPROTO_TCP, &tcp);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    packet::ipv4(src, dst, packet::IPPROTO_TCP, &[], &tcp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_packets_carry_valid_checksums() {
        let (src, dst) = (Ipv4Addr::new(198, 18, 0, 7), Ipv4Addr::new(198, 51, 100, 1));
        let p = syn_packet(src, dst, 40000, 179, 0xdead_beef);
        assert_eq!(p.len(), 40);
        assert_eq!(packet::checksum(&p[..20], 0), 0);
        let tcp = &p[20..];
        let mut zeroed = tcp.to_vec();
        zeroed[16..18].fill(0);
        assert_eq!(
            packet::transport_checksum(src.into(), dst.into(), packet::IPPROTO_TCP, &zeroed),
            u16::from_be_bytes([tcp[16], tcp[17]])
        );
        assert_eq!(tcp[13], 0x02);
    }

    #[test]
    fn spoofed_sources_stay_in_their_prefix() {
        let spoof = Spoof::parse("198.18.7.9/15").unwrap();
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            let a = spoof.pick(&mut rng).octets();
            assert!(a[0] == 198 && (a[1] == 18 || a[1] == 19), "{a:?}");
        }
        assert!(Spoof::parse("198.18.0.0/33").is_err());
    }

    #[test]
    fn a_client_hello_offers_the_overlay_alpn() {
        let hello = client_hello().unwrap();
        assert_eq!(hello[0], 22, "a handshake record");
        assert_eq!(hello[5], 1, "a ClientHello");
        assert!(hello.windows(ALPN.len()).any(|w| w == ALPN));
    }
}
