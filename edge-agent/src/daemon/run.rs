//! The daemon's life: read and validate the config (before anything
//! touches the kernel), set up logging, start the node, serve the admin
//! API and the metrics, and handle signals. SIGHUP reloads the config: an
//! invalid one is rejected (every problem logged) and the running one
//! kept; a valid one is applied as [`reload::plan`] says: its trust
//! material and allow-list, and the DNS service's zones (files read
//! again) and limits, take effect at once; other changes are named as
//! needing a restart. SIGTERM or SIGINT shut down in a safe order (drain
//! and withdraw upstream, leave the overlay, remove the kernel state); a
//! second signal forces the exit. With `keep_state` (a restart), nothing
//! is withdrawn: the XDP program and its maps stay pinned and attached,
//! the kernel state stays, and the upstream sessions are dropped without
//! a Cease so that graceful restart keeps the routes until the next
//! process is up.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, oneshot},
};

use super::{
    api::{self, DnsAction, Request, Response},
    metrics,
    status::{self, Sources, StatusDoc},
};
use crate::{
    agent::Agent,
    config::{
        DaemonConfig, LogFormat,
        reload::{self, LivePart},
    },
};

/// How `edge-agent run` was started.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The config file.
    pub config: PathBuf,
    /// Leave the data plane, kernel state and upstream routes in place on
    /// exit (for a restart).
    pub keep_state: bool,
    /// How long to drain upstream before withdrawing on shutdown.
    pub shutdown_drain: Duration,
}

impl RunOptions {
    /// What the command line changes in the config: `--keep-state` sets
    /// `netlink.keep_state`. Applied at start and to every reloaded
    /// config, so that the flag is never taken for a change to reload.
    fn apply(&self, config: &mut DaemonConfig) {
        if self.keep_state {
            config.agent.netlink.keep_state = true;
        }
    }
}

/// Sets up logging as the config says (once per process).
pub fn init_logging(config: &DaemonConfig) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .with_context(|| format!("log_level `{}` is not a valid filter", config.log_level))?;
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match config.log_format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("setting up logging: {e}"))
}

/// Runs the daemon until a signal stops it.
pub async fn run(options: RunOptions, mut config: DaemonConfig) -> anyhow::Result<()> {
    options.apply(&mut config);
    // Fail early, before touching the kernel, if another agent runs or the
    // metrics address is taken.
    let api_listener = api::bind(&config.api_socket)?;
    let metrics_listener = match config.metrics {
        Some(addr) => Some(
            metrics::bind(addr)
                .await
                .with_context(|| format!("metrics address {addr}"))?,
        ),
        None => None,
    };
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let agent = Agent::start(config.agent.clone())
        .await
        .context("starting the node")?;
    tracing::info!(
        config = %options.config.display(),
        api = %config.api_socket.display(),
        "edge-agent running"
    );
    let (requests, mut requests_rx) = mpsc::channel(16);
    tokio::spawn(api::serve(api_listener, requests));
    let (scrapes, mut scrapes_rx) = mpsc::channel::<oneshot::Sender<String>>(4);
    if let Some(listener) = metrics_listener {
        tokio::spawn(metrics::serve(listener, scrapes));
    }
    let mut node = Node {
        agent,
        config,
        drained: false,
        previous: None,
    };
    loop {
        tokio::select! {
            Some((request, reply)) = requests_rx.recv() => {
                let response = node.handle(request).await;
                let _ = reply.send(response);
            }
            Some(reply) = scrapes_rx.recv() => {
                let _ = reply.send(node.metrics());
            }
            _ = hup.recv() => node.reload(&options).await,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    // A second signal while shutting down: exit now.
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("edge-agent: second signal, exiting without cleaning up");
        std::process::exit(130);
    });
    if options.keep_state {
        tracing::info!("stopping for a restart: data plane, kernel state and upstream routes stay");
        node.agent.abandon().await;
    } else {
        tracing::info!(drain = ?options.shutdown_drain, "shutting down: draining upstream first");
        node.agent.drain(true);
        tokio::time::sleep(options.shutdown_drain).await;
        node.agent.stop().await;
    }
    tracing::info!("edge-agent stopped");
    Ok(())
}

struct Node {
    agent: Agent,
    config: DaemonConfig,
    drained: bool,
    previous: Option<(Instant, BTreeMap<String, u64>)>,
}

impl Node {
    fn services(&self) -> Vec<(String, u32)> {
        self.config
            .agent
            .control
            .services
            .iter()
            .map(|s| (s.name.clone(), s.id))
            .collect()
    }

