//! Lab PKI: a self-signed CA, node certificates and revocation lists, made
//! with rcgen. This module owns what `edge-agent pki` writes and what the
//! trust tests use; production nodes should get their certificates from the
//! enterprise CA instead (the control endpoint only needs PEM files, see
//! [`super::trust`]).
//!
//! What it makes:
//! - a CA ([`make_ca`]): ECDSA P-256, self-signed, `basicConstraints
//!   CA:TRUE` (critical), key usages keyCertSign, cRLSign and
//!   digitalSignature, a subject key identifier;
//! - node certificates ([`make_node`]): ECDSA P-256, signed by the CA, the
//!   node identity as the one `edge://` URI subject alternative name plus the
//!   name as a DNS SAN and common name, `CA:FALSE`, digitalSignature, the
//!   extended key usages serverAuth and clientAuth (a node is both), an
//!   authority key identifier and a random 128-bit serial;
//! - certificate revocation lists ([`revoke`]): version 2, signed by the CA,
//!   each new list carrying every serial of the previous one plus the new
//!   one, the CRL number one higher, valid for [`CRL_VALIDITY_DAYS`] days.
//!
//! Keys are written with mode 0600 ([`write_key_file`]); every file is
//! written to a temporary name in the same directory and renamed into
//! place, so a process polling the files never reads half of one.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, pem::PemObject};
use x509_parser::{
    asn1_rs::Tag, certificate::X509Certificate, revocation_list::CertificateRevocationList,
    x509::X509Name,
};

use super::identity::Identity;

/// How long a CRL made by [`revoke`] is valid (its nextUpdate). The control
/// endpoint keeps honouring a CRL after that date (see [`super::trust`]);
/// the date tells other tools when to expect a fresh list.
pub const CRL_VALIDITY_DAYS: u64 = 30;

/// Mode of private key files.
pub const KEY_MODE: u32 = 0o600;

/// Mode of certificate and CRL files.
pub const PUBLIC_MODE: u32 = 0o644;

/// The earliest time a certificate may name (1950-01-01, X.509 UTCTime's start).
const EARLIEST_SECS: i64 = -631_152_000;

/// The latest time a certificate may name (9999-12-31T23:59:59Z).
const LATEST_SECS: i64 = 253_402_300_799;

const DAY: Duration = Duration::from_secs(86_400);

/// Why a lab certificate, key or CRL could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The validity period is empty or outside what X.509 can express.
    #[error("invalid validity period: {0}")]
    Validity(String),
    /// The CA common name is unusable.
    #[error("invalid CA name `{0}`: it must be 1 to 64 characters without control characters")]
    CaName(String),
    /// A PEM input holds no block of the expected kind, or is malformed.
    #[error("the {what} is not usable PEM: {detail}")]
    Pem {
        /// What was being read (`CA certificate`, `CRL`, …).
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A PEM block did not parse as the X.509 structure it should hold.
    #[error("the {what} does not parse: {detail}")]
    Parse {
        /// What was being parsed.
        what: &'static str,
        /// The parser's complaint.
        detail: String,
    },
    /// The CA certificate lacks `basicConstraints CA:TRUE`.
    #[error("the CA certificate (subject `{0}`) is not a CA: it lacks basicConstraints CA:TRUE")]
    NotCa(String),
    /// The CA key is not the key of the CA certificate.
    #[error(
        "the CA key does not belong to the CA certificate (subject `{0}`): use the ca.key made together with that ca.pem"
    )]
    CaKeyMismatch(String),
    /// The CA subject uses a form rcgen cannot reproduce.
    #[error("the CA subject `{0}` cannot be used as an issuer name here: {1}")]
    CaSubject(String, String),
    /// The certificate to revoke was issued by another CA.
    #[error(
        "the certificate (issuer `{issuer}`) was not issued by this CA (`{ca}`): pass the CA that made it"
    )]
    NotIssuedByCa {
        /// The certificate's issuer.
        issuer: String,
        /// The CA's subject.
        ca: String,
    },
    /// The existing CRL was issued by another CA, or holds several CRLs.
    #[error("the existing CRL cannot be extended: {0}")]
    ExistingCrl(String),
    /// rcgen refused to make or sign something.
    #[error("could not make the {what}: {source}")]
    Generate {
        /// What was being made.
        what: &'static str,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// A file exists and overwriting was not asked for.
    #[error("{} already exists; refusing to overwrite it (pass --force to replace it)", .0.display())]
    Exists(PathBuf),
    /// Reading or writing a file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

/// A certificate's validity period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// The first moment the certificate is valid.
    pub not_before: SystemTime,
    /// The last moment the certificate is valid.
    pub not_after: SystemTime,
}

