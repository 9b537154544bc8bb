//! The authoritative DNS service (`edge_agent::authdns`) answering real
//! queries across a veth: `dig` and hand-made messages from a client
//! namespace to the DNS VIPs of a server namespace, over UDP and TCP,
//! IPv4 and IPv6.
//!
//! ```text
//! client (cli0 198.51.100.2/24, 2001:db8:ff::2/64;
//!         clients 198.18.0.2, 198.18.1.2, 2001:db8:ff:1::2, 2001:db8:ff:100::2)
//!   └── veth ── server (srv0 198.51.100.1/24, 2001:db8:ff::1/64;
//!                       VIPs 203.0.113.53, 2001:db8:ac::53 on lo; DnsServer)
//! ```
//!
//! The server runs on its own thread, on a runtime inside the server
//! namespace; the test drives it (stats, stop, listen, reload) through a
//! channel. Every mismatch panics with the whole `dig` output.

use std::{
    collections::BTreeMap,
    future::Future,
    io::{ErrorKind, Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket},
    pin::Pin,
    sync::{Arc, mpsc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use edge_agent::authdns::{
    DnsConfig, DnsServer, DnsStats, Outcome, RateLimit, Settings, Zone, ZoneSet,
};
use edge_tests::{
    netns::{Netns, runtime_in, veth},
    plan::{VIP_DNS_V4, VIP_DNS_V6, client_v4, underlay_v4, underlay_v6},
    privilege::require_root,
    rng::Rng,
};
use hickory_proto::{
    op::{Message, MessageType, OpCode, Query},
    rr::{Name, RecordType},
};

// ---------------------------------------------------------------------------
// Addresses

/// Client A (IPv4), in 198.18.0.0/24.
const CLIENT_A4: Ipv4Addr = client_v4(2);
/// Client B (IPv4), another /24: a separate rate-limiting bucket.
const CLIENT_B4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
/// Client A (IPv6), in 2001:db8:ff::/56.
const CLIENT_A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 1, 0, 0, 0, 2);
/// Client B (IPv6), in 2001:db8:ff:100::/56: another bucket.
const CLIENT_B6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0x100, 0, 0, 0, 2);

/// The NSID the server is configured with.
const NSID: &str = "pop-a.edge";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn vip(self) -> IpAddr {
        match self {
            Family::V4 => VIP_DNS_V4.into(),
            Family::V6 => VIP_DNS_V6.into(),
        }
    }

    fn client_a(self) -> IpAddr {
        match self {
            Family::V4 => CLIENT_A4.into(),
            Family::V6 => CLIENT_A6.into(),
        }
    }

    fn client_b(self) -> IpAddr {
        match self {
            Family::V4 => CLIENT_B4.into(),
            Family::V6 => CLIENT_B6.into(),
        }
    }
}

/// One way to reach the server: UDP or TCP, IPv4 or IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Path {
    tcp: bool,
    family: Family,
}

const PATHS: [Path; 4] = [
    Path {
        tcp: false,
        family: Family::V4,
    },
    Path {
        tcp: false,
        family: Family::V6,
    },
    Path {
        tcp: true,
        family: Family::V4,
    },
    Path {
        tcp: true,
        family: Family::V6,
    },
];

const UDP: [Path; 2] = [PATHS[0], PATHS[1]];
const TCP: [Path; 2] = [PATHS[2], PATHS[3]];

impl Path {
    fn server(self) -> SocketAddr {
        SocketAddr::new(self.family.vip(), 53)
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = if self.tcp { "tcp" } else { "udp" };
        let family = match self.family {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        };
        write!(f, "{proto}/{family}")
    }
}

// ---------------------------------------------------------------------------
// Zones

/// A TXT string of exactly 200 characters.
fn long_string(tag: &str, i: usize) -> String {
    let head = format!("{tag}-{i}-");
    format!("{head}{}", "x".repeat(200 - head.len()))
}

/// How many TXT records `mid` has (a response between 512 and 1232 bytes).
const MID_TXT: usize = 3;
/// How many TXT records `big` has (a response over 1232 bytes).
const BIG_TXT: usize = 8;
/// How many A records `mx` has (its glue alone overflows 512 bytes).
const MX_A: u8 = 40;

fn cdn_text(serial: u32, www: Ipv4Addr) -> String {
    let mut text = format!(
        "@        3600 IN SOA  ns1.cdn.test. hostmaster.cdn.test. {serial} 7200 900 1209600 300
@        3600 IN NS   ns1
@        3600 IN NS   ns2.cdn.test.
ns1       600 IN A    203.0.113.53
ns1       600 IN AAAA 2001:db8:ac::53
ns2       600 IN A    203.0.113.54
ns2       600 IN AAAA 2001:db8:ac::54
www       300 IN A    {www}
www       300 IN AAAA 2001:db8:ac::10
alias     120 IN CNAME www
outside   120 IN CNAME www.example.net.
dangling  120 IN CNAME gone
txt        60 IN TXT  \"v=spf1 -all\"
txt        60 IN TXT  \"hello\" \"world\"
a.b.c     300 IN A    203.0.113.20
mail      300 IN MX   10 mx
"
    );
    for i in 0..MX_A {
        text += &format!("mx 300 IN A 203.0.113.{}\n", 100 + i);
    }
    for i in 0..MID_TXT {
        text += &format!("mid 300 IN TXT \"{}\"\n", long_string("mid", i));
    }
    for i in 0..BIG_TXT {
        text += &format!("big 300 IN TXT \"{}\"\n", long_string("big", i));
    }
    text
}

const OTHER: &str = "
@     60 IN SOA   ns1.cdn.test. hostmaster.cdn.test. 7 7200 900 1209600 600
@     60 IN NS    ns1.cdn.test.
www  300 IN A     203.0.113.11
alias 90 IN CNAME www.cdn.test.
";

fn zone(origin: &str, text: &str) -> Zone {
    Zone::parse(origin, text, 3600, None)
        .unwrap_or_else(|e| panic!("zone {origin} does not parse: {e}\n{text}"))
}

/// `cdn.test.` (serial 2024010101) and `other.test.`.
fn zones() -> Arc<ZoneSet> {
    Arc::new(
        ZoneSet::new(vec![
            zone(
                "cdn.test.",
                &cdn_text(2024010101, Ipv4Addr::new(203, 0, 113, 10)),
            ),
            zone("other.test.", OTHER),
        ])
        .expect("the zones make a set"),
    )
}

fn settings() -> Settings {
    Settings {
        udp_payload: 1232,
        nsid: Some(NSID.as_bytes().to_vec()),
    }
}

// ---------------------------------------------------------------------------
// The fixture: client and server namespaces, the server on its thread

/// Work for the server's thread; it may wait (`stop_listening`).
type Job = Box<dyn for<'a> FnOnce(&'a DnsServer) -> Pin<Box<dyn Future<Output = ()> + 'a>> + Send>;

