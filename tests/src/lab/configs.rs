//! What the lab's programs are told: BIRD's config for the two ISP
//! routers, and each edge node's TOML config (the daemon's real format).

use std::path::Path;

/// One PoP of the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pop {
    /// Its name (`pop-a`), also its namespace and identity.
    pub name: &'static str,
    /// Its node identity (192.0.2.n).
    pub identity: &'static str,
    /// Its underlay address on `eth0`.
    pub underlay: &'static str,
    /// Its ISP router's address on their link.
    pub gateway: &'static str,
    /// Which ISP it hangs off.
    pub isp: &'static str,
    /// The ISP side's interface name.
    pub isp_dev: &'static str,
    /// The ISP side's address (with length).
    pub isp_addr: &'static str,
    /// Its own address (with length).
    pub addr: &'static str,
}

/// The three PoPs: A behind ISP 1, B and C behind ISP 2.
pub const POPS: [Pop; 3] = [
    Pop {
        name: "pop-a",
        identity: "192.0.2.1",
        underlay: "198.51.100.2",
        gateway: "198.51.100.1",
        isp: "isp1",
        isp_dev: "i1-a",
        isp_addr: "198.51.100.1/30",
        addr: "198.51.100.2/30",
    },
    Pop {
        name: "pop-b",
        identity: "192.0.2.2",
        underlay: "198.51.100.6",
        gateway: "198.51.100.5",
        isp: "isp2",
        isp_dev: "i2-b",
        isp_addr: "198.51.100.5/30",
        addr: "198.51.100.6/30",
    },
    Pop {
        name: "pop-c",
        identity: "192.0.2.3",
        underlay: "198.51.100.10",
        gateway: "198.51.100.9",
        isp: "isp2",
        isp_dev: "i2-c",
        isp_addr: "198.51.100.9/30",
        addr: "198.51.100.10/30",
    },
];

/// The rogue node: behind ISP 1, with a certificate from another CA.
pub const ROGUE: Pop = Pop {
    name: "rogue",
    identity: "192.0.2.9",
    underlay: "198.51.100.14",
    gateway: "198.51.100.13",
    isp: "isp1",
    isp_dev: "i1-r",
    isp_addr: "198.51.100.13/30",
    addr: "198.51.100.14/30",
};

/// The ISPs: (name, ASN, router id, address toward the other ISP).
pub const ISPS: [(&str, u32, &str, &str); 2] = [
    ("isp1", 64496, "198.51.100.97", "198.51.100.97/30"),
    ("isp2", 64497, "198.51.100.98", "198.51.100.98/30"),
];

/// The anycast prefix and the VIPs.
pub const ANYCAST: &str = "203.0.113.0/24";
/// The web VIP.
pub const WEB_VIP: &str = "203.0.113.10";
/// The DNS VIP.
pub const DNS_VIP: &str = "203.0.113.53";
/// The zone the PoPs' DNS service answers.
pub const ZONE: &str = "cdn.test";
/// The key of the BFD sessions between the ISPs and their PoPs
/// (Meticulous Keyed SHA1, key ID 1).
pub const BFD_SECRET: &str = "edge-lab-bfd";

/// The zone every PoP's agent serves, the same everywhere: its names point
/// at the anycast VIPs, and BGP picks the PoP.
pub fn dns_zone() -> String {
    let records = [
        "@ 3600 SOA ns1 hostmaster 2026112201 7200 3600 1209600 300".to_owned(),
        "@ NS ns1".to_owned(),
        format!("ns1 A {DNS_VIP}"),
        format!("www A {WEB_VIP}"),
        "static CNAME www".to_owned(),
        "@ TXT \"edge lab\"".to_owned(),
    ];
    let lines: Vec<String> = records.iter().map(|r| format!("  {r:?},\n")).collect();
    format!(
        "[[dns.zones]]\norigin = \"{ZONE}\"\nttl = \"1m\"\nrecords = [\n{}]\n",
        lines.concat()
    )
}

