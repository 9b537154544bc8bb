//! Parsers for the values a config file writes as strings or plain
//! integers: durations (`500ms`, `2s`, `1m30s`), addresses with optional
//! ports, prefixes (host bits must be zero), ASNs, interface names,
//! absolute paths, identities and service ports (`tcp/443`). Each returns
//! a [`Bad`] that says what is wrong and how to fix it; the builder adds
//! the key.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
    str::FromStr,
    time::Duration,
};

use crate::{bgp::message::Prefix, dataplane::Protocol, overlay::identity::Identity};

/// A value that cannot be used: what is wrong, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Bad {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// A [`Bad`] from its two parts.
pub(super) fn bad(message: impl Into<String>, hint: impl Into<String>) -> Bad {
    Bad {
        message: message.into(),
        hint: hint.into(),
    }
}

/// The longest duration any setting accepts (a day).
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// A duration: one or more `<number><unit>` parts, units `ms`, `s`, `m`,
/// `h`, for example `500ms`, `2s`, `10m`, `1m30s`, `1.5s`.
pub(super) fn duration(text: &str) -> Result<Duration, Bad> {
    let hint =
        "write a number and a unit (ms, s, m or h), e.g. \"500ms\", \"2s\", \"10m\" or \"1m30s\"";
    let wrong = |why: &str| bad(format!("`{text}` is not a duration: {why}"), hint);
    let s = text.trim();
    if s.is_empty() {
        return Err(wrong("it is empty"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(wrong("expected a number"));
        }
        let (number, after) = rest.split_at(digits);
        let units = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(units);
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(wrong("the unit is missing")),
            _ => return Err(wrong(&format!("unknown unit `{unit}`"))),
        };
        let value: f64 = number
            .parse()
            .map_err(|_| wrong(&format!("`{number}` is not a number")))?;
        let part =
            Duration::try_from_secs_f64(value * scale).map_err(|_| wrong("it is out of range"))?;
        total = total.saturating_add(part);
        rest = after;
    }
    if total > MAX_DURATION {
        return Err(bad(
            format!("`{text}` is longer than the day a setting may be"),
            "use a shorter duration",
        ));
    }
    Ok(total)
}

/// A duration as the config writes it: `2s`, `500ms`, `1m30s`.
pub(super) fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

/// An IP address.
pub(super) fn ip(text: &str) -> Result<IpAddr, Bad> {
    text.trim().parse().map_err(|_| {
        bad(
            format!("`{text}` is not an IP address"),
            "write an IPv4 or IPv6 address without a prefix length or port, e.g. \"192.0.2.1\" or \"2001:db8::1\"",
        )
    })
}

/// A unicast address a node can own: not unspecified, loopback,
/// multicast or broadcast.
pub(super) fn unicast(text: &str) -> Result<IpAddr, Bad> {
    let addr = ip(text)?;
    let why = match addr {
        IpAddr::V4(a) if a.is_unspecified() => Some("unspecified"),
        IpAddr::V4(a) if a.is_loopback() => Some("a loopback address"),
        IpAddr::V4(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V4(a) if a == Ipv4Addr::BROADCAST => Some("the broadcast address"),
        IpAddr::V6(a) if a.is_unspecified() => Some("unspecified"),
        IpAddr::V6(a) if a.is_loopback() => Some("a loopback address"),
        IpAddr::V6(a) if a.is_multicast() => Some("a multicast address"),
        _ => None,
    };
    match why {
        Some(why) => Err(bad(
            format!("{addr} is {why}"),
            "give a unicast address of this node",
        )),
        None => Ok(addr),
    }
}

/// An address with an optional port (`192.0.2.1`, `192.0.2.1:4179`,
/// `2001:db8::1`, `[2001:db8::1]:4179`); `default_port` when none is
/// given.
pub(super) fn socket(text: &str, default_port: u16) -> Result<SocketAddr, Bad> {
    let s = text.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(addr) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(addr, default_port));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        if let Ok(addr) = inner.parse::<Ipv6Addr>() {
            return Ok(SocketAddr::new(addr.into(), default_port));
        }
    }
    Err(bad(
        format!("`{text}` is not an address (with an optional port)"),
        format!(
            "write e.g. \"192.0.2.1\", \"192.0.2.1:{default_port}\" or \"[2001:db8::1]:{default_port}\""
        ),
    ))
}

