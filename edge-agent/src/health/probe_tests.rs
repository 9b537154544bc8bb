//! Probe result classification, durations for people, spec checks, and
//! the TCP and command probes on loopback.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::PathBuf,
    time::Duration,
};

use super::*;
use crate::health::http::TlsOptions;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_slow_success_is_a_failure() {
    let r = classify(Ok("HTTP 200".into()), ms(1300), ms(1000));
    assert!(!r.ok);
    assert_eq!(r.detail, "slow: 1.3 s > 1 s (HTTP 200)");
    assert_eq!(r.latency, ms(1300));
}

#[test]
fn a_success_at_the_threshold_passes() {
    let r = classify(Ok("connected".into()), ms(1000), ms(1000));
    assert_eq!(
        r,
        ProbeResult {
            ok: true,
            latency: ms(1000),
            detail: "connected".into()
        }
    );
}

#[test]
fn a_failure_stays_a_failure_however_fast() {
    let r = classify(Err("HTTP 503".into()), ms(1), ms(1000));
    assert!(!r.ok);
    assert_eq!(r.detail, "HTTP 503");
}

#[test]
fn durations_read_well() {
    let table = [
        (ms(1000), "1 s"),
        (ms(1500), "1.5 s"),
        (ms(1040), "1.04 s"),
        (ms(250), "250 ms"),
        (Duration::from_micros(2500), "2.5 ms"),
        (Duration::from_micros(80), "80 µs"),
        (Duration::from_secs(30), "30 s"),
    ];
    for (d, want) in table {
        assert_eq!(human(d), want);
    }
    assert_eq!(timed_out(ms(1000)), "timeout after 1 s");
}

#[test]
fn random_units_are_in_range_and_vary() {
    let draws: Vec<f64> = (0..100).map(|_| crate::net::random::unit()).collect();
    assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
    assert!(draws.windows(2).any(|w| w[0] != w[1]));
}

#[test]
fn bad_specs_are_rejected_with_a_reason() {
    let http = |f: &dyn Fn(&mut HttpProbe)| {
        let mut p = HttpProbe::new("http://127.0.0.1:8080/health");
        f(&mut p);
        ProbeSpec::Http(p).prepare().unwrap_err()
    };
    let table: Vec<(ProbeError, &str)> = vec![
        (
            http(&|p| p.url = "not a url".into()),
            "`not a url` is not a URL",
        ),
        (
            http(&|p| p.url = "ftp://192.0.2.1/".into()),
            "is not an http:// or https:// URL",
        ),
        (
            http(&|p| p.expect_status = std::ops::RangeInclusive::new(400, 200)),
            "the expected HTTP status range 400..=200 is empty",
        ),
        (http(&|p| p.expect_status = 200..=700), "outside 100..=599"),
        (
            http(&|p| p.body_contains = Some(String::new())),
            "the expected body substring is empty",
        ),
        (
            http(&|p| p.host = Some("bad\nhost".into())),
            "cannot be sent as a Host header",
        ),
        (
            http(&|p| {
                p.url = "https://web.example/".into();
                p.tls = TlsOptions {
                    ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
                    insecure_skip_verify: false,
                };
            }),
            "cannot use the CA file /nonexistent/ca.pem",
        ),
        (
            ProbeSpec::Exec(ExecProbe::new(Vec::<String>::new()))
                .prepare()
                .unwrap_err(),
            "the command to run is empty",
        ),
        (
            ProbeSpec::Exec(ExecProbe::new([""])).prepare().unwrap_err(),
            "cannot be run",
        ),
    ];
    for (error, message) in table {
        assert!(
            error.to_string().contains(message),
            "`{error}` should say `{message}`"
        );
    }
}

#[test]
fn a_ca_file_without_certificates_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.pem");
    std::fs::write(&path, "no certificates here\n").unwrap();
    let mut p = HttpProbe::new("https://web.example/");
    p.tls.ca_file = Some(path);
    let e = ProbeSpec::Http(p).prepare().unwrap_err();
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
}

