//! A BGP speaker process for tests that need one they can freeze or kill:
//! runs one neighbour and announces the given prefixes until killed.
//!
//! Usage: `edge-bgp-speaker PEER_ADDR PEER_AS LOCAL_AS HOLD_SECONDS NEXT_HOP PREFIX/LEN...`

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use edge_agent::bgp::{
    io::Telemetry,
    message::{Family, Prefix},
    neighbor::{self, NeighborConfig},
    rib_out::{OriginAttrs, Origination},
    session::SessionConfig,
    speaker::Intent,
};
use tokio::sync::{mpsc, watch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [peer, peer_as, local_as, hold, next_hop, prefixes @ ..] = args.as_slice() else {
        return Err("usage: edge-bgp-speaker PEER_ADDR PEER_AS LOCAL_AS HOLD_SECONDS NEXT_HOP PREFIX/LEN...".into());
    };
    let next_hop: Ipv4Addr = next_hop.parse()?;
    let mut announce = Vec::new();
    for p in prefixes {
        let (addr, len) = p.split_once('/').ok_or("prefixes are ADDR/LEN")?;
        announce.push(Prefix::V4 {
            addr: addr.parse()?,
            len: len.parse()?,
        });
    }
    let config = NeighborConfig {
        session: SessionConfig {
            local_as: local_as.parse()?,
            peer_as: peer_as.parse()?,
            bgp_id: Ipv4Addr::new(192, 0, 2, 1),
            hold_time: hold.parse()?,
            connect_retry: Duration::from_secs(1),
            passive: false,
            families: vec![Family::IPV4_UNICAST],
            graceful_restart: None,
            max_prefixes: None,
        },
        peer: SocketAddr::new(peer.parse::<IpAddr>()?, 179),
        local: None,
        md5_key: None,
        origination: Origination {
            local_as: local_as.parse()?,
            ebgp: true,
            next_hop_v4: Some(next_hop),
            next_hop_v6: None,
        },
        bfd: None,
    };
    let mut wanted = Intent::default();
    for prefix in announce {
        wanted.announce(prefix, OriginAttrs::default());
    }
    let (intent, intent_rx) = watch::channel(wanted);
    let (telemetry, _status) = Telemetry::new();
    // Connects out only: nobody sends on the inbound channel.
    let (_inbound, inbound_rx) = mpsc::channel(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(neighbor::run(
        config, intent_rx, inbound_rx, telemetry, None,
    ));
    drop(intent);
    Ok(())
}
