//! The DNS stub client: encoding, what is accepted as the reply (ID,
//! question, source), decoding of malformed, truncated and oversized
//! messages, and exchanges on loopback (the fake server of
//! `edge_tests::dns`, and small servers of the tests' own for forgeries
//! from another port and answers truncated even over TCP).

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener},
};

use edge_tests::dns::{DnsServer, FORGED_ADDR, Zone};
use hickory_proto::{
    op::ResponseCode,
    rr::{DNSClass, Name, RData, Record, RecordType, rdata::A},
};

use super::*;
use crate::net::random::Seeded;

const OWNER: &str = "_edge-overlay._tcp.cdn.example.";
const WEB: &str = "web.net.example.";
const WEB_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(5);

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn srv_question() -> Query {
    Query::query(name(OWNER), RecordType::SRV)
}

fn web_question() -> Query {
    Query::query(name(WEB), RecordType::A)
}

/// A response to `question` with `id`, without records.
fn empty_reply(id: u16, question: &Query) -> Message {
    let mut message = Message::new();
    message
        .set_id(id)
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .add_query(question.clone());
    message
}

/// A response to `question` with `id`, answering `addr` for it.
fn reply(id: u16, question: &Query, addr: Ipv4Addr) -> Message {
    let mut message = empty_reply(id, question);
    message.add_answer(Record::from_rdata(
        question.name().clone(),
        60,
        RData::A(A(addr)),
    ));
    message
}

/// A response to the SRV question for `owner` with ID 4242.
fn response(owner: &str) -> Message {
    empty_reply(4242, &Query::query(name(owner), RecordType::SRV))
}

fn bytes(message: &Message) -> Vec<u8> {
    message.to_vec().unwrap()
}

