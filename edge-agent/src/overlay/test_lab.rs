//! Lab trust material for the overlay's unit tests: a CA (and another
//! one), node certificates and CRLs from `pki.rs`, written to a private
//! temporary directory that is removed on drop, and real handshakes over
//! in-memory streams; and the UPDATEs peers send in those tests.

use std::{
    fs,
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tokio::io::{DuplexStream, duplex};

use crate::bgp::message::{Attributes, LargeCommunity, Update};
use tokio_rustls::TlsStream;

use super::{
    identity::Identity,
    import::PRIVATE_UNDERLAY,
    pki::{self, Pem, Validity},
    trust::{Authenticated, Refusal, Trust, TrustConfig},
};

/// A private directory, removed on drop (also when a test fails).
pub(crate) struct Dir(pub(crate) PathBuf);

impl Dir {
    pub(crate) fn new(tag: &str) -> Dir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "edge-trust-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn id(name: &str) -> Identity {
    Identity::from_name(name).unwrap()
}

/// Two CAs (`ca.pem`, `other-ca.pem`, and `both.pem` holding both) and
/// node material in one directory.
pub(crate) struct Lab {
    pub(crate) dir: Dir,
    pub(crate) ca: Pem,
    pub(crate) other: Pem,
}

impl Lab {
    pub(crate) fn new(tag: &str) -> Lab {
        let dir = Dir::new(tag);
        let ca = pki::make_ca("edge test CA", Validity::days_from_now(30)).unwrap();
        let other = pki::make_ca("other test CA", Validity::days_from_now(30)).unwrap();
        pki::write_public_file(&dir.0.join("ca.pem"), &ca.cert, false).unwrap();
        pki::write_public_file(&dir.0.join("other-ca.pem"), &other.cert, false).unwrap();
        let both = format!("{}{}", ca.cert, other.cert);
        pki::write_public_file(&dir.0.join("both.pem"), &both, false).unwrap();
        Lab { dir, ca, other }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    /// Writes `pem` as `<file>.pem` and `<file>.key`.
    pub(crate) fn write(&self, file: &str, pem: &Pem) {
        pem.write(
            &self.path(&format!("{file}.pem")),
            &self.path(&format!("{file}.key")),
            true,
        )
        .unwrap();
    }

    /// Makes and writes a node certificate of our CA for `name`, as files
    /// named `name`.
    pub(crate) fn node(&self, name: &str, validity: Validity) -> Pem {
        let pem = pki::make_node(&self.ca, &id(name), validity).unwrap();
        self.write(name, &pem);
        pem
    }

    /// The configuration of the node whose files are `file`, trusting
    /// `bundle`, allowing `allow`.
    pub(crate) fn config(&self, file: &str, bundle: &str, allow: &[&str]) -> TrustConfig {
        TrustConfig {
            ca_bundle: self.path(bundle),
            cert: self.path(&format!("{file}.pem")),
            key: self.path(&format!("{file}.key")),
            crl: None,
            allow: allow.iter().map(|n| id(n)).collect(),
            handshake_timeout: Duration::from_secs(5),
        }
    }

    /// A fresh node `name` of our CA, trusting our CA, allowing `allow`.
    pub(crate) fn trust(&self, name: &str, allow: &[&str]) -> Trust {
        self.node(name, Validity::days_from_now(10));
        Trust::load(&self.config(name, "ca.pem", allow)).unwrap()
    }

    /// Writes a CRL revoking `certs` (in order, each extending the last).
    pub(crate) fn revoke(&self, file: &str, certs: &[&Pem]) -> PathBuf {
        let mut crl: Option<String> = None;
        for cert in certs {
            crl = Some(pki::revoke(&self.ca, crl.as_deref(), &cert.cert).unwrap());
        }
        let path = self.path(file);
        pki::write_public_file(&path, &crl.unwrap(), true).unwrap();
        path
    }
}

pub(crate) type Side = Result<(TlsStream<DuplexStream>, Authenticated), Refusal>;

/// Runs `server.accept` and `client.connect(claimed)` against each other.
pub(crate) async fn handshake(server: &Trust, client: &Trust, claimed: &str) -> (Side, Side) {
    let (a, b) = duplex(64 * 1024);
    let claimed = id(claimed);
    tokio::join!(server.accept(a), client.connect(b, &claimed))
}

/// An UPDATE announcing `prefixes` (IPv4) with next hop `next_hop`.
pub(crate) fn announce(prefixes: &[&str], next_hop: &str) -> Update {
    Update {
        attributes: Attributes {
            next_hop: Some(next_hop.parse().unwrap()),
            ..Attributes::default()
        },
        nlri: prefixes.iter().map(|s| s.parse().unwrap()).collect(),
        ..Update::default()
    }
}

/// An UPDATE announcing `addr` as the peer's private underlay address
/// (marked with [`PRIVATE_UNDERLAY`]).
pub(crate) fn private_route(addr: &str, next_hop: &str) -> Update {
    let mut update = announce(&[addr], next_hop);
    update.attributes.large_communities = vec![LargeCommunity {
        global: 64500,
        local1: PRIVATE_UNDERLAY,
        local2: 0,
    }];
    update
}
