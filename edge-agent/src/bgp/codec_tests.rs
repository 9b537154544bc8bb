//! Codec tests: byte vectors written by hand from the RFCs, round trips,
//! every error path, incomplete input, random and mutated input, packing.

use super::*;

const FOUR: CodecOptions = CodecOptions {
    four_octet_as: true,
};
const TWO: CodecOptions = CodecOptions {
    four_octet_as: false,
};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn with_header(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

fn encoded(message: &Message, options: &CodecOptions) -> Vec<u8> {
    let mut out = Vec::new();
    encode(message, options, &mut out).unwrap();
    out
}

fn decoded(bytes: &[u8], options: &CodecOptions) -> Decoded {
    decode(bytes, options).unwrap().expect("a whole message")
}

fn v4(a: [u8; 4], len: u8) -> Prefix {
    Prefix::V4 {
        addr: Ipv4Addr::from(a),
        len,
    }
}

fn v6(s: &str, len: u8) -> Prefix {
    Prefix::V6 {
        addr: s.parse().unwrap(),
        len,
    }
}

fn sample_open() -> Open {
    Open {
        version: 4,
        my_as: 64500,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::GracefulRestart {
                restarted: true,
                restart_time: 120,
                families: vec![(Family::IPV4_UNICAST, true)],
            },
            Capability::FourOctetAs(64500),
        ],
    }
}

const OPEN_BYTES: &str = "04 fbf4 005a c0000201 1e 02 1c
    01 04 0001 00 01   01 04 0002 00 01   02 00
    40 06 8078 0001 01 80   41 04 0000fbf4";

fn sample_update() -> Update {
    Update {
        withdrawn: vec![],
        attributes: Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(vec![AsSegment::Sequence(vec![64500, 64496])]),
            next_hop: Some(Ipv4Addr::new(198, 51, 100, 2)),
            med: Some(50),
            communities: vec![0xffff_0000, 64500 << 16 | 7],
            large_communities: vec![LargeCommunity {
                global: 64500,
                local1: 1,
                local2: 2,
            }],
            ..Attributes::default()
        },
        nlri: vec![v4([203, 0, 113, 0], 24)],
    }
}

const UPDATE_BYTES: &str = "0000 0039
    40 01 01 00
    40 02 0a 02 02 0000fbf4 0000fbf0
    40 03 04 c6336402
    80 04 04 00000032
    c0 08 08 ffff0000 fbf40007
    c0 20 0c 0000fbf4 00000001 00000002
    18 cb0071";

fn mp_update() -> Update {
    let mut next_hop = "2001:db8:ff::2"
        .parse::<Ipv6Addr>()
        .unwrap()
        .octets()
        .to_vec();
    next_hop.extend_from_slice(&"fe80::2".parse::<Ipv6Addr>().unwrap().octets());
    Update {
        attributes: Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(vec![AsSegment::Sequence(vec![64500])]),
            mp_reach: Some(MpReach {
                family: Family::IPV6_UNICAST,
                next_hop,
                nlri: vec![v6("2001:db8:ac::", 48)],
            }),
            ..Attributes::default()
        },
        ..Update::default()
    }
}

const MP_UPDATE_BYTES: &str = "0000 003c
    40 01 01 00
    40 02 06 02 01 0000fbf4
    80 0e 2c 0002 01 20 20010db800ff00000000000000000002 fe800000000000000000000000000002 00 30 20010db800ac";

#[test]
fn keepalive_bytes() {
    let bytes = hex("ffffffffffffffffffffffffffffffff 0013 04");
    assert_eq!(encoded(&Message::Keepalive, &FOUR), bytes);
    assert_eq!(decoded(&bytes, &FOUR).message, Message::Keepalive);
}

#[test]
fn open_bytes_from_the_rfcs() {
    let bytes = with_header(1, &hex(OPEN_BYTES));
    assert_eq!(encoded(&Message::Open(sample_open()), &FOUR), bytes);
    assert_eq!(decoded(&bytes, &FOUR).message, Message::Open(sample_open()));
}

