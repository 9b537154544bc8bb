//! `[overlay]`: the authenticated overlay between edge nodes, into an
//! [`OverlayConfig`]: the control endpoint (on an underlay address), the
//! trust material and allow-list, admission (`max_handshakes` and
//! `[overlay.strangers]`), the import policy's ranges, static peers and
//! SRV discovery, timers, BFD (see [`super::bfd`]).
//! [`OverlayConfig::validate`] runs last, its error reported under the
//! key it is about.

use std::{collections::BTreeSet, net::SocketAddr, str::FromStr, time::Duration};

use hickory_proto::rr::Name;

use super::{
    Checks, Report, bfd, files,
    node::{Node, int_or, positive_duration_or},
    raw,
    values::{self, PrefixBad, show_duration},
};
use crate::{
    bgp::message::Prefix,
    overlay::{
        adjacency::Timers,
        admission::AdmissionConfig,
        config::{ConfigError, DEFAULT_PORT, OverlayConfig},
        discovery::{Candidate, SERVICE, Source, SrvQuery},
        identity::Identity,
        import::ImportPolicy,
        trust::{DEFAULT_HANDSHAKE_TIMEOUT, TrustConfig},
    },
};

/// The overlay's iBGP hold time unless one is given.
const DEFAULT_HOLD_TIME: u16 = 9;
/// Routes accepted from one peer unless a limit is given.
const DEFAULT_MAX_ROUTES: usize = 64;
/// TLS handshakes at once unless a limit is given.
const DEFAULT_MAX_HANDSHAKES: usize = 64;
/// How often the trust files are checked unless said otherwise.
const DEFAULT_TRUST_CHECK: Duration = Duration::from_secs(5);
/// How often SRV records are asked again unless said otherwise.
const DEFAULT_SRV_REFRESH: Duration = Duration::from_secs(30);
/// The longest a stranger may be given to send its ClientHello.
const MAX_FIRST_FLIGHT: Duration = Duration::from_secs(10);
/// The longest a stranger's whole handshake may be given.
const MAX_STRANGER_TIMEOUT: Duration = Duration::from_secs(60);

