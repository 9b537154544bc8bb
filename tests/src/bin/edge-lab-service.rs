//! `edge-lab-service`: the local web service of one PoP in the lab, run
//! inside the PoP's network namespace until killed. (The PoP's DNS is the
//! agent's own authoritative service, not this one's.)
//!
//! ```text
//! edge-lab-service --name pop-a --web 203.0.113.10:80 \
//!     [--web '[2001:db8:ac::10]:80' ...] [--control /run/lab/pop-a.sock]
//! ```
//!
//! - `--web ADDR` (repeatable, at least one): HTTP/1.1 with keep-alive.
//!   `GET /health` answers `200 ok` while the web service is up and `503`
//!   while it is down; any other path answers `200` with `served by NAME`.
//!   "Down" closes the listeners (new connections are refused); connections
//!   accepted while up keep being served. `GET` and `HEAD` are served; heads
//!   are limited to 8 KiB, and a request must arrive within 10 s.
//! - `--control PATH`: a Unix socket taking line commands `web up`,
//!   `web down` and `status`; each is answered with one line, the state
//!   after it (`web=up requests=123`), or `error: ...`. A stale socket at
//!   PATH is removed at start.
//!
//! Every socket is bound with `IP_FREEBIND`/`IPV6_FREEBIND`, so the service
//! can start before its VIP is configured. State changes are logged to
//! stderr, one line each. SIGTERM and SIGINT end the process cleanly.

use std::{
    error::Error,
    io,
    net::SocketAddr,
    os::unix::fs::FileTypeExt,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
    sync::{Mutex, Semaphore},
    task::JoinHandle,
    time::{Instant, sleep, timeout, timeout_at},
};

/// The command line, for `--help` and errors.
const USAGE: &str =
    "usage: edge-lab-service --name NAME --web ADDR:PORT [--web ADDR:PORT]... [--control PATH]";

/// The largest request head (request line and header fields) accepted.
const MAX_HEAD: usize = 8 * 1024;

/// The largest request body accepted (and discarded).
const MAX_BODY: u64 = 1024 * 1024;

/// How long a client may take to send a whole request (from the end of the
/// previous one), or to take an answer.
const IDLE: Duration = Duration::from_secs(10);

/// The most HTTP connections served at once (more wait in the backlog).
const MAX_WEB_CONNECTIONS: usize = 1024;

/// The listen backlog of the TCP listeners.
const BACKLOG: i32 = 1024;

/// How often a listener that could not be bound is tried again.
const REBIND_EVERY: Duration = Duration::from_secs(1);

/// The longest control command line.
const MAX_CONTROL_LINE: usize = 1024;

/// Set by the SIGTERM and SIGINT handler.
static STOP: AtomicBool = AtomicBool::new(false);