#[test]
fn update_bytes_from_the_rfcs() {
    let bytes = with_header(2, &hex(UPDATE_BYTES));
    assert_eq!(encoded(&Message::Update(sample_update()), &FOUR), bytes);
    let d = decoded(&bytes, &FOUR);
    assert_eq!(d.message, Message::Update(sample_update()));
    assert!(d.revised.is_empty());
}

#[test]
fn mp_reach_with_a_link_local_next_hop_and_mp_unreach() {
    let bytes = with_header(2, &hex(MP_UPDATE_BYTES));
    assert_eq!(encoded(&Message::Update(mp_update()), &FOUR), bytes);
    assert_eq!(decoded(&bytes, &FOUR).message, Message::Update(mp_update()));
    let unreach = Update {
        attributes: Attributes {
            mp_unreach: Some(MpUnreach {
                family: Family::IPV6_UNICAST,
                withdrawn: vec![v6("2001:db8:ac::", 48)],
            }),
            ..Attributes::default()
        },
        ..Update::default()
    };
    let bytes = with_header(2, &hex("0000 000d 80 0f 0a 0002 01 30 20010db800ac"));
    assert_eq!(encoded(&Message::Update(unreach.clone()), &FOUR), bytes);
    assert_eq!(decoded(&bytes, &FOUR).message, Message::Update(unreach));
}

#[test]
fn notification_with_a_shutdown_message() {
    let n = Notification {
        code: 6,
        subcode: 2,
        data: [&[11u8][..], b"maintenance"].concat(),
    };
    let bytes = with_header(3, &hex("06 02 0b 6d61696e74656e616e6365"));
    assert_eq!(encoded(&Message::Notification(n.clone()), &FOUR), bytes);
    assert_eq!(decoded(&bytes, &FOUR).message, Message::Notification(n));
}

#[test]
fn every_message_round_trips() {
    let mut big_path = Update {
        nlri: vec![v4([198, 18, 0, 0], 15)],
        ..sample_update()
    };
    big_path.attributes.as_path = Some(vec![
        AsSegment::Sequence((0..255).map(|i| 64496 + i % 4).collect()),
        AsSegment::Set(vec![64497, 64498]),
    ]);
    big_path.attributes.other = vec![(0xc0, 99, vec![1, 2, 3]), (0x80, 200, vec![9; 300])];
    let messages = vec![
        Message::Keepalive,
        Message::Open(sample_open()),
        Message::Open(Open {
            capabilities: vec![],
            ..sample_open()
        }),
        Message::Update(sample_update()),
        Message::Update(mp_update()),
        Message::Update(big_path),
        Message::Update(Update {
            withdrawn: vec![
                v4([203, 0, 113, 0], 24),
                v4([0; 4], 0),
                v4([192, 0, 2, 1], 32),
            ],
            ..Update::default()
        }),
        Message::Notification(Notification {
            code: 4,
            subcode: 0,
            data: vec![],
        }),
        Message::RouteRefresh(RouteRefresh {
            family: Family::IPV6_UNICAST,
        }),
    ];
    for options in [FOUR, TWO] {
        for m in &messages {
            let bytes = encoded(m, &options);
            let d = decoded(&bytes, &options);
            assert_eq!(&d.message, m, "round trip with {options:?}");
            assert_eq!(d.len, bytes.len());
        }
    }
}

#[test]
fn as_paths_longer_than_255_split_into_segments() {
    let mut u = sample_update();
    u.attributes.as_path = Some(vec![AsSegment::Sequence(vec![64500; 300])]);
    let Message::Update(back) = decoded(&encoded(&Message::Update(u), &FOUR), &FOUR).message else {
        panic!()
    };
    assert_eq!(
        back.attributes.as_path,
        Some(vec![
            AsSegment::Sequence(vec![64500; 255]),
            AsSegment::Sequence(vec![64500; 45])
        ])
    );
}

