//! Who may start a TLS handshake on the control endpoint, and how many at
//! once (sans I/O, time passed in).
//!
//! The control endpoint listens on the Internet-facing interface, so
//! anyone can connect. Authentication decides who gets in; admission
//! decides who may *try*, so that no amount of strangers can keep a
//! known peer out:
//!
//! - **candidates** (addresses the overlay knows: static peers, SRV
//!   discovery, the transports of current adjacencies) have a budget of
//!   their own (`[overlay] max_handshakes`);
//! - **strangers** (everyone else) share a small budget, at most
//!   `per_source` at once from one source prefix (/32, /64 by default),
//!   and start at most `rate` handshakes a second between them (each
//!   costs us an ECDHE and a signature). A stranger must send its
//!   ClientHello within `first_flight` and finish within `timeout`.
//!
//! A connection that finds no room is closed at once, never queued:
//! queueing is what let idle connections hold the door shut. Being a
//! candidate only lets an address try; discovery still is not trust.
//! Refusals are counted per reason and per source prefix, and each
//! offending prefix is named in the log at most once a minute.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::IpAddr,
    time::{Duration, Instant},
};

/// How often one source prefix is named in the log.
pub const OFFENDER_LOG_EVERY: Duration = Duration::from_secs(60);
/// Most prefixes named in the log per [`Admission::offenders`] call; the
/// rest are summed in one line.
pub const OFFENDER_LINES: usize = 8;
/// Most source prefixes whose refusals are remembered for the log.
const OFFENDER_TABLE: usize = 4096;

/// The limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Handshakes from candidates in progress at once.
    pub candidate_handshakes: usize,
    /// Handshakes from strangers in progress at once, all strangers together.
    pub stranger_handshakes: usize,
    /// Handshakes from one stranger prefix in progress at once.
    pub per_source: usize,
    /// Stranger handshakes started per second, all strangers together.
    pub rate: u32,
    /// Stranger handshakes that may start at once after a quiet spell.
    pub burst: u32,
    /// How long a stranger has to send its ClientHello.
    pub first_flight: Duration,
    /// How long a stranger's whole handshake may take.
    pub timeout: Duration,
    /// The IPv4 prefix length strangers are grouped by.
    pub ipv4_prefix: u8,
    /// The IPv6 prefix length strangers are grouped by.
    pub ipv6_prefix: u8,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            candidate_handshakes: 64,
            stranger_handshakes: 8,
            per_source: 2,
            rate: 20,
            burst: 20,
            first_flight: Duration::from_secs(1),
            timeout: Duration::from_secs(3),
            ipv4_prefix: 32,
            ipv6_prefix: 64,
        }
    }
}

/// Whom a connection comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// A candidate's address.
    Candidate,
    /// Anyone else.
    Stranger,
}

/// A source prefix: the address masked to the configured length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourcePrefix {
    /// The masked address.
    pub addr: IpAddr,
    /// The prefix length.
    pub len: u8,
}

impl std::fmt::Display for SourcePrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Why a connection was closed without a handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Denial {
    /// Every candidate slot is taken.
    CandidateBudget,
    /// Every stranger slot is taken.
    StrangerBudget,
    /// This stranger prefix has `per_source` handshakes in progress.
    SourceLimit,
    /// Strangers started `rate` handshakes in the last second.
    StrangerRate,
}

impl Denial {
    /// A short name, for counters and metrics labels.
    pub fn kind(self) -> &'static str {
        match self {
            Denial::CandidateBudget => "candidate_budget",
            Denial::StrangerBudget => "stranger_budget",
            Denial::SourceLimit => "source_limit",
            Denial::StrangerRate => "stranger_rate",
        }
    }

    fn explain(self, config: &AdmissionConfig) -> String {
        match self {
            Denial::CandidateBudget => format!(
                "all {} candidate handshake slots were busy (overlay.max_handshakes)",
                config.candidate_handshakes
            ),
            Denial::StrangerBudget => format!(
                "all {} stranger handshake slots were busy (overlay.strangers.handshakes)",
                config.stranger_handshakes
            ),
            Denial::SourceLimit => format!(
                "over {} handshakes at once from one source prefix (overlay.strangers.per_source)",
                config.per_source
            ),
            Denial::StrangerRate => format!(
                "strangers were over {} handshakes a second (overlay.strangers.rate)",
                config.rate
            ),
        }
    }
}

/// A handshake slot, held until [`Admission::release`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a ticket holds a slot until released"]
pub struct Ticket {
    /// Whom it was given to.
    pub class: Class,
    /// The source prefix (strangers' slots are counted per prefix).
    pub prefix: SourcePrefix,
}