struct Fixture {
    client: Netns,
    server_ns: Netns,
    jobs: Option<tokio::sync::mpsc::UnboundedSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Fixture {
    /// The topology and a server with [`zones`], [`settings`], no rate
    /// limiting, 64 TCP connections and 10 s TCP idle time.
    fn new() -> Fixture {
        Fixture::with(|_| {})
    }

    /// Like [`Fixture::new`], with `adjust` applied to the configuration.
    fn with(adjust: impl FnOnce(&mut DnsConfig)) -> Fixture {
        let (client, server_ns) = (Netns::new(), Netns::new());
        // No duplicate address detection on the veth: while its link-local
        // address is tentative, IPv6 neighbour discovery loses the first
        // datagrams (about a second of them).
        for ns in [&client, &server_ns] {
            ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
        }
        veth(&server_ns, "srv0", &client, "cli0");
        server_ns.add_addr("srv0", &format!("{}/24", underlay_v4(1)));
        server_ns.add_addr("srv0", &format!("{}/64", underlay_v6(1)));
        server_ns.add_addr("lo", &format!("{VIP_DNS_V4}/32"));
        server_ns.add_addr("lo", &format!("{VIP_DNS_V6}/128"));
        server_ns.ip(&[
            "route",
            "add",
            "198.18.0.0/15",
            "via",
            &underlay_v4(2).to_string(),
        ]);
        server_ns.ip(&[
            "-6",
            "route",
            "add",
            "2001:db8:ff::/48",
            "via",
            &underlay_v6(2).to_string(),
        ]);
        client.add_addr("cli0", &format!("{}/24", underlay_v4(2)));
        client.add_addr("cli0", &format!("{}/64", underlay_v6(2)));
        for address in [
            IpAddr::from(CLIENT_A4),
            CLIENT_B4.into(),
            CLIENT_A6.into(),
            CLIENT_B6.into(),
        ] {
            let len = if address.is_ipv4() { 32 } else { 128 };
            client.add_addr("cli0", &format!("{address}/{len}"));
        }
        client.ip(&[
            "route",
            "add",
            "203.0.113.0/24",
            "via",
            &underlay_v4(1).to_string(),
        ]);
        client.ip(&[
            "-6",
            "route",
            "add",
            "2001:db8:ac::/48",
            "via",
            &underlay_v6(1).to_string(),
        ]);

        let mut config = DnsConfig {
            listen: vec![
                SocketAddr::new(VIP_DNS_V4.into(), 53),
                SocketAddr::new(VIP_DNS_V6.into(), 53),
            ],
            zones: zones(),
            settings: settings(),
            rate_limit: None,
            tcp_idle: Duration::from_secs(10),
            tcp_max_connections: 64,
        };
        adjust(&mut config);

        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let (ready, started) = mpsc::channel();
        let name = server_ns.name().to_owned();
        let thread = std::thread::spawn(move || {
            runtime_in(&name).block_on(async move {
                let server = match DnsServer::start(config) {
                    Ok(server) => server,
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                while let Some(job) = queue.recv().await {
                    job(&server).await;
                    // Let every task the job woke (or aborted) run before
                    // the next job, even when one is already queued.
                    tokio::task::yield_now().await;
                }
            });
        });
        let fixture = Fixture {
            client,
            server_ns,
            jobs: Some(jobs),
            thread: Some(thread),
        };
        match started.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("the DNS server does not start: {e}"),
            Err(e) => panic!("the DNS server thread died or hung while starting: {e}"),
        }
        fixture
    }

    /// Runs `f` on the server's runtime thread (inside the server
    /// namespace) and returns what it returns.
    fn on_server<T: Send + 'static>(&self, f: impl FnOnce(&DnsServer) -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move |server| {
            let _ = tx.send(f(server));
            Box::pin(async {})
        });
        self.jobs
            .as_ref()
            .expect("the server is running")
            .send(job)
            .unwrap_or_else(|_| panic!("the DNS server thread is gone"));
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("the DNS server thread did not answer: {e}"))
    }

    /// `stop_listening` on the server's thread; returns when it has.
    fn stop_listening(&self) {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move |server| {
            Box::pin(async move {
                server.stop_listening().await;
                let _ = tx.send(());
            })
        });
        self.jobs
            .as_ref()
            .expect("the server is running")
            .send(job)
            .unwrap_or_else(|_| panic!("the DNS server thread is gone"));
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("the DNS server thread did not stop listening: {e}"));
    }

    /// The server's counters, after a round trip through the runtime, so
    /// that every task woken before the call has run.
    fn stats(&self) -> DnsStats {
        self.on_server(|_| ());
        self.on_server(DnsServer::stats)
    }

    /// `dig @<vip> -b <source> ...` from the client namespace; panics with
    /// the output unless dig got a response.
    fn dig(&self, path: Path, source: IpAddr, args: &[&str]) -> Dig {
        let dig = self.dig_any(path, source, args);
        assert_eq!(dig.exit, 0, "dig failed over {path}:\n{dig}");
        dig
    }

    /// `dig` from client A of `path`'s family.
    fn ask(&self, path: Path, args: &[&str]) -> Dig {
        self.dig(path, path.family.client_a(), args)
    }

    /// Like [`Fixture::dig`], but whatever the outcome.
    fn dig_any(&self, path: Path, source: IpAddr, args: &[&str]) -> Dig {
        let mut cmd = self.client.command("dig");
        cmd.arg(format!("@{}", path.family.vip()))
            .args(["-b", &source.to_string()])
            .args(["+time=2", "+tries=1", "+noidnin", "+noidnout"]);
        // dig asks ANY over TCP unless told otherwise.
        cmd.arg(if path.tcp { "+tcp" } else { "+notcp" });
        cmd.args(args);
        let command = format!("dig @{} -b {source} {}", path.family.vip(), args.join(" "));
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}): is bind9-dnsutils installed?"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Dig::parse(command, path, out.status.code().unwrap_or(-1), text)
    }

    /// The sockets bound to port 53 in the server namespace (`ss`), one
    /// `proto local-address` line each.
    fn sockets_on_53(&self) -> Vec<String> {
        let out = edge_tests::command::stdout_of(
            self.server_ns
                .command("ss")
                .args(["-H", "-n", "-l", "-u", "-t"]),
        );
        let mut sockets: Vec<String> = out
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let local = fields.get(4)?;
                local
                    .ends_with(":53")
                    .then(|| format!("{} {local}", fields[0]))
            })
            .collect();
        sockets.sort();
        sockets
    }

    /// Runs `f` on a thread inside the client namespace.
    fn in_client<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.client.run(f)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Closing the channel ends the server's loop; the server is dropped
        // (listeners closed) before the namespaces go.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------
// dig's output, parsed

/// One resource record as dig prints it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rr {
    name: String,
    ttl: u32,
    rtype: String,
    data: String,
}

fn rr(name: &str, ttl: u32, rtype: &str, data: &str) -> Rr {
    Rr {
        name: name.into(),
        ttl,
        rtype: rtype.into(),
        data: data.into(),
    }
}

/// What dig printed for one query (the last response, when it retried
/// over TCP).
#[derive(Debug, Default)]
struct Dig {
    command: String,
    path: Option<Path>,
    exit: i32,
    output: String,
    status: String,
    flags: Vec<String>,
    edns_version: Option<u8>,
    udp: Option<u16>,
    nsid: Option<String>,
    /// "UDP" or "TCP", from the `;; SERVER:` line.
    transport: Option<String>,
    retried_over_tcp: bool,
    answer: Vec<Rr>,
    authority: Vec<Rr>,
    additional: Vec<Rr>,
}

impl std::fmt::Display for Dig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {} (exit {})\n{}",
            self.command,
            self.exit,
            self.output.trim_end()
        )
    }
}

#[derive(Clone, Copy)]
enum Section {
    None,
    Answer,
    Authority,
    Additional,
}

impl Dig {
    fn parse(command: String, path: Path, exit: i32, output: String) -> Dig {
        let mut dig = Dig {
            command,
            path: Some(path),
            exit,
            ..Dig::default()
        };
        let mut section = Section::None;
        for line in output.lines() {
            let line = line.trim_end();
            if let Some(rest) = line.strip_prefix(";; ->>HEADER<<- ") {
                // A new response (dig retried): forget the previous one.
                dig.status = field(rest, "status:").unwrap_or_default();
                dig.flags.clear();
                dig.answer.clear();
                dig.authority.clear();
                dig.additional.clear();
                dig.udp = None;
                dig.edns_version = None;
                dig.nsid = None;
                section = Section::None;
            } else if let Some(rest) = line.strip_prefix(";; flags:") {
                let flags = rest.split(';').next().unwrap_or_default();
                dig.flags = flags.split_whitespace().map(str::to_owned).collect();
            } else if let Some(rest) = line.strip_prefix("; EDNS:") {
                dig.edns_version = field(rest, "version:").and_then(|v| v.parse().ok());
                dig.udp = field(rest, "udp:").and_then(|v| v.parse().ok());
            } else if let Some(rest) = line.strip_prefix("; NSID:") {
                dig.nsid = rest
                    .split_once("(\"")
                    .and_then(|(_, s)| s.rsplit_once("\")"))
                    .map(|(s, _)| s.to_owned());
            } else if let Some(rest) = line.strip_prefix(";; SERVER:") {
                dig.transport = rest
                    .rsplit_once('(')
                    .map(|(_, t)| t.trim_end_matches(')').to_owned());
            } else if line.starts_with(";; Truncated, retrying in TCP mode") {
                dig.retried_over_tcp = true;
            } else if line == ";; ANSWER SECTION:" {
                section = Section::Answer;
            } else if line == ";; AUTHORITY SECTION:" {
                section = Section::Authority;
            } else if line == ";; ADDITIONAL SECTION:" {
                section = Section::Additional;
            } else if line.is_empty() || line.starts_with(';') {
                if line.is_empty() {
                    section = Section::None;
                }
            } else {
                let list = match section {
                    Section::Answer => &mut dig.answer,
                    Section::Authority => &mut dig.authority,
                    Section::Additional => &mut dig.additional,
                    Section::None => continue,
                };
                let record = parse_record(line)
                    .unwrap_or_else(|| panic!("not a record: {line:?} in\n{output}"));
                list.push(record);
            }
        }
        dig.output = output;
        dig
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Panics with the output unless the response has `status`, exactly
    /// `flags`, and exactly these sections.
    fn expect(
        &self,
        status: &str,
        flags: &[&str],
        answer: &[Rr],
        authority: &[Rr],
        additional: &[Rr],
    ) {
        let mut want: Vec<&str> = flags.to_vec();
        want.sort_unstable();
        let mut got: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        got.sort_unstable();
        let path = self.path.map(|p| p.to_string()).unwrap_or_default();
        assert_eq!(self.status, status, "status over {path}:\n{self}");
        assert_eq!(got, want, "flags over {path}:\n{self}");
        assert_eq!(self.answer, answer, "answer section over {path}:\n{self}");
        assert_eq!(
            self.authority, authority,
            "authority section over {path}:\n{self}"
        );
        assert_eq!(
            self.additional, additional,
            "additional section over {path}:\n{self}"
        );
    }
}

/// The value after `key` in a `key: value, key: value` line.
fn field(line: &str, key: &str) -> Option<String> {
    let (_, rest) = line.split_once(key)?;
    let value = rest.trim_start();
    let end = value.find([',', ';', ' ']).unwrap_or(value.len());
    Some(value[..end].to_owned())
}

/// `name ttl class type data...` (tabs or spaces).
fn parse_record(line: &str) -> Option<Rr> {
    let mut rest = line.trim();
    let mut fields = Vec::new();
    for _ in 0..4 {
        let end = rest.find(char::is_whitespace)?;
        fields.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    Some(Rr {
        name: fields[0].to_owned(),
        ttl: fields[1].parse().ok()?,
        rtype: fields[3].to_owned(),
        data: rest.to_owned(),
    })
}

// ---------------------------------------------------------------------------
// Expected records

const SOA_DATA: &str = "ns1.cdn.test. hostmaster.cdn.test. 2024010101 7200 900 1209600 300";
const OTHER_SOA_DATA: &str = "ns1.cdn.test. hostmaster.cdn.test. 7 7200 900 1209600 600";

fn glue() -> Vec<Rr> {
    vec![
        rr("ns1.cdn.test.", 600, "A", "203.0.113.53"),
        rr("ns1.cdn.test.", 600, "AAAA", "2001:db8:ac::53"),
        rr("ns2.cdn.test.", 600, "A", "203.0.113.54"),
        rr("ns2.cdn.test.", 600, "AAAA", "2001:db8:ac::54"),
    ]
}

fn mx_addresses(owner: &str) -> Vec<Rr> {
    (0..MX_A)
        .map(|i| rr(owner, 300, "A", &format!("203.0.113.{}", 100 + i)))
        .collect()
}

fn txts(owner: &str, tag: &str, n: usize) -> Vec<Rr> {
    (0..n)
        .map(|i| rr(owner, 300, "TXT", &format!("\"{}\"", long_string(tag, i))))
        .collect()
}

/// The SOA of `cdn.test.` as a negative answer carries it: TTL
/// min(3600, 300).
fn cdn_negative_soa() -> Rr {
    rr("cdn.test.", 300, "SOA", SOA_DATA)
}

/// The SOA of `other.test.` in negative answers: TTL min(60, 600).
fn other_negative_soa() -> Rr {
    rr("other.test.", 60, "SOA", OTHER_SOA_DATA)
}

fn outcome(stats: &DnsStats, which: Outcome) -> u64 {
    stats
        .outcomes
        .iter()
        .find(|(o, _)| *o == which)
        .map(|(_, n)| *n)
        .unwrap_or_else(|| panic!("no counter for {which:?} in {stats:?}"))
}

// ---------------------------------------------------------------------------
// Hand-made messages and raw sockets

/// A header: `id`, the flags word, the four counts.
fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut bytes = id.to_be_bytes().to_vec();
    bytes.extend_from_slice(&flags.to_be_bytes());
    for count in counts {
        bytes.extend_from_slice(&count.to_be_bytes());
    }
    bytes
}

/// `name` in wire format (uncompressed).
fn wire_name(name: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        bytes.push(u8::try_from(label.len()).expect("a short label"));
        bytes.extend_from_slice(label.as_bytes());
    }
    bytes.push(0);
    bytes
}

