//! Authoritative DNS throughput on one core: the agent's DNS service
//! (`edge_agent::authdns`) next to NSD serving the same zone, in the same
//! run, loaded by dnsperf with the same query file.
//!
//! In a fresh namespace, both servers listen on port 53 of their own
//! address on `lo` (edge 203.0.113.53, NSD 203.0.113.54) and are pinned to
//! CPU 0: edge as a current-thread tokio runtime on one thread, NSD with
//! `server-count: 1` (and its rate limiting off, as edge's is). dnsperf
//! runs on CPU 1. Before measuring, a set of sample queries must get the
//! same answers (flags, rcode and every section) from both. Then, twice
//! over: each server at unlimited load for 10 s (edge, then NSD), and
//! each at a fixed 150 000 queries/s for 5 s, so that noise on the shared
//! machine falls on both. Besides dnsperf's figures, the server's own CPU
//! time (edge's thread, NSD's processes, from /proc) gives its CPU per
//! query: at unlimited load dnsperf's one core, not the server, may set
//! the rate (it does for NSD on the project's machines), which the CPU
//! columns show.
//!
//! Run with `cargo xtask bench dns` (root, for the namespace and port 53).

use std::{
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::Path,
    process::Command,
    sync::{Arc, mpsc},
    time::Duration,
};

use edge_agent::authdns::{DnsConfig, DnsServer, DnsStats, Settings, Zone, ZoneSet};
use edge_tests::{command::stdout_of, daemon::Daemon, netns::Netns, rng::Rng};

