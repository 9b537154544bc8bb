//! Health checks in network namespaces: each test serves something in a
//! fresh namespace, runs a `HealthMonitor` there, breaks the service in one
//! way, and checks that it went down after exactly `fall` failed rounds
//! and, where it can recover, came back after exactly `rise` good ones,
//! counting the probes on the serving side.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    time::{Duration, Instant},
};

use edge_agent::health::{
    Cause, Effective, HealthConfig, HealthEvent, HealthMonitor, Measured, ProbeSpec, ServiceCheck,
    probe::{DnsProbe, ExecProbe, HttpProbe, TcpProbe},
};
use edge_tests::{
    dns::{DnsServer, Zone},
    http::HttpServer,
    netns::{Netns, runtime_in},
    privilege::require_root,
};
use hickory_proto::rr::RecordType;
use tokio::sync::mpsc::Receiver;

const RISE: u32 = 2;
const FALL: u32 = 3;

/// The address the HTTP service listens on (on `lo`).
const WEB: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Short, regular rounds: 200 ms apart, 100 ms while a change is
/// suspected, no jitter, no stagger.
fn quick(timeout: Duration, slow: Duration) -> HealthConfig {
    HealthConfig {
        interval: ms(200),
        fast_interval: ms(100),
        timeout,
        slow_threshold: slow,
        rise: RISE,
        fall: FALL,
        jitter_percent: 0,
        stagger: false,
        initial: Measured::Down,
    }
}

fn service(probe: ProbeSpec, config: HealthConfig) -> ServiceCheck {
    ServiceCheck {
        name: "web".into(),
        probes: vec![probe],
        config,
    }
}

/// Runs `test` on a thread inside `ns`, on a current-thread runtime.
fn inside<F: Future<Output = ()>>(ns: &Netns, test: impl FnOnce() -> F + Send) {
    std::thread::scope(|scope| {
        scope
            .spawn(|| runtime_in(ns.name()).block_on(test()))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    });
}

/// The next event, within `within`.
async fn next(events: &mut Receiver<HealthEvent>, within: Duration) -> HealthEvent {
    tokio::time::timeout(within, events.recv())
        .await
        .unwrap_or_else(|_| panic!("no health event within {within:?}"))
        .expect("the event stream is open")
}

/// Waits for the probes to bring `web` up, and checks that it was a probe
/// transition to up.
async fn wait_up(events: &mut Receiver<HealthEvent>, within: Duration) -> HealthEvent {
    let e = next(events, within).await;
    assert_eq!(
        (e.from, e.to, e.measured, e.cause),
        (Effective::Down, Effective::Up, Measured::Up, Cause::Probes),
        "{e:?}"
    );
    e
}

/// Waits for the probes to take `web` down.
async fn wait_down(events: &mut Receiver<HealthEvent>, within: Duration) -> HealthEvent {
    let e = next(events, within).await;
    assert_eq!(
        (e.from, e.to, e.measured, e.cause),
        (
            Effective::Up,
            Effective::Down,
            Measured::Down,
            Cause::Probes
        ),
        "{e:?}"
    );
    e
}

fn http_server(ns: &Netns) -> HttpServer {
    ns.add_addr("lo", &format!("{WEB}/32"));
    let listener = ns.run(|| std::net::TcpListener::bind((WEB, 8080)).unwrap());
    HttpServer::start(listener, None)
}

