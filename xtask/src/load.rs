//! `load` and `unload`: thin wrappers over `edge-agent xdp attach|detach`.

use std::{path::Path, process::Command};

use anyhow::Result;
use edge_common::{PROGRAM_NAME, STATS_MAP};

use crate::{build, cmd};

/// Builds the agent and attaches + pins the program on `iface`.
pub fn load(iface: &str, mode: &str, netns: Option<&str>, pin_root: &Path) -> Result<()> {
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
            "--pin-root",
        ])
        .arg(pin_root);
    cmd::run(&mut attach)?;
    let pins = pin_root.join(iface);
    let pins = pins.display();
    eprintln!(
        "every map is pinned in {pins}/; inspect with:\n  bpftool map dump pinned {pins}/{STATS_MAP}\n  \
         bpftool map dump pinned {pins}/edge_services\n  bpftool prog show pinned {pins}/{PROGRAM_NAME}\n\
         remove with:\n  cargo xtask unload --iface {iface}"
    );
    Ok(())
}

/// Detaches the program from `iface` and removes the pins.
pub fn unload(iface: &str, pin_root: &Path) -> Result<()> {
    let agent = build::agent(false)?;
    cmd::run(
        Command::new(agent)
            .args(["xdp", "detach", "--iface", iface, "--pin-root"])
            .arg(pin_root),
    )
}
