//! The edge XDP program, attached to the Internet-facing NIC.
//!
//! For now it parses every frame (Ethernet with up to two VLAN tags, IPv4
//! with options, IPv6), counts it by family or by the reason it is malformed,
//! and passes it to the kernel. Every packet access is bounds-checked against
//! `data_end` right before use (see [`packet`]); nothing is logged per packet.
#![no_std]
#![no_main]

mod maps;
mod packet;
mod parse;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

/// Entry point: classify the frame, count the outcome, hand it to the kernel.
#[xdp]
pub fn edge_xdp(ctx: XdpContext) -> u32 {
    let frame = parse::classify(&ctx);
    maps::record(frame.outcome, frame.vlan_tagged);
    xdp_action::XDP_PASS
}

/// The kernel only lets GPL-compatible programs call GPL-only helpers
/// (`bpf_fib_lookup`, used by the forwarding path). The object is dual
/// licensed GPL-2.0 OR MIT, which the kernel spells "Dual MIT/GPL".
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // Unreachable in a verified program: the verifier rejects any path that
    // could get here, because it would never terminate.
    loop {}
}

/// Pass-through program: the baseline when timing [`edge_xdp`], and what the
/// far end of a veth runs so that native-mode `XDP_TX` frames arrive.
#[xdp]
pub fn edge_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}
