//! The control function: one pure function from everything the node knows
//! (its configuration, the measured health of its local services, the
//! operator's admin state, the overlay RIB, the Internet interface) to the
//! state everything else must be in: the data plane's service entries
//! (local bit and remote backends, from which the Maglev tables are
//! built), its peers and trusted sources, what the overlay advertises,
//! what the netlink reconciler installs, and the upstream announcement.
//!
//! Service-level failures never reach Internet BGP: they change the local
//! bit, the overlay advertisement and, through the overlay, the other
//! nodes' tables. Only node fitness (can the node serve or forward the
//! required services, is the Internet interface up, has the operator
//! drained it) drives the upstream announcement, through [`Fitness`].

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    time::Instant,
};

use super::fitness::{Announce, Fitness, FitnessPolicy};
use crate::{
    bgp::{message::Prefix, rib_out::OriginAttrs},
    dataplane::{DoorsSpec, Encap, ServiceMatch},
    health::Effective,
    netlink::desired::{Inputs as NetlinkInputs, PeerPaths, VipAddresses},
    overlay::{identity::Identity, status::OverlayStatus},
};

/// One service the node runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Its name (health checks and logs).
    pub name: String,
    /// Its data-plane id (`0..MAX_SERVICES`).
    pub id: u32,
    /// What traffic it is: VIPs, protocols, ports.
    pub matches: Vec<ServiceMatch>,
    /// With neither local nor remote capacity: drop (else pass, so the
    /// kernel answers with a reset or an ICMP error).
    pub drop_when_unavailable: bool,
}

impl ServiceConfig {
    /// Its VIPs, each once, in order.
    pub fn vips(&self) -> Vec<IpAddr> {
        let mut vips: Vec<IpAddr> = Vec::new();
        for m in &self.matches {
            if !vips.contains(&m.vip) {
                vips.push(m.vip);
            }
        }
        vips
    }
}

/// The control function's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlConfig {
    /// The services.
    pub services: Vec<ServiceConfig>,
    /// The services the node must be able to serve or forward to be fit
    /// for the Internet announcement; empty: at least one of them.
    pub required: Vec<String>,
    /// The anycast prefixes announced upstream.
    pub anycast: Vec<Prefix>,
    /// Our node identity addresses.
    pub node_addrs: Vec<IpAddr>,
    /// Encapsulation toward peers.
    pub encap: Encap,
    /// Which VIPs the agent's interface holds.
    pub vip_addresses: VipAddresses,
    /// Fitness timers.
    pub fitness: FitnessPolicy,
    /// The XDP program's policy for the agent's own ports (`None`: the
    /// program leaves them alone).
    pub doors: Option<DoorsSpec>,
    /// Sources always let through those doors: the upstream neighbours
    /// and the configured overlay peers' addresses.
    pub door_sources: BTreeSet<IpAddr>,
}

/// Everything the control function looks at.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    /// Effective state per service name (missing: down).
    pub local: &'a BTreeMap<String, Effective>,
    /// The operator drained the node.
    pub drained: bool,
    /// The overlay's view (services by VIP, trusted sources, identities,
    /// adjacencies).
    pub overlay: &'a OverlayStatus,
    /// The Internet interface is up (`None`: unknown or missing, treated
    /// as down).
    pub internet_up: Option<bool>,
    /// Some path to an upstream router is alive as far as BFD can tell:
    /// false only once every upstream session runs BFD and each has
    /// failed and is not back up. Unfit then, a node comes back through
    /// the hold-down, so a flapping link is damped like any other flap.
    pub upstream_paths: bool,
    /// Now.
    pub now: Instant,
}

/// A peer of the data plane: an overlay peer at one address.
pub type PeerKey = (Identity, IpAddr);

/// One service as the data plane must have it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceState {
    /// Served locally.
    pub local: bool,
    /// Remote peers serving it, each with the address to encapsulate
    /// toward (the Maglev table is built from these, equally weighted).
    pub backends: BTreeSet<PeerKey>,
}

/// The state everything must be in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Per service id.
    pub services: BTreeMap<u32, ServiceState>,
    /// Data-plane peers (every backend and every trusted source).
    pub peers: BTreeSet<PeerKey>,
    /// Outer sources the data plane may decapsulate from, with their peer.
    pub trusted: BTreeMap<IpAddr, PeerKey>,
    /// VIPs the overlay advertises.
    pub advertise: BTreeSet<IpAddr>,
    /// What the netlink reconciler installs.
    pub netlink: NetlinkInputs,
    /// Whether the node is fit, and why not.
    pub fit: Result<(), String>,
    /// The upstream announcement of every anycast prefix.
    pub upstream: Announce,
    /// The attributes the upstream announcement carries.
    pub upstream_attrs: OriginAttrs,
    /// Sources the data plane lets through the agent's doors: the
    /// configured ones, the overlay's candidates and trusted sources
    /// (empty without doors).
    pub door_sources: BTreeSet<IpAddr>,
}