/// Parses `[overlay]`; `None` after a problem.
pub(super) fn overlay(
    raw: &raw::Overlay,
    node: &Node,
    checks: Checks,
    report: &mut Report,
) -> Option<OverlayConfig> {
    let before = report.len();

    let listen = listen(raw, node, report);
    let underlay_other = listen.and_then(|l| {
        node.underlay
            .iter()
            .copied()
            .find(|a| a.is_ipv4() != l.ip().is_ipv4())
    });

    let trust = trust(raw, report);
    let allow = trust.as_ref().map(|t| &t.allow);

    let identity_ranges = match &raw.identity_ranges {
        None => {
            report.missing(
                "overlay.identity_ranges",
                "list the ranges node identities come from, e.g. identity_ranges = [\"192.0.2.0/24\", \"2001:db8:1d::/48\"]",
            );
            None
        }
        Some(list) => ranges(list, "overlay.identity_ranges", report),
    };
    let service_ranges = match &raw.service_ranges {
        None => Some(node.anycast.clone()),
        Some(list) => ranges(list, "overlay.service_ranges", report),
    };
    let private_ranges = match &raw.private_ranges {
        None => Some(Vec::new()),
        Some(list) => ranges(list, "overlay.private_ranges", report),
    };
    if let Some(identity_ranges) = &identity_ranges {
        if node.identity_complete {
            for (i, addr) in node.identity.iter().enumerate() {
                if !identity_ranges.iter().any(|r| r.contains(*addr)) {
                    report.add(
                        format!("node.identity[{i}]"),
                        format!("{addr} is outside the identity ranges (overlay.identity_ranges)"),
                        "peers accept identity routes only inside the identity ranges: use an address inside them, or widen the ranges",
                    );
                }
            }
        }
    }
    if let (Some(service_ranges), true, Some(_)) =
        (&service_ranges, node.anycast_complete, &raw.service_ranges)
    {
        for prefix in &node.anycast {
            if !service_ranges.iter().any(|r| r.covers(prefix)) {
                report.add(
                    "overlay.service_ranges",
                    format!("the anycast prefix {prefix} is not inside the service ranges"),
                    "peers accept service routes only inside the service ranges: cover every anycast prefix, or leave service_ranges out (it defaults to node.anycast)",
                );
            }
        }
    }
    for (key, list) in [
        ("overlay.identity_ranges", &identity_ranges),
        ("overlay.service_ranges", &service_ranges),
        ("overlay.private_ranges", &private_ranges),
    ] {
        for (i, range) in list.iter().flatten().enumerate() {
            for addr in &node.underlay {
                if range.contains(*addr) {
                    report.add(
                        format!("{key}[{i}]"),
                        format!("{range} contains the underlay address {addr}"),
                        "peers refuse next hops inside the overlay's ranges, so they would drop our routes: keep underlay addresses out of them",
                    );
                }
            }
        }
    }

    let max_routes = match raw.max_routes {
        None => Some(DEFAULT_MAX_ROUTES),
        Some(n) => report.check(
            "overlay.max_routes",
            values::int::<usize>(n, 1, 1_000_000, "a route limit"),
        ),
    };
    let hold_time = match raw.hold_time {
        None => Some(DEFAULT_HOLD_TIME),
        Some(n) => report.check("overlay.hold_time", values::hold_time(n)),
    };
    let max_handshakes = match raw.max_handshakes {
        None => Some(DEFAULT_MAX_HANDSHAKES),
        Some(n) => report.check(
            "overlay.max_handshakes",
            values::int::<usize>(n, 1, 4096, "a handshake limit"),
        ),
    };
    let admission = strangers(&raw.strangers, max_handshakes, report);
    let trust_check = positive_duration_or(
        raw.trust_check.as_ref(),
        "overlay.trust_check",
        DEFAULT_TRUST_CHECK,
        report,
    );
    let defaults = Timers::default();
    let timers = Timers {
        backoff_min: positive_duration_or(
            raw.backoff_min.as_ref(),
            "overlay.backoff_min",
            defaults.backoff_min,
            report,
        ),
        backoff_max: positive_duration_or(
            raw.backoff_max.as_ref(),
            "overlay.backoff_max",
            defaults.backoff_max,
            report,
        ),
        ..defaults
    };
    if timers.backoff_min > timers.backoff_max {
        report.add(
            "overlay.backoff_max",
            "shorter than backoff_min",
            "the wait after a failure doubles from backoff_min up to backoff_max: make backoff_max at least backoff_min",
        );
    }

    let private_addr = match &raw.private_address {
        None => None,
        Some(text) => {
            let addr = report.check("overlay.private_address", values::unicast(text));
            if let (Some(addr), Some(ranges)) = (addr, &private_ranges) {
                if !ranges.iter().any(|r| r.contains(addr)) {
                    report.add(
                        "overlay.private_address",
                        format!("{addr} is outside the private ranges (overlay.private_ranges)"),
                        "peers accept a private address only inside the private ranges: add a range that holds it",
                    );
                }
            }
            addr
        }
    };
    let private_to = identities(
        raw.private_to.as_deref().unwrap_or(&[]),
        "overlay.private_to",
        report,
    );
    let static_peers = peers(&raw.peers, node, allow, report);
    let (srv, srv_refresh) = discovery(&raw.discovery, report);
    let bfd = bfd::overlay(raw.bfd.as_ref(), report);

    if checks.files {
        if let Some(trust) = &trust {
            files::trust(trust, node, report);
        }
    }

    let config = OverlayConfig {
        listen: listen?,
        underlay_other,
        trust: trust?,
        asn: node.asn?,
        node_addrs: node.identity.clone(),
        private_addr,
        private_to: private_to?,
        import: ImportPolicy {
            asn: node.asn?,
            identity_ranges: identity_ranges?,
            service_ranges: service_ranges?,
            private_ranges: private_ranges?,
            max_routes: max_routes?,
        },
        static_peers: static_peers?,
        srv: srv?,
        srv_refresh,
        hold_time: hold_time?,
        timers,
        bfd: bfd?,
        trust_check,
        admission: admission?,
        advertise_after_trust: true,
    };
    if report.len() != before {
        return None;
    }
    // What the overlay itself checks, should anything have slipped past
    // the checks above.
    if let Err(e) = config.validate() {
        let key = match e {
            ConfigError::NoIpv4Identity | ConfigError::IdentityOutsideRanges(_) => "node.identity",
            ConfigError::PrivateOutsideRanges(_) => "overlay.private_address",
            ConfigError::RangeTooWide(_) => "overlay.identity_ranges",
            ConfigError::WildcardListen(_) => "overlay.listen",
            ConfigError::Invalid(_) => "overlay",
        };
        report.add(
            key,
            e.to_string(),
            "see docs/edge.example.toml for what each key takes",
        );
        return None;
    }
    Some(config)
}