#[test]
fn two_octet_sessions_carry_large_asns_in_as4_path() {
    let mut u = sample_update();
    u.attributes.as_path = Some(vec![AsSegment::Sequence(vec![4_200_000_000, 64496])]);
    let bytes = encoded(&Message::Update(u.clone()), &TWO);
    // AS_PATH carries AS_TRANS (0x5ba0) for the large ASN.
    assert!(
        bytes.windows(4).any(|w| w == [0x02, 0x02, 0x5b, 0xa0]),
        "{bytes:02x?}"
    );
    assert_eq!(decoded(&bytes, &TWO).message, Message::Update(u));
}

fn error_of(bytes: &[u8], options: &CodecOptions) -> (u8, u8, Vec<u8>) {
    let e = decode(bytes, options).expect_err("must fail");
    (e.code, e.subcode, e.data)
}

#[test]
fn header_errors() {
    let mut bad_marker = encoded(&Message::Keepalive, &FOUR);
    bad_marker[3] = 0;
    assert_eq!(error_of(&bad_marker, &FOUR), (1, 1, vec![]));
    let mut short = encoded(&Message::Keepalive, &FOUR);
    short[17] = 18;
    assert_eq!(error_of(&short, &FOUR), (1, 2, vec![0, 18]));
    let mut long = encoded(&Message::Keepalive, &FOUR);
    long[16..18].copy_from_slice(&4097u16.to_be_bytes());
    assert_eq!(error_of(&long, &FOUR), (1, 2, vec![0x10, 0x01]));
    let keepalive_with_body = with_header(4, &[0]);
    assert_eq!(error_of(&keepalive_with_body, &FOUR), (1, 2, vec![0, 20]));
    assert_eq!(error_of(&with_header(9, &[]), &FOUR), (1, 3, vec![9]));
}

#[test]
fn open_errors() {
    let open = |patch: &dyn Fn(&mut Vec<u8>)| {
        let mut body = hex(OPEN_BYTES);
        patch(&mut body);
        with_header(1, &body)
    };
    assert_eq!(error_of(&open(&|b| b[0] = 3), &FOUR), (2, 1, vec![0, 4]));
    assert_eq!(
        error_of(&open(&|b| b[3..5].copy_from_slice(&[0, 2])), &FOUR),
        (2, 6, vec![])
    );
    assert_eq!(
        error_of(&open(&|b| b[5..9].copy_from_slice(&[0; 4])), &FOUR),
        (2, 3, vec![])
    );
    assert_eq!(error_of(&open(&|b| b[10] = 1), &FOUR), (2, 4, vec![]));
    assert_eq!(
        error_of(&open(&|b| b[9] = 40), &FOUR).0,
        2,
        "parameters overrunning the OPEN"
    );
    // A malformed known capability is kept as unknown, not fatal.
    let odd = open(&|b| {
        // The route refresh capability (code 2, length 0) becomes a
        // four-octet AS capability of length 0.
        b[24] = 65;
    });
    assert!(decode(&odd, &FOUR).is_ok());
}

#[test]
fn rfc9072_extended_parameters_decode() {
    let caps = hex("01 04 0001 00 01 41 04 0000fbf4");
    let mut body = hex("04 fbf4 005a c0000201 ff ff");
    body.extend_from_slice(&((caps.len() + 3) as u16).to_be_bytes());
    body.push(2);
    body.extend_from_slice(&(caps.len() as u16).to_be_bytes());
    body.extend_from_slice(&caps);
    let Message::Open(open) = decoded(&with_header(1, &body), &FOUR).message else {
        panic!()
    };
    assert_eq!(
        open.capabilities,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::FourOctetAs(64500)
        ]
    );
}

