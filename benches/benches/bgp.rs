//! BGP speaker figures: UPDATE encode and decode rates (pure code), and the
//! time from an announce or withdraw call to the UPDATE on the wire toward a
//! real BIRD, seen by a packet socket on the speaker's interface.
//!
//! Run with `cargo xtask bench bgp` (root, for the namespaces).

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use edge_agent::bgp::{
    codec::{CodecOptions, decode, encode, pack_updates},
    message::{AsSegment, Attributes, Family, Message, Origin, Prefix},
    rib_out::OriginAttrs,
    session::State,
};
use edge_benches::{capture, next_update};
use edge_tests::{
    bird::{BgpNeighbor, Bird, bgp_config},
    plan::{CDN_ASN, ISP_ASNS, underlay_v4},
    speaker::Speaker,
    upstream,
};

fn main() {
    codec_rates();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "the wire-latency part needs network namespaces: run as root (`cargo xtask bench bgp`)"
        );
        std::process::exit(1);
    }
    wire_latency();
}

fn codec_rates() {
    let options = CodecOptions {
        four_octet_as: true,
    };
    let attrs = Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(vec![AsSegment::Sequence(vec![CDN_ASN])]),
        next_hop: Some(Ipv4Addr::new(198, 51, 100, 2)),
        communities: vec![CDN_ASN << 16 | 7],
        ..Attributes::default()
    };
    let v4: Vec<Prefix> = (0..10_000u32)
        .map(|i| Prefix::V4 {
            addr: Ipv4Addr::from(0x0a00_0000 + (i << 8)),
            len: 24,
        })
        .collect();
    let v6: Vec<Prefix> = (0..10_000u16)
        .map(|i| Prefix::V6 {
            addr: Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 0),
            len: 48,
        })
        .collect();
    let hop = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 2).octets();
    let all: Vec<Prefix> = v4.iter().chain(&v6).copied().collect();
    let messages: Vec<Message> = pack_updates(&attrs, &all, &[], &hop, &options)
        .unwrap()
        .into_iter()
        .map(Message::Update)
        .collect();
    let rounds = 50;
    let start = Instant::now();
    let mut wire = Vec::new();
    for _ in 0..rounds {
        wire.clear();
        for m in &messages {
            encode(m, &options, &mut wire).unwrap();
        }
    }
    let encode_time = start.elapsed();
    let start = Instant::now();
    let mut decoded_prefixes = 0;
    for _ in 0..rounds {
        let mut at = 0;
        while let Some(d) = decode(&wire[at..], &options).unwrap() {
            at += d.len;
            if let Message::Update(u) = d.message {
                decoded_prefixes +=
                    u.nlri.len() + u.attributes.mp_reach.map_or(0, |r| r.nlri.len());
            }
        }
    }
    let decode_time = start.elapsed();
    assert_eq!(decoded_prefixes, rounds * all.len());
    let n = (rounds * messages.len()) as f64;
    let p = (rounds * all.len()) as f64;
    println!(
        "UPDATE codec, {} messages packing {} prefixes (IPv4 /24 and IPv6 /48), {rounds} rounds:\n",
        messages.len(),
        all.len()
    );
    println!("| | messages/s | prefixes/s |\n|---|---:|---:|");
    println!(
        "| encode | {:.0} | {:.0} |",
        n / encode_time.as_secs_f64(),
        p / encode_time.as_secs_f64()
    );
    println!(
        "| decode | {:.0} | {:.0} |\n",
        n / decode_time.as_secs_f64(),
        p / decode_time.as_secs_f64()
    );
}

fn wire_latency() {
    let (isp, edge) = upstream::link();
    let _bird = Bird::start(
        &isp,
        &bgp_config(
            underlay_v4(1),
            ISP_ASNS[0],
            &[BgpNeighbor::new("edge", underlay_v4(2).into(), CDN_ASN)],
        ),
    );
    let speaker = Speaker::spawn(
        &edge,
        upstream::neighbor(
            underlay_v4(1).into(),
            ISP_ASNS[0],
            vec![Family::IPV4_UNICAST],
        ),
    );
    speaker.wait_for("Established", Duration::from_secs(15), |s| {
        s.state == Some(State::Established)
    });
    let fd = edge.run(|| capture("up0"));
    let prefix = Prefix::V4 {
        addr: Ipv4Addr::new(203, 0, 113, 0),
        len: 24,
    };
    let (mut announce, mut withdraw) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        for (on, samples) in [(true, &mut announce), (false, &mut withdraw)] {
            let start = Instant::now();
            if on {
                speaker.announce(prefix, OriginAttrs::default());
            } else {
                speaker.withdraw(prefix);
            }
            samples.push(next_update(&fd) - start);
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    println!(
        "Call to UPDATE on the wire toward BIRD (packet socket on the speaker's interface), 200 each:\n"
    );
    println!("| command | median | p99 | max |\n|---|---:|---:|---:|");
    for (name, samples) in [("announce", &mut announce), ("withdraw", &mut withdraw)] {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
        println!(
            "| {name} | {:?} | {:?} | {:?} |",
            at(0.5),
            at(0.99),
            samples[samples.len() - 1]
        );
    }
}
