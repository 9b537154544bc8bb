//! `[policy]`: fitness timing and the services the node needs.

use std::time::Duration;

use crate::config::tests::{assert_problem, minimal_with, ok, problems};

#[test]
fn policy_maps_and_refers_to_services() {
    let c = ok(&minimal_with(
        "[policy]\nrequired_services = [\"web\"]\ndrain_period = \"1m\"\nhold_down = \"5s\"\nhold_down_max = \"1h\"\nstable_after = \"30m\"\ndrain_prepend = 0\n",
    ));
    let f = c.agent.control.fitness;
    assert_eq!(f.drain_period, Duration::from_secs(60));
    assert_eq!(f.hold_down_base, Duration::from_secs(5));
    assert_eq!(f.hold_down_max, Duration::from_secs(3600));
    assert_eq!(f.stable_after, Duration::from_secs(1800));
    assert_eq!(f.drain_prepend, 0);
    assert_eq!(c.agent.control.required, ["web"]);
    let e = problems(&minimal_with(
        "[policy]\nrequired_services = [\"web\", \"api\", \"web\"]\nhold_down = \"20s\"\nhold_down_max = \"10s\"\nstable_after = \"0s\"\n",
    ));
    assert_problem(&e, "policy.required_services[1]", "no service named `api`");
    assert_problem(&e, "policy.required_services[2]", "listed twice");
    assert_problem(
        &e,
        "policy.hold_down_max",
        "shorter than the first hold-down",
    );
    assert_problem(&e, "policy.stable_after", "longer than zero");
}
