//! The agent's private key and the certificate signing request it sends at enrollment.

use std::fmt;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::{Error, Result};

/// Agent-side key material.
pub struct AgentKey {
    key: KeyPair,
}

impl AgentKey {
    /// A fresh ECDSA P-256 key.
    pub fn generate() -> Result<Self> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(Error::KeyGeneration)?;
        Ok(Self { key })
    }

    /// Load a PKCS#8 PEM key, as written by [`AgentKey::to_pem`].
    pub fn from_pem(pem: &str) -> Result<Self> {
        let key = KeyPair::from_pem(pem).map_err(|source| Error::PrivateKey {
            what: "agent key",
            source,
        })?;
        Ok(Self { key })
    }

    /// PKCS#8 PEM; store it with [`crate::write_private_file`].
    pub fn to_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A CSR (PEM) with CN = cluster (the hub ignores it but it helps humans).
    pub fn csr_pem(&self, cluster_hint: &str) -> Result<String> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cluster_hint);
        params.distinguished_name = dn;
        params
            .serialize_request(&self.key)
            .and_then(|csr| csr.pem())
            .map_err(Error::Sign)
    }

    pub(crate) fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }
}

impl fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentKey").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_key() {
        let key = AgentKey::generate().unwrap();
        let again = AgentKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(key.key.public_key_raw(), again.key.public_key_raw());
    }

    #[test]
    fn bad_pem_is_an_error() {
        assert!(AgentKey::from_pem("nonsense").is_err());
        assert!(
            AgentKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .is_err()
        );
    }

    #[test]
    fn csr_is_pem() {
        let csr = AgentKey::generate().unwrap().csr_pem("edge-01").unwrap();
        assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    }
}
