//! A tiny HTTP/1.1 server for health-check tests: it answers every request
//! with the status, body and delay the test set last ([`Reply`]), over
//! plain TCP or TLS, and counts the requests it saw, in all and since the
//! reply last changed, so a test can tell exactly how many probes a
//! transition took.
//!
//! Like [`crate::dns::DnsServer`], it takes an already-bound listener (so a
//! test can bind it inside a network namespace) and serves from its own
//! thread until dropped. Every answer closes the connection. Being test
//! support, it panics (failing the test) on a listener it cannot use.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex, MutexGuard},
    thread::JoinHandle,
    time::Duration,
};

use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpListener,
    sync::oneshot,
};
use tokio_rustls::TlsAcceptor;

/// The largest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// How the server answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
    /// How long to wait after the request before answering.
    pub delay: Duration,
}

impl Default for Reply {
    /// `200 OK`, body `ok`, at once.
    fn default() -> Self {
        Reply {
            status: 200,
            body: "ok".into(),
            delay: Duration::ZERO,
        }
    }
}

/// What the connections share.
#[derive(Debug, Default)]
struct State {
    reply: Reply,
    requests: u64,
    since_change: u64,
    hosts: Vec<String>,
}

/// An HTTP (or HTTPS) server answering with a settable [`Reply`].
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves on `listener`, over TLS if `tls` is given, answering
    /// `Reply::default()` until told otherwise.
    pub fn start(listener: std::net::TcpListener, tls: Option<Arc<ServerConfig>>) -> HttpServer {
        let addr = listener
            .local_addr()
            .expect("local address of the listener");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the HTTP server");
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener).expect("listener for tokio")
        };
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, stopped) = oneshot::channel();
        let served = Arc::clone(&state);
        let acceptor = tls.map(TlsAcceptor::from);
        let thread = std::thread::Builder::new()
            .name(format!("http-{addr}"))
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = stopped => {}
                        _ = serve(listener, acceptor, served) => {}
                    }
                });
            })
            .expect("a thread for the HTTP server");
        HttpServer {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Serves plain HTTP on `127.0.0.1` at a free port.
    pub fn start_local() -> HttpServer {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("a TCP listener on 127.0.0.1");
        HttpServer::start(listener, None)
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers later requests with `reply`, and restarts the count of
    /// [`HttpServer::requests_since_change`].
    pub fn set_reply(&self, reply: Reply) {
        let mut state = self.state();
        state.reply = reply;
        state.since_change = 0;
    }

    /// [`HttpServer::set_reply`] with the current reply but `status`.
    pub fn set_status(&self, status: u16) {
        let reply = Reply {
            status,
            ..self.reply()
        };
        self.set_reply(reply);
    }

    /// [`HttpServer::set_reply`] with the current reply but `delay`.
    pub fn set_delay(&self, delay: Duration) {
        let reply = Reply {
            delay,
            ..self.reply()
        };
        self.set_reply(reply);
    }

    /// The current reply.
    pub fn reply(&self) -> Reply {
        self.state().reply.clone()
    }

    /// How many requests arrived so far (counted when their head is read,
    /// before any delay).
    pub fn requests(&self) -> u64 {
        self.state().requests
    }

    /// How many requests arrived since the reply was last set; each got
    /// the current reply.
    pub fn requests_since_change(&self) -> u64 {
        self.state().since_change
    }

    /// The Host header of each request so far, in order (empty for a
    /// request without one).
    pub fn hosts(&self) -> Vec<String> {
        self.state().hosts.clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A rustls server configuration (on *ring*) from a PEM certificate chain
/// and its PEM private key. Panics if they do not parse or match.
pub fn tls_config(cert_pem: &str, key_pem: &str) -> Arc<ServerConfig> {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("a PEM private key");
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("the certificate and key to match");
    Arc::new(config)
}

async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, state: Arc<Mutex<State>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        let state = Arc::clone(&state);
        match tls.clone() {
            None => {
                tokio::spawn(connection(stream, state));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    // A failed handshake (a client that refused our
                    // certificate) is no request.
                    if let Ok(stream) = acceptor.accept(stream).await {
                        connection(stream, state).await;
                    }
                });
            }
        }
    }
}

/// Reads one request head and answers it, then closes.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, state: Arc<Mutex<State>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_HEAD {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let host = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default();
    let reply = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.requests += 1;
        state.since_change += 1;
        state.hosts.push(host);
        state.reply.clone()
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let reason = match reply.status {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let response = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        reply.status,
        reply.body.len(),
        reply.body
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
