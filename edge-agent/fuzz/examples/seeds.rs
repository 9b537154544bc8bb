//! Writes the seed corpora (`seeds/<target>/`) from the project's own
//! test vectors: the RFC byte strings of the codec tests, the fixture
//! zone, the example and test configs, BFD packets of every state, and
//! frames of every path of the XDP program. Run from `edge-agent/fuzz`
//! with `cargo +nightly run --example seeds`; the files are committed.

use std::{fs, path::Path};

use edge_agent::bfd::packet::{self, Diag, Packet, State};
use edge_fuzz::fixtures::ZONE;
use hickory_proto::{
    op::{Edns, Message, MessageType, Query, ResponseCode},
    rr::{
        Name, RData, Record, RecordType,
        rdata::{A, AAAA, SRV},
    },
};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn with_header(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// The codec tests' messages (RFC 4271, 4760, 6793, 8092, 8203 forms)
/// and the issue 18 reproducer.
fn bgp_messages() -> Vec<Vec<u8>> {
    vec![
        with_header(
            1,
            &hex(
                "04 fbf4 005a c0000201 1e 02 1c 01 04 0001 00 01 01 04 0002 00 01 02 00
                  40 06 8078 0001 01 80 41 04 0000fbf4",
            ),
        ),
        with_header(
            2,
            &hex(
                "0000 0039 40 01 01 00 40 02 0a 02 02 0000fbf4 0000fbf0 40 03 04 c6336402
                  80 04 04 00000032 c0 08 08 ffff0000 fbf40007
                  c0 20 0c 0000fbf4 00000001 00000002 18 cb0071",
            ),
        ),
        with_header(
            2,
            &hex("0000 003c 40 01 01 00 40 02 06 02 01 0000fbf4
                  80 0e 2c 0002 01 20 20010db800ff00000000000000000002
                  fe800000000000000000000000000002 00 30 20010db800ac"),
        ),
        with_header(2, &hex("0004 18 cb0071 0006 80 0f 03 0002 01")),
        with_header(2, &hex("0000 0000")),
        with_header(3, &hex("06 02 0b 6d61696e74656e616e6365")),
        with_header(4, &[]),
        with_header(5, &hex("0001 00 01")),
        hex(
            "ffffffffffffffffffffffffffffffff005802000000414001010740020602010000fbf4
             800f0800010120c0000201800e260002011020010db800ff00000000000000000002008
             020010db8001d00000000000000000009",
        ),
    ]
}

fn dns_queries() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (name, rtype, edns) in [
        ("www.cdn.test.", RecordType::A, false),
        ("www.cdn.test.", RecordType::AAAA, true),
        ("cdn.test.", RecordType::SOA, true),
        ("cdn.test.", RecordType::NS, false),
        ("chain.cdn.test.", RecordType::A, true),
        ("nope.cdn.test.", RecordType::TXT, false),
        ("deep.cdn.test.", RecordType::A, false),
        ("big.cdn.test.", RecordType::TXT, true),
        ("cdn.test.", RecordType::CAA, false),
        ("other.test.", RecordType::A, false),
        ("cdn.test.", RecordType::AXFR, false),
    ] {
        let mut m = Message::new();
        m.set_id(0x1234)
            .set_recursion_desired(true)
            .add_query(Query::query(Name::from_ascii(name).expect("name"), rtype));
        if edns {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            m.set_edns(e);
        }
        out.push(m.to_vec().expect("encodes"));
    }
    out
}

/// SRV discovery responses: candidates with addresses in the additional
/// section, one without, NXDOMAIN, a truncated one.
fn srv_responses() -> Vec<Vec<u8>> {
    let owner = Name::from_ascii("_edge-overlay._tcp.cdn.test.").expect("name");
    let mut out = Vec::new();
    for variant in 0..4 {
        let mut m = Message::new();
        m.set_id(0x4242)
            .set_message_type(MessageType::Response)
            .set_recursion_desired(true)
            .add_query(Query::query(owner.clone(), RecordType::SRV));
        match variant {
            2 => {
                m.set_response_code(ResponseCode::NXDomain);
            }
            3 => {
                m.set_truncated(true);
            }
            _ => {}
        }
        for (i, host) in ["pop-b", "pop-c"].iter().enumerate() {
            let target = Name::from_ascii(format!("{host}.cdn.test.")).expect("name");
            m.add_answer(Record::from_rdata(
                owner.clone(),
                60,
                RData::SRV(SRV::new(10, 5, 4179, target.clone())),
            ));
            if variant == 0 || i == 0 {
                m.add_additional(Record::from_rdata(
                    target.clone(),
                    60,
                    RData::A(A::new(192, 0, 2, 10 + i as u8)),
                ));
                m.add_additional(Record::from_rdata(
                    target,
                    60,
                    RData::AAAA(AAAA::new(0x2001, 0xdb8, 0x1d, 0, 0, 0, 0, 10 + i as u16)),
                ));
            }
        }
        out.push(m.to_vec().expect("encodes"));
    }
    out
}

fn bfd_packets() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (state, your) in [
        (State::Down, 0),
        (State::Init, 0x1001),
        (State::Up, 0x1001),
        (State::AdminDown, 0x1001),
        (State::Up, 0x1002),
    ] {
        let p = Packet {
            diag: Diag::None,
            state,
            poll: false,
            final_: false,
            cpi: false,
            demand: false,
            detect_mult: 3,
            my_disc: 0x2001,
            your_disc: your,
            desired_min_tx: 50_000,
            required_min_rx: 50_000,
            required_min_echo_rx: 0,
            auth: None,
        };
        let mut bytes = Vec::new();
        packet::encode(&p, &mut bytes);
        out.push(bytes);
    }
    out
}

