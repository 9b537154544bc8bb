//! BIRD 2 as a real BGP peer: generated config, started inside a test
//! namespace, queried with `birdc`, killed on drop.

use std::{net::IpAddr, path::PathBuf, process::Command, time::Duration};

use crate::{daemon::Daemon, netns::Netns};

/// A BIRD instance running in a namespace.
pub struct Bird {
    daemon: Daemon,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

/// One BGP neighbour in a generated BIRD config.
#[derive(Clone, Debug)]
pub struct BgpNeighbor {
    /// Protocol name in BIRD (also used in `show protocols`).
    pub name: String,
    /// Neighbour address.
    pub address: IpAddr,
    /// Neighbour ASN.
    pub asn: u32,
    /// Extra statements inside the protocol block (`password "…";`,
    /// `graceful restart on;`, ...).
    pub options: String,
    /// Export every route to the neighbour (default: export none).
    pub export_all: bool,
}

impl BgpNeighbor {
    /// A neighbour importing everything and exporting nothing.
    pub fn new(name: &str, address: IpAddr, asn: u32) -> Self {
        BgpNeighbor {
            name: name.into(),
            address,
            asn,
            options: String::new(),
            export_all: false,
        }
    }
}

/// A minimal BIRD config: router id, the device protocol, and one BGP
/// protocol per neighbour with IPv4 and IPv6 unicast channels that import
/// everything and export nothing (or everything, per neighbour).
pub fn bgp_config(
    router_id: std::net::Ipv4Addr,
    local_asn: u32,
    neighbors: &[BgpNeighbor],
) -> String {
    let mut config =
        format!("log stderr all;\nrouter id {router_id};\nprotocol device {{ scan time 1; }}\n");
    for n in neighbors {
        let export = if n.export_all { "all" } else { "none" };
        config.push_str(&format!(
            "protocol bgp {name} {{\n  local as {local_asn};\n  neighbor {addr} as {asn};\n  \
             connect retry time 1;\n{options}\n  ipv4 {{ import all; export {export}; }};\n  \
             ipv6 {{ import all; export {export}; }};\n}}\n",
            name = n.name,
            addr = n.address,
            asn = n.asn,
            options = n.options,
        ));
    }
    config
}

/// Static IPv4 routes for BIRD to export (blackholes): `protocol static`.
pub fn static_routes(prefixes: &[&str]) -> String {
    let routes: String = prefixes
        .iter()
        .map(|p| format!("  route {p} blackhole;\n"))
        .collect();
    format!("protocol static {{\n  ipv4;\n{routes}}}\n")
}

impl Bird {
    /// Writes `config` and starts BIRD in `ns`; returns once `birdc`
    /// answers. Panics with BIRD's output if it does not come up.
    pub fn start(ns: &Netns, config: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("edge-bird-")
            .tempdir()
            .expect("temp dir");
        let conf = dir.path().join("bird.conf");
        std::fs::write(&conf, config).expect("write bird.conf");
        let socket = dir.path().join("bird.ctl");
        let mut cmd = ns.command("bird");
        cmd.arg("-f").arg("-c").arg(&conf).arg("-s").arg(&socket);
        let mut daemon = Daemon::spawn("bird", cmd, &dir.path().join("bird.log"));
        let bird_socket = socket.clone();
        daemon.wait_for("birdc to answer", Duration::from_secs(10), || {
            birdc_raw(&bird_socket, "show status")
                .filter(|s| s.contains("Daemon is up and running"))
        });
        Bird {
            daemon,
            socket,
            _dir: dir,
        }
    }

    /// Runs a `birdc` command and returns its output; panics if birdc fails.
    pub fn birdc(&mut self, command: &str) -> String {
        self.daemon.assert_running();
        birdc_raw(&self.socket, command)
            .unwrap_or_else(|| panic!("birdc `{command}` failed; log:\n{}", self.daemon.log()))
    }

    /// Runs a `birdc` command and returns what it printed, whether or not it
    /// succeeded (`show route` of an absent prefix exits non-zero).
    pub fn query(&mut self, command: &str) -> String {
        self.daemon.assert_running();
        query_at(&self.socket, command)
    }

    /// Polls `birdc <command>` until `check` holds for its output and
    /// returns that output; panics after `timeout`, naming `what`, with
    /// BIRD's log.
    pub fn wait_for(
        &mut self,
        command: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let socket = self.socket.clone();
        self.daemon
            .wait_for(&format!("{what} (`birdc {command}`)"), timeout, || {
                let out = query_at(&socket, command);
                check(&out).then_some(out)
            })
    }

    /// Waits until `show protocols <name>` reports the session Established.
    pub fn wait_established(&mut self, protocol: &str, timeout: Duration) {
        let socket = self.socket.clone();
        self.daemon.wait_for(
            &format!("BGP session {protocol} to be Established"),
            timeout,
            || {
                birdc_raw(&socket, &format!("show protocols {protocol}"))
                    .filter(|s| s.contains("Established"))
            },
        );
    }
}

/// `birdc <command>` on `socket`: what it printed, success or not.
fn query_at(socket: &std::path::Path, command: &str) -> String {
    let out = Command::new("birdc")
        .arg("-s")
        .arg(socket)
        .args(command.split_whitespace())
        .output()
        .unwrap_or_else(|e| panic!("running birdc: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn birdc_raw(socket: &std::path::Path, command: &str) -> Option<String> {
    let out = Command::new("birdc")
        .arg("-s")
        .arg(socket)
        .args(command.split_whitespace())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
