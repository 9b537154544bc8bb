//! A tiny authoritative DNS responder for discovery tests: a [`Zone`] of
//! SRV, A, AAAA and CNAME records, served over UDP and TCP on one address
//! by a [`DnsServer`] until it is dropped.
//!
//! The server takes already-bound std sockets, so a test can bind them
//! inside a network namespace (see [`crate::netns::Netns::run`]) and serve
//! from any thread; [`DnsServer::start_local`] binds `127.0.0.1` for unit
//! tests. It answers with AA set; NXDOMAIN for names it has nothing for,
//! an empty NOERROR (NODATA) for other types of names it knows. Test knobs:
//! leaving out the additional section, truncating UDP answers (TC=1, so
//! clients must ask again over TCP), failing with a fixed response code,
//! and sending forged datagrams before each UDP answer; and, at run time,
//! falling silent (queries are counted, never answered) and speaking
//! again ([`DnsServer::set_silent`]).
//!
//! Being test support, it panics (failing the test) on names hickory
//! rejects and on sockets it cannot use.

use std::{
    collections::BTreeMap,
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use hickory_proto::{
    op::{Message, MessageType, OpCode, ResponseCode},
    rr::{
        Name, RData, Record, RecordType,
        rdata::{A, AAAA, CNAME, SRV},
    },
};
use tokio::{
    net::{TcpListener, TcpStream, UdpSocket},
    sync::oneshot,
};

/// The TTL of every record served.
const TTL: u32 = 60;

/// The most CNAMEs the server follows (it stops at a loop).
const MAX_CNAME_HOPS: usize = 8;

/// The target of the SRV records in forged datagrams.
pub const FORGED_TARGET: &str = "forged.attacker.example.";

/// The address of [`FORGED_TARGET`] in forged datagrams.
pub const FORGED_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);

/// The records a [`DnsServer`] serves, and how it serves them.
#[derive(Clone, Debug)]
pub struct Zone {
    srv: BTreeMap<Name, Vec<SRV>>,
    a: BTreeMap<Name, Vec<Ipv4Addr>>,
    aaaa: BTreeMap<Name, Vec<Ipv6Addr>>,
    cname: BTreeMap<Name, Name>,
    additionals: bool,
    truncate_udp: bool,
    fail: Option<ResponseCode>,
    forge_udp: bool,
}

impl Default for Zone {
    fn default() -> Self {
        Self::new()
    }
}

/// `name` as an absolute, lower-case DNS name; panics if it is none.
fn name(name: &str) -> Name {
    let mut parsed =
        Name::from_ascii(name).unwrap_or_else(|e| panic!("`{name}` is not a DNS name: {e}"));
    parsed.set_fqdn(true);
    parsed.to_lowercase()
}

impl Zone {
    /// An empty zone that includes target addresses in the additional
    /// section, does not truncate and answers honestly.
    pub fn new() -> Self {
        Zone {
            srv: BTreeMap::new(),
            a: BTreeMap::new(),
            aaaa: BTreeMap::new(),
            cname: BTreeMap::new(),
            additionals: true,
            truncate_udp: false,
            fail: None,
            forge_udp: false,
        }
    }

    /// Adds an SRV record `owner SRV priority weight port target`
    /// (`target` may be `.`).
    pub fn srv(mut self, owner: &str, priority: u16, weight: u16, port: u16, target: &str) -> Self {
        self.srv.entry(name(owner)).or_default().push(SRV::new(
            priority,
            weight,
            port,
            name(target),
        ));
        self
    }

    /// Adds an A record.
    pub fn a(mut self, owner: &str, addr: Ipv4Addr) -> Self {
        self.a.entry(name(owner)).or_default().push(addr);
        self
    }

    /// Adds an AAAA record.
    pub fn aaaa(mut self, owner: &str, addr: Ipv6Addr) -> Self {
        self.aaaa.entry(name(owner)).or_default().push(addr);
        self
    }

    /// Makes `alias` a CNAME of `target` (followed in answers).
    pub fn cname(mut self, alias: &str, target: &str) -> Self {
        self.cname.insert(name(alias), name(target));
        self
    }

    /// Whether SRV answers carry the targets' A and AAAA records in the
    /// additional section (default yes).
    pub fn with_additionals(mut self, yes: bool) -> Self {
        self.additionals = yes;
        self
    }

    /// Whether UDP answers are truncated: TC=1 and no records, so that the
    /// client must ask again over TCP (default no).
    pub fn truncate_udp(mut self, yes: bool) -> Self {
        self.truncate_udp = yes;
        self
    }

    /// Answers every query with this response code and no records
    /// (`ResponseCode::ServFail`, `ResponseCode::Refused`…).
    pub fn fail_with(mut self, code: ResponseCode) -> Self {
        self.fail = Some(code);
        self
    }

    /// Whether each UDP answer is preceded by forged datagrams, each an SRV
    /// answer naming [`FORGED_TARGET`] at [`FORGED_ADDR`]: one with a wrong
    /// ID, one for another question, and one with QR=0 (default no).
    pub fn forge_udp(mut self, yes: bool) -> Self {
        self.forge_udp = yes;
        self
    }

