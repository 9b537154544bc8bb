//! `[[services]]`: each service's traffic (VIPs × ports, into the control
//! logic's [`ServiceConfig`] with its data-plane id) and its health checks
//! (probes and timing, into [`ServiceCheck`]). The probes' own checks
//! ([`ProbeSpec::prepare`]) and [`HealthConfig::validate`] are reused, and
//! their errors reported under the key they are about.

use std::{
    collections::BTreeMap, net::IpAddr, ops::RangeInclusive, os::unix::fs::PermissionsExt,
    path::Path, str::FromStr, time::Duration,
};

use edge_common::maps::MAX_SERVICES;
use hickory_proto::{op::ResponseCode, rr::RecordType};

use super::{
    Checks, Report,
    node::{Node, duration_or},
    raw,
    values::{self, bad, choices, show_duration, show_port},
};
use crate::{
    control::decide::ServiceConfig,
    dataplane::{Protocol, ServiceMatch},
    health::rise_fall::Measured,
    health::{
        ConfigError, DnsProbe, ExecProbe, HealthConfig, HttpProbe, ProbeError, ProbeSpec,
        ServiceCheck, TcpProbe, TlsOptions, config::MAX_DURATION, monitor::MAX_NAME,
    },
};

/// Entries of the data plane's service map (`edge_services` in
/// `edge-ebpf/src/maps.rs`: four matches per service on average): the
/// most (VIP, protocol, port) matches all services together may have.
pub(super) const MAX_MATCHES: usize = MAX_SERVICES as usize * 4;

/// The services, parsed.
pub(super) struct Services {
    /// Their traffic and ids, for the control logic.
    pub configs: Vec<ServiceConfig>,
    /// Their health checks (`None` after a problem).
    pub checks: Option<Vec<ServiceCheck>>,
    /// Their names, in order.
    pub names: Vec<String>,
}

/// Parses every `[[services]]`; `keys` are their keys (`services.web`).
pub(super) fn services(
    raw: &[raw::Service],
    keys: &[String],
    node: &Node,
    checks: Checks,
    report: &mut Report,
) -> Services {
    let before = report.len();
    if raw.len() > MAX_SERVICES as usize {
        report.add(
            "services",
            format!(
                "{} services: the data plane holds at most {MAX_SERVICES}",
                raw.len()
            ),
            "merge services that share their health checks, or run fewer on this node",
        );
    }
    let mut configs = Vec::new();
    let mut health = Vec::new();
    let mut names: Vec<String> = Vec::new();
    // Which service owns each VIP (and each exact match), for overlaps.
    let mut vip_owner: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut ids: BTreeMap<u32, String> = BTreeMap::new();
    let mut matches_total = 0;
    for (i, (service, key)) in raw.iter().zip(keys).enumerate() {
        let name = service_name(service, key, &names, report);
        if let Some(name) = &name {
            names.push(name.clone());
        }

        let id = match service.id {
            None => u32::try_from(i).ok(),
            Some(n) => report.check(
                format!("{key}.id"),
                values::int::<u32>(n, 0, i64::from(MAX_SERVICES) - 1, "a service id").map_err(
                    |b| {
                        bad(
                            b.message,
                            format!(
                                "ids are 0 to {}; leave id out to number services in order",
                                MAX_SERVICES - 1
                            ),
                        )
                    },
                ),
            ),
        };
        if let Some(id) = id {
            if let Some(other) = ids.get(&id) {
                report.add(
                    if service.id.is_some() {
                        format!("{key}.id")
                    } else {
                        key.clone()
                    },
                    format!("data-plane id {id} is also {other}'s (ids not given are the service's position, from 0)"),
                    "give every service its own id, or leave all ids out",
                );
            } else {
                ids.insert(id, key.clone());
            }
        }

        let vips = vips(service, key, node, report);
        let ports = ports(service, key, report);
        let mut matches = Vec::new();
        for (vi, vip) in &vips {
            match vip_owner.get(vip) {
                Some(other) if other != key => {
                    report.add(
                        format!("{key}.vips[{vi}]"),
                        format!("{vip} is also a VIP of {other}"),
                        "give each service VIPs of its own: the overlay advertises and withdraws a VIP as a whole, so two services on one VIP would follow each other's health",
                    );
                    continue;
                }
                _ => {
                    vip_owner.insert(*vip, key.clone());
                }
            }
            for (protocol, port) in &ports {
                matches.push(ServiceMatch {
                    vip: *vip,
                    protocol: *protocol,
                    port: *port,
                });
            }
        }
        matches_total += matches.len();

        let drop_when_unavailable = match service.unavailable.as_deref() {
            None | Some("pass") => false,
            Some("drop") => true,
            Some(other) => {
                report.add(
                    format!("{key}.unavailable"),
                    format!("unknown choice `{other}`"),
                    "pass (the kernel answers with a reset or an ICMP error, the default) or drop",
                );
                false
            }
        };

        let probes = probes(service, key, checks, report);
        let config = health_config(&service.health, &format!("{key}.health"), report);

        if let (Some(name), Some(id)) = (name, id) {
            configs.push(ServiceConfig {
                name: name.clone(),
                id,
                matches,
                drop_when_unavailable,
            });
            health.push(ServiceCheck {
                name,
                probes,
                config,
            });
        }
    }
    if matches_total > MAX_MATCHES {
        report.add(
            "services",
            format!("{matches_total} (VIP, port) pairs in all: the data plane's service map holds {MAX_MATCHES}"),
            "use fewer VIPs or ports per service, or a protocol alone (\"tcp\") for every port",
        );
    }
    Services {
        configs,
        checks: (report.len() == before).then_some(health),
        names,
    }
}

