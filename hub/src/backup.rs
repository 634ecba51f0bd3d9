//! Backups of a hub and their restore into a new data directory.
//!
//! A backup is one zstd-compressed tar archive holding a consistent snapshot
//! of the store (see [`Store::snapshot`]) and the files that make the hub
//! itself: its CA (agents pin it), the QUIC reset key and the webhook
//! secret. Credentials are not brought back by a restore: the built-in admin
//! token is not in the archive, and unused bootstrap tokens and API tokens
//! of the snapshot are dropped or revoked (see [`without_credentials`]).
//! Git clones are left out: the restored hub fetches them again. The archive holds the CA's private key, so it is
//! written 0600 and must be kept like the key itself.
//!
//! Layout, in this order:
//! - `switchyard-backup.json`: [`Manifest`];
//! - `files/<path>`: the identity files, paths relative to the data dir;
//! - `store/<table>`: each table as length-prefixed pairs
//!   (`u32` big-endian key length, key, `u32` value length, value).

use crate::paths;
use crate::store::{self, Row, SledStore, Snapshot, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Version of the archive layout this hub writes and reads.
pub const FORMAT: u32 = 1;

const MANIFEST: &str = "switchyard-backup.json";
const FILES_PREFIX: &str = "files/";
const STORE_PREFIX: &str = "store/";

/// Identity files at the top of the data dir, besides everything in `ca/`.
const TOP_LEVEL_FILES: [&str; 2] = ["quic-reset-key", "webhook-secret"];

/// The built-in admin token's file: in archives of older hubs, and never
/// restored, as it may have been replaced after the backup. The restored
/// hub writes a new one on its first start.
const ADMIN_TOKEN: &str = "admin-token";

/// Store tables holding credentials (see [`without_credentials`]).
const TOKENS: &str = "tokens";
const API_TOKENS: &str = "api_tokens";

/// Largest archive `restore` reads, decompressed: a bound against a hostile
/// or corrupt file, far above any real hub's state.
const MAX_UNPACKED: u64 = 16 * 1024 * 1024 * 1024;

/// Error from taking, reading or restoring a backup.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path} from the data dir")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the archive")]
    Pack(#[source] std::io::Error),
    #[error("not a readable Switchyard backup")]
    Unpack(#[source] std::io::Error),
    #[error("not a Switchyard backup: {0}")]
    Invalid(String),
    #[error(
        "backup format {found} is newer than this hub reads ({FORMAT}); use a newer switchyard"
    )]
    Format { found: u32 },
    #[error(
        "{} is not empty: restore goes into a new data dir, so nothing is overwritten",
        .0.display()
    )]
    NotEmpty(PathBuf),
    #[error("store")]
    Store(#[from] store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an archive says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// Unix seconds at which the snapshot was taken.
    pub taken_at: u64,
    /// Version of the hub that wrote it.
    pub hub_version: String,
    /// Records per table, checked on restore.
    pub tables: BTreeMap<String, usize>,
    /// Identity files, relative to the data dir.
    pub files: Vec<String>,
}

/// What a backup or a restore held, for the person who ran it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub taken_at: u64,
    pub clusters: usize,
    pub repos: usize,
    pub apps: usize,
    pub groups: usize,
    pub revisions: usize,
    pub bundles: usize,
    pub audit_entries: usize,
    pub files: usize,
    /// Size of the archive in bytes.
    pub bytes: u64,
}

impl Summary {
    fn new(manifest: &Manifest, bytes: u64) -> Self {
        let count = |table: &str| manifest.tables.get(table).copied().unwrap_or(0);
        Self {
            taken_at: manifest.taken_at,
            clusters: count("clusters"),
            repos: count("repos"),
            apps: count("apps"),
            groups: count("groups"),
            revisions: count("revisions"),
            bundles: count("bundles"),
            audit_entries: count("audit"),
            files: manifest.files.len(),
            bytes,
        }
    }
}

