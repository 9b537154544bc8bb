//! The config file exactly as written: one struct per TOML table, every
//! key optional and every value in its TOML type (addresses, durations and
//! choices are still strings). Deserializing this can fail only on TOML
//! syntax and on a value of the wrong TOML type; everything else (missing
//! keys, bad addresses, ranges, references) is checked by the builder,
//! which reports every problem with its key. Unknown keys are collected
//! while deserializing (see [`super::parse_with`]), not rejected one by
//! one, so that all of them are reported too.

use std::fmt;

use serde::{
    Deserialize, Deserializer,
    de::{self, MapAccess, Visitor},
};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct File {
    pub node: Node,
    pub services: Vec<Service>,
    pub policy: Policy,
    pub upstream: Vec<Upstream>,
    pub overlay: Overlay,
    pub netlink: Netlink,
    pub dns: Option<Dns>,
    pub daemon: Daemon,
    pub bfd: Bfd,
    pub doors: Doors,
}

/// `[node]`: who this node is and how its data plane runs.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Node {
    pub name: Option<String>,
    pub identity: Option<Vec<String>>,
    pub internet_interface: Option<String>,
    pub xdp_mode: Option<String>,
    pub underlay: Option<Vec<String>>,
    pub anycast: Option<Vec<String>>,
    pub asn: Option<i64>,
    pub mtu: Option<i64>,
    pub encap: Option<String>,
    pub gue_port: Option<i64>,
    pub maglev_size: Option<i64>,
    pub flow_entries: Option<i64>,
}

/// `[[services]]`: one service.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Service {
    pub name: Option<String>,
    pub id: Option<i64>,
    pub vips: Option<Vec<String>>,
    pub ports: Option<Vec<String>>,
    pub unavailable: Option<String>,
    pub probes: Vec<Probe>,
    pub health: Health,
}

/// An HTTP status given as a number (`200`) or a range (`"200-399"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Status {
    Code(i64),
    Range(String),
}

/// `[[services.probes]]`: one probe; which keys apply depends on `kind`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Probe {
    pub kind: Option<String>,
    // tcp
    pub address: Option<String>,
    // http
    pub url: Option<String>,
    pub expect_status: Option<Status>,
    pub body_contains: Option<String>,
    pub host: Option<String>,
    pub resolve_to: Option<String>,
    pub ca_file: Option<String>,
    pub insecure_skip_verify: Option<bool>,
    // dns
    pub server: Option<String>,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub record_type: Option<String>,
    pub expect_rcode: Option<String>,
    pub expect_answer: Option<String>,
    // exec
    pub command: Option<Vec<String>>,
}

/// `[services.health]`: the timing of a service's checks.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Health {
    pub interval: Option<String>,
    pub fast_interval: Option<String>,
    pub timeout: Option<String>,
    pub slow_threshold: Option<String>,
    pub rise: Option<i64>,
    pub fall: Option<i64>,
    pub jitter_percent: Option<i64>,
    pub stagger: Option<bool>,
    pub initial: Option<String>,
}

/// `[policy]`: node fitness and the upstream announcement.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Policy {
    pub required_services: Option<Vec<String>>,
    pub drain_period: Option<String>,
    pub hold_down: Option<String>,
    pub hold_down_max: Option<String>,
    pub stable_after: Option<String>,
    pub drain_prepend: Option<i64>,
}

/// `[[upstream]]`: one upstream BGP neighbour.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Upstream {
    pub name: Option<String>,
    pub address: Option<String>,
    pub port: Option<i64>,
    pub asn: Option<i64>,
    pub local_address: Option<String>,
    pub md5_key: Option<String>,
    pub md5_key_file: Option<String>,
    pub hold_time: Option<i64>,
    pub connect_retry: Option<String>,
    pub passive: Option<bool>,
    pub graceful_restart: Option<String>,
    pub families: Option<Vec<String>>,
    pub max_prefixes: Option<i64>,
    pub bfd: Option<BfdSetting>,
}

/// `[bfd]` (the defaults of upstream BFD sessions), and the table form of
/// `bfd` under `[[upstream]]` and `[overlay]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Bfd {
    pub min_tx: Option<String>,
    pub min_rx: Option<String>,
    pub multiplier: Option<i64>,
    pub auth: Option<BfdAuth>,
}

/// `auth` of a BFD table: the session's key.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct BfdAuth {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub key_id: Option<i64>,
    pub secret: Option<String>,
    pub secret_file: Option<String>,
}

