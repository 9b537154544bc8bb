//! The daemon as operators run it: `edge-agent run` with the documented
//! example config (pointed at a namespace and temporary files), upstream
//! to a real BIRD. `status --json`, the metrics endpoint, drain and
//! undrain seen by BIRD, the DNS service (answers, `dns stop|start`, zones
//! reloaded on SIGHUP), SIGHUP with a broken config rejected while the
//! agent keeps running, and SIGTERM's safe shutdown.

use std::{
    io::{Read, Write},
    net::{Ipv6Addr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use edge_agent::overlay::pki::Validity;
use edge_tests::{
    bird::{BgpNeighbor, Bird, bgp_config},
    daemon::Daemon,
    http::HttpServer,
    netns::{Netns, veth},
    overlay::Lab,
    pins::PinDir,
    plan::CDN_ASN,
    privilege::require_root,
};

const MD5: &str = "edge-test-md5";
const BFD_KEY: &str = "edge-test-bfd";
const WAIT: Duration = Duration::from_secs(30);

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edge-agent"))
}

/// The example config with its files, sockets and pins moved into `dir`
/// and `pins`, a short drain period, and no private transport (this
/// namespace has no private link).
fn config(dir: &Path, pins: &Path) -> String {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/edge.example.toml"
    ))
    .expect("docs/edge.example.toml");
    let mut text = example
        .replace("/etc/edge/", &format!("{}/", dir.display()))
        .replace(
            "/run/edge-agent/api.sock",
            &dir.join("api.sock").display().to_string(),
        )
        .replace("/sys/fs/bpf/edge/eth0", &pins.display().to_string())
        .replace("drain_period = \"30s\"", "drain_period = \"2s\"")
        // A check that exists here, and fails: dns stays down (it is not
        // required for fitness).
        .replace("/usr/local/bin/check-dns", "/bin/false");
    // Lines naming the private transport go.
    text = text
        .lines()
        .filter(|l| !l.starts_with("private_address") && !l.starts_with("private_to"))
        .collect::<Vec<_>>()
        .join("\n");
    text
}

fn status(socket: &Path) -> Option<serde_json::Value> {
    let out = agent()
        .args(["status", "--json", "--socket"])
        .arg(socket)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())?
}

fn metrics(ns: &Netns) -> String {
    ns.run(|| {
        let mut s = TcpStream::connect("127.0.0.1:9179").expect("metrics endpoint");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    })
}