impl Validity {
    /// From an hour ago (tolerating clock skew between nodes) to `days` days
    /// from now. An unrepresentable end is reported by the functions that use
    /// the validity, not here.
    pub fn days_from_now(days: u32) -> Validity {
        let now = SystemTime::now();
        let not_before = now.checked_sub(Duration::from_secs(3600)).unwrap_or(now);
        let not_after = DAY
            .checked_mul(days)
            .and_then(|span| now.checked_add(span))
            // Too far for SystemTime: an end X.509 cannot express either, so
            // the check in make_ca/make_node reports it.
            .unwrap_or_else(|| UNIX_EPOCH + Duration::from_secs(LATEST_SECS as u64 + 1));
        Validity {
            not_before,
            not_after,
        }
    }

    /// A period that ended yesterday (it started 30 days ago): for testing
    /// that expired certificates are refused.
    pub fn expired() -> Validity {
        let now = SystemTime::now();
        Validity {
            not_before: now.checked_sub(DAY * 30).unwrap_or(UNIX_EPOCH),
            not_after: now.checked_sub(DAY).unwrap_or(UNIX_EPOCH),
        }
    }

    /// A period that starts tomorrow and lasts 30 days: for testing that
    /// certificates not valid yet are refused.
    pub fn not_yet_valid() -> Validity {
        let now = SystemTime::now();
        Validity {
            not_before: now + DAY,
            not_after: now + DAY * 31,
        }
    }

    /// Checks the period is non-empty and expressible in X.509.
    fn check(&self) -> Result<(), PkiError> {
        let start = unix_secs(self.not_before);
        let end = unix_secs(self.not_after);
        for (what, secs) in [("start", start), ("end", end)] {
            if !(EARLIEST_SECS..=LATEST_SECS).contains(&secs) {
                return Err(PkiError::Validity(format!(
                    "its {what} lies outside the years 1950 to 9999 that a certificate can name"
                )));
            }
        }
        if end <= start {
            return Err(PkiError::Validity(
                "it ends before it starts; give a positive number of days".into(),
            ));
        }
        Ok(())
    }
}

/// A certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Pem {
    /// The certificate (`-----BEGIN CERTIFICATE-----`).
    pub cert: String,
    /// The PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`).
    pub key: String,
}

impl std::fmt::Debug for Pem {
    /// Shows the certificate, never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pem")
            .field("cert", &self.cert)
            .field("key", &"[elided]")
            .finish()
    }
}

impl Pem {
    /// Reads a certificate file and its key file.
    pub fn read(cert: &Path, key: &Path) -> Result<Pem, PkiError> {
        Ok(Pem {
            cert: read_file(cert)?,
            key: read_file(key)?,
        })
    }

    /// Writes the certificate (mode 0644) and the key (mode 0600). Unless
    /// `force`, refuses when either file exists, before writing anything.
    pub fn write(&self, cert: &Path, key: &Path, force: bool) -> Result<(), PkiError> {
        if !force {
            for path in [key, cert] {
                if path.exists() {
                    return Err(PkiError::Exists(path.to_path_buf()));
                }
            }
        }
        write_key_file(key, &self.key, true)?;
        write_public_file(cert, &self.cert, true)
    }
}