/// A question: `name` (wire bytes), type, class IN.
fn question(name: &[u8], rtype: u16, class: u16) -> Vec<u8> {
    let mut bytes = name.to_vec();
    bytes.extend_from_slice(&rtype.to_be_bytes());
    bytes.extend_from_slice(&class.to_be_bytes());
    bytes
}

/// A well-formed query built with hickory (RD=0, no EDNS).
fn query(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    let mut message = Message::new();
    message
        .set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .add_query(Query::query(Name::from_ascii(name).expect("a name"), rtype));
    message.to_vec().expect("the query encodes")
}

/// What came back for one message: its header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Response {
    id: u16,
    qr: bool,
    opcode: u8,
    aa: bool,
    tc: bool,
    rd: bool,
    ra: bool,
    /// With the extended bits of an OPT record, when there is one.
    rcode: u16,
    counts: [u16; 4],
    len: usize,
}

impl Response {
    fn parse(bytes: &[u8]) -> Response {
        assert!(
            bytes.len() >= 12,
            "a response shorter than a header: {bytes:02x?}"
        );
        let word = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let mut rcode = u16::from(bytes[3] & 0x0f);
        if word(10) > 0 {
            let message = Message::from_vec(bytes)
                .unwrap_or_else(|e| panic!("the response does not decode ({e}): {bytes:02x?}"));
            rcode = u16::from(message.response_code());
        }
        Response {
            id: word(0),
            qr: bytes[2] & 0x80 != 0,
            opcode: (bytes[2] >> 3) & 0x0f,
            aa: bytes[2] & 0x04 != 0,
            tc: bytes[2] & 0x02 != 0,
            rd: bytes[2] & 0x01 != 0,
            ra: bytes[3] & 0x80 != 0,
            rcode,
            counts: [word(4), word(6), word(8), word(10)],
            len: bytes.len(),
        }
    }
}

const NOERROR: u16 = 0;
const FORMERR: u16 = 1;
const NXDOMAIN: u16 = 3;
const NOTIMP: u16 = 4;
const REFUSED: u16 = 5;
const BADVERS: u16 = 16;

/// A UDP socket in the client namespace (call inside `in_client`), bound
/// to `source` and connected to the server.
fn udp_socket(source: IpAddr, server: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind((source, 0)).unwrap_or_else(|e| panic!("bind {source}: {e}"));
    socket.connect(server).expect("connect the UDP socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("a read timeout");
    socket
}

/// A TCP connection from `source` to the server (call inside `in_client`).
fn tcp_connect(source: IpAddr, server: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(server), Type::STREAM, None).expect("a socket");
    socket
        .bind(&SocketAddr::new(source, 0).into())
        .unwrap_or_else(|e| panic!("bind {source}: {e}"));
    socket
        .connect_timeout(&server.into(), Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("connect to {server}: {e}"));
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("a read timeout");
    stream
}

/// Sends `message` framed on `stream`.
fn tcp_send(stream: &mut TcpStream, message: &[u8]) {
    let mut framed = u16::try_from(message.len())
        .expect("a short message")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed).expect("write to the server");
}

/// The next framed message on `stream`, or `None` when the server closed
/// the connection. Panics on a timeout.
fn tcp_receive(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
            ) =>
        {
            return None;
        }
        Err(e) => panic!("no response and no close from the server over TCP: {e}"),
    }
    let mut message = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).expect("the whole response");
    Some(message)
}

/// Whether the server closed `stream` within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream
        .set_read_timeout(Some(within))
        .expect("a read timeout");
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
    }
}

/// The probe sent after each datagram whose response may be silence:
/// the first datagram back tells whether the server answered the one
/// before it.
const PROBE_ID: u16 = 0xbeef;

/// Sends `message` over UDP and returns its response, or `None` when the
/// server kept silent (the probe's answer came first).
fn udp_exchange(socket: &UdpSocket, message: &[u8]) -> Option<Vec<u8>> {
    socket.send(message).expect("send");
    let probe = query(PROBE_ID, "www.cdn.test.", RecordType::A);
    socket.send(&probe).expect("send the probe");
    let mut buf = vec![0u8; 65_535];
    let mut first = None;
    loop {
        let len = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no probe answer within 2 s ({e}) after {message:02x?}"));
        let response = Response::parse(&buf[..len]);
        let is_probe =
            response.id == PROBE_ID && response.rcode == NOERROR && response.counts == [1, 1, 0, 0];
        if is_probe {
            return first;
        }
        assert!(
            first.is_none(),
            "two responses to one message {message:02x?}"
        );
        first = Some(buf[..len].to_vec());
    }
}

// ---------------------------------------------------------------------------
// 1. Positive answers