const ORIGIN: &str = "cdn.test.";
const EDGE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 53);
const NSD: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 54);
/// The core both servers run on; dnsperf runs on [`CLIENT_CPU`].
const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;
/// Extra names (`host0` … `host999`) so that lookups are not trivial.
const HOSTS: usize = 1000;
/// Seconds per measurement at unlimited load; each server is measured
/// [`ROUNDS`] times.
const SECONDS: u32 = 10;
const ROUNDS: usize = 2;
/// A load both servers keep up with, to compare their CPU per query, and
/// seconds per such measurement.
const FIXED_QPS: u32 = 150_000;
const FIXED_SECONDS: u32 = 5;
/// Seconds of unreported load on each server first.
const WARM_UP: u32 = 2;
/// Queries in the dnsperf input file (it loops over them).
const QUERIES: usize = 10_000;

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "the DNS benchmark needs a network namespace and port 53: run as root (`cargo xtask bench dns`)"
        );
        std::process::exit(1);
    }
    for tool in ["dnsperf", "nsd", "nsd-checkconf", "dig", "taskset"] {
        if !on_path(tool) {
            eprintln!(
                "the DNS benchmark needs `{tool}`: `cargo xtask setup` installs dnsperf, nsd and bind9-dnsutils"
            );
            std::process::exit(1);
        }
    }
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if cpus < 2 {
        eprintln!(
            "the DNS benchmark puts the server and dnsperf on two different cores; this machine has {cpus}"
        );
        std::process::exit(1);
    }

    let dir = tempfile::tempdir().expect("a temporary directory");
    let zone_text = zone_text();
    let zone_file = dir.path().join("cdn.test.zone");
    std::fs::write(&zone_file, &zone_text).expect("writing the zone file");
    let query_file = dir.path().join("queries.txt");
    std::fs::write(&query_file, query_mix()).expect("writing the query file");

    let ns = Netns::new();
    ns.add_addr("lo", &format!("{EDGE}/32"));
    ns.add_addr("lo", &format!("{NSD}/32"));

    // NSD: generated configuration, checked, in the foreground on CPU 0.
    let conf = nsd_conf(dir.path(), &zone_file);
    let conf_file = dir.path().join("nsd.conf");
    std::fs::write(&conf_file, conf).expect("writing nsd.conf");
    let checked = Command::new("nsd-checkconf")
        .arg(&conf_file)
        .output()
        .expect("running nsd-checkconf");
    assert!(
        checked.status.success(),
        "nsd-checkconf refuses the generated nsd.conf: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let mut nsd_cmd = ns.command("taskset");
    nsd_cmd
        .args(["-c", &SERVER_CPU.to_string(), "nsd", "-d", "-c"])
        .arg(&conf_file);
    let mut nsd = Nsd(Daemon::spawn("nsd", nsd_cmd, &dir.path().join("nsd.log")));

    // Edge: one current-thread runtime on one thread pinned to CPU 0.
    let zone = Zone::parse(ORIGIN, &zone_text, 3600, Some(&zone_file))
        .unwrap_or_else(|e| panic!("edge refuses the zone: {e}"));
    println!("zone: {zone}");
    let zones = Arc::new(ZoneSet::new(vec![zone]).expect("one zone"));
    let edge = EdgeThread::start(ns.name(), zones);

    nsd.0
        .wait_for("NSD to answer", Duration::from_secs(10), || {
            dig(&ns, NSD, "cdn.test.", "SOA")
                .is_some_and(|a| a.status == "NOERROR")
                .then_some(())
        });
    assert!(
        dig(&ns, EDGE, "cdn.test.", "SOA").is_some_and(|a| a.status == "NOERROR"),
        "edge does not answer the SOA query"
    );

    same_answers(&ns);

    let servers = [("edge", EDGE), ("NSD", NSD)];
    let server_cpu = |name: &str| match name {
        "edge" => cpu_seconds(&format!("/proc/self/task/{}/stat", edge.tid)),
        _ => nsd_cpu_seconds(&ns),
    };
    for (name, addr) in servers {
        let warm = dnsperf(&ns, addr, &query_file, WARM_UP, None);
        println!(
            "warm-up {name}: {:.0} qps, {:.2}% lost",
            warm.qps, warm.lost_percent
        );
    }
    let mut results: Vec<Run> = Vec::new();
    for round in 1..=ROUNDS {
        for (cap, seconds) in [(None, SECONDS), (Some(FIXED_QPS), FIXED_SECONDS)] {
            for (name, addr) in servers {
                nsd.0.assert_running();
                let (server_before, client_before) = (server_cpu(name), children_cpu_seconds());
                let core_before = core_times(SERVER_CPU);
                let perf = dnsperf(&ns, addr, &query_file, seconds, cap);
                let core = core_times(SERVER_CPU);
                let server_seconds = server_cpu(name) - server_before;
                let run = Run {
                    round,
                    server: name,
                    cap,
                    server_cpu: server_seconds / perf.run_time,
                    client_cpu: (children_cpu_seconds() - client_before) / perf.run_time,
                    cpu_per_query_us: server_seconds / perf.completed * 1e6,
                    core_idle: (core.0 - core_before.0) as f64 / (core.1 - core_before.1) as f64,
                    perf,
                };
                println!(
                    "round {round} {name} {}: {:.0} qps, {:.2}% lost, avg latency {:.0} µs, \
                     server {:.2} core, dnsperf {:.2} core, CPU {SERVER_CPU} idle {:.0}%; {}",
                    cap.map_or("unlimited".to_owned(), |q| format!("at {q} qps")),
                    run.perf.qps,
                    run.perf.lost_percent,
                    run.perf.latency_us,
                    run.server_cpu,
                    run.client_cpu,
                    run.core_idle * 100.0,
                    run.perf.codes
                );
                results.push(run);
            }
        }
    }
    nsd.0.assert_running();
    drop(nsd);
    let stats = edge.stop();

    println!(
        "\nOne core for the server (CPU {SERVER_CPU}), dnsperf on CPU {CLIENT_CPU}; {HOSTS} hosts in the zone.\n\
         Cores: CPU time over dnsperf's run time (1.00 = a whole core). CPU/query: the server's CPU time per answered query.\n"
    );
    println!(
        "| round | load | server | queries/s | lost | avg latency | server cores | dnsperf cores | CPU {SERVER_CPU} idle | CPU/query |\n\
         |---:|---|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for run in &results {
        println!(
            "| {} | {} | {} | {:.0} | {:.2}% | {:.0} µs | {:.2} | {:.2} | {:.0}% | {:.2} µs |",
            run.round,
            run.cap
                .map_or(format!("unlimited, {SECONDS} s"), |q| format!(
                    "{q}/s, {FIXED_SECONDS} s"
                )),
            run.server,
            run.perf.qps,
            run.perf.lost_percent,
            run.perf.latency_us,
            run.server_cpu,
            run.client_cpu,
            run.core_idle * 100.0,
            run.cpu_per_query_us
        );
    }
    let mean = |who: &str, capped: bool, f: &dyn Fn(&Run) -> f64| {
        let v: Vec<f64> = results
            .iter()
            .filter(|r| r.server == who && r.cap.is_some() == capped)
            .map(f)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let qps = |who| mean(who, false, &|r| r.perf.qps);
    let busy = |who| mean(who, false, &|r| r.cpu_per_query_us);
    let fixed = |who| mean(who, true, &|r| r.cpu_per_query_us);
    println!(
        "\nunlimited load, mean: edge {:.0} qps, NSD {:.0} qps; edge/NSD = {:.2}; \
         CPU per query: edge {:.2} µs, NSD {:.2} µs; NSD/edge = {:.2}",
        qps("edge"),
        qps("NSD"),
        qps("edge") / qps("NSD"),
        busy("edge"),
        busy("NSD"),
        busy("NSD") / busy("edge")
    );
    println!(
        "at {FIXED_QPS} qps, mean CPU per query: edge {:.2} µs, NSD {:.2} µs; NSD/edge = {:.2} \
         (the share of NSD's one-core rate edge would reach if CPU per query stayed the same)",
        fixed("edge"),
        fixed("NSD"),
        fixed("NSD") / fixed("edge")
    );
    for run in results.iter().filter(|r| r.cap.is_none()) {
        if run.server_cpu < 0.9 {
            println!(
                "note: round {} {}: the server used {:.2} of its core at unlimited load ({:.0}% idle): {}",
                run.round,
                run.server,
                run.server_cpu,
                run.core_idle * 100.0,
                if run.core_idle > 0.05 {
                    "dnsperf set that rate, not the server"
                } else {
                    "other work on the machine took the rest of the core"
                }
            );
        }
    }
    println!(
        "edge's counters: {} UDP queries, {} TCP; {}; {} ignored, {} send errors",
        stats.udp_queries,
        stats.tcp_queries,
        stats
            .outcomes
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(o, n)| format!("{} {n}", o.name()))
            .collect::<Vec<_>>()
            .join(", "),
        stats.ignored,
        stats.send_errors
    );
}

