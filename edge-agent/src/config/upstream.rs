//! `[[upstream]]`: the eBGP neighbours the anycast prefixes are announced
//! to, into [`NeighborConfig`]s: the session ([`SessionConfig`], our ASN
//! and identifier from `[node]`), the TCP MD5 key, the BFD session (see
//! [`super::bfd`]), and who we are on the session ([`Origination`]: eBGP,
//! next hops our underlay addresses).

use std::{
    net::{IpAddr, SocketAddr},
    path::Path,
    time::Duration,
};

use super::{
    Checks, Report, bfd,
    node::{Node, positive_duration_or},
    raw,
    values::{self, bad, choices},
};
use crate::bgp::{
    md5::MAX_KEY_LEN,
    message::Family,
    neighbor::NeighborConfig,
    rib_out::Origination,
    session::{GracefulRestart, SessionConfig},
};

/// BGP's port.
const BGP_PORT: u16 = 179;
/// The hold time unless one is given.
const DEFAULT_HOLD_TIME: u16 = 90;
/// The wait between connection attempts unless one is given.
const DEFAULT_CONNECT_RETRY: Duration = Duration::from_secs(5);
/// The longest graceful-restart time the capability carries (12 bits).
const MAX_RESTART_TIME: u64 = 4095;

/// Parses every `[[upstream]]`; `None` after a problem.
pub(super) fn upstream(
    raw: &[raw::Upstream],
    node: &Node,
    bfd: &bfd::Defaults,
    checks: Checks,
    report: &mut Report,
) -> Option<Vec<NeighborConfig>> {
    let before = report.len();
    let mut out = Vec::new();
    let mut seen: Vec<(IpAddr, String)> = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    for (i, u) in raw.iter().enumerate() {
        let key = format!("upstream[{i}]");
        if let Some(name) = &u.name {
            if let Some((_, other)) = names.iter().find(|(n, _)| n == name) {
                report.add(
                    format!("{key}.name"),
                    format!("`{name}` is also the name of {other}"),
                    "give every neighbour its own name",
                );
            } else {
                names.push((name.clone(), key.clone()));
            }
        }
        if let Some(neighbor) = neighbor(u, &key, node, bfd, checks, &mut seen, report) {
            out.push(neighbor);
        }
    }
    (report.len() == before).then_some(out)
}

