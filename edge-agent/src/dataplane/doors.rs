//! The doors in the agent's own terms, and writing them: which of the
//! agent's ports the XDP program guards and how (`DoorsSpec`), the
//! sources it lets through, and reading back which source prefixes it
//! dropped packets from.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use aya::maps::{Array, HashMap, PerCpuHashMap};
use edge_common::{
    DOOR_BUCKETS_MAP, DOOR_SOURCES_MAP, DOORS_MAP,
    maps::{
        AddrKey, Bucket, BucketKey, DOOR_LISTED_ONLY, DOOR_RATE_LIMITED, Door, Doors, FAMILY_V4,
    },
};

pub use edge_common::maps::MAX_DOORS;

use super::{
    Dataplane, DataplaneError,
    spec::{Protocol, addr_key},
};

/// What a door does with packets from sources that are not listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoorPolicy {
    /// Drops them (BGP, BFD: only configured or authenticated peers).
    ListedOnly,
    /// Lets TCP SYNs (UDP: datagrams) through while the source prefix's
    /// bucket has tokens; other TCP segments always.
    RateLimited,
}

/// One of the agent's own ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoorSpec {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The destination port.
    pub port: u16,
    /// What happens to strangers' packets.
    pub policy: DoorPolicy,
}

/// The doors, and the buckets of rate-limited ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoorsSpec {
    /// At most [`MAX_DOORS`].
    pub doors: Vec<DoorSpec>,
    /// Tokens per second per source prefix, per CPU.
    pub syn_rate: u32,
    /// Tokens a bucket holds (at least 1).
    pub syn_burst: u32,
    /// The IPv4 prefix length buckets are kept by (8–32).
    pub v4_prefix: u8,
    /// The IPv6 prefix length buckets are kept by (16–128).
    pub v6_prefix: u8,
}

impl DoorsSpec {
    /// The map value, or why it cannot be one.
    pub fn to_map(&self) -> Result<Doors, String> {
        if self.doors.len() > MAX_DOORS {
            return Err(format!(
                "{} doors; the data plane holds {MAX_DOORS}",
                self.doors.len()
            ));
        }
        if self.syn_rate == 0 || self.syn_burst == 0 {
            return Err("the doors' rate and burst must be at least 1".into());
        }
        if !(8..=32).contains(&self.v4_prefix) || !(16..=128).contains(&self.v6_prefix) {
            return Err(format!(
                "door prefix lengths /{} and /{}: use 8–32 for IPv4 and 16–128 for IPv6",
                self.v4_prefix, self.v6_prefix
            ));
        }
        let token_ns = 1_000_000_000 / u64::from(self.syn_rate);
        let mut map = Doors {
            count: self.doors.len() as u32,
            v4_prefix: self.v4_prefix,
            v6_prefix: self.v6_prefix,
            token_ns: token_ns.max(1),
            burst_ns: token_ns.max(1).saturating_mul(u64::from(self.syn_burst)),
            ..Doors::default()
        };
        for (slot, door) in map.doors.iter_mut().zip(&self.doors) {
            *slot = Door {
                port: door.port,
                proto: door.protocol.number(),
                policy: match door.policy {
                    DoorPolicy::ListedOnly => DOOR_LISTED_ONLY,
                    DoorPolicy::RateLimited => DOOR_RATE_LIMITED,
                },
            };
        }
        Ok(map)
    }
}

/// A source prefix the doors dropped packets from, summed over CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoorOffender {
    /// The prefix.
    pub prefix: IpAddr,
    /// Its length.
    pub len: u8,
    /// Packets let through while rate-limited.
    pub admitted: u64,
    /// Packets dropped.
    pub dropped: u64,
}

impl Dataplane {
    /// Sets the doors (replacing any there were).
    pub fn set_doors(&mut self, doors: &DoorsSpec) -> Result<(), DataplaneError> {
        let value = doors.to_map().map_err(DataplaneError::InvalidSpec)?;
        let mut map: Array<_, Doors> =
            Array::try_from(self.map_data(DOORS_MAP)?).map_err(DataplaneError::map(DOORS_MAP))?;
        map.set(0, value, 0).map_err(DataplaneError::map(DOORS_MAP))
    }

    /// Lets `addr` through every door.
    pub fn list_source(&mut self, addr: IpAddr) -> Result<(), DataplaneError> {
        let mut map: HashMap<_, AddrKey, u32> = HashMap::try_from(self.map_data(DOOR_SOURCES_MAP)?)
            .map_err(DataplaneError::map(DOOR_SOURCES_MAP))?;
        map.insert(addr_key(addr), 1, 0)
            .map_err(DataplaneError::map(DOOR_SOURCES_MAP))
    }

    /// Stops letting `addr` through (absent already is fine).
    pub fn unlist_source(&mut self, addr: IpAddr) -> Result<(), DataplaneError> {
        let mut map: HashMap<_, AddrKey, u32> = HashMap::try_from(self.map_data(DOOR_SOURCES_MAP)?)
            .map_err(DataplaneError::map(DOOR_SOURCES_MAP))?;
        let _ = map.remove(&addr_key(addr));
        Ok(())
    }

    /// The sources the doors let through now (a restarted agent finds its
    /// predecessor's in the pinned map).
    pub fn listed_sources(&self) -> Result<Vec<IpAddr>, DataplaneError> {
        let map: HashMap<_, AddrKey, u32> = HashMap::try_from(self.map_ref(DOOR_SOURCES_MAP)?)
            .map_err(DataplaneError::map(DOOR_SOURCES_MAP))?;
        Ok(map
            .keys()
            .filter_map(Result::ok)
            .map(|k| address(&k.addr, k.family))
            .collect())
    }

    /// The source prefixes the doors dropped at least `min_dropped`
    /// packets from (cumulative, while the prefix keeps its bucket), the
    /// worst first.
    pub fn door_offenders(&self, min_dropped: u64) -> Result<Vec<DoorOffender>, DataplaneError> {
        let map: PerCpuHashMap<_, BucketKey, Bucket> =
            PerCpuHashMap::try_from(self.map_ref(DOOR_BUCKETS_MAP)?)
                .map_err(DataplaneError::map(DOOR_BUCKETS_MAP))?;
        let mut sums: BTreeMap<(IpAddr, u8), (u64, u64)> = BTreeMap::new();
        for entry in map.iter() {
            let Ok((key, values)) = entry else {
                // Evicted between the key and its value: skip it.
                continue;
            };
            let (admitted, dropped) = values
                .iter()
                .fold((0u64, 0u64), |(a, d), b| (a + b.admitted, d + b.dropped));
            let sum = sums
                .entry((address(&key.addr, key.family), key.len))
                .or_default();
            sum.0 += admitted;
            sum.1 += dropped;
        }
        let mut offenders: Vec<DoorOffender> = sums
            .into_iter()
            .filter(|(_, (_, dropped))| *dropped >= min_dropped)
            .map(|((prefix, len), (admitted, dropped))| DoorOffender {
                prefix,
                len,
                admitted,
                dropped,
            })
            .collect();
        offenders.sort_by_key(|o| std::cmp::Reverse(o.dropped));
        Ok(offenders)
    }
}

/// The address in a map key.
fn address(bytes: &[u8; 16], family: u8) -> IpAddr {
    if family == FAMILY_V4 {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*bytes))
    }
}

#[cfg(test)]
#[path = "doors_tests.rs"]
mod tests;
