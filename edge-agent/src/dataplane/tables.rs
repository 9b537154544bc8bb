//! Writing the data plane's tables and reading its per-service and per-peer
//! counters.
//!
//! The agent is the only writer. Updates are ordered so that a packet never
//! sees a half-written state:
//! - a service's new Maglev table is written into the slot the data plane is
//!   not using, and only then does one hash-map update (atomic for readers)
//!   flip the service entry to it;
//! - a peer must be set before a service lists it, and a service must stop
//!   listing a peer before the peer is removed (flows remembered on it are
//!   then re-chosen, because the peer's bit is no longer in the service).

use std::net::IpAddr;

use aya::maps::{Array, DevMapHash, HashMap, MapData, PerCpuArray};
use edge_common::{
    CONFIG_MAP, EGRESS_MAP, MAGLEV_MAP, PEER_STATS_MAP, PEERS_MAP, SERVICE_STATS_MAP, SERVICES_MAP,
    TRUSTED_MAP,
    maps::{
        AddrKey, Config, MAX_PEERS, MAX_SERVICES, PEER_WORDS, Peer, PeerStats,
        SERVICE_DROP_WHEN_UNAVAILABLE, SERVICE_LOCAL_HEALTHY, Service, ServiceKey, ServiceStats,
        Trusted,
    },
};

use super::{
    Dataplane, DataplaneError,
    spec::{NodeConfig, PeerSpec, ServiceMatch, ServiceSpec, addr_key},
};
use crate::maglev;

impl Dataplane {
    /// Map `name` of the object, for reading.
    pub(super) fn map_ref(&self, name: &'static str) -> Result<&aya::maps::Map, DataplaneError> {
        self.ebpf
            .map(name)
            .ok_or(DataplaneError::MissingInObject { kind: "map", name })
    }

    /// Map `name` of the object, for writing.
    pub(super) fn map_data(
        &mut self,
        name: &'static str,
    ) -> Result<&mut aya::maps::Map, DataplaneError> {
        self.ebpf
            .map_mut(name)
            .ok_or(DataplaneError::MissingInObject { kind: "map", name })
    }

    fn services(&mut self) -> Result<HashMap<&mut MapData, ServiceKey, Service>, DataplaneError> {
        HashMap::try_from(self.map_data(SERVICES_MAP)?).map_err(DataplaneError::map(SERVICES_MAP))
    }

    /// Writes the node-wide settings. Only traffic to the anycast prefixes
    /// is looked up as service traffic from then on.
    pub fn set_config(&mut self, config: &NodeConfig) -> Result<(), DataplaneError> {
        let value = config
            .to_map(self.maglev_size)
            .map_err(DataplaneError::InvalidSpec)?;
        let mut map: Array<_, Config> =
            Array::try_from(self.map_data(CONFIG_MAP)?).map_err(DataplaneError::map(CONFIG_MAP))?;
        map.set(0, value, 0)
            .map_err(DataplaneError::map(CONFIG_MAP))?;
        self.node = Some(config.clone());
        Ok(())
    }

