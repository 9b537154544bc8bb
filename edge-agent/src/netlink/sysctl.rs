//! The sysctls the design needs, and nothing else. On the Internet-facing
//! interface:
//!
//! - `net.ipv4.conf.<if>.rp_filter = 2` (loose). Decapsulated packets are
//!   delivered with the client's address as source on the Internet
//!   interface, and DSR replies leave on paths the client's packets did not
//!   come in on; strict reverse-path filtering would drop legitimate
//!   traffic. The kernel uses the larger of `all` and the interface's
//!   value, so this never makes an operator's setting stricter or looser
//!   than loose.
//! - `net.ipv4.conf.<if>.arp_ignore = 1`: answer ARP only for addresses
//!   configured on the interface asked, so the node never claims a VIP or
//!   an identity (which live on the agent's own interface) on the
//!   Internet segment, where other PoPs may share the link.
//! - `net.ipv4.conf.<if>.arp_announce = 2`: never use a VIP as the source
//!   of our own ARP requests.
//!
//! - `net.ipv4.tcp_syncookies = 1` (or 2, left as it is): when a SYN
//!   flood fills the SYN queue of the BGP port or the control endpoint,
//!   the kernel answers with cookies instead of dropping real peers'
//!   SYNs. It covers IPv6 too. It is the network namespace's setting,
//!   not the interface's.
//!
//! IPv6 needs nothing else: the agent adds its addresses without duplicate
//! address detection (they are anycast on purpose).

use std::path::PathBuf;

/// One sysctl the agent sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sysctl {
    /// The `/proc/sys` path.
    pub path: PathBuf,
    /// The value it must have.
    pub value: &'static str,
    /// Other values that are as good (left as they are).
    pub also: &'static [&'static str],
}

/// A sysctl that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("sysctl {}: {source} (is the interface there, and are we root in this network namespace?)", path.display())]
pub struct SysctlError {
    /// Which.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// The sysctls for the Internet-facing interface `internet`.
pub fn required(internet: &str) -> Vec<Sysctl> {
    let conf = |key: &str| PathBuf::from(format!("/proc/sys/net/ipv4/conf/{internet}/{key}"));
    vec![
        Sysctl {
            path: conf("rp_filter"),
            value: "2",
            also: &[],
        },
        Sysctl {
            path: conf("arp_ignore"),
            value: "1",
            also: &[],
        },
        Sysctl {
            path: conf("arp_announce"),
            value: "2",
            also: &[],
        },
        Sysctl {
            path: PathBuf::from("/proc/sys/net/ipv4/tcp_syncookies"),
            value: "1",
            // 2: cookies always, stricter than needed and the operator's.
            also: &["2"],
        },
    ]
}

/// Sets each sysctl that differs; returns the ones changed, with their old
/// values.
pub fn ensure(sysctls: &[Sysctl]) -> Result<Vec<(PathBuf, String)>, SysctlError> {
    let mut changed = Vec::new();
    for s in sysctls {
        let err = |source| SysctlError {
            path: s.path.clone(),
            source,
        };
        let old = std::fs::read_to_string(&s.path).map_err(err)?;
        if old.trim() != s.value && !s.also.contains(&old.trim()) {
            std::fs::write(&s.path, s.value).map_err(err)?;
            changed.push((s.path.clone(), old.trim().to_string()));
        }
    }
    Ok(changed)
}
