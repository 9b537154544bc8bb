//! `[doors]`: the XDP program's policy for the agent's own ports on the
//! Internet-facing interface (BGP 179, BFD 3784 and 4784, the overlay's
//! control port), into a [`DoorsConfig`]: whether it filters them at all,
//! and how many SYNs per second a source prefix the agent does not list
//! may send to the control port. Only checked here; the data plane
//! applies it.

use std::{collections::BTreeSet, net::IpAddr};

use super::{Report, node::int_or, raw};
use crate::{
    agent::AgentConfig,
    bfd::endpoint::{MULTI_HOP_PORT, SINGLE_HOP_PORT},
    dataplane::{DoorPolicy, DoorSpec, DoorsSpec, MAX_DOORS, Protocol},
};

/// SYNs per second per source prefix unless `syn_rate` says otherwise.
const DEFAULT_SYN_RATE: u32 = 20;
/// The SYN burst unless `syn_burst` (or `syn_rate` alone) says otherwise.
const DEFAULT_SYN_BURST: u32 = 40;
/// The most `syn_rate` and `syn_burst` take.
const MAX_SYNS: u32 = 1_000_000;

/// The XDP program's policy for the agent's own ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoorsConfig {
    /// Whether the XDP program filters the agent's ports at all.
    pub enabled: bool,
    /// SYNs per second per source prefix (per CPU) let through to the
    /// control port from sources the agent does not list.
    pub syn_rate: u32,
    /// SYNs such a prefix may send at once after a quiet spell.
    pub syn_burst: u32,
    /// The IPv4 prefix length sources are grouped by.
    pub ipv4_prefix: u8,
    /// The IPv6 prefix length sources are grouped by.
    pub ipv6_prefix: u8,
}

impl Default for DoorsConfig {
    fn default() -> Self {
        DoorsConfig {
            enabled: true,
            syn_rate: DEFAULT_SYN_RATE,
            syn_burst: DEFAULT_SYN_BURST,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
        }
    }
}

/// Parses `[doors]`; `None` after a problem.
pub(super) fn doors(raw: &raw::Doors, report: &mut Report) -> Option<DoorsConfig> {
    let before = report.len();
    let d = DoorsConfig::default();
    let syn_rate = int_or(
        raw.syn_rate,
        "doors.syn_rate",
        1,
        i64::from(MAX_SYNS),
        d.syn_rate,
        "SYNs per second from one source prefix",
        report,
    );
    let syn_burst = match (raw.syn_burst, syn_rate) {
        // Two seconds' worth unless said otherwise.
        (None, Some(rate)) if raw.syn_rate.is_some() => Some(rate.saturating_mul(2).min(MAX_SYNS)),
        _ => int_or(
            raw.syn_burst,
            "doors.syn_burst",
            1,
            i64::from(MAX_SYNS),
            d.syn_burst,
            "SYNs one source prefix may send at once",
            report,
        ),
    };
    let ipv4_prefix = int_or(
        raw.ipv4_prefix,
        "doors.ipv4_prefix",
        8,
        32,
        d.ipv4_prefix,
        "the IPv4 prefix length sources are grouped by",
        report,
    );
    let ipv6_prefix = int_or(
        raw.ipv6_prefix,
        "doors.ipv6_prefix",
        16,
        128,
        d.ipv6_prefix,
        "the IPv6 prefix length sources are grouped by",
        report,
    );
    if report.len() != before {
        return None;
    }
    Some(DoorsConfig {
        enabled: raw.enabled.unwrap_or(d.enabled),
        syn_rate: syn_rate?,
        syn_burst: syn_burst?,
        ipv4_prefix: ipv4_prefix?,
        ipv6_prefix: ipv6_prefix?,
    })
}

/// The doors of the agent's own ports, as the node is configured, and
/// the sources always let through them (the upstream neighbours):
/// - the overlay's control port: strangers' SYNs rate-limited per source
///   prefix (admission then decides who may start a handshake);
/// - each port upstream neighbours connect to (BGP, 179): neighbours only;
/// - with upstream BFD, single-hop BFD (UDP 3784): neighbours only;
/// - with overlay BFD, multihop BFD (UDP 4784): listed sources (the
///   overlay's candidates and trusted peers) only.
///
/// Fails with the number of doors when there are more than the data
/// plane holds ([`MAX_DOORS`]).
pub fn spec(
    doors: &DoorsConfig,
    agent: &AgentConfig,
) -> Result<(DoorsSpec, BTreeSet<IpAddr>), usize> {
    let mut list = vec![DoorSpec {
        protocol: Protocol::Tcp,
        port: agent.overlay.listen.port(),
        policy: DoorPolicy::RateLimited,
    }];
    let mut add = |protocol, port, policy| {
        if !list
            .iter()
            .any(|d: &DoorSpec| d.protocol == protocol && d.port == port)
        {
            list.push(DoorSpec {
                protocol,
                port,
                policy,
            });
        }
    };
    for neighbor in &agent.upstream {
        add(Protocol::Tcp, neighbor.peer.port(), DoorPolicy::ListedOnly);
    }
    if agent.upstream.iter().any(|n| n.bfd.is_some()) {
        add(Protocol::Udp, SINGLE_HOP_PORT, DoorPolicy::ListedOnly);
    }
    if agent.overlay.bfd.is_some() {
        add(Protocol::Udp, MULTI_HOP_PORT, DoorPolicy::ListedOnly);
    }
    if list.len() > MAX_DOORS {
        return Err(list.len());
    }
    let sources = agent.upstream.iter().map(|n| n.peer.ip()).collect();
    Ok((
        DoorsSpec {
            doors: list,
            syn_rate: doors.syn_rate,
            syn_burst: doors.syn_burst,
            v4_prefix: doors.ipv4_prefix,
            v6_prefix: doors.ipv6_prefix,
        },
        sources,
    ))
}

/// Sets the agent's doors from `doors` (when enabled); a problem when
/// there are too many.
pub(super) fn apply(doors: &DoorsConfig, agent: &mut AgentConfig, report: &mut Report) {
    if !doors.enabled {
        return;
    }
    match spec(doors, agent) {
        Ok((spec, sources)) => {
            agent.control.doors = Some(spec);
            agent.control.door_sources = sources;
        }
        Err(n) => report.add(
            "doors",
            format!("the agent's own ports make {n} doors; the data plane holds {MAX_DOORS}"),
            "use fewer distinct upstream BGP ports, or set doors.enabled = false",
        ),
    }
}

#[cfg(test)]
#[path = "doors_tests.rs"]
mod tests;
