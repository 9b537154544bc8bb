//! The Prometheus endpoint: the node's published state encoded with the
//! `prometheus-client` crate at every scrape, served over a minimal
//! HTTP/1.1 responder (`GET /metrics` only, one request per connection).
//!
//! Families: `edge_dataplane_packets_total{counter}` (every action and
//! reason), `edge_service_packets_total` and `edge_service_bytes_total`
//! `{service,path}`, `edge_peer_packets_total` and `edge_peer_bytes_total`
//! `{peer,address,direction}`, `edge_upstream_up` and
//! `edge_upstream_established_total{neighbor}`,
//! `edge_overlay_adjacency{peer,state}`,
//! `edge_overlay_established_total{peer}`, `edge_overlay_routes{peer}`,
//! `edge_overlay_rejected_total{peer,reason}`,
//! `edge_overlay_refused_total{reason}`,
//! `edge_overlay_handshakes_admitted_total`, `edge_overlay_handshakes_active`
//! and `edge_overlay_handshakes_limit{class}` (candidate, stranger),
//! `edge_overlay_admission_denied_total{reason}`,
//! `edge_service_health{service,state}`,
//! `edge_probe_latency_seconds{service,probe}`,
//! `edge_probe_rounds_total` and `edge_probe_failed_rounds_total{service}`,
//! `edge_control_decisions_total`, `edge_control_apply_seconds`,
//! `edge_node_fit`, `edge_node_announcement{state}`, and with a DNS
//! service `edge_dns_listening`, `edge_dns_queries_total{transport}`,
//! `edge_dns_responses_total{outcome}`, `edge_dns_truncated_total`,
//! `edge_dns_rate_limited_total{action}`, `edge_dns_ignored_total`,
//! `edge_dns_zone_serial{zone}`, and per BFD session (`upstream
//! 198.51.100.1`, `overlay pop-b`) `edge_bfd_session{session,state}`,
//! `edge_bfd_ups_total` and `edge_bfd_failures_total{session}`,
//! `edge_bfd_dropped_total{session,reason}`,
//! `edge_bfd_endpoint_dropped_total{plane,reason}` (also what was for no
//! session),
//! `edge_bfd_detection_time_seconds` and
//! `edge_bfd_tx_interval_seconds{session}`.

use std::{net::SocketAddr, time::Duration};

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::{mpsc, oneshot},
};

use super::status::Sources;
use crate::{
    bfd::packet::State as BfdState, control::fitness::Announce, overlay::adjacency::AdjState,
};

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

type GaugeF64 = Gauge<f64, std::sync::atomic::AtomicU64>;

/// A labelled counter family, registered as `name`.
fn counter(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let family = Family::<Labels, Counter>::default();
    registry.register(name, help, family.clone());
    family
}

