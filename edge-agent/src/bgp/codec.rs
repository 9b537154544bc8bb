//! The BGP-4 wire format (RFC 4271), with multiprotocol extensions (RFC
//! 4760), four-octet ASNs (RFC 6793), communities (RFC 1997, RFC 8092),
//! route refresh (RFC 2918), capabilities (RFC 5492, RFC 4724), extended
//! optional parameters (RFC 9072, decoded) and the revised UPDATE error
//! handling of RFC 7606. Pure: bytes in, values out, and back. Never
//! panics on wire input: every read goes through a bounds-checked cursor.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::message::{
    AS_TRANS, AsSegment, Attributes, Capability, Family, LargeCommunity, Message, MpReach,
    MpUnreach, Notification, Open, Origin, Prefix, RouteRefresh, Update,
};
use super::notification::{MessageHeaderError, OpenMessageError, Subcode, UpdateMessageError};

/// Length of the message header.
pub const HEADER_LEN: usize = 19;
/// Largest message (RFC 4271; RFC 8654 extended messages are not used).
pub const MAX_MESSAGE_LEN: usize = 4096;

const ATTR_ORIGIN: u8 = 1;
const ATTR_AS_PATH: u8 = 2;
const ATTR_NEXT_HOP: u8 = 3;
const ATTR_MED: u8 = 4;
const ATTR_LOCAL_PREF: u8 = 5;
const ATTR_COMMUNITIES: u8 = 8;
const ATTR_MP_REACH: u8 = 14;
const ATTR_MP_UNREACH: u8 = 15;
const ATTR_AS4_PATH: u8 = 17;
const ATTR_LARGE_COMMUNITY: u8 = 32;

const FLAG_OPTIONAL: u8 = 0x80;
const FLAG_TRANSITIVE: u8 = 0x40;
const FLAG_EXTENDED: u8 = 0x10;

/// Per-session codec settings; the default is what holds before the OPEN
/// exchange (two-octet ASNs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodecOptions {
    /// Both sides announced the four-octet AS capability: AS_PATH carries
    /// 4-byte ASNs. When false, AS_PATH carries 2-byte ASNs (AS_TRANS for
    /// larger ones) and AS4_PATH the four-octet path (RFC 6793).
    pub four_octet_as: bool,
}

/// A decoded message and how many bytes of the input it used.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The message.
    pub message: Message,
    /// Bytes consumed.
    pub len: usize,
    /// RFC 7606 errors that did not end the session. If any is
    /// `TreatAsWithdraw`, every prefix the UPDATE announced has been moved
    /// to its withdrawn lists and its other attributes dropped.
    pub revised: Vec<RevisedError>,
}

/// An UPDATE error handled without ending the session (RFC 7606).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisedError {
    /// What was done about it.
    pub action: RevisedAction,
    /// The attribute type code at fault.
    pub attribute: u8,
    /// What was wrong.
    pub reason: &'static str,
}

/// RFC 7606 error-handling approaches short of a session reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevisedAction {
    /// The attribute was ignored.
    AttributeDiscard,
    /// The UPDATE's routes were treated as withdrawn.
    TreatAsWithdraw,
}

/// An error that ends the session: send [`DecodeError::notification`], close.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("{reason} (NOTIFICATION {code}/{subcode})")]
pub struct DecodeError {
    /// NOTIFICATION error code.
    pub code: u8,
    /// NOTIFICATION error subcode.
    pub subcode: u8,
    /// NOTIFICATION data.
    pub data: Vec<u8>,
    /// What was wrong.
    pub reason: &'static str,
}

impl DecodeError {
    fn new<S: Subcode>(subcode: S, data: Vec<u8>, reason: &'static str) -> Self {
        DecodeError {
            code: S::CODE as u8,
            subcode: subcode.value(),
            data,
            reason,
        }
    }

    /// The NOTIFICATION to send.
    pub fn notification(&self) -> Notification {
        Notification {
            code: self.code,
            subcode: self.subcode,
            data: self.data.clone(),
        }
    }
}

