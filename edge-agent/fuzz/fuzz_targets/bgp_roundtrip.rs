//! encode ∘ decode: whatever decodes re-encodes, decodes to the same
//! value without any error, and the encoding is canonical (encoding the
//! re-decoded value gives the same bytes).

#![no_main]

use edge_agent::bgp::codec::{self, CodecOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, bytes)) = data.split_first() else {
        return;
    };
    let options = CodecOptions {
        four_octet_as: choice & 1 == 1,
    };
    let Ok(Some(first)) = codec::decode(bytes, &options) else {
        return;
    };
    let mut wire = Vec::new();
    codec::encode(&first.message, &options, &mut wire)
        .unwrap_or_else(|e| panic!("{:?} decodes but does not encode: {e}", first.message));
    let again = codec::decode(&wire, &options)
        .expect("what we encode decodes")
        .expect("a whole message");
    assert_eq!(again.len, wire.len());
    assert!(again.revised.is_empty(), "{:?}", again.revised);
    assert_eq!(
        again.message, first.message,
        "the round trip changed the message"
    );
    let mut canonical = Vec::new();
    codec::encode(&again.message, &options, &mut canonical).expect("encodes");
    assert_eq!(canonical, wire, "encoding is not canonical");
});
