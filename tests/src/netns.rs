//! Network namespaces and veth links for tests.
//!
//! Names are `edget-<pid>-<n>`: unique per test process and per namespace,
//! so tests run in parallel. Dropping a [`Netns`] kills what runs in it and
//! deletes it, which also happens while a panicking test unwinds. The first
//! namespace a process makes also deletes namespaces left by test processes
//! that no longer exist (killed before they could drop theirs).

use std::{
    process::Command,
    sync::{
        Once,
        atomic::{AtomicU32, Ordering},
    },
};

use crate::command::stdout_of;

/// Prefix of every test namespace name.
const PREFIX: &str = "edget";

static NEXT: AtomicU32 = AtomicU32::new(0);
static REAP: Once = Once::new();

/// A network namespace owned by a test.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a fresh namespace with `lo` up. Panics (failing the test)
    /// with the `ip` error if it cannot.
    pub fn new() -> Self {
        let name = unique_name();
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `f` on a thread that has entered this namespace, and returns its
    /// result; a panic in `f` resumes in the caller. Only the network
    /// namespace changes, so bpffs pins made by `f` are the host's.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| {
                edge_agent::netns::enter(&self.name).unwrap_or_else(|e| panic!("{e}"));
                f()
            });
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Runs `ip -n <ns> <args>`, panicking with its error output on failure.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// A command that runs `program` inside this namespace (`ip netns
    /// exec`; note it also gets a private /sys).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Loads an nftables ruleset (`nft -f -`) in this namespace, panicking
    /// with nft's error on failure: the way tests make a path fail
    /// silently (this kernel has no netem).
    pub fn nft(&self, ruleset: &str) {
        use std::io::Write;
        let mut child = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run nft (is the nftables package installed?)");
        child
            .stdin
            .take()
            .expect("nft's stdin")
            .write_all(ruleset.as_bytes())
            .expect("write the ruleset to nft");
        let out = child.wait_with_output().expect("wait for nft");
        assert!(
            out.status.success(),
            "nft in {}: {}\nruleset:\n{ruleset}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Adds `cidr` to `dev`; IPv6 addresses skip duplicate address
    /// detection so they are usable at once.
    pub fn add_addr(&self, dev: &str, cidr: &str) {
        if cidr.contains(':') {
            self.ip(&["addr", "add", cidr, "dev", dev, "nodad"]);
        } else {
            self.ip(&["addr", "add", cidr, "dev", dev]);
        }
    }

    /// Index of `dev` in this namespace.
    pub fn ifindex(&self, dev: &str) -> u32 {
        let dev = std::ffi::CString::new(dev).expect("no NUL in device name");
        // SAFETY: NUL-terminated name; resolved in the namespace's thread.
        let index = self.run(|| unsafe { libc::if_nametoindex(dev.as_ptr()) });
        assert_ne!(index, 0, "no device {dev:?} in {}", self.name);
        index
    }
}

impl Default for Netns {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete(&self.name);
    }
}

/// The XDP program attached to an interface, as `ip -d link` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XdpProgram {
    /// Kernel program id.
    pub id: u32,
    /// `true` for native (driver) mode, `false` for generic.
    pub native: bool,
}

impl Netns {
    /// The XDP program attached to `dev`, if any.
    pub fn xdp_program(&self, dev: &str) -> Option<XdpProgram> {
        let text = stdout_of(self.command("ip").args(["-d", "link", "show", dev]));
        let id = text
            .split("prog/xdp id ")
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        let native = text.split_whitespace().any(|word| word == "xdp");
        Some(XdpProgram { id, native })
    }
}

impl Netns {
    /// The MAC address of `dev`.
    pub fn mac(&self, dev: &str) -> [u8; 6] {
        let text = stdout_of(self.command("ip").args(["-br", "link", "show", dev]));
        let field = text
            .split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_owned();
        let bytes: Vec<u8> = field
            .split(':')
            .filter_map(|b| u8::from_str_radix(b, 16).ok())
            .collect();
        bytes
            .try_into()
            .unwrap_or_else(|_| panic!("no MAC for {dev} in {text:?}"))
    }

