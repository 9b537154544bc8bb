//! Discovery of overlay candidates: which addresses might belong to which
//! peer node. Owns the DNS SRV convention, the parsing of DNS responses into
//! [`Candidate`]s, a small DNS client that asks the configured resolvers,
//! and [`merge`], which folds candidates from every source per identity.
//!
//! **Discovery is not trust.** A candidate is only a possibility: an address
//! to try and the identity found there *claims*. The TLS layer later checks
//! that the peer's certificate proves the claimed identity, and the
//! allow-list decides whether that identity may be a peer at all. Nothing
//! here needs DNSSEC or trusts the resolver beyond "worth a try".
//!
//! # The SRV convention
//!
//! Each overlay node is one SRV record of `_edge-overlay._tcp.<domain>`
//! ([`SERVICE`]); its target host and port are where the node's overlay
//! control endpoint listens:
//!
//! ```text
//! _edge-overlay._tcp.cdn.example. SRV 10 0 4443 pop-fra1.cdn.example.
//! pop-fra1.cdn.example.           A    192.0.2.11
//! pop-fra1.cdn.example.           AAAA 2001:db8::11
//! ```
//!
//! - The claimed identity is `edge://<first label of the target>`: the
//!   target `pop-fra1.cdn.example.` claims `edge://pop-fra1`. A first label
//!   that is not a valid identity name (letters, digits and `-` only, so
//!   `pop_fra1` or an escaped `.` inside a label are refused) makes the
//!   record **skipped with a warning** in the log, not an error: one bad
//!   record must not hide every other peer.
//! - The addresses are the target's A and AAAA records, taken from the
//!   response's additional section; a family missing there is asked for
//!   separately (an A and/or an AAAA query) from the same resolvers. Targets
//!   whose addresses cannot be found yield no candidate (logged).
//! - Priority and weight are ignored and every target is kept: the overlay
//!   wants a full mesh, not one server. A target of `.` (RFC 2782: "service
//!   decidedly not available", normally with weight 0) and port 0 are
//!   skipped. Unspecified, multicast and broadcast addresses are skipped.
//! - CNAMEs in the answer section are followed (at most
//!   [`MAX_CNAME_HOPS`]), for the SRV owner and for address lookups.
//!
//! # The query layer
//!
//! [`query_srv`] asks each resolver in order until one answers, through
//! the agent's DNS stub client ([`crate::net::dns`]): over UDP from a
//! fresh port with an ID from the CSPRNG and EDNS (1232 bytes);
//! datagrams from elsewhere, with another ID, without the QR bit, or for
//! another question are ignored until the timeout. An answer with TC=1 is
//! asked again over TCP. NXDOMAIN is an empty list, not an error;
//! SERVFAIL, REFUSED, other error codes, refused connections and silence
//! (malformed datagrams count as silence: they are ignored until the
//! timeout) move on to the next resolver, and when none is left the error
//! names every resolver and what it did. Everything is bounded: [`MAX_RECORDS`] records
//! per response, [`MAX_TARGETS`] SRV targets, hickory's name limits (255
//! bytes, 63 per label, compression loops), and the timeout.
//! Malformed input from the wire never panics: it is
//! [`DiscoveryError::Malformed`] (or an ignored datagram).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use hickory_proto::{
    op::{Message, Query, ResponseCode},
    rr::{DNSClass, Name, RData, Record, RecordType},
};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::identity::Identity;
use crate::net::dns::{self, DecodeError, Limits};

/// The service and protocol labels of overlay SRV records, prepended to a
/// domain: `_edge-overlay._tcp.cdn.example.`.
pub const SERVICE: &str = "_edge-overlay._tcp";

/// The most resource records (answer, authority and additional sections
/// together) accepted in one DNS response.
pub const MAX_RECORDS: usize = dns::MAX_RECORDS;

/// The most SRV records (targets) accepted for one name.
pub const MAX_TARGETS: usize = 256;

/// The most CNAMEs followed from a queried name.
pub const MAX_CNAME_HOPS: usize = 8;

/// How many address lookups run at once.
const PARALLEL_LOOKUPS: usize = 16;

