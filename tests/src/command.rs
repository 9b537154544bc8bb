//! Running helper commands (ip, bpftool, ...) from tests.

use std::process::Command;

/// Runs `cmd` and returns its stdout; panics, failing the test, with the
/// command line and its stderr if it cannot start or exits non-zero.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} ({e}): `cargo xtask setup` installs the test tools")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
