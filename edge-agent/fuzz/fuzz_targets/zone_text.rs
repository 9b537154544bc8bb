//! The zone-file parser and the zone checks, on arbitrary text after a
//! valid SOA and NS: never a panic, and whatever loads can be answered:
//! over TCP, a query for each RRset's name and type gets a NOERROR reply
//! that parses and holds every record of the set; over UDP, a reply that
//! parses (truncated if it must be).

#![no_main]

use edge_agent::authdns::{Settings, Transport, Zone, ZoneSet, answer::respond};
use hickory_proto::{
    op::{Message, Query, ResponseCode},
    rr::RecordType,
};
use libfuzzer_sys::fuzz_target;

const HEAD: &str = "@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(zone) = Zone::parse("cdn.test.", &format!("{HEAD}{text}"), 300, None) else {
        return;
    };
    let sets: Vec<_> = zone.rrsets().cloned().collect();
    let Ok(zones) = ZoneSet::new(vec![zone]) else {
        return;
    };
    let settings = Settings::default();
    for set in sets {
        let name = set.records[0].name().clone();
        let mut query = Message::new();
        query
            .set_id(0x4242)
            .add_query(Query::query(name.clone(), set.record_type));
        let bytes = query.to_vec().expect("the query encodes");
        let udp = respond(&zones, &settings, &bytes, Transport::Udp).expect("a reply");
        Message::from_vec(&udp.bytes).expect("the UDP reply parses");
        let tcp = respond(&zones, &settings, &bytes, Transport::Tcp).expect("a reply");
        let reply = Message::from_vec(&tcp.bytes).expect("the TCP reply parses");
        assert_eq!(
            reply.response_code(),
            ResponseCode::NoError,
            "{name} {}",
            set.record_type
        );
        assert!(
            !reply.truncated(),
            "{name} {} truncated over TCP",
            set.record_type
        );
        for record in &set.records {
            let found = reply
                .answers()
                .iter()
                .any(|a| a.record_type() == set.record_type && a.data() == record.data())
                || (set.record_type == RecordType::NS
                    && reply
                        .name_servers()
                        .iter()
                        .any(|a| a.data() == record.data()));
            assert!(found, "`{record}` is not in its answer");
        }
    }
});