    /// Installs or updates a service: its matches, local health, policy, and
    /// the Maglev table of its backends (written before the switch to it).
    pub fn set_service(&mut self, spec: &ServiceSpec) -> Result<(), DataplaneError> {
        check_id("service", spec.id, MAX_SERVICES)?;
        let Some(first) = spec.matches.first() else {
            return Err(DataplaneError::InvalidSpec(format!(
                "service {} has no match",
                spec.id
            )));
        };
        let outside = spec
            .matches
            .iter()
            .find(|m| !self.node.as_ref().is_some_and(|n| n.is_anycast(m.vip)));
        if let Some(outside) = outside {
            return Err(DataplaneError::InvalidSpec(format!(
                "service {}: VIP {} is not inside the node's anycast prefixes (set them with set_config \
                 first): the data plane would never see its traffic as service traffic",
                spec.id, outside.vip
            )));
        }
        let mut peers = [0u64; PEER_WORDS];
        let mut backends = Vec::with_capacity(spec.backends.len());
        for b in &spec.backends {
            check_id("peer", b.peer, MAX_PEERS)?;
            if b.weight > 0 {
                peers[(b.peer / 64) as usize] |= 1 << (b.peer % 64);
            }
            backends.push(maglev::Backend {
                id: b.peer,
                key: b.identity.clone(),
                weight: b.weight,
            });
        }
        let table = maglev::build(&backends, self.maglev_size)
            .map_err(|e| DataplaneError::InvalidSpec(format!("service {}: {e}", spec.id)))?;

        // The slot the data plane is not reading now.
        let current = self.services()?.get(&first.to_key(), 0).ok();
        let slot = current.map_or(0, |s| (s.table & 1) ^ 1);
        let base = (spec.id * 2 + slot) * self.maglev_size;
        let mut maglev: Array<_, u32> =
            Array::try_from(self.map_data(MAGLEV_MAP)?).map_err(DataplaneError::map(MAGLEV_MAP))?;
        for (i, peer) in (0u32..).zip(&table) {
            maglev
                .set(base + i, peer, 0)
                .map_err(DataplaneError::map(MAGLEV_MAP))?;
        }

        let mut flags = 0;
        if spec.local_healthy {
            flags |= SERVICE_LOCAL_HEALTHY;
        }
        if spec.drop_when_unavailable {
            flags |= SERVICE_DROP_WHEN_UNAVAILABLE;
        }
        let peer_count = spec.backends.iter().filter(|b| b.weight > 0).count() as u32;
        let value = Service {
            id: spec.id,
            flags,
            table: slot,
            peer_count,
            peers,
        };
        let mut services = self.services()?;
        for m in &spec.matches {
            services
                .insert(m.to_key(), value, 0)
                .map_err(DataplaneError::map(SERVICES_MAP))?;
        }
        Ok(())
    }

    /// Sets only the local health of a service (all its matches).
    pub fn set_local_health(
        &mut self,
        matches: &[ServiceMatch],
        healthy: bool,
    ) -> Result<(), DataplaneError> {
        let mut services = self.services()?;
        for m in matches {
            let key = m.to_key();
            let mut value = services
                .get(&key, 0)
                .map_err(DataplaneError::map(SERVICES_MAP))?;
            value.flags = if healthy {
                value.flags | SERVICE_LOCAL_HEALTHY
            } else {
                value.flags & !SERVICE_LOCAL_HEALTHY
            };
            services
                .insert(key, value, 0)
                .map_err(DataplaneError::map(SERVICES_MAP))?;
        }
        Ok(())
    }

    /// Removes a service's matches: its traffic is then passed untouched.
    pub fn remove_service(&mut self, matches: &[ServiceMatch]) -> Result<(), DataplaneError> {
        let mut services = self.services()?;
        for m in matches {
            // Absent already is fine: removal is idempotent.
            let _ = services.remove(&m.to_key());
        }
        Ok(())
    }

    /// Sets peer `id`'s underlay address and encapsulation.
    pub fn set_peer(&mut self, id: u32, peer: PeerSpec) -> Result<(), DataplaneError> {
        self.write_peer(id, peer.to_map())
    }

    /// Clears peer `id` (remove it from every service first).
    pub fn remove_peer(&mut self, id: u32) -> Result<(), DataplaneError> {
        self.write_peer(id, Peer::default())
    }

    fn write_peer(&mut self, id: u32, value: Peer) -> Result<(), DataplaneError> {
        check_id("peer", id, MAX_PEERS)?;
        let mut map: Array<_, Peer> =
            Array::try_from(self.map_data(PEERS_MAP)?).map_err(DataplaneError::map(PEERS_MAP))?;
        map.set(id, value, 0)
            .map_err(DataplaneError::map(PEERS_MAP))
    }

