//! The lab: a whole anycast CDN on one machine. Two ISP routers running
//! BIRD, three PoPs running the real `edge-agent` daemon (with its
//! authoritative DNS service on the DNS VIP) and a local web service
//! (`edge-lab-service`: HTTP on the web VIP saying which PoP served), two
//! clients, all in network namespaces
//! (`edgelab-*`). `up` builds and starts it and returns with it running;
//! `down` removes every namespace, process and pin it made, also after a
//! crash; `demo` plays the scenarios of the design brief and prints a
//! timeline ([`scenarios`]). See docs/lab.md.
//!
//! ```text
//!  client1 ── isp1 (AS 64496) ────────── isp2 (AS 64497) ── client2
//!              │                           │          │
//!            pop-a                       pop-b      pop-c
//! ```

pub mod configs;
pub mod net;
pub mod scenarios;

use std::{
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use configs::{ISPS, POPS, ROGUE};

/// Where the lab keeps its files (configs, certificates, logs, sockets).
pub const DIR: &str = "/run/edge-lab";
/// Where its data planes are pinned.
pub const PIN_ROOT: &str = "/sys/fs/bpf/edgelab";

/// The programs the lab runs.
#[derive(Clone, Debug)]
pub struct Lab {
    /// Its directory.
    pub dir: PathBuf,
    /// The `edge-agent` binary.
    pub agent: PathBuf,
    /// The `edge-lab-service` binary.
    pub service: PathBuf,
}

impl Lab {
    /// The lab with the binaries next to the current executable.
    pub fn new() -> Result<Lab, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut bin_dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        // Test executables live in target/<profile>/deps.
        if bin_dir.ends_with("deps") {
            bin_dir.pop();
        }
        let lab = Lab {
            dir: PathBuf::from(DIR),
            agent: bin_dir.join("edge-agent"),
            service: bin_dir.join("edge-lab-service"),
        };
        for bin in [&lab.agent, &lab.service] {
            if !bin.exists() {
                return Err(format!(
                    "{} is missing: build it first (`cargo build -p edge-agent -p edge-tests --bins`, which `cargo xtask lab` does)",
                    bin.display()
                ));
            }
        }
        Ok(lab)
    }

    fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }

    /// The admin socket of `pop`.
    pub fn socket(&self, pop: &str) -> PathBuf {
        self.dir.join(format!("{pop}.sock"))
    }

    /// Builds the network, makes the certificates and configs, starts BIRD,
    /// the services and the agents, and waits until BGP and the overlay
    /// are up. Whatever an earlier lab left is removed first.
    pub fn up(&self) -> Result<(), String> {
        self.down();
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        for short in net::NAMESPACES {
            net::add_ns(short)?;
        }
        net::link("isp1", "i1-i2", ISPS[0].3, "isp2", "i2-i1", ISPS[1].3)?;
        for pop in POPS.iter().chain([&ROGUE]) {
            net::link(
                pop.isp,
                pop.isp_dev,
                pop.isp_addr,
                pop.name,
                "eth0",
                pop.addr,
            )?;
            net::ip_in(pop.name, &["route", "add", "default", "via", pop.gateway])?;
        }
        for (client, isp, dev, gw, addr) in [
            ("client1", "isp1", "i1-cl", "198.18.1.1/24", "198.18.1.2/24"),
            ("client2", "isp2", "i2-cl", "198.18.2.1/24", "198.18.2.2/24"),
        ] {
            net::link(isp, dev, gw, client, "eth0", addr)?;
            let gateway = gw.split('/').next().unwrap_or(gw);
            net::ip_in(client, &["route", "add", "default", "via", gateway])?;
            // Complete checksums on the wire, as a real NIC would.
            let _ = net::run(Command::new("ip").args([
                "netns",
                "exec",
                &net::ns(client),
                "ethtool",
                "-K",
                "eth0",
                "tx",
                "off",
            ]));
        }
        self.pki_files()?;
        for (isp, ..) in ISPS {
            let conf = self.dir.join(format!("{isp}.bird.conf"));
            std::fs::write(&conf, configs::bird(isp)).map_err(|e| e.to_string())?;
            let sock = self.dir.join(format!("{isp}.bird.sock"));
            let mut bird = Command::new("ip");
            bird.args(["netns", "exec", &net::ns(isp), "bird", "-f", "-c"])
                .arg(&conf)
                .arg("-s")
                .arg(&sock);
            self.spawn(&format!("{isp}.bird"), bird)?;
        }
        // Frames a PoP's XDP sends back out (XDP_TX) arrive only where the
        // other end has an XDP program: the edge program, with no service
        // configured, passes everything.
        for pop in POPS {
            let pins = format!("{PIN_ROOT}/{}-{}", pop.isp, pop.isp_dev);
            net::run(Command::new(&self.agent).args([
                "--netns",
                &net::ns(pop.isp),
                "xdp",
                "attach",
                "--iface",
                pop.isp_dev,
                "--mode",
                "native",
                "--pin-root",
                &pins,
            ]))?;
        }
        for pop in POPS {
            self.start_services(pop.name)?;
            self.start_agent(&pop)?;
        }
        self.wait_ready(Duration::from_secs(60))?;
        // And Internet BGP has settled: isp1 reaches the anycast prefix
        // through pop-a, isp2 through one of its own PoPs.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let via = |isp: &str| {
                net::ip_in(isp, &["route", "get", configs::WEB_VIP])
                    .ok()
                    .and_then(|r| {
                        r.split_whitespace()
                            .skip_while(|w| *w != "via")
                            .nth(1)
                            .map(str::to_owned)
                    })
                    .unwrap_or_default()
            };
            let (one, two) = (via("isp1"), via("isp2"));
            if one == POPS[0].underlay && (two == POPS[1].underlay || two == POPS[2].underlay) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "BGP did not settle: isp1 routes the VIP via {one:?}, isp2 via {two:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pki_files(&self) -> Result<(), String> {
        let pki = self.pki();
        let rogue = self.dir.join("rogue-pki");
        for dir in [&pki, &rogue] {
            let _ = std::fs::remove_dir_all(dir);
        }
        let agent = |args: &[&str]| net::run(Command::new(&self.agent).args(args));
        agent(&[
            "pki",
            "ca",
            "--out",
            &pki.display().to_string(),
            "--name",
            "edge lab CA",
        ])?;
        for pop in POPS {
            agent(&[
                "pki",
                "node",
                "--ca",
                &pki.display().to_string(),
                "--name",
                pop.name,
                "--out",
                &pki.display().to_string(),
            ])?;
        }
        agent(&[
            "pki",
            "ca",
            "--out",
            &rogue.display().to_string(),
            "--name",
            "rogue CA",
        ])?;
        agent(&[
            "pki",
            "node",
            "--ca",
            &rogue.display().to_string(),
            "--name",
            "rogue",
            "--out",
            &rogue.display().to_string(),
        ])?;
        // The rogue knows the enterprise CA (a public bundle) besides its
        // own: it can check the PoPs, they must refuse it.
        let bundle = [rogue.join("ca.pem"), pki.join("ca.pem")]
            .iter()
            .map(std::fs::read_to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?
            .concat();
        std::fs::write(rogue.join("bundle.pem"), bundle).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Starts `pop`'s services.
    pub fn start_services(&self, pop: &str) -> Result<(), String> {
        let control = self.dir.join(format!("{pop}.svc.sock"));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &net::ns(pop)])
            .arg(&self.service)
            .args([
                "--name",
                pop,
                "--web",
                &format!("{}:80", configs::WEB_VIP),
                "--control",
            ])
            .arg(&control);
        self.spawn(&format!("{pop}.service"), cmd)
    }

    /// Starts (or restarts) `pop`'s agent, with `--keep-state` so that a
    /// restart keeps forwarding.
    pub fn start_agent(&self, pop: &configs::Pop) -> Result<(), String> {
        let pki = if pop.name == ROGUE.name {
            self.dir.join("rogue-pki")
        } else {
            self.pki()
        };
        let mut text = configs::agent(pop, &self.dir, &pki);
        if pop.name == ROGUE.name {
            // The rogue trusts both CAs and itself.
            text = text
                .replace(
                    "allow = [\"edge://pop-a\"",
                    "allow = [\"edge://rogue\", \"edge://pop-a\"",
                )
                .replace(
                    &format!("{}/ca.pem", pki.display()),
                    &format!("{}/bundle.pem", pki.display()),
                );
        }
        let config = self.dir.join(format!("{}.toml", pop.name));
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.agent);
        cmd.args([
            "--netns",
            &net::ns(pop.name),
            "run",
            "--keep-state",
            "--config",
        ])
        .arg(&config);
        self.spawn(&format!("{}.agent", pop.name), cmd)
    }

    /// Starts `cmd` detached (its own process group), logging to
    /// `<name>.log`, and records its pid.
    fn spawn(&self, name: &str, mut cmd: Command) -> Result<(), String> {
        use std::os::unix::process::CommandExt;
        // Appended: a restarted program's log follows the previous one's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        std::fs::write(self.dir.join(format!("{name}.pid")), child.id().to_string())
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The pid recorded for `name`, if it is alive.
    pub fn pid(&self, name: &str) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir.join(format!("{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // SAFETY: waitpid(2) with WNOHANG reaps the process if it is our
        // exited child (started by this process) and does nothing otherwise.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        // A zombie (exited, not reaped by its parent) is not alive.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let state = stat.rsplit(')').next()?.split_whitespace().next()?;
        (state != "Z").then_some(pid)
    }

    /// Sends `signal` to `name`'s process (group).
    pub fn signal(&self, name: &str, signal: i32) {
        if let Some(pid) = self.pid(name) {
            // SAFETY: kill(2) on the process group the lab started.
            unsafe { libc::kill(-pid, signal) };
        }
    }

    /// Removes everything a lab made: processes, namespaces, pins, files.
    pub fn down(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "pid") {
                    if let Some(pid) = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|p| p.trim().parse::<i32>().ok())
                    {
                        // SAFETY: kill(2) on a process group the lab started.
                        unsafe { libc::kill(-pid, libc::SIGKILL) };
                    }
                }
            }
        }
        net::delete_all();
        let _ = std::fs::remove_dir_all(PIN_ROOT);
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// `edge-agent status --json` of `pop`.
    pub fn status_json(&self, pop: &str) -> Option<serde_json::Value> {
        let out = Command::new(&self.agent)
            .args(["status", "--json", "--socket"])
            .arg(self.socket(pop))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())?
    }

    /// `edge-agent status` of `pop`, as tables.
    pub fn status_text(&self, pop: &str) -> String {
        Command::new(&self.agent)
            .args(["status", "--socket"])
            .arg(self.socket(pop))
            .output()
            .map(|o| {
                String::from_utf8_lossy(if o.status.success() {
                    &o.stdout
                } else {
                    &o.stderr
                })
                .into_owned()
            })
            .unwrap_or_else(|e| e.to_string())
    }

    /// An `edge-agent` admin command toward `pop` (`drain`, `undrain`, …).
    pub fn admin(&self, pop: &str, args: &[&str]) -> Result<String, String> {
        net::run(
            Command::new(&self.agent)
                .args(args)
                .arg("--socket")
                .arg(self.socket(pop)),
        )
    }

    /// A line command to `pop`'s services (`web down`, `web up`, …).
    pub fn service(&self, pop: &str, command: &str) -> Result<String, String> {
        use std::io::{BufRead, BufReader, Write};
        let path = self.dir.join(format!("{pop}.svc.sock"));
        let mut stream = std::os::unix::net::UnixStream::connect(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        stream
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        Ok(line.trim().to_string())
    }

    /// `birdc -s SOCK COMMAND` on `isp`.
    pub fn birdc(&self, isp: &str, command: &str) -> String {
        let sock = self.dir.join(format!("{isp}.bird.sock"));
        Command::new("birdc")
            .arg("-s")
            .arg(&sock)
            .args(command.split_whitespace())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Waits until every PoP announces upstream and has a full overlay mesh.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let ready = POPS.iter().all(|p| {
                self.status_json(p.name).is_some_and(|s| {
                    s["node"]["announcement"] == "announce"
                        && s["overlay"].as_array().is_some_and(|a| {
                            a.iter().filter(|x| x["state"] == "established").count() == 2
                        })
                })
            });
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                let states: Vec<String> = POPS
                    .iter()
                    .map(|p| format!("{}:\n{}", p.name, self.status_text(p.name)))
                    .collect();
                return Err(format!(
                    "the lab did not come up within {timeout:?}:\n{}",
                    states.join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Runs `f` on a thread inside lab namespace `short`.
pub fn in_ns<T: Send>(short: &str, f: impl FnOnce() -> T + Send) -> T {
    let name = net::ns(short);
    std::thread::scope(|s| {
        s.spawn(|| {
            edge_agent::netns::enter(&name).unwrap_or_else(|e| panic!("{e}"));
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// One HTTP request from `client` to the web VIP on a new connection: the
/// PoP that answered (`served by pop-x`), or why not.
pub fn who_serves(client: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    in_ns(client, || {
        let addr: SocketAddr = format!("{}:80", configs::WEB_VIP)
            .parse()
            .map_err(|e| format!("{e}"))?;
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
            .map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_millis(800)))
            .map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: www.cdn.test\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| e.to_string())?;
        response
            .lines()
            .find_map(|l| l.strip_prefix("served by "))
            .map(|p| p.trim().to_string())
            .ok_or_else(|| format!("no answer: {response:?}"))
    })
}