fn addresses(message: &Message) -> Vec<Ipv4Addr> {
    message
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Encoding and acceptance (pure)

#[test]
fn a_query_asks_one_question_with_rd_and_edns() {
    let wire = encode(7, &web_question()).unwrap();
    let query = Message::from_vec(&wire).unwrap();
    assert_eq!(query.id(), 7);
    assert_eq!(query.message_type(), MessageType::Query);
    assert_eq!(query.op_code(), OpCode::Query);
    assert!(query.recursion_desired());
    assert_eq!(query.queries(), &[web_question()]);
    assert_eq!(query.extensions().as_ref().unwrap().max_payload(), 1232);
}

#[test]
fn replies_with_wrong_id_question_or_qr_are_ignored() {
    let question = srv_question();
    let good = bytes(&response(OWNER));
    assert!(accept(&good, 4242, &question, MAX_RECORDS).is_ok());

    let why = accept(&good, 4243, &question, MAX_RECORDS)
        .unwrap_err()
        .to_string();
    assert!(why.contains("ID"), "{why}");

    let mut query = response(OWNER);
    query.set_message_type(MessageType::Query);
    let why = accept(&bytes(&query), 4242, &question, MAX_RECORDS)
        .unwrap_err()
        .to_string();
    assert!(why.contains("QR=0"), "{why}");

    let other = bytes(&response("_edge-overlay._tcp.other.example."));
    let why = accept(&other, 4242, &question, MAX_RECORDS)
        .unwrap_err()
        .to_string();
    assert!(why.contains("unrelated"), "{why}");

    assert!(accept(&good[..5], 4242, &question, MAX_RECORDS).is_err());
    assert!(accept(&[], 4242, &question, MAX_RECORDS).is_err());
}

#[test]
fn an_id_mismatch_is_refused_before_decoding() {
    // Garbage after a wrong ID: refused for the ID, not decoded at all.
    let mut wire = bytes(&response(OWNER));
    wire.truncate(12);
    wire.extend_from_slice(&[0xff; 40]);
    assert_eq!(
        accept(&wire, 1, &srv_question(), MAX_RECORDS).unwrap_err(),
        Mismatch::Id { got: 4242, want: 1 }
    );
}

#[test]
fn names_match_without_case_but_type_class_opcode_and_count_must() {
    let question = srv_question();
    let shouted = response("_EDGE-overlay._TCP.Cdn.Example.");
    assert!(answers(&shouted, &question).is_ok());

    let mut wrong_type = response(OWNER);
    wrong_type.queries_mut()[0].set_query_type(RecordType::A);
    assert!(matches!(
        answers(&wrong_type, &question),
        Err(Mismatch::Question(_))
    ));

    let mut wrong_class = response(OWNER);
    wrong_class.queries_mut()[0].set_query_class(DNSClass::CH);
    assert!(matches!(
        answers(&wrong_class, &question),
        Err(Mismatch::Question(_))
    ));

    let mut notify = response(OWNER);
    notify.set_op_code(OpCode::Notify);
    let why = answers(&notify, &question).unwrap_err();
    assert!(why.to_string().contains("opcode"), "{why}");

    let mut two = response(OWNER);
    two.add_query(question.clone());
    assert_eq!(answers(&two, &question), Err(Mismatch::Questions(2)));
    let mut none = response(OWNER);
    none.take_queries();
    assert_eq!(answers(&none, &question), Err(Mismatch::Questions(0)));
}

#[test]
fn a_datagram_from_another_address_or_port_is_refused() {
    let server: SocketAddr = "192.0.2.53:53".parse().unwrap();
    let good = bytes(&response(OWNER));
    let question = srv_question();
    assert!(accept_datagram(server, server, &good, 4242, &question, MAX_RECORDS).is_ok());
    for from in ["192.0.2.54:53", "192.0.2.53:5353"] {
        let from: SocketAddr = from.parse().unwrap();
        assert_eq!(
            accept_datagram(server, from, &good, 4242, &question, MAX_RECORDS).unwrap_err(),
            Mismatch::Source(from)
        );
    }
}

#[test]
fn query_ids_vary() {
    let ids: BTreeSet<u16> = (0..64).map(|_| random::u16()).collect();
    assert!(ids.len() > 48, "{ids:?}");
}

// ---------------------------------------------------------------------------
// Decoding (pure)

#[test]
fn short_and_cut_messages_are_malformed() {
    for short in [&[][..], &[0u8; 11][..], &[0xff; 12][..]] {
        assert!(
            matches!(decode(short, MAX_RECORDS), Err(DecodeError::Malformed(_))),
            "{short:?}"
        );
    }
    let good = bytes(&reply(1, &web_question(), WEB_ADDR));
    assert!(decode(&good, MAX_RECORDS).is_ok());
    for len in 0..good.len() {
        assert!(decode(&good[..len], MAX_RECORDS).is_err(), "cut at {len}");
        assert!(accept(&good[..len], 1, &web_question(), MAX_RECORDS).is_err());
    }
}

#[test]
fn header_counts_are_bounded_before_decoding() {
    let mut inflated = bytes(&reply(1, &web_question(), WEB_ADDR));
    inflated[6] = 0xff; // 65 000-odd answers in a few dozen bytes
    let err = decode(&inflated, MAX_RECORDS).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed(_)), "{err}");
    assert!(err.to_string().contains("cannot fit"), "{err}");

    let mut huge = reply(1, &web_question(), WEB_ADDR);
    for i in 0..10u8 {
        huge.add_additional(Record::from_rdata(
            name(WEB),
            60,
            RData::A(A(Ipv4Addr::new(192, 0, 2, i))),
        ));
    }
    assert_eq!(
        decode(&bytes(&huge), 10).unwrap_err(),
        DecodeError::TooManyRecords { count: 11, max: 10 }
    );
    assert!(decode(&bytes(&huge), 11).is_ok());
}

#[test]
fn compression_pointer_loops_are_refused() {
    // A question whose name is a pointer to itself.
    let mut looped = bytes(&response(OWNER));
    looped.truncate(12);
    looped[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    looped.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1]);
    assert!(decode(&looped, MAX_RECORDS).is_err());
    // Two pointers to each other.
    let mut pair = looped[..12].to_vec();
    pair.extend_from_slice(&[0xc0, 14, 0xc0, 12, 0, 33, 0, 1]);
    assert!(decode(&pair, MAX_RECORDS).is_err());
    assert!(accept(&pair, 4242, &srv_question(), MAX_RECORDS).is_err());
}

#[test]
fn random_and_mutated_bytes_never_panic() {
    let mut rng = Seeded::new(0x00d5_57ab);
    let good = bytes(&reply(9, &web_question(), WEB_ADDR));
    for _ in 0..20_000 {
        let mut mutated = good.clone();
        for _ in 0..1 + rng.next_u64() % 4 {
            let at = (rng.next_u64() as usize) % mutated.len();
            mutated[at] = rng.next_u64() as u8;
        }
        let _ = accept(&mutated, 9, &web_question(), MAX_RECORDS);
    }
    for len in 0..600 {
        let random: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let _ = decode(&random, MAX_RECORDS);
    }
}