#[test]
fn http_503_goes_down_after_exactly_fall_and_up_after_exactly_rise() {
    if !require_root("http_503_goes_down_after_exactly_fall_and_up_after_exactly_rise") {
        return;
    }
    let ns = Netns::new();
    let server = http_server(&ns);
    inside(&ns, || async {
        let mut probe = HttpProbe::new(format!("http://{WEB}:8080/health"));
        probe.host = Some("www.health.example".into());
        let mut monitor = HealthMonitor::spawn(vec![service(
            ProbeSpec::Http(probe),
            quick(ms(500), ms(500)),
        )])
        .unwrap();
        let mut events = monitor.events().unwrap();

        wait_up(&mut events, ms(3000)).await;
        assert_eq!(
            server.requests(),
            u64::from(RISE),
            "up after exactly rise requests"
        );
        assert!(server.hosts().iter().all(|h| h == "www.health.example"));

        server.set_status(503);
        let down = wait_down(&mut events, ms(3000)).await;
        assert_eq!(
            server.requests_since_change(),
            u64::from(FALL),
            "down after exactly fall 503s"
        );
        assert!(down.detail.contains("HTTP 503"), "{}", down.detail);
        let health = monitor.snapshot()["web"].clone();
        assert_eq!(health.last_transition, Some(down.at));
        assert_eq!(health.last_results[0].detail, "HTTP 503");
        assert_eq!(health.counters.failed_rounds, u64::from(FALL));

        server.set_status(200);
        wait_up(&mut events, ms(3000)).await;
        assert_eq!(
            server.requests_since_change(),
            u64::from(RISE),
            "up again after exactly rise 200s"
        );
        monitor.stop().await;
    });
}

#[test]
fn a_slow_http_server_goes_down_after_exactly_fall() {
    if !require_root("a_slow_http_server_goes_down_after_exactly_fall") {
        return;
    }
    let ns = Netns::new();
    let server = http_server(&ns);
    inside(&ns, || async {
        // The timeout is above the delay: the answers arrive, too late.
        let probe = HttpProbe::new(format!("http://{WEB}:8080/health"));
        let mut monitor = HealthMonitor::spawn(vec![service(
            ProbeSpec::Http(probe),
            quick(ms(2000), ms(1000)),
        )])
        .unwrap();
        let mut events = monitor.events().unwrap();
        wait_up(&mut events, ms(3000)).await;

        server.set_delay(ms(1500));
        let start = Instant::now();
        let down = wait_down(&mut events, ms(10_000)).await;
        assert_eq!(server.requests_since_change(), u64::from(FALL));
        assert!(start.elapsed() >= ms(3 * 1500), "{:?}", start.elapsed());
        let health = monitor.snapshot()["web"].clone();
        let last = &health.last_results[0];
        assert!(!last.ok);
        assert!(last.latency >= ms(1500), "{:?}", last.latency);
        assert!(
            last.detail.starts_with("slow: 1.5") && last.detail.ends_with(" > 1 s (HTTP 200)"),
            "{}",
            last.detail
        );
        assert!(down.detail.contains("slow: 1.5"), "{}", down.detail);

        server.set_delay(Duration::ZERO);
        wait_up(&mut events, ms(5000)).await;
        assert_eq!(server.requests_since_change(), u64::from(RISE));
        monitor.stop().await;
    });
}

#[test]
fn a_dns_server_that_stops_answering_goes_down_after_exactly_fall() {
    if !require_root("a_dns_server_that_stops_answering_goes_down_after_exactly_fall") {
        return;
    }
    let ns = Netns::new();
    let server = ns.run(|| {
        let udp = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 5353)).unwrap();
        let tcp = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 5353)).unwrap();
        DnsServer::start(udp, tcp, Zone::new().a("web.health.example.", WEB))
    });
    inside(&ns, || async {
        let mut probe = DnsProbe::new(server.addr(), "web.health.example", RecordType::A);
        probe.expect_answer = Some(WEB.to_string());
        let mut monitor = HealthMonitor::spawn(vec![service(
            ProbeSpec::Dns(probe),
            quick(ms(500), ms(500)),
        )])
        .unwrap();
        let mut events = monitor.events().unwrap();
        wait_up(&mut events, ms(3000)).await;
        assert_eq!(server.queries(), u64::from(RISE));

        server.set_silent(true);
        let down = wait_down(&mut events, ms(5000)).await;
        assert_eq!(
            server.ignored(),
            u64::from(FALL),
            "exactly fall unanswered queries"
        );
        assert!(
            down.detail.contains("timeout after 500 ms"),
            "{}",
            down.detail
        );

        server.set_silent(false);
        let before = server.queries();
        wait_up(&mut events, ms(3000)).await;
        assert_eq!(server.queries() - before, u64::from(RISE));
        monitor.stop().await;
    });
}