fn update_bytes(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = (withdrawn.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(attrs);
    body.extend_from_slice(nlri);
    with_header(2, &body)
}

const GOOD_ATTRS: &str = "40 01 01 00  40 02 06 02 01 0000fbf4  40 03 04 c6336402";
const NLRI: &str = "18 cb0071";

#[test]
fn update_errors_that_reset_the_session() {
    let mut overrun = update_bytes(&[], &hex(GOOD_ATTRS), &hex(NLRI));
    overrun[19..21].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(error_of(&overrun, &FOUR), (3, 1, vec![]));
    assert_eq!(
        error_of(
            &update_bytes(&[], &hex(GOOD_ATTRS), &hex("21 cb007100 00")),
            &FOUR
        ),
        (3, 10, vec![])
    );
    let unknown_well_known = [hex(GOOD_ATTRS), hex("40 63 01 07")].concat();
    assert_eq!(
        error_of(&update_bytes(&[], &unknown_well_known, &hex(NLRI)), &FOUR),
        (3, 2, hex("40 63 01 07")),
        "RFC 4271 6.3: the data is the attribute's type, length and value"
    );
    let extended = [hex(GOOD_ATTRS), hex("50 63 0001 07")].concat();
    assert_eq!(
        error_of(&update_bytes(&[], &extended, &hex(NLRI)), &FOUR),
        (3, 2, hex("50 63 0001 07"))
    );
    let unreach = hex("80 0f 03 0002 01");
    let twice = [hex(GOOD_ATTRS), unreach.clone(), unreach].concat();
    assert_eq!(error_of(&update_bytes(&[], &twice, &[]), &FOUR).1, 1);
    let bad_hop = [hex(GOOD_ATTRS), hex("80 0e 0a 0002 01 05 0102030405 00")].concat();
    assert_eq!(
        error_of(&update_bytes(&[], &bad_hop, &[]), &FOUR),
        (3, 9, vec![])
    );
}

#[test]
fn rfc7606_treat_as_withdraw_and_attribute_discard() {
    let taw_cases = [
        (
            "bad ORIGIN",
            hex("40 01 01 03  40 02 06 02 01 0000fbf4  40 03 04 c6336402"),
        ),
        (
            "bad AS_PATH",
            hex("40 01 01 00  40 02 06 05 01 0000fbf4  40 03 04 c6336402"),
        ),
        (
            "bad NEXT_HOP",
            hex("40 01 01 00  40 02 06 02 01 0000fbf4  40 03 03 c63364"),
        ),
        (
            "bad MED",
            [hex(GOOD_ATTRS), hex("80 04 03 000000")].concat(),
        ),
        (
            "bad COMMUNITIES",
            [hex(GOOD_ATTRS), hex("c0 08 05 ffff000000")].concat(),
        ),
        (
            "bad LARGE_COMMUNITY",
            [hex(GOOD_ATTRS), hex("c0 20 04 00000001")].concat(),
        ),
        (
            "missing ORIGIN",
            hex("40 02 06 02 01 0000fbf4  40 03 04 c6336402"),
        ),
        (
            "missing NEXT_HOP",
            hex("40 01 01 00  40 02 06 02 01 0000fbf4"),
        ),
        (
            "attribute overrun",
            [hex(GOOD_ATTRS), hex("c0 08 10 ffff0000")].concat(),
        ),
    ];
    for (name, attrs) in taw_cases {
        let d = decoded(&update_bytes(&[], &attrs, &hex(NLRI)), &FOUR);
        assert!(
            d.revised
                .iter()
                .any(|e| e.action == RevisedAction::TreatAsWithdraw),
            "{name}: {:?}",
            d.revised
        );
        let Message::Update(u) = d.message else {
            panic!()
        };
        assert!(
            u.nlri.is_empty() && u.withdrawn == vec![v4([203, 0, 113, 0], 24)],
            "{name}: {u:?}"
        );
        assert_eq!(u.attributes, Attributes::default(), "{name}");
    }
    // MP_REACH routes are withdrawn through MP_UNREACH.
    let mut reach = mp_update();
    reach.attributes.origin = None;
    let d = decoded(&encoded(&Message::Update(reach), &FOUR), &FOUR);
    let Message::Update(u) = d.message else {
        panic!()
    };
    assert_eq!(
        u.attributes.mp_unreach.map(|m| m.withdrawn),
        Some(vec![v6("2001:db8:ac::", 48)])
    );

    let duplicate_med = [hex(GOOD_ATTRS), hex("80 04 04 00000001 80 04 04 00000002")].concat();
    let d = decoded(&update_bytes(&[], &duplicate_med, &hex(NLRI)), &FOUR);
    assert_eq!(
        d.revised.iter().map(|e| e.action).collect::<Vec<_>>(),
        vec![RevisedAction::AttributeDiscard]
    );
    let Message::Update(u) = d.message else {
        panic!()
    };
    assert_eq!(
        (u.attributes.med, u.nlri.len()),
        (Some(1), 1),
        "the first MED stays, the route stays"
    );

    let bad_as4 = [
        hex("40 01 01 00 40 02 04 02 01 5ba0 40 03 04 c6336402"),
        hex("c0 11 03 020100"),
    ]
    .concat();
    let d = decoded(&update_bytes(&[], &bad_as4, &hex(NLRI)), &TWO);
    assert_eq!(d.revised[0].action, RevisedAction::AttributeDiscard);
}

#[test]
fn host_bits_are_cleared_on_decode() {
    let d = decoded(&update_bytes(&hex("18 cb0071"), &[], &[]), &FOUR);
    let Message::Update(u) = d.message else {
        panic!()
    };
    assert_eq!(u.withdrawn, vec![v4([203, 0, 113, 0], 24)]);
    let d = decoded(&update_bytes(&hex("17 cb0071"), &[], &[]), &FOUR);
    let Message::Update(u) = d.message else {
        panic!()
    };
    assert_eq!(
        u.withdrawn,
        vec![v4([203, 0, 112, 0], 23)],
        "the bit beyond /23 is masked"
    );
}

#[test]
fn incomplete_input_asks_for_more() {
    for m in [
        Message::Keepalive,
        Message::Open(sample_open()),
        Message::Update(sample_update()),
        Message::Update(mp_update()),
    ] {
        let bytes = encoded(&m, &FOUR);
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut], &FOUR), Ok(None), "{m:?} cut at {cut}");
        }
        // Two messages back to back decode one at a time.
        let twice = [bytes.clone(), bytes.clone()].concat();
        assert_eq!(decoded(&twice, &FOUR).len, bytes.len());
    }
}

