use std::time::Duration;

use super::*;
use crate::health::Effective;
use crate::{
    dataplane::Protocol,
    overlay::{adjacency::AdjState, status::AdjacencyStatus},
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn id(name: &str) -> Identity {
    Identity::from_name(name).unwrap()
}

fn service(name: &str, id: u32, vips: &[&str], port: u16) -> ServiceConfig {
    ServiceConfig {
        name: name.into(),
        id,
        matches: vips
            .iter()
            .map(|v| ServiceMatch {
                vip: ip(v),
                protocol: Protocol::Tcp,
                port: Some(port),
            })
            .collect(),
        drop_when_unavailable: false,
    }
}

fn config(required: &[&str]) -> ControlConfig {
    ControlConfig {
        services: vec![
            service("web", 0, &["203.0.113.10", "2001:db8:ac::10"], 80),
            service("dns", 1, &["203.0.113.53"], 53),
        ],
        required: required.iter().map(|s| s.to_string()).collect(),
        anycast: vec!["203.0.113.0/24".parse().unwrap()],
        node_addrs: vec![ip("192.0.2.1")],
        encap: Encap::IpIp,
        vip_addresses: VipAddresses::Configured,
        fitness: FitnessPolicy::default(),
        doors: None,
        door_sources: Default::default(),
    }
}

/// An overlay where `peers` (name, underlay) are established and each
/// advertises the VIPs listed.
fn overlay(peers: &[(&str, &str, &[&str])]) -> OverlayStatus {
    let mut s = OverlayStatus::default();
    for (name, underlay, vips) in peers {
        let peer = id(name);
        s.adjacencies.insert(
            peer.clone(),
            AdjacencyStatus {
                state: AdjState::Established,
                addrs: vec![],
                transport: Some(ip(underlay)),
                established_since: None,
                established_count: 1,
                routes: vips.len(),
                rejected: Default::default(),
                private_in_use: None,
                last_failure: None,
                bfd: None,
            },
        );
        s.trusted_sources.insert(ip(underlay), peer.clone());
        s.identities.insert(peer.clone(), Default::default());
        for vip in *vips {
            s.services
                .entry(ip(vip))
                .or_default()
                .insert(peer.clone(), ip(underlay));
        }
    }
    s
}

const WEB: &[&str] = &["203.0.113.10", "2001:db8:ac::10"];
const WEB_V4_ONLY: &[&str] = &["203.0.113.10"];
const DNS: &[&str] = &["203.0.113.53"];

struct Step {
    what: &'static str,
    at: u64,
    local: &'static [(&'static str, Effective)],
    peers: Vec<(&'static str, &'static str, &'static [&'static str])>,
    drained: bool,
    internet_up: Option<bool>,
    upstream_paths: bool,
    /// (service id, local bit, backend names)
    want_services: &'static [(u32, bool, &'static [&'static str])],
    want_advertise: &'static [&'static str],
    want_upstream: Announce,
}

fn run(required: &[&str], steps: Vec<Step>) {
    let config = config(required);
    let mut fitness = Fitness::new();
    let t0 = Instant::now();
    for step in steps {
        let local: BTreeMap<String, Effective> = step
            .local
            .iter()
            .map(|(n, l)| (n.to_string(), *l))
            .collect();
        let overlay = overlay(&step.peers);
        let inputs = Inputs {
            local: &local,
            drained: step.drained,
            overlay: &overlay,
            internet_up: step.internet_up,
            upstream_paths: step.upstream_paths,
            now: t0 + Duration::from_secs(step.at),
        };
        let d = decide(&config, &inputs, &mut fitness);
        for (sid, bit, backends) in step.want_services {
            let s = &d.services[sid];
            assert_eq!(s.local, *bit, "{}: service {sid} local bit", step.what);
            let got: Vec<&str> = s.backends.iter().map(|(p, _)| p.name()).collect();
            assert_eq!(got, *backends, "{}: service {sid} backends", step.what);
        }
        let adv: BTreeSet<IpAddr> = step.want_advertise.iter().map(|v| ip(v)).collect();
        assert_eq!(d.advertise, adv, "{}: advertisements", step.what);
        assert_eq!(
            d.upstream, step.want_upstream,
            "{}: upstream ({:?})",
            step.what, d.fit
        );
        // Every backend is a data-plane peer, every trusted source is one.
        for s in d.services.values() {
            assert!(s.backends.is_subset(&d.peers), "{}", step.what);
        }
        assert!(
            d.trusted.values().all(|k| d.peers.contains(k)),
            "{}",
            step.what
        );
        let attrs = &d.upstream_attrs;
        assert_eq!(
            attrs.graceful_shutdown,
            d.upstream == Announce::Drain,
            "{}",
            step.what
        );
        assert_eq!(
            attrs.prepend > 0,
            d.upstream == Announce::Drain,
            "{}",
            step.what
        );
    }
}

