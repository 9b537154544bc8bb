//! BFD authentication: Keyed SHA1 and Meticulous Keyed SHA1 (RFC 5880
//! §6.7.4), signing what we send and checking what we receive, with the
//! sequence-number window that keeps a recorded packet from being
//! replayed.

use ring::digest;

use super::packet::{AuthSection, MANDATORY_LEN, SHA1_PACKET_LEN, auth_type};

/// The longest key the SHA1 types carry.
pub const MAX_KEY_LEN: usize = 20;

/// A session's key.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey {
    /// Meticulous Keyed SHA1 (the sequence number grows with every
    /// packet) rather than Keyed SHA1.
    pub meticulous: bool,
    /// The key ID both sides agree on.
    pub key_id: u8,
    /// The secret: 1 to 20 bytes.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthKey")
            .field("meticulous", &self.meticulous)
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl AuthKey {
    /// The Auth Type this key is sent with.
    pub fn kind(&self) -> u8 {
        if self.meticulous {
            auth_type::METICULOUS_KEYED_SHA1
        } else {
            auth_type::KEYED_SHA1
        }
    }

    /// The name of the type, as configured.
    pub fn kind_name(&self) -> &'static str {
        if self.meticulous {
            "meticulous-keyed-sha1"
        } else {
            "keyed-sha1"
        }
    }

    /// The key field: the secret padded with zeros to 20 bytes.
    fn padded(&self) -> [u8; MAX_KEY_LEN] {
        let mut key = [0u8; MAX_KEY_LEN];
        let n = self.secret.len().min(MAX_KEY_LEN);
        key[..n].copy_from_slice(&self.secret[..n]);
        key
    }

    /// Signs an encoded packet whose authentication section is in place:
    /// the key goes into the digest field, the SHA1 of the whole packet
    /// replaces it.
    pub fn sign(&self, packet: &mut [u8]) {
        let Some(field) = packet.get_mut(MANDATORY_LEN + 8..SHA1_PACKET_LEN) else {
            return;
        };
        field.copy_from_slice(&self.padded());
        let hash = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, packet);
        packet[MANDATORY_LEN + 8..SHA1_PACKET_LEN].copy_from_slice(hash.as_ref());
    }
}

/// Why a packet's authentication is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The session authenticates, the packet does not (A bit clear).
    #[error("not authenticated, the session is")]
    Missing,
    /// The packet authenticates, the session does not.
    #[error("authenticated, the session is not")]
    Unexpected,
    /// Another type or key ID than the session's.
    #[error("authentication type or key ID not the session's")]
    WrongKey,
    /// The digest does not match.
    #[error("digest does not match")]
    Digest,
    /// The sequence number is outside the window: a replay, or a packet
    /// from long ago.
    #[error("sequence number out of window (replay)")]
    Replay,
}

/// What a session remembers of the peer's sequence numbers
/// (bfd.RcvAuthSeq, bfd.AuthSeqKnown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiveSequence {
    /// The last sequence number accepted, if one is known.
    pub known: Option<u32>,
}

impl ReceiveSequence {
    /// Checks a received packet (`bytes` is the whole packet, `section`
    /// its decoded authentication section) against `key`, with the window
    /// 3 × `detect_mult` wide (RFC 5880 §6.7.4). Does not remember the
    /// sequence number: [`ReceiveSequence::accept`] does, once the packet
    /// is accepted.
    pub fn check(
        &self,
        key: &AuthKey,
        section: &AuthSection,
        bytes: &[u8],
        detect_mult: u8,
    ) -> Result<(), AuthError> {
        if section.kind != key.kind() || section.key_id != key.key_id {
            return Err(AuthError::WrongKey);
        }
        let Some(packet) = bytes.get(..SHA1_PACKET_LEN) else {
            return Err(AuthError::WrongKey);
        };
        let mut copy = [0u8; SHA1_PACKET_LEN];
        copy.copy_from_slice(packet);
        let received: [u8; MAX_KEY_LEN] = packet[MANDATORY_LEN + 8..]
            .try_into()
            .map_err(|_| AuthError::Digest)?;
        copy[MANDATORY_LEN + 8..].copy_from_slice(&key.padded());
        let hash = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &copy);
        // Compared in constant time: how much of a forgery matches must
        // not show in how long the refusal takes.
        let difference = hash
            .as_ref()
            .iter()
            .zip(received)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if difference != 0 {
            return Err(AuthError::Digest);
        }
        if let Some(last) = self.known {
            // Keyed SHA1 may repeat the last number; Meticulous must grow.
            let low = if key.meticulous { 1 } else { 0 };
            let high = 3 * u32::from(detect_mult);
            let ahead = section.sequence.wrapping_sub(last);
            if ahead < low || ahead > high {
                return Err(AuthError::Replay);
            }
        }
        Ok(())
    }

    /// Remembers an accepted packet's sequence number.
    pub fn accept(&mut self, sequence: u32) {
        self.known = Some(sequence);
    }

    /// Forgets the sequence (no packet for twice the detection time).
    pub fn forget(&mut self) {
        self.known = None;
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
