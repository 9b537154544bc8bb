//! Tests of overlay discovery: parsing crafted responses (built with
//! hickory's `Message`), the query layer against the fake DNS server of
//! `edge_tests::dns`, and merging.

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use edge_tests::dns::{DnsServer, FORGED_ADDR, Zone};
use hickory_proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{
        Name, RData, Record, RecordType,
        rdata::{A, AAAA, CNAME, SRV},
    },
};

use super::*;

const OWNER: &str = "_edge-overlay._tcp.cdn.example.";
const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(5);

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn id(s: &str) -> Identity {
    Identity::from_name(s).unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn srv(owner: &str, weight: u16, port: u16, target: &str) -> Record {
    Record::from_rdata(
        name(owner),
        60,
        RData::SRV(SRV::new(10, weight, port, name(target))),
    )
}

fn a(owner: &str, ip: [u8; 4]) -> Record {
    Record::from_rdata(name(owner), 60, RData::A(A(Ipv4Addr::from(ip))))
}

fn aaaa(owner: &str, ip: &str) -> Record {
    Record::from_rdata(name(owner), 60, RData::AAAA(AAAA(ip.parse().unwrap())))
}

/// A response to the SRV question for `owner` with ID 4242.
fn response(owner: &str) -> Message {
    let mut message = Message::new();
    message
        .set_id(4242)
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_authoritative(true)
        .add_query(Query::query(name(owner), RecordType::SRV));
    message
}

fn bytes(message: &Message) -> Vec<u8> {
    message.to_vec().unwrap()
}

fn candidate(identity: &str, addr: &str) -> Candidate {
    Candidate {
        identity: id(identity),
        addr: sa(addr),
        source: Source::Srv(OWNER.to_string()),
    }
}

/// The usual two-PoP response, with addresses in the additional section.
fn two_pops() -> Message {
    let mut message = response(OWNER);
    message
        .add_answer(srv(OWNER, 0, 4443, "pop-fra1.cdn.example."))
        .add_answer(srv(OWNER, 5, 4443, "POP-ams2.cdn.example."))
        .add_additional(a("pop-fra1.cdn.example.", [192, 0, 2, 11]))
        .add_additional(aaaa("pop-fra1.cdn.example.", "2001:db8::11"))
        .add_additional(a("pop-ams2.cdn.example.", [192, 0, 2, 12]));
    message
}

// ---------------------------------------------------------------------------
// Parsing

#[test]
fn srv_with_additionals_gives_every_target() {
    let got = candidates_from_response(OWNER, &bytes(&two_pops())).unwrap();
    assert_eq!(
        got,
        vec![
            candidate("pop-ams2", "192.0.2.12:4443"),
            candidate("pop-fra1", "192.0.2.11:4443"),
            candidate("pop-fra1", "[2001:db8::11]:4443"),
        ]
    );
}

#[test]
fn owner_is_matched_without_regard_to_case_or_final_dot() {
    let got =
        candidates_from_response("_Edge-Overlay._TCP.cdn.example", &bytes(&two_pops())).unwrap();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter()
            .all(|c| c.source == Source::Srv(OWNER.to_string()))
    );
    assert_eq!(
        SrvQuery::for_domain("cdn.example.", vec![]).name,
        OWNER.to_string()
    );
}

#[test]
fn targets_missing_from_additionals_give_nothing_here() {
    let mut message = response(OWNER);
    message
        .add_answer(srv(OWNER, 0, 4443, "pop-fra1.cdn.example."))
        .add_answer(srv(OWNER, 0, 4443, "pop-ams2.cdn.example."))
        .add_additional(a("pop-ams2.cdn.example.", [192, 0, 2, 12]))
        // Addresses of names that are no target are not used.
        .add_additional(a("elsewhere.cdn.example.", [192, 0, 2, 99]));
    let got = candidates_from_response(OWNER, &bytes(&message)).unwrap();
    assert_eq!(got, vec![candidate("pop-ams2", "192.0.2.12:4443")]);
}

#[test]
fn dot_target_means_not_available() {
    let mut message = response(OWNER);
    message.add_answer(srv(OWNER, 0, 0, "."));
    assert_eq!(
        candidates_from_response(OWNER, &bytes(&message)).unwrap(),
        vec![]
    );

    message
        .add_answer(srv(OWNER, 0, 4443, "pop-fra1.cdn.example."))
        .add_additional(a("pop-fra1.cdn.example.", [192, 0, 2, 11]));
    assert_eq!(
        candidates_from_response(OWNER, &bytes(&message)).unwrap(),
        vec![candidate("pop-fra1", "192.0.2.11:4443")]
    );
}