fn step(what: &'static str, at: u64) -> Step {
    Step {
        what,
        at,
        local: &[],
        peers: vec![],
        drained: false,
        internet_up: Some(true),
        upstream_paths: true,
        want_services: &[],
        want_advertise: &[],
        want_upstream: Announce::Announce,
    }
}

#[test]
fn service_failures_move_the_local_bit_and_the_advertisement_never_bgp() {
    run(
        &[],
        vec![
            Step {
                local: &[("web", Effective::Up), ("dns", Effective::Up)],
                peers: vec![("pop-b", "198.51.100.2", WEB)],
                want_services: &[(0, true, &["pop-b"]), (1, true, &[])],
                want_advertise: &["203.0.113.10", "2001:db8:ac::10", "203.0.113.53"],
                ..step("all up", 0)
            },
            Step {
                local: &[("web", Effective::Down), ("dns", Effective::Up)],
                peers: vec![("pop-b", "198.51.100.2", WEB)],
                want_services: &[(0, false, &["pop-b"]), (1, true, &[])],
                want_advertise: &["203.0.113.53"],
                ..step("web down here: forwarded to b, BGP unchanged", 1)
            },
            Step {
                local: &[("web", Effective::Down), ("dns", Effective::Up)],
                peers: vec![
                    ("pop-b", "198.51.100.2", WEB),
                    ("pop-c", "198.51.100.3", WEB),
                ],
                want_services: &[(0, false, &["pop-b", "pop-c"]), (1, true, &[])],
                want_advertise: &["203.0.113.53"],
                ..step("a peer appears", 2)
            },
            Step {
                local: &[("web", Effective::Down), ("dns", Effective::Up)],
                // c now serves only the IPv4 VIP of web: not a backend of web.
                peers: vec![("pop-c", "198.51.100.3", WEB_V4_ONLY)],
                want_services: &[(0, false, &[]), (1, true, &[])],
                want_advertise: &["203.0.113.53"],
                ..step("peers disappear; a half-serving peer is no backend", 3)
            },
            Step {
                local: &[("web", Effective::Up), ("dns", Effective::Draining)],
                peers: vec![],
                want_services: &[(0, true, &[]), (1, true, &[])],
                want_advertise: &["203.0.113.10", "2001:db8:ac::10"],
                ..step("dns draining: served here, not advertised", 4)
            },
        ],
    );
}

#[test]
fn all_down_drains_then_withdraws_and_comes_back_after_the_hold_down() {
    let d = FitnessPolicy::default();
    let drain = d.drain_period.as_secs();
    let hold = d.hold_down_base.as_secs();
    run(
        &[],
        vec![
            Step {
                local: &[("web", Effective::Up)],
                want_advertise: &["203.0.113.10", "2001:db8:ac::10"],
                ..step("up", 0)
            },
            Step {
                want_upstream: Announce::Drain,
                ..step("all down, no peer", 10)
            },
            Step {
                want_upstream: Announce::Withdraw,
                ..step("drain period over", 10 + drain)
            },
            Step {
                peers: vec![("pop-b", "198.51.100.2", DNS)],
                want_services: &[(1, false, &["pop-b"])],
                want_upstream: Announce::Announce,
                ..step(
                    "forwardable again, after the hold-down",
                    10 + drain.max(hold),
                )
            },
        ],
    );
}

#[test]
fn required_services_decide_fitness() {
    let web_down_dns_up: &[(&str, Effective)] = &[("web", Effective::Down), ("dns", Effective::Up)];
    // Without a requirement, dns alone keeps the node fit.
    run(
        &[],
        vec![Step {
            local: web_down_dns_up,
            want_advertise: DNS,
            ..step("dns only", 0)
        }],
    );
    // With web required, it does not...
    run(
        &["web"],
        vec![
            Step {
                local: &[("web", Effective::Up)],
                want_advertise: WEB,
                ..step("web up", 0)
            },
            Step {
                local: web_down_dns_up,
                want_advertise: DNS,
                want_upstream: Announce::Drain,
                ..step("web gone", 1)
            },
        ],
    );
    // ...unless a peer can take web.
    run(
        &["web"],
        vec![
            Step {
                local: &[("web", Effective::Up)],
                want_advertise: WEB,
                ..step("web up", 0)
            },
            Step {
                local: web_down_dns_up,
                peers: vec![("pop-b", "198.51.100.2", WEB)],
                want_advertise: DNS,
                ..step("web forwarded", 1)
            },
        ],
    );
}