    /// Whether the zone has any record (of any type) at `owner`.
    fn knows(&self, owner: &Name) -> bool {
        self.srv.contains_key(owner)
            || self.a.contains_key(owner)
            || self.aaaa.contains_key(owner)
            || self.cname.contains_key(owner)
    }

    /// The records of `rtype` at `owner` (no CNAMEs).
    fn records(&self, owner: &Name, rtype: RecordType) -> Vec<Record> {
        let rdata: Vec<RData> = match rtype {
            RecordType::SRV => self
                .srv
                .get(owner)
                .into_iter()
                .flatten()
                .cloned()
                .map(RData::SRV)
                .collect(),
            RecordType::A => self
                .a
                .get(owner)
                .into_iter()
                .flatten()
                .map(|ip| RData::A(A(*ip)))
                .collect(),
            RecordType::AAAA => self
                .aaaa
                .get(owner)
                .into_iter()
                .flatten()
                .map(|ip| RData::AAAA(AAAA(*ip)))
                .collect(),
            _ => Vec::new(),
        };
        rdata
            .into_iter()
            .map(|data| Record::from_rdata(owner.clone(), TTL, data))
            .collect()
    }

    /// The answer to the query `request`, or `None` for what deserves no
    /// answer (not a DNS query).
    fn answer(&self, request: &[u8], udp: bool) -> Option<Message> {
        let request = Message::from_vec(request).ok()?;
        if request.message_type() != MessageType::Query {
            return None;
        }
        let mut response = Message::new();
        response
            .set_id(request.id())
            .set_message_type(MessageType::Response)
            .set_op_code(request.op_code())
            .set_authoritative(true)
            .set_recursion_desired(request.recursion_desired());
        let [question] = request.queries() else {
            response.set_response_code(ResponseCode::FormErr);
            return Some(response);
        };
        response.add_query(question.clone());
        if request.op_code() != OpCode::Query {
            response.set_response_code(ResponseCode::NotImp);
            return Some(response);
        }
        if let Some(code) = self.fail {
            response.set_response_code(code);
            return Some(response);
        }
        let mut owner = question.name().to_lowercase();
        owner.set_fqdn(true);
        if !self.knows(&owner) {
            response.set_response_code(ResponseCode::NXDomain);
            return Some(response);
        }
        let rtype = question.query_type();
        for _ in 0..MAX_CNAME_HOPS {
            match self.cname.get(&owner) {
                Some(target) if rtype != RecordType::CNAME => {
                    response.add_answer(Record::from_rdata(
                        owner.clone(),
                        TTL,
                        RData::CNAME(CNAME(target.clone())),
                    ));
                    owner = target.clone();
                }
                _ => break,
            }
        }
        let answers = self.records(&owner, rtype);
        if rtype == RecordType::SRV && self.additionals {
            for rdata in answers.iter().map(Record::data) {
                if let RData::SRV(srv) = rdata {
                    let target = srv.target().to_lowercase();
                    response.add_additionals(self.records(&target, RecordType::A));
                    response.add_additionals(self.records(&target, RecordType::AAAA));
                }
            }
        }
        response.add_answers(answers);
        if udp && self.truncate_udp {
            return Some(response.truncate());
        }
        Some(response)
    }

    /// The forged datagrams sent before the answer to `request`.
    fn forgeries(request: &Message) -> Vec<Message> {
        let Some(question) = request.queries().first() else {
            return Vec::new();
        };
        let target = name(FORGED_TARGET);
        let forged = |id: u16, owner: Name, kind: MessageType| {
            let mut message = Message::new();
            let mut q = question.clone();
            q.set_name(owner.clone()).set_query_type(RecordType::SRV);
            message
                .set_id(id)
                .set_message_type(kind)
                .set_op_code(OpCode::Query)
                .set_authoritative(true)
                .add_query(q)
                .add_answer(Record::from_rdata(
                    owner,
                    TTL,
                    RData::SRV(SRV::new(0, 0, 4443, target.clone())),
                ))
                .add_additional(Record::from_rdata(
                    target.clone(),
                    TTL,
                    RData::A(A(FORGED_ADDR)),
                ));
            message
        };
        let asked = question.name().clone();
        vec![
            forged(
                request.id().wrapping_add(1),
                asked.clone(),
                MessageType::Response,
            ),
            forged(
                request.id(),
                name("other.attacker.example."),
                MessageType::Response,
            ),
            forged(request.id(), asked, MessageType::Query),
        ]
    }
}