/// A value that cannot be put on the wire.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    /// The message would exceed 4096 bytes.
    #[error("the message would be {0} bytes; BGP messages are at most 4096")]
    TooLong(usize),
    /// A prefix length beyond the family's bits.
    #[error("prefix length {0} is beyond the address length")]
    BadPrefix(u8),
    /// IPv4 prefixes without a NEXT_HOP, or IPv6 ones without a next hop.
    #[error("announcing {0} prefixes needs a next hop")]
    NoNextHop(&'static str),
    /// A value too large for its field.
    #[error("{0} does not fit its field")]
    Oversized(&'static str),
}

/// A bounds-checked reader over a byte slice.
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Decodes one message from the start of `buf`. `Ok(None)`: more bytes are
/// needed. Never panics, whatever `buf` holds.
pub fn decode(buf: &[u8], options: &CodecOptions) -> Result<Option<Decoded>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..16].iter().any(|b| *b != 0xff) {
        return Err(DecodeError::new(
            MessageHeaderError::ConnectionNotSynchronized,
            vec![],
            "marker is not all ones",
        ));
    }
    let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
    let kind = buf[18];
    let min = match kind {
        1 => 29,
        2 => 23,
        3 => 21,
        4 | 5 => {
            if kind == 4 {
                19
            } else {
                23
            }
        }
        _ => {
            return Err(DecodeError::new(
                MessageHeaderError::BadMessageType,
                vec![kind],
                "unknown message type",
            ));
        }
    };
    let exact = matches!(kind, 4 | 5);
    if len < min || len > MAX_MESSAGE_LEN || (exact && len != min) {
        return Err(DecodeError::new(
            MessageHeaderError::BadMessageLength,
            (len as u16).to_be_bytes().to_vec(),
            "bad message length",
        ));
    }
    if buf.len() < len {
        return Ok(None);
    }
    let body = &buf[HEADER_LEN..len];
    let mut revised = Vec::new();
    let message = match kind {
        1 => Message::Open(decode_open(body)?),
        2 => Message::Update(decode_update(body, options, &mut revised)?),
        3 => Message::Notification(Notification {
            code: body[0],
            subcode: body[1],
            data: body[2..].to_vec(),
        }),
        4 => Message::Keepalive,
        _ => Message::RouteRefresh(RouteRefresh {
            family: Family {
                afi: u16::from_be_bytes([body[0], body[1]]),
                safi: body[3],
            },
        }),
    };
    Ok(Some(Decoded {
        message,
        len,
        revised,
    }))
}

fn open_error(subcode: OpenMessageError, reason: &'static str) -> DecodeError {
    DecodeError::new(subcode, vec![], reason)
}

fn decode_open(body: &[u8]) -> Result<Open, DecodeError> {
    let mut c = Cursor { buf: body };
    let malformed = || open_error(OpenMessageError::Unspecific, "malformed OPEN");
    let version = c.u8().ok_or_else(malformed)?;
    if version != 4 {
        return Err(DecodeError::new(
            OpenMessageError::UnsupportedVersionNumber,
            vec![0, 4],
            "unsupported BGP version",
        ));
    }
    let my_as = c.u16().ok_or_else(malformed)?;
    let hold_time = c.u16().ok_or_else(malformed)?;
    if hold_time == 1 || hold_time == 2 {
        return Err(open_error(
            OpenMessageError::UnacceptableHoldTime,
            "unacceptable hold time",
        ));
    }
    let bgp_id = Ipv4Addr::from(c.u32().ok_or_else(malformed)?);
    if bgp_id.is_unspecified() {
        return Err(open_error(
            OpenMessageError::BadBgpIdentifier,
            "bad BGP identifier",
        ));
    }
    let short_len = c.u8().ok_or_else(malformed)?;
    // RFC 9072: 255 followed by parameter type 255 announces 2-byte lengths.
    let extended = short_len == 255 && c.buf.first() == Some(&255);
    let params_len = if extended {
        c.u8();
        usize::from(c.u16().ok_or_else(malformed)?)
    } else {
        usize::from(short_len)
    };
    let mut params = Cursor {
        buf: c.take(params_len).ok_or_else(malformed)?,
    };
    if !c.is_empty() {
        return Err(malformed());
    }
    let mut capabilities = Vec::new();
    while !params.is_empty() {
        let kind = params.u8().ok_or_else(malformed)?;
        let len = if extended {
            params.u16().map(usize::from)
        } else {
            params.u8().map(usize::from)
        };
        let value = params
            .take(len.ok_or_else(malformed)?)
            .ok_or_else(malformed)?;
        if kind != 2 {
            return Err(open_error(
                OpenMessageError::UnsupportedOptionalParameter,
                "unsupported optional parameter",
            ));
        }
        let mut caps = Cursor { buf: value };
        while !caps.is_empty() {
            let code = caps.u8().ok_or_else(malformed)?;
            let len = caps.u8().ok_or_else(malformed)?;
            let value = caps.take(usize::from(len)).ok_or_else(malformed)?;
            capabilities.push(decode_capability(code, value));
        }
    }
    Ok(Open {
        version,
        my_as,
        hold_time,
        bgp_id,
        capabilities,
    })
}

/// A capability; a known code with a malformed value is kept as unknown
/// (as if not advertised) rather than failing the session.
fn decode_capability(code: u8, value: &[u8]) -> Capability {
    let unknown = || Capability::Unknown {
        code,
        value: value.to_vec(),
    };
    match (code, value.len()) {
        (1, 4) => Capability::Multiprotocol(Family {
            afi: u16::from_be_bytes([value[0], value[1]]),
            safi: value[3],
        }),
        (2, 0) => Capability::RouteRefresh,
        // Restart flags and time, then (AFI, SAFI, flags with the F bit) per family.
        (64, n) if n >= 2 && (n - 2) % 4 == 0 => {
            let head = u16::from_be_bytes([value[0], value[1]]);
            let families = value[2..]
                .chunks_exact(4)
                .map(|f| {
                    (
                        Family {
                            afi: u16::from_be_bytes([f[0], f[1]]),
                            safi: f[2],
                        },
                        f[3] & 0x80 != 0,
                    )
                })
                .collect::<Vec<_>>();
            Capability::GracefulRestart {
                restarted: head & 0x8000 != 0,
                restart_time: head & 0x0fff,
                families,
            }
        }
        (65, 4) => {
            Capability::FourOctetAs(u32::from_be_bytes([value[0], value[1], value[2], value[3]]))
        }
        _ => unknown(),
    }
}

