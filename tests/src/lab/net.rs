//! The lab's network: fixed-name namespaces (`edgelab-*`), veth links,
//! addresses and routes, made with `ip`. Unlike the tests' namespaces they
//! outlive the process that made them (`lab up` returns, the lab keeps
//! running) and are removed by `lab down`, which finds them by name.

use std::process::Command;

/// Prefix of every lab namespace.
pub const PREFIX: &str = "edgelab";

/// The namespaces: two ISP routers, three PoPs, two clients, and a rogue
/// node that only lives during its scenario.
pub const NAMESPACES: [&str; 8] = [
    "isp1", "isp2", "pop-a", "pop-b", "pop-c", "client1", "client2", "rogue",
];

/// The full name of lab namespace `short`.
pub fn ns(short: &str) -> String {
    format!("{PREFIX}-{short}")
}

/// Runs `ip ARGS`; the error names the command.
pub fn ip(args: &[&str]) -> Result<String, String> {
    run(Command::new("ip").args(args))
}

/// Runs `ip -n NS ARGS`.
pub fn ip_in(short: &str, args: &[&str]) -> Result<String, String> {
    let name = ns(short);
    let mut all = vec!["-n", name.as_str()];
    all.extend_from_slice(args);
    ip(&all)
}

/// Runs a command, returning stdout, or an error with its stderr.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Creates namespace `short` with `lo` up and forwarding on.
pub fn add_ns(short: &str) -> Result<(), String> {
    ip(&["netns", "add", &ns(short)])?;
    ip_in(short, &["link", "set", "lo", "up"])?;
    sysctl(short, "net.ipv4.ip_forward", "1")?;
    Ok(())
}

/// Sets a sysctl inside namespace `short`.
pub fn sysctl(short: &str, key: &str, value: &str) -> Result<(), String> {
    run(Command::new("ip").args([
        "netns",
        "exec",
        &ns(short),
        "sysctl",
        "-qw",
        &format!("{key}={value}"),
    ]))
    .map(drop)
}

/// A veth pair: `a_dev` in `a` with `a_addr`, `b_dev` in `b` with `b_addr`.
pub fn link(
    a: &str,
    a_dev: &str,
    a_addr: &str,
    b: &str,
    b_dev: &str,
    b_addr: &str,
) -> Result<(), String> {
    ip(&[
        "link",
        "add",
        a_dev,
        "netns",
        &ns(a),
        "type",
        "veth",
        "peer",
        "name",
        b_dev,
        "netns",
        &ns(b),
    ])?;
    for (n, dev, addr) in [(a, a_dev, a_addr), (b, b_dev, b_addr)] {
        ip_in(n, &["addr", "add", addr, "dev", dev])?;
        ip_in(n, &["link", "set", dev, "up"])?;
    }
    Ok(())
}

/// Deletes every lab namespace that exists (killing what runs in it).
pub fn delete_all() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        if name.starts_with(&format!("{PREFIX}-")) {
            crate::netns::delete(name);
        }
    }
}