#[test]
fn every_record_type_is_answered_authoritatively_over_udp_and_tcp_ipv4_and_ipv6() {
    if !require_root("every_record_type_is_answered_authoritatively_over_udp_and_tcp_ipv4_and_ipv6")
    {
        return;
    }
    let fx = Fixture::new();
    let www_a = rr("www.cdn.test.", 300, "A", "203.0.113.10");
    let www_aaaa = rr("www.cdn.test.", 300, "AAAA", "2001:db8:ac::10");
    // (question, answer, additional)
    let cases: Vec<(&str, Vec<Rr>, Vec<Rr>)> = vec![
        (
            "cdn.test SOA",
            vec![rr("cdn.test.", 3600, "SOA", SOA_DATA)],
            vec![],
        ),
        (
            "cdn.test NS",
            vec![
                rr("cdn.test.", 3600, "NS", "ns1.cdn.test."),
                rr("cdn.test.", 3600, "NS", "ns2.cdn.test."),
            ],
            glue(),
        ),
        ("www.cdn.test A", vec![www_a.clone()], vec![]),
        ("www.cdn.test AAAA", vec![www_aaaa.clone()], vec![]),
        (
            "ns2.cdn.test AAAA",
            vec![rr("ns2.cdn.test.", 600, "AAAA", "2001:db8:ac::54")],
            vec![],
        ),
        (
            "alias.cdn.test A",
            vec![
                rr("alias.cdn.test.", 120, "CNAME", "www.cdn.test."),
                www_a.clone(),
            ],
            vec![],
        ),
        (
            "alias.cdn.test AAAA",
            vec![
                rr("alias.cdn.test.", 120, "CNAME", "www.cdn.test."),
                www_aaaa.clone(),
            ],
            vec![],
        ),
        (
            "alias.cdn.test CNAME",
            vec![rr("alias.cdn.test.", 120, "CNAME", "www.cdn.test.")],
            vec![],
        ),
        (
            // The target is in no zone of ours: the resolver follows it.
            "outside.cdn.test A",
            vec![rr("outside.cdn.test.", 120, "CNAME", "www.example.net.")],
            vec![],
        ),
        (
            "txt.cdn.test TXT",
            vec![
                rr("txt.cdn.test.", 60, "TXT", "\"v=spf1 -all\""),
                rr("txt.cdn.test.", 60, "TXT", "\"hello\" \"world\""),
            ],
            vec![],
        ),
        (
            "a.b.c.cdn.test A",
            vec![rr("a.b.c.cdn.test.", 300, "A", "203.0.113.20")],
            vec![],
        ),
        (
            "mail.cdn.test MX",
            vec![rr("mail.cdn.test.", 300, "MX", "10 mx.cdn.test.")],
            mx_addresses("mx.cdn.test."),
        ),
        // Names match whatever their case; the owner echoes the question.
        (
            "WwW.CdN.TeSt A",
            vec![rr("WwW.CdN.TeSt.", 300, "A", "203.0.113.10")],
            vec![],
        ),
        (
            "ALIAS.cdn.TEST AAAA",
            vec![
                rr("ALIAS.cdn.TEST.", 120, "CNAME", "www.cdn.test."),
                www_aaaa.clone(),
            ],
            vec![],
        ),
        (
            "CDN.TEST NS",
            vec![
                rr("CDN.TEST.", 3600, "NS", "ns1.cdn.test."),
                rr("CDN.TEST.", 3600, "NS", "ns2.cdn.test."),
            ],
            glue(),
        ),
        // The second zone; its NS's glue and its CNAME lead into the first.
        (
            "www.other.test A",
            vec![rr("www.other.test.", 300, "A", "203.0.113.11")],
            vec![],
        ),
        (
            "other.test NS",
            vec![rr("other.test.", 60, "NS", "ns1.cdn.test.")],
            glue()[..2].to_vec(),
        ),
        (
            "alias.other.test A",
            vec![
                rr("alias.other.test.", 90, "CNAME", "www.cdn.test."),
                www_a.clone(),
            ],
            vec![],
        ),
    ];
    for path in PATHS {
        for (question, answer, additional) in &cases {
            for rd in [true, false] {
                let mut args: Vec<&str> = question.split(' ').collect();
                args.push(if rd { "+rec" } else { "+norec" });
                let dig = fx.ask(path, &args);
                let flags: &[&str] = if rd {
                    &["qr", "aa", "rd"]
                } else {
                    &["qr", "aa"]
                };
                dig.expect("NOERROR", flags, answer, &[], additional);
                assert_eq!(dig.udp, Some(1232), "OPT udp size over {path}:\n{dig}");
                assert_eq!(
                    dig.edns_version,
                    Some(0),
                    "EDNS version over {path}:\n{dig}"
                );
                assert_eq!(
                    dig.transport.as_deref(),
                    Some(if path.tcp { "TCP" } else { "UDP" }),
                    "{dig}"
                );
                assert!(!dig.has_flag("ra") && !dig.has_flag("tc"), "{dig}");
            }
        }
        // ANY: one RRset over UDP (RFC 8482), all of them over TCP.
        let dig = fx.ask(path, &["www.cdn.test", "ANY", "+norec"]);
        let answer = if path.tcp {
            vec![www_a.clone(), www_aaaa.clone()]
        } else {
            vec![www_a.clone()]
        };
        dig.expect("NOERROR", &["qr", "aa"], &answer, &[], &[]);
    }
    let stats = fx.stats();
    let per_path = (cases.len() * 2 + 1) as u64;
    assert_eq!(stats.udp_queries, 2 * per_path, "{stats:?}");
    assert_eq!(stats.tcp_queries, 2 * per_path, "{stats:?}");
    assert_eq!(outcome(&stats, Outcome::Answer), 4 * per_path, "{stats:?}");
    assert_eq!(stats.tcp_connections, 2 * per_path, "{stats:?}");
    assert_eq!(
        (stats.truncated, stats.ignored, stats.send_errors),
        (0, 0, 0),
        "{stats:?}"
    );
}

// ---------------------------------------------------------------------------
// 2. NXDOMAIN and NODATA

#[test]
fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
    if !require_root("nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl") {
        return;
    }
    let fx = Fixture::new();
    let alias = rr("alias.cdn.test.", 120, "CNAME", "www.cdn.test.");
    // (question, status, answer, authority)
    let cases: Vec<(&str, &str, Vec<Rr>, Rr)> = vec![
        ("nope.cdn.test A", "NXDOMAIN", vec![], cdn_negative_soa()),
        (
            "deep.nope.cdn.test AAAA",
            "NXDOMAIN",
            vec![],
            cdn_negative_soa(),
        ),
        // Below a name that exists is still nothing.
        ("x.www.cdn.test A", "NXDOMAIN", vec![], cdn_negative_soa()),
        ("NoPe.CDN.test TXT", "NXDOMAIN", vec![], cdn_negative_soa()),
        (
            "nope.other.test A",
            "NXDOMAIN",
            vec![],
            other_negative_soa(),
        ),
        // The name exists, not the type.
        ("www.cdn.test TXT", "NOERROR", vec![], cdn_negative_soa()),
        ("txt.cdn.test A", "NOERROR", vec![], cdn_negative_soa()),
        ("cdn.test A", "NOERROR", vec![], cdn_negative_soa()),
        ("ns1.cdn.test MX", "NOERROR", vec![], cdn_negative_soa()),
        (
            "www.other.test AAAA",
            "NOERROR",
            vec![],
            other_negative_soa(),
        ),
        // Empty non-terminals exist: NODATA for every type.
        ("b.c.cdn.test A", "NOERROR", vec![], cdn_negative_soa()),
        ("c.cdn.test TXT", "NOERROR", vec![], cdn_negative_soa()),
        ("B.C.cdn.test AAAA", "NOERROR", vec![], cdn_negative_soa()),
        // A CNAME to a name without the type, or to no name at all.
        (
            "alias.cdn.test TXT",
            "NOERROR",
            vec![alias.clone()],
            cdn_negative_soa(),
        ),
        (
            "dangling.cdn.test A",
            "NXDOMAIN",
            vec![rr("dangling.cdn.test.", 120, "CNAME", "gone.cdn.test.")],
            cdn_negative_soa(),
        ),
    ];
    for path in PATHS {
        for (question, status, answer, soa) in &cases {
            let args: Vec<&str> = question.split(' ').chain(["+norec"]).collect();
            let dig = fx.ask(path, &args);
            dig.expect(
                status,
                &["qr", "aa"],
                answer,
                std::slice::from_ref(soa),
                &[],
            );
        }
    }
    let stats = fx.stats();
    let nx = cases.iter().filter(|c| c.1 == "NXDOMAIN").count() as u64;
    let nodata = cases.len() as u64 - nx;
    assert_eq!(outcome(&stats, Outcome::NxDomain), 4 * nx, "{stats:?}");
    assert_eq!(outcome(&stats, Outcome::NoData), 4 * nodata, "{stats:?}");
}

// ---------------------------------------------------------------------------
// 3. REFUSED

#[test]
fn names_in_no_zone_are_refused_with_or_without_recursion_desired() {
    if !require_root("names_in_no_zone_are_refused_with_or_without_recursion_desired") {
        return;
    }
    let fx = Fixture::new();
    let cases: [&[&str]; 7] = [
        &["www.example.net", "A"],
        &["test", "SOA"],
        &[".", "NS"],
        &["cdn.test.example", "A"],
        &["xcdn.test", "A"],
        // Class CHAOS, even for a name of ours.
        &["version.bind", "CH", "TXT"],
        &["www.cdn.test", "CH", "A"],
    ];
    for path in PATHS {
        for case in cases {
            for (rd, flags) in [("+rec", &["qr", "rd"][..]), ("+norec", &["qr"][..])] {
                let args: Vec<&str> = case.iter().copied().chain([rd]).collect();
                let dig = fx.ask(path, &args);
                dig.expect("REFUSED", flags, &[], &[], &[]);
            }
        }
    }
    let stats = fx.stats();
    assert_eq!(
        outcome(&stats, Outcome::Refused),
        4 * 2 * cases.len() as u64,
        "{stats:?}"
    );
    // Nothing else was answered.
    assert_eq!(
        stats.outcomes.iter().map(|(_, n)| n).sum::<u64>(),
        4 * 2 * cases.len() as u64,
        "{stats:?}"
    );
}

