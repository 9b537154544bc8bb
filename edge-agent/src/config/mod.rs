//! The daemon's one config file: TOML in, [`DaemonConfig`] out (the
//! [`AgentConfig`] a node runs with, plus the daemon's own settings).
//!
//! Everything is checked before anything touches the kernel: no socket,
//! no netlink, no BPF. Only reads happen, and only when asked for through
//! [`Checks`]: whether the Internet interface exists (`if_nametoindex`)
//! and whether the trust, key and CA files can be read and used. Every
//! problem found is reported, each with the key it is about (for example
//! `services.web.vips[1]` or `upstream[0].asn`), what is wrong, and a
//! hint: a TOML syntax error with its line and column, unknown keys (a
//! typo is never silently ignored), values that do not parse or are out
//! of range, and what the modules' own validation rejects
//! ([`crate::overlay::config::OverlayConfig::validate`],
//! [`crate::health::HealthConfig::validate`], the probes' own checks).
//!
//! `docs/edge.example.toml` documents every key; the modules here are:
//! `raw` (the file as written), `values` (parsers for durations,
//! addresses, prefixes, ASNs, …), `node`, `policy`, `services`,
//! `upstream`, `overlay` and `dns` (the sections, into the modules'
//! config types), `bfd` (`[bfd]` and the `bfd` keys of `[[upstream]]`
//! and `[overlay]`), `doors` (`[doors]`, the XDP program's policy for
//! the agent's own ports), `files` (the checks that read the host), and
//! [`reload`] (what a SIGHUP applies at once and what waits for a
//! restart).

mod bfd;
mod dns;
mod doors;
mod files;
mod keys;
mod node;
mod overlay;
mod policy;
mod raw;
pub mod reload;
mod services;
mod upstream;
mod values;

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

pub use self::doors::{DoorsConfig, spec as door_spec};
use crate::agent::AgentConfig;

/// The control socket's path unless `daemon.api_socket` says otherwise.
pub const DEFAULT_API_SOCKET: &str = "/run/edge-agent/api.sock";

/// The log filter unless `daemon.log_level` says otherwise.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// Everything the daemon runs with, from one config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    /// The node: data plane, overlay, netlink, health checks, control,
    /// upstream sessions.
    pub agent: AgentConfig,
    /// The control socket of `edge-agent` commands (default
    /// [`DEFAULT_API_SOCKET`]).
    pub api_socket: PathBuf,
    /// Where the Prometheus metrics endpoint listens (e.g.
    /// `127.0.0.1:9179`); `None`: no metrics endpoint.
    pub metrics: Option<SocketAddr>,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// The log filter, an `EnvFilter` directive (default
    /// [`DEFAULT_LOG_LEVEL`]).
    pub log_level: String,
    /// Where the data plane's maps, program and XDP link are pinned
    /// (default `/sys/fs/bpf/edge/<internet interface>`); the same path
    /// is in `agent.load.pin_dir`.
    pub pin_dir: PathBuf,
    /// `[doors]`: what the XDP program lets through to the agent's own
    /// ports (BGP, BFD, the overlay's control port) on the Internet
    /// interface.
    pub doors: DoorsConfig,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: one line per event (the default).
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Which checks that read the host run. Tests and `check-config` on
/// another host turn them off; the daemon runs them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checks {
    /// The Internet interface must exist (`if_nametoindex`).
    pub interfaces: bool,
    /// The overlay's CA, certificate, key and CRL files must be readable
    /// and usable together (and the certificate must prove this node's
    /// name); MD5 key files, BFD secret files and probe CA files must be
    /// readable; an exec probe given by path must be an executable file.
    /// Without this check, an MD5 key file or a BFD secret file is not
    /// read at all, so the key is left out: use it only to validate,
    /// never to run.
    pub files: bool,
}

impl Checks {
    /// Every check (what the daemon uses).
    pub const ALL: Checks = Checks {
        interfaces: true,
        files: true,
    };
    /// Nothing read from the host: the file alone is checked.
    pub const NONE: Checks = Checks {
        interfaces: false,
        files: false,
    };
}

