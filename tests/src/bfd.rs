//! BFD for tests: BIRD's `protocol bfd` block, and Control packets an
//! attacker would forge, built with the agent's own codec and signer.

use edge_agent::bfd::{
    auth::AuthKey,
    packet::{self, AuthSection, Diag, Packet, State},
};

/// BIRD's `protocol bfd` on the interfaces matching `interfaces`, at 100 ms
/// × 3, with Meticulous Keyed SHA1 keyed by `secret` (key ID 1).
pub fn bird_protocol(interfaces: &str, secret: &str) -> String {
    format!(
        "protocol bfd {{\n  interface \"{interfaces}\" {{\n    min rx interval 100 ms;\n    \
         min tx interval 100 ms;\n    multiplier 3;\n    authentication meticulous keyed sha1;\n    \
         password \"{secret}\" {{ id 1; }};\n  }};\n}}\n"
    )
}

/// A Control packet saying Down (path down) from the peer whose
/// discriminator is `my_disc` to our session `your_disc`, signed with
/// Meticulous Keyed SHA1 under `secret` (key ID 1) and sequence number
/// `sequence`: what would take the session down if it were accepted.
pub fn forged_down(my_disc: u32, your_disc: u32, secret: &[u8], sequence: u32) -> Vec<u8> {
    let key = AuthKey {
        meticulous: true,
        key_id: 1,
        secret: secret.to_vec(),
    };
    let p = Packet {
        diag: Diag::PathDown,
        state: State::Down,
        poll: false,
        final_: false,
        cpi: false,
        demand: false,
        detect_mult: 3,
        my_disc,
        your_disc,
        desired_min_tx: 100_000,
        required_min_rx: 100_000,
        required_min_echo_rx: 0,
        auth: Some(AuthSection {
            kind: key.kind(),
            key_id: key.key_id,
            sequence,
        }),
    };
    let mut out = Vec::new();
    packet::encode(&p, &mut out);
    key.sign(&mut out);
    out
}