/// A socket address whose port is not 0.
pub(super) fn socket_with_port(text: &str, default_port: u16) -> Result<SocketAddr, Bad> {
    let addr = socket(text, default_port)?;
    if addr.port() == 0 {
        return Err(bad(
            format!("`{text}` has port 0"),
            "give the port to use, or leave it out for the default",
        ));
    }
    Ok(addr)
}

/// A prefix `ADDRESS/LENGTH` whose host bits are zero. A prefix with host
/// bits set is reported with the masked prefix to use instead, which is
/// also returned in [`PrefixBad::HostBits`] so that later checks can
/// carry on with what was surely meant.
pub(super) fn prefix(text: &str) -> Result<Prefix, PrefixBad> {
    let s = text.trim();
    let malformed = || {
        PrefixBad::Malformed(bad(
            format!("`{text}` is not a prefix"),
            "write ADDRESS/LENGTH, e.g. \"203.0.113.0/24\" or \"2001:db8:ac::/48\"",
        ))
    };
    let (addr, len) = s.split_once('/').ok_or_else(malformed)?;
    let len: u8 = len.parse().map_err(|_| malformed())?;
    let addr: IpAddr = addr.parse().map_err(|_| malformed())?;
    let masked = match addr {
        IpAddr::V4(a) if len <= 32 => Prefix::V4 {
            addr: Ipv4Addr::from(
                u32::from(a) & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0),
            ),
            len,
        },
        IpAddr::V6(a) if len <= 128 => Prefix::V6 {
            addr: Ipv6Addr::from(
                u128::from(a) & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0),
            ),
            len,
        },
        IpAddr::V4(_) => {
            return Err(PrefixBad::Malformed(bad(
                format!("`{text}`: an IPv4 prefix length is at most 32"),
                "write ADDRESS/LENGTH with a length from 0 to 32",
            )));
        }
        IpAddr::V6(_) => {
            return Err(PrefixBad::Malformed(bad(
                format!("`{text}`: an IPv6 prefix length is at most 128"),
                "write ADDRESS/LENGTH with a length from 0 to 128",
            )));
        }
    };
    if masked.addr() != addr {
        return Err(PrefixBad::HostBits(
            bad(
                format!("`{text}` has host bits set (bits after the first {len} are not zero)"),
                format!("write the network address: \"{masked}\""),
            ),
            masked,
        ));
    }
    Ok(masked)
}

/// Why a string is not a usable prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum PrefixBad {
    /// Not a prefix at all.
    Malformed(Bad),
    /// A prefix with host bits set; the masked prefix.
    HostBits(Bad, Prefix),
}

/// `AS_TRANS` (RFC 6793): a placeholder, never a real ASN.
const AS_TRANS: u32 = crate::bgp::message::AS_TRANS as u32;

/// An ASN that can be used on a BGP session: 1 to 4294967294, except
/// AS_TRANS (23456) and the numbers IANA reserves (65535, 65552–131071).
/// The documentation ranges (64496–64511, 65536–65551) and private ASNs
/// are accepted: labs use them.
pub(super) fn asn(n: i64) -> Result<u32, Bad> {
    let hint =
        "use the ASN your registry assigned, or a private one (64512-65534, 4200000000-4294967294)";
    let Ok(asn) = u32::try_from(n) else {
        return Err(bad(
            format!("{n} is not an ASN: ASNs are 1 to 4294967294"),
            hint,
        ));
    };
    let why = match asn {
        0 => Some("AS 0 is reserved (RFC 7607) and never valid on a session"),
        AS_TRANS => Some(
            "AS 23456 is AS_TRANS (RFC 6793), the placeholder for four-octet ASNs, never a real ASN",
        ),
        65535 | 4_294_967_295 => Some("it is reserved (RFC 7300)"),
        65552..=131_071 => Some("it is reserved by IANA"),
        _ => None,
    };
    match why {
        Some(why) => Err(bad(format!("{n} is not a usable ASN: {why}"), hint)),
        None => Ok(asn),
    }
}

