//! `[dns]`: the authoritative DNS service, into [`DnsConfig`]. It listens
//! on the VIPs of the `[[services]]` entry it names (which must carry UDP
//! and TCP on its port), so that the service's probes decide, as for any
//! service, whether this node answers or forwards to a peer. Zones are
//! parsed and checked here, before anything starts: a zone that would not
//! be served whole is a config problem. Zone files are read only with
//! [`Checks::files`]; without it they are left out (validation only).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use super::{
    Checks, Report,
    node::{Node, positive_duration_or},
    raw,
    services::Services,
    values::{self, show_duration},
};
use crate::{
    authdns::{DnsConfig, RateLimit, Settings, Zone, ZoneSet},
    dataplane::Protocol,
};

/// The default port.
const DEFAULT_PORT: u16 = 53;
/// The default EDNS UDP payload size: no fragmentation on any path
/// (DNS flag day 2020).
const DEFAULT_UDP_PAYLOAD: u16 = 1232;
/// The TTL of records that give none, unless `ttl` says otherwise.
const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// The longest NSID sent.
const MAX_NSID: usize = 64;

/// `[dns]` with the node and the services; `Some(None)` when there is no
/// `[dns]`, `None` after a problem.
pub(super) fn dns(
    raw: Option<&raw::Dns>,
    node: &Node,
    services: &Services,
    checks: Checks,
    report: &mut Report,
) -> Option<Option<DnsConfig>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    let before = report.len();
    let port = match raw.port {
        None => DEFAULT_PORT,
        Some(n) => report
            .check("dns.port", values::int(n, 1, 65_535, "a port"))
            .unwrap_or(DEFAULT_PORT),
    };
    let listen = listen(raw.service.as_deref(), port, services, report);
    let udp_payload = match raw.udp_payload {
        None => DEFAULT_UDP_PAYLOAD,
        Some(n) => report
            .check(
                "dns.udp_payload",
                values::int(n, 512, 4096, "an EDNS UDP payload size"),
            )
            .unwrap_or(DEFAULT_UDP_PAYLOAD),
    };
    let nsid = match raw.nsid.as_deref() {
        None => node.name.as_ref().map(|n| n.name().as_bytes().to_vec()),
        Some("") => None,
        Some(text) if text.len() > MAX_NSID || !text.is_ascii() => {
            report.add(
                "dns.nsid",
                format!("`{text}` is not at most {MAX_NSID} ASCII characters"),
                "use a short name for the node, or \"\" to send none",
            );
            None
        }
        Some(text) => Some(text.as_bytes().to_vec()),
    };
    let tcp_idle = positive_duration_or(
        raw.tcp_idle_timeout.as_ref(),
        "dns.tcp_idle_timeout",
        Duration::from_secs(10),
        report,
    );
    let tcp_max_connections = match raw.tcp_max_connections {
        None => 256,
        Some(n) => report
            .check(
                "dns.tcp_max_connections",
                values::int(n, 1, 65_535, "a number of connections"),
            )
            .unwrap_or(256),
    };
    let rate_limit = rate_limit(&raw.rate_limit, report);
    let zones = zones(&raw.zones, checks, report);
    if report.len() > before {
        return None;
    }
    Some(Some(DnsConfig {
        listen: listen?,
        zones: Arc::new(zones?),
        settings: Settings { udp_payload, nsid },
        rate_limit,
        tcp_idle,
        tcp_max_connections,
    }))
}

/// The service's VIPs at `port`, after checking the service carries UDP
/// and TCP there.
fn listen(
    service: Option<&str>,
    port: u16,
    services: &Services,
    report: &mut Report,
) -> Option<Vec<SocketAddr>> {
    let Some(name) = service else {
        report.missing(
            "dns.service",
            "name the [[services]] entry of DNS: its VIPs are where the DNS service listens",
        );
        return None;
    };
    let Some(config) = services.configs.iter().find(|s| s.name == name) else {
        if !services.names.iter().any(|n| n == name) {
            report.add(
                "dns.service",
                format!("no service is named `{name}`"),
                format!("the services are: {}", services.names.join(", ")),
            );
        }
        return None;
    };
    let mut listen = Vec::new();
    for vip in config.vips() {
        for protocol in [Protocol::Udp, Protocol::Tcp] {
            let carried = config.matches.iter().any(|m| {
                m.vip == vip && m.protocol == protocol && m.port.is_none_or(|p| p == port)
            });
            if !carried {
                let proto = if protocol == Protocol::Udp {
                    "udp"
                } else {
                    "tcp"
                };
                report.add(
                    "dns.service",
                    format!("service `{name}` does not carry {proto}/{port} to {vip}"),
                    format!("add \"{proto}/{port}\" to services.{name}.ports: the data plane only steers what the service lists"),
                );
            }
        }
        listen.push(SocketAddr::new(vip, port));
    }
    Some(listen)
}

