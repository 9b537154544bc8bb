//! The sections about the node as a whole: `[node]` (identity, addresses,
//! anycast prefixes, data-plane settings), `[netlink]` ([`NetlinkConfig`])
//! and `[daemon]`. The other sections build on [`Node`].

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
    str::FromStr,
    time::Duration,
};

use edge_common::{
    DEFAULT_PIN_ROOT,
    maps::{DEFAULT_FLOW_ENTRIES, DEFAULT_MAGLEV_SIZE, MAX_PEERS, MAX_PREFIXES},
};

use super::{
    DEFAULT_API_SOCKET, DEFAULT_LOG_LEVEL, LogFormat, Report, raw,
    values::{self, PrefixBad, bad, choices, show_duration},
};
use crate::{
    bgp::message::Prefix,
    dataplane::{AttachMode, Encap, NodeConfig},
    maglev,
    netlink::{
        desired::VipAddresses,
        reconciler::{DEFAULT_LINK, DEFAULT_PROTOCOL, DEFAULT_TABLE, NetlinkConfig},
        state::Ownership,
    },
    overlay::identity::Identity,
};

/// The smallest underlay MTU accepted (IPv4's minimum reassembly size).
const MIN_MTU: i64 = 576;
/// The smallest MTU IPv6 allows.
const MIN_MTU_V6: u16 = 1280;
/// The most flows the flow table may remember.
const MAX_FLOW_ENTRIES: i64 = 1 << 24;
/// The largest Maglev table accepted: room for far more than
/// [`MAX_PEERS`] peers per service, at 512 bytes per entry in all.
const MAX_MAGLEV_SIZE: i64 = 131_071;

/// `[node]`, parsed: what the other sections build on. Lists hold what
/// parsed; the `*_complete` flags say whether every entry did, so that
/// checks against them (is a VIP inside the anycast prefixes?) are made
/// only when their answer means something.
#[derive(Clone, Debug)]
pub(super) struct Node {
    /// `edge://<name>`.
    pub name: Option<Identity>,
    /// The node identity addresses.
    pub identity: Vec<IpAddr>,
    /// Every identity address parsed.
    pub identity_complete: bool,
    /// The Internet-facing interface.
    pub internet: Option<String>,
    /// How XDP attaches.
    pub attach: AttachMode,
    /// Underlay addresses, in the order given (at most one per family).
    pub underlay: Vec<IpAddr>,
    /// The anycast prefixes (host bits cleared where they were set).
    pub anycast: Vec<Prefix>,
    /// Every anycast prefix parsed.
    pub anycast_complete: bool,
    /// The CDN's ASN.
    pub asn: Option<u32>,
    /// Underlay MTU.
    pub mtu: u16,
    /// Encapsulation toward peers.
    pub encap: Encap,
    /// GUE port (decapsulation, and encapsulation with `encap = "gue"`).
    pub gue_port: Option<u16>,
    /// Entries of one Maglev table.
    pub maglev_size: u32,
    /// Flows the flow table remembers.
    pub flow_entries: u32,
}

impl Node {
    /// The IPv4 underlay address.
    pub fn underlay_v4(&self) -> Option<Ipv4Addr> {
        self.underlay.iter().find_map(|a| match a {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        })
    }

    /// The IPv6 underlay address.
    pub fn underlay_v6(&self) -> Option<Ipv6Addr> {
        self.underlay.iter().find_map(|a| match a {
            IpAddr::V6(a) => Some(*a),
            IpAddr::V4(_) => None,
        })
    }

    /// The BGP identifier: the first IPv4 identity address.
    pub fn bgp_id(&self) -> Option<Ipv4Addr> {
        self.identity.iter().find_map(|a| match a {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        })
    }

    /// The data plane's node settings.
    pub fn dataplane(&self) -> Option<NodeConfig> {
        Some(NodeConfig {
            underlay_v4: self.underlay_v4(),
            underlay_v6: self.underlay_v6(),
            gue_port: self.gue_port,
            mtu: self.mtu,
            anycast: self
                .anycast
                .iter()
                .map(|p| (p.addr(), p.length()))
                .collect(),
        })
    }
}