/// Makes a self-signed CA named `common_name`.
pub fn make_ca(common_name: &str, validity: Validity) -> Result<Pem, PkiError> {
    if common_name.trim().is_empty()
        || common_name.chars().count() > 64
        || common_name.chars().any(char::is_control)
    {
        return Err(PkiError::CaName(common_name.to_string()));
    }
    validity.check()?;
    let key = new_key()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = validity.not_before.into();
    params.not_after = validity.not_after.into();
    params.serial_number = Some(random_serial());
    let cert = params
        .self_signed(&key)
        .map_err(|source| PkiError::Generate {
            what: "CA certificate",
            source,
        })?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// Makes a node certificate for `identity`, signed by `ca`.
pub fn make_node(ca: &Pem, identity: &Identity, validity: Validity) -> Result<Pem, PkiError> {
    let dns = ia5(identity.name())?;
    let uri = ia5(identity.as_str())?;
    sign_leaf(
        ca,
        identity.name(),
        vec![SanType::URI(uri), SanType::DnsName(dns)],
        validity,
    )
}

/// Makes an end-entity certificate with common name `cn` and exactly the
/// subject alternative names `sans`, signed by `ca`. [`make_node`] is this
/// with a node identity; tests use it for certificates without one.
pub(crate) fn sign_leaf(
    ca: &Pem,
    cn: &str,
    sans: Vec<SanType>,
    validity: Validity,
) -> Result<Pem, PkiError> {
    validity.check()?;
    let ca_der = cert_der(&ca.cert, "CA certificate")?;
    let ca_cert = parse_cert(&ca_der, "CA certificate")?;
    let issuer = ca_issuer(&ca_cert, &ca.key)?;

    let key = new_key()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = validity.not_before.into();
    params.not_after = validity.not_after.into();
    params.serial_number = Some(random_serial());
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|source| PkiError::Generate {
            what: "node certificate",
            source,
        })?;

    // The chain only builds if our issuer name is byte for byte the CA's
    // subject; rcgen re-encodes the name, so make sure it came out the same.
    let made = parse_cert(cert.der(), "new node certificate")?;
    if made.issuer().as_raw() != ca_cert.subject().as_raw() {
        return Err(PkiError::CaSubject(
            ca_cert.subject().to_string(),
            "re-encoding it changed its bytes (use a CA made by `edge-agent pki ca`)".into(),
        ));
    }
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// Makes a CRL, signed by `ca`, listing the serial of `cert_pem` and every
/// certificate already listed in `existing_crl_pem` (which must have been
/// issued by the same CA). Its CRL number is one more than the existing
/// one's (1 for the first). Revoking a certificate twice lists it once.
pub fn revoke(
    ca: &Pem,
    existing_crl_pem: Option<&str>,
    cert_pem: &str,
) -> Result<String, PkiError> {
    let ca_der = cert_der(&ca.cert, "CA certificate")?;
    let ca_cert = parse_cert(&ca_der, "CA certificate")?;
    let issuer = ca_issuer(&ca_cert, &ca.key)?;

    let der = cert_der(cert_pem, "certificate to revoke")?;
    let cert = parse_cert(&der, "certificate to revoke")?;
    if cert.issuer().as_raw() != ca_cert.subject().as_raw() {
        return Err(PkiError::NotIssuedByCa {
            issuer: cert.issuer().to_string(),
            ca: ca_cert.subject().to_string(),
        });
    }
    let now = SystemTime::now();

    let mut revoked = Vec::new();
    let mut crl_number = vec![1u8];
    if let Some(existing) = existing_crl_pem {
        let ders = crl_ders(existing)?;
        let [crl_der] = ders.as_slice() else {
            return Err(PkiError::ExistingCrl(format!(
                "it holds {} CRLs; `pki revoke` manages a file with exactly one, from this CA",
                ders.len()
            )));
        };
        let crl = parse_crl(crl_der)?;
        if crl.issuer().as_raw() != ca_cert.subject().as_raw() {
            return Err(PkiError::ExistingCrl(format!(
                "it was issued by `{}`, not by this CA (`{}`)",
                crl.issuer(),
                ca_cert.subject()
            )));
        }
        if let Some(number) = crl.crl_number() {
            crl_number = increment(&number.to_bytes_be());
        }
        for entry in crl.iter_revoked_certificates() {
            revoked.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(entry.raw_serial()),
                revocation_time: from_unix_secs(entry.revocation_date.timestamp()).into(),
                reason_code: entry
                    .reason_code()
                    .and_then(|(_, reason)| revocation_reason(reason.0)),
                invalidity_date: None,
            });
        }
    }
    let serial = SerialNumber::from_slice(cert.raw_serial());
    if !revoked.iter().any(|r| r.serial_number == serial) {
        revoked.push(RevokedCertParams {
            serial_number: serial,
            revocation_time: now.into(),
            reason_code: None,
            invalidity_date: None,
        });
    }

    let params = CertificateRevocationListParams {
        this_update: now.into(),
        next_update: (now + DAY * CRL_VALIDITY_DAYS as u32).into(),
        crl_number: SerialNumber::from_slice(&crl_number),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: ca_key_id_method(&ca_cert),
    };
    let crl = params
        .signed_by(&issuer)
        .map_err(|source| PkiError::Generate {
            what: "CRL",
            source,
        })?;
    crl.pem().map_err(|source| PkiError::Generate {
        what: "CRL",
        source,
    })
}

