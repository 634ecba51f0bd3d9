//! rustls configurations for the hub, enrolled agents and enrolling (bootstrap) agents.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use switchyard_common::ALPN;

use crate::agent::AgentKey;
use crate::ca::{CertificateAuthority, ServerIdentity};
use crate::error::{Error, Result};
use crate::peer::fingerprint;

/// ring, with TLS 1.3's AES-128-GCM-SHA256 preferred over rustls's default
/// AES-256-GCM-SHA384. The hub does a handshake per agent connection and
/// encrypts every packet of thousands of them: AES-128 is ten rounds to
/// AES-256's fourteen, and SHA-256 (the key schedule's hash) runs on the
/// SHA extensions of current x86 and ARM processors where ring computes
/// SHA-384 in software. It is the suite every TLS 1.3 peer must support and
/// the one QUIC's Initial packets already use; peers that prefer another
/// suite still get it.
fn provider() -> Arc<CryptoProvider> {
    let mut provider = crypto::ring::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    Arc::new(provider)
}

/// ALPN of the admin API: HTTP/1.1 over TLS.
const HTTP1_ALPN: &[u8] = b"http/1.1";

/// The hub's server certificate as both listeners (QUIC for agents, HTTPS for
/// the admin API) present it. It can be replaced while they run, so a renewed
/// certificate takes effect on the next handshake without a restart.
pub struct ServerCertificate {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServerCertificate {
    pub fn new(identity: &ServerIdentity) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            current: RwLock::new(certified_key(identity)?),
        }))
    }

    /// Present `identity` from the next handshake on.
    pub fn replace(&self, identity: &ServerIdentity) -> Result<()> {
        let key = certified_key(identity)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = key;
        Ok(())
    }

    /// The certificate presented now (the leaf, DER).
    pub fn leaf(&self) -> CertificateDer<'static> {
        self.current().cert[0].clone()
    }

    fn current(&self) -> Arc<CertifiedKey> {
        // Replacing swaps one Arc for another, so a poisoned lock still holds a whole key.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCertificate")
            .field("leaf_sha256", &fingerprint(&self.leaf()))
            .finish()
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn certified_key(identity: &ServerIdentity) -> Result<Arc<CertifiedKey>> {
    let identity = identity.clone();
    CertifiedKey::from_der(identity.chain, identity.key, &provider())
        .map(Arc::new)
        .map_err(Error::Tls)
}

/// Hub server config: TLS 1.3, ALPN, client certificates verified against the CA but optional.
///
/// An enrolling agent has no certificate yet, so anonymous clients complete the
/// handshake; the hub must restrict such connections to enrollment itself.
pub fn hub_server_config(
    ca: &CertificateAuthority,
    certificate: Arc<ServerCertificate>,
) -> Result<rustls::ServerConfig> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der().clone()).map_err(Error::Tls)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(Error::Verifier)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(Error::Tls)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![ALPN.to_vec()];
    // Agents never resume (every connection is a full handshake with the
    // current certificate, checked against revocation by the hub), so
    // session tickets would be work and bytes for nothing on every one of
    // thousands of reconnections.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    // The hub's suite order (see `provider`), also with agents of older
    // releases that list AES-256 first.
    config.ignore_client_order = true;
    Ok(config)
}

/// Admin API (HTTPS) server config: the same server certificate as the QUIC
/// endpoint, TLS 1.2 or 1.3 so ordinary HTTP clients connect, HTTP/1.1, and
/// no client certificates (callers authenticate with bearer tokens).
pub fn admin_server_config(certificate: Arc<ServerCertificate>) -> Result<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![HTTP1_ALPN.to_vec()];
    Ok(config)
}

/// Admin API client config trusting only the CA certificate(s) in `ca_pem`.
pub fn admin_client_config(ca_pem: &str) -> Result<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca_pem, "ca certificate")? {
        roots.add(cert).map_err(Error::Tls)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![HTTP1_ALPN.to_vec()];
    Ok(config)
}

