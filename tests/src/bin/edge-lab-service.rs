//! `edge-lab-service`: the local services of one PoP in the lab, run inside
//! the PoP's network namespace until killed.
//!
//! ```text
//! edge-lab-service --name pop-a --web 203.0.113.10:80 --dns 203.0.113.53:53 \
//!     --zone cdn.test --answer 203.0.113.10 [--answer6 2001:db8:ac::10] \
//!     [--web '[2001:db8:ac::10]:80' ...] [--control /run/lab/pop-a.sock]
//! ```
//!
//! - `--web ADDR` (repeatable): HTTP/1.1 with keep-alive. `GET /health`
//!   answers `200 ok` while the web service is up and `503` while it is down;
//!   any other path answers `200` with `served by NAME`. "Down" closes the
//!   listeners (new connections are refused); connections accepted while up
//!   keep being served. `GET` and `HEAD` are served; heads are limited to
//!   8 KiB, and a request must arrive within 10 s.
//! - `--dns ADDR` (repeatable): an authoritative server on UDP and TCP for
//!   `--zone`: `ZONE` and `www.ZONE` have A records (`--answer`, repeatable)
//!   and AAAA records (`--answer6`, repeatable); `served-by.ZONE` has a TXT
//!   record with the PoP's name; `ns.ZONE` has the `--dns` addresses; the
//!   apex has SOA and NS. Other names in the zone are NXDOMAIN, names outside
//!   it REFUSED, malformed queries FORMERR. "Down" drops UDP queries silently
//!   and closes the TCP listeners.
//! - `--control PATH`: a Unix socket taking line commands `web up`,
//!   `web down`, `dns up`, `dns down` and `status`; each is answered with one
//!   line, the state after it (`web=up dns=up requests=123 queries=45`), or
//!   `error: ...`. A stale socket at PATH is removed at start.
//!
//! Every socket is bound with `IP_FREEBIND`/`IPV6_FREEBIND`, so the service
//! can start before its VIP is configured. State changes are logged to
//! stderr, one line each. SIGTERM and SIGINT end the process cleanly.

use std::{
    error::Error,
    future::Future,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::unix::fs::FileTypeExt,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, ResponseCode},
    rr::{
        DNSClass, Name, RData, Record, RecordType,
        rdata::{A, AAAA, NS, SOA, TXT},
    },
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream},
    sync::{Mutex, Semaphore},
    task::JoinHandle,
    time::{Instant, sleep, timeout, timeout_at},
};

/// The command line, for `--help` and errors.
const USAGE: &str = "usage: edge-lab-service --name NAME [--web ADDR:PORT]... [--dns ADDR:PORT]... \
[--zone ZONE] [--answer IPV4]... [--answer6 IPV6]... [--control PATH]";

/// The largest request head (request line and header fields) accepted.
const MAX_HEAD: usize = 8 * 1024;

/// The largest request body accepted (and discarded).
const MAX_BODY: u64 = 1024 * 1024;

/// How long a client may take to send a whole request (from the end of the
/// previous one), a DNS-over-TCP client to send a query, or any client to
/// take an answer.
const IDLE: Duration = Duration::from_secs(10);

/// The most HTTP connections served at once (more wait in the backlog).
const MAX_WEB_CONNECTIONS: usize = 1024;

/// The most DNS-over-TCP connections served at once.
const MAX_DNS_CONNECTIONS: usize = 256;

/// The listen backlog of the TCP listeners.
const BACKLOG: i32 = 1024;

/// How often a listener that could not be bound is tried again.
const REBIND_EVERY: Duration = Duration::from_secs(1);

/// The longest control command line.
const MAX_CONTROL_LINE: usize = 1024;

/// The TTL of the zone's records (and its negative-caching TTL).
const TTL: u32 = 60;

/// The TTL of the `served-by` TXT record: zero, so that no cache hides
/// which PoP answers.
const SERVED_BY_TTL: u32 = 0;

/// The UDP payload size advertised in EDNS answers, and the most sent.
const EDNS_PAYLOAD: u16 = 1232;

/// Set by the SIGTERM and SIGINT handler.
static STOP: AtomicBool = AtomicBool::new(false);

/// What the command line asks for.
#[derive(Debug)]
struct Config {
    /// The PoP's name, served in HTTP bodies and the TXT record.
    name: String,
    /// The HTTP listening addresses.
    web: Vec<SocketAddr>,
    /// The DNS listening addresses (UDP and TCP).
    dns: Vec<SocketAddr>,
    /// The zone served on `dns`; present whenever `dns` is not empty.
    zone: Option<Zone>,
    /// The control socket's path.
    control: Option<PathBuf>,
}

/// The value following the option `option`, or an error naming it.
fn value(option: &str, args: &mut impl Iterator<Item = String>) -> Result<String, String> {
    args.next()
        .ok_or_else(|| format!("{option} needs a value\n{USAGE}"))
}

/// `text` parsed as a `T`, or an error naming `option`.
fn parse_value<T: std::str::FromStr>(option: &str, text: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| format!("{option} `{text}`: {e}"))
}

/// Parses the command line (without the program name); `None` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Config>, String> {
    let mut name = None;
    let mut web = Vec::new();
    let mut dns = Vec::new();
    let mut zone = None;
    let mut a = Vec::new();
    let mut aaaa = Vec::new();
    let mut control = None;
    while let Some(option) = args.next() {
        match option.as_str() {
            "-h" | "--help" => return Ok(None),
            "--name" => name = Some(value(&option, &mut args)?),
            "--web" => web.push(parse_value(&option, &value(&option, &mut args)?)?),
            "--dns" => dns.push(parse_value(&option, &value(&option, &mut args)?)?),
            "--zone" => zone = Some(value(&option, &mut args)?),
            "--answer" => a.push(parse_value(&option, &value(&option, &mut args)?)?),
            "--answer6" => aaaa.push(parse_value(&option, &value(&option, &mut args)?)?),
            "--control" => control = Some(PathBuf::from(value(&option, &mut args)?)),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let name = name.ok_or_else(|| format!("--name is required\n{USAGE}"))?;
    if name.is_empty() || name.len() > 255 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "--name `{name}`: 1 to 255 visible ASCII characters, no spaces"
        ));
    }
    if web.is_empty() && dns.is_empty() {
        return Err(format!("nothing to serve: give --web or --dns\n{USAGE}"));
    }
    let zone = match (zone, dns.is_empty()) {
        (Some(zone), false) => Some(Zone::new(&zone, &name, a, aaaa, &dns)?),
        (None, false) => return Err(format!("--dns needs --zone\n{USAGE}")),
        (Some(_), true) => return Err(format!("--zone needs --dns\n{USAGE}")),
        (None, true) if !a.is_empty() || !aaaa.is_empty() => {
            return Err(format!("--answer and --answer6 need --dns\n{USAGE}"));
        }
        (None, true) => None,
    };
    Ok(Some(Config {
        name,
        web,
        dns,
        zone,
        control,
    }))
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Request {
    /// The method, as sent (methods are case-sensitive).
    method: String,
    /// The request target, as sent.
    target: String,
    /// Whether the connection stays open after the answer.
    keep_alive: bool,
    /// The length of the body that follows the head (at most [`MAX_BODY`]).
    content_length: u64,
}