/// A backup read back into memory and checked.
#[derive(Debug)]
pub struct Archive {
    pub manifest: Manifest,
    pub snapshot: Snapshot,
    /// Path relative to the data dir, contents.
    pub files: BTreeMap<String, Vec<u8>>,
    bytes: u64,
}

impl Archive {
    pub fn summary(&self) -> Summary {
        Summary::new(&self.manifest, self.bytes)
    }
}

/// Take a backup of a running hub: snapshot `store`, read the identity
/// files from `data_dir`, and pack both. Returns the archive and its summary.
pub fn take(store: &dyn Store, data_dir: &Path, now: u64) -> Result<(Vec<u8>, Summary)> {
    let files = identity_files(data_dir)?;
    let snapshot = store.snapshot()?;
    let manifest = Manifest {
        format: FORMAT,
        taken_at: now,
        hub_version: env!("CARGO_PKG_VERSION").to_owned(),
        tables: snapshot
            .tables
            .iter()
            .map(|(name, rows)| (name.clone(), rows.len()))
            .collect(),
        files: files.keys().cloned().collect(),
    };
    let archive = pack(&manifest, &files, &snapshot).map_err(Error::Pack)?;
    let summary = Summary::new(&manifest, archive.len() as u64);
    Ok((archive, summary))
}

