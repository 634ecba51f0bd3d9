//! What the hub learns from an agent's client certificate, and certificate fingerprints.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use switchyard_common::ClusterName;
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;

use crate::error::{Error, Result};

/// Organization every cluster certificate carries, so a hub server certificate
/// (or anything else the CA signed) can never pass for a cluster.
pub(crate) const CLUSTER_ORG: &str = "switchyard-cluster";

/// What the hub learns from an agent's client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub cluster: ClusterName,
    /// Lowercase hex, no separators, no leading zero bytes.
    pub serial: String,
    /// Backdated by [`crate::BACKDATE`] from the moment the hub signed it.
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// SHA-256 lowercase hex of DER bytes.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Parse the end-entity certificate DER presented by a peer (after rustls verified the chain).
///
/// This does not verify anything cryptographically: it only reads the identity
/// out of a certificate the TLS layer has already checked against the CA.
pub fn peer_identity(cert_der: &[u8]) -> Result<PeerIdentity> {
    let cert = parse_certificate(cert_der, "peer certificate")?;
    let subject = cert.subject();

    let mut names = subject.iter_common_name();
    let cn = names
        .next()
        .ok_or(Error::PeerCertificate("has no common name"))?;
    if names.next().is_some() {
        return Err(Error::PeerCertificate("has more than one common name"));
    }
    let cn = cn
        .as_str()
        .map_err(|_| Error::PeerCertificate("common name is not a string"))?;

    let mut orgs = subject.iter_organization();
    let org_ok = match (orgs.next(), orgs.next()) {
        (Some(o), None) => o.as_str().is_ok_and(|o| o == CLUSTER_ORG),
        _ => false,
    };
    if !org_ok {
        return Err(Error::PeerCertificate(
            "organization is not switchyard-cluster",
        ));
    }

    Ok(PeerIdentity {
        cluster: ClusterName::new(cn).map_err(Error::PeerClusterName)?,
        serial: serial_hex(&cert),
        not_before: not_before(&cert)?,
        not_after: not_after(&cert)?,
    })
}

pub(crate) fn parse_certificate<'a>(
    der: &'a [u8],
    what: &'static str,
) -> Result<X509Certificate<'a>> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, cert)| cert)
        .map_err(|e| Error::Certificate {
            what,
            source: from_nom(e),
        })
}

pub(crate) fn from_nom(e: x509_parser::nom::Err<X509Error>) -> X509Error {
    match e {
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e,
        x509_parser::nom::Err::Incomplete(_) => X509Error::InvalidCertificate,
    }
}

/// The serial as an unsigned integer in hex: DER may prepend 00 to keep it positive, which we drop.
pub(crate) fn serial_hex(cert: &X509Certificate<'_>) -> String {
    let raw = cert.raw_serial();
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    if start == raw.len() {
        return "0".to_owned();
    }
    hex::encode(&raw[start..])
}

pub(crate) fn not_after(cert: &X509Certificate<'_>) -> Result<SystemTime> {
    to_system_time(cert.validity().not_after.timestamp())
}

pub(crate) fn not_before(cert: &X509Certificate<'_>) -> Result<SystemTime> {
    to_system_time(cert.validity().not_before.timestamp())
}

fn to_system_time(secs: i64) -> Result<SystemTime> {
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    t.ok_or(Error::PeerCertificate("has a validity date out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_lowercase_sha256_hex() {
        assert_eq!(
            fingerprint(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = peer_identity(b"not a certificate").unwrap_err();
        assert!(matches!(err, Error::Certificate { .. }), "{err}");
    }
}