#[test]
fn targets_that_claim_no_valid_identity_are_skipped() {
    let mut message = response(OWNER);
    for first in [
        &b"pop_fra1"[..], // `_` is no identity character
        b"pop.evil",      // an escaped dot would claim `edge://pop.evil`
        b"-pop",
        b"p\xc3\xb6p", // not ASCII
        b"pop fra1",
    ] {
        let target = Name::from_labels(vec![first, b"cdn", b"example"]).unwrap();
        message
            .add_answer(Record::from_rdata(
                name(OWNER),
                60,
                RData::SRV(SRV::new(0, 0, 4443, target.clone())),
            ))
            .add_additional(Record::from_rdata(
                target,
                60,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 66))),
            ));
    }
    // Port 0 is skipped too.
    message
        .add_answer(srv(OWNER, 0, 0, "pop-zero.cdn.example."))
        .add_additional(a("pop-zero.cdn.example.", [192, 0, 2, 67]))
        .add_answer(srv(OWNER, 0, 4443, "pop-fra1.cdn.example."))
        .add_additional(a("pop-fra1.cdn.example.", [192, 0, 2, 11]));
    assert_eq!(
        candidates_from_response(OWNER, &bytes(&message)).unwrap(),
        vec![candidate("pop-fra1", "192.0.2.11:4443")]
    );
}

#[test]
fn unusable_addresses_are_skipped() {
    let mut message = response(OWNER);
    message
        .add_answer(srv(OWNER, 0, 4443, "pop-fra1.cdn.example."))
        .add_additional(a("pop-fra1.cdn.example.", [0, 0, 0, 0]))
        .add_additional(a("pop-fra1.cdn.example.", [255, 255, 255, 255]))
        .add_additional(a("pop-fra1.cdn.example.", [224, 0, 0, 1]))
        .add_additional(aaaa("pop-fra1.cdn.example.", "::"))
        .add_additional(aaaa("pop-fra1.cdn.example.", "ff02::1"))
        .add_additional(a("pop-fra1.cdn.example.", [192, 0, 2, 11]));
    assert_eq!(
        candidates_from_response(OWNER, &bytes(&message)).unwrap(),
        vec![candidate("pop-fra1", "192.0.2.11:4443")]
    );
}

#[test]
fn several_ports_and_duplicates() {
    let mut message = two_pops();
    message
        .add_answer(srv(OWNER, 0, 4443, "pop-fra1.cdn.example."))
        .add_answer(srv(OWNER, 0, 5443, "pop-fra1.cdn.example."))
        .add_additional(a("pop-fra1.cdn.example.", [192, 0, 2, 11]));
    let got = candidates_from_response(OWNER, &bytes(&message)).unwrap();
    assert_eq!(
        got,
        vec![
            candidate("pop-ams2", "192.0.2.12:4443"),
            candidate("pop-fra1", "192.0.2.11:4443"),
            candidate("pop-fra1", "192.0.2.11:5443"),
            candidate("pop-fra1", "[2001:db8::11]:4443"),
            candidate("pop-fra1", "[2001:db8::11]:5443"),
        ]
    );
}

#[test]
fn cname_of_the_owner_is_followed() {
    let alias = "_edge-overlay._tcp.other.example.";
    let mut message = response(OWNER);
    message
        .add_answer(Record::from_rdata(
            name(OWNER),
            60,
            RData::CNAME(CNAME(name(alias))),
        ))
        .add_answer(srv(alias, 0, 4443, "pop-fra1.cdn.example."))
        .add_additional(a("pop-fra1.cdn.example.", [192, 0, 2, 11]));
    assert_eq!(
        candidates_from_response(OWNER, &bytes(&message)).unwrap(),
        vec![candidate("pop-fra1", "192.0.2.11:4443")]
    );
}

#[test]
fn cname_loop_is_malformed() {
    let mut message = response(OWNER);
    message
        .add_answer(Record::from_rdata(
            name(OWNER),
            60,
            RData::CNAME(CNAME(name("x.cdn.example."))),
        ))
        .add_answer(Record::from_rdata(
            name("x.cdn.example."),
            60,
            RData::CNAME(CNAME(name(OWNER))),
        ));
    let err = candidates_from_response(OWNER, &bytes(&message)).unwrap_err();
    assert!(matches!(err, DiscoveryError::Malformed(_)), "{err}");
}

