//! The request path, sans I/O: the bytes of one query in, the bytes of
//! its response out (or nothing). Everything a query can be is handled
//! here, so the property tests cover all of it:
//!
//! - shorter than a header, or a response (QR=1): silence (a response is
//!   never answered, so two servers cannot loop);
//! - a message that does not decode (bad labels, compression pointers
//!   that loop or point forward, names over 255 bytes, counts beyond the
//!   data, two OPT records): FORMERR (NOTIMP for an opcode other than
//!   QUERY) with the header only;
//! - EDNS version above 0: BADVERS; an opcode other than QUERY: NOTIMP;
//!   QDCOUNT ≠ 1, records in the answer or authority section: FORMERR
//!   without the question. These carry our OPT when the query had one
//!   (RFC 6891), as every response does, with the DO bit copied (RFC
//!   3225);
//! - class other than IN, AXFR/IXFR, or a name in none of the zones:
//!   REFUSED (no recursion, RA=0);
//! - otherwise an authoritative answer (AA=1): the RRset, a CNAME chain
//!   followed inside the zones, NODATA or NXDOMAIN with the zone's SOA in
//!   the authority section (TTL per RFC 2308), glue for NS/MX/SRV
//!   targets in the zones, ANY answered with one RRset over UDP (RFC
//!   8482).
//!
//! Over UDP the response fits the client's EDNS size (at most ours, at
//! least 512) or 512 without EDNS: the additional section goes first,
//! then everything but the question and OPT with TC=1, so the client asks
//! again over TCP. The owner of the first RRset is written exactly as the
//! question was (0x20 case randomization survives). NSID (RFC 5001) names
//! the node that answered, when asked for and configured: answers are
//! otherwise byte-identical at every node with the same zones.

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{
        DNSClass, LowerName, Name, RData, RecordType,
        rdata::opt::{EdnsCode, EdnsOption},
    },
};

use super::zone::{Lookup, RrSet, Zone, ZoneSet};

/// The DNS header's length.
const HEADER: usize = 12;

/// The most CNAMEs followed for one answer.
const MAX_CHAIN: usize = 8;

/// The largest UDP response without EDNS (RFC 1035).
const PLAIN_UDP: usize = 512;

/// How the query arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: the response must fit the client's buffer.
    Udp,
    /// TCP: any size up to 65535.
    Tcp,
}

/// The responder's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The EDNS UDP payload size we advertise and the most we send over
    /// UDP (512..=4096; 1232 avoids fragmentation on any path).
    pub udp_payload: u16,
    /// The NSID (RFC 5001) sent to clients that ask: the node's name.
    /// `None`: not sent.
    pub nsid: Option<Vec<u8>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            udp_payload: 1232,
            nsid: None,
        }
    }
}

/// What a query got, for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// NOERROR with records in the answer section.
    Answer,
    /// NOERROR, no records of that type (SOA in authority).
    NoData,
    /// NXDOMAIN (SOA in authority).
    NxDomain,
    /// REFUSED: not one of our zones, not class IN, or a zone transfer.
    Refused,
    /// FORMERR: the query is malformed.
    FormErr,
    /// NOTIMP: an opcode other than QUERY.
    NotImp,
    /// BADVERS: an EDNS version we do not speak.
    BadVers,
    /// SERVFAIL: the answer could not be encoded (zone checks refuse
    /// what the wire cannot carry, so this is a bug if it is ever
    /// counted; the client still gets a reply).
    ServFail,
}

impl Outcome {
    /// Every outcome, in order (for counters).
    pub const ALL: [Outcome; 8] = [
        Outcome::Answer,
        Outcome::NoData,
        Outcome::NxDomain,
        Outcome::Refused,
        Outcome::FormErr,
        Outcome::NotImp,
        Outcome::BadVers,
        Outcome::ServFail,
    ];

    /// A short lower-case name (for metrics labels and status).
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Answer => "answer",
            Outcome::NoData => "nodata",
            Outcome::NxDomain => "nxdomain",
            Outcome::Refused => "refused",
            Outcome::FormErr => "formerr",
            Outcome::NotImp => "notimp",
            Outcome::BadVers => "badvers",
            Outcome::ServFail => "servfail",
        }
    }
}

/// A response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The response message.
    pub bytes: Vec<u8>,
    /// What it says.
    pub outcome: Outcome,
    /// Whether it was truncated to fit (TC=1).
    pub truncated: bool,
}

