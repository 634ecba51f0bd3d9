//! The agent's state directory: its identity (key, certificate, the hub's CA)
//! and where the hub is. Written at enrollment, updated at renewal.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use switchyard_certs::{AgentKey, write_private_file};

/// Error reading or writing the state directory.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(
        "{0} holds no enrolled identity; enroll first with `SWITCHYARD_JOIN_TOKEN=T switchyard-agent join --hub HOST:PORT --ca-sha256 HEX --state-dir {0}`"
    )]
    NotEnrolled(String),
    #[error("{path} is already enrolled as cluster {cluster}; remove it to enroll again")]
    AlreadyEnrolled { path: String, cluster: String },
    #[error("reading {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the state dir {path} holds the agent's key and cached bundles (with Secrets), so it must be private to the agent's user; chown it to that user"
    )]
    NotPrivate {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is corrupt")]
    Corrupt {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// Default state dir: `$SWITCHYARD_AGENT_STATE_DIR` is read by clap; otherwise
/// `$XDG_STATE_HOME/switchyard-agent` or `~/.local/state/switchyard-agent`.
pub(crate) fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("switchyard-agent");
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/state/switchyard-agent"),
        None => PathBuf::from("/var/lib/switchyard-agent"),
    }
}

/// Everything about the agent's enrollment except the key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Enrollment {
    /// `HOST:PORT` of the hub.
    pub(crate) hub: String,
    pub(crate) cluster: String,
    pub(crate) ca_sha256: String,
    /// Unix seconds when the current certificate was received.
    pub(crate) cert_received_at: u64,
    /// Unix seconds when the current certificate expires.
    pub(crate) cert_not_after: u64,
}

/// The agent's enrolled identity, as loaded from disk.
pub(crate) struct Identity {
    pub(crate) enrollment: Enrollment,
    pub(crate) key: AgentKey,
    pub(crate) cert_pem: String,
    pub(crate) ca_pem: String,
}

/// Paths inside a state directory.
pub(crate) struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn enrollment_file(&self) -> PathBuf {
        self.root.join("enrollment.json")
    }
    fn key_file(&self) -> PathBuf {
        self.root.join("tls.key")
    }
    fn cert_file(&self) -> PathBuf {
        self.root.join("tls.crt")
    }
    fn ca_file(&self) -> PathBuf {
        self.root.join("ca.crt")
    }

    fn read(path: &Path) -> Result<String> {
        std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })
    }

    fn write(path: &Path, contents: &[u8]) -> Result<()> {
        write_private_file(path, contents).map_err(|source| Error::Write {
            path: path.display().to_string(),
            source,
        })
    }

    /// Refuse to overwrite an identity the agent already has.
    pub(crate) fn ensure_not_enrolled(&self) -> Result<()> {
        if let Ok(identity) = self.load() {
            return Err(Error::AlreadyEnrolled {
                path: self.root.display().to_string(),
                cluster: identity.enrollment.cluster,
            });
        }
        Ok(())
    }

    pub(crate) fn load(&self) -> Result<Identity> {
        let enrollment_path = self.enrollment_file();
        if !enrollment_path.exists() {
            return Err(Error::NotEnrolled(self.root.display().to_string()));
        }
        let enrollment: Enrollment =
            serde_json::from_str(&Self::read(&enrollment_path)?).map_err(|e| Error::Corrupt {
                path: enrollment_path.display().to_string(),
                source: Box::new(e),
            })?;
        let key_path = self.key_file();
        let key = AgentKey::from_pem(&Self::read(&key_path)?).map_err(|e| Error::Corrupt {
            path: key_path.display().to_string(),
            source: Box::new(e),
        })?;
        Ok(Identity {
            enrollment,
            key,
            cert_pem: Self::read(&self.cert_file())?,
            ca_pem: Self::read(&self.ca_file())?,
        })
    }

    /// Hold the state dir and everything in it (identity, cache) to private
    /// modes, whatever modes they had: a dir made by an operator, or a copy,
    /// may be readable by others. Refuses what cannot be made private. The
    /// paths changed, and the dir's own mode when it belongs to someone else
    /// who cannot write in it (a volume root shared through `fsGroup`).
    pub(crate) fn make_private(&self) -> Result<switchyard_certs::MadePrivate> {
        switchyard_certs::make_private(&self.root, true).map_err(|source| Error::NotPrivate {
            path: self.root.display().to_string(),
            source,
        })
    }

    /// Persist a new identity. The enrollment record is written last, so a
    /// crash part-way leaves a directory that still reads as not enrolled.
    pub(crate) fn save_new(&self, identity: &Identity) -> Result<()> {
        create_private_dir(&self.root)?;
        self.make_private()?;
        Self::write(&self.key_file(), identity.key.to_pem().as_bytes())?;
        Self::write(&self.ca_file(), identity.ca_pem.as_bytes())?;
        Self::write(&self.cert_file(), identity.cert_pem.as_bytes())?;
        self.save_enrollment(&identity.enrollment)
    }

    /// Replace the certificate after renewal (same key).
    pub(crate) fn save_renewed(&self, cert_pem: &str, enrollment: &Enrollment) -> Result<()> {
        Self::write(&self.cert_file(), cert_pem.as_bytes())?;
        self.save_enrollment(enrollment)
    }

    fn save_enrollment(&self, enrollment: &Enrollment) -> Result<()> {
        let json = serde_json::to_vec_pretty(enrollment).expect("enrollment serializes");
        Self::write(&self.enrollment_file(), &json)
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| Error::Write {
            path: dir.display().to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn identity_round_trips_with_private_files() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        assert!(matches!(state.load(), Err(Error::NotEnrolled(_))));
        let identity = Identity {
            enrollment: Enrollment {
                hub: "127.0.0.1:7700".into(),
                cluster: "edge-1".into(),
                ca_sha256: "ab".repeat(32),
                cert_received_at: 10,
                cert_not_after: 100,
            },
            key: AgentKey::generate().unwrap(),
            cert_pem: "cert".into(),
            ca_pem: "ca".into(),
        };
        state.save_new(&identity).unwrap();
        let loaded = state.load().unwrap();
        assert_eq!(loaded.enrollment, identity.enrollment);
        assert_eq!(loaded.key.to_pem(), identity.key.to_pem());
        for file in ["tls.key", "tls.crt", "ca.crt", "enrollment.json"] {
            let mode = std::fs::metadata(state.root().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        assert!(matches!(
            state.ensure_not_enrolled(),
            Err(Error::AlreadyEnrolled { .. })
        ));
    }
}
