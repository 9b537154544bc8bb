//! What the overlay runtime needs to know, checked before anything starts:
//! who we are, where the control endpoint listens, the trust material,
//! what we originate, whom we may try, and what we accept.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use super::{
    adjacency::Timers,
    admission::AdmissionConfig,
    discovery::{Candidate, SrvQuery},
    identity::Identity,
    import::ImportPolicy,
    trust::TrustConfig,
};
use crate::bgp::message::Prefix;

/// The control endpoint's default TCP port.
pub const DEFAULT_PORT: u16 = 4179;

/// The overlay's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlayConfig {
    /// The control endpoint: the node's Internet-facing (underlay) address
    /// and port ([`DEFAULT_PORT`]). Dials to peers leave from this address
    /// too, so that peers see the address we announce as next hop.
    pub listen: SocketAddr,
    /// Our other-family underlay address, the next hop for routes of that
    /// family (e.g. IPv6 VIPs over an IPv4 control session).
    pub underlay_other: Option<IpAddr>,
    /// CA bundle, our certificate and key, revocation list, allow-list.
    pub trust: TrustConfig,
    /// The overlay's ASN (iBGP: the same on every node).
    pub asn: u32,
    /// Our node identity addresses (host routes we always originate); the
    /// IPv4 one is also the BGP identifier.
    pub node_addrs: Vec<IpAddr>,
    /// A private underlay address we announce once adjacencies are up.
    pub private_addr: Option<IpAddr>,
    /// Peers toward which we use their private underlay address.
    pub private_to: BTreeSet<Identity>,
    /// What peers may announce.
    pub import: ImportPolicy,
    /// Candidates from the config.
    pub static_peers: Vec<Candidate>,
    /// DNS SRV discovery.
    pub srv: Vec<SrvQuery>,
    /// How often SRV records are queried again.
    pub srv_refresh: Duration,
    /// iBGP hold time (keepalives every third of it).
    pub hold_time: u16,
    /// Retry timers of adjacencies.
    pub timers: Timers,
    /// The BFD timers of every adjacency (multihop, RFC 5883; the key is
    /// derived from the adjacency's TLS session); `None`: no BFD, the
    /// hold time alone detects a dead peer.
    pub bfd: Option<crate::bfd::Timers>,
    /// How often the trust files are checked for changes and every peer's
    /// certificate is checked again (expiry, revocation).
    pub trust_check: Duration,
    /// Who may start a TLS handshake on the control endpoint: the budget
    /// of candidates (`candidate_handshakes`, `[overlay] max_handshakes`)
    /// and the smaller, rate-limited one of strangers
    /// (`[overlay.strangers]`).
    pub admission: AdmissionConfig,
    /// Tell a new peer about our services only once the data plane trusts
    /// its address (`Overlay::confirm_trusted`, called by the control
    /// loop), so that it cannot send us traffic we would drop. Without a
    /// data plane (tests of the overlay alone) there is nothing to wait
    /// for.
    pub advertise_after_trust: bool,
}

/// A configuration the overlay cannot run with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No IPv4 node identity address: the BGP identifier comes from it.
    #[error("overlay: node identity addresses need an IPv4 one (it is the BGP identifier)")]
    NoIpv4Identity,
    /// A node identity address outside the identity ranges.
    #[error("overlay: node identity {0} is outside the configured identity ranges")]
    IdentityOutsideRanges(IpAddr),
    /// The private address is outside the private ranges.
    #[error("overlay: private underlay address {0} is outside the configured private ranges")]
    PrivateOutsideRanges(IpAddr),
    /// An import range that is not in the right place.
    #[error(
        "overlay: import range {0} covers the default route; use the identity and anycast prefixes"
    )]
    RangeTooWide(Prefix),
    /// A zero limit, hold time below 3 s, and the like.
    #[error("overlay: {0}")]
    Invalid(&'static str),
    /// The underlay address is unspecified.
    #[error("overlay: listen address {0} must be the node's underlay address, not a wildcard")]
    WildcardListen(SocketAddr),
}

impl OverlayConfig {
    /// Checks what can be checked without touching files or sockets.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.ip().is_unspecified() {
            return Err(ConfigError::WildcardListen(self.listen));
        }
        self.bgp_id()?;
        let policy = &self.import;
        for range in policy
            .identity_ranges
            .iter()
            .chain(&policy.service_ranges)
            .chain(&policy.private_ranges)
        {
            if range.length() == 0 {
                return Err(ConfigError::RangeTooWide(*range));
            }
        }
        for addr in &self.node_addrs {
            if !policy.identity_ranges.iter().any(|r| r.contains(*addr)) {
                return Err(ConfigError::IdentityOutsideRanges(*addr));
            }
        }
        if let Some(addr) = self.private_addr {
            if !policy.private_ranges.iter().any(|r| r.contains(addr)) {
                return Err(ConfigError::PrivateOutsideRanges(addr));
            }
        }
        if policy.max_routes == 0 {
            return Err(ConfigError::Invalid("max_routes must be at least 1"));
        }
        if self.hold_time != 0 && self.hold_time < 3 {
            return Err(ConfigError::Invalid(
                "hold_time must be 0 or at least 3 seconds",
            ));
        }
        let admission = &self.admission;
        if [
            admission.candidate_handshakes,
            admission.stranger_handshakes,
            admission.per_source,
        ]
        .contains(&0)
            || admission.rate == 0
            || admission.burst == 0
        {
            return Err(ConfigError::Invalid(
                "admission's handshake limits, rate and burst must be at least 1",
            ));
        }
        if admission.per_source > admission.stranger_handshakes {
            return Err(ConfigError::Invalid(
                "admission's per_source must be at most its stranger handshakes",
            ));
        }
        if admission.first_flight.is_zero() || admission.timeout < admission.first_flight {
            return Err(ConfigError::Invalid(
                "admission's first_flight must be above zero and at most its timeout",
            ));
        }
        if self.trust_check.is_zero() || self.srv_refresh.is_zero() {
            return Err(ConfigError::Invalid(
                "trust_check and srv_refresh must be above zero",
            ));
        }
        Ok(())
    }

    /// The BGP identifier: our IPv4 node identity.
    pub fn bgp_id(&self) -> Result<Ipv4Addr, ConfigError> {
        self.node_addrs
            .iter()
            .find_map(|a| match a {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            })
            .ok_or(ConfigError::NoIpv4Identity)
    }

    /// Our IPv4 and IPv6 underlay addresses (next hops we announce).
    pub fn underlay(&self) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
        let mut v4 = None;
        let mut v6 = None;
        for addr in [Some(self.listen.ip()), self.underlay_other]
            .into_iter()
            .flatten()
        {
            match addr {
                IpAddr::V4(a) => v4 = v4.or(Some(a)),
                IpAddr::V6(a) => v6 = v6.or(Some(a)),
            }
        }
        (v4, v6)
    }
}
