//! Real traffic through the whole path, in namespaces:
//!
//! ```text
//! client ── router ── PoP A (service down locally; XDP encapsulates)
//!              └───── PoP B (XDP decapsulates; the service answers)
//! ```
//!
//! The router sends the VIPs to A (as Internet BGP would). A's local service
//! is down, so A's XDP program encapsulates each packet to B over the
//! underlay (through the router); B's XDP program decapsulates it, because
//! A is a trusted peer, and B's service answers the client directly from
//! the VIP (direct server return). TCP and UDP, IPv4 (4in4) and IPv6 (6in6).
//! The maps are driven through the `dataplane` API, as the agent will.

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    time::Duration,
};

use edge_agent::dataplane::{
    AttachMode, Dataplane, Encap, LoadOptions, NodeConfig, PeerSpec, Protocol, ServiceBackend,
    ServiceMatch, ServiceSpec,
};
use edge_common::stats::Counter;
use edge_tests::{
    command::stdout_of,
    counters::changed,
    netns::{Netns, veth},
    plan::{VIP_DNS_V4, VIP_DNS_V6, VIP_WEB_V4, VIP_WEB_V6, anycast},
    privilege::require_root,
};

const A4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const B4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 6);
const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0xa, 0, 0, 0, 2);
const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0xb, 0, 0, 0, 2);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc1, 0, 0, 0, 0, 2);
const TIMEOUT: Duration = Duration::from_secs(5);

struct Topology {
    client: Netns,
    router: Netns,
    a: Netns,
    b: Netns,
}

fn build() -> Topology {
    let (client, router, a, b) = (Netns::new(), Netns::new(), Netns::new(), Netns::new());
    veth(&client, "cl0", &router, "r-cl");
    veth(&router, "r-a", &a, "a0");
    veth(&router, "r-b", &b, "b0");
    for (ns, dev, addrs) in [
        (&client, "cl0", ["198.18.0.2/24", "2001:db8:c1::2/64"]),
        (&router, "r-cl", ["198.18.0.1/24", "2001:db8:c1::1/64"]),
        (&router, "r-a", ["198.51.100.1/30", "2001:db8:ff:a::1/64"]),
        (&router, "r-b", ["198.51.100.5/30", "2001:db8:ff:b::1/64"]),
        (&a, "a0", ["198.51.100.2/30", "2001:db8:ff:a::2/64"]),
        (&b, "b0", ["198.51.100.6/30", "2001:db8:ff:b::2/64"]),
    ] {
        for addr in addrs {
            ns.add_addr(dev, addr);
        }
    }
    // A real client's NIC puts complete checksums on the wire; a veth would
    // leave them to "hardware" that never runs once XDP has the frame.
    stdout_of(client.command("ethtool").args(["-K", "cl0", "tx", "off"]));
    client.ip(&["route", "add", "default", "via", "198.18.0.1"]);
    client.ip(&["-6", "route", "add", "default", "via", "2001:db8:c1::1"]);
    for (pop, gw4, gw6) in [
        (&a, "198.51.100.1", "2001:db8:ff:a::1"),
        (&b, "198.51.100.5", "2001:db8:ff:b::1"),
    ] {
        pop.ip(&["route", "add", "default", "via", gw4]);
        pop.ip(&["-6", "route", "add", "default", "via", gw6]);
        // The VIPs live on the node itself, so its stack accepts them.
        for vip in [
            format!("{VIP_WEB_V4}/32"),
            format!("{VIP_DNS_V4}/32"),
            format!("{VIP_WEB_V6}/128"),
            format!("{VIP_DNS_V6}/128"),
        ] {
            pop.add_addr("lo", &vip);
        }
        // bpf_fib_lookup answers only where forwarding is on.
        pop.sysctl("net.ipv4.conf.all.forwarding", "1");
        pop.sysctl("net.ipv6.conf.all.forwarding", "1");
    }
    // Internet BGP has chosen A for every VIP.
    for vip in [VIP_WEB_V4, VIP_DNS_V4] {
        router.ip(&["route", "add", &format!("{vip}/32"), "via", "198.51.100.2"]);
    }
    for vip in [VIP_WEB_V6, VIP_DNS_V6] {
        router.ip(&[
            "-6",
            "route",
            "add",
            &format!("{vip}/128"),
            "via",
            "2001:db8:ff:a::2",
        ]);
    }
    router.sysctl("net.ipv4.conf.all.forwarding", "1");
    router.sysctl("net.ipv6.conf.all.forwarding", "1");
    // The agent keeps encapsulation next hops resolved; here, static entries.
    let r_a = router.mac("r-a").map(|x| format!("{x:02x}")).join(":");
    for gw in ["198.51.100.1", "2001:db8:ff:a::1"] {
        a.ip(&[
            "neigh",
            "replace",
            gw,
            "lladdr",
            &r_a,
            "dev",
            "a0",
            "nud",
            "permanent",
        ]);
    }
    Topology {
        client,
        router,
        a,
        b,
    }
}