#[test]
fn random_and_mutated_input_never_panics() {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds: Vec<Vec<u8>> = [
        Message::Open(sample_open()),
        Message::Update(sample_update()),
        Message::Update(mp_update()),
    ]
    .iter()
    .map(|m| encoded(m, &FOUR))
    .collect();
    for i in 0..200_000 {
        let bytes = if i % 2 == 0 {
            let len = 19 + (next() % 120) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            b[..16].fill(0xff);
            b[16..18].copy_from_slice(&(len as u16).to_be_bytes());
            b[18] = 1 + (next() % 5) as u8;
            b
        } else {
            let mut b = seeds[(next() % 3) as usize].clone();
            for _ in 0..1 + next() % 4 {
                let at = 18 + (next() as usize) % (b.len() - 18);
                b[at] = next() as u8;
            }
            b
        };
        let options = if i % 3 == 0 { TWO } else { FOUR };
        if let Ok(Some(d)) = decode(&bytes, &options) {
            // Whatever decodes must encode again (a decoded message may not
            // be re-encodable byte for byte, but it must not panic).
            let _ = encode(&d.message, &options, &mut Vec::new());
        }
    }
}

#[test]
fn packing_fits_4096_and_keeps_every_prefix() {
    let attrs = Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(vec![AsSegment::Sequence(vec![64500])]),
        next_hop: Some(Ipv4Addr::new(198, 51, 100, 2)),
        communities: vec![0xffff_0000],
        ..Attributes::default()
    };
    let v4s: Vec<Prefix> = (0..2000u32)
        .map(|i| v4((0x0a00_0000 + (i << 8)).to_be_bytes(), 24))
        .collect();
    let v6s: Vec<Prefix> = (0..2000u16)
        .map(|i| Prefix::V6 {
            addr: Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 0),
            len: 48,
        })
        .collect();
    let all: Vec<Prefix> = v4s.iter().chain(&v6s).copied().collect();
    let hop = "2001:db8:ff::2".parse::<Ipv6Addr>().unwrap().octets();
    let updates = pack_updates(&attrs, &all, &all[..10], &hop, &FOUR).unwrap();
    let (mut announced, mut withdrawn) = (Vec::new(), Vec::new());
    let mut seen_announcement = false;
    for u in &updates {
        let bytes = encoded(&Message::Update(u.clone()), &FOUR);
        assert!(bytes.len() <= MAX_MESSAGE_LEN);
        let Message::Update(back) = decoded(&bytes, &FOUR).message else {
            panic!()
        };
        let is_withdrawal = !back.withdrawn.is_empty() || back.attributes.mp_unreach.is_some();
        assert!(!(is_withdrawal && seen_announcement), "withdrawals first");
        seen_announcement |= !is_withdrawal;
        withdrawn.extend(back.withdrawn);
        announced.extend(back.nlri);
        if let Some(r) = back.attributes.mp_reach {
            announced.extend(r.nlri);
        }
    }
    assert_eq!(announced, all);
    assert_eq!(withdrawn, all[..10].to_vec());
    assert!(updates.len() < 25, "packed into {} messages", updates.len());
    assert_eq!(
        pack_updates(&Attributes::default(), &v4s[..1], &[], &[], &FOUR),
        Err(EncodeError::NoNextHop("IPv4"))
    );
}

