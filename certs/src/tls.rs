//! rustls configurations for the hub, enrolled agents and enrolling (bootstrap) agents.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use switchyard_common::ALPN;

use crate::agent::AgentKey;
use crate::ca::{CertificateAuthority, ServerIdentity};
use crate::error::{Error, Result};
use crate::peer::fingerprint;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(crypto::ring::default_provider())
}

/// Hub server config: TLS 1.3, ALPN, client certificates verified against the CA but optional.
///
/// An enrolling agent has no certificate yet, so anonymous clients complete the
/// handshake; the hub must restrict such connections to enrollment itself.
pub fn hub_server_config(
    ca: &CertificateAuthority,
    identity: &ServerIdentity,
) -> Result<rustls::ServerConfig> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der().clone()).map_err(Error::Tls)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(Error::Verifier)?;
    let identity = identity.clone();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(Error::Tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain, identity.key)
        .map_err(Error::Tls)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// Agent mutual-TLS client config: trusts only the CA stored at enrollment and
/// authenticates with the cluster certificate.
pub fn agent_client_config(
    ca_pem: &str,
    cert_pem: &str,
    key: &AgentKey,
) -> Result<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca_pem, "ca certificate")? {
        roots.add(cert).map_err(Error::Tls)?;
    }
    let chain = certificates(cert_pem, "cluster certificate")?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(Error::Tls)?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key.private_key_der())
        .map_err(Error::Tls)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// Bootstrap (enrollment) client config: no client certificate, and the hub is trusted
/// only if it presents a CA certificate whose SHA-256 is `ca_sha256` and its server
/// certificate verifies against that CA.
///
/// `ca_sha256` is hex in either case, with or without ':' separators.
pub fn bootstrap_client_config(ca_sha256: &str) -> Result<(rustls::ClientConfig, BootstrapProbe)> {
    let pin = normalize_fingerprint(ca_sha256)?;
    let provider = provider();
    let probe = BootstrapProbe::default();
    let verifier = PinnedCaVerifier {
        pin,
        provider: provider.clone(),
        probe: probe.clone(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(Error::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok((config, probe))
}

fn normalize_fingerprint(input: &str) -> Result<String> {
    let hex: String = input.trim().chars().filter(|&c| c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::Fingerprint(input.to_owned()));
    }
    Ok(hex.to_ascii_lowercase())
}

fn certificates(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| Error::Pem { what, source })?;
    if certs.is_empty() {
        return Err(Error::NoCertificate { what });
    }
    Ok(certs)
}

/// What the bootstrap verifier saw, so the agent can explain a failed enrollment.
#[derive(Clone, Default)]
pub struct BootstrapProbe {
    state: Arc<Mutex<ProbeState>>,
}

#[derive(Default)]
struct ProbeState {
    presented: Vec<String>,
    matched: Option<bool>,
}

impl BootstrapProbe {
    /// SHA-256 fingerprints (lowercase hex) of the CA certificates the hub presented
    /// (every certificate in its chain after its own), from the latest handshake.
    pub fn presented_ca_fingerprints(&self) -> Vec<String> {
        self.lock().presented.clone()
    }

    /// Whether one of them matched the pin; `None` if the verifier never ran.
    pub fn pin_matched(&self) -> Option<bool> {
        self.lock().matched
    }

    fn lock(&self) -> MutexGuard<'_, ProbeState> {
        // The state is plain data that is always left consistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for BootstrapProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("BootstrapProbe")
            .field("presented_ca_fingerprints", &state.presented)
            .field("pin_matched", &state.matched)
            .finish()
    }
}

struct PinnedCaVerifier {
    pin: String,
    provider: Arc<CryptoProvider>,
    probe: BootstrapProbe,
}

impl fmt::Debug for PinnedCaVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedCaVerifier")
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented: Vec<String> = intermediates.iter().map(|c| fingerprint(c)).collect();
        let pinned = presented
            .iter()
            .position(|fp| *fp == self.pin)
            .map(|i| intermediates[i].clone().into_owned());
        {
            let mut state = self.probe.lock();
            state.presented = presented;
            state.matched = Some(pinned.is_some());
        }
        let Some(ca) = pinned else {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        };
        // The pinned CA becomes the only root: the hub's certificate still has to chain to it
        // and name the host we dialled.
        let mut roots = RootCertStore::empty();
        roots.add(ca)?;
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
