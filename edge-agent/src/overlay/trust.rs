//! Mutual TLS 1.3 for the overlay control endpoint: who may talk to us, and
//! proof of who we are. This module owns loading the trust material (CA
//! bundle, our certificate and key, an optional CRL file, the allow-list),
//! the TLS configurations built from it, the handshake in both directions
//! and re-checking an established peer against newer material.
//!
//! # Policy
//!
//! - TLS 1.3 only, with the *ring* provider named explicitly (never a
//!   process-wide default), ALPN [`ALPN`] required on both sides, no session
//!   resumption (every connection proves its certificate afresh) and no SNI.
//! - Both sides present a certificate. A peer's chain must lead to a CA in
//!   the bundle (webpki path building, intermediates as the peer sends them)
//!   with the extended key usage of its role (clientAuth for whoever
//!   connects, serverAuth for whoever accepts), be valid now, and not be
//!   revoked. A node's certificate therefore needs both usages;
//!   [`Trust::load`] checks ours has them.
//! - The peer's identity is the single `edge://` URI subject alternative
//!   name of its certificate ([`Identity`]); none, several or a malformed one
//!   is [`Refusal::NoIdentity`]. The identity must be on the allow-list (an
//!   empty list admits nobody). When connecting, it must also be the identity
//!   we meant to reach ([`Refusal::Mismatch`]). DNS names are not checked:
//!   the server name rustls sees is a fixed placeholder that is never sent.
//! - All of this runs inside the rustls certificate verifiers, so a refused
//!   peer fails the handshake with a TLS alert (unknown_ca,
//!   certificate_expired, certificate_revoked, certificate_unknown for an
//!   identity problem) and no application data is ever exchanged. The
//!   refusing side gets the precise [`Refusal`]; the refused side gets
//!   [`Refusal::PeerRefused`] naming the alert.
//!
//! # Revocation
//!
//! The CRL file (PEM, one or more `X509 CRL` blocks, typically one per CA)
//! is checked for every certificate of the chain (end entity and
//! intermediates). A certificate whose issuer has no CRL in the file is
//! accepted (webpki's `UnknownStatusPolicy::Allow`): the file need not cover
//! every CA of the bundle, and without a CRL file nothing is checked at all.
//! A CRL past its nextUpdate is still honoured (`ExpirationPolicy::Ignore`):
//! a stale list is better than none, and refusing everyone because the CRL
//! was not refreshed in time would take the whole overlay down. A CRL whose
//! signature does not verify against the issuer it names refuses the
//! certificates of that issuer.
//!
//! # Who is authenticated when (the TLS 1.3 subtlety)
//!
//! In TLS 1.3 the client completes its handshake *before* the server has
//! looked at the client's certificate: a client cannot tell from the
//! handshake alone whether it was accepted. So [`Trust::accept`], after the
//! server's handshake (which includes verifying the client), writes one
//! confirmation byte ([`ACCEPTED`]); [`Trust::connect`] returns only after
//! reading it. A server that refuses the client sends its alert instead,
//! which `connect` reports as [`Refusal::PeerRefused`]. The whole exchange,
//! confirmation included, is bounded by the handshake timeout, so peers that
//! send nothing, garbage, or stall end in a [`Refusal`] too.
//!
//! # Reloading
//!
//! A [`Trust`] is an immutable snapshot. To pick up new files, compare
//! [`TrustConfig::stamp`] with [`Trust::stamp`], [`Trust::load`] again, swap
//! the `Arc<Trust>`, and pass every established peer through the new
//! snapshot's [`Trust::revalidate`] (a revoked, expired or no longer allowed
//! peer is then refused). Rotating our own certificate does not disturb
//! established peers: only their chains are re-checked.