fn update_error(subcode: UpdateMessageError, data: Vec<u8>, reason: &'static str) -> DecodeError {
    DecodeError::new(subcode, data, reason)
}

/// Decodes the prefixes of a NLRI or withdrawn field of `family`'s AFI.
fn decode_prefixes(bytes: &[u8], v6: bool) -> Result<Vec<Prefix>, DecodeError> {
    let invalid = || {
        update_error(
            UpdateMessageError::InvalidNetworkField,
            vec![],
            "invalid network field",
        )
    };
    let mut c = Cursor { buf: bytes };
    let mut out = Vec::new();
    while !c.is_empty() {
        let len = c.u8().ok_or_else(invalid)?;
        let max = if v6 { 128 } else { 32 };
        if len > max {
            return Err(invalid());
        }
        let bytes = c.take(usize::from(len).div_ceil(8)).ok_or_else(invalid)?;
        let mut addr = [0u8; 16];
        addr[..bytes.len()].copy_from_slice(bytes);
        out.push(if v6 {
            let a = u128::from_be_bytes(addr) & mask128(len);
            Prefix::V6 {
                addr: Ipv6Addr::from(a),
                len,
            }
        } else {
            let a = u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]) & mask32(len);
            Prefix::V4 {
                addr: Ipv4Addr::from(a),
                len,
            }
        });
    }
    Ok(out)
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

fn decode_update(
    body: &[u8],
    options: &CodecOptions,
    revised: &mut Vec<RevisedError>,
) -> Result<Update, DecodeError> {
    let malformed = || {
        update_error(
            UpdateMessageError::MalformedAttributeList,
            vec![],
            "malformed attribute list",
        )
    };
    let mut c = Cursor { buf: body };
    let withdrawn_len = usize::from(c.u16().ok_or_else(malformed)?);
    let withdrawn = decode_prefixes(c.take(withdrawn_len).ok_or_else(malformed)?, false)?;
    let attrs_len = usize::from(c.u16().ok_or_else(malformed)?);
    let attrs = c.take(attrs_len).ok_or_else(malformed)?;
    let nlri = decode_prefixes(c.buf, false)?;
    let mut update = Update {
        withdrawn,
        attributes: Attributes::default(),
        nlri,
    };
    decode_attributes(attrs, options, &mut update.attributes, revised)?;
    let attributes = &update.attributes;
    let announces = !update.nlri.is_empty()
        || attributes
            .mp_reach
            .as_ref()
            .is_some_and(|r| !r.nlri.is_empty());
    if announces {
        let missing = if attributes.origin.is_none() {
            Some(ATTR_ORIGIN)
        } else if attributes.as_path.is_none() {
            Some(ATTR_AS_PATH)
        } else if !update.nlri.is_empty() && attributes.next_hop.is_none() {
            Some(ATTR_NEXT_HOP)
        } else {
            None
        };
        if let Some(attribute) = missing {
            revised.push(RevisedError {
                action: RevisedAction::TreatAsWithdraw,
                attribute,
                reason: "missing well-known mandatory attribute",
            });
        }
    }
    if revised
        .iter()
        .any(|e| e.action == RevisedAction::TreatAsWithdraw)
    {
        treat_as_withdraw(&mut update);
    }
    Ok(update)
}

/// RFC 7606 treat-as-withdraw: everything announced becomes withdrawn,
/// and everything withdrawn stays withdrawn. IPv4 unicast (the body's
/// NLRI, and MP_REACH or MP_UNREACH of IPv4 unicast) goes to the body's
/// withdrawn routes, so MP_UNREACH is free for the other family. When
/// MP_REACH and MP_UNREACH carry two different families and neither is
/// IPv4 unicast, one is not unicast at all (edge uses no other SAFI and
/// never installs such routes, see [`Update::withdrawn_prefixes`]): the
/// unicast one is kept.
fn treat_as_withdraw(update: &mut Update) {
    let nlri = std::mem::take(&mut update.nlri);
    update.withdrawn.extend(nlri);
    let reach = update.attributes.mp_reach.take().map(|r| MpUnreach {
        family: r.family,
        withdrawn: r.nlri,
    });
    let unreach = update.attributes.mp_unreach.take();
    let mut kept: Option<MpUnreach> = None;
    for mp in [unreach, reach].into_iter().flatten() {
        if mp.family == Family::IPV4_UNICAST {
            update.withdrawn.extend(mp.withdrawn);
            continue;
        }
        match &mut kept {
            Some(k) if k.family == mp.family => k.withdrawn.extend(mp.withdrawn),
            Some(k) if k.family == Family::IPV6_UNICAST => {}
            _ => kept = Some(mp),
        }
    }
    update.attributes = Attributes {
        mp_unreach: kept,
        ..Attributes::default()
    };
}