/// What a CRL says, for printing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlSummary {
    /// The issuer's distinguished name.
    pub issuer: String,
    /// The CRL number, in decimal (`None` without the extension).
    pub number: Option<String>,
    /// The revoked serials, as colon-separated hex (`01:a3:…`).
    pub revoked: Vec<String>,
}

/// Summarises the first CRL in `crl_pem`.
pub fn describe_crl(crl_pem: &str) -> Result<CrlSummary, PkiError> {
    let ders = crl_ders(crl_pem)?;
    let Some(der) = ders.first() else {
        return Err(PkiError::Pem {
            what: "CRL",
            detail: "no X509 CRL block".into(),
        });
    };
    let crl = parse_crl(der)?;
    Ok(CrlSummary {
        issuer: crl.issuer().to_string(),
        number: crl.crl_number().map(|n| n.to_string()),
        revoked: crl
            .iter_revoked_certificates()
            .map(|r| r.raw_serial_as_string())
            .collect(),
    })
}

/// The serial number of the certificate in `cert_pem`, as colon-separated
/// hex (as in [`CrlSummary::revoked`]).
pub fn serial_of(cert_pem: &str) -> Result<String, PkiError> {
    let der = cert_der(cert_pem, "certificate")?;
    Ok(parse_cert(&der, "certificate")?.raw_serial_as_string())
}

/// Reads a UTF-8 (PEM) file.
pub fn read_file(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a private key file with mode 0600, atomically (temporary file and
/// rename). Unless `replace`, refuses when `path` exists.
pub fn write_key_file(path: &Path, contents: &str, replace: bool) -> Result<(), PkiError> {
    write_atomically(path, contents, KEY_MODE, replace)
}

/// Writes a certificate or CRL file with mode 0644, atomically. Unless
/// `replace`, refuses when `path` exists.
pub fn write_public_file(path: &Path, contents: &str, replace: bool) -> Result<(), PkiError> {
    write_atomically(path, contents, PUBLIC_MODE, replace)
}

fn write_atomically(path: &Path, contents: &str, mode: u32, replace: bool) -> Result<(), PkiError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    if !replace && path.exists() {
        return Err(PkiError::Exists(path.to_path_buf()));
    }
    let io_err = |source| PkiError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        io_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    })?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode; a key must never be wider.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err)
}

fn new_key() -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| PkiError::Generate {
        what: "ECDSA P-256 key",
        source,
    })
}

/// 16 random bytes, the first in 0x01..=0x7f: positive, never shortened by
/// DER's minimal encoding.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    crate::net::random::fill(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f).max(1);
    SerialNumber::from_slice(&bytes)
}

fn ia5(s: &str) -> Result<rcgen::string::Ia5String, PkiError> {
    s.try_into().map_err(|source| PkiError::Generate {
        what: "subject alternative name",
        source,
    })
}

fn cert_der(pem: &str, what: &'static str) -> Result<CertificateDer<'static>, PkiError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| PkiError::Pem {
        what,
        detail: match e {
            rustls_pki_types::pem::Error::NoItemsFound => "no CERTIFICATE block".into(),
            other => other.to_string(),
        },
    })
}

fn crl_ders(pem: &str) -> Result<Vec<CertificateRevocationListDer<'static>>, PkiError> {
    CertificateRevocationListDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Pem {
            what: "CRL",
            detail: e.to_string(),
        })
}

fn parse_cert<'a>(der: &'a [u8], what: &'static str) -> Result<X509Certificate<'a>, PkiError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(PkiError::Parse {
            what,
            detail: "trailing bytes after the certificate".into(),
        }),
        Err(e) => Err(PkiError::Parse {
            what,
            detail: e.to_string(),
        }),
    }
}

