//! Overlay nodes for tests: an underlay (one bridged segment in a hub
//! namespace, plus an optional private segment), a lab PKI in a temporary
//! directory, and overlay runtimes on their own threads inside node
//! namespaces, with their log lines captured so tests can count them.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use edge_agent::{
    bgp::message::Prefix,
    overlay::{
        adjacency::Timers,
        admission::AdmissionConfig,
        config::{DEFAULT_PORT, OverlayConfig},
        discovery::{Candidate, Source},
        identity::Identity,
        import::ImportPolicy,
        pki::{self, Pem, Validity},
        runtime::Overlay,
        status::OverlayStatus,
        trust::TrustConfig,
    },
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::{
    logs::Capture,
    netns::{Netns, veth},
    plan,
};

/// The bridged underlay: a hub namespace with bridges that node
/// namespaces attach to.
pub struct Underlay {
    /// The hub (holds the bridges).
    pub hub: Netns,
    attached: u32,
    internet_ports: std::collections::HashMap<u8, String>,
    private_ports: std::collections::HashMap<u8, String>,
}

impl Underlay {
    /// A hub with the Internet bridge `br0` and the private bridge `brp`.
    pub fn new() -> Self {
        let hub = Netns::new();
        for bridge in ["br0", "brp"] {
            hub.ip(&["link", "add", bridge, "type", "bridge"]);
            hub.ip(&["link", "set", bridge, "up"]);
        }
        Underlay {
            hub,
            attached: 0,
            internet_ports: Default::default(),
            private_ports: Default::default(),
        }
    }

    /// A node namespace on the Internet segment as underlay host `n`
    /// (198.51.100.n/24 and 2001:db8:ff::n/64 on `up0`), and, with
    /// `private`, on the private segment as 198.51.100.(128+n)/25 on `pr0`.
    pub fn attach(&mut self, n: u8, private: bool) -> Netns {
        let ns = Netns::new();
        self.attached += 1;
        let hub_dev = format!("u{}", self.attached);
        veth(&ns, "up0", &self.hub, &hub_dev);
        self.hub.ip(&["link", "set", &hub_dev, "master", "br0"]);
        self.internet_ports.insert(n, hub_dev);
        ns.add_addr("up0", &format!("{}/24", plan::underlay_v4(n)));
        ns.ip(&[
            "-6",
            "addr",
            "add",
            &format!("{}/64", plan::underlay_v6(u16::from(n))),
            "dev",
            "up0",
            "nodad",
        ]);
        if private {
            let hub_dev = format!("p{}", self.attached);
            veth(&ns, "pr0", &self.hub, &hub_dev);
            self.hub.ip(&["link", "set", &hub_dev, "master", "brp"]);
            self.private_ports.insert(n, hub_dev);
            ns.add_addr("pr0", &format!("{}/25", private_v4(n)));
        }
        ns
    }

    /// Cuts underlay host `n`'s private link (its hub end goes down).
    pub fn cut_private(&self, n: u8) {
        let port = self
            .private_ports
            .get(&n)
            .expect("a node attached with a private link");
        self.hub.ip(&["link", "set", port, "down"]);
    }

    /// Cuts (`up` false) or restores underlay host `n`'s Internet link at
    /// the hub: the node goes silent without closing anything.
    pub fn set_internet(&self, n: u8, up: bool) {
        let port = self.internet_ports.get(&n).expect("an attached node");
        self.hub
            .ip(&["link", "set", port, if up { "up" } else { "down" }]);
    }
}

impl Default for Underlay {
    fn default() -> Self {
        Self::new()
    }
}

/// Node `n`'s private underlay address (198.51.100.128+n).
pub fn private_v4(n: u8) -> std::net::Ipv4Addr {
    plan::underlay_v4(128 + n)
}

/// A lab PKI in a temporary directory.
pub struct Lab {
    dir: tempfile::TempDir,
    /// The CA.
    pub ca: Pem,
}

impl Lab {
    /// A new CA named "edge test CA".
    pub fn new() -> Self {
        Self::named("edge test CA")
    }

    /// A new CA with this common name.
    pub fn named(common_name: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ca = pki::make_ca(common_name, Validity::days_from_now(30)).expect("CA");
        std::fs::write(dir.path().join("ca.pem"), &ca.cert).expect("write CA");
        Lab { dir, ca }
    }

    /// Where the files are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA bundle file.
    pub fn ca_file(&self) -> PathBuf {
        self.dir().join("ca.pem")
    }