/// A possible overlay peer: an address to try and the identity claimed for
/// it. Not trusted: the TLS handshake must prove the identity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Candidate {
    /// The identity this candidate claims to be.
    pub identity: Identity,
    /// Where to reach its overlay control endpoint.
    pub addr: SocketAddr,
    /// Where the candidate came from.
    pub source: Source,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {} ({})", self.identity, self.addr, self.source)
    }
}

/// Where a [`Candidate`] came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// The static configuration.
    Static,
    /// An SRV lookup of this owner name (lower case, with the final dot,
    /// `_edge-overlay._tcp.cdn.example.`).
    Srv(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Static => f.write_str("static configuration"),
            Source::Srv(owner) => write!(f, "SRV {owner}"),
        }
    }
}

/// One SRV lookup: the name and the resolvers to ask, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrvQuery {
    /// The SRV owner name, e.g. `_edge-overlay._tcp.cdn.example.` (the
    /// final dot is optional: the name is always taken as absolute).
    pub name: String,
    /// The resolvers (or authoritative servers) to ask, in order of
    /// preference, usually on port 53.
    pub resolvers: Vec<SocketAddr>,
}

impl SrvQuery {
    /// The query for the overlay nodes of `domain` (`cdn.example` →
    /// `_edge-overlay._tcp.cdn.example.`).
    pub fn for_domain(domain: &str, resolvers: Vec<SocketAddr>) -> Self {
        let domain = domain.trim_end_matches('.');
        SrvQuery {
            name: format!("{SERVICE}.{domain}."),
            resolvers,
        }
    }
}

/// What one resolver did when it did not give a usable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverFailure {
    /// The resolver asked.
    pub resolver: SocketAddr,
    /// What happened, for people (`answered Server Failure`, `no answer
    /// within 2s`, `connection refused`).
    pub reason: String,
}

impl fmt::Display for ResolverFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.resolver, self.reason)
    }
}

/// Why discovery found nothing usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// The configured SRV name is not a DNS name.
    #[error("`{name}` is not a DNS name to look up overlay candidates with: {reason}")]
    InvalidName {
        /// The name as configured.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No resolver is configured.
    #[error("no DNS resolvers are configured to look up `{name}`")]
    NoResolvers {
        /// The name that was to be looked up.
        name: String,
    },
    /// The bytes are not a well-formed DNS message.
    #[error("malformed DNS response: {0}")]
    Malformed(String),
    /// The response is well formed but does not answer the question asked.
    #[error("the DNS response does not answer the SRV query for `{name}`: {reason}")]
    NotAnAnswer {
        /// The name that was asked for.
        name: String,
        /// How the response differs.
        reason: String,
    },
    /// The response has TC=1: it is incomplete and must be asked for again
    /// over TCP ([`query_srv`] does that itself).
    #[error("the DNS response for `{name}` is truncated (TC=1); it must be asked for over TCP")]
    Truncated {
        /// The name that was asked for.
        name: String,
    },
    /// The server answered with an error code (other than NXDOMAIN, which
    /// means "no candidates").
    #[error("the DNS server answered `{rcode}` for `{name}`")]
    Rcode {
        /// The name that was asked for.
        name: String,
        /// The response code, in words.
        rcode: String,
    },
    /// The response has more of something than is accepted.
    #[error(
        "the DNS response for `{name}` has {count} {what}, more than the {max} accepted; \
         split the overlay into several SRV names"
    )]
    TooMany {
        /// The name that was asked for.
        name: String,
        /// What there are too many of.
        what: &'static str,
        /// How many there are.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Every resolver failed (error code, silence, bad answers).
    #[error("no DNS resolver answered {qtype} `{name}`: {}", list(.failures))]
    Unanswered {
        /// The name that was asked for.
        name: String,
        /// The record type asked for.
        qtype: String,
        /// What each resolver did, in the order asked.
        failures: Vec<ResolverFailure>,
    },
}

