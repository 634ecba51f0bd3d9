//! The crate's error type, shared by the CA, key, peer and TLS modules.

use std::path::PathBuf;

/// Everything that can go wrong while managing certificates or building TLS configs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not valid pem")]
    Pem {
        what: &'static str,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{what} is not a valid certificate")]
    Certificate {
        what: &'static str,
        #[source]
        source: x509_parser::error::X509Error,
    },
    #[error("{what} contains no certificate")]
    NoCertificate { what: &'static str },
    #[error("{what} is not a usable private key")]
    PrivateKey {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("found {found} but not {missing}: refusing to create a new ca over half of an old one")]
    IncompleteCa { found: PathBuf, missing: PathBuf },
    #[error("{key} does not belong to the certificate in {cert}")]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error("{0} is not a ca certificate")]
    NotCa(PathBuf),
    #[error("cannot generate a key pair")]
    KeyGeneration(#[source] rcgen::Error),
    #[error("cannot build or sign the certificate")]
    Sign(#[source] rcgen::Error),
    #[error("server certificate needs at least one name")]
    NoServerNames,
    #[error("server name {0:?} is neither an ip address nor a dns name")]
    ServerName(String),
    #[error("certificate signing request is not valid pem")]
    CsrPem(#[source] rustls_pki_types::pem::Error),
    #[error("certificate signing request is malformed")]
    CsrMalformed(#[source] x509_parser::error::X509Error),
    #[error("certificate signing request signature does not verify")]
    CsrSignature(#[source] x509_parser::error::X509Error),
    #[error(
        "certificate signing request key type is not supported (use ecdsa p-256, ecdsa p-384 or ed25519)"
    )]
    CsrKeyType,
    #[error("certificate validity {0:?} is not usable")]
    Validity(std::time::Duration),
    #[error("peer certificate {0}")]
    PeerCertificate(&'static str),
    #[error("peer certificate common name is not a valid cluster name")]
    PeerClusterName(#[source] switchyard_common::NameError),
    #[error("ca fingerprint must be 64 hex characters (sha-256 of the ca certificate), got {0:?}")]
    Fingerprint(String),
    #[error("tls configuration rejected")]
    Tls(#[source] rustls::Error),
    #[error("cannot build the client certificate verifier")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
