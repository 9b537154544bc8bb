//! The command line: admin requests are checked by clap, which names the
//! valid values of a mistyped one.

use clap::Parser;
use edge_agent::daemon::api::{DnsAction, ServiceState};

use super::{Cli, Command};

/// The error clap reports for `args`.
fn refusal(args: &[&str]) -> String {
    match Cli::try_parse_from(args) {
        Ok(_) => panic!("accepted: {args:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn service_and_dns_take_typed_values() {
    let cli = Cli::try_parse_from(["edge-agent", "service", "web", "drain"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Service { name, state: ServiceState::Drain, .. } if name == "web"
    ));
    let cli = Cli::try_parse_from(["edge-agent", "dns", "start"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Dns {
            action: DnsAction::Start,
            ..
        }
    ));
}

#[test]
fn a_mistyped_value_is_refused_naming_the_valid_ones() {
    let e = refusal(&["edge-agent", "service", "web", "upp"]);
    assert!(
        e.contains("[possible values: up, auto, down, drain]"),
        "{e}"
    );
    let e = refusal(&["edge-agent", "dns", "restart"]);
    assert!(e.contains("[possible values: stop, start]"), "{e}");
}