use std::{
    collections::BTreeSet,
    fmt, fs, io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    ServerConfig, SignatureScheme,
    client::{
        Resumption,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::WebPkiSupportedAlgorithms,
    server::{
        Acceptor, NoServerSessionStorage,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
    sign::{CertifiedKey, SingleCertAndKey},
};
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, TrustAnchor, UnixTime,
    pem::PemObject,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::{LazyConfigAcceptor, TlsConnector, TlsStream};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::extensions::GeneralName;

use super::identity::{Identity, SCHEME};

/// The ALPN protocol of the overlay control channel; both sides require it.
pub const ALPN: &[u8] = b"edge-overlay/1";

/// The byte the accepting side writes once it has verified the client (see
/// the module documentation).
pub const ACCEPTED: u8 = 0x01;

/// A sensible handshake timeout for [`TrustConfig::handshake_timeout`].
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server name rustls is given when connecting. It is never sent (SNI is
/// off) and never checked: peers are identified by their `edge://` URI.
const PLACEHOLDER_SERVER_NAME: &str = "edge-overlay.invalid";

/// Where the trust material lives, and the policy around it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustConfig {
    /// PEM file with the CA certificates peers' chains must lead to.
    pub ca_bundle: PathBuf,
    /// PEM file with our certificate, optionally followed by intermediates.
    pub cert: PathBuf,
    /// PEM file with our private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// PEM file with one or more CRLs, if revocation is checked.
    pub crl: Option<PathBuf>,
    /// The identities admitted as peers; empty admits nobody.
    pub allow: BTreeSet<Identity>,
    /// Bound on a whole handshake, confirmation byte included.
    pub handshake_timeout: Duration,
}

impl TrustConfig {
    /// The current stamp of every configured file, to compare with
    /// [`Trust::stamp`] when polling for changes. An error names the file.
    pub fn stamp(&self) -> io::Result<FileStamp> {
        self.stamp_files()
            .map_err(|(path, e)| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    fn files(&self) -> Vec<&Path> {
        let mut files = vec![self.ca_bundle.as_path(), &self.cert, &self.key];
        files.extend(self.crl.as_deref());
        files
    }

    fn stamp_files(&self) -> Result<FileStamp, (PathBuf, io::Error)> {
        self.files()
            .into_iter()
            .map(|path| {
                // metadata follows symlinks, so swapping a link's target
                // (as Kubernetes secrets do) changes the stamp.
                let meta = fs::metadata(path).map_err(|e| (path.to_path_buf(), e))?;
                Ok(FileMeta {
                    path: path.to_path_buf(),
                    dev: meta.dev(),
                    ino: meta.ino(),
                    len: meta.len(),
                    mtime: (meta.mtime(), meta.mtime_nsec()),
                    ctime: (meta.ctime(), meta.ctime_nsec()),
                })
            })
            .collect::<Result<_, _>>()
            .map(FileStamp)
    }
}

/// Identifies the versions of the files a [`Trust`] was loaded from (path,
/// device, inode, length, modification and change times of each); two equal
/// stamps mean no file was replaced or rewritten in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStamp(Vec<FileMeta>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct FileMeta {
    path: PathBuf,
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// A peer that passed the handshake: who it is and what it proved it with.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// The identity from its certificate, on the allow-list at the time.
    pub identity: Identity,
    /// The certificates it presented, its own first.
    pub chain: Vec<CertificateDer<'static>>,
    /// When its certificate expires.
    pub not_after: SystemTime,
}

/// Why a peer was not (or is no longer) accepted, or why a handshake failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The certificate does not chain to a CA in our bundle.
    #[error("the certificate was not issued by a CA in our CA bundle (unknown issuer)")]
    UnknownIssuer,
    /// The certificate's validity has ended.
    #[error("the certificate has expired")]
    Expired,
    /// The certificate's validity has not begun (check both clocks).
    #[error("the certificate is not valid yet (check the clocks of both nodes)")]
    NotYetValid,
    /// The certificate (or one of its issuers) is listed in our CRL file.
    #[error("the certificate is revoked by our CRL file")]
    Revoked,
    /// The client presented no certificate.
    #[error("the peer presented no client certificate")]
    NoCertificate,
    /// The certificate does not carry exactly one valid `edge://` URI.
    #[error(
        "the certificate does not carry exactly one valid edge:// URI subject alternative name"
    )]
    NoIdentity,
    /// The peer's identity is not on our allow-list.
    #[error("{0} is not on our allow-list")]
    NotAllowed(Identity),
    /// We connected to reach `claimed`, but the peer proved to be `proven`.
    #[error("we meant to reach {claimed}, but the peer proved to be {proven}")]
    Mismatch {
        /// Whom we meant to reach.
        claimed: Identity,
        /// Whom the certificate names.
        proven: Identity,
    },
    /// Another problem with the certificate (signature, key usage, encoding,
    /// an unverifiable CRL, …).
    #[error("the certificate is not acceptable: {0}")]
    BadCertificate(String),
    /// The peer refused us: the TLS alert it sent, explained.
    #[error("the peer refused us: {0}")]
    PeerRefused(String),
    /// The handshake failed for a reason other than the certificates
    /// (garbage, a protocol mismatch, the connection closing, …).
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    /// The handshake did not finish within the handshake timeout.
    #[error("the TLS handshake did not complete within the handshake timeout")]
    Timeout,
    /// A stranger (not a candidate) sent no complete ClientHello in time.
    #[error(
        "no TLS ClientHello within {0:?} (a connection from an address that is not a candidate must start its handshake at once)"
    )]
    NoClientHello(Duration),
}