/// `[dns.rate_limit]`; `None` when `responses_per_second = 0`.
fn rate_limit(raw: &raw::DnsRateLimit, report: &mut Report) -> Option<RateLimit> {
    let defaults = RateLimit::default();
    let mut int = |value: Option<i64>, key: &str, lo: i64, hi: i64, default: u32, what: &str| {
        value
            .and_then(|n| {
                report.check(
                    format!("dns.rate_limit.{key}"),
                    values::int::<u32>(n, lo, hi, what),
                )
            })
            .unwrap_or(default)
    };
    let rps = int(
        raw.responses_per_second,
        "responses_per_second",
        0,
        1_000_000,
        defaults.responses_per_second,
        "responses per second",
    );
    let burst = int(
        raw.burst,
        "burst",
        1,
        1_000_000,
        rps.max(1),
        "a number of responses",
    );
    let slip = int(raw.slip, "slip", 0, 10, defaults.slip, "a slip ratio");
    let v4 = int(
        raw.ipv4_prefix,
        "ipv4_prefix",
        0,
        32,
        24,
        "an IPv4 prefix length",
    );
    let v6 = int(
        raw.ipv6_prefix,
        "ipv6_prefix",
        0,
        128,
        56,
        "an IPv6 prefix length",
    );
    let max = int(
        raw.max_prefixes,
        "max_prefixes",
        1,
        10_000_000,
        defaults.max_prefixes as u32,
        "a number of prefixes",
    );
    (rps > 0).then_some(RateLimit {
        responses_per_second: rps,
        burst,
        slip,
        ipv4_prefix: v4 as u8,
        ipv6_prefix: v6 as u8,
        max_prefixes: max as usize,
    })
}

/// `[[dns.zones]]`, parsed and checked.
fn zones(raw: &[raw::DnsZone], checks: Checks, report: &mut Report) -> Option<ZoneSet> {
    if raw.is_empty() {
        report.missing(
            "dns.zones",
            "add a [[dns.zones]] with origin and file (or records): a DNS service needs a zone to answer for",
        );
        return None;
    }
    let mut zones = Vec::new();
    let mut complete = true;
    for (i, zone) in raw.iter().enumerate() {
        let key = format!("dns.zones[{i}]");
        let Some(origin) = &zone.origin else {
            report.missing(
                format!("{key}.origin"),
                "the zone's name, e.g. \"cdn.example\"",
            );
            complete = false;
            continue;
        };
        let ttl = match &zone.ttl {
            None => DEFAULT_TTL,
            Some(text) => match values::duration(text) {
                Ok(d) if d.as_secs() <= i32::MAX as u64 && d.subsec_nanos() == 0 => d,
                Ok(_) => {
                    report.add(
                        format!("{key}.ttl"),
                        format!("`{text}` is not a TTL"),
                        format!(
                            "whole seconds up to 68 years; default {}",
                            show_duration(DEFAULT_TTL)
                        ),
                    );
                    DEFAULT_TTL
                }
                Err(bad) => {
                    report.bad(format!("{key}.ttl"), bad);
                    DEFAULT_TTL
                }
            },
        };
        let (text, path) = match (&zone.file, &zone.records) {
            (Some(_), Some(_)) | (None, None) => {
                report.add(
                    key.clone(),
                    "needs exactly one of `file` and `records`",
                    "give a zone file's path, or the records as zone-file lines",
                );
                complete = false;
                continue;
            }
            (None, Some(records)) => (records.join("\n"), None),
            (Some(file), None) => {
                let Some(path) = report.check(format!("{key}.file"), values::abs_path(file)) else {
                    complete = false;
                    continue;
                };
                if !checks.files {
                    // Not read: validation only, the zone is left out.
                    continue;
                }
                match std::fs::read_to_string(&path) {
                    Ok(text) => (text, Some(path)),
                    Err(e) => {
                        report.add(
                            format!("{key}.file"),
                            format!("cannot read {}: {e}", path.display()),
                            "check the path and that the agent may read it",
                        );
                        complete = false;
                        continue;
                    }
                }
            }
        };
        match Zone::parse(origin, &text, ttl.as_secs() as u32, path.as_deref()) {
            Ok(zone) => zones.push(zone),
            Err(e) => {
                report.add(
                    key,
                    e.to_string(),
                    "fix the zone: one SOA and NS at the apex; A, AAAA, CNAME, TXT, MX, SRV, CAA below",
                );
                complete = false;
            }
        }
    }
    if !complete {
        return None;
    }
    match ZoneSet::new(zones) {
        Ok(set) => Some(set),
        Err(e) => {
            report.add(
                "dns.zones",
                e.to_string(),
                "give each zone once, and none inside another",
            );
            None
        }
    }
}

#[cfg(test)]
#[path = "dns_tests.rs"]
mod tests;
