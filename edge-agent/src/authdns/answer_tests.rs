use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{
        DNSClass, Name, RData, RecordType,
        rdata::opt::{EdnsCode, EdnsOption},
    },
};

use edge_tests::rng::Rng;

use super::*;
use crate::authdns::zone::{Zone, ZoneSet, tests::ZONE};

fn zones() -> ZoneSet {
    let mut text = ZONE.to_owned();
    // A name whose TXT RRset does not fit 1232 bytes.
    for i in 0..12 {
        text.push_str(&format!("big TXT \"{}\"\n", format!("{i:02}").repeat(60)));
    }
    // Enough NS glue to overflow 512 bytes while the answer fits.
    let other = "@ SOA ns hostmaster 7 7200 3600 1209600 60\n".to_owned()
        + &(0..10)
            .map(|i| {
                format!(
                    "@ NS nameserver-number-{i}\nnameserver-number-{i} A 192.0.2.{i}\nnameserver-number-{i} AAAA 2001:db8::{i}\n"
                )
            })
            .collect::<String>()
        + "loop1 CNAME loop2\nloop2 CNAME loop1\ndangling CNAME missing\n";
    ZoneSet::new(vec![
        Zone::parse("cdn.test", &text, 300, None).unwrap(),
        Zone::parse("glue.test", &other, 300, None).unwrap(),
    ])
    .unwrap()
}

fn settings() -> Settings {
    Settings {
        udp_payload: 1232,
        nsid: Some(b"pop-a".to_vec()),
    }
}

fn query(name: &str, rtype: RecordType) -> Message {
    let mut m = Message::new();
    m.set_id(0x5eed)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m
}

fn with_edns(mut m: Message, size: u16) -> Message {
    let mut edns = Edns::new();
    edns.set_max_payload(size);
    m.set_edns(edns);
    m
}

fn ask_bytes(bytes: &[u8], transport: Transport) -> (Message, Reply) {
    let reply = respond(&zones(), &settings(), bytes, transport).expect("a response");
    let message = Message::from_vec(&reply.bytes).expect("the response decodes");
    (message, reply)
}

fn ask(m: &Message, transport: Transport) -> Message {
    let (response, reply) = ask_bytes(&m.to_vec().unwrap(), transport);
    assert_eq!(response.id(), m.id());
    assert_eq!(response.message_type(), MessageType::Response);
    assert!(!response.recursion_available());
    assert_eq!(response.recursion_desired(), m.recursion_desired());
    assert_eq!(response.queries(), m.queries());
    if transport == Transport::Udp {
        assert!(reply.bytes.len() <= 1232, "{} bytes", reply.bytes.len());
    }
    response
}

fn data(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {} {} {}", r.name(), r.ttl(), r.record_type(), r.data()))
        .collect()
}

#[test]
fn every_record_type_is_answered_with_its_rrset() {
    let cases: &[(&str, RecordType, &[&str])] = &[
        (
            "www.cdn.test.",
            RecordType::A,
            &["www.cdn.test. 300 A 203.0.113.10"],
        ),
        (
            "www.cdn.test.",
            RecordType::AAAA,
            &["www.cdn.test. 300 AAAA 2001:db8:ac::10"],
        ),
        (
            "txt.cdn.test.",
            RecordType::TXT,
            &["txt.cdn.test. 300 TXT v=edge1second string"],
        ),
        (
            "cdn.test.",
            RecordType::SOA,
            &[
                "cdn.test. 3600 SOA ns1.cdn.test. hostmaster.cdn.test. 2026112201 7200 3600 1209600 300",
            ],
        ),
        (
            "cdn.test.",
            RecordType::NS,
            &[
                "cdn.test. 300 NS ns1.cdn.test.",
                "cdn.test. 300 NS ns2.cdn.test.",
            ],
        ),
        (
            "alias.cdn.test.",
            RecordType::CNAME,
            &["alias.cdn.test. 300 CNAME www.cdn.test."],
        ),
        (
            "mail.cdn.test.",
            RecordType::MX,
            &["mail.cdn.test. 300 MX 10 mx.cdn.test."],
        ),
        (
            "_sip._udp.cdn.test.",
            RecordType::SRV,
            &["_sip._udp.cdn.test. 300 SRV 10 5 5060 www.cdn.test."],
        ),
        (
            "cdn.test.",
            RecordType::CAA,
            &["cdn.test. 300 CAA 0 issue \"ca.example\""],
        ),
    ];
    for transport in [Transport::Udp, Transport::Tcp] {
        for (name, rtype, want) in cases {
            let r = ask(&with_edns(query(name, *rtype), 1232), transport);
            assert_eq!(r.response_code(), ResponseCode::NoError, "{name} {rtype}");
            assert!(r.authoritative(), "{name} {rtype}");
            assert_eq!(data(r.answers()), *want, "{name} {rtype}");
            assert!(r.name_servers().is_empty(), "{name} {rtype}");
        }
    }
}