/// `dig +short` inside `ns` for `name` `rtype` at the DNS VIP; `None` when
/// nothing answered.
fn dig(ns: &Netns, name: &str, rtype: &str) -> Option<String> {
    let out = ns
        .command("dig")
        .args([
            "@203.0.113.53",
            name,
            rtype,
            "+short",
            "+time=1",
            "+tries=1",
        ])
        .output()
        .expect("dig (bind9-dnsutils; cargo xtask setup installs it)");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn admin(socket: &Path, args: &[&str]) {
    let out = agent()
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The edge node's world: BIRD upstream (with `bird_options`), the files
/// the example names, a web service for its probes.
struct Scene {
    edge: Netns,
    bird: Bird,
    dir: PathBuf,
    pins: PinDir,
    config_path: PathBuf,
    _isp: Netns,
    _lab: Lab,
    _web: (HttpServer, TcpListener),
}

impl Scene {
    fn new(bird_options: &str) -> Scene {
        // isp (BIRD, AS 64496, 198.51.100.1) ── eth0 of the edge node.
        let (isp, edge) = (Netns::new(), Netns::new());
        veth(&isp, "isp0", &edge, "eth0");
        isp.add_addr("isp0", "198.51.100.1/30");
        edge.add_addr("eth0", "198.51.100.2/30");
        edge.add_addr("eth0", "2001:db8:ff::2/64");
        let mut neighbor = BgpNeighbor::new("edge", "198.51.100.2".parse().unwrap(), CDN_ASN);
        neighbor.options = format!("  password \"{MD5}\";\n  bfd on;\n{bird_options}");
        // BFD as the example's [bfd] has it.
        let bfd = edge_tests::bfd::bird_protocol("*", BFD_KEY);
        let bird = Bird::start(
            &isp,
            &(bgp_config("198.51.100.1".parse().unwrap(), 64496, &[neighbor]) + &bfd),
        );
        // The files the example names.
        let lab = Lab::new();
        let dir = lab.dir().to_path_buf();
        lab.issue("pop-fra1", Validity::days_from_now(10));
        lab.issue("pop-old", Validity::days_from_now(10));
        lab.revoke("pop-old");
        std::fs::write(dir.join("isp1.md5"), MD5).unwrap();
        std::fs::write(dir.join("bfd.key"), format!("{BFD_KEY}\n")).unwrap();
        let pins = PinDir::new();
        let config_path = dir.join("edge.toml");
        std::fs::write(&config_path, config(&dir, pins.path())).unwrap();
        let check = agent()
            .arg("check-config")
            .arg(&config_path)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        // The web service: HTTP on port 80 (the probe's /healthz) and TCP 443.
        let (http, tls) = edge.run(|| {
            (
                TcpListener::bind("0.0.0.0:80").unwrap(),
                TcpListener::bind((Ipv6Addr::UNSPECIFIED, 443)).unwrap(),
            )
        });
        Scene {
            edge,
            bird,
            dir,
            pins,
            config_path,
            _isp: isp,
            _lab: lab,
            _web: (HttpServer::start(http, None), tls),
        }
    }
}

/// `edge-agent run` inside `edge`, logging to `dir/<log>.log`.
fn start_agent(edge: &Netns, config_path: &Path, dir: &Path, log: &str, extra: &[&str]) -> Daemon {
    let mut cmd = agent();
    cmd.args(["--netns", edge.name(), "run", "--config"])
        .arg(config_path)
        .args(["--shutdown-drain", "1s"])
        .args(extra);
    Daemon::spawn("edge-agent", cmd, &dir.join(format!("{log}.log")))
}

#[test]
fn the_daemon_runs_the_example_config_and_answers_operators() {
    if !require_root("the_daemon_runs_the_example_config_and_answers_operators") {
        return;
    }
    let scene = Scene::new("");
    let Scene {
        edge,
        mut bird,
        dir,
        pins,
        config_path,
        ..
    } = scene;
    let mut daemon = start_agent(&edge, &config_path, &dir, "agent", &[]);
    let socket: PathBuf = dir.join("api.sock");
    // Announced once web is healthy (dns, whose probes cannot pass here,
    // is not required).
    let doc = daemon.wait_for("the node announced", WAIT, || {
        status(&socket).filter(|d| d["node"]["announcement"] == "announce")
    });
    assert_eq!(doc["node"]["identity"], "edge://pop-fra1");
    let web = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "web")
        .unwrap();
    assert_eq!(web["health"], "up");
    assert_eq!(web["local"], true);
    let route = |bird: &mut Bird| bird.query("show route all 203.0.113.0/24");
    daemon.wait_for("BIRD's route", WAIT, || {
        route(&mut bird).contains("203.0.113.0/24").then_some(())
    });
    // BFD with BIRD: up, at the example's 100 ms × 3.
    let doc = daemon.wait_for("BFD up with BIRD at 100 ms", WAIT, || {
        status(&socket).filter(|d| {
            d["upstream"][0]["bfd"] == "up" && d["bfd"][0]["detection_time_ms"] == 300.0
        })
    });
    assert_eq!(doc["bfd"][0]["session"], "upstream 198.51.100.1", "{doc}");
    assert_eq!(doc["bfd"][0]["failures"], 0, "{doc}");
    // Human status too.
    let table = agent()
        .args(["status", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("node edge://pop-fra1: fit (announce)"),
        "{table}"
    );
    // Metrics.
    let m = metrics(&edge);
    for needle in [
        "HTTP/1.1 200 OK",
        "edge_node_fit 1",
        "edge_node_announcement{state=\"announce\"} 1",
        "edge_upstream_up{neighbor=\"198.51.100.1\"} 1",
        "edge_bfd_session{session=\"upstream 198.51.100.1\",state=\"up\"} 1",
        "edge_bfd_detection_time_seconds{session=\"upstream 198.51.100.1\"} 0.3",
        "edge_service_health{service=\"web\",state=\"up\"} 1",
        "edge_dataplane_packets_total{counter=\"non_service\"}",
        "edge_probe_rounds_total{service=\"web\"}",
        "edge_dns_listening 1",
        "edge_dns_zone_serial{zone=\"cdn.example.\"} 2026112201",
    ] {
        assert!(m.contains(needle), "{needle} missing from:\n{m}");
    }
    // The DNS service answers the example's zone on its VIP (its service
    // stays down here: the exec probe is /bin/false).
    assert_eq!(
        dig(&edge, "www.cdn.example", "A").as_deref(),
        Some("203.0.113.10")
    );
    assert_eq!(
        dig(&edge, "static.cdn.example", "AAAA").as_deref(),
        Some("www.cdn.example.\n2001:db8:ac::10")
    );
    let doc = status(&socket).unwrap();
    assert_eq!(doc["dns"]["listening"], true, "{doc}");
    assert_eq!(doc["dns"]["zones"][0]["serial"], 2026112201, "{doc}");
    assert!(
        doc["dns"]["responses"]["answer"].as_u64() >= Some(2),
        "{doc}"
    );
    // Stopped by the operator: nothing answers; started: it answers.
    admin(&socket, &["dns", "stop"]);
    assert_eq!(status(&socket).unwrap()["dns"]["listening"], false);
    assert_eq!(dig(&edge, "www.cdn.example", "A"), None);
    admin(&socket, &["dns", "start"]);
    assert_eq!(
        dig(&edge, "www.cdn.example", "A").as_deref(),
        Some("203.0.113.10")
    );
    // SIGHUP with a changed zone: served at once.
    let text = std::fs::read_to_string(&config_path).unwrap();
    let changed = text.replace("2026112201", "2026112202").replace(
        "\"www       A   203.0.113.10\"",
        "\"www       A   203.0.113.11\"",
    );
    assert_ne!(text, changed);
    std::fs::write(&config_path, &changed).unwrap();
    daemon.signal(libc::SIGHUP);
    daemon.wait_for("the new zone", WAIT, || {
        (dig(&edge, "www.cdn.example", "A").as_deref() == Some("203.0.113.11")).then_some(())
    });
    assert_eq!(
        status(&socket).unwrap()["dns"]["zones"][0]["serial"],
        2026112202
    );
    // Drain: GRACEFUL_SHUTDOWN at BIRD, then the withdrawal (2 s drain).
    admin(&socket, &["drain"]);
    daemon.wait_for("the drain at BIRD", WAIT, || {
        route(&mut bird).contains("(65535,0)").then_some(())
    });
    daemon.wait_for("the withdrawal at BIRD", WAIT, || {
        (!route(&mut bird).contains("203.0.113.0/24")).then_some(())
    });
    admin(&socket, &["undrain"]);
    daemon.wait_for("the announcement again", WAIT, || {
        let r = route(&mut bird);
        (r.contains("203.0.113.0/24") && !r.contains("(65535,0)")).then_some(())
    });
    // The operator puts dns down (it is not required): the service says
    // so, the upstream announcement does not change.
    admin(&socket, &["service", "dns", "down"]);
    let doc = status(&socket).unwrap();
    let dns = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "dns")
        .unwrap();
    assert_eq!(dns["admin"], "down");
    assert_eq!(doc["node"]["announcement"], "announce");
    // SIGHUP with a broken config: rejected, the agent keeps running.
    std::fs::write(&config_path, "[node]\nname = \"pop fra1\"\nbogus = 1\n").unwrap();
    daemon.signal(libc::SIGHUP);
    daemon.wait_for("the rejection", WAIT, || {
        daemon_log(&dir).contains("rejected").then_some(())
    });
    assert!(status(&socket).is_some_and(|d| d["node"]["announcement"] == "announce"));
    assert!(route(&mut bird).contains("203.0.113.0/24"));
    // SIGTERM: drain, withdraw, clean up.
    let log = daemon.log();
    assert_eq!(
        log.lines().filter(|l| l.contains("rejected")).count(),
        1,
        "{log}"
    );
    daemon.signal(libc::SIGTERM);
    let exit = daemon.wait_exit(WAIT).expect("the agent exits");
    assert!(exit.success(), "{exit:?}:\n{}", daemon.log());
    assert!(!route(&mut bird).contains("203.0.113.0/24"));
    let links = String::from_utf8_lossy(
        &edge
            .command("ip")
            .args(["link", "show"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(!links.contains("edge0"), "{links}");
    assert!(!pins.path().join("link").exists());
}

fn daemon_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
}

#[test]
fn a_restart_with_keep_state_loses_neither_the_data_plane_nor_the_upstream_route() {
    if !require_root(
        "a_restart_with_keep_state_loses_neither_the_data_plane_nor_the_upstream_route",
    ) {
        return;
    }
    // BIRD helps graceful restart: it keeps the routes while the agent is away.
    // BIRD 2.0 takes BFD AdminDown (sent as the agent stops) for a
    // failure and would flush the routes: `bfd graceful` makes it
    // restart gracefully instead (see docs/bfd.md).
    let scene = Scene::new("  graceful restart on;\n  bfd graceful;");
    let Scene {
        edge,
        mut bird,
        dir,
        pins,
        config_path,
        ..
    } = scene;
    let socket = dir.join("api.sock");
    let mut first = start_agent(&edge, &config_path, &dir, "first", &["--keep-state"]);
    first.wait_for("the node announced", WAIT, || {
        status(&socket).filter(|d| d["node"]["announcement"] == "announce")
    });
    let route = |bird: &mut Bird| bird.query("show route all 203.0.113.0/24");
    first.wait_for("BIRD's route", WAIT, || {
        route(&mut bird).contains("203.0.113.0/24").then_some(())
    });
    let xdp = |edge: &Netns| edge.xdp_program("eth0").map(|p| p.id);
    let program = xdp(&edge).expect("XDP on eth0");
    // Stop for a restart: everything that forwards stays.
    first.signal(libc::SIGTERM);
    assert!(
        first.wait_exit(WAIT).expect("the agent exits").success(),
        "{}",
        first.log()
    );
    assert_eq!(xdp(&edge), Some(program), "the program stays attached");
    assert!(pins.path().join("link").exists());
    let links = String::from_utf8_lossy(
        &edge
            .command("ip")
            .args(["addr", "show", "dev", "edge0"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(links.contains("203.0.113.10/32"), "{links}");
    let held = route(&mut bird);
    assert!(
        held.contains("203.0.113.0/24"),
        "BIRD keeps the route while the agent is away:\n{held}"
    );
    // The next agent re-adopts it all; BIRD's route never goes away.
    let mut second = start_agent(&edge, &config_path, &dir, "second", &["--keep-state"]);
    let mut lost = 0;
    second.wait_for("the node announced again", WAIT, || {
        if !route(&mut bird).contains("203.0.113.0/24") {
            lost += 1;
        }
        status(&socket).filter(|d| d["node"]["announcement"] == "announce")
    });
    assert_eq!(lost, 0, "BIRD lost the route during the restart");
    let readopted = xdp(&edge).expect("XDP on eth0");
    assert_ne!(
        readopted, program,
        "the new agent's program replaced the old one"
    );
    let after = route(&mut bird);
    assert!(
        after.contains("203.0.113.0/24"),
        "BIRD:\n{after}\n{}\nagent:\n{}",
        bird.query("show protocols all"),
        second.log()
    );
}