/// `listen`: an underlay address (default: the first), port 4179 unless
/// given.
fn listen(raw: &raw::Overlay, node: &Node, report: &mut Report) -> Option<SocketAddr> {
    let Some(text) = &raw.listen else {
        return node
            .underlay
            .first()
            .map(|a| SocketAddr::new(*a, DEFAULT_PORT));
    };
    let addr = report.check(
        "overlay.listen",
        values::socket_with_port(text, DEFAULT_PORT),
    )?;
    if !node.underlay.is_empty() && !node.underlay.contains(&addr.ip()) {
        let listed: Vec<String> = node.underlay.iter().map(ToString::to_string).collect();
        report.add(
            "overlay.listen",
            format!(
                "{} is not one of the node's underlay addresses ({})",
                addr.ip(),
                listed.join(", ")
            ),
            "the control endpoint listens on an underlay address (peers see it as our next hop): use one from node.underlay, or leave listen out for the first",
        );
        return None;
    }
    Some(addr)
}

/// `[overlay.strangers]`, with the candidates' budget (`[overlay]
/// max_handshakes`, `None` after a problem there); `None` after a
/// problem.
fn strangers(
    raw: &raw::Strangers,
    candidate_handshakes: Option<usize>,
    report: &mut Report,
) -> Option<AdmissionConfig> {
    let before = report.len();
    let d = AdmissionConfig::default();
    let key = |name: &str| format!("overlay.strangers.{name}");
    let handshakes = int_or(
        raw.handshakes,
        &key("handshakes"),
        1,
        1024,
        d.stranger_handshakes,
        "the handshakes all strangers together may have in progress",
        report,
    );
    let per_source = int_or(
        raw.per_source,
        &key("per_source"),
        1,
        1024,
        d.per_source,
        "the handshakes one stranger source prefix may have in progress",
        report,
    );
    if let (Some(handshakes), Some(per_source)) = (handshakes, per_source) {
        if per_source > handshakes {
            report.add(
                key("per_source"),
                format!(
                    "{per_source} is more than the {handshakes} handshakes all strangers together may have (overlay.strangers.handshakes)"
                ),
                "one source prefix can never hold more than the strangers' whole budget: lower per_source, or raise handshakes",
            );
        }
    }
    let rate = int_or(
        raw.rate,
        &key("rate"),
        1,
        100_000,
        d.rate,
        "the handshakes strangers may start per second",
        report,
    );
    let burst = match raw.burst {
        // A burst of one second's worth unless said otherwise.
        None if raw.rate.is_some() => rate,
        _ => int_or(
            raw.burst,
            &key("burst"),
            1,
            100_000,
            d.burst,
            "the handshakes strangers may start at once after a quiet spell",
            report,
        ),
    };
    let first_flight = deadline(
        raw.first_flight.as_deref(),
        &key("first_flight"),
        d.first_flight,
        MAX_FIRST_FLIGHT,
        report,
    );
    let timeout = deadline(
        raw.timeout.as_deref(),
        &key("timeout"),
        d.timeout,
        MAX_STRANGER_TIMEOUT,
        report,
    );
    if let (Some(first_flight), Some(timeout)) = (first_flight, timeout) {
        if timeout < first_flight {
            let given = if raw.timeout.is_some() {
                ""
            } else {
                " (the default)"
            };
            report.add(
                key("timeout"),
                format!(
                    "{}{given} is shorter than first_flight ({})",
                    show_duration(timeout),
                    show_duration(first_flight)
                ),
                "timeout bounds the whole handshake, ClientHello included: make it at least first_flight",
            );
        }
    }
    let ipv4_prefix = int_or(
        raw.ipv4_prefix,
        &key("ipv4_prefix"),
        8,
        32,
        d.ipv4_prefix,
        "the IPv4 prefix length strangers are grouped by",
        report,
    );
    let ipv6_prefix = int_or(
        raw.ipv6_prefix,
        &key("ipv6_prefix"),
        16,
        128,
        d.ipv6_prefix,
        "the IPv6 prefix length strangers are grouped by",
        report,
    );
    if report.len() != before {
        return None;
    }
    Some(AdmissionConfig {
        candidate_handshakes: candidate_handshakes?,
        stranger_handshakes: handshakes?,
        per_source: per_source?,
        rate: rate?,
        burst: burst?,
        first_flight: first_flight?,
        timeout: timeout?,
        ipv4_prefix: ipv4_prefix?,
        ipv6_prefix: ipv6_prefix?,
    })
}

