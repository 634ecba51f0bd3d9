//! The agent's on-disk cache of its assignment and bundles, so that a
//! restarted agent keeps enforcing the last desired state while the hub is
//! unreachable, and never downloads a bundle it already holds.
//!
//! Bundles are stored compressed under their digest and verified again when
//! read; the assignment is written after the bundles it names, so the cache
//! is consistent after a crash at any point. Every file is written to a
//! temporary name, synced and renamed over the old one, so a reader sees the
//! old or the new file whole; [`Cache::recover`] sweeps what a crash left.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use switchyard_certs::{create_private_dir, write_private_file};
use switchyard_common::bundle::{Bundle, BundleError, DIGEST_PREFIX};
use switchyard_common::proto::Assignment;

/// Largest decompressed bundle the agent accepts.
pub(crate) const MAX_BUNDLE_BYTES: usize = 256 * 1024 * 1024;

/// Error reading or writing the cache.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("cache i/o on {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cached assignment {path} is corrupt")]
    Corrupt {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("bundle {digest}")]
    Bundle {
        digest: String,
        #[source]
        source: BundleError,
    },
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What [`Cache::recover`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// Temporary files of interrupted writes.
    pub(crate) temporary_files: usize,
    /// Bundles that no longer match their digest.
    pub(crate) bad_bundles: usize,
}

/// The cache directory inside the agent's state dir.
pub(crate) struct Cache {
    root: PathBuf,
}

impl Cache {
    pub(crate) fn new(state_dir: &Path) -> Self {
        Self {
            root: state_dir.join("cache"),
        }
    }

    fn assignment_file(&self) -> PathBuf {
        self.root.join("assignment.json")
    }

    fn bundles_dir(&self) -> PathBuf {
        self.root.join("bundles")
    }

    fn bundle_file(&self, digest: &str) -> PathBuf {
        let name = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.bundles_dir().join(format!("{name}.zst"))
    }

