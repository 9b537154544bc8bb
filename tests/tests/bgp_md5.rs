//! TCP MD5 (RFC 2385) between two namespaces: the right key connects; a
//! wrong key, or none, never does (the kernel drops unsigned or wrongly
//! signed segments silently).

use std::{
    net::{IpAddr, SocketAddr, TcpListener},
    time::Duration,
};

use edge_agent::bgp::md5::set_key;
use edge_tests::{
    netns::{Netns, veth},
    plan::underlay_v4,
    privilege::require_root,
};
use socket2::{Domain, Socket, Type};

const KEY: &[u8] = b"upstream-provided-secret";

fn connects(client: &Netns, server: SocketAddr, key: Option<&[u8]>) -> bool {
    client.run(|| {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        if let Some(key) = key {
            set_key(&socket, server.ip(), key).unwrap();
        }
        socket
            .connect_timeout(&server.into(), Duration::from_millis(1500))
            .is_ok()
    })
}

#[test]
fn only_the_right_key_connects() {
    if !require_root("only_the_right_key_connects") {
        return;
    }
    let (router, edge) = (Netns::new(), Netns::new());
    veth(&router, "r0", &edge, "e0");
    router.add_addr("r0", &format!("{}/30", underlay_v4(1)));
    edge.add_addr("e0", &format!("{}/30", underlay_v4(2)));
    let server = SocketAddr::new(underlay_v4(1).into(), 179);
    let listener: TcpListener = router.run(|| {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        set_key(&socket, IpAddr::from(underlay_v4(2)), KEY).unwrap();
        socket.set_reuse_address(true).unwrap();
        socket.bind(&server.into()).unwrap();
        socket.listen(8).unwrap();
        socket.into()
    });
    assert!(
        connects(&edge, server, Some(KEY)),
        "the right key must connect"
    );
    assert!(
        !connects(&edge, server, Some(b"wrong-key")),
        "a wrong key must not connect"
    );
    assert!(!connects(&edge, server, None), "no key must not connect");
    drop(listener);
}
