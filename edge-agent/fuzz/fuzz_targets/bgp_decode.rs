//! BGP message decode (RFC 4271, 4760, 6793, 7606, 9072), with a
//! differential check of what must survive whatever the decoder does with
//! the rest: every prefix the peer withdraws stays withdrawn, and when an
//! UPDATE is treated as withdrawn (RFC 7606), every prefix it announced
//! is withdrawn too, none announced.

#![no_main]

use std::collections::BTreeSet;

use edge_agent::bgp::{
    codec::{self, CodecOptions, RevisedAction},
    message::{Message, Prefix},
};
use edge_fuzz::bgp_wire::unicast_prefixes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks two- or four-octet AS numbers.
    let Some((&choice, bytes)) = data.split_first() else {
        return;
    };
    let options = CodecOptions {
        four_octet_as: choice & 1 == 1,
    };
    let decoded = match codec::decode(bytes, &options) {
        Ok(Some(decoded)) => decoded,
        Ok(None) => return,
        Err(error) => {
            // The NOTIFICATION it sends must itself be a valid message.
            let mut out = Vec::new();
            codec::encode(
                &Message::Notification(error.notification()),
                &options,
                &mut out,
            )
            .expect("every decode error has a NOTIFICATION that encodes");
            return;
        }
    };
    assert!(decoded.len >= 19 && decoded.len <= bytes.len().min(4096));
    let Message::Update(update) = &decoded.message else {
        return;
    };
    let Some((withdrawn, announced)) = unicast_prefixes(&bytes[..decoded.len]) else {
        return;
    };
    let got: BTreeSet<&Prefix> = update.withdrawn_prefixes().collect();
    for prefix in &withdrawn {
        assert!(got.contains(prefix), "withdrawal of {prefix:?} lost");
    }
    let treated_as_withdraw = decoded
        .revised
        .iter()
        .any(|e| e.action == RevisedAction::TreatAsWithdraw);
    if treated_as_withdraw {
        assert_eq!(update.announced_prefixes().count(), 0);
        for prefix in &announced {
            assert!(got.contains(prefix), "treat-as-withdraw lost {prefix:?}");
        }
    } else {
        let sent: BTreeSet<&Prefix> = announced.iter().collect();
        let decoded: BTreeSet<&Prefix> = update.announced_prefixes().collect();
        assert_eq!(sent, decoded, "announced prefixes changed");
    }
});