/// Live (not zombie) processes whose command line is exactly `argv`.
fn live_processes(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read(entry.path().join("cmdline")).ok().as_deref() != Some(&want[..]) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if state != Some('Z') {
            found.push(pid);
        }
    }
    found
}

/// Every process (zombies included) whose command line is exactly `argv`.
fn any_processes(argv: &[&str]) -> usize {
    let want = argv.join("\0") + "\0";
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline")).ok().as_deref() == Some(want.as_bytes())
        })
        .count()
}

fn lines(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count() as u64)
        .unwrap_or(0)
}

#[test]
fn a_hanging_command_is_killed_each_round_and_goes_down_after_exactly_fall() {
    if !require_root("a_hanging_command_is_killed_each_round_and_goes_down_after_exactly_fall") {
        return;
    }
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    let (flag, hangs) = (dir.path().join("healthy"), dir.path().join("hangs"));
    std::fs::write(&flag, "").unwrap();
    let sleep = ["sleep", "30.0711"];
    // Healthy while the flag exists; otherwise note the hang and sleep,
    // in the background and in the foreground.
    let script = format!(
        "test -e '{flag}' && exit 0; echo >> '{hangs}'; {s} & {s}; exit 0",
        flag = flag.display(),
        hangs = hangs.display(),
        s = sleep.join(" ")
    );
    let shell = ["sh", "-c", script.as_str()];
    inside(&ns, || async {
        let probe = ExecProbe::new(shell);
        let mut monitor = HealthMonitor::spawn(vec![service(
            ProbeSpec::Exec(probe),
            quick(ms(500), ms(500)),
        )])
        .unwrap();
        let mut events = monitor.events().unwrap();
        wait_up(&mut events, ms(3000)).await;

        std::fs::remove_file(&flag).unwrap();
        let down = wait_down(&mut events, ms(5000)).await;
        assert_eq!(
            lines(&hangs),
            u64::from(FALL),
            "exactly fall hanging rounds"
        );
        assert!(
            down.detail
                .contains("timeout after 500 ms (killed its process group)"),
            "{}",
            down.detail
        );
        // Every round killed both sleeps and reaped the shell before the
        // next one started.
        assert_eq!(live_processes(&sleep), Vec::<u32>::new());
        assert_eq!(
            any_processes(&shell),
            0,
            "the shell is reaped, not a zombie"
        );
        let health = monitor.snapshot()["web"].clone();
        assert!(health.last_results[0].latency < ms(2000));
        monitor.stop().await;
    });
    assert_eq!(live_processes(&sleep), Vec::<u32>::new());
}

#[test]
fn tcp_to_a_closed_port_fails_until_something_listens() {
    if !require_root("tcp_to_a_closed_port_fails_until_something_listens") {
        return;
    }
    let ns = Netns::new();
    let addr: SocketAddr = (Ipv4Addr::LOCALHOST, 7070).into();
    inside(&ns, || async {
        let mut monitor = HealthMonitor::spawn(vec![service(
            ProbeSpec::Tcp(TcpProbe::new(addr)),
            quick(ms(500), ms(500)),
        )])
        .unwrap();
        let mut events = monitor.events().unwrap();
        let mut status = monitor.status();
        status
            .wait_for(|m| m["web"].counters.rounds >= 3)
            .await
            .unwrap();
        let health = monitor.snapshot()["web"].clone();
        assert_eq!(health.measured, Measured::Down);
        assert_eq!(health.counters.failed_rounds, health.counters.rounds);
        assert_eq!(health.last_results[0].detail, "connect refused");
        assert!(events.try_recv().is_err(), "no event while it stays down");

        let _listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let rounds = monitor.snapshot()["web"].counters.rounds;
        wait_up(&mut events, ms(3000)).await;
        let health = monitor.snapshot()["web"].clone();
        assert_eq!(health.counters.rounds - rounds, u64::from(RISE));
        assert_eq!(health.last_results[0].detail, "connected");
        monitor.stop().await;
    });
}
