//! `test` (the README's test command and what CI runs) and `bench`.

use std::process::Command;

use anyhow::{Result, bail};

use crate::{build, cmd, setup};

/// Setup, lint, build, then every test: unit tests, BPF_PROG_TEST_RUN tests
/// and network-namespace tests (the last two need root and fail, never
/// skip, when they cannot run).
pub fn run() -> Result<()> {
    setup::run()?;
    lint()?;
    build::all(false)?;
    cmd::run(&mut cmd::cargo(&["test", "--workspace", "--no-fail-fast"]))
}

/// `cargo fmt --check` and clippy with warnings denied, for the host
/// workspace and for the XDP program (with the nightly, for the BPF target).
fn lint() -> Result<()> {
    let root = cmd::root();
    cmd::run(&mut cmd::cargo(&["fmt", "--all", "--", "--check"]))?;
    // The eBPF crate is not a workspace member: check it through its root file.
    cmd::run(
        Command::new("rustfmt")
            .args(["--check", "--edition", "2024"])
            .arg(root.join("edge-ebpf/src/main.rs")),
    )?;
    cmd::run(&mut cmd::cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    let mut clippy = crate::ebpf_build::cargo_command(&root, &root.join("target/bpf"), "clippy", false);
    clippy.args(["--", "-D", "warnings"]);
    cmd::run(&mut clippy)
}

/// Runs the benchmarks; they run the XDP program in the kernel, so need root.
pub fn bench() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the benchmarks run the XDP program in the kernel (BPF_PROG_TEST_RUN): run as root");
    }
    cmd::run(&mut cmd::cargo(&["bench", "--package", "edge-benches"]))
}
