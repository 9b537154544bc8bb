//! What the agent tells the data plane, in its own terms (addresses,
//! protocols, peers), converted to the map layouts of `edge_common::maps`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use edge_common::maps::{
    AddrKey, CONFIG_HAS_V4, CONFIG_HAS_V6, Config, ENCAP_GUE, ENCAP_IPIP, FAMILY_V4, FAMILY_V6,
    MAX_PREFIXES, Peer, ServiceKey,
};

/// Node-wide data-plane settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// This node's IPv4 underlay address (outer source; decapsulated destination).
    pub underlay_v4: Option<Ipv4Addr>,
    /// This node's IPv6 underlay address.
    pub underlay_v6: Option<Ipv6Addr>,
    /// UDP port for GUE; `None` disables GUE decapsulation.
    pub gue_port: Option<u16>,
    /// Largest outer IP packet the underlay carries.
    pub mtu: u16,
    /// The anycast prefixes the node announces (address, length): only
    /// traffic to them can be service traffic. At most
    /// [`MAX_PREFIXES`] per family.
    pub anycast: Vec<(IpAddr, u8)>,
}

impl NodeConfig {
    /// Whether `addr` is inside one of the anycast prefixes.
    pub fn is_anycast(&self, addr: IpAddr) -> bool {
        self.anycast
            .iter()
            .any(|(prefix, len)| match (prefix, addr) {
                (IpAddr::V4(p), IpAddr::V4(a)) => {
                    mask_v4(*len).is_some_and(|m| u32::from(*p) & m == u32::from(a) & m)
                }
                (IpAddr::V6(p), IpAddr::V6(a)) => {
                    mask_v6(*len).is_some_and(|m| u128::from(*p) & m == u128::from(a) & m)
                }
                _ => false,
            })
    }

    pub(crate) fn to_map(&self, maglev_size: u32) -> Result<Config, String> {
        let mut config = Config {
            gue_port: self.gue_port.unwrap_or(0),
            mtu: self.mtu,
            maglev_size,
            ..Config::default()
        };
        if let Some(a) = self.underlay_v4 {
            config.flags |= CONFIG_HAS_V4;
            config.underlay_v4 = a.octets();
        }
        if let Some(a) = self.underlay_v6 {
            config.flags |= CONFIG_HAS_V6;
            config.underlay_v6 = a.octets();
        }
        for (prefix, len) in &self.anycast {
            let too_many = |family| {
                format!(
                    "more than {MAX_PREFIXES} {family} anycast prefixes: the data plane holds {MAX_PREFIXES}"
                )
            };
            match *prefix {
                IpAddr::V4(p) => {
                    let mask = mask_v4(*len).ok_or_else(|| {
                        format!("anycast prefix {p}/{len}: an IPv4 prefix length is at most 32")
                    })?;
                    let i = config.prefix_count_v4 as usize;
                    if i == MAX_PREFIXES {
                        return Err(too_many("IPv4"));
                    }
                    config.prefixes_v4[i] = (u32::from(p) & mask).to_be_bytes();
                    config.masks_v4[i] = mask.to_be_bytes();
                    config.prefix_count_v4 += 1;
                }
                IpAddr::V6(p) => {
                    let mask = mask_v6(*len).ok_or_else(|| {
                        format!("anycast prefix {p}/{len}: an IPv6 prefix length is at most 128")
                    })?;
                    let i = config.prefix_count_v6 as usize;
                    if i == MAX_PREFIXES {
                        return Err(too_many("IPv6"));
                    }
                    config.prefixes_v6[i] = (u128::from(p) & mask).to_be_bytes();
                    config.masks_v6[i] = mask.to_be_bytes();
                    config.prefix_count_v6 += 1;
                }
            }
        }
        Ok(config)
    }
}

/// The netmask of an IPv4 prefix length, `None` past 32.
fn mask_v4(len: u8) -> Option<u32> {
    (len <= 32).then(|| u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0))
}

/// The netmask of an IPv6 prefix length, `None` past 128.
fn mask_v6(len: u8) -> Option<u128> {
    (len <= 128).then(|| u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0))
}

/// Transport protocol of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    pub(crate) fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

/// What traffic belongs to a service: VIP, protocol, and a port or any port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceMatch {
    /// The service VIP.
    pub vip: IpAddr,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Destination port; `None` matches every port (and IP fragments).
    pub port: Option<u16>,
}

impl ServiceMatch {
    pub(crate) fn to_key(self) -> ServiceKey {
        let (addr, family) = addr16(self.vip);
        ServiceKey {
            addr,
            port: self.port.unwrap_or(0),
            family,
            proto: self.protocol.number(),
        }
    }
}

/// How packets to a peer are encapsulated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encap {
    /// IP-in-IP (protocol 4 or 41 by inner family).
    #[default]
    IpIp,
    /// GUE over UDP to the configured port.
    Gue,
}

/// An overlay peer as the data plane sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    /// The peer's underlay address (outer destination).
    pub underlay: IpAddr,
    /// Encapsulation toward it.
    pub encap: Encap,
}