#[test]
fn response_codes() {
    let mut message = response(OWNER);
    message.set_response_code(ResponseCode::NXDomain);
    assert_eq!(
        candidates_from_response(OWNER, &bytes(&message)).unwrap(),
        vec![]
    );

    // NODATA: no error, no records.
    message.set_response_code(ResponseCode::NoError);
    assert_eq!(
        candidates_from_response(OWNER, &bytes(&message)).unwrap(),
        vec![]
    );

    for code in [ResponseCode::ServFail, ResponseCode::Refused] {
        message.set_response_code(code);
        let err = candidates_from_response(OWNER, &bytes(&message)).unwrap_err();
        assert!(matches!(err, DiscoveryError::Rcode { .. }), "{err}");
        assert!(err.to_string().contains(OWNER), "{err}");
    }
}

#[test]
fn truncated_answer_is_an_error() {
    let message = two_pops().truncate();
    let err = candidates_from_response(OWNER, &bytes(&message)).unwrap_err();
    assert!(matches!(err, DiscoveryError::Truncated { .. }), "{err}");
}

#[test]
fn unrelated_messages_are_not_answers() {
    let other = response("_edge-overlay._tcp.other.example.");
    let err = candidates_from_response(OWNER, &bytes(&other)).unwrap_err();
    assert!(matches!(err, DiscoveryError::NotAnAnswer { .. }), "{err}");

    let mut query = two_pops();
    query.set_message_type(MessageType::Query);
    let err = candidates_from_response(OWNER, &bytes(&query)).unwrap_err();
    assert!(matches!(err, DiscoveryError::NotAnAnswer { .. }), "{err}");

    let mut wrong_type = response(OWNER);
    wrong_type.queries_mut()[0].set_query_type(RecordType::A);
    let err = candidates_from_response(OWNER, &bytes(&wrong_type)).unwrap_err();
    assert!(matches!(err, DiscoveryError::NotAnAnswer { .. }), "{err}");
}

#[test]
fn malformed_bytes_are_errors_not_panics() {
    for short in [&[][..], &[0u8; 11][..], &[0xff; 12][..]] {
        let err = candidates_from_response(OWNER, short).unwrap_err();
        assert!(matches!(err, DiscoveryError::Malformed(_)), "{err}");
    }

    // Every cut of a valid response is an error.
    let good = bytes(&two_pops());
    for len in 0..good.len() {
        assert!(
            candidates_from_response(OWNER, &good[..len]).is_err(),
            "cut at {len}"
        );
    }

    // Flipped bytes and random bytes: any result, but no panic.
    let mut rng = crate::net::random::Seeded::new(0x9e37_79b9_7f4a_7c15);
    let mut next = move || rng.next_u64();
    for _ in 0..20_000 {
        let mut mutated = good.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % mutated.len();
            mutated[at] = next() as u8;
        }
        let _ = candidates_from_response(OWNER, &mutated);
        let question = Query::query(name(OWNER), RecordType::SRV);
        let _ = dns::accept(&mutated, 4242, &question, MAX_RECORDS);
    }
    for len in 0..600 {
        let random: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = candidates_from_response(OWNER, &random);
    }

    // A compression pointer to itself.
    let mut looped = bytes(&response(OWNER));
    looped[5] = 1; // one question...
    looped.truncate(12);
    looped.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1]);
    assert!(candidates_from_response(OWNER, &looped).is_err());
}

#[test]
fn header_counts_are_bounded_before_decoding() {
    let mut inflated = bytes(&two_pops());
    inflated[6] = 0xff; // 65 000-odd answers in a few hundred bytes
    let err = candidates_from_response(OWNER, &inflated).unwrap_err();
    assert!(matches!(err, DiscoveryError::Malformed(_)), "{err}");

    let mut huge = response(OWNER);
    for i in 0..=MAX_RECORDS {
        huge.add_additional(a("pop-fra1.cdn.example.", (i as u32).to_be_bytes()));
    }
    let err = candidates_from_response(OWNER, &bytes(&huge)).unwrap_err();
    assert!(matches!(err, DiscoveryError::TooMany { .. }), "{err}");
    assert!(err.to_string().contains("1025 records"), "{err}");
}

#[test]
fn too_many_targets_is_an_error() {
    let mut message = response(OWNER);
    for i in 0..=MAX_TARGETS {
        message.add_answer(srv(OWNER, 0, 4443, &format!("pop-{i}.cdn.example.")));
    }
    let err = candidates_from_response(OWNER, &bytes(&message)).unwrap_err();
    assert!(matches!(err, DiscoveryError::TooMany { .. }), "{err}");
    assert!(err.to_string().contains("SRV records"), "{err}");
}