    /// Trusts `source` (a peer's underlay address) to send encapsulated
    /// traffic to this node, on behalf of peer `peer`.
    pub fn trust(&mut self, source: IpAddr, peer: u32) -> Result<(), DataplaneError> {
        check_id("peer", peer, MAX_PEERS)?;
        let mut map: HashMap<_, AddrKey, Trusted> = HashMap::try_from(self.map_data(TRUSTED_MAP)?)
            .map_err(DataplaneError::map(TRUSTED_MAP))?;
        map.insert(addr_key(source), Trusted { peer }, 0)
            .map_err(DataplaneError::map(TRUSTED_MAP))
    }

    /// Stops trusting `source`: its encapsulated traffic is dropped from now on.
    pub fn untrust(&mut self, source: IpAddr) -> Result<(), DataplaneError> {
        let mut map: HashMap<_, AddrKey, Trusted> = HashMap::try_from(self.map_data(TRUSTED_MAP)?)
            .map_err(DataplaneError::map(TRUSTED_MAP))?;
        // Absent already is fine.
        let _ = map.remove(&addr_key(source));
        Ok(())
    }

    /// Allows encapsulated packets to be redirected out of interface
    /// `ifindex` when the FIB says the peer is reached through it (the
    /// ingress interface itself needs no entry: that is `XDP_TX`).
    pub fn allow_egress(&mut self, ifindex: u32) -> Result<(), DataplaneError> {
        let mut map: DevMapHash<_> = DevMapHash::try_from(self.map_data(EGRESS_MAP)?)
            .map_err(DataplaneError::map(EGRESS_MAP))?;
        map.insert(ifindex, ifindex, None, 0)
            .map_err(|e| DataplaneError::Egress {
                ifindex,
                reason: e.to_string(),
            })
    }

    /// Counters of service `id`, summed over CPUs.
    pub fn service_stats(&self, id: u32) -> Result<ServiceStats, DataplaneError> {
        let per_cpu = self.per_cpu::<ServiceStats>(SERVICE_STATS_MAP, id)?;
        Ok(per_cpu.iter().fold(ServiceStats::default(), |mut t, s| {
            t.local_packets += s.local_packets;
            t.local_bytes += s.local_bytes;
            t.forwarded_packets += s.forwarded_packets;
            t.forwarded_bytes += s.forwarded_bytes;
            t.decap_packets += s.decap_packets;
            t.decap_bytes += s.decap_bytes;
            t.unavailable_packets += s.unavailable_packets;
            t
        }))
    }

    /// Counters of peer `id`, summed over CPUs.
    pub fn peer_stats(&self, id: u32) -> Result<PeerStats, DataplaneError> {
        let per_cpu = self.per_cpu::<PeerStats>(PEER_STATS_MAP, id)?;
        Ok(per_cpu.iter().fold(PeerStats::default(), |mut t, s| {
            t.tx_packets += s.tx_packets;
            t.tx_bytes += s.tx_bytes;
            t.rx_packets += s.rx_packets;
            t.rx_bytes += s.rx_bytes;
            t
        }))
    }

    fn per_cpu<T: aya::Pod>(
        &self,
        name: &'static str,
        index: u32,
    ) -> Result<Vec<T>, DataplaneError> {
        let array = PerCpuArray::<_, T>::try_from(self.map_ref(name)?)
            .map_err(DataplaneError::map(name))?;
        let values = array.get(&index, 0).map_err(DataplaneError::map(name))?;
        Ok(values.iter().copied().collect())
    }
}

fn check_id(what: &str, id: u32, max: u32) -> Result<(), DataplaneError> {
    if id < max {
        Ok(())
    } else {
        Err(DataplaneError::InvalidSpec(format!(
            "{what} id {id} is out of range: ids go from 0 to {}",
            max - 1
        )))
    }
}
