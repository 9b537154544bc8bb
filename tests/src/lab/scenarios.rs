//! The demo: the design brief's scenarios played against a running lab,
//! each measured, checked and printed as a timeline; then a summary.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use super::{
    Lab,
    configs::{DNS_VIP, ROGUE, WEB_VIP, ZONE},
    net, who_serves,
};

/// How one scenario went.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// What it was.
    pub scenario: &'static str,
    /// Whether it behaved as the design says.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

/// Plays every scenario, printing the timeline through `say`.
pub fn demo(lab: &Lab, say: &mut dyn FnMut(&str)) -> Vec<Outcome> {
    let start = Instant::now();
    let mut log = |what: &str| say(&format!("[{:>6.2}s] {what}", start.elapsed().as_secs_f64()));
    vec![
        nearest(&mut log),
        service_failure(lab, &mut log),
        dns_failure(lab, &mut log),
        drain(lab, &mut log),
        rogue(lab, &mut log),
        silent_death(lab, &mut log),
        restart(lab, &mut log),
    ]
}

/// The summary table.
pub fn summary(outcomes: &[Outcome]) -> String {
    let mut out = String::from("\n| scenario | result | what was seen |\n|---|---|---|\n");
    for o in outcomes {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            o.scenario,
            if o.passed { "ok" } else { "FAILED" },
            o.detail
        ));
    }
    out
}

fn outcome(scenario: &'static str, passed: bool, detail: String) -> Outcome {
    Outcome {
        scenario,
        passed,
        detail,
    }
}