/// Parses `[node]`.
pub(super) fn node(raw: &raw::Node, report: &mut Report) -> Node {
    let name = match &raw.name {
        None => {
            report.missing(
                "node.name",
                "give the node's name, e.g. name = \"pop-fra1\": its identity is edge://<name>, as in its certificate",
            );
            None
        }
        Some(name) => report.check(
            "node.name",
            Identity::from_name(name).map_err(|_| {
                bad(
                    format!("`{name}` is not a node name"),
                    "use lower case letters, digits, `-` and `.` (the identity edge://<name> must be in the node's certificate)",
                )
            }),
        ),
    };

    let (identity, identity_complete) = addresses(
        raw.identity.as_deref(),
        "node.identity",
        "list the node identity addresses, e.g. identity = [\"192.0.2.1\", \"2001:db8:1d::1\"]",
        false,
        report,
    );
    if identity_complete && !identity.is_empty() && !identity.iter().any(IpAddr::is_ipv4) {
        report.add(
            "node.identity",
            "no IPv4 identity address: the BGP identifier is taken from it",
            "add the node's IPv4 identity address",
        );
    }

    let internet = match &raw.internet_interface {
        None => {
            report.missing(
                "node.internet_interface",
                "name the Internet-facing interface XDP attaches to, e.g. internet_interface = \"eth0\"",
            );
            None
        }
        Some(name) => report.check("node.internet_interface", values::ifname(name)),
    };

    let attach = match &raw.xdp_mode {
        None => AttachMode::Auto,
        Some(mode) => report
            .check(
                "node.xdp_mode",
                AttachMode::from_str(mode).map_err(|e| {
                    bad(e, "native (driver only), generic (any interface, slower) or auto (native, falling back to generic)")
                }),
            )
            .unwrap_or_default(),
    };

    let (underlay, underlay_complete) = addresses(
        raw.underlay.as_deref(),
        "node.underlay",
        "list the node's Internet-facing addresses, e.g. underlay = [\"198.51.100.2\", \"2001:db8:ff::2\"]",
        true,
        report,
    );
    let _ = underlay_complete;

    let (anycast, anycast_complete) = anycast(raw.anycast.as_deref(), report);

    let asn = match raw.asn {
        None => {
            report.missing(
                "node.asn",
                "give the CDN's ASN, e.g. asn = 64500: it originates the anycast prefixes and is the overlay's iBGP ASN",
            );
            None
        }
        Some(n) => report.check("node.asn", values::asn(n)),
    };

    let mtu = raw
        .mtu
        .and_then(|n| report.check("node.mtu", values::int::<u16>(n, MIN_MTU, 65535, "an MTU")))
        .unwrap_or(1500);
    let needs_v6 = underlay.iter().any(IpAddr::is_ipv6);
    if needs_v6 && mtu < MIN_MTU_V6 {
        report.add(
            "node.mtu",
            format!("{mtu} is below the {MIN_MTU_V6} bytes IPv6 requires, and the underlay has an IPv6 address"),
            format!("give the underlay's MTU, at least {MIN_MTU_V6}"),
        );
    }

    let encap = match raw.encap.as_deref() {
        None | Some("ipip") => Encap::IpIp,
        Some("gue") => Encap::Gue,
        Some(other) => {
            report.add(
                "node.encap",
                format!("unknown encapsulation `{other}`"),
                "ipip (IP-in-IP, the default) or gue (UDP, spreads better over RSS and ECMP)",
            );
            Encap::IpIp
        }
    };
    let gue_port = raw.gue_port.and_then(|n| {
        report.check(
            "node.gue_port",
            values::int::<u16>(n, 1, 65535, "a UDP port"),
        )
    });
    if encap == Encap::Gue && raw.gue_port.is_none() {
        report.missing(
            "node.gue_port",
            "encap = \"gue\" needs the UDP port peers listen on, e.g. gue_port = 6080 (the same on every node)",
        );
    }

    let maglev_size = match raw.maglev_size {
        None => DEFAULT_MAGLEV_SIZE,
        Some(n) => report
            .check("node.maglev_size", maglev_size(n))
            .unwrap_or(DEFAULT_MAGLEV_SIZE),
    };
    let flow_entries = raw
        .flow_entries
        .and_then(|n| {
            report.check(
                "node.flow_entries",
                values::int::<u32>(n, 1, MAX_FLOW_ENTRIES, "the flow table size"),
            )
        })
        .unwrap_or(DEFAULT_FLOW_ENTRIES);

    Node {
        name,
        identity,
        identity_complete,
        internet,
        attach,
        underlay,
        anycast,
        anycast_complete,
        asn,
        mtu,
        encap,
        gue_port,
        maglev_size,
        flow_entries,
    }
}