    fn with_sources<T>(&self, f: impl FnOnce(&Sources<'_>) -> T) -> T {
        let overlay = self.agent.overlay.status().borrow().clone();
        let control = self.agent.control.status.borrow().clone();
        let health = self.agent.health.snapshot();
        let upstream = self
            .config
            .agent
            .upstream
            .iter()
            .zip(&self.agent.upstream)
            .map(|(n, s)| (n.peer.ip().to_string(), s.borrow().clone()))
            .collect();
        let internet_up = self.agent.netlink.status().borrow().internet_up;
        let services = self.services();
        f(&Sources {
            overlay: &overlay,
            control: &control,
            health: &health,
            upstream,
            drained: self.drained,
            internet_up,
            services: &services,
            previous: self.previous.as_ref(),
            dns: self.agent.dns.as_ref().map(status::DnsDoc::of),
            bfd_drops: [
                ("upstream", self.agent.bfd.as_ref().map(|b| b.drops())),
                ("overlay", self.agent.overlay.bfd_drops()),
            ]
            .into_iter()
            .filter_map(|(plane, drops)| Some((plane, drops?)))
            .collect(),
            upstream_bfd: self
                .agent
                .upstream_bfd
                .iter()
                .map(|b| b.as_ref().map(|b| b.borrow().clone()))
                .collect(),
        })
    }

    fn status(&mut self) -> StatusDoc {
        let doc = self.with_sources(status::build);
        let at = self
            .agent
            .control
            .status
            .borrow()
            .counters
            .as_ref()
            .map(|c| c.at);
        if let Some(at) = at {
            let values = doc
                .counters
                .iter()
                .map(|(k, c)| (k.clone(), c.value))
                .collect();
            self.previous = Some((at, values));
        }
        doc
    }

    fn metrics(&self) -> String {
        self.with_sources(metrics::encode_metrics)
    }

    async fn handle(&mut self, request: Request) -> Response {
        match request {
            Request::Status => Response {
                status: Some(Box::new(self.status())),
                ..Response::ok()
            },
            Request::Drain | Request::Undrain => {
                let on = request == Request::Drain;
                self.drained = on;
                self.agent.drain(on);
                tracing::info!(drained = on, "operator: node drain");
                Response::ok()
            }
            Request::Service { name, state } => {
                let admin = state.admin();
                match self.agent.set_admin(&name, admin) {
                    Ok(()) => {
                        tracing::info!(service = %name, %admin, "operator: service admin state");
                        Response::ok()
                    }
                    Err(e) => Response::error(e.to_string()),
                }
            }
            Request::Dns { action } => {
                let Some(dns) = &self.agent.dns else {
                    return Response::error(
                        "this node runs no DNS service: [dns] is not in its config",
                    );
                };
                match action {
                    DnsAction::Stop => {
                        tracing::info!("operator: DNS service stopped");
                        dns.stop_listening().await;
                        Response::ok()
                    }
                    DnsAction::Start => match dns.listen() {
                        Ok(()) => {
                            tracing::info!("operator: DNS service started");
                            Response::ok()
                        }
                        Err(e) => Response::error(e.to_string()),
                    },
                }
            }
        }
    }

    async fn reload(&mut self, options: &RunOptions) {
        let mut new = match crate::config::load(&options.config) {
            Ok(new) => new,
            Err(problems) => {
                tracing::error!(
                    "SIGHUP: the new config is rejected, the running one stays:\n{problems}"
                );
                return;
            }
        };
        options.apply(&mut new);
        let plan = reload::plan(&self.config, &new);
        for part in &plan.live {
            match part {
                LivePart::Trust => {
                    let trust = new.agent.overlay.trust.clone();
                    self.agent.overlay.reload(Some(trust.clone())).await;
                    self.config.agent.overlay.trust = trust;
                }
                LivePart::Dns => {
                    let (Some(server), Some(running), Some(config)) =
                        (&self.agent.dns, &mut self.config.agent.dns, &new.agent.dns)
                    else {
                        continue;
                    };
                    server.reload(
                        config.zones.clone(),
                        config.settings.clone(),
                        config.rate_limit,
                    );
                    for zone in config.zones.zones() {
                        tracing::info!("SIGHUP: DNS zone {zone}");
                    }
                    running.zones = config.zones.clone();
                    running.settings = config.settings.clone();
                    running.rate_limit = config.rate_limit;
                }
            }
        }
        if plan.restart.is_empty() {
            tracing::info!("SIGHUP: {plan}");
        } else {
            tracing::warn!("SIGHUP: {plan}");
        }
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
