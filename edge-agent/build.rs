//! Builds the XDP object (`edge-ebpf`) and hands its path to the agent,
//! which embeds it with `include_bytes!`.
//!
//! The object is built by the same command as `cargo xtask build-ebpf`
//! (`xtask/src/ebpf_build.rs`) into `target/bpf/`, so both share one
//! incremental build. Cargo reruns this script whenever the eBPF or the
//! shared sources change, and the nested cargo decides what to rebuild, so
//! the embedded object is never stale. If the toolchain is missing the build
//! fails and says what to run; it never embeds an old or missing object.

use std::{
    env,
    path::{Path, PathBuf},
};

#[path = "../xtask/src/ebpf_build.rs"]
mod ebpf_build;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("edge-agent lives in the workspace root");
    for watched in [
        "edge-ebpf/src",
        "edge-ebpf/Cargo.toml",
        "edge-ebpf/Cargo.lock",
        "edge-ebpf/.cargo/config.toml",
        "edge-ebpf/rust-toolchain.toml",
        "edge-common/src",
        "edge-common/Cargo.toml",
        "xtask/src/ebpf_build.rs",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=EDGE_EBPF_OBJECT");

    // An operator may supply a prebuilt object (for example one built on
    // another machine); it is then embedded as is.
    if let Some(object) = env::var_os("EDGE_EBPF_OBJECT") {
        let object = PathBuf::from(object);
        if !object.is_file() {
            fail(
                &format!("EDGE_EBPF_OBJECT={} is not a file", object.display()),
                "",
            );
        }
        println!("cargo:rerun-if-changed={}", object.display());
        println!("cargo:rustc-env=EDGE_EBPF_OBJECT={}", object.display());
        return;
    }

    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("bpf");
    let release = env::var("PROFILE").as_deref() == Ok("release");
    let object = build_object(root, &target_dir, release);
    // No rerun-if-changed on the object itself: the nested build writes it
    // during this run, and `include_bytes!` already makes rustc rebuild the
    // agent whenever its contents change.
    println!("cargo:rustc-env=EDGE_EBPF_OBJECT={}", object.display());
}

/// Runs the nested `cargo build` for the BPF target and returns the object path.
fn build_object(root: &Path, target_dir: &Path, release: bool) -> PathBuf {
    let mut cmd = ebpf_build::build_command(root, target_dir, release);
    cmd.arg("--quiet");
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) => fail(
            &format!("cannot run `rustup` to build the XDP object: {e}"),
            "",
        ),
    };
    if !output.status.success() {
        fail(
            "building the XDP object (edge-ebpf) failed",
            &String::from_utf8_lossy(&output.stderr),
        );
    }
    let object = ebpf_build::object_path(target_dir, release);
    if !object.is_file() {
        fail(
            &format!(
                "the XDP build succeeded but {} is missing",
                object.display()
            ),
            "",
        );
    }
    object
}

fn fail(what: &str, detail: &str) -> ! {
    eprintln!("error: {what}");
    if !detail.is_empty() {
        eprintln!("{detail}");
    }
    eprintln!(
        "hint: run `cargo xtask setup` (nightly rust-src and bpf-linker), then \
         `cargo xtask build`; or set EDGE_EBPF_OBJECT to a prebuilt object"
    );
    std::process::exit(1);
}
