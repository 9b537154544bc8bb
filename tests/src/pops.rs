//! Two PoPs and a router in namespaces, for tests and benchmarks of whole
//! nodes:
//!
//! ```text
//! client 198.18.0.2 ── router (BIRD, AS 64496) ── A 198.51.100.2 (a0)
//!                                               └─ B 198.51.100.6 (b0)
//! ```
//!
//! The router sends the anycast prefix to A (as Internet BGP would; BIRD
//! is there to see what A announces upstream). Each PoP has a line server
//! on the web VIP that says who served ([`Web`]), and a node config
//! ([`node`]) for [`crate::agent::NodeAgent`].

use std::{
    io::{BufRead, BufReader, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use edge_agent::{
    agent::AgentConfig,
    bgp::message::Family,
    config::{DoorsConfig, door_spec},
    control::{
        decide::{ControlConfig, ServiceConfig},
        fitness::FitnessPolicy,
    },
    dataplane::{
        AttachMode, Attachment, Dataplane, Encap, LoadOptions, NodeConfig, Protocol, ServiceMatch,
    },
    health::{HealthConfig, ProbeSpec, ServiceCheck, tcp::TcpProbe},
    netlink::{desired::VipAddresses, reconciler::NetlinkConfig, state::Ownership},
    overlay::pki::Validity,
};

use crate::{
    bird::{BgpNeighbor, Bird, bgp_config},
    command::stdout_of,
    netns::{Netns, veth},
    overlay::{Lab, config as overlay_config},
    pins::PinDir,
    plan::{CDN_ASN, ISP_ASNS, VIP_WEB_V4, anycast},
    upstream,
};

/// A's underlay address.
pub const A4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// B's underlay address.
pub const B4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 6);
/// How long a client waits for an answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The namespaces.
pub struct Topology {
    /// The client.
    pub client: Netns,
    /// The router (run BIRD here).
    pub router: Netns,
    /// PoP A.
    pub a: Netns,
    /// PoP B.
    pub b: Netns,
}

/// Builds the namespaces, links, addresses and routes.
pub fn build() -> Topology {
    let (client, router, a, b) = (Netns::new(), Netns::new(), Netns::new(), Netns::new());
    veth(&client, "cl0", &router, "r-cl");
    veth(&router, "r-a", &a, "a0");
    veth(&router, "r-b", &b, "b0");
    for (ns, dev, addr) in [
        (&client, "cl0", "198.18.0.2/24"),
        (&router, "r-cl", "198.18.0.1/24"),
        (&router, "r-a", "198.51.100.1/30"),
        (&router, "r-b", "198.51.100.5/30"),
        (&a, "a0", "198.51.100.2/30"),
        (&b, "b0", "198.51.100.6/30"),
    ] {
        ns.add_addr(dev, addr);
    }
    stdout_of(client.command("ethtool").args(["-K", "cl0", "tx", "off"]));
    client.ip(&["route", "add", "default", "via", "198.18.0.1"]);
    a.ip(&["route", "add", "default", "via", "198.51.100.1"]);
    b.ip(&["route", "add", "default", "via", "198.51.100.5"]);
    for pop in [&a, &b] {
        // bpf_fib_lookup answers only where forwarding is on.
        pop.sysctl("net.ipv4.conf.all.forwarding", "1");
    }
    // Internet BGP has chosen A for the anycast prefix.
    router.ip(&["route", "add", "203.0.113.0/24", "via", "198.51.100.2"]);
    router.sysctl("net.ipv4.conf.all.forwarding", "1");
    Topology {
        client,
        router,
        a,
        b,
    }
}

/// The router's side of the PoPs' world: BIRD with A as its BGP
/// neighbour `pop_a`, and a pass-through XDP program on `r-a` (frames A's
/// XDP sends back out of `a0` arrive only where the other end has one).
pub struct Upstream {
    /// BIRD on the router.
    pub bird: Bird,
    _pass: (Dataplane, Attachment),
}

impl Upstream {
    /// Starts it on `t.router`.
    pub fn start(t: &Topology) -> Upstream {
        Self::start_with(t, "")
    }

    /// Starts it on `t.router`, with `options` in the BGP protocol block.
    pub fn start_with(t: &Topology, options: &str) -> Upstream {
        let mut pass = t
            .router
            .run(|| Dataplane::load(&LoadOptions::default()).expect("load the router's program"));
        let attachment = t
            .router
            .run(|| pass.attach_pass("r-a", AttachMode::Native))
            .expect("pass program on r-a");
        let bird = Bird::start(
            &t.router,
            &bgp_config(
                "198.51.100.1".parse().unwrap(),
                ISP_ASNS[0],
                &[BgpNeighbor {
                    options: options.into(),
                    ..BgpNeighbor::new("pop_a", A4.into(), CDN_ASN)
                }],
            ),
        );
        Upstream {
            bird,
            _pass: (pass, attachment),
        }
    }
}

/// A lab PKI with certificates for pop-a and pop-b.
pub fn lab() -> Lab {
    let lab = Lab::new();
    for name in ["pop-a", "pop-b"] {
        lab.issue(name, Validity::days_from_now(10));
    }
    lab
}

/// The config of PoP `n` (1: A on `a0`, 2: B on `b0`) named `name`, with
/// `peer` (name, n) as its static overlay candidate, an upstream session
/// to the router's BIRD if `upstream_bird`, its maps pinned in `pins`, and
/// a TCP health check of its web VIP every 100 ms (rise 2, fall 3).
#[allow(clippy::too_many_arguments, reason = "test wiring")]
pub fn node(
    lab: &Lab,
    n: u8,
    name: &str,
    peer: (&str, u8),
    internet: &str,
    upstream_bird: bool,
    pins: &PinDir,
) -> AgentConfig {
    let underlay = if n == 1 { A4 } else { B4 };
    let mut overlay = overlay_config(lab, n, name, &["pop-a", "pop-b"], &[peer]);
    overlay.listen = SocketAddr::new(underlay.into(), 4179);
    overlay.underlay_other = None;
    overlay.node_addrs = vec![Ipv4Addr::new(192, 0, 2, n).into()];
    let peer_underlay = if peer.1 == 1 { A4 } else { B4 };
    overlay.static_peers[0].addr = SocketAddr::new(peer_underlay.into(), 4179);
    let web = ServiceMatch {
        vip: VIP_WEB_V4.into(),
        protocol: Protocol::Tcp,
        port: Some(80),
    };
    let mut neighbors = Vec::new();
    if upstream_bird {
        let mut neighbor = upstream::neighbor(
            "198.51.100.1".parse().unwrap(),
            ISP_ASNS[0],
            vec![Family::IPV4_UNICAST],
        );
        neighbor.session.bgp_id = Ipv4Addr::new(192, 0, 2, n);
        neighbor.origination.next_hop_v4 = Some(underlay);
        neighbor.origination.next_hop_v6 = None;
        neighbors.push(neighbor);
    }
    let mut config = AgentConfig {
        internet: internet.into(),
        attach: AttachMode::Native,
        load: LoadOptions::pinned(pins.path()),
        node: NodeConfig {
            underlay_v4: Some(underlay),
            underlay_v6: None,
            gue_port: None,
            mtu: 1500,
            anycast: anycast(),
        },
        overlay,
        netlink: NetlinkConfig {
            ownership: Ownership {
                link: "edge0".into(),
                table: 4179,
                protocol: 242,
            },
            internet: internet.into(),
            period: Duration::from_secs(5),
            keep_state: false,
        },
        health: vec![ServiceCheck {
            name: "web".into(),
            probes: vec![ProbeSpec::Tcp(TcpProbe::new(SocketAddr::new(
                VIP_WEB_V4.into(),
                80,
            )))],
            config: HealthConfig {
                interval: Duration::from_millis(100),
                fast_interval: Duration::from_millis(50),
                timeout: Duration::from_millis(300),
                slow_threshold: Duration::from_millis(300),
                rise: 2,
                fall: 3,
                ..HealthConfig::default()
            },
        }],
        control: ControlConfig {
            services: vec![ServiceConfig {
                name: "web".into(),
                id: 0,
                matches: vec![web],
                drop_when_unavailable: false,
            }],
            required: Vec::new(),
            anycast: vec!["203.0.113.0/24".parse().unwrap()],
            node_addrs: vec![Ipv4Addr::new(192, 0, 2, n).into()],
            encap: Encap::IpIp,
            vip_addresses: VipAddresses::Configured,
            fitness: FitnessPolicy::default(),
            doors: None,
            door_sources: Default::default(),
        },
        upstream: neighbors,
        dns: None,
    };
    // The data plane guards the agent's ports, as by default.
    let (doors, sources) = door_spec(&DoorsConfig::default(), &config).expect("few doors");
    config.control.doors = Some(doors);
    config.control.door_sources = sources;
    config
}

/// A line server on the web VIP: answers each line with "<name>: <line>".
/// It can be stopped (the listener closes: connections are refused) and
/// started again; connections already open keep working.
pub struct Web {
    running: Arc<AtomicBool>,
    ns: String,
    name: &'static str,
}

impl Web {
    /// Starts serving as `name` inside `ns`.
    pub fn start(ns: &Netns, name: &'static str) -> Web {
        let web = Web {
            running: Arc::new(AtomicBool::new(false)),
            ns: ns.name().to_owned(),
            name,
        };
        web.up();
        web
    }

    /// Serves (again).
    pub fn up(&self) {
        let listener = {
            let ns = self.ns.clone();
            std::thread::spawn(move || {
                edge_agent::netns::enter(&ns).unwrap();
                TcpListener::bind((VIP_WEB_V4, 80)).unwrap()
            })
            .join()
            .unwrap()
        };
        listener.set_nonblocking(true).unwrap();
        self.running.store(true, Ordering::SeqCst);
        let running = self.running.clone();
        let name = self.name;
        std::thread::spawn(move || {
            while running.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        std::thread::spawn(move || serve(stream, name));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
    }

    /// Stops accepting: new connections are refused.
    pub fn down(&self) {
        self.running.store(false, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn serve(stream: TcpStream, name: &str) {
    let _ = stream.set_nonblocking(false);
    let mut writer = stream.try_clone().unwrap();
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        if writer
            .write_all(format!("{name}: {line}\n").as_bytes())
            .is_err()
        {
            return;
        }
    }
}

/// A client connection to the web VIP, line by line.
pub struct Conn(BufReader<TcpStream>);

impl Conn {
    /// Connects from `client`.
    pub fn open(client: &Netns) -> Conn {
        let stream = client.run(|| {
            TcpStream::connect_timeout(&SocketAddr::new(VIP_WEB_V4.into(), 80), TIMEOUT)
                .expect("connect to the web VIP")
        });
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        Conn(BufReader::new(stream))
    }

    /// Sends a line, returns the answer line.
    pub fn ask(&mut self, line: &str) -> String {
        self.0
            .get_mut()
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        let mut answer = String::new();
        self.0.read_line(&mut answer).expect("an answer");
        answer.trim().to_string()
    }
}