/// Why a request head cannot be served; each is answered with its status
/// and the connection closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HttpError {
    /// Malformed request line or header field (400).
    Bad,
    /// The body is longer than [`MAX_BODY`] (413).
    BodyTooLarge,
    /// The head is longer than [`MAX_HEAD`] (431).
    HeadTooLarge,
    /// A transfer coding, which this server does not decode (501).
    TransferEncoding,
    /// An HTTP version other than 1.0 and 1.1 (505).
    Version,
    /// The client took longer than [`IDLE`] to send its request (408).
    Timeout,
}

impl HttpError {
    /// The response that reports this error.
    fn response(self) -> Response {
        let (status, reason) = match self {
            HttpError::Bad => (400, "Bad Request"),
            HttpError::BodyTooLarge => (413, "Content Too Large"),
            HttpError::HeadTooLarge => (431, "Request Header Fields Too Large"),
            HttpError::TransferEncoding => (501, "Not Implemented"),
            HttpError::Version => (505, "HTTP Version Not Supported"),
            HttpError::Timeout => (408, "Request Timeout"),
        };
        Response {
            status,
            reason,
            body: format!("{}\n", reason.to_ascii_lowercase()),
            allow: false,
        }
    }
}

/// Whether `b` may appear in a token (a method or a field name).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses the request head at the start of `buf`: `Ok(None)` while it is
/// incomplete, else the request and the length of its head (so the body,
/// or the next request, starts there). Empty lines before the request line
/// are skipped, and bare LF line ends are accepted.
fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
    let incomplete = || {
        if buf.len() >= MAX_HEAD {
            Err(HttpError::HeadTooLarge)
        } else {
            Ok(None)
        }
    };
    let Some(start) = buf.iter().position(|&b| b != b'\r' && b != b'\n') else {
        return incomplete();
    };
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut pos = start;
    loop {
        let Some(newline) = buf[pos..].iter().position(|&b| b == b'\n') else {
            return incomplete();
        };
        let mut line = &buf[pos..pos + newline];
        pos += newline + 1;
        if pos > MAX_HEAD {
            return Err(HttpError::HeadTooLarge);
        }
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let (request_line, fields) = lines.split_first().ok_or(HttpError::Bad)?;
    let request_line = std::str::from_utf8(request_line).map_err(|_| HttpError::Bad)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Bad);
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(HttpError::Bad);
    }
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HttpError::Bad);
    }
    let http11 = match version.strip_prefix("HTTP/").map(str::as_bytes) {
        Some(b"1.1") => true,
        Some(b"1.0") => false,
        Some([major, b'.', minor]) if major.is_ascii_digit() && minor.is_ascii_digit() => {
            return Err(HttpError::Version);
        }
        _ => return Err(HttpError::Bad),
    };

    let mut close = false;
    let mut keep_alive = false;
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    for field in fields {
        let colon = field
            .iter()
            .position(|&b| b == b':')
            .ok_or(HttpError::Bad)?;
        let (name, value) = (&field[..colon], field[colon + 1..].trim_ascii());
        // No whitespace before the colon, no obsolete line folding.
        if name.is_empty() || !name.iter().copied().all(is_tchar) {
            return Err(HttpError::Bad);
        }
        if value.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(HttpError::Bad);
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Err(HttpError::Bad);
            }
            let length: u64 = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or(HttpError::Bad)?;
            if content_length.is_some_and(|previous| previous != length) {
                return Err(HttpError::Bad);
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    if transfer_encoding {
        return Err(HttpError::TransferEncoding);
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY {
        return Err(HttpError::BodyTooLarge);
    }
    let request = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        keep_alive: !close && (http11 || keep_alive),
        content_length,
    };
    Ok(Some((request, pos)))
}

/// The path of a request target (origin or absolute form), without query
/// or fragment.
fn path_of(target: &str) -> &str {
    let mut rest = target;
    for scheme in ["http://", "https://"] {
        if rest.len() >= scheme.len() && rest[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let authority_and_path = &rest[scheme.len()..];
            rest = authority_and_path
                .find('/')
                .map_or("/", |slash| &authority_and_path[slash..]);
            break;
        }
    }
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// A response to send, before rendering.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Response {
    /// The status code.
    status: u16,
    /// The reason phrase.
    reason: &'static str,
    /// The body (also measured for HEAD, not sent then).
    body: String,
    /// Whether to send `Allow: GET, HEAD` (with 405).
    allow: bool,
}

/// The response to `request` from the PoP `name` while the web service is
/// `up` (or down, for connections accepted before it went down).
fn respond(request: &Request, up: bool, name: &str) -> Response {
    if request.method != "GET" && request.method != "HEAD" {
        return Response {
            status: 405,
            reason: "Method Not Allowed",
            body: "method not allowed\n".to_owned(),
            allow: true,
        };
    }
    let (status, reason, body) = match (path_of(&request.target), up) {
        ("/health", true) => (200, "OK", "ok\n".to_owned()),
        ("/health", false) => (503, "Service Unavailable", "down\n".to_owned()),
        _ => (200, "OK", format!("served by {name}\n")),
    };
    Response {
        status,
        reason,
        body,
        allow: false,
    }
}

/// `response` on the wire: the whole of it, or only its head for `HEAD`.
fn render(response: &Response, head_only: bool, keep_alive: bool, name: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nServer: edge-lab-service\r\nX-Served-By: {name}\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: {}\r\n",
        response.status,
        response.reason,
        response.body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    if response.allow {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&response.body);
    }
    out.into_bytes()
}

