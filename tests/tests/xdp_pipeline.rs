//! The whole XDP pipeline, run by the kernel (BPF_PROG_TEST_RUN) on crafted
//! frames arriving on an interface with real routes and neighbours, so
//! `bpf_fib_lookup` answers as on a NIC. Table-driven: each case is a
//! frame, the action, exactly the counters it must move, and for
//! encapsulation and decapsulation the exact output bytes (outer checksum
//! and the MAC addresses from the FIB lookup included).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsFd,
};

use edge_agent::dataplane::{
    Dataplane, Encap, LoadOptions, PeerSpec, Protocol, ServiceBackend, ServiceMatch, ServiceSpec,
};
use edge_common::{PROGRAM_NAME, hash::flow_hash, stats::Counter};
use edge_tests::{
    counters::changed,
    fixture::*,
    packet::*,
    plan::{VIP_DNS_V4, VIP_DNS_V6, VIP_WEB_V4, VIP_WEB_V6, client_v4, underlay_v4, underlay_v6},
    privilege::require_root,
    testrun::{XdpAction, run_on},
};

/// What the output frame must be.
enum Out {
    /// Unchanged.
    Same,
    /// Exactly these bytes.
    Bytes(Vec<u8>),
}

struct Case {
    name: &'static str,
    frame: Vec<u8>,
    action: XdpAction,
    moved: Vec<(Counter, u64)>,
    out: Out,
}

fn case(
    name: &'static str,
    frame: Vec<u8>,
    action: XdpAction,
    moved: &[Counter],
    out: Out,
) -> Case {
    Case {
        name,
        frame,
        action,
        moved: moved.iter().map(|c| (*c, 1)).collect(),
        out,
    }
}

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn hash(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, proto: u8) -> u32 {
    let a16 = |a: IpAddr| match a {
        IpAddr::V4(a) => {
            let mut o = [0u8; 16];
            o[..4].copy_from_slice(&a.octets());
            o
        }
        IpAddr::V6(a) => a.octets(),
    };
    flow_hash(&a16(src), &a16(dst), sport, dport, proto)
}

fn client6(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0xc1, 0, 0, 0, 0, n)
}

fn ext_header(next: u8) -> Vec<u8> {
    // Next header, length 0 (8 bytes), a PadN option filling the rest.
    vec![next, 0, 1, 4, 0, 0, 0, 0]
}

