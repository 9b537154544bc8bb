//! `edge-agent`: the edge daemon's command line.
//!
//! `edge-agent run --config FILE` is the daemon; `check-config` validates a
//! config; `status`, `drain`, `undrain` and `service` talk to a running
//! daemon; `xdp` manages the data plane by hand; `pki` makes lab
//! certificates.

use std::{io::Write, path::PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use edge_agent::{
    daemon::api::{DnsAction, ServiceState},
    dataplane::{self, AttachMode, Dataplane, LoadOptions, interface_pin_dir},
};
use edge_common::{DEFAULT_PIN_ROOT, stats::Counter};

mod daemon_cli;
mod pki_cli;

/// The edge agent: anycast CDN edge node.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Run inside network namespace NAME (from `ip netns add`). Unlike `ip
    /// netns exec`, this switches only the network namespace, so pins land
    /// in the host's bpffs and outlive this process.
    #[arg(long, global = true, value_name = "NAME")]
    netns: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run(daemon_cli::RunArgs),
    /// Check a config file: every problem, with its key and a hint.
    CheckConfig {
        /// The config file.
        file: PathBuf,
    },
    /// Show the running daemon's state: fitness, upstream sessions,
    /// overlay adjacencies, services, counters.
    Status {
        /// As JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: daemon_cli::SocketArg,
    },
    /// Drain the node: the upstream announcement drains, then is withdrawn.
    Drain {
        #[command(flatten)]
        socket: daemon_cli::SocketArg,
    },
    /// End the node's drain.
    Undrain {
        #[command(flatten)]
        socket: daemon_cli::SocketArg,
    },
    /// Set a service's admin state: up (= auto: follow its probes), down,
    /// drain.
    Service {
        /// The service.
        name: String,
        /// The admin state.
        #[arg(value_enum)]
        state: ServiceState,
        #[command(flatten)]
        socket: daemon_cli::SocketArg,
    },
    /// Stop or start the DNS service's listeners (`stop`: its probes fail
    /// and the node forwards DNS to a peer, as when the service fails).
    Dns {
        /// Stop or start.
        #[arg(value_enum)]
        action: DnsAction,
        #[command(flatten)]
        socket: daemon_cli::SocketArg,
    },
    /// Manage the XDP data plane directly.
    #[command(subcommand)]
    Xdp(XdpCommand),
    /// Lab PKI: make a CA and node certificates, revoke certificates (for
    /// the lab and tests; production nodes use the enterprise CA).
    #[command(subcommand)]
    Pki(pki_cli::PkiCommand),
}

#[derive(Subcommand)]
enum XdpCommand {
    /// Load the embedded XDP program, attach it to IFACE and pin program,
    /// link and maps so it keeps running after this command exits. If edge
    /// is already attached there, the program is replaced atomically.
    Attach {
        /// The Internet-facing interface.
        #[arg(long)]
        iface: String,
        /// auto (native, else generic), native or generic.
        #[arg(long, default_value = "auto")]
        mode: AttachMode,
        /// bpffs directory under which each interface gets its pin directory.
        #[arg(long, default_value = DEFAULT_PIN_ROOT)]
        pin_root: PathBuf,
    },
    /// Detach edge from IFACE and remove its program and map pins.
    Detach {
        /// The interface to detach from.
        #[arg(long)]
        iface: String,
        /// bpffs directory under which each interface has its pin directory.
        #[arg(long, default_value = DEFAULT_PIN_ROOT)]
        pin_root: PathBuf,
    },
    /// Print IFACE's data-plane counters (summed over CPUs) from the pinned map.
    Stats {
        /// The interface.
        #[arg(long)]
        iface: String,
        /// bpffs directory under which each interface has its pin directory.
        #[arg(long, default_value = DEFAULT_PIN_ROOT)]
        pin_root: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(name) = &cli.netns {
        edge_agent::netns::enter(name)?;
    }
    match cli.command {
        // The daemon sets up logging as its config says.
        Command::Run(args) => daemon_cli::run_daemon(args),
        Command::CheckConfig { file } => print(&daemon_cli::check_config(file)?),
        Command::Status { json, socket } => print(&daemon_cli::status(socket, json)?),
        Command::Drain { socket } => print(&daemon_cli::drain(socket, true)?),
        Command::Undrain { socket } => print(&daemon_cli::drain(socket, false)?),
        Command::Service {
            name,
            state,
            socket,
        } => print(&daemon_cli::service(socket, name, state)?),
        Command::Dns { action, socket } => print(&daemon_cli::dns(socket, action)?),
        Command::Xdp(command) => {
            log_to_stderr();
            xdp(command)
        }
        Command::Pki(command) => {
            log_to_stderr();
            print(&pki_cli::run(command)?)
        }
    }
}

/// Logs to stderr for the commands that manage things by hand.
fn log_to_stderr() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

/// `edge-agent xdp …`.
fn xdp(command: XdpCommand) -> Result<()> {
    match command {
        XdpCommand::Attach {
            iface,
            mode,
            pin_root,
        } => {
            // Checked before anything touches the kernel.
            dataplane::ifindex(&iface)?;
            let pin_dir = interface_pin_dir(&pin_root, &iface);
            let mut dp = Dataplane::load(&LoadOptions::pinned(&pin_dir))
                .context("loading the data plane")?;
            let attachment = dp.attach_pinned(&iface, mode)?;
            match attachment.mode {
                Some(mode) => println!(
                    "attached edge_xdp to {iface} (ifindex {}) in {mode} mode; pinned under {}",
                    attachment.ifindex,
                    pin_dir.display()
                ),
                None => println!(
                    "replaced the program in edge's existing attachment on {iface} (its mode is kept; \
                     detach first to change it); pinned under {}",
                    pin_dir.display()
                ),
            }
        }
        XdpCommand::Detach { iface, pin_root } => {
            dataplane::detach_pinned(&interface_pin_dir(&pin_root, &iface))
                .with_context(|| format!("detaching from {iface}"))?;
            println!("detached edge from {iface}");
        }
        XdpCommand::Stats { iface, pin_root } => {
            let pin_dir = interface_pin_dir(&pin_root, &iface);
            let stats = dataplane::read_pinned_stats(&pin_dir).with_context(|| {
                format!(
                    "is edge attached to {iface}? (looked in {})",
                    pin_dir.display()
                )
            })?;
            let table: String = Counter::ALL
                .iter()
                .map(|c| format!("{:<20} {}\n", c.name(), stats.get(*c)))
                .collect();
            print(&table)?;
        }
    }
    Ok(())
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error.
fn print(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

#[cfg(test)]
#[path = "main_tests.rs"]
mod tests;
