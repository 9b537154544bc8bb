//! `cargo xtask`: developer and CI tasks for edge.
//!
//! Each subcommand says what it does in `cargo xtask help`. xtask itself
//! depends on nothing that needs the BPF toolchain, so `cargo xtask setup`
//! builds and runs on a machine that is not set up yet.

mod build;
mod cmd;
mod ebpf_build;
mod fuzz;
mod load;
mod setup;
mod test;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Developer and CI tasks for edge.
#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make this machine ready: nightly rust-src, bpf-linker, Debian packages;
    /// check root, bpf(), XDP and network namespaces. Idempotent.
    Setup,
    /// Build the XDP object (with BTF) into target/bpf/.
    BuildEbpf {
        /// Build the release profile.
        #[arg(long)]
        release: bool,
    },
    /// Build the XDP object, then the workspace (the agent embeds the object).
    Build {
        /// Build the release profile.
        #[arg(long)]
        release: bool,
    },
    /// Build and run edge-agent with the given arguments.
    Run {
        /// Build the release profile.
        #[arg(long)]
        release: bool,
        /// Arguments for edge-agent (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Attach the XDP program to IFACE and pin it, so bpftool can inspect it.
    Load {
        /// Interface to attach to.
        #[arg(long)]
        iface: String,
        /// auto, native or generic.
        #[arg(long, default_value = "auto")]
        mode: String,
        /// Network namespace (from `ip netns add`) that holds IFACE.
        #[arg(long)]
        netns: Option<String>,
        /// bpffs directory under which IFACE gets its pin directory.
        #[arg(long, default_value = edge_common::DEFAULT_PIN_ROOT)]
        pin_root: PathBuf,
    },
    /// Detach the XDP program from IFACE and remove its pins.
    Unload {
        /// Interface to detach from.
        #[arg(long)]
        iface: String,
        /// bpffs directory under which IFACE has its pin directory.
        #[arg(long, default_value = edge_common::DEFAULT_PIN_ROOT)]
        pin_root: PathBuf,
    },
    /// Set up, lint, build, then run the whole test suite (README's test command).
    Test,
    /// Run the fuzz targets of edge-agent/fuzz (or the one named) from their
    /// seeds and corpus; a finding fails with the input and how to replay it.
    /// xdp_frames needs root.
    Fuzz {
        /// One target (all when omitted): bgp_decode, bgp_roundtrip,
        /// bgp_session, overlay_import, dns_answer, srv_discovery, zone_text,
        /// config, bfd, xdp_frames.
        target: Option<String>,
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        time: u64,
        /// Targets run at once.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    },
    /// Run the benchmarks, or the one named (e.g. `dataplane`); needs root:
    /// they run the XDP program in the kernel.
    Bench {
        /// A benchmark of benches/benches/ (all when omitted).
        name: Option<String>,
    },
    /// Show the data plane at work on a veth pair in two fresh network
    /// namespaces: load, send traffic, dump the counters with bpftool, clean up.
    Demo,
    /// The lab: a whole anycast CDN in network namespaces (root):
    /// `up`, `status`, `demo [--keep]`, `down`.
    Lab {
        /// up, status, demo or down (and `--keep` for demo).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Setup => setup::run(),
        Command::BuildEbpf { release } => build::ebpf(release).map(|_| ()),
        Command::Build { release } => build::all(release),
        Command::Run { release, args } => build::run_agent(release, &args),
        Command::Load {
            iface,
            mode,
            netns,
            pin_root,
        } => load::load(&iface, &mode, netns.as_deref(), &pin_root),
        Command::Unload { iface, pin_root } => load::unload(&iface, &pin_root),
        Command::Test => test::run(),
        Command::Fuzz { target, time, jobs } => fuzz::run(target.as_deref(), time, jobs),
        Command::Bench { name } => test::bench(name.as_deref()),
        Command::Lab { args } => {
            cmd::run(&mut cmd::cargo(&[
                "build",
                "--quiet",
                "--package",
                "edge-agent",
                "--package",
                "edge-tests",
                "--bins",
            ]))?;
            let mut lab = std::process::Command::new(cmd::root().join("target/debug/edge-lab"));
            lab.args(&args);
            cmd::run(&mut lab)
        }
        Command::Demo => cmd::run(&mut cmd::cargo(&[
            "run",
            "--quiet",
            "--package",
            "edge-tests",
            "--bin",
            "edge-demo",
        ])),
    }
}
