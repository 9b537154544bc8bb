//! The edge XDP program, attached to the Internet-facing NIC.
//!
//! Per packet, in order:
//! 1. parse Ethernet (up to two VLAN tags), IPv4 (with options) or IPv6
//!    (up to four extension headers) ([`parse`]);
//! 2. a tunnel packet for this node is decapsulated if it comes from a
//!    trusted peer and carries service traffic, else dropped ([`decap`]);
//! 3. traffic outside the anycast prefixes passes untouched, except to
//!    the agent's own ports, which meet their doors ([`anycast`],
//!    [`door`]); otherwise the flow's service is looked up
//!    ([`flow`], [`service`]), and non-service traffic passes untouched;
//! 4. served locally (pass), or encapsulated to the peer chosen by the flow
//!    table and the service's Maglev table ([`encap`]), or, with no
//!    capacity anywhere, passed or dropped by the service's policy;
//! 5. exactly one outcome counter per packet, plus attribute counters and
//!    per-service and per-peer packets and bytes ([`maps`]).
//!
//! Every packet access is bounds-checked right before use ([`packet`]);
//! nothing is logged per packet.
#![no_std]
#![no_main]

mod anycast;
mod decap;
mod door;
mod encap;
mod flow;
mod icmp;
mod maps;
mod packet;
mod parse;
mod service;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use edge_common::{
    maps::{FAMILY_V4, SERVICE_DROP_WHEN_UNAVAILABLE},
    stats::Counter,
};

use crate::{
    maps::{Attrs, CONFIG, ServiceCount, Verdict, count_service, record},
    service::Target,
};

/// Entry point: run the pipeline, count the outcome, return the action.
#[xdp]
pub fn edge_xdp(ctx: XdpContext) -> u32 {
    let mut attrs = Attrs::default();
    let verdict = process(&ctx, &mut attrs);
    record(verdict.outcome(), attrs);
    verdict.action()
}

#[inline(always)]
fn process(ctx: &XdpContext, attrs: &mut Attrs) -> Verdict {
    let pass = |c| Verdict::new(c, xdp_action::XDP_PASS);
    let eth = match parse::ethernet(ctx, attrs) {
        Ok(eth) => eth,
        Err(outcome) => return pass(outcome),
    };
    let Some(family) = parse::family_of(eth.ethertype) else {
        return pass(Counter::NonIp);
    };
    let l3 = match parse::ip(ctx, family, eth.l3) {
        Ok(l3) => l3,
        Err(outcome) => return pass(outcome),
    };
    attrs.set(if family == FAMILY_V4 {
        Counter::Ipv4
    } else {
        Counter::Ipv6
    });
    let Some(config) = CONFIG.get(0) else {
        return pass(Counter::NonService);
    };
    if decap::is_for_us(ctx, &l3, config) {
        return decap::handle(ctx, &eth, &l3, attrs);
    }
    if !anycast::contains(ctx, &l3, config) {
        // The node's own addresses: the agent's ports meet their doors,
        // everything else passes untouched.
        return door::check(ctx, &l3);
    }
    let verdict = serve(ctx, &l3, config.maglev_size, attrs);
    // Too big to encapsulate: forwarding left the MTU in scratch memory and
    // the answer is built from here, where the stack is shallow.
    if verdict.outcome() == Counter::MtuIcmp as u32 {
        return match maps::scratch() {
            Some(scratch) => icmp::too_big(ctx, &l3, scratch.icmp_mtu),
            None => pass(Counter::MtuExceeded),
        };
    }
    verdict
}

/// Service traffic (or not): look up, decide, serve locally or forward.
/// Kept out of line, so its stack frame and the decap path's never add up.
#[inline(never)]
fn serve(ctx: &XdpContext, l3: &parse::L3, maglev_size: u32, attrs: &mut Attrs) -> Verdict {
    let pass = |c| Verdict::new(c, xdp_action::XDP_PASS);
    let Some(scratch) = maps::scratch() else {
        return pass(Counter::NonService);
    };
    if let Err(outcome) = flow::extract(ctx, l3, &mut scratch.flow, attrs) {
        return pass(outcome);
    }
    let Some(svc) = service::lookup(&scratch.flow, &mut scratch.service) else {
        return pass(Counter::NonService);
    };
    let bytes = packet::frame_len(ctx);
    match service::choose(svc, &scratch.flow, maglev_size, attrs) {
        Target::Local => {
            count_service(svc.id, ServiceCount::Local, bytes);
            pass(Counter::Local)
        }
        Target::Peer(id) => {
            let verdict = encap::forward(ctx, l3, id, attrs);
            let outcome = verdict.outcome();
            if outcome == Counter::ForwardedTx as u32
                || outcome == Counter::ForwardedRedirect as u32
            {
                count_service(svc.id, ServiceCount::Forwarded, bytes);
            }
            verdict
        }
        Target::Unavailable => unavailable(svc.id, svc.flags),
    }
}

/// No local and no remote capacity: the service's policy decides.
#[inline(always)]
fn unavailable(id: u32, flags: u32) -> Verdict {
    count_service(id, ServiceCount::Unavailable, 0);
    if flags & SERVICE_DROP_WHEN_UNAVAILABLE != 0 {
        Verdict::new(Counter::UnavailableDrop, xdp_action::XDP_DROP)
    } else {
        Verdict::new(Counter::UnavailablePass, xdp_action::XDP_PASS)
    }
}

/// Pass-through program: the baseline when timing [`edge_xdp`], and what the
/// far end of a veth runs so that native-mode `XDP_TX` frames arrive.
#[xdp]
pub fn edge_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// The kernel only lets GPL-compatible programs call GPL-only helpers
/// (`bpf_fib_lookup`). The object is dual licensed GPL-2.0 OR MIT, which
/// the kernel spells "Dual MIT/GPL".
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
