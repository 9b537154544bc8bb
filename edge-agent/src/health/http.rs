//! The HTTP and HTTPS probe: one GET request (reqwest on hyper, rustls on
//! *ring*) whose status must fall in a range (default 200–399), and whose
//! body, if asked, must contain a given text. Redirects are not followed,
//! proxies are not used, and every probe opens a fresh connection (nothing
//! is pooled), so a probe proves the listener still accepts.
//!
//! HTTPS verifies the server against the system's root certificates, plus
//! those of an extra CA file if one is given; for lab use only,
//! verification can be skipped (the handshake signatures are still
//! checked, the certificate and name are not).

use std::{fmt, net::IpAddr, ops::RangeInclusive, path::PathBuf, sync::Arc};

use reqwest::{
    Url,
    header::{HOST, HeaderValue},
};
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};

use super::outcome::{Outcome, ProbeError};
use crate::net::tcp::connect_error;

/// The most body bytes read while looking for the expected text.
pub const MAX_BODY: usize = 64 * 1024;

/// The User-Agent of every probe.
const USER_AGENT: &str = concat!("edge-agent-health/", env!("CARGO_PKG_VERSION"));

/// A GET request to `url`; healthy iff the answer matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpProbe {
    /// An `http://` or `https://` URL.
    pub url: String,
    /// The statuses that count as healthy (default `200..=399`).
    pub expect_status: RangeInclusive<u16>,
    /// Text the body must contain (within its first [`MAX_BODY`] bytes).
    pub body_contains: Option<String>,
    /// The Host header to send instead of the URL's host (the TLS server
    /// name stays the URL's host).
    pub host: Option<String>,
    /// Connect to this address instead of resolving the URL's host name
    /// (the port is the URL's); for HTTPS, the URL's name is the one
    /// verified.
    pub resolve_to: Option<IpAddr>,
    /// How an `https://` URL's server is verified.
    pub tls: TlsOptions,
}

/// How an HTTPS probe verifies the server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// A PEM file of CA certificates trusted besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate for any name. For labs only: the probe then
    /// proves nothing about who answered.
    pub insecure_skip_verify: bool,
}

impl HttpProbe {
    /// A probe of `url` expecting `200..=399`, any body.
    pub fn new(url: impl Into<String>) -> HttpProbe {
        HttpProbe {
            url: url.into(),
            expect_status: 200..=399,
            body_contains: None,
            host: None,
            resolve_to: None,
            tls: TlsOptions::default(),
        }
    }

    /// Checks the probe and builds its client.
    pub(crate) fn prepare(&self) -> Result<PreparedHttp, ProbeError> {
        let url = Url::parse(&self.url).map_err(|e| ProbeError::Url {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err(ProbeError::Scheme(self.url.clone())),
        };
        let Some(url_host) = url.host_str().map(str::to_owned) else {
            return Err(ProbeError::Url {
                url: self.url.clone(),
                reason: "it has no host".into(),
            });
        };
        let (lo, hi) = (*self.expect_status.start(), *self.expect_status.end());
        if lo > hi || lo < 100 || hi > 599 {
            return Err(ProbeError::StatusRange { lo, hi });
        }
        if self.body_contains.as_deref() == Some("") {
            return Err(ProbeError::EmptyBodyMatch);
        }
        let host = match &self.host {
            Some(h) => Some(
                HeaderValue::from_str(h)
                    .ok()
                    .filter(|_| !h.is_empty())
                    .ok_or_else(|| ProbeError::HostHeader(h.clone()))?,
            ),
            None => None,
        };
        let tls = tls_config(&self.tls, https, &self.url)?;
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .pool_max_idle_per_host(0)
            .user_agent(USER_AGENT)
            .tls_backend_preconfigured(tls);
        if let Some(ip) = self.resolve_to {
            builder = builder.resolve(&url_host, (ip, 0).into());
        }
        let client = builder.build().map_err(|e| ProbeError::Client {
            url: self.url.clone(),
            reason: chain(&e),
        })?;
        Ok(PreparedHttp {
            client,
            url,
            host,
            expect: self.expect_status.clone(),
            body_contains: self.body_contains.clone(),
        })
    }
}

/// An [`HttpProbe`] with its client.
pub(crate) struct PreparedHttp {
    client: reqwest::Client,
    url: Url,
    host: Option<HeaderValue>,
    expect: RangeInclusive<u16>,
    body_contains: Option<String>,
}

impl fmt::Debug for PreparedHttp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedHttp")
            .field("url", &self.url.as_str())
            .field("host", &self.host)
            .field("expect", &self.expect)
            .field("body_contains", &self.body_contains)
            .finish_non_exhaustive()
    }
}

impl PreparedHttp {
    /// Sends the request once and judges the answer.
    pub(crate) async fn run(&self) -> Outcome {
        let mut request = self.client.get(self.url.clone());
        if let Some(host) = &self.host {
            request = request.header(HOST, host.clone());
        }
        let mut response = request.send().await.map_err(|e| request_error(&e))?;
        let status = response.status().as_u16();
        if !self.expect.contains(&status) {
            return Err(format!("HTTP {status}"));
        }
        let Some(needle) = &self.body_contains else {
            return Ok(format!("HTTP {status}"));
        };
        let mut body = Vec::new();
        while body.len() < MAX_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if contains(&body, needle.as_bytes()) {
                        return Ok(format!("HTTP {status}, body matches"));
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(format!("HTTP {status}, reading the body: {}", chain(&e))),
            }
        }
        if contains(&body, needle.as_bytes()) {
            return Ok(format!("HTTP {status}, body matches"));
        }
        Err(format!(
            "HTTP {status}, body lacks `{needle}` (read {} bytes)",
            body.len()
        ))
    }
}

/// Whether `haystack` contains `needle`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Why a request failed, short: `connect refused`, `TLS: …`, `HTTP: …`.
fn request_error(e: &reqwest::Error) -> String {
    if let Some(tls) = find::<rustls::Error>(e) {
        return format!("TLS: {tls}");
    }
    if e.is_connect() {
        return match find::<std::io::Error>(e) {
            Some(io) => connect_error(io),
            None => format!("connect: {}", chain(e)),
        };
    }
    format!("HTTP: {}", chain(e))
}

/// The first `T` in the chain of `e`, looking inside I/O errors too (whose
/// `source` skips the error they wrap).
fn find<'e, T: std::error::Error + 'static>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut source = Some(e);
    while let Some(err) = source {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(found) = find::<T>(inner) {
                return Some(found);
            }
        }
        source = err.source();
    }
    None
}

/// An error and its sources, `: `-separated, without repeats.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = Some(e);
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    parts.join(": ")
}

/// The rustls configuration of a probe, on the *ring* provider.
fn tls_config(options: &TlsOptions, https: bool, url: &str) -> Result<ClientConfig, ProbeError> {
    let tls_error = |reason: String| ProbeError::Tls {
        url: url.to_owned(),
        reason,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?;
    let config = if !https {
        // Never used: the URL is plain HTTP and redirects are not followed.
        builder
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth()
    } else if options.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        let extra = match &options.ca_file {
            Some(path) => read_ca_file(path)?,
            None => Vec::new(),
        };
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
            .map_err(|e| tls_error(e.to_string()))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    };
    Ok(config)
}

/// The certificates of a PEM file; at least one.
fn read_ca_file(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, ProbeError> {
    let ca_error = |reason: String| ProbeError::CaFile {
        path: path.clone(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| ca_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(ca_error("it holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// A verifier that accepts any certificate for any name, but still checks
/// that the handshake was signed by the certificate's key.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