// ---------------------------------------------------------------------------
// 4. EDNS: payload size, truncation, BADVERS, NSID

#[test]
fn edns_size_truncation_badvers_and_nsid() {
    if !require_root("edns_size_truncation_badvers_and_nsid") {
        return;
    }
    let fx = Fixture::new();
    let big = txts("big.cdn.test.", "big", BIG_TXT);
    let mid = txts("mid.cdn.test.", "mid", MID_TXT);
    let mut truncated = 0;
    for path in UDP {
        // Over 1232 bytes: TC=1, nothing but the question and OPT.
        let dig = fx.ask(path, &["big.cdn.test", "TXT", "+norec", "+ignore"]);
        dig.expect("NOERROR", &["qr", "aa", "tc"], &[], &[], &[]);
        assert_eq!(dig.udp, Some(1232), "{dig}");
        // A client with a bigger buffer still gets at most our size.
        let dig = fx.ask(
            path,
            &["big.cdn.test", "TXT", "+norec", "+ignore", "+bufsize=4096"],
        );
        dig.expect("NOERROR", &["qr", "aa", "tc"], &[], &[], &[]);
        // Without +ignore dig asks again over TCP and gets it all.
        let dig = fx.ask(path, &["big.cdn.test", "TXT", "+norec"]);
        dig.expect("NOERROR", &["qr", "aa"], &big, &[], &[]);
        assert!(dig.retried_over_tcp, "dig did not retry over TCP:\n{dig}");
        assert_eq!(dig.transport.as_deref(), Some("TCP"), "{dig}");
        // Between 512 and 1232 bytes: fits with EDNS, not without, nor in
        // a client buffer of 512.
        let dig = fx.ask(path, &["mid.cdn.test", "TXT", "+norec", "+ignore"]);
        dig.expect("NOERROR", &["qr", "aa"], &mid, &[], &[]);
        let dig = fx.ask(
            path,
            &["mid.cdn.test", "TXT", "+norec", "+ignore", "+noedns"],
        );
        dig.expect("NOERROR", &["qr", "aa", "tc"], &[], &[], &[]);
        assert_eq!(
            dig.udp, None,
            "an OPT record for a query without one:\n{dig}"
        );
        let dig = fx.ask(
            path,
            &["mid.cdn.test", "TXT", "+norec", "+ignore", "+bufsize=512"],
        );
        dig.expect("NOERROR", &["qr", "aa", "tc"], &[], &[], &[]);
        assert_eq!(dig.udp, Some(1232), "{dig}");
        // The additional section goes first: without EDNS the MX answer
        // loses its glue but is not truncated.
        let dig = fx.ask(
            path,
            &["mail.cdn.test", "MX", "+norec", "+ignore", "+noedns"],
        );
        let mx = [rr("mail.cdn.test.", 300, "MX", "10 mx.cdn.test.")];
        dig.expect("NOERROR", &["qr", "aa"], &mx, &[], &[]);
        let dig = fx.ask(path, &["mx.cdn.test", "A", "+norec", "+ignore", "+noedns"]);
        dig.expect("NOERROR", &["qr", "aa", "tc"], &[], &[], &[]);
        truncated += 6;
    }
    for path in TCP {
        // Every size over TCP, also without EDNS.
        for args in [
            &["big.cdn.test", "TXT", "+norec"][..],
            &["big.cdn.test", "TXT", "+norec", "+noedns"],
        ] {
            let dig = fx.ask(path, args);
            dig.expect("NOERROR", &["qr", "aa"], &big, &[], &[]);
            assert!(!dig.retried_over_tcp, "{dig}");
        }
    }
    for path in PATHS {
        // EDNS version 1: BADVERS, with our OPT saying version 0 and 1232.
        let dig = fx.ask(
            path,
            &[
                "www.cdn.test",
                "A",
                "+norec",
                "+edns=1",
                "+noednsnegotiation",
            ],
        );
        dig.expect("BADVERS", &["qr"], &[], &[], &[]);
        assert_eq!((dig.edns_version, dig.udp), (Some(0), Some(1232)), "{dig}");
        // NSID when asked, only then.
        let dig = fx.ask(path, &["www.cdn.test", "A", "+norec", "+nsid"]);
        assert_eq!(dig.nsid.as_deref(), Some(NSID), "NSID over {path}:\n{dig}");
        dig.expect(
            "NOERROR",
            &["qr", "aa"],
            &[rr("www.cdn.test.", 300, "A", "203.0.113.10")],
            &[],
            &[],
        );
        let dig = fx.ask(path, &["www.cdn.test", "A", "+norec"]);
        assert_eq!(dig.nsid, None, "NSID not asked for over {path}:\n{dig}");
        // NSID is also there on a negative answer, when asked.
        let dig = fx.ask(path, &["nope.cdn.test", "A", "+norec", "+nsid"]);
        assert_eq!(dig.nsid.as_deref(), Some(NSID), "NSID over {path}:\n{dig}");
        dig.expect("NXDOMAIN", &["qr", "aa"], &[], &[cdn_negative_soa()], &[]);
    }
    let stats = fx.stats();
    assert_eq!(stats.truncated, truncated, "{stats:?}");
    assert_eq!(outcome(&stats, Outcome::BadVers), 4, "{stats:?}");
}

// ---------------------------------------------------------------------------
// 5. Malformed messages

/// What a malformed message must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Silence,
    /// This rcode, the opcode echoed; `bare`: the header alone.
    Rcode {
        rcode: u16,
        bare: bool,
    },
}

fn malformed_cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    use Expect::*;
    let formerr = Rcode {
        rcode: FORMERR,
        bare: true,
    };
    let notimp = Rcode {
        rcode: NOTIMP,
        bare: true,
    };
    let www = wire_name("www.cdn.test");
    let www_a = question(&www, 1, 1);
    let cat = |parts: &[&[u8]]| parts.concat();
    // Flags: RD set so that its echo is checked.
    let q = 0x0100;
    // A name in cdn.test of `octets` bytes on the wire (labels of 63 and
    // one shorter label, then cdn.test's 10 bytes).
    let name_of = |octets: usize| -> Vec<u8> {
        let mut name = Vec::new();
        let mut left = octets - 10;
        while left > 0 {
            let label = (left - 1).min(63);
            name.push(u8::try_from(label).expect("a label length"));
            name.extend(std::iter::repeat_n(b'a', label));
            left -= label + 1;
        }
        name.extend_from_slice(&wire_name("cdn.test"));
        assert_eq!(name.len(), octets);
        name
    };
    let opt = [0u8, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0];
    let a_record = [0xc0u8, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 1];
    vec![
        ("an empty message", vec![], Silence),
        (
            "a 5-byte header",
            vec![0x12, 0x34, 0x01, 0x00, 0x00],
            Silence,
        ),
        (
            "11 bytes",
            header(7, q, [1, 0, 0, 0])[..11].to_vec(),
            Silence,
        ),
        (
            "a response (QR=1)",
            cat(&[&header(7, 0x8100, [1, 0, 0, 0]), &www_a]),
            Silence,
        ),
        (
            "a response with an error code",
            cat(&[&header(7, 0x8503, [1, 0, 0, 0]), &www_a]),
            Silence,
        ),
        ("QDCOUNT 0", header(7, q, [0, 0, 0, 0]), formerr),
        (
            "QDCOUNT 2, two questions",
            cat(&[&header(7, q, [2, 0, 0, 0]), &www_a, &www_a]),
            formerr,
        ),
        (
            "QDCOUNT 2, one question",
            cat(&[&header(7, q, [2, 0, 0, 0]), &www_a]),
            formerr,
        ),
        (
            "QDCOUNT 1, no question",
            header(7, q, [1, 0, 0, 0]),
            formerr,
        ),
        (
            "a question cut short (no class)",
            cat(&[&header(7, q, [1, 0, 0, 0]), &www, &[0, 1]]),
            formerr,
        ),
        (
            "a compression pointer to itself",
            cat(&[&header(7, q, [1, 0, 0, 0]), &[0xc0, 0x0c, 0, 1, 0, 1]]),
            formerr,
        ),
        (
            "a compression pointer loop through a label",
            cat(&[
                &header(7, q, [1, 0, 0, 0]),
                &[1, b'a', 0xc0, 0x0c, 0, 1, 0, 1],
            ]),
            formerr,
        ),
        (
            "a forward compression pointer",
            cat(&[&header(7, q, [1, 0, 0, 0]), &[0xc0, 0x12, 0, 1, 0, 1], &www]),
            formerr,
        ),
        (
            "a name of 255 bytes (the most there is)",
            cat(&[&header(7, q, [1, 0, 0, 0]), &question(&name_of(255), 1, 1)]),
            Rcode {
                rcode: NXDOMAIN,
                bare: false,
            },
        ),
        (
            "a name of 256 bytes",
            cat(&[&header(7, q, [1, 0, 0, 0]), &question(&name_of(256), 1, 1)]),
            formerr,
        ),
        (
            "a name of 330 bytes",
            cat(&[&header(7, q, [1, 0, 0, 0]), &question(&name_of(330), 1, 1)]),
            formerr,
        ),
        (
            "a label type 01 (0x40)",
            cat(&[&header(7, q, [1, 0, 0, 0]), &[0x40, b'a', 0, 0, 1, 0, 1]]),
            formerr,
        ),
        (
            "a record in the answer section",
            cat(&[&header(7, q, [1, 1, 0, 0]), &www_a, &a_record]),
            formerr,
        ),
        (
            "a record in the authority section",
            cat(&[&header(7, q, [1, 0, 1, 0]), &www_a, &a_record]),
            formerr,
        ),
        (
            "ANCOUNT 1 without the record",
            cat(&[&header(7, q, [1, 1, 0, 0]), &www_a]),
            formerr,
        ),
        (
            "two OPT records",
            cat(&[&header(7, q, [1, 0, 0, 2]), &www_a, &opt, &opt]),
            formerr,
        ),
        (
            "a question of type OPT",
            cat(&[&header(7, q, [1, 0, 0, 0]), &question(&www, 41, 1)]),
            Rcode {
                rcode: FORMERR,
                bare: false,
            },
        ),
        (
            "opcode NOTIFY",
            cat(&[
                &header(7, 0x2000 | 0x0100, [1, 0, 0, 0]),
                &question(&wire_name("cdn.test"), 6, 1),
            ]),
            // The question is echoed.
            Rcode {
                rcode: NOTIMP,
                bare: false,
            },
        ),
        (
            "opcode UPDATE",
            cat(&[
                &header(7, 0x2800, [1, 0, 0, 0]),
                &question(&wire_name("cdn.test"), 6, 1),
            ]),
            // The question is echoed.
            Rcode {
                rcode: NOTIMP,
                bare: false,
            },
        ),
        (
            "opcode 15, header only",
            header(7, 0x7800, [0, 0, 0, 0]),
            notimp,
        ),
        (
            "opcode STATUS, malformed",
            header(7, 0x1000, [9, 9, 9, 9]),
            notimp,
        ),
        (
            "a zone transfer (AXFR)",
            cat(&[
                &header(7, 0, [1, 0, 0, 0]),
                &question(&wire_name("cdn.test"), 252, 1),
            ]),
            Rcode {
                rcode: REFUSED,
                bare: false,
            },
        ),
        (
            "class CH",
            cat(&[&header(7, 0, [1, 0, 0, 0]), &question(&www, 1, 3)]),
            Rcode {
                rcode: REFUSED,
                bare: false,
            },
        ),
        (
            "EDNS version 1",
            cat(&[
                &header(7, 0, [1, 0, 0, 1]),
                &www_a,
                &[0, 0, 41, 0x04, 0xd0, 0, 1, 0, 0, 0, 0],
            ]),
            Rcode {
                rcode: BADVERS,
                bare: false,
            },
        ),
    ]
}