#[test]
fn glue_comes_with_ns_mx_and_srv_answers() {
    let r = ask(&query("cdn.test.", RecordType::NS), Transport::Udp);
    assert_eq!(
        data(r.additionals()),
        [
            "ns1.cdn.test. 300 A 203.0.113.53",
            "ns1.cdn.test. 300 AAAA 2001:db8:ac::53",
            "ns2.cdn.test. 300 A 203.0.113.54"
        ]
    );
    let r = ask(&query("mail.cdn.test.", RecordType::MX), Transport::Udp);
    assert_eq!(data(r.additionals()), ["mx.cdn.test. 300 A 203.0.113.25"]);
    let r = ask(
        &query("_sip._udp.cdn.test.", RecordType::SRV),
        Transport::Udp,
    );
    assert_eq!(data(r.additionals()).len(), 2);
}

#[test]
fn names_are_case_insensitive_and_the_question_case_is_kept() {
    let r = ask(&query("WwW.cDn.TeSt.", RecordType::A), Transport::Udp);
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert_eq!(r.answers().len(), 1);
    // The owner is written as asked (0x20 randomization).
    assert_eq!(r.answers()[0].name().to_string(), "WwW.cDn.TeSt.");
    assert_eq!(r.queries()[0].name().to_string(), "WwW.cDn.TeSt.");
}

#[test]
fn cname_chains_are_followed_inside_the_zones() {
    let r = ask(&query("chain.cdn.test.", RecordType::A), Transport::Udp);
    assert_eq!(
        data(r.answers()),
        [
            "chain.cdn.test. 300 CNAME alias.cdn.test.",
            "alias.cdn.test. 300 CNAME www.cdn.test.",
            "www.cdn.test. 300 A 203.0.113.10"
        ]
    );
    // Outside our zones: the CNAME alone, the resolver follows it.
    let r = ask(&query("away.cdn.test.", RecordType::A), Transport::Udp);
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert_eq!(data(r.answers()), ["away.cdn.test. 300 CNAME www.example."]);
    // To a name that does not exist: NXDOMAIN for the last name (RFC 6604).
    let r = ask(&query("dangling.glue.test.", RecordType::A), Transport::Udp);
    assert_eq!(r.response_code(), ResponseCode::NXDomain);
    assert_eq!(r.answers().len(), 1);
    assert_eq!(r.name_servers()[0].record_type(), RecordType::SOA);
    // A loop ends after the bounded number of steps.
    let r = ask(&query("loop1.glue.test.", RecordType::A), Transport::Udp);
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert_eq!(r.answers().len(), 8);
    // The target exists, but not with that type: NODATA after the CNAME.
    let r = ask(&query("alias.cdn.test.", RecordType::MX), Transport::Udp);
    assert_eq!(r.answers().len(), 1);
    assert_eq!(r.name_servers().len(), 1);
}

#[test]
fn nodata_and_nxdomain_carry_the_soa_with_the_negative_ttl() {
    let cases = [
        ("www.cdn.test.", RecordType::TXT, ResponseCode::NoError),
        ("b.c.cdn.test.", RecordType::A, ResponseCode::NoError),
        ("nope.cdn.test.", RecordType::A, ResponseCode::NXDomain),
        (
            "deeper.nope.cdn.test.",
            RecordType::AAAA,
            ResponseCode::NXDomain,
        ),
    ];
    for transport in [Transport::Udp, Transport::Tcp] {
        for (name, rtype, rcode) in cases {
            let r = ask(&query(name, rtype), transport);
            assert_eq!(r.response_code(), rcode, "{name}");
            assert!(r.authoritative());
            assert!(r.answers().is_empty());
            assert_eq!(
                data(r.name_servers()),
                [
                    "cdn.test. 300 SOA ns1.cdn.test. hostmaster.cdn.test. 2026112201 7200 3600 1209600 300"
                ],
                "{name}"
            );
        }
    }
}