impl PeerSpec {
    pub(crate) fn to_map(self) -> Peer {
        let (addr, family) = addr16(self.underlay);
        let encap = match self.encap {
            Encap::IpIp => ENCAP_IPIP,
            Encap::Gue => ENCAP_GUE,
        };
        Peer {
            addr,
            family,
            encap,
            _pad: [0; 2],
        }
    }
}

/// One peer that has a service healthy, for the service's Maglev table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceBackend {
    /// The peer id (as given to [`super::Dataplane::set_peer`]).
    pub peer: u32,
    /// The peer's stable identity (e.g. `edge://pop-fra1`): it, not the id,
    /// places the peer in the table.
    pub identity: String,
    /// Relative weight; 0 leaves the peer out.
    pub weight: u32,
}

/// The state of one service in the data plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Index of the service (`< MAX_SERVICES`): its counters and table slots.
    pub id: u32,
    /// The traffic it serves (one or more matches).
    pub matches: Vec<ServiceMatch>,
    /// Whether the local instance is healthy.
    pub local_healthy: bool,
    /// With no capacity anywhere: drop (`true`) or pass to the kernel (`false`).
    pub drop_when_unavailable: bool,
    /// Peers that have the service healthy.
    pub backends: Vec<ServiceBackend>,
}

/// An address as 16 bytes (IPv4 first) and its family tag.
pub(crate) fn addr16(addr: IpAddr) -> ([u8; 16], u8) {
    match addr {
        IpAddr::V4(a) => {
            let mut out = [0; 16];
            out[..4].copy_from_slice(&a.octets());
            (out, FAMILY_V4)
        }
        IpAddr::V6(a) => (a.octets(), FAMILY_V6),
    }
}

/// The trusted-source key of an address.
pub(crate) fn addr_key(addr: IpAddr) -> AddrKey {
    let (addr, family) = addr16(addr);
    AddrKey {
        addr,
        family,
        _pad: [0; 3],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_put_ipv4_first_and_tag_the_family() {
        let m = ServiceMatch {
            vip: "203.0.113.10".parse().unwrap(),
            protocol: Protocol::Tcp,
            port: Some(80),
        };
        let k = m.to_key();
        assert_eq!(&k.addr[..4], &[203, 0, 113, 10]);
        assert!(k.addr[4..].iter().all(|b| *b == 0));
        assert_eq!((k.port, k.family, k.proto), (80, FAMILY_V4, 6));
        let any = ServiceMatch {
            port: None,
            protocol: Protocol::Udp,
            vip: "2001:db8:ac::53".parse().unwrap(),
        };
        let k = any.to_key();
        assert_eq!((k.port, k.family, k.proto), (0, FAMILY_V6, 17));
        assert_eq!(
            k.addr,
            "2001:db8:ac::53".parse::<Ipv6Addr>().unwrap().octets()
        );
    }

    fn node(anycast: Vec<(IpAddr, u8)>) -> NodeConfig {
        NodeConfig {
            underlay_v4: Some(Ipv4Addr::new(198, 51, 100, 1)),
            underlay_v6: None,
            gue_port: None,
            mtu: 1500,
            anycast,
        }
    }

    #[test]
    fn node_config_sets_flags_only_for_present_families() {
        let m = node(vec![]).to_map(6421).unwrap();
        assert_eq!(m.flags, CONFIG_HAS_V4);
        assert_eq!(
            (m.underlay_v4, m.gue_port, m.mtu, m.maglev_size),
            ([198, 51, 100, 1], 0, 1500, 6421)
        );
    }

    #[test]
    fn anycast_prefixes_are_masked_and_bounded() {
        let c = node(vec![
            ("203.0.113.77".parse().unwrap(), 24),
            ("2001:db8:ac::1".parse().unwrap(), 48),
        ]);
        let m = c.to_map(6421).unwrap();
        assert_eq!((m.prefix_count_v4, m.prefix_count_v6), (1, 1));
        assert_eq!(
            (m.prefixes_v4[0], m.masks_v4[0]),
            ([203, 0, 113, 0], [255, 255, 255, 0])
        );
        assert_eq!(&m.masks_v6[0][..7], &[255, 255, 255, 255, 255, 255, 0]);
        assert!(c.is_anycast("203.0.113.10".parse().unwrap()));
        assert!(c.is_anycast("2001:db8:ac::10".parse().unwrap()));
        assert!(!c.is_anycast("203.0.114.10".parse().unwrap()));
        assert!(!c.is_anycast("2001:db8:ad::10".parse().unwrap()));
        let all = node(vec![("0.0.0.0".parse().unwrap(), 0)]);
        assert!(all.is_anycast("192.0.2.1".parse().unwrap()));
        let err = node(vec![("203.0.113.0".parse().unwrap(), 33)])
            .to_map(6421)
            .unwrap_err();
        assert!(err.contains("at most 32"), "{err}");
        let nine = (0..9)
            .map(|i| (IpAddr::from(Ipv4Addr::new(203, 0, i, 0)), 24))
            .collect();
        let err = node(nine).to_map(6421).unwrap_err();
        assert!(err.contains("more than 8"), "{err}");
    }
}
