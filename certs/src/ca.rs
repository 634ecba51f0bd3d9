//! The hub's certificate authority: creates and loads the CA, issues the hub's server certificate and signs cluster CSRs.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519,
    PublicKeyData, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{
    CertificateDer, CertificateSigningRequestDer, PrivateKeyDer, PrivatePkcs8KeyDer,
};
use switchyard_common::ClusterName;
use time::OffsetDateTime;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::error::{Error, Result};
use crate::files::{create_private_dir, write_private_file};
use crate::peer::{self, CLUSTER_ORG};

const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
const SERVER_CERT_FILE: &str = "server.pem";
const SERVER_KEY_FILE: &str = "server-key.pem";
const CA_COMMON_NAME: &str = "Switchyard hub CA";
const CA_VALIDITY: time::Duration = time::Duration::days(3650);
const SERVER_VALIDITY: time::Duration = time::Duration::days(90);
/// Backdating absorbs clock skew between the hub and agents that just enrolled.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// How far before the moment of signing every certificate's validity starts,
/// so that peers whose clocks lag a little accept it at once.
pub const BACKDATE: std::time::Duration = std::time::Duration::from_secs(5 * 60);
const _: () = assert!(CLOCK_SKEW.whole_seconds() as u64 == BACKDATE.as_secs());

/// The hub's CA: its certificate and the key that signs everything else.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// The hub's TLS server certificate chain and key.
pub struct ServerIdentity {
    /// Server certificate first, then the CA certificate, so bootstrapping
    /// agents can see (and pin) the CA.
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for ServerIdentity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// A certificate the CA just signed for a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    pub cert_pem: String,
    /// Lowercase hex, no separators, no leading zero bytes (same as [`crate::PeerIdentity::serial`]).
    pub serial: String,
    pub not_after: SystemTime,
}

impl CertificateAuthority {
    /// Where the CA certificate is kept in `dir`: what clients of the hub trust.
    pub fn cert_path(dir: &Path) -> PathBuf {
        dir.join(CA_CERT_FILE)
    }