/// A DNS server for one [`Zone`], serving UDP and TCP on one address from
/// its own thread (a tokio current-thread runtime) until dropped.
#[derive(Debug)]
pub struct DnsServer {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    queries: Arc<AtomicU64>,
    silent: Arc<AtomicBool>,
    ignored: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// Serves `zone` on already-bound sockets, which must have the same
    /// local address. Panics if they do not, or cannot be used.
    pub fn start(udp: std::net::UdpSocket, tcp: std::net::TcpListener, zone: Zone) -> DnsServer {
        let addr = udp.local_addr().expect("local address of the UDP socket");
        let tcp_addr = tcp.local_addr().expect("local address of the TCP listener");
        assert_eq!(
            addr, tcp_addr,
            "the DNS server's UDP socket and TCP listener must be bound to one address"
        );
        udp.set_nonblocking(true).expect("non-blocking UDP socket");
        tcp.set_nonblocking(true)
            .expect("non-blocking TCP listener");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the DNS server");
        let (udp, tcp) = {
            let _entered = runtime.enter();
            (
                UdpSocket::from_std(udp).expect("UDP socket for tokio"),
                TcpListener::from_std(tcp).expect("TCP listener for tokio"),
            )
        };
        let zone = Arc::new(Mutex::new(zone));
        let queries = Arc::new(AtomicU64::new(0));
        let silent = Arc::new(AtomicBool::new(false));
        let ignored = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = oneshot::channel();
        let served = Served {
            zone: Arc::clone(&zone),
            queries: Arc::clone(&queries),
            silent: Arc::clone(&silent),
            ignored: Arc::clone(&ignored),
        };
        let thread = std::thread::Builder::new()
            .name(format!("dns-{addr}"))
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = stopped => {}
                        _ = served.clone().udp(udp) => {}
                        _ = served.tcp(tcp) => {}
                    }
                });
            })
            .expect("a thread for the DNS server");
        DnsServer {
            addr,
            zone,
            queries,
            silent,
            ignored,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Serves `zone` on `127.0.0.1` at a free port (UDP and TCP).
    pub fn start_local(zone: Zone) -> DnsServer {
        let mut last = None;
        for _ in 0..32 {
            let udp = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                .expect("a UDP socket on 127.0.0.1");
            let addr = udp.local_addr().expect("local address of the UDP socket");
            match std::net::TcpListener::bind(addr) {
                Ok(tcp) => return DnsServer::start(udp, tcp, zone),
                Err(e) => last = Some(e),
            }
        }
        panic!(
            "no port on 127.0.0.1 free for both UDP and TCP: {}",
            last.map_or_else(String::new, |e| e.to_string())
        );
    }

    /// The address served (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the zone; later queries see the new one.
    pub fn set_zone(&self, zone: Zone) {
        *self.zone.lock().unwrap_or_else(|e| e.into_inner()) = zone;
    }

    /// How many queries arrived so far (UDP and TCP, answered or not).
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::SeqCst)
    }

    /// Whether the server ignores queries from now on (they are still
    /// counted, never answered), or answers them again.
    pub fn set_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::SeqCst);
    }

    /// How many queries went unanswered because the server was silent.
    pub fn ignored(&self) -> u64 {
        self.ignored.load(Ordering::SeqCst)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the serving tasks share.
#[derive(Clone)]
struct Served {
    zone: Arc<Mutex<Zone>>,
    queries: Arc<AtomicU64>,
    silent: Arc<AtomicBool>,
    ignored: Arc<AtomicU64>,
}

impl Served {
    fn zone(&self) -> Zone {
        self.zone.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn udp(self, socket: UdpSocket) {
        let mut buf = vec![0u8; usize::from(u16::MAX)];
        loop {
            let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            self.queries.fetch_add(1, Ordering::SeqCst);
            if self.silent.load(Ordering::SeqCst) {
                self.ignored.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            let zone = self.zone();
            let request = &buf[..len];
            let forgeries = match Message::from_vec(request) {
                Ok(parsed) if zone.forge_udp => Zone::forgeries(&parsed),
                _ => Vec::new(),
            };
            for forged in forgeries {
                if let Ok(bytes) = forged.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
            if let Some(bytes) = zone.answer(request, true).and_then(|m| m.to_vec().ok()) {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    }

    async fn tcp(self, listener: TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            tokio::spawn(self.clone().connection(stream));
        }
    }

    /// Answers length-prefixed queries on one connection until it closes.
    async fn connection(self, stream: TcpStream) {
        loop {
            let mut len = [0u8; 2];
            if read_exact(&stream, &mut len).await.is_err() {
                return;
            }
            let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if read_exact(&stream, &mut request).await.is_err() {
                return;
            }
            self.queries.fetch_add(1, Ordering::SeqCst);
            if self.silent.load(Ordering::SeqCst) {
                self.ignored.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            let Some(bytes) = self
                .zone()
                .answer(&request, false)
                .and_then(|m| m.to_vec().ok())
            else {
                continue;
            };
            let Ok(len) = u16::try_from(bytes.len()) else {
                return;
            };
            let mut framed = len.to_be_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            if write_all(&stream, &framed).await.is_err() {
                return;
            }
        }
    }
}

/// Fills `buf` from `stream` (tokio's `net` feature only).
async fn read_exact(stream: &TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        stream.readable().await?;
        match stream.try_read(&mut buf[filled..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes all of `buf` to `stream` (tokio's `net` feature only).
async fn write_all(stream: &TcpStream, buf: &[u8]) -> io::Result<()> {
    let mut written = 0;
    while written < buf.len() {
        stream.writable().await?;
        match stream.try_write(&buf[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
