//! The status document (`edge-agent status`, `--json`): node fitness,
//! upstream sessions, overlay adjacencies, services with their local
//! health and remote peers, data-plane counters with rates, the DNS
//! service. Built from the node's published state; rendered as JSON or as
//! tables.

use std::{collections::BTreeMap, fmt::Write as _, time::Instant};

use serde::{Deserialize, Serialize};

use crate::{
    authdns::DnsServer,
    bfd::{BfdStatus, endpoint::Drops},
    bgp::speaker::Status as UpstreamStatus,
    control::{fitness::Announce, runtime::ControlStatus},
    health::HealthMap,
    overlay::status::OverlayStatus,
};

/// Everything `edge-agent status` shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusDoc {
    /// The node as a whole.
    pub node: NodeDoc,
    /// Upstream BGP sessions.
    pub upstream: Vec<UpstreamDoc>,
    /// Overlay adjacencies.
    pub overlay: Vec<AdjacencyDoc>,
    /// Connections refused on the overlay control endpoint, per reason.
    pub overlay_refused: BTreeMap<String, u64>,
    /// Who may start a handshake on the control endpoint.
    #[serde(default)]
    pub admission: AdmissionDoc,
    /// Local services.
    pub services: Vec<ServiceDoc>,
    /// Data-plane counters (non-zero ones), with rates per second.
    pub counters: BTreeMap<String, CounterDoc>,
    /// The authoritative DNS service, if the node runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsDoc>,
    /// BFD sessions: the upstream ones, then the overlay's.
    #[serde(default)]
    pub bfd: Vec<BfdDoc>,
    /// Every BFD packet dropped, per plane (`upstream`, `overlay`) and
    /// reason, with those for no session (unknown discriminators, from
    /// strangers).
    #[serde(default)]
    pub bfd_dropped: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Admission on the overlay control endpoint: the limits, the
/// handshakes in progress, and the connections closed without one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdmissionDoc {
    /// Addresses counted as candidates.
    pub candidates: usize,
    /// Candidates' handshakes in progress, and their limit.
    pub candidate_handshakes: (usize, usize),
    /// Strangers' handshakes in progress, and their limit.
    pub stranger_handshakes: (usize, usize),
    /// Handshakes in progress at once from one stranger prefix.
    pub per_source: usize,
    /// The prefix lengths strangers are grouped by (IPv4, IPv6).
    pub prefixes: (u8, u8),
    /// Stranger handshakes started per second at most.
    pub stranger_rate: u32,
    /// Handshakes let start, per class (`candidate`, `stranger`).
    pub admitted: BTreeMap<String, u64>,
    /// Connections closed without a handshake, per reason.
    pub denied: BTreeMap<String, u64>,
}

impl AdmissionDoc {
    fn of(a: &crate::overlay::admission::AdmissionStatus) -> Self {
        use crate::overlay::admission::Class;
        let active = |c| a.active.get(&c).copied().unwrap_or(0);
        let config = a.config.clone().unwrap_or_default();
        let class = |c: &Class| match c {
            Class::Candidate => "candidate".to_string(),
            Class::Stranger => "stranger".to_string(),
        };
        AdmissionDoc {
            candidates: a.candidates,
            candidate_handshakes: (active(Class::Candidate), config.candidate_handshakes),
            stranger_handshakes: (active(Class::Stranger), config.stranger_handshakes),
            per_source: config.per_source,
            prefixes: (config.ipv4_prefix, config.ipv6_prefix),
            stranger_rate: config.rate,
            admitted: a.admitted.iter().map(|(c, n)| (class(c), *n)).collect(),
            denied: a.denied.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        }
    }
}

/// One BFD session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BfdDoc {
    /// What it guards ("upstream 198.51.100.1", "overlay pop-b").
    pub session: String,
    /// Single-hop or multihop, and the addresses.
    pub path: String,
    /// Our state.
    pub state: String,
    /// The peer's state, as it last said.
    pub remote_state: String,
    /// The interval we transmit at, milliseconds (negotiated).
    pub tx_interval_ms: Option<f64>,
    /// The detection time, milliseconds (negotiated).
    pub detection_time_ms: Option<f64>,
    /// Why it last went down.
    pub last_down: Option<String>,
    /// How often it came up.
    pub ups: u64,
    /// How often the path failed.
    pub failures: u64,
    /// Packets for it that were dropped, per reason.
    pub dropped: BTreeMap<String, u64>,
    /// Packets the kernel would not send.
    #[serde(default)]
    pub send_errors: u64,
}

