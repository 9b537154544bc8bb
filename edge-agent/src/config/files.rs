//! The checks that read the host (see [`super::Checks`]): the Internet
//! interface exists, and the overlay's trust files are readable and
//! usable together ([`Trust::load`], which reads and parses files and
//! opens nothing else), with a certificate that proves this node's name.
//! Nothing here writes, opens a socket or talks to the kernel beyond
//! `if_nametoindex` and file reads.

use std::{fs::File, path::Path};

use super::{Report, node::Node};
use crate::{
    dataplane,
    overlay::trust::{Trust, TrustConfig, TrustError},
};

/// The Internet interface must exist.
pub(super) fn interfaces(node: &Node, report: &mut Report) {
    let Some(name) = &node.internet else { return };
    if dataplane::ifindex(name).is_err() {
        report.add(
            "node.internet_interface",
            format!("there is no interface `{name}` on this host"),
            "name an interface `ip link` shows (or check the config for another host with the interface check off)",
        );
    }
}

/// The trust files must be readable, load together, and prove this
/// node's identity.
pub(super) fn trust(trust: &TrustConfig, node: &Node, report: &mut Report) {
    let files = [
        ("overlay.ca", Some(&trust.ca_bundle)),
        ("overlay.cert", Some(&trust.cert)),
        ("overlay.key", Some(&trust.key)),
        ("overlay.crl", trust.crl.as_ref()),
    ];
    let mut readable = true;
    for (key, path) in files {
        let Some(path) = path else { continue };
        if let Err(e) = readable_file(path) {
            report.add(
                key,
                format!("cannot read {}: {e}", path.display()),
                "give a PEM file the daemon can read (check the path and its permissions)",
            );
            readable = false;
        }
    }
    if !readable {
        return;
    }
    let key_of = |path: &Path| {
        files
            .iter()
            .find(|(_, p)| p.is_some_and(|p| p == path))
            .map_or("overlay", |(k, _)| k)
    };
    match Trust::load(trust) {
        Ok(loaded) => {
            if let Some(name) = &node.name {
                if loaded.identity() != name {
                    report.add(
                        "node.name",
                        format!(
                            "the certificate {} proves {}, not {name}",
                            trust.cert.display(),
                            loaded.identity()
                        ),
                        "give the name in the certificate's edge:// URI, or install this node's certificate",
                    );
                }
            }
        }
        Err(e) => {
            let (key, hint) = match &e {
                TrustError::Read { path, .. } | TrustError::Pem { path, .. } => {
                    (key_of(path), "give a PEM file of the right kind")
                }
                TrustError::BadCa { .. } => (
                    "overlay.ca",
                    "the bundle holds CA certificates only (basicConstraints CA:TRUE)",
                ),
                TrustError::BadCrl { .. } => ("overlay.crl", "give the CA's current CRL in PEM"),
                TrustError::BadKey { .. } | TrustError::KeyMismatch { .. } => (
                    "overlay.key",
                    "install the private key made with this node's certificate",
                ),
                TrustError::NoIdentity { .. } | TrustError::OwnCertificate { .. } => (
                    "overlay.cert",
                    "install a valid certificate for this node from the CA in overlay.ca (`edge-agent pki node` for a lab)",
                ),
                TrustError::Tls(_) => ("overlay.cert", "check the certificate and key types"),
            };
            report.add(key, e.to_string(), hint);
        }
    }
}

/// Opens `path` for reading; it must be a file.
fn readable_file(path: &Path) -> std::io::Result<()> {
    let file = File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(())
}