/// Checks `response` to `message` against `expect`; returns the rcode.
fn check_response(
    what: &str,
    path: Path,
    message: &[u8],
    response: Option<Vec<u8>>,
    expect: Expect,
) -> Option<u16> {
    match (expect, response) {
        (Expect::Silence, None) => None,
        (Expect::Silence, Some(r)) => {
            panic!(
                "{what} over {path}: expected silence, got {:?} ({r:02x?})",
                Response::parse(&r)
            )
        }
        (Expect::Rcode { .. }, None) => {
            panic!("{what} over {path}: expected a response, got silence")
        }
        (Expect::Rcode { rcode, bare }, Some(bytes)) => {
            let r = Response::parse(&bytes);
            let id = u16::from_be_bytes([message[0], message[1]]);
            let opcode = (message[2] >> 3) & 0x0f;
            let rd = message[2] & 1 != 0;
            assert!(
                r.id == id && r.qr && r.opcode == opcode && r.rd == rd && !r.ra && !r.tc,
                "{what} over {path}: header {r:?}"
            );
            assert_eq!(r.rcode, rcode, "{what} over {path}: {r:?} ({bytes:02x?})");
            if bare {
                assert_eq!(
                    (r.counts, r.len),
                    ([0; 4], 12),
                    "{what} over {path}: {bytes:02x?}"
                );
            }
            Some(rcode)
        }
    }
}

/// Tallies of what the server did, to compare with its counters.
#[derive(Debug, Default)]
struct Tally {
    udp: u64,
    tcp: u64,
    silent: u64,
    rcodes: BTreeMap<u16, u64>,
}

impl Tally {
    fn add(&mut self, path: Path, rcode: Option<u16>) {
        if path.tcp {
            self.tcp += 1;
        } else {
            self.udp += 1;
        }
        match rcode {
            None => self.silent += 1,
            Some(rcode) => *self.rcodes.entry(rcode).or_default() += 1,
        }
    }

    fn rcode(&self, rcode: u16) -> u64 {
        self.rcodes.get(&rcode).copied().unwrap_or(0)
    }
}

/// What the server must say to a random message (the oracle): nothing
/// when it has no header or is a response, NOTIMP for an opcode other
/// than QUERY, else FORMERR unless it happens to decode.
fn random_oracle(message: &[u8]) -> Option<u16> {
    if message.len() < 12 || message[2] & 0x80 != 0 {
        return None;
    }
    if (message[2] >> 3) & 0x0f != 0 {
        return Some(NOTIMP);
    }
    Some(FORMERR)
}

#[test]
fn malformed_queries_get_formerr_notimp_or_silence_and_never_stop_the_service() {
    if !require_root("malformed_queries_get_formerr_notimp_or_silence_and_never_stop_the_service") {
        return;
    }
    let fx = Fixture::new();
    let cases = malformed_cases();
    let mut tally = Tally::default();
    let mut probes = 0;
    for path in PATHS {
        let source = path.family.client_a();
        fx.in_client(|| {
            if path.tcp {
                for (what, message, expect) in &cases {
                    let mut stream = tcp_connect(source, path.server());
                    tcp_send(&mut stream, message);
                    let response = tcp_receive(&mut stream);
                    let rcode = check_response(what, path, message, response, *expect);
                    tally.add(path, rcode);
                    if rcode.is_none() {
                        // The server closed the connection on silence.
                        continue;
                    }
                    // The connection still serves a good query.
                    tcp_send(&mut stream, &query(9, "www.cdn.test.", RecordType::A));
                    let good = tcp_receive(&mut stream)
                        .unwrap_or_else(|| panic!("{what} over {path}: connection closed"));
                    let good = Response::parse(&good);
                    assert_eq!(
                        (good.id, good.rcode, good.counts[1]),
                        (9, NOERROR, 1),
                        "{what}"
                    );
                    tally.add(path, Some(NOERROR));
                }
            } else {
                let socket = udp_socket(source, path.server());
                for (what, message, expect) in &cases {
                    let response = udp_exchange(&socket, message);
                    tally.add(path, check_response(what, path, message, response, *expect));
                    probes += 1;
                }
            }
        });
    }

    // Random bytes: 2000 datagrams (half each family) and 200 TCP
    // messages, seeded.
    let mut rng = Rng::new(0x0123_4567_89ab_cdef);
    let mut random_rcodes = BTreeMap::<Option<u16>, u64>::new();
    for (i, path) in PATHS.iter().copied().enumerate() {
        let source = path.family.client_a();
        let count = if path.tcp { 100 } else { 1000 };
        let messages: Vec<Vec<u8>> = (0..count)
            .map(|n| {
                let mut m = rng.bytes(if n % 2 == 0 { 40 } else { 600 });
                // A third of them with a plausible query header, so the decoder
                // (not only the header check) sees them.
                if n % 3 == 0 && m.len() >= 12 {
                    m[2] &= 0x07;
                    m[4] = 0;
                    m[5] = 1;
                }
                m
            })
            .collect();
        let got: Vec<Option<u16>> = fx.in_client(|| {
            if path.tcp {
                messages
                    .iter()
                    .map(|m| {
                        let mut stream = tcp_connect(source, path.server());
                        tcp_send(&mut stream, m);
                        tcp_receive(&mut stream).map(|r| Response::parse(&r).rcode)
                    })
                    .collect()
            } else {
                let socket = udp_socket(source, path.server());
                messages
                    .iter()
                    .map(|m| udp_exchange(&socket, m).map(|r| Response::parse(&r).rcode))
                    .collect()
            }
        });
        for (n, (message, rcode)) in messages.iter().zip(&got).enumerate() {
            assert_eq!(
                *rcode,
                random_oracle(message),
                "random message {i}/{n} over {path}: {message:02x?}"
            );
            tally.add(path, *rcode);
            *random_rcodes.entry(*rcode).or_default() += 1;
            if !path.tcp {
                probes += 1;
            }
        }
    }
    eprintln!("random messages: {random_rcodes:?} (None: silence)");

    // After all of that, the service answers as before.
    for path in PATHS {
        let dig = fx.ask(path, &["www.cdn.test", "A", "+norec"]);
        dig.expect(
            "NOERROR",
            &["qr", "aa"],
            &[rr("www.cdn.test.", 300, "A", "203.0.113.10")],
            &[],
            &[],
        );
        tally.add(path, Some(NOERROR));
    }

    let stats = fx.stats();
    let report = format!("{stats:?}\nsent: {tally:?}, probes: {probes}");
    assert!(stats.listening, "{report}");
    assert_eq!(stats.udp_queries, tally.udp + probes, "{report}");
    assert_eq!(stats.tcp_queries, tally.tcp, "{report}");
    assert_eq!(stats.ignored, tally.silent, "{report}");
    assert_eq!(
        outcome(&stats, Outcome::FormErr),
        tally.rcode(FORMERR),
        "{report}"
    );
    assert_eq!(
        outcome(&stats, Outcome::NotImp),
        tally.rcode(NOTIMP),
        "{report}"
    );
    assert_eq!(
        outcome(&stats, Outcome::Refused),
        tally.rcode(REFUSED),
        "{report}"
    );
    assert_eq!(
        outcome(&stats, Outcome::BadVers),
        tally.rcode(BADVERS),
        "{report}"
    );
    assert_eq!(
        outcome(&stats, Outcome::NxDomain),
        tally.rcode(NXDOMAIN),
        "{report}"
    );
    assert_eq!(
        outcome(&stats, Outcome::Answer),
        tally.rcode(NOERROR) + probes,
        "{report}"
    );
    let formerr_cases = cases
        .iter()
        .filter(|c| matches!(c.2, Expect::Rcode { rcode: FORMERR, .. }))
        .count() as u64;
    assert!(
        outcome(&stats, Outcome::FormErr) >= 4 * formerr_cases,
        "{report}"
    );
    assert_eq!((stats.send_errors, stats.truncated), (0, 0), "{report}");
}

