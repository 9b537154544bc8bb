//! `fuzz`: the coverage-guided fuzz targets of `edge-agent/fuzz`
//! (cargo-fuzz, libFuzzer), built with the nightly and run from their
//! committed seeds and the corpus they grew on this machine; and the short
//! run of every target that `cargo xtask test` makes, so that CI keeps
//! them building and clean.
//!
//! Each target runs as its own process with its log in
//! `target/fuzz-logs/TARGET.log`, its corpus in `target/fuzz-corpus/TARGET`
//! and what it finds in `target/fuzz-artifacts/TARGET/`. A finding fails
//! the command with the input's path and the command that replays it.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{build, cmd, ebpf_build};

/// Every target, with its dictionary (`edge-agent/fuzz/dict/NAME.dict`)
/// and the longest input worth trying.
pub const TARGETS: &[(&str, Option<&str>, usize)] = &[
    ("bgp_decode", Some("bgp"), 4200),
    ("bgp_roundtrip", Some("bgp"), 4200),
    ("bgp_session", Some("bgp"), 8192),
    ("overlay_import", Some("bgp"), 8192),
    ("dns_answer", Some("dns"), 1500),
    ("srv_discovery", Some("dns"), 4096),
    ("zone_text", Some("zone"), 4096),
    ("config", Some("config"), 8192),
    ("bfd", None, 2048),
    ("xdp_frames", None, 256),
];

/// Seconds each target runs in `cargo xtask test`.
pub const SMOKE_SECONDS: u64 = 20;

/// What one target did.
struct Outcome {
    target: &'static str,
    executions: u64,
    seconds: f64,
    coverage: String,
    corpus: usize,
}

fn fuzz_dir() -> PathBuf {
    cmd::root().join("edge-agent/fuzz")
}

fn target_dir() -> PathBuf {
    cmd::root().join("target/fuzz")
}

/// Builds every target: instrumented for coverage, with debug assertions
/// (integer overflow is a finding), without a sanitizer (the code under
/// test is safe Rust; a sanitizer would halve the executions).
fn build_targets() -> Result<PathBuf> {
    // The agent embeds the XDP object: build it with the host toolchain's
    // flags, not the fuzzer's, and hand it over ready.
    let object = build::ebpf(false)?;
    let mut fuzz = Command::new("rustup");
    fuzz.args(["run", ebpf_build::TOOLCHAIN, "cargo", "fuzz", "build"])
        .args(["--sanitizer", "none", "--debug-assertions", "--target-dir"])
        .arg(target_dir())
        .current_dir(fuzz_dir())
        .env("EDGE_EBPF_OBJECT", &object);
    ebpf_build::clean_cargo_env(&mut fuzz);
    cmd::run(&mut fuzz).map_err(|e| {
        e.context("building the fuzz targets failed; `cargo xtask setup` installs cargo-fuzz")
    })?;
    Ok(target_dir().join("x86_64-unknown-linux-gnu/release"))
}