impl Refusal {
    /// A short name per reason, for counters and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::UnknownIssuer => "unknown_issuer",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::Revoked => "revoked",
            Refusal::NoCertificate => "no_certificate",
            Refusal::NoIdentity => "no_identity",
            Refusal::NotAllowed(_) => "not_allowed",
            Refusal::Mismatch { .. } => "identity_mismatch",
            Refusal::BadCertificate(_) => "bad_certificate",
            Refusal::PeerRefused(_) => "refused_by_peer",
            Refusal::Handshake(_) => "handshake",
            Refusal::Timeout => "timeout",
            Refusal::NoClientHello(_) => "no_client_hello",
        }
    }

    /// Whether the other side simply was not there or did not speak TLS
    /// (unreachable, silent, garbage): nothing was refused on either side.
    pub fn is_transport(&self) -> bool {
        matches!(self, Refusal::Handshake(_) | Refusal::Timeout)
    }
}

/// Why the trust material could not be loaded. Every variant names the file
/// to fix.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A file is not usable PEM of the kind expected.
    #[error("{}: {detail}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A CA certificate in the bundle is unusable.
    #[error("{}: CA certificate #{index} is unusable: {detail}", path.display())]
    BadCa {
        /// The bundle file.
        path: PathBuf,
        /// Its position in the file, from 1.
        index: usize,
        /// What is wrong.
        detail: String,
    },
    /// A CRL in the CRL file is unusable.
    #[error("{}: CRL #{index} is unusable: {detail}", path.display())]
    BadCrl {
        /// The CRL file.
        path: PathBuf,
        /// Its position in the file, from 1.
        index: usize,
        /// What is wrong.
        detail: String,
    },
    /// The private key cannot be used.
    #[error("{}: the private key is unusable: {detail}", path.display())]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The key is not the key of our certificate.
    #[error(
        "the private key in {} does not belong to the certificate in {}: install the key made with that certificate",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// Our certificate file.
        cert: PathBuf,
        /// Our key file.
        key: PathBuf,
    },
    /// Our certificate carries no usable node identity.
    #[error(
        "{}: our certificate must carry exactly one edge://<name> URI subject alternative name: {detail}",
        path.display()
    )]
    NoIdentity {
        /// Our certificate file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// Our own certificate would be refused by a peer with the same
    /// material (unknown issuer, expired, revoked, missing key usage).
    #[error("{}: our own certificate is not acceptable: {refusal}", path.display())]
    OwnCertificate {
        /// Our certificate file.
        path: PathBuf,
        /// Why.
        refusal: Refusal,
    },
    /// rustls refused the configuration.
    #[error("cannot configure TLS: {0}")]
    Tls(String),
}