#[test]
fn outside_the_zones_other_classes_and_transfers_are_refused() {
    let mut chaos = query("version.bind.", RecordType::TXT);
    chaos.queries_mut()[0].set_query_class(DNSClass::CH);
    let mut chaos_in_zone = query("www.cdn.test.", RecordType::A);
    chaos_in_zone.queries_mut()[0].set_query_class(DNSClass::CH);
    for m in [
        query("www.example.", RecordType::A),
        query("test.", RecordType::SOA),
        query(".", RecordType::NS),
        chaos,
        chaos_in_zone,
        query("cdn.test.", RecordType::AXFR),
        query("cdn.test.", RecordType::IXFR),
    ] {
        let r = ask(&m, Transport::Tcp);
        assert_eq!(r.response_code(), ResponseCode::Refused, "{m:?}");
        assert!(!r.authoritative());
        assert!(r.answers().is_empty() && r.name_servers().is_empty());
    }
}

#[test]
fn any_gets_one_rrset_over_udp_and_all_over_tcp() {
    let r = ask(&query("www.cdn.test.", RecordType::ANY), Transport::Udp);
    assert_eq!(data(r.answers()), ["www.cdn.test. 300 A 203.0.113.10"]);
    let r = ask(&query("www.cdn.test.", RecordType::ANY), Transport::Tcp);
    assert_eq!(r.answers().len(), 2);
}

#[test]
fn edns_sizes_truncation_and_tcp() {
    let big = |size: Option<u16>, transport| {
        let q = query("big.cdn.test.", RecordType::TXT);
        let q = match size {
            Some(s) => with_edns(q, s),
            None => q,
        };
        let (r, reply) = ask_bytes(&q.to_vec().unwrap(), transport);
        (r, reply.bytes.len())
    };
    // Without EDNS: 512 bytes at most, truncated with nothing but the
    // question.
    let (r, len) = big(None, Transport::Udp);
    assert!(
        r.truncated() && r.answers().is_empty() && len <= 512,
        "{len}"
    );
    assert!(r.extensions().is_none());
    // A client offering 4096 gets at most our 1232, with our size in OPT.
    let (r, len) = big(Some(4096), Transport::Udp);
    assert!(
        r.truncated() && r.answers().is_empty() && len <= 1232,
        "{len}"
    );
    assert_eq!(r.max_payload(), 1232);
    // A client offering less than 512 gets 512.
    let (_, len) = big(Some(100), Transport::Udp);
    assert!(len <= 512);
    // TCP: everything.
    let (r, len) = big(Some(1232), Transport::Tcp);
    assert!(
        !r.truncated() && r.answers().len() == 12 && len > 1232,
        "{len}"
    );
    // The additional section goes first: the answer fits, TC stays 0.
    let full = ask(&query("glue.test.", RecordType::NS), Transport::Tcp);
    assert_eq!(full.additionals().len(), 20);
    assert!(full.to_vec().unwrap().len() > 512);
    let r = ask(&query("glue.test.", RecordType::NS), Transport::Udp);
    assert!(!r.truncated());
    assert_eq!(r.answers().len(), 10);
    assert!(r.additionals().is_empty());
}

#[test]
fn badvers_for_edns_versions_above_zero() {
    let mut q = with_edns(query("www.cdn.test.", RecordType::A), 1232);
    q.extensions_mut().as_mut().unwrap().set_version(1);
    let r = ask(&q, Transport::Udp);
    // BADVERS and BADSIG share the value 16; hickory decodes it as BADSIG.
    assert_eq!(u16::from(r.response_code()), 16);
    assert_eq!(r.extensions().as_ref().unwrap().version(), 0);
    assert!(r.answers().is_empty());
}