/// Admin API client config trusting the hub only if it presents the CA whose
/// SHA-256 is `ca_sha256` (as `switchyard-agent join --ca-sha256` does) and
/// its certificate chains to that CA and names the host dialled.
pub fn admin_pinned_client_config(
    ca_sha256: &str,
) -> Result<(rustls::ClientConfig, BootstrapProbe)> {
    pinned_client_config(ca_sha256, HTTP1_ALPN)
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
    // The hub issues no tickets (see `hub_server_config`).
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// Bootstrap (enrollment) client config: no client certificate, and the hub is trusted
/// only if it presents a CA certificate whose SHA-256 is `ca_sha256` and its server
/// certificate verifies against that CA.
///
/// `ca_sha256` is hex in either case, with or without ':' separators.
pub fn bootstrap_client_config(ca_sha256: &str) -> Result<(rustls::ClientConfig, BootstrapProbe)> {
    pinned_client_config(ca_sha256, ALPN)
}

fn pinned_client_config(
    ca_sha256: &str,
    alpn: &[u8],
) -> Result<(rustls::ClientConfig, BootstrapProbe)> {
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
    config.alpn_protocols = vec![alpn.to_vec()];
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgentKey, peer_identity};
    use rustls::{ClientConnection, ConnectionCommon, ServerConnection};
    use std::time::Duration;
    use switchyard_common::ClusterName;

    const HUB: &str = "hub.example";

    #[derive(Debug)]
    enum Failed {
        Client(rustls::Error),
        Server(rustls::Error),
    }

    /// Shuttle TLS records between the two ends in memory until both are done.
    fn handshake(
        client: &mut ClientConnection,
        server: &mut ServerConnection,
    ) -> Result<(), Failed> {
        for _ in 0..32 {
            let to_server = pump(client, server).map_err(Failed::Server)?;
            let to_client = pump(server, client).map_err(Failed::Client)?;
            if !to_server && !to_client && !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        panic!("handshake did not finish");
    }

    /// Move everything `from` wants to send into `to`; true if anything moved.
    fn pump<A, B>(
        from: &mut ConnectionCommon<A>,
        to: &mut ConnectionCommon<B>,
    ) -> Result<bool, rustls::Error> {
        let mut buf = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut buf).unwrap();
        }
        let mut data = &buf[..];
        while !data.is_empty() {
            to.read_tls(&mut data).unwrap();
            to.process_new_packets()?;
        }
        Ok(!buf.is_empty())
    }

    struct Hub {
        _dir: tempfile::TempDir,
        ca: CertificateAuthority,
        server: Arc<rustls::ServerConfig>,
    }

    fn hub() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let identity = ca
            .load_or_issue_server_identity(dir.path(), &[HUB.to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
        let server =
            Arc::new(hub_server_config(&ca, ServerCertificate::new(&identity).unwrap()).unwrap());
        Hub {
            _dir: dir,
            ca,
            server,
        }
    }

    fn connect(
        hub: &Hub,
        client: rustls::ClientConfig,
        name: &str,
    ) -> (ClientConnection, ServerConnection, Result<(), Failed>) {
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let mut client = ClientConnection::new(Arc::new(client), name).unwrap();
        let mut server = ServerConnection::new(hub.server.clone()).unwrap();
        let result = handshake(&mut client, &mut server);
        (client, server, result)
    }

    fn enrolled(ca: &CertificateAuthority, name: &str) -> (AgentKey, String) {
        let key = AgentKey::generate().unwrap();
        let csr = key.csr_pem(name).unwrap();
        let cluster = ClusterName::new(name).unwrap();
        let issued = ca
            .sign_cluster_csr(&csr, &cluster, Duration::from_secs(3600))
            .unwrap();
        (key, issued.cert_pem)
    }

    /// The form an operator would paste from `openssl x509 -fingerprint`.
    fn colon_upper(fp: &str) -> String {
        fp.as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(":")
    }

    #[test]
    fn bootstrap_with_the_right_pin_connects() {
        let hub = hub();
        let (config, probe) = bootstrap_client_config(&colon_upper(&hub.ca.fingerprint())).unwrap();
        assert_eq!(probe.pin_matched(), None);
        let (client, server, result) = connect(&hub, config, HUB);
        result.unwrap();
        assert_eq!(probe.pin_matched(), Some(true));
        assert_eq!(probe.presented_ca_fingerprints(), [hub.ca.fingerprint()]);
        assert_eq!(client.alpn_protocol(), Some(ALPN));
        assert!(server.peer_certificates().is_none());
    }

    #[test]
    fn bootstrap_with_a_wrong_pin_fails_and_reports_what_it_saw() {
        let hub = hub();
        let (config, probe) = bootstrap_client_config(&"ab".repeat(32)).unwrap();
        let (_, _, result) = connect(&hub, config, HUB);
        assert!(
            matches!(
                result,
                Err(Failed::Client(rustls::Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure
                )))
            ),
            "{result:?}"
        );
        assert_eq!(probe.pin_matched(), Some(false));
        assert_eq!(probe.presented_ca_fingerprints(), [hub.ca.fingerprint()]);
    }

    #[test]
    fn bootstrap_still_checks_the_server_name() {
        let hub = hub();
        let (config, probe) = bootstrap_client_config(&hub.ca.fingerprint()).unwrap();
        let (_, _, result) = connect(&hub, config, "elsewhere.example");
        assert!(
            matches!(
                result,
                Err(Failed::Client(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                )))
            ),
            "{result:?}"
        );
        assert_eq!(probe.pin_matched(), Some(true));
    }

    #[test]
    fn invalid_fingerprints_are_errors() {
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63), &"a".repeat(66)] {
            assert!(
                matches!(bootstrap_client_config(bad), Err(Error::Fingerprint(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn mutual_tls_identifies_the_cluster() {
        let hub = hub();
        let (key, cert_pem) = enrolled(&hub.ca, "edge-01");
        let config = agent_client_config(hub.ca.cert_pem(), &cert_pem, &key).unwrap();
        let (_, server, result) = connect(&hub, config, HUB);
        result.unwrap();
        let certs = server.peer_certificates().expect("client certificate");
        let peer = peer_identity(&certs[0]).unwrap();
        assert_eq!(peer.cluster.as_str(), "edge-01");
        assert_eq!(server.alpn_protocol(), Some(ALPN));
    }

    #[test]
    fn hub_and_agents_agree_on_aes_128_even_with_a_client_preferring_aes_256() {
        let hub = hub();
        let (key, cert_pem) = enrolled(&hub.ca, "edge-01");
        let config = agent_client_config(hub.ca.cert_pem(), &cert_pem, &key).unwrap();
        let (client, server, result) = connect(&hub, config, HUB);
        result.unwrap();
        for negotiated in [
            client.negotiated_cipher_suite(),
            server.negotiated_cipher_suite(),
        ] {
            assert_eq!(
                negotiated.map(|suite| suite.suite()),
                Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
            );
        }

        // An agent of an older release lists rustls's default order,
        // AES-256 first; the hub's order decides.
        let mut roots = RootCertStore::empty();
        roots.add(hub.ca.cert_der().clone()).unwrap();
        let mut older =
            rustls::ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        older.alpn_protocols = vec![ALPN.to_vec()];
        assert_eq!(
            older.crypto_provider().cipher_suites[0].suite(),
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
        );
        let (_, server, result) = connect(&hub, older, HUB);
        result.unwrap();
        assert_eq!(
            server.negotiated_cipher_suite().map(|suite| suite.suite()),
            Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
        );
    }

    #[test]
    fn agent_reaches_the_hub_by_ip_too() {
        let hub = hub();
        let (key, cert_pem) = enrolled(&hub.ca, "edge-01");
        let config = agent_client_config(hub.ca.cert_pem(), &cert_pem, &key).unwrap();
        connect(&hub, config, "127.0.0.1").2.unwrap();
    }

    #[test]
    fn client_certificate_from_a_foreign_ca_is_refused() {
        let hub = hub();
        let foreign_dir = tempfile::tempdir().unwrap();
        let foreign = CertificateAuthority::load_or_create(foreign_dir.path()).unwrap();
        let (key, cert_pem) = enrolled(&foreign, "edge-01");
        let config = agent_client_config(hub.ca.cert_pem(), &cert_pem, &key).unwrap();
        let (_, _, result) = connect(&hub, config, HUB);
        // Every hub CA has the same subject, so webpki may try the hub's key and report a bad signature.
        assert!(
            matches!(
                result,
                Err(Failed::Server(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::BadSignature
                )))
            ),
            "{result:?}"
        );
    }

    #[test]
    fn hub_server_certificate_is_not_a_cluster_identity() {
        let hub = hub();
        let dir = tempfile::tempdir().unwrap();
        let identity = hub
            .ca
            .load_or_issue_server_identity(dir.path(), &[HUB.to_owned()])
            .unwrap();
        assert!(peer_identity(&identity.chain[0]).is_err());
    }

    #[test]
    fn client_without_certificate_is_let_in_for_enrollment() {
        let hub = hub();
        let mut roots = RootCertStore::empty();
        roots.add(hub.ca.cert_der().clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let (_, server, result) = connect(&hub, config, HUB);
        result.unwrap();
        assert!(server.peer_certificates().is_none());
    }

    #[test]
    fn a_replaced_certificate_is_presented_from_the_next_handshake_on() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let first = ca
            .load_or_issue_server_identity(dir.path(), &[HUB.to_owned()])
            .unwrap();
        let certificate = ServerCertificate::new(&first).unwrap();
        let quic = Arc::new(hub_server_config(&ca, certificate.clone()).unwrap());
        let admin = Arc::new(admin_server_config(certificate.clone()).unwrap());
        let presented = |server: &Arc<rustls::ServerConfig>, client: rustls::ClientConfig| {
            let name = ServerName::try_from(HUB).unwrap();
            let mut client = ClientConnection::new(Arc::new(client), name).unwrap();
            let mut server = ServerConnection::new(server.clone()).unwrap();
            handshake(&mut client, &mut server).unwrap();
            client.peer_certificates().unwrap()[0].clone().into_owned()
        };
        let (key, cert_pem) = enrolled(&ca, "edge-01");
        let agent = || agent_client_config(ca.cert_pem(), &cert_pem, &key).unwrap();
        let admin_client = || admin_client_config(ca.cert_pem()).unwrap();
        assert_eq!(presented(&quic, agent()), first.chain[0]);
        assert_eq!(presented(&admin, admin_client()), first.chain[0]);

        // Different names force a new certificate, as expiry would.
        let second = ca
            .load_or_issue_server_identity(dir.path(), &[HUB.to_owned(), "::1".to_owned()])
            .unwrap();
        assert_ne!(first.chain[0], second.chain[0]);
        certificate.replace(&second).unwrap();
        assert_eq!(certificate.leaf(), second.chain[0]);
        assert_eq!(presented(&quic, agent()), second.chain[0]);
        assert_eq!(presented(&admin, admin_client()), second.chain[0]);
    }

    #[test]
    fn admin_clients_verify_the_hub_by_ca_file_or_pin() {
        let hub = hub();
        let admin = Arc::new(
            admin_server_config(
                ServerCertificate::new(
                    &hub.ca
                        .load_or_issue_server_identity(hub._dir.path(), &[HUB.to_owned()])
                        .unwrap(),
                )
                .unwrap(),
            )
            .unwrap(),
        );
        let connect = |client: rustls::ClientConfig, name: &str| {
            let name = ServerName::try_from(name.to_owned()).unwrap();
            let mut client = ClientConnection::new(Arc::new(client), name).unwrap();
            let mut server = ServerConnection::new(admin.clone()).unwrap();
            let result = handshake(&mut client, &mut server);
            (client, result)
        };
        let (client, result) = connect(admin_client_config(hub.ca.cert_pem()).unwrap(), HUB);
        result.unwrap();
        assert_eq!(client.alpn_protocol(), Some(HTTP1_ALPN));

        // Another hub's CA: the certificate is refused as unknown.
        let other_dir = tempfile::tempdir().unwrap();
        let other = CertificateAuthority::load_or_create(other_dir.path()).unwrap();
        let (_, result) = connect(admin_client_config(other.cert_pem()).unwrap(), HUB);
        assert!(
            matches!(
                result,
                Err(Failed::Client(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::BadSignature
                )))
            ),
            "{result:?}"
        );

        let (config, probe) = admin_pinned_client_config(&hub.ca.fingerprint()).unwrap();
        connect(config, HUB).1.unwrap();
        assert_eq!(probe.pin_matched(), Some(true));
        let (config, probe) = admin_pinned_client_config(&other.fingerprint()).unwrap();
        assert!(connect(config, HUB).1.is_err());
        assert_eq!(probe.pin_matched(), Some(false));
        assert_eq!(probe.presented_ca_fingerprints(), [hub.ca.fingerprint()]);
    }

    #[test]
    fn agent_config_rejects_bad_pem() {
        let hub = hub();
        let (key, cert_pem) = enrolled(&hub.ca, "edge-01");
        assert!(agent_client_config("nonsense", &cert_pem, &key).is_err());
        assert!(agent_client_config(hub.ca.cert_pem(), "", &key).is_err());
        // A certificate for someone else's key.
        let other = AgentKey::generate().unwrap();
        assert!(agent_client_config(hub.ca.cert_pem(), &cert_pem, &other).is_err());
    }
}