/// One immutable snapshot of the trust material, ready to authenticate
/// connections in both directions. Share it through an `Arc`.
pub struct Trust {
    identity: Identity,
    not_after: SystemTime,
    stamp: FileStamp,
    policy: Arc<Policy>,
    server: Arc<ServerConfig>,
    /// Everything but the verifier, which names the peer we mean to reach.
    client: ClientConfig,
    handshake_timeout: Duration,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trust")
            .field("identity", &self.identity)
            .field("not_after", &self.not_after)
            .field("policy", &self.policy)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl Trust {
    /// Reads and checks the files of `config`: the CA bundle and CRLs must
    /// parse, our certificate must carry exactly one `edge://` URI SAN, chain
    /// to the bundle, be valid now, not be revoked, allow both clientAuth and
    /// serverAuth, and match the key.
    pub fn load(config: &TrustConfig) -> Result<Trust, TrustError> {
        Self::load_at(config, SystemTime::now())
    }

    /// [`Trust::load`], checking our certificate's validity at `now`.
    fn load_at(config: &TrustConfig, now: SystemTime) -> Result<Trust, TrustError> {
        // Stamp first: a file replaced while we read shows up at the next poll.
        let stamp = config
            .stamp_files()
            .map_err(|(path, source)| TrustError::Read { path, source })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let bundle = read_certs(&config.ca_bundle, "CA certificate")?;
        let mut roots = Vec::new();
        for (i, der) in bundle.iter().enumerate() {
            let bad = |detail: String| TrustError::BadCa {
                path: config.ca_bundle.clone(),
                index: i + 1,
                detail,
            };
            let (_, parsed) =
                x509_parser::parse_x509_certificate(der).map_err(|e| bad(e.to_string()))?;
            if !parsed.is_ca() {
                return Err(bad(format!(
                    "`{}` is not a CA certificate (no basicConstraints CA:TRUE); the bundle holds CAs only",
                    parsed.subject()
                )));
            }
            let anchor =
                webpki::anchor_from_trusted_cert(der).map_err(|e| bad(format!("{e:?}")))?;
            roots.push(anchor.to_owned());
        }

        let mut crls = Vec::new();
        if let Some(path) = &config.crl {
            let bytes = read(path)?;
            let ders = CertificateRevocationListDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TrustError::Pem {
                    path: path.clone(),
                    detail: format!("not valid PEM: {e}"),
                })?;
            if ders.is_empty() {
                return Err(TrustError::Pem {
                    path: path.clone(),
                    detail: "holds no `X509 CRL` PEM block; put the CA's CRL there or remove the CRL setting"
                        .into(),
                });
            }
            for (i, der) in ders.iter().enumerate() {
                let crl =
                    OwnedCertRevocationList::from_der(der).map_err(|e| TrustError::BadCrl {
                        path: path.clone(),
                        index: i + 1,
                        detail: format!("{e:?}"),
                    })?;
                crls.push(CertRevocationList::from(crl));
            }
        }

        let chain = read_certs(&config.cert, "certificate")?;
        let key_der =
            PrivateKeyDer::from_pem_slice(&read(&config.key)?).map_err(|e| TrustError::BadKey {
                path: config.key.clone(),
                detail: match e {
                    rustls_pki_types::pem::Error::NoItemsFound => {
                        "no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY PEM block".into()
                    }
                    other => format!("not valid PEM: {other}"),
                },
            })?;
        let signing_key = provider
            .key_provider
            .load_private_key(key_der)
            .map_err(|e| TrustError::BadKey {
                path: config.key.clone(),
                detail: e.to_string(),
            })?;
        let certified = CertifiedKey::new(chain.clone(), signing_key);
        if certified.keys_match().is_err() {
            return Err(TrustError::KeyMismatch {
                cert: config.cert.clone(),
                key: config.key.clone(),
            });
        }
        let certified = Arc::new(certified);

        let (own, intermediates) = chain.split_first().ok_or_else(|| TrustError::Pem {
            path: config.cert.clone(),
            detail: "holds no CERTIFICATE PEM block".into(),
        })?;
        let identity = identity_of(own).map_err(|detail| TrustError::NoIdentity {
            path: config.cert.clone(),
            detail,
        })?;
        let not_after = not_after(own).map_err(|refusal| TrustError::OwnCertificate {
            path: config.cert.clone(),
            refusal,
        })?;

        let policy = Arc::new(Policy {
            hints: roots
                .iter()
                .map(|ta| DistinguishedName::in_sequence(ta.subject.as_ref()))
                .collect(),
            roots,
            crls,
            allow: config.allow.clone(),
            algorithms: provider.signature_verification_algorithms,
        });
        for usage in [KeyUsage::client_auth(), KeyUsage::server_auth()] {
            policy
                .check_chain(own, intermediates, unix(now), usage)
                .map_err(|refusal| TrustError::OwnCertificate {
                    path: config.cert.clone(),
                    refusal,
                })?;
        }

        let tls = |e: rustls::Error| TrustError::Tls(e.to_string());
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls)?
            .with_client_cert_verifier(Arc::new(ClientVerifier(policy.clone())))
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified.clone())));
        server.alpn_protocols = vec![ALPN.to_vec()];
        server.session_storage = Arc::new(NoServerSessionStorage {});
        server.send_tls13_tickets = 0;

        let mut client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ServerVerifier {
                policy: policy.clone(),
                claimed: identity.clone(),
            }))
            .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
        client.alpn_protocols = vec![ALPN.to_vec()];
        client.resumption = Resumption::disabled();
        client.enable_sni = false;

        Ok(Trust {
            identity,
            not_after,
            stamp,
            policy,
            server: Arc::new(server),
            client,
            handshake_timeout: config.handshake_timeout,
        })
    }

    /// Our own identity, from our certificate.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// When our own certificate expires.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The stamp of the files this snapshot was loaded from.
    pub fn stamp(&self) -> &FileStamp {
        &self.stamp
    }

    /// Runs the server side of the handshake on `stream`: the client must
    /// present an acceptable certificate with an allowed identity. On success
    /// the confirmation byte has been sent and the stream is ready for the
    /// overlay protocol. The whole handshake is bounded by the handshake
    /// timeout.
    pub async fn accept<S>(&self, stream: S) -> Result<(TlsStream<S>, Authenticated), Refusal>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.accept_within(stream, None).await
    }

    /// [`Trust::accept`], with tighter deadlines for a stranger when
    /// `deadlines` is `(first_flight, total)`: its ClientHello must have
    /// arrived within `first_flight` (before that nothing costs us more
    /// than buffering it), and the handshake must end within `total` (or
    /// the handshake timeout, whichever is shorter).
    pub async fn accept_within<S>(
        &self,
        stream: S,
        deadlines: Option<(Duration, Duration)>,
    ) -> Result<(TlsStream<S>, Authenticated), Refusal>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (first_flight, total) = match deadlines {
            Some((first, total)) => (first, total.min(self.handshake_timeout)),
            None => (self.handshake_timeout, self.handshake_timeout),
        };
        let handshake = async {
            let hello = LazyConfigAcceptor::new(Acceptor::default(), stream);
            let start = match tokio::time::timeout(first_flight, hello).await {
                Ok(start) => start.map_err(|e| refusal_from_io(&e))?,
                Err(_) if deadlines.is_some() => return Err(Refusal::NoClientHello(first_flight)),
                Err(_) => return Err(Refusal::Timeout),
            };
            let mut tls = start
                .into_stream(self.server.clone())
                .await
                .map_err(|e| refusal_from_io(&e))?;
            let (_, conn) = tls.get_ref();
            require_alpn(conn.alpn_protocol())?;
            let peer = authenticated(conn.peer_certificates())?;
            tls.write_all(&[ACCEPTED])
                .await
                .map_err(|e| refusal_from_io(&e))?;
            tls.flush().await.map_err(|e| refusal_from_io(&e))?;
            Ok((TlsStream::from(tls), peer))
        };
        tokio::time::timeout(total, handshake)
            .await
            .map_err(|_| Refusal::Timeout)?
    }

    /// Runs the client side of the handshake on `stream`, to reach the node
    /// `claimed`: the server must prove to be `claimed`, with an acceptable
    /// certificate, and must confirm it accepted ours.
    pub async fn connect<S>(
        &self,
        stream: S,
        claimed: &Identity,
    ) -> Result<(TlsStream<S>, Authenticated), Refusal>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut config = self.client.clone();
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(ServerVerifier {
                policy: self.policy.clone(),
                claimed: claimed.clone(),
            }));
        let connector = TlsConnector::from(Arc::new(config));
        let server_name = ServerName::try_from(PLACEHOLDER_SERVER_NAME)
            .map_err(|e| Refusal::Handshake(e.to_string()))?;
        let handshake = async {
            let mut tls = connector
                .connect(server_name, stream)
                .await
                .map_err(|e| refusal_from_io(&e))?;
            let (_, conn) = tls.get_ref();
            require_alpn(conn.alpn_protocol())?;
            let peer = authenticated(conn.peer_certificates())?;
            let mut confirmation = [0u8; 1];
            match tls.read_exact(&mut confirmation).await {
                Ok(_) if confirmation[0] == ACCEPTED => {}
                Ok(_) => {
                    return Err(Refusal::Handshake(format!(
                        "the peer sent {:#04x} instead of the confirmation byte; is it an edge node?",
                        confirmation[0]
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(Refusal::PeerRefused(
                        "it closed the connection without confirming it accepted us".into(),
                    ));
                }
                Err(e) => return Err(refusal_from_io(&e)),
            }
            Ok((TlsStream::from(tls), peer))
        };
        tokio::time::timeout(self.handshake_timeout, handshake)
            .await
            .map_err(|_| Refusal::Timeout)?
    }

    /// Whether `peer` is still acceptable under this snapshot's material at
    /// `now`: its chain re-verified against the current CA bundle and CRLs
    /// (for either role), its certificate valid at `now`, its identity still
    /// on the allow-list. Used after a reload and periodically.
    pub fn revalidate(&self, peer: &Authenticated, now: SystemTime) -> Result<(), Refusal> {
        let (end_entity, intermediates) = peer.chain.split_first().ok_or(Refusal::NoCertificate)?;
        let now = unix(now);
        // It was checked for the role it had (clientAuth when it connected
        // to us, serverAuth when we connected); nodes hold both, so accept
        // either here.
        #[allow(deprecated)] // webpki 0.103 still has the context-free variant
        match self
            .policy
            .verify(end_entity, intermediates, now, KeyUsage::client_auth())
        {
            Err(webpki::Error::RequiredEkuNotFound)
            | Err(webpki::Error::RequiredEkuNotFoundContext(_)) => self
                .policy
                .verify(end_entity, intermediates, now, KeyUsage::server_auth())
                .map_err(refusal_from_webpki)?,
            other => other.map_err(refusal_from_webpki)?,
        }
        let proven = self.policy.admit(end_entity)?;
        if proven != peer.identity {
            return Err(Refusal::Mismatch {
                claimed: peer.identity.clone(),
                proven,
            });
        }
        Ok(())
    }
}

/// The verification policy both directions and [`Trust::revalidate`] share.
struct Policy {
    roots: Vec<TrustAnchor<'static>>,
    /// Root subjects, sent to clients as hints for choosing a certificate.
    hints: Vec<DistinguishedName>,
    crls: Vec<CertRevocationList<'static>>,
    allow: BTreeSet<Identity>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("roots", &self.roots.len())
            .field("crls", &self.crls.len())
            .field("allow", &self.allow)
            .finish()
    }
}