/// What the command line asks for.
#[derive(Debug)]
struct Config {
    /// The PoP's name, served in HTTP bodies and headers.
    name: String,
    /// The HTTP listening addresses (at least one).
    web: Vec<SocketAddr>,
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
    let mut control = None;
    while let Some(option) = args.next() {
        match option.as_str() {
            "-h" | "--help" => return Ok(None),
            "--name" => name = Some(value(&option, &mut args)?),
            "--web" => web.push(parse_value(&option, &value(&option, &mut args)?)?),
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
    if web.is_empty() {
        return Err(format!("nothing to serve: give --web\n{USAGE}"));
    }
    Ok(Some(Config { name, web, control }))
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
// Sockets and services
// ---------------------------------------------------------------------------

/// A TCP listener on `addr`, bound with `SO_REUSEADDR` and `IP_FREEBIND` or
/// `IPV6_FREEBIND` (and IPv6-only for IPv6), non-blocking; needs a tokio
/// runtime.
fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
        socket.set_freebind_v6(true)?;
    } else {
        socket.set_freebind_v4(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// The state shared by every task.
#[derive(Debug)]
struct Shared {
    /// The PoP's name.
    name: String,
    /// Whether the web service is up.
    web_up: AtomicBool,
    /// HTTP requests answered (including errors).
    requests: AtomicU64,
}

impl Shared {
    /// Logs one line to stderr.
    fn log(&self, message: &str) {
        eprintln!("edge-lab-service[{}]: {message}", self.name);
    }

    /// The status line: `web=up requests=123`.
    fn status(&self) -> String {
        let state = if self.web_up.load(Ordering::SeqCst) {
            "up"
        } else {
            "down"
        };
        format!(
            "web={state} requests={}",
            self.requests.load(Ordering::Relaxed)
        )
    }
}

/// Accepts HTTP connections on `listener` (binding `addr` first, again and
/// again, if it is `None`) and serves each, at most as many at a time as
/// `slots` has permits. Runs until aborted, which closes the listener but
/// not the connections.
async fn accept_loop(
    addr: SocketAddr,
    listener: Option<TcpListener>,
    slots: Arc<Semaphore>,
    shared: Arc<Shared>,
) {
    let listener = match listener {
        Some(listener) => listener,
        None => loop {
            sleep(REBIND_EVERY).await;
            if let Ok(listener) = bind_tcp(addr) {
                shared.log(&format!("web listening on {addr} again"));
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
                let connection = serve_http(stream, Arc::clone(&shared));
                tokio::spawn(async move {
                    connection.await;
                    drop(permit);
                });
            }
            Err(e) => {
                shared.log(&format!("web accept on {addr}: {e}"));
                sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A control command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    /// Start (`true`) or stop the web service.
    Web(bool),
    /// Report the state.
    Status,
}

/// Parses one control line (`web up`, `web down`, `status`).
fn parse_command(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["status"] => Ok(Command::Status),
        ["web", "up"] => Ok(Command::Web(true)),
        ["web", "down"] => Ok(Command::Web(false)),
        ["web", state] => Err(format!("`{state}` is neither up nor down")),
        [service, _] => Err(format!("unknown service `{service}`")),
        _ => Err(format!(
            "unknown command `{}` (web up|web down|status)",
            line.escape_debug()
        )),
    }
}

/// The web service and its listeners.
struct Services {
    /// The state shared with the tasks.
    shared: Arc<Shared>,
    /// The HTTP addresses.
    web: Vec<SocketAddr>,
    /// Limits the HTTP connections.
    web_slots: Arc<Semaphore>,
    /// The HTTP accept loops (each owns its listener), while up.
    web_listeners: Vec<JoinHandle<()>>,
}

impl Services {
    /// Binds the HTTP listeners and starts their accept loops; a listener
    /// that cannot be bound is retried in the background if `retry`, and is
    /// an error otherwise.
    fn listen(&mut self, retry: bool) -> io::Result<()> {
        for &addr in &self.web {
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
            self.web_listeners.push(tokio::spawn(accept_loop(
                addr,
                listener,
                Arc::clone(&self.web_slots),
                Arc::clone(&self.shared),
            )));
        }
        Ok(())
    }

    /// Brings the web service up or down; returns once its listeners are
    /// bound or closed.
    async fn set(&mut self, up: bool) {
        if self.shared.web_up.swap(up, Ordering::SeqCst) == up {
            return;
        }
        if up {
            // With `retry`, listening fails for no address.
            let _ = self.listen(true);
            self.shared.log("web up");
        } else {
            let tasks = std::mem::take(&mut self.web_listeners);
            for task in &tasks {
                task.abort();
            }
            for task in tasks {
                // Aborted: the listener has been dropped once this returns.
                let _ = task.await;
            }
            self.shared.log("web down (listeners closed)");
        }
    }

    /// Runs one control command and returns the line that answers it.
    async fn command(&mut self, line: &str) -> String {
        match parse_command(line) {
            Ok(Command::Status) => self.shared.status(),
            Ok(Command::Web(up)) => {
                self.set(up).await;
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

/// Starts the web service of `config` and serves until SIGTERM or SIGINT.
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
    let result = serve_with(config.name, config.web, control).await;
    if let Some(path) = &config.control {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Binds and serves the web service, and the control socket `control`
/// (already bound), until SIGTERM or SIGINT.
async fn serve_with(
    name: String,
    web: Vec<SocketAddr>,
    control: Option<(&PathBuf, UnixListener)>,
) -> Result<(), Box<dyn Error>> {
    let shared = Arc::new(Shared {
        name,
        web_up: AtomicBool::new(true),
        requests: AtomicU64::new(0),
    });
    let mut services = Services {
        shared: Arc::clone(&shared),
        web,
        web_slots: Arc::new(Semaphore::new(MAX_WEB_CONNECTIONS)),
        web_listeners: Vec::new(),
    };
    services.listen(false)?;
    let list = services
        .web
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    shared.log(&format!("web up on {list}"));
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

    #[test]
    fn parses_commands() {
        assert_eq!(parse_command("status"), Ok(Command::Status));
        assert_eq!(parse_command("  web   down "), Ok(Command::Web(false)));
        assert_eq!(parse_command("web up"), Ok(Command::Web(true)));
        assert!(parse_command("web sideways").is_err());
        assert!(parse_command("dns up").is_err());
        assert!(parse_command("dns down").is_err());
        assert!(parse_command("bgp up").is_err());
        assert!(parse_command("status now").is_err());
        assert!(parse_command("web").is_err());
    }

    #[test]
    fn reports_status() {
        let shared = Shared {
            name: "pop-a".to_owned(),
            web_up: AtomicBool::new(false),
            requests: AtomicU64::new(123),
        };
        assert_eq!(shared.status(), "web=down requests=123");
        shared.web_up.store(true, Ordering::SeqCst);
        assert_eq!(shared.status(), "web=up requests=123");
    }

    #[test]
    fn parses_the_command_line() {
        let args = |line: &str| line.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let config = parse_args(
            args(
                "--name pop-a --web 203.0.113.10:80 --web [2001:db8:ac::10]:80 \
                 --control /tmp/x.sock",
            )
            .into_iter(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.name, "pop-a");
        assert_eq!(config.web.len(), 2);
        assert_eq!(config.control, Some(PathBuf::from("/tmp/x.sock")));
        assert!(parse_args(args("--help").into_iter()).unwrap().is_none());
        for bad in [
            "--web 127.0.0.1:80",
            "--name pop-a",
            "--name pop-a --control /tmp/x.sock",
            "--name pop-a --web 127.0.0.1",
            "--name pop-a --web 127.0.0.1:80 --dns 127.0.0.1:53",
            "--name pop-a --web 127.0.0.1:80 --zone cdn.test",
            "--name pop-a --web 127.0.0.1:80 --answer 127.0.0.1",
            "--name pop-a --web 127.0.0.1:80 --answer6 ::1",
            "--name pop-a --web 127.0.0.1:80 --bogus",
            "--name pop-a --web",
        ] {
            assert!(parse_args(args(bad).into_iter()).is_err(), "{bad}");
        }
    }
}