/// `name`: required, a key-friendly word, unique.
fn service_name(
    service: &raw::Service,
    key: &str,
    seen: &[String],
    report: &mut Report,
) -> Option<String> {
    let Some(name) = &service.name else {
        report.missing(
            format!("{key}.name"),
            "give the service a name, e.g. name = \"web\"",
        );
        return None;
    };
    let max = MAX_NAME.min(64);
    let valid = !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        report.add(
            format!("{key}.name"),
            format!("`{name}` is not a usable service name"),
            format!("use 1 to {max} letters, digits, `-` and `_`"),
        );
        return None;
    }
    if seen.contains(name) {
        report.add(
            format!("{key}.name"),
            format!("there is already a service named `{name}`"),
            "give every service its own name",
        );
        return None;
    }
    Some(name.clone())
}

/// `vips`: required, inside the anycast prefixes, each once.
fn vips(
    service: &raw::Service,
    key: &str,
    node: &Node,
    report: &mut Report,
) -> Vec<(usize, IpAddr)> {
    let Some(list) = &service.vips else {
        report.missing(
            format!("{key}.vips"),
            "list the service's addresses, inside the anycast prefixes, e.g. vips = [\"203.0.113.10\"]",
        );
        return Vec::new();
    };
    if list.is_empty() {
        report.add(
            format!("{key}.vips"),
            "the list is empty",
            "give the service at least one VIP",
        );
    }
    let mut out: Vec<(usize, IpAddr)> = Vec::new();
    for (i, text) in list.iter().enumerate() {
        let vkey = format!("{key}.vips[{i}]");
        let Some(vip) = report.check(&vkey, values::unicast(text)) else {
            continue;
        };
        if out.iter().any(|(_, v)| *v == vip) {
            report.add(vkey, format!("{vip} is listed twice"), "list each VIP once");
            continue;
        }
        if node.anycast_complete && !node.anycast.iter().any(|p| p.contains(vip)) {
            let prefixes: Vec<String> = node.anycast.iter().map(ToString::to_string).collect();
            report.add(
                vkey,
                format!(
                    "{vip} is outside the anycast prefixes ({})",
                    prefixes.join(", ")
                ),
                "a VIP must be inside node.anycast: only traffic to the anycast prefixes reaches the service lookup",
            );
            continue;
        }
        out.push((i, vip));
    }
    out
}

/// `ports`: required, each once, without a port also covered by its
/// protocol alone.
fn ports(service: &raw::Service, key: &str, report: &mut Report) -> Vec<(Protocol, Option<u16>)> {
    let Some(list) = &service.ports else {
        report.missing(
            format!("{key}.ports"),
            "list what the service serves, e.g. ports = [\"tcp/80\", \"tcp/443\"] or [\"udp/53\", \"tcp/53\"]",
        );
        return Vec::new();
    };
    if list.is_empty() {
        report.add(
            format!("{key}.ports"),
            "the list is empty",
            "give at least one port, e.g. \"tcp/443\", or a protocol alone (\"udp\") for every port",
        );
    }
    let mut out: Vec<(Protocol, Option<u16>)> = Vec::new();
    for (i, text) in list.iter().enumerate() {
        let pkey = format!("{key}.ports[{i}]");
        let Some((protocol, port)) = report.check(&pkey, values::port_spec(text)) else {
            continue;
        };
        let shown = show_port(protocol, port);
        if out.contains(&(protocol, port)) {
            report.add(
                pkey,
                format!("{shown} is listed twice"),
                "list each port once",
            );
            continue;
        }
        let overlap = out
            .iter()
            .find(|(p, q)| *p == protocol && (q.is_none() || port.is_none()));
        if let Some((p, q)) = overlap {
            report.add(
                pkey,
                format!(
                    "{shown} overlaps {}: a protocol alone already means every port",
                    show_port(*p, *q)
                ),
                "keep either the protocol alone or its ports",
            );
            continue;
        }
        out.push((protocol, port));
    }
    out
}