impl BfdDoc {
    /// The document of one session's status.
    pub fn of(b: &BfdStatus) -> BfdDoc {
        let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        BfdDoc {
            session: b.name.clone(),
            path: b.key.to_string(),
            state: b.session.state.name().into(),
            remote_state: b.session.remote_state.name().into(),
            tx_interval_ms: ms(b.session.tx_interval),
            detection_time_ms: ms(b.session.detection_time),
            last_down: b.session.last_down.map(|d| d.to_string()),
            ups: b.session.counters.ups,
            failures: b.session.counters.failures,
            dropped: b
                .drops
                .iter()
                .map(|(r, n)| (r.name().to_string(), n))
                .collect(),
            send_errors: b.send_errors,
        }
    }
}

/// The authoritative DNS service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsDoc {
    /// Whether its listeners are up (`edge-agent dns stop` closes them).
    pub listening: bool,
    /// Where it listens (UDP and TCP each).
    pub listen: Vec<String>,
    /// The zones served.
    pub zones: Vec<ZoneDoc>,
    /// Queries received, by transport (`udp`, `tcp`).
    pub queries: BTreeMap<String, u64>,
    /// Responses sent, by outcome (`answer`, `nodata`, `nxdomain`,
    /// `refused`, `formerr`, `notimp`, `badvers`, `servfail`).
    pub responses: BTreeMap<String, u64>,
    /// Responses truncated (TC=1) to fit the client's UDP size.
    pub truncated: u64,
    /// UDP responses rate limiting dropped.
    pub rate_limited_dropped: u64,
    /// UDP responses rate limiting sent empty with TC=1.
    pub rate_limited_slipped: u64,
    /// Messages that got no response (no header, or not a query).
    pub ignored: u64,
    /// TCP connections accepted.
    pub tcp_connections: u64,
    /// TCP connections closed at once for being too many.
    pub tcp_refused: u64,
}

/// One zone served.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneDoc {
    /// Its origin.
    pub origin: String,
    /// The SOA serial.
    pub serial: u32,
    /// How many records.
    pub records: usize,
    /// The content digest: the same at every node serving the same data.
    pub digest: String,
}

impl DnsDoc {
    /// The document of a running service.
    pub fn of(server: &DnsServer) -> DnsDoc {
        let stats = server.stats();
        DnsDoc {
            listening: stats.listening,
            listen: server
                .listen_addresses()
                .iter()
                .map(ToString::to_string)
                .collect(),
            zones: server
                .zones()
                .zones()
                .iter()
                .map(|z| ZoneDoc {
                    origin: z.origin().to_string(),
                    serial: z.serial(),
                    records: z.len(),
                    digest: format!("{:016x}", z.digest()),
                })
                .collect(),
            queries: [("udp", stats.udp_queries), ("tcp", stats.tcp_queries)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            responses: stats
                .outcomes
                .iter()
                .map(|(o, n)| (o.name().to_string(), *n))
                .collect(),
            truncated: stats.truncated,
            rate_limited_dropped: stats.rate_limited_dropped,
            rate_limited_slipped: stats.rate_limited_slipped,
            ignored: stats.ignored,
            tcp_connections: stats.tcp_connections,
            tcp_refused: stats.tcp_refused,
        }
    }
}

/// The node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeDoc {
    /// Its overlay identity.
    pub identity: String,
    /// Whether it is fit for the Internet announcement.
    pub fit: bool,
    /// Why not, if not.
    pub unfit_because: Option<String>,
    /// The upstream announcement: announce, drain or withdraw.
    pub announcement: String,
    /// The operator drained it.
    pub drained: bool,
    /// The Internet interface is up.
    pub internet_up: Option<bool>,
}

/// One upstream session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpstreamDoc {
    /// The neighbour's address.
    pub neighbor: String,
    /// Its state.
    pub state: String,
    /// Seconds since Established.
    pub up_for_s: Option<u64>,
    /// How often it became Established.
    pub established_count: u64,
    /// What we announce to it.
    pub announced: Vec<String>,
    /// Prefixes it sends us.
    pub received: usize,
    /// Why it last went down.
    pub last_down: Option<String>,
    /// Its BFD session's state, if it has one.
    #[serde(default)]
    pub bfd: Option<String>,
}