#[test]
fn operator_drain_and_interface_down_drain_the_node() {
    let up: &[(&str, Effective)] = &[("web", Effective::Up), ("dns", Effective::Up)];
    let all = &["203.0.113.10", "2001:db8:ac::10", "203.0.113.53"];
    run(
        &[],
        vec![
            Step {
                local: up,
                want_advertise: all,
                ..step("up", 0)
            },
            Step {
                local: up,
                drained: true,
                want_advertise: all,
                want_upstream: Announce::Drain,
                ..step("operator drain", 1)
            },
            Step {
                local: up,
                want_advertise: all,
                ..step("undrain: back at once", 2)
            },
            Step {
                local: up,
                internet_up: Some(false),
                want_advertise: all,
                want_upstream: Announce::Drain,
                ..step("interface down", 3)
            },
            Step {
                local: up,
                internet_up: None,
                want_advertise: all,
                want_upstream: Announce::Drain,
                ..step("interface gone", 4)
            },
            Step {
                local: up,
                want_advertise: all,
                want_upstream: Announce::Drain,
                ..step("interface back: held down", 5)
            },
            Step {
                local: up,
                want_advertise: all,
                ..step("hold-down over", 13)
            },
        ],
    );
}

#[test]
fn every_upstream_path_down_makes_the_node_unfit_and_it_returns_through_the_hold_down() {
    let up: &'static [(&str, Effective)] = &[("web", Effective::Up), ("dns", Effective::Up)];
    let all = &["203.0.113.10", "203.0.113.53", "2001:db8:ac::10"];
    run(
        &[],
        vec![
            Step {
                local: up,
                want_advertise: all,
                ..step("announced", 0)
            },
            Step {
                local: up,
                upstream_paths: false,
                // Still served and advertised to peers: only the Internet
                // announcement is about upstream paths.
                want_advertise: all,
                want_upstream: Announce::Drain,
                ..step("BFD: every upstream path down", 1)
            },
            Step {
                local: up,
                want_advertise: all,
                want_upstream: Announce::Drain,
                ..step("BFD up again: held down, not announced on BFD Up alone", 2)
            },
            Step {
                local: up,
                want_advertise: all,
                ..step("hold-down over", 13)
            },
        ],
    );
}

#[test]
fn netlink_inputs_carry_addresses_and_peer_paths() {
    let config = config(&[]);
    let local: BTreeMap<String, Effective> = [("dns".to_string(), Effective::Up)].into();
    let overlay = overlay(&[("pop-b", "198.51.100.2", WEB)]);
    let inputs = Inputs {
        local: &local,
        drained: false,
        overlay: &overlay,
        internet_up: Some(true),
        upstream_paths: true,
        now: Instant::now(),
    };
    let d = decide(&config, &inputs, &mut Fitness::new());
    assert_eq!(d.netlink.vips.len(), 3);
    assert_eq!(d.netlink.healthy_vips, [ip("203.0.113.53")].into());
    assert_eq!(d.netlink.peers.len(), 1);
    assert_eq!(d.netlink.peers[0].next_hops, vec![ip("198.51.100.2")]);
    assert_eq!(
        d.trusted[&ip("198.51.100.2")],
        (id("pop-b"), ip("198.51.100.2"))
    );
}

#[test]
fn door_sources_are_the_configured_ones_the_candidates_and_the_trusted() {
    let mut config = config(&[]);
    let local = BTreeMap::new();
    let mut overlay = overlay(&[("pop-b", "198.51.100.2", WEB)]);
    overlay.candidates = [ip("198.51.100.3"), ip("2001:db8:ff::3")].into();
    fn inputs<'a>(local: &'a BTreeMap<String, Effective>, o: &'a OverlayStatus) -> Inputs<'a> {
        Inputs {
            local,
            drained: false,
            overlay: o,
            internet_up: Some(true),
            upstream_paths: true,
            now: Instant::now(),
        }
    }
    // Without doors, nothing is listed.
    let d = decide(&config, &inputs(&local, &overlay), &mut Fitness::new());
    assert!(d.door_sources.is_empty());
    config.doors = Some(crate::dataplane::DoorsSpec {
        doors: vec![],
        syn_rate: 20,
        syn_burst: 40,
        v4_prefix: 32,
        v6_prefix: 64,
    });
    config.door_sources = [ip("198.51.100.1")].into();
    let d = decide(&config, &inputs(&local, &overlay), &mut Fitness::new());
    assert_eq!(
        d.door_sources,
        [
            ip("198.51.100.1"),
            ip("198.51.100.2"),
            ip("198.51.100.3"),
            ip("2001:db8:ff::3")
        ]
        .into()
    );
    // A candidate that goes away is unlisted with the next decision.
    overlay.candidates.clear();
    let d = decide(&config, &inputs(&local, &overlay), &mut Fitness::new());
    assert_eq!(
        d.door_sources,
        [ip("198.51.100.1"), ip("198.51.100.2")].into()
    );
}