#[test]
fn nsid_is_sent_only_when_asked_and_configured() {
    let mut q = with_edns(query("www.cdn.test.", RecordType::A), 1232);
    q.extensions_mut()
        .as_mut()
        .unwrap()
        .options_mut()
        .insert(EdnsOption::Unknown(u16::from(EdnsCode::NSID), Vec::new()));
    let r = ask(&q, Transport::Udp);
    assert_eq!(
        r.extensions().as_ref().unwrap().option(EdnsCode::NSID),
        Some(&EdnsOption::Unknown(3, b"pop-a".to_vec()))
    );
    let plain = ask(
        &with_edns(query("www.cdn.test.", RecordType::A), 1232),
        Transport::Udp,
    );
    assert!(
        plain
            .extensions()
            .as_ref()
            .unwrap()
            .option(EdnsCode::NSID)
            .is_none()
    );
    let off = Settings {
        nsid: None,
        ..settings()
    };
    let reply = respond(&zones(), &off, &q.to_vec().unwrap(), Transport::Udp).unwrap();
    let r = Message::from_vec(&reply.bytes).unwrap();
    assert!(
        r.extensions()
            .as_ref()
            .unwrap()
            .option(EdnsCode::NSID)
            .is_none()
    );
    // Apart from NSID, two nodes give byte-identical answers.
    let other = Settings {
        nsid: Some(b"pop-b".to_vec()),
        ..settings()
    };
    let a = respond(&zones(), &settings(), &plain_bytes(), Transport::Udp).unwrap();
    let b = respond(&zones(), &other, &plain_bytes(), Transport::Udp).unwrap();
    assert_eq!(a, b);
}

fn plain_bytes() -> Vec<u8> {
    with_edns(query("www.cdn.test.", RecordType::A), 1232)
        .to_vec()
        .unwrap()
}

#[test]
fn other_opcodes_get_notimp() {
    for opcode in [OpCode::Notify, OpCode::Update, OpCode::Status] {
        let mut q = query("cdn.test.", RecordType::SOA);
        q.set_op_code(opcode);
        let reply = respond(&zones(), &settings(), &q.to_vec().unwrap(), Transport::Udp).unwrap();
        assert_eq!(reply.outcome, Outcome::NotImp);
        let r = Message::from_vec(&reply.bytes).unwrap();
        assert_eq!(r.response_code(), ResponseCode::NotImp);
        assert_eq!(r.op_code(), opcode);
        assert_eq!(r.id(), 0x5eed);
        assert!(!r.authoritative());
        // The question echoed, nothing else.
        assert_eq!(r.queries(), q.queries());
        assert_eq!(r.answers().len() + r.name_servers().len(), 0);
    }
    // An unassigned opcode, and one in a message that does not decode
    // (the header alone then).
    let mut bytes = query("cdn.test.", RecordType::SOA).to_vec().unwrap();
    bytes[2] |= 15 << 3;
    let reply = respond(&zones(), &settings(), &bytes, Transport::Udp).unwrap();
    assert_eq!(reply.outcome, Outcome::NotImp);
    assert_eq!(reply.bytes[2] >> 3 & 0x0f, 15);
    bytes.truncate(20);
    let reply = respond(&zones(), &settings(), &bytes, Transport::Udp).unwrap();
    assert_eq!(reply.outcome, Outcome::NotImp);
    assert_eq!(reply.bytes.len(), 12);
    assert_eq!(reply.bytes[2] >> 3 & 0x0f, 15);
}

#[test]
fn edns_queries_get_opt_back_whatever_the_response() {
    let mut notify = with_edns(query("cdn.test.", RecordType::SOA), 1232);
    notify.set_op_code(OpCode::Notify);
    let mut empty = with_edns(query("cdn.test.", RecordType::SOA), 1232);
    empty.take_queries();
    let mut dnssec = with_edns(query("www.cdn.test.", RecordType::A), 1232);
    dnssec
        .extensions_mut()
        .as_mut()
        .unwrap()
        .set_dnssec_ok(true);
    for (q, outcome) in [
        (notify, Outcome::NotImp),
        (empty, Outcome::FormErr),
        (dnssec, Outcome::Answer),
    ] {
        let reply = respond(&zones(), &settings(), &q.to_vec().unwrap(), Transport::Udp).unwrap();
        assert_eq!(reply.outcome, outcome);
        let r = Message::from_vec(&reply.bytes).unwrap();
        let edns = r.extensions().as_ref().expect("an OPT record");
        assert_eq!(edns.max_payload(), 1232);
        // The DO bit is copied (RFC 3225).
        assert_eq!(
            edns.flags().dnssec_ok,
            q.extensions().as_ref().unwrap().flags().dnssec_ok
        );
    }
}

/// A query's bytes: header with `qdcount`, then `question`.
fn raw(qdcount: u16, question: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0xab, 0xcd, 0x01, 0x00];
    bytes.extend_from_slice(&qdcount.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(question);
    bytes
}

fn www_question() -> Vec<u8> {
    let mut q = b"\x03www\x03cdn\x04test\x00".to_vec();
    q.extend_from_slice(&[0, 1, 0, 1]);
    q
}