/// One overlay adjacency.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdjacencyDoc {
    /// The peer's identity.
    pub peer: String,
    /// Its state.
    pub state: String,
    /// Its underlay address on the session.
    pub transport: Option<String>,
    /// How often it became Established.
    pub established_count: u64,
    /// Routes accepted from it.
    pub routes: usize,
    /// Routes rejected, per reason.
    pub rejected: BTreeMap<String, u64>,
    /// The private address in use toward it.
    pub private: Option<String>,
    /// Why the last attempt failed.
    pub last_failure: Option<String>,
    /// Its BFD session's state, if BFD runs.
    #[serde(default)]
    pub bfd: Option<String>,
}

/// One local service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceDoc {
    /// Its name.
    pub name: String,
    /// What the node acts on: up, draining or down.
    pub health: String,
    /// What the probes say.
    pub measured: String,
    /// The operator's setting: auto, down or drain.
    pub admin: String,
    /// The last probe results.
    pub probes: Vec<String>,
    /// Served here (the data plane's local bit).
    pub local: bool,
    /// Peers that serve it, with the address traffic goes to.
    pub remote: Vec<String>,
}

/// A counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterDoc {
    /// Its value.
    pub value: u64,
    /// Its rate per second over the last interval.
    pub rate: f64,
}

/// The pieces a status document is made of.
pub struct Sources<'a> {
    /// The overlay.
    pub overlay: &'a OverlayStatus,
    /// The control loop (and the counters it read).
    pub control: &'a ControlStatus,
    /// The health checks.
    pub health: &'a HealthMap,
    /// Upstream sessions with their neighbour's address.
    pub upstream: Vec<(String, UpstreamStatus)>,
    /// Whether the operator drained the node.
    pub drained: bool,
    /// The Internet interface's state.
    pub internet_up: Option<bool>,
    /// Service names and their data-plane ids.
    pub services: &'a [(String, u32)],
    /// The counters of the previous document, for rates.
    pub previous: Option<&'a (Instant, BTreeMap<String, u64>)>,
    /// The DNS service, if the node runs one.
    pub dns: Option<DnsDoc>,
    /// Each upstream session's BFD session, if it has one (in the order
    /// of `upstream`).
    pub upstream_bfd: Vec<Option<BfdStatus>>,
    /// Every BFD packet dropped, per plane, if the plane runs BFD.
    pub bfd_drops: Vec<(&'static str, Drops)>,
}

