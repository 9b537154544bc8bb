//! `cargo xtask setup`: make a fresh machine ready to build and test edge,
//! and say plainly what is missing when it cannot.
//!
//! Idempotent: every step checks first and only acts when something is
//! missing. Installs: rust-src for the nightly toolchain, bpf-linker (built
//! against the nightly's own libLLVM), cargo-fuzz, and the Debian packages
//! the tests use.
//! Checks: root, bpffs, the bpf() syscall, XDP programs, network namespaces
//! with veth.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{cmd, ebpf_build::TOOLCHAIN};

/// Debian packages the build and tests need, with a file each one installs.
const PACKAGES: &[(&str, &str)] = &[
    ("iproute2", "/usr/sbin/ip"),
    ("bpftool", "/usr/sbin/bpftool"),
    ("bird2", "/usr/sbin/bird"),
    ("gobgpd", "/usr/bin/gobgpd"),
    ("frr", "/usr/lib/frr/bgpd"),
    ("ethtool", "/usr/sbin/ethtool"),
    // A TLS client independent of ours, for the overlay control endpoint tests.
    ("openssl", "/usr/bin/openssl"),
    // The load generator of the DNS benchmark (`cargo xtask bench dns`).
    ("dnsperf", "/usr/bin/dnsperf"),
    // The reference authoritative server the DNS benchmark compares with.
    ("nsd", "/usr/sbin/nsd"),
    // dig: an independent DNS client for the DNS tests.
    ("bind9-dnsutils", "/usr/bin/dig"),
    // Silent failures in the BFD tests: drop everything, as a hung box would.
    ("nftables", "/usr/sbin/nft"),
];

/// The bpf-linker release this project is built and tested with.
const BPF_LINKER_VERSION: &str = "0.13.0";

/// Runs every step, then reports all problems at once.
pub fn run() -> Result<()> {
    let mut problems = Vec::new();
    let mut step = |name: &str, result: Result<String>| match result {
        Ok(done) => eprintln!("ok      {name}: {done}"),
        Err(e) => {
            eprintln!("MISSING {name}: {e:#}");
            problems.push(format!("{name}: {e:#}"));
        }
    };
    let root = is_root();
    step(
        "root",
        if root {
            Ok("running as root".into())
        } else {
            Err(anyhow::anyhow!(
                "not root: setup installs packages and the tests need bpf() and network namespaces; run it with sudo"
            ))
        },
    );
    if root {
        step("debian packages", debian_packages());
    }
    step("nightly rust-src", nightly_rust_src());
    step("bpf-linker", bpf_linker());
    step("cargo-fuzz", cargo_fuzz());
    if root {
        step("bpffs", bpffs());
        step("bpf() syscall", kernel::bpf_syscall());
        step("XDP programs", kernel::xdp_program());
        step("network namespaces and veth", netns_veth());
    }
    if problems.is_empty() {
        eprintln!("setup: this machine is ready");
        Ok(())
    } else {
        bail!(
            "setup could not make this machine ready:\n  - {}",
            problems.join("\n  - ")
        )
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Installs the Debian packages that are missing (and only those).
fn debian_packages() -> Result<String> {
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(format!(
            "{} present",
            PACKAGES
                .iter()
                .map(|(p, _)| *p)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !Path::new("/usr/bin/apt-get").exists() {
        bail!(
            "missing {} and this is not a Debian-like system (no apt-get): install them by hand",
            missing.join(", ")
        );
    }
    let wanted = missing.join(", ");
    cmd::run(Command::new("apt-get").args(["update", "-q"]))
        .with_context(|| format!("{wanted} missing, and `apt-get update` failed"))?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    let result = cmd::run(&mut install);
    let still = missing_packages();
    if !still.is_empty() {
        let why = result.err().map(|e| format!(": {e:#}")).unwrap_or_default();
        bail!(
            "{} still missing after `apt-get install`{why}",
            still.join(", ")
        );
    }
    Ok(format!("installed {}", missing.join(", ")))
}

/// The packages of [`PACKAGES`] whose marker file is absent.
fn missing_packages() -> Vec<&'static str> {
    PACKAGES
        .iter()
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(p, _)| *p)
        .collect()
}

/// rust-src for the nightly toolchain that builds the BPF object.
fn nightly_rust_src() -> Result<String> {
    let toolchains = cmd::output(Command::new("rustup").args(["toolchain", "list"]))
        .context("rustup is not available: install Rust with rustup")?;
    if !toolchains.lines().any(|l| l.starts_with(TOOLCHAIN)) {
        cmd::run(Command::new("rustup").args([
            "toolchain",
            "install",
            TOOLCHAIN,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))
        .context("no nightly toolchain, and installing one failed")?;
        return Ok("installed nightly with rust-src".into());
    }
    let installed = cmd::output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        TOOLCHAIN,
    ]))
    .unwrap_or_default();
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        return Ok("present".into());
    }
    cmd::run(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        TOOLCHAIN,
    ]))
    .context("adding rust-src to the nightly toolchain failed")?;
    Ok("installed".into())
}

