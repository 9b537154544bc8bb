//! `[policy]`: node fitness (drain period, hold-down, when the node counts
//! as stable, prepends while draining) and the services the node needs to
//! be fit, into the control logic's [`ControlConfig`] together with what
//! `[node]` and `[[services]]` give it.

use super::{
    Report,
    node::{Node, duration_or, positive_duration_or},
    raw,
    services::Services,
    values::{self, show_duration},
};
use crate::{
    control::{decide::ControlConfig, fitness::FitnessPolicy},
    netlink::desired::VipAddresses,
};

/// The most AS-path prepends while draining.
const MAX_PREPEND: i64 = 16;

/// `[policy]`, with the node and the services, into the control config.
pub(super) fn control(
    raw: &raw::Policy,
    node: &Node,
    services: &Services,
    vip_addresses: VipAddresses,
    report: &mut Report,
) -> Option<ControlConfig> {
    let mut required = Vec::new();
    for (i, name) in raw.required_services.iter().flatten().enumerate() {
        let key = format!("policy.required_services[{i}]");
        if !services.names.contains(name) {
            report.add(
                key,
                format!("there is no service named `{name}`"),
                if services.names.is_empty() {
                    "define the service under [[services]], or remove it here".to_owned()
                } else {
                    format!("name one of the services: {}", services.names.join(", "))
                },
            );
        } else if required.contains(name) {
            report.add(
                key,
                format!("`{name}` is listed twice"),
                "list each service once",
            );
        } else {
            required.push(name.clone());
        }
    }
    let defaults = FitnessPolicy::default();
    let fitness = FitnessPolicy {
        drain_period: duration_or(
            raw.drain_period.as_ref(),
            "policy.drain_period",
            defaults.drain_period,
            report,
        ),
        hold_down_base: duration_or(
            raw.hold_down.as_ref(),
            "policy.hold_down",
            defaults.hold_down_base,
            report,
        ),
        hold_down_max: duration_or(
            raw.hold_down_max.as_ref(),
            "policy.hold_down_max",
            defaults.hold_down_max,
            report,
        ),
        stable_after: positive_duration_or(
            raw.stable_after.as_ref(),
            "policy.stable_after",
            defaults.stable_after,
            report,
        ),
        drain_prepend: raw
            .drain_prepend
            .and_then(|n| {
                report.check(
                    "policy.drain_prepend",
                    values::int::<u8>(n, 0, MAX_PREPEND, "AS-path prepends"),
                )
            })
            .unwrap_or(defaults.drain_prepend),
    };
    if fitness.hold_down_base > fitness.hold_down_max {
        report.add(
            "policy.hold_down_max",
            format!(
                "{} is shorter than the first hold-down, policy.hold_down = {}",
                show_duration(fitness.hold_down_max),
                show_duration(fitness.hold_down_base)
            ),
            "the hold-down doubles with each flap up to hold_down_max: make it at least hold_down",
        );
    }
    Some(ControlConfig {
        services: services.configs.clone(),
        required,
        anycast: node.anycast.clone(),
        node_addrs: node.identity.clone(),
        encap: node.encap,
        vip_addresses,
        fitness,
        // Filled in once the upstream and the overlay are known
        // (`super::doors::spec`).
        doors: None,
        door_sources: Default::default(),
    })
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
