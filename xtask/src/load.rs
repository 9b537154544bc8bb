//! `load` and `unload`: thin wrappers over `edge-agent xdp attach|detach`.

use std::{path::Path, process::Command};

use anyhow::Result;

use crate::{build, cmd};

/// Builds the agent and attaches + pins the program on `iface`.
pub fn load(iface: &str, mode: &str, netns: Option<&str>, pin_dir: &Path) -> Result<()> {
    let agent = build::agent(false)?;
    let mut attach = Command::new(agent);
    if let Some(ns) = netns {
        attach.args(["--netns", ns]);
    }
    attach
        .args([
            "xdp",
            "attach",
            "--iface",
            iface,
            "--mode",
            mode,
            "--pin-dir",
        ])
        .arg(pin_dir);
    cmd::run(&mut attach)?;
    eprintln!(
        "inspect with:\n  bpftool map dump pinned {}/edge_stats\n  bpftool prog show pinned {}/edge_xdp\n\
         remove with:\n  cargo xtask unload --iface {iface}",
        pin_dir.display(),
        pin_dir.display()
    );
    Ok(())
}

/// Detaches the program from `iface` and removes the pins.
pub fn unload(iface: &str, pin_dir: &Path) -> Result<()> {
    let agent = build::agent(false)?;
    cmd::run(
        Command::new(agent)
            .args(["xdp", "detach", "--iface", iface, "--pin-dir"])
            .arg(pin_dir),
    )
}