/// A stranger's deadline at `key`: above zero and at most `max`;
/// `default` when not given, `None` after a problem.
fn deadline(
    raw: Option<&str>,
    key: &str,
    default: Duration,
    max: Duration,
    report: &mut Report,
) -> Option<Duration> {
    let Some(text) = raw else {
        return Some(default);
    };
    let d = report.check(key, values::duration(text))?;
    if d.is_zero() || d > max {
        report.add(
            key,
            format!(
                "`{text}` is out of range: it must be longer than zero and at most {}",
                show_duration(max)
            ),
            format!(
                "give a duration up to {}, or leave it out for the default, {}",
                show_duration(max),
                show_duration(default)
            ),
        );
        return None;
    }
    Some(d)
}

/// The trust files and the allow-list.
fn trust(raw: &raw::Overlay, report: &mut Report) -> Option<TrustConfig> {
    let mut file = |value: &Option<String>, name: &str, what: &str| match value {
        None => {
            report.missing(
                format!("overlay.{name}"),
                format!("give the path of {what}, e.g. {name} = \"/etc/edge/{name}.pem\""),
            );
            None
        }
        Some(path) => report.check(format!("overlay.{name}"), values::abs_path(path)),
    };
    let ca = file(
        &raw.ca,
        "ca",
        "the PEM bundle of CA certificates peers must chain to",
    );
    let cert = file(
        &raw.cert,
        "cert",
        "this node's PEM certificate (edge://<name>)",
    );
    let key = file(&raw.key, "key", "this node's PEM private key");
    let crl = match &raw.crl {
        None => Some(None),
        Some(path) => report
            .check("overlay.crl", values::abs_path(path))
            .map(Some),
    };
    let allow = identities(raw.allow.as_deref().unwrap_or(&[]), "overlay.allow", report);
    let handshake_timeout = positive_duration_or(
        raw.handshake_timeout.as_ref(),
        "overlay.handshake_timeout",
        DEFAULT_HANDSHAKE_TIMEOUT,
        report,
    );
    Some(TrustConfig {
        ca_bundle: ca?,
        cert: cert?,
        key: key?,
        crl: crl?,
        allow: allow?,
        handshake_timeout,
    })
}

/// A list of identities under `key`.
fn identities(list: &[String], key: &str, report: &mut Report) -> Option<BTreeSet<Identity>> {
    let mut out = BTreeSet::new();
    let mut fine = true;
    for (i, text) in list.iter().enumerate() {
        match report.check(format!("{key}[{i}]"), values::identity(text)) {
            Some(id) => {
                if !out.insert(id.clone()) {
                    report.add(
                        format!("{key}[{i}]"),
                        format!("{id} is listed twice"),
                        "list each identity once",
                    );
                }
            }
            None => fine = false,
        }
    }
    fine.then_some(out)
}

/// A list of ranges: prefixes, not the default route.
fn ranges(list: &[String], key: &str, report: &mut Report) -> Option<Vec<Prefix>> {
    let mut out = Vec::new();
    let mut fine = true;
    for (i, text) in list.iter().enumerate() {
        let rkey = format!("{key}[{i}]");
        let prefix = match values::prefix(text) {
            Ok(p) => p,
            Err(PrefixBad::Malformed(b)) => {
                report.bad(rkey, b);
                fine = false;
                continue;
            }
            // Reported; later checks go on with the prefix surely meant.
            Err(PrefixBad::HostBits(b, masked)) => {
                report.bad(&rkey, b);
                masked
            }
        };
        if prefix.length() == 0 {
            report.add(
                rkey,
                format!("{prefix} covers everything"),
                "give the overlay's own ranges: the identity and anycast prefixes",
            );
            fine = false;
            continue;
        }
        out.push(prefix);
    }
    fine.then_some(out)
}

