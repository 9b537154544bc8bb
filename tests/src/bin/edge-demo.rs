//! `cargo xtask demo`: the data plane at work on one machine.
//!
//! A PoP and a client namespace joined by a veth pair (the test harness's
//! [`PopAndClient`]); the XDP program attached in native mode on the PoP's
//! end and pinned; the client sends IPv4 and IPv6 datagrams through its
//! stack, and VLAN-tagged and truncated frames through a packet socket; then
//! bpftool dumps the pinned counters by field name. Everything is removed at
//! the end, also when a step fails.

use std::{error::Error, net::UdpSocket, process::Command, time::Duration};

use edge_agent::dataplane::{AttachMode, Dataplane, LoadOptions, detach_pinned, read_pinned_stats};
use edge_common::{STATS_MAP, stats::Counter};
use edge_tests::{
    netns::PopAndClient,
    packet::{ETH_P_IPV4, TPID_8021Q, Vlan, ethernet, ipv4, udp4_frame},
    pins::PinDir,
    plan::{underlay_v4, underlay_v6},
    raw::send_frames,
};

/// Frames of each kind the client sends.
const FRAMES: usize = 5;

fn main() -> Result<(), Box<dyn Error>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the demo creates network namespaces and loads XDP: run it as root".into());
    }
    let PopAndClient { pop, client } = PopAndClient::new();
    let pins = PinDir::new();
    println!(
        "== namespaces {} (PoP, pop0) and {} (client, cli0), joined by a veth pair",
        pop.name(),
        client.name()
    );

    let attachment = pop.run(|| {
        Dataplane::load(&LoadOptions::pinned(pins.path()))?
            .attach_pinned("pop0", AttachMode::Native)
    })?;
    println!(
        "== edge_xdp attached to pop0 (ifindex {}) in native mode, pinned under {}",
        attachment.ifindex,
        pins.path().display()
    );

    println!(
        "== the client sends {FRAMES} UDP datagrams over IPv4 and over IPv6, {FRAMES} IPv4 frames tagged \
         VLAN 100, and {FRAMES} frames whose IPv4 header is cut after 10 bytes"
    );
    let cli0 = client.ifindex("cli0");
    client.run(|| -> Result<(), std::io::Error> {
        let v4 = UdpSocket::bind((underlay_v4(2), 0))?;
        let v6 = UdpSocket::bind((underlay_v6(2), 0))?;
        for i in 0..FRAMES {
            v4.send_to(&[i as u8], (underlay_v4(1), 9))?;
            v6.send_to(&[i as u8], (underlay_v6(1), 9))?;
        }
        let vlan = Vlan {
            tpid: TPID_8021Q,
            vid: 100,
        };
        let tagged = udp4_frame(&[vlan], underlay_v4(2), underlay_v4(1), 9, b"tagged");
        let header = ipv4(underlay_v4(2), underlay_v4(1), 17, &[], &[]);
        let truncated = ethernet(&[], ETH_P_IPV4, &header[..10]);
        send_frames(cli0, &vec![tagged; FRAMES])?;
        send_frames(cli0, &vec![truncated; FRAMES])
    })?;
    std::thread::sleep(Duration::from_millis(300));

    let map = pins.path().join(STATS_MAP);
    println!(
        "== bpftool map dump pinned {} (one value per CPU, field names from BTF)",
        map.display()
    );
    let dump = Command::new("bpftool")
        .args(["map", "dump", "pinned"])
        .arg(&map)
        .output()?;
    print!("{}", String::from_utf8_lossy(&dump.stdout));
    if !dump.status.success() {
        return Err(format!("bpftool: {}", String::from_utf8_lossy(&dump.stderr)).into());
    }

    println!(
        "== summed over CPUs, as `edge-agent xdp stats` prints them (ARP and neighbour discovery count too)"
    );
    let stats = read_pinned_stats(pins.path())?;
    for counter in Counter::ALL {
        println!("   {:<20} {}", counter.name(), stats.get(*counter));
    }

    detach_pinned(pins.path())?;
    println!("== detached and unpinned; the namespaces go away now");
    Ok(())
}
