//! The BFD Control packet (RFC 5880 §4): its fields, the protocol's named
//! constants (states, diagnostics, authentication types), and the codec.
//! Decoding checks only what the packet alone can tell (§6.8.6's first
//! steps: version, lengths, detect multiplier, multipoint, discriminator,
//! a well-formed authentication section); everything that needs a session
//! is the session's.

use std::fmt;

/// The only BFD version (RFC 5880 §4.1).
pub const VERSION: u8 = 1;
/// The mandatory section's length.
pub const MANDATORY_LEN: usize = 24;
/// The length of a Keyed / Meticulous Keyed SHA1 authentication section.
pub const SHA1_AUTH_LEN: usize = 28;
/// The length of a packet carrying SHA1 authentication.
pub const SHA1_PACKET_LEN: usize = MANDATORY_LEN + SHA1_AUTH_LEN;
/// The longest packet we read (the length field is one octet).
pub const MAX_LEN: usize = 255;

/// A session's state (RFC 5880 §4.1, "Sta").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Administratively down: the session is held down on purpose.
    AdminDown,
    /// Down: no path, or not yet one.
    Down,
    /// Init: the remote is heard, it has not yet heard us.
    Init,
    /// Up: both sides hear each other.
    Up,
}

impl State {
    fn from_bits(bits: u8) -> State {
        match bits & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    fn bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }

    /// The name as status and metrics print it.
    pub fn name(self) -> &'static str {
        match self {
            State::AdminDown => "admin-down",
            State::Down => "down",
            State::Init => "init",
            State::Up => "up",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the session last changed state (RFC 5880 §4.1, "Diag").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Diag {
    /// 0: no diagnostic.
    None,
    /// 1: Control Detection Time Expired.
    DetectionTimeExpired,
    /// 2: Echo Function Failed.
    EchoFailed,
    /// 3: Neighbor Signaled Session Down.
    NeighborDown,
    /// 4: Forwarding Plane Reset.
    ForwardingReset,
    /// 5: Path Down.
    PathDown,
    /// 6: Concatenated Path Down.
    ConcatenatedPathDown,
    /// 7: Administratively Down.
    AdminDown,
    /// 8: Reverse Concatenated Path Down.
    ReverseConcatenatedPathDown,
    /// 9–31: reserved, as received.
    Reserved(u8),
}

impl Diag {
    /// The code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Diag::None => 0,
            Diag::DetectionTimeExpired => 1,
            Diag::EchoFailed => 2,
            Diag::NeighborDown => 3,
            Diag::ForwardingReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdminDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Reserved(code) => code & 0x1f,
        }
    }

    /// The diagnostic for a code (five bits).
    pub fn from_code(code: u8) -> Diag {
        match code & 0x1f {
            0 => Diag::None,
            1 => Diag::DetectionTimeExpired,
            2 => Diag::EchoFailed,
            3 => Diag::NeighborDown,
            4 => Diag::ForwardingReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdminDown,
            8 => Diag::ReverseConcatenatedPathDown,
            other => Diag::Reserved(other),
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diag::None => f.write_str("no diagnostic"),
            Diag::DetectionTimeExpired => f.write_str("control detection time expired"),
            Diag::EchoFailed => f.write_str("echo function failed"),
            Diag::NeighborDown => f.write_str("neighbor signaled session down"),
            Diag::ForwardingReset => f.write_str("forwarding plane reset"),
            Diag::PathDown => f.write_str("path down"),
            Diag::ConcatenatedPathDown => f.write_str("concatenated path down"),
            Diag::AdminDown => f.write_str("administratively down"),
            Diag::ReverseConcatenatedPathDown => f.write_str("reverse concatenated path down"),
            Diag::Reserved(code) => write!(f, "reserved diagnostic {code}"),
        }
    }
}

/// Authentication types (RFC 5880 §4.1, "Auth Type").
pub mod auth_type {
    /// Simple Password.
    pub const SIMPLE_PASSWORD: u8 = 1;
    /// Keyed MD5.
    pub const KEYED_MD5: u8 = 2;
    /// Meticulous Keyed MD5.
    pub const METICULOUS_KEYED_MD5: u8 = 3;
    /// Keyed SHA1.
    pub const KEYED_SHA1: u8 = 4;
    /// Meticulous Keyed SHA1.
    pub const METICULOUS_KEYED_SHA1: u8 = 5;
}

/// The authentication section as received: its type, key ID and, for the
/// keyed types, the sequence number. The digest stays in the packet's
/// bytes, where verification needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthSection {
    /// "Auth Type".
    pub kind: u8,
    /// "Auth Key ID".
    pub key_id: u8,
    /// The sequence number (keyed types; 0 for Simple Password).
    pub sequence: u32,
}

/// One BFD Control packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Why the sender last changed state.
    pub diag: Diag,
    /// The sender's state.
    pub state: State,
    /// Poll: the sender asks for a Final.
    pub poll: bool,
    /// Final: the answer to a Poll.
    pub final_: bool,
    /// Control Plane Independent.
    pub cpi: bool,
    /// Demand mode.
    pub demand: bool,
    /// The sender's detection multiplier (never 0).
    pub detect_mult: u8,
    /// The sender's discriminator (never 0).
    pub my_disc: u32,
    /// The receiver's discriminator as the sender knows it (0: not yet).
    pub your_disc: u32,
    /// The sender's desired minimum transmit interval, microseconds.
    pub desired_min_tx: u32,
    /// The sender's required minimum receive interval, microseconds.
    pub required_min_rx: u32,
    /// The sender's required minimum Echo receive interval, microseconds.
    pub required_min_echo_rx: u32,
    /// The authentication section, if the A bit is set.
    pub auth: Option<AuthSection>,
}