/// The response to `query`, or `None` when it gets none (too short to
/// have a header, or not a query).
pub fn respond(
    zones: &ZoneSet,
    settings: &Settings,
    query: &[u8],
    transport: Transport,
) -> Option<Reply> {
    build(zones, settings, query, transport, false)
}

/// The "slip" response of rate limiting: what [`respond`] would say, but
/// empty and with TC=1, so that a real client asks again over TCP while
/// a forged source gains nothing (the response is no bigger than the
/// query).
pub fn respond_truncated(zones: &ZoneSet, settings: &Settings, query: &[u8]) -> Option<Reply> {
    build(zones, settings, query, Transport::Udp, true)
}

fn build(
    zones: &ZoneSet,
    settings: &Settings,
    query: &[u8],
    transport: Transport,
    force_truncation: bool,
) -> Option<Reply> {
    if query.len() < HEADER || query[2] & 0x80 != 0 {
        return None;
    }
    let id = u16::from_be_bytes([query[0], query[1]]);
    let opcode = (query[2] >> 3) & 0x0f;
    let rd = query[2] & 0x01 != 0;
    let Ok(request) = Message::from_vec(query) else {
        let outcome = if opcode == 0 {
            Outcome::FormErr
        } else {
            Outcome::NotImp
        };
        return Some(header_only(id, opcode, rd, outcome));
    };
    let mut response = Message::new();
    response
        .set_id(id)
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(rd);
    let malformed = request.queries().len() != 1
        || !request.answers().is_empty()
        || !request.name_servers().is_empty();
    if !malformed {
        response.add_query(request.queries()[0].clone());
    }
    let mut limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => PLAIN_UDP,
    };
    // A query with OPT gets OPT back, whatever the response (RFC 6891),
    // with the DO bit copied (RFC 3225).
    if let Some(edns) = request.extensions() {
        let mut ours = Edns::new();
        ours.set_max_payload(settings.udp_payload.max(PLAIN_UDP as u16))
            .set_version(0)
            .set_dnssec_ok(edns.flags().dnssec_ok);
        if let (Some(nsid), Some(_)) = (&settings.nsid, edns.option(EdnsCode::NSID)) {
            ours.options_mut()
                .insert(EdnsOption::Unknown(u16::from(EdnsCode::NSID), nsid.clone()));
        }
        response.set_edns(ours);
        if transport == Transport::Udp {
            limit = usize::from(edns.max_payload().min(settings.udp_payload)).max(PLAIN_UDP);
        }
        if edns.version() > 0 {
            return encode(&mut response, Outcome::BadVers, limit);
        }
    }
    if request.op_code() != OpCode::Query {
        return encode(&mut response, Outcome::NotImp, limit);
    }
    if malformed {
        return encode(&mut response, Outcome::FormErr, limit);
    }
    let question = &request.queries()[0];
    if force_truncation {
        // What it would say, flags included, without the records.
        let mut full = response.clone();
        let outcome = resolve(zones, question, transport, &mut full);
        response
            .set_authoritative(full.authoritative())
            .set_truncated(true);
        return encode(&mut response, outcome, limit);
    }
    let outcome = resolve(zones, question, transport, &mut response);
    encode(&mut response, outcome, limit)
}

/// Fills `response` for `question`; what it says.
fn resolve(
    zones: &ZoneSet,
    question: &Query,
    transport: Transport,
    response: &mut Message,
) -> Outcome {
    let qtype = question.query_type();
    if question.query_class() != DNSClass::IN
        || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
    {
        return Outcome::Refused;
    }
    if qtype == RecordType::OPT {
        return Outcome::FormErr;
    }
    let mut owner = question.name().clone();
    let mut lower = LowerName::new(&owner);
    let Some(mut zone) = zones.find(&lower) else {
        return Outcome::Refused;
    };
    response.set_authoritative(true);
    for _ in 0..MAX_CHAIN {
        let sets = match zone.lookup(&lower) {
            Lookup::Node(sets) => sets,
            Lookup::EmptyNonTerminal => return negative(zone, response, Outcome::NoData),
            Lookup::NxDomain => return negative(zone, response, Outcome::NxDomain),
        };
        if qtype == RecordType::ANY {
            let sets = match transport {
                Transport::Udp => &sets[..1],
                Transport::Tcp => sets,
            };
            for set in sets {
                answer(response, set, &owner);
            }
            return Outcome::Answer;
        }
        if let Some(set) = sets.iter().find(|s| s.record_type == qtype) {
            answer(response, set, &owner);
            glue(zones, set, response);
            return Outcome::Answer;
        }
        let Some(cname) = sets.iter().find(|s| s.record_type == RecordType::CNAME) else {
            return negative(zone, response, Outcome::NoData);
        };
        answer(response, cname, &owner);
        let RData::CNAME(target) = cname.records[0].data() else {
            return Outcome::Answer;
        };
        owner = target.0.clone();
        lower = LowerName::new(&owner);
        match zones.find(&lower) {
            Some(next) => zone = next,
            // Outside our zones: the resolver follows it.
            None => return Outcome::Answer,
        }
    }
    // A chain longer than we follow (or a loop): what we have.
    Outcome::Answer
}