fn decode_attributes(
    bytes: &[u8],
    options: &CodecOptions,
    out: &mut Attributes,
    revised: &mut Vec<RevisedError>,
) -> Result<(), DecodeError> {
    let mut c = Cursor { buf: bytes };
    let mut seen = [false; 256];
    let mut as4_path = None;
    while !c.is_empty() {
        let taw = |attribute, reason| RevisedError {
            action: RevisedAction::TreatAsWithdraw,
            attribute,
            reason,
        };
        let (Some(flags), Some(kind)) = (c.u8(), c.u8()) else {
            revised.push(taw(0, "attribute header cut short"));
            return Ok(());
        };
        let len = if flags & FLAG_EXTENDED != 0 {
            c.u16().map(usize::from)
        } else {
            c.u8().map(usize::from)
        };
        let Some(value) = len.and_then(|len| c.take(len)) else {
            // RFC 7606 section 4: an attribute overrunning the attribute list.
            revised.push(taw(kind, "attribute length overruns the attribute list"));
            return Ok(());
        };
        if std::mem::replace(&mut seen[usize::from(kind)], true) {
            if kind == ATTR_MP_REACH || kind == ATTR_MP_UNREACH {
                return Err(update_error(
                    UpdateMessageError::MalformedAttributeList,
                    vec![],
                    "MP_REACH_NLRI or MP_UNREACH_NLRI appears twice",
                ));
            }
            revised.push(RevisedError {
                action: RevisedAction::AttributeDiscard,
                attribute: kind,
                reason: "duplicate attribute",
            });
            continue;
        }
        let well_known = flags & FLAG_OPTIONAL == 0;
        let result = match kind {
            ATTR_ORIGIN => decode_origin(value)
                .map(|o| out.origin = Some(o))
                .ok_or("malformed ORIGIN"),
            ATTR_AS_PATH => decode_as_path(value, options.four_octet_as)
                .map(|p| out.as_path = Some(p))
                .ok_or("malformed AS_PATH"),
            ATTR_NEXT_HOP => be_u32(value)
                .map(|a| out.next_hop = Some(Ipv4Addr::from(a)))
                .ok_or("malformed NEXT_HOP"),
            ATTR_MED => be_u32(value)
                .map(|v| out.med = Some(v))
                .ok_or("malformed MULTI_EXIT_DISC"),
            ATTR_LOCAL_PREF => be_u32(value)
                .map(|v| out.local_pref = Some(v))
                .ok_or("malformed LOCAL_PREF"),
            ATTR_COMMUNITIES if value.len() % 4 == 0 => {
                out.communities = value
                    .chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Ok(())
            }
            ATTR_COMMUNITIES => Err("malformed COMMUNITIES"),
            ATTR_LARGE_COMMUNITY if value.len() % 12 == 0 => {
                out.large_communities = value
                    .chunks_exact(12)
                    .map(|c| LargeCommunity {
                        global: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                        local1: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                        local2: u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
                    })
                    .collect();
                Ok(())
            }
            ATTR_LARGE_COMMUNITY => Err("malformed LARGE_COMMUNITY"),
            ATTR_MP_REACH => {
                out.mp_reach = Some(decode_mp_reach(value)?);
                Ok(())
            }
            ATTR_MP_UNREACH => {
                out.mp_unreach = Some(decode_mp_unreach(value)?);
                Ok(())
            }
            ATTR_AS4_PATH => {
                match decode_as_path(value, true) {
                    Some(path) => as4_path = Some(path),
                    None => revised.push(RevisedError {
                        action: RevisedAction::AttributeDiscard,
                        attribute: kind,
                        reason: "malformed AS4_PATH",
                    }),
                }
                Ok(())
            }
            // ATOMIC_AGGREGATE, AGGREGATOR and other known well-known ones edge keeps raw.
            6 | 7 => {
                out.other
                    .push((flags & !FLAG_EXTENDED, kind, value.to_vec()));
                Ok(())
            }
            _ if well_known => {
                // RFC 4271 section 6.3: the attribute's type, length and
                // value, as received.
                let mut data = vec![flags, kind];
                if flags & FLAG_EXTENDED != 0 {
                    data.extend_from_slice(&(value.len() as u16).to_be_bytes());
                } else {
                    data.push(value.len() as u8);
                }
                data.extend_from_slice(value);
                return Err(update_error(
                    UpdateMessageError::UnrecognizedWellKnownAttribute,
                    data,
                    "unrecognized well-known attribute",
                ));
            }
            _ => {
                out.other
                    .push((flags & !FLAG_EXTENDED, kind, value.to_vec()));
                Ok(())
            }
        };
        if let Err(reason) = result {
            revised.push(taw(kind, reason));
        }
    }
    // Kept in type order, as encode writes them, so that a message
    // decodes to the same value however its sender ordered them.
    out.other.sort_by_key(|(_, kind, _)| *kind);
    if !options.four_octet_as {
        if let (Some(path), Some(as4)) = (&out.as_path, as4_path) {
            out.as_path = Some(merge_as4_path(path, &as4));
        }
    }
    Ok(())
}

