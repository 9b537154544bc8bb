//! The daemon's commands: `run`, `check-config`, and the admin commands
//! that talk to a running daemon over its Unix socket (`status`, `drain`,
//! `undrain`, `service`, `dns`).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use clap::Args;
use edge_agent::{
    config,
    daemon::{
        api::{self, DnsAction, Request, ServiceState},
        run::{RunOptions, init_logging, run},
        status::render,
    },
};

/// `edge-agent run`.
#[derive(Args)]
pub struct RunArgs {
    /// The config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// On exit, leave the data plane attached, the kernel state and the
    /// upstream routes in place (for a restart).
    #[arg(long)]
    pub keep_state: bool,
    /// How long to drain upstream before withdrawing on shutdown.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub shutdown_drain: Duration,
}

/// Where the running daemon listens.
#[derive(Args)]
pub struct SocketArg {
    /// The admin socket (`daemon.api_socket` in the config).
    #[arg(long, default_value = config::DEFAULT_API_SOCKET)]
    pub socket: PathBuf,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 500ms, 5s or 1m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("`{s}` is not a duration like 500ms, 5s or 1m")),
    }
}

/// `edge-agent run`: validate the config, then run until a signal.
pub fn run_daemon(args: RunArgs) -> Result<()> {
    let config = config::load(&args.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    init_logging(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run(
        RunOptions {
            config: args.config,
            keep_state: args.keep_state,
            shutdown_drain: args.shutdown_drain,
        },
        config,
    ))
}

/// `edge-agent check-config FILE`: every problem, with its key.
pub fn check_config(file: PathBuf) -> Result<String> {
    match config::load(&file) {
        Ok(config) => Ok(format!(
            "{}: ok ({} services, {} upstream neighbours, {} overlay peers)\n",
            file.display(),
            config.agent.control.services.len(),
            config.agent.upstream.len(),
            config.agent.overlay.static_peers.len()
        )),
        Err(problems) => bail!("{problems}"),
    }
}

/// Sends `request` to the daemon; fails with its error.
fn call(socket: &Path, request: Request) -> Result<api::Response> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let response = runtime.block_on(api::call(socket, &request))?;
    if !response.ok {
        bail!(
            "the agent refused: {}",
            response.error.unwrap_or_else(|| "no reason given".into())
        );
    }
    Ok(response)
}

/// `edge-agent status [--json]`.
pub fn status(socket: SocketArg, json: bool) -> Result<String> {
    let response = call(&socket.socket, Request::Status)?;
    let doc = response.status.context("the agent sent no status")?;
    if json {
        Ok(serde_json::to_string_pretty(&doc)? + "\n")
    } else {
        Ok(render(&doc))
    }
}

/// `edge-agent drain` / `undrain`.
pub fn drain(socket: SocketArg, on: bool) -> Result<String> {
    call(
        &socket.socket,
        if on { Request::Drain } else { Request::Undrain },
    )?;
    Ok(if on {
        "node drained: the upstream announcement drains, then is withdrawn\n".into()
    } else {
        "drain ended: the node is announced again while it is fit\n".into()
    })
}

/// `edge-agent service NAME up|down|drain|auto`.
pub fn service(socket: SocketArg, name: String, state: ServiceState) -> Result<String> {
    call(
        &socket.socket,
        Request::Service {
            name: name.clone(),
            state,
        },
    )?;
    Ok(format!("service {name}: {state}\n"))
}

/// `edge-agent dns stop|start`.
pub fn dns(socket: SocketArg, action: DnsAction) -> Result<String> {
    call(&socket.socket, Request::Dns { action })?;
    Ok(match action {
        DnsAction::Stop => {
            "DNS service stopped: its probes fail, and DNS is forwarded to a peer that serves it\n"
                .into()
        }
        DnsAction::Start => "DNS service listening again\n".into(),
    })
}