/// Keys each probe kind takes (besides `kind`).
const PROBE_KEYS: &[(&str, &[&str])] = &[
    ("tcp", &["address"]),
    (
        "http",
        &[
            "url",
            "expect_status",
            "body_contains",
            "host",
            "resolve_to",
            "ca_file",
            "insecure_skip_verify",
        ],
    ),
    (
        "dns",
        &["server", "name", "type", "expect_rcode", "expect_answer"],
    ),
    ("exec", &["command"]),
];

/// The keys given in a probe (besides `kind`).
fn given_keys(p: &raw::Probe) -> Vec<&'static str> {
    [
        ("address", p.address.is_some()),
        ("url", p.url.is_some()),
        ("expect_status", p.expect_status.is_some()),
        ("body_contains", p.body_contains.is_some()),
        ("host", p.host.is_some()),
        ("resolve_to", p.resolve_to.is_some()),
        ("ca_file", p.ca_file.is_some()),
        ("insecure_skip_verify", p.insecure_skip_verify.is_some()),
        ("server", p.server.is_some()),
        ("name", p.name.is_some()),
        ("type", p.record_type.is_some()),
        ("expect_rcode", p.expect_rcode.is_some()),
        ("expect_answer", p.expect_answer.is_some()),
        ("command", p.command.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, given)| given.then_some(k))
    .collect()
}

/// `probes`: at least one, each checked.
fn probes(
    service: &raw::Service,
    key: &str,
    checks: Checks,
    report: &mut Report,
) -> Vec<ProbeSpec> {
    if service.probes.is_empty() {
        report.add(
            format!("{key}.probes"),
            "the service has no probe: it would never be seen healthy",
            "add at least one [[services.probes]] (kind = \"tcp\", \"http\", \"dns\" or \"exec\")",
        );
    }
    let mut out = Vec::new();
    for (i, p) in service.probes.iter().enumerate() {
        let pkey = format!("{key}.probes[{i}]");
        if let Some(spec) = probe(p, &pkey, checks, report) {
            out.push(spec);
        }
    }
    out
}

/// One probe.
fn probe(p: &raw::Probe, key: &str, checks: Checks, report: &mut Report) -> Option<ProbeSpec> {
    let kinds: Vec<&str> = PROBE_KEYS.iter().map(|(k, _)| *k).collect();
    let Some(kind) = p.kind.as_deref() else {
        report.missing(
            format!("{key}.kind"),
            format!("say which kind of probe: {}", choices(&kinds)),
        );
        return None;
    };
    let Some((_, allowed)) = PROBE_KEYS.iter().find(|(k, _)| *k == kind) else {
        report.add(
            format!("{key}.kind"),
            format!("unknown probe kind `{kind}`"),
            choices(&kinds),
        );
        return None;
    };
    let mut fine = true;
    for given in given_keys(p) {
        if !allowed.contains(&given) {
            report.add(
                format!("{key}.{given}"),
                format!("`{given}` does not apply to a {kind} probe"),
                format!("a {kind} probe takes {}", choices(allowed)),
            );
            fine = false;
        }
    }
    let spec = match kind {
        "tcp" => tcp_probe(p, key, report),
        "http" => http_probe(p, key, checks, report),
        "dns" => dns_probe(p, key, report),
        _ => exec_probe(p, key, checks, report),
    }?;
    fine.then_some(spec)
}