    /// Load `ca.pem` + `ca-key.pem` from `dir`, or create both if neither exists.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        match (exists(&cert_path)?, exists(&key_path)?) {
            (true, true) => Self::load(&cert_path, &key_path),
            (false, false) => Self::create(dir, &cert_path, &key_path),
            // Agents may already trust the surviving half; silently replacing it would strand them.
            (true, false) => Err(Error::IncompleteCa {
                found: cert_path,
                missing: key_path,
            }),
            (false, true) => Err(Error::IncompleteCa {
                found: key_path,
                missing: cert_path,
            }),
        }
    }

    fn load(cert_path: &Path, key_path: &Path) -> Result<Self> {
        let cert_pem = read_to_string(cert_path)?;
        let key_pem = read_to_string(key_path)?;
        let cert_der =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|source| Error::Pem {
                what: "ca certificate",
                source,
            })?;
        let key = KeyPair::from_pem(&key_pem).map_err(|source| Error::PrivateKey {
            what: "ca key",
            source,
        })?;
        {
            let x509 = peer::parse_certificate(&cert_der, "ca certificate")?;
            if !x509.is_ca() {
                return Err(Error::NotCa(cert_path.to_owned()));
            }
            if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
                return Err(Error::KeyMismatch {
                    key: key_path.to_owned(),
                    cert: cert_path.to_owned(),
                });
            }
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der, key).map_err(Error::Sign)?;
        Ok(Self {
            cert_pem,
            cert_der,
            issuer,
        })
    }

    fn create(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<Self> {
        // Private from creation: `make_private` only runs at the next start.
        create_private_dir(dir).map_err(|source| Error::Write {
            path: dir.to_owned(),
            source,
        })?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(Error::KeyGeneration)?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, CA_COMMON_NAME);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + CA_VALIDITY;
        let cert = params.self_signed(&key).map_err(Error::Sign)?;
        let cert_pem = cert.pem();

        // Key first: a crash in between leaves only the key, which load_or_create
        // reports instead of quietly minting a second CA.
        write_private_file(key_path, key.serialize_pem().as_bytes()).map_err(|source| {
            Error::Write {
                path: key_path.to_owned(),
                source,
            }
        })?;
        write_private_file(cert_path, cert_pem.as_bytes()).map_err(|source| Error::Write {
            path: cert_path.to_owned(),
            source,
        })?;

        let cert_der = cert.der().clone();
        let issuer = Issuer::new(params, key);
        Ok(Self {
            cert_pem,
            cert_der,
            issuer,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// SHA-256 of the CA certificate's DER, lowercase hex (64 chars).
    pub fn fingerprint(&self) -> String {
        peer::fingerprint(&self.cert_der)
    }

    /// Load `server.pem`/`server-key.pem` from `dir` if they cover exactly `names`, were
    /// signed by this CA and have at least a third of their lifetime left; otherwise issue
    /// and write a new pair.
    pub fn load_or_issue_server_identity(
        &self,
        dir: &Path,
        names: &[String],
    ) -> Result<ServerIdentity> {
        let wanted = names
            .iter()
            .map(|n| san_for_name(n))
            .collect::<Result<Vec<_>>>()?;
        if wanted.is_empty() {
            return Err(Error::NoServerNames);
        }
        let wanted_keys: BTreeSet<String> = wanted.iter().map(|(k, _)| k.clone()).collect();

        let cert_path = dir.join(SERVER_CERT_FILE);
        let key_path = dir.join(SERVER_KEY_FILE);
        if let Some(identity) =
            self.reusable_server_identity(&cert_path, &key_path, &wanted_keys)?
        {
            return Ok(identity);
        }

        let mut seen = BTreeSet::new();
        let sans: Vec<SanType> = wanted
            .into_iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .map(|(_, san)| san)
            .collect();
        self.issue_server_identity(&cert_path, &key_path, &names[0], sans)
    }

    fn reusable_server_identity(
        &self,
        cert_path: &Path,
        key_path: &Path,
        wanted: &BTreeSet<String>,
    ) -> Result<Option<ServerIdentity>> {
        let (Some(cert_pem), Some(key_pem)) = (read_optional(cert_path)?, read_optional(key_path)?)
        else {
            return Ok(None);
        };
        match self.check_server_identity(&cert_pem, &key_pem, wanted) {
            Ok(identity) => Ok(Some(identity)),
            Err(reason) => {
                tracing::info!(path = %cert_path.display(), reason, "issuing a new hub server certificate");
                Ok(None)
            }
        }
    }

    /// Why the stored identity cannot be reused, or the identity itself.
    fn check_server_identity(
        &self,
        cert_pem: &str,
        key_pem: &str,
        wanted: &BTreeSet<String>,
    ) -> Result<ServerIdentity, &'static str> {
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|_| "stored certificate is not valid pem")?;
        let key = KeyPair::from_pem(key_pem).map_err(|_| "stored key is not usable")?;
        let cert = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|_| "stored certificate does not parse")?
            .1;
        let ca = x509_parser::parse_x509_certificate(&self.cert_der)
            .map_err(|_| "ca certificate does not parse")?
            .1;
        cert.verify_signature(Some(ca.public_key()))
            .map_err(|_| "stored certificate was not signed by this ca")?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err("stored key does not match the stored certificate");
        }
        if &certificate_san_keys(&cert) != wanted {
            return Err("server names changed");
        }
        let not_before = peer::not_before(&cert).map_err(|_| "bad validity")?;
        let not_after = peer::not_after(&cert).map_err(|_| "bad validity")?;
        let lifetime = not_after
            .duration_since(not_before)
            .map_err(|_| "validity period is empty")?;
        let remaining = not_after
            .duration_since(SystemTime::now())
            .map_err(|_| "certificate expired")?;
        if remaining < lifetime / 3 {
            return Err("less than a third of the certificate lifetime is left");
        }
        Ok(ServerIdentity {
            chain: vec![cert_der.clone(), self.cert_der.clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        })
    }

    fn issue_server_identity(
        &self,
        cert_path: &Path,
        key_path: &Path,
        common_name: &str,
        sans: Vec<SanType>,
    ) -> Result<ServerIdentity> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(Error::KeyGeneration)?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + SERVER_VALIDITY;
        let cert = params.signed_by(&key, &self.issuer).map_err(Error::Sign)?;

        write_private_file(key_path, key.serialize_pem().as_bytes()).map_err(|source| {
            Error::Write {
                path: key_path.to_owned(),
                source,
            }
        })?;
        write_private_file(cert_path, cert.pem().as_bytes()).map_err(|source| Error::Write {
            path: cert_path.to_owned(),
            source,
        })?;
        Ok(ServerIdentity {
            chain: vec![cert.der().clone(), self.cert_der.clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        })
    }

    /// Sign an agent's CSR (PEM) for `cluster`.
    ///
    /// Only the public key is taken from the request, after its signature has
    /// been verified (proof the agent holds the key); every other field is set
    /// by the hub, so an agent cannot ask for a CA bit, extra names or usages.
    pub fn sign_cluster_csr(
        &self,
        csr_pem: &str,
        cluster: &ClusterName,
        validity: Duration,
    ) -> Result<IssuedCertificate> {
        let csr_der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
            .map_err(Error::CsrPem)?;
        let (_, csr) = X509CertificationRequest::from_der(&csr_der)
            .map_err(|e| Error::CsrMalformed(peer::from_nom(e)))?;
        csr.verify_signature().map_err(Error::CsrSignature)?;
        let public_key =
            SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw)
                .map_err(|_| Error::CsrKeyType)?;
        let allowed = [
            &PKCS_ECDSA_P256_SHA256,
            &PKCS_ECDSA_P384_SHA384,
            &PKCS_ED25519,
        ];
        if !allowed.contains(&public_key.algorithm()) {
            return Err(Error::CsrKeyType);
        }

        let now = OffsetDateTime::now_utc();
        let not_after = time::Duration::try_from(validity)
            .ok()
            .filter(|v| v.is_positive())
            .and_then(|v| now.checked_add(v))
            .ok_or(Error::Validity(validity))?;

        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cluster.as_str());
        dn.push(DnType::OrganizationName, CLUSTER_ORG);
        params.distinguished_name = dn;
        let uri = format!("switchyard://cluster/{}", cluster.as_str());
        params.subject_alt_names = vec![SanType::URI(uri.try_into().map_err(Error::Sign)?)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        params.not_before = now - CLOCK_SKEW;
        params.not_after = not_after;
        let cert = params
            .signed_by(&public_key, &self.issuer)
            .map_err(Error::Sign)?;

        // Read serial and expiry back from the encoded certificate so they match
        // exactly what peer_identity will later report for it.
        let parsed = peer::parse_certificate(cert.der(), "issued certificate")?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            serial: peer::serial_hex(&parsed),
            not_after: peer::not_after(&parsed)?,
        })
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// 126 random bits: the top bit is cleared (serials must be positive) and the next one set,
/// so the encoding is always 16 bytes with no leading zero to strip.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