fn formerr(bytes: &[u8]) {
    let reply = respond(&zones(), &settings(), bytes, Transport::Udp)
        .unwrap_or_else(|| panic!("silence for {bytes:02x?}"));
    assert_eq!(reply.outcome, Outcome::FormErr, "{bytes:02x?}");
    assert_eq!(&reply.bytes[..2], &bytes[..2]);
    assert_eq!(reply.bytes[2] & 0x80, 0x80);
    assert_eq!(reply.bytes[3] & 0x0f, 1);
}

#[test]
fn malformed_queries_get_formerr_or_silence() {
    // Shorter than a header, and responses: silence.
    for bytes in [&[][..], &[0xab], &[0xab, 0xcd, 0x01, 0x00, 0x00]] {
        assert_eq!(respond(&zones(), &settings(), bytes, Transport::Udp), None);
    }
    let mut response = raw(1, &www_question());
    response[2] |= 0x80;
    assert_eq!(
        respond(&zones(), &settings(), &response, Transport::Udp),
        None
    );
    // QDCOUNT 0 and 2.
    formerr(&raw(0, &[]));
    let mut two = www_question();
    two.extend_from_slice(&www_question());
    formerr(&raw(2, &two));
    // The count says more than there is.
    formerr(&raw(1, &[]));
    formerr(&raw(1, &www_question()[..7]));
    // A compression pointer to itself, and two pointing at each other.
    formerr(&raw(1, &[0xc0, 12, 0, 1, 0, 1]));
    formerr(&raw(1, &[0x01, b'a', 0xc0, 12, 0, 1, 0, 1]));
    // A forward pointer.
    formerr(&raw(1, &[0xc0, 20, 0, 1, 0, 1, 0, 0, 1, b'a', 0]));
    // A name over 255 bytes.
    let mut long = Vec::new();
    for _ in 0..5 {
        long.push(63);
        long.extend_from_slice(&[b'a'; 63]);
    }
    long.extend_from_slice(&[0, 0, 1, 0, 1]);
    formerr(&raw(1, &long));
    // A label length with the reserved bits 01 and 10.
    formerr(&raw(1, &[0x41, b'a', 0, 0, 1, 0, 1]));
    formerr(&raw(1, &[0x81, b'a', 0, 0, 1, 0, 1]));
    // Records in the answer section of a query.
    let mut q = query("www.cdn.test.", RecordType::A);
    q.add_answer(hickory_proto::rr::Record::from_rdata(
        Name::from_ascii("www.cdn.test.").unwrap(),
        1,
        RData::A("192.0.2.1".parse().unwrap()),
    ));
    formerr(&q.to_vec().unwrap());
    // Two OPT records.
    let mut bytes = with_edns(query("www.cdn.test.", RecordType::A), 1232)
        .to_vec()
        .unwrap();
    bytes[11] = 2;
    bytes.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
    formerr(&bytes);
    // OPT as the question's type.
    let reply = respond(
        &zones(),
        &settings(),
        &query("www.cdn.test.", RecordType::OPT).to_vec().unwrap(),
        Transport::Udp,
    )
    .unwrap();
    assert_eq!(reply.outcome, Outcome::FormErr);
}

#[test]
fn a_slip_is_empty_truncated_and_no_bigger_than_the_query() {
    for q in [
        query("big.cdn.test.", RecordType::TXT),
        with_edns(query("big.cdn.test.", RecordType::TXT), 4096),
        query("nope.cdn.test.", RecordType::A),
    ] {
        let bytes = q.to_vec().unwrap();
        let reply = respond_truncated(&zones(), &settings(), &bytes).unwrap();
        let r = Message::from_vec(&reply.bytes).unwrap();
        assert!(r.truncated());
        // The flags of the full response: authoritative.
        assert!(r.authoritative());
        assert!(r.answers().is_empty() && r.name_servers().is_empty());
        assert!(
            reply.bytes.len() <= bytes.len(),
            "{} > {}",
            reply.bytes.len(),
            bytes.len()
        );
        assert_eq!(r.queries(), q.queries());
    }
}