fn parse_crl(der: &[u8]) -> Result<CertificateRevocationList<'_>, PkiError> {
    x509_parser::parse_x509_crl(der)
        .map(|(_, crl)| crl)
        .map_err(|e| PkiError::Parse {
            what: "CRL",
            detail: e.to_string(),
        })
}

/// The signer for certificates and CRLs of the CA `ca_cert` with the PEM key
/// `ca_key`: checks that it is a CA and that the key is its key, and
/// rebuilds the name, key identifier and key usages rcgen puts into what it
/// signs.
fn ca_issuer(
    ca_cert: &X509Certificate<'_>,
    ca_key: &str,
) -> Result<Issuer<'static, KeyPair>, PkiError> {
    if !ca_cert.is_ca() {
        return Err(PkiError::NotCa(ca_cert.subject().to_string()));
    }
    let key = KeyPair::from_pem(ca_key).map_err(|e| PkiError::Pem {
        what: "CA key",
        detail: format!("not a PKCS#8 private key rcgen can use: {e}"),
    })?;
    use rcgen::PublicKeyData as _;
    if key.der_bytes() != ca_cert.public_key().subject_public_key.data.as_ref() {
        return Err(PkiError::CaKeyMismatch(ca_cert.subject().to_string()));
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(ca_cert.subject())?;
    params.key_identifier_method = ca_key_id_method(ca_cert);
    params.key_usages = match ca_cert.key_usage() {
        Ok(Some(ku)) => {
            let ku = ku.value;
            [
                (ku.key_cert_sign(), KeyUsagePurpose::KeyCertSign),
                (ku.crl_sign(), KeyUsagePurpose::CrlSign),
                (ku.digital_signature(), KeyUsagePurpose::DigitalSignature),
            ]
            .into_iter()
            .filter_map(|(set, usage)| set.then_some(usage))
            .collect()
        }
        _ => Vec::new(),
    };
    Ok(Issuer::new(params, key))
}

/// The CA's subject key identifier as rcgen's key identifier method, so
/// authority key identifiers match it.
fn ca_key_id_method(ca_cert: &X509Certificate<'_>) -> KeyIdMethod {
    ca_cert
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(KeyIdMethod::PreSpecified(id.0.to_vec()))
            }
            _ => None,
        })
        .unwrap_or(KeyIdMethod::Sha256)
}

/// An rcgen distinguished name with the same attributes, in the same order
/// and with the same string types as `name`.
fn distinguished_name(name: &X509Name<'_>) -> Result<DistinguishedName, PkiError> {
    let unsupported = |why: &str| PkiError::CaSubject(name.to_string(), why.to_string());
    let mut dn = DistinguishedName::new();
    for rdn in name.iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(unsupported("it has a multi-valued or empty RDN"));
        };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| unsupported("an attribute type is not a valid OID"))?
            .collect();
        let value = attr.attr_value();
        let text = std::str::from_utf8(value.data)
            .map_err(|_| unsupported("an attribute value is not text"))?;
        let value = match value.header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text.to_string()),
            Tag::PrintableString => DnValue::PrintableString(
                text.try_into()
                    .map_err(|_| unsupported("a PrintableString holds invalid characters"))?,
            ),
            Tag::Ia5String => DnValue::Ia5String(
                text.try_into()
                    .map_err(|_| unsupported("an IA5String holds invalid characters"))?,
            ),
            _ => {
                return Err(unsupported(
                    "it uses a string type other than UTF8, Printable or IA5",
                ));
            }
        };
        let ty = DnType::from_oid(&oid);
        if dn.get(&ty).is_some() {
            return Err(unsupported("it repeats an attribute type"));
        }
        dn.push(ty, value);
    }
    Ok(dn)
}

/// `bytes` (big-endian, unsigned) plus one.
fn increment(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for byte in out.iter_mut().rev() {
        let (sum, carry) = byte.overflowing_add(1);
        *byte = sum;
        if !carry {
            return out;
        }
    }
    out.insert(0, 1);
    out
}

