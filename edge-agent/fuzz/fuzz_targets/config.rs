//! The config parser behind `check-config` and SIGHUP, on arbitrary
//! text, with nothing read from the host: never a panic; a refusal names
//! at least one problem, each with a message (and, unless it is a syntax
//! error, the key it is about).

#![no_main]

use edge_agent::config::{self, Checks};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse_with(text, "fuzz.toml", Checks::NONE) {
        Ok(_) => {}
        Err(errors) => {
            assert!(!errors.problems.is_empty(), "refused without a reason");
            for problem in &errors.problems {
                assert!(!problem.message.is_empty(), "a problem without a message");
            }
            let _ = errors.to_string();
        }
    }
});