/// Adds `set` to the answer section with `owner` as written.
fn answer(response: &mut Message, set: &RrSet, owner: &Name) {
    for record in &set.records {
        let mut record = record.clone();
        record.set_name(owner.clone());
        response.add_answer(record);
    }
}

/// A and AAAA records of the NS, MX and SRV targets in our zones, in the
/// additional section (left out first when the response is too big).
fn glue(zones: &ZoneSet, set: &RrSet, response: &mut Message) {
    for record in &set.records {
        let target = match record.data() {
            RData::NS(ns) => &ns.0,
            RData::MX(mx) => mx.exchange(),
            RData::SRV(srv) => srv.target(),
            _ => continue,
        };
        let lower = LowerName::new(target);
        let Some(zone) = zones.find(&lower) else {
            continue;
        };
        if let Lookup::Node(sets) = zone.lookup(&lower) {
            for set in sets
                .iter()
                .filter(|s| matches!(s.record_type, RecordType::A | RecordType::AAAA))
            {
                for record in &set.records {
                    response.add_additional(record.clone());
                }
            }
        }
    }
}

/// NODATA or NXDOMAIN: the zone's SOA in the authority section, with the
/// negative TTL.
fn negative(zone: &Zone, response: &mut Message, outcome: Outcome) -> Outcome {
    let mut soa = zone.soa().clone();
    soa.set_ttl(zone.negative_ttl());
    response.add_name_server(soa);
    outcome
}

/// Encodes `response` with `outcome`'s code, fitting `limit`.
fn encode(response: &mut Message, outcome: Outcome, limit: usize) -> Option<Reply> {
    response.set_response_code(match outcome {
        Outcome::Answer | Outcome::NoData => ResponseCode::NoError,
        Outcome::NxDomain => ResponseCode::NXDomain,
        Outcome::Refused => ResponseCode::Refused,
        Outcome::FormErr => ResponseCode::FormErr,
        Outcome::NotImp => ResponseCode::NotImp,
        Outcome::BadVers => ResponseCode::BADVERS,
        Outcome::ServFail => ResponseCode::ServFail,
    });
    let servfail = |response: &Message| {
        let opcode = u8::from(response.op_code());
        header_only(
            response.id(),
            opcode,
            response.recursion_desired(),
            Outcome::ServFail,
        )
    };
    let Ok(mut bytes) = response.to_vec() else {
        return Some(servfail(response));
    };
    if bytes.len() > limit && !response.additionals().is_empty() {
        response.take_additionals();
        let Ok(b) = response.to_vec() else {
            return Some(servfail(response));
        };
        bytes = b;
    }
    if bytes.len() > limit {
        response.take_answers();
        response.take_name_servers();
        response.set_truncated(true);
        let Ok(b) = response.to_vec() else {
            return Some(servfail(response));
        };
        bytes = b;
    }
    Some(Reply {
        bytes,
        outcome,
        truncated: response.truncated(),
    })
}

/// A response that is the header alone: `id`, QR=1, the opcode and RD
/// echoed, `outcome`'s code, every count 0.
fn header_only(id: u16, opcode: u8, rd: bool, outcome: Outcome) -> Reply {
    let rcode = match outcome {
        Outcome::NotImp => 4,
        Outcome::ServFail => 2,
        _ => 1,
    };
    let mut bytes = vec![0; HEADER];
    bytes[..2].copy_from_slice(&id.to_be_bytes());
    bytes[2] = 0x80 | (opcode << 3) | u8::from(rd);
    bytes[3] = rcode;
    Reply {
        bytes,
        outcome,
        truncated: false,
    }
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