fn tcp_probe(p: &raw::Probe, key: &str, report: &mut Report) -> Option<ProbeSpec> {
    let Some(address) = &p.address else {
        report.missing(
            format!("{key}.address"),
            "give the address and port to connect to, e.g. address = \"203.0.113.10:443\"",
        );
        return None;
    };
    let addr = report.check(
        format!("{key}.address"),
        address.trim().parse::<std::net::SocketAddr>().map_err(|_| {
            bad(
                format!("`{address}` is not an address and port"),
                "write ADDRESS:PORT, e.g. \"203.0.113.10:443\" or \"[2001:db8:ac::10]:443\"",
            )
        }),
    )?;
    Some(ProbeSpec::Tcp(TcpProbe::new(addr)))
}

fn http_probe(p: &raw::Probe, key: &str, checks: Checks, report: &mut Report) -> Option<ProbeSpec> {
    let Some(url) = &p.url else {
        report.missing(
            format!("{key}.url"),
            "give the URL to GET, e.g. url = \"http://203.0.113.10/healthz\"",
        );
        return None;
    };
    let mut probe = HttpProbe::new(url.clone());
    let mut fine = true;
    if let Some(status) = &p.expect_status {
        match report.check(format!("{key}.expect_status"), status_range(status)) {
            Some(range) => probe.expect_status = range,
            None => fine = false,
        }
    }
    probe.body_contains = p.body_contains.clone();
    probe.host = p.host.clone();
    if let Some(addr) = &p.resolve_to {
        match report.check(format!("{key}.resolve_to"), values::ip(addr)) {
            Some(ip) => probe.resolve_to = Some(ip),
            None => fine = false,
        }
    }
    let mut tls = TlsOptions {
        ca_file: None,
        insecure_skip_verify: p.insecure_skip_verify.unwrap_or(false),
    };
    if let Some(path) = &p.ca_file {
        match report.check(format!("{key}.ca_file"), values::abs_path(path)) {
            Some(path) => tls.ca_file = Some(path),
            None => fine = false,
        }
    }
    probe.tls = tls;
    // Check it as the health monitor will; without the files check, not
    // the CA file nor anything else TLS reads from the host.
    let mut checked = probe.clone();
    if !checks.files {
        checked.tls.ca_file = None;
    }
    if let Err(e) = ProbeSpec::Http(checked).prepare() {
        let (field, hint) = match &e {
            ProbeError::Url { .. } | ProbeError::Scheme(_) => (
                "url",
                "write an http:// or https:// URL with a host, e.g. \"http://203.0.113.10/healthz\"",
            ),
            ProbeError::StatusRange { .. } => (
                "expect_status",
                "give a status (200) or a range (\"200-399\") within 100-599",
            ),
            ProbeError::HostHeader(_) => ("host", "give a host name, e.g. \"www.example.com\""),
            ProbeError::EmptyBodyMatch => ("body_contains", "leave it out to accept any body"),
            ProbeError::CaFile { .. } => (
                "ca_file",
                "give a readable PEM file with the CA certificates that sign the service's certificate",
            ),
            _ => ("url", "check the URL and the host's TLS set-up"),
        };
        let host_dependent = matches!(e, ProbeError::Tls { .. } | ProbeError::CaFile { .. });
        if checks.files || !host_dependent {
            report.add(format!("{key}.{field}"), e.to_string(), hint);
            fine = false;
        }
    }
    fine.then_some(ProbeSpec::Http(probe))
}

/// `expect_status`: `200` or `"200-399"`.
fn status_range(status: &raw::Status) -> Result<RangeInclusive<u16>, values::Bad> {
    let hint = "give a status (200) or a range (\"200-399\") within 100-599";
    let (lo, hi) = match status {
        raw::Status::Code(n) => (*n, *n),
        raw::Status::Range(text) => {
            let parse = |s: &str| s.trim().parse::<i64>().ok();
            let parsed = match text.split_once('-') {
                Some((lo, hi)) => parse(lo).zip(parse(hi)),
                None => parse(text).map(|n| (n, n)),
            };
            parsed.ok_or_else(|| bad(format!("`{text}` is not a status or a range"), hint))?
        }
    };
    if !(100..=599).contains(&lo) || !(100..=599).contains(&hi) || lo > hi {
        return Err(bad(
            format!("{lo}-{hi} is not a range of HTTP statuses"),
            hint,
        ));
    }
    Ok(u16::try_from(lo).unwrap_or(100)..=u16::try_from(hi).unwrap_or(599))
}

/// Response codes by name.
const RCODES: &[(&str, ResponseCode)] = &[
    ("NOERROR", ResponseCode::NoError),
    ("FORMERR", ResponseCode::FormErr),
    ("SERVFAIL", ResponseCode::ServFail),
    ("NXDOMAIN", ResponseCode::NXDomain),
    ("NOTIMP", ResponseCode::NotImp),
    ("REFUSED", ResponseCode::Refused),
];

