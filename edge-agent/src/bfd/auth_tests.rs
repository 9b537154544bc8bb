use super::*;
use crate::bfd::packet::{self, Diag, Packet, State, decode};

fn key(meticulous: bool) -> AuthKey {
    AuthKey {
        meticulous,
        key_id: 7,
        secret: b"edge-bfd-key".to_vec(),
    }
}

fn signed(key: &AuthKey, sequence: u32) -> Vec<u8> {
    let p = Packet {
        diag: Diag::None,
        state: State::Up,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        detect_mult: 3,
        my_disc: 0x1122_3344,
        your_disc: 0x5566_7788,
        desired_min_tx: 100_000,
        required_min_rx: 100_000,
        required_min_echo_rx: 0,
        auth: Some(AuthSection {
            kind: key.kind(),
            key_id: key.key_id,
            sequence,
        }),
    };
    let mut out = Vec::new();
    packet::encode(&p, &mut out);
    key.sign(&mut out);
    out
}

fn check(seq: &ReceiveSequence, key: &AuthKey, bytes: &[u8]) -> Result<(), AuthError> {
    let p = decode(bytes).unwrap();
    seq.check(key, &p.auth.unwrap(), bytes, p.detect_mult)
}

#[test]
fn the_digest_matches_an_independent_sha1() {
    // SHA1 over the packet with the key in the digest field, computed
    // with Python's hashlib (RFC 5880 §6.7.4).
    let b = signed(&key(true), 0x0102_0304);
    assert_eq!(
        hex(&b[..32]),
        "20c403341122334455667788000186a0000186a000000000051c070001020304"
    );
    assert_eq!(hex(&b[32..]), "16250e8ad56e3b083d40dc68d21865757b046c0d");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn a_signed_packet_is_accepted_and_any_change_refused() {
    let k = key(false);
    let b = signed(&k, 10);
    let seq = ReceiveSequence::default();
    assert_eq!(check(&seq, &k, &b), Ok(()));
    for at in 0..b.len() {
        let mut forged = b.clone();
        forged[at] ^= 0x01;
        let Ok(p) = decode(&forged) else { continue };
        let Some(section) = p.auth else { continue };
        assert!(
            seq.check(&k, &section, &forged, p.detect_mult).is_err(),
            "a bit flipped at {at} went unnoticed"
        );
    }
    let other = AuthKey {
        secret: b"another-key".to_vec(),
        ..k.clone()
    };
    assert_eq!(check(&seq, &other, &b), Err(AuthError::Digest));
    let other_id = AuthKey {
        key_id: 8,
        ..k.clone()
    };
    assert_eq!(check(&seq, &other_id, &b), Err(AuthError::WrongKey));
    assert_eq!(check(&seq, &key(true), &b), Err(AuthError::WrongKey));
}

#[test]
fn keyed_sha1_accepts_the_same_number_and_a_window_ahead() {
    let k = key(false);
    let mut seq = ReceiveSequence::default();
    seq.accept(100);
    // The window is 3 × detect multiplier (3) = 9 ahead.
    assert_eq!(check(&seq, &k, &signed(&k, 100)), Ok(()));
    assert_eq!(check(&seq, &k, &signed(&k, 109)), Ok(()));
    assert_eq!(check(&seq, &k, &signed(&k, 110)), Err(AuthError::Replay));
    assert_eq!(check(&seq, &k, &signed(&k, 99)), Err(AuthError::Replay));
}

#[test]
fn meticulous_keyed_sha1_wants_every_number_to_grow() {
    let k = key(true);
    let mut seq = ReceiveSequence::default();
    seq.accept(100);
    assert_eq!(check(&seq, &k, &signed(&k, 100)), Err(AuthError::Replay));
    assert_eq!(check(&seq, &k, &signed(&k, 101)), Ok(()));
    assert_eq!(check(&seq, &k, &signed(&k, 109)), Ok(()));
    assert_eq!(check(&seq, &k, &signed(&k, 110)), Err(AuthError::Replay));
}

#[test]
fn the_window_wraps_around_and_is_forgotten() {
    let k = key(true);
    let mut seq = ReceiveSequence::default();
    seq.accept(u32::MAX);
    assert_eq!(check(&seq, &k, &signed(&k, 2)), Ok(()));
    assert_eq!(
        check(&seq, &k, &signed(&k, u32::MAX - 1)),
        Err(AuthError::Replay)
    );
    seq.forget();
    assert_eq!(check(&seq, &k, &signed(&k, 12345)), Ok(()));
}

#[test]
fn the_secret_is_not_printed() {
    assert!(!format!("{:?}", key(true)).contains("edge-bfd-key"));
}