/// A labelled gauge family, registered as `name`.
fn gauge(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, GaugeF64> {
    let family = Family::<Labels, GaugeF64>::default();
    registry.register(name, help, family.clone());
    family
}

/// The BFD families: every session, upstream and overlay.
fn encode_bfd(registry: &mut Registry, s: &Sources<'_>) {
    let state = gauge(
        registry,
        "edge_bfd_session",
        "BFD session state (1 for the current one)",
    );
    let failures = counter(
        registry,
        "edge_bfd_failures",
        "Times the BFD session found the path down",
    );
    let ups = counter(registry, "edge_bfd_ups", "Times the BFD session came up");
    let dropped = counter(
        registry,
        "edge_bfd_dropped",
        "BFD packets for the session dropped, by reason",
    );
    let detection = gauge(
        registry,
        "edge_bfd_detection_time_seconds",
        "The negotiated BFD detection time",
    );
    let tx = gauge(
        registry,
        "edge_bfd_tx_interval_seconds",
        "The negotiated BFD transmit interval",
    );
    let all_dropped = counter(
        registry,
        "edge_bfd_endpoint_dropped",
        "Every BFD packet dropped, by plane and reason, also those for no session",
    );
    for (plane, drops) in &s.bfd_drops {
        for (reason, n) in drops.iter() {
            let l = labels(&[
                ("plane", plane.to_string()),
                ("reason", reason.name().into()),
            ]);
            all_dropped.get_or_create(&l).inc_by(n);
        }
    }
    let sessions = s.upstream_bfd.iter().flatten().chain(
        s.overlay
            .adjacencies
            .values()
            .filter_map(|a| a.bfd.as_ref()),
    );
    for b in sessions {
        let l = labels(&[("session", b.name.clone())]);
        for st in [
            BfdState::AdminDown,
            BfdState::Down,
            BfdState::Init,
            BfdState::Up,
        ] {
            let sl = labels(&[("session", b.name.clone()), ("state", st.name().into())]);
            state
                .get_or_create(&sl)
                .set(f64::from(u8::from(b.session.state == st)));
        }
        failures
            .get_or_create(&l)
            .inc_by(b.session.counters.failures);
        ups.get_or_create(&l).inc_by(b.session.counters.ups);
        for (reason, n) in b.drops.iter() {
            let rl = labels(&[
                ("session", b.name.clone()),
                ("reason", reason.name().into()),
            ]);
            dropped.get_or_create(&rl).inc_by(n);
        }
        if let Some(d) = b.session.detection_time {
            detection.get_or_create(&l).set(d.as_secs_f64());
        }
        if let Some(d) = b.session.tx_interval {
            tx.get_or_create(&l).set(d.as_secs_f64());
        }
    }
}

/// The text exposition of everything in `s`.
pub fn encode_metrics(s: &Sources<'_>) -> String {
    let mut registry = Registry::default();
    let packets = counter(
        &mut registry,
        "edge_dataplane_packets",
        "Packets by data-plane action and reason",
    );
    let svc_packets = counter(
        &mut registry,
        "edge_service_packets",
        "Service packets by path",
    );
    let svc_bytes = counter(&mut registry, "edge_service_bytes", "Service bytes by path");
    let peer_packets = counter(
        &mut registry,
        "edge_peer_packets",
        "Packets to and from overlay peers",
    );
    let peer_bytes = counter(
        &mut registry,
        "edge_peer_bytes",
        "Bytes to and from overlay peers",
    );
    if let Some(c) = &s.control.counters {
        for counter_name in edge_common::stats::Counter::ALL {
            packets
                .get_or_create(&labels(&[("counter", counter_name.name().into())]))
                .inc_by(c.totals.get(*counter_name));
        }
        for (name, id) in s.services {
            let Some(st) = c.services.get(id) else {
                continue;
            };
            for (path, p, b) in [
                ("local", st.local_packets, st.local_bytes),
                ("forwarded", st.forwarded_packets, st.forwarded_bytes),
                ("decapsulated", st.decap_packets, st.decap_bytes),
                ("unavailable", st.unavailable_packets, 0),
            ] {
                let l = labels(&[("service", name.clone()), ("path", path.into())]);
                svc_packets.get_or_create(&l).inc_by(p);
                svc_bytes.get_or_create(&l).inc_by(b);
            }
        }
        for ((peer, address), st) in c.peers.values() {
            for (direction, p, b) in [
                ("tx", st.tx_packets, st.tx_bytes),
                ("rx", st.rx_packets, st.rx_bytes),
            ] {
                let l = labels(&[
                    ("peer", peer.to_string()),
                    ("address", address.to_string()),
                    ("direction", direction.into()),
                ]);
                peer_packets.get_or_create(&l).inc_by(p);
                peer_bytes.get_or_create(&l).inc_by(b);
            }
        }
    }
    let up = gauge(
        &mut registry,
        "edge_upstream_up",
        "Upstream BGP session Established (1) or not (0)",
    );
    let established = counter(
        &mut registry,
        "edge_upstream_established",
        "Times the upstream session became Established",
    );
    let updates = counter(
        &mut registry,
        "edge_upstream_updates_sent",
        "UPDATE messages sent upstream",
    );
    for (neighbor, st) in &s.upstream {
        let l = labels(&[("neighbor", neighbor.clone())]);
        up.get_or_create(&l)
            .set(f64::from(u8::from(st.established_since.is_some())));
        established.get_or_create(&l).inc_by(st.established_count);
        updates.get_or_create(&l).inc_by(st.updates_sent);
    }
    encode_bfd(&mut registry, s);
    let adjacency = gauge(
        &mut registry,
        "edge_overlay_adjacency",
        "Overlay adjacency state (1 for the current one)",
    );
    let adj_established = counter(
        &mut registry,
        "edge_overlay_established",
        "Times the adjacency became Established",
    );
    let routes = gauge(
        &mut registry,
        "edge_overlay_routes",
        "Routes accepted from the peer",
    );
    let rejected = counter(
        &mut registry,
        "edge_overlay_rejected",
        "Routes rejected from the peer, by reason",
    );
    for (peer, a) in &s.overlay.adjacencies {
        for state in [
            AdjState::Candidate,
            AdjState::Connecting,
            AdjState::Authenticated,
            AdjState::Established,
            AdjState::Down,
        ] {
            adjacency
                .get_or_create(&labels(&[
                    ("peer", peer.to_string()),
                    ("state", state.name().into()),
                ]))
                .set(f64::from(u8::from(a.state == state)));
        }
        let l = labels(&[("peer", peer.to_string())]);
        adj_established
            .get_or_create(&l)
            .inc_by(a.established_count);
        routes.get_or_create(&l).set(a.routes as f64);
        for (reason, n) in &a.rejected {
            rejected
                .get_or_create(&labels(&[
                    ("peer", peer.to_string()),
                    ("reason", reason.name().into()),
                ]))
                .inc_by(*n);
        }
    }
    let refused = counter(
        &mut registry,
        "edge_overlay_refused",
        "Overlay connections refused, by reason",
    );
    for (reason, n) in &s.overlay.refused {
        refused
            .get_or_create(&labels(&[("reason", reason.to_string())]))
            .inc_by(*n);
    }
    admission(&mut registry, &s.overlay.admission);
    let health = gauge(
        &mut registry,
        "edge_service_health",
        "Effective service health (1 for the current state)",
    );
    let latency = gauge(
        &mut registry,
        "edge_probe_latency_seconds",
        "Latency of the last probe",
    );
    let rounds = counter(&mut registry, "edge_probe_rounds", "Probe rounds");
    let failed = counter(
        &mut registry,
        "edge_probe_failed_rounds",
        "Failed probe rounds",
    );
    for (name, h) in s.health {
        for state in ["up", "draining", "down"] {
            health
                .get_or_create(&labels(&[
                    ("service", name.clone()),
                    ("state", state.into()),
                ]))
                .set(f64::from(u8::from(h.effective.to_string() == state)));
        }
        for (i, r) in h.last_results.iter().enumerate() {
            let probe = h.probes.get(i).cloned().unwrap_or_else(|| i.to_string());
            latency
                .get_or_create(&labels(&[("service", name.clone()), ("probe", probe)]))
                .set(r.latency.as_secs_f64());
        }
        let l = labels(&[("service", name.clone())]);
        rounds.get_or_create(&l).inc_by(h.counters.rounds);
        failed.get_or_create(&l).inc_by(h.counters.failed_rounds);
    }
    let decisions = Counter::<u64>::default();
    decisions.inc_by(s.control.decisions);
    registry.register(
        "edge_control_decisions",
        "Control-loop decisions",
        decisions,
    );
    let apply = GaugeF64::default();
    apply.set(s.control.last_apply.map_or(0.0, |d| d.as_secs_f64()));
    registry.register(
        "edge_control_apply_seconds",
        "Time the last applied change took",
        apply,
    );
    let desired = s.control.desired.as_ref();
    let fit = GaugeF64::default();
    fit.set(f64::from(u8::from(desired.is_some_and(|d| d.fit.is_ok()))));
    registry.register(
        "edge_node_fit",
        "The node is fit for the Internet announcement",
        fit,
    );
    let announcement = gauge(
        &mut registry,
        "edge_node_announcement",
        "The upstream announcement (1 for the current one)",
    );
    for (state, name) in [
        (Announce::Announce, "announce"),
        (Announce::Drain, "drain"),
        (Announce::Withdraw, "withdraw"),
    ] {
        announcement
            .get_or_create(&labels(&[("state", name.into())]))
            .set(f64::from(u8::from(
                desired.map(|d| d.upstream) == Some(state),
            )));
    }
    if let Some(dns) = &s.dns {
        encode_dns(&mut registry, dns);
    }
    let mut out = String::new();
    // Encoding into a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

/// The DNS service's families.
fn encode_dns(registry: &mut Registry, dns: &super::status::DnsDoc) {
    let listening = GaugeF64::default();
    registry.register(
        "edge_dns_listening",
        "Whether the DNS service's listeners are up",
        listening.clone(),
    );
    listening.set(f64::from(u8::from(dns.listening)));
    let queries = counter(registry, "edge_dns_queries", "DNS queries received");
    for (transport, n) in &dns.queries {
        queries
            .get_or_create(&labels(&[("transport", transport.clone())]))
            .inc_by(*n);
    }
    let responses = counter(registry, "edge_dns_responses", "DNS responses by outcome");
    for (outcome, n) in &dns.responses {
        responses
            .get_or_create(&labels(&[("outcome", outcome.clone())]))
            .inc_by(*n);
    }
    let truncated = Counter::<u64>::default();
    registry.register(
        "edge_dns_truncated",
        "DNS responses truncated (TC=1) to fit the client's UDP size",
        truncated.clone(),
    );
    truncated.inc_by(dns.truncated);
    let limited = counter(
        registry,
        "edge_dns_rate_limited",
        "UDP responses held back by rate limiting, dropped or slipped (sent empty with TC=1)",
    );
    for (action, n) in [
        ("dropped", dns.rate_limited_dropped),
        ("slipped", dns.rate_limited_slipped),
    ] {
        limited
            .get_or_create(&labels(&[("action", action.into())]))
            .inc_by(n);
    }
    let ignored = Counter::<u64>::default();
    registry.register(
        "edge_dns_ignored",
        "DNS messages that got no response (no header, or not a query)",
        ignored.clone(),
    );
    ignored.inc_by(dns.ignored);
    let serial = gauge(
        registry,
        "edge_dns_zone_serial",
        "The SOA serial of each zone served",
    );
    for z in &dns.zones {
        serial
            .get_or_create(&labels(&[("zone", z.origin.clone())]))
            .set(f64::from(z.serial));
    }
}

/// Serves `GET /metrics` on `listener`; each scrape asks `scrape` for the
/// current text.
pub async fn serve(listener: TcpListener, scrape: mpsc::Sender<oneshot::Sender<String>>) {
    loop {
        let (mut stream, _) = crate::net::tcp::next_connection(&listener).await;
        let scrape = scrape.clone();
        tokio::spawn(async move {
            let mut request = Vec::with_capacity(1024);
            let mut buf = [0u8; 1024];
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let first = request.split(|b| *b == b'\n').next().unwrap_or_default();
            let (status, body) = if first.starts_with(b"GET /metrics ") {
                let (tx, rx) = oneshot::channel();
                match scrape.send(tx).await {
                    Ok(()) => ("200 OK", rx.await.unwrap_or_default()),
                    Err(_) => ("503 Service Unavailable", "the agent is stopping\n".into()),
                }
            } else {
                ("404 Not Found", "only /metrics is here\n".into())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// The control endpoint's admission: handshakes let start and in
/// progress per class, their limits, and connections closed at once.
fn admission(registry: &mut Registry, a: &crate::overlay::admission::AdmissionStatus) {
    use crate::overlay::admission::Class;
    let admitted = counter(
        registry,
        "edge_overlay_handshakes_admitted",
        "Handshakes let start on the overlay control endpoint, by class (candidate, stranger)",
    );
    let active = gauge(
        registry,
        "edge_overlay_handshakes_active",
        "Handshakes in progress on the overlay control endpoint, by class",
    );
    let limit = gauge(
        registry,
        "edge_overlay_handshakes_limit",
        "Most handshakes in progress at once on the overlay control endpoint, by class",
    );
    let denied = counter(
        registry,
        "edge_overlay_admission_denied",
        "Connections to the overlay control endpoint closed without a handshake, by reason",
    );
    let name = |c: Class| match c {
        Class::Candidate => "candidate",
        Class::Stranger => "stranger",
    };
    let config = a.config.clone().unwrap_or_default();
    for class in [Class::Candidate, Class::Stranger] {
        let l = labels(&[("class", name(class).into())]);
        admitted
            .get_or_create(&l)
            .inc_by(a.admitted.get(&class).copied().unwrap_or(0));
        active
            .get_or_create(&l)
            .set(a.active.get(&class).copied().unwrap_or(0) as f64);
        let max = match class {
            Class::Candidate => config.candidate_handshakes,
            Class::Stranger => config.stranger_handshakes,
        };
        limit.get_or_create(&l).set(max as f64);
    }
    for (reason, n) in &a.denied {
        denied
            .get_or_create(&labels(&[("reason", reason.to_string())]))
            .inc_by(*n);
    }
}
