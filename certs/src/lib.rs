//! The hub certificate authority, agent keys and the TLS configurations both sides use.

mod agent;
mod ca;
mod error;
mod files;
mod peer;
mod tls;

pub use agent::AgentKey;
pub use ca::{BACKDATE, CertificateAuthority, IssuedCertificate, ServerIdentity};
pub use error::{Error, Result};
pub use files::{MadePrivate, create_private_dir, make_private, write_private_file};
pub use peer::{PeerIdentity, fingerprint, peer_identity};
pub use tls::{
    BootstrapProbe, ServerCertificate, admin_client_config, admin_pinned_client_config,
    admin_server_config, agent_client_config, bootstrap_client_config, hub_server_config,
};