impl Default for Checks {
    fn default() -> Self {
        Checks::ALL
    }
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key it is about, as a path: `services.web.vips[1]`,
    /// `upstream[0].asn`; empty for a syntax error (its message has the
    /// line and column).
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Every problem found in one config file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors {
    /// The file (or the name given to [`parse`]).
    pub origin: String,
    /// The problems: syntax errors by line, or unknown keys first and
    /// then the rest section by section.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigErrors {
    /// One line per problem, each starting with the origin.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {problem}", self.origin)?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// Whether some problem is about `key` (exactly).
    pub fn has(&self, key: &str) -> bool {
        self.problems.iter().any(|p| p.key == key)
    }
}

/// Reads `path` and checks it with every check ([`Checks::ALL`]); every
/// problem found is reported, not just the first.
pub fn load(path: &Path) -> Result<DaemonConfig, ConfigErrors> {
    load_with(path, Checks::ALL)
}

/// [`load`] with a choice of the checks that read the host.
pub fn load_with(path: &Path, checks: Checks) -> Result<DaemonConfig, ConfigErrors> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        origin: origin.clone(),
        problems: vec![Problem {
            key: String::new(),
            message: format!("cannot read the config file: {e}"),
            hint: Some("check the path given with --config and that the daemon may read it".into()),
        }],
    })?;
    parse_with(&text, &origin, checks)
}

/// [`load`] from a string, with every check; `origin` names it in
/// messages.
pub fn parse(text: &str, origin: &str) -> Result<DaemonConfig, ConfigErrors> {
    parse_with(text, origin, Checks::ALL)
}

/// [`parse`] with a choice of the checks that read the host.
pub fn parse_with(text: &str, origin: &str, checks: Checks) -> Result<DaemonConfig, ConfigErrors> {
    let fail = |problems| ConfigErrors {
        origin: origin.to_owned(),
        problems,
    };
    let (file, mut report) = keys::deserialize(text).map_err(fail)?;
    let config = build(&file, checks, &mut report);
    match config {
        Some(config) if report.is_empty() => Ok(config),
        _ => Err(fail(report.into_problems())),
    }
}

/// Builds the config from the file as written, reporting every problem;
/// `None` (or problems in `report`) when it cannot be used.
fn build(file: &raw::File, checks: Checks, report: &mut Report) -> Option<DaemonConfig> {
    let node = node::node(&file.node, report);
    let service_keys = keys::service_keys(&file.services);
    let services = services::services(&file.services, &service_keys, &node, checks, report);
    let netlink = node::netlink(&file.netlink, &node, report);
    let control = policy::control(&file.policy, &node, &services, netlink.vips, report);
    let bfd = bfd::defaults(&file.bfd, checks, report);
    let upstream = upstream::upstream(&file.upstream, &node, &bfd, checks, report);
    let overlay = overlay::overlay(&file.overlay, &node, checks, report);
    let dns = dns::dns(file.dns.as_ref(), &node, &services, checks, report);
    let daemon = node::daemon(&file.daemon, &node, report);
    let doors = doors::doors(&file.doors, report);
    if checks.interfaces {
        files::interfaces(&node, report);
    }
    let mut agent = AgentConfig {
        internet: node.internet.clone()?,
        attach: node.attach,
        load: crate::dataplane::LoadOptions {
            pin_dir: Some(daemon.pin_dir.clone()?),
            maglev_size: node.maglev_size,
            flow_entries: node.flow_entries,
        },
        node: node.dataplane()?,
        overlay: overlay?,
        netlink: netlink.config?,
        health: services.checks?,
        control: control?,
        upstream: upstream?,
        dns: dns?,
    };
    let doors = doors?;
    doors::apply(&doors, &mut agent, report);
    Some(DaemonConfig {
        pin_dir: daemon.pin_dir?,
        agent,
        api_socket: daemon.api_socket?,
        metrics: daemon.metrics?,
        log_format: daemon.log_format?,
        log_level: daemon.log_level?,
        doors,
    })
}

/// The problems found so far.
#[derive(Debug, Default)]
struct Report {
    problems: Vec<Problem>,
}

impl Report {
    /// Records a problem with `key`.
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>, hint: impl Into<String>) {
        let problem = Problem {
            key: key.into(),
            message: message.into(),
            hint: Some(hint.into()),
        };
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }

    /// Records `bad` with `key`.
    fn bad(&mut self, key: impl Into<String>, bad: values::Bad) {
        self.add(key, bad.message, bad.hint);
    }

    /// The value, or `None` after recording why not.
    fn check<T>(&mut self, key: impl Into<String>, result: Result<T, values::Bad>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(bad) => {
                self.bad(key, bad);
                None
            }
        }
    }

    /// Records that a required key is missing.
    fn missing(&mut self, key: impl Into<String>, hint: impl Into<String>) {
        self.add(key, "missing: this key is required", hint);
    }

    /// Whether nothing is wrong so far.
    fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// How many problems so far.
    fn len(&self) -> usize {
        self.problems.len()
    }

    /// The problems.
    fn into_problems(self) -> Vec<Problem> {
        self.problems
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
