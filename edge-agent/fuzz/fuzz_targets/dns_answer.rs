//! The authoritative answerer on arbitrary queries, over UDP and TCP and
//! as a rate-limit slip: a reply for everything that has a header and is
//! not itself a response; every reply parses (hickory-proto), carries the
//! query's ID and opcode, echoes the question when the query had exactly
//! one, and fits the size the transport and the query's EDNS allow.

#![no_main]

use std::sync::OnceLock;

use edge_agent::authdns::{
    Settings, Transport, ZoneSet,
    answer::{respond, respond_truncated},
};
use edge_fuzz::fixtures::zones;
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;

fn world() -> &'static (ZoneSet, Settings) {
    static WORLD: OnceLock<(ZoneSet, Settings)> = OnceLock::new();
    WORLD.get_or_init(|| {
        (
            zones(),
            Settings {
                udp_payload: 1232,
                nsid: Some(b"pop-a".to_vec()),
            },
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, query)) = data.split_first() else {
        return;
    };
    let (zones, settings) = world();
    let transport = if choice & 1 == 0 {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    let reply = if choice & 2 == 0 {
        respond(zones, settings, query, transport)
    } else {
        respond_truncated(zones, settings, query)
    };
    let answerable = query.len() >= 12 && query[2] & 0x80 == 0;
    let Some(reply) = reply else {
        assert!(!answerable, "no reply to {query:02x?}");
        return;
    };
    assert!(answerable, "a reply to a response or a runt");
    let response = Message::from_vec(&reply.bytes)
        .unwrap_or_else(|e| panic!("reply does not parse: {e}: {:02x?}", reply.bytes));
    assert_eq!(&reply.bytes[..2], &query[..2], "the query's ID");
    assert_eq!(reply.bytes[2] & 0x80, 0x80, "QR set");
    assert_eq!(
        (reply.bytes[2] >> 3) & 0x0f,
        (query[2] >> 3) & 0x0f,
        "opcode"
    );
    let parsed = Message::from_vec(query).ok();
    let limit = match (transport, choice & 2 == 0) {
        (Transport::Tcp, true) => usize::from(u16::MAX),
        _ => match parsed.as_ref().and_then(|q| q.extensions().as_ref()) {
            Some(edns) => usize::from(edns.max_payload().min(settings.udp_payload)).max(512),
            None => 512,
        },
    };
    assert!(
        reply.bytes.len() <= limit,
        "{} > {limit}",
        reply.bytes.len()
    );
    if let Some(q) = &parsed
        && q.queries().len() == 1
        && response.queries().len() == 1
    {
        assert_eq!(response.queries()[0], q.queries()[0], "the question");
    }
});