/// The cargo-fuzz release the fuzz targets are built with.
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// cargo-fuzz (builds the fuzz targets of `edge-agent/fuzz` with
/// libFuzzer and coverage instrumentation, with the nightly).
fn cargo_fuzz() -> Result<String> {
    if let Some(version) = cmd::output(Command::new("cargo").args(["fuzz", "--version"])) {
        if version.contains(CARGO_FUZZ_VERSION) {
            return Ok(format!("present ({})", version.trim()));
        }
    }
    cmd::run(Command::new("cargo").args([
        "install",
        "cargo-fuzz",
        "--force",
        "--locked",
        "--version",
        CARGO_FUZZ_VERSION,
    ]))
    .context("installing cargo-fuzz failed")?;
    Ok(format!("installed cargo-fuzz {CARGO_FUZZ_VERSION}"))
}

/// bpf-linker, built against the nightly's own libLLVM.
///
/// bpf-linker needs an LLVM of the same major version as the rustc that
/// emits the bitcode. The nightly ships its libLLVM as a shared library, so a
/// directory whose `lib/` links to it is a complete `LLVM_PREFIX`; the
/// linker keeps an rpath to that directory, which therefore lives under the
/// user's data directory and not in /tmp.
fn bpf_linker() -> Result<String> {
    if let Some(version) = cmd::output(Command::new("bpf-linker").arg("--version")) {
        if version.contains(BPF_LINKER_VERSION) {
            return Ok(format!("present ({})", version.trim()));
        }
    }
    let rustc = |args: &[&str]| {
        cmd::output(
            Command::new("rustup")
                .args(["run", TOOLCHAIN, "rustc"])
                .args(args),
        )
        .with_context(|| {
            format!(
                "`rustup run {TOOLCHAIN} rustc {}` failed: is the nightly installed?",
                args.join(" ")
            )
        })
    };
    let verbose = rustc(&["-vV"])?;
    let llvm_major = verbose
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .context("the nightly rustc does not report its LLVM version")?
        .to_owned();
    let sysroot = PathBuf::from(rustc(&["--print", "sysroot"])?.trim());
    let nightly_lib = sysroot.join("lib");
    let libllvm = std::fs::read_dir(&nightly_lib)
        .with_context(|| format!("cannot list {}", nightly_lib.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("libLLVM.so."))
        .with_context(|| {
            format!(
                "no libLLVM.so.* in {}: the nightly must ship its LLVM as a shared library",
                nightly_lib.display()
            )
        })?;

    let prefix = data_dir().join(format!("edge/bpf-llvm-{llvm_major}"));
    let lib = prefix.join("lib");
    std::fs::create_dir_all(&lib).with_context(|| format!("cannot create {}", lib.display()))?;
    for link in [libllvm.as_str(), "libLLVM.so"] {
        let path = lib.join(link);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(nightly_lib.join(&libllvm), &path)
            .with_context(|| format!("cannot link {}", path.display()))?;
    }
    let features = format!("llvm-{llvm_major}");
    cmd::run(
        Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--force",
                "--locked",
                "--version",
                BPF_LINKER_VERSION,
            ])
            .args(["--no-default-features", "--features", &features])
            .env("LLVM_PREFIX", &prefix),
    )
    .with_context(|| {
        format!(
            "building bpf-linker {BPF_LINKER_VERSION} against {} failed",
            prefix.display()
        )
    })?;
    let version = cmd::output(Command::new("bpf-linker").arg("--version"))
        .context("bpf-linker was installed but does not run: is ~/.cargo/bin on PATH?")?;
    Ok(format!(
        "installed {} (LLVM {llvm_major} from {})",
        version.trim(),
        prefix.display()
    ))
}

