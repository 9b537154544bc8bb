//! The lab end to end: the same scenarios `cargo xtask lab demo` plays
//! (`edge_tests::lab::scenarios`), asserted. Three PoPs running the real
//! `edge-agent` daemon, two BIRD ISPs, two clients.

use edge_tests::{
    lab::{Lab, scenarios},
    privilege::require_root,
};

/// Takes the lab down however the test ends.
struct Down<'a>(&'a Lab);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        self.0.down();
    }
}

#[test]
fn the_lab_plays_every_scenario_as_the_design_says() {
    if !require_root("the_lab_plays_every_scenario_as_the_design_says") {
        return;
    }
    let lab = Lab::new().expect("the lab's binaries (cargo test --workspace builds them)");
    let _down = Down(&lab);
    lab.up().unwrap_or_else(|e| panic!("{e}"));
    let outcomes = scenarios::demo(&lab, &mut |line| eprintln!("{line}"));
    let summary = scenarios::summary(&outcomes);
    eprintln!("{summary}");
    assert_eq!(outcomes.len(), 7);
    assert!(outcomes.iter().all(|o| o.passed), "{summary}");
}
