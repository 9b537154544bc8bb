//! The zones the authoritative DNS service serves: parsed from zone-file
//! text (a file, or lines in the agent's config; see `zone_text`),
//! checked, and indexed for lookups by lower-cased name.
//!
//! What a zone may hold is deliberately narrow: one SOA and at least one
//! NS at the apex, and A, AAAA, CNAME, TXT, MX, SRV, CAA, NS (apex only)
//! anywhere. No delegations, wildcards, DNSSEC records or nested zones:
//! the edge answers its CDN's own names, and a zone that needs more
//! belongs on a full authoritative server. A zone that breaks a rule is
//! rejected with the record and the rule, never half served.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt,
    path::Path,
};

use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

/// Why a zone cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("zone {origin}: {message}")]
pub struct ZoneError {
    /// The zone's origin, as configured.
    pub origin: String,
    /// What is wrong, naming the record when there is one.
    pub message: String,
}

/// One RRset: every record of one type at one name, in zone order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrSet {
    /// The type.
    pub record_type: RecordType,
    /// The records (at least one), owner names as written in the zone.
    pub records: Vec<Record>,
}

/// One zone, checked and indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    origin: Name,
    apex: LowerName,
    soa: Record,
    serial: u32,
    negative_ttl: u32,
    nodes: HashMap<LowerName, Vec<RrSet>>,
    empty_non_terminals: HashSet<LowerName>,
    records: usize,
    digest: u64,
}

/// The types a zone may hold.
pub(super) const SERVED_TYPES: [RecordType; 9] = [
    RecordType::SOA,
    RecordType::NS,
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::TXT,
    RecordType::MX,
    RecordType::SRV,
    RecordType::CAA,
];

/// [`SERVED_TYPES`] for operators.
pub(super) const SERVED_TYPES_TEXT: &str =
    "A, AAAA, CNAME, TXT, MX, SRV, CAA, and SOA and NS at the apex";

impl Zone {
    /// Parses zone-file text for `origin` (relative names are relative to
    /// it; records without a TTL get `$TTL` or else `default_ttl`).
    /// `path`, when the text comes from a file, names it in errors.
    pub fn parse(
        origin: &str,
        text: &str,
        default_ttl: u32,
        path: Option<&Path>,
    ) -> Result<Zone, ZoneError> {
        let fail = |message: String| ZoneError {
            origin: origin.to_owned(),
            message,
        };
        let origin_name = Name::from_ascii(origin)
            .map(|mut n| {
                n.set_fqdn(true);
                n
            })
            .map_err(|e| fail(format!("`{origin}` is not a domain name: {e}")))?;
        if origin_name.is_root() {
            return Err(fail("the root zone is not served".into()));
        }
        // Errors name the file, when there is one.
        let fail_in = |e: String| {
            fail(match path {
                Some(path) => format!("{}: {e}", path.display()),
                None => e,
            })
        };
        let records =
            super::zone_text::records(text, &origin_name, default_ttl).map_err(fail_in)?;
        Zone::from_records(origin_name, records).map_err(fail_in)
    }

    /// Checks and indexes `records` as the zone at `origin`.
    pub(super) fn from_records(origin: Name, records: Vec<Record>) -> Result<Zone, String> {
        let apex = LowerName::new(&origin);
        let mut nodes: BTreeMap<LowerName, Vec<RrSet>> = BTreeMap::new();
        let mut soa = None;
        let mut count = 0;
        for record in records {
            let owner = LowerName::new(record.name());
            let rtype = record.record_type();
            if !apex.zone_of(&owner) {
                return Err(format!("`{record}` is outside the zone"));
            }
            if record.dns_class() != DNSClass::IN {
                return Err(format!("`{record}`: only class IN is served"));
            }
            if owner.is_wildcard() || record.name().iter().any(|l| l == b"*") {
                return Err(format!(
                    "`{record}`: wildcards are not served; list each name"
                ));
            }
            if !SERVED_TYPES.contains(&rtype) {
                return Err(format!(
                    "`{record}`: type {rtype} is not served ({SERVED_TYPES_TEXT})"
                ));
            }
            match rtype {
                RecordType::SOA if owner != apex => {
                    return Err(format!("`{record}`: an SOA belongs at the apex only"));
                }
                RecordType::SOA if soa.is_some() => {
                    return Err(format!("`{record}`: the zone has two SOA records"));
                }
                RecordType::SOA => soa = Some(record.clone()),
                RecordType::NS if owner != apex => {
                    return Err(format!(
                        "`{record}`: delegations are not served (NS records belong at the apex only)"
                    ));
                }
                RecordType::CNAME if owner == apex => {
                    return Err(format!("`{record}`: a CNAME cannot be at the apex"));
                }
                _ => {}
            }
            count += 1;
            let sets = nodes.entry(owner).or_default();
            match sets.iter_mut().find(|s| s.record_type == rtype) {
                Some(set) => set.records.push(record),
                None => sets.push(RrSet {
                    record_type: rtype,
                    records: vec![record],
                }),
            }
        }
        let soa = soa.ok_or("no SOA record at the apex: a zone needs one")?;
        let RData::SOA(soa_data) = soa.data().clone() else {
            return Err("the SOA record has no SOA data".into());
        };
        if !nodes
            .get(&apex)
            .is_some_and(|sets| sets.iter().any(|s| s.record_type == RecordType::NS))
        {
            return Err("no NS record at the apex: a zone needs at least one".into());
        }
        for (name, sets) in &nodes {
            if sets.iter().any(|s| s.record_type == RecordType::CNAME) {
                if sets.len() > 1 {
                    return Err(format!(
                        "{name}: a CNAME cannot share its name with other records"
                    ));
                }
                if sets[0].records.len() > 1 {
                    return Err(format!("{name}: a name has at most one CNAME"));
                }
            }
        }
        // Names that exist only because something below them does.
        let mut empty_non_terminals = HashSet::new();
        for name in nodes.keys() {
            let mut parent = name.base_name();
            while parent != apex && apex.zone_of(&parent) && !nodes.contains_key(&parent) {
                empty_non_terminals.insert(parent.clone());
                parent = parent.base_name();
            }
        }
        for sets in nodes.values_mut() {
            sets.sort_by_key(|s| u16::from(s.record_type));
        }
        let digest = digest(&nodes);
        Ok(Zone {
            serial: soa_data.serial(),
            negative_ttl: soa.ttl().min(soa_data.minimum()),
            origin,
            apex,
            soa,
            nodes: nodes.into_iter().collect(),
            empty_non_terminals,
            records: count,
            digest,
        })
    }