/// Builds the document.
pub fn build(s: &Sources<'_>) -> StatusDoc {
    let desired = s.control.desired.as_ref();
    let node = NodeDoc {
        identity: s
            .overlay
            .identity
            .as_ref()
            .map(|i| i.to_string())
            .unwrap_or_default(),
        fit: desired.is_some_and(|d| d.fit.is_ok()),
        unfit_because: desired.and_then(|d| d.fit.clone().err()),
        announcement: match desired.map(|d| d.upstream) {
            Some(Announce::Announce) => "announce",
            Some(Announce::Drain) => "drain",
            Some(Announce::Withdraw) | None => "withdraw",
        }
        .into(),
        drained: s.drained,
        internet_up: s.internet_up,
    };
    let upstream = s
        .upstream
        .iter()
        .zip(s.upstream_bfd.iter().chain(std::iter::repeat(&None)))
        .map(|((neighbor, st), bfd)| UpstreamDoc {
            neighbor: neighbor.clone(),
            state: st
                .state
                .map(|x| format!("{x:?}"))
                .unwrap_or_else(|| "Idle".into()),
            up_for_s: st.established_since.map(|t| t.elapsed().as_secs()),
            established_count: st.established_count,
            announced: st.announced.iter().map(|(p, _)| p.to_string()).collect(),
            received: st.received_prefixes,
            last_down: st.last_down.as_ref().map(|d| d.to_string()),
            bfd: bfd.as_ref().map(|b| b.session.state.name().into()),
        })
        .collect();
    let overlay = s
        .overlay
        .adjacencies
        .iter()
        .map(|(peer, a)| AdjacencyDoc {
            peer: peer.to_string(),
            state: a.state.name().into(),
            transport: a.transport.map(|t| t.to_string()),
            established_count: a.established_count,
            routes: a.routes,
            rejected: a
                .rejected
                .iter()
                .map(|(r, n)| (r.name().to_string(), *n))
                .collect(),
            private: a.private_in_use.map(|p| p.to_string()),
            last_failure: a.last_failure.clone(),
            bfd: a.bfd.as_ref().map(|b| b.session.state.name().into()),
        })
        .collect();
    let services = s
        .health
        .iter()
        .map(|(name, h)| {
            let id = s
                .services
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, id)| *id);
            let config_id = desired.and_then(|d| id.and_then(|id| d.services.get_key_value(&id)));
            ServiceDoc {
                name: name.clone(),
                health: h.effective.to_string(),
                measured: h.measured.to_string(),
                admin: h.admin.to_string(),
                probes: h.last_results.iter().map(|r| r.detail.clone()).collect(),
                local: config_id.is_some_and(|(_, st)| st.local),
                remote: config_id
                    .map(|(_, st)| {
                        st.backends
                            .iter()
                            .map(|(peer, at)| format!("{peer} via {at}"))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let mut counters = BTreeMap::new();
    if let Some(c) = &s.control.counters {
        for counter in edge_common::stats::Counter::ALL {
            let value = c.totals.get(*counter);
            if value == 0 {
                continue;
            }
            let rate = s
                .previous
                .and_then(|(at, prev)| {
                    let secs = c.at.checked_duration_since(*at)?.as_secs_f64();
                    let before = prev.get(counter.name())?;
                    (secs > 0.0).then(|| value.saturating_sub(*before) as f64 / secs)
                })
                .unwrap_or(0.0);
            counters.insert(counter.name().to_string(), CounterDoc { value, rate });
        }
    }
    StatusDoc {
        node,
        upstream,
        overlay,
        overlay_refused: s
            .overlay
            .refused
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        admission: AdmissionDoc::of(&s.overlay.admission),
        services,
        counters,
        dns: s.dns.clone(),
        bfd: s
            .upstream_bfd
            .iter()
            .flatten()
            .chain(
                s.overlay
                    .adjacencies
                    .values()
                    .filter_map(|a| a.bfd.as_ref()),
            )
            .map(BfdDoc::of)
            .collect(),
        bfd_dropped: s
            .bfd_drops
            .iter()
            .map(|(plane, drops)| {
                let reasons = drops
                    .iter()
                    .map(|(r, n)| (r.name().to_string(), n))
                    .collect();
                (plane.to_string(), reasons)
            })
            .collect(),
    }
}

/// The document as readable tables.
pub fn render(doc: &StatusDoc) -> String {
    let mut out = String::new();
    let n = &doc.node;
    let _ = writeln!(
        out,
        "node {}: {} ({}){}{}",
        n.identity,
        if n.fit { "fit" } else { "NOT FIT" },
        n.announcement,
        n.unfit_because
            .as_ref()
            .map(|w| format!(": {w}"))
            .unwrap_or_default(),
        if n.drained {
            ", drained by the operator"
        } else {
            ""
        },
    );
    let _ = writeln!(
        out,
        "internet interface: {}\n",
        match n.internet_up {
            Some(true) => "up",
            Some(false) => "down",
            None => "missing",
        }
    );
    let _ = writeln!(
        out,
        "{:<24} {:<12} {:<10} {:>8} {:>6}  announced",
        "UPSTREAM", "STATE", "BFD", "UP (s)", "RCVD"
    );
    for u in &doc.upstream {
        let _ = writeln!(
            out,
            "{:<24} {:<12} {:<10} {:>8} {:>6}  {}",
            u.neighbor,
            u.state,
            u.bfd.as_deref().unwrap_or("-"),
            u.up_for_s
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            u.received,
            u.announced.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "\n{:<24} {:<14} {:<10} {:<20} {:>6} {:>9}",
        "OVERLAY PEER", "STATE", "BFD", "TRANSPORT", "ROUTES", "REJECTED"
    );
    for a in &doc.overlay {
        let _ = writeln!(
            out,
            "{:<24} {:<14} {:<10} {:<20} {:>6} {:>9}{}",
            a.peer,
            a.state,
            a.bfd.as_deref().unwrap_or("-"),
            a.transport.as_deref().unwrap_or("-"),
            a.routes,
            a.rejected.values().sum::<u64>(),
            a.last_failure
                .as_ref()
                .map(|f| format!("  ({f})"))
                .unwrap_or_default()
        );
    }
    let a = &doc.admission;
    let _ = writeln!(
        out,
        "\ncontrol endpoint: {} candidate address(es); handshakes: candidates {}/{}, strangers {}/{} (≤ {} per /{} or /{}, ≤ {}/s); admitted {}; closed at once {}",
        a.candidates,
        a.candidate_handshakes.0,
        a.candidate_handshakes.1,
        a.stranger_handshakes.0,
        a.stranger_handshakes.1,
        a.per_source,
        a.prefixes.0,
        a.prefixes.1,
        a.stranger_rate,
        words(&a.admitted),
        words(&a.denied),
    );
    let _ = writeln!(
        out,
        "\n{:<12} {:<9} {:<9} {:<6} {:<6} remote peers",
        "SERVICE", "HEALTH", "MEASURED", "ADMIN", "LOCAL"
    );
    for s in &doc.services {
        let _ = writeln!(
            out,
            "{:<12} {:<9} {:<9} {:<6} {:<6} {}",
            s.name,
            s.health,
            s.measured,
            s.admin,
            if s.local { "yes" } else { "no" },
            if s.remote.is_empty() {
                "-".to_string()
            } else {
                s.remote.join(", ")
            }
        );
    }
    let _ = writeln!(
        out,
        "\n{:<28} {:>14} {:>12}",
        "COUNTER", "VALUE", "PER SECOND"
    );
    for (name, c) in &doc.counters {
        let _ = writeln!(out, "{name:<28} {:>14} {:>12.1}", c.value, c.rate);
    }
    if !doc.bfd.is_empty() || !doc.bfd_dropped.is_empty() {
        render_bfd(&mut out, &doc.bfd, &doc.bfd_dropped);
    }
    if let Some(dns) = &doc.dns {
        render_dns(&mut out, dns);
    }
    out
}

/// `a 3, b 1`, or `none`.
fn words(counts: &BTreeMap<String, u64>) -> String {
    if counts.values().all(|n| *n == 0) {
        return "none".into();
    }
    counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_bfd(
    out: &mut String,
    sessions: &[BfdDoc],
    dropped: &BTreeMap<String, BTreeMap<String, u64>>,
) {
    let _ = writeln!(
        out,
        "\n{:<28} {:<10} {:<10} {:>8} {:>9} {:>8}  last down; dropped",
        "BFD SESSION", "STATE", "PEER", "TX (ms)", "DETECT", "FAILURES"
    );
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"));
    for b in sessions {
        let dropped: Vec<String> = b.dropped.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let _ = writeln!(
            out,
            "{:<28} {:<10} {:<10} {:>8} {:>9} {:>8}  {}; {}",
            b.session,
            b.state,
            b.remote_state,
            ms(b.tx_interval_ms),
            ms(b.detection_time_ms),
            b.failures,
            b.last_down.as_deref().unwrap_or("-"),
            if dropped.is_empty() {
                "none".to_string()
            } else {
                dropped.join(", ")
            },
        );
    }
    for (plane, reasons) in dropped.iter().filter(|(_, r)| !r.is_empty()) {
        let all: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let _ = writeln!(out, "BFD packets dropped ({plane}): {}", all.join(", "));
    }
}

fn render_dns(out: &mut String, dns: &DnsDoc) {
    let _ = writeln!(
        out,
        "\nDNS: {} on {}",
        if dns.listening {
            "listening"
        } else {
            "STOPPED"
        },
        dns.listen.join(", ")
    );
    for z in &dns.zones {
        let _ = writeln!(
            out,
            "  zone {:<28} serial {:<10} {:>6} records  digest {}",
            z.origin, z.serial, z.records, z.digest
        );
    }
    let join = |m: &BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "  queries: {}", join(&dns.queries));
    let _ = writeln!(out, "  responses: {}", join(&dns.responses));
    let _ = writeln!(
        out,
        "  truncated {}, rate-limited: dropped {} slipped {}, ignored {}, tcp connections {} (refused {})",
        dns.truncated,
        dns.rate_limited_dropped,
        dns.rate_limited_slipped,
        dns.ignored,
        dns.tcp_connections,
        dns.tcp_refused
    );
}
