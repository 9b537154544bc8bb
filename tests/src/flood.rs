//! A control endpoint under attack, for tests and benchmarks: pop-a and
//! pop-b meshed on one underlay segment, pop-c's namespace (a candidate
//! of pop-a's, not running yet), and a rogue namespace with up to a
//! hundred source addresses that runs `edge-flood` (only ever against
//! these namespaces).

use std::{
    net::{IpAddr, SocketAddr},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use edge_agent::{
    dataplane::{
        AttachMode, Attachment, Dataplane, DoorPolicy, DoorSpec, DoorsSpec, LoadOptions, Protocol,
    },
    overlay::{config::DEFAULT_PORT, identity::Identity, pki::Validity, trust::Trust},
};

use crate::{
    netns::Netns,
    overlay::{Lab, Node, Underlay, config},
    plan::underlay_v4,
};

const WAIT: Duration = Duration::from_secs(15);
/// The rogue's underlay host number (its first address).
pub const ROGUE: u8 = 9;
/// How long each flood runs.
pub const FLOOD_SECONDS: u64 = 12;

fn id(name: &str) -> Identity {
    Identity::from_name(name).unwrap()
}

/// pop-a (1) and pop-b (2) meshed; pop-a also knows pop-c (3) as a
/// candidate, which is not running yet; the rogue (9).
pub struct World {
    _underlay: Underlay,
    /// The PKI (pop-a, pop-b, pop-c; `rogue-other-ca.{pem,key}` from
    /// another CA).
    pub lab: Lab,
    /// pop-a, the node under attack.
    pub a: Node,
    /// pop-b, established with pop-a before the flood.
    pub b: Node,
    /// pop-a's namespace.
    pub a_ns: Netns,
    _spaces: Vec<Netns>,
    /// pop-c's namespace.
    pub c_ns: Netns,
    /// The rogue's namespace.
    pub rogue: Netns,
    /// The rogue's source addresses.
    pub sources: Vec<IpAddr>,
}

/// The world, with `sources` rogue addresses (198.51.100.9, then
/// 198.51.100.101 and up).
pub fn world(sources: usize) -> World {
    let lab = Lab::new();
    for name in ["pop-a", "pop-b", "pop-c"] {
        lab.issue(name, Validity::days_from_now(10));
    }
    let other = Lab::named("another CA");
    other.issue("pop-x", Validity::days_from_now(10));
    for ext in ["pem", "key"] {
        std::fs::copy(
            other.dir().join(format!("pop-x.{ext}")),
            lab.dir().join(format!("rogue-other-ca.{ext}")),
        )
        .unwrap();
    }
    let mut underlay = Underlay::new();
    let all = ["pop-a", "pop-b", "pop-c"];
    let a_ns = underlay.attach(1, false);
    let b_ns = underlay.attach(2, false);
    let c_ns = underlay.attach(3, false);
    let rogue = underlay.attach(ROGUE, false);
    let a = Node::start(
        &a_ns,
        config(&lab, 1, "pop-a", &all, &[("pop-b", 2), ("pop-c", 3)]),
    );
    let b = Node::start(&b_ns, config(&lab, 2, "pop-b", &all, &[("pop-a", 1)]));
    a.wait_for("pop-b", WAIT, |s| s.established().contains(&id("pop-b")));
    b.wait_for("pop-a", WAIT, |s| s.established().contains(&id("pop-a")));
    let mut addrs = vec![IpAddr::from(underlay_v4(ROGUE))];
    for i in 1..sources.min(100) {
        let addr = underlay_v4(100 + i as u8);
        rogue.add_addr("up0", &format!("{addr}/24"));
        addrs.push(addr.into());
    }
    World {
        _underlay: underlay,
        lab,
        a,
        b,
        a_ns,
        _spaces: vec![b_ns],
        c_ns,
        rogue,
        sources: addrs,
    }
}

/// The XDP program on pop-a's `up0` with the doors an agent sets for its
/// control port (and BGP, BFD), pop-b and pop-c listed; gone when dropped.
pub struct Guard {
    _dataplane: Dataplane,
    _attachment: Attachment,
}

impl World {
    /// Guards pop-a's control port in XDP, as the agent does.
    pub fn guard(&self) -> Guard {
        self.a_ns.run(|| {
            let mut dp = Dataplane::load(&LoadOptions::default()).expect("load the XDP object");
            let door = |protocol, port, policy| DoorSpec {
                protocol,
                port,
                policy,
            };
            for n in [2, 3] {
                dp.list_source(underlay_v4(n).into())
                    .expect("list a candidate");
            }
            dp.set_doors(&DoorsSpec {
                doors: vec![
                    door(Protocol::Tcp, DEFAULT_PORT, DoorPolicy::RateLimited),
                    door(Protocol::Tcp, 179, DoorPolicy::ListedOnly),
                    door(Protocol::Udp, 4784, DoorPolicy::ListedOnly),
                ],
                syn_rate: 20,
                syn_burst: 40,
                v4_prefix: 32,
                v6_prefix: 64,
            })
            .expect("doors");
            let attachment = dp.attach("up0", AttachMode::Native).expect("attach");
            Guard {
                _dataplane: dp,
                _attachment: attachment,
            }
        })
    }
}

/// A flood from the rogue's namespace, running in the background; killed
/// if dropped before [`Flood::finish`].
pub struct Flood(Option<Child>);

impl Flood {
    /// Starts `edge-flood` (the binary at `bin`) in `mode` against
    /// pop-a's control endpoint from every rogue address, for `seconds`.
    pub fn start(w: &World, bin: &str, mode: &str, seconds: u64, extra: &[&str]) -> Flood {
        let sources: Vec<String> = w.sources.iter().map(ToString::to_string).collect();
        let target = SocketAddr::new(underlay_v4(1).into(), DEFAULT_PORT).to_string();
        let seconds = seconds.to_string();
        let mut cmd: Command = w.rogue.command(bin);
        cmd.args([mode, "--target", &target, "--seconds", &seconds])
            .args(["--sources", &sources.join(",")])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Flood(Some(cmd.spawn().expect("edge-flood")))
    }

    /// Waits for the end; its figures.
    pub fn finish(mut self) -> serde_json::Value {
        let child = self.0.take().expect("a running flood");
        let out = child.wait_with_output().expect("edge-flood ran");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "edge-flood failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        let line = text.lines().last().unwrap_or_default();
        serde_json::from_str(line).unwrap_or_else(|e| panic!("edge-flood said {line:?}: {e}"))
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// pop-c's handshake with pop-a, from pop-c's namespace: how long until
/// it was authenticated (and confirmed by pop-a).
pub fn candidate_handshake(w: &World) -> Duration {
    let trust = Trust::load(&config(&w.lab, 3, "pop-c", &["pop-a"], &[]).trust).unwrap();
    let name = w.c_ns.name().to_owned();
    std::thread::spawn(move || {
        let runtime = crate::netns::runtime_in(&name);
        runtime.block_on(async move {
            let started = Instant::now();
            let tcp = tokio::net::TcpSocket::new_v4().unwrap();
            tcp.bind(SocketAddr::new(underlay_v4(3).into(), 0)).unwrap();
            let tcp = tokio::time::timeout(
                WAIT,
                tcp.connect(SocketAddr::new(underlay_v4(1).into(), DEFAULT_PORT)),
            )
            .await
            .expect("connect in time")
            .expect("connect");
            let (_stream, auth) = trust
                .connect(tcp, &id("pop-a"))
                .await
                .expect("pop-c authenticates with pop-a during the flood");
            assert_eq!(auth.identity, id("pop-a"));
            started.elapsed()
        })
    })
    .join()
    .unwrap()
}