/// The control function. `fitness` is the flap history the upstream
/// announcement depends on; it is the one piece of state carried from one
/// decision to the next.
pub fn decide(config: &ControlConfig, inputs: &Inputs<'_>, fitness: &mut Fitness) -> Desired {
    let local = |name: &str| inputs.local.get(name).copied().unwrap_or(Effective::Down);
    let overlay = inputs.overlay;
    let mut services = BTreeMap::new();
    let mut peers = BTreeSet::new();
    let mut advertise = BTreeSet::new();
    let mut servable = BTreeSet::new();
    for service in &config.services {
        let vips = service.vips();
        let state = local(&service.name);
        if state == Effective::Up {
            advertise.extend(&vips);
        }
        // A peer serves the service if it advertises every VIP of it; the
        // traffic goes to its address for the first VIP.
        let mut backends = BTreeSet::new();
        if let Some((first, rest)) = vips.split_first() {
            for (peer, target) in overlay.services.get(first).into_iter().flatten() {
                if rest.iter().all(|v| {
                    overlay
                        .services
                        .get(v)
                        .is_some_and(|p| p.contains_key(peer))
                }) {
                    backends.insert((peer.clone(), *target));
                }
            }
        }
        let local_bit = matches!(state, Effective::Up | Effective::Draining);
        if local_bit || !backends.is_empty() {
            servable.insert(service.name.clone());
        }
        peers.extend(backends.iter().cloned());
        services.insert(
            service.id,
            ServiceState {
                local: local_bit,
                backends,
            },
        );
    }
    let trusted: BTreeMap<IpAddr, PeerKey> = overlay
        .trusted_sources
        .iter()
        .map(|(addr, peer)| (*addr, (peer.clone(), *addr)))
        .collect();
    peers.extend(trusted.values().cloned());
    let fit = fitness_of(config, &servable, inputs.internet_up, inputs.upstream_paths);
    let upstream = fitness.update(&config.fitness, fit.is_ok(), inputs.drained, inputs.now);
    let upstream_attrs = match upstream {
        Announce::Drain => OriginAttrs {
            graceful_shutdown: true,
            prepend: config.fitness.drain_prepend,
            ..OriginAttrs::default()
        },
        Announce::Announce | Announce::Withdraw => OriginAttrs::default(),
    };
    Desired {
        services,
        peers,
        trusted,
        advertise,
        netlink: netlink_inputs(config, inputs),
        fit,
        upstream,
        upstream_attrs,
        door_sources: door_sources(config, overlay),
    }
}

/// Who may knock on the agent's own ports: whom the config names, whom
/// the overlay counts as a candidate, and every trusted peer. Being
/// listed only lets a source reach the port; authentication (TLS, the
/// BGP neighbour list, BFD's keys) still decides.
fn door_sources(config: &ControlConfig, overlay: &OverlayStatus) -> BTreeSet<IpAddr> {
    if config.doors.is_none() {
        return BTreeSet::new();
    }
    let mut sources = config.door_sources.clone();
    sources.extend(&overlay.candidates);
    sources.extend(overlay.trusted_sources.keys());
    sources
}

/// Fit: the Internet interface is up, some upstream path is alive, and
/// every required service (or, with none configured, at least one
/// service) can be served here or forwarded.
fn fitness_of(
    config: &ControlConfig,
    servable: &BTreeSet<String>,
    internet_up: Option<bool>,
    upstream_paths: bool,
) -> Result<(), String> {
    if internet_up != Some(true) {
        return Err("the Internet interface is down".into());
    }
    if !upstream_paths {
        return Err("BFD found the path to every upstream router down".into());
    }
    if config.required.is_empty() {
        if servable.is_empty() && !config.services.is_empty() {
            return Err("no service can be served here or forwarded".into());
        }
        return Ok(());
    }
    let missing: Vec<&str> = config
        .required
        .iter()
        .filter(|r| !servable.contains(*r))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "required services can be neither served nor forwarded: {}",
            missing.join(", ")
        ))
    }
}

/// What the kernel must hold: our addresses and VIPs, and the paths toward
/// every established peer.
fn netlink_inputs(config: &ControlConfig, inputs: &Inputs<'_>) -> NetlinkInputs {
    let overlay = inputs.overlay;
    let vips: Vec<IpAddr> = config.services.iter().flat_map(|s| s.vips()).collect();
    let healthy_vips = config
        .services
        .iter()
        .filter(|s| inputs.local.get(&s.name) == Some(&Effective::Up))
        .flat_map(|s| s.vips())
        .collect();
    let mut next_hops: BTreeMap<&Identity, BTreeSet<IpAddr>> = BTreeMap::new();
    for peers in overlay.services.values() {
        for (peer, target) in peers {
            next_hops.entry(peer).or_default().insert(*target);
        }
    }
    let peers = overlay
        .adjacencies
        .iter()
        .filter(|(_, a)| a.state == crate::overlay::adjacency::AdjState::Established)
        .map(|(peer, adjacency)| {
            let mut hops: BTreeSet<IpAddr> = next_hops.remove(peer).unwrap_or_default();
            hops.extend(adjacency.transport);
            // The private address is a next hop of its own.
            if let Some(private) = adjacency.private_in_use {
                hops.remove(&private);
            }
            PeerPaths {
                identities: overlay
                    .identities
                    .get(peer)
                    .map(|a| a.iter().copied().collect())
                    .unwrap_or_default(),
                next_hops: hops.into_iter().collect(),
                private: adjacency.private_in_use,
            }
        })
        .collect();
    NetlinkInputs {
        node_addrs: config.node_addrs.clone(),
        vips,
        healthy_vips,
        vip_addresses: config.vip_addresses,
        peers,
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
