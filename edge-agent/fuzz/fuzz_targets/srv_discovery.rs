//! The DNS responses the agent reads as a client: SRV discovery of
//! overlay candidates (`overlay::discovery`) and the stub's reply check
//! (`net::dns::accept`, which the DNS health probe uses too), on arbitrary
//! datagrams. Never a panic; a reply is accepted only as the response to
//! our question with our ID; candidates are sorted, without duplicates,
//! at most one per SRV record and address, each claiming a valid
//! identity under the discovery domain.

#![no_main]

use edge_agent::{
    net::dns,
    overlay::discovery::{MAX_RECORDS, candidates_from_response},
};
use hickory_proto::{
    op::{Query, ResponseCode},
    rr::{Name, RecordType},
};
use libfuzzer_sys::fuzz_target;

const OWNER: &str = "_edge-overlay._tcp.cdn.test.";

fuzz_target!(|data: &[u8]| {
    if let Ok(candidates) = candidates_from_response(OWNER, data) {
        assert!(candidates.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
        assert!(candidates.len() <= MAX_RECORDS * MAX_RECORDS);
        for c in &candidates {
            assert!(c.identity.as_str().starts_with("edge://"), "{c}");
        }
    }
    let question = Query::query(Name::from_ascii(OWNER).expect("a name"), RecordType::SRV);
    if let Ok(message) = dns::accept(data, 0x4242, &question, MAX_RECORDS) {
        assert_eq!(message.id(), 0x4242);
        assert_eq!(message.queries(), [question]);
        let records =
            message.answers().len() + message.name_servers().len() + message.additionals().len();
        assert!(records <= MAX_RECORDS);
        let _ = message.response_code() == ResponseCode::NoError;
    }
});