#[test]
fn invalid_owner_is_refused() {
    for bad in [
        "",
        ".",
        &"a".repeat(64),
        &format!("{}.example.", "a.".repeat(130)),
    ] {
        let err = candidates_from_response(bad, &bytes(&two_pops())).unwrap_err();
        assert!(
            matches!(err, DiscoveryError::InvalidName { .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn merge_folds_per_identity_without_duplicates() {
    let mut fra_static = candidate("pop-fra1", "192.0.2.11:4443");
    fra_static.source = Source::Static;
    let merged = merge([
        candidate("pop-fra1", "192.0.2.11:4443"),
        fra_static,
        candidate("pop-fra1", "[2001:db8::11]:4443"),
        candidate("pop-ams2", "192.0.2.12:4443"),
        candidate("pop-ams2", "192.0.2.12:4443"),
    ]);
    assert_eq!(merged.len(), 2);
    assert_eq!(
        merged[&id("pop-fra1")],
        BTreeSet::from([sa("192.0.2.11:4443"), sa("[2001:db8::11]:4443")])
    );
    assert_eq!(
        merged[&id("pop-ams2")],
        BTreeSet::from([sa("192.0.2.12:4443")])
    );
    assert!(merge([]).is_empty());
}

// ---------------------------------------------------------------------------
// Queries against the fake server

fn zone() -> Zone {
    Zone::new()
        .srv(OWNER, 10, 0, 4443, "pop-fra1.cdn.example.")
        .srv(OWNER, 20, 5, 4443, "pop-ams2.cdn.example.")
        .srv(OWNER, 0, 0, 4443, "pop_bad.cdn.example.")
        .a("pop-fra1.cdn.example.", Ipv4Addr::new(192, 0, 2, 11))
        .aaaa(
            "pop-fra1.cdn.example.",
            "2001:db8::11".parse::<Ipv6Addr>().unwrap(),
        )
        .a("pop-ams2.cdn.example.", Ipv4Addr::new(192, 0, 2, 12))
        .aaaa(
            "pop-ams2.cdn.example.",
            "2001:db8::12".parse::<Ipv6Addr>().unwrap(),
        )
}

fn expected() -> Vec<Candidate> {
    vec![
        candidate("pop-ams2", "192.0.2.12:4443"),
        candidate("pop-ams2", "[2001:db8::12]:4443"),
        candidate("pop-fra1", "192.0.2.11:4443"),
        candidate("pop-fra1", "[2001:db8::11]:4443"),
    ]
}

fn query(resolvers: Vec<SocketAddr>) -> SrvQuery {
    SrvQuery {
        name: OWNER.to_string(),
        resolvers,
    }
}

/// A UDP socket that receives and never answers.
fn silent() -> std::net::UdpSocket {
    std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap()
}

#[tokio::test]
async fn query_with_additionals_takes_one_query() {
    let server = DnsServer::start_local(zone());
    let got = query_srv(&query(vec![server.addr()]), LONG).await.unwrap();
    assert_eq!(got, expected());
    assert_eq!(server.queries(), 1);
}

#[tokio::test]
async fn query_looks_up_addresses_missing_from_additionals() {
    let server = DnsServer::start_local(zone().with_additionals(false));
    let got = query_srv(&query(vec![server.addr()]), LONG).await.unwrap();
    assert_eq!(got, expected());
    // SRV, then A and AAAA for both targets.
    assert_eq!(server.queries(), 5);
}

#[tokio::test]
async fn query_looks_up_only_the_missing_family() {
    let zone = Zone::new()
        .srv(OWNER, 10, 0, 4443, "pop-fra1.cdn.example.")
        .a("pop-fra1.cdn.example.", Ipv4Addr::new(192, 0, 2, 11));
    let server = DnsServer::start_local(zone);
    let got = query_srv(&query(vec![server.addr()]), LONG).await.unwrap();
    assert_eq!(got, vec![candidate("pop-fra1", "192.0.2.11:4443")]);
    // SRV, then AAAA (NODATA).
    assert_eq!(server.queries(), 2);
}

#[tokio::test]
async fn query_follows_cnames_of_targets() {
    let zone = Zone::new()
        .srv(OWNER, 10, 0, 4443, "pop-fra1.cdn.example.")
        .cname("pop-fra1.cdn.example.", "host-17.hosting.example.")
        .a("host-17.hosting.example.", Ipv4Addr::new(192, 0, 2, 17));
    let server = DnsServer::start_local(zone);
    let got = query_srv(&query(vec![server.addr()]), LONG).await.unwrap();
    assert_eq!(got, vec![candidate("pop-fra1", "192.0.2.17:4443")]);
}

#[tokio::test]
async fn truncated_udp_answer_is_asked_again_over_tcp() {
    let server = DnsServer::start_local(zone().truncate_udp(true));
    let got = query_srv(&query(vec![server.addr()]), LONG).await.unwrap();
    assert_eq!(got, expected());
    assert_eq!(server.queries(), 2, "UDP, then TCP");
}

#[tokio::test]
async fn silent_resolver_is_followed_by_the_next() {
    let quiet = silent();
    let server = DnsServer::start_local(zone());
    let started = std::time::Instant::now();
    let got = query_srv(
        &query(vec![quiet.local_addr().unwrap(), server.addr()]),
        SHORT,
    )
    .await
    .unwrap();
    assert_eq!(got, expected());
    assert!(started.elapsed() >= SHORT);
    assert!(started.elapsed() < LONG);
}

#[tokio::test]
async fn refused_connection_is_followed_by_the_next() {
    let closed = silent().local_addr().unwrap(); // dropped: nothing listens
    let server = DnsServer::start_local(zone());
    let got = query_srv(&query(vec![closed, server.addr()]), LONG)
        .await
        .unwrap();
    assert_eq!(got, expected());
}

#[tokio::test]
async fn nxdomain_is_an_empty_list() {
    let server = DnsServer::start_local(zone());
    let mut q = query(vec![server.addr()]);
    q.name = "_edge-overlay._tcp.nowhere.example.".into();
    assert_eq!(query_srv(&q, LONG).await.unwrap(), vec![]);
}

#[tokio::test]
async fn failures_everywhere_name_every_resolver() {
    let servfail = DnsServer::start_local(zone().fail_with(ResponseCode::ServFail));
    let refused = DnsServer::start_local(zone().fail_with(ResponseCode::Refused));
    let quiet = silent();
    let resolvers = vec![servfail.addr(), refused.addr(), quiet.local_addr().unwrap()];
    let err = query_srv(&query(resolvers.clone()), SHORT)
        .await
        .unwrap_err();
    let DiscoveryError::Unanswered { failures, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(
        failures.iter().map(|f| f.resolver).collect::<Vec<_>>(),
        resolvers
    );
    let text = err.to_string();
    for resolver in &resolvers {
        assert!(text.contains(&resolver.to_string()), "{text}");
    }
    assert!(text.contains("Server Failure"), "{text}");
    assert!(text.contains("Refused"), "{text}");
    assert!(text.contains("no answer within"), "{text}");
}

#[tokio::test]
async fn forged_datagrams_are_ignored() {
    let server = DnsServer::start_local(zone().forge_udp(true));
    let got = query_srv(&query(vec![server.addr()]), LONG).await.unwrap();
    assert_eq!(got, expected());
    assert!(got.iter().all(|c| c.addr.ip() != IpAddr::V4(FORGED_ADDR)));
}

#[tokio::test]
async fn zone_changes_are_seen() {
    let server = DnsServer::start_local(zone());
    let q = query(vec![server.addr()]);
    assert_eq!(query_srv(&q, LONG).await.unwrap(), expected());
    server.set_zone(
        Zone::new()
            .srv(OWNER, 0, 0, 4443, "pop-lhr3.cdn.example.")
            .a("pop-lhr3.cdn.example.", Ipv4Addr::new(192, 0, 2, 13))
            .aaaa("pop-lhr3.cdn.example.", Ipv6Addr::LOCALHOST),
    );
    assert_eq!(
        query_srv(&q, LONG).await.unwrap(),
        vec![
            candidate("pop-lhr3", "192.0.2.13:4443"),
            candidate("pop-lhr3", "[::1]:4443"),
        ]
    );
}

#[test]
fn query_future_can_be_spawned() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let future = async {
        let q = query(vec![sa("127.0.0.1:53")]);
        query_srv(&q, SHORT).await
    };
    assert_send(&future);
}

#[tokio::test]
async fn bad_configuration_is_an_error() {
    let err = query_srv(&query(vec![]), SHORT).await.unwrap_err();
    assert!(matches!(err, DiscoveryError::NoResolvers { .. }), "{err}");

    let mut q = query(vec![sa("127.0.0.1:53")]);
    q.name = "a..b".into();
    let err = query_srv(&q, SHORT).await.unwrap_err();
    assert!(matches!(err, DiscoveryError::InvalidName { .. }), "{err}");
}