/// A comparison key plus the SAN to put in a certificate for one configured name.
fn san_for_name(name: &str) -> Result<(String, SanType)> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok((format!("ip:{ip}"), SanType::IpAddress(ip)));
    }
    if rustls_pki_types::DnsName::try_from(name).is_err() {
        return Err(Error::ServerName(name.to_owned()));
    }
    let san = name
        .to_owned()
        .try_into()
        .map_err(|_| Error::ServerName(name.to_owned()))?;
    Ok((
        format!("dns:{}", name.to_ascii_lowercase()),
        SanType::DnsName(san),
    ))
}

fn certificate_san_keys(cert: &x509_parser::certificate::X509Certificate<'_>) -> BTreeSet<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return BTreeSet::new();
    };
    san.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => format!("dns:{}", dns.to_ascii_lowercase()),
            GeneralName::IPAddress(bytes) => match ip_from_bytes(bytes) {
                Some(ip) => format!("ip:{ip}"),
                None => "other".to_owned(),
            },
            // Anything we would never have put there makes the set differ, forcing a reissue.
            other => format!("other:{other}"),
        })
        .collect()
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn exists(path: &Path) -> Result<bool> {
    path.try_exists().map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_to_string(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // Not UTF-8 is just a corrupt file we will replace, not a reason to stop the hub.
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(Some(String::new())),
        Err(source) => Err(Error::Read {
            path: PathBuf::from(path),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgentKey, peer_identity};
    use x509_parser::prelude::{FromDer, X509Certificate};

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn cluster(name: &str) -> ClusterName {
        ClusterName::new(name).unwrap()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn create_then_load_gives_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let created = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let loaded = CertificateAuthority::load_or_create(dir.path()).unwrap();
        assert_eq!(created.fingerprint(), loaded.fingerprint());
        assert_eq!(created.fingerprint().len(), 64);
        assert_eq!(created.cert_pem(), loaded.cert_pem());

        let (_, cert) = X509Certificate::from_der(created.cert_der()).unwrap();
        assert_eq!(
            cert.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            CA_COMMON_NAME
        );
        let bc = cert.basic_constraints().unwrap().unwrap().value;
        assert!(bc.ca);
        assert_eq!(bc.path_len_constraint, Some(0));
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign() && ku.digital_signature());
    }

    #[cfg(unix)]
    #[test]
    fn ca_key_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(dir.path()).unwrap();
        let mode = |f: &str| {
            fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(CA_KEY_FILE), 0o600);
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        ca.load_or_issue_server_identity(dir.path(), &names(&["hub"]))
            .unwrap();
        assert_eq!(mode(SERVER_KEY_FILE), 0o600);
    }

    #[test]
    fn half_a_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(dir.path()).unwrap();
        fs::remove_file(dir.path().join(CA_KEY_FILE)).unwrap();
        let err = CertificateAuthority::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, Error::IncompleteCa { .. }), "{err}");
    }

    #[test]
    fn corrupt_ca_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(dir.path()).unwrap();
        fs::write(dir.path().join(CA_CERT_FILE), "garbage").unwrap();
        let err = CertificateAuthority::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Pem { .. }), "{err}");

        // A key from another CA must not be paired with this certificate.
        let other = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(other.path()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(dir.path()).unwrap();
        fs::copy(other.path().join(CA_KEY_FILE), dir.path().join(CA_KEY_FILE)).unwrap();
        let err = CertificateAuthority::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
    }

    #[test]
    fn server_identity_is_reused_until_names_change() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let first = ca
            .load_or_issue_server_identity(dir.path(), &names(&["hub.example", "10.0.0.1"]))
            .unwrap();
        assert_eq!(first.chain.len(), 2);
        assert_eq!(&first.chain[1], ca.cert_der());

        // Same set in another order (and case) is the same identity.
        let again = ca
            .load_or_issue_server_identity(dir.path(), &names(&["10.0.0.1", "HUB.example"]))
            .unwrap();
        assert_eq!(first.chain[0], again.chain[0]);

        let changed = ca
            .load_or_issue_server_identity(dir.path(), &names(&["hub.example"]))
            .unwrap();
        assert_ne!(first.chain[0], changed.chain[0]);

        let (_, cert) = X509Certificate::from_der(&changed.chain[0]).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        assert!(!cert.is_ca());
    }

    #[test]
    fn server_identity_near_expiry_is_reissued() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let wanted = names(&["hub"]);
        let fresh = ca
            .load_or_issue_server_identity(dir.path(), &wanted)
            .unwrap();

        // Same names and CA, but only 10 of 90 days left.
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(wanted.clone()).unwrap();
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(80);
        params.not_after = now + time::Duration::days(10);
        let old = params.signed_by(&key, &ca.issuer).unwrap();
        fs::write(dir.path().join(SERVER_CERT_FILE), old.pem()).unwrap();
        write_private_file(
            &dir.path().join(SERVER_KEY_FILE),
            key.serialize_pem().as_bytes(),
        )
        .unwrap();

        let renewed = ca
            .load_or_issue_server_identity(dir.path(), &wanted)
            .unwrap();
        assert_ne!(&renewed.chain[0], old.der());
        assert_ne!(renewed.chain[0], fresh.chain[0]);
        let kept = ca
            .load_or_issue_server_identity(dir.path(), &wanted)
            .unwrap();
        assert_eq!(kept.chain[0], renewed.chain[0]);
    }

    #[test]
    fn server_identity_from_another_ca_is_reissued() {
        let dir = tempfile::tempdir().unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = CertificateAuthority::load_or_create(other_dir.path()).unwrap();
        let stale = other
            .load_or_issue_server_identity(dir.path(), &names(&["hub"]))
            .unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let fresh = ca
            .load_or_issue_server_identity(dir.path(), &names(&["hub"]))
            .unwrap();
        assert_ne!(stale.chain[0], fresh.chain[0]);
    }

    #[test]
    fn bad_server_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        assert!(matches!(
            ca.load_or_issue_server_identity(dir.path(), &[]),
            Err(Error::NoServerNames)
        ));
        assert!(matches!(
            ca.load_or_issue_server_identity(dir.path(), &names(&["not a name"])),
            Err(Error::ServerName(_))
        ));
    }

    #[test]
    fn signed_csr_round_trips_through_peer_identity() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let key = AgentKey::generate().unwrap();
        // The hint is ignored: the hub decides the name.
        let csr = key.csr_pem("something-else").unwrap();
        let before = SystemTime::now();
        let issued = ca
            .sign_cluster_csr(&csr, &cluster("edge-01"), 30 * DAY)
            .unwrap();

        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        let peer = peer_identity(&der).unwrap();
        assert_eq!(peer.cluster, cluster("edge-01"));
        assert_eq!(peer.serial, issued.serial);
        assert_eq!(peer.not_after, issued.not_after);
        assert!(!issued.serial.starts_with("00"));
        assert!(issued.serial.len() >= 16, "{}", issued.serial);
        assert!(
            issued
                .serial
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let expected = before + 30 * DAY;
        let delta = match issued.not_after.duration_since(expected) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        assert!(delta < Duration::from_secs(5), "{delta:?}");

        let second = ca.sign_cluster_csr(&csr, &cluster("edge-01"), DAY).unwrap();
        assert_ne!(second.serial, issued.serial);
    }

    #[test]
    fn signed_certificate_carries_only_what_the_hub_decides() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        // A greedy request: CA bit, server auth, extra names.
        let mut params = CertificateParams::new(vec!["evil.example".to_owned()]).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let issued = ca.sign_cluster_csr(&csr, &cluster("shop42"), DAY).unwrap();

        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert!(!cert.is_ca());
        assert!(!cert.basic_constraints().unwrap().unwrap().value.ca);
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth);
        assert!(!eku.server_auth && !eku.any && !eku.code_signing && eku.other.is_empty());
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && !ku.key_cert_sign());
        let sans: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(sans, ["URI(switchyard://cluster/shop42)"]);
        assert_eq!(
            cert.public_key().subject_public_key.data.as_ref(),
            key.public_key_raw()
        );
        let (_, ca_cert) = X509Certificate::from_der(ca.cert_der()).unwrap();
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        let skew = cert.validity().not_before.timestamp() + 5 * 60;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        assert!((skew - now).abs() < 5);
    }

    #[test]
    fn bad_csrs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let name = cluster("edge-01");
        assert!(matches!(
            ca.sign_cluster_csr("garbage", &name, DAY),
            Err(Error::CsrPem(_))
        ));
        let junk = "-----BEGIN CERTIFICATE REQUEST-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE REQUEST-----\n";
        assert!(matches!(
            ca.sign_cluster_csr(junk, &name, DAY),
            Err(Error::CsrMalformed(_))
        ));

        // Flip a bit in the signature: it must no longer verify.
        let csr = AgentKey::generate().unwrap().csr_pem("edge-01").unwrap();
        let mut der = CertificateSigningRequestDer::from_pem_slice(csr.as_bytes())
            .unwrap()
            .to_vec();
        let last = der.len() - 2;
        der[last] ^= 0x01;
        let tampered = pem_encode("CERTIFICATE REQUEST", &der);
        let err = ca.sign_cluster_csr(&tampered, &name, DAY).unwrap_err();
        assert!(matches!(err, Error::CsrSignature(_)), "{err}");

        assert!(matches!(
            ca.sign_cluster_csr(&csr, &name, Duration::ZERO),
            Err(Error::Validity(_))
        ));
    }

    /// Just enough PEM encoding to hand-craft tampered requests; nothing outside tests needs it.
    fn pem_encode(label: &str, der: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut b64 = String::new();
        for chunk in der.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
            for i in 0..4 {
                if i <= chunk.len() {
                    b64.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    b64.push('=');
                }
            }
        }
        let mut out = format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }
}
