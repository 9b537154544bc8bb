//! `test` (the README's test command and what CI runs) and `bench`.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};

use crate::{build, cmd, fuzz, setup};

/// Setup, lint, build, every fuzz target for a short while, then every
/// test: unit tests, BPF_PROG_TEST_RUN tests and network-namespace tests
/// (the last two need root and fail, never skip, when they cannot run).
/// Ends with one `N passed, N failed` line summed over all test binaries.
pub fn run() -> Result<()> {
    setup::run()?;
    lint()?;
    build::all(false)?;
    fuzz::run(None, fuzz::SMOKE_SECONDS, 2)?;
    let mut test = cmd::cargo(&["test", "--workspace", "--no-fail-fast"]);
    eprintln!("+ {}", cmd::describe(&test));
    let mut child = test
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start cargo test")?;
    let mut totals = Totals::default();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        totals.add(&line);
    }
    let status = child.wait()?;
    println!(
        "\nsummary: {} passed, {} failed",
        totals.passed, totals.failed
    );
    if !status.success() || totals.failed > 0 {
        bail!("the test suite failed ({status})");
    }
    if totals.passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

/// Counts summed from libtest's `test result:` lines.
#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
}

impl Totals {
    /// Adds `test result: ok. 3 passed; 1 failed; ...` to the totals.
    fn add(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(kind), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match kind {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                _ => {}
            }
        }
    }
}

/// `cargo fmt --check` and clippy with warnings denied, for the host
/// workspace, the XDP program (with the nightly, for the BPF target) and
/// the fuzz crate (with the nightly).
fn lint() -> Result<()> {
    let root = cmd::root();
    cmd::run(&mut cmd::cargo(&["fmt", "--all", "--", "--check"]))?;
    // The eBPF crate is not a workspace member: check it through its root file.
    cmd::run(
        Command::new("rustfmt")
            .args(["--check", "--edition", "2024"])
            .arg(root.join("edge-ebpf/src/main.rs")),
    )?;
    // Nor is the fuzz crate: its library root, targets and seed writer.
    let fuzz = root.join("edge-agent/fuzz");
    let mut fuzz_files = vec![fuzz.join("src/lib.rs"), fuzz.join("examples/seeds.rs")];
    for entry in std::fs::read_dir(fuzz.join("fuzz_targets")).context("listing fuzz targets")? {
        fuzz_files.push(entry?.path());
    }
    cmd::run(
        Command::new("rustfmt")
            .args(["--check", "--edition", "2024"])
            .args(&fuzz_files),
    )?;
    cmd::run(&mut cmd::cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let mut clippy =
        crate::ebpf_build::cargo_command(&root, &root.join("target/bpf"), "clippy", false);
    clippy.args(["--", "-D", "warnings"]);
    cmd::run(&mut clippy)?;
    // The fuzz crate, with the nightly; the agent it builds on embeds the
    // XDP object, which is built first.
    let object = build::ebpf(false)?;
    let mut clippy = Command::new("rustup");
    clippy
        .args(["run", crate::ebpf_build::TOOLCHAIN, "cargo", "clippy"])
        .args(["--all-targets", "--target-dir"])
        .arg(root.join("target/fuzz-clippy"))
        .args(["--", "-D", "warnings"])
        .current_dir(&fuzz)
        .env("EDGE_EBPF_OBJECT", object);
    crate::ebpf_build::clean_cargo_env(&mut clippy);
    cmd::run(&mut clippy)
}

/// Runs the benchmarks (or the one named); they run the XDP program in the
/// kernel, so need root.
pub fn bench(name: Option<&str>) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the benchmarks run the XDP program in the kernel (BPF_PROG_TEST_RUN): run as root");
    }
    // The tools the benchmarks run, built with the benchmarks' profile.
    cmd::run(&mut cmd::cargo(&[
        "build",
        "--release",
        "--package",
        "edge-tests",
        "--bin",
        "edge-flood",
    ]))?;
    let mut args = vec!["bench", "--package", "edge-benches"];
    if let Some(name) = name {
        args.extend(["--bench", name]);
    }
    cmd::run(&mut cmd::cargo(&args))
}

#[cfg(test)]
mod tests {
    use super::Totals;

    #[test]
    fn sums_libtest_result_lines() {
        let mut t = Totals::default();
        t.add("test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s");
        t.add("test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out");
        t.add("test something ... ok");
        assert_eq!((t.passed, t.failed), (5, 1));
    }
}