impl Policy {
    /// webpki path building from `end_entity` to a root for `usage` at
    /// `now`, with revocation as described in the module documentation.
    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        usage: KeyUsage,
    ) -> Result<(), webpki::Error> {
        let cert = EndEntityCert::try_from(end_entity)?;
        let crls: Vec<&CertRevocationList<'_>> = self.crls.iter().collect();
        let revocation = RevocationOptionsBuilder::new(&crls).ok().map(|builder| {
            builder
                .with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(UnknownStatusPolicy::Allow)
                .with_expiration_policy(ExpirationPolicy::Ignore)
                .build()
        });
        cert.verify_for_usage(
            self.algorithms.all,
            &self.roots,
            intermediates,
            now,
            usage,
            revocation,
            None,
        )
        .map(|_| ())
    }

    fn check_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        usage: KeyUsage,
    ) -> Result<(), Refusal> {
        self.verify(end_entity, intermediates, now, usage)
            .map_err(refusal_from_webpki)
    }

    /// The identity of `end_entity`, if it is on the allow-list.
    fn admit(&self, end_entity: &CertificateDer<'_>) -> Result<Identity, Refusal> {
        let identity = identity_of(end_entity).map_err(|_| Refusal::NoIdentity)?;
        if !self.allow.contains(&identity) {
            return Err(Refusal::NotAllowed(identity));
        }
        Ok(identity)
    }
}