/// Runs `only` (or every target) for `seconds` each, `jobs` at a time,
/// then prints one line per target: executions, time, coverage, corpus.
pub fn run(only: Option<&str>, seconds: u64, jobs: usize) -> Result<()> {
    let targets: Vec<_> = TARGETS
        .iter()
        .filter(|(name, _, _)| only.is_none_or(|o| o == *name))
        .collect();
    if targets.is_empty() {
        let names: Vec<&str> = TARGETS.iter().map(|t| t.0).collect();
        bail!(
            "no fuzz target `{}`: the targets are {}",
            only.unwrap_or_default(),
            names.join(", ")
        );
    }
    if targets.iter().any(|t| t.0 == "xdp_frames") {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!("xdp_frames runs the XDP program in the kernel (BPF_PROG_TEST_RUN): run as root");
        }
    }
    let bin = build_targets()?;
    let root = cmd::root();
    for dir in [
        "target/fuzz-logs",
        "target/fuzz-corpus",
        "target/fuzz-artifacts",
    ] {
        fs::create_dir_all(root.join(dir))?;
    }
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    let mut running: Vec<(&'static str, Child, Instant)> = Vec::new();
    let mut queue = targets.into_iter();
    loop {
        while running.len() < jobs.max(1) {
            let Some(&(name, dict, max_len)) = queue.next() else {
                break;
            };
            eprintln!("fuzz: {name} for {seconds} s");
            running.push((
                name,
                spawn(&bin, name, dict, max_len, seconds)?,
                Instant::now(),
            ));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut i = 0;
        while i < running.len() {
            let Some(status) = running[i].1.try_wait()? else {
                i += 1;
                continue;
            };
            let (name, _, started) = running.remove(i);
            let log = fs::read_to_string(log_path(name)).unwrap_or_default();
            if !status.success() {
                failures.push(failure(&bin, name, &log, &status.to_string()));
                continue;
            }
            let outcome = summary(name, &log, started.elapsed().as_secs_f64());
            if outcome.executions == 0 {
                failures.push(format!(
                    "{name}: ran no input; see {}",
                    log_path(name).display()
                ));
            }
            outcomes.push(outcome);
        }
    }
    println!(
        "\n{:<16} {:>12} {:>8} {:>22} {:>7}",
        "target", "executions", "time", "coverage", "corpus"
    );
    for o in &outcomes {
        println!(
            "{:<16} {:>12} {:>7.0}s {:>22} {:>7}",
            o.target, o.executions, o.seconds, o.coverage, o.corpus
        );
    }
    if !failures.is_empty() {
        bail!("fuzzing found problems:\n{}", failures.join("\n"));
    }
    Ok(())
}

fn log_path(target: &str) -> PathBuf {
    cmd::root().join(format!("target/fuzz-logs/{target}.log"))
}

fn corpus_path(target: &str) -> PathBuf {
    cmd::root().join(format!("target/fuzz-corpus/{target}"))
}

fn artifacts_path(target: &str) -> PathBuf {
    cmd::root().join(format!("target/fuzz-artifacts/{target}"))
}

/// Starts libFuzzer on `target`: new inputs go to its corpus, the seeds
/// are read too; a run over 10 s or 2 GiB is a finding (a hang, a leak).
fn spawn(
    bin: &Path,
    target: &str,
    dict: Option<&str>,
    max_len: usize,
    seconds: u64,
) -> Result<Child> {
    let corpus = corpus_path(target);
    let artifacts = artifacts_path(target);
    fs::create_dir_all(&corpus)?;
    fs::create_dir_all(&artifacts)?;
    let mut command = Command::new(bin.join(target));
    command
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-max_len={max_len}"))
        .args(["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"])
        .arg(format!("-artifact_prefix={}/", artifacts.display()));
    if let Some(dict) = dict {
        command.arg(format!(
            "-dict={}",
            fuzz_dir().join(format!("dict/{dict}.dict")).display()
        ));
    }
    command
        .arg(&corpus)
        .arg(fuzz_dir().join("seeds").join(target))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(log_path(target))?);
    command
        .spawn()
        .with_context(|| format!("cannot start the fuzz target {target}"))
}

/// Executions, coverage and corpus from libFuzzer's log.
fn summary(target: &'static str, log: &str, seconds: f64) -> Outcome {
    let stat = |key: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let last = log
        .lines()
        .rev()
        .find(|l| l.contains(" cov: "))
        .unwrap_or_default();
    let field = |name: &str| {
        last.split_whitespace()
            .skip_while(|w| *w != name)
            .nth(1)
            .unwrap_or("?")
            .to_owned()
    };
    Outcome {
        target,
        executions: stat("stat::number_of_executed_units:").unwrap_or(0),
        seconds,
        coverage: format!("cov {} ft {}", field("cov:"), field("ft:")),
        corpus: fs::read_dir(corpus_path(target))
            .map(|d| d.count())
            .unwrap_or(0),
    }
}

/// What a failed target says: the end of its log, the input, and how to
/// replay it.
fn failure(bin: &Path, target: &str, log: &str, status: &str) -> String {
    let artifact = log
        .lines()
        .find_map(|l| l.split("Test unit written to ").nth(1))
        .map(str::trim);
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    let mut text = format!("{target}: {status}\n    {}", tail.join("\n    "));
    if let Some(artifact) = artifact {
        text.push_str(&format!(
            "\n  the input: {artifact}\n  replay it: {} {artifact}",
            bin.join(target).display()
        ));
    }
    text
}
