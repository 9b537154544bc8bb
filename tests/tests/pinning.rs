//! Pinned attachments: they outlive the process that made them, bpftool
//! prints the counters by field name from BTF, a second attach replaces the
//! program in place keeping the counters, detach removes every pin, and a
//! pinned map of another layout is refused instead of reused.

use std::{net::UdpSocket, process::Command};

use edge_agent::dataplane::{
    AttachMode, Dataplane, DataplaneError, LoadOptions, detach_pinned, read_pinned_stats,
};
use edge_common::{STATS_MAP, stats::Counter};
use edge_tests::{
    command::stdout_of,
    netns::{Netns, PopAndClient},
    pins::PinDir,
    plan::underlay_v4,
    privilege::require_root,
};

fn send_udp(client: &Netns, count: usize) {
    client.run(|| {
        let socket = UdpSocket::bind((underlay_v4(2), 0)).expect("bind");
        for _ in 0..count {
            socket.send_to(b"x", (underlay_v4(1), 9)).expect("send");
        }
    });
}

#[test]
fn pinned_attachment_outlives_its_loader_and_bpftool_shows_field_names() {
    if !require_root("pinned_attachment_outlives_its_loader_and_bpftool_shows_field_names") {
        return;
    }
    let PopAndClient { pop, client } = PopAndClient::new();
    let pins = PinDir::new();

    let attachment = pop.run(|| {
        let mut dp = Dataplane::load(&LoadOptions::pinned(pins.path())).expect("load");
        dp.attach_pinned("pop0", AttachMode::Auto)
            .expect("attach and pin")
        // `dp` is dropped here: only the pins keep the program attached.
    });
    assert_eq!(attachment.mode, Some(AttachMode::Native));
    let first = pop
        .xdp_program("pop0")
        .expect("program still attached after the loader is gone");

    send_udp(&client, 10);
    let stats = read_pinned_stats(pins.path()).expect("read pinned counters");
    assert!(stats.get(Counter::Ipv4) >= 10, "{stats:?}");

    // Every map but per-run scratch memory is pinned, and bpftool prints the
    // values of the tables by field name too.
    for map in edge_common::PINNED_MAPS {
        assert!(pins.path().join(map).exists(), "{map} is not pinned");
    }
    let config = stdout_of(
        Command::new("bpftool")
            .args(["-j", "map", "dump", "pinned"])
            .arg(pins.path().join(edge_common::CONFIG_MAP)),
    );
    for field in ["underlay_v4", "gue_port", "maglev_size", "prefixes_v4"] {
        assert!(
            config.contains(&format!("\"{field}\":")),
            "bpftool lacks config field {field}: {config}"
        );
    }
    let svc_stats = stdout_of(
        Command::new("bpftool")
            .args(["-j", "map", "dump", "pinned"])
            .arg(pins.path().join(edge_common::SERVICE_STATS_MAP)),
    );
    assert!(
        svc_stats.contains("\"forwarded_bytes\":"),
        "bpftool lacks per-service field names"
    );

    let dump = stdout_of(
        Command::new("bpftool")
            .args(["-j", "map", "dump", "pinned"])
            .arg(pins.path().join(STATS_MAP)),
    );
    for counter in Counter::ALL {
        assert!(
            dump.contains(&format!("\"{}\":", counter.name())),
            "bpftool lacks field {}: {dump}",
            counter.name()
        );
    }

    // A second attach swaps the program inside the existing link; the map
    // is reused, so no counter goes back.
    let replaced = pop.run(|| {
        let mut dp = Dataplane::load(&LoadOptions::pinned(pins.path())).expect("reload");
        dp.attach_pinned("pop0", AttachMode::Generic)
            .expect("replace")
    });
    assert_eq!(replaced.mode, None, "replacing keeps the link and its mode");
    let second = pop.xdp_program("pop0").expect("still attached");
    assert_ne!(first.id, second.id, "the new program is the one attached");
    assert!(second.native, "the link kept its native mode");
    let after = read_pinned_stats(pins.path()).expect("counters");
    assert!(
        after.get(Counter::Ipv4) >= stats.get(Counter::Ipv4),
        "counters survived the replace"
    );

    detach_pinned(pins.path()).expect("detach");
    assert_eq!(
        pop.xdp_program("pop0"),
        None,
        "detach removes the program from the interface"
    );
    assert!(
        !pins.path().exists(),
        "the last detach removes every pin and the directory"
    );
    match detach_pinned(pins.path()) {
        Err(DataplaneError::NotAttached { .. }) => {}
        other => panic!("second detach: expected NotAttached, got {other:?}"),
    }
}

#[test]
fn a_pinned_map_with_another_layout_is_refused() {
    if !require_root("a_pinned_map_with_another_layout_is_refused") {
        return;
    }
    let pins = PinDir::new();
    std::fs::create_dir_all(pins.path()).expect("mkdir on bpffs");
    let map = pins.path().join(STATS_MAP);
    let created = Command::new("bpftool")
        .args(["map", "create"])
        .arg(&map)
        .args([
            "type",
            "percpu_array",
            "key",
            "4",
            "value",
            "8",
            "entries",
            "1",
            "name",
            STATS_MAP,
        ])
        .status()
        .expect("bpftool");
    assert!(created.success());
    match Dataplane::load(&LoadOptions::pinned(pins.path())) {
        Err(e @ DataplaneError::PinnedMapIncompatible { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains("value 8 B") && message.contains("detach"),
                "{message}"
            );
        }
        Err(other) => panic!("expected PinnedMapIncompatible, got {other}"),
        Ok(_) => panic!("a map of another layout must not be reused"),
    }
}

#[test]
fn a_failed_pinned_attach_leaves_nothing_behind() {
    if !require_root("a_failed_pinned_attach_leaves_nothing_behind") {
        return;
    }
    let ns = Netns::new();
    let pins = PinDir::new();
    let result = ns.run(|| {
        let mut dp = Dataplane::load(&LoadOptions::pinned(pins.path())).expect("load");
        assert!(pins.path().join(STATS_MAP).exists(), "load pins the maps");
        dp.attach_pinned("nosuch0", AttachMode::Auto)
    });
    match result {
        Err(DataplaneError::NoSuchInterface(name)) => assert_eq!(name, "nosuch0"),
        other => panic!("expected NoSuchInterface, got {other:?}"),
    }
    assert!(
        !pins.path().exists(),
        "the pins made by the failed attach are gone"
    );
}