    /// Clean up after a crash, before anything is read: remove temporary
    /// files of writes that never reached their rename, and bundles that fail
    /// verification (so they are fetched again instead of trusted).
    pub(crate) fn recover(&self) -> Recovery {
        let mut recovery = Recovery::default();
        for dir in [self.root.clone(), self.bundles_dir()] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let path = entry.path();
                let remove = if name.starts_with('.') && name.ends_with(".tmp") {
                    recovery.temporary_files += 1;
                    true
                } else if let Some(hex) = name.strip_suffix(".zst") {
                    let digest = format!("{DIGEST_PREFIX}{hex}");
                    let intact = std::fs::read(&path).is_ok_and(|compressed| {
                        Bundle::decode(&compressed, &digest, MAX_BUNDLE_BYTES).is_ok()
                    });
                    if !intact {
                        recovery.bad_bundles += 1;
                    }
                    !intact
                } else {
                    false
                };
                if remove {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        recovery
    }

    /// The cached assignment, if any.
    pub(crate) fn assignment(&self) -> Result<Option<Assignment>> {
        let path = self.assignment_file();
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| Error::Corrupt {
                        path: path.display().to_string(),
                        source,
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Whether the cached assignment is unreadable or names a bundle the
    /// cache does not hold: then only the hub can make it whole again.
    pub(crate) fn lacks_bundles(&self) -> bool {
        match self.assignment() {
            Ok(Some(assignment)) => assignment.items.iter().any(|i| !self.has_bundle(&i.digest)),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    pub(crate) fn has_bundle(&self, digest: &str) -> bool {
        // Only a regular file that verifies: a directory, a symlink or a
        // damaged file at the bundle's path would otherwise count as held
        // and the bundle would never be fetched again.
        let path = self.bundle_file(digest);
        std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file())
            && self.bundle(digest).is_ok()
    }

    /// Verify `compressed` against `digest`, then keep it.
    pub(crate) fn store_bundle(&self, digest: &str, compressed: &[u8]) -> Result<Bundle> {
        let bundle = Bundle::decode(compressed, digest, MAX_BUNDLE_BYTES).map_err(|source| {
            Error::Bundle {
                digest: digest.to_owned(),
                source,
            }
        })?;
        let dir = self.bundles_dir();
        create_private_dir(&dir).map_err(io(&dir))?;
        let path = self.bundle_file(digest);
        write_private_file(&path, compressed).map_err(io(&path))?;
        Ok(bundle)
    }

    /// Read and verify a cached bundle.
    pub(crate) fn bundle(&self, digest: &str) -> Result<Bundle> {
        let path = self.bundle_file(digest);
        let compressed = std::fs::read(&path).map_err(io(&path))?;
        Bundle::decode(&compressed, digest, MAX_BUNDLE_BYTES).map_err(|source| Error::Bundle {
            digest: digest.to_owned(),
            source,
        })
    }

    /// A cached bundle's compressed bytes, as stored: not checked here
    /// (the caller decodes them with [`Bundle::decode`], which does).
    pub(crate) fn compressed_bundle(&self, digest: &str) -> Result<Vec<u8>> {
        let path = self.bundle_file(digest);
        std::fs::read(&path).map_err(io(&path))
    }

    /// Record the assignment (its bundles must be stored already) and drop
    /// bundles it no longer names.
    pub(crate) fn store_assignment(&self, assignment: &Assignment) -> Result<()> {
        create_private_dir(&self.root).map_err(io(&self.root))?;
        let path = self.assignment_file();
        let json = serde_json::to_vec_pretty(assignment).expect("assignment serializes");
        write_private_file(&path, &json).map_err(io(&path))?;
        let keep: HashSet<PathBuf> = assignment
            .items
            .iter()
            .map(|i| self.bundle_file(&i.digest))
            .collect();
        if let Ok(entries) = std::fs::read_dir(self.bundles_dir()) {
            for entry in entries.flatten() {
                if !keep.contains(&entry.path()) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_common::proto::AssignmentItem;

    fn item(app: &str, digest: &str) -> AssignmentItem {
        AssignmentItem {
            app: app.into(),
            commit: "c".into(),
            digest: digest.into(),
            namespace: None,
            prune: false,
            self_heal: false,
            ownership: Default::default(),
            ignore_differences: Vec::new(),
            prune_confirmed: None,
            create_namespace: true,
            prune_last: false,
            sync_requested: 0,
        }
    }

    #[test]
    fn only_a_regular_file_that_verifies_counts_as_a_held_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let encoded = Bundle::new(vec![
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
        ])
        .encode(3)
        .unwrap();
        let path = cache.bundle_file(&encoded.digest);
        let assignment = Assignment {
            generation: 1,
            items: vec![item("web", &encoded.digest)],
        };
        cache.store_assignment(&assignment).unwrap();

        // A directory at the bundle's path.
        std::fs::create_dir_all(&path).unwrap();
        assert!(!cache.has_bundle(&encoded.digest));
        assert!(cache.lacks_bundles());
        std::fs::remove_dir(&path).unwrap();

        // A symlink to a good copy elsewhere.
        let elsewhere = dir.path().join("elsewhere.zst");
        std::fs::write(&elsewhere, &encoded.compressed).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert!(!cache.has_bundle(&encoded.digest));
        std::fs::remove_file(&path).unwrap();

        // A regular file that does not verify.
        std::fs::write(&path, &encoded.compressed[..encoded.compressed.len() / 2]).unwrap();
        assert!(!cache.has_bundle(&encoded.digest));
        assert!(cache.lacks_bundles());

        // The bundle itself.
        cache
            .store_bundle(&encoded.digest, &encoded.compressed)
            .unwrap();
        assert!(cache.has_bundle(&encoded.digest));
        assert!(!cache.lacks_bundles());
    }

    #[test]
    fn bundles_are_verified_kept_and_garbage_collected() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        assert!(cache.assignment().unwrap().is_none());

        let bundle = Bundle::new(vec![
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
        ]);
        let encoded = bundle.encode(3).unwrap();
        // A bundle that does not match its digest is refused and not kept.
        let other = Bundle::new(vec![]).encode(3).unwrap();
        assert!(
            cache
                .store_bundle(&encoded.digest, &other.compressed)
                .is_err()
        );
        assert!(!cache.has_bundle(&encoded.digest));

        cache
            .store_bundle(&encoded.digest, &encoded.compressed)
            .unwrap();
        cache
            .store_bundle(&other.digest, &other.compressed)
            .unwrap();
        let assignment = Assignment {
            generation: 4,
            items: vec![item("web", &encoded.digest)],
        };
        cache.store_assignment(&assignment).unwrap();
        assert_eq!(cache.assignment().unwrap(), Some(assignment));
        assert_eq!(cache.bundle(&encoded.digest).unwrap(), bundle);
        assert!(!cache.lacks_bundles());
        // The bundle no item names any more is gone.
        assert!(!cache.has_bundle(&other.digest));

        // An unreadable cached assignment must be fetched again too.
        let assignment_file = cache.assignment_file();
        let intact = std::fs::read(&assignment_file).unwrap();
        std::fs::write(&assignment_file, b"{\"generation\": 4, \"ite").unwrap();
        assert!(cache.assignment().is_err());
        assert!(cache.lacks_bundles());
        std::fs::write(&assignment_file, intact).unwrap();

        // A cached bundle that was tampered with is refused on read.
        std::fs::write(cache.bundle_file(&encoded.digest), &other.compressed).unwrap();
        assert!(cache.bundle(&encoded.digest).is_err());
    }

    #[test]
    fn recovery_sweeps_what_a_crash_left_and_keeps_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let good = Bundle::new(vec![
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
        ])
        .encode(3)
        .unwrap();
        let cut = Bundle::new(vec![
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}}),
        ])
        .encode(3)
        .unwrap();
        cache.store_bundle(&good.digest, &good.compressed).unwrap();
        cache.store_bundle(&cut.digest, &cut.compressed).unwrap();
        let assignment = Assignment {
            generation: 7,
            items: vec![item("a", &good.digest), item("b", &cut.digest)],
        };
        cache.store_assignment(&assignment).unwrap();
        // What a crash (or a failing disk) can leave: half-written temp
        // files of a newer assignment and bundle, and a truncated bundle.
        std::fs::write(
            dir.path().join("cache/.assignment.json.0123.tmp"),
            b"{\"gen",
        )
        .unwrap();
        std::fs::write(dir.path().join("cache/bundles/.x.zst.4567.tmp"), b"\x28").unwrap();
        let cut_path = cache.bundle_file(&cut.digest);
        std::fs::write(&cut_path, &cut.compressed[..cut.compressed.len() / 2]).unwrap();

        assert_eq!(
            cache.recover(),
            Recovery {
                temporary_files: 2,
                bad_bundles: 1
            }
        );
        assert_eq!(cache.assignment().unwrap(), Some(assignment));
        assert!(cache.has_bundle(&good.digest));
        assert!(!cache.has_bundle(&cut.digest), "fetched again, not trusted");
        assert!(
            cache.lacks_bundles(),
            "the removed bundle must be fetched again"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path().join("cache/bundles"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(cache.recover(), Recovery::default());
    }
}