impl Ticket {
    /// How long the holder has to send its ClientHello and to finish the
    /// handshake; `None` for candidates (the trust's handshake timeout
    /// alone applies).
    pub fn deadlines(&self, config: &AdmissionConfig) -> Option<(Duration, Duration)> {
        match self.class {
            Class::Candidate => None,
            Class::Stranger => Some((config.first_flight, config.timeout)),
        }
    }
}

/// What admission shows of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdmissionStatus {
    /// The limits in force.
    pub config: Option<AdmissionConfig>,
    /// Addresses counted as candidates.
    pub candidates: usize,
    /// Handshakes in progress, per class.
    pub active: BTreeMap<Class, usize>,
    /// Handshakes let start, per class.
    pub admitted: BTreeMap<Class, u64>,
    /// Connections closed without a handshake, per reason.
    pub denied: BTreeMap<&'static str, u64>,
    /// Stranger prefixes with a handshake in progress.
    pub stranger_prefixes: usize,
}

#[derive(Debug, Default)]
struct Offender {
    /// Refusals not yet logged, per reason.
    pending: BTreeMap<Denial, u64>,
    logged: Option<Instant>,
}

/// The admission state: who is a candidate, the slots in use, the
/// strangers' rate bucket and the refusals to report.
#[derive(Debug)]
pub struct Admission {
    config: AdmissionConfig,
    candidates: HashSet<IpAddr>,
    active_candidates: usize,
    active_strangers: usize,
    per_prefix: HashMap<SourcePrefix, usize>,
    tokens: f64,
    refilled: Instant,
    admitted: BTreeMap<Class, u64>,
    denied: BTreeMap<Denial, u64>,
    offenders: HashMap<SourcePrefix, Offender>,
    /// Refusals from prefixes the table had no room for.
    unnamed: u64,
}

impl Admission {
    /// Admission with these limits and no candidates yet.
    pub fn new(config: AdmissionConfig, now: Instant) -> Self {
        Admission {
            tokens: f64::from(config.burst.max(1)),
            refilled: now,
            config,
            candidates: HashSet::new(),
            active_candidates: 0,
            active_strangers: 0,
            per_prefix: HashMap::new(),
            admitted: BTreeMap::new(),
            denied: BTreeMap::new(),
            offenders: HashMap::new(),
            unnamed: 0,
        }
    }

    /// The limits.
    pub fn config(&self) -> &AdmissionConfig {
        &self.config
    }

    /// Replaces the candidates' addresses; returns whether they changed.
    pub fn set_candidates(&mut self, addrs: impl IntoIterator<Item = IpAddr>) -> bool {
        let next: HashSet<IpAddr> = addrs.into_iter().map(canonical).collect();
        let changed = next != self.candidates;
        self.candidates = next;
        changed
    }

    /// Whether `addr` is a candidate's.
    pub fn is_candidate(&self, addr: IpAddr) -> bool {
        self.candidates.contains(&canonical(addr))
    }

    /// The source prefix of `addr`.
    pub fn prefix(&self, addr: IpAddr) -> SourcePrefix {
        match canonical(addr) {
            IpAddr::V4(a) => {
                let len = self.config.ipv4_prefix.min(32);
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                SourcePrefix {
                    addr: IpAddr::V4((u32::from(a) & mask).into()),
                    len,
                }
            }
            IpAddr::V6(a) => {
                let len = self.config.ipv6_prefix.min(128);
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                SourcePrefix {
                    addr: IpAddr::V6((u128::from(a) & mask).into()),
                    len,
                }
            }
        }
    }

    /// A slot for a connection from `from`, or why there is none (the
    /// connection is then to be closed at once).
    pub fn admit(&mut self, from: IpAddr, now: Instant) -> Result<Ticket, Denial> {
        let prefix = self.prefix(from);
        let result = if self.is_candidate(from) {
            self.admit_candidate(prefix)
        } else {
            self.admit_stranger(prefix, now)
        };
        match &result {
            Ok(ticket) => *self.admitted.entry(ticket.class).or_insert(0) += 1,
            Err(denial) => self.deny(prefix, *denial),
        }
        result
    }

    fn admit_candidate(&mut self, prefix: SourcePrefix) -> Result<Ticket, Denial> {
        if self.active_candidates >= self.config.candidate_handshakes {
            return Err(Denial::CandidateBudget);
        }
        self.active_candidates += 1;
        Ok(Ticket {
            class: Class::Candidate,
            prefix,
        })
    }