/// An integer in `lo..=hi`, converted to `T`.
pub(super) fn int<T: TryFrom<i64>>(n: i64, lo: i64, hi: i64, what: &str) -> Result<T, Bad> {
    if n < lo || n > hi {
        return Err(bad(
            format!("{n} is out of range for {what}"),
            format!("give a number from {lo} to {hi}"),
        ));
    }
    T::try_from(n).map_err(|_| {
        bad(
            format!("{n} is out of range for {what}"),
            format!("give a number from {lo} to {hi}"),
        )
    })
}

/// A BGP hold time: 0 (no keepalives) or 3 to 65535 seconds.
pub(super) fn hold_time(n: i64) -> Result<u16, Bad> {
    let hint = "give 0 (no keepalives) or at least 3 seconds (RFC 4271)";
    match n {
        1 | 2 => Err(bad(format!("a hold time of {n} s is not allowed"), hint)),
        0 | 3..=65535 => {
            u16::try_from(n).map_err(|_| bad(format!("{n} is out of range for a hold time"), hint))
        }
        _ => Err(bad(format!("{n} is out of range for a hold time"), hint)),
    }
}

/// Longest interface name Linux accepts (`IFNAMSIZ` less the NUL).
const MAX_IFNAME: usize = 15;

/// A Linux interface name: 1 to 15 bytes, no `/`, `:`, whitespace or
/// control characters, not `.` or `..`.
pub(super) fn ifname(text: &str) -> Result<String, Bad> {
    let valid = !text.is_empty()
        && text.len() <= MAX_IFNAME
        && text != "."
        && text != ".."
        && !text
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if valid {
        Ok(text.to_owned())
    } else {
        Err(bad(
            format!("`{text}` is not an interface name"),
            "Linux interface names are 1 to 15 characters without `/`, `:` or spaces, e.g. \"eth0\"",
        ))
    }
}

/// An absolute path.
pub(super) fn abs_path(text: &str) -> Result<PathBuf, Bad> {
    let path = PathBuf::from(text);
    if text.is_empty() || !path.is_absolute() {
        return Err(bad(
            format!("`{text}` is not an absolute path"),
            "write the whole path from `/`; relative paths would depend on the directory the daemon starts in",
        ));
    }
    Ok(path)
}

/// A node identity `edge://<name>`.
pub(super) fn identity(text: &str) -> Result<Identity, Bad> {
    Identity::from_str(text).map_err(|e| {
        bad(
            e.to_string(),
            "write `edge://` and the node's name, lower case letters, digits, `-` and `.`, e.g. \"edge://pop-ams1\"",
        )
    })
}

/// A service port: `tcp/443`, `udp/53`, or `tcp` / `udp` for every port.
pub(super) fn port_spec(text: &str) -> Result<(Protocol, Option<u16>), Bad> {
    let hint = "write PROTOCOL/PORT (\"tcp/443\", \"udp/53\") or the protocol alone for every port (\"udp\")";
    let s = text.trim().to_ascii_lowercase();
    let (proto, port) = match s.split_once('/') {
        Some((proto, port)) => (proto.to_owned(), Some(port.to_owned())),
        None => (s.clone(), None),
    };
    let protocol = match proto.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => {
            return Err(bad(
                format!("`{text}`: the protocol must be tcp or udp"),
                hint,
            ));
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => {
                return Err(bad(
                    format!("`{text}`: the port must be a number from 1 to 65535"),
                    hint,
                ));
            }
            Ok(p) => Some(p),
        },
    };
    Ok((protocol, port))
}

/// How a service port is written back (`tcp/443`, `udp`).
pub(super) fn show_port(protocol: Protocol, port: Option<u16>) -> String {
    let proto = match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    match port {
        Some(p) => format!("{proto}/{p}"),
        None => proto.to_owned(),
    }
}

/// A list of choices for messages: `a, b or c`.
pub(super) fn choices(options: &[&str]) -> String {
    match options {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
#[path = "values_tests.rs"]
mod tests;