/// The server's check of client certificates.
#[derive(Debug)]
struct ClientVerifier(Arc<Policy>);

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.0.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .check_chain(end_entity, intermediates, now, KeyUsage::client_auth())
            .and_then(|()| self.0.admit(end_entity))
            .map(|_| ClientCertVerified::assertion())
            .map_err(refusal_to_tls)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.algorithms.supported_schemes()
    }
}

/// The client's check of the server certificate, for one connection: the
/// server must be `claimed`.
#[derive(Debug)]
struct ServerVerifier {
    policy: Arc<Policy>,
    claimed: Identity,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let check = || {
            self.policy
                .check_chain(end_entity, intermediates, now, KeyUsage::server_auth())?;
            let proven = identity_of(end_entity).map_err(|_| Refusal::NoIdentity)?;
            if proven != self.claimed {
                return Err(Refusal::Mismatch {
                    claimed: self.claimed.clone(),
                    proven,
                });
            }
            self.policy.admit(end_entity)
        };
        check()
            .map(|_| ServerCertVerified::assertion())
            .map_err(refusal_to_tls)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.policy.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.policy.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.policy.algorithms.supported_schemes()
    }
}

/// The identity in `cert`: its single `edge://` URI SAN, or what is wrong.
fn identity_of(cert: &[u8]) -> Result<Identity, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let sans = parsed
        .subject_alternative_name()
        .map_err(|e| format!("its subject alternative names do not parse: {e}"))?;
    let uris: Vec<&str> = sans
        .iter()
        .flat_map(|ext| &ext.value.general_names)
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .filter(|uri| {
            uri.get(..SCHEME.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
        })
        .collect();
    match uris.as_slice() {
        [] => Err("it has no edge:// URI subject alternative name".into()),
        [uri] => uri.parse().map_err(|e| format!("{e}")),
        many => Err(format!(
            "it has {} edge:// URIs ({}); exactly one is allowed",
            many.len(),
            many.join(", ")
        )),
    }
}