fn list(failures: &[ResolverFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Parses one DNS response to an SRV query for `owner` into candidates.
///
/// Pure: checks that the response is a response to the SRV question for
/// `owner` (the ID can only be checked by whoever sent the query), then
/// applies the convention of the module documentation. NXDOMAIN and an
/// empty answer give an empty list; TC=1 is [`DiscoveryError::Truncated`];
/// other error codes are [`DiscoveryError::Rcode`]. Only targets with
/// addresses in the additional section give candidates here: looking up
/// the others is [`query_srv`]'s job. The list is sorted and without
/// duplicates.
pub fn candidates_from_response(
    owner: &str,
    response: &[u8],
) -> Result<Vec<Candidate>, DiscoveryError> {
    let owner = owner_name(owner)?;
    let message = decode(response, &owner)?;
    let question = Query::query(owner.clone(), RecordType::SRV);
    if let Err(reason) = dns::answers(&message, &question) {
        return Err(DiscoveryError::NotAnAnswer {
            name: owner.to_ascii(),
            reason: reason.to_string(),
        });
    }
    if message.truncated() {
        return Err(DiscoveryError::Truncated {
            name: owner.to_ascii(),
        });
    }
    match message.response_code() {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Ok(Vec::new()),
        rcode => {
            return Err(DiscoveryError::Rcode {
                name: owner.to_ascii(),
                rcode: rcode.to_string(),
            });
        }
    }
    let hosts = srv_targets(&owner, &message)?;
    Ok(candidates(&owner, &hosts))
}

/// Looks up the SRV records of `query.name` and the addresses of their
/// targets, and returns the candidates (sorted, without duplicates).
///
/// `timeout` bounds each exchange with one resolver (UDP, and TCP after a
/// truncated answer, together). Address lookups for targets missing from
/// the additional section run in parallel, so the whole call takes at most
/// about twice `timeout` per resolver. NXDOMAIN gives an empty list; an
/// error means no resolver gave a usable answer to the SRV query. Failed
/// address lookups only drop that target's family (logged).
pub async fn query_srv(
    query: &SrvQuery,
    timeout: Duration,
) -> Result<Vec<Candidate>, DiscoveryError> {
    let owner = owner_name(&query.name)?;
    if query.resolvers.is_empty() {
        return Err(DiscoveryError::NoResolvers {
            name: owner.to_ascii(),
        });
    }
    let message = resolve(&owner, RecordType::SRV, &query.resolvers, timeout).await?;
    if message.response_code() == ResponseCode::NXDomain {
        return Ok(Vec::new());
    }
    let mut hosts = srv_targets(&owner, &message)?;
    look_up_missing(&mut hosts, &query.resolvers, timeout).await;
    for host in hosts.iter().filter(|h| h.v4.is_empty() && h.v6.is_empty()) {
        warn!(owner = %owner, target = %host.name, "SRV target without addresses skipped");
    }
    Ok(candidates(&owner, &hosts))
}

/// Folds candidates from every source into the addresses of each claimed
/// identity (duplicates removed).
pub fn merge(
    sets: impl IntoIterator<Item = Candidate>,
) -> BTreeMap<Identity, BTreeSet<SocketAddr>> {
    let mut merged: BTreeMap<Identity, BTreeSet<SocketAddr>> = BTreeMap::new();
    for candidate in sets {
        merged
            .entry(candidate.identity)
            .or_default()
            .insert(candidate.addr);
    }
    merged
}

// ---------------------------------------------------------------------------
// Parsing (pure)

/// One SRV target host, with every port it was named with.
#[derive(Debug)]
struct Host {
    name: Name,
    identity: Identity,
    ports: BTreeSet<u16>,
    v4: BTreeSet<Ipv4Addr>,
    v6: BTreeSet<Ipv6Addr>,
}

/// Parses the configured owner name: absolute, not the root.
fn owner_name(owner: &str) -> Result<Name, DiscoveryError> {
    let invalid = |reason: String| DiscoveryError::InvalidName {
        name: owner.to_string(),
        reason,
    };
    if owner.is_empty() || owner == "." {
        return Err(invalid("it is empty".into()));
    }
    let mut name = Name::from_ascii(owner).map_err(|e| invalid(e.to_string()))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// Decodes a response to the query for `owner` (bounded as
/// [`dns::decode`] says).
fn decode(bytes: &[u8], owner: &Name) -> Result<Message, DiscoveryError> {
    dns::decode(bytes, MAX_RECORDS).map_err(|e| match e {
        DecodeError::Malformed(reason) => DiscoveryError::Malformed(reason),
        DecodeError::TooManyRecords { count, max } => DiscoveryError::TooMany {
            name: owner.to_ascii(),
            what: "records",
            count,
            max,
        },
    })
}

/// The records of `rtype` for `start` in `records`, following CNAMEs.
fn chase<'m>(
    records: &'m [Record],
    start: &Name,
    rtype: RecordType,
) -> Result<Vec<&'m RData>, String> {
    let mut name = start.clone();
    for _ in 0..=MAX_CNAME_HOPS {
        let here = || {
            records
                .iter()
                .filter(|r| r.dns_class() == DNSClass::IN && r.name() == &name)
        };
        let wanted: Vec<&RData> = here()
            .filter(|r| r.record_type() == rtype)
            .map(Record::data)
            .collect();
        if !wanted.is_empty() {
            return Ok(wanted);
        }
        let next = here().find_map(|r| match r.data() {
            RData::CNAME(cname) => Some(cname.0.clone()),
            _ => None,
        });
        match next {
            Some(next) => name = next,
            None => return Ok(Vec::new()),
        }
    }
    Err(format!(
        "more than {MAX_CNAME_HOPS} CNAMEs from `{start}` (a loop?)"
    ))
}

/// The claimed identity of an SRV target: `edge://<first label>`. Only
/// letters, digits and `-` are accepted in the label.
fn claimed_identity(target: &Name) -> Result<Identity, String> {
    let label = target.iter().next().unwrap_or_default();
    let printable = String::from_utf8_lossy(label);
    if label.is_empty()
        || !label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    {
        return Err(format!(
            "its first label `{printable}` is not a node name (letters, digits and `-`)"
        ));
    }
    Identity::from_name(&printable).map_err(|e| e.to_string())
}

/// The usable SRV targets of an answer to `owner`, with the addresses the
/// additional section has for them.
fn srv_targets(owner: &Name, message: &Message) -> Result<Vec<Host>, DiscoveryError> {
    let malformed = |reason: String| DiscoveryError::Malformed(format!("{owner}: {reason}"));
    let srvs = chase(message.answers(), owner, RecordType::SRV).map_err(malformed)?;
    if srvs.len() > MAX_TARGETS {
        return Err(DiscoveryError::TooMany {
            name: owner.to_ascii(),
            what: "SRV records",
            count: srvs.len(),
            max: MAX_TARGETS,
        });
    }
    let mut hosts: BTreeMap<String, Host> = BTreeMap::new();
    for rdata in srvs {
        let RData::SRV(srv) = rdata else { continue };
        let target = srv.target();
        if target.is_root() {
            debug!(owner = %owner, "SRV target `.`: service not available there, skipped");
            continue;
        }
        if srv.port() == 0 {
            warn!(owner = %owner, target = %target, "SRV record with port 0 skipped");
            continue;
        }
        let identity = match claimed_identity(target) {
            Ok(identity) => identity,
            Err(reason) => {
                warn!(owner = %owner, target = %target, "SRV target skipped: {reason}");
                continue;
            }
        };
        let target = target.to_lowercase();
        hosts
            .entry(target.to_ascii())
            .or_insert_with(|| Host {
                name: target,
                identity,
                ports: BTreeSet::new(),
                v4: BTreeSet::new(),
                v6: BTreeSet::new(),
            })
            .ports
            .insert(srv.port());
    }
    for host in hosts.values_mut() {
        for record in message.additionals() {
            if record.dns_class() != DNSClass::IN || record.name() != &host.name {
                continue;
            }
            match record.data() {
                RData::A(a) => {
                    host.v4.insert(a.0);
                }
                RData::AAAA(aaaa) => {
                    host.v6.insert(aaaa.0);
                }
                _ => {}
            }
        }
    }
    Ok(hosts.into_values().collect())
}

/// Whether an address can be a peer's (not unspecified, multicast or
/// broadcast).
fn usable(ip: IpAddr) -> bool {
    !ip.is_unspecified() && !ip.is_multicast() && ip != IpAddr::V4(Ipv4Addr::BROADCAST)
}

/// The candidates of the hosts, sorted and deduplicated.
fn candidates(owner: &Name, hosts: &[Host]) -> Vec<Candidate> {
    let source = Source::Srv(owner.to_ascii());
    let mut out = Vec::new();
    for host in hosts {
        let ips = host
            .v4
            .iter()
            .copied()
            .map(IpAddr::V4)
            .chain(host.v6.iter().copied().map(IpAddr::V6));
        for ip in ips {
            if !usable(ip) {
                warn!(target = %host.name, %ip, "address of SRV target skipped: not a unicast address");
                continue;
            }
            for &port in &host.ports {
                out.push(Candidate {
                    identity: host.identity.clone(),
                    addr: SocketAddr::new(ip, port),
                    source: source.clone(),
                });
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The addresses of `rtype` for `name` in an answer (CNAMEs followed).
fn addresses(name: &Name, rtype: RecordType, message: &Message) -> Result<Vec<IpAddr>, String> {
    if message.response_code() == ResponseCode::NXDomain {
        return Ok(Vec::new());
    }
    Ok(chase(message.answers(), name, rtype)?
        .into_iter()
        .filter_map(|rdata| match rdata {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect())
}

// ---------------------------------------------------------------------------
// Queries

/// Asks the resolvers in order until one answers with NOERROR or NXDOMAIN.
async fn resolve(
    name: &Name,
    rtype: RecordType,
    resolvers: &[SocketAddr],
    timeout: Duration,
) -> Result<Message, DiscoveryError> {
    let question = Query::query(name.clone(), rtype);
    let mut failures = Vec::new();
    for &resolver in resolvers {
        let reason = match dns::exchange(resolver, &question, Limits::new(timeout)).await {
            Ok(message) => match message.response_code() {
                ResponseCode::NoError | ResponseCode::NXDomain => return Ok(message),
                rcode => format!("answered {rcode}"),
            },
            Err(e) => e.to_string(),
        };
        debug!(%resolver, %name, %rtype, "DNS resolver failed: {reason}");
        failures.push(ResolverFailure { resolver, reason });
    }
    Err(DiscoveryError::Unanswered {
        name: name.to_ascii(),
        qtype: rtype.to_string(),
        failures,
    })
}

/// Looks up the address families missing from the additional section, a
/// few lookups at a time.
async fn look_up_missing(hosts: &mut [Host], resolvers: &[SocketAddr], timeout: Duration) {
    let resolvers: Arc<[SocketAddr]> = resolvers.into();
    let mut jobs = Vec::new();
    for (index, host) in hosts.iter().enumerate() {
        if host.v4.is_empty() {
            jobs.push((index, host.name.clone(), RecordType::A));
        }
        if host.v6.is_empty() {
            jobs.push((index, host.name.clone(), RecordType::AAAA));
        }
    }
    let mut jobs = jobs.into_iter();
    let mut running = JoinSet::new();
    loop {
        while running.len() < PARALLEL_LOOKUPS {
            let Some((index, name, rtype)) = jobs.next() else {
                break;
            };
            let resolvers = Arc::clone(&resolvers);
            running.spawn(async move {
                let result = resolve(&name, rtype, &resolvers, timeout)
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|message| addresses(&name, rtype, &message));
                (index, name, rtype, result)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        match joined {
            Ok((index, _, _, Ok(ips))) => {
                for ip in ips {
                    match ip {
                        IpAddr::V4(v4) => hosts[index].v4.insert(v4),
                        IpAddr::V6(v6) => hosts[index].v6.insert(v6),
                    };
                }
            }
            Ok((_, name, rtype, Err(e))) => {
                warn!(target = %name, %rtype, "address lookup of SRV target failed: {e}");
            }
            Err(e) => warn!("address lookup of SRV target failed: {e}"),
        }
    }
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