/// BIRD's config for ISP `isp`: its PoPs as eBGP neighbours (the anycast
/// prefix only, GRACEFUL_SHUTDOWN honoured with local preference 0,
/// guarded by BFD at 100 ms × 3), the other ISP as a full eBGP peer,
/// connected networks and the best routes installed in the kernel.
pub fn bird(isp: &str) -> String {
    let (_, asn, router_id, _) = ISPS.iter().find(|i| i.0 == isp).copied().unwrap_or(ISPS[0]);
    let (other, other_asn, other_addr, _) =
        ISPS.iter().find(|i| i.0 != isp).copied().unwrap_or(ISPS[1]);
    let mut config = format!(
        "router id {router_id};\n\
         protocol device {{ scan time 1; }}\n\
         protocol direct {{ ipv4; interface \"*\"; }}\n\
         protocol kernel {{ ipv4 {{ import none; export where source = RTS_BGP; }}; }}\n\
         filter from_edge {{\n  if net != {ANYCAST} then reject;\n  \
         if (65535, 0) ~ bgp_community then bgp_local_pref = 0;\n  accept;\n}}\n\
         protocol bgp {other} {{\n  local {router_id} as {asn};\n  neighbor {other_addr} as {other_asn};\n  \
         hold time 9;\n  connect retry time 1;\n  ipv4 {{ import all; export all; }};\n}}\n"
    );
    config.push_str(&crate::bfd::bird_protocol("i*", BFD_SECRET));
    for pop in POPS.iter().chain([&ROGUE]).filter(|p| p.isp == isp) {
        config.push_str(&format!(
            "protocol bgp {name} {{\n  local {gw} as {asn};\n  neighbor {addr} as 64500;\n  hold time 9;\n  \
             connect retry time 1;\n  error wait time 1, 5;\n  graceful restart on;\n  bfd on;\n  \
             ipv4 {{ import filter from_edge; export none; }};\n}}\n",
            name = pop.name.replace('-', "_"),
            gw = pop.gateway,
            addr = pop.underlay,
        ));
    }
    config
}

/// The edge-agent config of `pop`, with its files in `dir` (PKI in `pki`).
pub fn agent(pop: &Pop, dir: &Path, pki: &Path) -> String {
    let peers: String = POPS
        .iter()
        .filter(|p| p.name != pop.name)
        .map(|p| {
            format!(
                "[[overlay.peers]]\nidentity = \"edge://{}\"\naddress = \"{}:4179\"\n",
                p.name, p.underlay
            )
        })
        .collect();
    let health = "[services.health]\ninterval = \"200ms\"\nfast_interval = \"100ms\"\ntimeout = \"300ms\"\nslow_threshold = \"300ms\"\nrise = 2\nfall = 2\n";
    let upstream = if pop.name == ROGUE.name {
        String::new()
    } else {
        format!(
            "[bfd]\nmin_tx = \"100ms\"\nmin_rx = \"100ms\"\nmultiplier = 3\n\
             auth = {{ type = \"meticulous-keyed-sha1\", key_id = 1, secret = \"{BFD_SECRET}\" }}\n\n\
             [[upstream]]\nname = \"{isp}\"\naddress = \"{gw}\"\nasn = {asn}\nhold_time = 9\nconnect_retry = \"1s\"\ngraceful_restart = \"60s\"\nbfd = true\n",
            isp = pop.isp,
            gw = pop.gateway,
            asn = ISPS.iter().find(|i| i.0 == pop.isp).map_or(64496, |i| i.1),
        )
    };
    format!(
        r#"# edge lab: {name}
[node]
name = "{name}"
identity = ["{identity}"]
internet_interface = "eth0"
xdp_mode = "native"
underlay = ["{underlay}"]
anycast = ["{ANYCAST}"]
asn = 64500

[[services]]
name = "web"
vips = ["{WEB_VIP}"]
ports = ["tcp/80"]
[[services.probes]]
kind = "http"
url = "http://{WEB_VIP}/health"
{health}
[[services]]
name = "dns"
vips = ["{DNS_VIP}"]
ports = ["udp/53", "tcp/53"]
[[services.probes]]
kind = "dns"
server = "{DNS_VIP}"
name = "www.{ZONE}"
{health}
[dns]
service = "dns"
{dns_zone}
[policy]
drain_period = "3s"
hold_down = "1s"
hold_down_max = "4s"

{upstream}
[overlay]
ca = "{pki}/ca.pem"
cert = "{pki}/{name}.pem"
key = "{pki}/{name}.key"
allow = ["edge://pop-a", "edge://pop-b", "edge://pop-c"]
identity_ranges = ["192.0.2.0/24"]
hold_time = 9
backoff_min = "200ms"
backoff_max = "2s"
trust_check = "2s"
{peers}
[netlink]
period = "5s"

[daemon]
api_socket = "{dir}/{name}.sock"
metrics = "127.0.0.1:9179"
pin_dir = "/sys/fs/bpf/edgelab/{name}"
"#,
        name = pop.name,
        dns_zone = dns_zone(),
        identity = pop.identity,
        underlay = pop.underlay,
        pki = pki.display(),
        dir = dir.display(),
    )
}