/// The identity files present in `data_dir`: everything in `ca/` and the
/// top-level secrets.
fn identity_files(data_dir: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| Error::ReadFile {
            path: path.to_owned(),
            source,
        })
    };
    let mut files = BTreeMap::new();
    let ca_dir = paths::ca_dir(data_dir);
    let entries = std::fs::read_dir(&ca_dir).map_err(|source| Error::ReadFile {
        path: ca_dir.clone(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::ReadFile {
            path: ca_dir.clone(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Temporary files of an atomic write in progress are not state.
        if entry.path().is_file() && !name.starts_with('.') {
            files.insert(format!("ca/{name}"), read(&entry.path())?);
        }
    }
    for name in TOP_LEVEL_FILES {
        let path = data_dir.join(name);
        if path.exists() {
            files.insert(name.to_owned(), read(&path)?);
        }
    }
    Ok(files)
}

fn pack(
    manifest: &Manifest,
    files: &BTreeMap<String, Vec<u8>>,
    snapshot: &Snapshot,
) -> std::io::Result<Vec<u8>> {
    let encoder = zstd::Encoder::new(Vec::new(), 3)?;
    let mut tar = tar::Builder::new(encoder);
    let mut append = |path: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(manifest.taken_at);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, data)
    };
    let manifest_json = serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?;
    append(MANIFEST, &manifest_json)?;
    for (path, data) in files {
        append(&format!("{FILES_PREFIX}{path}"), data)?;
    }
    for (table, rows) in &snapshot.tables {
        append(&format!("{STORE_PREFIX}{table}"), &encode_rows(rows)?)?;
    }
    tar.into_inner()?.finish()
}

fn encode_rows(rows: &[Row]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for (key, value) in rows {
        for part in [key, value] {
            let len = u32::try_from(part.len())
                .map_err(|_| std::io::Error::other("a record larger than 4 GiB"))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    Ok(out)
}

fn decode_rows(table: &str, mut bytes: &[u8]) -> Result<Vec<Row>> {
    let truncated = || Error::Invalid(format!("table {table} is truncated"));
    let take = |bytes: &mut &[u8]| -> Result<Vec<u8>> {
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(truncated)?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(truncated());
        }
        let (part, rest) = rest.split_at(len);
        *bytes = rest;
        Ok(part.to_vec())
    };
    let mut rows = Vec::new();
    while !bytes.is_empty() {
        let key = take(&mut bytes)?;
        let value = take(&mut bytes)?;
        rows.push((key, value));
    }
    Ok(rows)
}

/// Read and check an archive: known layout and format, counts matching the
/// manifest, file names that stay inside the data dir.
pub fn read(archive: &[u8]) -> Result<Archive> {
    let decoder = zstd::Decoder::new(archive).map_err(Error::Unpack)?;
    let mut tar = tar::Archive::new(decoder.take(MAX_UNPACKED));
    let mut manifest: Option<Manifest> = None;
    let mut files = BTreeMap::new();
    let mut snapshot = Snapshot::default();
    for entry in tar.entries().map_err(Error::Unpack)? {
        let mut entry = entry.map_err(Error::Unpack)?;
        let path = entry
            .path()
            .map_err(Error::Unpack)?
            .to_string_lossy()
            .into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(Error::Unpack)?;
        if path == MANIFEST {
            let found: Manifest = serde_json::from_slice(&data)
                .map_err(|e| Error::Invalid(format!("{MANIFEST}: {e}")))?;
            if found.format > FORMAT {
                return Err(Error::Format {
                    found: found.format,
                });
            }
            manifest = Some(found);
        } else if manifest.is_none() {
            return Err(Error::Invalid(format!(
                "{MANIFEST} must come first, found {path:?}"
            )));
        } else if let Some(name) = path.strip_prefix(FILES_PREFIX) {
            if !is_identity_file(name) {
                return Err(Error::Invalid(format!("unexpected file {path:?}")));
            }
            files.insert(name.to_owned(), data);
        } else if let Some(table) = path.strip_prefix(STORE_PREFIX) {
            let rows = decode_rows(table, &data)?;
            snapshot.tables.insert(table.to_owned(), rows);
        } else {
            return Err(Error::Invalid(format!("unexpected entry {path:?}")));
        }
    }
    let manifest = manifest.ok_or_else(|| Error::Invalid(format!("no {MANIFEST}")))?;
    let counts: BTreeMap<String, usize> = snapshot
        .tables
        .iter()
        .map(|(name, rows)| (name.clone(), rows.len()))
        .collect();
    if counts != manifest.tables {
        return Err(Error::Invalid(format!(
            "the store tables hold {counts:?} records but the manifest lists {:?}",
            manifest.tables
        )));
    }
    let names: Vec<&String> = files.keys().collect();
    if names != manifest.files.iter().collect::<Vec<_>>() {
        return Err(Error::Invalid(format!(
            "the archive holds files {names:?} but the manifest lists {:?}",
            manifest.files
        )));
    }
    for needed in ["ca/ca.pem", "ca/ca-key.pem"] {
        if !files.contains_key(needed) {
            return Err(Error::Invalid(format!(
                "it lacks {needed}, without which agents cannot trust the restored hub"
            )));
        }
    }
    Ok(Archive {
        manifest,
        snapshot,
        files,
        bytes: archive.len() as u64,
    })
}

/// Only names a backup writes, so a crafted archive cannot write elsewhere.
fn is_identity_file(name: &str) -> bool {
    let plain = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    match name.strip_prefix("ca/") {
        Some(file) => plain(file),
        None => TOP_LEVEL_FILES.contains(&name) || name == ADMIN_TOKEN,
    }
}

/// The credentials a restore did not bring back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invalidated {
    /// Unused bootstrap tokens of the backup, dropped.
    pub bootstrap_tokens: usize,
    /// API tokens of the backup that were still good, now revoked.
    pub api_tokens: usize,
    /// Whether the archive held the built-in admin token (never restored).
    pub admin_token: bool,
}

/// The snapshot without the credentials it held: every unused bootstrap
/// token dropped, every API token revoked at `now`. The backup cannot know
/// which of them were spent or revoked after it was taken, so none is
/// trusted; the rest of the records are unchanged.
pub fn without_credentials(snapshot: &Snapshot, now: u64) -> Result<(Snapshot, Invalidated)> {
    let corrupt = |table: &str, e: serde_json::Error| {
        Error::Invalid(format!("a record of table {table} is not readable: {e}"))
    };
    let mut out = snapshot.clone();
    let mut invalidated = Invalidated::default();
    if let Some(rows) = out.tables.get_mut(TOKENS) {
        let mut kept = Vec::with_capacity(rows.len());
        for (key, value) in rows.drain(..) {
            let token: store::TokenRecord =
                serde_json::from_slice(&value).map_err(|e| corrupt(TOKENS, e))?;
            if token.used_at.is_some() {
                kept.push((key, value));
            } else {
                invalidated.bootstrap_tokens += 1;
            }
        }
        *rows = kept;
    }
    if let Some(rows) = out.tables.get_mut(API_TOKENS) {
        for (_, value) in rows.iter_mut() {
            let mut token: store::ApiTokenRecord =
                serde_json::from_slice(value).map_err(|e| corrupt(API_TOKENS, e))?;
            if token.revoked_at.is_none() {
                token.revoked_at = Some(now);
                invalidated.api_tokens += 1;
                *value = serde_json::to_vec(&token).map_err(|e| corrupt(API_TOKENS, e))?;
            }
        }
    }
    Ok((out, invalidated))
}

/// Restore `archive` into `data_dir`, which must not exist or be empty.
///
/// Everything is written into a staging directory beside it and renamed into
/// place at the end, so a failed restore leaves nothing behind. Clusters are
/// marked with the backup's time so that agents holding certificates renewed
/// after the backup can still connect (see `Fleet::authenticate`).
///
/// Credentials are not restored (see [`without_credentials`]), nor is the
/// built-in admin token: the hub writes a new one on its first start.
pub fn restore(archive: &Archive, data_dir: &Path, now: u64) -> Result<Invalidated> {
    let not_empty = || Error::NotEmpty(data_dir.to_owned());
    match std::fs::read_dir(data_dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(not_empty());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::ReadFile {
                path: data_dir.to_owned(),
                source,
            });
        }
    }
    let parent = match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::WriteFile { path, source }
    };
    std::fs::create_dir_all(&parent).map_err(write_error(&parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".switchyard-restore-")
        .tempdir_in(&parent)
        .map_err(write_error(&parent))?;
    let invalidated = fill(archive, staging.path(), now)?;
    if data_dir.exists() {
        std::fs::remove_dir(data_dir).map_err(|_| not_empty())?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, data_dir).map_err(write_error(data_dir))?;
    Ok(invalidated)
}