    /// Issues (or re-issues, overwriting) `name`'s certificate and key:
    /// (cert file, key file).
    pub fn issue(&self, name: &str, validity: Validity) -> (PathBuf, PathBuf) {
        self.issue_by(&self.ca, name, validity)
    }

    /// Issues `name`'s certificate signed by another CA.
    pub fn issue_by(&self, ca: &Pem, name: &str, validity: Validity) -> (PathBuf, PathBuf) {
        let identity = Identity::from_name(name).expect("identity");
        let pem = pki::make_node(ca, &identity, validity).expect("node certificate");
        let cert = self.dir().join(format!("{name}.pem"));
        let key = self.dir().join(format!("{name}.key"));
        // Key first, then certificate: a reload between the two sees a
        // mismatch and keeps the old pair rather than half of the new one.
        write_atomic(&key, &pem.key);
        write_atomic(&cert, &pem.cert);
        (cert, key)
    }

    /// Revokes `name`'s current certificate in the lab CRL file.
    pub fn revoke(&self, name: &str) -> PathBuf {
        let crl = self.crl_file();
        let existing = std::fs::read_to_string(&crl).ok();
        let cert = std::fs::read_to_string(self.dir().join(format!("{name}.pem"))).expect("cert");
        let pem = pki::revoke(&self.ca, existing.as_deref(), &cert).expect("revoke");
        write_atomic(&crl, &pem);
        crl
    }

