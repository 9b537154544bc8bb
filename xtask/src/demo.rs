//! `cargo xtask demo`: the data plane at work, end to end, on one machine.
//!
//! Two fresh network namespaces joined by a veth pair: `edge-demo-pop` gets
//! the XDP program in native mode, pinned under `/sys/fs/bpf/edge-demo`;
//! `edge-demo-client` sends it IPv4 and IPv6 datagrams through its stack, and
//! VLAN-tagged and truncated frames through a packet socket (the kernel would
//! never build the latter, and needs no 802.1Q support for either). Then bpftool dumps the counters by name, and
//! everything is removed again, also when a step fails.

use std::{
    fs::File,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    process::Command,
    time::Duration,
};

use anyhow::{Context, Result, bail};

use edge_common::STATS_MAP;

use crate::{build, cmd};

const POP: &str = "edge-demo-pop";
const CLIENT: &str = "edge-demo-client";
const PIN_DIR: &str = "/sys/fs/bpf/edge-demo";
/// Frames of each kind the client sends.
const FRAMES: usize = 5;

/// Runs the demo.
pub fn run() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the demo creates network namespaces and loads XDP: run it as root");
    }
    let agent = build::agent(false)?;
    teardown(&agent); // leftovers of an interrupted run
    let result = play(&agent);
    teardown(&agent);
    result
}

fn play(agent: &std::path::Path) -> Result<()> {
    for ns in [POP, CLIENT] {
        ip(&["netns", "add", ns])?;
    }
    ip(&[
        "-n", POP, "link", "add", "pop0", "type", "veth", "peer", "name", "cli0", "netns", CLIENT,
    ])?;
    for (ns, dev, v4, v6) in [
        (POP, "pop0", "198.51.100.1/24", "2001:db8:ff::1/64"),
        (CLIENT, "cli0", "198.51.100.2/24", "2001:db8:ff::2/64"),
    ] {
        ip(&["-n", ns, "link", "set", dev, "up"])?;
        ip(&["-n", ns, "addr", "add", v4, "dev", dev])?;
        ip(&["-n", ns, "addr", "add", v6, "dev", dev, "nodad"])?;
    }
    println!("== attach edge_xdp to pop0 in {POP} (native mode), pins in {PIN_DIR}");
    cmd::run(Command::new(agent).args([
        "--netns",
        POP,
        "xdp",
        "attach",
        "--iface",
        "pop0",
        "--mode",
        "native",
        "--pin-dir",
        PIN_DIR,
    ]))?;

    println!(
        "== {CLIENT} sends {FRAMES} UDP datagrams each over IPv4 and IPv6, {FRAMES} IPv4 frames in VLAN 100, \
         and {FRAMES} truncated IPv4 frames"
    );
    std::thread::scope(|s| {
        s.spawn(send_traffic)
            .join()
            .expect("traffic thread panicked")
    })?;
    std::thread::sleep(Duration::from_millis(300));

    println!("== bpftool map dump pinned {PIN_DIR}/{STATS_MAP} (per CPU, field names from BTF)");
    cmd::run(Command::new("bpftool").args([
        "map",
        "dump",
        "pinned",
        &format!("{PIN_DIR}/{STATS_MAP}"),
    ]))?;
    println!("== edge-agent xdp stats (summed over CPUs; ARP and ND count as non_ip / ipv6 too)");
    cmd::run(Command::new(agent).args(["xdp", "stats", "--pin-dir", PIN_DIR]))?;
    Ok(())
}

/// Sends the demo traffic from inside the client namespace (this thread only).
fn send_traffic() -> Result<()> {
    enter_netns(CLIENT)?;
    let v4 = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    let v6 = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0))?;
    let targets: [(&UdpSocket, SocketAddr); 2] = [
        (&v4, "198.51.100.1:9".parse()?),
        (&v6, "[2001:db8:ff::1]:9".parse()?),
    ];
    for (socket, target) in targets {
        for i in 0..FRAMES {
            socket
                .send_to(format!("edge demo {i}").as_bytes(), target)
                .with_context(|| format!("sending to {target}"))?;
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    send_raw_frames()
}

/// Sends, through a packet socket, frames carrying an IPv4 header behind an
/// 802.1Q tag (VLAN 100), and frames whose IPv4 header is cut after 10 bytes.
fn send_raw_frames() -> Result<()> {
    let name = std::ffi::CString::new("cli0").expect("no NUL");
    // SAFETY: NUL-terminated name; resolved in this thread's network namespace.
    let ifindex = match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => bail!("cli0 not found in {CLIENT}"),
        index => index as i32,
    };
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    if fd < 0 {
        bail!("packet socket: {}", std::io::Error::last_os_error());
    }
    let mut ipv4 = [
        0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 198, 51, 100, 2, 198, 51, 100, 1,
    ];
    let sum = checksum(&ipv4).to_be_bytes();
    ipv4[10..12].copy_from_slice(&sum);
    let mut tagged = vec![0xffu8; 12]; // broadcast destination and source bytes
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 100, 0x08, 0x00]); // 802.1Q, VLAN 100, IPv4
    tagged.extend_from_slice(&ipv4);
    let mut truncated = vec![0xffu8; 12];
    truncated.extend_from_slice(&[0x08, 0x00]);
    truncated.extend_from_slice(&ipv4[..10]);
    // SAFETY: an all-zero sockaddr_ll is valid; the fields set below complete it.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = ifindex;
    addr.sll_halen = 6;
    addr.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    let mut result = Ok(());
    for frame in std::iter::repeat_n([&tagged, &truncated], FRAMES).flatten() {
        // SAFETY: `frame` and `addr` are valid for the given lengths during the call.
        let sent = unsafe {
            libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if sent < 0 {
            result = Err(anyhow::anyhow!(
                "sending a raw frame: {}",
                std::io::Error::last_os_error()
            ));
            break;
        }
    }
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
    result
}

/// The Internet checksum (RFC 1071) of `bytes`.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn enter_netns(name: &str) -> Result<()> {
    let handle =
        File::open(format!("/run/netns/{name}")).with_context(|| format!("netns {name}"))?;
    // SAFETY: valid namespace fd; affects only the calling thread.
    if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns {name}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Removes everything the demo makes; quiet about what is already gone.
fn teardown(agent: &std::path::Path) {
    if std::path::Path::new(PIN_DIR).exists() {
        let _ = Command::new(agent)
            .args(["xdp", "detach", "--iface", "pop0", "--pin-dir", PIN_DIR])
            .output();
    }
    for ns in [POP, CLIENT] {
        let _ = Command::new("ip").args(["netns", "del", ns]).output();
    }
}
