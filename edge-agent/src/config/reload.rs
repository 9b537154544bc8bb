//! What a reload (SIGHUP) does with a new, valid config: which parts the
//! running daemon takes at once and which changes wait for a restart.
//! [`plan`] is pure: it compares the config the daemon runs with and the
//! new one, and the run loop carries the plan out and logs it.
//!
//! Taken at once: the overlay's trust material and allow-list (always:
//! the files are read again even when the config names the same ones),
//! and, when the node runs a DNS service before and after, its zones
//! (files read again), EDNS settings and rate limits. Every other change
//! is named as needing a restart; nothing else is applied. BFD settings
//! belong to what runs the sessions: a changed `bfd` under `[[upstream]]`,
//! or a changed `[bfd]` that some neighbour takes, is a change of the
//! upstream neighbours (a `[bfd]` no neighbour takes changes nothing);
//! `[overlay] bfd` and `[overlay.strangers]` are changes of the overlay.
//! `[doors]` is loaded into the XDP program at start, so its changes wait
//! for a restart too.

use std::fmt;

use super::DaemonConfig;
use crate::{agent::AgentConfig, authdns::DnsConfig, overlay::config::OverlayConfig};

/// What a reload does: the parts taken at once, in the order they are
/// applied, and the changes that take effect only after a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Applied at once; always starts with [`LivePart::Trust`].
    pub live: Vec<LivePart>,
    /// Changed, but not applied until the daemon restarts (empty: the
    /// new config is wholly in effect after the reload).
    pub restart: Vec<RestartPart>,
}

/// A part of the config a reload applies at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LivePart {
    /// The overlay's CA bundle, certificate, key and CRL (files read
    /// again) and its allow-list.
    Trust,
    /// The DNS service's zones (files read again), EDNS settings and rate
    /// limits.
    Dns,
}

/// A part of the config whose change waits for a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPart {
    /// `[[services]]` traffic and `[policy]` (the control logic).
    Services,
    /// `[[upstream]]` neighbours, their BFD sessions included (whose
    /// defaults are `[bfd]`).
    Upstream,
    /// The services' probes and health timing.
    HealthChecks,
    /// `[netlink]` (and `--keep-state`).
    Netlink,
    /// The DNS service's listen addresses and TCP limits.
    DnsListeners,
    /// `[dns]` added or removed.
    DnsAddedOrRemoved,
    /// The overlay other than its trust material and allow-list (its BFD
    /// timers and `[overlay.strangers]` included).
    Overlay,
    /// The data plane: the Internet interface, the XDP mode, the pins, the
    /// table sizes and the node's data-plane settings (`[node]`).
    Dataplane,
    /// `[doors]`: the XDP program's policy for the agent's own ports.
    Doors,
    /// `[daemon]`: the admin socket, the metrics endpoint, logging and
    /// the pin directory.
    Daemon,
}

impl fmt::Display for LivePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LivePart::Trust => "trust material and allow-list",
            LivePart::Dns => "DNS zones and limits",
        })
    }
}

impl fmt::Display for RestartPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RestartPart::Services => "services and policy",
            RestartPart::Upstream => "upstream (neighbours and their BFD)",
            RestartPart::HealthChecks => "health checks",
            RestartPart::Netlink => "netlink",
            RestartPart::DnsListeners => "the DNS service's addresses and TCP limits",
            RestartPart::DnsAddedOrRemoved => "[dns] (added or removed)",
            RestartPart::Overlay => "the overlay (other than its trust material and allow-list)",
            RestartPart::Dataplane => {
                "the data plane (Internet interface, XDP mode, table sizes, node settings)"
            }
            RestartPart::Doors => "[doors] (the XDP program's policy for the agent's own ports)",
            RestartPart::Daemon => "[daemon] (admin socket, metrics, logging, pin directory)",
        })
    }
}

impl fmt::Display for ReloadPlan {
    /// The line the daemon logs: what was reloaded, and what waits for a
    /// restart.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let live = join(&self.live);
        if self.restart.is_empty() {
            write!(f, "config reloaded ({live})")
        } else {
            write!(
                f,
                "{live} reloaded; changes to {} take effect after a restart",
                join(&self.restart)
            )
        }
    }
}

/// `parts`, separated by commas.
fn join(parts: &[impl fmt::Display]) -> String {
    parts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What reloading `new` over `running` (the config the daemon runs with)
/// does.
pub fn plan(running: &DaemonConfig, new: &DaemonConfig) -> ReloadPlan {
    // Every field is named, so that a new one needs a decision here.
    let DaemonConfig {
        agent,
        api_socket,
        metrics,
        log_format,
        log_level,
        pin_dir,
        doors,
    } = new;
    let AgentConfig {
        internet,
        attach,
        load,
        node,
        overlay,
        netlink,
        health,
        control,
        upstream,
        dns,
    } = agent;
    let old = &running.agent;
    let mut live = vec![LivePart::Trust];
    let mut restart = Vec::new();
    let mut changed = |part, differs: bool| {
        if differs {
            restart.push(part);
        }
    };
    // The doors in the control config follow from `[doors]`, the
    // upstream and the overlay, each judged on its own below.
    let policy =
        |c: &crate::control::decide::ControlConfig| crate::control::decide::ControlConfig {
            doors: None,
            door_sources: Default::default(),
            ..c.clone()
        };
    changed(
        RestartPart::Services,
        policy(&old.control) != policy(control),
    );
    changed(RestartPart::Upstream, old.upstream != *upstream);
    changed(RestartPart::HealthChecks, old.health != *health);
    changed(RestartPart::Netlink, old.netlink != *netlink);
    match (&old.dns, dns) {
        (Some(old), Some(new)) => {
            changed(RestartPart::DnsListeners, !same_listeners(old, new));
            live.push(LivePart::Dns);
        }
        (None, None) => {}
        _ => changed(RestartPart::DnsAddedOrRemoved, true),
    }
    changed(RestartPart::Overlay, !same_but_trust(&old.overlay, overlay));
    changed(
        RestartPart::Dataplane,
        (&old.internet, &old.attach, &old.load, &old.node) != (internet, attach, load, node),
    );
    changed(RestartPart::Doors, running.doors != *doors);
    changed(
        RestartPart::Daemon,
        (
            &running.api_socket,
            &running.metrics,
            &running.log_format,
            &running.log_level,
            &running.pin_dir,
        ) != (api_socket, metrics, log_format, log_level, pin_dir),
    );
    ReloadPlan { live, restart }
}

/// Whether the DNS service listens on the same addresses with the same
/// TCP limits (what a reload cannot change).
fn same_listeners(old: &DnsConfig, new: &DnsConfig) -> bool {
    (&old.listen, old.tcp_idle, old.tcp_max_connections)
        == (&new.listen, new.tcp_idle, new.tcp_max_connections)
}

/// Whether two overlay configs are the same apart from their trust
/// material and allow-list (which a reload applies).
fn same_but_trust(old: &OverlayConfig, new: &OverlayConfig) -> bool {
    let old = OverlayConfig {
        trust: new.trust.clone(),
        ..old.clone()
    };
    old == *new
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