#[test]
fn errors_read_for_operators() {
    let timeout = DnsError::Timeout {
        transport: Transport::Udp,
        timeout: SHORT,
        ignored: Some(Mismatch::Id { got: 1, want: 2 }),
    };
    assert_eq!(
        timeout.to_string(),
        "no answer within 300ms (ignored an answer with ID 1, not 2)"
    );
    let tcp = DnsError::Timeout {
        transport: Transport::Tcp,
        timeout: SHORT,
        ignored: None,
    };
    assert_eq!(tcp.to_string(), "no answer over TCP within 300ms");
    assert_eq!(
        DnsError::Connect("connect refused".into()).to_string(),
        "TCP connect refused"
    );
}

// ---------------------------------------------------------------------------
// Exchanges on loopback

fn zone() -> Zone {
    Zone::new().a(WEB, WEB_ADDR)
}

#[tokio::test]
async fn an_answer_comes_back_whatever_its_rcode() {
    let server = DnsServer::start_local(zone());
    let message = exchange(server.addr(), &web_question(), Limits::new(LONG))
        .await
        .unwrap();
    assert_eq!(addresses(&message), [WEB_ADDR]);
    assert_eq!(server.queries(), 1);

    let missing = Query::query(name("missing.net.example."), RecordType::A);
    let message = exchange(server.addr(), &missing, Limits::new(LONG))
        .await
        .unwrap();
    assert_eq!(message.response_code(), ResponseCode::NXDomain);
}

#[tokio::test]
async fn a_truncated_answer_is_asked_again_over_tcp() {
    let server = DnsServer::start_local(zone().truncate_udp(true));
    let message = exchange(server.addr(), &web_question(), Limits::new(LONG))
        .await
        .unwrap();
    assert!(!message.truncated());
    assert_eq!(addresses(&message), [WEB_ADDR]);
    assert_eq!(server.queries(), 2, "UDP, then TCP");
}

#[tokio::test]
async fn forged_datagrams_are_ignored() {
    let server = DnsServer::start_local(zone().forge_udp(true));
    let message = exchange(server.addr(), &web_question(), Limits::new(LONG))
        .await
        .unwrap();
    assert_eq!(addresses(&message), [WEB_ADDR]);
    assert!(!addresses(&message).contains(&FORGED_ADDR));
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let quiet = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let started = std::time::Instant::now();
    let err = exchange(
        quiet.local_addr().unwrap(),
        &web_question(),
        Limits::new(SHORT),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DnsError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("no answer within"), "{err}");
    assert!(started.elapsed() >= SHORT);
    assert!(started.elapsed() < LONG);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let closed = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap(); // dropped: nothing listens
    let err = exchange(closed, &web_question(), Limits::new(LONG))
        .await
        .unwrap_err();
    assert_eq!(err, DnsError::PortUnreachable);
}

/// A forgery from another port of the server's address, sent before the
/// real answer with the query's own ID and question, is never taken.
#[tokio::test]
async fn a_forgery_from_another_port_is_not_the_answer() {
    let server = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let spoofer = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = server.local_addr().unwrap();
    let serving = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let (len, client) = server.recv_from(&mut buf).unwrap();
        let query = Message::from_vec(&buf[..len]).unwrap();
        let question = &query.queries()[0];
        let forged = reply(query.id(), question, FORGED_ADDR);
        spoofer.send_to(&bytes(&forged), client).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let real = reply(query.id(), question, WEB_ADDR);
        server.send_to(&bytes(&real), client).unwrap();
    });
    let message = exchange(addr, &web_question(), Limits::new(LONG))
        .await
        .unwrap();
    serving.join().unwrap();
    assert_eq!(addresses(&message), [WEB_ADDR]);
}

/// A server whose every answer is truncated, over UDP and over TCP.
fn always_truncated() -> SocketAddr {
    let udp = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = udp.local_addr().unwrap();
    let tcp = TcpListener::bind(addr).unwrap();
    let truncated = |query: &[u8]| {
        let query = Message::from_vec(query).unwrap();
        let mut answer = reply(query.id(), &query.queries()[0], WEB_ADDR);
        answer.set_truncated(true);
        bytes(&answer)
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let (len, client) = udp.recv_from(&mut buf).unwrap();
        udp.send_to(&truncated(&buf[..len]), client).unwrap();
    });
    std::thread::spawn(move || {
        let (mut stream, _) = tcp.accept().unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut query).unwrap();
        let answer = truncated(&query);
        stream
            .write_all(&(answer.len() as u16).to_be_bytes())
            .unwrap();
        stream.write_all(&answer).unwrap();
    });
    addr
}

#[tokio::test]
async fn an_answer_truncated_even_over_tcp_is_an_error() {
    let err = exchange(always_truncated(), &web_question(), Limits::new(LONG))
        .await
        .unwrap_err();
    assert_eq!(err, DnsError::TruncatedOverTcp);
}