fn write(dir: &Path, target: &str, seeds: impl IntoIterator<Item = Vec<u8>>) {
    let dir = dir.join(target);
    fs::create_dir_all(&dir).expect("create the seed directory");
    for (i, seed) in seeds.into_iter().enumerate() {
        fs::write(dir.join(format!("seed-{i:03}")), seed).expect("write a seed");
    }
}

fn main() {
    let out = Path::new("seeds");
    let messages = bgp_messages();
    // Targets whose first byte picks the options: four-octet ASNs (1).
    let with_choice = |m: &Vec<u8>| [&[1u8][..], m].concat();
    write(out, "bgp_decode", messages.iter().map(with_choice));
    write(out, "bgp_roundtrip", messages.iter().map(with_choice));
    // Reads: a length byte, a time byte, then the bytes.
    write(
        out,
        "bgp_session",
        messages.iter().map(|m| {
            let mut s = vec![(m.len().min(256) - 1) as u8, 1];
            s.extend_from_slice(m);
            s
        }),
    );
    write(
        out,
        "overlay_import",
        [messages[1..4].concat(), messages[2].clone()],
    );
    write(
        out,
        "dns_answer",
        dns_queries()
            .into_iter()
            .flat_map(|q| [[&[0u8][..], &q].concat(), [&[1u8][..], &q].concat()]),
    );
    write(out, "srv_discovery", srv_responses());
    write(
        out,
        "zone_text",
        ZONE.lines()
            .map(|l| format!("{l}\n").into_bytes())
            .chain([ZONE.as_bytes().to_vec()]),
    );
    let mut configs = vec![fs::read("../../docs/edge.example.toml").expect("the example config")];
    for entry in fs::read_dir("../tests/configs").expect("the test configs") {
        configs.push(fs::read(entry.expect("an entry").path()).expect("a config"));
    }
    write(out, "config", configs);
    write(
        out,
        "bfd",
        bfd_packets().into_iter().map(|p| {
            let mut s = vec![0u8, 5, p.len() as u8];
            s.extend_from_slice(&p);
            s
        }),
    );
    // Frames: every combination of the first choices, nothing cut.
    let mut frames = Vec::new();
    for kind in [2u8, 3] {
        for v6 in 0..2u8 {
            for dst in 0..11u8 {
                for proto in 0..7u8 {
                    frames.push(vec![
                        0, kind, v6, 0, dst, proto, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                        0, 0, 0, 0, 0, 0, 0, 0, 0, 255,
                    ]);
                }
            }
        }
    }
    write(out, "xdp_frames", frames);
    eprintln!("seeds written under {}", out.display());
}