/// A required list of unicast addresses: the addresses that parsed, and
/// whether all did. With `one_per_family`, a second address of a family
/// is a problem.
fn addresses(
    raw: Option<&[String]>,
    key: &str,
    hint: &str,
    one_per_family: bool,
    report: &mut Report,
) -> (Vec<IpAddr>, bool) {
    let Some(list) = raw else {
        report.missing(key, hint);
        return (Vec::new(), false);
    };
    if list.is_empty() {
        report.add(key, "the list is empty", hint);
        return (Vec::new(), false);
    }
    let mut out: Vec<IpAddr> = Vec::new();
    let mut complete = true;
    for (i, text) in list.iter().enumerate() {
        let key = format!("{key}[{i}]");
        let Some(addr) = report.check(&key, values::unicast(text)) else {
            complete = false;
            continue;
        };
        if out.contains(&addr) {
            report.add(
                key,
                format!("{addr} is listed twice"),
                "list each address once",
            );
            continue;
        }
        if one_per_family && out.iter().any(|a| a.is_ipv4() == addr.is_ipv4()) {
            report.add(
                key,
                format!(
                    "a second {} address ({addr}): the node has one underlay address per family",
                    if addr.is_ipv4() { "IPv4" } else { "IPv6" }
                ),
                "keep the address the overlay and the data plane should use",
            );
            continue;
        }
        out.push(addr);
    }
    (out, complete)
}

/// `node.anycast`: the prefixes, and whether all parsed.
fn anycast(raw: Option<&[String]>, report: &mut Report) -> (Vec<Prefix>, bool) {
    let hint = "list the anycast prefixes the node announces, e.g. anycast = [\"203.0.113.0/24\", \"2001:db8:ac::/48\"]";
    let Some(list) = raw else {
        report.missing("node.anycast", hint);
        return (Vec::new(), false);
    };
    if list.is_empty() {
        report.add("node.anycast", "the list is empty", hint);
        return (Vec::new(), false);
    }
    let mut out: Vec<Prefix> = Vec::new();
    let mut complete = true;
    for (i, text) in list.iter().enumerate() {
        let key = format!("node.anycast[{i}]");
        let prefix = match values::prefix(text) {
            Ok(p) => p,
            Err(PrefixBad::Malformed(b)) => {
                report.bad(key, b);
                complete = false;
                continue;
            }
            Err(PrefixBad::HostBits(b, masked)) => {
                report.bad(&key, b);
                masked
            }
        };
        if prefix.length() == 0 {
            report.add(
                key,
                format!("{prefix} is the default route"),
                "announce the CDN's own prefixes, never a default route",
            );
            complete = false;
            continue;
        }
        if let Some(other) = out.iter().find(|o| o.covers(&prefix) || prefix.covers(o)) {
            report.add(
                key,
                format!("{prefix} overlaps {other}, listed before it"),
                "list each anycast prefix once, without overlaps",
            );
            continue;
        }
        out.push(prefix);
    }
    for (family, v4) in [("IPv4", true), ("IPv6", false)] {
        let count = out.iter().filter(|p| p.addr().is_ipv4() == v4).count();
        if count > MAX_PREFIXES {
            report.add(
                "node.anycast",
                format!("{count} {family} prefixes: the data plane holds at most {MAX_PREFIXES} per family"),
                format!("announce at most {MAX_PREFIXES} {family} prefixes (aggregate neighbouring ones)"),
            );
        }
    }
    (out, complete)
}

/// `node.maglev_size`: a prime the map can hold.
fn maglev_size(n: i64) -> Result<u32, values::Bad> {
    let hint = format!(
        "use a prime at least 100 × the most peers one service has: {DEFAULT_MAGLEV_SIZE} (the default) suits 64, {} the data plane's {MAX_PEERS}",
        maglev::next_prime(100 * MAX_PEERS)
    );
    let size: u32 = values::int(n, 101, MAX_MAGLEV_SIZE, "the Maglev table size")
        .map_err(|b| bad(b.message, hint.clone()))?;
    if !maglev::is_prime(size) {
        return Err(bad(
            format!(
                "{size} is not a prime (the next prime is {})",
                maglev::next_prime(size)
            ),
            hint,
        ));
    }
    Ok(size)
}