#[test]
fn good_specs_prepare_and_describe_themselves() {
    let addr: SocketAddr = (Ipv4Addr::LOCALHOST, 8080).into();
    let mut https = HttpProbe::new("https://web.example/health");
    https.tls.insecure_skip_verify = true;
    let table = [
        (ProbeSpec::Tcp(TcpProbe::new(addr)), "tcp 127.0.0.1:8080"),
        (
            ProbeSpec::Http(HttpProbe::new("http://127.0.0.1:8080/health")),
            "http http://127.0.0.1:8080/health",
        ),
        (ProbeSpec::Http(https), "http https://web.example/health"),
        (
            ProbeSpec::Dns(DnsProbe::new(
                addr,
                "web.example",
                hickory_proto::rr::RecordType::A,
            )),
            "dns web.example A @127.0.0.1:8080",
        ),
        (
            ProbeSpec::Exec(ExecProbe::new(["true", "x"])),
            "exec `true x`",
        ),
    ];
    for (spec, want) in table {
        let prober = spec.prepare().unwrap();
        assert_eq!(prober.description(), want);
    }
}

#[test]
fn tcp_to_a_closed_port_is_refused() {
    let port = {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let prober = ProbeSpec::Tcp(TcpProbe::new((Ipv4Addr::LOCALHOST, port).into()))
        .prepare()
        .unwrap();
    let r = runtime().block_on(prober.run(ms(1000), ms(1000)));
    assert!(!r.ok);
    assert_eq!(r.detail, "connect refused");
}

#[test]
fn tcp_to_a_listener_connects() {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let prober = ProbeSpec::Tcp(TcpProbe::new(l.local_addr().unwrap()))
        .prepare()
        .unwrap();
    let r = runtime().block_on(prober.run(ms(1000), ms(1000)));
    assert!(r.ok, "{r:?}");
    assert_eq!(r.detail, "connected");
}

fn exec(argv: &[&str], timeout: Duration) -> ProbeResult {
    let prober = ProbeSpec::Exec(ExecProbe::new(argv.iter().copied()))
        .prepare()
        .unwrap();
    runtime().block_on(prober.run(timeout, timeout))
}

#[test]
fn commands_pass_on_status_zero_only() {
    let ok = exec(&["true"], ms(2000));
    assert!(ok.ok, "{ok:?}");
    assert_eq!(ok.detail, "exit status 0");
    let r = exec(&["sh", "-c", "exit 2"], ms(2000));
    assert!(!r.ok);
    assert_eq!(r.detail, "exit status 2");
    let r = exec(&["sh", "-c", "kill -TERM $$"], ms(2000));
    assert_eq!(r.detail, "killed by signal 15");
    let r = exec(&["/nonexistent/health-check"], ms(2000));
    assert!(!r.ok);
    assert!(
        r.detail
            .starts_with("cannot run `/nonexistent/health-check`"),
        "{}",
        r.detail
    );
}

/// Live (not zombie) processes whose command line is exactly `argv`.
pub(crate) fn live_processes(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline != want {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
        if state != Some(Some('Z')) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn a_hanging_command_is_killed_with_its_whole_group() {
    let sleep = ["sleep", "30.0613"];
    let script = format!("{} & {} ; exit 0", sleep.join(" "), sleep.join(" "));
    let start = std::time::Instant::now();
    let r = exec(&["sh", "-c", &script], ms(300));
    assert!(!r.ok);
    assert_eq!(r.detail, "timeout after 300 ms (killed its process group)");
    assert!(start.elapsed() < ms(3000), "{:?}", start.elapsed());
    assert_eq!(live_processes(&sleep), Vec::<u32>::new());
}

#[test]
fn what_a_command_leaves_behind_is_killed() {
    let sleep = ["sleep", "30.0614"];
    let script = format!("{} & exit 0", sleep.join(" "));
    let r = exec(&["sh", "-c", &script], ms(2000));
    assert!(r.ok, "{r:?}");
    assert_eq!(live_processes(&sleep), Vec::<u32>::new());
}

#[test]
fn an_abandoned_command_is_killed() {
    let sleep = ["sleep", "30.0615"];
    let prober = ProbeSpec::Exec(ExecProbe::new(sleep)).prepare().unwrap();
    runtime().block_on(async {
        let run = prober.run(ms(10_000), ms(10_000));
        // Abandon the probe after 200 ms, as a stopping monitor does.
        let _ = tokio::time::timeout(ms(200), run).await;
    });
    // The drop killed it; its reaping may be on a thread: allow a moment.
    let deadline = std::time::Instant::now() + ms(2000);
    while !live_processes(&sleep).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(ms(10));
    }
    assert_eq!(live_processes(&sleep), Vec::<u32>::new());
}
