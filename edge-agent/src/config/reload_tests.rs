//! The reload plan: what a SIGHUP applies at once, what it names as
//! needing a restart, and the line the daemon logs.

use super::{LivePart, ReloadPlan, RestartPart, plan};
use crate::config::tests::{MINIMAL, ZONE_LINES, minimal_replacing, minimal_with, ok, with_dns};

/// The plan for reloading `new` over `running`, both parsed.
fn plan_of(running: &str, new: &str) -> ReloadPlan {
    plan(&ok(running), &ok(new))
}

/// `ZONE_LINES` with one more record.
fn more_zone_lines() -> String {
    ZONE_LINES.replace(
        "\"www A 203.0.113.10\"",
        "\"www A 203.0.113.10\", \"api A 203.0.113.11\"",
    )
}

#[test]
fn the_same_config_reloads_the_trust_material_and_needs_no_restart() {
    let p = plan_of(MINIMAL, MINIMAL);
    assert_eq!(p.live, [LivePart::Trust]);
    assert!(p.restart.is_empty());
    assert_eq!(
        p.to_string(),
        "config reloaded (trust material and allow-list)"
    );
}

#[test]
fn trust_files_and_the_allow_list_apply_at_once() {
    let new = minimal_replacing(
        "key = \"/etc/edge/pop-a.key\"",
        "key = \"/etc/edge/pop-a-2.key\"\ncrl = \"/etc/edge/crl.pem\"\nallow = [\"edge://pop-b\"]\nhandshake_timeout = \"3s\"",
    );
    let p = plan_of(MINIMAL, &new);
    assert_eq!(p.live, [LivePart::Trust]);
    assert!(p.restart.is_empty(), "{p}");
}

#[test]
fn the_rest_of_the_overlay_waits_for_a_restart() {
    let new = minimal_replacing(
        "identity_ranges = [\"192.0.2.0/24\"]",
        "identity_ranges = [\"192.0.2.0/24\"]\nhold_time = 30\nallow = [\"edge://pop-b\"]",
    );
    let p = plan_of(MINIMAL, &new);
    assert_eq!(p.live, [LivePart::Trust]);
    assert_eq!(p.restart, [RestartPart::Overlay]);
}

#[test]
fn each_section_that_cannot_reload_is_named_in_order() {
    let new = minimal_with(
        "[policy]\ndrain_period = \"1m\"\n\
         [[upstream]]\naddress = \"198.51.100.1\"\nasn = 64496\n\
         [netlink]\nperiod = \"20s\"\n",
    )
    .replace(
        "address = \"203.0.113.10:80\"",
        "address = \"203.0.113.10:81\"",
    );
    let p = plan_of(MINIMAL, &new);
    assert_eq!(
        p.restart,
        [
            RestartPart::Services,
            RestartPart::Upstream,
            RestartPart::HealthChecks,
            RestartPart::Netlink,
        ]
    );
    assert_eq!(
        p.to_string(),
        "trust material and allow-list reloaded; changes to services and policy, \
         upstream (neighbours and their BFD), health checks, netlink take effect after a restart"
    );
}

#[test]
fn the_data_plane_and_the_daemon_settings_wait_for_a_restart() {
    let new = minimal_replacing("asn = 64500", "asn = 64500\nmtu = 1400")
        + "[daemon]\nlog_level = \"debug\"\n";
    assert_eq!(
        plan_of(MINIMAL, &new).restart,
        [RestartPart::Dataplane, RestartPart::Daemon]
    );
}

#[test]
fn keep_state_is_part_of_netlink() {
    // The run loop applies `--keep-state` to the new config before
    // planning, so that the flag alone is no change.
    let running = ok(MINIMAL);
    let mut new = running.clone();
    new.agent.netlink.keep_state = !running.agent.netlink.keep_state;
    assert_eq!(plan(&running, &new).restart, [RestartPart::Netlink]);
}

#[test]
fn dns_zones_and_limits_apply_at_once() {
    let running = with_dns(ZONE_LINES);
    let new = with_dns(&format!(
        "nsid = \"\"\nudp_payload = 4096\n[dns.rate_limit]\nresponses_per_second = 50\n{}",
        more_zone_lines()
    ));
    let p = plan_of(&running, &new);
    assert_eq!(p.live, [LivePart::Trust, LivePart::Dns]);
    assert!(p.restart.is_empty(), "{p}");
    assert_eq!(
        p.to_string(),
        "config reloaded (trust material and allow-list, DNS zones and limits)"
    );
}

