//! The XDP program attached in native mode to a veth inside a network
//! namespace counts real packets, and passes them to the stack.

use std::{
    net::{SocketAddr, UdpSocket},
    time::Duration,
};

use edge_agent::dataplane::{AttachMode, Dataplane, LoadOptions};
use edge_common::stats::Counter;
use edge_tests::{
    counters::changed,
    netns::PopAndClient,
    packet::{TPID_8021Q, Vlan, udp4_frame},
    plan::{underlay_v4, underlay_v6},
    privilege::require_root,
    raw::send_frames,
};

const DATAGRAMS: usize = 20;
const TAGGED: usize = 5;

#[test]
fn native_xdp_on_veth_counts_real_traffic() {
    if !require_root("native_xdp_on_veth_counts_real_traffic") {
        return;
    }
    let PopAndClient { pop, client } = PopAndClient::new();

    let (dp, attachment, rx4, rx6) = pop.run(|| {
        let mut dp = Dataplane::load(&LoadOptions::default()).expect("load");
        let attachment = dp
            .attach("pop0", AttachMode::Native)
            .expect("native XDP on veth");
        let rx4 = UdpSocket::bind((underlay_v4(1), 9000)).expect("bind v4");
        let rx6 = UdpSocket::bind((underlay_v6(1), 9000)).expect("bind v6");
        (dp, attachment, rx4, rx6)
    });
    assert_eq!(attachment.mode, Some(AttachMode::Native));
    assert!(
        pop.xdp_program("pop0").expect("attached").native,
        "native XDP, not generic"
    );

    let before = dp.stats().expect("stats");
    let cli_ifindex = client.ifindex("cli0");
    client.run(|| {
        let tx4 = UdpSocket::bind((underlay_v4(2), 0)).expect("bind");
        let tx6 = UdpSocket::bind((underlay_v6(2), 0)).expect("bind");
        let to4 = SocketAddr::from((underlay_v4(1), 9000));
        let to6 = SocketAddr::from((underlay_v6(1), 9000));
        for i in 0..DATAGRAMS {
            tx4.send_to(&[i as u8], to4).expect("send v4");
            tx6.send_to(&[i as u8], to6).expect("send v6");
        }
        let tagged: Vec<Vec<u8>> = (0..TAGGED)
            .map(|_| {
                udp4_frame(
                    &[Vlan {
                        tpid: TPID_8021Q,
                        vid: 42,
                    }],
                    underlay_v4(2),
                    underlay_v4(1),
                    9,
                    b"t",
                )
            })
            .collect();
        send_frames(cli_ifindex, &tagged).expect("send tagged frames");
    });

    // Every datagram reached the socket: XDP_PASS delivered it to the stack.
    for (socket, family) in [(&rx4, "IPv4"), (&rx6, "IPv6")] {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 16];
        for i in 0..DATAGRAMS {
            let (n, _) = socket
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("{family} datagram {i} lost: {e}"));
            assert_eq!(&buf[..n], &[i as u8]);
        }
    }

    let moved = changed(&before, &dp.stats().expect("stats"));
    let count = |c: Counter| moved.iter().find(|(m, _)| *m == c).map_or(0, |(_, n)| *n);
    // ARP, neighbour discovery and IGMP/MLD may add to these; our traffic is a floor.
    assert!(
        count(Counter::Ipv4) >= (DATAGRAMS + TAGGED) as u64,
        "{moved:?}"
    );
    assert!(count(Counter::Ipv6) >= DATAGRAMS as u64, "{moved:?}");
    assert_eq!(count(Counter::VlanTagged), TAGGED as u64, "{moved:?}");
    for (counter, n) in &moved {
        assert!(
            matches!(
                counter,
                Counter::NonService
                    | Counter::Ipv4
                    | Counter::Ipv6
                    | Counter::NonIp
                    | Counter::VlanTagged
            ),
            "well-formed traffic moved {} by {n}",
            counter.name()
        );
    }

    drop(dp);
    assert_eq!(
        pop.xdp_program("pop0"),
        None,
        "dropping the Dataplane must detach"
    );
}