fn dns_probe(p: &raw::Probe, key: &str, report: &mut Report) -> Option<ProbeSpec> {
    let server = match &p.server {
        None => {
            report.missing(
                format!("{key}.server"),
                "give the DNS server to ask, e.g. server = \"203.0.113.53\" (port 53 unless given)",
            );
            None
        }
        Some(text) => report.check(format!("{key}.server"), values::socket_with_port(text, 53)),
    };
    let name = match &p.name {
        None => {
            report.missing(
                format!("{key}.name"),
                "give the name to ask for, e.g. name = \"example.com\"",
            );
            None
        }
        Some(name) => Some(name.clone()),
    };
    let record_type = match &p.record_type {
        None => Some(RecordType::A),
        Some(text) => report.check(
            format!("{key}.type"),
            RecordType::from_str(&text.to_ascii_uppercase())
                .ok()
                .filter(|t| !matches!(t, RecordType::Unknown(_)))
                .ok_or_else(|| {
                    bad(
                        format!("`{text}` is not a DNS record type"),
                        "e.g. A, AAAA, CNAME, MX, NS, SOA, TXT (A unless given)",
                    )
                }),
        ),
    };
    let rcode = match &p.expect_rcode {
        None => Some(ResponseCode::NoError),
        Some(text) => report.check(
            format!("{key}.expect_rcode"),
            RCODES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(text))
                .map(|(_, c)| *c)
                .ok_or_else(|| {
                    bad(
                        format!("`{text}` is not a response code"),
                        choices(&RCODES.iter().map(|(n, _)| *n).collect::<Vec<_>>()),
                    )
                }),
        ),
    };
    let mut probe = DnsProbe::new(server?, name?, record_type?);
    probe.expect_rcode = rcode?;
    probe.expect_answer = p.expect_answer.clone();
    let spec = ProbeSpec::Dns(probe);
    if let Err(e) = spec.prepare() {
        let (field, hint) = match e {
            ProbeError::EmptyDnsAnswer => ("expect_answer", "leave it out to accept any answer"),
            _ => ("name", "give a DNS name, e.g. \"www.example.com\""),
        };
        report.add(format!("{key}.{field}"), e.to_string(), hint);
        return None;
    }
    Some(spec)
}

fn exec_probe(p: &raw::Probe, key: &str, checks: Checks, report: &mut Report) -> Option<ProbeSpec> {
    let hint = "give the program and its arguments, no shell, e.g. command = [\"/usr/local/bin/check-web\", \"--quick\"]";
    let Some(argv) = &p.command else {
        report.missing(format!("{key}.command"), hint);
        return None;
    };
    let spec = ProbeSpec::Exec(ExecProbe::new(argv.clone()));
    if let Err(e) = spec.prepare() {
        report.add(format!("{key}.command"), e.to_string(), hint);
        return None;
    }
    let program = argv.first().map_or("", String::as_str);
    if checks.files && program.contains('/') {
        let path = Path::new(program);
        let executable =
            std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        match executable {
            Ok(true) => {}
            Ok(false) => {
                report.add(
                    format!("{key}.command[0]"),
                    format!("{program} is not an executable file"),
                    "give the path of an executable program (chmod +x)",
                );
                return None;
            }
            Err(e) => {
                report.add(
                    format!("{key}.command[0]"),
                    format!("cannot use {program}: {e}"),
                    "give the path of an executable program that exists",
                );
                return None;
            }
        }
    }
    Some(spec)
}

