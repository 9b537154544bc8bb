//! What the command line changes in the config, and that a reload does
//! not take it for a change.

use std::time::Duration;

use super::RunOptions;
use crate::config::{Checks, parse_with, reload};

/// The example config, as shipped (`netlink.keep_state = false`).
const EXAMPLE: &str = include_str!("../../../docs/edge.example.toml");

#[test]
fn keep_state_from_the_command_line_is_no_change_to_reload() {
    let options = RunOptions {
        config: "edge.toml".into(),
        keep_state: true,
        shutdown_drain: Duration::ZERO,
    };
    let file = parse_with(EXAMPLE, "edge.toml", Checks::NONE).unwrap_or_else(|e| panic!("{e}"));
    assert!(!file.agent.netlink.keep_state);
    let mut running = file.clone();
    options.apply(&mut running);
    assert!(running.agent.netlink.keep_state);
    let mut new = file;
    options.apply(&mut new);
    assert!(reload::plan(&running, &new).restart.is_empty());
}