fn neighbor(
    u: &raw::Upstream,
    key: &str,
    node: &Node,
    bfd: &bfd::Defaults,
    checks: Checks,
    seen: &mut Vec<(IpAddr, String)>,
    report: &mut Report,
) -> Option<NeighborConfig> {
    let address = match &u.address {
        None => {
            report.missing(
                format!("{key}.address"),
                "give the neighbour's address, e.g. address = \"198.51.100.1\"",
            );
            None
        }
        Some(text) => report.check(format!("{key}.address"), values::unicast(text)),
    };
    if let Some(addr) = address {
        if let Some((_, other)) = seen.iter().find(|(a, _)| *a == addr) {
            report.add(
                format!("{key}.address"),
                format!("{addr} is also the address of {other}"),
                "configure each neighbour once (one session per neighbour address)",
            );
        } else {
            seen.push((addr, key.to_owned()));
        }
        if node.underlay.contains(&addr) || node.identity.contains(&addr) {
            report.add(
                format!("{key}.address"),
                format!("{addr} is one of this node's own addresses"),
                "give the upstream router's address",
            );
        }
    }
    let port = match u.port {
        None => Some(BGP_PORT),
        Some(n) => report.check(
            format!("{key}.port"),
            values::int::<u16>(n, 1, 65535, "a TCP port"),
        ),
    };
    let peer_as = match u.asn {
        None => {
            report.missing(
                format!("{key}.asn"),
                "give the neighbour's ASN, e.g. asn = 64496",
            );
            None
        }
        Some(n) => report.check(format!("{key}.asn"), values::asn(n)),
    };
    if let (Some(peer), Some(local)) = (peer_as, node.asn) {
        if peer == local {
            report.add(
                format!("{key}.asn"),
                format!("{peer} is our own ASN (node.asn): upstream sessions are external BGP"),
                "give the upstream provider's ASN",
            );
        }
    }
    let local = match &u.local_address {
        None => None,
        Some(text) => {
            let local = report.check(format!("{key}.local_address"), values::unicast(text));
            if let (Some(l), Some(a)) = (local, address) {
                if l.is_ipv4() != a.is_ipv4() {
                    report.add(
                        format!("{key}.local_address"),
                        format!("{l} and the neighbour's {a} are of different families"),
                        "give our address of the neighbour's family, or leave it out",
                    );
                }
            }
            local
        }
    };
    let md5_key = md5_key(u, key, checks, report);
    let bfd = bfd::upstream(u.bfd.as_ref(), key, bfd, checks, report);
    let hold_time = match u.hold_time {
        None => Some(DEFAULT_HOLD_TIME),
        Some(n) => report.check(format!("{key}.hold_time"), values::hold_time(n)),
    };
    let connect_retry = positive_duration_or(
        u.connect_retry.as_ref(),
        &format!("{key}.connect_retry"),
        DEFAULT_CONNECT_RETRY,
        report,
    );
    let graceful_restart = match &u.graceful_restart {
        None => None,
        Some(text) => report
            .check(format!("{key}.graceful_restart"), restart_time(text))
            .map(|restart_time| GracefulRestart {
                restart_time,
                restarted: false,
            }),
    };
    let families = families(u, key, node, local, report);
    let max_prefixes = match u.max_prefixes {
        None => None,
        Some(n) => report.check(
            format!("{key}.max_prefixes"),
            values::int::<u32>(n, 1, i64::from(u32::MAX), "a prefix limit"),
        ),
    };
    let address = address?;
    let next_hop_v4 = match local {
        Some(IpAddr::V4(a)) => Some(a),
        _ => node.underlay_v4(),
    };
    let next_hop_v6 = match local {
        Some(IpAddr::V6(a)) => Some(a),
        _ => node.underlay_v6(),
    };
    let passive = u.passive.unwrap_or(false);
    let listen_on = match address {
        IpAddr::V4(_) => next_hop_v4.map(IpAddr::V4),
        IpAddr::V6(_) => next_hop_v6.map(IpAddr::V6),
    };
    if passive && listen_on.is_none() {
        report.add(
            format!("{key}.passive"),
            format!(
                "a passive neighbour must connect to us, but we have no address of {address}'s family to listen on"
            ),
            "set local_address, or give the node an underlay address of that family",
        );
        return None;
    }
    Some(NeighborConfig {
        session: SessionConfig {
            local_as: node.asn?,
            peer_as: peer_as?,
            bgp_id: node.bgp_id()?,
            hold_time: hold_time?,
            connect_retry,
            passive,
            families: families?,
            graceful_restart,
            max_prefixes,
        },
        peer: SocketAddr::new(address, port?),
        local,
        md5_key: md5_key?,
        origination: Origination {
            local_as: node.asn?,
            ebgp: true,
            next_hop_v4,
            next_hop_v6: next_hop_v6.map(|a| (a, None)),
        },
        bfd: bfd?,
    })
}

/// A graceful-restart time: above zero, at most 4095 s.
fn restart_time(text: &str) -> Result<u16, values::Bad> {
    let d = values::duration(text)?;
    let secs = d.as_secs();
    if secs == 0 || secs > MAX_RESTART_TIME || d.subsec_nanos() != 0 {
        return Err(bad(
            format!("`{text}` is not a usable restart time"),
            format!(
                "give whole seconds from 1s to {MAX_RESTART_TIME}s (the capability carries 12 bits), e.g. \"120s\""
            ),
        ));
    }
    Ok(u16::try_from(secs).unwrap_or(120))
}