/// Writes `bytes` to `stream`, giving up after [`IDLE`].
async fn write_all(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    matches!(timeout(IDLE, stream.write_all(bytes)).await, Ok(Ok(())))
}

/// Serves HTTP requests on one connection until the client closes it, asks
/// to, errs or idles.
async fn serve_http(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let deadline = Instant::now() + IDLE;
        let parsed = loop {
            match parse_request(&buf) {
                Ok(Some(parsed)) => break Ok(parsed),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            match timeout_at(deadline, stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Err(_) if buf.iter().all(|&b| b == b'\r' || b == b'\n') => return,
                Err(_) => break Err(HttpError::Timeout),
            }
        };
        let (request, head_len) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                shared.requests.fetch_add(1, Ordering::Relaxed);
                let _ = write_all(
                    &mut stream,
                    &render(&e.response(), false, false, &shared.name),
                )
                .await;
                return;
            }
        };
        buf.drain(..head_len);
        // Discard the body: first what was read with the head, then the rest.
        let buffered = buf
            .len()
            .min(usize::try_from(request.content_length).unwrap_or(usize::MAX));
        buf.drain(..buffered);
        let mut remaining = request.content_length - buffered as u64;
        while remaining > 0 {
            let want = chunk
                .len()
                .min(usize::try_from(remaining).unwrap_or(usize::MAX));
            match timeout_at(deadline, stream.read(&mut chunk[..want])).await {
                Ok(Ok(n)) if n > 0 => remaining -= n as u64,
                _ => return,
            }
        }
        let up = shared.web_up.load(Ordering::SeqCst);
        let response = respond(&request, up, &shared.name);
        shared.requests.fetch_add(1, Ordering::Relaxed);
        let bytes = render(
            &response,
            request.method == "HEAD",
            request.keep_alive,
            &shared.name,
        );
        if !write_all(&mut stream, &bytes).await || !request.keep_alive {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// DNS
// ---------------------------------------------------------------------------

/// The zone served by the DNS service, and how it answers.
#[derive(Clone, Debug)]
struct Zone {
    /// The zone's apex (lower case, absolute).
    apex: Name,
    /// `www.ZONE`.
    www: Name,
    /// `served-by.ZONE`.
    served_by: Name,
    /// `ns.ZONE`, the name server in the SOA and NS records.
    ns: Name,
    /// The A records of the apex and `www`.
    a: Vec<Ipv4Addr>,
    /// The AAAA records of the apex and `www`.
    aaaa: Vec<Ipv6Addr>,
    /// The addresses of `ns.ZONE`: the specified `--dns` addresses.
    ns_addrs: Vec<IpAddr>,
    /// The PoP's name, in the TXT record.
    pop: String,
    /// The zone's SOA record.
    soa: SOA,
}

/// `label.zone`.
fn child(label: &str, zone: &Name) -> Result<Name, String> {
    Name::from_ascii(label)
        .and_then(|name| name.append_domain(zone))
        .map_err(|e| format!("--zone `{zone}`: cannot make `{label}.{zone}`: {e}"))
}

impl Zone {
    /// The zone `zone` of the PoP `pop`, whose apex and `www` have the
    /// addresses `a` and `aaaa`, served on `dns`.
    fn new(
        zone: &str,
        pop: &str,
        a: Vec<Ipv4Addr>,
        aaaa: Vec<Ipv6Addr>,
        dns: &[SocketAddr],
    ) -> Result<Zone, String> {
        let mut apex = Name::from_ascii(zone).map_err(|e| format!("--zone `{zone}`: {e}"))?;
        apex.set_fqdn(true);
        let apex = apex.to_lowercase();
        let ns = child("ns", &apex)?;
        let soa = SOA::new(
            ns.clone(),
            child("hostmaster", &apex)?,
            1,
            3600,
            600,
            86400,
            TTL,
        );
        let mut ns_addrs: Vec<IpAddr> = Vec::new();
        for ip in dns.iter().map(SocketAddr::ip) {
            if !ip.is_unspecified() && !ns_addrs.contains(&ip) {
                ns_addrs.push(ip);
            }
        }
        Ok(Zone {
            www: child("www", &apex)?,
            served_by: child("served-by", &apex)?,
            ns,
            apex,
            a,
            aaaa,
            ns_addrs,
            pop: pop.to_owned(),
            soa,
        })
    }

    /// The records (TTL and data) at `owner` (lower case), or `None` if the
    /// name does not exist in the zone.
    fn records_at(&self, owner: &Name) -> Option<Vec<(u32, RData)>> {
        let addresses = |v4: &[Ipv4Addr], v6: &[Ipv6Addr]| {
            v4.iter()
                .map(|ip| (TTL, RData::A(A(*ip))))
                .chain(v6.iter().map(|ip| (TTL, RData::AAAA(AAAA(*ip)))))
                .collect::<Vec<_>>()
        };
        if *owner == self.apex {
            let mut records = vec![
                (TTL, RData::SOA(self.soa.clone())),
                (TTL, RData::NS(NS(self.ns.clone()))),
            ];
            records.extend(addresses(&self.a, &self.aaaa));
            Some(records)
        } else if *owner == self.www {
            Some(addresses(&self.a, &self.aaaa))
        } else if *owner == self.served_by {
            Some(vec![(
                SERVED_BY_TTL,
                RData::TXT(TXT::new(vec![self.pop.clone()])),
            )])
        } else if *owner == self.ns {
            let v4: Vec<Ipv4Addr> = self
                .ns_addrs
                .iter()
                .filter_map(|ip| match ip {
                    IpAddr::V4(ip) => Some(*ip),
                    IpAddr::V6(_) => None,
                })
                .collect();
            let v6: Vec<Ipv6Addr> = self
                .ns_addrs
                .iter()
                .filter_map(|ip| match ip {
                    IpAddr::V6(ip) => Some(*ip),
                    IpAddr::V4(_) => None,
                })
                .collect();
            Some(addresses(&v4, &v6))
        } else {
            None
        }
    }

    /// The SOA record, for the authority section of negative answers.
    fn soa_record(&self) -> Record {
        Record::from_rdata(self.apex.clone(), TTL, RData::SOA(self.soa.clone()))
    }

    /// The answer to a parsed query (`request` is a query, QR=0).
    fn respond(&self, request: &Message) -> Message {
        let mut response = Message::new();
        response
            .set_id(request.id())
            .set_message_type(MessageType::Response)
            .set_op_code(request.op_code())
            .set_recursion_desired(request.recursion_desired())
            .set_checking_disabled(request.checking_disabled());
        if request.extensions().is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD).set_version(0);
            response.set_edns(edns);
        }
        let [question] = request.queries() else {
            response.set_response_code(ResponseCode::FormErr);
            return response;
        };
        response.add_query(question.clone());
        if request.op_code() != OpCode::Query {
            response.set_response_code(ResponseCode::NotImp);
            return response;
        }
        let asked = question.name();
        let mut owner = asked.to_lowercase();
        owner.set_fqdn(true);
        let qtype = question.query_type();
        if question.query_class() != DNSClass::IN
            || !self.apex.zone_of(&owner)
            || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
        {
            response.set_response_code(ResponseCode::Refused);
            return response;
        }
        response.set_authoritative(true);
        let Some(records) = self.records_at(&owner) else {
            response
                .set_response_code(ResponseCode::NXDomain)
                .add_name_server(self.soa_record());
            return response;
        };
        let answers: Vec<Record> = records
            .into_iter()
            .filter(|(_, data)| qtype == RecordType::ANY || data.record_type() == qtype)
            .map(|(ttl, data)| Record::from_rdata(asked.clone(), ttl, data))
            .collect();
        if answers.is_empty() {
            response.add_name_server(self.soa_record());
        }
        response.add_answers(answers);
        response
    }

    /// The answer, on the wire, to the DNS message `request` received over
    /// UDP (`udp`, answers truncated to fit) or TCP; `None` for what
    /// deserves no answer (too short to be a query, or not a query).
    fn answer(&self, request: &[u8], udp: bool) -> Option<Vec<u8>> {
        let request = match Message::from_vec(request) {
            Ok(request) => request,
            Err(_) => return format_error(request),
        };
        if request.message_type() != MessageType::Query {
            return None;
        }
        let response = self.respond(&request);
        let wire = match response.to_vec() {
            Ok(wire) => wire,
            Err(_) => {
                let mut failure =
                    Message::error_msg(request.id(), request.op_code(), ResponseCode::ServFail);
                failure.add_queries(request.queries().iter().cloned());
                return failure.to_vec().ok();
            }
        };
        let limit = usize::from(request.max_payload().min(EDNS_PAYLOAD));
        if udp && wire.len() > limit {
            return response.truncate().to_vec().ok();
        }
        Some(wire)
    }
}