    fn admit_stranger(&mut self, prefix: SourcePrefix, now: Instant) -> Result<Ticket, Denial> {
        if self.per_prefix.get(&prefix).copied().unwrap_or(0) >= self.config.per_source {
            return Err(Denial::SourceLimit);
        }
        if self.active_strangers >= self.config.stranger_handshakes {
            return Err(Denial::StrangerBudget);
        }
        let burst = f64::from(self.config.burst.max(1));
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(self.config.rate)).min(burst);
        self.refilled = self.refilled.max(now);
        if self.tokens < 1.0 {
            return Err(Denial::StrangerRate);
        }
        self.tokens -= 1.0;
        self.active_strangers += 1;
        *self.per_prefix.entry(prefix).or_insert(0) += 1;
        Ok(Ticket {
            class: Class::Stranger,
            prefix,
        })
    }

    /// Gives a slot back (the handshake ended, however it ended).
    pub fn release(&mut self, ticket: Ticket) {
        match ticket.class {
            Class::Candidate => self.active_candidates = self.active_candidates.saturating_sub(1),
            Class::Stranger => {
                self.active_strangers = self.active_strangers.saturating_sub(1);
                if let Some(n) = self.per_prefix.get_mut(&ticket.prefix) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_prefix.remove(&ticket.prefix);
                    }
                }
            }
        }
    }

    fn deny(&mut self, prefix: SourcePrefix, denial: Denial) {
        *self.denied.entry(denial).or_insert(0) += 1;
        if !self.offenders.contains_key(&prefix) && self.offenders.len() >= OFFENDER_TABLE {
            // Forget the prefixes with nothing left to report; a new one
            // that still finds no room is summed, unnamed.
            self.offenders.retain(|_, o| !o.pending.is_empty());
            if self.offenders.len() >= OFFENDER_TABLE {
                self.unnamed += 1;
                return;
            }
        }
        let offender = self.offenders.entry(prefix).or_default();
        *offender.pending.entry(denial).or_insert(0) += 1;
    }

    /// The log lines due at `now`: one per offending prefix not named in
    /// the last [`OFFENDER_LOG_EVERY`], at most [`OFFENDER_LINES`], then
    /// one line for the rest. Refusals of a prefix named recently wait
    /// for its next line.
    pub fn offenders(&mut self, now: Instant) -> Vec<String> {
        let mut due: Vec<(SourcePrefix, u64)> = self
            .offenders
            .iter()
            .filter(|(_, o)| {
                !o.pending.is_empty()
                    && o.logged
                        .is_none_or(|at| now.saturating_duration_since(at) >= OFFENDER_LOG_EVERY)
            })
            .map(|(p, o)| (*p, o.pending.values().sum()))
            .collect();
        // The worst first.
        due.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut lines = Vec::new();
        let (mut more_prefixes, mut more) = (0usize, self.unnamed);
        self.unnamed = 0;
        for (i, (prefix, total)) in due.into_iter().enumerate() {
            let Some(offender) = self.offenders.get_mut(&prefix) else {
                continue;
            };
            if i >= OFFENDER_LINES {
                more_prefixes += 1;
                more += total;
                offender.pending.clear();
                offender.logged = Some(now);
                continue;
            }
            let reasons: Vec<String> = offender
                .pending
                .iter()
                .map(|(d, n)| format!("{n} {}", d.explain(&self.config)))
                .collect();
            let class = if offender.pending.contains_key(&Denial::CandidateBudget) {
                "a candidate"
            } else {
                "a stranger"
            };
            lines.push(format!(
                "overlay control endpoint: closed {total} connection(s) from {prefix} ({class}) without a handshake: {}",
                reasons.join("; ")
            ));
            offender.pending.clear();
            offender.logged = Some(now);
        }
        if more > 0 {
            lines.push(format!(
                "overlay control endpoint: closed {more} more connection(s) without a handshake from {more_prefixes} more source prefix(es)"
            ));
        }
        // Prefixes quiet for a whole period are forgotten.
        self.offenders.retain(|_, o| {
            !o.pending.is_empty()
                || o.logged
                    .is_some_and(|at| now.saturating_duration_since(at) < OFFENDER_LOG_EVERY)
        });
        lines
    }

    /// What admission shows of itself.
    pub fn status(&self) -> AdmissionStatus {
        let mut active = BTreeMap::new();
        active.insert(Class::Candidate, self.active_candidates);
        active.insert(Class::Stranger, self.active_strangers);
        AdmissionStatus {
            config: Some(self.config.clone()),
            candidates: self.candidates.len(),
            active,
            admitted: self.admitted.clone(),
            denied: self.denied.iter().map(|(d, n)| (d.kind(), *n)).collect(),
            stranger_prefixes: self.per_prefix.len(),
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is (a dual-stack
/// listener reports IPv4 peers that way).
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
