//! Conveniences on [`Prefix`]: parsing `addr/len` from config, printing
//! it back, containment and host routes.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use super::message::Prefix;

/// Why a string is not a prefix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a prefix: write it as ADDRESS/LENGTH with the host bits zero, e.g. 192.0.2.0/24"
)]
pub struct PrefixError(String);

impl Prefix {
    /// A host route (/32 or /128) for `addr`.
    pub fn host(addr: IpAddr) -> Prefix {
        match addr {
            IpAddr::V4(addr) => Prefix::V4 { addr, len: 32 },
            IpAddr::V6(addr) => Prefix::V6 { addr, len: 128 },
        }
    }

    /// The address of a host route, `None` for anything shorter.
    pub fn host_addr(&self) -> Option<IpAddr> {
        match *self {
            Prefix::V4 { addr, len: 32 } => Some(IpAddr::V4(addr)),
            Prefix::V6 { addr, len: 128 } => Some(IpAddr::V6(addr)),
            _ => None,
        }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        match *self {
            Prefix::V4 { addr, .. } => IpAddr::V4(addr),
            Prefix::V6 { addr, .. } => IpAddr::V6(addr),
        }
    }

    /// The prefix length.
    pub fn length(&self) -> u8 {
        match *self {
            Prefix::V4 { len, .. } | Prefix::V6 { len, .. } => len,
        }
    }

    /// Whether `addr` lies inside this prefix (same family only).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (*self, addr) {
            (Prefix::V4 { addr: net, len }, IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(len.min(32)))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (Prefix::V6 { addr: net, len }, IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(len.min(128)))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    /// Whether `other` lies wholly inside this prefix.
    pub fn covers(&self, other: &Prefix) -> bool {
        other.length() >= self.length() && self.contains(other.addr())
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PrefixError(s.to_string());
        let (addr, len) = s.split_once('/').ok_or_else(err)?;
        let len: u8 = len.parse().map_err(|_| err())?;
        let prefix = match addr.parse::<IpAddr>().map_err(|_| err())? {
            IpAddr::V4(addr) if len <= 32 => Prefix::V4 { addr, len },
            IpAddr::V6(addr) if len <= 128 => Prefix::V6 { addr, len },
            _ => return Err(err()),
        };
        // Host bits must be zero: `192.0.2.1/24` is almost always a typo.
        let network = match prefix {
            Prefix::V4 { addr, len } => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(addr) & mask))
            }
            Prefix::V6 { addr, len } => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(addr) & mask))
            }
        };
        if network != prefix.addr() {
            return Err(err());
        }
        Ok(prefix)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.length())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prints_and_contains() {
        let p: Prefix = "192.0.2.0/24".parse().unwrap();
        assert_eq!(p.to_string(), "192.0.2.0/24");
        assert!(p.contains("192.0.2.77".parse().unwrap()));
        assert!(!p.contains("192.0.3.1".parse().unwrap()));
        assert!(!p.contains("2001:db8::1".parse().unwrap()));
        let v6: Prefix = "2001:db8:1d::/48".parse().unwrap();
        assert!(v6.contains("2001:db8:1d::7".parse().unwrap()));
        assert!(v6.covers(&"2001:db8:1d::7/128".parse().unwrap()));
        assert!(!v6.covers(&"2001:db8::/32".parse().unwrap()));
        let all: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("198.51.100.1".parse().unwrap()));
        assert_eq!(
            Prefix::host("203.0.113.10".parse().unwrap()).host_addr(),
            Some("203.0.113.10".parse().unwrap())
        );
        assert_eq!(p.host_addr(), None);
    }

    #[test]
    fn rejects_typos() {
        for bad in [
            "192.0.2.1/24",
            "192.0.2.0",
            "192.0.2.0/33",
            "x/8",
            "2001:db8::/129",
        ] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad}");
        }
    }
}