/// A FORMERR answer to the unparsable message `request`, if it has a whole
/// header and is not itself a response.
fn format_error(request: &[u8]) -> Option<Vec<u8>> {
    let header = request.get(..12)?;
    if header[2] & 0x80 != 0 {
        return None;
    }
    let id = u16::from_be_bytes([header[0], header[1]]);
    let op_code = OpCode::from_u8((header[2] >> 3) & 0x0f);
    let mut response = Message::error_msg(id, op_code, ResponseCode::FormErr);
    response.set_recursion_desired(header[2] & 0x01 != 0);
    response.to_vec().ok()
}

/// Answers DNS queries on `socket` while the DNS service is up, and drops
/// them silently while it is down.
async fn serve_dns_udp(socket: UdpSocket, shared: Arc<Shared>) {
    let Some(zone) = shared.zone.as_ref() else {
        return;
    };
    let mut buf = vec![0u8; 65535];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(_) => {
                sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if !shared.dns_up.load(Ordering::SeqCst) {
            continue;
        }
        if let Some(wire) = zone.answer(&buf[..len], true) {
            shared.queries.fetch_add(1, Ordering::Relaxed);
            let _ = socket.send_to(&wire, peer).await;
        }
    }
}

/// Answers DNS queries on one TCP connection until the client closes it,
/// idles, sends something that deserves no answer, or the DNS service goes
/// down.
async fn serve_dns_tcp(mut stream: TcpStream, shared: Arc<Shared>) {
    let Some(zone) = shared.zone.as_ref() else {
        return;
    };
    let mut buf = vec![0u8; 65535];
    loop {
        let mut len = [0u8; 2];
        if !matches!(timeout(IDLE, stream.read_exact(&mut len)).await, Ok(Ok(_))) {
            return;
        }
        let len = usize::from(u16::from_be_bytes(len));
        if !matches!(
            timeout(IDLE, stream.read_exact(&mut buf[..len])).await,
            Ok(Ok(_))
        ) {
            return;
        }
        if !shared.dns_up.load(Ordering::SeqCst) {
            return;
        }
        let Some(wire) = zone.answer(&buf[..len], false) else {
            return;
        };
        let Ok(wire_len) = u16::try_from(wire.len()) else {
            return;
        };
        shared.queries.fetch_add(1, Ordering::Relaxed);
        let mut framed = Vec::with_capacity(wire.len() + 2);
        framed.extend_from_slice(&wire_len.to_be_bytes());
        framed.extend_from_slice(&wire);
        if !matches!(timeout(IDLE, stream.write_all(&framed)).await, Ok(Ok(()))) {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// Sockets and services
// ---------------------------------------------------------------------------

/// A socket of type `kind` bound to `addr` with `IP_FREEBIND` or
/// `IPV6_FREEBIND` (and IPv6-only for IPv6), non-blocking; with
/// `SO_REUSEADDR` if `reuse`.
fn bind_socket(addr: SocketAddr, kind: Type, reuse: bool) -> io::Result<Socket> {
    let protocol = if kind == Type::STREAM {
        Protocol::TCP
    } else {
        Protocol::UDP
    };
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    socket.set_reuse_address(reuse)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
        socket.set_freebind_v6(true)?;
    } else {
        socket.set_freebind_v4(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// A TCP listener on `addr` (see [`bind_socket`]); needs a tokio runtime.
fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = bind_socket(addr, Type::STREAM, true)?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// A UDP socket on `addr` (see [`bind_socket`]); needs a tokio runtime.
fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    UdpSocket::from_std(bind_socket(addr, Type::DGRAM, false)?.into())
}

/// The state shared by every task.
#[derive(Debug)]
struct Shared {
    /// The PoP's name.
    name: String,
    /// The zone served, if any DNS address is.
    zone: Option<Zone>,
    /// Whether the web service is up.
    web_up: AtomicBool,
    /// Whether the DNS service is up.
    dns_up: AtomicBool,
    /// Whether there is a web service (any `--web`).
    has_web: bool,
    /// Whether there is a DNS service (any `--dns`).
    has_dns: bool,
    /// HTTP requests answered (including errors).
    requests: AtomicU64,
    /// DNS queries answered.
    queries: AtomicU64,
}

impl Shared {
    /// Logs one line to stderr.
    fn log(&self, message: &str) {
        eprintln!("edge-lab-service[{}]: {message}", self.name);
    }

    /// The status line: `web=up dns=up requests=123 queries=45` (`none` for
    /// a service without addresses).
    fn status(&self) -> String {
        let state = |exists: bool, up: &AtomicBool| match (exists, up.load(Ordering::SeqCst)) {
            (false, _) => "none",
            (true, true) => "up",
            (true, false) => "down",
        };
        format!(
            "web={} dns={} requests={} queries={}",
            state(self.has_web, &self.web_up),
            state(self.has_dns, &self.dns_up),
            self.requests.load(Ordering::Relaxed),
            self.queries.load(Ordering::Relaxed),
        )
    }
}

/// Accepts connections on `listener` (binding `addr` first, again and again,
/// if it is `None`) and hands each to `serve`, at most as many at a time as
/// `slots` has permits. Runs until aborted, which closes the listener but
/// not the connections.
async fn accept_loop<F, Fut>(
    what: &'static str,
    addr: SocketAddr,
    listener: Option<TcpListener>,
    slots: Arc<Semaphore>,
    shared: Arc<Shared>,
    serve: F,
) where
    F: Fn(TcpStream, Arc<Shared>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = match listener {
        Some(listener) => listener,
        None => loop {
            sleep(REBIND_EVERY).await;
            if let Ok(listener) = bind_tcp(addr) {
                shared.log(&format!("{what} listening on {addr} again"));
                break listener;
            }
        },
    };
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let connection = serve(stream, Arc::clone(&shared));
                tokio::spawn(async move {
                    connection.await;
                    drop(permit);
                });
            }
            Err(e) => {
                shared.log(&format!("{what} accept on {addr}: {e}"));
                sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One of the two services the control socket switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    /// The HTTP service.
    Web,
    /// The DNS service.
    Dns,
}

/// A control command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    /// Start or stop a service.
    Set(Service, bool),
    /// Report the state.
    Status,
}

/// Parses one control line (`web up`, `dns down`, `status`…).
fn parse_command(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["status"] => Ok(Command::Status),
        [service, state] => {
            let service = match *service {
                "web" => Service::Web,
                "dns" => Service::Dns,
                _ => return Err(format!("unknown service `{service}`")),
            };
            let up = match *state {
                "up" => true,
                "down" => false,
                _ => return Err(format!("`{state}` is neither up nor down")),
            };
            Ok(Command::Set(service, up))
        }
        _ => Err(format!(
            "unknown command `{}` (web up|web down|dns up|dns down|status)",
            line.escape_debug()
        )),
    }
}

/// The services and their listeners.
struct Services {
    /// The state shared with the tasks.
    shared: Arc<Shared>,
    /// The HTTP addresses.
    web: Vec<SocketAddr>,
    /// The DNS addresses.
    dns: Vec<SocketAddr>,
    /// Limits the HTTP connections.
    web_slots: Arc<Semaphore>,
    /// Limits the DNS-over-TCP connections.
    dns_slots: Arc<Semaphore>,
    /// The HTTP accept loops (each owns its listener), while up.
    web_listeners: Vec<JoinHandle<()>>,
    /// The DNS-over-TCP accept loops, while up.
    dns_listeners: Vec<JoinHandle<()>>,
}

impl Services {
    /// Binds the TCP listeners of `service` and starts their accept loops;
    /// a listener that cannot be bound is retried in the background if
    /// `retry`, and is an error otherwise.
    fn listen(&mut self, service: Service, retry: bool) -> io::Result<()> {
        let (addrs, slots) = match service {
            Service::Web => (&self.web, &self.web_slots),
            Service::Dns => (&self.dns, &self.dns_slots),
        };
        let mut tasks = Vec::new();
        for &addr in addrs {
            let listener = match bind_tcp(addr) {
                Ok(listener) => Some(listener),
                Err(e) if retry => {
                    self.shared.log(&format!(
                        "cannot listen on {addr} ({e}); retrying every {}s",
                        REBIND_EVERY.as_secs()
                    ));
                    None
                }
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("listening on {addr}: {e}"),
                    ));
                }
            };
            let slots = Arc::clone(slots);
            let shared = Arc::clone(&self.shared);
            tasks.push(match service {
                Service::Web => tokio::spawn(accept_loop(
                    "web", addr, listener, slots, shared, serve_http,
                )),
                Service::Dns => tokio::spawn(accept_loop(
                    "dns",
                    addr,
                    listener,
                    slots,
                    shared,
                    serve_dns_tcp,
                )),
            });
        }
        match service {
            Service::Web => self.web_listeners.extend(tasks),
            Service::Dns => self.dns_listeners.extend(tasks),
        }
        Ok(())
    }

    /// Brings `service` up or down; returns once its listeners are bound or
    /// closed.
    async fn set(&mut self, service: Service, up: bool) {
        let (flag, label) = match service {
            Service::Web => (&self.shared.web_up, "web"),
            Service::Dns => (&self.shared.dns_up, "dns"),
        };
        if flag.swap(up, Ordering::SeqCst) == up {
            return;
        }
        if up {
            // With `retry`, listening fails for no address.
            let _ = self.listen(service, true);
            self.shared.log(&format!("{label} up"));
        } else {
            let tasks = match service {
                Service::Web => std::mem::take(&mut self.web_listeners),
                Service::Dns => std::mem::take(&mut self.dns_listeners),
            };
            for task in &tasks {
                task.abort();
            }
            for task in tasks {
                // Aborted: the listener has been dropped once this returns.
                let _ = task.await;
            }
            let what = match service {
                Service::Web => "listeners closed",
                Service::Dns => "UDP queries dropped, TCP listeners closed",
            };
            self.shared.log(&format!("{label} down ({what})"));
        }
    }

    /// Runs one control command and returns the line that answers it.
    async fn command(&mut self, line: &str) -> String {
        match parse_command(line) {
            Ok(Command::Status) => self.shared.status(),
            Ok(Command::Set(Service::Web, _)) if self.web.is_empty() => {
                "error: no web service (no --web)".to_owned()
            }
            Ok(Command::Set(Service::Dns, _)) if self.dns.is_empty() => {
                "error: no dns service (no --dns)".to_owned()
            }
            Ok(Command::Set(service, up)) => {
                self.set(service, up).await;
                self.shared.status()
            }
            Err(e) => format!("error: {e}"),
        }
    }
}

