//! Where the hub keeps its files, and the discovery file the CLI reads to find
//! a hub running on the same machine.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Default data directory: `$SWITCHYARD_DATA_DIR`, else
/// `$XDG_DATA_HOME/switchyard`, else `~/.local/share/switchyard`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("switchyard");
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/switchyard"),
        None => PathBuf::from("/var/lib/switchyard"),
    }
}

pub fn ca_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ca")
}

/// The CA certificate admin clients on this machine trust the hub with.
pub fn ca_cert_file(data_dir: &Path) -> PathBuf {
    switchyard_certs::CertificateAuthority::cert_path(&ca_dir(data_dir))
}

pub fn store_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("store")
}

pub fn admin_token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-token")
}

/// Key for QUIC stateless resets, stable across restarts.
pub fn reset_key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("quic-reset-key")
}

/// Shared secret forges sign push webhooks with (unless a repo has its own).
pub fn webhook_secret_file(data_dir: &Path) -> PathBuf {
    data_dir.join("webhook-secret")
}

/// Bare clones of the repos the hub follows.
pub fn repos_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("repos")
}

pub fn endpoint_file(data_dir: &Path) -> PathBuf {
    data_dir.join("hub.json")
}

/// Written by `serve` once it listens, so local CLI commands find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// Base URL of the admin API.
    pub admin_url: String,
    /// `HOST:PORT` agents dial.
    pub agent_address: String,
    pub ca_sha256: String,
    pub pid: u32,
}
