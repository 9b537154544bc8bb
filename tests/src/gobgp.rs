//! GoBGP as a real BGP peer: generated TOML config, `gobgpd` started inside
//! a test namespace, queried with the `gobgp` CLI there, killed on drop.

use std::{net::IpAddr, process::Command, time::Duration};

use crate::{daemon::Daemon, netns::Netns};

/// A gobgpd running in a namespace.
pub struct Gobgp<'a> {
    daemon: Daemon,
    ns: &'a Netns,
    _dir: tempfile::TempDir,
}

/// A neighbour of GoBGP and the families it carries (`ipv4-unicast`, `ipv6-unicast`).
#[derive(Clone, Debug)]
pub struct GobgpNeighbor {
    /// Neighbour address.
    pub address: IpAddr,
    /// Neighbour ASN.
    pub asn: u32,
    /// AFI-SAFI names.
    pub families: Vec<&'static str>,
}

/// A gobgpd config: global AS and router id, one neighbour block each.
pub fn gobgp_config(
    router_id: std::net::Ipv4Addr,
    asn: u32,
    neighbors: &[GobgpNeighbor],
) -> String {
    let mut config = format!("[global.config]\n  as = {asn}\n  router-id = \"{router_id}\"\n");
    for n in neighbors {
        config.push_str(&format!(
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}\n",
            n.address, n.asn
        ));
        for family in &n.families {
            config.push_str(&format!(
                "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{family}\"\n"
            ));
        }
    }
    config
}

impl<'a> Gobgp<'a> {
    /// Writes `config` and starts gobgpd in `ns`; returns once its API answers.
    pub fn start(ns: &'a Netns, config: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("edge-gobgp-")
            .tempdir()
            .expect("temp dir");
        let path = dir.path().join("gobgpd.toml");
        std::fs::write(&path, config).expect("write gobgpd.toml");
        let mut cmd = ns.command("gobgpd");
        cmd.arg("-f")
            .arg(&path)
            .args(["-t", "toml", "--api-hosts", "127.0.0.1:50051"]);
        let mut daemon = Daemon::spawn("gobgpd", cmd, &dir.path().join("gobgpd.log"));
        let probe = ns.name().to_owned();
        daemon.wait_for("gobgp to answer", Duration::from_secs(15), || {
            let out = Command::new("ip")
                .args(["netns", "exec", &probe, "gobgp", "global"])
                .output()
                .ok()?;
            out.status.success().then_some(())
        });
        Gobgp {
            daemon,
            ns,
            _dir: dir,
        }
    }

    /// Runs `gobgp <args>` in the namespace and returns its output.
    pub fn cli(&mut self, args: &[&str]) -> String {
        self.daemon.assert_running();
        cli_in(self.ns, args)
    }

    /// Polls `gobgp <args>` until `check` holds for its output and returns
    /// that output; panics after `timeout`, naming `what`, with GoBGP's log.
    pub fn wait_for(
        &mut self,
        args: &[&str],
        what: &str,
        timeout: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let ns = self.ns;
        let what = format!("{what} (`gobgp {}`)", args.join(" "));
        self.daemon.wait_for(&what, timeout, || {
            let out = cli_in(ns, args);
            check(&out).then_some(out)
        })
    }
}

/// `gobgp <args>` inside `ns`: what it printed, success or not.
fn cli_in(ns: &Netns, args: &[&str]) -> String {
    let out = ns.command("gobgp").args(args).output().expect("run gobgp");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}