fn cases(lab: &Lab) -> Vec<Case> {
    use Counter::*;
    use XdpAction::*;
    let c4 = |n| client_v4(n);
    let mut v = Vec::new();
    let q = Vlan {
        tpid: TPID_8021Q,
        vid: 100,
    };
    let ad = Vlan {
        tpid: TPID_8021AD,
        vid: 200,
    };

    // Non-service traffic passes untouched.
    v.push(case(
        "ipv4 udp, not a service",
        udp4_frame(&[], c4(1), Ipv4Addr::new(198, 18, 9, 9), 9, b"x"),
        Pass,
        &[NonService, Ipv4],
        Out::Same,
    ));
    let syn6 = ipv6(
        client6(1),
        Ipv6Addr::new(0x2001, 0xdb8, 0xc1, 0, 0, 0, 0, 99),
        IPPROTO_TCP,
        &tcp_syn(
            client6(1).into(),
            Ipv6Addr::new(0x2001, 0xdb8, 0xc1, 0, 0, 0, 0, 99).into(),
            1000,
            22,
        ),
    );
    v.push(case(
        "ipv6 tcp, not a service",
        ethernet(&[], ETH_P_IPV6, &syn6),
        Pass,
        &[NonService, Ipv6],
        Out::Same,
    ));
    v.push(case(
        "arp",
        ethernet(&[], ETH_P_ARP, &[0; 28]),
        Pass,
        &[NonIp],
        Out::Same,
    ));
    let wrong_port = ethernet(
        &[],
        ETH_P_IPV4,
        &ipv4(
            c4(2),
            VIP_WEB_V4,
            IPPROTO_TCP,
            &[],
            &tcp_syn(c4(2).into(), VIP_WEB_V4.into(), 1000, 81),
        ),
    );
    v.push(case(
        "service VIP, other port",
        wrong_port,
        Pass,
        &[NonService, Ipv4],
        Out::Same,
    ));
    v.push(case(
        "service VIP, other protocol",
        udp4_frame(&[], c4(3), VIP_WEB_V4, 80, b"x"),
        Pass,
        &[NonService, Ipv4],
        Out::Same,
    ));
    let icmp_echo = ethernet(
        &[],
        ETH_P_IPV4,
        &ipv4(
            c4(4),
            VIP_DNS_V4,
            IPPROTO_ICMP,
            &[],
            &[8, 0, 0, 0, 0, 1, 0, 1],
        ),
    );
    v.push(case(
        "icmp echo to a VIP",
        icmp_echo,
        Pass,
        &[NonService, Ipv4],
        Out::Same,
    ));

    // Local service: passed to the kernel; the flow is remembered.
    let web_syn = |n: u8, vlans: &[Vlan], opts: &[u8]| {
        ethernet(
            vlans,
            ETH_P_IPV4,
            &ipv4(
                c4(n),
                VIP_WEB_V4,
                IPPROTO_TCP,
                opts,
                &tcp_syn(c4(n).into(), VIP_WEB_V4.into(), 40000, 80),
            ),
        )
    };
    v.push(case(
        "local tcp, new flow",
        web_syn(10, &[], &[]),
        Pass,
        &[Local, Ipv4, FlowMiss],
        Out::Same,
    ));
    v.push(case(
        "local tcp, same flow again",
        web_syn(10, &[], &[]),
        Pass,
        &[Local, Ipv4, FlowHit],
        Out::Same,
    ));
    v.push(case(
        "local tcp in 802.1Q",
        web_syn(11, &[q], &[]),
        Pass,
        &[Local, Ipv4, VlanTagged, FlowMiss],
        Out::Same,
    ));
    v.push(case(
        "local tcp in QinQ",
        web_syn(12, &[ad, q], &[]),
        Pass,
        &[Local, Ipv4, VlanTagged, FlowMiss],
        Out::Same,
    ));
    v.push(case(
        "local tcp with IPv4 options",
        web_syn(13, &[], &[1; 12]),
        Pass,
        &[Local, Ipv4, FlowMiss],
        Out::Same,
    ));

    // Forwarded: exact encapsulated frames.
    let peer4_mac = peer_mac(2);
    let peer6_mac = peer_mac(0x12);
    let enc4 = |inner: &[u8], proto: u8, dst: Ipv4Addr, mac: [u8; 6]| {
        eth(
            mac,
            lab.mac,
            0x0800,
            &cat(&[
                &outer_ipv4(underlay_v4(1), dst, proto, 0, inner.len()),
                inner,
            ]),
        )
    };
    let enc6 = |inner: &[u8], proto: u8, dst: Ipv6Addr, mac: [u8; 6], h: u32| {
        eth(
            mac,
            lab.mac,
            0x86dd,
            &cat(&[
                &outer_ipv6(underlay_v6(1), dst, proto, 0, h & 0xfffff, inner.len()),
                inner,
            ]),
        )
    };

    let web6 = ipv6(
        client6(20),
        VIP_WEB_V6,
        IPPROTO_TCP,
        &tcp_syn(client6(20).into(), VIP_WEB_V6.into(), 40000, 80),
    );
    let h = hash(
        client6(20).into(),
        VIP_WEB_V6.into(),
        40000,
        80,
        IPPROTO_TCP,
    );
    v.push(case(
        "ipv6 tcp forwarded, 6in6",
        ethernet(&[], ETH_P_IPV6, &web6),
        Tx,
        &[ForwardedTx, Ipv6, FlowMiss],
        Out::Bytes(enc6(&web6, IPPROTO_IPV6, underlay_v6(2), peer6_mac, h)),
    ));

    let dns4 = ipv4(
        c4(21),
        VIP_DNS_V4,
        IPPROTO_UDP,
        &[],
        &udp(c4(21).into(), VIP_DNS_V4.into(), 40000, 53, b"query"),
    );
    v.push(case(
        "ipv4 udp forwarded, 4in4",
        ethernet(&[], ETH_P_IPV4, &dns4),
        Tx,
        &[ForwardedTx, Ipv4, FlowMiss],
        Out::Bytes(enc4(&dns4, IPPROTO_IPIP, underlay_v4(2), peer4_mac)),
    ));
    let dns4_tcp = ipv4(
        c4(22),
        VIP_DNS_V4,
        IPPROTO_TCP,
        &[],
        &tcp_syn(c4(22).into(), VIP_DNS_V4.into(), 40000, 53),
    );
    v.push(case(
        "ipv4 tcp, second match of a service",
        ethernet(&[], ETH_P_IPV4, &dns4_tcp),
        Tx,
        &[ForwardedTx, Ipv4, FlowMiss],
        Out::Bytes(enc4(&dns4_tcp, IPPROTO_IPIP, underlay_v4(2), peer4_mac)),
    ));
    let tagged = ipv4(
        c4(23),
        VIP_DNS_V4,
        IPPROTO_UDP,
        &[],
        &udp(c4(23).into(), VIP_DNS_V4.into(), 40000, 53, b"q"),
    );
    v.push(case(
        "forwarded from QinQ leaves untagged",
        ethernet(&[ad, q], ETH_P_IPV4, &tagged),
        Tx,
        &[ForwardedTx, Ipv4, VlanTagged, FlowMiss],
        Out::Bytes(enc4(&tagged, IPPROTO_IPIP, underlay_v4(2), peer4_mac)),
    ));

    let dns6 = ipv6(
        client6(24),
        VIP_DNS_V6,
        IPPROTO_UDP,
        &udp(client6(24).into(), VIP_DNS_V6.into(), 40000, 53, b"query"),
    );
    v.push(case(
        "ipv6 udp over an IPv4 underlay, 6in4",
        ethernet(&[], ETH_P_IPV6, &dns6),
        Tx,
        &[ForwardedTx, Ipv6, FlowMiss],
        Out::Bytes(enc4(&dns6, IPPROTO_IPV6, underlay_v4(2), peer4_mac)),
    ));
    let web4in6 = ipv4(
        c4(25),
        VIP_4IN6,
        IPPROTO_TCP,
        &[],
        &tcp_syn(c4(25).into(), VIP_4IN6.into(), 40000, 80),
    );
    let h = hash(c4(25).into(), VIP_4IN6.into(), 40000, 80, IPPROTO_TCP);
    v.push(case(
        "ipv4 tcp over an IPv6 underlay, 4in6",
        ethernet(&[], ETH_P_IPV4, &web4in6),
        Tx,
        &[ForwardedTx, Ipv4, FlowMiss],
        Out::Bytes(enc6(&web4in6, IPPROTO_IPIP, underlay_v6(2), peer6_mac, h)),
    ));

    let any4 = ipv4(
        c4(26),
        VIP_ANY4,
        IPPROTO_UDP,
        &[],
        &udp(c4(26).into(), VIP_ANY4.into(), 40000, 9999, b"data"),
    );
    let h = hash(c4(26).into(), VIP_ANY4.into(), 40000, 9999, IPPROTO_UDP);
    let gue4 = |inner: &[u8], h: u32| {
        let g = gue(
            0xc000 | (h as u16 & 0x3fff),
            GUE_PORT,
            IPPROTO_IPIP,
            inner.len(),
        );
        eth(
            peer_mac(3),
            lab.mac,
            0x0800,
            &cat(&[
                &outer_ipv4(
                    underlay_v4(1),
                    underlay_v4(3),
                    IPPROTO_UDP,
                    0,
                    g.len() + inner.len(),
                ),
                &g,
                inner,
            ]),
        )
    };
    v.push(case(
        "port-agnostic service over GUE",
        ethernet(&[], ETH_P_IPV4, &any4),
        Tx,
        &[ForwardedTx, Ipv4, FlowMiss, Gue],
        Out::Bytes(gue4(&any4, h)),
    ));

    // Fragments: hashed on addresses and protocol (ports 0).
    let mut frag_first = ipv4(
        c4(27),
        VIP_ANY4,
        IPPROTO_UDP,
        &[],
        &udp(c4(27).into(), VIP_ANY4.into(), 40000, 9999, &[7; 24]),
    );
    frag_first[6] = 0x20; // MF
    fix_ipv4_checksum(&mut frag_first);
    let h = hash(c4(27).into(), VIP_ANY4.into(), 0, 0, IPPROTO_UDP);
    v.push(case(
        "first fragment, port-agnostic service",
        ethernet(&[], ETH_P_IPV4, &frag_first),
        Tx,
        &[ForwardedTx, Ipv4, Fragment, FlowMiss, Gue],
        Out::Bytes(gue4(&frag_first, h)),
    ));
    let mut frag_later = ipv4(c4(27), VIP_ANY4, IPPROTO_UDP, &[], &[9; 16]);
    frag_later[6] = 0x00;
    frag_later[7] = 4; // offset 32 bytes
    fix_ipv4_checksum(&mut frag_later);
    v.push(case(
        "later fragment follows the first",
        ethernet(&[], ETH_P_IPV4, &frag_later),
        Tx,
        &[ForwardedTx, Ipv4, Fragment, FlowHit, Gue],
        Out::Bytes(gue4(&frag_later, h)),
    ));
    let mut frag_web = ipv4(c4(28), VIP_WEB_V4, IPPROTO_TCP, &[], &[0; 16]);
    frag_web[6] = 0x20;
    fix_ipv4_checksum(&mut frag_web);
    v.push(case(
        "fragment of a port-specific service",
        ethernet(&[], ETH_P_IPV4, &frag_web),
        Pass,
        &[NonService, Ipv4, Fragment],
        Out::Same,
    ));

    let any6 = ipv6(
        client6(29),
        VIP_ANY6,
        IPPROTO_UDP,
        &udp(client6(29).into(), VIP_ANY6.into(), 40000, 7777, b"six"),
    );
    let h = hash(
        client6(29).into(),
        VIP_ANY6.into(),
        40000,
        7777,
        IPPROTO_UDP,
    );
    let gue6 = |inner: &[u8], h: u32| {
        let g = gue(
            0xc000 | (h as u16 & 0x3fff),
            GUE_PORT,
            IPPROTO_IPV6,
            inner.len(),
        );
        eth(
            peer_mac(0x13),
            lab.mac,
            0x86dd,
            &cat(&[
                &outer_ipv6(
                    underlay_v6(1),
                    underlay_v6(3),
                    IPPROTO_UDP,
                    0,
                    h & 0xfffff,
                    g.len() + inner.len(),
                ),
                &g,
                inner,
            ]),
        )
    };
    v.push(case(
        "ipv6 over GUE on an IPv6 underlay",
        ethernet(&[], ETH_P_IPV6, &any6),
        Tx,
        &[ForwardedTx, Ipv6, FlowMiss, Gue],
        Out::Bytes(gue6(&any6, h)),
    ));

    // IPv6 extension headers.
    let l4 = tcp_syn(client6(30).into(), VIP_WEB_V6.into(), 40000, 80);
    let with_ext = ipv6(
        client6(30),
        VIP_WEB_V6,
        0,
        &cat(&[&ext_header(60), &ext_header(IPPROTO_TCP), &l4]),
    );
    let h = hash(
        client6(30).into(),
        VIP_WEB_V6.into(),
        40000,
        80,
        IPPROTO_TCP,
    );
    v.push(case(
        "ipv6 hop-by-hop + destination options",
        ethernet(&[], ETH_P_IPV6, &with_ext),
        Tx,
        &[ForwardedTx, Ipv6, FlowMiss],
        Out::Bytes(enc6(&with_ext, IPPROTO_IPV6, underlay_v6(2), peer6_mac, h)),
    ));
    let frag_hdr = [IPPROTO_UDP, 0, 0, 1, 0, 0, 0, 42]; // offset 0, MF
    let frag6 = ipv6(
        client6(31),
        VIP_ANY6,
        44,
        &cat(&[
            &frag_hdr,
            &udp(client6(31).into(), VIP_ANY6.into(), 40000, 7777, b"x"),
        ]),
    );
    let h = hash(client6(31).into(), VIP_ANY6.into(), 0, 0, IPPROTO_UDP);
    v.push(case(
        "ipv6 fragment header",
        ethernet(&[], ETH_P_IPV6, &frag6),
        Tx,
        &[ForwardedTx, Ipv6, Fragment, FlowMiss, Gue],
        Out::Bytes(gue6(&frag6, h)),
    ));
    let deep = ipv6(
        client6(32),
        VIP_WEB_V6,
        0,
        &cat(&[
            &ext_header(0),
            &ext_header(0),
            &ext_header(0),
            &ext_header(0),
            &ext_header(IPPROTO_TCP),
            &l4,
        ]),
    );
    v.push(case(
        "five extension headers",
        ethernet(&[], ETH_P_IPV6, &deep),
        Pass,
        &[Ipv6ExtTooDeep],
        Out::Same,
    ));
    let mut cut_ext = ipv6(client6(33), VIP_WEB_V6, 0, &[IPPROTO_TCP, 4]);
    cut_ext[4..6].copy_from_slice(&2u16.to_be_bytes());
    v.push(case(
        "extension header longer than the packet",
        ethernet(&[], ETH_P_IPV6, &cut_ext),
        Pass,
        &[TruncIpv6Ext],
        Out::Same,
    ));
    let no_ports = ipv4(c4(34), VIP_WEB_V4, IPPROTO_TCP, &[], &[0x9c, 0x40]);
    v.push(case(
        "tcp header cut before the ports",
        ethernet(&[], ETH_P_IPV4, &no_ports),
        Pass,
        &[TruncL4, Ipv4],
        Out::Same,
    ));

    // ICMP errors follow the flow they quote.
    let sent = ipv4(
        VIP_DNS_V4,
        c4(21),
        IPPROTO_UDP,
        &[],
        &udp(VIP_DNS_V4.into(), c4(21).into(), 53, 40000, b"answer"),
    );
    let icmp = cat(&[&[3, 4, 0, 0, 0, 0, 0x05, 0x78], &sent[..28]]);
    let err4 = ipv4(
        Ipv4Addr::new(198, 18, 200, 1),
        VIP_DNS_V4,
        IPPROTO_ICMP,
        &[],
        &icmp,
    );
    v.push(case(
        "icmp frag-needed about a forwarded flow",
        ethernet(&[], ETH_P_IPV4, &err4),
        Tx,
        &[ForwardedTx, Ipv4, IcmpError, FlowHit],
        Out::Bytes(enc4(&err4, IPPROTO_IPIP, underlay_v4(2), peer4_mac)),
    ));
    let sent6 = ipv6(
        VIP_WEB_V6,
        client6(20),
        IPPROTO_TCP,
        &tcp_syn(VIP_WEB_V6.into(), client6(20).into(), 80, 40000),
    );
    let icmp6 = cat(&[&[2, 0, 0, 0, 0, 0, 0x05, 0x00], &sent6[..48]]);
    let err6 = ipv6(underlay_v6(0x99), VIP_WEB_V6, IPPROTO_ICMPV6, &icmp6);
    let h = hash(
        client6(20).into(),
        VIP_WEB_V6.into(),
        40000,
        80,
        IPPROTO_TCP,
    );
    v.push(case(
        "icmpv6 packet-too-big about a forwarded flow",
        ethernet(&[], ETH_P_IPV6, &err6),
        Tx,
        &[ForwardedTx, Ipv6, IcmpError, FlowHit],
        Out::Bytes(enc6(&err6, IPPROTO_IPV6, underlay_v6(2), peer6_mac, h)),
    ));
    let short_quote = ipv4(
        Ipv4Addr::new(198, 18, 200, 1),
        VIP_DNS_V4,
        IPPROTO_ICMP,
        &[],
        &cat(&[&[3, 4, 0, 0, 0, 0, 0x05, 0x78], &sent[..12]]),
    );
    v.push(case(
        "icmp error with a cut quote",
        ethernet(&[], ETH_P_IPV4, &short_quote),
        Pass,
        &[NonService, Ipv4],
        Out::Same,
    ));

    // No capacity: the service's policy.
    let to = |n: u8, vip: Ipv4Addr, port: u16| {
        ethernet(
            &[],
            ETH_P_IPV4,
            &ipv4(
                c4(n),
                vip,
                IPPROTO_TCP,
                &[],
                &tcp_syn(c4(n).into(), vip.into(), 40000, port),
            ),
        )
    };
    v.push(case(
        "no capacity, default policy passes",
        to(40, VIP_DOWN_PASS, 443),
        Pass,
        &[UnavailablePass, Ipv4, FlowMiss],
        Out::Same,
    ));
    v.push(case(
        "no capacity, drop policy",
        to(41, VIP_DOWN_DROP, 443),
        Drop,
        &[UnavailableDrop, Ipv4, FlowMiss],
        Out::Same,
    ));
    v.push(case(
        "next hop without neighbour",
        to(42, VIP_NO_NEIGH, 80),
        Pass,
        &[FibNoNeigh, Ipv4, FlowMiss],
        Out::Same,
    ));
    v.push(case(
        "no route to the peer",
        to(43, VIP_NO_ROUTE, 80),
        Pass,
        &[FibFailed, Ipv4, FlowMiss],
        Out::Same,
    ));
    // Too big once encapsulated: answered with ICMP from the VIP, quoting
    // the first 128 bytes, sent back the way the packet came (XDP_TX).
    let big4 = ipv4(
        c4(44),
        VIP_DNS_V4,
        IPPROTO_UDP,
        &[],
        &udp(c4(44).into(), VIP_DNS_V4.into(), 40000, 53, &[0; 1453]),
    );
    let frag_needed = |vlans: &[Vlan], packet: &[u8]| {
        let mut icmp = vec![3, 4, 0, 0, 0, 0];
        icmp.extend_from_slice(&(MTU - 20).to_be_bytes());
        icmp.extend_from_slice(&packet[..128]);
        let sum = checksum(&icmp, 0);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut ip = vec![0x45, 0, 0, 156, 0, 0, 0, 0, 64, IPPROTO_ICMP, 0, 0];
        ip.extend_from_slice(&VIP_DNS_V4.octets());
        ip.extend_from_slice(&packet[12..16]);
        let sum = checksum(&ip, 0);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        let mut reply = ethernet(vlans, ETH_P_IPV4, &cat(&[&ip, &icmp]));
        reply[..6].copy_from_slice(&MAC_SRC);
        reply[6..12].copy_from_slice(&MAC_DST);
        reply
    };
    v.push(case(
        "too big, DF: ICMP fragmentation needed",
        ethernet(&[], ETH_P_IPV4, &big4),
        Tx,
        &[MtuIcmp, Ipv4, FlowMiss],
        Out::Bytes(frag_needed(&[], &big4)),
    ));
    let big4_tagged = ipv4(
        c4(46),
        VIP_DNS_V4,
        IPPROTO_UDP,
        &[],
        &udp(c4(46).into(), VIP_DNS_V4.into(), 40000, 53, &[1; 1453]),
    );
    v.push(case(
        "too big in QinQ: the answer keeps the tags",
        ethernet(&[ad, q], ETH_P_IPV4, &big4_tagged),
        Tx,
        &[MtuIcmp, Ipv4, VlanTagged, FlowMiss],
        Out::Bytes(frag_needed(&[ad, q], &big4_tagged)),
    ));
    let mut no_df = ipv4(
        c4(47),
        VIP_DNS_V4,
        IPPROTO_UDP,
        &[],
        &udp(c4(47).into(), VIP_DNS_V4.into(), 40000, 53, &[0; 1453]),
    );
    no_df[6] = 0;
    fix_ipv4_checksum(&mut no_df);
    v.push(case(
        "too big without DF: passed",
        ethernet(&[], ETH_P_IPV4, &no_df),
        Pass,
        &[MtuExceeded, Ipv4, FlowMiss],
        Out::Same,
    ));
    let big6 = ipv6(
        client6(48),
        VIP_DNS_V6,
        IPPROTO_UDP,
        &udp(client6(48).into(), VIP_DNS_V6.into(), 40000, 53, &[0; 1433]),
    );
    let mut ptb = vec![2, 0, 0, 0];
    ptb.extend_from_slice(&(u32::from(MTU) - 20).to_be_bytes());
    ptb.extend_from_slice(&big6[..128]);
    let sum = transport_checksum(VIP_DNS_V6.into(), client6(48).into(), IPPROTO_ICMPV6, &ptb);
    ptb[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut ptb_frame = ethernet(
        &[],
        ETH_P_IPV6,
        &cat(&[
            &outer_ipv6(VIP_DNS_V6, client6(48), IPPROTO_ICMPV6, 0, 0, ptb.len()),
            &ptb,
        ]),
    );
    ptb_frame[..6].copy_from_slice(&MAC_SRC);
    ptb_frame[6..12].copy_from_slice(&MAC_DST);
    v.push(case(
        "ipv6 too big: ICMPv6 packet too big",
        ethernet(&[], ETH_P_IPV6, &big6),
        Tx,
        &[MtuIcmp, Ipv6, FlowMiss],
        Out::Bytes(ptb_frame),
    ));
    let fits = ipv4(
        c4(45),
        VIP_DNS_V4,
        IPPROTO_UDP,
        &[],
        &udp(c4(45).into(), VIP_DNS_V4.into(), 40000, 53, &[0; 1452]),
    );
    v.push(case(
        "encapsulated exactly at the MTU",
        ethernet(&[], ETH_P_IPV4, &fits),
        Tx,
        &[ForwardedTx, Ipv4, FlowMiss],
        Out::Bytes(enc4(&fits, IPPROTO_IPIP, underlay_v4(2), peer4_mac)),
    ));

    // Decapsulation: only from trusted peers, only for local services.
    let inner_web = ipv4(
        c4(50),
        VIP_WEB_V4,
        IPPROTO_TCP,
        &[],
        &tcp_syn(c4(50).into(), VIP_WEB_V4.into(), 40000, 80),
    );
    let ipip = |src: Ipv4Addr, dst: Ipv4Addr, proto: u8, inner: &[u8]| {
        cat(&[&outer_ipv4(src, dst, proto, 0, inner.len()), inner])
    };
    v.push(case(
        "4in4 from a trusted peer",
        ethernet(
            &[],
            ETH_P_IPV4,
            &ipip(underlay_v4(2), underlay_v4(1), IPPROTO_IPIP, &inner_web),
        ),
        Pass,
        &[Decapsulated, Ipv4],
        Out::Bytes(ethernet(&[], ETH_P_IPV4, &inner_web)),
    ));
    v.push(case(
        "4in4 in a VLAN keeps the tag",
        ethernet(
            &[q],
            ETH_P_IPV4,
            &ipip(underlay_v4(2), underlay_v4(1), IPPROTO_IPIP, &inner_web),
        ),
        Pass,
        &[Decapsulated, Ipv4, VlanTagged],
        Out::Bytes(ethernet(&[q], ETH_P_IPV4, &inner_web)),
    ));
    let inner6 = ipv6(
        client6(51),
        VIP_WEB_V6,
        IPPROTO_TCP,
        &tcp_syn(client6(51).into(), VIP_WEB_V6.into(), 40000, 80),
    );
    let outer6 = cat(&[
        &outer_ipv6(
            underlay_v6(2),
            underlay_v6(1),
            IPPROTO_IPV6,
            0,
            7,
            inner6.len(),
        ),
        &inner6,
    ]);
    v.push(case(
        "6in6 from a trusted peer",
        ethernet(&[], ETH_P_IPV6, &outer6),
        Pass,
        &[Decapsulated, Ipv6],
        Out::Bytes(ethernet(&[], ETH_P_IPV6, &inner6)),
    ));
    let inner_dns6 = ipv6(
        client6(52),
        VIP_DNS_V6,
        IPPROTO_UDP,
        &udp(client6(52).into(), VIP_DNS_V6.into(), 40000, 53, b"q"),
    );
    v.push(case(
        "6in4 from a trusted peer",
        ethernet(
            &[],
            ETH_P_IPV4,
            &ipip(underlay_v4(2), underlay_v4(1), IPPROTO_IPV6, &inner_dns6),
        ),
        Pass,
        &[Decapsulated, Ipv4],
        Out::Bytes(ethernet(&[], ETH_P_IPV6, &inner_dns6)),
    ));
    let g = gue(50000, GUE_PORT, IPPROTO_IPIP, inner_web.len());
    let gue_in = cat(&[
        &outer_ipv4(
            underlay_v4(3),
            underlay_v4(1),
            IPPROTO_UDP,
            0,
            g.len() + inner_web.len(),
        ),
        &g,
        &inner_web,
    ]);
    v.push(case(
        "GUE from a trusted peer",
        ethernet(&[], ETH_P_IPV4, &gue_in),
        Pass,
        &[Decapsulated, Ipv4, Gue],
        Out::Bytes(ethernet(&[], ETH_P_IPV4, &inner_web)),
    ));
    let mut udp_hdr = g[..8].to_vec();
    udp_hdr[4..6].copy_from_slice(&((8 + inner_web.len()) as u16).to_be_bytes());
    let gue_v1 = cat(&[
        &outer_ipv4(
            underlay_v4(3),
            underlay_v4(1),
            IPPROTO_UDP,
            0,
            8 + inner_web.len(),
        ),
        &udp_hdr,
        &inner_web,
    ]);
    v.push(case(
        "GUE version 1 (direct IP)",
        ethernet(&[], ETH_P_IPV4, &gue_v1),
        Pass,
        &[Decapsulated, Ipv4, Gue],
        Out::Bytes(ethernet(&[], ETH_P_IPV4, &inner_web)),
    ));
    v.push(case(
        "4in4 from an untrusted source",
        ethernet(
            &[],
            ETH_P_IPV4,
            &ipip(underlay_v4(9), underlay_v4(1), IPPROTO_IPIP, &inner_web),
        ),
        Drop,
        &[DecapUntrusted, Ipv4],
        Out::Same,
    ));
    let not_service = ipv4(
        c4(53),
        Ipv4Addr::new(192, 0, 2, 99),
        IPPROTO_TCP,
        &[],
        &tcp_syn(
            c4(53).into(),
            Ipv4Addr::new(192, 0, 2, 99).into(),
            40000,
            80,
        ),
    );
    v.push(case(
        "trusted, but not for a local service: never re-forwarded",
        ethernet(
            &[],
            ETH_P_IPV4,
            &ipip(underlay_v4(2), underlay_v4(1), IPPROTO_IPIP, &not_service),
        ),
        Drop,
        &[DecapNotService, Ipv4],
        Out::Same,
    ));
    v.push(case(
        "trusted, inner packet cut short",
        ethernet(
            &[],
            ETH_P_IPV4,
            &ipip(
                underlay_v4(2),
                underlay_v4(1),
                IPPROTO_IPIP,
                &inner_web[..12],
            ),
        ),
        Drop,
        &[DecapMalformed, Ipv4],
        Out::Same,
    ));
    let mut control = gue_in.clone();
    control[28] = 0x20; // GUE C bit: a control message, not data
    v.push(case(
        "GUE control message",
        ethernet(&[], ETH_P_IPV4, &control),
        Drop,
        &[DecapMalformed, Ipv4, Gue],
        Out::Same,
    ));
    v.push(case(
        "IP-in-IP for another address",
        ethernet(
            &[],
            ETH_P_IPV4,
            &ipip(underlay_v4(2), underlay_v4(77), IPPROTO_IPIP, &inner_web),
        ),
        Pass,
        &[NonService, Ipv4],
        Out::Same,
    ));
    let other_port = cat(&[
        &outer_ipv4(
            underlay_v4(3),
            underlay_v4(1),
            IPPROTO_UDP,
            0,
            g.len() + inner_web.len(),
        ),
        &gue(50000, GUE_PORT + 1, IPPROTO_IPIP, inner_web.len()),
        &inner_web,
    ]);
    v.push(case(
        "UDP to this node, not the GUE port",
        ethernet(&[], ETH_P_IPV4, &other_port),
        Pass,
        &[NonService, Ipv4],
        Out::Same,
    ));
    v
}

fn fix_ipv4_checksum(p: &mut [u8]) {
    let header_len = usize::from(p[0] & 0x0f) * 4;
    p[10..12].copy_from_slice(&[0, 0]);
    let sum = checksum(&p[..header_len], 0);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn every_path_moves_exactly_its_counters_and_writes_exact_bytes() {
    if !require_root("every_path_moves_exactly_its_counters_and_writes_exact_bytes") {
        return;
    }
    let lab = Lab::new();
    let ifindex = lab.ns.ifindex("up0");
    let cases = cases(&lab);
    assert!(
        cases.len() >= 40,
        "the suite promises at least 40 cases, has {}",
        cases.len()
    );
    lab.ns.run(|| {
        let mut dp = Dataplane::load(&LoadOptions::default()).expect("load");
        configure(&mut dp);
        let program = dp.program_fd(PROGRAM_NAME).expect("program");
        for c in &cases {
            let before = dp.stats().unwrap();
            let result = run_on(program.as_fd(), &c.frame, Some(ifindex))
                .unwrap_or_else(|e| panic!("{}: {e}", c.name));
            let moved = changed(&before, &dp.stats().unwrap());
            assert_eq!(result.action, c.action, "{}: action", c.name);
            assert_eq!(moved, c.moved, "{}: counters", c.name);
            match &c.out {
                Out::Same => assert_eq!(
                    result.data, c.frame,
                    "{}: the frame must pass untouched",
                    c.name
                ),
                Out::Bytes(expected) => {
                    assert_eq!(hex(&result.data), hex(expected), "{}: output bytes", c.name);
                    if result.data[12..14] == [0x08, 0x00] {
                        assert_eq!(
                            checksum(&result.data[14..34], 0),
                            0,
                            "{}: outer IPv4 checksum",
                            c.name
                        );
                    }
                }
            }
        }
    });
}

#[test]
fn per_service_and_per_peer_counters_add_up() {
    if !require_root("per_service_and_per_peer_counters_add_up") {
        return;
    }
    let lab = Lab::new();
    let ifindex = lab.ns.ifindex("up0");
    lab.ns.run(|| {
        let mut dp = Dataplane::load(&LoadOptions::default()).expect("load");
        configure(&mut dp);
        let program = dp.program_fd(PROGRAM_NAME).expect("program");
        let query = ethernet(
            &[],
            ETH_P_IPV4,
            &ipv4(
                client_v4(60),
                VIP_DNS_V4,
                IPPROTO_UDP,
                &[],
                &udp(client_v4(60).into(), VIP_DNS_V4.into(), 40000, 53, b"q"),
            ),
        );
        let web = ethernet(
            &[],
            ETH_P_IPV4,
            &ipv4(
                client_v4(61),
                VIP_WEB_V4,
                IPPROTO_TCP,
                &[],
                &tcp_syn(client_v4(61).into(), VIP_WEB_V4.into(), 40000, 80),
            ),
        );
        for _ in 0..3 {
            run_on(program.as_fd(), &query, Some(ifindex)).unwrap();
        }
        run_on(program.as_fd(), &web, Some(ifindex)).unwrap();
        let dns = dp.service_stats(2).unwrap();
        assert_eq!(
            (dns.forwarded_packets, dns.forwarded_bytes),
            (3, 3 * query.len() as u64)
        );
        let local = dp.service_stats(0).unwrap();
        assert_eq!(
            (local.local_packets, local.local_bytes),
            (1, web.len() as u64)
        );
        let peer = dp.peer_stats(PEER_V4).unwrap();
        assert_eq!(
            (peer.tx_packets, peer.tx_bytes),
            (3, 3 * (query.len() as u64 + 20))
        );
    });
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

const VIP_POOL: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 70);
const FLOWS: usize = 10_000;

/// Sets service 20 (UDP, any port, on VIP_POOL) to the pool peers `ids`
/// (underlay 198.51.100.<id>).
fn set_pool(dp: &mut Dataplane, ids: &[u32]) {
    for id in ids {
        dp.set_peer(
            *id,
            PeerSpec {
                underlay: underlay_v4(*id as u8).into(),
                encap: Encap::IpIp,
            },
        )
        .unwrap();
    }
    let backends = ids
        .iter()
        .map(|id| ServiceBackend {
            peer: *id,
            identity: format!("edge://pool-{id}"),
            weight: 1,
        })
        .collect();
    let matches = vec![ServiceMatch {
        vip: VIP_POOL.into(),
        protocol: Protocol::Udp,
        port: None,
    }];
    dp.set_service(&ServiceSpec {
        id: 20,
        matches,
        local_healthy: false,
        drop_when_unavailable: false,
        backends,
    })
    .unwrap();
}

/// The peer (last octet of the outer destination) each of the flows goes to.
fn peers_of(dp: &mut Dataplane, frames: &[Vec<u8>], ifindex: u32) -> Vec<u8> {
    let program = dp.program_fd(PROGRAM_NAME).unwrap();
    frames
        .iter()
        .map(|f| {
            let before = dp.stats().unwrap();
            let r = run_on(program.as_fd(), f, Some(ifindex)).unwrap();
            assert_eq!(
                r.action,
                XdpAction::Tx,
                "{:?}",
                changed(&before, &dp.stats().unwrap())
            );
            r.data[14 + 19]
        })
        .collect()
}

fn fraction_changed(a: &[u8], b: &[u8]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / a.len() as f64
}

#[test]
fn flows_stick_to_their_peer_and_losing_one_of_n_moves_about_one_nth() {
    if !require_root("flows_stick_to_their_peer_and_losing_one_of_n_moves_about_one_nth") {
        return;
    }
    let lab = Lab::new();
    let ifindex = lab.ns.ifindex("up0");
    let frames: Vec<Vec<u8>> = (0..FLOWS)
        .map(|i| {
            let client = Ipv4Addr::new(198, 18, (i / 250) as u8, (i % 250) as u8 + 1);
            udp4_frame(&[], client, VIP_POOL, 53, b"q")
        })
        .collect();
    lab.ns.run(|| {
        let mut dp = Dataplane::load(&LoadOptions::default()).unwrap();
        configure(&mut dp);
        set_pool(&mut dp, &[10, 11, 12, 13, 14]);
        let first = peers_of(&mut dp, &frames, ifindex);
        let share_12 = first.iter().filter(|p| **p == 12).count() as f64 / FLOWS as f64;
        assert!((0.17..0.23).contains(&share_12), "peer 12 should carry about 1/5 of the flows, has {share_12}");

        // A sixth peer joins: Maglev would move about 1/6 of the flows, but
        // remembered flows stay where they are while their peer is healthy.
        set_pool(&mut dp, &[10, 11, 12, 13, 14, 15]);
        let after_join = peers_of(&mut dp, &frames, ifindex);
        assert_eq!(fraction_changed(&first, &after_join), 0.0, "a joining peer must not move established flows");

        // Peer 12 leaves: exactly its flows move, each to a remaining peer.
        set_pool(&mut dp, &[10, 11, 13, 14, 15]);
        let after_leave = peers_of(&mut dp, &frames, ifindex);
        for (i, (before, now)) in first.iter().zip(&after_leave).enumerate() {
            if *before == 12 {
                assert_ne!(*now, 12, "flow {i} still goes to the peer that left");
            } else {
                assert_eq!(before, now, "flow {i} moved although its peer stayed");
            }
        }
        let moved = fraction_changed(&first, &after_leave);

        // Without remembered flows (a fresh flow table), Maglev alone: losing
        // one of five peers moves about 1/5, a little more than its share.
        let mut fresh = Dataplane::load(&LoadOptions::default()).unwrap();
        configure(&mut fresh);
        set_pool(&mut fresh, &[10, 11, 12, 13, 14]);
        let maglev_5 = peers_of(&mut fresh, &frames, ifindex);
        let mut fresh4 = Dataplane::load(&LoadOptions::default()).unwrap();
        configure(&mut fresh4);
        set_pool(&mut fresh4, &[10, 11, 13, 14]);
        let maglev_4 = peers_of(&mut fresh4, &frames, ifindex);
        assert_eq!(maglev_5, first, "the same table picks the same peers");
        let maglev_moved = fraction_changed(&maglev_5, &maglev_4);
        assert!(maglev_moved >= share_12 && maglev_moved <= 0.2 + 0.05, "Maglev alone moved {maglev_moved} of the flows");
        eprintln!(
            "stickiness over {FLOWS} flows: peer 12 carried {share_12:.4}; with the flow table {moved:.4} moved when it \
             left and 0 when a sixth peer joined; Maglev alone moved {maglev_moved:.4} (1/N = 0.2000)"
        );
    });
}

#[test]
fn the_agent_refuses_what_the_data_plane_cannot_represent() {
    if !require_root("the_agent_refuses_what_the_data_plane_cannot_represent") {
        return;
    }
    let refused = |result: Result<(), edge_agent::dataplane::DataplaneError>, needle: &str| {
        let message = result.expect_err("must be refused").to_string();
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    };
    let not_prime = LoadOptions {
        maglev_size: 6400,
        ..LoadOptions::default()
    };
    refused(
        Dataplane::load(&not_prime).map(|_| ()),
        "not a prime; use 6421",
    );

    let mut dp = Dataplane::load(&LoadOptions::default()).unwrap();
    let web = ServiceMatch {
        vip: VIP_WEB_V4.into(),
        protocol: Protocol::Tcp,
        port: Some(80),
    };
    let spec = |id, matches, backends| ServiceSpec {
        id,
        matches,
        local_healthy: true,
        drop_when_unavailable: false,
        backends,
    };
    // Before the anycast prefixes are known, no VIP can be inside them.
    refused(
        dp.set_service(&spec(0, vec![web], vec![])),
        "not inside the node's anycast prefixes",
    );
    configure(&mut dp);
    let outside = ServiceMatch {
        vip: Ipv4Addr::new(198, 18, 0, 1).into(),
        ..web
    };
    refused(
        dp.set_service(&spec(0, vec![outside], vec![])),
        "198.18.0.1 is not inside",
    );
    refused(
        dp.set_service(&spec(64, vec![web], vec![])),
        "service id 64 is out of range",
    );
    refused(dp.set_service(&spec(0, vec![], vec![])), "has no match");
    let far = ServiceBackend {
        peer: 256,
        identity: "edge://far".into(),
        weight: 1,
    };
    refused(
        dp.set_service(&spec(0, vec![web], vec![far])),
        "peer id 256 is out of range",
    );
    let twins = vec![
        ServiceBackend {
            peer: 1,
            identity: "edge://same".into(),
            weight: 1,
        },
        ServiceBackend {
            peer: 2,
            identity: "edge://same".into(),
            weight: 1,
        },
    ];
    refused(dp.set_service(&spec(0, vec![web], twins)), "edge://same");
    refused(
        dp.set_peer(
            300,
            PeerSpec {
                underlay: underlay_v4(2).into(),
                encap: Encap::IpIp,
            },
        ),
        "peer id 300",
    );
}