/// `$XDG_DATA_HOME`, else `~/.local/share`.
fn data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("/var/lib"))
}

/// bpffs mounted at /sys/fs/bpf (pins live there).
fn bpffs() -> Result<String> {
    if kernel::is_bpffs("/sys/fs/bpf") {
        return Ok("mounted at /sys/fs/bpf".into());
    }
    cmd::run(Command::new("mount").args(["-t", "bpf", "bpf", "/sys/fs/bpf"]))
        .context("/sys/fs/bpf is not a bpf filesystem and mounting one failed")?;
    Ok("mounted at /sys/fs/bpf".into())
}

/// A scratch namespace with a veth pair in it, removed again.
fn netns_veth() -> Result<String> {
    let name = format!("edge-setup-{}", std::process::id());
    cmd::quiet(Command::new("ip").args(["netns", "add", &name]))
        .context("network namespaces do not work")?;
    let veth = cmd::quiet(Command::new("ip").args([
        "-n", &name, "link", "add", "s0", "type", "veth", "peer", "name", "s1",
    ]));
    let _ = cmd::quiet(Command::new("ip").args(["netns", "del", &name]));
    veth.context("creating a veth pair failed (is the veth module available?)")?;
    Ok("work".into())
}

mod kernel {
    //! Direct probes of the kernel through bpf(2).

    use std::ffi::CString;

    use anyhow::{Result, bail};

    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    const BPF_PROG_TYPE_XDP: u32 = 6;
    const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

    /// bpf_attr is a union of at most this many bytes in the calls below.
    type Attr = [u64; 16];

    fn bpf(cmd: libc::c_long, attr: &mut Attr) -> std::io::Result<i32> {
        // SAFETY: `attr` is a zero-initialised buffer large enough for the
        // command's attribute struct, and lives across the call.
        let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), size_of::<Attr>()) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = fd as i32;
        // SAFETY: `fd` is a descriptor we own and no longer need.
        unsafe { libc::close(fd) };
        Ok(fd)
    }

    /// Creates (and closes) a one-entry array map.
    pub(super) fn bpf_syscall() -> Result<String> {
        let mut attr: Attr = [0; 16];
        // map_type, key_size, value_size, max_entries: four u32s.
        attr[0] = u64::from(BPF_MAP_TYPE_ARRAY) | (4u64 << 32);
        attr[1] = 8 | (1u64 << 32);
        match bpf(BPF_MAP_CREATE, &mut attr) {
            Ok(_) => Ok("available".into()),
            Err(e) => bail!(
                "bpf(BPF_MAP_CREATE) failed: {e} (needs root, and kernel.unprivileged_bpf_disabled does not matter for root)"
            ),
        }
    }

    /// Loads (and closes) `r0 = XDP_PASS; exit` as an XDP program.
    pub(super) fn xdp_program() -> Result<String> {
        // BPF_MOV64_IMM(BPF_REG_0, 2), BPF_EXIT_INSN()
        let insns: [u64; 2] = [0x0000_0002_0000_00b7, 0x0000_0000_0000_0095];
        let license = CString::new("GPL").expect("no NUL");
        let mut attr: Attr = [0; 16];
        attr[0] = u64::from(BPF_PROG_TYPE_XDP) | ((insns.len() as u64) << 32);
        attr[1] = insns.as_ptr() as u64;
        attr[2] = license.as_ptr() as u64;
        match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(_) => Ok("the kernel loads XDP programs".into()),
            Err(e) => bail!(
                "loading a trivial XDP program failed: {e} (kernel without CONFIG_BPF_SYSCALL/XDP support?)"
            ),
        }
    }

    pub(super) fn is_bpffs(path: &str) -> bool {
        let Ok(c_path) = CString::new(path) else {
            return false;
        };
        // SAFETY: zeroed statfs is valid for the kernel to fill.
        let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: valid NUL-terminated path and out-pointer.
        let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
        rc == 0 && stat.f_type == BPF_FS_MAGIC as _
    }
}