/// The zone both servers serve.
fn zone_text() -> String {
    let mut text = String::from(
        "$TTL 3600\n\
         @       IN SOA   ns1.cdn.test. hostmaster.cdn.test. 2026112201 7200 3600 1209600 300\n\
         @       IN NS    ns1\n\
         @       IN NS    ns2\n\
         @       IN TXT   \"v=spf1 -all\"\n\
         ns1     IN A     203.0.113.53\n\
         ns1     IN AAAA  2001:db8::53\n\
         ns2     IN A     203.0.113.54\n\
         ns2     IN AAAA  2001:db8::54\n\
         www     IN A     203.0.113.10\n\
         www     IN AAAA  2001:db8::10\n\
         static  IN CNAME www\n\
         info    IN TXT   \"edge CDN benchmark zone\" \"second string\"\n",
    );
    for i in 0..HOSTS {
        writeln!(text, "host{i}  IN A     198.18.{}.{}", i / 250, i % 250 + 1)
            .expect("writing to a String");
    }
    text
}

/// dnsperf's input: per 20 queries, 14 A (2 `www`, 12 `hostN`), 2 AAAA,
/// 2 names that do not exist, 1 through a CNAME, 1 TXT; shuffled with a
/// fixed seed.
fn query_mix() -> String {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut lines = Vec::with_capacity(QUERIES);
    for block in 0..QUERIES / 20 {
        lines.push("www.cdn.test. A".to_owned());
        lines.push("www.cdn.test. A".to_owned());
        for _ in 0..12 {
            lines.push(format!("host{}.cdn.test. A", rng.below(HOSTS)));
        }
        lines.push("www.cdn.test. AAAA".to_owned());
        lines.push(
            if block % 2 == 0 {
                "ns1.cdn.test. AAAA"
            } else {
                "ns2.cdn.test. AAAA"
            }
            .to_owned(),
        );
        lines.push(format!("missing{}.cdn.test. A", rng.below(100_000)));
        lines.push(format!("host{}.cdn.test. A", HOSTS + rng.below(100_000)));
        lines.push("static.cdn.test. A".to_owned());
        lines.push(
            if block % 2 == 0 {
                "info.cdn.test. TXT"
            } else {
                "cdn.test. TXT"
            }
            .to_owned(),
        );
    }
    for i in (1..lines.len()).rev() {
        lines.swap(i, rng.below(i + 1));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// NSD's configuration: one server process on our address, every file in
/// `dir`, no control channel, no rate limiting (edge's is off too), and
/// minimal responses (no NS RRset in the authority section of positive
/// answers, which edge does not send either).
fn nsd_conf(dir: &Path, zone_file: &Path) -> String {
    let d = dir.display();
    format!(
        "server:\n\
         \x20 server-count: 1\n\
         \x20 ip-address: {NSD}\n\
         \x20 port: 53\n\
         \x20 do-ip6: no\n\
         \x20 username: \"\"\n\
         \x20 chroot: \"\"\n\
         \x20 zonesdir: \"{d}\"\n\
         \x20 database: \"\"\n\
         \x20 zonelistfile: \"{d}/zone.list\"\n\
         \x20 xfrdfile: \"{d}/xfrd.state\"\n\
         \x20 xfrdir: \"{d}\"\n\
         \x20 pidfile: \"{d}/nsd.pid\"\n\
         \x20 verbosity: 0\n\
         \x20 hide-version: yes\n\
         \x20 minimal-responses: yes\n\
         \x20 rrl-ratelimit: 0\n\
         \x20 rrl-whitelist-ratelimit: 0\n\
         remote-control:\n\
         \x20 control-enable: no\n\
         zone:\n\
         \x20 name: {ORIGIN}\n\
         \x20 zonefile: \"{}\"\n",
        zone_file.display()
    )
}

/// NSD, stopped on drop (also while a panic unwinds): SIGTERM so that it
/// stops its server and xfrd processes, then [`Daemon`]'s SIGKILL. The
/// namespace's own drop kills whatever is left in it.
struct Nsd(Daemon);

impl Drop for Nsd {
    fn drop(&mut self) {
        self.0.signal(libc::SIGTERM);
        if self.0.wait_exit(Duration::from_secs(3)).is_none() {
            eprintln!("NSD did not stop within 3 s of SIGTERM: killing it");
        }
    }
}

/// The agent's DNS service on its own thread, in the namespace, pinned.
struct EdgeThread {
    /// The thread's id, for its CPU time.
    tid: libc::pid_t,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<DnsStats>,
}

impl EdgeThread {
    fn start(netns: &str, zones: Arc<ZoneSet>) -> EdgeThread {
        let netns = netns.to_owned();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (ready_tx, ready) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            pin_to(SERVER_CPU);
            let runtime = edge_tests::netns::runtime_in(&netns);
            runtime.block_on(async move {
                let server = DnsServer::start(DnsConfig {
                    listen: vec![SocketAddr::new(IpAddr::V4(EDGE), 53)],
                    zones,
                    settings: Settings {
                        udp_payload: 1232,
                        nsid: None,
                    },
                    rate_limit: None,
                    tcp_idle: Duration::from_secs(10),
                    tcp_max_connections: 64,
                })
                .unwrap_or_else(|e| panic!("{e}"));
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::gettid() };
                ready_tx.send(tid).expect("the benchmark waits");
                let _ = stopped.await;
                server.stats()
            })
        });
        let Ok(tid) = ready.recv() else {
            // The thread died before it was ready: show its panic.
            match thread.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(_) => panic!("the edge DNS thread ended before it listened"),
            }
        };
        EdgeThread { tid, stop, thread }
    }

    fn stop(self) -> DnsStats {
        let _ = self.stop.send(());
        self.thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (the machine has few cores).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t of
    // the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(
        rc,
        0,
        "sched_setaffinity(CPU {cpu}): {}",
        std::io::Error::last_os_error()
    );
}

