//! The one command that builds the XDP object. Shared, by `#[path]`, between
//! `cargo xtask build-ebpf` and `edge-agent/build.rs`, so both build the same
//! object into the same place (`target/bpf/`) and share one incremental build.
//!
//! `edge-ebpf/.cargo/config.toml` selects the target (bpfel-unknown-none),
//! `-Z build-std=core` and the BTF flags; `edge-ebpf/rust-toolchain.toml` asks
//! for nightly with rust-src; linking needs `bpf-linker` on PATH.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The toolchain that builds the object.
pub const TOOLCHAIN: &str = "nightly";

/// `cargo build` of `edge-ebpf` (under `root`) into `target_dir`.
pub fn build_command(root: &Path, target_dir: &Path, release: bool) -> Command {
    cargo_command(root, target_dir, "build", release)
}

/// `cargo <subcommand>` (build, clippy) of `edge-ebpf` with the BPF
/// toolchain and target, and none of the host build's environment.
pub fn cargo_command(root: &Path, target_dir: &Path, subcommand: &str, release: bool) -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", TOOLCHAIN, "cargo", subcommand, "--target-dir"])
        .arg(target_dir)
        .current_dir(root.join("edge-ebpf"));
    if release {
        cmd.arg("--release");
    }
    clean_cargo_env(&mut cmd);
    cmd
}

/// Removes from `cmd`'s environment whatever cargo passes to its children
/// (its toolchain, flags, and wrappers such as clippy's): it describes the
/// host build, not a nested one with another toolchain.
pub fn clean_cargo_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let inherited = (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || matches!(
                &*key,
                "CARGO" | "RUSTFLAGS" | "RUSTDOCFLAGS" | "RUSTUP_TOOLCHAIN"
            );
        if inherited {
            cmd.env_remove(&*key);
        }
    }
}

/// Where [`build_command`] leaves the object.
pub fn object_path(target_dir: &Path, release: bool) -> PathBuf {
    target_dir
        .join("bpfel-unknown-none")
        .join(if release { "release" } else { "debug" })
        .join("edge-ebpf")
}