/// Polls `client` until `check` accepts who served it; the time it took.
fn until_served(
    client: &str,
    timeout: Duration,
    check: impl Fn(&str) -> bool,
) -> Result<(Duration, String), String> {
    let start = Instant::now();
    loop {
        if let Ok(pop) = who_serves(client) {
            if check(&pop) {
                return Ok((start.elapsed(), pop));
            }
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "{client}: not within {timeout:?} (last: {:?})",
                who_serves(client)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn nearest(log: &mut dyn FnMut(&str)) -> Outcome {
    let one = who_serves("client1");
    let two = who_serves("client2");
    log(&format!(
        "client1 (behind isp1) is served by {one:?}; client2 (behind isp2) by {two:?}"
    ));
    let passed = one.as_deref() == Ok("pop-a") && matches!(two.as_deref(), Ok("pop-b" | "pop-c"));
    outcome(
        "clients reach their nearest PoP by BGP",
        passed,
        format!(
            "client1 → {}, client2 → {}",
            one.unwrap_or_else(|e| e),
            two.unwrap_or_else(|e| e)
        ),
    )
}

/// The best route of the anycast prefix at `isp`, and its import counters
/// from pop-a: what must not move when a service fails. The times BIRD
/// prints with each route are left out: it derives them from its
/// monotonic clock at every `show`, so the same route can print a
/// millisecond apart; a route announced again moves the counters.
fn bgp_view(lab: &Lab) -> (String, String) {
    let route = without_times(&lab.birdc("isp1", "show route 203.0.113.0/24"));
    let updates = lab
        .birdc("isp1", "show protocols all pop_a")
        .lines()
        .find(|l| l.trim_start().starts_with("Import updates:"))
        .unwrap_or_default()
        .to_string();
    (route, updates)
}

/// `text` without the `HH:MM:SS.mmm` times BIRD puts in `show route`.
fn without_times(text: &str) -> String {
    let is_time = |token: &str| {
        let t = token.trim_end_matches(']');
        t.len() == 12
            && t.char_indices().all(|(i, c)| match i {
                2 | 5 => c == ':',
                8 => c == '.',
                _ => c.is_ascii_digit(),
            })
    };
    text.lines()
        .map(|line| {
            line.split_whitespace()
                .filter(|token| !is_time(token))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn service_failure(lab: &Lab, log: &mut dyn FnMut(&str)) -> Outcome {
    const NAME: &str =
        "web fails at pop-a: its clients are served through the overlay, BGP unchanged";
    let before = bgp_view(lab);
    log("pop-a: web service stopped");
    if let Err(e) = lab.service("pop-a", "web down") {
        return outcome(NAME, false, e);
    }
    let failover = until_served("client1", Duration::from_secs(10), |p| p != "pop-a");
    let after = bgp_view(lab);
    let unchanged = before == after;
    if !unchanged {
        log(&format!(
            "isp1 before:\n{}\n{}\nisp1 after:\n{}\n{}",
            before.0, before.1, after.0, after.1
        ));
    }
    match &failover {
        Ok((t, pop)) => log(&format!(
            "client1 answered by {pop} via the overlay after {t:.2?}; isp1's BGP unchanged: {unchanged}"
        )),
        Err(e) => log(e),
    }
    let _ = lab.service("pop-a", "web up");
    let back = until_served("client1", Duration::from_secs(10), |p| p == "pop-a");
    if let Ok((t, _)) = &back {
        log(&format!(
            "pop-a: web service restored; client1 served by pop-a again after {t:.2?}"
        ));
    }
    match failover {
        Ok((t, pop)) => outcome(
            NAME,
            unchanged && back.is_ok(),
            format!("failover to {pop} in {t:.2?}, isp1 route and updates unchanged: {unchanged}"),
        ),
        Err(e) => outcome(NAME, false, e),
    }
}

/// What `dig @DNS_VIP www.<zone>` from a client got: the answer records
/// and the NSID of the PoP that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DigAnswer {
    status: String,
    answer: Vec<String>,
    nsid: String,
}

/// `dig` from `client` to the DNS VIP for `www.<zone>` (UDP, one try of
/// one second).
fn dig(client: &str) -> Result<DigAnswer, String> {
    let out = net::run(std::process::Command::new("ip").args([
        "netns",
        "exec",
        &net::ns(client),
        "dig",
        &format!("@{DNS_VIP}"),
        &format!("www.{ZONE}"),
        "A",
        "+nsid",
        "+norec",
        "+time=1",
        "+tries=1",
    ]))?;
    let status = out
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .and_then(|s| s.split(',').next())
        .ok_or_else(|| format!("{client}: no response: {}", out.trim()))?
        .to_string();
    let answer = out
        .lines()
        .skip_while(|l| !l.starts_with(";; ANSWER SECTION:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    // `; NSID: 70 6f 70 2d 61 ("pop-a")`
    let nsid = out
        .lines()
        .find_map(|l| l.strip_prefix("; NSID: "))
        .and_then(|l| l.split("(\"").nth(1))
        .and_then(|l| l.split("\")").next())
        .unwrap_or_default()
        .to_string();
    Ok(DigAnswer {
        status,
        answer,
        nsid,
    })
}

/// Asks from `client` until `check` accepts the answer; the time it took,
/// the answer, and how many queries went unanswered meanwhile.
fn until_dns(
    client: &str,
    timeout: Duration,
    check: impl Fn(&DigAnswer) -> bool,
) -> Result<(Duration, DigAnswer, u32), String> {
    let start = Instant::now();
    let mut unanswered = 0;
    loop {
        match dig(client) {
            Ok(a) if check(&a) => return Ok((start.elapsed(), a, unanswered)),
            Ok(_) => {}
            Err(_) => unanswered += 1,
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "{client}: not within {timeout:?} (last: {:?})",
                dig(client)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn dns_failure(lab: &Lab, log: &mut dyn FnMut(&str)) -> Outcome {
    const NAME: &str =
        "DNS: the same answer from the nearest PoP; when its DNS stops, a peer answers";
    let want = vec![format!("www.{ZONE}. 60 IN A {WEB_VIP}")];
    let one = dig("client1");
    let two = dig("client2");
    log(&format!(
        "dig @{DNS_VIP} www.{ZONE}: client1 {one:?}; client2 {two:?}"
    ));
    let (Ok(one), Ok(two)) = (one, two) else {
        return outcome(NAME, false, "a client got no DNS answer".into());
    };
    let same = one.status == "NOERROR" && one.answer == want && two.answer == want;
    let nearest = one.nsid == "pop-a" && matches!(two.nsid.as_str(), "pop-b" | "pop-c");
    log("pop-a: DNS service stopped (edge-agent dns stop)");
    if let Err(e) = lab.admin("pop-a", &["dns", "stop"]) {
        return outcome(NAME, false, e);
    }
    let failover = until_dns("client1", Duration::from_secs(10), |a| {
        a.answer == want && a.nsid != "pop-a"
    });
    // And it keeps answering.
    let steady = (0..10).all(|_| dig("client1").is_ok_and(|a| a.answer == want));
    match &failover {
        Ok((t, a, lost)) => log(&format!(
            "client1 answered by {} via the overlay after {t:.2?} ({lost} queries unanswered meanwhile); 10 more answered: {steady}",
            a.nsid
        )),
        Err(e) => log(e),
    }
    let _ = lab.admin("pop-a", &["dns", "start"]);
    let back = until_dns("client1", Duration::from_secs(10), |a| a.nsid == "pop-a");
    if let Ok((t, _, _)) = &back {
        log(&format!(
            "pop-a: DNS service started; client1 answered by pop-a again after {t:.2?}"
        ));
    }
    match failover {
        Ok((t, a, lost)) => outcome(
            NAME,
            same && nearest && steady && back.is_ok(),
            format!(
                "client1 ← {}, client2 ← {}, same answer: {same}; pop-a's DNS stopped: answered by {} after {t:.2?} ({lost} unanswered)",
                one.nsid, two.nsid, a.nsid
            ),
        ),
        Err(e) => outcome(NAME, false, e),
    }
}

/// The next hop isp1's kernel uses toward the web VIP.
fn isp1_next_hop() -> String {
    super::net::ip_in("isp1", &["route", "get", super::configs::WEB_VIP])
        .ok()
        .and_then(|r| {
            r.split_whitespace()
                .skip_while(|w| *w != "via")
                .nth(1)
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// Polls isp1's route to the VIP until its next hop is `want`.
fn until_routed(want: &str, timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        if isp1_next_hop() == want {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "isp1 still routes the VIP via {} after {timeout:?}",
                isp1_next_hop()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn drain(lab: &Lab, log: &mut dyn FnMut(&str)) -> Outcome {
    const NAME: &str = "pop-a drained: its clients move to another PoP";
    const VIA_ISP2: &str = "198.51.100.98";
    const VIA_POP_A: &str = "198.51.100.2";
    log("pop-a: drained by the operator");
    if let Err(e) = lab.admin("pop-a", &["drain"]) {
        return outcome(NAME, false, e);
    }
    // Internet BGP moves: isp1 prefers the route through isp2 over pop-a's
    // GRACEFUL_SHUTDOWN one.
    let converged = until_routed(VIA_ISP2, Duration::from_secs(15));
    let served = who_serves("client1");
    match &converged {
        Ok(t) => log(&format!(
            "isp1 routes the anycast prefix via isp2 after {t:.2?}; client1 now served by {served:?}"
        )),
        Err(e) => log(e),
    }
    let _ = lab.admin("pop-a", &["undrain"]);
    let back = until_routed(VIA_POP_A, Duration::from_secs(20));
    let served_back = who_serves("client1");
    if let Ok(t) = &back {
        log(&format!(
            "pop-a: undrained; isp1 routes via pop-a again after {t:.2?}; client1 served by {served_back:?}"
        ));
    }
    let moved = matches!(served.as_deref(), Ok("pop-b" | "pop-c"));
    match converged {
        Ok(t) => outcome(
            NAME,
            moved && back.is_ok() && served_back.as_deref() == Ok("pop-a"),
            format!(
                "BGP converged in {t:.2?}; client1 served by {}",
                served.unwrap_or_else(|e| e)
            ),
        ),
        Err(e) => outcome(NAME, false, e),
    }
}

fn rogue(lab: &Lab, log: &mut dyn FnMut(&str)) -> Outcome {
    const NAME: &str = "a rogue node (another CA) is refused, nothing installed";
    log("rogue: a node with a certificate from another CA tries to join");
    if let Err(e) = lab.start_agent(&ROGUE) {
        return outcome(NAME, false, e);
    }
    std::thread::sleep(Duration::from_secs(6));
    let mut refused = 0;
    let mut admitted = Vec::new();
    for pop in ["pop-a", "pop-b", "pop-c"] {
        if let Some(s) = lab.status_json(pop) {
            refused += s["overlay_refused"]
                .as_object()
                .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum::<u64>());
            if s["overlay"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["peer"] == "edge://rogue"))
            {
                admitted.push(pop);
            }
        }
    }
    let rogue_view = lab.status_json(ROGUE.name);
    let rogue_established = rogue_view
        .as_ref()
        .and_then(|s| {
            s["overlay"]
                .as_array()
                .map(|a| a.iter().filter(|x| x["state"] == "established").count())
        })
        .unwrap_or(0);
    let line = std::fs::read_to_string(lab.dir.join("pop-a.agent.log"))
        .unwrap_or_default()
        .lines()
        .find(|l| {
            l.contains(&format!(
                "overlay: refused connection from {}",
                ROGUE.underlay
            ))
        })
        .map(|l| {
            l.find("overlay: refused")
                .map_or(l, |i| &l[i..])
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    log(&format!("pop-a: {line}"));
    lab.signal("rogue.agent", libc::SIGKILL);
    let passed = refused > 0 && admitted.is_empty() && rogue_established == 0 && !line.is_empty();
    outcome(
        NAME,
        passed,
        format!(
            "{refused} connections refused, adjacencies with it: {}, its own adjacencies: {rogue_established}",
            admitted.len()
        ),
    )
}

/// Requests from `client` every 20 ms on their own thread, until
/// stopped: how many were sent, how many nobody answered.
struct Streamer {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Streamer {
    fn start(client: &'static str) -> Streamer {
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let thread = {
            let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    sent.fetch_add(1, Ordering::SeqCst);
                    // A lost request is one nobody answered.
                    if who_serves(client).is_err() {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Streamer {
            stop,
            sent,
            failed,
            thread: Some(thread),
        }
    }

    /// Stops; (sent, lost).
    fn stop(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (
            self.sent.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }
}

/// Whether `pop`'s status shows its adjacency with `peer` established.
fn adjacent(lab: &Lab, pop: &str, peer: &str) -> bool {
    lab.status_json(pop).is_some_and(|s| {
        s["overlay"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["peer"] == format!("edge://{peer}") && x["state"] == "established")
        })
    })
}

/// Polls until `check` holds; the time it took.
fn until(timeout: Duration, check: impl Fn() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if check() {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// isp1 drops every frame to and from pop-a (its link stays up): the
/// way a hung box, a power loss behind a switch or a dead line card look.
const SILENCE_POP_A: &str = "table inet silent_pop_a {\n  \
    chain through { type filter hook forward priority 0; policy accept; iifname \"i1-a\" drop; oifname \"i1-a\" drop; }\n  \
    chain to_isp1 { type filter hook input priority 0; policy accept; iifname \"i1-a\" drop; }\n  \
    chain from_isp1 { type filter hook output priority 0; policy accept; oifname \"i1-a\" drop; }\n}\n";

fn nft_in(lab: &Lab, short: &str, ruleset: &str) -> Result<String, String> {
    let file = lab.dir.join(format!("{short}.nft"));
    std::fs::write(&file, ruleset).map_err(|e| format!("writing {}: {e}", file.display()))?;
    net::run(
        std::process::Command::new("ip")
            .args(["netns", "exec", &net::ns(short), "nft", "-f"])
            .arg(&file),
    )
}

fn silent_death(lab: &Lab, log: &mut dyn FnMut(&str)) -> Outcome {
    const NAME: &str = "pop-a dies silently: BFD routes isp1 and the peers around it";
    const VIA_ISP2: &str = "198.51.100.98";
    const VIA_POP_A: &str = "198.51.100.2";
    let streamer = Streamer::start("client1");
    std::thread::sleep(Duration::from_millis(300));
    log("isp1: every frame to and from pop-a dropped (nftables; the link stays up)");
    if let Err(e) = nft_in(lab, "isp1", SILENCE_POP_A) {
        let _ = streamer.stop();
        return outcome(NAME, false, e);
    }
    let cut = Instant::now();
    let isp1 = until_routed(VIA_ISP2, Duration::from_secs(15)).map(|_| cut.elapsed());
    // pop-b and pop-c, measured from the cut.
    let peers_gone = until(Duration::from_secs(15), || {
        !adjacent(lab, "pop-b", "pop-a") && !adjacent(lab, "pop-c", "pop-a")
    })
    .map(|_| cut.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    let (sent, lost) = streamer.stop();
    match (&isp1, &peers_gone) {
        (Ok(x), Some(y)) => log(&format!(
            "isp1 routes around pop-a after {:.0} ms; pop-b and pop-c dropped pop-a after {:.0} ms; client1 sent {sent} requests, {lost} lost",
            x.as_secs_f64() * 1000.0,
            y.as_secs_f64() * 1000.0
        )),
        _ => log(&format!("isp1: {isp1:?}; peers: {peers_gone:?}")),
    }
    log("isp1: pop-a's frames pass again");
    let _ = nft_in(lab, "isp1", "delete table inet silent_pop_a\n");
    let back = Instant::now();
    let rejoined = until_routed(VIA_POP_A, Duration::from_secs(30))
        .ok()
        .and_then(|_| {
            until(Duration::from_secs(30), || {
                adjacent(lab, "pop-b", "pop-a") && adjacent(lab, "pop-c", "pop-a")
            })
        });
    let served = until_served("client1", Duration::from_secs(10), |p| p == "pop-a");
    let rejoin = rejoined.map(|_| back.elapsed());
    if let Some(t) = rejoin {
        log(&format!(
            "pop-a rejoined after {t:.2?}: isp1 routes via pop-a, every adjacency up, client1 served by pop-a: {}",
            served.is_ok()
        ));
    }
    match (isp1, peers_gone) {
        (Ok(x), Some(y)) => outcome(
            NAME,
            x < Duration::from_secs(9)
                && y < Duration::from_secs(9)
                && rejoin.is_some()
                && served.is_ok(),
            format!(
                "isp1 routed around it after {:.0} ms, its peers after {:.0} ms (hold time 9 s); {lost} of {sent} requests lost; rejoined after {}",
                x.as_secs_f64() * 1000.0,
                y.as_secs_f64() * 1000.0,
                rejoin.map_or_else(|| "-".to_string(), |t| format!("{t:.2?}")),
            ),
        ),
        (Err(e), _) => outcome(NAME, false, e),
        (_, None) => outcome(NAME, false, "pop-b or pop-c kept pop-a".into()),
    }
}

fn restart(lab: &Lab, log: &mut dyn FnMut(&str)) -> Outcome {
    const NAME: &str = "pop-a's agent restarts while client1 streams requests";
    let streamer = Streamer::start("client1");
    std::thread::sleep(Duration::from_millis(500));
    log("pop-a: agent stopped (SIGTERM, keep-state) and started again");
    let t0 = Instant::now();
    lab.signal("pop-a.agent", libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab.pid("pop-a.agent").is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let restarted = super::configs::POPS
        .iter()
        .find(|p| p.name == "pop-a")
        .ok_or_else(|| "no pop-a".to_string())
        .and_then(|p| lab.start_agent(p))
        .and_then(|()| lab.wait_ready(Duration::from_secs(60)));
    let took = t0.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let (sent, failed) = streamer.stop();
    log(&format!(
        "pop-a: agent back after {took:.2?}; client1 sent {sent} requests, {failed} lost"
    ));
    match restarted {
        Ok(()) => outcome(
            NAME,
            failed == 0 && sent > 0,
            format!("{sent} requests, {failed} lost; agent back in {took:.2?}"),
        ),
        Err(e) => outcome(NAME, false, e),
    }
}

#[cfg(test)]
mod tests {
    use super::without_times;

    #[test]
    fn route_times_are_left_out_and_nothing_else() {
        let a = "203.0.113.0/24       unicast [pop_a 15:09:11.157] * (100) [AS64500i]\n\tvia 198.51.100.2 on i1-a";
        let b = "203.0.113.0/24       unicast [pop_a 15:09:11.156] * (100) [AS64500i]\n\tvia 198.51.100.2 on i1-a";
        let c = "203.0.113.0/24       unicast [isp2 15:09:11.156] * (100) [AS64500i]\n\tvia 198.51.100.98 on i1-i2";
        assert_eq!(without_times(a), without_times(b));
        assert_ne!(without_times(a), without_times(c));
        assert_eq!(
            without_times(a),
            "203.0.113.0/24 unicast [pop_a * (100) [AS64500i]\nvia 198.51.100.2 on i1-a"
        );
    }
}