// ---------------------------------------------------------------------------
// 6. Response-rate limiting

#[test]
fn rate_limiting_answers_the_burst_slips_some_drops_the_rest_per_prefix_and_never_tcp() {
    if !require_root(
        "rate_limiting_answers_the_burst_slips_some_drops_the_rest_per_prefix_and_never_tcp",
    ) {
        return;
    }
    const RATE: u32 = 5;
    const BURST: u32 = 5;
    const QUERIES: u16 = 100;
    let fx = Fixture::with(|config| {
        config.rate_limit = Some(RateLimit {
            responses_per_second: RATE,
            burst: BURST,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            max_prefixes: 1024,
        });
    });
    for family in [Family::V4, Family::V6] {
        let path = Path { tcp: false, family };
        let before = fx.stats();
        let (sent_in, last, responses) = fx.in_client(|| {
            let socket = udp_socket(family.client_a(), path.server());
            let started = Instant::now();
            for id in 0..QUERIES {
                socket
                    .send(&query(id, "www.cdn.test.", RecordType::A))
                    .expect("send");
            }
            let sent_in = started.elapsed();
            socket
                .set_read_timeout(Some(Duration::from_millis(500)))
                .expect("a read timeout");
            let mut responses = Vec::new();
            let mut last = sent_in;
            let mut buf = [0u8; 4096];
            while let Ok(len) = socket.recv(&mut buf) {
                last = started.elapsed();
                responses.push(Response::parse(&buf[..len]));
            }
            (sent_in, last, responses)
        });
        let report = format!(
            "{family:?}: sent in {sent_in:?}, last response after {last:?}, responses {responses:#?}"
        );
        let full: Vec<u16> = responses.iter().filter(|r| !r.tc).map(|r| r.id).collect();
        let slipped: Vec<&Response> = responses.iter().filter(|r| r.tc).collect();
        // The burst, plus what the bucket may have refilled meanwhile.
        let refilled = (last.as_secs_f64() * f64::from(RATE)).ceil() as usize;
        assert!(
            full.len() >= BURST as usize && full.len() <= BURST as usize + refilled,
            "full answers: {full:?}\n{report}"
        );
        assert_eq!(
            &full[..BURST as usize],
            &[0, 1, 2, 3, 4],
            "the first queries are answered\n{report}"
        );
        for r in &responses {
            assert!(r.qr && r.rcode == NOERROR && !r.ra, "{r:?}\n{report}");
            if r.tc {
                // A slip: empty, no bigger than the query.
                assert_eq!(r.counts, [1, 0, 0, 0], "{r:?}\n{report}");
                assert!(
                    r.len <= query(r.id, "www.cdn.test.", RecordType::A).len(),
                    "{r:?}"
                );
            } else {
                assert_eq!(r.counts, [1, 1, 0, 0], "{r:?}\n{report}");
                assert!(r.aa, "{r:?}");
            }
        }
        let limited = usize::from(QUERIES) - full.len();
        assert_eq!(
            slipped.len(),
            limited / 2,
            "every 2nd limited one slips\n{report}"
        );
        let after = fx.stats();
        let stats = format!("before {before:?}\nafter {after:?}\n{report}");
        assert_eq!(
            after.udp_queries - before.udp_queries,
            u64::from(QUERIES),
            "{stats}"
        );
        assert_eq!(
            after.rate_limited_slipped - before.rate_limited_slipped,
            slipped.len() as u64,
            "{stats}"
        );
        assert_eq!(
            after.rate_limited_dropped - before.rate_limited_dropped,
            (limited - slipped.len()) as u64,
            "{stats}"
        );

        // Another prefix is answered at once, several times.
        for _ in 0..3 {
            let dig = fx.dig(path, family.client_b(), &["www.cdn.test", "A", "+norec"]);
            assert!(
                !dig.has_flag("tc") && dig.answer.len() == 1,
                "client B limited:\n{dig}"
            );
        }
        // TCP is never limited, not even for client A.
        let tcp = Path { tcp: true, family };
        let dig = fx.ask(tcp, &["www.cdn.test", "A", "+norec"]);
        dig.expect(
            "NOERROR",
            &["qr", "aa"],
            &[rr("www.cdn.test.", 300, "A", "203.0.113.10")],
            &[],
            &[],
        );
        let answered = fx.in_client(|| {
            let mut stream = tcp_connect(family.client_a(), tcp.server());
            for id in 0..50 {
                tcp_send(&mut stream, &query(id, "www.cdn.test.", RecordType::A));
            }
            (0..50)
                .filter_map(|_| tcp_receive(&mut stream))
                .map(|r| Response::parse(&r))
                .filter(|r| r.rcode == NOERROR && r.counts[1] == 1 && !r.tc)
                .count()
        });
        assert_eq!(answered, 50, "pipelined TCP queries from client A");
        let end = fx.stats();
        assert_eq!(
            (end.rate_limited_dropped, end.rate_limited_slipped),
            (after.rate_limited_dropped, after.rate_limited_slipped),
            "client B and TCP were limited: {end:?}"
        );
        assert_eq!(end.tcp_queries - after.tcp_queries, 51, "{end:?}");
    }
}

// ---------------------------------------------------------------------------
// 7. Operations: stop, listen, reload, TCP limits

#[test]
fn stop_listening_closes_every_socket_and_listen_opens_them_again() {
    if !require_root("stop_listening_closes_every_socket_and_listen_opens_them_again") {
        return;
    }
    let fx = Fixture::new();
    let www = [rr("www.cdn.test.", 300, "A", "203.0.113.10")];
    for path in PATHS {
        fx.ask(path, &["www.cdn.test", "A", "+norec"]).expect(
            "NOERROR",
            &["qr", "aa"],
            &www,
            &[],
            &[],
        );
    }
    // A TCP connection open across the stop.
    let mut open = fx.in_client(|| {
        let mut stream = tcp_connect(CLIENT_A4.into(), PATHS[2].server());
        tcp_send(&mut stream, &query(1, "www.cdn.test.", RecordType::A));
        assert!(
            tcp_receive(&mut stream).is_some(),
            "an answer before the stop"
        );
        stream
    });

    let bound = [
        "tcp 203.0.113.53:53",
        "tcp [2001:db8:ac::53]:53",
        "udp 203.0.113.53:53",
        "udp [2001:db8:ac::53]:53",
    ];
    assert_eq!(fx.sockets_on_53(), bound, "the sockets while listening");

    fx.stop_listening();
    assert!(!fx.stats().listening, "listening after stop_listening");
    // The listening sockets are closed when stop_listening returns.
    assert_eq!(
        fx.sockets_on_53(),
        Vec::<String>::new(),
        "sockets left after stop_listening"
    );
    assert!(
        closed_within(&mut open, Duration::from_secs(2)),
        "an open TCP connection survived stop_listening"
    );
    for path in PATHS {
        let dig = fx.dig_any(
            path,
            path.family.client_a(),
            &["www.cdn.test", "A", "+norec"],
        );
        assert_ne!(
            dig.exit, 0,
            "answered over {path} after stop_listening:\n{dig}"
        );
        assert!(
            dig.output.contains("connection refused") || dig.output.contains("timed out"),
            "over {path}:\n{dig}"
        );
        assert!(dig.status.is_empty(), "a response over {path}:\n{dig}");
    }
    // Stopping twice is harmless.
    fx.stop_listening();

    fx.on_server(|s| s.listen()).expect("listen again");
    fx.on_server(|s| s.listen())
        .expect("listen while listening is a no-op");
    assert!(fx.stats().listening, "not listening after listen()");
    assert_eq!(fx.sockets_on_53(), bound, "the sockets after listen()");
    for path in PATHS {
        fx.ask(path, &["www.cdn.test", "A", "+norec"]).expect(
            "NOERROR",
            &["qr", "aa"],
            &www,
            &[],
            &[],
        );
    }
    let stats = fx.stats();
    assert_eq!((stats.udp_queries, stats.tcp_queries), (4, 5), "{stats:?}");
}