fn decode_origin(value: &[u8]) -> Option<Origin> {
    match value {
        [0] => Some(Origin::Igp),
        [1] => Some(Origin::Egp),
        [2] => Some(Origin::Incomplete),
        _ => None,
    }
}

fn be_u32(value: &[u8]) -> Option<u32> {
    match value {
        [a, b, c, d] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// AS_PATH segments; `None` if malformed (including confederation segments).
fn decode_as_path(value: &[u8], four_octet: bool) -> Option<Vec<AsSegment>> {
    let width = if four_octet { 4 } else { 2 };
    let mut c = Cursor { buf: value };
    let mut segments = Vec::new();
    while !c.is_empty() {
        let kind = c.u8()?;
        let count = usize::from(c.u8()?);
        if count == 0 {
            return None;
        }
        let asns: Vec<u32> = c
            .take(count * width)?
            .chunks_exact(width)
            .map(|a| {
                if four_octet {
                    u32::from_be_bytes([a[0], a[1], a[2], a[3]])
                } else {
                    u32::from(u16::from_be_bytes([a[0], a[1]]))
                }
            })
            .collect();
        segments.push(match kind {
            1 => AsSegment::Set(asns),
            2 => AsSegment::Sequence(asns),
            _ => return None,
        });
    }
    Some(segments)
}

/// Number of ASNs a path counts for (a set counts as one), RFC 6793 4.2.3.
fn path_count(path: &[AsSegment]) -> usize {
    path.iter()
        .map(|s| match s {
            AsSegment::Set(_) => 1,
            AsSegment::Sequence(a) => a.len(),
        })
        .sum()
}

/// The real path from a two-octet AS_PATH and an AS4_PATH (RFC 6793 4.2.3):
/// the leading ASNs of AS_PATH that AS4_PATH lacks, then AS4_PATH.
fn merge_as4_path(path: &[AsSegment], as4: &[AsSegment]) -> Vec<AsSegment> {
    let (n, m) = (path_count(path), path_count(as4));
    if n < m {
        return path.to_vec();
    }
    let mut keep = n - m;
    let mut merged = Vec::new();
    for segment in path {
        if keep == 0 {
            break;
        }
        match segment {
            AsSegment::Set(asns) => {
                merged.push(AsSegment::Set(asns.clone()));
                keep -= 1;
            }
            AsSegment::Sequence(asns) => {
                let take = keep.min(asns.len());
                merged.push(AsSegment::Sequence(asns[..take].to_vec()));
                keep -= take;
            }
        }
    }
    merged.extend(as4.iter().cloned());
    merged
}

fn optional_error(reason: &'static str) -> DecodeError {
    update_error(UpdateMessageError::OptionalAttributeError, vec![], reason)
}

fn decode_family(c: &mut Cursor<'_>) -> Option<Family> {
    let afi = c.u16()?;
    let safi = c.u8()?;
    Some(Family { afi, safi })
}

/// MP_REACH_NLRI; malformed is a session reset (RFC 7606 section 7.11).
fn decode_mp_reach(value: &[u8]) -> Result<MpReach, DecodeError> {
    let mut c = Cursor { buf: value };
    let malformed = || optional_error("malformed MP_REACH_NLRI");
    let family = decode_family(&mut c).ok_or_else(malformed)?;
    let hop_len = usize::from(c.u8().ok_or_else(malformed)?);
    let next_hop = c.take(hop_len).ok_or_else(malformed)?.to_vec();
    c.u8().ok_or_else(malformed)?; // reserved
    let v6 = family.afi == 2;
    let hop_ok = if v6 {
        matches!(hop_len, 16 | 32)
    } else {
        hop_len == 4
    };
    if !hop_ok || (family.afi != 1 && family.afi != 2) {
        return Err(malformed());
    }
    let nlri = decode_prefixes(c.buf, v6)?;
    Ok(MpReach {
        family,
        next_hop,
        nlri,
    })
}

/// MP_UNREACH_NLRI; malformed is a session reset.
fn decode_mp_unreach(value: &[u8]) -> Result<MpUnreach, DecodeError> {
    let mut c = Cursor { buf: value };
    let family =
        decode_family(&mut c).ok_or_else(|| optional_error("malformed MP_UNREACH_NLRI"))?;
    if family.afi != 1 && family.afi != 2 {
        return Err(optional_error("MP_UNREACH_NLRI of an unsupported family"));
    }
    let withdrawn = decode_prefixes(c.buf, family.afi == 2)?;
    Ok(MpUnreach { family, withdrawn })
}

/// Appends the wire form of `message` to `out`.
pub fn encode(
    message: &Message,
    options: &CodecOptions,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let (kind, body) = match message {
        Message::Open(open) => (1, encode_open(open)?),
        Message::Update(update) => (2, encode_update(update, options)?),
        Message::Notification(n) => (3, [&[n.code, n.subcode][..], &n.data].concat()),
        Message::Keepalive => (4, Vec::new()),
        Message::RouteRefresh(rr) => {
            let afi = rr.family.afi.to_be_bytes();
            (5, vec![afi[0], afi[1], 0, rr.family.safi])
        }
    };
    let len = HEADER_LEN + body.len();
    if len > MAX_MESSAGE_LEN {
        return Err(EncodeError::TooLong(len));
    }
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(&body);
    Ok(())
}

fn encode_open(open: &Open) -> Result<Vec<u8>, EncodeError> {
    let mut caps = Vec::new();
    for cap in &open.capabilities {
        let (code, value) = match cap {
            Capability::Multiprotocol(f) => (1, family_bytes(*f, true)),
            Capability::RouteRefresh => (2, Vec::new()),
            Capability::GracefulRestart {
                restarted,
                restart_time,
                families,
            } => {
                let head = (restart_time & 0x0fff) | if *restarted { 0x8000 } else { 0 };
                let mut v = head.to_be_bytes().to_vec();
                for (f, forwarding) in families {
                    v.extend_from_slice(&f.afi.to_be_bytes());
                    v.push(f.safi);
                    v.push(if *forwarding { 0x80 } else { 0 });
                }
                (64, v)
            }
            Capability::FourOctetAs(asn) => (65, asn.to_be_bytes().to_vec()),
            Capability::Unknown { code, value } => (*code, value.clone()),
        };
        caps.push(code);
        caps.push(u8::try_from(value.len()).map_err(|_| EncodeError::Oversized("a capability"))?);
        caps.extend_from_slice(&value);
    }
    let mut body = vec![open.version];
    body.extend_from_slice(&open.my_as.to_be_bytes());
    body.extend_from_slice(&open.hold_time.to_be_bytes());
    body.extend_from_slice(&open.bgp_id.octets());
    match u8::try_from(caps.len() + 2) {
        _ if caps.is_empty() => body.push(0),
        // One Capabilities parameter in the classic form (RFC 5492).
        Ok(params_len) => {
            body.push(params_len);
            body.push(PARAM_CAPABILITIES);
            body.push(params_len - 2);
            body.extend_from_slice(&caps);
        }
        // Over 253 bytes of capabilities: the extended form (RFC 9072),
        // a marker 255/255, then two-byte lengths.
        Err(_) => {
            let param_len = u16::try_from(caps.len())
                .ok()
                .filter(|len| *len <= MAX_OPEN_PARAMS)
                .ok_or(EncodeError::Oversized("the capabilities"))?;
            body.extend_from_slice(&[255, 255]);
            body.extend_from_slice(&(param_len + 3).to_be_bytes());
            body.push(PARAM_CAPABILITIES);
            body.extend_from_slice(&param_len.to_be_bytes());
            body.extend_from_slice(&caps);
        }
    }
    Ok(body)
}

/// Optional parameter type of Capabilities (RFC 5492).
const PARAM_CAPABILITIES: u8 = 2;

/// The most capability bytes an OPEN can carry in the extended form: the
/// message is at most 4096 bytes, of which 19 are the header, 9 the fixed
/// OPEN fields (version, My AS, hold time, BGP identifier), 4 the marker
/// 255/255 and the two-byte length, and 3 the parameter header: 4061.
const MAX_OPEN_PARAMS: u16 = (MAX_MESSAGE_LEN - HEADER_LEN - 9 - 4 - 3) as u16;

/// AFI, then (MP capability form) a reserved byte, then SAFI.
fn family_bytes(f: Family, reserved: bool) -> Vec<u8> {
    let mut v = f.afi.to_be_bytes().to_vec();
    if reserved {
        v.push(0);
    }
    v.push(f.safi);
    v
}

fn encode_prefixes(prefixes: &[Prefix], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    for p in prefixes {
        let (len, bytes): (u8, Vec<u8>) = match p {
            Prefix::V4 { addr, len } if *len <= 32 => (*len, addr.octets().to_vec()),
            Prefix::V6 { addr, len } if *len <= 128 => (*len, addr.octets().to_vec()),
            Prefix::V4 { len, .. } | Prefix::V6 { len, .. } => {
                return Err(EncodeError::BadPrefix(*len));
            }
        };
        out.push(len);
        out.extend_from_slice(&bytes[..usize::from(len).div_ceil(8)]);
    }
    Ok(())
}

fn encode_update(update: &Update, options: &CodecOptions) -> Result<Vec<u8>, EncodeError> {
    let mut withdrawn = Vec::new();
    encode_prefixes(&update.withdrawn, &mut withdrawn)?;
    let attrs = encode_attributes(&update.attributes, options)?;
    let mut body = Vec::with_capacity(4 + withdrawn.len() + attrs.len());
    body.extend_from_slice(
        &u16::try_from(withdrawn.len())
            .map_err(|_| EncodeError::TooLong(withdrawn.len()))?
            .to_be_bytes(),
    );
    body.extend_from_slice(&withdrawn);
    body.extend_from_slice(
        &u16::try_from(attrs.len())
            .map_err(|_| EncodeError::TooLong(attrs.len()))?
            .to_be_bytes(),
    );
    body.extend_from_slice(&attrs);
    encode_prefixes(&update.nlri, &mut body)?;
    Ok(body)
}

fn push_attribute(out: &mut Vec<u8>, flags: u8, kind: u8, value: &[u8]) {
    if value.len() > 255 {
        out.push(flags | FLAG_EXTENDED);
        out.push(kind);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        out.push(flags & !FLAG_EXTENDED);
        out.push(kind);
        out.push(value.len() as u8);
    }
    out.extend_from_slice(value);
}

fn encode_as_path(path: &[AsSegment], four_octet: bool) -> Vec<u8> {
    let mut v = Vec::new();
    for segment in path {
        let (kind, asns) = match segment {
            AsSegment::Set(a) => (1, a),
            AsSegment::Sequence(a) => (2, a),
        };
        for chunk in asns.chunks(255) {
            v.push(kind);
            v.push(chunk.len() as u8);
            for asn in chunk {
                if four_octet {
                    v.extend_from_slice(&asn.to_be_bytes());
                } else {
                    v.extend_from_slice(&u16::try_from(*asn).unwrap_or(AS_TRANS).to_be_bytes());
                }
            }
        }
    }
    v
}

/// The path attributes, in ascending type order, in canonical flags.
fn encode_attributes(a: &Attributes, options: &CodecOptions) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    let wk = FLAG_TRANSITIVE;
    if let Some(origin) = a.origin {
        push_attribute(&mut out, wk, ATTR_ORIGIN, &[origin as u8]);
    }
    if let Some(path) = &a.as_path {
        push_attribute(
            &mut out,
            wk,
            ATTR_AS_PATH,
            &encode_as_path(path, options.four_octet_as),
        );
    }
    if let Some(hop) = a.next_hop {
        push_attribute(&mut out, wk, ATTR_NEXT_HOP, &hop.octets());
    }
    if let Some(med) = a.med {
        push_attribute(&mut out, FLAG_OPTIONAL, ATTR_MED, &med.to_be_bytes());
    }
    if let Some(pref) = a.local_pref {
        push_attribute(&mut out, wk, ATTR_LOCAL_PREF, &pref.to_be_bytes());
    }
    let mut others: Vec<&(u8, u8, Vec<u8>)> = a.other.iter().collect();
    others.sort_by_key(|(_, kind, _)| *kind);
    let mut others = others.into_iter().peekable();
    flush_others_below(&mut out, ATTR_COMMUNITIES, &mut others);
    if !a.communities.is_empty() {
        let v: Vec<u8> = a.communities.iter().flat_map(|c| c.to_be_bytes()).collect();
        push_attribute(
            &mut out,
            FLAG_OPTIONAL | FLAG_TRANSITIVE,
            ATTR_COMMUNITIES,
            &v,
        );
    }
    flush_others_below(&mut out, ATTR_MP_REACH, &mut others);
    if let Some(reach) = &a.mp_reach {
        let mut v = family_bytes(reach.family, false);
        v.push(
            u8::try_from(reach.next_hop.len())
                .map_err(|_| EncodeError::Oversized("the MP next hop"))?,
        );
        v.extend_from_slice(&reach.next_hop);
        v.push(0);
        encode_prefixes(&reach.nlri, &mut v)?;
        push_attribute(&mut out, FLAG_OPTIONAL, ATTR_MP_REACH, &v);
    }
    if let Some(unreach) = &a.mp_unreach {
        let mut v = family_bytes(unreach.family, false);
        encode_prefixes(&unreach.withdrawn, &mut v)?;
        push_attribute(&mut out, FLAG_OPTIONAL, ATTR_MP_UNREACH, &v);
    }
    flush_others_below(&mut out, ATTR_AS4_PATH, &mut others);
    if !options.four_octet_as {
        if let Some(path) = &a.as_path {
            let all = path.iter().flat_map(|s| match s {
                AsSegment::Set(a) | AsSegment::Sequence(a) => a.iter(),
            });
            if all.into_iter().any(|asn| *asn > 0xffff) {
                push_attribute(
                    &mut out,
                    FLAG_OPTIONAL | FLAG_TRANSITIVE,
                    ATTR_AS4_PATH,
                    &encode_as_path(path, true),
                );
            }
        }
    }
    flush_others_below(&mut out, ATTR_LARGE_COMMUNITY, &mut others);
    if !a.large_communities.is_empty() {
        let v: Vec<u8> = a
            .large_communities
            .iter()
            .flat_map(|c| {
                [
                    c.global.to_be_bytes(),
                    c.local1.to_be_bytes(),
                    c.local2.to_be_bytes(),
                ]
                .concat()
            })
            .collect();
        push_attribute(
            &mut out,
            FLAG_OPTIONAL | FLAG_TRANSITIVE,
            ATTR_LARGE_COMMUNITY,
            &v,
        );
    }
    for (flags, kind, value) in others {
        push_attribute(&mut out, *flags, *kind, value);
    }
    Ok(out)
}

type Others<'a> = std::iter::Peekable<std::vec::IntoIter<&'a (u8, u8, Vec<u8>)>>;

/// Writes the raw attributes whose type code is below `limit`, keeping the
/// whole list in ascending type order.
fn flush_others_below(out: &mut Vec<u8>, limit: u8, others: &mut Others<'_>) {
    while let Some((flags, kind, value)) = others.next_if(|(_, k, _)| *k < limit) {
        push_attribute(out, *flags, *kind, value);
    }
}

/// Wire bytes of one prefix.
fn prefix_size(p: &Prefix) -> usize {
    match p {
        Prefix::V4 { len, .. } | Prefix::V6 { len, .. } => 1 + usize::from(*len).div_ceil(8),
    }
}

/// Splits prefixes into chunks whose wire size stays within `room`.
fn chunk_prefixes(prefixes: &[Prefix], room: usize) -> Vec<Vec<Prefix>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut used = 0;
    for p in prefixes {
        let size = prefix_size(p);
        if used + size > room && !current.is_empty() {
            chunks.push(std::mem::take(&mut current));
            used = 0;
        }
        current.push(*p);
        used += size;
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// Splits announcements of `announce` (all with `attributes`) and
/// withdrawals into as few UPDATEs as fit in 4096 bytes each: IPv4 in the
/// UPDATE body (`attributes.next_hop` required for announcements), IPv6 in
/// MP_REACH_NLRI with `ipv6_next_hop` (16 or 32 bytes) and MP_UNREACH_NLRI.
/// Withdrawals come first, in messages of their own.
pub fn pack_updates(
    attributes: &Attributes,
    announce: &[Prefix],
    withdraw: &[Prefix],
    ipv6_next_hop: &[u8],
    options: &CodecOptions,
) -> Result<Vec<Update>, EncodeError> {
    let is_v4 = |p: &&Prefix| matches!(p, Prefix::V4 { .. });
    let (w4, w6): (Vec<Prefix>, Vec<Prefix>) = withdraw.iter().partition(is_v4);
    let (a4, a6): (Vec<Prefix>, Vec<Prefix>) = announce.iter().partition(is_v4);
    // Header, withdrawn length, attribute length; MP attribute headers
    // (flags, type, 2-byte length, AFI, SAFI).
    let base = HEADER_LEN + 4;
    let mp_overhead = 4 + 3;
    let mut updates = Vec::new();
    for chunk in chunk_prefixes(&w4, MAX_MESSAGE_LEN - base) {
        updates.push(Update {
            withdrawn: chunk,
            ..Update::default()
        });
    }
    for chunk in chunk_prefixes(&w6, MAX_MESSAGE_LEN - base - mp_overhead) {
        let mut u = Update::default();
        u.attributes.mp_unreach = Some(MpUnreach {
            family: Family::IPV6_UNICAST,
            withdrawn: chunk,
        });
        updates.push(u);
    }
    if !a4.is_empty() {
        if attributes.next_hop.is_none() {
            return Err(EncodeError::NoNextHop("IPv4"));
        }
        let mut plain = attributes.clone();
        plain.mp_reach = None;
        plain.mp_unreach = None;
        let room = MAX_MESSAGE_LEN - base - encode_attributes(&plain, options)?.len();
        for chunk in chunk_prefixes(&a4, room) {
            updates.push(Update {
                nlri: chunk,
                attributes: plain.clone(),
                ..Update::default()
            });
        }
    }
    if !a6.is_empty() {
        if !matches!(ipv6_next_hop.len(), 16 | 32) {
            return Err(EncodeError::NoNextHop("IPv6"));
        }
        let mut v6 = attributes.clone();
        v6.next_hop = None;
        v6.mp_unreach = None;
        v6.mp_reach = None;
        let room = MAX_MESSAGE_LEN
            - base
            - encode_attributes(&v6, options)?.len()
            - mp_overhead
            - 2
            - ipv6_next_hop.len();
        for chunk in chunk_prefixes(&a6, room) {
            let mut attrs = v6.clone();
            attrs.mp_reach = Some(MpReach {
                family: Family::IPV6_UNICAST,
                next_hop: ipv6_next_hop.to_vec(),
                nlri: chunk,
            });
            updates.push(Update {
                attributes: attrs,
                ..Update::default()
            });
        }
    }
    Ok(updates)
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
