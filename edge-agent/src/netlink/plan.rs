//! The smallest set of changes that turns the actual state into the
//! desired one, in an order that never takes away before it gives: the
//! interface first, then additions (addresses, neighbours, routes), then
//! removals. Pure.

use super::state::{Actual, Change, Desired, LinkState};

/// The changes from `actual` to `desired`; empty when they agree.
pub fn plan(desired: &Desired, actual: &Actual) -> Vec<Change> {
    let mut changes = Vec::new();
    match actual.link {
        None => changes.extend([Change::CreateLink, Change::LinkUp]),
        Some(link) if !link.up => changes.push(Change::LinkUp),
        Some(_) => {}
    }
    changes.extend(
        desired
            .addresses
            .difference(&actual.addresses)
            .map(|a| Change::AddAddress(*a)),
    );
    changes.extend(
        desired
            .neighbours
            .difference(&actual.neighbours)
            .map(|n| Change::AddNeighbour(*n)),
    );
    changes.extend(
        desired
            .routes
            .iter()
            .filter_map(|(dst, route)| match actual.routes.get(dst) {
                None => Some(Change::AddRoute(*route)),
                Some(ours) if ours != route => Some(Change::ReplaceRoute(*route)),
                Some(_) => None,
            }),
    );
    changes.extend(
        actual
            .routes
            .iter()
            .filter(|(dst, _)| !desired.routes.contains_key(dst))
            .map(|(_, route)| Change::DelRoute(*route)),
    );
    changes.extend(
        actual
            .addresses
            .difference(&desired.addresses)
            .map(|a| Change::DelAddress(*a)),
    );
    changes.extend(
        actual
            .neighbours
            .difference(&desired.neighbours)
            .map(|n| Change::DelNeighbour(*n)),
    );
    changes
}

/// What removing everything the agent owns takes (shutdown without
/// keep-state): its routes, its neighbour entries and its addresses (the
/// interface itself is deleted separately).
pub fn teardown(actual: &Actual) -> Vec<Change> {
    plan(
        &Desired::default(),
        &Actual {
            // The interface is not to be created or brought up.
            link: Some(LinkState {
                index: actual.link.map_or(0, |l| l.index),
                up: true,
            }),
            ..actual.clone()
        },
    )
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