/// Binds the control socket at `path`, first removing a stale one (a socket
/// nobody accepts on); refuses to remove anything else.
fn bind_control(path: &Path) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: another process serves it", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists and is not a socket", path.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    UnixListener::bind(path)
}

/// Serves control commands on one connection, a line each, until the
/// client closes it or sends a line longer than [`MAX_CONTROL_LINE`].
async fn serve_control(stream: UnixStream, services: Arc<Mutex<Services>>) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    loop {
        let mut line = Vec::new();
        let limit = MAX_CONTROL_LINE as u64 + 1;
        match (&mut reader).take(limit).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.len() > MAX_CONTROL_LINE {
            let _ = writer.write_all(b"error: line too long\n").await;
            return;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let mut reply = services.lock().await.command(text).await;
        reply.push('\n');
        if writer.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Accepts control connections until the process ends.
async fn control_loop(listener: UnixListener, services: Arc<Mutex<Services>>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_control(stream, Arc::clone(&services)));
            }
            Err(_) => sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Starts every service of `config` and serves until SIGTERM or SIGINT.
async fn serve(config: Config) -> Result<(), Box<dyn Error>> {
    // The control socket first: a second instance with the same socket
    // fails before it binds anything else.
    let control = match &config.control {
        Some(path) => Some((
            path,
            bind_control(path).map_err(|e| format!("control socket: {e}"))?,
        )),
        None => None,
    };
    let result = serve_with(config.name, config.web, config.dns, config.zone, control).await;
    if let Some(path) = &config.control {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Binds and serves the web and DNS services, and the control socket
/// `control` (already bound), until SIGTERM or SIGINT.
async fn serve_with(
    name: String,
    web: Vec<SocketAddr>,
    dns: Vec<SocketAddr>,
    zone: Option<Zone>,
    control: Option<(&PathBuf, UnixListener)>,
) -> Result<(), Box<dyn Error>> {
    let shared = Arc::new(Shared {
        name,
        zone,
        web_up: AtomicBool::new(true),
        dns_up: AtomicBool::new(true),
        has_web: !web.is_empty(),
        has_dns: !dns.is_empty(),
        requests: AtomicU64::new(0),
        queries: AtomicU64::new(0),
    });
    let mut services = Services {
        shared: Arc::clone(&shared),
        web,
        dns,
        web_slots: Arc::new(Semaphore::new(MAX_WEB_CONNECTIONS)),
        dns_slots: Arc::new(Semaphore::new(MAX_DNS_CONNECTIONS)),
        web_listeners: Vec::new(),
        dns_listeners: Vec::new(),
    };
    let mut udp = Vec::new();
    for &addr in &services.dns {
        udp.push(bind_udp(addr).map_err(|e| format!("binding UDP {addr}: {e}"))?);
    }
    services.listen(Service::Web, false)?;
    services.listen(Service::Dns, false)?;
    for socket in udp {
        tokio::spawn(serve_dns_udp(socket, Arc::clone(&shared)));
    }
    let list = |addrs: &[SocketAddr]| {
        addrs
            .iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    if !services.web.is_empty() {
        shared.log(&format!("web up on {}", list(&services.web)));
    }
    if let Some(zone) = &shared.zone {
        shared.log(&format!(
            "dns up on {} (zone {})",
            list(&services.dns),
            zone.apex
        ));
    }
    let services = Arc::new(Mutex::new(services));
    if let Some((path, listener)) = control {
        shared.log(&format!("control socket {}", path.display()));
        tokio::spawn(control_loop(listener, Arc::clone(&services)));
    }
    while !STOP.load(Ordering::SeqCst) {
        sleep(Duration::from_millis(100)).await;
    }
    shared.log(&format!("stopping ({})", shared.status()));
    Ok(())
}

/// The SIGTERM and SIGINT handler: asks [`serve`] to return.
extern "C" fn on_signal(_signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs [`on_signal`] for SIGTERM and SIGINT.
fn install_signal_handlers() -> io::Result<()> {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; `signal` has no other preconditions.
        if unsafe { libc::signal(signal, handler) } == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Parses the command line, then serves.
fn run() -> Result<(), Box<dyn Error>> {
    let Some(config) = parse_args(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    install_signal_handlers()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config))
}

/// Runs [`run`]; an error is reported on stderr with a failing exit status.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edge-lab-service: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use hickory_proto::op::Query;

    /// `request` parsed, expecting a complete head.
    fn parse(request: &[u8]) -> (Request, usize) {
        parse_request(request)
            .expect("a valid request")
            .expect("a complete head")
    }

    #[test]
    fn parses_a_simple_get() {
        let raw = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        let (request, len) = parse(raw);
        assert_eq!(len, raw.len());
        assert_eq!(request.method, "GET");
        assert_eq!(request.target, "/health");
        assert!(request.keep_alive);
        assert_eq!(request.content_length, 0);
    }

    #[test]
    fn waits_for_the_whole_head() {
        assert_eq!(parse_request(b""), Ok(None));
        assert_eq!(parse_request(b"\r\n"), Ok(None));
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(parse_request(b"GET / HT"), Ok(None));
    }

    #[test]
    fn finds_pipelined_requests() {
        let raw = b"\r\nGET /a HTTP/1.1\nHost: x\n\nHEAD /b HTTP/1.1\r\n\r\n";
        let (first, len) = parse(raw);
        assert_eq!(first.target, "/a");
        let (second, rest) = parse(&raw[len..]);
        assert_eq!(second.method, "HEAD");
        assert_eq!(second.target, "/b");
        assert_eq!(len + rest, raw.len());
    }

    #[test]
    fn honours_connection_options() {
        let (r, _) = parse(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n");
        assert!(!r.keep_alive);
        let (r, _) = parse(b"GET / HTTP/1.1\r\nconnection: foo, close\r\n\r\n");
        assert!(!r.keep_alive);
        let (r, _) = parse(b"GET / HTTP/1.0\r\n\r\n");
        assert!(!r.keep_alive);
        let (r, _) = parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(r.keep_alive);
    }

    #[test]
    fn reads_content_length() {
        let (r, _) = parse(b"GET / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n");
        assert_eq!(r.content_length, 5);
        for bad in [
            &b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length:\r\n\r\n",
        ] {
            assert_eq!(parse_request(bad), Err(HttpError::Bad));
        }
        assert_eq!(
            parse_request(b"POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n"),
            Err(HttpError::BodyTooLarge)
        );
        assert_eq!(
            parse_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(HttpError::TransferEncoding)
        );
    }

    #[test]
    fn rejects_malformed_heads() {
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 x\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / FTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert_eq!(
                parse_request(bad),
                Err(HttpError::Bad),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_request(b"GET / HTTP/2.0\r\n\r\n"),
            Err(HttpError::Version)
        );
    }

    #[test]
    fn bounds_the_head() {
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD, b'a');
        assert_eq!(parse_request(&long), Err(HttpError::HeadTooLarge));
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_request(&long), Err(HttpError::HeadTooLarge));
        let mut fits = b"GET / HTTP/1.1\r\nX: ".to_vec();
        fits.resize(MAX_HEAD - 4, b'a');
        fits.extend_from_slice(b"\r\n\r\n");
        assert!(parse(&fits).0.keep_alive);
        assert_eq!(
            parse_request(&vec![b'\n'; MAX_HEAD]),
            Err(HttpError::HeadTooLarge)
        );
    }

    #[test]
    fn finds_paths() {
        assert_eq!(path_of("/health"), "/health");
        assert_eq!(path_of("/health?x=1"), "/health");
        assert_eq!(path_of("/health#top"), "/health");
        assert_eq!(path_of("http://www.cdn.test/health"), "/health");
        assert_eq!(path_of("HTTP://www.cdn.test"), "/");
        assert_eq!(path_of("*"), "*");
    }

    #[test]
    fn answers_health_and_content() {
        let request = |method: &str, target: &str| Request {
            method: method.to_owned(),
            target: target.to_owned(),
            keep_alive: true,
            content_length: 0,
        };
        let up = respond(&request("GET", "/health"), true, "pop-a");
        assert_eq!((up.status, up.body.as_str()), (200, "ok\n"));
        let down = respond(&request("GET", "/health?probe"), false, "pop-a");
        assert_eq!(down.status, 503);
        let page = respond(&request("GET", "/index.html"), true, "pop-a");
        assert_eq!(
            (page.status, page.body.as_str()),
            (200, "served by pop-a\n")
        );
        let late = respond(&request("GET", "/"), false, "pop-a");
        assert_eq!(late.status, 200);
        let post = respond(&request("POST", "/"), true, "pop-a");
        assert_eq!(post.status, 405);
        assert!(post.allow);

        let head = String::from_utf8(render(&page, true, true, "pop-a")).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains("Content-Length: 16\r\n"));
        assert!(head.contains("Connection: keep-alive\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
        let get = String::from_utf8(render(&page, false, false, "pop-a")).unwrap();
        assert!(get.contains("Connection: close\r\n"));
        assert!(get.ends_with("\r\n\r\nserved by pop-a\n"));
        let error = String::from_utf8(render(
            &HttpError::HeadTooLarge.response(),
            false,
            false,
            "p",
        ))
        .unwrap();
        assert!(error.starts_with("HTTP/1.1 431 "));
    }

    /// The zone of the DNS tests.
    fn zone() -> Zone {
        Zone::new(
            "CDN.test",
            "pop-a",
            vec![Ipv4Addr::new(203, 0, 113, 10)],
            vec![],
            &[
                "203.0.113.53:53".parse().unwrap(),
                "[::]:53".parse().unwrap(),
            ],
        )
        .unwrap()
    }

    /// A query for `name` `rtype` on the wire.
    fn query(name: &str, rtype: RecordType) -> Vec<u8> {
        let mut message = Message::new();
        message
            .set_id(0x1234)
            .set_recursion_desired(true)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        message.to_vec().unwrap()
    }

    /// The answer of [`zone`] to `request` over UDP, parsed.
    fn ask(request: &[u8]) -> Message {
        let wire = zone().answer(request, true).expect("an answer");
        let response = Message::from_vec(&wire).expect("a valid answer");
        assert_eq!(response.message_type(), MessageType::Response);
        response
    }

    #[test]
    fn answers_addresses() {
        for name in ["www.cdn.test.", "cdn.test.", "WwW.CdN.TeSt"] {
            let response = ask(&query(name, RecordType::A));
            assert_eq!(response.id(), 0x1234);
            assert_eq!(response.response_code(), ResponseCode::NoError);
            assert!(response.authoritative());
            assert!(response.recursion_desired());
            assert_eq!(response.queries().len(), 1);
            let [answer] = response.answers() else {
                panic!("one answer for {name}: {response:?}");
            };
            // The owner is the name as asked, case and all.
            assert_eq!(
                answer.name().to_string().trim_end_matches('.'),
                name.trim_end_matches('.')
            );
            assert_eq!(answer.data(), &RData::A(A::new(203, 0, 113, 10)));
        }
    }

    #[test]
    fn answers_nodata_with_the_soa() {
        let response = ask(&query("www.cdn.test.", RecordType::AAAA));
        assert_eq!(response.response_code(), ResponseCode::NoError);
        assert!(response.answers().is_empty());
        let [soa] = response.name_servers() else {
            panic!("the SOA in the authority section: {response:?}");
        };
        assert_eq!(soa.record_type(), RecordType::SOA);
        assert_eq!(soa.name(), &Name::from_ascii("cdn.test.").unwrap());

        let with6 = Zone::new(
            "cdn.test",
            "pop-a",
            vec![],
            vec!["2001:db8:ac::10".parse().unwrap()],
            &[],
        )
        .unwrap();
        let wire = with6
            .answer(&query("www.cdn.test", RecordType::AAAA), true)
            .unwrap();
        let response = Message::from_vec(&wire).unwrap();
        assert_eq!(
            response.answers()[0].data(),
            &RData::AAAA(AAAA("2001:db8:ac::10".parse().unwrap()))
        );
    }

    #[test]
    fn names_the_pop() {
        let response = ask(&query("served-by.cdn.test.", RecordType::TXT));
        let [answer] = response.answers() else {
            panic!("one TXT record: {response:?}");
        };
        assert_eq!(answer.data(), &RData::TXT(TXT::new(vec!["pop-a".into()])));
        assert_eq!(answer.ttl(), SERVED_BY_TTL);
    }

    #[test]
    fn answers_apex_records() {
        let response = ask(&query("cdn.test.", RecordType::ANY));
        let types: Vec<RecordType> = response.answers().iter().map(Record::record_type).collect();
        assert_eq!(types, [RecordType::SOA, RecordType::NS, RecordType::A]);
        let response = ask(&query("ns.cdn.test.", RecordType::A));
        assert_eq!(
            response.answers()[0].data(),
            &RData::A(A::new(203, 0, 113, 53))
        );
        let response = ask(&query("ns.cdn.test.", RecordType::AAAA));
        assert!(response.answers().is_empty(), "[::] is not an address");
    }

    #[test]
    fn denies_other_names() {
        let response = ask(&query("nope.cdn.test.", RecordType::A));
        assert_eq!(response.response_code(), ResponseCode::NXDomain);
        assert!(response.authoritative());
        assert_eq!(response.name_servers()[0].record_type(), RecordType::SOA);
        let response = ask(&query("a.www.cdn.test.", RecordType::A));
        assert_eq!(response.response_code(), ResponseCode::NXDomain);

        for outside in ["example.com.", "test.", "xcdn.test."] {
            let response = ask(&query(outside, RecordType::A));
            assert_eq!(response.response_code(), ResponseCode::Refused, "{outside}");
            assert!(!response.authoritative());
            assert!(response.answers().is_empty());
        }
        let response = ask(&query("cdn.test.", RecordType::AXFR));
        assert_eq!(response.response_code(), ResponseCode::Refused);
    }

    #[test]
    fn rejects_malformed_queries() {
        let zone = zone();
        assert_eq!(zone.answer(b"", true), None);
        assert_eq!(zone.answer(b"\x12\x34\x01", true), None);
        // A whole header, then garbage where the question should be.
        let garbage = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff";
        let response = ask(garbage);
        assert_eq!(response.id(), 0x1234);
        assert_eq!(response.response_code(), ResponseCode::FormErr);
        assert!(response.recursion_desired());
        // A response (QR=1) deserves no answer, parsed or not.
        let mut reply = query("www.cdn.test.", RecordType::A);
        reply[2] |= 0x80;
        assert_eq!(zone.answer(&reply, true), None);
        let mut bad_reply = garbage.to_vec();
        bad_reply[2] |= 0x80;
        assert_eq!(zone.answer(&bad_reply, true), None);
        // No question, and two questions.
        let mut message = Message::new();
        message.set_id(7);
        assert_eq!(
            ask(&message.to_vec().unwrap()).response_code(),
            ResponseCode::FormErr
        );
        let name = Name::from_ascii("www.cdn.test.").unwrap();
        message
            .add_query(Query::query(name.clone(), RecordType::A))
            .add_query(Query::query(name, RecordType::AAAA));
        assert_eq!(
            ask(&message.to_vec().unwrap()).response_code(),
            ResponseCode::FormErr
        );
        // Not a query: NOTIMP.
        let mut update = Message::from_vec(&query("www.cdn.test.", RecordType::A)).unwrap();
        update.set_op_code(OpCode::Update);
        assert_eq!(
            ask(&update.to_vec().unwrap()).response_code(),
            ResponseCode::NotImp
        );
        // Random bytes never panic.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..600 {
            let bytes: Vec<u8> = (0..len % 80)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = zone.answer(&bytes, len % 2 == 0);
        }
    }

    #[test]
    fn echoes_edns_and_truncates_udp() {
        let mut request = Message::from_vec(&query("www.cdn.test.", RecordType::A)).unwrap();
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        request.set_edns(edns);
        let response = ask(&request.to_vec().unwrap());
        let edns = response.extensions().as_ref().expect("EDNS in the answer");
        assert_eq!(edns.max_payload(), EDNS_PAYLOAD);

        let many: Vec<Ipv4Addr> = (0..100).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        let big = Zone::new("cdn.test", "pop-a", many, vec![], &[]).unwrap();
        let plain = query("www.cdn.test.", RecordType::A);
        let udp = Message::from_vec(&big.answer(&plain, true).unwrap()).unwrap();
        assert!(udp.truncated());
        assert!(udp.answers().is_empty());
        let tcp = Message::from_vec(&big.answer(&plain, false).unwrap()).unwrap();
        assert!(!tcp.truncated());
        assert_eq!(tcp.answers().len(), 100);
    }

    #[test]
    fn parses_commands() {
        assert_eq!(parse_command("status"), Ok(Command::Status));
        assert_eq!(
            parse_command("  web   down "),
            Ok(Command::Set(Service::Web, false))
        );
        assert_eq!(
            parse_command("dns up"),
            Ok(Command::Set(Service::Dns, true))
        );
        assert!(parse_command("web sideways").is_err());
        assert!(parse_command("bgp up").is_err());
        assert!(parse_command("status now").is_err());
    }

    #[test]
    fn reports_status() {
        let shared = Shared {
            name: "pop-a".to_owned(),
            zone: None,
            web_up: AtomicBool::new(false),
            dns_up: AtomicBool::new(true),
            has_web: true,
            has_dns: false,
            requests: AtomicU64::new(123),
            queries: AtomicU64::new(0),
        };
        assert_eq!(shared.status(), "web=down dns=none requests=123 queries=0");
    }

    #[test]
    fn parses_the_command_line() {
        let args = |line: &str| line.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let config = parse_args(
            args(
                "--name pop-a --web 203.0.113.10:80 --web [2001:db8:ac::10]:80 \
                 --dns 203.0.113.53:53 --zone cdn.test --answer 203.0.113.10 \
                 --control /tmp/x.sock",
            )
            .into_iter(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.name, "pop-a");
        assert_eq!(config.web.len(), 2);
        assert_eq!(config.dns.len(), 1);
        assert_eq!(config.zone.unwrap().a, [Ipv4Addr::new(203, 0, 113, 10)]);
        assert_eq!(config.control, Some(PathBuf::from("/tmp/x.sock")));
        assert!(parse_args(args("--help").into_iter()).unwrap().is_none());
        for bad in [
            "--web 127.0.0.1:80",
            "--name pop-a",
            "--name pop-a --dns 127.0.0.1:53",
            "--name pop-a --web 127.0.0.1",
            "--name pop-a --web 127.0.0.1:80 --zone cdn.test",
            "--name pop-a --web 127.0.0.1:80 --bogus",
            "--name pop-a --web",
        ] {
            assert!(parse_args(args(bad).into_iter()).is_err(), "{bad}");
        }
    }
}