// Findings of coverage-guided fuzzing (issue 18), each minimised.

#[test]
fn treat_as_withdraw_keeps_the_withdrawals_of_the_other_family() {
    // Malformed ORIGIN, MP_UNREACH of IPv4 unicast 192.0.2.1/32, MP_REACH
    // of IPv6 unicast 2001:db8:1d::9/128.
    let bytes = hex(
        "ffffffffffffffffffffffffffffffff005802000000414001010740020602010000fbf4\
         800f0800010120c0000201800e260002011020010db800ff00000000000000000002008\
         020010db8001d00000000000000000009",
    );
    let d = decoded(&bytes, &FOUR);
    assert_eq!(d.revised[0].action, RevisedAction::TreatAsWithdraw);
    let Message::Update(update) = d.message else {
        panic!()
    };
    let mut withdrawn: Vec<Prefix> = update.withdrawn_prefixes().copied().collect();
    withdrawn.sort();
    assert_eq!(
        withdrawn,
        [v4([192, 0, 2, 1], 32), v6("2001:db8:1d::9", 128)]
    );
    assert_eq!(update.announced_prefixes().count(), 0);
    // Whichever way round the families are.
    for (reach_family, unreach_family) in [
        (Family::IPV4_UNICAST, Family::IPV6_UNICAST),
        (Family::IPV6_UNICAST, Family::IPV4_UNICAST),
        (Family::IPV6_UNICAST, Family::IPV6_UNICAST),
        (Family::IPV4_UNICAST, Family::IPV4_UNICAST),
    ] {
        let prefix = |f: Family, n: u8| {
            if f == Family::IPV4_UNICAST {
                v4([198, 18, n, 0], 24)
            } else {
                v6(&format!("2001:db8:{n}::"), 48)
            }
        };
        let reach = MpReach {
            family: reach_family,
            next_hop: if reach_family == Family::IPV4_UNICAST {
                vec![192, 0, 2, 1]
            } else {
                "2001:db8:1d::1"
                    .parse::<Ipv6Addr>()
                    .unwrap()
                    .octets()
                    .to_vec()
            },
            nlri: vec![prefix(reach_family, 1)],
        };
        let update = Update {
            withdrawn: vec![v4([198, 18, 9, 0], 24)],
            attributes: Attributes {
                origin: Some(Origin::Igp),
                as_path: Some(vec![]),
                mp_reach: Some(reach),
                mp_unreach: Some(MpUnreach {
                    family: unreach_family,
                    withdrawn: vec![prefix(unreach_family, 2)],
                }),
                ..Attributes::default()
            },
            nlri: vec![],
        };
        let mut bytes = encoded(&Message::Update(update), &FOUR);
        // Break ORIGIN: value 7.
        let at = bytes.windows(3).position(|w| w == [0x40, 1, 1]).unwrap();
        bytes[at + 3] = 7;
        let Message::Update(out) = decoded(&bytes, &FOUR).message else {
            panic!()
        };
        let mut got: Vec<Prefix> = out.withdrawn_prefixes().copied().collect();
        got.sort();
        let mut want = vec![
            v4([198, 18, 9, 0], 24),
            prefix(reach_family, 1),
            prefix(unreach_family, 2),
        ];
        want.sort();
        assert_eq!(got, want, "{reach_family:?} / {unreach_family:?}");
    }
}