/// When `cert` expires.
fn not_after(cert: &[u8]) -> Result<SystemTime, Refusal> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| Refusal::BadCertificate(format!("it does not parse: {e}")))?;
    let secs = parsed.validity().not_after.timestamp();
    let time = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    time.ok_or_else(|| Refusal::BadCertificate("its expiry date is out of range".into()))
}

/// The peer of a finished handshake. The verifiers have already checked
/// the chain; this only extracts what they checked.
fn authenticated(chain: Option<&[CertificateDer<'static>]>) -> Result<Authenticated, Refusal> {
    let chain = chain
        .filter(|c| !c.is_empty())
        .ok_or(Refusal::NoCertificate)?;
    let identity = identity_of(&chain[0]).map_err(|_| Refusal::NoIdentity)?;
    Ok(Authenticated {
        identity,
        not_after: not_after(&chain[0])?,
        chain: chain.to_vec(),
    })
}

fn require_alpn(negotiated: Option<&[u8]>) -> Result<(), Refusal> {
    if negotiated == Some(ALPN) {
        Ok(())
    } else {
        Err(Refusal::Handshake(format!(
            "the peer did not negotiate ALPN `{}`; is it an edge node of this version?",
            String::from_utf8_lossy(ALPN)
        )))
    }
}

fn unix(t: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(t.duration_since(UNIX_EPOCH).unwrap_or_default())
}

fn read(path: &Path) -> Result<Vec<u8>, TrustError> {
    fs::read(path).map_err(|source| TrustError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Every CERTIFICATE block of a PEM file; at least one.
fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let certs = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TrustError::Pem {
            path: path.to_path_buf(),
            detail: format!("not valid PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TrustError::Pem {
            path: path.to_path_buf(),
            detail: format!("holds no CERTIFICATE PEM block (expected the {what})"),
        });
    }
    Ok(certs)
}

fn refusal_from_webpki(e: webpki::Error) -> Refusal {
    use webpki::Error as E;
    #[allow(deprecated)] // webpki 0.103 still has the context-free variant
    match e {
        E::CertExpired { .. } => Refusal::Expired,
        E::CertNotValidYet { .. } => Refusal::NotYetValid,
        E::CertRevoked => Refusal::Revoked,
        E::UnknownIssuer => Refusal::UnknownIssuer,
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => Refusal::BadCertificate(
            "its extended key usage does not allow this role (a node needs serverAuth and clientAuth)"
                .into(),
        ),
        E::CaUsedAsEndEntity => {
            Refusal::BadCertificate("it is a CA certificate, not a node certificate".into())
        }
        E::InvalidCrlSignatureForPublicKey => Refusal::BadCertificate(
            "a CRL in our CRL file names its issuer but is not signed by it".into(),
        ),
        E::InvalidSignatureForPublicKey => {
            Refusal::BadCertificate(
                "its signature does not verify with the CA of that name in our bundle (signed by another CA with the same name?)".into(),
            )
        }
        other => Refusal::BadCertificate(format!("{other:?}")),
    }
}

/// The rustls error a verifier returns for `refusal`: the standard
/// certificate errors where one fits (so the peer gets the matching TLS
/// alert), otherwise the refusal itself, recovered by [`refusal_from_tls`].
fn refusal_to_tls(refusal: Refusal) -> rustls::Error {
    rustls::Error::InvalidCertificate(match refusal {
        Refusal::UnknownIssuer => CertificateError::UnknownIssuer,
        Refusal::Expired => CertificateError::Expired,
        Refusal::NotYetValid => CertificateError::NotValidYet,
        Refusal::Revoked => CertificateError::Revoked,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    })
}

fn refusal_from_tls(e: &rustls::Error) -> Refusal {
    match e {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => Refusal::UnknownIssuer,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => Refusal::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Refusal::NotYetValid
            }
            CertificateError::Revoked => Refusal::Revoked,
            CertificateError::Other(OtherError(inner)) => inner
                .downcast_ref::<Refusal>()
                .cloned()
                .unwrap_or_else(|| Refusal::BadCertificate(inner.to_string())),
            other => Refusal::BadCertificate(other.to_string()),
        },
        rustls::Error::NoCertificatesPresented => Refusal::NoCertificate,
        rustls::Error::AlertReceived(alert) => Refusal::PeerRefused(explain_alert(*alert)),
        other => Refusal::Handshake(other.to_string()),
    }
}

fn refusal_from_io(e: &io::Error) -> Refusal {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return refusal_from_tls(tls);
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            Refusal::Handshake("the peer closed the connection during the handshake".into())
        }
        _ => Refusal::Handshake(e.to_string()),
    }
}

fn explain_alert(alert: rustls::AlertDescription) -> String {
    use rustls::AlertDescription as A;
    let why = match alert {
        A::UnknownCA => "it does not trust the CA of our certificate",
        A::CertificateExpired => "it considers our certificate expired or not yet valid",
        A::CertificateRevoked => "our certificate is revoked in its CRL",
        A::CertificateUnknown | A::BadCertificate => {
            "it rejected our certificate (our identity is not on its allow-list, or not the one it expected)"
        }
        A::CertificateRequired => "it requires a certificate",
        A::UnsupportedCertificate => "our certificate lacks the extended key usage it requires",
        A::NoApplicationProtocol => "it does not speak the edge overlay protocol (ALPN)",
        A::ProtocolVersion => "it does not speak TLS 1.3",
        A::DecryptError => "a signature did not verify",
        _ => "",
    };
    if why.is_empty() {
        format!("TLS alert {alert:?}")
    } else {
        format!("{why} (TLS alert {alert:?})")
    }
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
