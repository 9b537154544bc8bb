//! Tests of the control endpoint's mutual TLS (`trust.rs`): real handshakes
//! over in-memory duplex streams, with lab material from `pki.rs` written to
//! a private temporary directory.

use rcgen::SanType;
use tokio::io::duplex;

use super::*;
use crate::overlay::{
    pki::{self, Pem, Validity},
    test_lab::{Lab, Side, handshake, id},
};

const DAY: Duration = Duration::from_secs(86_400);

fn refusal(side: Side) -> Refusal {
    match side {
        Ok((_, peer)) => panic!("expected a refusal, but {} was accepted", peer.identity),
        Err(refusal) => refusal,
    }
}

fn peer_refused(side: Side) -> String {
    match refusal(side) {
        Refusal::PeerRefused(why) => why,
        other => panic!("expected PeerRefused, got {other:?}"),
    }
}

#[tokio::test]
async fn mutual_success_reports_both_identities_and_carries_data() {
    let lab = Lab::new("ok");
    let server = lab.trust("pop-a", &["pop-b"]);
    let client = lab.trust("pop-b", &["pop-a"]);
    assert_eq!(server.identity(), &id("pop-a"));
    assert_eq!(client.identity(), &id("pop-b"));

    let (accepted, connected) = handshake(&server, &client, "pop-a").await;
    let (mut server_stream, client_peer) = accepted.unwrap();
    let (mut client_stream, server_peer) = connected.unwrap();
    assert_eq!(client_peer.identity, id("pop-b"));
    assert_eq!(server_peer.identity, id("pop-a"));
    assert_eq!(client_peer.chain.len(), 1);
    let now = SystemTime::now();
    assert!(client_peer.not_after > now + DAY * 9 && client_peer.not_after < now + DAY * 11);

    // The confirmation byte was consumed; application data flows both ways.
    server_stream.write_all(b"hello from a").await.unwrap();
    server_stream.flush().await.unwrap();
    let mut buf = [0u8; 12];
    client_stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello from a");
    client_stream.write_all(b"hi").await.unwrap();
    client_stream.flush().await.unwrap();
    let mut buf = [0u8; 2];
    server_stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hi");

    let (_, conn) = server_stream.get_ref();
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(conn.alpn_protocol(), Some(ALPN));
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_an_unknown_issuer() {
    let lab = Lab::new("other-ca");
    let server = lab.trust("pop-a", &["pop-b"]);
    // pop-b from the other CA, trusting both CAs (so it accepts the server).
    let pem = pki::make_node(&lab.other, &id("pop-b"), Validity::days_from_now(10)).unwrap();
    lab.write("pop-b", &pem);
    let client = Trust::load(&lab.config("pop-b", "both.pem", &["pop-a"])).unwrap();

    let (accepted, connected) = handshake(&server, &client, "pop-a").await;
    assert_eq!(refusal(accepted), Refusal::UnknownIssuer);
    assert!(peer_refused(connected).contains("UnknownCA"));
}

#[tokio::test]
async fn server_certificate_from_another_ca_is_an_unknown_issuer() {
    let lab = Lab::new("other-ca-server");
    let pem = pki::make_node(&lab.other, &id("pop-a"), Validity::days_from_now(10)).unwrap();
    lab.write("pop-a", &pem);
    let server = Trust::load(&lab.config("pop-a", "both.pem", &["pop-b"])).unwrap();
    let client = lab.trust("pop-b", &["pop-a"]);

    let (accepted, connected) = handshake(&server, &client, "pop-a").await;
    assert_eq!(refusal(connected), Refusal::UnknownIssuer);
    assert!(peer_refused(accepted).contains("UnknownCA"));
}

#[tokio::test]
async fn identity_not_on_the_allow_list_is_refused() {
    let lab = Lab::new("allow");
    let server = lab.trust("pop-a", &["pop-c"]);
    let client = lab.trust("pop-b", &["pop-a"]);
    let (accepted, connected) = handshake(&server, &client, "pop-a").await;
    assert_eq!(refusal(accepted), Refusal::NotAllowed(id("pop-b")));
    assert!(peer_refused(connected).contains("allow-list"));

    // The other way round: the client does not allow the server.
    let server = lab.trust("pop-a", &["pop-b"]);
    let client = lab.trust("pop-b", &["pop-c", "pop-a-not"]);
    let (accepted, connected) = handshake(&server, &client, "pop-a").await;
    assert_eq!(refusal(connected), Refusal::NotAllowed(id("pop-a")));
    peer_refused(accepted);
}

#[tokio::test]
async fn expired_certificates_are_refused_on_both_sides() {
    let lab = Lab::new("expired");
    let server = lab.trust("pop-a", &["pop-b"]);
    lab.node("pop-b", Validity::expired());
    // Loaded as if it were three days ago, when the certificate was valid.
    let past = SystemTime::now() - DAY * 3;
    let client = Trust::load_at(&lab.config("pop-b", "ca.pem", &["pop-a"]), past).unwrap();
    let (accepted, connected) = handshake(&server, &client, "pop-a").await;
    assert_eq!(refusal(accepted), Refusal::Expired);
    assert!(peer_refused(connected).contains("expired"));

    // An expired server is refused by the client.
    let client = lab.trust("pop-c", &["pop-b"]);
    let expired_server = Trust::load_at(&lab.config("pop-b", "ca.pem", &["pop-c"]), past).unwrap();
    let (accepted, connected) = handshake(&expired_server, &client, "pop-b").await;
    assert_eq!(refusal(connected), Refusal::Expired);
    peer_refused(accepted);
}

#[tokio::test]
async fn certificates_not_valid_yet_are_refused() {
    let lab = Lab::new("not-yet");
    let server = lab.trust("pop-a", &["pop-b"]);
    lab.node("pop-b", Validity::not_yet_valid());
    let future = SystemTime::now() + DAY * 2;
    let client = Trust::load_at(&lab.config("pop-b", "ca.pem", &["pop-a"]), future).unwrap();
    let (accepted, connected) = handshake(&server, &client, "pop-a").await;
    assert_eq!(refusal(accepted), Refusal::NotYetValid);
    peer_refused(connected);
}

#[tokio::test]
async fn revoked_certificates_are_refused_on_both_sides() {
    let lab = Lab::new("revoked");
    let revoked = lab.node("pop-b", Validity::days_from_now(10));
    let crl = lab.revoke("crl.pem", &[&revoked]);
    let mut config = lab.config("pop-b", "ca.pem", &["pop-a"]);
    // pop-b itself loads without the CRL (it would refuse its own certificate).
    let client = Trust::load(&config).unwrap();
    config.crl = Some(crl.clone());
    assert!(matches!(
        Trust::load(&config),
        Err(TrustError::OwnCertificate {
            refusal: Refusal::Revoked,
            ..
        })
    ));

    lab.node("pop-a", Validity::days_from_now(10));
    let mut server_config = lab.config("pop-a", "ca.pem", &["pop-b"]);
    server_config.crl = Some(crl.clone());
    let server = Trust::load(&server_config).unwrap();
    let (accepted, connected) = handshake(&server, &client, "pop-a").await;
    assert_eq!(refusal(accepted), Refusal::Revoked);
    assert!(peer_refused(connected).contains("revoked"));

    // A client with the CRL refuses the revoked server.
    let revoked_server = Trust::load(&lab.config("pop-b", "ca.pem", &["pop-a"])).unwrap();
    let checking_client = Trust::load(&server_config).unwrap();
    let (accepted, connected) = handshake(&revoked_server, &checking_client, "pop-b").await;
    assert_eq!(refusal(connected), Refusal::Revoked);
    peer_refused(accepted);
}

#[tokio::test]
async fn crl_of_another_ca_does_not_refuse_our_certificates() {
    let lab = Lab::new("crl-other");
    let foreign = pki::make_node(&lab.other, &id("pop-x"), Validity::days_from_now(10)).unwrap();
    let other_crl = pki::revoke(&lab.other, None, &foreign.cert).unwrap();
    let path = lab.path("other-crl.pem");
    pki::write_public_file(&path, &other_crl, false).unwrap();
    lab.node("pop-a", Validity::days_from_now(10));
    let mut config = lab.config("pop-a", "ca.pem", &["pop-b"]);
    config.crl = Some(path);
    let server = Trust::load(&config).unwrap();
    let client = lab.trust("pop-b", &["pop-a"]);
    let (accepted, connected) = handshake(&server, &client, "pop-a").await;
    assert!(accepted.is_ok() && connected.is_ok());
}

#[tokio::test]
async fn server_proving_another_identity_is_a_mismatch() {
    let lab = Lab::new("mismatch");
    let server = lab.trust("pop-a", &["pop-b"]);
    let client = lab.trust("pop-b", &["pop-a", "pop-c"]);
    let (accepted, connected) = handshake(&server, &client, "pop-c").await;
    assert_eq!(
        refusal(connected),
        Refusal::Mismatch {
            claimed: id("pop-c"),
            proven: id("pop-a"),
        }
    );
    assert!(peer_refused(accepted).contains("rejected our certificate"));
}

/// A plain rustls client that checks the server like `trust.connect` (to
/// reach pop-a) but presents `cert` (or nothing) and offers `alpn`.
fn raw_client(trust: &Trust, cert: Option<&Pem>, alpn: &[&[u8]]) -> TlsConnector {
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ServerVerifier {
                policy: trust.policy.clone(),
                claimed: id("pop-a"),
            }));
    let mut config = match cert {
        None => builder.with_no_client_auth(),
        Some(pem) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(pem.cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

/// Runs `server.accept` against a raw client; returns the server's result
/// and what the client read after its handshake (or its error).
async fn against_raw(server: &Trust, client: TlsConnector) -> (Side, io::Result<u8>) {
    let (a, b) = duplex(64 * 1024);
    let name = ServerName::try_from("pop-a").unwrap();
    let client = async {
        let mut tls = client.connect(name, b).await?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await?;
        Ok(byte[0])
    };
    tokio::join!(server.accept(a), client)
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let lab = Lab::new("no-cert");
    let server = lab.trust("pop-a", &["pop-b"]);
    let checker = lab.trust("pop-b", &["pop-a"]);
    let (accepted, read) = against_raw(&server, raw_client(&checker, None, &[ALPN])).await;
    assert_eq!(refusal(accepted), Refusal::NoCertificate);
    assert!(read.is_err());
}

#[tokio::test]
async fn client_without_the_alpn_protocol_is_refused() {
    let lab = Lab::new("alpn");
    let server = lab.trust("pop-a", &["pop-b"]);
    let pem = lab.node("pop-b", Validity::days_from_now(10));
    let checker = Trust::load(&lab.config("pop-b", "ca.pem", &["pop-a"])).unwrap();
    let (accepted, read) = against_raw(&server, raw_client(&checker, Some(&pem), &[])).await;
    assert!(matches!(refusal(accepted), Refusal::Handshake(m) if m.contains("ALPN")));
    assert!(read.is_err(), "no confirmation byte: {read:?}");

    let (accepted, read) = against_raw(
        &server,
        raw_client(&checker, Some(&pem), &[b"h2".as_slice()]),
    )
    .await;
    assert!(matches!(refusal(accepted), Refusal::Handshake(_)));
    assert!(read.is_err());

    // With the protocol, the same client gets the confirmation.
    let (accepted, read) = against_raw(&server, raw_client(&checker, Some(&pem), &[ALPN])).await;
    assert_eq!(accepted.unwrap().1.identity, id("pop-b"));
    assert_eq!(read.unwrap(), ACCEPTED);
}

/// Deterministic bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = crate::net::random::Seeded::new(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

#[tokio::test]
async fn garbage_silence_and_hangups_end_in_refusals() {
    let lab = Lab::new("garbage");
    lab.node("pop-a", Validity::days_from_now(10));
    let mut config = lab.config("pop-a", "ca.pem", &["pop-b"]);
    config.handshake_timeout = Duration::from_millis(300);
    let server = Trust::load(&config).unwrap();

    // Plain text instead of a ClientHello.
    let (a, mut b) = duplex(64 * 1024);
    b.write_all(b"GET / HTTP/1.1\r\nHost: pop-a\r\n\r\n")
        .await
        .unwrap();
    assert!(matches!(
        refusal(server.accept(a).await),
        Refusal::Handshake(_)
    ));

    // Silence.
    let (a, _b) = duplex(64 * 1024);
    assert_eq!(refusal(server.accept(a).await), Refusal::Timeout);

    // Hanging up at once.
    let (a, b) = duplex(64 * 1024);
    drop(b);
    assert!(matches!(
        refusal(server.accept(a).await),
        Refusal::Handshake(_)
    ));

    // Random bytes: refused one way or the other, never accepted.
    for seed in 1..=20u64 {
        let (a, mut b) = duplex(64 * 1024);
        b.write_all(&noise(4096, seed)).await.unwrap();
        let refused = refusal(server.accept(a).await);
        assert!(
            matches!(refused, Refusal::Handshake(_) | Refusal::Timeout),
            "seed {seed}: {refused:?}"
        );
    }

    // A TLS ClientHello followed by silence.
    let (a, b) = duplex(64 * 1024);
    let client = lab.trust("pop-b", &["pop-a"]);
    let stalled = async {
        let mut tls = rustls::ClientConnection::new(
            Arc::new(client.client.clone()),
            ServerName::try_from(PLACEHOLDER_SERVER_NAME).unwrap(),
        )
        .unwrap();
        let mut hello = Vec::new();
        tls.write_tls(&mut hello).unwrap();
        let mut b = b;
        b.write_all(&hello).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        b
    };
    let (accepted, _b) = tokio::join!(server.accept(a), stalled);
    assert_eq!(refusal(accepted), Refusal::Timeout);

    // The client side: a silent server, a garbage server, a hang-up.
    let (a, _b) = duplex(64 * 1024);
    let mut client_config = lab.config("pop-b", "ca.pem", &["pop-a"]);
    client_config.handshake_timeout = Duration::from_millis(300);
    let client = Trust::load(&client_config).unwrap();
    assert_eq!(
        refusal(client.connect(a, &id("pop-a")).await),
        Refusal::Timeout
    );
    let (a, mut b) = duplex(64 * 1024);
    b.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await.unwrap();
    assert!(matches!(
        refusal(client.connect(a, &id("pop-a")).await),
        Refusal::Handshake(_)
    ));
    let (a, b) = duplex(64 * 1024);
    drop(b);
    assert!(matches!(
        refusal(client.connect(a, &id("pop-a")).await),
        Refusal::Handshake(_)
    ));
}

#[tokio::test]
async fn revalidate_follows_new_crls_allow_lists_and_time() {
    let lab = Lab::new("revalidate");
    let server = lab.trust("pop-a", &["pop-b"]);
    let client_pem = lab.node("pop-b", Validity::days_from_now(10));
    let client = Trust::load(&lab.config("pop-b", "ca.pem", &["pop-a"])).unwrap();
    let (accepted, connected) = handshake(&server, &client, "pop-a").await;
    let (_, client_peer) = accepted.unwrap();
    let (_, server_peer) = connected.unwrap();
    let now = SystemTime::now();
    server.revalidate(&client_peer, now).unwrap();
    client.revalidate(&server_peer, now).unwrap();

    // Expiry.
    assert_eq!(
        server.revalidate(&client_peer, now + DAY * 11),
        Err(Refusal::Expired)
    );

    // A new CRL revoking the established client.
    let crl = lab.revoke("crl.pem", &[&client_pem]);
    let mut config = lab.config("pop-a", "ca.pem", &["pop-b"]);
    config.crl = Some(crl);
    assert_ne!(config.stamp().unwrap(), *server.stamp());
    let reloaded = Trust::load(&config).unwrap();
    assert_eq!(
        reloaded.revalidate(&client_peer, now),
        Err(Refusal::Revoked)
    );
    // The old snapshot still accepts it.
    server.revalidate(&client_peer, now).unwrap();

    // Taken off the allow-list.
    let shrunk = Trust::load(&lab.config("pop-a", "ca.pem", &["pop-c"])).unwrap();
    assert_eq!(
        shrunk.revalidate(&client_peer, now),
        Err(Refusal::NotAllowed(id("pop-b")))
    );

    // A bundle without our CA any more.
    let moved = Trust::load(&{
        let pem = pki::make_node(&lab.other, &id("pop-a"), Validity::days_from_now(10)).unwrap();
        lab.write("pop-a-other", &pem);
        lab.config("pop-a-other", "other-ca.pem", &["pop-b"])
    })
    .unwrap();
    assert_eq!(
        moved.revalidate(&client_peer, now),
        Err(Refusal::UnknownIssuer)
    );

    // An identity that does not match the chain.
    let mut forged = client_peer.clone();
    forged.identity = id("pop-c");
    let allow_both = Trust::load(&lab.config("pop-a", "ca.pem", &["pop-b", "pop-c"])).unwrap();
    assert!(matches!(
        allow_both.revalidate(&forged, now),
        Err(Refusal::Mismatch { .. })
    ));
    let mut empty = client_peer.clone();
    empty.chain.clear();
    assert_eq!(server.revalidate(&empty, now), Err(Refusal::NoCertificate));
}

#[tokio::test]
async fn rotating_our_own_certificate_keeps_established_peers() {
    let lab = Lab::new("rotate");
    let server = lab.trust("pop-a", &["pop-b"]);
    let client = lab.trust("pop-b", &["pop-a"]);
    let (accepted, connected) = handshake(&server, &client, "pop-a").await;
    let (_, client_peer) = accepted.unwrap();
    let (_, server_peer) = connected.unwrap();

    // New key and certificate for pop-a, same identity and CA.
    let config = lab.config("pop-a", "ca.pem", &["pop-b"]);
    let before = config.stamp().unwrap();
    assert_eq!(&before, server.stamp());
    lab.node("pop-a", Validity::days_from_now(20));
    assert_ne!(config.stamp().unwrap(), before);
    let rotated = Trust::load(&config).unwrap();
    assert_eq!(rotated.identity(), &id("pop-a"));
    rotated.revalidate(&client_peer, SystemTime::now()).unwrap();
    // The client still accepts the rotated server's new chain…
    client.revalidate(&server_peer, SystemTime::now()).unwrap();
    // …and new connections to it.
    let (accepted, connected) = handshake(&rotated, &client, "pop-a").await;
    assert!(accepted.is_ok());
    assert_ne!(connected.unwrap().1.chain, server_peer.chain);
}

#[test]
fn load_reports_missing_files_by_name() {
    let lab = Lab::new("missing");
    lab.node("pop-a", Validity::days_from_now(10));
    let mut config = lab.config("pop-a", "ca.pem", &[]);
    config.key = lab.path("nowhere.key");
    let err = Trust::load(&config).unwrap_err();
    assert!(matches!(err, TrustError::Read { .. }), "{err}");
    assert!(err.to_string().contains("nowhere.key"), "{err}");
    let err = config.stamp().unwrap_err();
    assert!(err.to_string().contains("nowhere.key"), "{err}");

    let mut config = lab.config("pop-a", "ca.pem", &[]);
    config.crl = Some(lab.path("no-crl.pem"));
    let err = Trust::load(&config).unwrap_err();
    assert!(err.to_string().contains("no-crl.pem"), "{err}");
}

#[test]
fn load_refuses_a_key_of_another_certificate() {
    let lab = Lab::new("key-mismatch");
    lab.node("pop-a", Validity::days_from_now(10));
    lab.node("pop-b", Validity::days_from_now(10));
    let mut config = lab.config("pop-a", "ca.pem", &[]);
    config.key = lab.path("pop-b.key");
    let err = Trust::load(&config).unwrap_err();
    assert!(matches!(err, TrustError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("pop-b.key"), "{err}");

    config.key = lab.path("pop-a.pem");
    let err = Trust::load(&config).unwrap_err();
    assert!(matches!(err, TrustError::BadKey { .. }), "{err}");
}

#[test]
fn load_refuses_certificates_without_exactly_one_identity() {
    let lab = Lab::new("no-identity");
    let plain = pki::sign_leaf(
        &lab.ca,
        "plain",
        vec![SanType::DnsName("plain.example".try_into().unwrap())],
        Validity::days_from_now(10),
    )
    .unwrap();
    lab.write("plain", &plain);
    let err = Trust::load(&lab.config("plain", "ca.pem", &[])).unwrap_err();
    assert!(matches!(err, TrustError::NoIdentity { .. }), "{err}");
    assert!(err.to_string().contains("plain.pem"), "{err}");

    let two = pki::sign_leaf(
        &lab.ca,
        "two",
        vec![
            SanType::URI("edge://pop-a".try_into().unwrap()),
            SanType::URI("edge://pop-b".try_into().unwrap()),
        ],
        Validity::days_from_now(10),
    )
    .unwrap();
    lab.write("two", &two);
    let err = Trust::load(&lab.config("two", "ca.pem", &[])).unwrap_err();
    assert!(err.to_string().contains("2 edge:// URIs"), "{err}");

    let bad = pki::sign_leaf(
        &lab.ca,
        "bad",
        vec![SanType::URI("edge://pop_a".try_into().unwrap())],
        Validity::days_from_now(10),
    )
    .unwrap();
    lab.write("bad", &bad);
    let err = Trust::load(&lab.config("bad", "ca.pem", &[])).unwrap_err();
    assert!(matches!(err, TrustError::NoIdentity { .. }), "{err}");
}

#[test]
fn load_refuses_unacceptable_own_certificates() {
    let lab = Lab::new("own");
    // Issued by a CA outside the bundle.
    let foreign = pki::make_node(&lab.other, &id("pop-a"), Validity::days_from_now(10)).unwrap();
    lab.write("foreign", &foreign);
    let err = Trust::load(&lab.config("foreign", "ca.pem", &[])).unwrap_err();
    assert!(
        matches!(
            err,
            TrustError::OwnCertificate {
                refusal: Refusal::UnknownIssuer,
                ..
            }
        ),
        "{err}"
    );
    // Expired.
    lab.node("old", Validity::expired());
    let err = Trust::load(&lab.config("old", "ca.pem", &[])).unwrap_err();
    assert!(
        matches!(
            err,
            TrustError::OwnCertificate {
                refusal: Refusal::Expired,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("old.pem"), "{err}");
}

#[test]
fn load_refuses_broken_bundles_and_crls() {
    let lab = Lab::new("broken");
    lab.node("pop-a", Validity::days_from_now(10));
    // A node certificate in the CA bundle.
    let err = Trust::load(&lab.config("pop-a", "pop-a.pem", &[])).unwrap_err();
    assert!(matches!(err, TrustError::BadCa { index: 1, .. }), "{err}");
    // A bundle without certificates.
    let err = Trust::load(&lab.config("pop-a", "pop-a.key", &[])).unwrap_err();
    assert!(matches!(err, TrustError::Pem { .. }), "{err}");

    let mut config = lab.config("pop-a", "ca.pem", &[]);
    let path = lab.path("crl.pem");
    config.crl = Some(path.clone());
    pki::write_public_file(&path, "", true).unwrap();
    let err = Trust::load(&config).unwrap_err();
    assert!(err.to_string().contains("X509 CRL"), "{err}");
    pki::write_public_file(
        &path,
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        true,
    )
    .unwrap();
    let err = Trust::load(&config).unwrap_err();
    assert!(matches!(err, TrustError::BadCrl { index: 1, .. }), "{err}");
}

#[test]
fn stamps_change_only_when_files_do() {
    let lab = Lab::new("stamp");
    let trust = lab.trust("pop-a", &[]);
    let config = lab.config("pop-a", "ca.pem", &[]);
    assert_eq!(config.stamp().unwrap(), *trust.stamp());
    assert_eq!(config.stamp().unwrap(), config.stamp().unwrap());
    let ca = fs::read_to_string(lab.path("ca.pem")).unwrap();
    pki::write_public_file(&lab.path("ca.pem"), &ca, true).unwrap();
    assert_ne!(config.stamp().unwrap(), *trust.stamp());
}

#[test]
fn refusals_survive_the_trip_through_rustls_errors() {
    for refusal in [
        Refusal::UnknownIssuer,
        Refusal::Expired,
        Refusal::NotYetValid,
        Refusal::Revoked,
        Refusal::NoIdentity,
        Refusal::NotAllowed(id("pop-x")),
        Refusal::Mismatch {
            claimed: id("pop-a"),
            proven: id("pop-b"),
        },
        Refusal::BadCertificate("x".into()),
    ] {
        assert_eq!(refusal_from_tls(&refusal_to_tls(refusal.clone())), refusal);
        let io = io::Error::new(io::ErrorKind::InvalidData, refusal_to_tls(refusal.clone()));
        assert_eq!(refusal_from_io(&io), refusal);
    }
}

#[tokio::test]
async fn a_stranger_must_send_its_client_hello_at_once_and_finish_in_time() {
    let lab = Lab::new("first-flight");
    let server = lab.trust("pop-a", &["pop-b"]);
    let stranger = Some((Duration::from_millis(200), Duration::from_millis(600)));

    // Silence: refused after the first flight, not the handshake timeout.
    let (a, _b) = duplex(64 * 1024);
    let started = std::time::Instant::now();
    assert_eq!(
        refusal(server.accept_within(a, stranger).await),
        Refusal::NoClientHello(Duration::from_millis(200))
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    // Half a ClientHello, dripped: the same.
    let client = lab.trust("pop-b", &["pop-a"]);
    let mut tls = rustls::ClientConnection::new(
        Arc::new(client.client.clone()),
        ServerName::try_from(PLACEHOLDER_SERVER_NAME).unwrap(),
    )
    .unwrap();
    let mut hello = Vec::new();
    tls.write_tls(&mut hello).unwrap();
    let (a, b) = duplex(64 * 1024);
    let drip = async {
        let mut b = b;
        for byte in &hello[..hello.len() / 2] {
            if b.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        b
    };
    let (accepted, _b) = tokio::join!(server.accept_within(a, stranger), drip);
    assert!(matches!(refusal(accepted), Refusal::NoClientHello(_)));

    // A whole ClientHello, then silence: the stranger's total bounds it.
    let (a, b) = duplex(64 * 1024);
    let stalled = async {
        let mut b = b;
        b.write_all(&hello).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        b
    };
    let timed = async {
        let started = std::time::Instant::now();
        (server.accept_within(a, stranger).await, started.elapsed())
    };
    let ((accepted, took), _b) = tokio::join!(timed, stalled);
    assert_eq!(refusal(accepted), Refusal::Timeout);
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(1500),
        "{took:?}"
    );

    // A stranger who is allowed gets in through the same door.
    let (a, b) = duplex(64 * 1024);
    let pop_a = id("pop-a");
    let (accepted, connected) =
        tokio::join!(server.accept_within(a, stranger), client.connect(b, &pop_a));
    let (accepted, connected) = (accepted.unwrap(), connected.unwrap());
    assert_eq!(accepted.1.identity, id("pop-b"));
    assert_eq!(connected.1.identity, id("pop-a"));
}