    /// The lab CRL file (may not exist yet).
    pub fn crl_file(&self) -> PathBuf {
        self.dir().join("crl.pem")
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

fn write_atomic(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// Import ranges of the address plan: identities 192.0.2.0/24 and
/// 2001:db8:1d::/48, services the anycast prefixes, private
/// 198.51.100.128/25.
pub fn policy(max_routes: usize) -> ImportPolicy {
    ImportPolicy {
        asn: plan::CDN_ASN,
        identity_ranges: vec![
            "192.0.2.0/24".parse().unwrap(),
            "2001:db8:1d::/48".parse().unwrap(),
        ],
        service_ranges: plan::anycast()
            .into_iter()
            .map(|(addr, len)| format!("{addr}/{len}").parse::<Prefix>().unwrap())
            .collect(),
        private_ranges: vec!["198.51.100.128/25".parse().unwrap()],
        max_routes,
    }
}

/// The overlay config of node `n` named `name` (`pop-<name>`), with the
/// lab's files, allowing `allow` and knowing `peers` as (name, n).
pub fn config(lab: &Lab, n: u8, name: &str, allow: &[&str], peers: &[(&str, u8)]) -> OverlayConfig {
    let (cert, key) = (
        lab.dir().join(format!("{name}.pem")),
        lab.dir().join(format!("{name}.key")),
    );
    OverlayConfig {
        listen: SocketAddr::new(plan::underlay_v4(n).into(), DEFAULT_PORT),
        underlay_other: Some(plan::underlay_v6(u16::from(n)).into()),
        trust: TrustConfig {
            ca_bundle: lab.ca_file(),
            cert,
            key,
            crl: None,
            allow: allow
                .iter()
                .map(|a| Identity::from_name(a).unwrap())
                .collect(),
            handshake_timeout: Duration::from_secs(2),
        },
        asn: plan::CDN_ASN,
        node_addrs: vec![plan::node_v4(n).into(), plan::node_v6(u16::from(n)).into()],
        private_addr: None,
        private_to: Default::default(),
        import: policy(16),
        static_peers: peers
            .iter()
            .map(|(peer, m)| Candidate {
                identity: Identity::from_name(peer).unwrap(),
                addr: SocketAddr::new(plan::underlay_v4(*m).into(), DEFAULT_PORT),
                source: Source::Static,
            })
            .collect(),
        srv: Vec::new(),
        srv_refresh: Duration::from_secs(30),
        hold_time: 9,
        timers: Timers {
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(2),
            initial_spread: Duration::from_millis(200),
            defer: Duration::from_millis(500),
        },
        bfd: None,
        trust_check: Duration::from_millis(200),
        admission: AdmissionConfig {
            candidate_handshakes: 16,
            ..AdmissionConfig::default()
        },
        advertise_after_trust: false,
    }
}

enum Request {
    Advertise(IpAddr),
    Withdraw(IpAddr),
    Reload(Option<TrustConfig>),
    Trusted(std::collections::BTreeSet<IpAddr>),
}

/// An overlay runtime on its own thread inside a namespace.
pub struct Node {
    /// Its status.
    pub status: watch::Receiver<OverlayStatus>,
    requests: mpsc::UnboundedSender<Request>,
    logs: Capture,
    stop: Option<oneshot::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
    /// The thread's id (its runtime is single-threaded: the overlay's
    /// CPU time is this thread's).
    tid: i32,
}

impl Node {
    /// Starts an overlay with `config` inside `ns`; panics if it cannot.
    pub fn start(ns: &Netns, config: OverlayConfig) -> Node {
        Self::try_start(ns, config).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts an overlay with `config` inside `ns`.
    pub fn try_start(ns: &Netns, config: OverlayConfig) -> Result<Node, String> {
        let logs = Capture::new();
        let capture = logs.clone();
        let (requests, mut requests_rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = oneshot::channel::<bool>();
        let (ready, ready_rx) = std::sync::mpsc::channel();
        let name = ns.name().to_owned();
        let thread = std::thread::spawn(move || {
            edge_agent::netns::enter(&name).unwrap();
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || capture.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish();
            let _guard = tracing::subscriber::set_default(subscriber);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let overlay = match Overlay::start(config).await {
                    Ok(overlay) => overlay,
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready.send(Ok((overlay.status(), tid)));
                let mut stop_rx = stop_rx;
                loop {
                    tokio::select! {
                        request = requests_rx.recv() => match request {
                            Some(Request::Advertise(vip)) => overlay.advertise(vip).await.unwrap(),
                            Some(Request::Withdraw(vip)) => overlay.withdraw(vip).await,
                            Some(Request::Reload(trust)) => overlay.reload(trust).await,
                            Some(Request::Trusted(sources)) => overlay.confirm_trusted(sources).await,
                            None => break,
                        },
                        graceful = &mut stop_rx => {
                            if graceful.unwrap_or(false) {
                                overlay.shutdown().await;
                            }
                            // Otherwise a crash: the runtime and every
                            // socket are dropped, no Cease.
                            break;
                        }
                    }
                }
            });
        });
        let (status, tid) = ready_rx
            .recv()
            .map_err(|_| "the overlay thread died".to_string())??;
        Ok(Node {
            status,
            requests,
            logs,
            stop: Some(stop),
            thread: Some(thread),
            tid,
        })
    }

    /// The CPU time (user and system) the overlay's thread has used.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{}/stat", self.tid))
            .unwrap_or_default();
        // After the command name in parentheses: state is field 3, utime
        // and stime are fields 14 and 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i - 3)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_millis((ticks(14) + ticks(15)) * 1000 / hz)
    }

    /// Advertises a local service VIP.
    pub fn advertise(&self, vip: impl Into<IpAddr>) {
        let _ = self.requests.send(Request::Advertise(vip.into()));
    }

    /// Withdraws a local service VIP.
    pub fn withdraw(&self, vip: impl Into<IpAddr>) {
        let _ = self.requests.send(Request::Withdraw(vip.into()));
    }

    /// Reloads the trust material (SIGHUP), optionally with new settings.
    pub fn reload(&self, trust: Option<TrustConfig>) {
        let _ = self.requests.send(Request::Reload(trust));
    }

    /// Tells the overlay which sources the data plane trusts.
    pub fn confirm_trusted(&self, sources: impl IntoIterator<Item = IpAddr>) {
        let _ = self
            .requests
            .send(Request::Trusted(sources.into_iter().collect()));
    }

    /// The log so far.
    pub fn logs(&self) -> String {
        self.logs.text()
    }

    /// Log lines containing every one of `needles`.
    pub fn log_lines(&self, needles: &[&str]) -> Vec<String> {
        self.logs()
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_owned)
            .collect()
    }

    /// Waits until `check` holds for the status; panics after `timeout`
    /// with the status and the log.
    pub fn wait_for(&self, what: &str, timeout: Duration, check: impl Fn(&OverlayStatus) -> bool) {
        let deadline = Instant::now() + timeout;
        while !check(&self.status.borrow()) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:#?}\nlog:\n{}",
                self.status.borrow(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops abruptly: every socket closes, no Cease (a killed process).
    pub fn kill(mut self) {
        self.end(false);
    }

    /// Stops gracefully: Cease to every peer.
    pub fn shutdown(mut self) {
        self.end(true);
    }

    fn end(&mut self, graceful: bool) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(graceful);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.end(false);
    }
}
