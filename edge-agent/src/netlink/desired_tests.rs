use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn inputs() -> Inputs {
    Inputs {
        node_addrs: vec![ip("192.0.2.1"), ip("2001:db8:1d::1")],
        vips: vec![
            ip("203.0.113.10"),
            ip("203.0.113.53"),
            ip("2001:db8:ac::10"),
        ],
        healthy_vips: [ip("203.0.113.10")].into(),
        vip_addresses: VipAddresses::Configured,
        peers: vec![
            // On the same segment, with a private path in use.
            PeerPaths {
                identities: vec![ip("192.0.2.2"), ip("2001:db8:1d::2")],
                next_hops: vec![ip("198.51.100.2"), ip("2001:db8:ff::2")],
                private: Some(ip("198.51.100.130")),
            },
            // Behind the default gateway.
            PeerPaths {
                identities: vec![ip("192.0.2.3")],
                next_hops: vec![ip("198.51.100.33")],
                private: None,
            },
        ],
    }
}

fn paths() -> BTreeMap<IpAddr, Path> {
    [
        ("198.51.100.2", None, 2),
        ("2001:db8:ff::2", None, 2),
        ("198.51.100.130", None, 3),
        ("198.51.100.33", Some("198.51.100.254"), 2),
    ]
    .into_iter()
    .map(|(dst, gw, oif)| {
        (
            ip(dst),
            Path {
                gateway: gw.map(ip),
                oif,
            },
        )
    })
    .collect()
}

fn route(d: &Desired, dst: &str) -> Option<(Option<IpAddr>, u32, Option<IpAddr>)> {
    d.routes
        .get(&Prefix::host(ip(dst)))
        .map(|r| (r.gateway, r.oif, r.src))
}

#[test]
fn addresses_hold_identities_and_vips_as_configured() {
    let d = desired(&inputs(), &paths());
    let addrs: Vec<String> = d
        .addresses
        .iter()
        .map(|a| format!("{}/{}", a.addr, a.prefix_len))
        .collect();
    assert_eq!(
        addrs,
        [
            "192.0.2.1/32",
            "203.0.113.10/32",
            "203.0.113.53/32",
            "2001:db8:1d::1/128",
            "2001:db8:ac::10/128"
        ]
    );
    let mut only_healthy = inputs();
    only_healthy.vip_addresses = VipAddresses::HealthyOnly;
    let d = desired(&only_healthy, &paths());
    let addrs: Vec<IpAddr> = d.addresses.iter().map(|a| a.addr).collect();
    assert_eq!(
        addrs,
        [ip("192.0.2.1"), ip("203.0.113.10"), ip("2001:db8:1d::1")]
    );
}

#[test]
fn routes_follow_the_kernels_paths_and_prefer_the_private_one_for_identities() {
    let d = desired(&inputs(), &paths());
    // Next hops: on-link, or via the gateway.
    assert_eq!(route(&d, "198.51.100.2"), Some((None, 2, None)));
    assert_eq!(route(&d, "2001:db8:ff::2"), Some((None, 2, None)));
    assert_eq!(route(&d, "198.51.100.130"), Some((None, 3, None)));
    assert_eq!(
        route(&d, "198.51.100.33"),
        Some((Some(ip("198.51.100.254")), 2, None))
    );
    // Identities: via the private address when in use, with our identity
    // as the source; the IPv6 one over the IPv6 underlay.
    assert_eq!(
        route(&d, "192.0.2.2"),
        Some((Some(ip("198.51.100.130")), 3, Some(ip("192.0.2.1"))))
    );
    assert_eq!(
        route(&d, "2001:db8:1d::2"),
        Some((Some(ip("2001:db8:ff::2")), 2, Some(ip("2001:db8:1d::1"))))
    );
    assert_eq!(
        route(&d, "192.0.2.3"),
        Some((Some(ip("198.51.100.254")), 2, Some(ip("192.0.2.1"))))
    );
    assert_eq!(d.routes.len(), 7);
    // A neighbour per first hop.
    let neighbours: Vec<(IpAddr, u32)> = d.neighbours.iter().map(|n| (n.addr, n.ifindex)).collect();
    assert_eq!(
        neighbours,
        [
            (ip("198.51.100.2"), 2),
            (ip("198.51.100.130"), 3),
            (ip("198.51.100.254"), 2),
            (ip("2001:db8:ff::2"), 2)
        ]
    );
}

#[test]
fn nothing_is_installed_toward_what_is_unreachable() {
    let mut paths = paths();
    paths.remove(&ip("198.51.100.33"));
    paths.remove(&ip("198.51.100.130"));
    let d = desired(&inputs(), &paths);
    assert_eq!(route(&d, "198.51.100.33"), None);
    assert_eq!(route(&d, "192.0.2.3"), None);
    // Without the private path, the identity goes over the Internet underlay.
    assert_eq!(
        route(&d, "192.0.2.2"),
        Some((Some(ip("198.51.100.2")), 2, Some(ip("192.0.2.1"))))
    );
    assert!(d.neighbours.iter().all(|n| n.addr != ip("198.51.100.254")));
    assert_eq!(
        inputs().destinations().len(),
        4,
        "next hops and private addresses are looked up, identities are not"
    );
}

#[test]
fn no_peers_no_routes() {
    let mut i = inputs();
    i.peers.clear();
    let d = desired(&i, &BTreeMap::new());
    assert!(d.routes.is_empty() && d.neighbours.is_empty());
    assert_eq!(d.addresses.len(), 5);
}
