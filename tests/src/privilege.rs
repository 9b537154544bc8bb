//! Tests that need root or kernel features.
//!
//! Such a test calls [`require_root`] first. Without root it panics with a
//! message saying how to run it, under CI always; a developer who knows
//! what they are doing may set `EDGE_SKIP_PRIVILEGED=1` outside CI to have
//! those tests return early instead, and the skip is printed.

/// Returns `true` when the test can go on. Panics without root, unless
/// `EDGE_SKIP_PRIVILEGED=1` is set outside CI, in which case it prints the
/// skip and returns `false`.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let opt_out = std::env::var("EDGE_SKIP_PRIVILEGED").is_ok_and(|v| v == "1");
    if opt_out && !ci {
        eprintln!("SKIPPED {test}: needs root (EDGE_SKIP_PRIVILEGED=1)");
        return false;
    }
    panic!(
        "{test} needs root: it uses bpf(2), XDP and network namespaces. \
         Run the suite as root (`sudo cargo xtask test`){}",
        if ci {
            "; under CI=true it can never be skipped"
        } else {
            ""
        }
    );
}