/// `bfd` under `[[upstream]]` or `[overlay]`: on or off, or a table of
/// settings (which turns it on).
///
/// Deserialized by hand rather than with `#[serde(untagged)]`: an
/// untagged enum buffers the value and tries each variant on the copy,
/// out of sight of the `serde_ignored` wrapper, so a typo inside the
/// table would be dropped silently instead of reported.
#[derive(Debug)]
pub(super) enum BfdSetting {
    On(bool),
    Table(Bfd),
}

impl<'de> Deserialize<'de> for BfdSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Setting;
        impl<'de> Visitor<'de> for Setting {
            type Value = BfdSetting;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a table of BFD settings")
            }

            fn visit_bool<E: de::Error>(self, on: bool) -> Result<BfdSetting, E> {
                Ok(BfdSetting::On(on))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BfdSetting, A::Error> {
                // The map as given, so unknown keys are still seen.
                Bfd::deserialize(de::value::MapAccessDeserializer::new(map)).map(BfdSetting::Table)
            }
        }
        deserializer.deserialize_any(Setting)
    }
}

/// `[overlay]`: the authenticated overlay between edge nodes.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Overlay {
    pub listen: Option<String>,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub crl: Option<String>,
    pub allow: Option<Vec<String>>,
    pub identity_ranges: Option<Vec<String>>,
    pub service_ranges: Option<Vec<String>>,
    pub private_ranges: Option<Vec<String>>,
    pub max_routes: Option<i64>,
    pub hold_time: Option<i64>,
    pub handshake_timeout: Option<String>,
    pub max_handshakes: Option<i64>,
    pub trust_check: Option<String>,
    pub backoff_min: Option<String>,
    pub backoff_max: Option<String>,
    pub private_address: Option<String>,
    pub private_to: Option<Vec<String>>,
    pub peers: Vec<Peer>,
    pub discovery: Discovery,
    pub bfd: Option<BfdSetting>,
    pub strangers: Strangers,
}

/// `[[overlay.peers]]`: a static candidate.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Peer {
    pub identity: Option<String>,
    pub address: Option<String>,
}

/// `[overlay.discovery]`: DNS SRV discovery.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Discovery {
    pub srv: Option<Vec<String>>,
    pub resolvers: Option<Vec<String>>,
    pub refresh: Option<String>,
}

/// `[overlay.strangers]`: what addresses the overlay does not know may
/// start on the control endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Strangers {
    pub handshakes: Option<i64>,
    pub per_source: Option<i64>,
    pub rate: Option<i64>,
    pub burst: Option<i64>,
    pub first_flight: Option<String>,
    pub timeout: Option<String>,
    pub ipv4_prefix: Option<i64>,
    pub ipv6_prefix: Option<i64>,
}

/// `[netlink]`: the kernel state the agent owns.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Netlink {
    pub interface: Option<String>,
    pub table: Option<i64>,
    pub protocol: Option<i64>,
    pub period: Option<String>,
    pub vips: Option<String>,
    pub keep_state: Option<bool>,
}

/// `[dns]`: the authoritative DNS service.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Dns {
    pub service: Option<String>,
    pub port: Option<i64>,
    pub udp_payload: Option<i64>,
    pub nsid: Option<String>,
    pub tcp_idle_timeout: Option<String>,
    pub tcp_max_connections: Option<i64>,
    pub rate_limit: DnsRateLimit,
    pub zones: Vec<DnsZone>,
}

/// `[dns.rate_limit]`: response-rate limiting per client prefix.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct DnsRateLimit {
    pub responses_per_second: Option<i64>,
    pub burst: Option<i64>,
    pub slip: Option<i64>,
    pub ipv4_prefix: Option<i64>,
    pub ipv6_prefix: Option<i64>,
    pub max_prefixes: Option<i64>,
}

/// `[[dns.zones]]`: one zone, from a file or from zone-file lines.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct DnsZone {
    pub origin: Option<String>,
    pub file: Option<String>,
    pub records: Option<Vec<String>>,
    pub ttl: Option<String>,
}

/// `[doors]`: the XDP program's policy for the agent's own ports.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Doors {
    pub enabled: Option<bool>,
    pub syn_rate: Option<i64>,
    pub syn_burst: Option<i64>,
    pub ipv4_prefix: Option<i64>,
    pub ipv6_prefix: Option<i64>,
}

/// `[daemon]`: the process itself.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Daemon {
    pub api_socket: Option<String>,
    pub metrics: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    pub pin_dir: Option<String>,
}