/// Why a datagram is not a valid Control packet (RFC 5880 §6.8.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Shorter than the mandatory section, or than its length field says.
    #[error("shorter than its length says")]
    Truncated,
    /// The version is not 1.
    #[error("version {0} (only 1 exists)")]
    Version(u8),
    /// The length field is below the minimum (24, or 26 with the A bit).
    #[error("length field {0} below the minimum")]
    Length(u8),
    /// The detect multiplier is 0.
    #[error("detect multiplier 0")]
    ZeroDetectMult,
    /// The Multipoint bit is set.
    #[error("multipoint bit set")]
    Multipoint,
    /// My Discriminator is 0.
    #[error("my discriminator 0")]
    ZeroMyDisc,
    /// The authentication section's length does not fit its type or the
    /// packet.
    #[error("authentication section of the wrong length")]
    AuthLength,
}

/// Decodes one Control packet from a datagram's payload.
pub fn decode(bytes: &[u8]) -> Result<Packet, Malformed> {
    let header: &[u8; MANDATORY_LEN] = bytes
        .get(..MANDATORY_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(Malformed::Truncated)?;
    let version = header[0] >> 5;
    if version != VERSION {
        return Err(Malformed::Version(version));
    }
    let flags = header[1];
    let auth_present = flags & flag::AUTH != 0;
    let length = header[3];
    let min = if auth_present {
        MANDATORY_LEN + 2
    } else {
        MANDATORY_LEN
    };
    if usize::from(length) < min {
        return Err(Malformed::Length(length));
    }
    if usize::from(length) > bytes.len() {
        return Err(Malformed::Truncated);
    }
    let detect_mult = header[2];
    if detect_mult == 0 {
        return Err(Malformed::ZeroDetectMult);
    }
    if flags & flag::MULTIPOINT != 0 {
        return Err(Malformed::Multipoint);
    }
    let word = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let my_disc = word(4);
    if my_disc == 0 {
        return Err(Malformed::ZeroMyDisc);
    }
    let auth = if auth_present {
        Some(auth_section(&bytes[MANDATORY_LEN..usize::from(length)])?)
    } else {
        None
    };
    Ok(Packet {
        diag: Diag::from_code(header[0]),
        state: State::from_bits(flags >> 6),
        poll: flags & flag::POLL != 0,
        final_: flags & flag::FINAL != 0,
        cpi: flags & flag::CPI != 0,
        demand: flags & flag::DEMAND != 0,
        detect_mult,
        my_disc,
        your_disc: word(8),
        desired_min_tx: word(12),
        required_min_rx: word(16),
        required_min_echo_rx: word(20),
        auth,
    })
}

/// The authentication section, `section` being the bytes after the
/// mandatory section up to the packet's length.
fn auth_section(section: &[u8]) -> Result<AuthSection, Malformed> {
    let (&kind, &len) = match section {
        [kind, len, ..] => (kind, len),
        _ => return Err(Malformed::AuthLength),
    };
    if usize::from(len) != section.len() {
        return Err(Malformed::AuthLength);
    }
    let expected = match kind {
        auth_type::SIMPLE_PASSWORD => (4..=19).contains(&len).then_some(usize::from(len)),
        auth_type::KEYED_MD5 | auth_type::METICULOUS_KEYED_MD5 => Some(24),
        auth_type::KEYED_SHA1 | auth_type::METICULOUS_KEYED_SHA1 => Some(SHA1_AUTH_LEN),
        // An unknown type is the session's to refuse.
        _ => Some(section.len()),
    };
    if expected != Some(section.len()) || section.len() < 3 {
        return Err(Malformed::AuthLength);
    }
    let sequence = match section.get(4..8) {
        Some(s) if kind != auth_type::SIMPLE_PASSWORD => {
            u32::from_be_bytes([s[0], s[1], s[2], s[3]])
        }
        _ => 0,
    };
    Ok(AuthSection {
        kind,
        key_id: section[2],
        sequence,
    })
}

/// The flag bits of the second octet.
mod flag {
    pub const POLL: u8 = 0x20;
    pub const FINAL: u8 = 0x10;
    pub const CPI: u8 = 0x08;
    pub const AUTH: u8 = 0x04;
    pub const DEMAND: u8 = 0x02;
    pub const MULTIPOINT: u8 = 0x01;
}

/// Encodes `packet` into `out` (cleared first). With an authentication
/// section, the SHA1 key field is left zero for [`super::auth`] to fill;
/// only the SHA1 types are encoded.
pub fn encode(packet: &Packet, out: &mut Vec<u8>) {
    out.clear();
    let auth_len = if packet.auth.is_some() {
        SHA1_AUTH_LEN
    } else {
        0
    };
    let mut flags = packet.state.bits() << 6;
    for (on, bit) in [
        (packet.poll, flag::POLL),
        (packet.final_, flag::FINAL),
        (packet.cpi, flag::CPI),
        (packet.auth.is_some(), flag::AUTH),
        (packet.demand, flag::DEMAND),
    ] {
        if on {
            flags |= bit;
        }
    }
    out.push((VERSION << 5) | packet.diag.code());
    out.push(flags);
    out.push(packet.detect_mult);
    out.push((MANDATORY_LEN + auth_len) as u8);
    for word in [
        packet.my_disc,
        packet.your_disc,
        packet.desired_min_tx,
        packet.required_min_rx,
        packet.required_min_echo_rx,
    ] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    if let Some(auth) = &packet.auth {
        out.extend_from_slice(&[auth.kind, SHA1_AUTH_LEN as u8, auth.key_id, 0]);
        out.extend_from_slice(&auth.sequence.to_be_bytes());
        out.extend_from_slice(&[0; 20]);
    }
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