fn fill(archive: &Archive, dir: &Path, now: u64) -> Result<Invalidated> {
    set_private(dir)?;
    std::fs::create_dir(paths::ca_dir(dir)).map_err(|source| Error::WriteFile {
        path: paths::ca_dir(dir),
        source,
    })?;
    set_private(&paths::ca_dir(dir))?;
    for (name, data) in &archive.files {
        if name == ADMIN_TOKEN {
            continue;
        }
        let path = dir.join(name);
        switchyard_certs::write_private_file(&path, data)
            .map_err(|source| Error::WriteFile { path, source })?;
    }
    let (snapshot, mut invalidated) = without_credentials(&archive.snapshot, now)?;
    invalidated.admin_token = archive.files.contains_key(ADMIN_TOKEN);
    let store = SledStore::open(&paths::store_dir(dir))?;
    store.restore(&snapshot)?;
    let taken_at = archive.manifest.taken_at;
    for cluster in store.clusters()? {
        store.update_cluster(&cluster.name, true, &mut |c| {
            c.restored_from = Some(taken_at);
        })?;
    }
    Ok(invalidated)
}

fn set_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|source| {
        Error::WriteFile {
            path: dir.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ClusterRecord, TokenRecord, test_revision as revision};
    use switchyard_common::ClusterName;

    fn hub_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        std::fs::create_dir(&ca).unwrap();
        std::fs::write(ca.join("ca.pem"), "CA CERT").unwrap();
        std::fs::write(ca.join("ca-key.pem"), "CA KEY").unwrap();
        std::fs::write(ca.join(".ca.pem.0123.tmp"), "half written").unwrap();
        std::fs::write(dir.path().join("admin-token"), "sya_secret").unwrap();
        dir
    }

    fn store_with_history(dir: &Path) -> SledStore {
        let store = SledStore::open(&paths::store_dir(dir)).unwrap();
        let name = ClusterName::new("edge-1").unwrap();
        let token = TokenRecord {
            cluster: name.clone(),
            expires_at: 200,
            used_at: None,
        };
        store
            .create_cluster(&ClusterRecord::new(name, BTreeMap::new(), 100), "h", &token)
            .unwrap();
        for i in 0..3 {
            store
                .append_revision("web", &revision(&format!("c{i}")))
                .unwrap();
        }
        store
    }

    #[test]
    fn a_restored_store_holds_the_same_records_and_continues_history_after_them() {
        let source = hub_dir();
        let store = store_with_history(source.path());
        let (bytes, summary) = take(&store, source.path(), 1_000).unwrap();
        assert_eq!(
            (summary.clusters, summary.revisions, summary.files),
            (1, 3, 2),
            "the CA's two files; the admin token is not backed up"
        );

        let archive = read(&bytes).unwrap();
        assert!(!archive.files.contains_key("ca/.ca.pem.0123.tmp"));
        let target = tempfile::tempdir().unwrap();
        let data_dir = target.path().join("restored");
        let invalidated = restore(&archive, &data_dir, 2_000).unwrap();
        // The one bootstrap token of the store was never used.
        assert_eq!(
            invalidated,
            Invalidated {
                bootstrap_tokens: 1,
                api_tokens: 0,
                admin_token: false
            }
        );

        assert_eq!(
            std::fs::read(data_dir.join("ca/ca-key.pem")).unwrap(),
            b"CA KEY"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data_dir.join("ca/ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!data_dir.join("admin-token").exists());

        let restored = SledStore::open(&paths::store_dir(&data_dir)).unwrap();
        let original = store.snapshot().unwrap();
        let mut copy = restored.snapshot().unwrap();
        // The only differences: clusters carry the backup's time, and the
        // unused bootstrap token is gone.
        assert_eq!(original.count("tokens"), 1);
        assert_eq!(copy.count("tokens"), 0);
        copy.tables.remove("tokens");
        let clusters = restored.clusters().unwrap();
        assert_eq!(clusters[0].restored_from, Some(1_000));
        let mut unmarked = clusters[0].clone();
        unmarked.restored_from = None;
        assert_eq!(Some(unmarked), store.clusters().unwrap().pop());
        copy.tables.remove("clusters");
        let mut original_rest = original.clone();
        original_rest.tables.remove("clusters");
        original_rest.tables.remove("tokens");
        assert_eq!(copy, original_rest);

        restored.append_revision("web", &revision("c3")).unwrap();
        let commits: Vec<String> = restored
            .revisions("web")
            .unwrap()
            .into_iter()
            .map(|r| r.commit)
            .collect();
        assert_eq!(commits, ["c0", "c1", "c2", "c3"]);
    }

    #[test]
    fn a_restore_drops_unused_bootstrap_tokens_and_revokes_api_tokens() {
        let source = hub_dir();
        let store = store_with_history(source.path());
        let name = ClusterName::new("edge-1").unwrap();
        let token = TokenRecord {
            cluster: name.clone(),
            expires_at: 5_000,
            used_at: None,
        };
        store.create_token("spent", &token).unwrap();
        store.redeem_token("spent", 150, "0a", 9_999).unwrap();
        let api = |name: &str| store::ApiTokenRecord {
            name: name.into(),
            role: crate::roles::Role::Viewer,
            hash: format!("hash-{name}"),
            created_at: 10,
            expires_at: None,
            revoked_at: None,
            last_used: None,
        };
        store.create_api_token(&api("ci"), 100).unwrap();
        store.create_api_token(&api("old"), 100).unwrap();
        store.revoke_api_token("old", 50).unwrap();

        let (bytes, _) = take(&store, source.path(), 1_000).unwrap();
        let archive = read(&bytes).unwrap();
        let target = tempfile::tempdir().unwrap();
        let data_dir = target.path().join("restored");
        let invalidated = restore(&archive, &data_dir, 2_000).unwrap();
        assert_eq!(
            invalidated,
            Invalidated {
                bootstrap_tokens: 1,
                api_tokens: 1,
                admin_token: false
            }
        );
        let restored = SledStore::open(&paths::store_dir(&data_dir)).unwrap();
        assert!(restored.token("h").unwrap().is_none(), "unused: dropped");
        assert_eq!(
            restored.token("spent").unwrap().unwrap().used_at,
            Some(150),
            "spent: kept, it grants nothing"
        );
        assert_eq!(
            restored.api_token("ci").unwrap().unwrap().revoked_at,
            Some(2_000)
        );
        assert_eq!(
            restored.api_token("old").unwrap().unwrap().revoked_at,
            Some(50),
            "an earlier revocation keeps its time"
        );
        let by_hash = restored.api_token_by_hash("hash-ci").unwrap().unwrap();
        assert!(!by_hash.is_active(2_000));
    }

    #[test]
    fn restore_refuses_a_data_dir_in_use_and_writes_nothing() {
        let source = hub_dir();
        let store = store_with_history(source.path());
        let (bytes, _) = take(&store, source.path(), 1_000).unwrap();
        let archive = read(&bytes).unwrap();
        let target = tempfile::tempdir().unwrap();
        std::fs::write(target.path().join("keep-me"), "x").unwrap();
        let err = restore(&archive, target.path(), 2_000).unwrap_err();
        assert!(matches!(err, Error::NotEmpty(_)), "{err}");
        let left: Vec<_> = std::fs::read_dir(target.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["keep-me"]);
    }

    #[test]
    fn damaged_or_foreign_archives_are_refused_with_a_reason() {
        let source = hub_dir();
        let store = store_with_history(source.path());
        let (bytes, _) = take(&store, source.path(), 1_000).unwrap();

        let truncated = &bytes[..bytes.len() / 2];
        assert!(read(truncated).is_err());
        assert!(matches!(read(b"not zstd at all"), Err(Error::Unpack(_))));

        // A file outside the identity files, as a crafted archive might hold.
        let mut files = identity_files(source.path()).unwrap();
        files.insert("elsewhere".into(), b"x".to_vec());
        let snapshot = store.snapshot().unwrap();
        let manifest = Manifest {
            format: FORMAT,
            taken_at: 1,
            hub_version: "test".into(),
            tables: snapshot
                .tables
                .iter()
                .map(|(n, r)| (n.clone(), r.len()))
                .collect(),
            files: files.keys().cloned().collect(),
        };
        let crafted = pack(&manifest, &files, &snapshot).unwrap();
        let err = read(&crafted).unwrap_err();
        assert!(err.to_string().contains("unexpected file"), "{err}");

        // Counts that disagree with the manifest.
        let mut lying = manifest.clone();
        files.remove("elsewhere");
        lying.files = files.keys().cloned().collect();
        lying.tables.insert("clusters".into(), 5);
        let crafted = pack(&lying, &files, &snapshot).unwrap();
        assert!(matches!(read(&crafted), Err(Error::Invalid(_))));

        // A newer format.
        let mut newer = manifest;
        newer.files = files.keys().cloned().collect();
        newer.format = FORMAT + 1;
        let crafted = pack(&newer, &files, &snapshot).unwrap();
        assert!(matches!(read(&crafted), Err(Error::Format { .. })));
    }
}