/// What dig saw: the header flags, the rcode, and every record of the
/// answer, authority and additional sections (whitespace normalised,
/// sorted).
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    flags: String,
    status: String,
    records: Vec<String>,
}

fn dig(ns: &Netns, server: Ipv4Addr, name: &str, qtype: &str) -> Option<Answer> {
    let out = ns
        .command("dig")
        .args([
            &format!("@{server}"),
            "+norec",
            "+nocookie",
            "+time=1",
            "+tries=1",
            "+noall",
            "+comments",
            "+answer",
            "+authority",
            "+additional",
            name,
            qtype,
        ])
        .output()
        .expect("running dig");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let status = text
        .split("status: ")
        .nth(1)?
        .split(',')
        .next()?
        .trim()
        .to_owned();
    let flags = text
        .split("flags: ")
        .nth(1)?
        .split(';')
        .next()?
        .trim()
        .to_owned();
    let mut records: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    records.sort();
    Some(Answer {
        flags,
        status,
        records,
    })
}

/// Every kind of query in the mix, and a few more, must be answered the
/// same by both servers; panics naming the query otherwise.
fn same_answers(ns: &Netns) {
    let samples = [
        ("www.cdn.test.", "A"),
        ("WwW.CdN.tEsT.", "A"),
        ("www.cdn.test.", "AAAA"),
        ("ns1.cdn.test.", "AAAA"),
        ("host0.cdn.test.", "A"),
        ("host517.cdn.test.", "A"),
        ("host999.cdn.test.", "A"),
        ("host1000.cdn.test.", "A"),
        ("missing42.cdn.test.", "A"),
        ("static.cdn.test.", "A"),
        ("static.cdn.test.", "CNAME"),
        ("info.cdn.test.", "TXT"),
        ("cdn.test.", "TXT"),
        ("cdn.test.", "NS"),
        ("cdn.test.", "SOA"),
        ("www.cdn.test.", "MX"),
        ("example.org.", "A"),
    ];
    let mut differ = Vec::new();
    for (name, qtype) in samples {
        let edge = dig(ns, EDGE, name, qtype);
        let nsd = dig(ns, NSD, name, qtype);
        if edge.is_none() || edge != nsd {
            differ.push(format!(
                "`dig +norec {name} {qtype}`:\n  edge: {edge:?}\n  NSD:  {nsd:?}"
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "edge and NSD answer differently, so their speeds are not comparable:\n{}",
        differ.join("\n")
    );
    println!(
        "same answers from edge and NSD for {} sample queries (flags, rcode, every section)",
        samples.len()
    );
}

/// dnsperf's summary of one run.
struct Perf {
    qps: f64,
    completed: f64,
    run_time: f64,
    lost_percent: f64,
    latency_us: f64,
    codes: String,
}

/// One measurement: dnsperf's figures and the CPU each side used.
struct Run {
    round: usize,
    server: &'static str,
    /// dnsperf's `-Q`, if any.
    cap: Option<u32>,
    /// The server's CPU time over dnsperf's run time (1.0: a whole core).
    server_cpu: f64,
    /// dnsperf's, likewise.
    client_cpu: f64,
    /// The server's CPU time per answered query, in µs.
    cpu_per_query_us: f64,
    /// The share of the time the server's core was idle.
    core_idle: f64,
    perf: Perf,
}

/// Runs dnsperf on CPU 1 against `server` for `seconds`, at most at `cap`
/// queries per second if given.
fn dnsperf(ns: &Netns, server: Ipv4Addr, queries: &Path, seconds: u32, cap: Option<u32>) -> Perf {
    let mut cmd = ns.command("taskset");
    cmd.args([
        "-c",
        &CLIENT_CPU.to_string(),
        "dnsperf",
        "-s",
        &server.to_string(),
        "-p",
        "53",
        "-d",
    ])
    .arg(queries)
    .args(["-l", &seconds.to_string(), "-c", "4", "-t", "2"]);
    if let Some(cap) = cap {
        cmd.args(["-Q", &cap.to_string()]);
    }
    let out = cmd.output().expect("running dnsperf");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dnsperf failed: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no `{label}` in dnsperf's output:\n{text}"))
    };
    let number = |s: &str| {
        s.parse::<f64>()
            .unwrap_or_else(|_| panic!("`{s}` is not a number in dnsperf's output:\n{text}"))
    };
    let lost = field("Queries lost:");
    let lost_percent = lost
        .split('(')
        .nth(1)
        .and_then(|s| s.split('%').next())
        .map(number)
        .unwrap_or_else(|| panic!("no loss percentage in `{lost}`"));
    let latency = field("Average Latency (s):");
    let count = |label: &str| number(field(label).split_whitespace().next().unwrap_or_default());
    Perf {
        qps: number(field("Queries per second:")),
        completed: count("Queries completed:"),
        run_time: number(field("Run time (s):")),
        lost_percent,
        latency_us: number(latency.split_whitespace().next().unwrap_or_default()) * 1e6,
        codes: field("Response codes:").to_owned(),
    }
}

/// User + system CPU seconds of the task whose `/proc/.../stat` is `path`.
fn cpu_seconds(path: &str) -> f64 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    // After the command name in parentheses: state (field 3), …, utime
    // (field 14) and stime (field 15).
    let fields: Vec<&str> = text
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .map(|&i| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no CPU times in {path}: {text}"))
        })
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / hz as f64
}

/// Idle and total ticks of core `cpu` so far (`/proc/stat`).
fn core_times(cpu: usize) -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").expect("reading /proc/stat");
    let label = format!("cpu{cpu}");
    let ticks: Vec<u64> = stat
        .lines()
        .find_map(|l| l.strip_prefix(&label)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {label} in /proc/stat"))
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is
    // already in user).
    let total = ticks.iter().take(8).sum();
    (ticks[3] + ticks[4], total)
}

/// CPU seconds of every NSD process in the namespace (main, xfrd and the
/// one server).
fn nsd_cpu_seconds(ns: &Netns) -> f64 {
    let pids = stdout_of(Command::new("ip").args(["netns", "pids", ns.name()]));
    pids.split_whitespace()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("nsd"))
        })
        .map(|pid| cpu_seconds(&format!("/proc/{pid}/stat")))
        .sum()
}

/// CPU seconds used by this process's children that have been waited for
/// (dnsperf: `ip netns exec` and `taskset` exec it in place).
fn children_cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is valid for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join(tool).is_file())
            || ["/usr/sbin", "/sbin"]
                .iter()
                .any(|dir| Path::new(dir).join(tool).is_file())
    })
}