/// `md5_key` or `md5_key_file`: `Some(None)` for no key, `None` after a
/// problem.
fn md5_key(
    u: &raw::Upstream,
    key: &str,
    checks: Checks,
    report: &mut Report,
) -> Option<Option<Vec<u8>>> {
    let (bytes, field) = match (&u.md5_key, &u.md5_key_file) {
        (None, None) => return Some(None),
        (Some(_), Some(_)) => {
            report.add(
                format!("{key}.md5_key"),
                "both md5_key and md5_key_file are given",
                "give the key in one place: md5_key_file keeps it out of the config file",
            );
            return None;
        }
        (Some(text), None) => (text.as_bytes().to_vec(), "md5_key"),
        (None, Some(path)) => {
            let path = report.check(format!("{key}.md5_key_file"), values::abs_path(path))?;
            if !checks.files {
                // Not read: validating a config for another host.
                return Some(None);
            }
            match std::fs::read(&path) {
                Ok(bytes) => (trim_newline(bytes), "md5_key_file"),
                Err(e) => {
                    report.add(
                        format!("{key}.md5_key_file"),
                        format!("cannot read {}: {e}", Path::new(&path).display()),
                        "give a file the daemon can read, holding the key (a trailing newline is ignored)",
                    );
                    return None;
                }
            }
        }
    };
    if bytes.is_empty() {
        report.add(
            format!("{key}.{field}"),
            "the MD5 key is empty",
            "give the key agreed with the neighbour, or leave md5_key out for no key",
        );
        return None;
    }
    if bytes.len() > MAX_KEY_LEN {
        report.add(
            format!("{key}.{field}"),
            format!(
                "the MD5 key is {} bytes long; the kernel accepts at most {MAX_KEY_LEN}",
                bytes.len()
            ),
            format!("agree on a key of at most {MAX_KEY_LEN} bytes with the neighbour"),
        );
        return None;
    }
    Some(Some(bytes))
}

/// `bytes` without one trailing `\n` or `\r\n`.
pub(super) fn trim_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    bytes
}

/// `families`: by default those of the anycast prefixes that have a next
/// hop (an underlay or local address of their family); each given one
/// needs a next hop.
fn families(
    u: &raw::Upstream,
    key: &str,
    node: &Node,
    local: Option<IpAddr>,
    report: &mut Report,
) -> Option<Vec<Family>> {
    let fkey = format!("{key}.families");
    let names = ["ipv4", "ipv6"];
    let mut out = Vec::new();
    let mut fine = true;
    match &u.families {
        // The families of the anycast prefixes that have a next hop.
        None => {
            for (v4, family) in [(true, Family::IPV4_UNICAST), (false, Family::IPV6_UNICAST)] {
                let next_hop = local.is_some_and(|l| l.is_ipv4() == v4)
                    || node.underlay.iter().any(|a| a.is_ipv4() == v4);
                if next_hop && node.anycast.iter().any(|p| p.addr().is_ipv4() == v4) {
                    out.push(family);
                }
            }
            return Some(out);
        }
        Some(list) => {
            if list.is_empty() {
                report.add(
                    &fkey,
                    "the list is empty",
                    "give ipv4, ipv6 or both, or leave it out for the families of the anycast prefixes",
                );
                fine = false;
            }
            for (i, name) in list.iter().enumerate() {
                let family = match name.as_str() {
                    "ipv4" => Family::IPV4_UNICAST,
                    "ipv6" => Family::IPV6_UNICAST,
                    other => {
                        report.add(
                            format!("{fkey}[{i}]"),
                            format!("unknown address family `{other}`"),
                            choices(&names),
                        );
                        fine = false;
                        continue;
                    }
                };
                if out.contains(&family) {
                    report.add(
                        format!("{fkey}[{i}]"),
                        format!("`{name}` is listed twice"),
                        "list each family once",
                    );
                    fine = false;
                    continue;
                }
                out.push(family);
            }
        }
    }
    for family in &out {
        let v4 = *family == Family::IPV4_UNICAST;
        let has_next_hop = local.is_some_and(|l| l.is_ipv4() == v4)
            || node.underlay.iter().any(|a| a.is_ipv4() == v4);
        if !has_next_hop && !node.underlay.is_empty() {
            let name = if v4 { "IPv4" } else { "IPv6" };
            report.add(
                &fkey,
                format!("{name} is announced, but the node has no {name} underlay address to give as next hop"),
                format!("add an {name} address to node.underlay, or leave {} out of families", if v4 { "ipv4" } else { "ipv6" }),
            );
            fine = false;
        }
    }
    fine.then_some(out)
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