/// An optional integer in `lo..=hi` with a default; `what` names what it
/// counts in the message. `None` after a problem.
pub(super) fn int_or<T: TryFrom<i64> + std::fmt::Display>(
    raw: Option<i64>,
    key: &str,
    lo: i64,
    hi: i64,
    default: T,
    what: &str,
    report: &mut Report,
) -> Option<T> {
    let Some(n) = raw else {
        return Some(default);
    };
    let result = values::int(n, lo, hi, what).map_err(|b| {
        bad(
            b.message,
            format!("{}, or leave it out for the default, {default}", b.hint),
        )
    });
    report.check(key, result)
}

/// An optional duration with a default.
pub(super) fn duration_or(
    raw: Option<&String>,
    key: &str,
    default: Duration,
    report: &mut Report,
) -> Duration {
    raw.and_then(|t| report.check(key, values::duration(t)))
        .unwrap_or(default)
}

/// An optional duration with a default that must be above zero.
pub(super) fn positive_duration_or(
    raw: Option<&String>,
    key: &str,
    default: Duration,
    report: &mut Report,
) -> Duration {
    let d = duration_or(raw, key, default, report);
    if d.is_zero() {
        report.add(
            key,
            "must be longer than zero",
            format!("leave it out for the default, {}", show_duration(default)),
        );
        return default;
    }
    d
}

/// `[netlink]`, parsed.
pub(super) struct Netlink {
    /// The reconciler's config.
    pub config: Option<NetlinkConfig>,
    /// Which VIPs go on the agent's interface (for the control logic).
    pub vips: VipAddresses,
}

/// Route protocol numbers the kernel and well-known routing daemons use
/// (`/etc/iproute2/rt_protos`): owning routes with one of them would
/// touch someone else's.
const TAKEN_PROTOCOLS: &[(u8, &str)] = &[
    (0, "unspec"),
    (1, "redirect"),
    (2, "kernel"),
    (3, "boot"),
    (4, "static"),
    (8, "gated"),
    (9, "ra"),
    (10, "mrt"),
    (11, "zebra"),
    (12, "bird"),
    (13, "dnrouted"),
    (14, "xorp"),
    (15, "ntk"),
    (16, "dhcp"),
    (17, "mrouted"),
    (18, "keepalived"),
    (42, "babel"),
    (99, "openr"),
    (186, "bgp"),
    (187, "isis"),
    (188, "ospf"),
    (189, "rip"),
    (192, "eigrp"),
];

/// Parses `[netlink]`.
pub(super) fn netlink(raw: &raw::Netlink, node: &Node, report: &mut Report) -> Netlink {
    let link = match &raw.interface {
        None => Some(DEFAULT_LINK.to_owned()),
        Some(name) => report.check("netlink.interface", values::ifname(name)),
    };
    if let (Some(link), Some(internet)) = (&link, &node.internet) {
        if link == internet {
            report.add(
                "netlink.interface",
                format!("`{link}` is the Internet interface"),
                format!("the agent creates and owns this interface: give it a name of its own (default {DEFAULT_LINK})"),
            );
        }
    }
    let table = match raw.table {
        None => Some(DEFAULT_TABLE),
        Some(n) => match values::int::<u32>(n, 1, i64::from(u32::MAX), "a routing table") {
            Ok(t @ 253..=255) => {
                report.add(
                    "netlink.table",
                    format!("table {t} is the kernel's {} table", ["default", "main", "local"][(t - 253) as usize]),
                    format!("the agent removes routes in its table that it does not want: give it a table of its own (default {DEFAULT_TABLE})"),
                );
                None
            }
            other => report.check("netlink.table", other),
        },
    };
    let protocol = match raw.protocol {
        None => Some(DEFAULT_PROTOCOL),
        Some(n) => match values::int::<u8>(n, 0, 255, "a route protocol number") {
            Ok(p) => match TAKEN_PROTOCOLS.iter().find(|(q, _)| *q == p) {
                Some((_, name)) => {
                    report.add(
                        "netlink.protocol",
                        format!("protocol {p} is `{name}`'s"),
                        format!("the agent owns every route and neighbour with its protocol: use an unassigned number (default {DEFAULT_PROTOCOL})"),
                    );
                    None
                }
                None => Some(p),
            },
            Err(b) => {
                report.bad("netlink.protocol", b);
                None
            }
        },
    };
    let period = positive_duration_or(
        raw.period.as_ref(),
        "netlink.period",
        Duration::from_secs(10),
        report,
    );
    let vips = match raw.vips.as_deref() {
        None | Some("configured") => VipAddresses::Configured,
        Some("healthy-only") => VipAddresses::HealthyOnly,
        Some(other) => {
            report.add(
                "netlink.vips",
                format!("unknown choice `{other}`"),
                "configured (every VIP on the interface, the default) or healthy-only (only VIPs of services healthy here)",
            );
            VipAddresses::Configured
        }
    };
    let config = (|| {
        Some(NetlinkConfig {
            ownership: Ownership {
                link: link?,
                table: table?,
                protocol: protocol?,
            },
            internet: node.internet.clone()?,
            period,
            keep_state: raw.keep_state.unwrap_or(false),
        })
    })();
    Netlink { config, vips }
}