#[test]
fn other_safis_are_neither_announced_nor_withdrawn_as_unicast_routes() {
    let multicast = Family { afi: 1, safi: 2 };
    let update = Update {
        attributes: Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(vec![]),
            mp_reach: Some(MpReach {
                family: multicast,
                next_hop: vec![192, 0, 2, 1],
                nlri: vec![v4([198, 18, 0, 0], 24)],
            }),
            mp_unreach: Some(MpUnreach {
                family: Family { afi: 2, safi: 2 },
                withdrawn: vec![v6("2001:db8:ac::", 48)],
            }),
            ..Attributes::default()
        },
        ..Update::default()
    };
    let Message::Update(out) = decoded(&encoded(&Message::Update(update), &FOUR), &FOUR).message
    else {
        panic!()
    };
    assert_eq!(out.announced_prefixes().count(), 0);
    assert_eq!(out.withdrawn_prefixes().count(), 0);
}

#[test]
fn opens_with_254_and_more_bytes_of_capabilities_encode() {
    // 254 and 255 bytes overflowed `param_len + 2`.
    // A four-octet AS capability (6 bytes), then unknown ones up to
    // `caps_len` bytes of capabilities in all.
    let open_with = |caps_len: usize| {
        let mut open = sample_open();
        open.capabilities = vec![Capability::FourOctetAs(64500)];
        let mut left = caps_len - 6;
        while left > 0 {
            let value_len = (left - 2).min(255);
            open.capabilities.push(Capability::Unknown {
                code: 200,
                value: vec![7; value_len],
            });
            left -= value_len + 2;
        }
        open
    };
    for caps_len in [250, 251, 252, 253, 254, 255, 256, 1000, 4061] {
        let open = open_with(caps_len);
        let bytes = encoded(&Message::Open(open.clone()), &FOUR);
        assert_eq!(
            decoded(&bytes, &FOUR).message,
            Message::Open(open),
            "{caps_len} bytes"
        );
        // The classic form while it fits, RFC 9072's beyond.
        assert_eq!(bytes[28] == 255 && bytes[29] == 255, caps_len > 253);
    }
    // 4061 bytes make a 4096-byte OPEN; one more does not fit.
    assert_eq!(encoded(&Message::Open(open_with(4061)), &FOUR).len(), 4096);
    assert!(matches!(
        encode(&Message::Open(open_with(4062)), &FOUR, &mut Vec::new()),
        Err(EncodeError::Oversized(_))
    ));
}

#[test]
fn unknown_attributes_round_trip_whatever_their_order() {
    // Decode kept wire order, encode type order.
    let attrs = [
        hex(GOOD_ATTRS),
        hex("c0 f0 01 01  c0 21 01 02  c0 80 01 03"),
    ]
    .concat();
    let bytes = update_bytes(&[], &attrs, &hex(NLRI));
    let first = decoded(&bytes, &FOUR).message;
    let again = decoded(&encoded(&first, &FOUR), &FOUR).message;
    assert_eq!(first, again);
}