    /// The origin (fully qualified).
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The origin, lower-cased, for matching.
    pub fn apex(&self) -> &LowerName {
        &self.apex
    }

    /// The apex SOA record.
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The TTL of negative answers (RFC 2308: the smaller of the SOA's
    /// TTL and its MINIMUM field).
    pub fn negative_ttl(&self) -> u32 {
        self.negative_ttl
    }

    /// How many records the zone holds.
    pub fn len(&self) -> usize {
        self.records
    }

    /// Whether the zone holds no records (never true for a checked zone).
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// A digest of the zone's content (every record, in canonical order,
    /// names lower-cased), the same at every node serving the same data:
    /// how operators check that every PoP gives the same answers.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Every RRset of the zone, in no particular order.
    pub fn rrsets(&self) -> impl Iterator<Item = &RrSet> {
        self.nodes.values().flatten()
    }

    /// What the zone has at `name` (which must be inside it).
    pub fn lookup(&self, name: &LowerName) -> Lookup<'_> {
        match self.nodes.get(name) {
            Some(sets) => Lookup::Node(sets),
            None if self.empty_non_terminals.contains(name) => Lookup::EmptyNonTerminal,
            None => Lookup::NxDomain,
        }
    }
}

/// What a zone has at a name.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// Records: the RRsets, ordered by type.
    Node(&'a [RrSet]),
    /// No records, but names below it exist: NODATA for every type.
    EmptyNonTerminal,
    /// The name does not exist.
    NxDomain,
}

/// FNV-1a over every record's text form, names lower-cased, in order.
fn digest(nodes: &BTreeMap<LowerName, Vec<RrSet>>) -> u64 {
    let mut lines: Vec<String> = nodes
        .iter()
        .flat_map(|(name, sets)| {
            sets.iter().flat_map(move |set| {
                set.records.iter().map(move |r| {
                    format!(
                        "{name} {} {} {}",
                        r.ttl(),
                        r.record_type(),
                        r.data().to_string().to_ascii_lowercase()
                    )
                })
            })
        })
        .collect();
    lines.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for line in lines {
        for byte in line.bytes().chain([b'\n']) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Every zone a server answers for; names are matched to the zone whose
/// origin is their longest suffix (zones never nest, so at most one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneSet {
    zones: Vec<Zone>,
}

impl ZoneSet {
    /// The set of `zones`: no two with the same origin, none inside
    /// another.
    pub fn new(zones: Vec<Zone>) -> Result<ZoneSet, ZoneError> {
        for (i, a) in zones.iter().enumerate() {
            for b in &zones[i + 1..] {
                let fail = |message: String| ZoneError {
                    origin: b.origin.to_string(),
                    message,
                };
                if a.apex == b.apex {
                    return Err(fail("is configured twice".into()));
                }
                if a.apex.zone_of(&b.apex) || b.apex.zone_of(&a.apex) {
                    return Err(fail(format!(
                        "nests with zone {}: nested zones are not served; put the names in one zone",
                        a.origin
                    )));
                }
            }
        }
        Ok(ZoneSet { zones })
    }

    /// The zone `name` belongs to, if any.
    pub fn find(&self, name: &LowerName) -> Option<&Zone> {
        self.zones.iter().find(|z| z.apex.zone_of(name))
    }

    /// The zones, in configuration order.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }
}

impl fmt::Display for Zone {
    /// `origin serial N, M records, digest D`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} serial {}, {} records, digest {:016x}",
            self.origin, self.serial, self.records, self.digest
        )
    }
}

#[cfg(test)]
#[path = "zone_tests.rs"]
pub(crate) mod tests;
