//! `edge-agent pki`: the lab PKI on the command line (a CA, node
//! certificates, revocation), over [`edge_agent::overlay::pki`]. For the lab
//! and tests only: production nodes get their certificates from the
//! enterprise CA.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use edge_agent::overlay::{
    identity::Identity,
    pki::{self, Pem, Validity},
};

/// The file names inside a CA directory.
const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";

/// The `edge-agent pki` subcommands.
#[derive(Subcommand)]
pub enum PkiCommand {
    /// Make a self-signed lab CA: OUT/ca.pem and OUT/ca.key (mode 0600).
    Ca {
        /// Directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "edge lab CA")]
        name: String,
        /// Validity in days, from now.
        #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        days: u32,
        /// Replace an existing CA (its certificates stop chaining to it).
        #[arg(long)]
        force: bool,
    },
    /// Make a node certificate for edge://NAME signed by the CA in DIR:
    /// OUT/NAME.pem and OUT/NAME.key (mode 0600).
    Node {
        /// Directory holding ca.pem and ca.key.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// The node name (its identity is edge://NAME), e.g. pop-fra1.
        #[arg(long)]
        name: String,
        /// Directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Validity in days, from now.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        days: u32,
        /// Make a certificate that expired yesterday (for tests).
        #[arg(long, conflicts_with = "days")]
        expired: bool,
        /// Replace an existing certificate and key.
        #[arg(long)]
        force: bool,
    },
    /// Revoke a certificate issued by the CA in DIR: create the CRL file, or
    /// extend it (every serial it lists stays listed).
    Revoke {
        /// Directory holding ca.pem and ca.key.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// The certificate to revoke (PEM).
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// The CRL file to create or extend (PEM).
        #[arg(long, value_name = "FILE")]
        crl: PathBuf,
    },
}

/// Runs `command`; returns what to print.
pub fn run(command: PkiCommand) -> Result<String> {
    match command {
        PkiCommand::Ca {
            out,
            name,
            days,
            force,
        } => {
            let (cert, key) = (out.join(CA_CERT), out.join(CA_KEY));
            refuse_existing(&[&key, &cert], force)?;
            let pem = pki::make_ca(&name, Validity::days_from_now(days))?;
            create_dir(&out)?;
            pem.write(&cert, &key, force)?;
            Ok(format!(
                "wrote {} (CA certificate \"{name}\", valid {days} days; give it to every node as its CA bundle)\n\
                 wrote {} (CA private key, mode 0600; keep it off the nodes)\n",
                cert.display(),
                key.display()
            ))
        }
        PkiCommand::Node {
            ca,
            name,
            out,
            days,
            expired,
            force,
        } => {
            let identity = Identity::from_name(&name)?;
            let file = identity.name();
            let (cert, key) = (
                out.join(format!("{file}.pem")),
                out.join(format!("{file}.key")),
            );
            refuse_existing(&[&key, &cert], force)?;
            let ca_pem = read_ca(&ca)?;
            let validity = if expired {
                Validity::expired()
            } else {
                Validity::days_from_now(days)
            };
            let pem = pki::make_node(&ca_pem, &identity, validity)?;
            create_dir(&out)?;
            pem.write(&cert, &key, force)?;
            let valid = if expired {
                "already expired".to_string()
            } else {
                format!("valid {days} days")
            };
            Ok(format!(
                "wrote {} (certificate of {identity}, serial {}, {valid})\n\
                 wrote {} (private key, mode 0600)\n",
                cert.display(),
                pki::serial_of(&pem.cert)?,
                key.display()
            ))
        }
        PkiCommand::Revoke { ca, cert, crl } => {
            let ca_pem = read_ca(&ca)?;
            let cert_pem = pki::read_file(&cert)?;
            let existing = match std::fs::read_to_string(&crl) {
                Ok(text) => Some(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot read {}", crl.display()));
                }
            };
            let new = pki::revoke(&ca_pem, existing.as_deref(), &cert_pem)
                .with_context(|| format!("revoking {} in {}", cert.display(), crl.display()))?;
            pki::write_public_file(&crl, &new, true)?;
            let summary = pki::describe_crl(&new)?;
            Ok(format!(
                "{} {} (CRL number {}, signed by {}); revoked serial {}; it lists {} certificate(s)\n",
                if existing.is_some() {
                    "updated"
                } else {
                    "wrote"
                },
                crl.display(),
                summary.number.as_deref().unwrap_or("?"),
                summary.issuer,
                pki::serial_of(&cert_pem)?,
                summary.revoked.len()
            ))
        }
    }
}

/// Reads DIR/ca.pem and DIR/ca.key.
fn read_ca(dir: &Path) -> Result<Pem> {
    let (cert, key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    for path in [&cert, &key] {
        if !path.exists() {
            bail!(
                "{} does not exist: --ca names the directory `edge-agent pki ca --out DIR` wrote",
                path.display()
            );
        }
    }
    Ok(Pem::read(&cert, &key)?)
}

/// Fails, before anything is generated, if one of `paths` exists and
/// `force` is off.
fn refuse_existing(paths: &[&Path], force: bool) -> Result<()> {
    if !force {
        if let Some(path) = paths.iter().find(|p| p.exists()) {
            return Err(pki::PkiError::Exists(path.to_path_buf()).into());
        }
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
