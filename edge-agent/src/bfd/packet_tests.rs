use super::*;
use crate::net::random::Seeded;

fn down() -> Packet {
    Packet {
        diag: Diag::None,
        state: State::Down,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        detect_mult: 3,
        my_disc: 0x0102_0304,
        your_disc: 0,
        desired_min_tx: 1_000_000,
        required_min_rx: 100_000,
        required_min_echo_rx: 0,
        auth: None,
    }
}

fn bytes(p: &Packet) -> Vec<u8> {
    let mut out = Vec::new();
    encode(p, &mut out);
    out
}

#[test]
fn encodes_the_rfc_layout_byte_for_byte() {
    let p = Packet {
        diag: Diag::DetectionTimeExpired,
        poll: true,
        ..down()
    };
    assert_eq!(
        bytes(&p),
        [
            0x21, 0x60, 3, 24, 1, 2, 3, 4, 0, 0, 0, 0, 0x00, 0x0f, 0x42, 0x40, 0x00, 0x01, 0x86,
            0xa0, 0, 0, 0, 0
        ]
    );
}

#[test]
fn every_field_survives_a_round_trip() {
    for state in [State::AdminDown, State::Down, State::Init, State::Up] {
        for code in 0..32 {
            let p = Packet {
                state,
                diag: Diag::from_code(code),
                final_: code % 2 == 0,
                demand: code % 3 == 0,
                cpi: code % 5 == 0,
                your_disc: 0xdead_beef,
                required_min_echo_rx: 7,
                auth: (code % 4 == 0).then_some(AuthSection {
                    kind: auth_type::METICULOUS_KEYED_SHA1,
                    key_id: code,
                    sequence: 0xffff_fff0u32.wrapping_add(u32::from(code)),
                }),
                ..down()
            };
            assert_eq!(decode(&bytes(&p)), Ok(p));
            assert_eq!(Diag::from_code(code).code(), code);
        }
    }
}

#[test]
fn malformed_packets_are_refused_with_their_reason() {
    let good = bytes(&down());
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        decode(&b)
    };
    assert_eq!(decode(&good[..23]), Err(Malformed::Truncated));
    assert_eq!(decode(&[]), Err(Malformed::Truncated));
    assert_eq!(with(&|b| b[0] = 0x40), Err(Malformed::Version(2)));
    assert_eq!(with(&|b| b[0] = 0x00), Err(Malformed::Version(0)));
    assert_eq!(with(&|b| b[3] = 23), Err(Malformed::Length(23)));
    assert_eq!(with(&|b| b[3] = 25), Err(Malformed::Truncated));
    assert_eq!(with(&|b| b[2] = 0), Err(Malformed::ZeroDetectMult));
    assert_eq!(with(&|b| b[1] |= 0x01), Err(Malformed::Multipoint));
    assert_eq!(with(&|b| b[4..8].fill(0)), Err(Malformed::ZeroMyDisc));
    // The A bit needs at least 26 octets, and a section that fits.
    assert_eq!(with(&|b| b[1] |= 0x04), Err(Malformed::Length(24)));
    assert_eq!(
        with(&|b| {
            b[1] |= 0x04;
            b[3] = 26;
            b.extend_from_slice(&[auth_type::KEYED_SHA1, 2]);
        }),
        Err(Malformed::AuthLength)
    );
    // A SHA1 section one octet short.
    let mut sha = bytes(&Packet {
        auth: Some(AuthSection {
            kind: auth_type::KEYED_SHA1,
            key_id: 1,
            sequence: 1,
        }),
        ..down()
    });
    sha[3] -= 1;
    sha[25] -= 1;
    assert_eq!(decode(&sha), Err(Malformed::AuthLength));
    // Auth Len disagreeing with the packet's length.
    sha[25] += 1;
    assert_eq!(decode(&sha), Err(Malformed::AuthLength));
}

#[test]
fn bytes_past_the_length_field_are_ignored() {
    let mut b = bytes(&down());
    b.extend_from_slice(&[0xff; 8]);
    assert_eq!(decode(&b), Ok(down()));
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut rng = Seeded::new(5880);
    let good = bytes(&Packet {
        auth: Some(AuthSection {
            kind: auth_type::KEYED_SHA1,
            key_id: 1,
            sequence: 9,
        }),
        ..down()
    });
    for _ in 0..200_000 {
        let mut b = good.clone();
        for _ in 0..(rng.next_u64() % 4) {
            let at = (rng.next_u64() as usize) % b.len();
            b[at] = rng.next_u64() as u8;
        }
        b.truncate((rng.next_u64() as usize) % (b.len() + 1));
        let _ = decode(&b);
    }
}