#[test]
fn dns_listeners_wait_for_a_restart_while_the_zones_apply() {
    let running = with_dns(ZONE_LINES);
    for change in ["tcp_idle_timeout = \"3s\"\n", "tcp_max_connections = 9\n"] {
        let p = plan_of(
            &running,
            &with_dns(&format!("{change}{}", more_zone_lines())),
        );
        assert_eq!(p.live, [LivePart::Trust, LivePart::Dns], "{change}");
        assert_eq!(p.restart, [RestartPart::DnsListeners], "{change}");
    }
}

#[test]
fn adding_or_removing_dns_waits_for_a_restart() {
    let with = with_dns(ZONE_LINES);
    // Without [dns], the `dns` service stays.
    let without = with
        .replace("[dns]\nservice = \"dns\"\n", "")
        .replace(ZONE_LINES, "");
    for (running, new) in [(&without, &with), (&with, &without)] {
        let p = plan_of(running, new);
        assert_eq!(p.live, [LivePart::Trust]);
        assert_eq!(p.restart, [RestartPart::DnsAddedOrRemoved]);
        assert!(
            p.to_string()
                .ends_with("changes to [dns] (added or removed) take effect after a restart")
        );
    }
}

#[test]
fn bfd_changes_wait_for_a_restart_of_what_runs_the_sessions() {
    let isp = "[[upstream]]\naddress = \"198.51.100.1\"\nasn = 64496\n";
    let with_bfd = minimal_with(&format!("{isp}bfd = true\n"));
    // A neighbour's BFD turned on.
    let p = plan_of(&minimal_with(isp), &with_bfd);
    assert_eq!(p.restart, [RestartPart::Upstream]);
    assert_eq!(
        p.to_string(),
        "trust material and allow-list reloaded; changes to upstream (neighbours and their BFD) \
         take effect after a restart"
    );
    // `[bfd]` changed under a neighbour that takes it.
    let faster = minimal_with(&format!("[bfd]\nmin_tx = \"50ms\"\n{isp}bfd = true\n"));
    assert_eq!(plan_of(&with_bfd, &faster).restart, [RestartPart::Upstream]);
    // `[bfd]` changed with no neighbour taking it: nothing changes.
    let unused = minimal_with(&format!("[bfd]\nmin_tx = \"50ms\"\n{isp}"));
    assert!(plan_of(&minimal_with(isp), &unused).restart.is_empty());
    // The overlay's BFD.
    let line = "identity_ranges = [\"192.0.2.0/24\"]";
    for change in ["bfd = false", "bfd = { multiplier = 5 }"] {
        let new = minimal_replacing(line, &format!("{line}\n{change}"));
        assert_eq!(
            plan_of(MINIMAL, &new).restart,
            [RestartPart::Overlay],
            "{change}"
        );
    }
    let same = minimal_replacing(line, &format!("{line}\nbfd = true"));
    assert!(plan_of(MINIMAL, &same).restart.is_empty());
}

#[test]
fn doors_and_the_strangers_limits_wait_for_a_restart() {
    let doors = minimal_with("[doors]\nsyn_rate = 50\n");
    let p = plan_of(MINIMAL, &doors);
    assert_eq!(p.live, [LivePart::Trust]);
    assert_eq!(p.restart, [RestartPart::Doors]);
    assert_eq!(
        p.to_string(),
        "trust material and allow-list reloaded; changes to [doors] (the XDP program's policy \
         for the agent's own ports) take effect after a restart"
    );
    assert_eq!(
        plan_of(
            &doors,
            &minimal_with("[doors]\nenabled = false\nsyn_rate = 50\n")
        )
        .restart,
        [RestartPart::Doors]
    );
    // Written out with the defaults: no change.
    let same = minimal_with("[doors]\nenabled = true\nsyn_rate = 20\nsyn_burst = 40\n");
    assert!(plan_of(MINIMAL, &same).restart.is_empty());
    // `[overlay.strangers]`, and the candidates' budget, are the overlay's.
    for change in [
        "[overlay.strangers]\nrate = 5",
        "[overlay.strangers]\ntimeout = \"10s\"",
        "max_handshakes = 32",
    ] {
        let line = "identity_ranges = [\"192.0.2.0/24\"]";
        let new = minimal_replacing(line, &format!("{line}\n{change}"));
        assert_eq!(
            plan_of(MINIMAL, &new).restart,
            [RestartPart::Overlay],
            "{change}"
        );
    }
    // Both at once, in order.
    let both = minimal_replacing(
        "identity_ranges = [\"192.0.2.0/24\"]",
        "identity_ranges = [\"192.0.2.0/24\"]\n[overlay.strangers]\nper_source = 1",
    ) + "[doors]\nipv6_prefix = 56\n";
    assert_eq!(
        plan_of(MINIMAL, &both).restart,
        [RestartPart::Overlay, RestartPart::Doors]
    );
}
