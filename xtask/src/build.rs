//! `build-ebpf`, `build` and `run`.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::{cmd, ebpf_build};

/// Builds the XDP object and returns its path.
pub fn ebpf(release: bool) -> Result<PathBuf> {
    let root = cmd::root();
    let target_dir = root.join("target").join("bpf");
    cmd::run(&mut ebpf_build::build_command(&root, &target_dir, release)).map_err(|e| {
        e.context("building the XDP object failed; `cargo xtask setup` installs what it needs")
    })?;
    let object = ebpf_build::object_path(&target_dir, release);
    if !object.is_file() {
        bail!("the build succeeded but {} is missing", object.display());
    }
    eprintln!("XDP object: {}", object.display());
    Ok(object)
}

/// Builds the object, then the whole workspace.
pub fn all(release: bool) -> Result<()> {
    ebpf(release)?;
    let mut args = vec!["build", "--workspace", "--all-targets"];
    if release {
        args.push("--release");
    }
    cmd::run(&mut cmd::cargo(&args))
}

/// Path of the agent binary for a profile.
pub fn agent_binary(release: bool) -> PathBuf {
    cmd::root()
        .join("target")
        .join(if release { "release" } else { "debug" })
        .join("edge-agent")
}

/// Builds edge-agent (and with it the object) and returns the binary path.
pub fn agent(release: bool) -> Result<PathBuf> {
    let mut args = vec!["build", "--package", "edge-agent"];
    if release {
        args.push("--release");
    }
    cmd::run(&mut cmd::cargo(&args))?;
    Ok(agent_binary(release))
}

/// Builds and runs edge-agent with `args`.
pub fn run_agent(release: bool, args: &[String]) -> Result<()> {
    let binary = agent(release)?;
    cmd::run(std::process::Command::new(binary).args(args))
}