fn matches() -> (Vec<ServiceMatch>, Vec<ServiceMatch>) {
    let v4 = vec![
        ServiceMatch {
            vip: VIP_WEB_V4.into(),
            protocol: Protocol::Tcp,
            port: Some(80),
        },
        ServiceMatch {
            vip: VIP_DNS_V4.into(),
            protocol: Protocol::Udp,
            port: Some(53),
        },
    ];
    let v6 = vec![
        ServiceMatch {
            vip: VIP_WEB_V6.into(),
            protocol: Protocol::Tcp,
            port: Some(80),
        },
        ServiceMatch {
            vip: VIP_DNS_V6.into(),
            protocol: Protocol::Udp,
            port: Some(53),
        },
    ];
    (v4, v6)
}

/// PoP A: services down locally, B (peer 0 over IPv4, peer 1 over IPv6) has them.
fn pop_a() -> Dataplane {
    let mut dp = Dataplane::load(&LoadOptions::default()).expect("load A");
    dp.set_config(&NodeConfig {
        underlay_v4: Some(A4),
        underlay_v6: Some(A6),
        gue_port: None,
        mtu: 1500,
        anycast: anycast(),
    })
    .unwrap();
    dp.set_peer(
        0,
        PeerSpec {
            underlay: B4.into(),
            encap: Encap::IpIp,
        },
    )
    .unwrap();
    dp.set_peer(
        1,
        PeerSpec {
            underlay: B6.into(),
            encap: Encap::IpIp,
        },
    )
    .unwrap();
    let (v4, v6) = matches();
    for (id, matches, peer) in [(0, v4, 0), (1, v6, 1)] {
        let backends = vec![ServiceBackend {
            peer,
            identity: "edge://pop-b".into(),
            weight: 1,
        }];
        dp.set_service(&ServiceSpec {
            id,
            matches,
            local_healthy: false,
            drop_when_unavailable: false,
            backends,
        })
        .unwrap();
    }
    dp.attach("a0", AttachMode::Native)
        .expect("native XDP on a0");
    dp
}

/// PoP B: services healthy locally; A trusted.
fn pop_b() -> Dataplane {
    let mut dp = Dataplane::load(&LoadOptions::default()).expect("load B");
    dp.set_config(&NodeConfig {
        underlay_v4: Some(B4),
        underlay_v6: Some(B6),
        gue_port: None,
        mtu: 1500,
        anycast: anycast(),
    })
    .unwrap();
    dp.trust(A4.into(), 0).unwrap();
    dp.trust(A6.into(), 0).unwrap();
    let (v4, v6) = matches();
    for (id, matches) in [(0, v4), (1, v6)] {
        dp.set_service(&ServiceSpec {
            id,
            matches,
            local_healthy: true,
            drop_when_unavailable: false,
            backends: vec![],
        })
        .unwrap();
    }
    dp.attach("b0", AttachMode::Native)
        .expect("native XDP on b0");
    dp
}

/// B's services: a TCP server on each web VIP that says who served, and a
/// UDP echo on each DNS VIP.
fn serve_at_b(b: &Netns) {
    let (tcp, udp) = b.run(|| {
        let tcp: Vec<TcpListener> = [IpAddr::from(VIP_WEB_V4), VIP_WEB_V6.into()]
            .map(|vip| TcpListener::bind((vip, 80)).unwrap())
            .into();
        let udp: Vec<UdpSocket> = [IpAddr::from(VIP_DNS_V4), VIP_DNS_V6.into()]
            .map(|vip| UdpSocket::bind((vip, 53)).unwrap())
            .into();
        (tcp, udp)
    });
    for listener in tcp {
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let _ = stream.write_all(b"served by pop-b");
            }
        });
    }
    for socket in udp {
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let reply = [b"pop-b: ".as_slice(), &buf[..n]].concat();
                let _ = socket.send_to(&reply, from);
            }
        });
    }
}

