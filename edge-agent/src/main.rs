//! `edge-agent`: the edge daemon's command line.
//!
//! For now it manages the XDP data plane by hand (attach and pin it, detach
//! it, print its counters) and makes lab certificates for the overlay
//! (`edge-agent pki`). The daemon (`edge-agent run`) arrives with the
//! control and daemon issues.

use std::{io::Write, path::PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use edge_agent::dataplane::{self, AttachMode, Dataplane, LoadOptions, interface_pin_dir};
use edge_common::{DEFAULT_PIN_ROOT, stats::Counter};

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
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    if let Some(name) = &cli.netns {
        edge_agent::netns::enter(name)?;
    }
    match cli.command {
        Command::Xdp(XdpCommand::Attach {
            iface,
            mode,
            pin_root,
        }) => {
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
        Command::Xdp(XdpCommand::Detach { iface, pin_root }) => {
            dataplane::detach_pinned(&interface_pin_dir(&pin_root, &iface))
                .with_context(|| format!("detaching from {iface}"))?;
            println!("detached edge from {iface}");
        }
        Command::Xdp(XdpCommand::Stats { iface, pin_root }) => {
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
        Command::Pki(command) => print(&pki_cli::run(command)?)?,
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