/// `[services.health]`, over [`HealthConfig::default`], checked with
/// [`HealthConfig::validate`]. Every problem validation finds is
/// reported: after each, the value at fault is set to one that passes
/// that check, and validation runs again.
fn health_config(raw: &raw::Health, key: &str, report: &mut Report) -> HealthConfig {
    let d = HealthConfig::default();
    let mut config = HealthConfig {
        interval: duration_or(
            raw.interval.as_ref(),
            &format!("{key}.interval"),
            d.interval,
            report,
        ),
        fast_interval: duration_or(
            raw.fast_interval.as_ref(),
            &format!("{key}.fast_interval"),
            d.fast_interval,
            report,
        ),
        timeout: duration_or(
            raw.timeout.as_ref(),
            &format!("{key}.timeout"),
            d.timeout,
            report,
        ),
        slow_threshold: duration_or(
            raw.slow_threshold.as_ref(),
            &format!("{key}.slow_threshold"),
            d.slow_threshold,
            report,
        ),
        rise: count(raw.rise, &format!("{key}.rise"), d.rise, report),
        fall: count(raw.fall, &format!("{key}.fall"), d.fall, report),
        jitter_percent: raw
            .jitter_percent
            .and_then(|n| {
                report.check(
                    format!("{key}.jitter_percent"),
                    values::int::<u8>(n, 0, 100, "a percentage"),
                )
            })
            .unwrap_or(d.jitter_percent),
        stagger: raw.stagger.unwrap_or(d.stagger),
        initial: match raw.initial.as_deref() {
            None | Some("down") => Measured::Down,
            Some("up") => Measured::Up,
            Some(other) => {
                report.add(
                    format!("{key}.initial"),
                    format!("unknown state `{other}`"),
                    "down (the default: nothing is advertised before the service is seen healthy) or up",
                );
                Measured::Down
            }
        },
    };
    let checked = config.clone();
    for _ in 0..12 {
        let Err(e) = config.validate() else { break };
        let (field, hint) = patch(&mut config, &e);
        report.add(format!("{key}.{field}"), e.to_string(), hint);
    }
    checked
}

/// Makes `config` pass the check that failed with `e`; the field at fault
/// and a hint.
fn patch(config: &mut HealthConfig, e: &ConfigError) -> (&'static str, String) {
    let ms = Duration::from_millis(1);
    match e {
        ConfigError::ZeroInterval => {
            config.interval = config.fast_interval.max(ms);
            (
                "interval",
                "give the wait between rounds, e.g. \"2s\"".into(),
            )
        }
        ConfigError::ZeroFastInterval => {
            config.fast_interval = config.interval;
            (
                "fast_interval",
                "give the wait between rounds while a change is suspected, e.g. \"500ms\"".into(),
            )
        }
        ConfigError::FastIntervalTooLong { interval, .. } => {
            config.fast_interval = config.interval;
            (
                "fast_interval",
                format!("make it at most the interval, {}", show_duration(*interval)),
            )
        }
        ConfigError::ZeroTimeout => {
            config.timeout = config.slow_threshold.max(ms);
            (
                "timeout",
                "give how long a probe may take, e.g. \"1s\"".into(),
            )
        }
        ConfigError::ZeroSlowThreshold => {
            config.slow_threshold = config.timeout;
            (
                "slow_threshold",
                "give the latency above which a success counts as a failure, e.g. \"1s\"".into(),
            )
        }
        ConfigError::TimeoutBelowSlowThreshold { slow, .. } => {
            config.timeout = config.slow_threshold;
            (
                "timeout",
                format!(
                    "make the timeout at least slow_threshold ({}), or lower slow_threshold",
                    show_duration(*slow)
                ),
            )
        }
        ConfigError::ZeroRise => {
            config.rise = 1;
            ("rise", "give at least 1 (default 2)".into())
        }
        ConfigError::ZeroFall => {
            config.fall = 1;
            ("fall", "give at least 1 (default 3)".into())
        }
        ConfigError::JitterTooLarge(_) => {
            config.jitter_percent = crate::health::config::MAX_JITTER_PERCENT;
            (
                "jitter_percent",
                format!("give at most {}", crate::health::config::MAX_JITTER_PERCENT),
            )
        }
        ConfigError::TooLong { what, .. } => {
            let hint = format!("give at most {}", show_duration(MAX_DURATION));
            let field = match *what {
                "probe interval" => {
                    config.interval = MAX_DURATION;
                    "interval"
                }
                "fast probe interval" => {
                    config.fast_interval = MAX_DURATION.min(config.interval);
                    "fast_interval"
                }
                "probe timeout" => {
                    config.timeout = MAX_DURATION;
                    "timeout"
                }
                _ => {
                    config.slow_threshold = MAX_DURATION.min(config.timeout);
                    "slow_threshold"
                }
            };
            (field, hint)
        }
    }
}

/// `rise` or `fall`: a count (zero is left to the validation).
fn count(raw: Option<i64>, key: &str, default: u32, report: &mut Report) -> u32 {
    raw.and_then(|n| report.check(key, values::int::<u32>(n, 0, 1000, "a number of rounds")))
        .unwrap_or(default)
}

#[cfg(test)]
#[path = "services_tests.rs"]
mod tests;