#[test]
fn a_pop_without_the_service_forwards_to_a_peer_that_answers_directly() {
    if !require_root("a_pop_without_the_service_forwards_to_a_peer_that_answers_directly") {
        return;
    }
    let t = build();
    let mut router_pass = t
        .router
        .run(|| Dataplane::load(&LoadOptions::default()).expect("load router"));
    t.router
        .run(|| router_pass.attach_pass("r-a", AttachMode::Native))
        .expect("pass program on r-a");
    let a = t.a.run(pop_a);
    let b = t.b.run(pop_b);
    serve_at_b(&t.b);
    let (a_before, b_before) = (a.stats().unwrap(), b.stats().unwrap());
    let answers = t.client.run(|| {
        let mut answers = Vec::new();
        for (vip, local) in [
            (IpAddr::from(VIP_WEB_V4), IpAddr::from(CLIENT4)),
            (VIP_WEB_V6.into(), CLIENT6.into()),
        ] {
            let mut stream = TcpStream::connect_timeout(&SocketAddr::new(vip, 80), TIMEOUT)
                .unwrap_or_else(|e| panic!("TCP to {vip} from {local}: {e}"));
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut body = String::new();
            stream
                .read_to_string(&mut body)
                .unwrap_or_else(|e| panic!("reading from {vip}: {e}"));
            answers.push((vip, body));
        }
        for (vip, local) in [
            (IpAddr::from(VIP_DNS_V4), IpAddr::from(CLIENT4)),
            (VIP_DNS_V6.into(), CLIENT6.into()),
        ] {
            let socket = UdpSocket::bind((local, 0)).unwrap();
            socket.set_read_timeout(Some(TIMEOUT)).unwrap();
            socket.send_to(b"hello", (vip, 53)).unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = socket
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("UDP answer from {vip}: {e}"));
            assert_eq!(
                from,
                SocketAddr::new(vip, 53),
                "the answer comes from the VIP itself (DSR)"
            );
            answers.push((vip, String::from_utf8_lossy(&buf[..n]).into_owned()));
        }
        answers
    });
    for (vip, body) in &answers {
        assert!(
            body.contains("pop-b"),
            "{vip} answered {body:?}, not by pop-b"
        );
    }

    let at_a = changed(&a_before, &a.stats().unwrap());
    let at_b = changed(&b_before, &b.stats().unwrap());
    let count = |moved: &[(Counter, u64)], c: Counter| {
        moved.iter().find(|(m, _)| *m == c).map_or(0, |(_, n)| *n)
    };
    // Each TCP connection sends at least SYN, ACK and FIN/ACK to the VIP; each UDP exchange one datagram.
    assert!(
        count(&at_a, Counter::ForwardedTx) >= 2 * 3 + 2,
        "A: {at_a:?}"
    );
    assert_eq!(
        count(&at_a, Counter::Local),
        0,
        "A must serve nothing itself: {at_a:?}"
    );
    assert!(
        count(&at_b, Counter::Decapsulated) >= count(&at_a, Counter::ForwardedTx),
        "B: {at_b:?} vs A: {at_a:?}"
    );
    assert_eq!(count(&at_b, Counter::DecapUntrusted), 0, "B: {at_b:?}");
    let (tx, rx) = (a.peer_stats(0).unwrap(), b.peer_stats(0).unwrap());
    assert!(
        tx.tx_packets >= 4 && rx.rx_packets >= tx.tx_packets,
        "A→B over IPv4: sent {tx:?}, received {rx:?}"
    );
    assert!(a.peer_stats(1).unwrap().tx_packets >= 4, "A→B over IPv6");
    assert!(
        a.service_stats(0).unwrap().forwarded_packets >= 4
            && b.service_stats(0).unwrap().decap_packets >= 4
    );
    drop(router_pass);
}