#[test]
fn reload_serves_new_zones_and_settings_from_the_next_query() {
    if !require_root("reload_serves_new_zones_and_settings_from_the_next_query") {
        return;
    }
    let fx = Fixture::new();
    let soa_old = fx.ask(PATHS[0], &["cdn.test", "SOA", "+norec"]);
    assert!(soa_old.answer[0].data.contains(" 2024010101 "), "{soa_old}");
    // A TCP connection open across the reload.
    let mut open = fx.in_client(|| {
        let mut stream = tcp_connect(CLIENT_A4.into(), PATHS[2].server());
        tcp_send(&mut stream, &query(1, "www.cdn.test.", RecordType::A));
        assert!(
            tcp_receive(&mut stream).is_some(),
            "an answer before the reload"
        );
        stream
    });

    let mut text = cdn_text(2024010102, Ipv4Addr::new(203, 0, 113, 12));
    text = text.replace("txt        60 IN TXT", "; gone:");
    text += "new 300 IN AAAA 2001:db8:ac::12\n";
    let new_zones = Arc::new(ZoneSet::new(vec![zone("cdn.test.", &text)]).expect("a zone set"));
    let new_settings = Settings {
        udp_payload: 1400,
        nsid: Some(b"pop-b.edge".to_vec()),
    };
    fx.on_server(move |s| s.reload(new_zones, new_settings, None));
    let zones = fx.on_server(|s| s.zones());
    assert_eq!(
        zones.zones().iter().map(|z| z.serial()).collect::<Vec<_>>(),
        [2024010102],
        "the zones after reload"
    );

    let soa = rr(
        "cdn.test.",
        3600,
        "SOA",
        "ns1.cdn.test. hostmaster.cdn.test. 2024010102 7200 900 1209600 300",
    );
    for path in PATHS {
        let dig = fx.ask(path, &["www.cdn.test", "A", "+norec", "+nsid"]);
        dig.expect(
            "NOERROR",
            &["qr", "aa"],
            &[rr("www.cdn.test.", 300, "A", "203.0.113.12")],
            &[],
            &[],
        );
        assert_eq!(dig.nsid.as_deref(), Some("pop-b.edge"), "{dig}");
        assert_eq!(dig.udp, Some(1400), "{dig}");
        fx.ask(path, &["cdn.test", "SOA", "+norec"]).expect(
            "NOERROR",
            &["qr", "aa"],
            std::slice::from_ref(&soa),
            &[],
            &[],
        );
        fx.ask(path, &["new.cdn.test", "AAAA", "+norec"]).expect(
            "NOERROR",
            &["qr", "aa"],
            &[rr("new.cdn.test.", 300, "AAAA", "2001:db8:ac::12")],
            &[],
            &[],
        );
        let mut negative = soa.clone();
        negative.ttl = 300;
        fx.ask(path, &["txt.cdn.test", "TXT", "+norec"]).expect(
            "NXDOMAIN",
            &["qr", "aa"],
            &[],
            &[negative],
            &[],
        );
        // The zone that was dropped is no longer ours.
        fx.ask(path, &["www.other.test", "A", "+norec"])
            .expect("REFUSED", &["qr"], &[], &[], &[]);
    }
    // The connection opened before the reload answers from the new zones.
    let www = fx.in_client(move || {
        tcp_send(&mut open, &query(2, "www.cdn.test.", RecordType::A));
        tcp_receive(&mut open).expect("an answer after the reload")
    });
    let www = Message::from_vec(&www).expect("a response");
    assert_eq!(www.answers().len(), 1, "{www:?}");
    assert_eq!(
        www.answers()[0].data().to_string(),
        "203.0.113.12",
        "the open connection after reload: {www:?}"
    );
    // The new payload size is the UDP limit too: a 1300-byte answer fits.
    let mut big = cdn_text(2024010103, Ipv4Addr::new(203, 0, 113, 12));
    for i in 0..6 {
        big += &format!("six 300 IN TXT \"{}\"\n", long_string("six", i));
    }
    let zones = Arc::new(ZoneSet::new(vec![zone("cdn.test.", &big)]).expect("a zone set"));
    let settings = Settings {
        udp_payload: 1400,
        nsid: None,
    };
    fx.on_server(move |s| s.reload(zones, settings, None));
    for path in UDP {
        let dig = fx.ask(
            path,
            &["six.cdn.test", "TXT", "+norec", "+ignore", "+bufsize=4096"],
        );
        assert!(!dig.has_flag("tc") && dig.answer.len() == 6, "{dig}");
        let dig = fx.ask(path, &["six.cdn.test", "TXT", "+norec", "+ignore"]);
        assert!(
            dig.has_flag("tc") && dig.answer.is_empty(),
            "dig's 1232 is the limit: {dig}"
        );
        let dig = fx.ask(path, &["www.cdn.test", "A", "+norec", "+nsid"]);
        assert_eq!(dig.nsid, None, "NSID after it was unset:\n{dig}");
    }
}

#[test]
fn tcp_connections_beyond_the_limit_are_closed_and_idle_ones_time_out() {
    if !require_root("tcp_connections_beyond_the_limit_are_closed_and_idle_ones_time_out") {
        return;
    }
    let idle = Duration::from_millis(600);
    let fx = Fixture::with(|config| {
        config.tcp_max_connections = 2;
        config.tcp_idle = idle;
    });
    let server = PATHS[2].server();
    let source = IpAddr::from(CLIENT_A4);
    let ask = |stream: &mut TcpStream, id: u16| -> bool {
        tcp_send(stream, &query(id, "www.cdn.test.", RecordType::A));
        tcp_receive(stream).is_some_and(|r| Response::parse(&r).counts[1] == 1)
    };
    fx.in_client(|| {
        let mut first = tcp_connect(source, server);
        let mut second = tcp_connect(source, server);
        assert!(
            ask(&mut first, 1) && ask(&mut second, 2),
            "the first two connections"
        );
        // A third is accepted by the kernel and closed by the server at once.
        let mut third = tcp_connect(source, server);
        assert!(
            closed_within(&mut third, Duration::from_secs(2)),
            "a third connection was kept"
        );
        // The two keep working while each query comes within the idle time.
        for id in 3..6 {
            std::thread::sleep(idle / 3);
            assert!(ask(&mut first, id) && ask(&mut second, id), "query {id}");
        }
        // Closing one frees its slot.
        drop(first);
        let again = connect_answered(source, server);
        drop((second, again));
    });
    let stats = fx.stats();
    assert!(
        stats.tcp_refused >= 1 && stats.tcp_connections >= 3,
        "{stats:?}"
    );

    // An idle connection is closed after tcp_idle from its last answer,
    // not before.
    let (kept, lived) = fx.in_client(|| {
        let mut stream = connect_answered(source, server);
        let answered = Instant::now();
        let early = closed_within(&mut stream, idle / 2);
        let closed = closed_within(&mut stream, Duration::from_secs(3));
        (!early && closed, answered.elapsed())
    });
    assert!(
        kept,
        "the idle connection was closed too early or never (after {lived:?})"
    );
    assert!(
        lived + Duration::from_millis(100) >= idle && lived < idle + Duration::from_secs(2),
        "an idle connection lived {lived:?}, tcp_idle {idle:?}"
    );
    // A connection that sends half a length prefix and stops is closed too.
    let half = fx.in_client(|| {
        let mut stream = connect_answered(source, server);
        stream.write_all(&[0]).expect("write");
        closed_within(&mut stream, Duration::from_secs(3))
    });
    assert!(half, "a half-sent message held its connection");
}

/// A TCP connection that got an answer: retried for up to 2 s while the
/// server, at its connection limit, closes new ones (until it has seen
/// an earlier one close).
fn connect_answered(source: IpAddr, server: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut stream = tcp_connect(source, server);
        let mut framed = vec![0u8, 0];
        framed.extend_from_slice(&query(9, "www.cdn.test.", RecordType::A));
        let len = u16::try_from(framed.len() - 2).expect("short");
        framed[..2].copy_from_slice(&len.to_be_bytes());
        if stream.write_all(&framed).is_ok() && tcp_receive(&mut stream).is_some() {
            return stream;
        }
        assert!(
            Instant::now() < deadline,
            "no connection slot freed within 2 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
