//! The admin API: one JSON request per line on a local Unix socket that
//! only root can open (mode 0600), one JSON response per line. The CLI's
//! `status`, `drain`, `undrain`, `service` and `dns` commands are its
//! clients. Requests are typed: a value that is not one of a field's
//! choices is refused here, naming the choices, before the daemon sees
//! it.

use std::{
    io,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
};

use super::status::StatusDoc;
use crate::health::AdminState;

/// A request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    /// The status document.
    Status,
    /// Drain the node: the upstream announcement drains, then withdraws.
    Drain,
    /// End the drain.
    Undrain,
    /// Set a service's admin state.
    Service {
        /// The service.
        name: String,
        /// The admin state.
        state: ServiceState,
    },
    /// Stop or start the DNS service's listeners.
    Dns {
        /// Stop or start.
        action: DnsAction,
    },
}

/// A service's admin state, as an operator asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceState {
    /// Follow the probes, as `auto` (nothing forces a service up against
    /// its probes).
    Up,
    /// Follow the probes.
    Auto,
    /// Out of service whatever the probes say.
    Down,
    /// Keep existing flows while healthy, attract no new traffic.
    Drain,
}

impl ServiceState {
    /// The admin state it sets.
    pub fn admin(self) -> AdminState {
        match self {
            ServiceState::Up | ServiceState::Auto => AdminState::Auto,
            ServiceState::Down => AdminState::Down,
            ServiceState::Drain => AdminState::Drain,
        }
    }
}

impl std::fmt::Display for ServiceState {
    /// The name the operator writes (`up`, `auto`, `down`, `drain`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServiceState::Up => "up",
            ServiceState::Auto => "auto",
            ServiceState::Down => "down",
            ServiceState::Drain => "drain",
        })
    }
}

/// What to do with the DNS service's listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DnsAction {
    /// Close the listeners (and every TCP connection): the service's
    /// probes fail and the node forwards DNS to a peer.
    Stop,
    /// Open the listeners again.
    Start,
}

/// A response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The status document, for `status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Box<StatusDoc>>,
}

impl Response {
    /// Success, with nothing to say.
    pub fn ok() -> Response {
        Response {
            ok: true,
            error: None,
            status: None,
        }
    }

    /// Failure, saying why.
    pub fn error(why: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(why.into()),
            status: None,
        }
    }
}

/// A request from a client, with where its answer goes.
pub type Incoming = (Request, oneshot::Sender<Response>);

/// The socket could not be set up, or the daemon not reached.
#[derive(Debug, thiserror::Error)]
#[error("admin socket {}: {source}{hint}", path.display())]
pub struct ApiError {
    /// Which socket.
    pub path: PathBuf,
    /// Why.
    pub source: io::Error,
    /// What to do.
    pub hint: &'static str,
}

/// Binds the admin socket (replacing a stale one, never a live one),
/// root-only.
pub fn bind(path: &Path) -> Result<UnixListener, ApiError> {
    let err = |source, hint| ApiError {
        path: path.to_owned(),
        source,
        hint,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(e, ""))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(err(
                io::Error::new(io::ErrorKind::AddrInUse, "another edge-agent answers on it"),
                " (stop it first, or give this one another api_socket)",
            ));
        }
        std::fs::remove_file(path).map_err(|e| err(e, ""))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| err(e, ""))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| err(e, ""))?;
    Ok(listener)
}

/// Serves clients on `listener`, handing each request to `requests`.
pub async fn serve(listener: UnixListener, requests: mpsc::Sender<Incoming>) {
    loop {
        let (stream, _) = crate::net::tcp::next_connection(&listener).await;
        let requests = requests.clone();
        tokio::spawn(async move {
            let (reader, mut writer) = stream.into_split();
            let mut lines = BufReader::new(reader.take(64 * 1024)).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let response = match serde_json::from_str::<Request>(&line) {
                    Ok(request) => {
                        let (tx, rx) = oneshot::channel();
                        if requests.send((request, tx)).await.is_err() {
                            Response::error("the agent is stopping")
                        } else {
                            rx.await
                                .unwrap_or_else(|_| Response::error("the agent is stopping"))
                        }
                    }
                    Err(e) => Response::error(format!("not a request: {e}")),
                };
                let mut text = serde_json::to_string(&response).unwrap_or_default();
                text.push('\n');
                if writer.write_all(text.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Sends one request to the daemon at `path` and returns its response.
pub async fn call(path: &Path, request: &Request) -> Result<Response, ApiError> {
    let err = |source, hint| ApiError {
        path: path.to_owned(),
        source,
        hint,
    };
    let stream = UnixStream::connect(path)
        .await
        .map_err(|e| err(e, " (is edge-agent running, and are you root?)"))?;
    let (reader, mut writer) = stream.into_split();
    let mut text = serde_json::to_string(request).map_err(|e| err(io::Error::other(e), ""))?;
    text.push('\n');
    writer
        .write_all(text.as_bytes())
        .await
        .map_err(|e| err(e, ""))?;
    let mut line = String::new();
    BufReader::new(reader)
        .read_line(&mut line)
        .await
        .map_err(|e| err(e, ""))?;
    serde_json::from_str(&line)
        .map_err(|e| err(io::Error::other(e), " (an answer that is not JSON)"))
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