fn revocation_reason(code: u8) -> Option<RevocationReason> {
    Some(match code {
        0 => RevocationReason::Unspecified,
        1 => RevocationReason::KeyCompromise,
        2 => RevocationReason::CaCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        6 => RevocationReason::CertificateHold,
        8 => RevocationReason::RemoveFromCrl,
        9 => RevocationReason::PrivilegeWithdrawn,
        10 => RevocationReason::AaCompromise,
        _ => return None,
    })
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// A time X.509 parsed from a certificate or CRL (so within 1950..=9999).
fn from_unix_secs(secs: i64) -> SystemTime {
    let secs = secs.clamp(EARLIEST_SECS, LATEST_SECS);
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use x509_parser::extensions::GeneralName;

    use super::*;

    fn id(name: &str) -> Identity {
        Identity::from_name(name).unwrap()
    }

    fn parse(pem: &str) -> (Vec<u8>, String) {
        let der = cert_der(pem, "test").unwrap();
        (der.to_vec(), pem.to_string())
    }

    #[test]
    fn ca_parses_back_as_a_ca() {
        let ca = make_ca("edge lab CA", Validity::days_from_now(10)).unwrap();
        let (der, _) = parse(&ca.cert);
        let cert = parse_cert(&der, "CA").unwrap();
        assert!(cert.is_ca());
        assert_eq!(cert.subject().to_string(), "CN=edge lab CA");
        assert_eq!(cert.subject().as_raw(), cert.issuer().as_raw());
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        assert!(ca.key.contains("BEGIN PRIVATE KEY"));
        assert!(KeyPair::from_pem(&ca.key).is_ok());
    }

    #[test]
    fn node_carries_identity_usages_and_chains_to_the_ca() {
        let ca = make_ca("edge lab CA", Validity::days_from_now(10)).unwrap();
        let node = make_node(&ca, &id("pop-fra1"), Validity::days_from_now(5)).unwrap();
        let (ca_der, _) = parse(&ca.cert);
        let ca_cert = parse_cert(&ca_der, "CA").unwrap();
        let (der, _) = parse(&node.cert);
        let cert = parse_cert(&der, "node").unwrap();
        assert!(!cert.is_ca());
        assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw());
        let sans = &cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        assert!(sans.contains(&GeneralName::URI("edge://pop-fra1")));
        assert!(sans.contains(&GeneralName::DNSName("pop-fra1")));
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        let serial = cert.raw_serial();
        assert_eq!(serial.len(), 16);
        assert!(serial[0] > 0 && serial[0] < 0x80);
        // The key is the certificate's.
        use rcgen::PublicKeyData as _;
        let key = KeyPair::from_pem(&node.key).unwrap();
        assert_eq!(
            key.der_bytes(),
            cert.public_key().subject_public_key.data.as_ref()
        );
    }

    #[test]
    fn serials_differ() {
        let ca = make_ca("edge lab CA", Validity::days_from_now(10)).unwrap();
        let a = make_node(&ca, &id("pop-a"), Validity::days_from_now(5)).unwrap();
        let b = make_node(&ca, &id("pop-a"), Validity::days_from_now(5)).unwrap();
        assert_ne!(serial_of(&a.cert).unwrap(), serial_of(&b.cert).unwrap());
    }

    #[test]
    fn revoke_lists_serials_and_counts_up() {
        let ca = make_ca("edge lab CA", Validity::days_from_now(10)).unwrap();
        let a = make_node(&ca, &id("pop-a"), Validity::days_from_now(5)).unwrap();
        let b = make_node(&ca, &id("pop-b"), Validity::days_from_now(5)).unwrap();
        let first = revoke(&ca, None, &a.cert).unwrap();
        let summary = describe_crl(&first).unwrap();
        assert_eq!(summary.number.as_deref(), Some("1"));
        assert_eq!(summary.revoked, vec![serial_of(&a.cert).unwrap()]);
        assert_eq!(summary.issuer, "CN=edge lab CA");

        let second = revoke(&ca, Some(&first), &b.cert).unwrap();
        let summary = describe_crl(&second).unwrap();
        assert_eq!(summary.number.as_deref(), Some("2"));
        assert_eq!(
            summary.revoked,
            vec![serial_of(&a.cert).unwrap(), serial_of(&b.cert).unwrap()]
        );
        // Again: listed once, number still counts.
        let third = revoke(&ca, Some(&second), &b.cert).unwrap();
        let summary = describe_crl(&third).unwrap();
        assert_eq!(summary.number.as_deref(), Some("3"));
        assert_eq!(summary.revoked.len(), 2);
    }

    #[test]
    fn revoke_refuses_other_cas_material() {
        let ca = make_ca("edge lab CA", Validity::days_from_now(10)).unwrap();
        let other = make_ca("other CA", Validity::days_from_now(10)).unwrap();
        let foreign = make_node(&other, &id("pop-x"), Validity::days_from_now(5)).unwrap();
        let err = revoke(&ca, None, &foreign.cert).unwrap_err();
        assert!(matches!(err, PkiError::NotIssuedByCa { .. }), "{err}");

        let own = make_node(&ca, &id("pop-a"), Validity::days_from_now(5)).unwrap();
        let other_crl = revoke(&other, None, &foreign.cert).unwrap();
        let err = revoke(&ca, Some(&other_crl), &own.cert).unwrap_err();
        assert!(matches!(err, PkiError::ExistingCrl(_)), "{err}");
        let err = revoke(&ca, Some("garbage"), &own.cert).unwrap_err();
        assert!(matches!(err, PkiError::ExistingCrl(_)), "{err}");
    }

    #[test]
    fn bad_ca_material_is_refused() {
        let ca = make_ca("edge lab CA", Validity::days_from_now(10)).unwrap();
        let other = make_ca("other CA", Validity::days_from_now(10)).unwrap();
        let mixed = Pem {
            cert: ca.cert.clone(),
            key: other.key.clone(),
        };
        let err = make_node(&mixed, &id("pop-a"), Validity::days_from_now(5)).unwrap_err();
        assert!(matches!(err, PkiError::CaKeyMismatch(_)), "{err}");

        let node = make_node(&ca, &id("pop-a"), Validity::days_from_now(5)).unwrap();
        let err = make_node(&node, &id("pop-b"), Validity::days_from_now(5)).unwrap_err();
        assert!(matches!(err, PkiError::NotCa(_)), "{err}");

        let garbage = Pem {
            cert: "not pem".into(),
            key: "not pem".into(),
        };
        let err = make_node(&garbage, &id("pop-a"), Validity::days_from_now(5)).unwrap_err();
        assert!(matches!(err, PkiError::Pem { .. }), "{err}");
    }

    #[test]
    fn validity_outside_x509_is_an_error_not_a_panic() {
        assert!(matches!(
            make_ca("x", Validity::days_from_now(u32::MAX)),
            Err(PkiError::Validity(_))
        ));
        let now = SystemTime::now();
        let backwards = Validity {
            not_before: now,
            not_after: now - DAY,
        };
        assert!(matches!(
            make_ca("x", backwards),
            Err(PkiError::Validity(_))
        ));
        assert!(matches!(
            make_ca("", Validity::days_from_now(1)),
            Err(PkiError::CaName(_))
        ));
        let expired = Validity::expired();
        assert!(expired.not_after < now && expired.not_before < expired.not_after);
    }

    #[test]
    fn files_refuse_overwrite_and_keys_are_private() {
        let dir = std::env::temp_dir().join(format!(
            "edge-pki-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let ca = make_ca("edge lab CA", Validity::days_from_now(10)).unwrap();
        let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
        ca.write(&cert, &key, false).unwrap();
        let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(Pem::read(&cert, &key).unwrap(), ca);

        let again = make_ca("edge lab CA", Validity::days_from_now(10)).unwrap();
        let err = again.write(&cert, &key, false).unwrap_err();
        assert!(matches!(err, PkiError::Exists(_)), "{err}");
        assert!(err.to_string().contains("--force"));
        assert_eq!(Pem::read(&cert, &key).unwrap(), ca);
        again.write(&cert, &key, true).unwrap();
        assert_eq!(Pem::read(&cert, &key).unwrap(), again);
        let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary files left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn increment_carries() {
        assert_eq!(increment(&[1]), vec![2]);
        assert_eq!(increment(&[0xff]), vec![1, 0]);
        assert_eq!(increment(&[1, 0xff]), vec![2, 0]);
        assert_eq!(increment(&[]), vec![1]);
    }
}