/// `[[overlay.peers]]`.
fn peers(
    raw: &[raw::Peer],
    node: &Node,
    allow: Option<&BTreeSet<Identity>>,
    report: &mut Report,
) -> Option<Vec<Candidate>> {
    let mut out: Vec<Candidate> = Vec::new();
    let mut fine = true;
    for (i, p) in raw.iter().enumerate() {
        let key = format!("overlay.peers[{i}]");
        let identity = match &p.identity {
            None => {
                report.missing(
                    format!("{key}.identity"),
                    "give the peer's identity, e.g. identity = \"edge://pop-ams1\"",
                );
                None
            }
            Some(text) => report.check(format!("{key}.identity"), values::identity(text)),
        };
        if let Some(id) = &identity {
            if node.name.as_ref() == Some(id) {
                report.add(
                    format!("{key}.identity"),
                    format!("{id} is this node"),
                    "list the other nodes only",
                );
                fine = false;
            } else if allow.is_some_and(|allow| !allow.contains(id)) {
                report.add(
                    format!("{key}.identity"),
                    format!("{id} is not on the allow-list (overlay.allow)"),
                    "a peer not on the allow-list could never authenticate: add it to overlay.allow, or remove the peer",
                );
                fine = false;
            }
        }
        let addr = match &p.address {
            None => {
                report.missing(
                    format!("{key}.address"),
                    "give the peer's underlay address, e.g. address = \"198.51.100.9\" (port 4179 unless given)",
                );
                None
            }
            Some(text) => report.check(
                format!("{key}.address"),
                values::socket_with_port(text, DEFAULT_PORT),
            ),
        };
        if let Some(addr) = addr {
            if node.underlay.contains(&addr.ip()) || node.identity.contains(&addr.ip()) {
                report.add(
                    format!("{key}.address"),
                    format!("{} is one of this node's own addresses", addr.ip()),
                    "give the peer's underlay address",
                );
                fine = false;
            }
        }
        match (identity, addr) {
            (Some(identity), Some(addr)) => {
                let candidate = Candidate {
                    identity,
                    addr,
                    source: Source::Static,
                };
                if out.contains(&candidate) {
                    report.add(
                        key,
                        format!("{} at {} is listed twice", candidate.identity, addr),
                        "list each peer address once",
                    );
                    fine = false;
                } else {
                    out.push(candidate);
                }
            }
            _ => fine = false,
        }
    }
    fine.then_some(out)
}

/// `[overlay.discovery]`: the SRV queries and how often they are asked.
fn discovery(raw: &raw::Discovery, report: &mut Report) -> (Option<Vec<SrvQuery>>, Duration) {
    let refresh = positive_duration_or(
        raw.refresh.as_ref(),
        "overlay.discovery.refresh",
        DEFAULT_SRV_REFRESH,
        report,
    );
    let domains = raw.srv.as_deref().unwrap_or(&[]);
    let mut resolvers = Vec::new();
    let mut fine = true;
    for (i, text) in raw.resolvers.iter().flatten().enumerate() {
        match report.check(
            format!("overlay.discovery.resolvers[{i}]"),
            values::socket_with_port(text, 53),
        ) {
            Some(addr) => resolvers.push(addr),
            None => fine = false,
        }
    }
    if !domains.is_empty() && raw.resolvers.as_ref().is_none_or(Vec::is_empty) {
        report.add(
            "overlay.discovery.resolvers",
            "SRV discovery is configured but no resolver is",
            "list the DNS servers to ask, e.g. resolvers = [\"198.51.100.53\"] (the system resolver is not used)",
        );
        fine = false;
    }
    let mut queries = Vec::new();
    for (i, domain) in domains.iter().enumerate() {
        let key = format!("overlay.discovery.srv[{i}]");
        let trimmed = domain.trim().trim_end_matches('.');
        let valid = !trimmed.is_empty()
            && !trimmed.contains(char::is_whitespace)
            && Name::from_str(trimmed).is_ok();
        if !valid {
            report.add(
                key,
                format!("`{domain}` is not a domain name"),
                format!("give the domain whose {SERVICE} SRV records list the nodes, e.g. \"cdn.example\""),
            );
            fine = false;
            continue;
        }
        let query = match trimmed.strip_prefix(SERVICE) {
            // Written with the service label already: taken as the owner name.
            Some(rest) if rest.starts_with('.') => SrvQuery {
                name: format!("{trimmed}."),
                resolvers: resolvers.clone(),
            },
            _ => SrvQuery::for_domain(trimmed, resolvers.clone()),
        };
        if queries.iter().any(|q: &SrvQuery| q.name == query.name) {
            report.add(
                key,
                format!("`{domain}` is listed twice"),
                "list each domain once",
            );
            fine = false;
            continue;
        }
        queries.push(query);
    }
    (fine.then_some(queries), refresh)
}

#[cfg(test)]
#[path = "overlay_tests.rs"]
mod tests;
