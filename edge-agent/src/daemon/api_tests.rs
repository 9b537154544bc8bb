//! The admin API's requests on the wire: the JSON the CLI sends, the
//! typed values the daemon receives, and the refusal of values that are
//! not among a field's choices.

use super::{DnsAction, Request, ServiceState};
use crate::health::AdminState;

/// `line` parsed as the server parses it.
fn parse(line: &str) -> Result<Request, String> {
    serde_json::from_str(line).map_err(|e| e.to_string())
}

#[test]
fn requests_keep_their_wire_format() {
    let cases = [
        (r#"{"command":"status"}"#, Request::Status),
        (r#"{"command":"drain"}"#, Request::Drain),
        (
            r#"{"command":"service","name":"web","state":"up"}"#,
            Request::Service {
                name: "web".into(),
                state: ServiceState::Up,
            },
        ),
        (
            r#"{"command":"dns","action":"stop"}"#,
            Request::Dns {
                action: DnsAction::Stop,
            },
        ),
    ];
    for (line, request) in cases {
        assert_eq!(parse(line), Ok(request.clone()), "{line}");
        assert_eq!(serde_json::to_string(&request).unwrap(), line);
    }
}

#[test]
fn every_service_state_maps_to_an_admin_state() {
    for (name, state, admin) in [
        ("up", ServiceState::Up, AdminState::Auto),
        ("auto", ServiceState::Auto, AdminState::Auto),
        ("down", ServiceState::Down, AdminState::Down),
        ("drain", ServiceState::Drain, AdminState::Drain),
    ] {
        let line = format!(r#"{{"command":"service","name":"web","state":"{name}"}}"#);
        assert_eq!(
            parse(&line),
            Ok(Request::Service {
                name: "web".into(),
                state
            })
        );
        assert_eq!(state.admin(), admin, "{name}");
        assert_eq!(state.to_string(), name);
    }
}

#[test]
fn an_unknown_service_state_is_refused_naming_the_states() {
    let e = parse(r#"{"command":"service","name":"web","state":"upp"}"#).unwrap_err();
    assert!(
        e.contains("unknown variant `upp`, expected one of `up`, `auto`, `down`, `drain`"),
        "{e}"
    );
}

#[test]
fn an_unknown_dns_action_is_refused_naming_the_actions() {
    let e = parse(r#"{"command":"dns","action":"restart"}"#).unwrap_err();
    assert!(
        e.contains("unknown variant `restart`, expected `stop` or `start`"),
        "{e}"
    );
}