/// What must hold for any input at all.
fn check_any(input: &[u8], zones: &ZoneSet, settings: &Settings) {
    for transport in [Transport::Udp, Transport::Tcp] {
        let Some(reply) = respond(zones, settings, input, transport) else {
            // Silence only for what has no header or is not a query.
            assert!(input.len() < 12 || input[2] & 0x80 != 0, "{input:02x?}");
            continue;
        };
        assert_eq!(&reply.bytes[..2], &input[..2], "the ID is echoed");
        assert_eq!(reply.bytes[2] & 0x80, 0x80, "QR is set");
        if transport == Transport::Udp {
            assert!(reply.bytes.len() <= 1232, "{input:02x?}");
        }
        let response = Message::from_vec(&reply.bytes)
            .unwrap_or_else(|e| panic!("{input:02x?}: the response does not decode: {e}"));
        match reply.outcome {
            Outcome::Answer => assert!(!response.answers().is_empty() || response.truncated()),
            Outcome::NoData | Outcome::NxDomain => {
                assert!(response.authoritative());
                assert!(response.answers().len() <= MAX_CHAIN);
            }
            _ => {}
        }
    }
}

#[test]
fn no_input_makes_the_request_path_panic() {
    let zones = zones();
    let settings = settings();
    let mut rng = Rng::new(0x00ed_6e0d_15ee_d5ee);
    let names = [
        "www.cdn.test.",
        "WWW.CDN.TEST.",
        "chain.cdn.test.",
        "big.cdn.test.",
        "glue.test.",
        "nope.cdn.test.",
        "b.c.cdn.test.",
        "loop1.glue.test.",
        "example.",
    ];
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::TXT,
        RecordType::NS,
        RecordType::ANY,
        RecordType::SOA,
        RecordType::CNAME,
    ];
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for name in names {
        for rtype in types {
            seeds.push(query(name, rtype).to_vec().unwrap());
            let mut q = with_edns(query(name, rtype), 4096);
            q.extensions_mut()
                .as_mut()
                .unwrap()
                .options_mut()
                .insert(EdnsOption::Unknown(3, Vec::new()));
            seeds.push(q.to_vec().unwrap());
        }
    }
    for round in 0..60_000 {
        let input = if round % 4 == 0 {
            // Random bytes, of any length.
            let len = rng.below(600);
            (0..len).map(|_| rng.next_u64() as u8).collect()
        } else {
            // A valid query with a few bytes changed, cut or added.
            let mut q = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(4) {
                match rng.below(5) {
                    0 | 1 => {
                        let i = rng.below(q.len());
                        q[i] = rng.next_u64() as u8;
                    }
                    2 if q.len() > 12 => {
                        // A compression pointer somewhere.
                        let i = 12 + rng.below(q.len() - 12);
                        q[i] = 0xc0 | (rng.next_u64() as u8 & 0x3f);
                    }
                    2 | 3 => q.truncate(rng.below(q.len() + 1)),
                    _ => {
                        let i = rng.below(q.len() + 1);
                        q.insert(i, rng.next_u64() as u8);
                    }
                }
                if q.is_empty() {
                    break;
                }
            }
            q
        };
        check_any(&input, &zones, &settings);
    }
}

#[test]
fn an_answer_that_cannot_be_encoded_is_servfail_not_silence() {
    // Zone loading refuses such records (issue 18: a TXT string over 255
    // bytes loaded, then every query for it got no reply); a zone built
    // around that check shows what the answerer does if one gets through.
    use hickory_proto::rr::{Record, rdata::TXT};
    let origin = Name::from_ascii("cdn.test.").unwrap();
    let mut records: Vec<Record> = Zone::parse("cdn.test", ZONE, 300, None)
        .unwrap()
        .rrsets()
        .flat_map(|s| s.records.clone())
        .collect();
    let long = Name::from_ascii("long.cdn.test.").unwrap();
    records.push(Record::from_rdata(
        long.clone(),
        300,
        RData::TXT(TXT::new(vec!["x".repeat(300)])),
    ));
    let zones = ZoneSet::new(vec![Zone::from_records(origin, records).unwrap()]).unwrap();
    let mut query = Message::new();
    query
        .set_id(0x5151)
        .add_query(Query::query(long, RecordType::TXT));
    let reply = respond(
        &zones,
        &settings(),
        &query.to_vec().unwrap(),
        Transport::Udp,
    )
    .expect("a reply");
    assert_eq!(reply.outcome, Outcome::ServFail);
    let parsed = Message::from_vec(&reply.bytes).unwrap();
    assert_eq!(parsed.id(), 0x5151);
    assert_eq!(parsed.response_code(), ResponseCode::ServFail);
}