/// `[daemon]`, parsed (each `None` after a problem).
pub(super) struct Daemon {
    /// The control socket.
    pub api_socket: Option<PathBuf>,
    /// The metrics endpoint, if any.
    pub metrics: Option<Option<SocketAddr>>,
    /// The log format.
    pub log_format: Option<LogFormat>,
    /// The log filter.
    pub log_level: Option<String>,
    /// The pin directory.
    pub pin_dir: Option<PathBuf>,
}

/// The metrics endpoint's port when `daemon.metrics` gives none.
const DEFAULT_METRICS_PORT: u16 = 9179;

/// Parses `[daemon]`.
pub(super) fn daemon(raw: &raw::Daemon, node: &Node, report: &mut Report) -> Daemon {
    let api_socket = match &raw.api_socket {
        None => Some(PathBuf::from(DEFAULT_API_SOCKET)),
        Some(p) => report.check("daemon.api_socket", values::abs_path(p)),
    };
    let metrics = match &raw.metrics {
        None => Some(None),
        Some(text) => report
            .check(
                "daemon.metrics",
                values::socket_with_port(text, DEFAULT_METRICS_PORT),
            )
            .map(Some),
    };
    let log_format = match raw.log_format.as_deref() {
        None | Some("human") => Some(LogFormat::Human),
        Some("json") => Some(LogFormat::Json),
        Some(other) => {
            report.add(
                "daemon.log_format",
                format!("unknown log format `{other}`"),
                choices(&["human (the default)", "json"]),
            );
            None
        }
    };
    let log_level = match &raw.log_level {
        None => Some(DEFAULT_LOG_LEVEL.to_owned()),
        Some(level) => report.check("daemon.log_level", log_level(level)),
    };
    let pin_dir = match &raw.pin_dir {
        Some(p) => report.check("daemon.pin_dir", values::abs_path(p)),
        None => node.internet.as_ref().map(|internet| {
            crate::dataplane::interface_pin_dir(DEFAULT_PIN_ROOT.as_ref(), internet)
        }),
    };
    Daemon {
        api_socket,
        metrics,
        log_format,
        log_level,
        pin_dir,
    }
}

/// Level names an `EnvFilter` directive may use.
const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// A log filter: `EnvFilter` directives separated by commas, each a level
/// (`info`) or a target and a level (`edge_agent::overlay=debug`).
/// Directives with span filters (`[...]`) are taken as they are. A lone
/// word that is not a level would mean "everything from a target of that
/// name", almost surely a typo, so it is refused. (Checked here rather
/// than by `EnvFilter` itself, which would bring the logging stack into
/// the library.)
fn log_level(text: &str) -> Result<String, values::Bad> {
    let hint = "a level (error, warn, info, debug, trace) or directives such as \"info,edge_agent::overlay=debug\"";
    let filter = text.trim();
    if filter.is_empty() {
        return Err(bad("the log filter is empty", hint));
    }
    for directive in filter.split(',').map(str::trim) {
        if directive.contains('[') {
            continue;
        }
        let (target, level) = match directive.split_once('=') {
            Some((target, level)) => (Some(target), level),
            None => (None, directive),
        };
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(bad(
                format!("`{level}` in `{text}` is not a log level"),
                hint,
            ));
        }
        if let Some(target) = target {
            let valid = !target.is_empty()
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'));
            if !valid {
                return Err(bad(
                    format!("`{target}` in `{text}` is not a log target"),
                    hint,
                ));
            }
        }
    }
    Ok(filter.to_owned())
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