    /// Sets a sysctl inside the namespace (`net.*` keys are per namespace).
    pub fn sysctl(&self, key: &str, value: &str) {
        stdout_of(
            self.command("sysctl")
                .args(["-qw", &format!("{key}={value}")]),
        );
    }
}

/// A PoP and a client namespace joined by a veth pair, `pop0` ↔ `cli0`,
/// with underlay addresses .1 (PoP) and .2 (client), IPv4 /24 and IPv6 /64.
pub struct PopAndClient {
    /// The namespace of the edge node.
    pub pop: Netns,
    /// The namespace of the client.
    pub client: Netns,
}

impl PopAndClient {
    /// Creates both namespaces, the veth pair and the addresses.
    pub fn new() -> Self {
        use crate::plan::{underlay_v4, underlay_v6};
        let (pop, client) = (Netns::new(), Netns::new());
        veth(&pop, "pop0", &client, "cli0");
        for (ns, dev, host) in [(&pop, "pop0", 1), (&client, "cli0", 2)] {
            ns.add_addr(dev, &format!("{}/24", underlay_v4(host)));
            ns.add_addr(dev, &format!("{}/64", underlay_v6(host.into())));
        }
        PopAndClient { pop, client }
    }
}

impl Default for PopAndClient {
    fn default() -> Self {
        Self::new()
    }
}

/// Moves the calling thread into namespace `name` and builds a tokio
/// current-thread runtime there: everything the runtime runs opens its
/// sockets in that namespace. Panics if it cannot.
pub fn runtime_in(name: &str) -> tokio::runtime::Runtime {
    edge_agent::netns::enter(name).unwrap_or_else(|e| panic!("{e}"));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Creates a veth pair: `a_dev` in `a`, `b_dev` in `b`, both up.
pub fn veth(a: &Netns, a_dev: &str, b: &Netns, b_dev: &str) {
    a.ip(&[
        "link",
        "add",
        a_dev,
        "type",
        "veth",
        "peer",
        "name",
        b_dev,
        "netns",
        b.name(),
    ]);
    a.ip(&["link", "set", a_dev, "up"]);
    b.ip(&["link", "set", b_dev, "up"]);
}

/// Runs `ip <args>` and panics with its stderr on failure.
fn ip(args: &[&str]) {
    stdout_of(Command::new("ip").args(args));
}

/// Kills what runs in namespace `name` and deletes it; quiet if it is gone.
pub(crate) fn delete(name: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                // SAFETY: kill(2) on a pid that `ip netns pids` listed.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    let _ = Command::new("ip").args(["netns", "del", name]).output();
}

/// A name no other test namespace or pin directory has: `edget-<pid>-<n>`.
/// The first call of a process also removes what dead test processes left.
pub(crate) fn unique_name() -> String {
    REAP.call_once(reap_stale);
    format!(
        "{PREFIX}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes test namespaces and pin directories whose creating process is gone.
fn reap_stale() {
    let dirs = [edge_agent::netns::NETNS_RUN_DIR, crate::pins::PIN_ROOT];
    for (index, dir) in dirs.into_iter().enumerate() {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = owner_pid(&name) else {
                continue;
            };
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            if index == 0 {
                delete(&name);
            } else {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// The pid in a test namespace name, `None` for any other name.
fn owner_pid(name: &str) -> Option<u32> {
    let mut parts = name.strip_prefix(PREFIX)?.strip_prefix('-')?.split('-');
    let pid = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u32>().ok()?;
    parts.next().is_none().then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::owner_pid;

    #[test]
    fn only_test_namespace_names_have_an_owner() {
        assert_eq!(owner_pid("edget-1234-7"), Some(1234));
        for foreign in [
            "edget-1234",
            "edget-x-1",
            "edge-demo-pop",
            "edget-1-2-3",
            "other-1-2",
            "edget-",
        ] {
            assert_eq!(owner_pid(foreign), None, "{foreign}");
        }
    }
}
